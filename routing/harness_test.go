package routing

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/omnirouter/omnirouter/capacity"
)

// t0 is an arbitrary leader time (2026-01-01T00:00:00Z).
const t0 = int64(1767225600000)

// harness drives one Machine with a test clock and checks the invariants
// after every command.
type harness struct {
	t   *testing.T
	m   *Machine
	now int64
}

func newHarness(t *testing.T, patch ...PolicyPatch) *harness {
	t.Helper()
	h := &harness{t: t, m: New(), now: t0}
	for _, p := range patch {
		h.do(SetPolicy{Patch: p})
	}
	return h
}

func dur(d time.Duration) *time.Duration { return &d }
func ptr[T any](v T) *T                  { return &v }

// rawPatch sets one field to a raw value, unchecked (a patch decoded from
// the log is not checked either: Apply validates it).
func rawPatch(name string, v int64) PolicyPatch {
	var p PolicyPatch
	i := fieldIndex(name)
	p.set, p.vals[i] = 1<<i, v
	return p
}

// apply runs cmd at the harness time and checks the invariants.
func (h *harness) apply(key string, cmd Command) Outcome {
	h.t.Helper()
	out := h.m.Apply(h.now, key, cmd)
	if err := h.m.CheckInvariants(); err != nil {
		h.t.Fatalf("invariants broken after %T%+v: %v", cmd, cmd, err)
	}
	return out
}

// do applies cmd and fails the test if it is refused.
func (h *harness) do(cmd Command) Outcome {
	h.t.Helper()
	out := h.apply("", cmd)
	if out.Err != nil {
		h.t.Fatalf("%T%+v refused: %v", cmd, cmd, out.Err)
	}
	return out
}

// refuse applies cmd, expects a refusal of the given class and code, and
// checks that the state did not change.
func (h *harness) refuse(cmd Command, class error, code string) {
	h.t.Helper()
	h.advance(0) // fire due timers first so the comparison isolates cmd
	before := h.snapshot()
	out := h.apply("", cmd)
	if out.Err == nil {
		h.t.Fatalf("%T%+v: expected %v/%s, got success", cmd, cmd, class, code)
	}
	var e *Error
	if !errors.Is(out.Err, class) || !errors.As(out.Err, &e) || e.Code != code {
		h.t.Fatalf("%T%+v: expected %v/%s, got %v (%#v)", cmd, cmd, class, code, out.Err, out.Err)
	}
	if after := h.snapshot(); !bytes.Equal(before, after) {
		h.t.Fatalf("%T%+v was refused but changed the state", cmd, cmd)
	}
	if len(out.Events) != 0 {
		h.t.Fatalf("refused command emitted events: %+v", out.Events)
	}
}

func (h *harness) snapshot() []byte {
	h.t.Helper()
	var buf bytes.Buffer
	if err := h.m.WriteSnapshot(&buf); err != nil {
		h.t.Fatal(err)
	}
	return buf.Bytes()
}

// advance moves the clock by d and applies a Tick.
func (h *harness) advance(d time.Duration) []Event {
	h.t.Helper()
	h.now += d.Milliseconds()
	return h.do(Tick{}).Events
}

func (h *harness) conv(id string) Conversation {
	h.t.Helper()
	c, ok := h.m.Conversation(id)
	if !ok {
		h.t.Fatalf("conversation %s not found", id)
	}
	return c
}

func (h *harness) agent(id string) Agent {
	h.t.Helper()
	a, ok := h.m.Agent(id)
	if !ok {
		h.t.Fatalf("agent %s not found", id)
	}
	return a
}

// onlineAgent creates an online agent with the given chat and messaging
// capacity.
func (h *harness) onlineAgent(id string, chat, messaging int, skills ...string) {
	h.t.Helper()
	h.do(UpsertAgent{ID: id, Name: id, Capacity: capacity.Limits{chat, messaging}, Skills: skills})
	h.do(SetAgentStatus{AgentID: id, Status: StatusOnline})
}

func (h *harness) webChat(id string) Conversation {
	h.t.Helper()
	return *h.do(CreateConversation{ID: id, Channel: capacity.Chat, Client: ClientWeb, Message: "hello"}).Conversation
}

func (h *harness) mobileChat(id string, push bool) Conversation {
	h.t.Helper()
	return *h.do(CreateConversation{ID: id, Channel: capacity.Chat, Client: ClientMobileSDK, PushEnabled: push, Message: "hello"}).Conversation
}

func (h *harness) messaging(id string) Conversation {
	h.t.Helper()
	return *h.do(CreateConversation{ID: id, Channel: capacity.Messaging, Message: "hello"}).Conversation
}

// assigned creates an online agent and a conversation and has the agent
// accept it.
func (h *harness) accept(conv, agent string) {
	h.t.Helper()
	h.do(Accept{ConversationID: conv, AgentID: agent})
}

func (h *harness) wantState(id string, state State, activity Activity) {
	h.t.Helper()
	c := h.conv(id)
	if c.State != state || c.Activity != activity {
		h.t.Fatalf("conversation %s: got %s/%s, want %s/%s", id, c.State, c.Activity, state, activity)
	}
}

func (h *harness) wantLoad(agent string, ch capacity.Channel, n int) {
	h.t.Helper()
	if got := h.agent(agent).Load[ch]; got != n {
		h.t.Fatalf("agent %s %s load %d, want %d", agent, ch, got, n)
	}
}

// eventsOf returns the retained events of one type about one conversation.
func (h *harness) eventsOf(typ, conv string) []Event {
	h.t.Helper()
	all, err := h.m.Events(0, h.m.events.Len())
	if err != nil {
		h.t.Fatal(err)
	}
	var out []Event
	for _, e := range all {
		if e.Type == typ && (conv == "" || e.ConversationID == conv) {
			out = append(out, e)
		}
	}
	return out
}

func texts(ms []Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Text
	}
	return out
}
