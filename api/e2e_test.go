package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/omnirouter/omnirouter/api"
	"github.com/omnirouter/omnirouter/cluster"
	"github.com/omnirouter/omnirouter/internal/testutil"
)

// These tests drive real clusters (raft over TCP on 127.0.0.1, real HTTP
// servers) through the public API only.

type liveNode struct {
	id     string
	url    string
	node   *cluster.Node
	api    *api.Server
	srv    *http.Server
	cancel context.CancelFunc
	done   chan struct{}
}

func (n *liveNode) stop() {
	if n.srv == nil {
		return
	}
	n.api.CloseStreams()
	_ = n.srv.Close()
	n.cancel()
	<-n.done
	_ = n.node.Shutdown()
	n.srv = nil
}

func freeAddr(t *testing.T) string {
	t.Helper()
	addr, err := testutil.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// startLive starts n nodes forming one cluster and waits until every node
// is ready.
func startLive(t *testing.T, n int) []*liveNode {
	t.Helper()
	gin.SetMode(gin.ReleaseMode)
	lns := make([]net.Listener, n)
	urls := make([]string, n)
	for i := range lns {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns[i], urls[i] = ln, "http://"+ln.Addr().String()
	}
	var join []string
	if n > 1 {
		join = urls
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	nodes := make([]*liveNode, n)
	for i := range nodes {
		id := fmt.Sprintf("n%d", i+1)
		node, err := cluster.Open(cluster.Config{
			NodeID: id, DataDir: t.TempDir(), RaftAddr: freeAddr(t), HTTPAddr: urls[i],
			BootstrapExpect: n, Join: join, Logger: log,
		})
		if err != nil {
			t.Fatal(err)
		}
		s := api.New(api.Config{Cluster: node, Internal: node.Handler(), Logger: log})
		ctx, cancel := context.WithCancel(context.Background())
		ln := &liveNode{id: id, url: urls[i], node: node, api: s, cancel: cancel, done: make(chan struct{}),
			srv: &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 5 * time.Second}}
		go func() { s.Run(ctx); close(ln.done) }()
		go func(l net.Listener) { _ = ln.srv.Serve(l) }(lns[i])
		nodes[i] = ln
		t.Cleanup(ln.stop)
	}
	for _, nd := range nodes {
		testutil.Until(t, 30*time.Second, "every node ready", func() error {
			r := call(t, nd.url, "GET", "/readyz", nil)
			if r.status != 200 {
				return fmt.Errorf("%s not ready: %s", nd.id, r.body)
			}
			return nil
		})
	}
	return nodes
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) obj(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("not JSON (%d): %s", r.status, r.body)
	}
	return m
}

func call(t *testing.T, base, method, path string, body any) reply {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return reply{status: 0, body: []byte(err.Error())}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{status: resp.StatusCode, header: resp.Header, body: b}
}

// ok calls and requires the status, retrying 503s (an election) briefly.
func ok(t *testing.T, want int, base, method, path string, body any) map[string]any {
	t.Helper()
	var r reply
	deadline := time.Now().Add(10 * time.Second)
	for {
		r = call(t, base, method, path, body)
		if r.status != http.StatusServiceUnavailable || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if r.status != want {
		t.Fatalf("%s %s%s: %d, want %d: %s", method, base, path, r.status, want, r.body)
	}
	return r.obj(t)
}

func s(m map[string]any, k string) string { v, _ := m[k].(string); return v }

func load(m map[string]any, ch string) float64 { return m["load"].(map[string]any)[ch].(float64) }

func TestLiveSingleNode(t *testing.T) {
	n := startLive(t, 1)[0]
	a := call(t, n.url, "PUT", "/v1/agents/a1", map[string]any{"name": "Ana", "capacity": map[string]int{"chat": 1}})
	if a.status != 200 || a.header.Get("X-Omnirouter-Node") != "n1" {
		t.Fatalf("put agent: %d %v %s", a.status, a.header, a.body)
	}
	ok(t, 201, n.url, "POST", "/v1/conversations", map[string]any{"id": "c1", "channel": "chat", "message": "hi"})
	if r := call(t, n.url, "POST", "/v1/conversations/c1/accept", map[string]string{"agent_id": "a1"}); r.status != 409 {
		t.Fatalf("accept without offer: %d %s", r.status, r.body)
	}
	cl := ok(t, 200, n.url, "GET", "/v1/cluster", nil)
	if s(cl, "leader") != "n1" || len(cl["nodes"].([]any)) != 1 {
		t.Fatalf("cluster: %v", cl)
	}
	// Backup, change, restore: the change is gone.
	b := call(t, n.url, "GET", "/v1/cluster/snapshot", nil)
	if b.status != 200 || len(b.body) == 0 {
		t.Fatalf("snapshot: %d", b.status)
	}
	ok(t, 200, n.url, "PUT", "/v1/agents/a2", map[string]any{"name": "Bo"})
	req, _ := http.NewRequest("POST", n.url+"/v1/cluster/restore", bytes.NewReader(b.body))
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("restore: %d", resp.StatusCode)
	}
	if r := call(t, n.url, "GET", "/v1/agents/a2", nil); r.status != 404 {
		t.Fatalf("after restore a2: %d", r.status)
	}
	if r := restoreAs(t, n.url, "application/octet-stream", []byte("garbage")); r.status != 422 {
		t.Fatalf("bad backup: %d %s", r.status, r.body)
	}
	m := call(t, n.url, "GET", "/metrics", nil)
	if m.status != 200 || !strings.Contains(string(m.body), `omnirouter_raft_state{state="Leader"} 1`) {
		t.Fatalf("metrics: %d", m.status)
	}
}

// TestLiveThreeNodes drives the seed's chat and messaging behaviours through
// a real three-node cluster, writing through followers and reading events on
// another node.
func TestLiveThreeNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("three-node cluster")
	}
	nodes := startLive(t, 3)
	leaderID := s(ok(t, 200, nodes[0].url, "GET", "/v1/cluster", nil), "leader")
	var followers []*liveNode
	for _, n := range nodes {
		if n.id != leaderID {
			followers = append(followers, n)
		}
	}
	f1, f2 := followers[0].url, followers[1].url

	ok(t, 200, f1, "PUT", "/v1/policy", map[string]any{"messaging": map[string]any{"inactivity_timeout": "2s"}})
	ok(t, 200, f1, "PUT", "/v1/agents/a1", map[string]any{"name": "Ana", "capacity": map[string]int{"chat": 1, "messaging": 1}})
	ok(t, 200, f2, "PUT", "/v1/agents/a1/status", map[string]string{"status": "online"})

	// Chat: queue → offer → accept → leave → visitor writes again → requeued
	// with the same queued_at → accept → end.
	r := call(t, f1, "POST", "/v1/conversations", map[string]any{"id": "c1", "channel": "chat", "message": "bonjour"})
	if r.status != 201 || r.header.Get("X-Omnirouter-Node") != leaderID {
		t.Fatalf("create via follower: %d %v %s", r.status, r.header, r.body)
	}
	c := r.obj(t)
	queuedAt := s(c, "queued_at")
	if s(c, "state") != "offered" || s(c, "agent_id") != "a1" {
		t.Fatalf("offered: %v", c)
	}
	ok(t, 200, f2, "POST", "/v1/conversations/c1/accept", map[string]string{"agent_id": "a1"})
	ok(t, 200, f1, "POST", "/v1/conversations/c1/messages", map[string]string{"author": "agent", "agent_id": "a1", "text": "salut"})
	c = ok(t, 200, f2, "POST", "/v1/conversations/c1/leave", map[string]string{"agent_id": "a1"})
	if s(c, "state") != "unassigned" {
		t.Fatalf("left: %v", c)
	}
	ok(t, 200, f1, "PUT", "/v1/agents/a1/status", map[string]string{"status": "away"})
	c = ok(t, 200, f2, "POST", "/v1/conversations/c1/messages", map[string]string{"author": "visitor", "text": "encore là ?"})
	if s(c, "state") != "queued" || s(c, "queued_at") != queuedAt {
		t.Fatalf("requeued: %v (queued_at was %s)", c, queuedAt)
	}
	q := ok(t, 200, f1, "GET", "/v1/queue", nil)
	if it := q["items"].([]any); len(it) != 1 || it[0].(map[string]any)["queued_at"] != queuedAt {
		t.Fatalf("queue: %v", q)
	}
	c = ok(t, 200, f2, "PUT", "/v1/agents/a1/status", map[string]string{"status": "online"})
	ok(t, 200, f1, "POST", "/v1/conversations/c1/accept", map[string]string{"agent_id": "a1"})
	c = ok(t, 200, f2, "POST", "/v1/conversations/c1/end", map[string]string{"by": "visitor"})
	if s(c, "state") != "ended" || s(c, "ended_reason") != "visitor_ended" || c["missed"] != false || c["ticket"] != nil {
		t.Fatalf("ended: %v", c)
	}

	// A missed chat gets its ticket only when the session ends.
	ok(t, 200, f1, "PUT", "/v1/agents/a1/status", map[string]string{"status": "offline"})
	c = ok(t, 201, f2, "POST", "/v1/conversations", map[string]any{"id": "c2", "channel": "chat", "message": "allô ?"})
	if c["ticket"] != nil || s(c, "state") != "queued" {
		t.Fatalf("missed chat before end: %v", c)
	}
	c = ok(t, 200, f1, "POST", "/v1/conversations/c2/end", map[string]string{"by": "visitor"})
	if tk, _ := c["ticket"].(map[string]any); c["missed"] != true || tk == nil || s(tk, "via") != "missed_chat" {
		t.Fatalf("missed chat after end: %v", c)
	}

	// The events, read on the third node, carry one conversation.ended for
	// c1 with the whole transcript, reopened part included.
	page := ok(t, 200, nodes[0].url, "GET", "/v1/events?after=0&limit=1000", nil)
	var ended map[string]any
	var ticketCreated bool
	for _, e := range page["events"].([]any) {
		ev := e.(map[string]any)
		if ev["type"] == "conversation.ended" && ev["conversation_id"] == "c1" {
			if ended != nil {
				t.Fatal("two conversation.ended events for c1")
			}
			ended = ev
		}
		if ev["type"] == "ticket.created" && ev["conversation_id"] == "c2" {
			ticketCreated = true
		}
	}
	if ended == nil || !ticketCreated {
		t.Fatalf("events lack c1's end or c2's ticket: %v", page)
	}
	var texts []string
	for _, m := range ended["data"].(map[string]any)["transcript"].([]any) {
		if mm := m.(map[string]any); mm["author"] != "system" {
			texts = append(texts, mm["text"].(string))
		}
	}
	if strings.Join(texts, "|") != "bonjour|salut|encore là ?" {
		t.Fatalf("ended transcript: %v", texts)
	}

	// Messaging: inactive after the 2s inactivity timeout (fired by the
	// leader's timer), capacity released; the end user reactivates it;
	// releasing ends it for good.
	ok(t, 200, f1, "PUT", "/v1/agents/a1/status", map[string]string{"status": "online"})
	c = ok(t, 201, f2, "POST", "/v1/conversations", map[string]any{"id": "m1", "channel": "messaging", "message": "order #42?"})
	if s(c, "state") != "offered" {
		t.Fatalf("messaging offered: %v", c)
	}
	ok(t, 200, f1, "POST", "/v1/conversations/m1/accept", map[string]string{"agent_id": "a1"})
	ok(t, 200, f2, "POST", "/v1/conversations/m1/messages", map[string]string{"author": "agent", "agent_id": "a1", "text": "checking"})
	if a := ok(t, 200, f1, "GET", "/v1/agents/a1", nil); load(a, "messaging") != 1 {
		t.Fatalf("active messaging does not count: %v", a)
	}
	testutil.Until(t, 15*time.Second, "m1 inactive", func() error {
		c := ok(t, 200, f1, "GET", "/v1/conversations/m1", nil)
		if s(c, "activity") != "inactive" {
			return fmt.Errorf("m1 is %s", s(c, "activity"))
		}
		return nil
	})
	if a := ok(t, 200, f2, "GET", "/v1/agents/a1", nil); load(a, "messaging") != 0 {
		t.Fatalf("inactive messaging still counts: %v", a)
	}
	c = ok(t, 200, f1, "POST", "/v1/conversations/m1/messages", map[string]string{"author": "visitor", "text": "any news?"})
	if s(c, "activity") != "active" || s(c, "agent_id") != "a1" {
		t.Fatalf("reactivated: %v", c)
	}
	if a := ok(t, 200, f2, "GET", "/v1/agents/a1", nil); load(a, "messaging") != 1 {
		t.Fatalf("reactivated messaging does not count: %v", a)
	}
	a := ok(t, 200, f2, "POST", "/v1/agents/a1/release", map[string]string{"conversation_id": "m1", "ticket_status": "pending"})
	if load(a, "messaging") != 0 {
		t.Fatalf("release: %v", a)
	}
	if r := call(t, f1, "POST", "/v1/conversations/m1/messages", map[string]string{"author": "visitor", "text": "hello?"}); r.status != 409 {
		t.Fatalf("message after release: %d %s", r.status, r.body)
	}
	c = ok(t, 200, nodes[0].url, "GET", "/v1/conversations/m1?consistency=stale", nil)
	if tk, _ := c["ticket"].(map[string]any); tk == nil || s(tk, "status") != "pending" {
		// A stale read may lag; the linearizable one must not.
		c = ok(t, 200, nodes[0].url, "GET", "/v1/conversations/m1", nil)
		if tk, _ := c["ticket"].(map[string]any); tk == nil || s(tk, "status") != "pending" {
			t.Fatalf("released ticket: %v", c)
		}
	}

	// Every write above went through a follower: the followers count what
	// they forwarded and in how many requests, the leader the entries and
	// commands it proposed (their ratios are the batch sizes).
	var leaderURL string
	for _, n := range nodes {
		if n.id == leaderID {
			leaderURL = n.url
		}
	}
	forwarded, fwdRequests := 0.0, 0.0
	for _, f := range []string{f1, f2} {
		forwarded += metric(t, f, "omnirouter_forwarded_writes_total")
		fwdRequests += metric(t, f, "omnirouter_forward_requests_total")
	}
	if fwdRequests < 1 || forwarded < fwdRequests {
		t.Errorf("followers forwarded %v writes in %v requests", forwarded, fwdRequests)
	}
	entries := metric(t, leaderURL, "omnirouter_proposed_entries_total")
	if commands := metric(t, leaderURL, "omnirouter_proposed_commands_total"); entries < 1 || commands < forwarded || commands < entries {
		t.Errorf("leader proposed %v commands in %v entries; followers forwarded %v", commands, entries, forwarded)
	}
}

// metric reads one unlabelled sample from a node's /metrics.
func metric(t *testing.T, base, name string) float64 {
	t.Helper()
	r := call(t, base, "GET", "/metrics", nil)
	for _, line := range strings.Split(string(r.body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %q: %v", name, line, err)
			}
			return f
		}
	}
	t.Fatalf("%s has no %s", base, name)
	return 0
}

// restoreAs posts a backup with the given Content-Type.
func restoreAs(t *testing.T, base, contentType string, b []byte) reply {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/v1/cluster/restore", bytes.NewReader(b))
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return reply{status: resp.StatusCode, header: resp.Header, body: body}
}

// TestLiveDamagedBackupIsRefused: every single-byte change and every
// truncation of a real backup is refused with 422 invalid_backup, and the
// state is what it was.
func TestLiveDamagedBackupIsRefused(t *testing.T) {
	n := startLive(t, 1)[0]
	ok(t, 200, n.url, "PUT", "/v1/agents/a1", map[string]any{"name": "Ana", "capacity": map[string]int{"chat": 2}})
	ok(t, 200, n.url, "PUT", "/v1/policy", map[string]any{"chat": map[string]any{"web": map[string]any{"idle_after": "24h"}}})
	ok(t, 201, n.url, "POST", "/v1/conversations", map[string]any{"id": "c1", "channel": "chat", "message": "bonjour"})
	ok(t, 201, n.url, "POST", "/v1/conversations", map[string]any{"id": "c2", "channel": "messaging", "message": "hello"})
	backup := call(t, n.url, "GET", "/v1/cluster/snapshot", nil).body
	ok(t, 200, n.url, "PUT", "/v1/agents/a2", map[string]any{"name": "Bo"}) // not in the backup
	state := func() string {
		cl := ok(t, 200, n.url, "GET", "/v1/cluster", nil)
		return fmt.Sprint(cl["applied_index"]) + string(call(t, n.url, "GET", "/v1/agents", nil).body) +
			string(call(t, n.url, "GET", "/v1/conversations/c1", nil).body) +
			string(call(t, n.url, "GET", "/v1/conversations/c2", nil).body) + string(call(t, n.url, "GET", "/v1/policy", nil).body)
	}
	before := state()
	restore := func(b []byte) reply { return restoreAs(t, n.url, "application/octet-stream", b) }
	refused := func(what string, b []byte) {
		r := restore(b)
		if r.status != 422 || !strings.Contains(string(r.body), `"invalid_backup"`) {
			t.Fatalf("%s: %d %s, want 422 invalid_backup", what, r.status, r.body)
		}
	}
	for i := range backup {
		for _, x := range []byte{0x01, 0x80} {
			bad := bytes.Clone(backup)
			bad[i] ^= x
			refused(fmt.Sprintf("byte %d ^ %#x", i, x), bad)
		}
	}
	for cut := range len(backup) {
		refused(fmt.Sprintf("truncated to %d of %d bytes", cut, len(backup)), backup[:cut])
	}
	refused("one byte more", append(bytes.Clone(backup), 0))
	if after := state(); after != before {
		t.Fatalf("refused backups changed the state:\n%s\n%s", before, after)
	}
	if r := restore(backup); r.status != 200 {
		t.Fatalf("the intact backup: %d %s", r.status, r.body)
	}
}

// TestLiveSupportFloor drives every channel through a real three-node
// cluster, writing through followers: calls ring out to the next agent,
// an email reopened by its end user counts again above its agent's
// capacity, and focus mode holds back a second real-time channel.
func TestLiveSupportFloor(t *testing.T) {
	if testing.Short() {
		t.Skip("three-node cluster")
	}
	nodes := startLive(t, 3)
	leaderID := s(ok(t, 200, nodes[0].url, "GET", "/v1/cluster", nil), "leader")
	var f []string
	for _, n := range nodes {
		if n.id != leaderID {
			f = append(f, n.url)
		}
	}
	ok(t, 200, f[0], "PUT", "/v1/policy", map[string]any{
		"voice":   map[string]any{"ring_timeout": "1s", "wrap_up": "1s"},
		"routing": map[string]any{"focus_mode": true},
	})
	agent := func(id string, capacity map[string]int) {
		ok(t, 200, f[0], "PUT", "/v1/agents/"+id, map[string]any{"name": id, "capacity": capacity})
		ok(t, 200, f[1], "PUT", "/v1/agents/"+id+"/status", map[string]string{"status": "online"})
	}
	agent("phone1", map[string]int{"voice": 1})
	agent("phone2", map[string]int{"voice": 1})
	agent("mail", map[string]int{"email": 1})
	agent("omni", map[string]int{"chat": 1, "messaging": 1})

	// A call rings one phone agent; unanswered, it rings the other.
	v := ok(t, 201, f[0], "POST", "/v1/conversations", map[string]any{"id": "v1", "channel": "voice"})
	first := s(v, "agent_id")
	if s(v, "state") != "offered" || (first != "phone1" && first != "phone2") {
		t.Fatalf("call: %v", v)
	}
	var second string
	testutil.Until(t, 10*time.Second, "the call to ring the other agent", func() error {
		v = ok(t, 200, f[1], "GET", "/v1/conversations/v1", nil)
		if second = s(v, "agent_id"); s(v, "state") != "offered" || second == first {
			return fmt.Errorf("%s with %s", s(v, "state"), second)
		}
		return nil
	})
	ok(t, 200, f[0], "POST", "/v1/conversations/v1/accept", map[string]string{"agent_id": second})
	v = ok(t, 200, f[1], "POST", "/v1/conversations/v1/end", map[string]any{"by": "visitor"})
	if s(v, "state") != "wrap_up" {
		t.Fatalf("hung up: %v", v)
	}
	testutil.Until(t, 10*time.Second, "wrap-up to end", func() error {
		if v = ok(t, 200, f[0], "GET", "/v1/conversations/v1", nil); s(v, "state") != "ended" {
			return fmt.Errorf("still %s", s(v, "state"))
		}
		return nil
	})
	// A caller who hangs up before an answer leaves a missed call.
	ok(t, 201, f[0], "POST", "/v1/conversations", map[string]any{"id": "v2", "channel": "voice"})
	v = ok(t, 200, f[1], "POST", "/v1/conversations/v2/end", map[string]any{"by": "visitor", "voicemail": true})
	if v["missed"] != true || v["ticket"].(map[string]any)["via"] != "voicemail" {
		t.Fatalf("missed call: %v", v)
	}

	// An email is assigned at once; pending, it stops counting; a second
	// email takes the slot; the first one's end user replies: it counts
	// again, above capacity.
	e := ok(t, 201, f[0], "POST", "/v1/conversations", map[string]any{"id": "e1", "channel": "email", "subject": "Refund", "message": "Where is my refund?"})
	if s(e, "state") != "assigned" || s(e, "agent_id") != "mail" || s(e, "subject") != "Refund" {
		t.Fatalf("email: %v", e)
	}
	ok(t, 200, f[1], "PUT", "/v1/conversations/e1/ticket", map[string]string{"status": "pending"})
	ok(t, 201, f[0], "POST", "/v1/conversations", map[string]any{"id": "e2", "channel": "email", "message": "Another question"})
	ok(t, 200, f[1], "POST", "/v1/conversations/e1/messages", map[string]string{"author": "visitor", "text": "Still waiting"})
	if a := ok(t, 200, f[0], "GET", "/v1/agents/mail", nil); load(a, "email") != 2 {
		t.Fatalf("email load after the reply: %v", a)
	}

	// Focus mode: omni, offered a chat, is not offered a messaging
	// conversation until the chat is over.
	c := ok(t, 201, f[0], "POST", "/v1/conversations", map[string]any{"id": "c1", "channel": "chat", "message": "hi"})
	m := ok(t, 201, f[1], "POST", "/v1/conversations", map[string]any{"id": "m1", "channel": "messaging", "message": "hello"})
	if s(c, "agent_id") != "omni" || s(m, "state") != "queued" {
		t.Fatalf("focus mode: chat %v, messaging %v", c, m)
	}
	ok(t, 200, f[0], "POST", "/v1/conversations/c1/end", map[string]any{"by": "visitor"})
	if m = ok(t, 200, f[1], "GET", "/v1/conversations/m1", nil); s(m, "state") != "offered" || s(m, "agent_id") != "omni" {
		t.Fatalf("after the chat: %v", m)
	}
	for _, n := range nodes {
		if r := ok(t, 200, n.url, "GET", "/v1/debug/invariants", nil); r["ok"] != true {
			t.Fatalf("%s: %v", n.id, r)
		}
	}
}

// TestLiveRoutingControl drives routing control through a real three-node
// cluster, writing through followers: a chat transferred agent to agent, a
// messaging conversation transferred to a group and picked up there, a VIP
// chat offered only to VIP agents for the skills timeout and then to
// anyone, a priority raised so that it jumps the queue; and every node
// gives the same statistics.
func TestLiveRoutingControl(t *testing.T) {
	if testing.Short() {
		t.Skip("three-node cluster")
	}
	nodes := startLive(t, 3)
	leaderID := s(ok(t, 200, nodes[0].url, "GET", "/v1/cluster", nil), "leader")
	var f []string
	for _, n := range nodes {
		if n.id != leaderID {
			f = append(f, n.url)
		}
	}
	ok(t, 200, f[0], "PUT", "/v1/policy", map[string]any{"routing": map[string]any{"skills_timeout": map[string]any{"chat": "2s"}}})
	agent := func(id string, body map[string]any) {
		ok(t, 200, f[0], "PUT", "/v1/agents/"+id, body)
		ok(t, 200, f[1], "PUT", "/v1/agents/"+id+"/status", map[string]string{"status": "online"})
	}
	agent("ana", map[string]any{"name": "Ana", "capacity": map[string]int{"chat": 1}})

	// A chat, agent to agent.
	ok(t, 201, f[0], "POST", "/v1/conversations", map[string]any{"id": "c1", "channel": "chat", "message": "hi"})
	ok(t, 200, f[1], "POST", "/v1/conversations/c1/accept", map[string]string{"agent_id": "ana"})
	agent("ben", map[string]any{"name": "Ben", "capacity": map[string]int{"chat": 1}})
	c := ok(t, 200, f[0], "POST", "/v1/conversations/c1/transfer", map[string]string{"agent_id": "ana", "to_agent": "ben", "note": "billing question"})
	if s(c, "state") != "offered" || s(c, "agent_id") != "ben" {
		t.Fatalf("chat transfer: %v", c)
	}
	ok(t, 200, f[1], "POST", "/v1/conversations/c1/accept", map[string]string{"agent_id": "ben"})
	if a := ok(t, 200, f[0], "GET", "/v1/agents/ana", nil); load(a, "chat") != 0 {
		t.Fatalf("ana still holds the chat: %v", a)
	}

	// Messaging, to a group, picked up there.
	agent("max", map[string]any{"name": "Max", "capacity": map[string]int{"messaging": 1}})
	ok(t, 201, f[0], "POST", "/v1/conversations", map[string]any{"id": "m1", "channel": "messaging", "message": "refund?"})
	ok(t, 200, f[1], "POST", "/v1/conversations/m1/accept", map[string]string{"agent_id": "max"})
	m := ok(t, 200, f[0], "POST", "/v1/conversations/m1/transfer", map[string]string{"agent_id": "max", "to_group": "billing"})
	if s(m, "state") != "queued" || s(m, "group") != "billing" {
		t.Fatalf("messaging transfer: %v", m)
	}
	agent("bill", map[string]any{"name": "Bill", "capacity": map[string]int{"messaging": 1}, "groups": []string{"billing"}})
	if m = ok(t, 200, f[1], "GET", "/v1/conversations/m1", nil); s(m, "state") != "offered" || s(m, "agent_id") != "bill" {
		t.Fatalf("picked up in billing: %v", m)
	}

	// A VIP chat: only VIP agents until the skills timeout, then anyone.
	ok(t, 200, f[0], "POST", "/v1/conversations/c1/end", map[string]any{"by": "visitor"}) // ben is free again
	v := ok(t, 201, f[0], "POST", "/v1/conversations", map[string]any{"id": "vip1", "channel": "chat", "message": "hello", "optional_skills": []string{"vip"}})
	if s(v, "state") != "queued" {
		t.Fatalf("a VIP chat went to a non-VIP agent at once: %v", v)
	}
	testutil.Until(t, 10*time.Second, "the VIP chat relaxed and offered", func() error {
		if v = ok(t, 200, f[1], "GET", "/v1/conversations/vip1", nil); s(v, "state") != "offered" {
			return fmt.Errorf("still %s", s(v, "state"))
		}
		return nil
	})

	// A raised priority jumps the queue.
	ok(t, 201, f[0], "POST", "/v1/conversations", map[string]any{"id": "q1", "channel": "voice"})
	ok(t, 201, f[0], "POST", "/v1/conversations", map[string]any{"id": "q2", "channel": "voice"})
	ok(t, 200, f[1], "PATCH", "/v1/conversations/q2", map[string]any{"priority": 9})
	q := ok(t, 200, f[0], "GET", "/v1/queue?channel=voice", nil)
	if first := q["items"].([]any)[0].(map[string]any); first["id"] != "q2" || first["position"] != 1.0 {
		t.Fatalf("queue after the raise: %v", q)
	}

	// Every node answers the same statistics for the same applied index:
	// read until two reads in a row of every node agree.
	testutil.Until(t, 10*time.Second, "the same stats on every node", func() error {
		var first []byte
		for i, n := range nodes {
			b := call(t, n.url, "GET", "/v1/stats", nil).body
			if i == 0 {
				first = b
			} else if !bytes.Equal(first, b) {
				return fmt.Errorf("%s differs", n.id)
			}
		}
		return nil
	})
}
