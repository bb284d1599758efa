package api

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/omnirouter/omnirouter/cluster"
	"github.com/omnirouter/omnirouter/internal/testutil"
	"github.com/omnirouter/omnirouter/routing"
)

func TestEventsLongPoll(t *testing.T) {
	h := newHarness(t)
	h.agent("a1", 1, 0)
	page := h.must(200, "GET", "/v1/events", nil)
	evs := page["events"].([]any)
	if len(evs) == 0 {
		t.Fatal("no events")
	}
	first := evs[0].(map[string]any)
	for _, k := range []string{"id", "type", "at", "data"} {
		if _, ok := first[k]; !ok {
			t.Fatalf("event lacks %s: %v", k, first)
		}
	}
	next := uint64(page["next"].(float64))
	if next != uint64(evs[len(evs)-1].(map[string]any)["id"].(float64)) {
		t.Fatalf("next %d is not the last id: %v", next, page)
	}
	// Nothing new: without wait the answer is empty at once, next unchanged.
	empty := h.must(200, "GET", "/v1/events?after="+strconv.FormatUint(next, 10), nil)
	if len(empty["events"].([]any)) != 0 || uint64(empty["next"].(float64)) != next {
		t.Fatalf("empty page: %v", empty)
	}
	// limit
	one := h.must(200, "GET", "/v1/events?limit=1", nil)
	if len(one["events"].([]any)) != 1 || one["next"] != 1.0 {
		t.Fatalf("limit=1: %v", one)
	}

	// A long-poll returns as soon as an event arrives.
	done := make(chan map[string]any, 1)
	go func() {
		r, err := http.Get(h.srv.URL + "/v1/events?wait=20s&after=" + strconv.FormatUint(next, 10))
		if err != nil {
			done <- nil
			return
		}
		defer r.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(r.Body).Decode(&m)
		done <- m
	}()
	h.fake.waitForWaiters(t, 1)
	h.must(201, "POST", "/v1/conversations", map[string]any{"id": "c1", "channel": "chat"})
	select {
	case m := <-done:
		if m == nil || len(m["events"].([]any)) == 0 {
			t.Fatalf("long-poll answer: %v", m)
		}
		e := m["events"].([]any)[0].(map[string]any)
		if uint64(e["id"].(float64)) != next+1 || e["conversation_id"] != "c1" {
			t.Fatalf("long-poll event: %v", e)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("long-poll did not return after an event")
	}

	// A wait with nothing happening ends empty after the wait.
	h.fake.mu.Lock()
	last := h.fake.m.LastEventID()
	h.fake.mu.Unlock()
	start := time.Now()
	p := h.must(200, "GET", "/v1/events?wait=200ms&after="+strconv.FormatUint(last, 10), nil)
	if len(p["events"].([]any)) != 0 || time.Since(start) < 200*time.Millisecond {
		t.Fatalf("idle long-poll: %v after %v", p, time.Since(start))
	}

	h.fails(422, "invalid_after", "GET", "/v1/events?after=-1", nil)
	h.fails(422, "invalid_wait", "GET", "/v1/events?wait=forever", nil)
	h.fails(422, "invalid_limit", "GET", "/v1/events?limit=0", nil)
	h.fails(422, "invalid_limit", "GET", "/v1/events?limit=100000", nil)
}

func TestEventsExpiredIs410(t *testing.T) {
	ae := toAPIError(routing.ErrEventsExpired)
	if ae.Status != http.StatusGone || ae.Code != "events_expired" {
		t.Fatalf("ErrEventsExpired maps to %d %s", ae.Status, ae.Code)
	}
}

func TestEventsSSE(t *testing.T) {
	h := newHarness(t)
	h.agent("a1", 1, 0)
	h.must(201, "POST", "/v1/conversations", map[string]any{"id": "c1", "channel": "chat", "message": "hi"})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	open := func(lastID string) (*bufio.Reader, func()) {
		req, _ := http.NewRequestWithContext(ctx, "GET", h.srv.URL+"/v1/events", nil)
		req.Header.Set("Accept", "text/event-stream")
		if lastID != "" {
			req.Header.Set("Last-Event-ID", lastID)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
			t.Fatalf("SSE: %d %v", resp.StatusCode, resp.Header)
		}
		return bufio.NewReader(resp.Body), func() { resp.Body.Close() }
	}
	type sse struct {
		id, event string
		data      map[string]any
	}
	readEvent := func(br *bufio.Reader) sse {
		var e sse
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("reading SSE: %v", err)
			}
			line = strings.TrimRight(line, "\n")
			switch {
			case line == "" && e.id != "":
				return e
			case strings.HasPrefix(line, "id: "):
				e.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				e.event = line[7:]
			case strings.HasPrefix(line, "data: "):
				if err := json.Unmarshal([]byte(line[6:]), &e.data); err != nil {
					t.Fatalf("SSE data: %v", err)
				}
			}
		}
	}
	br, closeBody := open("")
	var seen []sse
	h.fake.mu.Lock()
	last := h.fake.m.LastEventID()
	h.fake.mu.Unlock()
	for uint64(len(seen)) < last {
		seen = append(seen, readEvent(br))
	}
	if seen[0].id != "1" || seen[0].data["type"] != seen[0].event {
		t.Fatalf("first SSE event: %+v", seen[0])
	}
	// A new event arrives on the open stream.
	h.must(200, "POST", "/v1/conversations/c1/accept", map[string]string{"agent_id": "a1"})
	e := readEvent(br)
	if e.id != strconv.FormatUint(last+1, 10) {
		t.Fatalf("live SSE event: %+v", e)
	}
	closeBody()

	// Resuming with Last-Event-ID starts right after it.
	br2, close2 := open("2")
	defer close2()
	if e := readEvent(br2); e.id != "3" {
		t.Fatalf("resumed at %+v, want id 3", e)
	}
}

func TestEventDataIsRelevant(t *testing.T) {
	ended := eventView(&routing.Event{ID: 9, Type: routing.EventEnded, At: 1, ConversationID: "c1",
		Data: routing.EventData{Reason: "visitor_ended", Transcript: []routing.Message{{Text: "hi", At: 1}}}})
	if len(ended.Data) != 3 || ended.Data["missed"] != false || ended.Data["reason"] != "visitor_ended" {
		t.Fatalf("ended data: %v", ended.Data)
	}
	st := eventView(&routing.Event{ID: 1, Type: routing.EventAgentStatus, Data: routing.EventData{Status: "online", Previous: "offline"}})
	if len(st.Data) != 2 || st.Data["status"] != "online" {
		t.Fatalf("status data: %v", st.Data)
	}
	q := eventView(&routing.Event{ID: 1, Type: routing.EventQueued})
	if len(q.Data) != 0 {
		t.Fatalf("queued data: %v", q.Data)
	}
}

func TestMetricsCountEvents(t *testing.T) {
	h := newHarness(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.api.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	h.fake.waitForWaiters(t, 1) // Run follows the log from here

	h.agent("a1", 1, 0)
	h.agent("a2", 1, 0)
	h.must(201, "POST", "/v1/conversations", map[string]any{"id": "c1", "channel": "chat"})
	c := h.must(200, "GET", "/v1/conversations/c1", nil)
	first := str(c, "agent_id")
	other := map[string]string{"a1": "a2", "a2": "a1"}[first]
	h.must(200, "POST", "/v1/conversations/c1/reject", map[string]string{"agent_id": first})
	h.must(200, "POST", "/v1/conversations/c1/accept", map[string]string{"agent_id": other})
	h.must(200, "POST", "/v1/conversations/c1/end", map[string]string{"by": "visitor"})

	want := []string{
		`omnirouter_offers_total{channel="chat",outcome="made"} 2`,
		`omnirouter_offers_total{channel="chat",outcome="rejected"} 1`,
		`omnirouter_offers_total{channel="chat",outcome="accepted"} 1`,
		`omnirouter_assignments_total{channel="chat"} 1`,
		`omnirouter_sessions_ended_total{channel="chat",reason="visitor_ended"} 1`,
	}
	testutil.Until(t, 10*time.Second, "the metrics", func() error {
		body := string(h.req("GET", "/metrics", nil).Body)
		for _, w := range want {
			if !strings.Contains(body, w) {
				return fmt.Errorf("no %s", w)
			}
		}
		return nil
	})
}

// TestEventReaderWithNewEventsIsServedLocally: a reader with events after
// its cursor on the node it asks gets them from that node, even when a
// linearizable read cannot be made (a follower cut from its leader);
// a reader with nothing new there is read at its level.
func TestEventReaderWithNewEventsIsServedLocally(t *testing.T) {
	h := newHarness(t)
	h.agent("a1", 1, 1)
	h.must(201, "POST", "/v1/conversations", map[string]any{"id": "c1", "channel": "chat"})
	h.fake.mu.Lock()
	newest := h.fake.m.LastEventID()
	h.fake.linearErr = cluster.ErrNoLeader
	h.fake.mu.Unlock()

	r := h.req("GET", "/v1/events?after=0&wait=1s", nil)
	var page struct {
		Events []struct {
			ID uint64 `json:"id"`
		} `json:"events"`
		Next, Newest uint64
	}
	if r.Status != 200 || json.Unmarshal(r.Body, &page) != nil || len(page.Events) == 0 || page.Events[0].ID != 1 || page.Next != newest {
		t.Fatalf("events after 0 with no leader: %d %s", r.Status, r.Body)
	}
	if r := h.req("GET", "/v1/events?after="+strconv.FormatUint(newest, 10), nil); r.Status != 503 {
		t.Errorf("nothing new, linearizable, no leader: %d %s, want 503", r.Status, r.Body)
	}
	if r := h.req("GET", "/v1/events?consistency=stale&after="+strconv.FormatUint(newest, 10), nil); r.Status != 200 {
		t.Errorf("nothing new, stale: %d %s, want 200", r.Status, r.Body)
	}
}

// longPoll starts GET path in the background; the page (nil on failure)
// arrives on the channel.
func (h *harness) longPoll(path string) <-chan map[string]any {
	done := make(chan map[string]any, 1)
	go func() {
		r, err := http.Get(h.srv.URL + path)
		if err != nil {
			done <- nil
			return
		}
		defer r.Body.Close()
		var m map[string]any
		if r.StatusCode != http.StatusOK || json.NewDecoder(r.Body).Decode(&m) != nil {
			m = nil
		}
		done <- m
	}()
	return done
}

func (h *harness) lastEventID() uint64 {
	h.fake.mu.Lock()
	defer h.fake.mu.Unlock()
	return h.fake.m.LastEventID()
}

func awaitPage(t *testing.T, done <-chan map[string]any, what string) []any {
	t.Helper()
	select {
	case m := <-done:
		if m == nil {
			t.Fatalf("%s: no page", what)
		}
		return m["events"].([]any)
	case <-time.After(15 * time.Second):
		t.Fatalf("%s: no answer", what)
	}
	return nil
}

// TestLongPollLingersForAFullPage: with --events-linger, a long-poll that
// finds fewer events than its limit waits for more, and is answered once a
// full page is there; a full page is answered at once; the linger never
// outlasts the request's wait.
func TestLongPollLingersForAFullPage(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.EventsLinger = time.Hour })
	h.must(201, "POST", "/v1/conversations", map[string]any{"id": "c0", "channel": "chat"})
	after := h.lastEventID()
	h.must(201, "POST", "/v1/conversations", map[string]any{"id": "c1", "channel": "chat"})
	have := int(h.lastEventID() - after)

	// Short page: it waits for the next conversation's events.
	done := h.longPoll(fmt.Sprintf("/v1/events?wait=30s&after=%d&limit=%d", after, have+1))
	h.fake.waitForWaiters(t, 1)
	select {
	case m := <-done:
		t.Fatalf("a short page was answered without lingering: %v", m)
	default:
	}
	h.must(201, "POST", "/v1/conversations", map[string]any{"id": "c2", "channel": "chat"})
	evs := awaitPage(t, done, "short page")
	if len(evs) != have+1 || evs[have].(map[string]any)["conversation_id"] != "c2" {
		t.Fatalf("lingered page holds %d events, want %d ending with c2's: %v", len(evs), have+1, evs)
	}

	// A full page at once, though the linger is an hour and the wait 30s.
	evs = awaitPage(t, h.longPoll(fmt.Sprintf("/v1/events?wait=30s&after=%d&limit=%d", after, have)), "full page")
	if len(evs) != have {
		t.Fatalf("full page holds %d events, want %d", len(evs), have)
	}

	// The wait bounds the linger: a short page comes back after it.
	evs = awaitPage(t, h.longPoll(fmt.Sprintf("/v1/events?wait=300ms&after=%d", after)), "short wait")
	if want := int(h.lastEventID() - after); len(evs) != want {
		t.Fatalf("page after the wait holds %d events, want %d", len(evs), want)
	}
}
