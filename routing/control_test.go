package routing

import (
	"slices"
	"testing"
	"time"

	"github.com/omnirouter/omnirouter/capacity"
)

func TestTransfer(t *testing.T) {
	runBehaviours(t, []behaviour{
		{"to an agent: the holder's capacity is freed at once and the target is offered it", func(h *harness) {
			h.onlineAgent("a", 1, 0)
			first := h.webChat("c1")
			h.accept("c1", "a")
			h.agentOn("b", capacity.Limits{capacity.Chat: 1}, StatusTransfersOnly)
			out := h.do(Transfer{ConversationID: "c1", AgentID: "a", ToAgent: "b", Note: "VIP customer"})
			c := out.Conversation
			if c.State != StateOffered || c.AgentID != "b" || c.QueuedAt != first.QueuedAt {
				h.t.Fatalf("after the transfer: %+v", c)
			}
			if last := c.Transcript[len(c.Transcript)-1]; last.Author != AuthorSystem || last.Text != "VIP customer" {
				h.t.Fatalf("note %+v", last)
			}
			h.wantLoad("a", capacity.Chat, 0)
			if n := len(h.eventsOf(EventTransferReq, "c1")); n != 1 {
				h.t.Fatalf("%d transfer_requested events", n)
			}
			if n := len(h.eventsOf(EventTransferred, "c1")); n != 0 {
				h.t.Fatal("transferred before the target took it")
			}
			h.accept("c1", "b")
			if got := h.eventsOf(EventTransferred, "c1"); len(got) != 1 || got[0].AgentID != "b" {
				h.t.Fatalf("transferred events %+v", got)
			}
		}},
		{"a target that is not online or transfers_only, or has no room, is refused and nothing changes", func(h *harness) {
			h.onlineAgent("a", 1, 0)
			h.webChat("c1")
			h.accept("c1", "a")
			h.agentOn("away", capacity.Limits{capacity.Chat: 1}, StatusAway)
			h.agentOn("full", capacity.Limits{capacity.Messaging: 1}, StatusOnline)
			h.refuse(Transfer{ConversationID: "c1", AgentID: "a", ToAgent: "away"}, ErrConflict, CodeTargetUnavailable)
			h.refuse(Transfer{ConversationID: "c1", AgentID: "a", ToAgent: "full"}, ErrConflict, CodeTargetUnavailable)
			h.refuse(Transfer{ConversationID: "c1", AgentID: "a", ToAgent: "nobody"}, ErrNotFound, CodeAgentNotFound)
			h.refuse(Transfer{ConversationID: "c1", AgentID: "x", ToGroup: "g"}, ErrNotFound, CodeAgentNotFound)
			h.refuse(Transfer{ConversationID: "c1", AgentID: "a"}, ErrInvalid, CodeInvalidTransfer)
			h.refuse(Transfer{ConversationID: "c1", AgentID: "a", ToAgent: "away", ToGroup: "g"}, ErrInvalid, CodeInvalidTransfer)
		}},
		{"a declined transfer joins the queue of the target's first group, keeping its place", func(h *harness) {
			h.onlineAgent("a", 1, 0)
			first := h.webChat("c1")
			h.accept("c1", "a")
			h.do(UpsertAgent{ID: "b", Name: "b", Capacity: capacity.Limits{1}, Groups: []string{"billing", "sales"}})
			h.do(SetAgentStatus{AgentID: "b", Status: StatusTransfersOnly})
			h.do(Transfer{ConversationID: "c1", AgentID: "a", ToAgent: "b"})
			h.do(Reject{ConversationID: "c1", AgentID: "b"})
			c := h.conv("c1")
			if c.State != StateQueued || c.Group != "billing" || c.QueuedAt != first.QueuedAt || !c.TransferPending {
				h.t.Fatalf("after the reject: %+v", c)
			}
			h.do(UpsertAgent{ID: "c", Name: "c", Capacity: capacity.Limits{1}, Groups: []string{"billing"}})
			h.do(SetAgentStatus{AgentID: "c", Status: StatusOnline})
			h.accept("c1", "c")
			if got := h.eventsOf(EventTransferred, "c1"); len(got) != 1 || got[0].AgentID != "c" {
				h.t.Fatalf("transferred %+v", got)
			}
		}},
		{"to a group: back in the queue for that group, keeping its eligibility time and transcript", func(h *harness) {
			h.onlineAgent("a", 0, 1)
			first := h.messaging("m1")
			h.accept("m1", "a")
			h.do(PostMessage{ConversationID: "m1", Author: AuthorAgent, AgentID: "a", Text: "Let me pass you on"})
			h.do(Transfer{ConversationID: "m1", AgentID: "a", ToGroup: "billing"})
			c := h.conv("m1")
			if c.State != StateQueued || c.Group != "billing" || c.QueuedAt != first.QueuedAt || len(c.Transcript) != 2 {
				h.t.Fatalf("after the transfer: %+v", c)
			}
			h.do(UpsertAgent{ID: "b", Name: "b", Capacity: capacity.Limits{0, 1}, Groups: []string{"billing"}})
			h.do(SetAgentStatus{AgentID: "b", Status: StatusOnline})
			h.accept("m1", "b")
			if len(h.eventsOf(EventTransferred, "m1")) != 1 {
				h.t.Fatal("no transferred event")
			}
		}},
		{"every channel transfers; an email to an agent is assigned at once", func(h *harness) {
			h.agentOn("a", capacity.Limits{capacity.Email: 1, capacity.Voice: 1}, StatusOnline)
			h.agentOn("b", capacity.Limits{capacity.Email: 1, capacity.Voice: 1}, StatusOnline)
			h.email("e1")
			holder := h.conv("e1").AgentID
			other := map[string]string{"a": "b", "b": "a"}[holder]
			h.do(Transfer{ConversationID: "e1", AgentID: holder, ToAgent: other})
			if c := h.conv("e1"); c.State != StateAssigned || c.AgentID != other {
				h.t.Fatalf("email after the transfer: %+v", c)
			}
			h.call("v1")
			v := h.conv("v1")
			h.accept("v1", v.AgentID)
			h.do(Transfer{ConversationID: "v1", AgentID: v.AgentID, ToGroup: "tier2"})
			h.wantState("v1", StateQueued, ActivityActive)
		}},
		{"a note beyond the transcript limit refuses the transfer", func(h *harness) {
			h.do(SetPolicy{Patch: MustPatch("limits.transcript_messages", 1)})
			h.onlineAgent("a", 1, 0)
			h.webChat("c1")
			h.accept("c1", "a")
			h.refuse(Transfer{ConversationID: "c1", AgentID: "a", ToGroup: "g", Note: "n"}, ErrTooLarge, CodeTranscriptFull)
		}},
	})
}

func TestOptionalSkillsRelax(t *testing.T) {
	runBehaviours(t, []behaviour{
		{"before skills_timeout only agents with every optional skill in the primary group; after, anyone of the groups", func(h *harness) {
			h.do(SetPolicy{Patch: MustPatch("routing.skills_timeout.chat", "30s")})
			h.do(UpsertAgent{ID: "plain", Name: "p", Capacity: capacity.Limits{1}, Groups: []string{"tier2"}})
			h.do(SetAgentStatus{AgentID: "plain", Status: StatusOnline})
			h.do(CreateConversation{ID: "c1", Channel: capacity.Chat, Message: "hi", Group: "tier1",
				OptionalSkills: []string{"vip"}, SecondaryGroups: []string{"tier2"}})
			h.advance(29 * time.Second)
			h.wantState("c1", StateQueued, ActivityActive)
			h.advance(time.Second)
			if c := h.conv("c1"); c.State != StateOffered || c.AgentID != "plain" || !c.Relaxed {
				h.t.Fatalf("after the timeout: %+v", c)
			}
		}},
		{"a VIP agent of the primary group takes it at once", func(h *harness) {
			h.do(UpsertAgent{ID: "vip", Name: "v", Capacity: capacity.Limits{1}, Skills: []string{"vip"}, Groups: []string{"tier1"}})
			h.do(SetAgentStatus{AgentID: "vip", Status: StatusOnline})
			h.do(CreateConversation{ID: "c1", Channel: capacity.Chat, Message: "hi", Group: "tier1", OptionalSkills: []string{"vip"}})
			if c := h.conv("c1"); c.AgentID != "vip" || c.Relaxed {
				h.t.Fatalf("%+v", c)
			}
		}},
		{"skills_timeout is per channel: email waits an hour by default", func(h *harness) {
			h.agentOn("plain", capacity.Limits{capacity.Email: 1}, StatusOnline)
			h.do(CreateConversation{ID: "e1", Channel: capacity.Email, Message: "hi", OptionalSkills: []string{"vip"}})
			h.advance(59 * time.Minute)
			h.wantState("e1", StateQueued, ActivityActive)
			h.advance(time.Minute)
			h.wantState("e1", StateAssigned, ActivityActive)
		}},
		{"secondary groups need a primary group", func(h *harness) {
			h.refuse(CreateConversation{ID: "c1", Channel: capacity.Chat, SecondaryGroups: []string{"x"}}, ErrInvalid, "invalid_secondary_groups")
		}},
	})
}

func TestUpdateConversation(t *testing.T) {
	runBehaviours(t, []behaviour{
		{"a raised priority jumps the queue, keeping its eligibility time", func(h *harness) {
			h.webChat("c1")
			h.advance(time.Minute)
			second := h.webChat("c2")
			h.do(UpdateConversation{ConversationID: "c2", Set: UpdatePriority, Priority: 10})
			q := h.m.Queue()
			if q[0].ID != "c2" || q[0].QueuedAt != second.QueuedAt {
				h.t.Fatalf("queue %+v", q)
			}
		}},
		{"offers it may now get are made in the same apply", func(h *harness) {
			h.do(UpsertAgent{ID: "a", Name: "a", Capacity: capacity.Limits{1}, Skills: []string{"fr"}})
			h.do(SetAgentStatus{AgentID: "a", Status: StatusOnline})
			h.do(CreateConversation{ID: "c1", Channel: capacity.Chat, Message: "hi", Skills: []string{"de"}})
			h.wantState("c1", StateQueued, ActivityActive)
			out := h.do(UpdateConversation{ConversationID: "c1", Set: UpdateSkills, Skills: []string{"fr"}})
			if out.Conversation.State != StateOffered {
				h.t.Fatalf("%+v", out.Conversation)
			}
		}},
		{"an ended conversation is not updated; bad values change nothing", func(h *harness) {
			h.webChat("c1")
			h.refuse(UpdateConversation{ConversationID: "c1", Set: UpdatePriority, Priority: 5000}, ErrInvalid, CodeInvalidPriority)
			h.refuse(UpdateConversation{ConversationID: "c1", Set: UpdateSecondaryGroups, SecondaryGroups: []string{"g"}}, ErrInvalid, "invalid_secondary_groups")
			h.do(End{ConversationID: "c1", By: EndedByVisitor})
			h.refuse(UpdateConversation{ConversationID: "c1", Set: UpdatePriority, Priority: 1}, ErrConflict, CodeConversationEnded)
		}},
		{"new optional skills relax after the timeout counted from the eligibility time", func(h *harness) {
			h.webChat("c1")
			h.advance(20 * time.Second)
			h.do(UpdateConversation{ConversationID: "c1", Set: UpdateOptionalSkills, OptionalSkills: []string{"vip"}})
			h.advance(10 * time.Second)
			if c := h.conv("c1"); !c.Relaxed || !slices.Equal(c.OptionalSkills, []string{"vip"}) {
				h.t.Fatalf("%+v", c)
			}
		}},
	})
}
