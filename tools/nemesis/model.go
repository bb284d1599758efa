package nemesis

import (
	"fmt"
	"math"
	"sort"

	"github.com/anishathalye/porcupine"
)

// The linearizability model: one partition per conversation, whose state is
// its routing state and holder. Agent capacity is not a porcupine model: it
// is checked as an invariant over the event stream (Replay) and on every
// agent read, because an agent's load depends on every conversation it holds
// and on timers, which a per-agent partition cannot see soundly.
//
// Timers and auto-dispatch change a conversation without any client
// operation. The model allows those moves nondeterministically before every
// operation (closure):
//
//	queued      → offered to any agent   (auto dispatch, POST /v1/assignments)
//	offered(a)  → queued                 (offer timeout, a went offline)
//	any chat    → ended                  (idle, disconnect timers)
//
// and nothing else. The run's policy makes that list complete: web chats
// only (no mobile SDK timers), reassign_delay of an hour (an offline agent
// keeps its assigned conversations for the whole run), no operator-forced
// assignment, agent_can_end_chat on. The model still forbids, among others:
//
//   - two holders: an accept acknowledged for agent B while A holds the
//     conversation assigned (assigned(a) has no spontaneous exit but ended;
//     only a's leave, end or release frees it);
//   - an acknowledged end or release undone, an ended conversation read back
//     open, reopened by a message, or accepted;
//   - a messaging conversation ending without a release (no timer ends one);
//   - a rejected operation having had an effect (a rejection leaves the
//     state where it was, and its code must fit that state: not_offered only
//     when not offered to that agent, conversation_ended only when ended);
//   - a stale read: a linearizable GET must show a state reachable from
//     every write acknowledged before it started.
//
// An ambiguous operation (the client gave up) has an unknown outcome and no
// return: porcupine may place it anywhere after its call, or treat it as
// refused.

// St is a conversation's routing state in the model.
type St uint8

// Model states.
const (
	StNone St = iota // not created
	StQueued
	StOffered
	StAssigned
	StUnassigned
	StEnded
)

var stNames = [...]string{"none", "queued", "offered", "assigned", "unassigned", "ended"}

func (s St) String() string { return stNames[s] }

func parseSt(s string) (St, bool) {
	for i, n := range stNames {
		if n == s && i != 0 {
			return St(i), true
		}
	}
	return 0, false
}

// ConvState is one conversation's model state. Agent is set for offered and
// assigned only.
type ConvState struct {
	St    St
	Agent string
}

func (s ConvState) String() string {
	if s.Agent != "" {
		return s.St.String() + "(" + s.Agent + ")"
	}
	return s.St.String()
}

// Input is a conversation operation as the model sees it.
type Input struct {
	Kind    string
	Conv    string
	Channel string // chat | messaging
	Agent   string
}

// Output is its outcome; State is the conversation state in a successful
// answer ("" when the answer does not carry it).
type Output struct {
	Status Status
	Code   string
	State  string
	Holder string
}

// closure is every state s can move to without a client operation.
func closure(s ConvState, chat bool, agents []string) []ConvState {
	out := []ConvState{s}
	switch s.St {
	case StQueued, StOffered:
		if s.St == StOffered {
			out = append(out, ConvState{St: StQueued})
		}
		for _, a := range agents {
			if s.St != StOffered || a != s.Agent {
				out = append(out, ConvState{St: StOffered, Agent: a})
			}
		}
		if chat {
			out = append(out, ConvState{St: StEnded})
		}
	case StAssigned, StUnassigned:
		if chat {
			out = append(out, ConvState{St: StEnded})
		}
	}
	return out
}

func reachable(from ConvState, to ConvState, chat bool, agents []string) bool {
	for _, s := range closure(from, chat, agents) {
		if s == to {
			return true
		}
	}
	return false
}

// effect is what a successful op does from pre; nil when it cannot succeed
// from pre.
func effect(pre ConvState, in Input) []ConvState {
	open := pre.St != StNone && pre.St != StEnded
	held := func(st St) bool { return pre.St == st && pre.Agent == in.Agent }
	switch in.Kind {
	case KindCreate:
		if pre.St == StNone {
			return []ConvState{{St: StQueued}}
		}
	case KindRead:
		if pre.St != StNone {
			return []ConvState{pre}
		}
	case KindAccept:
		if held(StOffered) || held(StAssigned) {
			return []ConvState{{St: StAssigned, Agent: in.Agent}}
		}
	case KindLeave:
		if held(StAssigned) {
			return []ConvState{{St: StUnassigned}}
		}
	case KindEndVisitor:
		if open {
			return []ConvState{{St: StEnded}}
		}
	case KindEndAgent, KindRelease:
		if held(StAssigned) {
			return []ConvState{{St: StEnded}}
		}
	case KindMsgVisitor:
		switch {
		case !open:
		case in.Channel == "chat" && pre.St == StUnassigned:
			return []ConvState{{St: StQueued}} // reopened
		case in.Channel == "messaging" && pre.St == StAssigned:
			// Reactivation while the agent is not online sends it back.
			return []ConvState{pre, {St: StQueued}}
		default:
			return []ConvState{pre}
		}
	case KindMsgAgent:
		if held(StAssigned) {
			return []ConvState{pre}
		}
	case KindPresence:
		if open {
			return []ConvState{pre}
		}
	case KindAssign:
		if pre.St == StQueued {
			return []ConvState{{St: StOffered, Agent: in.Agent}}
		}
	}
	return nil
}

// refusalFits reports whether a refusal with code is what pre gives.
func refusalFits(pre ConvState, in Input, code string) bool {
	open := pre.St != StNone && pre.St != StEnded
	switch code {
	case "conversation_not_found":
		return pre.St == StNone
	case "conversation_ended":
		return pre.St == StEnded
	case "conversation_exists":
		return pre.St != StNone
	case "not_offered":
		return open && !(pre.Agent == in.Agent && (pre.St == StOffered || pre.St == StAssigned))
	case "not_assigned":
		return open && !(pre.Agent == in.Agent && pre.St == StAssigned)
	case "not_queued":
		return open && pre.St != StQueued
	}
	// Codes that do not depend on the conversation's state (validation,
	// agent_not_found): no constraint, no effect.
	return true
}

// observed is the conversation state an answer shows (holder only while
// offered or assigned); false when the state is not one the model knows.
func observed(out Output) (ConvState, bool) {
	got, ok := parseSt(out.State)
	if !ok {
		return ConvState{}, false
	}
	seen := ConvState{St: got}
	if got == StOffered || got == StAssigned {
		seen.Agent = out.Holder
	}
	return seen, true
}

// Step is the nondeterministic step function: every state the conversation
// can be in after op from s.
func Step(s ConvState, in Input, out Output, agents []string) []ConvState {
	chat := in.Channel == "chat"
	var next []ConvState
	for _, pre := range closure(s, chat, agents) {
		switch out.Status {
		case Ambiguous:
			next = append(next, pre) // refused, or never applied
			next = append(next, effect(pre, in)...)
		case Rejected:
			if refusalFits(pre, in, out.Code) {
				next = append(next, pre)
			}
		case OK:
			if in.Kind == KindRead && out.State != "" {
				// A read changes nothing: it must see pre itself.
				if seen, ok := observed(out); ok && pre == seen {
					next = append(next, pre)
				}
				continue
			}
			for _, post := range effect(pre, in) {
				if out.State == "" {
					next = append(next, post)
					continue
				}
				// The answer shows the state at the end of the apply,
				// after auto dispatch: reachable from post.
				if seen, ok := observed(out); ok && reachable(post, seen, chat, agents) {
					next = append(next, seen)
				}
			}
		}
	}
	return dedupe(next)
}

func dedupe(ss []ConvState) []ConvState {
	var out []ConvState
	for _, s := range ss {
		dup := false
		for _, o := range out {
			if o == s {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, s)
		}
	}
	return out
}

// Model returns the porcupine model of conversation ownership for a run
// whose agents are agents.
func Model(agents []string) porcupine.Model {
	nm := porcupine.NondeterministicModel{
		Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
			by := map[string][]porcupine.Operation{}
			var keys []string
			for _, op := range history {
				c := op.Input.(Input).Conv
				if _, ok := by[c]; !ok {
					keys = append(keys, c)
				}
				by[c] = append(by[c], op)
			}
			sort.Strings(keys)
			out := make([][]porcupine.Operation, 0, len(keys))
			for _, k := range keys {
				out = append(out, by[k])
			}
			return out
		},
		Init: func() []any { return []any{ConvState{}} },
		Step: func(state, input, output any) []any {
			next := Step(state.(ConvState), input.(Input), output.(Output), agents)
			out := make([]any, len(next))
			for i := range next {
				out[i] = next[i]
			}
			return out
		},
		Equal: func(a, b any) bool { return a.(ConvState) == b.(ConvState) },
		DescribeOperation: func(input, output any) string {
			in, out := input.(Input), output.(Output)
			s := in.Kind + " " + in.Conv
			if in.Agent != "" {
				s += " by " + in.Agent
			}
			switch out.Status {
			case OK:
				if out.State != "" {
					st := out.State
					if out.Holder != "" && out.State != "ended" {
						st += "(" + out.Holder + ")"
					}
					return s + " → " + st
				}
				return s + " → ok"
			case Rejected:
				return s + " → " + out.Code
			}
			return s + " → ?"
		},
		DescribeState: func(state any) string { return state.(ConvState).String() },
	}
	return nm.ToModel()
}

// ConvKinds are the operation kinds the model checks.
var ConvKinds = map[string]bool{KindCreate: true, KindRead: true, KindAccept: true, KindLeave: true,
	KindEndVisitor: true, KindEndAgent: true, KindRelease: true, KindMsgVisitor: true, KindMsgAgent: true,
	KindPresence: true, KindAssign: true}

// Operations turns a recorded history into porcupine operations: the
// conversation kinds only, ambiguous ones with an unknown output and an
// infinite return, reads that never answered dropped.
func Operations(ops []Op) []porcupine.Operation {
	var out []porcupine.Operation
	for _, op := range ops {
		if !ConvKinds[op.Kind] || op.Conv == "" {
			continue
		}
		if op.Kind == KindRead && op.Status == Ambiguous {
			continue
		}
		if op.Kind == KindAssign && op.Status != OK {
			continue // which conversation it touched is unknown: the closure covers it
		}
		o := porcupine.Operation{ClientId: op.Client, Input: Input{Kind: op.Kind, Conv: op.Conv, Channel: op.Channel, Agent: op.Agent},
			Call: op.Call, Return: op.Return,
			Output:   Output{Status: op.Status, Code: op.Code, State: op.State, Holder: op.Holder},
			Metadata: fmt.Sprintf("op %d key %s node %s attempts %d", op.ID, op.Key, op.Node, op.Attempts)}
		if op.Status == Ambiguous {
			o.Return = math.MaxInt64
			o.Output = Output{Status: Ambiguous}
		}
		if op.Kind == KindRelease {
			o.Output = Output{Status: o.Output.(Output).Status, Code: op.Code} // the answer is the agent
		}
		out = append(out, o)
	}
	return out
}
