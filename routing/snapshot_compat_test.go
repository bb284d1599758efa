package routing

import (
	"bytes"
	"os"
	"testing"
)

// TestReadsVersion1Snapshot: a snapshot written before conversations and
// keys were stored in hash order (testdata/snapshot-v1.bin: 2 agents, 12
// conversations, one accepted) still restores, and re-encodes as the
// current version with the same state.
func TestReadsVersion1Snapshot(t *testing.T) {
	data, err := os.ReadFile("testdata/snapshot-v1.bin")
	if err != nil {
		t.Fatal(err)
	}
	if v := data[len(snapshotMagic)]; v != snapshotV1 {
		t.Fatalf("fixture is version %d", v)
	}
	m, err := DecodeSnapshot(data)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.CheckInvariants(); err != nil {
		t.Fatalf("invariants: %v", err)
	}
	if m.AgentCount() != 2 || m.ConversationCount() != 12 || m.keys.Len() != 1 {
		t.Fatalf("restored %d agents, %d conversations, %d keys", m.AgentCount(), m.ConversationCount(), m.keys.Len())
	}
	c, ok := m.Conversation("c00")
	if !ok || c.AgentID != "a" {
		t.Fatalf("c00 = %+v, want held by a", c)
	}
	again := snapshotBytes(t, m)
	if again[len(snapshotMagic)] != snapshotVersion {
		t.Fatalf("re-encoded as version %d", again[len(snapshotMagic)])
	}
	m2, err := DecodeSnapshot(again)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(snapshotBytes(t, m2), again) {
		t.Fatal("current-version snapshot is not canonical")
	}

	// The v1 order rule still guards v1 input: swapping the version byte
	// of a v2 snapshot (hash order) makes its lists out of order.
	mislabelled := bytes.Clone(again)
	mislabelled[len(snapshotMagic)] = snapshotV1
	if _, err := DecodeSnapshot(mislabelled); err == nil {
		t.Fatal("v2 lists accepted under the v1 order rule")
	}
}
