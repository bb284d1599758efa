package api

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestAgentsCRUDAndValidation(t *testing.T) {
	h := newHarness(t)
	a := h.must(200, "PUT", "/v1/agents/a1", map[string]any{"name": "Ana", "capacity": map[string]int{"chat": 2, "messaging": 3}, "skills": []string{"fr"}, "groups": []string{"support"}})
	if str(a, "id") != "a1" || str(a, "name") != "Ana" || str(a, "status") != "offline" {
		t.Fatalf("agent: %v", a)
	}
	if c := a["capacity"].(map[string]any); c["chat"] != 2.0 || c["messaging"] != 3.0 {
		t.Fatalf("capacity: %v", a)
	}
	for _, k := range []string{"load", "skills", "groups", "conversations"} {
		if a[k] == nil {
			t.Fatalf("agent lacks %s: %v", k, a)
		}
	}
	r := h.req("PUT", "/v1/agents/a1/status", map[string]string{"status": "online"})
	if r.Status != 200 || r.Header.Get("X-Omnirouter-Node") != "fake1" {
		t.Fatalf("status: %d %v %s", r.Status, r.Header, r.Body)
	}
	h.must(200, "PUT", "/v1/agents/b2", map[string]any{"name": "Bo"})
	list := h.must(200, "GET", "/v1/agents", nil)
	agents := list["agents"].([]any)
	if len(agents) != 2 || agents[0].(map[string]any)["id"] != "a1" || agents[0].(map[string]any)["status"] != "online" {
		t.Fatalf("list: %v", list)
	}
	if got := h.must(200, "GET", "/v1/agents/a1?consistency=stale", nil); str(got, "name") != "Ana" {
		t.Fatalf("get: %v", got)
	}

	h.fails(404, "agent_not_found", "GET", "/v1/agents/nobody", nil)
	h.fails(404, "agent_not_found", "PUT", "/v1/agents/nobody/status", map[string]string{"status": "online"})
	h.fails(422, "invalid_capacity", "PUT", "/v1/agents/a1", map[string]any{"capacity": map[string]int{"chat": -1}})
	h.fails(422, "invalid_capacity", "PUT", "/v1/agents/a1", map[string]any{"capacity": map[string]int{"messaging": 501}})
	h.fails(422, "invalid_status", "PUT", "/v1/agents/a1/status", map[string]string{"status": "asleep"})
	h.fails(422, "invalid_id", "PUT", "/v1/agents/bad%20id", map[string]any{"name": "x"})
	h.fails(400, "malformed_json", "PUT", "/v1/agents/a1", `{"name": `)
	h.fails(400, "malformed_json", "PUT", "/v1/agents/a1", `[1,2]`)
	h.fails(422, "unknown_field", "PUT", "/v1/agents/a1", `{"nom": "x"}`)
	h.fails(422, "invalid_type", "PUT", "/v1/agents/a1", `{"capacity": {"chat": "two"}}`)
	h.fails(422, "invalid_consistency", "GET", "/v1/agents?consistency=eventual", nil)
	big := `{"name": "` + strings.Repeat("x", MaxBodyBytes) + `"}`
	h.fails(413, "body_too_large", "PUT", "/v1/agents/a1", big)
	h.fails(404, "not_found", "GET", "/v1/nothing", nil)
	h.fails(405, "method_not_allowed", "DELETE", "/v1/queue", nil)

	// Errors changed nothing.
	if got := h.must(200, "GET", "/v1/agents/a1", nil); got["capacity"].(map[string]any)["chat"] != 2.0 || str(got, "name") != "Ana" {
		t.Fatalf("a refused request changed the agent: %v", got)
	}
}

func TestChatLifecycle(t *testing.T) {
	h := newHarness(t)
	h.agent("a1", 1, 0)
	h.agent("a2", 1, 0)
	h.must(200, "PUT", "/v1/agents/a2/status", map[string]string{"status": "away"})

	c := h.must(201, "POST", "/v1/conversations", map[string]any{"id": "c1", "channel": "chat", "message": "bonjour", "visitor_id": "v1"})
	if str(c, "state") != "offered" || str(c, "agent_id") != "a1" || str(c, "client") != "web" || str(c, "activity") != "active" {
		t.Fatalf("created: %v", c)
	}
	queuedAt := str(c, "queued_at")
	if !strings.HasSuffix(queuedAt, ".000Z") {
		t.Fatalf("queued_at %q is not RFC 3339 UTC with milliseconds", queuedAt)
	}
	h.fails(409, "conversation_exists", "POST", "/v1/conversations", map[string]any{"id": "c1", "channel": "chat"})
	h.fails(409, "not_offered", "POST", "/v1/conversations/c1/accept", map[string]string{"agent_id": "a2"})
	h.fails(404, "conversation_not_found", "POST", "/v1/conversations/nope/accept", map[string]string{"agent_id": "a1"})
	h.fails(422, "invalid_id", "POST", "/v1/conversations/c1/accept", map[string]string{})

	c = h.must(200, "POST", "/v1/conversations/c1/accept", map[string]string{"agent_id": "a1"})
	if str(c, "state") != "assigned" {
		t.Fatalf("accepted: %v", c)
	}
	h.fakeAdvance(time.Second)
	c = h.must(200, "POST", "/v1/conversations/c1/messages", map[string]string{"author": "agent", "agent_id": "a1", "text": "salut"})
	// An answer to a write leaves the transcript out, unless asked.
	if c["transcript"] != nil || c["transcript_length"] != 2.0 {
		t.Fatalf("transcript: %v", c)
	}
	c = h.must(200, "POST", "/v1/conversations/c1/messages?transcript=full", map[string]string{"author": "agent", "agent_id": "a1", "text": "ça va ?"})
	if n := len(c["transcript"].([]any)); n != 3 || c["transcript_length"] != 3.0 {
		t.Fatalf("transcript: %v", c)
	}
	c = h.must(200, "POST", "/v1/conversations/c1/leave", map[string]string{"agent_id": "a1"})
	if str(c, "state") != "unassigned" {
		t.Fatalf("left: %v", c)
	}
	if a := h.must(200, "GET", "/v1/agents/a1", nil); a["load"].(map[string]any)["chat"] != 0.0 {
		t.Fatalf("capacity not released: %v", a)
	}
	// The visitor writes again: back to the queue with the same queued_at,
	// and offered to a1 again at once (auto mode).
	h.fakeAdvance(time.Second)
	c = h.must(200, "POST", "/v1/conversations/c1/messages", map[string]string{"author": "visitor", "text": "still there?"})
	if str(c, "state") != "offered" || str(c, "queued_at") != queuedAt {
		t.Fatalf("reopened: %v (queued_at was %s)", c, queuedAt)
	}
	h.must(200, "POST", "/v1/conversations/c1/accept", map[string]string{"agent_id": "a1"})
	c = h.must(200, "POST", "/v1/conversations/c1/end", map[string]string{"by": "agent", "agent_id": "a1"})
	if str(c, "state") != "ended" || str(c, "ended_reason") != "agent_ended" || c["ended_at"] == nil || c["missed"] != false {
		t.Fatalf("ended: %v", c)
	}
	h.fails(409, "conversation_ended", "POST", "/v1/conversations/c1/messages", map[string]string{"author": "visitor", "text": "hello?"})

	// The ended event carries the whole transcript, reopened part included.
	page := h.must(200, "GET", "/v1/events?after=0&limit=1000", nil)
	var ended map[string]any
	for _, e := range page["events"].([]any) {
		if ev := e.(map[string]any); ev["type"] == "conversation.ended" {
			ended = ev
		}
	}
	if ended == nil || str(ended, "conversation_id") != "c1" {
		t.Fatalf("no conversation.ended event: %v", page)
	}
	if tr := ended["data"].(map[string]any)["transcript"].([]any); len(tr) < 4 || tr[3].(map[string]any)["text"] != "still there?" {
		t.Fatalf("ended transcript: %v", ended)
	}

	// A missed chat gets a ticket only when the session ends.
	h.must(200, "PUT", "/v1/agents/a1/status", map[string]string{"status": "offline"})
	m := h.must(201, "POST", "/v1/conversations", map[string]any{"id": "c2", "channel": "chat", "client": "mobile_sdk", "message": "anyone?"})
	if str(m, "state") != "queued" || m["ticket"] != nil {
		t.Fatalf("queued: %v", m)
	}
	q := h.must(200, "GET", "/v1/queue", nil)
	items := q["items"].([]any)
	if len(items) != 1 || items[0].(map[string]any)["id"] != "c2" || items[0].(map[string]any)["position"] != 1.0 {
		t.Fatalf("queue: %v", q)
	}
	h.must(200, "POST", "/v1/conversations/c2/presence", map[string]string{"event": "backgrounded"})
	h.fails(422, "invalid_presence_event", "POST", "/v1/conversations/c2/presence", map[string]string{"event": "sneezed"})
	m = h.must(200, "POST", "/v1/conversations/c2/end", map[string]string{"by": "visitor"})
	tk, _ := m["ticket"].(map[string]any)
	if !m["missed"].(bool) || tk == nil || str(tk, "via") != "missed_chat" || str(tk, "status") != "new" {
		t.Fatalf("missed chat: %v", m)
	}
}

func (h *harness) fakeAdvance(d time.Duration) { h.fake.advance(d) }

func TestCreateValidation(t *testing.T) {
	h := newHarness(t, withMaxMessage(10))
	h.fails(422, "invalid_channel", "POST", "/v1/conversations", map[string]any{"channel": "fax"})
	h.fails(422, "invalid_channel", "POST", "/v1/conversations", map[string]any{})
	h.fails(422, "invalid_client", "POST", "/v1/conversations", map[string]any{"channel": "chat", "client": "desktop"})
	h.fails(422, "invalid_client", "POST", "/v1/conversations", map[string]any{"channel": "messaging", "client": "web"})
	h.fails(422, "invalid_priority", "POST", "/v1/conversations", map[string]any{"channel": "chat", "priority": 1001})
	h.fails(422, "invalid_id", "POST", "/v1/conversations", map[string]any{"channel": "chat", "id": "a/b"})
	// Ids a URL cannot carry: clients and proxies remove them from paths.
	for _, id := range []string{".", ".."} {
		h.fails(422, "invalid_id", "POST", "/v1/conversations", map[string]any{"channel": "chat", "id": id})
		h.fails(422, "invalid_id", "PUT", "/v1/agents/%2E"+strings.Repeat("%2E", len(id)-1), map[string]any{"name": "x"})
	}
	h.must(201, "POST", "/v1/conversations", map[string]any{"channel": "chat", "id": "..."})
	h.fails(422, "invalid_text", "POST", "/v1/conversations", map[string]any{"channel": "chat", "message": ""})
	h.fails(413, "message_too_large", "POST", "/v1/conversations", map[string]any{"channel": "chat", "message": "12345678901"})
	h.fails(422, "invalid_type", "POST", "/v1/conversations", `{"channel": "chat", "priority": "high"}`)
	h.fails(422, "unknown_field", "POST", "/v1/conversations", `{"channel": "chat", "colour": "blue"}`)
	h.fails(422, "invalid_idempotency_key", "POST", "/v1/conversations", map[string]any{"channel": "chat"}, "Idempotency-Key", strings.Repeat("k", 256))

	c := h.must(201, "POST", "/v1/conversations", map[string]any{"channel": "messaging", "message": "0123456789"})
	id := str(c, "id")
	if !strings.HasPrefix(id, "c_") || len(id) != 34 || c["client"] != nil {
		t.Fatalf("generated conversation: %v", c)
	}
	h.fails(413, "message_too_large", "POST", "/v1/conversations/"+id+"/messages", map[string]string{"author": "visitor", "text": "12345678901"})
	h.fails(422, "invalid_author", "POST", "/v1/conversations/"+id+"/messages", map[string]string{"author": "system", "text": "x"})
	h.fails(422, "invalid_id", "POST", "/v1/conversations/"+id+"/messages", map[string]string{"author": "agent", "text": "x"})
	h.fails(404, "agent_not_found", "POST", "/v1/conversations/"+id+"/messages", map[string]string{"author": "agent", "agent_id": "ghost", "text": "x"})
	h.fails(409, "wrong_channel", "POST", "/v1/conversations/"+id+"/presence", map[string]string{"event": "activity"})
	h.fails(409, "wrong_channel", "POST", "/v1/conversations/"+id+"/end", map[string]string{"by": "visitor"})
	h.fails(422, "invalid_by", "POST", "/v1/conversations/"+id+"/end", map[string]string{"by": "cat"})
	h.fails(422, "invalid_ticket_status", "PUT", "/v1/conversations/"+id+"/ticket", map[string]string{"status": "closed"})
	tk := h.must(200, "PUT", "/v1/conversations/"+id+"/ticket", map[string]string{"status": "pending"})
	if tk["ticket"].(map[string]any)["status"] != "pending" || str(tk, "activity") != "inactive" {
		t.Fatalf("ticket: %v", tk)
	}
}

func TestIdempotency(t *testing.T) {
	h := newHarness(t, withAuth(testAuth(t)))
	h.token = tokRouter
	first := h.must(201, "POST", "/v1/conversations", map[string]any{"channel": "chat", "message": "hi"}, "Idempotency-Key", "k1")
	again := h.must(201, "POST", "/v1/conversations", map[string]any{"channel": "chat", "message": "hi"}, "Idempotency-Key", "k1")
	if str(first, "id") != str(again, "id") {
		t.Fatalf("a retried create made a second conversation: %v vs %v", first, again)
	}
	// Another caller's identical key is a different key.
	h.token = tokOperator
	other := h.must(201, "POST", "/v1/conversations", map[string]any{"channel": "chat", "message": "hi"}, "Idempotency-Key", "k1")
	if str(other, "id") == str(first, "id") {
		t.Fatal("two callers' keys collided")
	}
	// A key reused for another request is refused.
	h.fails(409, "idempotency_key_reused", "PUT", "/v1/conversations/"+str(first, "id")+"/ticket", map[string]string{"status": "open"}, "Idempotency-Key", "k1")
	q := h.must(200, "GET", "/v1/queue", nil)
	if n := len(q["items"].([]any)); n != 2 {
		t.Fatalf("queue has %d items, want 2", n)
	}
}

func TestMessagingReleaseAndInactivity(t *testing.T) {
	h := newHarness(t)
	h.must(200, "PUT", "/v1/policy", map[string]any{"messaging": map[string]any{"inactivity_timeout": "2s"}, "routing": map[string]any{"auto_accept": true}})
	h.agent("a1", 0, 1)
	c := h.must(201, "POST", "/v1/conversations", map[string]any{"id": "m1", "channel": "messaging", "message": "help"})
	if str(c, "state") != "assigned" || str(c, "agent_id") != "a1" {
		t.Fatalf("auto-accepted: %v", c)
	}
	h.must(200, "POST", "/v1/conversations/m1/messages", map[string]string{"author": "agent", "agent_id": "a1", "text": "on it"})
	h.fakeAdvance(3 * time.Second)
	if c := h.must(200, "GET", "/v1/conversations/m1", nil); str(c, "activity") != "inactive" {
		t.Fatalf("not inactive: %v", c)
	}
	if a := h.must(200, "GET", "/v1/agents/a1", nil); a["load"].(map[string]any)["messaging"] != 0.0 {
		t.Fatalf("inactive conversation still counts: %v", a)
	}
	h.must(200, "POST", "/v1/conversations/m1/messages", map[string]string{"author": "visitor", "text": "back"})
	if a := h.must(200, "GET", "/v1/agents/a1", nil); a["load"].(map[string]any)["messaging"] != 1.0 {
		t.Fatalf("reactivated conversation does not count: %v", a)
	}
	h.fails(422, "invalid_ticket_status", "POST", "/v1/agents/a1/release", map[string]string{"conversation_id": "m1", "ticket_status": "solved"})
	h.fails(422, "invalid_ticket_status", "POST", "/v1/agents/a1/release", map[string]string{"conversation_id": "m1", "ticket_status": "nope"})
	h.fails(422, "invalid_id", "POST", "/v1/agents/a1/release", map[string]string{})
	a := h.must(200, "POST", "/v1/agents/a1/release", map[string]string{"conversation_id": "m1", "ticket_status": "pending"})
	if str(a, "id") != "a1" || a["load"].(map[string]any)["messaging"] != 0.0 {
		t.Fatalf("release: %v", a)
	}
	h.fails(409, "conversation_ended", "POST", "/v1/conversations/m1/messages", map[string]string{"author": "visitor", "text": "again"})
}

func TestPolicy(t *testing.T) {
	h := newHarness(t)
	p := h.must(200, "GET", "/v1/policy", nil)
	web := p["chat"].(map[string]any)["web"].(map[string]any)
	if web["idle_after"] != "10m" || web["disconnect_timeout"] != "2m" || p["routing"].(map[string]any)["strategy"] != "spare_capacity" {
		t.Fatalf("default policy: %v", p)
	}
	if p["chat"].(map[string]any)["mobile_sdk"].(map[string]any)["inactivity_timeout"] != "1h" {
		t.Fatalf("default policy: %v", p)
	}
	p = h.must(200, "PUT", "/v1/policy", map[string]any{"routing": map[string]any{"strategy": "round_robin", "offer_timeout": "45s"}})
	r := p["routing"].(map[string]any)
	if r["strategy"] != "round_robin" || r["offer_timeout"] != "45s" || r["mode"] != "auto" || r["reassign_delay"] != "1m" {
		t.Fatalf("patched policy: %v", p)
	}
	h.fails(422, "invalid_duration", "PUT", "/v1/policy", map[string]any{"routing": map[string]any{"offer_timeout": "soon"}})
	h.fails(422, "invalid_policy", "PUT", "/v1/policy", map[string]any{"routing": map[string]any{"offer_timeout": "-5s"}})
	h.fails(422, "invalid_strategy", "PUT", "/v1/policy", map[string]any{"routing": map[string]any{"strategy": "random"}})
	h.fails(422, "invalid_mode", "PUT", "/v1/policy", map[string]any{"routing": map[string]any{"mode": "manual"}})
	h.fails(422, "unknown_field", "PUT", "/v1/policy", map[string]any{"routing": map[string]any{"speed": "fast"}})
	h.fails(422, "invalid_type", "PUT", "/v1/policy", `{"routing": {"auto_accept": "yes"}}`)
	if p := h.must(200, "GET", "/v1/policy", nil); p["routing"].(map[string]any)["offer_timeout"] != "45s" {
		t.Fatalf("refused patches changed the policy: %v", p)
	}
}

func TestAssignmentsExternalMode(t *testing.T) {
	h := newHarness(t)
	h.must(200, "PUT", "/v1/policy", map[string]any{"routing": map[string]any{"mode": "external"}})
	h.fails(404, "no_eligible_conversation", "POST", "/v1/assignments", map[string]any{})
	h.agent("a1", 2, 0)
	h.must(201, "POST", "/v1/conversations", map[string]any{"id": "c1", "channel": "chat"})
	if c := h.must(200, "GET", "/v1/conversations/c1", nil); str(c, "state") != "queued" {
		t.Fatalf("external mode assigned by itself: %v", c)
	}
	a := h.must(200, "POST", "/v1/assignments", map[string]any{"conversation_id": "c1"})
	if str(a, "conversation_id") != "c1" || str(a, "agent_id") != "a1" || str(a, "state") != "offered" {
		t.Fatalf("assignment: %v", a)
	}
	h.fails(409, "not_queued", "POST", "/v1/assignments", map[string]any{"conversation_id": "c1"})
	h.fails(422, "invalid_assignment", "POST", "/v1/assignments", map[string]any{"force": true, "agent_id": "a1"})
	h.fails(422, "invalid_type", "POST", "/v1/assignments", `{"force": 1}`)
}

func TestClusterUnavailable(t *testing.T) {
	h := newHarness(t)
	h.fake.setErrs(ErrNoLeader, nil)
	r := h.req("PUT", "/v1/agents/a1", map[string]any{"name": "x"})
	if r.Status != 503 || r.Header.Get("Retry-After") == "" || r.errCode(t) != "no_leader" {
		t.Fatalf("no leader: %d %v %s", r.Status, r.Header, r.Body)
	}
	h.fake.setErrs(fmt.Errorf("forwarding: %w", ErrAmbiguous), nil)
	h.fails(503, "ambiguous", "POST", "/v1/conversations", map[string]any{"channel": "chat"})
	h.fake.setErrs(nil, ErrNoLeader)
	h.fails(503, "no_leader", "GET", "/v1/agents", nil)
	h.fails(503, "no_leader", "GET", "/v1/conversations/c1", nil)
	h.fake.setErrs(ErrNoLeader, nil)
	h.fails(503, "no_leader", "POST", "/v1/cluster/join", map[string]string{"id": "n2", "raft_addr": "127.0.0.1:7001", "http_addr": "http://127.0.0.1:8081"})
}

func TestHealthReadyAndCluster(t *testing.T) {
	h := newHarness(t)
	h.must(200, "GET", "/healthz", nil)
	h.must(200, "GET", "/readyz", nil)
	h.fake.mu.Lock()
	h.fake.readyErr = fmt.Errorf("no leader yet")
	h.fake.mu.Unlock()
	if r := h.req("GET", "/readyz", nil); r.Status != 503 {
		t.Fatalf("readyz: %d", r.Status)
	}
	cl := h.must(200, "GET", "/v1/cluster", nil)
	if str(cl, "leader") != "fake1" || cl["term"] != 2.0 || cl["commit_index"] != 7.0 || len(cl["nodes"].([]any)) != 1 {
		t.Fatalf("cluster: %v", cl)
	}
	n := cl["nodes"].([]any)[0].(map[string]any)
	for _, k := range []string{"id", "raft_addr", "http_addr", "suffrage", "caught_up", "voter", "leader"} {
		if _, ok := n[k]; !ok {
			t.Fatalf("node lacks %s: %v", k, n)
		}
	}
	h.must(200, "POST", "/v1/cluster/join", map[string]string{"id": "n2", "raft_addr": "127.0.0.1:7001", "http_addr": "http://127.0.0.1:8081"})
	h.fails(422, "invalid_address", "POST", "/v1/cluster/join", map[string]string{"id": "n2"})
	h.must(200, "DELETE", "/v1/cluster/nodes/n2", nil)
	if len(h.fake.joined) != 1 || len(h.fake.removed) != 1 {
		t.Fatalf("join/remove not passed on: %v %v", h.fake.joined, h.fake.removed)
	}

	// Backup then restore brings back the state of the backup.
	h.agent("a1", 1, 1)
	r := h.req("GET", "/v1/cluster/snapshot", nil)
	if r.Status != 200 || len(r.Body) == 0 {
		t.Fatalf("snapshot: %d %d bytes", r.Status, len(r.Body))
	}
	h.must(200, "PUT", "/v1/agents/a2", map[string]any{"name": "later"})
	h.fails(415, "unsupported_media_type", "POST", "/v1/cluster/restore", r.Body) // sent as application/json
	h.must(200, "POST", "/v1/cluster/restore", r.Body, "Content-Type", "application/octet-stream")
	h.fails(404, "agent_not_found", "GET", "/v1/agents/a2", nil)
	h.must(200, "GET", "/v1/agents/a1", nil)
}

func TestMetrics(t *testing.T) {
	h := newHarness(t)
	h.agent("a1", 1, 1)
	h.must(200, "PUT", "/v1/agents/a1", map[string]any{"capacity": map[string]int{"chat": 1}, "groups": []string{"g1"}})
	h.must(201, "POST", "/v1/conversations", map[string]any{"id": "c1", "channel": "chat", "group": "g1"})
	h.must(201, "POST", "/v1/conversations", map[string]any{"id": "c2", "channel": "chat", "group": "g1"})
	h.req("BREW", "/v1/conversations", nil) // any token is a method to net/http
	r := h.req("GET", "/metrics", nil)
	if r.Status != http.StatusOK {
		t.Fatalf("metrics: %d", r.Status)
	}
	body := string(r.Body)
	for _, want := range []string{
		`omnirouter_queue_depth{channel="chat",group="g1"} 1`,
		`omnirouter_queue_oldest_wait_seconds{channel="chat",group="g1"}`,
		`omnirouter_capacity_used{channel="chat"} 1`,
		`omnirouter_raft_state{state="Leader"} 1`,
		`omnirouter_raft_term 2`,
		`omnirouter_raft_applied_index 7`,
		`omnirouter_http_request_duration_seconds_count{code="201",method="POST",route="/v1/conversations"} 2`,
		`omnirouter_apply_duration_seconds_count{command="create_conversation",result="ok"} 2`,
		`omnirouter_offers_total{channel="chat",outcome="made"}`,
		`omnirouter_agents{status="online"} 1`,
		`omnirouter_raft_leader_changes_total`,
		`method="other"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
			defer t.Log(body)
		}
	}
	if strings.Contains(body, "BREW") {
		t.Error("an unknown method became a label value of its own")
	}
}

func TestInvariantsEndpoint(t *testing.T) {
	h := newHarness(t, withAuth(testAuth(t)))
	h.token = tokOperator
	h.agent("a1", 1, 1)
	h.must(201, "POST", "/v1/conversations", map[string]any{"id": "c1", "channel": "chat"})
	r := h.must(200, "GET", "/v1/debug/invariants", nil)
	if r["ok"] != true || len(r["violations"].([]any)) != 0 {
		t.Fatalf("invariants: %v", r)
	}
	h.token = tokRouter
	h.fails(403, "forbidden", "GET", "/v1/debug/invariants", nil)
}

// TestLongAnswersAreSized: an answer over net/http's 2 KB chunking
// threshold (a conversation with its transcript) carries its length and is
// not chunked (gin's c.Data, under writeJSON, sets Content-Length): it
// goes out in fewer writes, and the client knows its size up front.
func TestLongAnswersAreSized(t *testing.T) {
	h := newHarness(t)
	h.must(201, "POST", "/v1/conversations", map[string]any{"id": "c1", "channel": "messaging", "message": strings.Repeat("x", 1500)})
	h.must(200, "POST", "/v1/conversations/c1/messages", map[string]string{"author": "visitor", "text": strings.Repeat("y", 1500)})
	resp, err := http.Get(h.srv.URL + "/v1/conversations/c1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || len(body) < 3000 {
		t.Fatalf("GET: %d, %d bytes", resp.StatusCode, len(body))
	}
	if len(resp.TransferEncoding) != 0 || resp.ContentLength != int64(len(body)) {
		t.Fatalf("answer of %d bytes sent with transfer encoding %v, length %d", len(body), resp.TransferEncoding, resp.ContentLength)
	}
}

// TestCrossSiteRequestsAreRefused: what a web page could make a browser send
// changes nothing. A body must be JSON (a restore's, octet-stream): a
// "simple" text/plain request is 415; a request from another Origin is 403;
// and without an auth file only loopback Host names are served (a rebound
// DNS name is not).
func TestCrossSiteRequestsAreRefused(t *testing.T) {
	h := newHarness(t)
	create := `{"id":"c1","channel":"chat"}`
	h.fails(415, "unsupported_media_type", "POST", "/v1/conversations", create, "Content-Type", "text/plain")
	h.fails(415, "unsupported_media_type", "POST", "/v1/conversations", create, "Content-Type", "application/x-www-form-urlencoded")
	h.fails(415, "unsupported_media_type", "PUT", "/v1/policy", `{"routing":{"mode":"external"}}`, "Content-Type", "text/plain")
	h.fails(415, "unsupported_media_type", "POST", "/v1/cluster/restore", "backup", "Content-Type", "text/plain")
	h.fails(403, "cross_origin", "POST", "/v1/conversations", create, "Origin", "http://evil.example")
	h.fails(403, "cross_origin", "GET", "/v1/agents", nil, "Origin", "null")
	h.fails(404, "conversation_not_found", "GET", "/v1/conversations/c1", nil)
	// The node's own pages may call it; so may clients that send no Origin.
	h.must(201, "POST", "/v1/conversations", create, "Origin", h.srv.URL, "Content-Type", "application/json; charset=utf-8")
	if p := h.must(200, "GET", "/v1/policy", nil); p["routing"].(map[string]any)["mode"] != "auto" {
		t.Fatalf("a refused policy change applied: %v", p)
	}

	loop := newHarness(t, func(c *Config) { c.LoopbackHostsOnly = true })
	loop.fails(403, "host_not_allowed", "GET", "/v1/agents", nil, "Host", "evil.example:8080")
	loop.fails(403, "host_not_allowed", "POST", "/v1/conversations", create, "Host", "10.0.0.5:8080")
	for _, host := range []string{"localhost:8080", "127.0.0.1:8080", "[::1]:8080", "app.localhost"} {
		loop.must(200, "GET", "/v1/agents", nil, "Host", host)
	}
}
