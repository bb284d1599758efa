package loadgen

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/omnirouter/omnirouter/tools/nemesis"
)

var (
	flagSoak           = flag.Bool("soak", false, "run the soak: three real processes under a steady open-loop lifecycle load, memory checked flat")
	flagSoakLifecycles = flag.Int("soak.lifecycles", 120_000, "conversation lifecycles to offer (chat and messaging, reopen included)")
	flagSoakRate       = flag.Float64("soak.rate", 1000, "lifecycles started per second")
	flagSoakRetention  = flag.Duration("soak.retention", 15*time.Second, "retention.ended of the cluster under test")
	flagSoakKeys       = flag.Duration("soak.idempotency", 0, "idempotency_retention of the cluster under test (default: --soak.retention); records are kept for this long, so a run shorter than it only sees them grow")
	flagSoakTolerance  = flag.Float64("soak.tolerance", 0.10, "largest change allowed between the middle and the last third of the live heap, RSS and snapshot size")
	flagSoakOut        = flag.String("soak.out", "", "directory for report.json and memory.svg (default: the test's temporary directory)")
)

// TestSoak runs --soak.lifecycles lifecycles at a steady open-loop rate
// against three real nodes with a short retention.ended, and checks that
// every node's live heap, RSS and last snapshot size stay flat: the last
// third of the run within --soak.tolerance of the middle third. The report
// (JSON) and the memory chart (SVG) go to --soak.out.
//
//	go test ./tools/loadgen -run TestSoak -soak -timeout 30m                     # about 2 minutes
//	go test ./tools/loadgen -run TestSoak -soak -soak.lifecycles 2000000 \
//	    -soak.retention 1m -soak.out soak -timeout 60m                           # the full soak
func TestSoak(t *testing.T) {
	if !*flagSoak {
		t.Skip("the soak runs with -soak")
	}
	dir := t.TempDir()
	out := *flagSoakOut
	if out == "" {
		out = dir
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	moduleDir, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	bin, err := nemesis.Build(moduleDir, dir)
	if err != nil {
		t.Fatal(err)
	}
	// Snapshots every few seconds when due, so that their size is sampled
	// through the run; each node a third of the machine's memory.
	c, err := nemesis.NewCluster(nemesis.ClusterConfig{Bin: bin, Dir: dir, Direct: true,
		Extra: []string{"--snapshot-interval", "5s", "--log-level", "warn"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Shutdown()
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.WaitReady(ctx, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	var targets []string
	for _, n := range c.Nodes {
		targets = append(targets, n.URL())
	}
	keys := *flagSoakKeys
	if keys == 0 {
		keys = *flagSoakRetention
	}
	body := fmt.Sprintf(`{"retention":{"ended":%q},"idempotency_retention":%q}`, flagSoakRetention.String(), keys.String())
	req, _ := http.NewRequest("PUT", targets[0]+"/v1/policy", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("set retention.ended: %v %v", err, resp)
	}
	resp.Body.Close()

	duration := time.Duration(float64(*flagSoakLifecycles) / *flagSoakRate * float64(time.Second))
	t.Logf("%d lifecycles at %.0f/s: %v, retention.ended %v, idempotency_retention %v", *flagSoakLifecycles, *flagSoakRate, duration, *flagSoakRetention, keys)
	rep, err := Run(ctx, Config{Targets: targets, Duration: duration, Concurrency: 512, Agents: 500,
		Workload: WorkloadLifecycle, Rate: *flagSoakRate, SampleEvery: time.Second, Progress: soakProgress(t)})
	if rep != nil {
		writeSoakReport(t, out, rep)
	}
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if o := rep.OpenLoop; o.Started < o.Scheduled*99/100 {
		t.Errorf("the cluster did not keep up: %d of %d arrivals started", o.Started, o.Scheduled)
	}
	if rep.Completed < *flagSoakLifecycles*9/10 {
		t.Errorf("%d lifecycles completed of %d offered", rep.Completed, *flagSoakLifecycles)
	}
	for _, p := range rep.Memory.Plateaus() {
		t.Logf("%s %s: middle third %.1f MiB, last third %.1f MiB (%+.1f%%)", p.Target, p.Series, p.Middle/(1<<20), p.Last/(1<<20), 100*p.Change)
		if math.IsNaN(p.Change) || math.Abs(p.Change) > *flagSoakTolerance {
			t.Errorf("%s %s is not flat: %+.1f%% from the middle third to the last", p.Target, p.Series, 100*p.Change)
		}
	}
}

func writeSoakReport(t *testing.T, dir string, rep *Report) {
	f, err := os.Create(filepath.Join(dir, "report.json"))
	if err == nil {
		err = rep.WriteJSON(f)
		f.Close()
	}
	if err != nil {
		t.Error(err)
	}
	g, err := os.Create(filepath.Join(dir, "memory.svg"))
	if err == nil {
		err = rep.Memory.WriteSVG(g, fmt.Sprintf("soak: %d lifecycles at %.0f/s, retention.ended %v",
			rep.Completed, *flagSoakRate, *flagSoakRetention))
		g.Close()
	}
	if err != nil {
		t.Error(err)
	}
	var sum strings.Builder
	rep.WriteSummary(&sum)
	t.Logf("report in %s\n%s", dir, sum.String())
}

// soakProgress logs a progress line every ten seconds when -v is given.
func soakProgress(t *testing.T) io.Writer {
	if !testing.Verbose() {
		return nil
	}
	return &progressLog{t: t}
}

type progressLog struct {
	t     *testing.T
	lines int
}

func (p *progressLog) Write(b []byte) (int, error) {
	if p.lines%10 == 0 {
		p.t.Log(strings.TrimSpace(string(b)))
	}
	p.lines++
	return len(b), nil
}
