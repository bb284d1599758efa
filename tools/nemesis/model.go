package nemesis

import (
	"fmt"
	"math"
	"sort"

	"github.com/anishathalye/porcupine"
)

// The linearizability model: one partition per conversation, whose state is
// its routing state, its holder and, for an email, whether its ticket waits
// on the end user. Agent capacity and focus mode are not porcupine models:
// they are checked as invariants over the event stream (Replay) and on
// every agent read, because an agent's load depends on every conversation
// it holds and on timers, which a per-agent partition cannot see soundly.
//
// Timers and auto-dispatch change a conversation without any client
// operation. The model allows those moves nondeterministically before every
// operation (closure), per channel, routing only to the agents with
// capacity on it:
//
//	queued      → offered to any agent    (auto dispatch, POST /v1/assignments;
//	                                       chat, messaging, voice: ringing)
//	queued      → assigned to any agent   (email: email.auto_accept, unless its
//	                                       ticket waits on the end user)
//	offered(a)  → queued                  (offer or ring timeout, a went offline)
//	any chat    → ended                   (idle, disconnect timers)
//	queued or offered call → ended        (voice.max_queue_wait)
//	wrap_up(a)  → ended                   (voice.wrap_up)
//
// and nothing else. The run's policy makes that list complete: web chats
// only (no mobile SDK timers), reassign_delay of an hour (an offline agent
// keeps its assigned conversations for the whole run), the default
// ticket.close_solved_after (no email closes within the run), no
// operator-forced assignment, agent_can_end_chat on, email.auto_accept on,
// voice.wrap_up above zero (a hang-up after an answer always leaves the
// agent in wrap-up). The model still forbids, among others:
//
//   - two holders: an accept acknowledged for agent B while A holds the
//     conversation assigned (assigned(a) has no spontaneous exit but a
//     chat's end; only a's leave, end or release frees it);
//   - an acknowledged end or release undone, an ended conversation read back
//     open, reopened by a message, or accepted;
//   - a messaging conversation or an email ending without a release, an
//     answered call ending without a hang-up, a call in wrap-up taken by
//     anyone, or read back in a call;
//   - an email offered instead of assigned, routed while its ticket waits
//     on the end user, or sent back to the queue but by an end-user reply;
//   - a rejected operation having had an effect (a rejection leaves the
//     state where it was, and its code must fit that state: not_offered only
//     when not offered to that agent, conversation_ended only when ended or
//     in wrap-up);
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
	StWrapUp
	StEnded
)

var stNames = [...]string{"none", "queued", "offered", "assigned", "unassigned", "wrap_up", "ended"}

func (s St) String() string { return stNames[s] }

func parseSt(s string) (St, bool) {
	for i, n := range stNames {
		if n == s && i != 0 {
			return St(i), true
		}
	}
	return 0, false
}

// holds reports whether an agent holds a conversation in state s.
func (s St) holds() bool { return s == StOffered || s == StAssigned || s == StWrapUp }

// open reports whether commands on an open conversation apply in state s
// (the API refuses them on an ended call or one in wrap-up).
func (s St) open() bool { return s != StNone && s != StEnded && s != StWrapUp }

// ConvState is one conversation's model state. Agent is set while held
// (offered, assigned, wrap_up) only. Waiting is an email's ticket waiting
// on the end user (pending, on-hold, solved): it does not count and is not
// routed.
type ConvState struct {
	St      St
	Agent   string
	Waiting bool
}

func (s ConvState) String() string {
	out := s.St.String()
	if s.Agent != "" {
		out += "(" + s.Agent + ")"
	}
	if s.Waiting {
		out += " waiting"
	}
	return out
}

// Agents lists, per channel, the agents routing may give work on it (those
// with capacity there).
type Agents map[string][]string

// Channels are the routed channels.
var Channels = []string{"chat", "messaging", "email", "voice"}

// AgentsOf lists agents per channel by their capacity.
func AgentsOf(specs []AgentSpec) Agents {
	out := Agents{}
	for _, a := range specs {
		for _, ch := range Channels {
			if a.Cap(ch) > 0 {
				out[ch] = append(out[ch], a.ID)
			}
		}
	}
	return out
}

// Input is a conversation operation as the model sees it.
type Input struct {
	Kind    string
	Conv    string
	Channel string // chat | messaging | email | voice
	Agent   string
	Arg     string // a ticket status
}

// Output is its outcome; State is the conversation state in a successful
// answer ("" when the answer does not carry it), Ticket its ticket's
// status ("" when not carried).
type Output struct {
	Status Status
	Code   string
	State  string
	Holder string
	Ticket string
}

// waitingStatus reports whether a ticket status waits on the end user.
func waitingStatus(status string) bool {
	return status == "pending" || status == "on-hold" || status == "solved"
}

// closure is every state s can move to without a client operation.
func closure(s ConvState, ch string, agents Agents) []ConvState {
	out := []ConvState{s}
	timed := ch == "chat" || ch == "voice" // timers end it while it waits
	switch s.St {
	case StQueued, StOffered:
		if s.St == StOffered {
			out = append(out, ConvState{St: StQueued, Waiting: s.Waiting})
		}
		routed := StOffered
		if ch == "email" {
			routed = StAssigned
		}
		if !s.Waiting {
			for _, a := range agents[ch] {
				if s.St != routed || a != s.Agent {
					out = append(out, ConvState{St: routed, Agent: a})
				}
			}
		}
		if timed {
			out = append(out, ConvState{St: StEnded, Waiting: s.Waiting})
		}
	case StAssigned, StUnassigned:
		if ch == "chat" {
			out = append(out, ConvState{St: StEnded})
		}
	case StWrapUp:
		out = append(out, ConvState{St: StEnded})
	}
	return out
}

// effect is what a successful op does from pre; nil when it cannot succeed
// from pre.
func effect(pre ConvState, in Input) []ConvState {
	open := pre.St.open()
	held := func(st St) bool { return pre.St == st && pre.Agent == in.Agent }
	with := func(st St, agent string) ConvState { return ConvState{St: st, Agent: agent, Waiting: pre.Waiting} }
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
			return []ConvState{with(StAssigned, in.Agent)}
		}
	case KindReject:
		if held(StOffered) {
			return []ConvState{with(StQueued, "")}
		}
	case KindLeave:
		if in.Channel == "chat" && held(StAssigned) {
			return []ConvState{{St: StUnassigned}}
		}
	case KindEndVisitor:
		switch {
		case !open:
		case in.Channel == "chat":
			return []ConvState{{St: StEnded}}
		case in.Channel == "voice" && pre.St == StAssigned:
			return []ConvState{with(StWrapUp, pre.Agent)} // hung up: wrap-up
		case in.Channel == "voice":
			return []ConvState{{St: StEnded}} // a missed call
		}
	case KindEndAgent:
		switch {
		case !held(StAssigned):
		case in.Channel == "voice":
			return []ConvState{with(StWrapUp, pre.Agent)}
		default:
			return []ConvState{with(StEnded, "")}
		}
	case KindRelease:
		switch {
		case in.Channel == "voice":
			if held(StWrapUp) {
				return []ConvState{with(StEnded, "")}
			}
		case !held(StAssigned):
		case in.Channel == "chat":
			return []ConvState{{St: StUnassigned}}
		case in.Arg != "":
			return []ConvState{{St: StEnded, Waiting: in.Channel == "email" && waitingStatus(in.Arg)}}
		default:
			return []ConvState{with(StEnded, "")}
		}
	case KindMsgVisitor:
		switch {
		case !open || in.Channel == "voice":
		case in.Channel == "chat" && pre.St == StUnassigned:
			return []ConvState{{St: StQueued}} // reopened
		case in.Channel == "messaging" && pre.St == StAssigned:
			// Reactivation while the agent is not online sends it back.
			return []ConvState{pre, {St: StQueued}}
		case in.Channel == "email" && pre.Waiting:
			// The ticket opens: it counts again for its agent, or goes back
			// to the queue when the agent cannot receive email.
			reopened := pre
			reopened.Waiting = false
			if pre.St == StAssigned {
				return []ConvState{reopened, {St: StQueued}}
			}
			return []ConvState{reopened}
		default:
			return []ConvState{pre}
		}
	case KindMsgAgent:
		if in.Channel != "voice" && held(StAssigned) {
			return []ConvState{pre}
		}
	case KindPresence:
		if in.Channel == "chat" && open {
			return []ConvState{pre}
		}
	case KindTicket:
		if pre.St == StNone {
			break
		}
		post := pre
		if in.Channel == "email" {
			post.Waiting = waitingStatus(in.Arg)
		}
		return []ConvState{post}
	case KindAssign:
		if pre.St == StQueued && !pre.Waiting {
			if in.Channel == "email" {
				return []ConvState{{St: StAssigned, Agent: in.Agent}}
			}
			return []ConvState{{St: StOffered, Agent: in.Agent}}
		}
	}
	return nil
}

// refusalFits reports whether a refusal with code is what pre gives.
func refusalFits(pre ConvState, in Input, code string) bool {
	open := pre.St.open()
	switch code {
	case "conversation_not_found":
		return pre.St == StNone
	case "conversation_ended":
		return pre.St == StEnded || pre.St == StWrapUp
	case "conversation_exists":
		return pre.St != StNone
	case "not_offered":
		mine := pre.Agent == in.Agent && (pre.St == StOffered || (in.Kind == KindAccept && pre.St == StAssigned))
		return open && !mine
	case "not_assigned":
		if in.Kind == KindRelease && in.Channel == "voice" {
			// Releasing a call looks at wrap-up, whether the call ended or not.
			return pre.St != StNone && !(pre.St == StWrapUp && pre.Agent == in.Agent)
		}
		return open && !(pre.Agent == in.Agent && pre.St == StAssigned)
	case "not_queued":
		return open && pre.St != StQueued
	}
	// Codes that do not depend on the conversation's state (validation,
	// wrong_channel, agent_not_found): no constraint, no effect.
	return true
}

// fits reports whether a successful answer shows state s: the same routing
// state, the same holder while held, and for an email the same ticket
// state when the answer carries the ticket.
func fits(s ConvState, out Output, ch string) bool {
	st, ok := parseSt(out.State)
	if !ok || st != s.St {
		return false
	}
	if st.holds() && out.Holder != s.Agent {
		return false
	}
	if ch == "email" && out.Ticket != "" && waitingStatus(out.Ticket) != s.Waiting {
		return false
	}
	return true
}

// Step is the nondeterministic step function: every state the conversation
// can be in after op from s.
func Step(s ConvState, in Input, out Output, agents Agents) []ConvState {
	var next []ConvState
	for _, pre := range closure(s, in.Channel, agents) {
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
				if fits(pre, out, in.Channel) {
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
				for _, seen := range closure(post, in.Channel, agents) {
					if fits(seen, out, in.Channel) {
						next = append(next, seen)
					}
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
func Model(agents Agents) porcupine.Model {
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
					if out.Ticket != "" {
						st += " ticket " + out.Ticket
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
var ConvKinds = map[string]bool{KindCreate: true, KindRead: true, KindAccept: true, KindReject: true, KindLeave: true,
	KindEndVisitor: true, KindEndAgent: true, KindRelease: true, KindMsgVisitor: true, KindMsgAgent: true,
	KindPresence: true, KindTicket: true, KindAssign: true}

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
		o := porcupine.Operation{ClientId: op.Client, Input: Input{Kind: op.Kind, Conv: op.Conv, Channel: op.Channel, Agent: op.Agent, Arg: modelArg(op)},
			Call: op.Call, Return: op.Return,
			Output:   Output{Status: op.Status, Code: op.Code, State: op.State, Holder: op.Holder, Ticket: op.Ticket},
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

// modelArg is the part of an op's argument the model uses: the ticket
// status a ticket update or a release sets.
func modelArg(op Op) string {
	if op.Kind == KindTicket || op.Kind == KindRelease {
		return op.Arg
	}
	return ""
}
