package loadgen

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Resources is what the run cost: each node's CPU, collections and memory
// from its /metrics, and the tool's own CPU, over the load phase (setup and
// verification excluded). CPU per operation is the figure that carries
// from one run to the next on a noisy machine, where throughput does not.
type Resources struct {
	Nodes []NodeResources `json:"nodes"`
	// NodeCPUMicrosPerOp is the nodes' CPU summed, per operation of the
	// load phase; 0 when a node could not be read.
	NodeCPUMicrosPerOp float64 `json:"node_cpu_us_per_op,omitempty"`
	ToolCPUSeconds     float64 `json:"tool_cpu_seconds"`
	ToolCPUMicrosPerOp float64 `json:"tool_cpu_us_per_op"`
	Ops                int     `json:"ops"`
}

// NodeResources is one node's share: differences over the load phase,
// except the memory figures, which are taken at its end.
type NodeResources struct {
	Target         string  `json:"target"`
	CPUSeconds     float64 `json:"cpu_seconds"`
	CoreShare      float64 `json:"core_share"` // CPU seconds per second of the phase
	GCCycles       int     `json:"gc_cycles"`
	GCPauseSeconds float64 `json:"gc_pause_seconds"`
	RSSBytes       float64 `json:"rss_bytes"`
	HeapAllocBytes float64 `json:"heap_alloc_bytes"`
	Error          string  `json:"error,omitempty"`
}

// The /metrics series a sample reads (Go's and the process collector's,
// which every node registers).
const (
	metricCPU      = "process_cpu_seconds_total"
	metricRSS      = "process_resident_memory_bytes"
	metricHeap     = "go_memstats_heap_alloc_bytes"
	metricGCCount  = "go_gc_duration_seconds_count"
	metricGCPauses = "go_gc_duration_seconds_sum"
)

var sampledMetrics = []string{metricCPU, metricRSS, metricHeap, metricGCCount, metricGCPauses}

// sample is one reading of every target and of the tool.
type sample struct {
	at    time.Time
	ops   int
	tool  time.Duration
	nodes []map[string]float64 // per target; nil when it could not be read
	errs  []error
}

// metricsReader reads nodes' /metrics over its own short-lived client: two
// readings per target per run do not belong on the load's connections.
type metricsReader struct {
	hc      *http.Client
	targets []string
	token   string
}

func newMetricsReader(targets []string, token string, tlsConfig *tls.Config) *metricsReader {
	tr := &http.Transport{TLSClientConfig: tlsConfig, DisableKeepAlives: true}
	return &metricsReader{hc: &http.Client{Transport: tr, Timeout: 5 * time.Second}, targets: targets, token: token}
}

func (m *metricsReader) sample(ctx context.Context, ops int) sample {
	s := sample{at: time.Now(), ops: ops, tool: processCPU(),
		nodes: make([]map[string]float64, len(m.targets)), errs: make([]error, len(m.targets))}
	var wg sync.WaitGroup
	for i, t := range m.targets {
		wg.Go(func() { s.nodes[i], s.errs[i] = m.read(ctx, t) })
	}
	wg.Wait()
	return s
}

func (m *metricsReader) read(ctx context.Context, target string) (map[string]float64, error) {
	return m.readNamed(ctx, target, sampledMetrics)
}

// readNamed reads the named unlabelled series of one target.
func (m *metricsReader) readNamed(ctx context.Context, target string, names []string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", target+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	if m.token != "" {
		req.Header.Set("Authorization", "Bearer "+m.token)
	}
	resp, err := m.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	return parseMetrics(resp.Body, names)
}

// parseMetrics reads the named unlabelled series from the Prometheus text
// format; every one must be there.
func parseMetrics(r io.Reader, names []string) (map[string]float64, error) {
	want := make(map[string]bool, len(names))
	for _, n := range names {
		want[n] = true
	}
	got := make(map[string]float64, len(names))
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 || !want[f[0]] {
			continue // labelled series are written name{...}, and not wanted
		}
		v, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			return nil, fmt.Errorf("/metrics: %s: %w", f[0], err)
		}
		got[f[0]] = v
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	for _, n := range names {
		if _, ok := got[n]; !ok {
			return nil, fmt.Errorf("/metrics has no %s", n)
		}
	}
	return got, nil
}

// resources compares two samples taken around the load phase.
func resources(targets []string, before, after sample) *Resources {
	secs := after.at.Sub(before.at).Seconds()
	res := &Resources{Ops: after.ops - before.ops, ToolCPUSeconds: (after.tool - before.tool).Seconds()}
	perOp := func(cpuSeconds float64) float64 {
		if res.Ops <= 0 {
			return 0
		}
		return cpuSeconds * 1e6 / float64(res.Ops)
	}
	res.ToolCPUMicrosPerOp = perOp(res.ToolCPUSeconds)
	complete, nodeCPU := true, 0.0
	for i, t := range targets {
		n := NodeResources{Target: t}
		b, a := before.nodes[i], after.nodes[i]
		switch {
		case before.errs[i] != nil:
			n.Error, complete = before.errs[i].Error(), false
		case after.errs[i] != nil:
			n.Error, complete = after.errs[i].Error(), false
		case a[metricCPU] < b[metricCPU]:
			// The counter went back: the process restarted during the run.
			n.Error, complete = "the node restarted during the run", false
		default:
			n.CPUSeconds = a[metricCPU] - b[metricCPU]
			if secs > 0 {
				n.CoreShare = n.CPUSeconds / secs
			}
			n.GCCycles = int(a[metricGCCount] - b[metricGCCount])
			n.GCPauseSeconds = a[metricGCPauses] - b[metricGCPauses]
			n.RSSBytes, n.HeapAllocBytes = a[metricRSS], a[metricHeap]
			nodeCPU += n.CPUSeconds
		}
		res.Nodes = append(res.Nodes, n)
	}
	if complete {
		res.NodeCPUMicrosPerOp = perOp(nodeCPU)
	}
	return res
}

func (res *Resources) writeSummary(w io.Writer) {
	if res.NodeCPUMicrosPerOp > 0 {
		fmt.Fprintf(w, "CPU per operation: nodes %.1f µs, tool %.1f µs (%d operations)\n",
			res.NodeCPUMicrosPerOp, res.ToolCPUMicrosPerOp, res.Ops)
	} else {
		fmt.Fprintf(w, "CPU per operation: tool %.1f µs (%d operations); nodes not all read\n", res.ToolCPUMicrosPerOp, res.Ops)
	}
	for _, n := range res.Nodes {
		if n.Error != "" {
			fmt.Fprintf(w, "  %s: %s\n", n.Target, n.Error)
			continue
		}
		fmt.Fprintf(w, "  %s: %.0f%% of a core, %d GC cycles (%.1f ms paused), RSS %.0f MiB, heap %.0f MiB at the end\n",
			n.Target, 100*n.CoreShare, n.GCCycles, 1000*n.GCPauseSeconds, n.RSSBytes/(1<<20), n.HeapAllocBytes/(1<<20))
	}
}
