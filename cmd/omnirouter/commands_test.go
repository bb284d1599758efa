package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/omnirouter/omnirouter/internal/buildinfo"
)

// fakeNode answers the API's paths with canned JSON and records requests.
type fakeNode struct {
	*httptest.Server
	mu   sync.Mutex
	seen []string
}

const (
	clusterJSON = `{"id":"n2","state":"follower","leader":"n1","leader_http":"http://127.0.0.1:8081","term":3,"commit_index":40,"applied_index":40,
	  "nodes":[{"id":"n1","raft_addr":"127.0.0.1:7001","http_addr":"http://127.0.0.1:8081","suffrage":"voter","caught_up":true,"voter":true,"leader":true},
	           {"id":"n4","raft_addr":"127.0.0.1:7004","http_addr":"http://127.0.0.1:8084","suffrage":"nonvoter","caught_up":false,"voter":false,"leader":false}]}`
	agentsJSON = `{"agents":[{"id":"a1","name":"Ana","status":"online","capacity":{"chat":2,"messaging":3,"email":10,"voice":1},"load":{"chat":1,"messaging":0,"email":4,"voice":0},"skills":["fr"],"groups":[],"conversations":["c1"]}]}`
	queueJSON  = `{"items":[{"id":"c2","channel":"chat","priority":1,"group":"vip","queued_at":"2026-01-01T10:00:00.000Z","position":1,"wait_seconds":12.4}]}`
	convJSON   = `{"id":"c1","channel":"chat","client":"web","state":"assigned","activity":"active","agent_id":"a1","priority":0,"group":"","missed":false,"ended_reason":"","queued_at":"2026-01-01T10:00:00.000Z","ended_at":null,"ticket":null,
	  "transcript":[{"author":"visitor","text":"Bonjour","at":"2026-01-01T10:00:00.000Z"}]}`
	policyJSON = `{"routing":{"offer_timeout":"30s","auto_accept":false},"chat":{"web":{"idle_after":"10m"}}}`
)

func newFakeNode(t *testing.T) *fakeNode {
	f := &fakeNode{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.seen = append(f.seen, strings.TrimSpace(r.Method+" "+r.URL.Path+" "+string(body)))
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/v1/cluster", "/v1/cluster/join", "/v1/cluster/nodes/n4", "/v1/cluster/restore":
			io.WriteString(w, clusterJSON)
		case "/v1/agents":
			io.WriteString(w, agentsJSON)
		case "/v1/queue":
			io.WriteString(w, queueJSON)
		case "/v1/conversations/c1":
			io.WriteString(w, convJSON)
		case "/v1/policy":
			io.WriteString(w, policyJSON)
		case "/v1/cluster/snapshot":
			io.WriteString(w, "BACKUP")
		default:
			w.WriteHeader(404)
			io.WriteString(w, `{"error":{"code":"not_found","message":"no"}}`)
		}
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeNode) requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.seen...)
}

func runOut(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// TestCLIGlobalFlagsAnywhere: the global flags work before the command,
// between its words and after its arguments; OMNIROUTER_ADDR is the
// default address, and a flag wins over it.
func TestCLIGlobalFlagsAnywhere(t *testing.T) {
	f := newFakeNode(t)
	t.Setenv("OMNIROUTER_ADDR", "http://127.0.0.1:1") // nothing listens there
	for _, args := range [][]string{
		{"--addr", f.URL, "status"},
		{"--addr=" + f.URL, "status"},
		{"status", "--addr", f.URL},
		{"-o", "json", "--addr", f.URL, "status"},
		{"--addr", f.URL, "conversation", "c1"},
		{"conversation", "--addr", f.URL, "c1"},
		{"conversation", "c1", "--addr", f.URL},
		{"policy", "--addr", f.URL, "get"},
		{"cluster", "--addr", f.URL, "join", "n4", "127.0.0.1:7004", "http://127.0.0.1:8084"},
		{"cluster", "remove", "--addr", f.URL, "n4", "--yes"},
	} {
		if code, _, errs := runOut(t, args...); code != 0 {
			t.Errorf("%v: exit %d: %s", args, code, errs)
		}
	}
	want := "GET /v1/conversations/c1"
	if n := strings.Count(strings.Join(f.requests(), "\n"), want); n != 3 {
		t.Errorf("%q seen %d times, want 3: %v", want, n, f.requests())
	}
	t.Setenv("OMNIROUTER_ADDR", f.URL)
	if code, out, errs := runOut(t, "agents"); code != 0 || !strings.Contains(out, "Ana") {
		t.Errorf("agents through OMNIROUTER_ADDR: %d %s %s", code, out, errs)
	}
	if code, _, _ := runOut(t, "--addr", "http://127.0.0.1:1", "agents"); code != 1 {
		t.Errorf("--addr did not win over OMNIROUTER_ADDR: exit %d", code)
	}
	if code, _, errs := runOut(t, "status", "-o", "yaml"); code != 2 || !strings.Contains(errs, "table or json") {
		t.Errorf("-o yaml: %d %s", code, errs)
	}
}

// TestCLIOutput: tables by default, the API's JSON with -o json.
func TestCLIOutput(t *testing.T) {
	f := newFakeNode(t)
	t.Setenv("OMNIROUTER_ADDR", f.URL)
	for _, tc := range []struct {
		args  []string
		table []string // fields of one line of the table, in order
		json  string   // the raw answer
	}{
		{[]string{"status"}, []string{"n4", "nonvoter", "no", "127.0.0.1:7004", "http://127.0.0.1:8084"}, clusterJSON},
		{[]string{"agents"}, []string{"a1", "Ana", "online", "1/2", "0/3", "4/10", "0/1", "fr", "-", "c1"}, agentsJSON},
		{[]string{"queue"}, []string{"1", "c2", "chat", "1", "vip", "12s", "2026-01-01T10:00:00.000Z"}, queueJSON},
		{[]string{"conversation", "c1"}, []string{"2026-01-01T10:00:00.000Z", "visitor:", "Bonjour"}, convJSON},
		{[]string{"policy", "get"}, []string{"routing.offer_timeout", "30s"}, policyJSON},
	} {
		code, out, errs := runOut(t, tc.args...)
		if code != 0 || !hasLine(out, tc.table) {
			t.Errorf("%v: exit %d, no line %v in:\n%s%s", tc.args, code, tc.table, out, errs)
		}
		if strings.HasPrefix(strings.TrimSpace(out), "{") {
			t.Errorf("%v: a table was asked for, JSON came:\n%s", tc.args, out)
		}
		code, out, _ = runOut(t, append(tc.args, "-o", "json")...)
		var got, want any
		if code != 0 || json.Unmarshal([]byte(out), &got) != nil || json.Unmarshal([]byte(tc.json), &want) != nil || !jsonEqual(got, want) {
			t.Errorf("%v -o json: exit %d:\n%s", tc.args, code, out)
		}
	}
	t.Setenv("OMNIROUTER_OUTPUT", "json")
	if _, out, _ := runOut(t, "agents"); !strings.HasPrefix(out, "{") {
		t.Errorf("OMNIROUTER_OUTPUT=json: %s", out)
	}
}

func hasLine(out string, fields []string) bool {
	for _, line := range strings.Split(out, "\n") {
		if strings.Join(strings.Fields(line), " ") == strings.Join(fields, " ") {
			return true
		}
	}
	return false
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

// TestCLIChangesPrintOneLine: a command that changes something prints one
// line saying what it did (and the API's answer with -o json).
func TestCLIChangesPrintOneLine(t *testing.T) {
	f := newFakeNode(t)
	t.Setenv("OMNIROUTER_ADDR", f.URL)
	backup := filepath.Join(t.TempDir(), "b.bak")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"policy", "set", "routing.offer_timeout=45s", "routing.auto_accept=true"}, "policy updated: routing.auto_accept=true routing.offer_timeout=45s"},
		{[]string{"cluster", "join", "n4", "127.0.0.1:7004", "http://127.0.0.1:8084"}, "n4 joined as a nonvoter at 127.0.0.1:7004; it becomes a voter once it has caught up (omnirouter status)"},
		{[]string{"cluster", "join", "n1", "127.0.0.1:7001", "http://127.0.0.1:8081"}, "n1 is a voter at 127.0.0.1:7001"},
		{[]string{"cluster", "remove", "n4", "--yes"}, "removed n4 from the cluster"},
		{[]string{"snapshot", "save", backup}, "saved 6 bytes to " + backup},
		{[]string{"snapshot", "restore", backup, "--yes"}, "restored the whole state from " + backup + " on every node"},
	} {
		code, out, errs := runOut(t, tc.args...)
		if code != 0 || out != tc.want+"\n" {
			t.Errorf("%v: exit %d: %q %s, want %q", tc.args, code, out, errs, tc.want)
		}
	}
	if _, out, _ := runOut(t, "cluster", "join", "n4", "127.0.0.1:7004", "http://127.0.0.1:8084", "-o", "json"); !strings.Contains(out, `"nonvoter"`) {
		t.Errorf("join -o json: %s", out)
	}
}

// TestCLIHelp: every command, and the whole CLI, answers --help (and -h)
// with exit status 0 and its usage on standard output.
func TestCLIHelp(t *testing.T) {
	var cases [][]string
	for _, c := range commands {
		words := strings.Fields(c.name)
		cases = append(cases, append(words, "--help"), append(words, "-h"), append([]string{"help"}, words...))
	}
	cases = append(cases, []string{"--help"}, []string{"-h"}, []string{"help"}, []string{"cluster", "--help"},
		[]string{"snapshot", "--help"}, []string{"policy", "-h"}, []string{"--addr", "http://x:1", "status", "--help"})
	for _, args := range cases {
		code, out, errs := runOut(t, args...)
		if code != 0 || !strings.Contains(out, "Usage") {
			t.Errorf("%v: exit %d:\n%s%s", args, code, out, errs)
		}
	}
	for _, c := range commands {
		if _, out, _ := runOut(t, append(strings.Fields(c.name), "--help")...); !strings.Contains(out, "omnirouter "+c.name) {
			t.Errorf("%s --help does not name the command:\n%s", c.name, out)
		}
	}
	// Command line errors are 2; the usage goes to standard error.
	for _, args := range [][]string{{}, {"frobnicate"}, {"cluster"}, {"cluster", "join", "n4"}, {"status", "extra"}, {"status", "--nosuchflag"}, {"serve", "--nosuchflag"}} {
		if code, _, errs := runOut(t, args...); code != 2 || errs == "" {
			t.Errorf("%v: exit %d, stderr %q", args, code, errs)
		}
	}
}

// TestCLIConfirmation: cluster remove and snapshot restore ask first. With
// standard input closed or not a terminal they refuse without --yes, and
// nothing reaches the node; on a terminal, only "y" or "yes" goes ahead.
func TestCLIConfirmation(t *testing.T) {
	f := newFakeNode(t)
	t.Setenv("OMNIROUTER_ADDR", f.URL)
	backup := filepath.Join(t.TempDir(), "b.bak")
	if err := os.WriteFile(backup, []byte("BACKUP"), 0o600); err != nil {
		t.Fatal(err)
	}
	destructive := [][]string{{"cluster", "remove", "n4"}, {"snapshot", "restore", backup}}
	closed, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	closed.Close() // reads fail, as on a closed standard input
	for _, args := range destructive {
		for _, in := range []io.Reader{strings.NewReader(""), strings.NewReader("y\n"), closed} {
			var out, errb bytes.Buffer
			code := runWith(args, &env{stdin: in, stdout: &out, stderr: &errb, isTerminal: func() bool { return false }})
			if code != 1 || !strings.Contains(errb.String(), "--yes") || !strings.Contains(errb.String(), "not a terminal") {
				t.Errorf("%v without a terminal: exit %d: %s", args, code, errb.String())
			}
		}
		for _, answer := range []string{"n\n", "\n", "", "maybe\n"} {
			var out, errb bytes.Buffer
			code := runWith(args, &env{stdin: strings.NewReader(answer), stdout: &out, stderr: &errb, isTerminal: func() bool { return true }})
			if code != 1 || !strings.Contains(errb.String(), "[y/N]") || !strings.Contains(errb.String(), "nothing was changed") {
				t.Errorf("%v answered %q: exit %d: %s", args, answer, code, errb.String())
			}
		}
	}
	if reqs := f.requests(); len(reqs) != 0 {
		t.Fatalf("refused commands reached the node: %v", reqs)
	}
	for _, args := range destructive {
		for _, answer := range []string{"y\n", "YES\n"} {
			var out, errb bytes.Buffer
			if code := runWith(args, &env{stdin: strings.NewReader(answer), stdout: &out, stderr: &errb, isTerminal: func() bool { return true }}); code != 0 {
				t.Errorf("%v answered %q: exit %d: %s", args, answer, code, errb.String())
			}
		}
		if code, _, errs := runOut(t, append(args, "--yes")...); code != 0 {
			t.Errorf("%v --yes: exit %d: %s", args, code, errs)
		}
	}
	if n := len(f.requests()); n != 6 {
		t.Fatalf("%d requests after 6 confirmed commands: %v", n, f.requests())
	}
}

// TestVersion: omnirouter version and --version print this build's
// version, commit and Go version.
func TestVersion(t *testing.T) {
	bi := buildinfo.Get()
	for _, args := range [][]string{{"version"}, {"--version"}} {
		code, out, errs := runOut(t, args...)
		if code != 0 || !strings.Contains(out, "omnirouter "+bi.Version) || !strings.Contains(out, bi.GoVersion) || !strings.Contains(out, "commit") {
			t.Errorf("%v: exit %d: %s%s", args, code, out, errs)
		}
	}
	code, out, _ := runOut(t, "version", "-o", "json")
	var v map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &v) != nil || v["version"] != bi.Version || v["go_version"] != bi.GoVersion {
		t.Errorf("version -o json: %d %s", code, out)
	}
}
