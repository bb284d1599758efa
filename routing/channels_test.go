package routing

import (
	"testing"
	"time"

	"github.com/omnirouter/omnirouter/capacity"
)

// agentOn creates an agent with the given capacity per channel and status.
func (h *harness) agentOn(id string, limits capacity.Limits, status AgentStatus) {
	h.t.Helper()
	h.do(UpsertAgent{ID: id, Name: id, Capacity: limits})
	h.do(SetAgentStatus{AgentID: id, Status: status})
}

func (h *harness) email(id string) Conversation {
	h.t.Helper()
	return *h.do(CreateConversation{ID: id, Channel: capacity.Email, Subject: "Refund", Message: "Where is my refund?"}).Conversation
}

func (h *harness) call(id string) Conversation {
	h.t.Helper()
	return *h.do(CreateConversation{ID: id, Channel: capacity.Voice}).Conversation
}

func TestEmail(t *testing.T) {
	emailOnly := capacity.Limits{capacity.Email: 1}
	runBehaviours(t, []behaviour{
		{"an email is a ticket: new from creation, via email, with its subject and no session timers", func(h *harness) {
			c := h.email("e1")
			if c.Ticket == nil || c.Ticket.Status != TicketNew || c.Ticket.Via != ViaEmail || c.Subject != "Refund" || c.nextDeadline() != 0 {
				h.t.Fatalf("email %+v (ticket %+v)", c, c.Ticket)
			}
			h.advance(30 * 24 * time.Hour)
			h.wantState("e1", StateQueued, ActivityActive)
		}},
		{"an email is assigned without an offer (email.auto_accept)", func(h *harness) {
			h.agentOn("a", emailOnly, StatusOnline)
			h.email("e1")
			h.wantState("e1", StateAssigned, ActivityActive)
			h.wantLoad("a", capacity.Email, 1)
			h.do(SetPolicy{Patch: MustPatch("email.auto_accept", false)})
			h.agentOn("b", emailOnly, StatusOnline)
			h.email("e2")
			h.wantState("e2", StateOffered, ActivityActive)
		}},
		{"new and open count; pending, on-hold and solved do not, and stay assigned", func(h *harness) {
			h.agentOn("a", emailOnly, StatusOnline)
			h.email("e1")
			for _, st := range []TicketStatus{TicketPending, TicketOnHold, TicketSolved} {
				h.do(SetTicketStatus{ConversationID: "e1", Status: st})
				h.wantState("e1", StateAssigned, ActivityActive)
				h.wantLoad("a", capacity.Email, 0)
			}
			h.do(SetTicketStatus{ConversationID: "e1", Status: TicketOpen})
			h.wantLoad("a", capacity.Email, 1)
		}},
		{"an end-user reply to a ticket that does not count opens it and it counts again, above capacity", func(h *harness) {
			h.agentOn("a", emailOnly, StatusOnline)
			h.email("e1")
			h.do(SetTicketStatus{ConversationID: "e1", Status: TicketPending})
			h.email("e2") // takes the freed slot
			h.wantLoad("a", capacity.Email, 1)
			h.do(PostMessage{ConversationID: "e1", Author: AuthorVisitor, Text: "Any news?"})
			if c := h.conv("e1"); c.Ticket.Status != TicketOpen || c.State != StateAssigned || c.AgentID != "a" || !c.Exempt {
				h.t.Fatalf("after the reply: %+v ticket %s", c, c.Ticket.Status)
			}
			h.wantLoad("a", capacity.Email, 2)
		}},
		{"an end-user reply requeues it with its eligibility time when its agent cannot receive email", func(h *harness) {
			h.agentOn("a", emailOnly, StatusOnline)
			first := h.email("e1")
			h.do(SetTicketStatus{ConversationID: "e1", Status: TicketPending})
			h.do(SetAgentStatus{AgentID: "a", Status: StatusAway})
			h.advance(time.Hour)
			h.do(PostMessage{ConversationID: "e1", Author: AuthorVisitor, Text: "Hello?"})
			c := h.conv("e1")
			if c.State != StateQueued || c.QueuedAt != first.QueuedAt || c.Ticket.Status != TicketOpen {
				h.t.Fatalf("after the reply: %+v", c)
			}
		}},
		{"away agents receive email only with email.route_to_away", func(h *harness) {
			h.agentOn("a", capacity.Limits{capacity.Chat: 1, capacity.Email: 1}, StatusAway)
			h.email("e1")
			h.webChat("c1")
			h.wantState("e1", StateQueued, ActivityActive)
			h.do(SetPolicy{Patch: MustPatch("email.route_to_away", true)})
			h.wantState("e1", StateAssigned, ActivityActive)
			h.wantState("c1", StateQueued, ActivityActive)
		}},
		{"an email needs its message, only an email has a subject", func(h *harness) {
			h.refuse(CreateConversation{ID: "e1", Channel: capacity.Email, Subject: "x"}, ErrInvalid, CodeInvalidText)
			h.refuse(CreateConversation{ID: "c1", Channel: capacity.Chat, Subject: "x", Message: "hi"}, ErrInvalid, "invalid_subject")
		}},
		{"the end user cannot end an email; the agent's end releases it", func(h *harness) {
			h.agentOn("a", emailOnly, StatusOnline)
			h.email("e1")
			h.refuse(End{ConversationID: "e1", By: EndedByVisitor}, ErrConflict, CodeWrongChannel)
			h.do(End{ConversationID: "e1", By: EndedByAgent, AgentID: "a"})
			if c := h.conv("e1"); c.State != StateEnded || c.EndedReason != ReasonReleased {
				h.t.Fatalf("%+v", c)
			}
			h.wantLoad("a", capacity.Email, 0)
		}},
		{"offline agents keep their email tickets", func(h *harness) {
			h.agentOn("a", emailOnly, StatusOnline)
			h.email("e1")
			h.do(SetAgentStatus{AgentID: "a", Status: StatusOffline})
			h.advance(time.Hour)
			h.wantState("e1", StateAssigned, ActivityActive)
		}},
	})
}

func TestVoice(t *testing.T) {
	voice := capacity.Limits{capacity.Voice: 1}
	runBehaviours(t, []behaviour{
		{"a call rings its agent for voice.ring_timeout, then the next, keeping its place", func(h *harness) {
			h.do(SetPolicy{Patch: MustPatch("voice.ring_timeout", 20*time.Second)})
			h.agentOn("a", voice, StatusOnline)
			h.agentOn("b", voice, StatusOnline)
			first := h.call("v1")
			rung := first.AgentID
			h.advance(20 * time.Second)
			c := h.conv("v1")
			if c.State != StateOffered || c.AgentID == rung || c.QueuedAt != first.QueuedAt {
				h.t.Fatalf("after the ring timeout: %+v (first rang %s)", c, rung)
			}
			h.do(Reject{ConversationID: "v1", AgentID: c.AgentID})
			if c := h.conv("v1"); c.State != StateOffered || c.AgentID != rung {
				h.t.Fatalf("after a reject: %+v", c)
			}
		}},
		{"answering a call stops its queue wait", func(h *harness) {
			h.agentOn("a", voice, StatusOnline)
			c := h.call("v1")
			h.do(Accept{ConversationID: "v1", AgentID: c.AgentID})
			h.advance(time.Hour)
			h.wantState("v1", StateAssigned, ActivityActive)
		}},
		{"a hang-up holds the agent in wrap-up for voice.wrap_up, counting toward voice", func(h *harness) {
			h.do(SetPolicy{Patch: MustPatch("voice.wrap_up", time.Minute)})
			h.agentOn("a", voice, StatusOnline)
			h.call("v1")
			h.do(Accept{ConversationID: "v1", AgentID: "a"})
			h.do(End{ConversationID: "v1", By: EndedByVisitor})
			h.wantState("v1", StateWrapUp, ActivityEnded)
			h.wantLoad("a", capacity.Voice, 1)
			h.call("v2")
			h.wantState("v2", StateQueued, ActivityActive) // a is still in wrap-up
			h.advance(time.Minute)
			if c := h.conv("v1"); c.State != StateEnded || c.EndedReason != ReasonVisitorEnded || c.Missed {
				h.t.Fatalf("after wrap-up: %+v", c)
			}
			h.wantState("v2", StateOffered, ActivityActive)
		}},
		{"release ends wrap-up early; release during the call is refused", func(h *harness) {
			h.do(SetPolicy{Patch: MustPatch("voice.wrap_up", 15*time.Minute)})
			h.agentOn("a", voice, StatusOnline)
			h.call("v1")
			h.do(Accept{ConversationID: "v1", AgentID: "a"})
			h.refuse(Release{AgentID: "a", ConversationID: "v1"}, ErrConflict, CodeNotAssigned)
			h.do(End{ConversationID: "v1", By: EndedByAgent, AgentID: "a"})
			h.do(Release{AgentID: "a", ConversationID: "v1"})
			if c := h.conv("v1"); c.State != StateEnded || c.EndedReason != ReasonAgentEnded {
				h.t.Fatalf("%+v", c)
			}
			h.wantLoad("a", capacity.Voice, 0)
		}},
		{"without wrap-up a hang-up ends the call at once", func(h *harness) {
			h.agentOn("a", voice, StatusOnline)
			h.call("v1")
			h.do(Accept{ConversationID: "v1", AgentID: "a"})
			h.do(End{ConversationID: "v1", By: EndedByAgent, AgentID: "a"})
			h.wantState("v1", StateEnded, ActivityEnded)
			h.wantLoad("a", capacity.Voice, 0)
		}},
		{"a caller who hangs up while queued is a missed call with a ticket", func(h *harness) {
			h.call("v1")
			h.do(End{ConversationID: "v1", By: EndedByVisitor})
			c := h.conv("v1")
			if c.State != StateEnded || !c.Missed || c.EndedReason != ReasonCallerHungUp || c.Ticket == nil || c.Ticket.Via != ViaMissedCall {
				h.t.Fatalf("%+v ticket %+v", c, c.Ticket)
			}
		}},
		{"a caller who hangs up while ringing is a missed call; a voicemail says so", func(h *harness) {
			h.agentOn("a", voice, StatusOnline)
			h.call("v1")
			h.wantState("v1", StateOffered, ActivityActive)
			h.do(End{ConversationID: "v1", By: EndedByVisitor, Voicemail: true})
			c := h.conv("v1")
			if !c.Missed || c.Ticket == nil || c.Ticket.Via != ViaVoicemail {
				h.t.Fatalf("%+v ticket %+v", c, c.Ticket)
			}
			h.wantLoad("a", capacity.Voice, 0)
			h.refuse(End{ConversationID: "v2", By: EndedByAgent, Voicemail: true}, ErrInvalid, "invalid_voicemail")
		}},
		{"a call waiting voice.max_queue_wait, ringing included, ends missed", func(h *harness) {
			h.do(SetPolicy{Patch: MustPatch("voice.max_queue_wait", 2*time.Minute, "voice.ring_timeout", time.Minute)})
			h.agentOn("a", voice, StatusOnline)
			h.call("v1")
			h.advance(2 * time.Minute)
			c := h.conv("v1")
			if c.State != StateEnded || !c.Missed || c.EndedReason != ReasonQueueTimeout || c.Ticket.Via != ViaMissedCall {
				h.t.Fatalf("%+v", c)
			}
			h.wantLoad("a", capacity.Voice, 0)
		}},
		{"voice capacity is 0 or 1; a call has no messages", func(h *harness) {
			h.refuse(UpsertAgent{ID: "a", Capacity: capacity.Limits{capacity.Voice: 2}}, ErrInvalid, CodeInvalidCapacity)
			h.call("v1")
			h.refuse(PostMessage{ConversationID: "v1", Author: AuthorVisitor, Text: "hi"}, ErrConflict, CodeWrongChannel)
			h.refuse(CreateConversation{ID: "v2", Channel: capacity.Voice, Message: "hi"}, ErrInvalid, CodeInvalidText)
		}},
	})
}

func TestFocusMode(t *testing.T) {
	all := capacity.Limits{2, 2, 2, 1}
	focus := MustPatch("routing.focus_mode", true)
	runBehaviours(t, []behaviour{
		{"an agent offered real-time work gets no other real-time channel, but still email", func(h *harness) {
			h.do(SetPolicy{Patch: focus})
			h.agentOn("a", all, StatusOnline)
			h.webChat("c1") // offered to a
			h.messaging("m1")
			h.call("v1")
			h.email("e1")
			h.wantState("m1", StateQueued, ActivityActive)
			h.wantState("v1", StateQueued, ActivityActive)
			h.wantState("e1", StateAssigned, ActivityActive)
			h.webChat("c2") // the same channel: still allowed
			h.wantState("c2", StateOffered, ActivityActive)
		}},
		{"once its real-time work is done the agent takes other channels again", func(h *harness) {
			h.do(SetPolicy{Patch: focus})
			h.agentOn("a", all, StatusOnline)
			h.webChat("c1")
			h.call("v1")
			h.wantState("v1", StateQueued, ActivityActive)
			h.do(Reject{ConversationID: "c1", AgentID: "a"}) // back to the queue, a missed it
			// The chat is offered to a again (nobody else); the call waits.
			h.do(End{ConversationID: "c1", By: EndedByVisitor})
			h.wantState("v1", StateOffered, ActivityActive)
		}},
		{"without focus mode an agent takes every channel", func(h *harness) {
			h.agentOn("a", all, StatusOnline)
			h.webChat("c1")
			h.messaging("m1")
			h.call("v1")
			h.wantState("m1", StateOffered, ActivityActive)
			h.wantState("v1", StateOffered, ActivityActive)
		}},
		{"turning focus mode off matches what it held back", func(h *harness) {
			h.do(SetPolicy{Patch: focus})
			h.agentOn("a", all, StatusOnline)
			h.webChat("c1")
			h.call("v1")
			h.do(SetPolicy{Patch: MustPatch("routing.focus_mode", false)})
			h.wantState("v1", StateOffered, ActivityActive)
		}},
	})
}

func TestOneQueueAcrossChannels(t *testing.T) {
	runBehaviours(t, []behaviour{
		{"an agent on several channels is offered the highest priority first, whatever its channel", func(h *harness) {
			h.do(CreateConversation{ID: "c1", Channel: capacity.Chat, Message: "hi"})
			h.do(CreateConversation{ID: "m1", Channel: capacity.Messaging, Message: "hi", Priority: 3})
			h.agentOn("a", capacity.Limits{1, 1, 0, 0}, StatusOnline)
			h.do(UpsertAgent{ID: "a", Name: "a", Capacity: capacity.Limits{1, 1}}) // no change: a holds one already
			a := h.agent("a")
			if len(a.Conversations) != 2 {
				h.t.Fatalf("a holds %v", a.Conversations)
			}
		}},
		{"then the oldest eligibility time, whatever its channel", func(h *harness) {
			h.do(CreateConversation{ID: "v1", Channel: capacity.Voice})
			h.advance(time.Second)
			h.do(CreateConversation{ID: "c1", Channel: capacity.Chat, Message: "hi"})
			h.do(SetPolicy{Patch: MustPatch("routing.focus_mode", true)})
			h.agentOn("a", capacity.Limits{1, 0, 0, 1}, StatusOnline)
			// In focus mode a takes one real-time channel: the older call.
			h.wantState("v1", StateOffered, ActivityActive)
			h.wantState("c1", StateQueued, ActivityActive)
		}},
		{"a policy change matches the whole queue in the same order", func(h *harness) {
			h.do(SetPolicy{Patch: MustPatch("routing.mode", ModeExternal, "routing.focus_mode", true)})
			h.agentOn("a", capacity.Limits{1, 1, 0, 1}, StatusOnline)
			h.do(CreateConversation{ID: "c1", Channel: capacity.Chat, Message: "hi"})
			h.advance(time.Second)
			h.do(CreateConversation{ID: "m1", Channel: capacity.Messaging, Message: "hi", Priority: 1})
			h.advance(time.Second)
			h.do(CreateConversation{ID: "v1", Channel: capacity.Voice})
			h.do(SetPolicy{Patch: MustPatch("routing.mode", ModeAuto)})
			h.wantState("m1", StateOffered, ActivityActive) // priority first
			h.wantState("c1", StateQueued, ActivityActive)
			h.wantState("v1", StateQueued, ActivityActive)
		}},
	})
}
