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
