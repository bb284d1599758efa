package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/omnirouter/omnirouter/internal/testutil"
)

// These tests run the real binary: `go build` into a temporary directory,
// then `omnirouter serve` processes on free 127.0.0.1 ports.

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// testVersion is the version linked into the binary the tests run.
const testVersion = "v0.0.0-processtest"

func binary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "omnirouter-bin-")
		if buildErr != nil {
			return
		}
		out, err := exec.Command("go", "build", "-ldflags", "-X github.com/omnirouter/omnirouter/internal/buildinfo.version="+testVersion,
			"-o", filepath.Join(buildDir, "omnirouter"), ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(buildDir, "omnirouter")
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

func freePort(t *testing.T) string {
	t.Helper()
	addr, err := testutil.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

type proc struct {
	id, httpAddr string
	raftAddr     string
	scheme       string // "http" when empty
	cmd          *exec.Cmd
	log          *bytes.Buffer
	exited       chan struct{}
	bin          string
	args         []string
}

func (p *proc) url() string {
	if p.scheme != "" {
		return p.scheme + "://" + p.httpAddr
	}
	return "http://" + p.httpAddr
}

func startProc(t *testing.T, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{log: &bytes.Buffer{}, exited: make(chan struct{}), bin: bin, args: args}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = &syncWriter{w: p.log}, &syncWriter{w: p.log}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("--- log of %s:\n%s", p.id, p.logText())
		}
	})
	return p
}

func (p *proc) kill() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

func (p *proc) logText() string {
	w := p.cmd.Stderr.(*syncWriter)
	w.mu.Lock()
	defer w.mu.Unlock()
	return p.log.String()
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}

var httpc = &http.Client{Timeout: 5 * time.Second}

func request(method, url string, body any) (int, map[string]any, error) {
	return requestAs("", method, url, body)
}

func requestAs(token, method, url string, body any) (int, map[string]any, error) {
	return requestWith(httpc, token, method, url, body)
}

func requestWith(hc *http.Client, token, method, url string, body any) (int, map[string]any, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var m map[string]any
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &m)
	return resp.StatusCode, m, nil
}

// startThree runs a three-node cluster and waits until every node is ready.
func startThree(t *testing.T, extra ...string) []*proc {
	return startThreeWith(t, "http", httpc, func(int) []string { return extra })
}

// startThreeWith runs a three-node cluster whose nodes are reached at
// scheme://addr with hc; extra gives node i's additional flags.
func startThreeWith(t *testing.T, scheme string, hc *http.Client, extra func(i int) []string) []*proc {
	bin := binary(t)
	dir := t.TempDir()
	var https, rafts, joins []string
	for range 3 {
		h := freePort(t)
		https, rafts = append(https, h), append(rafts, freePort(t))
		joins = append(joins, scheme+"://"+h)
	}
	procs := make([]*proc, 3)
	for i := range procs {
		id := fmt.Sprintf("n%d", i+1)
		args := []string{"serve", "--node-id", id, "--http-addr", https[i], "--raft-addr", rafts[i],
			"--data-dir", filepath.Join(dir, id), "--bootstrap-expect", "3", "--join", strings.Join(joins, ","),
			"--log-level", "warn"}
		procs[i] = startProc(t, bin, append(args, extra(i)...)...)
		procs[i].id, procs[i].httpAddr, procs[i].scheme, procs[i].raftAddr = id, https[i], scheme, rafts[i]
	}
	for _, p := range procs {
		testutil.Until(t, 60*time.Second, p.id+" ready", func() error {
			select {
			case <-p.exited:
				t.Fatalf("%s exited:\n%s", p.id, p.logText())
			default:
			}
			code, m, err := requestWith(hc, "", "GET", p.url()+"/readyz", nil)
			if err != nil || code != 200 {
				return fmt.Errorf("%d %v %v", code, m, err)
			}
			return nil
		})
	}
	return procs
}

func leaderOf(t *testing.T, procs []*proc, token ...string) *proc {
	t.Helper()
	tok := ""
	if len(token) > 0 {
		tok = token[0]
	}
	var leader *proc
	testutil.Until(t, 30*time.Second, "a leader", func() error {
		for _, p := range procs {
			code, m, err := requestAs(tok, "GET", p.url()+"/v1/cluster", nil)
			if err != nil || code != 200 {
				continue
			}
			for _, q := range procs {
				if q.id == m["leader"] {
					leader = q
					return nil
				}
			}
		}
		return fmt.Errorf("no node names a leader")
	})
	return leader
}

// TestProcessLeaderKilled kills the leader with SIGKILL: a new leader must
// serve writes and every acknowledged conversation must still be there.
func TestProcessLeaderKilled(t *testing.T) {
	procs := startThree(t)
	leader := leaderOf(t, procs)

	var acked []string
	for i := range 20 {
		p := procs[i%3]
		id := fmt.Sprintf("c%02d", i)
		code, m, err := request("POST", p.url()+"/v1/conversations", map[string]any{"id": id, "channel": "chat", "message": "hi"})
		if err != nil || code != 201 {
			t.Fatalf("create %s on %s: %d %v %v", id, p.id, code, m, err)
		}
		acked = append(acked, id)
	}

	leader.kill()
	var survivors []*proc
	for _, p := range procs {
		if p != leader {
			survivors = append(survivors, p)
		}
	}
	newLeader := leaderOf(t, survivors)
	if newLeader == leader {
		t.Fatal("the killed node is still the leader")
	}
	// A write through each survivor succeeds once the new leader is elected.
	for i, p := range survivors {
		id := fmt.Sprintf("after%d", i)
		testutil.Until(t, 30*time.Second, "write after failover", func() error {
			code, m, err := request("POST", p.url()+"/v1/conversations", map[string]any{"id": id, "channel": "messaging", "message": "x"})
			if err != nil || (code != 201 && code != 409) { // 409: an earlier ambiguous try did commit
				return fmt.Errorf("%d %v %v", code, m, err)
			}
			return nil
		})
		acked = append(acked, id)
	}
	for _, p := range survivors {
		for _, id := range acked {
			code, m, err := request("GET", p.url()+"/v1/conversations/"+id, nil)
			if err != nil || code != 200 || m["id"] != id {
				t.Fatalf("acknowledged %s missing on %s: %d %v %v", id, p.id, code, m, err)
			}
		}
	}
	code, m, err := request("GET", survivors[0].url()+"/v1/cluster", nil)
	if err != nil || code != 200 || m["leader"] != newLeader.id {
		t.Fatalf("cluster after failover: %d %v %v", code, m, err)
	}
}

// TestProcessCleanShutdown stops a single node with SIGTERM: it exits 0.
func TestProcessCleanShutdown(t *testing.T) {
	bin := binary(t)
	addr := freePort(t)
	p := startProc(t, bin, "serve", "--node-id", "solo", "--http-addr", addr, "--raft-addr", freePort(t),
		"--data-dir", filepath.Join(t.TempDir(), "data"))
	p.id, p.httpAddr = "solo", addr
	testutil.Until(t, 30*time.Second, "ready", func() error {
		code, _, err := request("GET", p.url()+"/readyz", nil)
		if err != nil || code != 200 {
			return fmt.Errorf("%d %v", code, err)
		}
		return nil
	})
	if !strings.Contains(p.logText(), "authentication is OFF") {
		t.Fatalf("no warning that auth is off:\n%s", p.logText())
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit code %d:\n%s", code, p.logText())
	}
}

// TestProcessAuthCluster runs three nodes sharing an auth file: followers
// forward writes with the derived cluster secret, and users need tokens.
func TestProcessAuthCluster(t *testing.T) {
	authFile := filepath.Join(t.TempDir(), "auth.json")
	if err := os.WriteFile(authFile, []byte(`{"tokens":[
		{"token":"op-secret-token","role":"operator","name":"ops"},
		{"token":"router-secret-token","role":"router","name":"engine"},
		{"token":"a1-secret-token","role":"agent","agent_id":"a1"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	procs := startThree(t, "--auth-file", authFile)
	leader := leaderOf(t, procs, "router-secret-token")
	var follower *proc
	for _, p := range procs {
		if p != leader {
			follower = p
		}
	}
	if code, _, _ := request("GET", follower.url()+"/v1/agents", nil); code != 401 {
		t.Fatalf("no token: %d", code)
	}
	if code, _, _ := request("POST", follower.url()+"/internal/cluster/propose", "x"); code != 401 {
		t.Fatalf("internal endpoint without the cluster secret: %d", code)
	}
	if code := upgradeStatus(t, leader.url()+"/internal/cluster/proposestream"); code != 401 {
		t.Fatalf("forward stream without the cluster secret: %d", code)
	}
	if code, m, err := requestAs("op-secret-token", "PUT", follower.url()+"/v1/agents/a1", map[string]any{"name": "Ana", "capacity": map[string]int{"chat": 1}}); code != 200 {
		t.Fatalf("operator write through a follower: %d %v %v", code, m, err)
	}
	if code, m, err := requestAs("router-secret-token", "POST", follower.url()+"/v1/conversations", map[string]any{"id": "c1", "channel": "chat"}); code != 201 {
		t.Fatalf("router create through a follower: %d %v %v", code, m, err)
	}
	if code, _, _ := requestAs("a1-secret-token", "PUT", follower.url()+"/v1/agents/a2/status", map[string]string{"status": "online"}); code != 403 {
		t.Fatalf("agent token for another agent: %d", code)
	}
	if code, m, _ := requestAs("a1-secret-token", "PUT", follower.url()+"/v1/agents/a1/status", map[string]string{"status": "online"}); code != 200 {
		t.Fatalf("agent token for itself: %d %v", code, m)
	}
	// The follower's writes went on a forward stream (it presented the
	// secret when it opened it).
	resp, err := httpc.Get(follower.url() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), "\nomnirouter_forward_streams_open 1\n") {
		t.Fatalf("follower metrics (%d): no open forward stream", resp.StatusCode)
	}
}

// upgradeStatus asks url for a forward stream without the cluster secret
// and returns the answer's status.
func upgradeStatus(t *testing.T, url string) int {
	t.Helper()
	req, _ := http.NewRequest("POST", url, nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "omnirouter-forward/1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestProcessMemoryLimit: the memory limit given in the environment
// reaches the running node's Go runtime (its /metrics show it).
func TestProcessMemoryLimit(t *testing.T) {
	if _, ok := os.LookupEnv("GOMEMLIMIT"); ok {
		t.Skip("GOMEMLIMIT is set, and wins over the flag")
	}
	bin := binary(t)
	addr := freePort(t)
	t.Setenv("OMNIROUTER_MEMORY_LIMIT", "768MiB") // inherited by the node
	p := startProc(t, bin, "serve", "--node-id", "solo", "--http-addr", addr, "--raft-addr", freePort(t),
		"--data-dir", filepath.Join(t.TempDir(), "data"))
	p.id, p.httpAddr = "solo", addr
	testutil.Until(t, 30*time.Second, "the limit in /metrics", func() error {
		resp, err := httpc.Get(p.url() + "/metrics")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "go_gc_gomemlimit_bytes "); ok {
				if got, err := strconv.ParseFloat(v, 64); err != nil || got != 768<<20 {
					return fmt.Errorf("go_gc_gomemlimit_bytes %q, want %d", v, 768<<20)
				}
				return nil
			}
		}
		return errors.New("no go_gc_gomemlimit_bytes in /metrics")
	})
}
