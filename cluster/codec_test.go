package cluster

import (
	"errors"
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

func ptr[T any](v T) *T { return &v }

// allCommands has one command of every kind with every field set.
func allCommands() []routing.Command {
	return []routing.Command{
		routing.UpsertAgent{ID: "a1", Name: "Ana", Capacity: capacity.Limits{3, 5}, Skills: []string{"en", "fr"}, Groups: []string{"support"}},
		routing.RemoveAgent{ID: "a1"},
		routing.SetAgentStatus{AgentID: "a1", Status: routing.StatusTransfersOnly},
		routing.CreateConversation{ID: "c1", Channel: capacity.Messaging, Client: routing.ClientMobileSDK, PushEnabled: true,
			Priority: -7, Skills: []string{"fr"}, Group: "g", VisitorID: "v1", Message: "bonjour"},
		routing.PostMessage{ConversationID: "c1", Author: routing.AuthorAgent, AgentID: "a1", Text: "hi"},
		routing.Presence{ConversationID: "c1", Event: routing.PresenceForegrounded},
		routing.Accept{ConversationID: "c1", AgentID: "a1"},
		routing.Reject{ConversationID: "c1", AgentID: "a2"},
		routing.Leave{ConversationID: "c1", AgentID: "a3"},
		routing.End{ConversationID: "c1", By: routing.EndedByAgent, AgentID: "a1"},
		routing.SetTicketStatus{ConversationID: "c1", Status: routing.TicketSolved},
		routing.Release{AgentID: "a1", ConversationID: "c1", TicketStatus: routing.TicketOnHold, SetTicket: true},
		routing.RequestAssignment{AgentID: "a1", ConversationID: "c1", Force: true},
		routing.SetPolicy{Patch: routing.PolicyPatch{
			WebIdleAfter: ptr(time.Minute), WebIdleTimeout: ptr(2 * time.Minute), WebDisconnectTimeout: ptr(3 * time.Second),
			MobileInactivityTimeout: ptr(time.Hour), MobileDisconnectTimeout: ptr(2 * time.Hour),
			MobileAgentEndedTimeout: ptr(5 * time.Minute), MobileBackgroundTimeout: ptr(30 * time.Minute),
			AgentCanEndChat: ptr(false), MessagingInactivityTimeout: ptr(10 * time.Minute),
			CountInactiveMessaging: ptr(true), Mode: ptr(routing.ModeExternal), Strategy: ptr(routing.StrategyRoundRobin),
			AutoAccept: ptr(true), OfferTimeout: ptr(30 * time.Second), ReassignDelay: ptr(time.Minute),
			IdempotencyRetention: ptr(24 * time.Hour),
		}},
		routing.Tick{},
	}
}

// assertAllSet fails when an exported field of v is zero, so that a field
// added to a routing type without being added to the codec is noticed.
func assertAllSet(t *testing.T, path string, v reflect.Value) {
	t.Helper()
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if !f.IsExported() {
				continue
			}
			assertAllSet(t, path+"."+f.Name, v.Field(i))
		}
	case reflect.Pointer:
		if v.IsNil() {
			t.Errorf("%s is nil: set it in the fixture (and encode it)", path)
			return
		}
		assertAllSet(t, path, v.Elem())
	case reflect.Slice:
		if v.Len() == 0 {
			t.Errorf("%s is empty: set it in the fixture (and encode it)", path)
		}
		for i := range v.Len() {
			assertAllSet(t, path+"[]", v.Index(i))
		}
	case reflect.Interface:
		if v.IsNil() {
			t.Errorf("%s is nil", path)
		}
	default:
		if v.IsZero() && v.Kind() != reflect.Bool && !strings.HasSuffix(path, ".Status") && !strings.HasSuffix(path, ".Author") {
			t.Errorf("%s is zero: set it in the fixture (and encode it)", path)
		}
	}
}

func TestCommandRoundTrip(t *testing.T) {
	kinds := map[routing.Kind]bool{}
	for _, cmd := range allCommands() {
		kinds[cmd.Kind()] = true
		assertAllSet(t, cmd.Kind().String(), reflect.ValueOf(cmd))
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
		// Every strict prefix is an error, never a panic.
		for i := range len(b) {
			if _, err := decodeEntry(b[:i]); err == nil {
				t.Errorf("%s: prefix of %d bytes decoded", cmd.Kind(), i)
			}
		}
	}
	for k := routing.KindUpsertAgent; k <= routing.KindTick; k++ {
		if !kinds[k] {
			t.Errorf("kind %s has no round-trip case", k)
		}
	}
}

func TestClusterEntriesRoundTrip(t *testing.T) {
	cmds := allCommands()
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

func fullConversation() *routing.Conversation {
	return &routing.Conversation{ID: "c1", Channel: capacity.Messaging, Client: routing.ClientWeb, PushEnabled: true,
		Priority: 3, Skills: []string{"fr"}, Group: "g", VisitorID: "v", State: routing.StateUnassigned,
		Activity: routing.ActivityInactive, AgentID: "a1", Missed: true, EndedReason: routing.ReasonIdleTimeout,
		CreatedAt: 1, EndedAt: 2, QueuedAt: 3, Seq: 4,
		Ticket:     &routing.Ticket{ID: "t1", Status: routing.TicketOpen, CreatedAt: 5, Via: routing.ViaMissedChat},
		Transcript: []routing.Message{{Author: routing.AuthorSystem, AgentID: "a1", Text: "x", At: 6}},
		Joined:     true, Missers: []string{"a2"}, Counted: true, Exempt: true, AwaitAgent: true, Disconnected: true, Backgrounded: true}
}

func fullOutcome() routing.Outcome {
	msg := routing.Message{Author: routing.AuthorAgent, AgentID: "a1", Text: "hello", At: 9}
	return routing.Outcome{
		Conversation: fullConversation(),
		Agent: &routing.Agent{ID: "a1", Name: "Ana", Status: routing.StatusAway, Capacity: capacity.Limits{2, 3},
			Load: capacity.Load{1, 4}, Skills: []string{"fr"}, Groups: []string{"g"}, Conversations: []string{"c1"},
			LastAssigned: [capacity.NumChannels]int64{10, 11}, ReassignAt: 12},
		Assignment: &routing.Assignment{ConversationID: "c1", AgentID: "a1", State: routing.StateAssigned},
		Err:        &routing.Error{Class: routing.ErrConflict, Code: routing.CodeConversationEnded, Message: "ended"},
		Events: []routing.Event{{ID: 42, Type: routing.EventEnded, At: 13, ConversationID: "c1", AgentID: "a1",
			Data: routing.EventData{Reason: "r", Status: "s", Previous: "p", Missed: true, Transcript: []routing.Message{msg},
				Ticket:   &routing.Ticket{ID: "t2", Status: routing.TicketPending, CreatedAt: 14, Via: routing.ViaAPI},
				Capacity: capacity.Limits{1, 2}, Load: capacity.Load{3, 4}, Message: &msg}}},
		Replayed: true,
	}
}

func TestOutcomeRoundTrip(t *testing.T) {
	in := fullOutcome()
	assertAllSet(t, "Outcome", reflect.ValueOf(in))
	var enc wire.Encoder
	appendOutcome(&enc, &in)
	d := wire.NewDecoder(enc.Buf)
	out := readOutcome(d)
	if err := d.Err(); err != nil || d.Remaining() != 0 {
		t.Fatalf("decode: %v (%d left)", err, d.Remaining())
	}
	in.Events = nil // not carried: the forwarding node reads its own event log
	if !reflect.DeepEqual(in, out) {
		t.Errorf("round trip\n in: %#v\nout: %#v", in, out)
	}
	if !errors.Is(out.Err, routing.ErrConflict) {
		t.Errorf("errors.Is(%v, ErrConflict) = false", out.Err)
	}
	for _, class := range []error{routing.ErrNotFound, routing.ErrInvalid} {
		o := routing.Outcome{Err: &routing.Error{Class: class, Code: "c", Message: "m"}}
		var e wire.Encoder
		appendOutcome(&e, &o)
		got := readOutcome(wire.NewDecoder(e.Buf))
		if !errors.Is(got.Err, class) {
			t.Errorf("class %v lost: %v", class, got.Err)
		}
	}
	for i := range len(enc.Buf) {
		d := wire.NewDecoder(enc.Buf[:i])
		readOutcome(d)
		if d.Err() == nil {
			t.Errorf("outcome prefix of %d bytes decoded", i)
		}
	}
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
