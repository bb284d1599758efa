package cluster

import (
	"reflect"
	"testing"

	"github.com/omnirouter/omnirouter/capacity"
	"github.com/omnirouter/omnirouter/routing"
)

// FuzzDecodeEntry: any log entry is decoded or refused with an error, never
// a panic, and what decodes re-encodes to an entry that decodes the same.
func FuzzDecodeEntry(f *testing.F) {
	for _, cmd := range []routing.Command{
		benchCreate,
		routing.UpsertAgent{ID: "a1", Name: "Ana", Capacity: capacity.Limits{3, 5}, Skills: []string{"fr"}},
		routing.Release{AgentID: "a1", ConversationID: "m1", TicketStatus: routing.TicketPending, SetTicket: true},
		routing.Tick{},
	} {
		e := commandEntry(1767225600000, "k1", cmd)
		f.Add(encodeEntry(&e))
	}
	f.Add(encodeBatch([]entry{commandEntry(1, "a", benchCreate), commandEntry(2, "", routing.Tick{})}))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := decodeEntry(data)
		if err != nil {
			return
		}
		again, err := decodeEntry(encodeEntry(&e))
		if err != nil {
			t.Fatalf("re-encoded entry does not decode: %v", err)
		}
		if !reflect.DeepEqual(e, again) {
			t.Fatalf("round trip changed the entry:\n%#v\n%#v", e, again)
		}
	})
}
