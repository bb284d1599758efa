package api

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/omnirouter/omnirouter/routing"
)

// TestEventCache: an event is encoded once for every reader; another event
// under the same id (after a restore) is encoded anew; an event too large
// to keep is encoded each time, and every answer is the event's own JSON.
func TestEventCache(t *testing.T) {
	var ec eventCache
	e := routing.Event{ID: 7, Type: "conversation.created", At: 1000, ConversationID: "c1"}
	first, err := ec.encode(&e)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(eventView(&e))
	if !bytes.Equal(first, want) {
		t.Fatalf("encoded %s, want %s", first, want)
	}
	if again, _ := ec.encode(&e); &again[0] != &first[0] {
		t.Error("the same event was encoded twice")
	}

	other := routing.Event{ID: 7, Type: "conversation.created", At: 2000, ConversationID: "c9"}
	b, _ := ec.encode(&other)
	if want, _ := json.Marshal(eventView(&other)); !bytes.Equal(b, want) {
		t.Errorf("another event under id 7 answered %s, want %s", b, want)
	}

	big := routing.Event{ID: 8, Type: "agent.updated", At: 1000, AgentID: strings.Repeat("a", maxCachedEvent)}
	b1, _ := ec.encode(&big)
	b2, _ := ec.encode(&big)
	if len(b1) <= maxCachedEvent || &b1[0] == &b2[0] {
		t.Errorf("an event of %d bytes was kept", len(b1))
	}
	if ec.slots[8%eventCacheSlots].Load() != nil {
		t.Error("the large event holds a slot")
	}
}

// TestEventsPageJSON: the page written by hand is the page json.Marshal
// writes, for events with every kind of content.
func TestEventsPageJSON(t *testing.T) {
	var ec eventCache
	page := eventsPageJSON{Next: 41, Newest: 1 << 40}
	for i, e := range []routing.Event{
		{ID: 41, Type: "conversation.created", At: 1, ConversationID: "c<1>&\\"},
		{ID: 42, Type: "agent.updated", At: 2, AgentID: "a\u2028é😀"},
		{ID: 43, Type: "conversation.ended", At: 3, ConversationID: "c1", Data: routing.EventData{Reason: "visitor_left"}},
	} {
		b, err := ec.encode(&e)
		if err != nil {
			t.Fatal(err)
		}
		page.Events = append(page.Events, b)
		want, _ := json.Marshal(page)
		if got := page.appendJSON(nil); !bytes.Equal(got, want) {
			t.Fatalf("page of %d events:\n got %s\nwant %s", i+1, got, want)
		}
	}
	empty := eventsPageJSON{Events: []json.RawMessage{}, Next: 7, Newest: 7}
	if want, _ := json.Marshal(empty); !bytes.Equal(empty.appendJSON(nil), want) {
		t.Fatalf("empty page %s, want %s", empty.appendJSON(nil), want)
	}
}

// BenchmarkEventsPage: a page of 100 events, written by json.Marshal
// (which compacts every event again) and by appendJSON.
func BenchmarkEventsPage(b *testing.B) {
	var ec eventCache
	page := eventsPageJSON{Next: 1, Newest: 100}
	for i := range 100 {
		e := routing.Event{ID: uint64(i + 1), Type: "conversation.offered", At: int64(i), ConversationID: "c-000123", AgentID: "a-0042",
			Data: routing.EventData{Reason: "routed"}}
		raw, _ := ec.encode(&e)
		page.Events = append(page.Events, raw)
	}
	b.Run("json.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(page); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("appendJSON", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = page.appendJSON(make([]byte, 0, 16<<10))
		}
	})
}
