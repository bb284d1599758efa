package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/omnirouter/omnirouter/api"
	"github.com/omnirouter/omnirouter/cluster"
	"github.com/omnirouter/omnirouter/internal/testutil"
)

// startNode runs a real single-node cluster (raft on bbolt files in a temp
// dir) behind the real HTTP API, and stops both when the test ends.
func startNode(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	raftAddr, err := testutil.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	node, err := cluster.Open(cluster.Config{NodeID: "n1", DataDir: t.TempDir(), RaftAddr: raftAddr, HTTPAddr: base, BootstrapExpect: 1})
	if err != nil {
		t.Fatal(err)
	}
	srv := api.New(api.Config{Cluster: node, Internal: node.Handler()})
	hs := httptest.NewUnstartedServer(srv.Handler())
	hs.Listener.Close()
	hs.Listener = ln
	hs.Start()
	t.Cleanup(func() {
		srv.CloseStreams()
		hs.Close()
		if err := node.Shutdown(); err != nil {
			t.Error(err)
		}
	})
	testutil.Until(t, 10*time.Second, "the node ready", node.Ready)
	return base
}

func TestWorkloadsVerifyTheirWork(t *testing.T) {
	target := startNode(t)
	for _, workload := range []string{WorkloadCreate, WorkloadLifecycle, WorkloadMixed} {
		t.Run(workload, func(t *testing.T) {
			var progress bytes.Buffer
			rep, err := Run(context.Background(), Config{Targets: []string{strings.TrimPrefix(target, "http://")},
				Duration: 1500 * time.Millisecond, Concurrency: 4, Agents: 10, Workload: workload, Progress: &progress, RunID: "t" + workload})
			if err != nil {
				var buf bytes.Buffer
				if rep != nil {
					rep.WriteSummary(&buf)
				}
				t.Fatalf("%v\n%s", err, buf.String())
			}
			var summary bytes.Buffer
			rep.WriteSummary(&summary)
			t.Logf("\n%s", summary.String())
			if rep.Ops["create"].Count == 0 {
				t.Fatal("no conversation created")
			}
			if workload == WorkloadLifecycle && rep.Completed == 0 {
				t.Fatal("no lifecycle completed")
			}
			for kind, op := range rep.Ops {
				if len(op.Errors) > 0 {
					t.Errorf("%s: errors %v", kind, op.Errors)
				}
			}
			if rep.Verify == nil || rep.Verify.Checked != rep.Ops["create"].Count || rep.Verify.Invariants != "ok" {
				t.Fatalf("verify %+v", rep.Verify)
			}
			if rep.OpenLoop != nil {
				t.Errorf("a closed-loop run reports an open loop: %+v", rep.OpenLoop)
			}
			// The node is this test process: its CPU over the run is real.
			if res := rep.Resources; res == nil || len(res.Nodes) != 1 || res.Nodes[0].Error != "" ||
				res.NodeCPUMicrosPerOp <= 0 || res.ToolCPUMicrosPerOp <= 0 || res.Nodes[0].RSSBytes <= 0 {
				t.Fatalf("resources %+v", res)
			}
			if !strings.Contains(summary.String(), "CPU per operation: nodes") {
				t.Errorf("no CPU line in the summary")
			}
			if !strings.Contains(progress.String(), "ops/s") {
				t.Errorf("no progress line: %q", progress.String())
			}
			var js bytes.Buffer
			if err := rep.WriteJSON(&js); err != nil {
				t.Fatal(err)
			}
			var back Report
			if err := json.Unmarshal(js.Bytes(), &back); err != nil || back.Ops["create"].Count != rep.Ops["create"].Count {
				t.Fatalf("JSON report does not round-trip: %v", err)
			}
		})
	}
}

// An open-loop run starts arrivals on the pacer's schedule, times each
// first request from when it was due, and reports how the schedule went.
func TestOpenLoopRun(t *testing.T) {
	target := startNode(t)
	for _, workload := range []string{WorkloadLifecycle, WorkloadCreate} {
		t.Run(workload, func(t *testing.T) {
			rep, err := Run(context.Background(), Config{Targets: []string{target}, Duration: 1500 * time.Millisecond,
				Concurrency: 16, Agents: 10, Workload: workload, RunID: "o" + workload, Rate: 40})
			var summary bytes.Buffer
			if rep != nil {
				rep.WriteSummary(&summary)
			}
			if err != nil {
				t.Fatalf("%v\n%s", err, summary.String())
			}
			t.Logf("\n%s", summary.String())
			o := rep.OpenLoop
			if o == nil || o.Rate != 40 || o.Scheduled != 60 {
				t.Fatalf("open loop %+v, want 60 arrivals scheduled at 40/s", o)
			}
			// 40 arrivals/s is far below what one node does, even under the
			// race detector, with 16 clients: each arrival was taken as it
			// fell due (but those in flight at the end are cut off).
			creates := rep.Ops["create"].Count
			if o.Started > o.Scheduled || o.Started < o.Scheduled-1 || creates > o.Started || creates < o.Started-16 {
				t.Fatalf("%d of %d arrivals started, %d conversations created", o.Started, o.Scheduled, creates)
			}
			if rep.Verify == nil || rep.Verify.Checked != creates || rep.Verify.Invariants != "ok" {
				t.Fatalf("verify %+v", rep.Verify)
			}
			if !strings.Contains(summary.String(), "open loop at 40/s: ") {
				t.Errorf("no open-loop line in the summary")
			}
		})
	}
}

func TestRunRefusesABadRate(t *testing.T) {
	for _, rate := range []float64{-1, math.NaN(), math.Inf(1)} {
		_, err := Run(context.Background(), Config{Targets: []string{"127.0.0.1:1"}, Duration: time.Second,
			Concurrency: 1, Agents: 1, Workload: WorkloadCreate, Rate: rate})
		if err == nil || !strings.Contains(err.Error(), "rate") {
			t.Errorf("rate %v: err %v, want a refusal naming the rate", rate, err)
		}
	}
}

// TestVerifyKnowsPrunedConversations: with retention.ended at 0s every
// conversation the run ended is gone at once; verification counts them as
// pruned, not missing, and still finds the others. The memory samples
// cover the run.
func TestVerifyKnowsPrunedConversations(t *testing.T) {
	target := startNode(t)
	req, _ := http.NewRequest("PUT", target+"/v1/policy", strings.NewReader(`{"retention":{"ended":"0s"}}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("policy: %v %v", err, resp)
	}
	resp.Body.Close()
	rep, err := Run(context.Background(), Config{Targets: []string{target}, Duration: 1500 * time.Millisecond,
		Concurrency: 4, Agents: 10, Workload: WorkloadLifecycle, RunID: "pruned", SampleEvery: 200 * time.Millisecond})
	if err != nil {
		t.Fatalf("run: %v (%+v)", err, rep.Verify)
	}
	// Pruned may include ends sent at the run's close whose answers never came (one per client at most).
	if rep.Verify.Pruned == 0 || rep.Verify.Pruned > rep.Completed+4 || len(rep.Verify.Missing) != 0 {
		t.Fatalf("verify %+v, %d completed", rep.Verify, rep.Completed)
	}
	if m := rep.Memory; m == nil || len(m.Seconds) < 5 || len(m.Nodes) != 1 || len(m.Nodes[0].HeapLive) != len(m.Seconds) || m.Nodes[0].HeapLive[0] <= 0 {
		t.Fatalf("memory samples %+v", rep.Memory)
	}
	var svg bytes.Buffer
	if err := rep.Memory.WriteSVG(&svg, "test"); err != nil || !bytes.Contains(svg.Bytes(), []byte("<polyline")) {
		t.Fatalf("svg: %v %.200s", err, svg.String())
	}
}

// The tool must fail loudly when the cluster lost something it
// acknowledged: a server that forgets conversations makes Run fail.
func TestVerifyCatchesLostConversations(t *testing.T) {
	forgetful := http.NewServeMux()
	forgetful.HandleFunc("PUT /v1/agents/{id}", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{}`)) })
	forgetful.HandleFunc("PUT /v1/agents/{id}/status", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{}`)) })
	forgetful.HandleFunc("POST /v1/conversations", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
		w.Write([]byte(`{"state":"queued"}`))
	})
	forgetful.HandleFunc("GET /v1/conversations/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte(`{"error":{"code":"conversation_not_found","message":"gone"}}`))
	})
	forgetful.HandleFunc("GET /v1/debug/invariants", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"ok":true}`)) })
	forgetful.HandleFunc("GET /v1/policy", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"retention":{"ended":"24h"}}`)) })
	srv := httptest.NewServer(forgetful)
	defer srv.Close()
	rep, err := Run(context.Background(), Config{Targets: []string{srv.URL}, Duration: 200 * time.Millisecond,
		Concurrency: 2, Agents: 2, Workload: WorkloadCreate})
	if err == nil || rep == nil || len(rep.Verify.Missing) == 0 {
		t.Fatalf("lost conversations not reported: err %v", err)
	}

	// The same over https with a private CA: a target without a scheme
	// defaults to https when a TLS configuration is given.
	tlsSrv := httptest.NewTLSServer(forgetful)
	defer tlsSrv.Close()
	rep, err = Run(context.Background(), Config{Targets: []string{strings.TrimPrefix(tlsSrv.URL, "https://")},
		Duration: 200 * time.Millisecond, Concurrency: 2, Agents: 2, Workload: WorkloadCreate,
		TLS: tlsSrv.Client().Transport.(*http.Transport).TLSClientConfig})
	if err == nil || rep == nil || rep.Ops["create"].Count == 0 || len(rep.Verify.Missing) == 0 {
		t.Fatalf("over https: err %v, report %+v", err, rep)
	}
}
