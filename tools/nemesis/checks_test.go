package nemesis

import (
	"strings"
	"testing"
)

// pol is a policy write setting focus mode on, [call, ret], ret -1 when
// ambiguous.
func pol(on bool, call, ret int64) Op {
	st := OK
	if ret < 0 {
		st = Ambiguous
	}
	return Op{Kind: KindPolicy, Arg: focusArg(on), Call: call, Return: ret, Status: st}
}

func TestFocusSchedule(t *testing.T) {
	// Acknowledged one after the other: known in order.
	f := NewFocusSchedule([]Op{pol(false, 0, 10), pol(true, 20, 30), pol(false, 40, 50)})
	for i, want := range []bool{false, true, false} {
		if on, known := f.At(i); !known || on != want {
			t.Errorf("event %d: %v %v, want %v known", i, on, known, want)
		}
	}
	if _, known := f.At(3); known {
		t.Error("a fourth policy.changed event is explained by no write")
	}
	if !f.On(30, 39) || f.On(30, 40) || f.On(29, 35) || f.On(50, 60) {
		t.Error("On: focus was certainly on in [30, 40) only")
	}

	// An ambiguous write, then the same mode until acknowledged: the tail
	// is known, and certain from the acknowledgement on.
	f = NewFocusSchedule([]Op{pol(false, 0, 10), pol(true, 20, -1), pol(true, 40, 50)})
	if on, known := f.At(5); !known || !on {
		t.Errorf("tail: %v %v", on, known)
	}
	if f.On(30, 100) || !f.On(50, 1000) {
		t.Error("On: certain from 50 on only")
	}

	// An ambiguous write turning it on, then one turning it off: the
	// order they applied in is unknown.
	f = NewFocusSchedule([]Op{pol(false, 0, 10), pol(true, 20, -1), pol(false, 40, 50)})
	if _, known := f.At(1); known {
		t.Error("the mode after an ambiguous write followed by another mode is unknown")
	}
	if on, known := f.At(0); !known || on {
		t.Error("the first write is known")
	}
	// An ambiguous write turning it off makes no later time certain.
	f = NewFocusSchedule([]Op{pol(true, 0, 10), pol(false, 20, -1)})
	if !f.On(10, 19) || f.On(10, 21) || f.On(100, 200) {
		t.Error("On after an ambiguous write turning focus mode off")
	}
}

// aread is an agent read of agent at [call, ret] showing conversations and
// loads.
func aread(agent string, call, ret int64, convs []string, load map[string]int) Op {
	return Op{Kind: KindAgentRead, Agent: agent, Call: call, Return: ret, Status: OK,
		View: &AgentView{Status: "online", Capacity: map[string]int{"chat": 2, "messaging": 2, "email": 2, "voice": 1},
			Load: load, Conversations: convs}}
}

func TestCheckAgentReads(t *testing.T) {
	channels := map[string]string{"c1": "chat", "v1": "voice", "m1": "messaging", "e1": "email"}
	focusOn := []Op{pol(false, 0, 5), pol(true, 10, 20)}
	both := map[string]int{"chat": 1, "voice": 1}
	cases := []struct {
		name string
		ops  []Op
		want string // a substring of the only violation; "" for none
	}{
		{"chat and call both routed in focus mode", []Op{
			aread("a1", 30, 40, []string{"e1"}, map[string]int{"email": 1}),
			aread("a1", 50, 60, []string{"c1", "e1", "v1"}, both),
		}, "both routed while focus mode was on"},
		{"chat and call routed one read apart", []Op{
			aread("a1", 30, 40, nil, nil),
			aread("a1", 50, 60, []string{"c1"}, map[string]int{"chat": 1}),
			aread("a1", 70, 80, []string{"c1", "v1"}, both),
		}, "both routed while focus mode was on"},
		{"the chat held since before any read", []Op{
			aread("a1", 30, 40, []string{"c1"}, map[string]int{"chat": 1}),
			aread("a1", 50, 60, []string{"c1", "v1"}, both),
		}, ""},
		{"the chat held since before focus mode", []Op{
			aread("a1", 1, 2, nil, nil),
			aread("a1", 3, 4, []string{"c1"}, map[string]int{"chat": 1}),
			aread("a1", 50, 60, []string{"c1", "v1"}, both),
		}, ""},
		{"messaging beside a call: it may have counted again", []Op{
			aread("a1", 30, 40, nil, nil),
			aread("a1", 50, 60, []string{"m1", "v1"}, map[string]int{"messaging": 1, "voice": 1}),
		}, ""},
		{"two calls", []Op{
			aread("a1", 30, 40, nil, map[string]int{"voice": 2}),
		}, "on 2 calls"},
		{"chat above capacity", []Op{
			aread("a1", 30, 40, nil, map[string]int{"chat": 3}),
		}, "chat load 3 above capacity 2"},
	}
	for _, tc := range cases {
		ops := append(append([]Op(nil), focusOn...), tc.ops...)
		bad, _ := CheckAgentReads(ops, channels, NewFocusSchedule(ops))
		switch {
		case tc.want == "" && len(bad) > 0:
			t.Errorf("%s: %v", tc.name, bad)
		case tc.want != "" && (len(bad) != 1 || !strings.Contains(bad[0], tc.want)):
			t.Errorf("%s: %v, want one violation saying %q", tc.name, bad, tc.want)
		}
	}
	// The same chat and call with focus mode off: no violation.
	ops := []Op{pol(false, 0, 5),
		aread("a1", 30, 40, nil, nil),
		aread("a1", 50, 60, []string{"c1", "v1"}, both)}
	if bad, _ := CheckAgentReads(ops, channels, NewFocusSchedule(ops)); len(bad) > 0 {
		t.Errorf("focus mode off: %v", bad)
	}
}

// ev builds an event stream: ids in order.
func evs(es ...Event) []Event {
	for i := range es {
		es[i].ID = uint64(i + 1)
	}
	return es
}

func replay(focus FocusSchedule, es []Event) []string {
	channels := map[string]string{"c1": "chat", "c2": "chat", "v1": "voice", "v2": "voice", "m1": "messaging", "e1": "email", "e2": "email"}
	agents := []AgentSpec{{ID: "a1", Chat: 1, Messaging: 1, Email: 1, Voice: 1}}
	r := NewReplay(channels, agents, focus)
	for i := range es {
		r.Apply(&es[i])
	}
	return r.Violations()
}

func ticket(conv, status string) Event {
	return Event{Type: "ticket.updated", ConversationID: conv, Data: map[string]any{"ticket": map[string]any{"status": status}}}
}

func TestReplay(t *testing.T) {
	on := NewFocusSchedule([]Op{pol(false, 0, 5), pol(true, 10, 20)})
	q := func(c string) Event { return Event{Type: "conversation.queued", ConversationID: c} }
	e := func(typ, c string) Event { return Event{Type: "conversation." + typ, ConversationID: c, AgentID: "a1"} }
	policy := Event{Type: "policy.changed"}
	cases := []struct {
		name string
		es   []Event
		want string
	}{
		{"a call offered beside a chat in focus mode",
			evs(policy, policy, q("c1"), e("offered", "c1"), q("v1"), e("offered", "v1")), "focus mode on: voice routed"},
		{"a call offered beside a chat before focus mode",
			evs(policy, q("c1"), e("offered", "c1"), q("v1"), e("offered", "v1")), ""},
		{"an email beside a chat in focus mode",
			evs(policy, policy, q("c1"), e("offered", "c1"), q("e1"), e("assigned", "e1")), ""},
		{"a chat once its call ended, in focus mode",
			evs(policy, policy, q("v1"), e("offered", "v1"), e("assigned", "v1"), e("wrap_up", "v1"), e("ended", "v1"),
				q("c1"), e("offered", "c1")), ""},
		{"a chat during wrap-up, in focus mode",
			evs(policy, policy, q("v1"), e("offered", "v1"), e("assigned", "v1"), e("wrap_up", "v1"),
				q("c1"), e("offered", "c1")), "focus mode on: chat routed"},
		{"a second call during wrap-up",
			evs(q("v1"), e("offered", "v1"), e("assigned", "v1"), e("wrap_up", "v1"), q("v2"), e("offered", "v2")), "no spare voice capacity"},
		{"a chat assigned without an offer",
			evs(q("c1"), e("assigned", "c1")), "assigned without an offer"},
		{"an email offered",
			evs(q("e1"), e("offered", "e1")), "an email offered"},
		{"wrap-up of a call never answered",
			evs(q("v1"), e("offered", "v1"), e("wrap_up", "v1")), "wrap-up of a voice"},
		{"an email reopened above capacity",
			evs(q("e1"), e("assigned", "e1"), ticket("e1", "pending"), q("e2"), e("assigned", "e2"), ticket("e1", "open")), ""},
		{"an email routed above capacity",
			evs(q("e1"), e("assigned", "e1"), q("e2"), e("assigned", "e2")), "no spare email capacity"},
	}
	for _, tc := range cases {
		bad := replay(on, tc.es)
		switch {
		case tc.want == "" && len(bad) > 0:
			t.Errorf("%s: %v", tc.name, bad)
		case tc.want != "" && (len(bad) == 0 || !strings.Contains(bad[0], tc.want)):
			t.Errorf("%s: %v, want a violation saying %q", tc.name, bad, tc.want)
		}
	}
}
