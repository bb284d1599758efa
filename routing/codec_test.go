package routing

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/omnirouter/omnirouter/capacity"
	"github.com/omnirouter/omnirouter/internal/wire"
)

// fullPatch sets every field of the policy table.
func fullPatch(t testing.TB) PolicyPatch {
	var p PolicyPatch
	for i, f := range policyFields {
		var v any
		switch f.kind {
		case PolicyDuration:
			v = time.Duration(f.min + int64(i+1)*int64(time.Second))
		case PolicyBool:
			v = i%2 == 0
		case PolicyInt:
			v = f.min + 1
		case PolicyEnum:
			v = f.values[len(f.values)-1]
		}
		if err := p.Set(f.name, v); err != nil {
			t.Fatalf("%s: %v", f.name, err)
		}
	}
	return p
}

// exampleCommands has one command of every kind with every field set. A
// kind added to commandTable without a case here fails
// TestCommandRoundTrip.
func exampleCommands(t testing.TB) []Command {
	return []Command{
		UpsertAgent{ID: "a1", Name: "Ana", Capacity: capacity.Limits{3, 5}, Skills: []string{"en", "fr"}, Groups: []string{"support"}},
		RemoveAgent{ID: "a1", Force: true},
		SetAgentStatus{AgentID: "a1", Status: StatusTransfersOnly},
		CreateConversation{ID: "c1", Channel: capacity.Messaging, Client: ClientMobileSDK, PushEnabled: true,
			Priority: -7, Skills: []string{"fr"}, Group: "g", VisitorID: "v1", Message: "bonjour", Subject: "Order 42",
			OptionalSkills: []string{"vip"}, SecondaryGroups: []string{"g2"}},
		PostMessage{ConversationID: "c1", Author: AuthorAgent, AgentID: "a1", Text: "hi"},
		Presence{ConversationID: "c1", Event: PresenceForegrounded},
		Accept{ConversationID: "c1", AgentID: "a1"},
		Reject{ConversationID: "c1", AgentID: "a2"},
		Leave{ConversationID: "c1", AgentID: "a3"},
		End{ConversationID: "c1", By: EndedByVisitor, AgentID: "a1", Voicemail: true},
		SetTicketStatus{ConversationID: "c1", Status: TicketSolved},
		Release{AgentID: "a1", ConversationID: "c1", TicketStatus: TicketOnHold, SetTicket: true},
		RequestAssignment{AgentID: "a1", ConversationID: "c1", Force: true},
		SetPolicy{Patch: fullPatch(t)},
		Tick{},
		SetEventLimits{Limits: EventLimits{Count: 500, Bytes: 1 << 20}},
		Transfer{ConversationID: "c1", AgentID: "a1", ToAgent: "a2", ToGroup: "g", Note: "VIP"},
		UpdateConversation{ConversationID: "c1", Set: updateAll, Priority: 5, Group: "g", Skills: []string{"fr"},
			OptionalSkills: []string{"vip"}, SecondaryGroups: []string{"g2"}},
		CreateWebhook{ID: "w1", URL: "https://example.com/hook", Events: []string{EventEnded, EventTicketCreated}, Secret: "s3cret"},
		UpdateWebhook{ID: "w1", Set: webhookSetAll, URL: "http://example.com/h2", Events: []string{"*"}, Secret: "other", Paused: true},
		DeleteWebhook{ID: "w1"},
		CommitWebhooks{Progress: []WebhookProgress{{ID: "w1", Seq: 3, Version: 2, Cursor: 99, LastSuccessAt: 1700000000000,
			LastError: "HTTP 500", LastErrorAt: 1700000001000, FailingSince: 1700000001000}}},
	}
}

// assertAllSet fails when an exported field of v is zero, so that a field
// added to a command without being added to its encoding is noticed.
func assertAllSet(t *testing.T, path string, v reflect.Value) {
	t.Helper()
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			if f := v.Type().Field(i); f.IsExported() {
				assertAllSet(t, path+"."+f.Name, v.Field(i))
			}
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
	default:
		// Zero is a real value of some enums (the first status, author).
		if v.IsZero() && v.Kind() != reflect.Bool && !strings.HasSuffix(path, ".Status") && !strings.HasSuffix(path, ".Author") && !strings.HasSuffix(path, ".By") {
			t.Errorf("%s is zero: set it in the fixture (and encode it)", path)
		}
	}
}

// TestCommandRoundTrip: every kind of the command table has a case, every
// field of every command survives encoding, and every strict prefix of an
// encoding is an error, never a panic.
func TestCommandRoundTrip(t *testing.T) {
	covered := map[Kind]bool{}
	for _, cmd := range exampleCommands(t) {
		k := cmd.Kind()
		covered[k] = true
		assertAllSet(t, k.String(), reflect.ValueOf(cmd))
		var e wire.Encoder
		AppendCommand(&e, cmd)
		d := wire.NewDecoder(e.Buf)
		out := ReadCommand(d, k)
		if d.Err() != nil || d.Remaining() != 0 {
			t.Fatalf("%s: decode: %v, %d bytes left", k, d.Err(), d.Remaining())
		}
		if !reflect.DeepEqual(cmd, out) {
			t.Errorf("%s: round trip\n in: %#v\nout: %#v", k, cmd, out)
		}
		for i := range len(e.Buf) {
			d := wire.NewDecoder(e.Buf[:i])
			ReadCommand(d, k)
			if d.Err() == nil {
				t.Errorf("%s: a prefix of %d bytes decoded", k, i)
			}
		}
	}
	for k := Kind(1); k < numKinds; k++ {
		if !covered[k] {
			t.Errorf("kind %d (%s) has no case in exampleCommands", k, k)
		}
		if !k.known() {
			t.Errorf("kind %d has no entry in commandTable", k)
		}
	}
	if p := fullPatch(t); p.set != uint64(1)<<numPolicyFields-1 {
		t.Errorf("the fixture's patch does not set every policy field: %s", p)
	}
}

func TestReadCommandRejectsGarbage(t *testing.T) {
	cases := map[string]struct {
		k Kind
		b []byte
	}{
		"unknown kind":   {numKinds, nil},
		"kind zero":      {0, nil},
		"bad enum":       {KindSetAgentStatus, []byte{2, 'a', '1', 200}},
		"bad channel":    {KindCreate, []byte{2, 'c', '1', 9, 0, 0, 0, 0, 0, 0, 0}},
		"huge length":    {KindRemoveAgent, []byte{0xff, 0xff, 0xff, 0xff, 0x0f}},
		"unknown policy": {KindSetPolicy, []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}},
		"many channels":  {KindUpsertAgent, []byte{2, 'a', '1', 0, 9, 1, 1, 1, 1, 1, 1, 1, 1, 1}},
	}
	for name, c := range cases {
		d := wire.NewDecoder(c.b)
		ReadCommand(d, c.k)
		if !errors.Is(d.Err(), wire.ErrCorrupt) {
			t.Errorf("%s: err = %v, want wire.ErrCorrupt", name, d.Err())
		}
	}
}

// TestPolicyPatchSet: values by API name, with the codes the API answers.
func TestPolicyPatchSet(t *testing.T) {
	var p PolicyPatch
	for _, ok := range [][2]any{
		{"routing.offer_timeout", "45s"}, {"routing.strategy", "round_robin"}, {"routing.mode", ModeExternal},
		{"routing.auto_accept", true}, {"idempotency_retention", 2 * time.Hour},
	} {
		if err := p.Set(ok[0].(string), ok[1]); err != nil {
			t.Errorf("Set(%v, %v): %v", ok[0], ok[1], err)
		}
	}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	pol := DefaultPolicy()
	p.apply(&pol)
	if pol.Routing.OfferTimeout != 45*time.Second || pol.Routing.Strategy != StrategyRoundRobin || pol.Routing.Mode != ModeExternal ||
		!pol.Routing.AutoAccept || pol.IdempotencyRetention != 2*time.Hour || pol.Web.IdleAfter != 10*time.Minute {
		t.Fatalf("applied: %+v", pol)
	}
	for _, bad := range []struct {
		name string
		v    any
		code string
	}{
		{"routing.speed", "fast", "unknown_field"},
		{"routing.offer_timeout", "soon", "invalid_duration"},
		{"routing.offer_timeout", 5, "invalid_type"},
		{"routing.auto_accept", "yes", "invalid_type"},
		{"routing.strategy", "random", "invalid_strategy"},
		{"routing.mode", "manual", "invalid_mode"},
	} {
		var q PolicyPatch
		err := q.Set(bad.name, bad.v)
		var derr *Error
		if !errors.As(err, &derr) || derr.Code != bad.code || !errors.Is(err, ErrInvalid) {
			t.Errorf("Set(%s, %v) = %v, want code %s", bad.name, bad.v, err, bad.code)
		}
	}
	q := MustPatch("routing.offer_timeout", "-5s")
	if err := q.Validate(); err == nil || err.(*Error).Code != CodeInvalidPolicy {
		t.Errorf("a negative timeout validated: %v", err)
	}
}

func fullConversation() *Conversation {
	return &Conversation{ID: "c1", Channel: capacity.Messaging, Client: ClientWeb, PushEnabled: true,
		Priority: 3, Skills: []string{"fr"}, Group: "g", VisitorID: "v", Subject: "s", OptionalSkills: []string{"vip"}, SecondaryGroups: []string{"g2"}, Relaxed: true, TransferPending: true, TransferTarget: "a2",
		State:    StateUnassigned,
		Activity: ActivityInactive, AgentID: "a1", Missed: true, EndedReason: ReasonIdleTimeout,
		CreatedAt: 1, EndedAt: 2, QueuedAt: 3, Seq: 4,
		Ticket:     &Ticket{ID: "t1", Status: TicketOpen, CreatedAt: 5, Via: ViaMissedChat},
		Transcript: []Message{{Author: AuthorSystem, AgentID: "a1", Text: "x", At: 6}}, TranscriptBytes: 1,
		Joined: true, Missers: []string{"a2"}, Counted: true, Exempt: true, AwaitAgent: true, Disconnected: true, Backgrounded: true}
}

func fullOutcome() Outcome {
	msg := Message{Author: AuthorAgent, AgentID: "a1", Text: "hello", At: 9}
	return Outcome{
		Conversation: fullConversation(),
		Agent: &Agent{ID: "a1", Name: "Ana", Status: StatusAway, Capacity: capacity.Limits{2, 3},
			Load: capacity.Load{1, 4}, Skills: []string{"fr"}, Groups: []string{"g"}, Conversations: []string{"c1"},
			LastAssigned: [capacity.NumChannels]int64{10, 11}, ReassignAt: 12},
		Assignment: &Assignment{ConversationID: "c1", AgentID: "a1", State: StateAssigned},
		Err:        &Error{Class: ErrConflict, Code: CodeConversationEnded, Message: "ended"},
		Events: []Event{{ID: 42, Type: EventEnded, At: 13, ConversationID: "c1", AgentID: "a1",
			Data: EventData{Reason: "r", Status: "s", Previous: "p", Missed: true, Transcript: []Message{msg},
				Ticket:   &Ticket{ID: "t2", Status: TicketPending, CreatedAt: 14, Via: ViaAPI},
				Capacity: capacity.Limits{1, 2}, Load: capacity.Load{3, 4}, Message: &msg, TargetAgent: "a2", TargetGroup: "g2"}}},
		Replayed: true, ConversationID: "c1", AgentID: "a1",
	}
}

func TestOutcomeRoundTrip(t *testing.T) {
	in := fullOutcome()
	assertAllSet(t, "Outcome", reflect.ValueOf(in))
	var enc wire.Encoder
	EncodeOutcome(&enc, in)
	d := wire.NewDecoder(enc.Buf)
	out := DecodeOutcome(d)
	if err := d.Err(); err != nil || d.Remaining() != 0 {
		t.Fatalf("decode: %v (%d left)", err, d.Remaining())
	}
	in.Events = nil // not carried: the forwarding node reads its own event log
	if !reflect.DeepEqual(in, out) {
		t.Errorf("round trip\n in: %#v\nout: %#v", in, out)
	}
	if !errors.Is(out.Err, ErrConflict) {
		t.Errorf("errors.Is(%v, ErrConflict) = false", out.Err)
	}
	for _, class := range []error{ErrNotFound, ErrInvalid} {
		o := Outcome{Err: &Error{Class: class, Code: "c", Message: "m"}}
		var e wire.Encoder
		EncodeOutcome(&e, o)
		got := DecodeOutcome(wire.NewDecoder(e.Buf))
		if !errors.Is(got.Err, class) {
			t.Errorf("class %v lost: %v", class, got.Err)
		}
	}
	for i := range len(enc.Buf) {
		d := wire.NewDecoder(enc.Buf[:i])
		DecodeOutcome(d)
		if d.Err() == nil {
			t.Errorf("outcome prefix of %d bytes decoded", i)
		}
	}
}
