package main

import (
	"bytes"
	"encoding/json"
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

// startNode runs a real single node behind the real API in this process.
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
	node, err := cluster.Open(cluster.Config{NodeID: "n1", DataDir: t.TempDir(), RaftAddr: raftAddr, HTTPAddr: base})
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
		node.Shutdown()
	})
	testutil.Until(t, 10*time.Second, "the node ready", node.Ready)
	return base
}

func runOK(t *testing.T, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if code := run(args, &out, &errb); code != 0 {
		t.Fatalf("omnirouter %s: exit %d: %s", strings.Join(args, " "), code, errb.String())
	}
	return out.String()
}

func put(t *testing.T, url, body string) {
	t.Helper()
	req, _ := http.NewRequest("PUT", url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("PUT %s: %v %v", url, err, resp)
	}
	resp.Body.Close()
}

// TestControlCommands: stats, conversations and transfer against a real
// node, as tables and as JSON.
func TestControlCommands(t *testing.T) {
	base := startNode(t)
	t.Setenv("OMNIROUTER_ADDR", base)
	put(t, base+"/v1/agents/a1", `{"name":"Ana","capacity":{"chat":1}}`)
	put(t, base+"/v1/agents/a1/status", `{"status":"online"}`)
	put(t, base+"/v1/agents/a2", `{"name":"Bo","capacity":{"chat":1}}`)
	put(t, base+"/v1/agents/a2/status", `{"status":"transfers_only"}`)
	req, _ := http.NewRequest("POST", base+"/v1/conversations", strings.NewReader(`{"id":"c1","channel":"chat","message":"hi"}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 201 {
		t.Fatalf("create: %v %v", err, resp)
	}
	resp.Body.Close()

	if out := runOK(t, "stats"); !strings.Contains(out, "CHANNEL") || !strings.Contains(out, "chat") || !strings.Contains(out, "5m") {
		t.Fatalf("stats table:\n%s", out)
	}
	var st api.StatsView
	if err := json.Unmarshal([]byte(runOK(t, "stats", "-o", "json")), &st); err != nil || len(st.Channels) == 0 {
		t.Fatalf("stats json: %v %+v", err, st)
	}
	if out := runOK(t, "conversations", "state=offered"); !strings.Contains(out, "c1") || !strings.Contains(out, "a1") {
		t.Fatalf("conversations:\n%s", out)
	}
	runOK(t, "conversations", "--help")
	var out, errb bytes.Buffer
	if code := run([]string{"conversations", "colour=red"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "unknown filter") {
		t.Fatalf("bad filter: exit %d %s", code, errb.String())
	}
	put := func(path, body string) {
		req, _ := http.NewRequest("POST", base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("POST %s: %v %v", path, err, resp)
		}
		resp.Body.Close()
	}
	put("/v1/conversations/c1/accept", `{"agent_id":"a1"}`)
	if out := runOK(t, "transfer", "c1", "a1", "agent:a2", "a", "VIP", "customer"); !strings.Contains(out, "transferred") {
		t.Fatalf("transfer: %s", out)
	}
	if out := runOK(t, "conversation", "c1"); !strings.Contains(out, "a VIP customer") || !strings.Contains(out, "offered") {
		t.Fatalf("after the transfer:\n%s", out)
	}
	if code := run([]string{"transfer", "c1", "a2", "desk:7"}, &out, &errb); code != 1 {
		t.Fatalf("bad target: exit %d", code)
	}
}
