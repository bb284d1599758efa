package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/omnirouter/omnirouter/internal/testutil"
)

func withLongPolls(n int) harnessOpt      { return func(c *Config) { c.MaxLongPolls = n } }
func withAnswerMemory(n int64) harnessOpt { return func(c *Config) { c.AnswerMemory = n } }

type rawPage struct {
	Events []json.RawMessage `json:"events"`
	Next   uint64            `json:"next"`
	Newest uint64            `json:"newest"`
}

func (h *harness) rawEvents(query string) (rawPage, int) {
	h.t.Helper()
	r := h.req("GET", "/v1/events?"+query, nil)
	var p rawPage
	if r.Status != 200 {
		h.t.Fatalf("events?%s: %d %s", query, r.Status, r.Body)
	}
	if err := json.Unmarshal(r.Body, &p); err != nil {
		h.t.Fatal(err)
	}
	return p, len(r.Body)
}

// A page of events stops before MaxEventsPageBytes, however many events
// are asked for, and always carries one; paging from next reads them all.
func TestEventPagesAreBoundedByBytes(t *testing.T) {
	h := newHarness(t, withMaxMessage(1<<20))
	h.agent("a1", 1, 0)
	h.must(201, "POST", "/v1/conversations", map[string]any{"id": "c1", "channel": "chat"})
	h.must(200, "POST", "/v1/conversations/c1/accept", map[string]string{"agent_id": "a1"})
	h.must(200, "PUT", "/v1/policy", map[string]any{"limits": map[string]any{"transcript_bytes": 64 << 20, "transcript_messages": 5000}})
	// HTML characters take six bytes each in JSON: 60 messages of 20 KiB
	// are 7 MiB of events.
	text := strings.Repeat("<", 20<<10)
	for range 60 {
		h.must(200, "POST", "/v1/conversations/c1/messages", map[string]string{"author": "visitor", "text": text})
	}
	p, size := h.rawEvents("limit=1000")
	if size >= MaxEventsPageBytes || len(p.Events) == 0 || len(p.Events) >= 60 {
		t.Fatalf("a page of %d bytes with %d events", size, len(p.Events))
	}
	if p.Newest <= p.Next {
		t.Fatalf("newest %d, next %d: more events are waiting", p.Newest, p.Next)
	}
	seen := len(p.Events)
	for p.Next < p.Newest {
		if p, size = h.rawEvents(fmt.Sprintf("limit=1000&after=%d", p.Next)); size >= MaxEventsPageBytes || len(p.Events) == 0 {
			t.Fatalf("a later page: %d bytes, %d events", size, len(p.Events))
		}
		seen += len(p.Events)
	}
	if uint64(seen) != p.Newest {
		t.Fatalf("paged through %d events of %d", seen, p.Newest)
	}

	// One event over the bound is a page alone.
	// (sent as raw JSON: encoding/json would escape it past the body limit)
	h.must(200, "POST", "/v1/conversations/c1/messages", `{"author":"visitor","text":"`+strings.Repeat("<", 900<<10)+`"}`)
	h.must(200, "POST", "/v1/conversations/c1/messages", map[string]string{"author": "visitor", "text": "after"})
	p, size = h.rawEvents(fmt.Sprintf("limit=1000&after=%d", p.Newest))
	if len(p.Events) != 1 || size < MaxEventsPageBytes {
		t.Fatalf("the huge event: %d events in %d bytes", len(p.Events), size)
	}
	if p, _ = h.rawEvents(fmt.Sprintf("after=%d", p.Next)); len(p.Events) != 1 {
		t.Fatalf("after the huge event: %d events", len(p.Events))
	}
}

// With little answer memory a page stops early rather than wait, and the
// budget is whole again once it is written.
func TestEventPagesShareTheAnswerMemory(t *testing.T) {
	h := newHarness(t, withAnswerMemory(300<<10))
	h.agent("a1", 1, 0)
	h.must(201, "POST", "/v1/conversations", map[string]any{"id": "c1", "channel": "chat"})
	h.must(200, "POST", "/v1/conversations/c1/accept", map[string]string{"agent_id": "a1"})
	for range 10 {
		h.must(200, "POST", "/v1/conversations/c1/messages", map[string]string{"author": "visitor", "text": strings.Repeat("x", 60<<10)})
	}
	total := 0
	for after := uint64(0); ; {
		p, size := h.rawEvents(fmt.Sprintf("limit=1000&after=%d", after))
		if len(p.Events) == 0 {
			break
		}
		if size > 300<<10 {
			t.Fatalf("a page of %d bytes with 300 KiB of answer memory", size)
		}
		total += len(p.Events)
		after = p.Next
	}
	if total < 10 {
		t.Fatalf("read %d events", total)
	}
	testutil.Until(t, 10*time.Second, "the answer memory given back", func() error {
		if used := h.api.answers.used(); used != 0 {
			return fmt.Errorf("%d bytes of answer memory still taken", used)
		}
		return nil
	})
}

// Beyond --max-long-polls a waiting reader gets 429; a read without wait
// is still served, and a slot frees when a waiter returns.
func TestLongPollsAreCapped(t *testing.T) {
	h := newHarness(t, withLongPolls(2))
	h.agent("a1", 1, 0)
	newest := h.must(200, "GET", "/v1/events?limit=1000", nil)["newest"].(float64)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 3)
	wait := func(after float64, query string, accept string) {
		req, _ := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("%s/v1/events?after=%d&%s", h.srv.URL, int(after), query), nil)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- 0
			return
		}
		_, _ = io.Copy(io.Discard, r.Body) // a stream: until it is cut
		r.Body.Close()
		done <- r.StatusCode
	}
	go wait(newest, "wait=20s", "")
	go wait(newest, "", "text/event-stream")
	testutil.Until(t, 5*time.Second, "two readers waiting", func() error {
		select {
		case st := <-done:
			t.Fatalf("a reader returned %d", st)
		default:
		}
		if n := h.api.longPolls.Load(); n != 2 {
			return fmt.Errorf("%d waiting", n)
		}
		return nil
	})
	r := h.req("GET", fmt.Sprintf("/v1/events?after=%d&wait=5s", int(newest)), nil)
	if r.Status != http.StatusTooManyRequests || r.errCode(t) != "too_many_long_polls" || r.Header.Get("Retry-After") == "" {
		t.Fatalf("a third waiter: %d %s", r.Status, r.Body)
	}
	r = h.req("GET", "/v1/events?accept=x", nil, "Accept", "text/event-stream")
	if r.Status != http.StatusTooManyRequests {
		t.Fatalf("a third stream: %d", r.Status)
	}
	h.must(200, "GET", fmt.Sprintf("/v1/events?after=%d", int(newest)), nil) // no wait: served

	// An event answers the long-poll: its slot is free again.
	h.agent("a2", 1, 0)
	if st := <-done; st != 200 {
		t.Fatalf("the long-poll: %d", st)
	}
	testutil.Until(t, 5*time.Second, "one reader waiting", func() error {
		if n := h.api.longPolls.Load(); n != 1 {
			return fmt.Errorf("%d waiting", n)
		}
		return nil
	})
	newest = h.must(200, "GET", "/v1/events?limit=1000", nil)["newest"].(float64)
	go wait(newest, "wait=20s", "")
	testutil.Until(t, 5*time.Second, "two readers waiting again", func() error {
		if n := h.api.longPolls.Load(); n != 2 {
			return fmt.Errorf("%d waiting", n)
		}
		return nil
	})
	cancel()
	for range 2 {
		<-done
	}
	testutil.Until(t, 5*time.Second, "no reader waiting", func() error {
		if n := h.api.longPolls.Load(); n != 0 {
			return fmt.Errorf("%d waiting", n)
		}
		return nil
	})
}

func TestByteBudget(t *testing.T) {
	b := newByteBudget(100)
	if !b.tryAcquire(60) || b.tryAcquire(50) || !b.tryAcquire(40) {
		t.Fatal("tryAcquire past the size")
	}
	got := make(chan error, 1)
	go func() { got <- b.acquire(context.Background(), 500) }() // clamped to the whole budget
	select {
	case err := <-got:
		t.Fatalf("acquired with the budget full: %v", err)
	default:
	}
	b.release(60)
	select {
	case err := <-got:
		t.Fatalf("acquired all with 40 bytes taken: %v", err)
	default:
	}
	b.release(40)
	if err := <-got; err != nil || b.used() != 100 {
		t.Fatalf("acquire: %v, used %d", err, b.used())
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.acquire(ctx, 1); err == nil {
		t.Fatal("acquired past the size")
	}
	b.release(500)
	if b.used() != 0 {
		t.Fatalf("used %d after release", b.used())
	}
}

// A large answer (a long transcript here) takes its bytes from the answer
// memory while it is written: with the memory taken it is 503 busy with
// Retry-After at once, small answers go on, and it is served once the
// memory is free.
func TestLargeAnswersTakeTheAnswerMemory(t *testing.T) {
	h := newHarness(t, withAnswerMemory(200<<10))
	h.agent("a1", 1, 0)
	h.must(201, "POST", "/v1/conversations", map[string]any{"id": "c1", "channel": "chat"})
	h.must(200, "POST", "/v1/conversations/c1/accept", map[string]string{"agent_id": "a1"})
	for range 3 {
		h.must(200, "POST", "/v1/conversations/c1/messages", map[string]string{"author": "visitor", "text": strings.Repeat("x", 40<<10)})
	}
	if !h.api.answers.tryAcquire(150 << 10) {
		t.Fatal("the answer memory is taken already")
	}
	r := h.req("GET", "/v1/conversations/c1", nil)
	if r.Status != http.StatusServiceUnavailable || r.errCode(t) != "busy" || r.Header.Get("Retry-After") == "" {
		t.Fatalf("a large answer with the memory taken: %d %s", r.Status, r.Body)
	}
	h.must(200, "GET", "/v1/conversations/c1?transcript=none", nil)
	h.api.answers.release(150 << 10)
	if r := h.req("GET", "/v1/conversations/c1", nil); r.Status != 200 || len(r.Body) < 120<<10 {
		t.Fatalf("with the memory free: %d, %d bytes", r.Status, len(r.Body))
	}
	// The handler gives the bytes back once it returns, which may be just
	// after the client has the whole answer.
	testutil.Until(t, 10*time.Second, "the answer memory given back", func() error {
		if used := h.api.answers.used(); used != 0 {
			return fmt.Errorf("%d bytes still taken after the answer", used)
		}
		return nil
	})
}
