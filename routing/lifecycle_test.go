package routing

import (
	"slices"
	"testing"
	"time"

	"github.com/omnirouter/omnirouter/capacity"
)

type behaviour struct {
	name string
	run  func(h *harness)
}

func runBehaviours(t *testing.T, rows []behaviour) {
	t.Helper()
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) { row.run(newHarness(t)) })
	}
}

// wantEnded checks that c ended with reason, exactly once.
func (h *harness) wantEnded(id, reason string) {
	h.t.Helper()
	c := h.conv(id)
	if c.State != StateEnded || c.Activity != ActivityEnded || c.EndedReason != reason {
		h.t.Fatalf("conversation %s: got %s/%s reason %q, want ended with %q", id, c.State, c.Activity, c.EndedReason, reason)
	}
	if n := len(h.eventsOf(EventEnded, id)); n != 1 {
		h.t.Fatalf("conversation %s: %d ended events, want 1", id, n)
	}
}

func (h *harness) wantOpen(id string) {
	h.t.Helper()
	if c := h.conv(id); c.State == StateEnded {
		h.t.Fatalf("conversation %s ended early (%s)", id, c.EndedReason)
	}
}

// DESIGN §3.1: live chat, web widget.
func TestWebChatSession(t *testing.T) {
	runBehaviours(t, []behaviour{
		{"visitor activity keeps the chat active and restarts the idle clock", func(h *harness) {
			h.webChat("c1")
			h.advance(9 * time.Minute)
			h.do(Presence{ConversationID: "c1", Event: PresenceActivity})
			h.advance(9 * time.Minute)
			h.wantState("c1", StateQueued, ActivityActive)
			h.do(PostMessage{ConversationID: "c1", Author: AuthorVisitor, Text: "still there"})
			h.advance(9*time.Minute + 59*time.Second)
			h.wantState("c1", StateQueued, ActivityActive)
		}},
		{"no page activity for idle_after makes the visitor inactive", func(h *harness) {
			h.webChat("c1")
			h.advance(10*time.Minute - time.Millisecond)
			h.wantState("c1", StateQueued, ActivityActive)
			h.advance(time.Millisecond)
			h.wantState("c1", StateQueued, ActivityInactive)
			if len(h.eventsOf(EventInactive, "c1")) != 1 {
				h.t.Fatal("no conversation.inactive event")
			}
		}},
		{"activity after idling makes the chat active again", func(h *harness) {
			h.webChat("c1")
			h.advance(10 * time.Minute)
			h.do(Presence{ConversationID: "c1", Event: PresenceActivity})
			h.wantState("c1", StateQueued, ActivityActive)
			h.advance(29 * time.Minute)
			h.wantState("c1", StateQueued, ActivityInactive) // idle again, not ended
			h.wantOpen("c1")
		}},
		{"a visitor who keeps being active after idling is never timed out", func(h *harness) {
			h.webChat("c1")
			h.advance(10 * time.Minute) // inactive; idle_timeout would end it at 30m
			for i := 0; i < 6; i++ {
				h.do(Presence{ConversationID: "c1", Event: PresenceActivity})
				h.advance(5 * time.Minute)
			}
			h.wantState("c1", StateQueued, ActivityActive)
		}},
		{"idle for idle_timeout ends the session", func(h *harness) {
			h.webChat("c1")
			h.advance(10 * time.Minute)
			h.advance(20*time.Minute - time.Millisecond)
			h.wantOpen("c1")
			h.advance(time.Millisecond)
			h.wantEnded("c1", ReasonIdleTimeout)
		}},
		{"disconnected visitor's session ends after disconnect_timeout", func(h *harness) {
			h.webChat("c1")
			h.do(Presence{ConversationID: "c1", Event: PresenceDisconnected})
			h.advance(2*time.Minute - time.Millisecond)
			h.wantOpen("c1")
			h.advance(time.Millisecond)
			h.wantEnded("c1", ReasonDisconnectTimeout)
		}},
		{"reconnecting in time keeps the session", func(h *harness) {
			h.webChat("c1")
			h.do(Presence{ConversationID: "c1", Event: PresenceDisconnected})
			h.advance(time.Minute)
			h.do(Presence{ConversationID: "c1", Event: PresenceConnected})
			h.advance(5 * time.Minute)
			h.wantOpen("c1")
		}},
		{"visitor ending the chat ends it at once", func(h *harness) {
			h.onlineAgent("a1", 1, 0)
			h.webChat("c1")
			h.accept("c1", "a1")
			h.do(End{ConversationID: "c1", By: EndedByVisitor})
			h.wantEnded("c1", ReasonVisitorEnded)
			h.wantLoad("a1", capacity.Chat, 0)
		}},
		{"agent leaving releases capacity and leaves the chat unassigned", func(h *harness) {
			h.onlineAgent("a1", 1, 0)
			h.webChat("c1")
			h.accept("c1", "a1")
			h.wantLoad("a1", capacity.Chat, 1)
			h.do(Leave{ConversationID: "c1", AgentID: "a1"})
			h.wantState("c1", StateUnassigned, ActivityActive)
			h.wantLoad("a1", capacity.Chat, 0)
			if c := h.conv("c1"); c.AgentID != "" {
				h.t.Fatalf("agent_id %q after leave", c.AgentID)
			}
			if h.m.QueueLen() != 0 {
				h.t.Fatal("an unassigned chat must not be queued")
			}
			if len(h.eventsOf(EventUnassigned, "c1")) != 1 {
				h.t.Fatal("no conversation.unassigned event")
			}
		}},
		{"agent ending the chat ends the session and tells the visitor", func(h *harness) {
			h.onlineAgent("a1", 1, 0)
			h.webChat("c1")
			h.accept("c1", "a1")
			h.do(End{ConversationID: "c1", By: EndedByAgent, AgentID: "a1"})
			h.wantEnded("c1", ReasonAgentEnded)
			tr := h.conv("c1").Transcript
			if last := tr[len(tr)-1]; last.Author != AuthorSystem || last.Text != noticeAgentLeft {
				h.t.Fatalf("visitor not told the agent left: %+v", last)
			}
			h.wantLoad("a1", capacity.Chat, 0)
		}},
		{"agent ending is refused when agent_can_end_chat is off", func(h *harness) {
			h.do(SetPolicy{Patch: MustPatch("chat.agent_can_end_chat", false)})
			h.onlineAgent("a1", 1, 0)
			h.webChat("c1")
			h.accept("c1", "a1")
			h.refuse(End{ConversationID: "c1", By: EndedByAgent, AgentID: "a1"}, ErrConflict, CodeAgentEndDisabled)
		}},
		{"backgrounded applies to the mobile SDK only", func(h *harness) {
			h.webChat("c1")
			h.refuse(Presence{ConversationID: "c1", Event: PresenceBackgrounded}, ErrConflict, "wrong_client")
		}},
	})
}

// DESIGN §3.2: live chat, mobile SDK.
func TestMobileChatSession(t *testing.T) {
	runBehaviours(t, []behaviour{
		{"no chat activity for inactivity_timeout ends the session", func(h *harness) {
			h.mobileChat("c1", true)
			h.advance(59 * time.Minute)
			h.do(PostMessage{ConversationID: "c1", Author: AuthorVisitor, Text: "hi"})
			h.advance(59 * time.Minute)
			h.wantOpen("c1")
			h.advance(time.Minute)
			h.wantEnded("c1", ReasonInactivityTimeout)
		}},
		{"agent messages are chat activity", func(h *harness) {
			h.onlineAgent("a1", 1, 0)
			h.mobileChat("c1", true)
			h.accept("c1", "a1")
			h.advance(50 * time.Minute)
			h.do(PostMessage{ConversationID: "c1", Author: AuthorAgent, AgentID: "a1", Text: "here"})
			h.advance(50 * time.Minute)
			h.wantOpen("c1")
		}},
		{"visitor disconnected for disconnect_timeout ends the session", func(h *harness) {
			h.mobileChat("c1", true)
			h.do(Presence{ConversationID: "c1", Event: PresenceDisconnected})
			h.advance(30 * time.Minute)
			h.do(PostMessage{ConversationID: "c1", Author: AuthorVisitor, Text: "typing offline"})
			h.advance(30 * time.Minute)
			h.wantEnded("c1", ReasonDisconnectTimeout)
		}},
		{"agent ending releases capacity and ends the session agent_ended_timeout later", func(h *harness) {
			h.onlineAgent("a1", 1, 0)
			h.mobileChat("c1", true)
			h.accept("c1", "a1")
			h.do(Presence{ConversationID: "c1", Event: PresenceDisconnected})
			h.do(End{ConversationID: "c1", By: EndedByAgent, AgentID: "a1"})
			h.wantState("c1", StateUnassigned, ActivityActive)
			h.wantLoad("a1", capacity.Chat, 0)
			h.advance(5*time.Minute - time.Millisecond)
			h.wantOpen("c1")
			h.advance(time.Millisecond)
			h.wantEnded("c1", ReasonAgentEnded)
		}},
		{"visitor writing within the agent-ended window reopens the chat", func(h *harness) {
			h.onlineAgent("a1", 1, 0)
			h.mobileChat("c1", true)
			queuedAt := h.conv("c1").QueuedAt
			h.accept("c1", "a1")
			h.do(End{ConversationID: "c1", By: EndedByAgent, AgentID: "a1"})
			h.do(SetAgentStatus{AgentID: "a1", Status: StatusAway}) // keep it queued
			h.advance(4 * time.Minute)
			h.do(PostMessage{ConversationID: "c1", Author: AuthorVisitor, Text: "one more thing"})
			h.wantState("c1", StateQueued, ActivityActive)
			if h.conv("c1").QueuedAt != queuedAt {
				h.t.Fatal("reopened chat lost its place")
			}
			h.advance(10 * time.Minute)
			h.wantOpen("c1")
		}},
		{"visitor ending the chat ends it at once", func(h *harness) {
			h.mobileChat("c1", true)
			h.do(End{ConversationID: "c1", By: EndedByVisitor})
			h.wantEnded("c1", ReasonVisitorEnded)
		}},
		{"backgrounded without push ends background_timeout later", func(h *harness) {
			h.mobileChat("c1", false)
			h.do(Presence{ConversationID: "c1", Event: PresenceBackgrounded})
			h.advance(30*time.Minute - time.Millisecond)
			h.wantOpen("c1")
			h.advance(time.Millisecond)
			h.wantEnded("c1", ReasonBackgroundTimeout)
		}},
		{"foregrounding in time keeps the session", func(h *harness) {
			h.mobileChat("c1", false)
			h.do(Presence{ConversationID: "c1", Event: PresenceBackgrounded})
			h.advance(20 * time.Minute)
			h.do(Presence{ConversationID: "c1", Event: PresenceForegrounded})
			h.advance(20 * time.Minute)
			h.wantOpen("c1")
		}},
		{"backgrounded with push enabled does not end", func(h *harness) {
			h.mobileChat("c1", true)
			h.do(Presence{ConversationID: "c1", Event: PresenceBackgrounded})
			h.advance(45 * time.Minute)
			h.wantOpen("c1")
		}},
	})
}

// DESIGN §3.3: leaving, reopening, transcript, missed chats.
func TestReopenTranscriptMissed(t *testing.T) {
	runBehaviours(t, []behaviour{
		{"an agent can always leave, and a visitor message requeues the same chat in its place", func(h *harness) {
			h.onlineAgent("a1", 1, 0)
			h.webChat("c1")
			first := h.conv("c1")
			h.accept("c1", "a1")
			h.do(PostMessage{ConversationID: "c1", Author: AuthorAgent, AgentID: "a1", Text: "how can I help?"})
			h.do(Leave{ConversationID: "c1", AgentID: "a1"})
			h.do(SetAgentStatus{AgentID: "a1", Status: StatusAway})
			h.advance(time.Minute)
			h.webChat("c2") // arrives later than c1's eligibility time
			h.do(PostMessage{ConversationID: "c1", Author: AuthorVisitor, Text: "wait, one more"})
			c := h.conv("c1")
			if c.State != StateQueued || c.QueuedAt != first.QueuedAt {
				h.t.Fatalf("reopened: state %s queued_at %d, want queued at %d", c.State, c.QueuedAt, first.QueuedAt)
			}
			if q := h.m.Queue(); len(q) != 2 || q[0].ID != "c1" {
				h.t.Fatalf("reopened chat lost its place: %+v", q)
			}
			want := []string{"hello", "how can I help?", "wait, one more"}
			if !slices.Equal(texts(c.Transcript), want) {
				h.t.Fatalf("transcript %v, want %v", texts(c.Transcript), want)
			}
			if len(h.eventsOf(EventRequeued, "c1")) != 1 {
				h.t.Fatal("no conversation.requeued event")
			}
		}},
		{"the whole transcript, reopened parts included, is one ended event", func(h *harness) {
			h.onlineAgent("a1", 1, 0)
			h.webChat("c1")
			h.accept("c1", "a1")
			h.do(Leave{ConversationID: "c1", AgentID: "a1"})
			h.do(PostMessage{ConversationID: "c1", Author: AuthorVisitor, Text: "again"})
			h.accept("c1", "a1") // auto mode offered it to a1 again
			h.do(PostMessage{ConversationID: "c1", Author: AuthorAgent, AgentID: "a1", Text: "back"})
			h.do(End{ConversationID: "c1", By: EndedByVisitor})
			ended := h.eventsOf(EventEnded, "c1")
			if len(ended) != 1 {
				h.t.Fatalf("%d ended events", len(ended))
			}
			if got, want := texts(ended[0].Data.Transcript), []string{"hello", "again", "back"}; !slices.Equal(got, want) {
				h.t.Fatalf("ended transcript %v, want %v", got, want)
			}
			if h.conv("c1").Missed {
				h.t.Fatal("a joined chat is not missed")
			}
		}},
		{"a chat no agent joined is missed and gets a ticket when the session ends, not before", func(h *harness) {
			h.onlineAgent("a1", 1, 0)
			h.webChat("c1") // offered to a1, never accepted
			h.do(Reject{ConversationID: "c1", AgentID: "a1"})
			h.advance(5 * time.Minute)
			if h.conv("c1").Ticket != nil || len(h.eventsOf(EventTicketCreated, "c1")) != 0 {
				h.t.Fatal("missed-chat ticket created before the session ended")
			}
			h.do(End{ConversationID: "c1", By: EndedByVisitor})
			c := h.conv("c1")
			if !c.Missed || c.Ticket == nil || c.Ticket.Via != ViaMissedChat || c.Ticket.CreatedAt != h.now {
				h.t.Fatalf("missed chat: missed=%v ticket=%+v", c.Missed, c.Ticket)
			}
			if len(h.eventsOf(EventTicketCreated, "c1")) != 1 {
				h.t.Fatal("no ticket.created event")
			}
			if ended := h.eventsOf(EventEnded, "c1"); !ended[0].Data.Missed {
				h.t.Fatal("ended event does not say missed")
			}
		}},
		{"a chat that times out in the queue is missed", func(h *harness) {
			h.webChat("c1")
			h.do(Presence{ConversationID: "c1", Event: PresenceDisconnected})
			h.advance(2 * time.Minute)
			if c := h.conv("c1"); !c.Missed || c.Ticket == nil {
				h.t.Fatalf("missed=%v ticket=%v", c.Missed, c.Ticket)
			}
		}},
		{"a message to an ended chat is refused", func(h *harness) {
			h.webChat("c1")
			h.do(End{ConversationID: "c1", By: EndedByVisitor})
			h.refuse(PostMessage{ConversationID: "c1", Author: AuthorVisitor, Text: "hello?"}, ErrConflict, CodeConversationEnded)
		}},
	})
}

// DESIGN §3.4: messaging.
func TestMessagingActivity(t *testing.T) {
	runBehaviours(t, []behaviour{
		{"unassigned conversation goes inactive inactivity_timeout after the end user's last message", func(h *harness) {
			h.messaging("m1")
			h.advance(8 * time.Minute)
			h.do(PostMessage{ConversationID: "m1", Author: AuthorVisitor, Text: "anyone?"})
			h.advance(10*time.Minute - time.Millisecond)
			h.wantState("m1", StateQueued, ActivityActive)
			h.advance(time.Millisecond)
			h.wantState("m1", StateQueued, ActivityInactive)
		}},
		{"a rejected conversation back in the queue goes inactive again", func(h *harness) {
			h.onlineAgent("a1", 0, 2)
			h.messaging("m1")
			h.do(Reject{ConversationID: "m1", AgentID: "a1"})
			h.wantOfferedTo("m1", "a1") // the only agent, so offered again
			h.do(SetAgentStatus{AgentID: "a1", Status: StatusOffline})
			h.advance(10*time.Minute - time.Millisecond)
			h.wantState("m1", StateQueued, ActivityActive)
			h.advance(time.Millisecond)
			h.wantState("m1", StateQueued, ActivityInactive)
		}},
		{"on assignment the conversation is active and stays active while it is the agent's turn", func(h *harness) {
			h.onlineAgent("a1", 0, 2)
			h.messaging("m1")
			h.accept("m1", "a1")
			h.wantState("m1", StateAssigned, ActivityActive)
			h.advance(2 * time.Hour)
			h.wantState("m1", StateAssigned, ActivityActive)
			h.wantLoad("a1", capacity.Messaging, 1)
		}},
		{"for an assigned conversation the clock starts at the first agent message after the end user's", func(h *harness) {
			h.onlineAgent("a1", 0, 2)
			h.messaging("m1")
			h.accept("m1", "a1")
			h.advance(time.Hour)
			h.do(PostMessage{ConversationID: "m1", Author: AuthorAgent, AgentID: "a1", Text: "hi"})
			h.advance(5 * time.Minute)
			h.do(PostMessage{ConversationID: "m1", Author: AuthorAgent, AgentID: "a1", Text: "still there?"})
			h.advance(5*time.Minute - time.Millisecond)
			h.wantState("m1", StateAssigned, ActivityActive) // second message did not restart it
			h.advance(time.Millisecond)
			h.wantState("m1", StateAssigned, ActivityInactive)
			h.wantLoad("a1", capacity.Messaging, 0)
			if h.conv("m1").AgentID != "a1" {
				h.t.Fatal("inactive conversation must stay with its agent")
			}
		}},
		{"an end-user reply makes it the agent's turn again", func(h *harness) {
			h.onlineAgent("a1", 0, 2)
			h.messaging("m1")
			h.accept("m1", "a1")
			h.do(PostMessage{ConversationID: "m1", Author: AuthorAgent, AgentID: "a1", Text: "hi"})
			h.advance(9 * time.Minute)
			h.do(PostMessage{ConversationID: "m1", Author: AuthorVisitor, Text: "thanks, one question"})
			h.advance(time.Hour)
			h.wantState("m1", StateAssigned, ActivityActive)
		}},
		{"ticket pending, on-hold or solved makes it inactive at once and it stops counting", func(h *harness) {
			for _, st := range []TicketStatus{TicketPending, TicketOnHold, TicketSolved} {
				id := "m-" + st.String()
				h.onlineAgent("a-"+st.String(), 0, 1)
				h.messaging(id)
				h.accept(id, "a-"+st.String())
				h.do(SetTicketStatus{ConversationID: id, Status: st})
				h.wantState(id, StateAssigned, ActivityInactive)
				h.wantLoad("a-"+st.String(), capacity.Messaging, 0)
				if c := h.conv(id); c.Ticket.Status != st || c.AgentID != "a-"+st.String() {
					h.t.Fatalf("%s: ticket %+v agent %q", st, c.Ticket, c.AgentID)
				}
			}
		}},
		{"with count_inactive_messaging inactive conversations still count", func(h *harness) {
			h.do(SetPolicy{Patch: MustPatch("messaging.count_inactive_messaging", true)})
			h.onlineAgent("a1", 0, 1)
			h.messaging("m1")
			h.accept("m1", "a1")
			h.do(SetTicketStatus{ConversationID: "m1", Status: TicketPending})
			h.wantLoad("a1", capacity.Messaging, 1)
			h.messaging("m2")
			h.wantState("m2", StateQueued, ActivityActive)
			h.do(SetPolicy{Patch: MustPatch("messaging.count_inactive_messaging", false)})
			h.wantLoad("a1", capacity.Messaging, 1) // m2 took the freed slot at once
			h.wantState("m2", StateOffered, ActivityActive)
		}},
		{"reactivation counts again for the same agent even above capacity", func(h *harness) {
			h.onlineAgent("a1", 0, 1)
			h.messaging("m1")
			h.accept("m1", "a1")
			h.do(SetTicketStatus{ConversationID: "m1", Status: TicketPending})
			h.messaging("m2")
			h.accept("m2", "a1")
			h.wantLoad("a1", capacity.Messaging, 1)
			h.do(PostMessage{ConversationID: "m1", Author: AuthorVisitor, Text: "it broke again"})
			h.wantState("m1", StateAssigned, ActivityActive)
			h.wantLoad("a1", capacity.Messaging, 2)
			if c := h.conv("m1"); c.Ticket.Status != TicketOpen || c.AgentID != "a1" {
				h.t.Fatalf("reactivated: ticket %s agent %q", c.Ticket.Status, c.AgentID)
			}
			h.messaging("m3")
			h.wantState("m3", StateQueued, ActivityActive) // no new work above capacity
			h.do(Release{AgentID: "a1", ConversationID: "m2"})
			h.wantState("m3", StateQueued, ActivityActive) // still at capacity
			h.do(Release{AgentID: "a1", ConversationID: "m1"})
			h.wantState("m3", StateOffered, ActivityActive)
		}},
		{"reactivation requeues in its original place when the agent is not online", func(h *harness) {
			h.onlineAgent("a1", 0, 2)
			h.messaging("m1")
			queuedAt := h.conv("m1").QueuedAt
			h.accept("m1", "a1")
			h.advance(time.Minute)
			h.do(SetTicketStatus{ConversationID: "m1", Status: TicketPending})
			h.do(SetAgentStatus{AgentID: "a1", Status: StatusAway})
			h.do(PostMessage{ConversationID: "m1", Author: AuthorVisitor, Text: "hello again"})
			c := h.conv("m1")
			if c.State != StateQueued || c.QueuedAt != queuedAt || c.Activity != ActivityActive {
				h.t.Fatalf("got %s/%s queued_at %d, want queued at %d", c.State, c.Activity, c.QueuedAt, queuedAt)
			}
			h.wantLoad("a1", capacity.Messaging, 0)
		}},
		{"releasing capacity ends the session for good and sets the ticket", func(h *harness) {
			h.onlineAgent("a1", 0, 1)
			h.messaging("m1")
			h.accept("m1", "a1")
			out := h.do(Release{AgentID: "a1", ConversationID: "m1", TicketStatus: TicketOnHold, SetTicket: true})
			if out.Agent == nil || out.Agent.Load[capacity.Messaging] != 0 || out.Conversation == nil {
				h.t.Fatalf("release outcome %+v", out)
			}
			h.wantEnded("m1", ReasonReleased)
			h.wantLoad("a1", capacity.Messaging, 0)
			if c := h.conv("m1"); c.Ticket.Status != TicketOnHold || c.Missed {
				h.t.Fatalf("ticket %s missed %v", c.Ticket.Status, c.Missed)
			}
			h.refuse(PostMessage{ConversationID: "m1", Author: AuthorVisitor, Text: "hello?"}, ErrConflict, CodeConversationEnded)
		}},
		{"release may leave the ticket unchanged", func(h *harness) {
			h.onlineAgent("a1", 0, 1)
			h.messaging("m1")
			h.accept("m1", "a1")
			h.do(Release{AgentID: "a1", ConversationID: "m1"})
			if c := h.conv("m1"); c.Ticket.Status != TicketNew {
				h.t.Fatalf("ticket %s", c.Ticket.Status)
			}
		}},
		{"release refuses a ticket status other than pending or on-hold", func(h *harness) {
			h.onlineAgent("a1", 0, 1)
			h.messaging("m1")
			h.accept("m1", "a1")
			h.refuse(Release{AgentID: "a1", ConversationID: "m1", TicketStatus: TicketSolved, SetTicket: true}, ErrInvalid, "invalid_ticket_status")
		}},
		{"the end user cannot end a messaging conversation", func(h *harness) {
			h.messaging("m1")
			h.refuse(End{ConversationID: "m1", By: EndedByVisitor}, ErrConflict, CodeWrongChannel)
		}},
	})
}
