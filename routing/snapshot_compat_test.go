package routing

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/omnirouter/omnirouter/capacity"
)

// TestReadsVersion1Snapshot: a snapshot written before conversations and
// keys were stored in hash order (testdata/snapshot-v1.bin: 2 agents, 12
// conversations, one accepted) still restores, and re-encodes as the
// current version with the same state.
func TestReadsVersion1Snapshot(t *testing.T) {
	_, m := restoreFixture(t, "testdata/snapshot-v1.bin", snapshotV1)
	if m.AgentCount() != 2 || m.ConversationCount() != 12 || m.keys.Len() != 1 {
		t.Fatalf("restored %d agents, %d conversations, %d keys", m.AgentCount(), m.ConversationCount(), m.keys.Len())
	}
	c, ok := m.Conversation("c00")
	if !ok || c.AgentID != "a" {
		t.Fatalf("c00 = %+v, want held by a", c)
	}
	again := reencodesCanonically(t, m)

	// The v1 order rule still guards v1 input: swapping the version byte
	// of a current snapshot (arrival order: c00, m01, c02, ...) makes its
	// conversations out of order.
	mislabelled := bytes.Clone(again)
	mislabelled[len(snapshotMagic)] = snapshotV1
	if _, err := DecodeSnapshot(mislabelled); err == nil {
		t.Fatal("current lists accepted under the v1 order rule")
	}
}

// TestReadsVersion2Snapshot: a snapshot written while the idempotency
// records were kept in B-trees by key hash and by expiry
// (testdata/snapshot-v2.bin: keys key-0..key-5 stored two per millisecond,
// listed in hash order) restores with the records in the order the
// expiry B-tree had them, replays them, expires them, and re-encodes as
// the current version.
func TestReadsVersion2Snapshot(t *testing.T) {
	data, m := restoreFixture(t, "testdata/snapshot-v2.bin", 2)
	var got []string
	m.keys.each(0, func(rec **keyRecord) bool { got = append(got, (*rec).Key); return true })
	want := []string{"key-0", "key-1", "key-2", "key-3", "key-4", "key-5"}
	slices.SortFunc(want, func(a, b string) int {
		// stored in pairs per millisecond: (0,1) (2,3) (4,5); within one,
		// by hash as the expiry B-tree ordered them
		if a[4]/2 != b[4]/2 {
			return int(a[4]) - int(b[4])
		}
		return cmp.Compare(hashString(a), hashString(b))
	})
	if !slices.Equal(got, want) {
		t.Fatalf("records restored in order %v, want %v", got, want)
	}
	for i := range 6 {
		out := m.Apply(m.now, fmt.Sprintf("key-%d", i), CreateConversation{ID: fmt.Sprintf("c%d", i), Channel: capacity.Messaging})
		if !out.Replayed || out.Err != nil || out.Conversation.ID != fmt.Sprintf("c%d", i) {
			t.Fatalf("key-%d: %+v, want the replayed create", i, out)
		}
	}
	reencodesCanonically(t, m)
	// Version 3's order rules guard version 3 input: the fixture's lists
	// (hash order) under a version 3 label are out of order.
	mislabelled := bytes.Clone(data)
	mislabelled[len(snapshotMagic)] = 3
	if _, err := DecodeSnapshot(mislabelled); err == nil || !strings.Contains(err.Error(), "out of order") {
		t.Fatalf("hash-ordered conversations accepted as version 3: %v", err)
	}
	var seqs []uint64
	m.Conversations(func(c *Conversation) bool { seqs = append(seqs, c.Seq); return true })
	if len(seqs) != 6 || !slices.IsSorted(seqs) {
		t.Fatalf("conversations restored in arrival order %v", seqs)
	}

	m.Apply(m.now+m.policy.IdempotencyRetention.Milliseconds(), "", Tick{})
	if n := m.keys.Len(); n != 0 || len(m.keyByName) != 0 {
		t.Fatalf("%d records (%d keys) kept after the retention", n, len(m.keyByName))
	}
}

// reencodesCanonically: m's snapshot is in the current version, and
// decoding and re-encoding it gives the same bytes. It returns them.
func reencodesCanonically(t *testing.T, m *Machine) []byte {
	t.Helper()
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
	return again
}

// TestRestoreRefusesSharedArrival: two conversations with one arrival
// sequence (an index of one entry for two) are corruption, in the old
// formats, whose lists are not in arrival order, as in the current one.
func TestRestoreRefusesSharedArrival(t *testing.T) {
	ids := []string{"x1", "x2"}
	if hashString(ids[0]) > hashString(ids[1]) {
		ids[0], ids[1] = ids[1], ids[0] // hash order = arrival order: a valid version-2 list
	}
	h := newHarness(t)
	for _, id := range ids {
		h.do(CreateConversation{ID: id, Channel: capacity.Messaging})
	}
	h.m.convByID[ids[1]].Seq = h.m.convByID[ids[0]].Seq
	snap := h.snapshot()
	for version, want := range map[byte]string{2: "two conversations have arrival sequence", snapshotVersion: "out of order"} {
		snap[len(snapshotMagic)] = version
		_, err := DecodeSnapshot(snap)
		if !errors.Is(err, ErrBadSnapshot) || !strings.Contains(err.Error(), want) {
			t.Fatalf("version %d: two conversations at one arrival: %v, want %q", version, err, want)
		}
	}
}

// restoreFixture reads a snapshot fixture of the given format version and
// restores it (DecodeSnapshot checks the invariants).
func restoreFixture(t *testing.T, path string, version byte) ([]byte, *Machine) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if v := data[len(snapshotMagic)]; v != version {
		t.Fatalf("%s is version %d", path, v)
	}
	m, err := DecodeSnapshot(data)
	if err != nil {
		t.Fatal(err)
	}
	return data, m
}
