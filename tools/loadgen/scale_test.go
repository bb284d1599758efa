package loadgen

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/omnirouter/omnirouter/tools/nemesis"
)

var (
	flagScale         = flag.Bool("scale", false, "run the scale measurement: three real processes filled with --scale.conversations live conversations")
	flagScaleConvs    = flag.Int("scale.conversations", 1_000_000, "live conversations to fill the cluster with")
	flagScaleAgents   = flag.Int("scale.agents", 10_000, "agents of the filled cluster")
	flagScaleDuration = flag.Duration("scale.duration", 20*time.Second, "length of each create run at 64 clients")
	flagScaleRounds   = flag.Int("scale.rounds", 3, "create runs on each of the empty and the filled cluster, alternated; medians are compared")
	flagScaleOut      = flag.String("scale.out", "", "file for the figures as JSON")
)

// ScaleFigures are what TestScale measures.
type ScaleFigures struct {
	Conversations       int       `json:"conversations"`
	Agents              int       `json:"agents"`
	EmptyCreatesPerSec  float64   `json:"empty_creates_per_second"`  // the median
	FilledCreatesPerSec float64   `json:"filled_creates_per_second"` // the median
	EmptyRuns           []float64 `json:"empty_runs"`
	FilledRuns          []float64 `json:"filled_runs"`
	FilledShare         float64   `json:"filled_share"`
	BackupBytes         int64     `json:"backup_bytes"`
	BackupSeconds       float64   `json:"backup_seconds"`
	RestartSeconds      float64   `json:"restart_to_ready_seconds"`
	InstallSeconds      float64   `json:"snapshot_install_to_ready_seconds"`
	LiveHeapBytes       float64   `json:"live_heap_bytes_per_node"`
	RSSBytes            float64   `json:"rss_bytes_per_node"`
}

// TestScale fills three real nodes with a million live conversations and
// ten thousand agents and times what an operator meets: create throughput
// at 64 clients against an empty cluster in the same run, the backup's
// size and time, a node's restart to ready, and a replacement node (empty
// data directory) ready after installing a snapshot.
//
// The create runs alternate between the filled cluster and a fresh empty
// one started for each run (so that it stays empty) while the filled one
// is stopped, --scale.rounds of each, and their medians are compared: on
// a shared machine one run of each would compare two moments as much as
// two states, and a filled run may meet one of the snapshots (each
// hundreds of megabytes) that a million conversations take from time to
// time.
//
//	go test ./tools/loadgen -run TestScale -scale -timeout 60m -v
func TestScale(t *testing.T) {
	if !*flagScale {
		t.Skip("the scale measurement runs with -scale")
	}
	dir := t.TempDir()
	moduleDir, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	bin, err := nemesis.Build(moduleDir, dir)
	if err != nil {
		t.Fatal(err)
	}
	c, err := nemesis.NewCluster(nemesis.ClusterConfig{Bin: bin, Dir: dir, Direct: true,
		Extra: []string{"--log-level", "warn", "--memory-limit", "6GiB"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Shutdown()
	ctx := context.Background()
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitReady(ctx, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	targets := clusterTargets(c)
	fig := ScaleFigures{Conversations: *flagScaleConvs, Agents: *flagScaleAgents}
	create := func(name string, targets []string) float64 {
		rep, err := Run(ctx, Config{Targets: targets, Duration: *flagScaleDuration, Concurrency: 64, Agents: 500,
			Workload: WorkloadCreate, SkipVerify: true, RunID: name})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		t.Logf("%s: %.0f creates/s, p99 %.1f ms", name, rep.Ops["create"].Throughput, rep.Ops["create"].LatencyMS.P99)
		return rep.Ops["create"].Throughput
	}
	// signal sends sig to every node of the filled cluster.
	signal := func(sig syscall.Signal) {
		for _, n := range c.Nodes {
			if err := n.Signal(sig); err != nil {
				t.Fatal(err)
			}
		}
	}
	// emptyRun runs the creates on a fresh empty cluster of its own, with
	// the filled cluster stopped (SIGSTOP) meanwhile: a snapshot or a
	// collection of its million conversations would otherwise take the
	// CPU from the empty one's run.
	emptyRun := func(round int) float64 {
		signal(syscall.SIGSTOP)
		defer func() {
			signal(syscall.SIGCONT)
			if err := c.WaitReady(ctx, 2*time.Minute); err != nil {
				t.Fatal(err)
			}
		}()
		edir := filepath.Join(dir, fmt.Sprintf("empty-%d", round))
		if err := os.MkdirAll(edir, 0o755); err != nil {
			t.Fatal(err)
		}
		e, err := nemesis.NewCluster(nemesis.ClusterConfig{Bin: bin, Dir: edir, Direct: true,
			Extra: []string{"--log-level", "warn", "--memory-limit", "6GiB"}})
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			e.Shutdown()
			os.RemoveAll(edir)
		}()
		if err := e.Start(); err != nil {
			t.Fatal(err)
		}
		if err := e.WaitReady(ctx, 30*time.Second); err != nil {
			t.Fatal(err)
		}
		return create(fmt.Sprintf("empty-%d", round), clusterTargets(e))
	}

	fillStart := time.Now()
	if _, err := Run(ctx, Config{Targets: targets, Duration: time.Hour, Concurrency: 128, Agents: *flagScaleAgents,
		Workload: WorkloadCreate, SkipVerify: true, RunID: "fill", MaxArrivals: *flagScaleConvs}); err != nil {
		t.Fatalf("fill: %v", err)
	}
	t.Logf("filled with %d conversations and %d agents in %v", *flagScaleConvs, *flagScaleAgents, time.Since(fillStart).Round(time.Second))
	for round := 1; round <= *flagScaleRounds; round++ {
		fig.EmptyRuns = append(fig.EmptyRuns, emptyRun(round))
		fig.FilledRuns = append(fig.FilledRuns, create(fmt.Sprintf("filled-%d", round), targets))
	}
	fig.EmptyCreatesPerSec, fig.FilledCreatesPerSec = median(fig.EmptyRuns), median(fig.FilledRuns)
	fig.FilledShare = fig.FilledCreatesPerSec / fig.EmptyCreatesPerSec

	mem, err := newMetricsReader(targets[:1], "", nil).readNamed(ctx, targets[0], []string{metricHeapLive, metricRSS})
	if err != nil {
		t.Fatal(err)
	}
	fig.LiveHeapBytes, fig.RSSBytes = mem[metricHeapLive], mem[metricRSS]

	backupStart := time.Now()
	resp, err := http.Get(targets[0] + "/v1/cluster/snapshot")
	if err != nil {
		t.Fatal(err)
	}
	fig.BackupBytes, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("backup: %v %d", err, resp.StatusCode)
	}
	fig.BackupSeconds = time.Since(backupStart).Seconds()

	n3 := c.Nodes[2]
	if err := n3.Stop(syscall.SIGTERM, time.Minute); err != nil {
		t.Fatal(err)
	}
	restart := time.Now()
	if err := n3.Start(bin); err != nil {
		t.Fatal(err)
	}
	if err := nemesis.Poll(ctx, 10*time.Minute, func() error { return n3.Ready(ctx) }); err != nil {
		t.Fatal(err)
	}
	fig.RestartSeconds = time.Since(restart).Seconds()

	if err := n3.Stop(syscall.SIGTERM, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(n3.DataDir); err != nil {
		t.Fatal(err)
	}
	install := time.Now()
	if err := n3.Start(bin); err != nil {
		t.Fatal(err)
	}
	if err := nemesis.Poll(ctx, 10*time.Minute, func() error { return n3.Ready(ctx) }); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitConverged(ctx, 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	fig.InstallSeconds = time.Since(install).Seconds()

	out, _ := json.MarshalIndent(fig, "", "  ")
	t.Logf("figures:\n%s", out)
	if *flagScaleOut != "" {
		if err := os.WriteFile(*flagScaleOut, append(out, '\n'), 0o644); err != nil {
			t.Error(err)
		}
	}
	if fig.FilledShare < 0.9 {
		t.Errorf("create throughput with %d conversations is %.0f%% of the empty cluster's (target: at least 90%%)",
			fig.Conversations, 100*fig.FilledShare)
	}
}

func clusterTargets(c *nemesis.Cluster) []string {
	var targets []string
	for _, n := range c.Nodes {
		targets = append(targets, n.URL())
	}
	return targets
}

// median is the middle of xs (the mean of the two middle ones when even).
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return math.NaN()
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
