package api

import (
	"fmt"
	"testing"
)

func TestTransferAPI(t *testing.T) {
	h := newHarness(t)
	h.agent("a1", 1, 1)
	h.agent("a2", 1, 1)
	h.must(201, "POST", "/v1/conversations", map[string]any{"id": "c1", "channel": "chat", "message": "hi"})
	c := h.must(200, "GET", "/v1/conversations/c1", nil)
	holder := str(c, "agent_id")
	other := map[string]string{"a1": "a2", "a2": "a1"}[holder]
	h.must(200, "POST", "/v1/conversations/c1/accept", map[string]string{"agent_id": holder})
	h.fails(422, "invalid_transfer", "POST", "/v1/conversations/c1/transfer", map[string]string{"agent_id": holder})
	h.fails(422, "invalid_id", "POST", "/v1/conversations/c1/transfer", map[string]string{"to_group": "g"})
	h.fails(404, "agent_not_found", "POST", "/v1/conversations/c1/transfer", map[string]string{"agent_id": holder, "to_agent": "nobody"})
	c = h.must(200, "POST", "/v1/conversations/c1/transfer?transcript=full", map[string]string{"agent_id": holder, "to_agent": other, "note": "VIP"})
	if str(c, "state") != "offered" || str(c, "agent_id") != other {
		t.Fatalf("transferred: %v", c)
	}
	tr := c["transcript"].([]any)
	if last := tr[len(tr)-1].(map[string]any); last["author"] != "system" || last["text"] != "VIP" {
		t.Fatalf("note: %v", last)
	}
	h.fails(409, "not_assigned", "POST", "/v1/conversations/c1/transfer", map[string]string{"agent_id": holder, "to_group": "g"})
}

func TestPatchConversationAPI(t *testing.T) {
	h := newHarness(t)
	h.must(201, "POST", "/v1/conversations", map[string]any{"id": "c1", "channel": "chat"})
	h.must(201, "POST", "/v1/conversations", map[string]any{"id": "c2", "channel": "chat", "optional_skills": []string{"vip"},
		"group": "tier1", "secondary_groups": []string{"tier2"}})
	c := h.must(200, "PATCH", "/v1/conversations/c2", map[string]any{"priority": 5})
	if c["priority"] != 5.0 || c["optional_skills"].([]any)[0] != "vip" || c["secondary_groups"].([]any)[0] != "tier2" {
		t.Fatalf("patched: %v", c)
	}
	q := h.must(200, "GET", "/v1/queue", nil)
	if first := q["items"].([]any)[0].(map[string]any); first["id"] != "c2" || first["position"] != 1.0 {
		t.Fatalf("queue after the patch: %v", q)
	}
	h.fails(422, "invalid_update", "PATCH", "/v1/conversations/c1", map[string]any{})
	h.fails(422, "invalid_priority", "PATCH", "/v1/conversations/c1", map[string]any{"priority": 5000})
	h.fails(422, "unknown_field", "PATCH", "/v1/conversations/c1", map[string]any{"channel": "voice"})
	h.fails(404, "conversation_not_found", "PATCH", "/v1/conversations/nope", map[string]any{"priority": 1})
}

func TestDeleteAgentAPI(t *testing.T) {
	h := newHarness(t)
	h.agent("a1", 1, 0)
	h.must(201, "POST", "/v1/conversations", map[string]any{"id": "c1", "channel": "chat"})
	h.fails(409, "agent_busy", "DELETE", "/v1/agents/a1", nil)
	h.fails(422, "invalid_force", "DELETE", "/v1/agents/a1?force=maybe", nil)
	if r := h.req("DELETE", "/v1/agents/a1?force=true", nil); r.Status != 204 {
		t.Fatalf("forced delete: %d %s", r.Status, r.Body)
	}
	h.fails(404, "agent_not_found", "GET", "/v1/agents/a1", nil)
	if c := h.must(200, "GET", "/v1/conversations/c1", nil); str(c, "state") != "queued" {
		t.Fatalf("c1 after its agent was removed: %v", c)
	}
	h.fails(404, "agent_not_found", "DELETE", "/v1/agents/a1", nil)
}

func TestListsAPI(t *testing.T) {
	h := newHarness(t)
	h.agent("a1", 0, 1)
	for i := range 250 {
		body := map[string]any{"id": fmt.Sprintf("c%03d", i), "channel": []string{"chat", "voice"}[i%2]}
		if i%5 == 0 {
			body["group"] = "vip"
		}
		h.must(201, "POST", "/v1/conversations", body)
	}
	h.must(201, "POST", "/v1/conversations", map[string]any{"id": "m1", "channel": "messaging", "message": "hi"}) // offered to a1
	var ids []string
	after := ""
	for pages := 0; ; pages++ {
		p := h.must(200, "GET", "/v1/conversations?limit=100&after="+after, nil)
		for _, c := range p["conversations"].([]any) {
			ids = append(ids, c.(map[string]any)["id"].(string))
		}
		if after = str(p, "next"); after == "" {
			if pages != 2 {
				t.Fatalf("%d pages", pages+1)
			}
			break
		}
	}
	if len(ids) != 251 || ids[0] != "c000" || ids[250] != "m1" {
		t.Fatalf("%d ids: %v ... %v", len(ids), ids[:2], ids[len(ids)-2:])
	}
	for i := 1; i < len(ids); i++ {
		if ids[i] <= ids[i-1] {
			t.Fatalf("not in id order at %d: %s, %s", i, ids[i-1], ids[i])
		}
	}
	count := func(query string) int {
		return len(h.must(200, "GET", "/v1/conversations?limit=1000&"+query, nil)["conversations"].([]any))
	}
	if n := count("channel=voice"); n != 125 {
		t.Fatalf("voice: %d", n)
	}
	if n := count("group=vip&channel=chat"); n != 25 {
		t.Fatalf("vip chats: %d", n)
	}
	if n := count("state=offered&agent_id=a1"); n != 1 {
		t.Fatalf("offered to a1: %d", n)
	}
	h.fails(422, "invalid_limit", "GET", "/v1/conversations?limit=1001", nil)
	h.fails(422, "invalid_state", "GET", "/v1/conversations?state=lost", nil)
	h.fails(422, "invalid_channel", "GET", "/v1/conversations?channel=fax", nil)

	q := h.must(200, "GET", "/v1/queue?channel=voice&group=vip&limit=3", nil)
	items := q["items"].([]any)
	if len(items) != 3 {
		t.Fatalf("queue: %v", q)
	}
	// Positions are in the voice queue, whatever the group filter: every
	// fifth conversation is vip, and voice are the odd ones.
	for i, it := range items {
		it := it.(map[string]any)
		if it["channel"] != "voice" || it["group"] != "vip" || it["position"] != float64(3+5*i) {
			t.Fatalf("item %d: %v", i, it)
		}
	}
}

func TestStatsAPI(t *testing.T) {
	h := newHarness(t)
	h.agent("a1", 2, 0)
	h.must(201, "POST", "/v1/conversations", map[string]any{"id": "c1", "channel": "chat"}) // offered to a1
	h.must(201, "POST", "/v1/conversations", map[string]any{"id": "c2", "channel": "chat", "group": "sales"})
	h.must(201, "POST", "/v1/conversations", map[string]any{"id": "v1", "channel": "voice"})
	st := h.must(200, "GET", "/v1/stats", nil)
	if st["at"] == nil {
		t.Fatalf("stats without at: %v", st)
	}
	rows := map[string]map[string]any{}
	for _, r := range st["channels"].([]any) {
		r := r.(map[string]any)
		rows[r["channel"].(string)+"/"+r["group"].(string)] = r
	}
	chat, voice := rows["chat/"], rows["voice/"]
	if chat["offered"] != 1.0 || chat["capacity_total"] != 2.0 || chat["capacity_used"] != 1.0 || chat["agents"].(map[string]any)["online"] != 1.0 {
		t.Fatalf("chat row: %v", chat)
	}
	if voice["waiting"] != 1.0 || chat["waiting"] != 1.0 || rows["chat/sales"]["waiting"] != 1.0 {
		t.Fatalf("voice %v, chat/sales %v", voice, rows["chat/sales"])
	}
	windows := st["windows"].([]any)
	if len(windows) != 3*len(rows) {
		t.Fatalf("%d windows for %d rows", len(windows), len(rows))
	}
	w := windows[0].(map[string]any)
	if w["window"] != "5m" || w["channel"] != "chat" || w["created"] != 2.0 || w["service_level"] != nil {
		t.Fatalf("first window: %v", w)
	}
}

// GET /v1/agents pages with limit and after; without them it is every
// agent. total counts them all.
func TestAgentPages(t *testing.T) {
	h := newHarness(t)
	for _, id := range []string{"a1", "a2", "a3", "a4", "a5"} {
		h.agent(id, 1, 0)
	}
	all := h.must(200, "GET", "/v1/agents", nil)
	if len(all["agents"].([]any)) != 5 || all["next"] != "" || all["total"] != 5.0 {
		t.Fatalf("all agents: %v", all)
	}
	var ids []string
	after := ""
	for pages := 0; ; pages++ {
		p := h.must(200, "GET", "/v1/agents?limit=2&after="+after, nil)
		for _, a := range p["agents"].([]any) {
			ids = append(ids, a.(map[string]any)["id"].(string))
		}
		if p["total"] != 5.0 || pages > 3 {
			t.Fatalf("page: %v", p)
		}
		if after = p["next"].(string); after == "" {
			break
		}
	}
	if fmt.Sprint(ids) != "[a1 a2 a3 a4 a5]" {
		t.Fatalf("paged ids %v", ids)
	}
	if p := h.must(200, "GET", "/v1/agents?after=a4", nil); len(p["agents"].([]any)) != 1 || p["next"] != "" {
		t.Fatalf("after a4: %v", p)
	}
	h.fails(422, "invalid_limit", "GET", "/v1/agents?limit=0", nil)
	h.fails(422, "invalid_limit", "GET", "/v1/agents?limit=1001", nil)
}
