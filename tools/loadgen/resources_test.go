package loadgen

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

const metricsText = `# HELP go_gc_duration_seconds A summary of the wall-time pause (stop-the-world) duration in garbage collection cycles.
# TYPE go_gc_duration_seconds summary
go_gc_duration_seconds{quantile="0"} 7.3368e-05
go_gc_duration_seconds_sum 0.00741985
go_gc_duration_seconds_count 7
go_memstats_heap_alloc_bytes 4.13371208e+08
omnirouter_http_requests_total{code="200",route="/v1/conversations"} 12
process_cpu_seconds_total 12.5
process_resident_memory_bytes 1.0140848e+09
`

func TestParseMetrics(t *testing.T) {
	got, err := parseMetrics(strings.NewReader(metricsText), sampledMetrics)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{metricCPU: 12.5, metricRSS: 1.0140848e+09, metricHeap: 4.13371208e+08, metricGCCount: 7, metricGCPauses: 0.00741985}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("read %v, want only %v", got, want)
	}
	if _, err := parseMetrics(strings.NewReader(strings.ReplaceAll(metricsText, "process_cpu_seconds_total 12.5\n", "")), sampledMetrics); err == nil || !strings.Contains(err.Error(), metricCPU) {
		t.Errorf("a missing series: %v", err)
	}
	if _, err := parseMetrics(strings.NewReader(metricsText+"process_cpu_seconds_total lots\n"), sampledMetrics); err == nil {
		t.Error("a value that is not a number was accepted")
	}
}

func TestResources(t *testing.T) {
	node := func(cpu, gcs float64) map[string]float64 {
		return map[string]float64{metricCPU: cpu, metricGCCount: gcs, metricGCPauses: gcs / 1000, metricRSS: 1 << 30, metricHeap: 1 << 29}
	}
	t0 := time.Unix(1000, 0)
	before := sample{at: t0, ops: 500, tool: time.Second,
		nodes: []map[string]float64{node(10, 2), node(20, 3)}, errs: make([]error, 2)}
	after := sample{at: t0.Add(10 * time.Second), ops: 100_500, tool: 3 * time.Second,
		nodes: []map[string]float64{node(16, 4), node(24, 3)}, errs: make([]error, 2)}
	targets := []string{"http://a", "http://b"}
	res := resources(targets, before, after)
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
	if res.Ops != 100_000 || !near(res.NodeCPUMicrosPerOp, 100) || !near(res.ToolCPUMicrosPerOp, 20) || !near(res.ToolCPUSeconds, 2) {
		t.Fatalf("%+v: want 100,000 ops, nodes 100 µs and tool 20 µs per op", res)
	}
	a := res.Nodes[0]
	if !near(a.CPUSeconds, 6) || !near(a.CoreShare, 0.6) || a.GCCycles != 2 || !near(a.GCPauseSeconds, 0.002) || a.RSSBytes != 1<<30 {
		t.Fatalf("node a: %+v", a)
	}
	var sb strings.Builder
	res.writeSummary(&sb)
	if !strings.Contains(sb.String(), "nodes 100.0 µs, tool 20.0 µs") || !strings.Contains(sb.String(), "http://a: 60% of a core, 2 GC cycles") {
		t.Errorf("summary:\n%s", sb.String())
	}

	// A node that could not be read, or restarted, leaves the nodes' sum out.
	after.errs[1] = errors.New("connection refused")
	if res := resources(targets, before, after); res.NodeCPUMicrosPerOp != 0 || res.Nodes[1].Error != "connection refused" || res.Nodes[0].CPUSeconds != 6 {
		t.Fatalf("unreadable node: %+v", res)
	}
	after.errs[1] = nil
	after.nodes[1] = node(1, 0)
	if res := resources(targets, before, after); res.NodeCPUMicrosPerOp != 0 || !strings.Contains(res.Nodes[1].Error, "restarted") {
		t.Fatalf("restarted node: %+v", res)
	}
}
