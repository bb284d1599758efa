package api

import (
	"fmt"
	"strings"
	"testing"
)

// A conversation's transcript is paged on GET, left out of write answers
// and list pages unless asked, and a bad transcript query changes nothing.
func TestTranscriptInAnswers(t *testing.T) {
	h := newHarness(t)
	h.agent("a1", 1, 0)
	h.must(201, "POST", "/v1/conversations", map[string]any{"id": "c1", "channel": "chat", "message": "m0"})
	h.must(200, "POST", "/v1/conversations/c1/accept", map[string]string{"agent_id": "a1"})
	big := strings.Repeat("x", 50<<10)
	for i := 1; i < 20; i++ {
		c := h.must(200, "POST", "/v1/conversations/c1/messages", map[string]string{"author": "visitor", "text": fmt.Sprintf("m%d %s", i, big)})
		if c["transcript"] != nil || c["transcript_length"] != float64(i+1) {
			t.Fatalf("message answer carries %v, length %v", c["transcript"], c["transcript_length"])
		}
		if r := h.req("POST", "/v1/conversations/c1/presence", map[string]string{"event": "activity"}); r.Status != 200 || len(r.Body) > 4096 {
			t.Fatalf("presence answer: %d, %d bytes", r.Status, len(r.Body))
		}
	}
	// Every message answer was small; the whole transcript is near 1 MiB.
	full := h.req("GET", "/v1/conversations/c1", nil)
	if full.Status != 200 || len(full.Body) < 19*50<<10 {
		t.Fatalf("GET: %d, %d bytes", full.Status, len(full.Body))
	}
	page := h.must(200, "GET", "/v1/conversations/c1?transcript_from=5&transcript_limit=3", nil)
	tr := page["transcript"].([]any)
	if len(tr) != 3 || page["transcript_length"] != 20.0 || !strings.HasPrefix(tr[0].(map[string]any)["text"].(string), "m5 ") {
		t.Fatalf("page of the transcript: %d messages, length %v", len(tr), page["transcript_length"])
	}
	if last := h.must(200, "GET", "/v1/conversations/c1?transcript_from=19", nil); len(last["transcript"].([]any)) != 1 {
		t.Fatalf("from the last message: %v", last["transcript"])
	}
	if past := h.must(200, "GET", "/v1/conversations/c1?transcript_from=99", nil); len(past["transcript"].([]any)) != 0 {
		t.Fatalf("from beyond the end: %v", past["transcript"])
	}
	if none := h.must(200, "GET", "/v1/conversations/c1?transcript=none", nil); none["transcript"] != nil {
		t.Fatalf("transcript=none: %v", none["transcript"])
	}
	if r := h.req("GET", "/v1/conversations", nil); r.Status != 200 || len(r.Body) > 4096 {
		t.Fatalf("a list page: %d, %d bytes", r.Status, len(r.Body))
	}
	if end := h.must(200, "POST", "/v1/conversations/c1/end?transcript=full", map[string]string{"by": "visitor"}); len(end["transcript"].([]any)) != 20 {
		t.Fatalf("end with transcript=full: %d messages", len(end["transcript"].([]any)))
	}

	// A bad query is refused before anything is proposed.
	h.must(201, "POST", "/v1/conversations", map[string]any{"id": "c2", "channel": "chat", "message": "hi"})
	before := h.must(200, "GET", "/v1/conversations/c2", nil)
	for _, q := range []string{"transcript=some", "transcript_from=1", "transcript=full&transcript_limit=2"} {
		h.fails(422, "invalid_transcript", "POST", "/v1/conversations/c2/messages?"+q, map[string]string{"author": "visitor", "text": "again"})
	}
	if after := h.must(200, "GET", "/v1/conversations/c2", nil); after["transcript_length"] != before["transcript_length"] {
		t.Fatalf("a refused message was added: %v → %v", before["transcript_length"], after["transcript_length"])
	}
	for _, q := range []string{"transcript_from=-1", "transcript_from=x", "transcript_limit=0", "transcript_limit=1001", "transcript=none&transcript_from=1"} {
		h.fails(422, "invalid_transcript", "GET", "/v1/conversations/c2?"+q, nil)
	}
}
