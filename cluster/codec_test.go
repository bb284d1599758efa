package cluster

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/omnirouter/omnirouter/capacity"
	"github.com/omnirouter/omnirouter/internal/wire"
	"github.com/omnirouter/omnirouter/routing"
)

// sampleCommands are a few commands of different kinds (routing's own
// tests cover every kind's fields).
func sampleCommands() []routing.Command {
	return []routing.Command{
		benchCreate,
		routing.UpsertAgent{ID: "a1", Name: "Ana", Capacity: capacity.Limits{3, 5}, Skills: []string{"en", "fr"}},
		routing.Release{AgentID: "a1", ConversationID: "c1", TicketStatus: routing.TicketOnHold, SetTicket: true},
		routing.SetPolicy{Patch: routing.MustPatch("routing.offer_timeout", "45s", "routing.mode", "external")},
		routing.Tick{},
	}
}

// TestCommandEnvelopeRoundTrip: a command's envelope carries its kind, the
// format version, the leader's time and the key around routing's encoding.
func TestCommandEnvelopeRoundTrip(t *testing.T) {
	for _, cmd := range sampleCommands() {
		in := commandEntry(1_700_000_000_123, "key-"+cmd.Kind().String(), cmd)
		b := encodeEntry(&in)
		if b[0] != byte(cmd.Kind()) || b[1] != envelopeVersion {
			t.Fatalf("%s: envelope starts %v", cmd.Kind(), b[:2])
		}
		out, err := decodeEntry(b)
		if err != nil {
			t.Fatalf("%s: %v", cmd.Kind(), err)
		}
		if !reflect.DeepEqual(in, out) {
			t.Errorf("%s: round trip\n in: %#v\nout: %#v", cmd.Kind(), in, out)
		}
		for i := range len(b) {
			if _, err := decodeEntry(b[:i]); err == nil {
				t.Errorf("%s: prefix of %d bytes decoded", cmd.Kind(), i)
			}
		}
	}
}

func TestClusterEntriesRoundTrip(t *testing.T) {
	cmds := sampleCommands()
	var sub []entry
	for i, c := range cmds {
		sub = append(sub, commandEntry(int64(i), "", c))
	}
	sub = append(sub, entry{typ: typeRegister, node: NodeInfo{ID: "n1", RaftAddr: "127.0.0.1:1", HTTPAddr: "http://x"}})
	cases := []entry{
		{typ: typeRegister, node: NodeInfo{ID: "n1", RaftAddr: "127.0.0.1:7000", HTTPAddr: "http://127.0.0.1:8081"}},
		{typ: typeDeregister, id: "n2"},
		{typ: typeRestore, data: []byte("snapshot bytes")},
		{typ: typeBatch, batch: sub},
	}
	for _, in := range cases {
		b := encodeEntry(&in)
		out, err := decodeEntry(b)
		if err != nil {
			t.Fatalf("type %d: %v", in.typ, err)
		}
		if !reflect.DeepEqual(in, out) {
			t.Errorf("type %d: round trip\n in: %#v\nout: %#v", in.typ, in, out)
		}
	}
	// encodeBatch is the batcher's encoding of the same thing.
	if got, want := encodeBatch(sub), encodeEntry(&cases[3]); string(got) != string(want) {
		t.Errorf("encodeBatch differs from a batch entry")
	}
}

func TestDecodeRejectsGarbage(t *testing.T) {
	valid := encodeEntry(&entry{typ: typeRegister, node: NodeInfo{ID: "n1"}})
	bad := map[string][]byte{
		"empty":           nil,
		"unknown type":    {99, 1, 0, 0},
		"type zero":       {0, 1},
		"unknown version": {byte(routing.KindTick), 9, 0, 0},
		"bad enum":        append([]byte{byte(routing.KindSetAgentStatus), 1, 0, 0, 2, 'a', '1'}, 200),
		"bad channel":     {byte(routing.KindCreate), 1, 0, 0, 1, 'c', 7, 0, 0, 0, 0, 0, 0, 0},
		"trailing":        append(append([]byte(nil), valid...), 0),
		"nested batch":    {typeBatch, 1, 1, typeBatch, 1, 0},
		"huge length":     {byte(routing.KindRemoveAgent), 1, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"unknown policy":  {byte(routing.KindSetPolicy), 1, 0, 0, 0x80, 0x80, 0x04},
	}
	for name, b := range bad {
		if _, err := decodeEntry(b); !errors.Is(err, wire.ErrCorrupt) {
			t.Errorf("%s: err = %v, want wire.ErrCorrupt", name, err)
		}
	}
	// Random input never panics.
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		b := make([]byte, r.IntN(40))
		for i := range b {
			b[i] = byte(r.UintN(256))
		}
		if r.IntN(2) == 0 && len(b) > 1 {
			b[0] = byte(1 + r.IntN(15))
			b[1] = 1
		}
		decodeEntry(b)
	}
}

func TestFSMApplyStopsOnUndecodableEntry(t *testing.T) {
	f := newFSM()
	defer func() {
		r := recover()
		if r == nil || !strings.Contains(r.(string), "does not diverge") {
			t.Fatalf("recover() = %v, want a fatal panic", r)
		}
	}()
	f.Apply(&raft.Log{Index: 7, Term: 2, Type: raft.LogCommand, Data: []byte{250, 1}})
}

func TestApplyErrorMapping(t *testing.T) {
	for _, c := range []struct {
		err              error
		retry, ambiguous bool
	}{
		{raft.ErrNotLeader, true, false},
		{raft.ErrLeadershipTransferInProgress, true, false},
		{raft.ErrEnqueueTimeout, true, false},
		{raft.ErrLeadershipLost, false, true},
		{raft.ErrRaftShutdown, false, true},
		{errors.New("disk on fire"), false, true},
	} {
		got := classifyApplyErr(c.err)
		if errors.Is(got, errRetry) != c.retry || errors.Is(got, ErrAmbiguous) != c.ambiguous || !errors.Is(got, c.err) {
			t.Errorf("%v → %v", c.err, got)
		}
	}
	if classifyApplyErr(nil) != nil {
		t.Error("nil → non-nil")
	}
}

// snapshotFile is the raft snapshot file f writes.
func snapshotFile(t *testing.T, f *fsm) []byte {
	t.Helper()
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := snap.(*fsmSnapshot).write(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestRaftSnapshotFileIsChecked: a raft snapshot file with any byte changed
// or cut short is refused on load, never restored.
func TestRaftSnapshotFileIsChecked(t *testing.T) {
	f := newFSM()
	for i := range 5 {
		e := commandEntry(int64(1+i), "", agentCmd(i))
		f.Apply(&raft.Log{Index: uint64(i + 1), Data: encodeEntry(&e)})
	}
	f.nodes["n1"] = NodeInfo{ID: "n1", RaftAddr: "127.0.0.1:7000", HTTPAddr: "http://127.0.0.1:8080"}
	file := snapshotFile(t, f)
	if err := newFSM().Restore(io.NopCloser(bytes.NewReader(file))); err != nil {
		t.Fatalf("the intact file: %v", err)
	}
	for i := range file {
		bad := bytes.Clone(file)
		bad[i] ^= 0x10
		if err := newFSM().Restore(io.NopCloser(bytes.NewReader(bad))); err == nil {
			t.Fatalf("byte %d of %d changed, and the file was restored", i, len(file))
		}
	}
	for cut := range len(file) {
		if err := newFSM().Restore(io.NopCloser(bytes.NewReader(file[:cut]))); err == nil {
			t.Fatalf("cut to %d of %d bytes, and the file was restored", cut, len(file))
		}
	}
}

// TestRegistryReadsDoNotWaitForApply: the node registry follows register,
// deregister and restore entries, and node() answers while an apply holds
// the state's lock (as a batch's apply does).
func TestRegistryReadsDoNotWaitForApply(t *testing.T) {
	f := newFSM()
	n1 := NodeInfo{ID: "n1", RaftAddr: "127.0.0.1:7001", HTTPAddr: "http://127.0.0.1:8081"}
	n2 := NodeInfo{ID: "n2", RaftAddr: "127.0.0.1:7002", HTTPAddr: "http://127.0.0.1:8082"}
	for i, e := range []entry{{typ: typeRegister, node: n1}, {typ: typeRegister, node: n2}, {typ: typeDeregister, id: "n1"}} {
		f.Apply(&raft.Log{Index: uint64(i + 1), Data: encodeEntry(&e)})
	}
	if _, ok := f.node("n1"); ok {
		t.Error("n1 still registered after its deregister entry")
	}
	if got, ok := f.node("n2"); !ok || got != n2 {
		t.Errorf("n2 = %+v, %v; want %+v", got, ok, n2)
	}

	restored := newFSM()
	if err := restored.Restore(io.NopCloser(bytes.NewReader(snapshotFile(t, f)))); err != nil {
		t.Fatal(err)
	}
	if got, ok := restored.node("n2"); !ok || got != n2 {
		t.Errorf("after restore n2 = %+v, %v; want %+v", got, ok, n2)
	}

	restored.mu.Lock() // an apply in progress
	defer restored.mu.Unlock()
	found := make(chan bool, 1)
	go func() {
		_, ok := restored.node("n2")
		found <- ok
	}()
	select {
	case ok := <-found:
		if !ok {
			t.Error("n2 not found while the state is locked")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("node() waited for the apply's lock")
	}
}
