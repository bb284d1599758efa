package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/omnirouter/omnirouter/routing"
)

func TestWebhooksAPI(t *testing.T) {
	h := newHarness(t)
	h.must(201, "POST", "/v1/conversations", map[string]any{"id": "c0", "channel": "messaging"})
	newest := func() float64 {
		var last uint64
		_, _ = h.fake.Read(t.Context(), Stale, func(m *routing.Machine) { last = m.LastEventID() })
		return float64(last)
	}
	before := newest()

	w := h.must(201, "POST", "/v1/webhooks", map[string]any{"id": "tickets", "url": "https://crm.example.com/hooks",
		"events": []string{"ticket.created", "conversation.ended", "ticket.created"}, "secret": "whsec_1"})
	if w["id"] != "tickets" || w["url"] != "https://crm.example.com/hooks" || w["state"] != "active" ||
		w["cursor"] != before || w["lag"] != 0.0 || w["skipped"] != 0.0 || w["created_at"] == nil ||
		w["last_success_at"] != nil || w["last_error"] != nil {
		t.Fatalf("created: %v", w)
	}
	if ev, _ := w["events"].([]any); len(ev) != 2 || ev[0] != "conversation.ended" || ev[1] != "ticket.created" {
		t.Fatalf("events %v, want them sorted and unique", w["events"])
	}
	for _, r := range []response{h.req("GET", "/v1/webhooks/tickets", nil), h.req("GET", "/v1/webhooks", nil)} {
		if r.Status != 200 || bytes.Contains(r.Body, []byte("whsec_1")) || bytes.Contains(r.Body, []byte(`"secret"`)) {
			t.Fatalf("the secret is shown: %d %s", r.Status, r.Body)
		}
	}

	// Bad input: 422 and nothing changes.
	list := string(h.req("GET", "/v1/webhooks", nil).Body)
	for _, c := range []struct {
		body map[string]any
		code string
	}{
		{map[string]any{"url": "ftp://x.example.com", "events": []string{"*"}, "secret": "s"}, routing.CodeInvalidURL},
		{map[string]any{"url": "/relative", "events": []string{"*"}, "secret": "s"}, routing.CodeInvalidURL},
		{map[string]any{"events": []string{"*"}, "secret": "s"}, routing.CodeInvalidURL},
		{map[string]any{"url": "https://x.example.com", "events": []string{"conversation.exploded"}, "secret": "s"}, routing.CodeInvalidEvents},
		{map[string]any{"url": "https://x.example.com", "events": []string{}, "secret": "s"}, routing.CodeInvalidEvents},
		{map[string]any{"url": "https://x.example.com", "secret": "s"}, routing.CodeInvalidEvents},
		{map[string]any{"url": "https://x.example.com", "events": []string{"*"}, "secret": ""}, routing.CodeInvalidSecret},
		{map[string]any{"url": "https://x.example.com", "events": []string{"*"}}, routing.CodeInvalidSecret},
		{map[string]any{"id": "a/b", "url": "https://x.example.com", "events": []string{"*"}, "secret": "s"}, routing.CodeInvalidID},
		{map[string]any{"url": "https://x.example.com", "events": []string{"*"}, "secret": "s", "paused": true}, "unknown_field"},
		{map[string]any{"url": "https://x.example.com", "events": []string{"*"}, "secret": "s", "colour": "red"}, "unknown_field"},
	} {
		h.fails(422, c.code, "POST", "/v1/webhooks", c.body)
	}
	h.fails(400, "malformed_json", "POST", "/v1/webhooks", "{")
	h.fails(409, routing.CodeWebhookExists, "POST", "/v1/webhooks", map[string]any{"id": "tickets", "url": "https://x.example.com", "events": []string{"*"}, "secret": "s"})
	if got := string(h.req("GET", "/v1/webhooks", nil).Body); got != list {
		t.Fatalf("refused requests changed the subscriptions:\n%s\n%s", list, got)
	}

	// Without an id: made by the server, the same for a retried key.
	a := h.must(201, "POST", "/v1/webhooks", map[string]any{"url": "http://10.1.2.3:8000/x", "events": []string{"*"}, "secret": "s"},
		"Idempotency-Key", "k1")
	b := h.must(201, "POST", "/v1/webhooks", map[string]any{"url": "http://10.1.2.3:8000/x", "events": []string{"*"}, "secret": "s"},
		"Idempotency-Key", "k1")
	if id := str(a, "id"); !strings.HasPrefix(id, "wh_") || str(b, "id") != id {
		t.Fatalf("ids %q and %q: want one wh_ id for a retried key", id, str(b, "id"))
	}
	c := h.must(201, "POST", "/v1/webhooks", map[string]any{"url": "http://10.1.2.3:8000/x", "events": []string{"*"}, "secret": "s"})
	if str(c, "id") == str(a, "id") || !strings.HasPrefix(str(c, "id"), "wh_") {
		t.Fatalf("a second subscription without a key got id %q", str(c, "id"))
	}
	all := h.must(200, "GET", "/v1/webhooks", nil)["webhooks"].([]any)
	if len(all) != 3 || all[0].(map[string]any)["id"] != "tickets" || str(all[1].(map[string]any), "id") >= str(all[2].(map[string]any), "id") {
		t.Fatalf("list %v, want 3 by id", all)
	}

	// A password in the URL is not shown either.
	if w := h.must(201, "POST", "/v1/webhooks", map[string]any{"id": "basic", "url": "https://hooks:pa55w0rd@crm.example.com/in",
		"events": []string{"*"}, "secret": "s"}); w["url"] != "https://hooks:xxxxx@crm.example.com/in" {
		t.Fatalf("url shown as %v", w["url"])
	}
	h.must(204, "DELETE", "/v1/webhooks/basic", nil)

	// Lag counts the events after the cursor.
	h.must(201, "POST", "/v1/conversations", map[string]any{"id": "c1", "channel": "messaging"})
	if w := h.must(200, "GET", "/v1/webhooks/tickets", nil); w["lag"] != newest()-before || w["lag"] == 0.0 {
		t.Fatalf("lag %v, want %v", w["lag"], newest()-before)
	}

	// Updates.
	w = h.must(200, "PUT", "/v1/webhooks/tickets", map[string]any{"url": "https://crm.example.com/v2", "events": []string{"*"}, "secret": "whsec_2"})
	if w["url"] != "https://crm.example.com/v2" || fmt.Sprint(w["events"]) != "[*]" {
		t.Fatalf("updated: %v", w)
	}
	if w := h.must(200, "PUT", "/v1/webhooks/tickets", map[string]any{"paused": true}); w["state"] != "paused" {
		t.Fatalf("paused: %v", w)
	}
	if w := h.must(200, "PUT", "/v1/webhooks/tickets", map[string]any{"paused": false}); w["state"] != "active" {
		t.Fatalf("resumed: %v", w)
	}
	list = string(h.req("GET", "/v1/webhooks", nil).Body)
	h.fails(422, "invalid_update", "PUT", "/v1/webhooks/tickets", map[string]any{})
	h.fails(422, routing.CodeInvalidURL, "PUT", "/v1/webhooks/tickets", map[string]any{"url": "mailto:x@example.com", "paused": true})
	h.fails(422, routing.CodeInvalidEvents, "PUT", "/v1/webhooks/tickets", map[string]any{"events": []string{"nope"}})
	h.fails(422, routing.CodeInvalidSecret, "PUT", "/v1/webhooks/tickets", map[string]any{"secret": ""})
	h.fails(422, "invalid_id", "PUT", "/v1/webhooks/tickets", map[string]any{"id": "other", "paused": true})
	h.fails(404, routing.CodeWebhookNotFound, "PUT", "/v1/webhooks/nope", map[string]any{"paused": true})
	if got := string(h.req("GET", "/v1/webhooks", nil).Body); got != list {
		t.Fatalf("refused updates changed the subscriptions")
	}

	// Delete.
	h.must(204, "DELETE", "/v1/webhooks/tickets", nil)
	h.fails(404, routing.CodeWebhookNotFound, "GET", "/v1/webhooks/tickets", nil)
	h.fails(404, routing.CodeWebhookNotFound, "DELETE", "/v1/webhooks/tickets", nil)
}

func TestWebhooksAreForOperators(t *testing.T) {
	h := newHarness(t, withAuth(testAuth(t)))
	h.token = tokOperator
	h.must(201, "POST", "/v1/webhooks", map[string]any{"id": "w1", "url": "https://x.example.com", "events": []string{"*"}, "secret": "s"})
	routes := []struct {
		method, path string
		body         any
	}{
		{"POST", "/v1/webhooks", map[string]any{"url": "https://x.example.com", "events": []string{"*"}, "secret": "s"}},
		{"GET", "/v1/webhooks", nil},
		{"GET", "/v1/webhooks/w1", nil},
		{"PUT", "/v1/webhooks/w1", map[string]any{"paused": true}},
		{"DELETE", "/v1/webhooks/w1", nil},
	}
	for _, tok := range []string{tokRouter, tokAgentA1} {
		h.token = tok
		for _, r := range routes {
			h.fails(403, "forbidden", r.method, r.path, r.body)
		}
	}
	h.token = tokOperator
	for _, r := range routes {
		if st := h.req(r.method, r.path, r.body).Status; st >= 400 {
			t.Errorf("%s %s as operator: %d", r.method, r.path, st)
		}
	}
}

// TestEventJSONIsTheEventsView: a delivery's body is the event exactly as
// GET /v1/events lists it.
func TestEventJSONIsTheEventsView(t *testing.T) {
	h := newHarness(t)
	h.agent("a1", 2, 2)
	h.must(201, "POST", "/v1/conversations", map[string]any{"id": "c1", "channel": "chat", "message": "hello"})
	h.must(200, "POST", "/v1/conversations/c1/end", map[string]any{"by": "visitor"})
	var page struct {
		Events []json.RawMessage `json:"events"`
	}
	if err := json.Unmarshal(h.req("GET", "/v1/events?after=0", nil).Body, &page); err != nil || len(page.Events) < 5 {
		t.Fatalf("events: %v (%d)", err, len(page.Events))
	}
	var evs []routing.Event
	_, _ = h.fake.Read(t.Context(), Stale, func(m *routing.Machine) { evs, _ = m.Events(0, 1000) })
	if len(evs) != len(page.Events) {
		t.Fatalf("%d events in the state, %d listed", len(evs), len(page.Events))
	}
	for i := range evs {
		b, err := EventJSON(&evs[i])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, page.Events[i]) {
			t.Fatalf("event %d (%s):\nEventJSON %s\nlisted    %s", evs[i].ID, evs[i].Type, b, page.Events[i])
		}
	}
}
