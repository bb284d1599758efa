package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPolicyPatch(t *testing.T) {
	b, err := policyPatch([]string{"routing.offer_timeout=45s", "routing.auto_accept=true", "chat.web.idle_after=5m"})
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	r := got["routing"].(map[string]any)
	if r["offer_timeout"] != "45s" || r["auto_accept"] != true || got["chat"].(map[string]any)["web"].(map[string]any)["idle_after"] != "5m" {
		t.Fatalf("patch: %s", b)
	}
	if b, err := policyPatch([]string{`{"routing":{"mode":"external"}}`}); err != nil || !strings.Contains(string(b), "external") {
		t.Fatalf("json patch: %s %v", b, err)
	}
	for _, bad := range [][]string{{"novalue"}, {"=x"}, {`{"broken"`}} {
		if _, err := policyPatch(bad); err == nil {
			t.Errorf("accepted %v", bad)
		}
	}
}

func TestFlagsFromEnvironment(t *testing.T) {
	if got := envName("max-message-bytes"); got != "OMNIROUTER_MAX_MESSAGE_BYTES" {
		t.Fatalf("envName: %s", got)
	}
	t.Setenv("OMNIROUTER_NODE_ID", "from-env")
	t.Setenv("OMNIROUTER_HTTP_ADDR", "127.0.0.1:9999")
	t.Setenv("OMNIROUTER_JOIN", "http://a:1,http://b:2")
	t.Setenv("OMNIROUTER_SNAPSHOT_INTERVAL", "1m")
	var cfg serveConfig
	fs := serveFlags(&cfg, io.Discard)
	if err := parseFlags(fs, []string{"--http-addr", "127.0.0.1:7777"}); err != nil {
		t.Fatal(err)
	}
	if cfg.NodeID != "from-env" || cfg.HTTPAddr != "127.0.0.1:7777" || len(cfg.Join) != 2 || cfg.SnapshotInterval != time.Minute {
		t.Fatalf("config: %+v", cfg)
	}
	if cfg.DataDir != "./data" || cfg.BootstrapExpect != 1 || cfg.RaftAddr != "127.0.0.1:7000" {
		t.Fatalf("defaults: %+v", cfg)
	}
	// Every serve flag has an environment variable named after it.
	fs.VisitAll(func(f *flag.Flag) {
		if !strings.HasPrefix(envName(f.Name), "OMNIROUTER_") {
			t.Errorf("flag %s", f.Name)
		}
	})
	t.Setenv("OMNIROUTER_BOOTSTRAP_EXPECT", "three")
	var cfg2 serveConfig
	if err := parseFlags(serveFlags(&cfg2, io.Discard), nil); err == nil {
		t.Fatal("a bad environment value was accepted")
	}
}

func TestServeRefusesPublicAddressWithoutAuth(t *testing.T) {
	var stderr bytes.Buffer
	err := serve([]string{"--http-addr", "0.0.0.0:0", "--data-dir", t.TempDir()}, io.Discard, &stderr)
	if err == nil || !strings.Contains(err.Error(), "--insecure") {
		t.Fatalf("serve on 0.0.0.0 without auth: %v", err)
	}
	stderr.Reset()
	err = serve([]string{"--pprof-addr", "0.0.0.0:0", "--data-dir", t.TempDir()}, io.Discard, &stderr)
	if err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("profiles on 0.0.0.0: %v", err)
	}
	if !isLoopback("127.0.0.1:80") || !isLoopback("[::1]:80") || !isLoopback("localhost:1") || isLoopback(":8080") || isLoopback("10.0.0.1:80") {
		t.Fatal("isLoopback")
	}
}

func TestClientCommands(t *testing.T) {
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		seen = append(seen, r.Method+" "+r.URL.Path+" "+r.Header.Get("Authorization")+" "+string(body))
		switch {
		case r.URL.Path == "/v1/cluster/snapshot":
			w.Write([]byte("BACKUP"))
		case r.URL.Path == "/v1/conversations/missing":
			w.WriteHeader(404)
			w.Write([]byte(`{"error":{"code":"conversation_not_found","message":"conversation \"missing\" not found"}}`))
		default:
			w.Write([]byte(`{"ok":true}`))
		}
	}))
	defer srv.Close()
	t.Setenv("OMNIROUTER_ADDR", srv.URL)
	t.Setenv("OMNIROUTER_TOKEN", "tok")
	dir := t.TempDir()
	backup := filepath.Join(dir, "b.bak")
	for _, args := range [][]string{
		{"status"}, {"agents"}, {"queue"}, {"conversation", "c1"},
		{"policy", "get"}, {"policy", "set", "routing.strategy=round_robin"},
		{"cluster", "join", "n4", "10.0.0.4:7000", "http://10.0.0.4:8080"}, {"cluster", "remove", "n4", "--yes"},
		{"snapshot", "save", backup}, {"snapshot", "restore", "--yes", backup},
	} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errb.String())
		}
	}
	if b, _ := os.ReadFile(backup); string(b) != "BACKUP" {
		t.Fatalf("backup file: %q", b)
	}
	want := []string{
		"GET /v1/cluster Bearer tok ", "GET /v1/agents Bearer tok ", "GET /v1/queue Bearer tok ",
		"GET /v1/conversations/c1 Bearer tok ", "GET /v1/policy Bearer tok ",
		`PUT /v1/policy Bearer tok {"routing":{"strategy":"round_robin"}}`,
		`POST /v1/cluster/join Bearer tok {"http_addr":"http://10.0.0.4:8080","id":"n4","raft_addr":"10.0.0.4:7000"}`,
		"DELETE /v1/cluster/nodes/n4 Bearer tok ", "GET /v1/cluster/snapshot Bearer tok ", "POST /v1/cluster/restore Bearer tok BACKUP",
	}
	if strings.Join(seen, "\n") != strings.Join(want, "\n") {
		t.Fatalf("requests:\n%s\nwant:\n%s", strings.Join(seen, "\n"), strings.Join(want, "\n"))
	}
	var out, errb bytes.Buffer
	if code := run([]string{"conversation", "missing"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "conversation_not_found") {
		t.Fatalf("error exit %d: %s", code, errb.String())
	}
	if code := run([]string{"cluster", "join", "n4"}, &out, &errb); code != 2 {
		t.Fatalf("bad usage exit %d", code)
	}
	if code := run([]string{"frobnicate"}, &out, &errb); code != 2 {
		t.Fatalf("unknown command exit %d", code)
	}
}

// TestSnapshotLogRatioFlag: the flag's 0 turns the size condition off, which
// cluster.Config spells as a negative ratio (its 0 means the default, 1).
func TestSnapshotLogRatioFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want float64
	}{{nil, 1}, {[]string{"--snapshot-log-ratio", "0"}, -1}, {[]string{"--snapshot-log-ratio", "2.5"}, 2.5}} {
		var cfg serveConfig
		if err := parseFlags(serveFlags(&cfg, io.Discard), tc.args); err != nil {
			t.Fatal(err)
		}
		if got := snapshotLogRatio(cfg.SnapshotLogRatio); got != tc.want {
			t.Errorf("%v: cluster ratio %v, want %v", tc.args, got, tc.want)
		}
	}
}
