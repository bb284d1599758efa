package routing

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/omnirouter/omnirouter/capacity"
)

// FuzzDecodeSnapshot: any snapshot body (what the checksum covers: a
// mutated file would nearly always be refused by the checksum first) is
// either refused with an error or decodes to a machine whose invariants
// hold and which re-encodes to the same bytes.
func FuzzDecodeSnapshot(f *testing.F) {
	h := newHarness(&testing.T{})
	h.onlineAgent("a", 2, 2)
	h.webChat("c1")
	h.messaging("m1")
	h.apply("k", Accept{ConversationID: "c1", AgentID: "a"})
	f.Add(h.snapshot()[:len(h.snapshot())-trailerLen])
	empty := snapshotBytes(f, New())
	f.Add(empty[:len(empty)-trailerLen])
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := decodeSnapshotBody(body)
		if err != nil {
			return
		}
		again := snapshotBytes(t, m)
		if !bytes.Equal(again[:len(again)-trailerLen], body) {
			t.Fatalf("decoded snapshot re-encodes differently")
		}
	})
}

// FuzzCommands drives the machine with a command sequence derived from the
// input and checks the invariants after every command, and that a refused
// command emits nothing.
func FuzzCommands(f *testing.F) {
	f.Add([]byte("seed-0"), uint16(200))
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, uint16(1000))
	f.Fuzz(func(t *testing.T, seed []byte, n uint16) {
		var s [16]byte
		copy(s[:], seed)
		m := New()
		g := &commandGen{r: rand.New(rand.NewPCG(binary.LittleEndian.Uint64(s[:8]), binary.LittleEndian.Uint64(s[8:]))),
			m: m, convs: 40, agents: 4}
		now := t0
		for i := 0; i < int(n%2000); i++ {
			step, cmd := g.next()
			now += step
			out := m.Apply(now, "", cmd)
			if err := m.CheckInvariants(); err != nil {
				t.Fatalf("op %d %T%+v: %v", i, cmd, cmd, err)
			}
			if out.Err != nil && out.Conversation != nil {
				t.Fatalf("refused command returned an entity: %+v", out)
			}
		}
	})
}

// FuzzCreateConversation feeds arbitrary field values to the command that
// takes the most free-form input: it is refused or applied, never a panic,
// and a refusal changes nothing.
func FuzzCreateConversation(f *testing.F) {
	f.Add("c1", uint8(0), uint8(1), 0, "fr", "support", "hello")
	f.Add("", uint8(9), uint8(9), -5000, "", "", "")
	f.Fuzz(func(t *testing.T, id string, ch, client uint8, priority int, skill, group, text string) {
		m := New()
		m.Apply(t0, "", UpsertAgent{ID: "a", Capacity: capacity.Limits{1, 1}, Skills: []string{"fr"}, Groups: []string{"support"}})
		m.Apply(t0, "", SetAgentStatus{AgentID: "a", Status: StatusOnline})
		before := snapshotBytes(t, m)
		out := m.Apply(t0, "", CreateConversation{ID: id, Channel: capacity.Channel(ch), Client: Client(client),
			Priority: priority, Skills: []string{skill}, Group: group, Message: text})
		if err := m.CheckInvariants(); err != nil {
			t.Fatal(err)
		}
		if out.Err != nil && !bytes.Equal(before, snapshotBytes(t, m)) {
			t.Fatalf("refused create changed the state: %v", out.Err)
		}
	})
}
