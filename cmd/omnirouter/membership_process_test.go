package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/omnirouter/omnirouter/internal/testutil"
)

// These tests run real `omnirouter serve` processes (process_test.go) and
// drive them through the public API and the CLI, as an operator would.

// restart starts a stopped node again with the command line it was started
// with.
func (p *proc) restart(t *testing.T) *proc {
	t.Helper()
	q := startProc(t, p.bin, p.args...)
	q.id, q.httpAddr, q.scheme, q.raftAddr = p.id, p.httpAddr, p.scheme, p.raftAddr
	return q
}

func waitReady(t *testing.T, p *proc) {
	t.Helper()
	testutil.Until(t, 60*time.Second, p.id+" ready", func() error {
		select {
		case <-p.exited:
			t.Fatalf("%s exited:\n%s", p.id, p.logText())
		default:
		}
		code, m, err := request("GET", p.url()+"/readyz", nil)
		if err != nil || code != 200 {
			return fmt.Errorf("%d %v %v", code, m, err)
		}
		return nil
	})
}

// clusterNodes is GET /v1/cluster's nodes by id, as p answers.
type nodeView struct {
	ID       string `json:"id"`
	Suffrage string `json:"suffrage"`
	CaughtUp bool   `json:"caught_up"`
	Voter    bool   `json:"voter"`
}

type clusterAnswer struct {
	ID     string     `json:"id"`
	State  string     `json:"state"`
	Leader string     `json:"leader"`
	Nodes  []nodeView `json:"nodes"`
}

func clusterOf(p *proc) (clusterAnswer, error) {
	var v clusterAnswer
	resp, err := httpc.Get(p.url() + "/v1/cluster")
	if err != nil {
		return v, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return v, fmt.Errorf("GET /v1/cluster: %d", resp.StatusCode)
	}
	return v, json.NewDecoder(resp.Body).Decode(&v)
}

func (c clusterAnswer) node(id string) (nodeView, bool) {
	for _, n := range c.Nodes {
		if n.ID == id {
			return n, true
		}
	}
	return nodeView{}, false
}

// lineWith is the number of the first line of log holding every one of
// parts, or -1.
func lineWith(log string, parts ...string) int {
	for i, line := range strings.Split(log, "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			return i
		}
	}
	return -1
}

func execOutput(bin string, args ...string) (string, error) {
	out, err := exec.Command(bin, args...).CombinedOutput()
	return string(out), err
}

// runCLI runs the binary's CLI and returns its exit status and output.
func runCLI(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	code := run(args, &out, &out)
	return code, out.String()
}

// writeThrough creates a conversation through p, retrying while the
// cluster elects a leader.
func writeThrough(t *testing.T, p *proc, id string) {
	t.Helper()
	testutil.Until(t, 30*time.Second, "a write through "+p.id, func() error {
		code, m, err := request("POST", p.url()+"/v1/conversations", map[string]any{"id": id, "channel": "messaging", "message": "x"})
		if err != nil || (code != 201 && code != 409) { // 409: an earlier ambiguous try did commit
			return fmt.Errorf("%d %v %v", code, m, err)
		}
		return nil
	})
}

// TestProcessGarbageJoinRefused: joins with addresses that do not parse or
// do not answer are refused and change nothing; a join whose raft address
// answers but is no raft node becomes a nonvoter that never catches up.
// After all of them the cluster survives the loss of any one node.
func TestProcessGarbageJoinRefused(t *testing.T) {
	procs := startThree(t)
	leader := leaderOf(t, procs)
	follower := procs[0]
	if follower == leader {
		follower = procs[1]
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"cluster", "join", "n4", "notanaddr", "alsonot"}, "422 invalid_address: raft_addr"},
		{[]string{"cluster", "join", "n4", "127.0.0.1:7004", "alsonot:x"}, "422 invalid_address: http_addr"},
		{[]string{"cluster", "join", "n 4", "127.0.0.1:7004", "http://127.0.0.1:8084"}, "422 invalid_id"},
		{[]string{"cluster", "join", "n4", freePort(t), "http://127.0.0.1:8084"}, "422 raft_unreachable"},
		// Another member's raft address under a new id.
		{[]string{"cluster", "join", "n4", leader.raftAddr, "http://" + freePort(t)}, "422 invalid_address"},
	} {
		code, out := runCLI(t, append(tc.args, "--addr", follower.url())...)
		if code != 1 || !strings.Contains(out, tc.want) {
			t.Errorf("%v: exit %d: %s", tc.args, code, out)
		}
	}
	// A TCP port that answers but is not raft (another node's HTTP port).
	if code, out := runCLI(t, "cluster", "join", "n4", leader.httpAddr, "http://"+freePort(t), "--addr", follower.url()); code != 0 || !strings.Contains(out, "nonvoter") {
		t.Fatalf("join at an answering port: exit %d: %s", code, out)
	}
	testutil.Until(t, 20*time.Second, "n4 a nonvoter, not caught up, the others voters", func() error {
		c, err := clusterOf(leader)
		if err != nil {
			return err
		}
		voters := 0
		for _, n := range c.Nodes {
			if n.Voter {
				voters++
			}
		}
		n4, ok := c.node("n4")
		if !ok || n4.Suffrage != "nonvoter" || n4.CaughtUp || voters != 3 {
			return fmt.Errorf("%+v", c.Nodes)
		}
		return nil
	})

	// Any one node may go: the other two still make a quorum.
	for i := range procs {
		procs[i].kill()
		writeThrough(t, procs[(i+1)%3], fmt.Sprintf("without-%s", procs[i].id))
		procs[i] = procs[i].restart(t)
		waitReady(t, procs[i])
	}
	if c, _ := clusterOf(leaderOf(t, procs)); func() bool { n4, _ := c.node("n4"); return n4.Voter }() {
		t.Fatalf("n4 was promoted: %+v", c.Nodes)
	}
	if code, out := runCLI(t, "cluster", "remove", "n4", "--yes", "--addr", procs[0].url()); code != 0 {
		t.Fatalf("remove n4: exit %d: %s", code, out)
	}
}

// TestProcessFourthNodeJoins: a fourth node started with --join joins as a
// nonvoter and becomes a voter once it has caught up; then the cluster
// needs three of four votes and keeps writing with one node gone.
func TestProcessFourthNodeJoins(t *testing.T) {
	procs := startThree(t, "--log-level", "info")
	leader := leaderOf(t, procs)
	for i := range 50 {
		writeThrough(t, procs[i%3], fmt.Sprintf("before-%02d", i))
	}
	var joins []string
	for _, p := range procs {
		joins = append(joins, p.url())
	}
	h, r := freePort(t), freePort(t)
	n4 := startProc(t, binary(t), "serve", "--node-id", "n4", "--http-addr", h, "--raft-addr", r,
		"--data-dir", filepath.Join(t.TempDir(), "n4"), "--join", strings.Join(joins, ","), "--log-level", "info")
	n4.id, n4.httpAddr, n4.raftAddr = "n4", h, r
	waitReady(t, n4)
	testutil.Until(t, 30*time.Second, "n4 a caught-up voter", func() error {
		for _, p := range procs {
			c, err := clusterOf(p)
			if err != nil {
				return err
			}
			if n, ok := c.node("n4"); !ok || n.Suffrage != "voter" || !n.CaughtUp {
				return fmt.Errorf("%s sees %+v", p.id, c.Nodes)
			}
		}
		return nil
	})
	// The leader added it as a nonvoter first, and promoted it once it had
	// caught up.
	logs := leader.logText()
	added := lineWith(logs, `msg="adding nonvoter; it becomes a voter once it has caught up"`, "id=n4")
	promoted := lineWith(logs, `msg="promoting nonvoter to voter: it has caught up"`, "id=n4")
	if added < 0 || promoted < added {
		t.Fatalf("no nonvoter-then-voter in the leader's log (lines %d, %d):\n%s", added, promoted, logs)
	}
	// n4 serves what was written before it joined.
	if code, m, err := request("GET", n4.url()+"/v1/conversations/before-00", nil); err != nil || code != 200 {
		t.Fatalf("n4 read: %d %v %v", code, m, err)
	}
	leader.kill()
	var rest []*proc
	for _, p := range append(procs, n4) {
		if p != leader {
			rest = append(rest, p)
		}
	}
	writeThrough(t, n4, "after-leader-lost")
	if l := leaderOf(t, rest); l == nil {
		t.Fatal("no leader among the other three")
	}
}

// TestProcessRemovedNode: a node removed with `cluster remove` says so in
// /v1/cluster and /readyz, answers writes with 503 node_removed (no
// Retry-After), serves stale reads, logs it once at ERROR; restarted on
// the same data directory it stays removed, until an operator joins it
// again.
func TestProcessRemovedNode(t *testing.T) {
	procs := startThree(t, "--log-level", "info")
	leader := leaderOf(t, procs)
	var gone *proc
	for _, p := range procs {
		if p != leader {
			gone = p
		}
	}
	writeThrough(t, leader, "c1")
	// An established member, as an operator sees it before removing it.
	testutil.Until(t, 20*time.Second, "c1 on "+gone.id+", every member caught up", func() error {
		code, _, err := request("GET", gone.url()+"/v1/conversations/c1?consistency=stale", nil)
		if err != nil || code != 200 {
			return fmt.Errorf("%d %v", code, err)
		}
		c, err := clusterOf(leader)
		if err != nil {
			return err
		}
		for _, n := range c.Nodes {
			if !n.CaughtUp {
				return fmt.Errorf("%+v", c.Nodes)
			}
		}
		return nil
	})
	if code, out := runCLI(t, "cluster", "remove", gone.id, "--yes", "--addr", leader.url()); code != 0 || out != "removed "+gone.id+" from the cluster\n" {
		t.Fatalf("remove: exit %d: %s", code, out)
	}
	checkRemoved(t, gone, true)
	if n := strings.Count(gone.logText(), "this node was removed from the cluster"); n != 1 {
		t.Errorf("the removal logged %d times:\n%s", n, gone.logText())
	}
	if !strings.Contains(gone.logText(), `level=ERROR msg="this node was removed from the cluster`) {
		t.Errorf("the removal is not logged at ERROR:\n%s", gone.logText())
	}

	gone.kill()
	gone = gone.restart(t)
	checkRemoved(t, gone, false)
	if c, _ := clusterOf(leader); len(c.Nodes) != 2 {
		t.Fatalf("the removed node rejoined by itself: %+v", c.Nodes)
	}

	if code, out := runCLI(t, "cluster", "join", gone.id, gone.raftAddr, gone.url(), "--addr", leader.url()); code != 0 {
		t.Fatalf("join again: exit %d: %s", code, out)
	}
	waitReady(t, gone)
	testutil.Until(t, 30*time.Second, gone.id+" a voter again", func() error {
		c, err := clusterOf(leader)
		if err != nil {
			return err
		}
		if n, ok := c.node(gone.id); !ok || !n.Voter || !n.CaughtUp {
			return fmt.Errorf("%+v", c.Nodes)
		}
		return nil
	})
	writeThrough(t, gone, "c2")
}

// checkRemoved waits until p reports removed and checks how it answers;
// withState: its stale reads still see c1.
func checkRemoved(t *testing.T, p *proc, withState bool) {
	t.Helper()
	testutil.Until(t, 30*time.Second, p.id+" reports removed", func() error {
		c, err := clusterOf(p)
		if err != nil {
			return err
		}
		if c.State != "removed" {
			return fmt.Errorf("state %q", c.State)
		}
		return nil
	})
	for _, r := range []struct{ method, path string }{
		{"GET", "/readyz"}, {"HEAD", "/readyz"}, {"POST", "/v1/conversations"}, {"GET", "/v1/conversations/c1"},
	} {
		var body io.Reader
		if r.method == "POST" {
			body = strings.NewReader(`{"channel":"chat"}`)
		}
		req, _ := http.NewRequest(r.method, p.url()+r.path, body)
		req.Header.Set("Content-Type", "application/json")
		resp, err := httpc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "" || (r.method != "HEAD" && !strings.Contains(string(b), `"node_removed"`)) {
			t.Errorf("%s %s on a removed node: %d %v %s", r.method, r.path, resp.StatusCode, resp.Header, b)
		}
	}
	code, _, err := request("GET", p.url()+"/v1/conversations/c1?consistency=stale", nil)
	if err != nil || (withState && code != 200) || (!withState && code != 200 && code != 404) {
		t.Errorf("stale read on a removed node: %d %v", code, err)
	}
}

// TestProcessVersion: the version linked into the binary is what
// `omnirouter version` prints, what /metrics labels omnirouter_build_info
// with and the served OpenAPI document's info.version.
func TestProcessVersion(t *testing.T) {
	bin := binary(t)
	for _, args := range [][]string{{"version"}, {"--version"}} {
		out, err := execOutput(bin, args...)
		if err != nil || !strings.HasPrefix(out, "omnirouter "+testVersion+"\n") || !strings.Contains(out, "go1.") {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	addr := freePort(t)
	p := startProc(t, bin, "serve", "--node-id", "solo", "--http-addr", addr, "--raft-addr", freePort(t),
		"--data-dir", filepath.Join(t.TempDir(), "data"))
	p.id, p.httpAddr = "solo", addr
	waitReady(t, p)
	resp, err := httpc.Get(p.url() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), `version="`+testVersion+`"} 1`) {
		t.Errorf("no omnirouter_build_info with version %s in /metrics", testVersion)
	}
	resp, err = httpc.Get(p.url() + "/v1/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Info struct{ Version string } `json:"info"`
	}
	err = json.NewDecoder(resp.Body).Decode(&doc)
	resp.Body.Close()
	if err != nil || doc.Info.Version != testVersion {
		t.Errorf("OpenAPI info.version %q (%v), want %s", doc.Info.Version, err, testVersion)
	}
	if !strings.Contains(p.logText(), "version="+testVersion) {
		t.Errorf("the start log does not name the version")
	}
}
