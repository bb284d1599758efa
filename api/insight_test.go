package api

import (
	"fmt"
	"testing"
)

func TestExplainAPI(t *testing.T) {
	h := newHarness(t)
	h.agent("a1", 1, 0)
	h.agent("a2", 1, 0)
	h.must(200, "PUT", "/v1/agents/a1", map[string]any{"name": "a1", "capacity": map[string]int{"chat": 1}, "skills": []string{"fr"}})
	h.must(200, "PUT", "/v1/agents/a2", map[string]any{"name": "a2", "capacity": map[string]int{"chat": 1}, "skills": []string{"de"}})
	h.must(201, "POST", "/v1/conversations", map[string]any{"id": "c1", "channel": "chat"}) // offered to a1
	h.must(201, "POST", "/v1/conversations", map[string]any{"id": "c2", "channel": "chat", "skills": []string{"fr"}})

	e := h.must(200, "GET", "/v1/conversations/c2/explain", nil)
	if e["id"] != "c2" || e["state"] != "queued" || e["channel"] != "chat" || e["position"] != 1.0 || e["queue_length"] != 1.0 ||
		e["agents_considered"] != 2.0 || e["eligible_agents"] != 0.0 || e["agent_id"] != nil {
		t.Fatalf("explain: %v", e)
	}
	got := map[string]string{}
	for _, c := range e["causes"].([]any) {
		c := c.(map[string]any)
		got[c["cause"].(string)] = fmt.Sprintf("%v %v %v", c["count"], c["agents"], c["detail"])
	}
	want := map[string]string{"missing_skill": "1 [a2] fr", "no_capacity": "1 [a1] a1 1/1"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("causes %v, want %v", got, want)
	}

	e = h.must(200, "GET", "/v1/conversations/c1/explain?consistency=stale", nil)
	if e["state"] != "offered" || e["agent_id"] != "a1" || e["position"] != nil || len(e["causes"].([]any)) != 0 {
		t.Fatalf("explain of an offered conversation: %v", e)
	}
	h.fails(404, "conversation_not_found", "GET", "/v1/conversations/nope/explain", nil)
	h.fails(422, "invalid_consistency", "GET", "/v1/conversations/c1/explain?consistency=maybe", nil)
}

func TestPolicyPreviewAPI(t *testing.T) {
	h := newHarness(t)
	h.must(200, "PUT", "/v1/policy", map[string]any{"routing": map[string]any{"mode": "external"}})
	h.agent("a1", 1, 0)
	h.must(201, "POST", "/v1/conversations", map[string]any{"id": "c1", "channel": "chat"})
	h.must(201, "POST", "/v1/conversations", map[string]any{"id": "c2", "channel": "chat"})

	p := h.must(200, "POST", "/v1/policy/preview", map[string]any{"routing": map[string]any{"mode": "auto"}})
	offers := p["offers"].([]any)
	if len(offers) != 1 || fmt.Sprint(offers[0]) != "map[agent_id:a1 conversation_id:c1 state:offered]" {
		t.Fatalf("offers %v", offers)
	}
	agents := p["agents"].([]any)
	if len(agents) != 1 {
		t.Fatalf("agents %v", agents)
	}
	a := agents[0].(map[string]any)
	if a["id"] != "a1" || a["load_before"].(map[string]any)["chat"] != 0.0 || a["load_after"].(map[string]any)["chat"] != 1.0 ||
		a["capacity"].(map[string]any)["chat"] != 1.0 {
		t.Fatalf("agent %v", a)
	}
	totals := p["totals"].(map[string]any)
	if totals["offers"] != 1.0 || totals["withdrawn"] != 0.0 || totals["agents"] != 1.0 {
		t.Fatalf("totals %v", totals)
	}
	if p["policy"].(map[string]any)["routing"].(map[string]any)["mode"] != "auto" {
		t.Fatalf("policy in the preview: %v", p["policy"])
	}
	for _, k := range []string{"withdrawn", "counted", "uncounted"} {
		if l, ok := p[k].([]any); !ok || len(l) != 0 {
			t.Fatalf("%s: %v, want []", k, p[k])
		}
	}

	// Nothing was proposed.
	if pol := h.must(200, "GET", "/v1/policy", nil); pol["routing"].(map[string]any)["mode"] != "external" {
		t.Fatalf("the preview changed the policy: %v", pol)
	}
	if c := h.must(200, "GET", "/v1/conversations/c1", nil); c["state"] != "queued" {
		t.Fatalf("the preview offered c1: %v", c["state"])
	}

	// Bad bodies: the statuses of PUT /v1/policy.
	h.fails(422, "", "POST", "/v1/policy/preview", map[string]any{"routing": map[string]any{"mode": "sometimes"}})
	h.fails(422, "", "POST", "/v1/policy/preview", map[string]any{"no": map[string]any{"such": "field"}})
	h.fails(400, "malformed_json", "POST", "/v1/policy/preview", "{")
	h.fails(415, "unsupported_media_type", "POST", "/v1/policy/preview", "{}", "Content-Type", "text/plain")
}
