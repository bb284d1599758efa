package routing

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func (h *harness) webhook(id string) Webhook {
	h.t.Helper()
	w, ok := h.m.Webhook(id)
	if !ok {
		h.t.Fatalf("webhook %s not found", id)
	}
	return w
}

// progress is a commit of one subscription's cursor measured on its
// current version.
func (h *harness) progress(id string, cursor uint64, edit func(*WebhookProgress)) {
	h.t.Helper()
	w := h.webhook(id)
	p := WebhookProgress{ID: id, Seq: w.Seq, Version: w.Version, Cursor: cursor}
	if edit != nil {
		edit(&p)
	}
	h.do(CommitWebhooks{Progress: []WebhookProgress{p}})
}

// someEvents emits n events (agent status changes).
func (h *harness) someEvents(n int) {
	h.t.Helper()
	h.do(UpsertAgent{ID: "ev", Name: "events"})
	for i := range n {
		h.do(SetAgentStatus{AgentID: "ev", Status: AgentStatus(1 + i%2)})
	}
}

func TestWebhookSubscriptions(t *testing.T) {
	runBehaviours(t, []behaviour{
		{"a new subscription starts after the newest event; events are normalized", func(h *harness) {
			h.someEvents(3)
			last := h.m.LastEventID()
			h.do(CreateWebhook{ID: "w1", URL: "https://example.com/h", Events: []string{EventEnded, EventQueued, EventEnded}, Secret: "s"})
			w := h.webhook("w1")
			if w.Cursor != last || w.State() != WebhookActive || w.CreatedAt != h.now || w.Version != 1 {
				h.t.Fatalf("new webhook %+v, want cursor %d, active, created now", w, last)
			}
			if !slices.Equal(w.Events, []string{EventEnded, EventQueued}) || !w.Wants(EventQueued) || w.Wants(EventOffered) {
				h.t.Fatalf("events %v", w.Events)
			}
			h.do(CreateWebhook{ID: "w2", URL: "http://10.0.0.1:9000/x", Events: []string{EventQueued, "*"}, Secret: "s"})
			if w2 := h.webhook("w2"); !slices.Equal(w2.Events, []string{"*"}) || !w2.Wants(EventAgentRemoved) {
				h.t.Fatalf("a subscription with * wants %v", w2.Events)
			}
			if ids := h.m.Webhooks(); len(ids) != 2 || ids[0].ID != "w1" || ids[1].ID != "w2" {
				h.t.Fatalf("webhooks %+v, want w1, w2 in id order", ids)
			}
			assertRestoresIdentically(h)
		}},
		{"bad input is refused and changes nothing", func(h *harness) {
			ok := CreateWebhook{ID: "w1", URL: "https://example.com/h", Events: []string{"*"}, Secret: "s"}
			bad := func(edit func(*CreateWebhook), code string) {
				c := ok
				edit(&c)
				h.refuse(c, ErrInvalid, code)
			}
			bad(func(c *CreateWebhook) { c.URL = "ftp://example.com/h" }, CodeInvalidURL)
			bad(func(c *CreateWebhook) { c.URL = "example.com/h" }, CodeInvalidURL)
			bad(func(c *CreateWebhook) { c.URL = "https:///nohost" }, CodeInvalidURL)
			bad(func(c *CreateWebhook) { c.URL = "https://example.com/" + strings.Repeat("x", MaxWebhookURLLen) }, CodeInvalidURL)
			bad(func(c *CreateWebhook) { c.Events = nil }, CodeInvalidEvents)
			bad(func(c *CreateWebhook) { c.Events = []string{"conversation.exploded"} }, CodeInvalidEvents)
			bad(func(c *CreateWebhook) { c.Secret = "" }, CodeInvalidSecret)
			bad(func(c *CreateWebhook) { c.Secret = strings.Repeat("s", MaxWebhookSecretLen+1) }, CodeInvalidSecret)
			bad(func(c *CreateWebhook) { c.ID = "a/b" }, CodeInvalidID)
			h.do(ok)
			h.refuse(ok, ErrConflict, CodeWebhookExists)
			h.refuse(UpdateWebhook{ID: "w1", Set: WebhookSetURL | WebhookSetPaused, URL: "nope", Paused: true}, ErrInvalid, CodeInvalidURL)
			h.refuse(UpdateWebhook{ID: "w1", Set: WebhookSetEvents, Events: []string{"x"}}, ErrInvalid, CodeInvalidEvents)
			h.refuse(UpdateWebhook{ID: "w1", Set: WebhookSetSecret}, ErrInvalid, CodeInvalidSecret)
			h.refuse(UpdateWebhook{ID: "nope", Set: WebhookSetPaused, Paused: true}, ErrNotFound, CodeWebhookNotFound)
			h.refuse(DeleteWebhook{ID: "nope"}, ErrNotFound, CodeWebhookNotFound)
		}},
		{"at most MaxWebhooks subscriptions", func(h *harness) {
			for i := range MaxWebhooks {
				h.do(CreateWebhook{ID: "w" + strings.Repeat("x", i), URL: "https://example.com/h", Events: []string{"*"}, Secret: "s"})
			}
			h.refuse(CreateWebhook{ID: "one-more", URL: "https://example.com/h", Events: []string{"*"}, Secret: "s"}, ErrConflict, CodeTooManyWebhooks)
			h.do(DeleteWebhook{ID: "w"})
			h.do(CreateWebhook{ID: "one-more", URL: "https://example.com/h", Events: []string{"*"}, Secret: "s"})
			assertRestoresIdentically(h)
		}},
		{"updates set the fields given; paused false resumes a failing subscription", func(h *harness) {
			h.do(SetPolicy{Patch: MustPatch("webhooks.disable_after", "1h")})
			h.do(CreateWebhook{ID: "w1", URL: "https://example.com/h", Events: []string{"*"}, Secret: "s"})
			h.do(UpdateWebhook{ID: "w1", Set: WebhookSetURL | WebhookSetSecret, URL: "http://example.org/new", Secret: "s2"})
			w := h.webhook("w1")
			if w.URL != "http://example.org/new" || w.Secret != "s2" || !slices.Equal(w.Events, []string{"*"}) || w.Version != 2 {
				h.t.Fatalf("after update: %+v", w)
			}
			h.do(UpdateWebhook{ID: "w1", Set: WebhookSetPaused, Paused: true})
			if s := h.webhook("w1").State(); s != WebhookPaused {
				h.t.Fatalf("state %s, want paused", s)
			}
			h.do(UpdateWebhook{ID: "w1", Set: WebhookSetPaused, Paused: false})
			start := h.now
			h.progress("w1", 0, func(p *WebhookProgress) { p.FailingSince, p.LastError, p.LastErrorAt = start, "HTTP 500", start })
			h.now += time.Hour.Milliseconds()
			h.progress("w1", 0, func(p *WebhookProgress) { p.FailingSince, p.LastError, p.LastErrorAt = start, "timeout", h.now })
			w = h.webhook("w1")
			if w.State() != WebhookFailing || w.LastError != "timeout" {
				h.t.Fatalf("after an hour of failure: %s %q, want failing", w.State(), w.LastError)
			}
			h.someEvents(2)
			cursor := w.Cursor
			h.do(UpdateWebhook{ID: "w1", Set: WebhookSetPaused, Paused: false})
			w = h.webhook("w1")
			if w.State() != WebhookActive || w.FailingSince != 0 || w.Cursor != cursor {
				h.t.Fatalf("after resuming: %+v, want active from cursor %d", w, cursor)
			}
			assertRestoresIdentically(h)
		}},
		{"a delete frees the id; progress of the deleted subscription is ignored", func(h *harness) {
			h.do(CreateWebhook{ID: "w1", URL: "https://example.com/h", Events: []string{"*"}, Secret: "s"})
			old := h.webhook("w1")
			h.do(DeleteWebhook{ID: "w1"})
			if _, ok := h.m.Webhook("w1"); ok {
				h.t.Fatal("deleted webhook still there")
			}
			h.someEvents(5)
			h.do(CreateWebhook{ID: "w1", URL: "https://example.com/h", Events: []string{"*"}, Secret: "s"})
			fresh := h.webhook("w1")
			if fresh.Seq == old.Seq {
				h.t.Fatal("a new subscription under the same id has the old sequence")
			}
			h.someEvents(3)
			h.do(CommitWebhooks{Progress: []WebhookProgress{{ID: "w1", Seq: old.Seq, Version: old.Version, Cursor: h.m.LastEventID(),
				LastError: "stale", LastErrorAt: h.now}}})
			if w := h.webhook("w1"); w.Cursor != fresh.Cursor || w.LastError != "" {
				h.t.Fatalf("progress of the deleted subscription applied: %+v", w)
			}
		}},
	})
}

func TestWebhookCursorCommits(t *testing.T) {
	runBehaviours(t, []behaviour{
		{"a cursor only moves forward, never past the newest event", func(h *harness) {
			h.do(CreateWebhook{ID: "w1", URL: "https://example.com/h", Events: []string{"*"}, Secret: "s"})
			h.someEvents(10)
			last := h.m.LastEventID()
			h.progress("w1", last-3, nil)
			if c := h.webhook("w1").Cursor; c != last-3 {
				h.t.Fatalf("cursor %d, want %d", c, last-3)
			}
			h.progress("w1", last-6, nil) // an older leader's late commit
			if c := h.webhook("w1").Cursor; c != last-3 {
				h.t.Fatalf("cursor went back to %d", c)
			}
			h.progress("w1", last+50, nil)
			if c := h.webhook("w1").Cursor; c != last {
				h.t.Fatalf("cursor %d beyond the newest event %d", c, last)
			}
		}},
		{"status measured on an older version is not applied, the cursor is", func(h *harness) {
			h.do(CreateWebhook{ID: "w1", URL: "https://example.com/h", Events: []string{"*"}, Secret: "s"})
			v1 := h.webhook("w1")
			h.do(UpdateWebhook{ID: "w1", Set: WebhookSetURL, URL: "https://example.com/fixed"})
			h.someEvents(4)
			h.do(CommitWebhooks{Progress: []WebhookProgress{{ID: "w1", Seq: v1.Seq, Version: v1.Version, Cursor: h.m.LastEventID(),
				LastError: "connection refused", LastErrorAt: h.now, FailingSince: h.now}}})
			w := h.webhook("w1")
			if w.Cursor != h.m.LastEventID() || w.LastError != "" || w.FailingSince != 0 {
				h.t.Fatalf("after a commit of version 1 on version 2: %+v", w)
			}
		}},
		{"status: last success, last error (bounded), failing since; failing after disable_after", func(h *harness) {
			h.do(SetPolicy{Patch: MustPatch("webhooks.disable_after", "10m")})
			h.do(CreateWebhook{ID: "w1", URL: "https://example.com/h", Events: []string{"*"}, Secret: "s"})
			h.someEvents(2)
			ok := h.now
			h.progress("w1", h.m.LastEventID(), func(p *WebhookProgress) { p.LastSuccessAt = ok })
			h.now += time.Minute.Milliseconds()
			failStart := h.now
			long := strings.Repeat("é", MaxWebhookErrorLen) // two bytes each
			h.progress("w1", 0, func(p *WebhookProgress) { p.LastError, p.LastErrorAt, p.FailingSince = long, failStart, failStart })
			w := h.webhook("w1")
			if w.LastSuccessAt != ok || w.FailingSince != failStart || len(w.LastError) > MaxWebhookErrorLen ||
				!strings.HasPrefix(long, w.LastError) || len(w.LastError) < MaxWebhookErrorLen-1 || w.State() != WebhookActive {
				h.t.Fatalf("status %+v", w)
			}
			h.now += (10*time.Minute - time.Millisecond).Milliseconds()
			h.progress("w1", 0, func(p *WebhookProgress) { p.LastError, p.LastErrorAt, p.FailingSince = "HTTP 502", h.now, failStart })
			if s := h.webhook("w1").State(); s != WebhookActive {
				h.t.Fatalf("failing before disable_after: %s", s)
			}
			h.now += 1
			h.progress("w1", 0, func(p *WebhookProgress) { p.FailingSince = failStart })
			if w := h.webhook("w1"); w.State() != WebhookFailing || w.LastError != "HTTP 502" {
				h.t.Fatalf("after disable_after: %s %q", w.State(), w.LastError)
			}
		}},
		{"a success ends the failure run", func(h *harness) {
			h.do(SetPolicy{Patch: MustPatch("webhooks.disable_after", "10m")})
			h.do(CreateWebhook{ID: "w1", URL: "https://example.com/h", Events: []string{"*"}, Secret: "s"})
			start := h.now
			h.progress("w1", 0, func(p *WebhookProgress) { p.FailingSince = start })
			h.now += time.Minute.Milliseconds()
			h.progress("w1", 0, func(p *WebhookProgress) { p.LastSuccessAt = h.now })
			h.now += time.Hour.Milliseconds()
			h.progress("w1", 0, nil)
			if w := h.webhook("w1"); w.State() != WebhookActive || w.FailingSince != 0 {
				h.t.Fatalf("%+v", w)
			}
		}},
		{"one commit carries several subscriptions", func(h *harness) {
			h.do(CreateWebhook{ID: "w1", URL: "https://example.com/1", Events: []string{"*"}, Secret: "s"})
			h.do(CreateWebhook{ID: "w2", URL: "https://example.com/2", Events: []string{"*"}, Secret: "s"})
			h.someEvents(6)
			w1, w2 := h.webhook("w1"), h.webhook("w2")
			last := h.m.LastEventID()
			h.do(CommitWebhooks{Progress: []WebhookProgress{
				{ID: "w1", Seq: w1.Seq, Version: w1.Version, Cursor: last - 1},
				{ID: "w2", Seq: w2.Seq, Version: w2.Version, Cursor: last},
				{ID: "gone", Seq: 99, Version: 1, Cursor: last},
			}})
			if a, b := h.webhook("w1").Cursor, h.webhook("w2").Cursor; a != last-1 || b != last {
				h.t.Fatalf("cursors %d %d, want %d %d", a, b, last-1, last)
			}
		}},
	})
}

func TestWebhookCursorFollowsRetention(t *testing.T) {
	runBehaviours(t, []behaviour{
		{"a cursor that falls out of retention skips ahead and counts the wanted events it skipped", func(h *harness) {
			h.do(SetEventLimits{Limits: EventLimits{Count: 5, Bytes: MaxEventBytes}})
			h.do(UpsertAgent{ID: "a", Name: "a"})
			h.do(CreateWebhook{ID: "status", URL: "https://example.com/h", Events: []string{EventAgentStatus}, Secret: "s"})
			h.do(CreateWebhook{ID: "all", URL: "https://example.com/h", Events: []string{"*"}, Secret: "s"})
			h.do(CreateWebhook{ID: "none", URL: "https://example.com/h", Events: []string{EventEnded}, Secret: "s"})
			start := h.m.LastEventID()
			var emitted []Event
			for i := range 12 {
				emitted = append(emitted, h.do(SetAgentStatus{AgentID: "a", Status: AgentStatus(1 + i%2)}).Events...)
				emitted = append(emitted, h.do(UpsertAgent{ID: "a", Name: "a", Capacity: [4]int{i%3 + 1}}).Events...)
			}
			first := h.m.FirstRetainedEventID()
			var dropped, droppedStatus uint64
			for _, e := range emitted {
				if e.ID > start && e.ID < first {
					dropped++
					if e.Type == EventAgentStatus {
						droppedStatus++
					}
				}
			}
			for _, w := range h.m.Webhooks() {
				if w.Cursor != first-1 {
					h.t.Fatalf("%s: cursor %d, want %d (the oldest retained minus one)", w.ID, w.Cursor, first-1)
				}
			}
			all, none, status := h.webhook("all"), h.webhook("none"), h.webhook("status")
			if all.Skipped != dropped || none.Skipped != 0 || dropped != first-1-start {
				h.t.Fatalf("skipped: all %d (want %d = %d..%d), none %d (want 0)", all.Skipped, dropped, start+1, first-1, none.Skipped)
			}
			if status.Skipped != droppedStatus || droppedStatus == 0 || droppedStatus == dropped {
				h.t.Fatalf("status subscription skipped %d, want %d of %d dropped", status.Skipped, droppedStatus, dropped)
			}
			assertRestoresIdentically(h)
		}},
		{"a caught-up subscription skips nothing", func(h *harness) {
			h.do(SetEventLimits{Limits: EventLimits{Count: 3, Bytes: MaxEventBytes}})
			h.do(CreateWebhook{ID: "w1", URL: "https://example.com/h", Events: []string{"*"}, Secret: "s"})
			for range 10 {
				h.someEvents(1)
				h.progress("w1", h.m.LastEventID(), nil)
			}
			if w := h.webhook("w1"); w.Skipped != 0 || w.Cursor != h.m.LastEventID() {
				h.t.Fatalf("%+v", w)
			}
		}},
		{"lowering the event limits skips too", func(h *harness) {
			h.do(CreateWebhook{ID: "w1", URL: "https://example.com/h", Events: []string{"*"}, Secret: "s"})
			h.someEvents(20)
			h.do(SetEventLimits{Limits: EventLimits{Count: 4, Bytes: MaxEventBytes}})
			if w := h.webhook("w1"); w.Cursor != h.m.FirstRetainedEventID()-1 || w.Skipped == 0 {
				h.t.Fatalf("%+v, first retained %d", w, h.m.FirstRetainedEventID())
			}
		}},
		{"a restored backup's subscriptions continue after the restore", func(h *harness) {
			h.do(CreateWebhook{ID: "w1", URL: "https://example.com/h", Events: []string{"*"}, Secret: "s"})
			h.someEvents(5)
			backup, err := DecodeSnapshot(h.snapshot())
			if err != nil {
				h.t.Fatal(err)
			}
			h.someEvents(5)
			undelivered := backup.LastEventID() - h.webhook("w1").Cursor
			backup.ContinueEventsAfter(h.m.LastEventID())
			w, _ := backup.Webhook("w1")
			if w.Cursor != h.m.LastEventID() || w.Skipped != undelivered {
				h.t.Fatalf("after restore: %+v, want cursor %d skipped %d", w, h.m.LastEventID(), undelivered)
			}
			if err := backup.CheckInvariants(); err != nil {
				h.t.Fatal(err)
			}
		}},
	})
}
