package routing

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/omnirouter/omnirouter/capacity"
	"github.com/omnirouter/omnirouter/internal/wire"
)

// Bounded state: what finished work the machine keeps, and for how long.

func TestRetentionOfEndedConversations(t *testing.T) {
	runBehaviours(t, []behaviour{
		{"an ended conversation stays readable for retention.ended, then is pruned", func(h *harness) {
			h.do(SetPolicy{Patch: MustPatch("retention.ended", time.Hour)})
			h.webChat("c1")
			h.do(End{ConversationID: "c1", By: EndedByVisitor})
			if at, ok := h.m.NextDeadline(); !ok || at != h.now+time.Hour.Milliseconds() {
				h.t.Fatalf("next deadline %d %v, want the pruning an hour on", at, ok)
			}
			h.advance(time.Hour - time.Millisecond)
			h.wantState("c1", StateEnded, ActivityEnded)
			h.advance(time.Millisecond)
			if _, ok := h.m.Conversation("c1"); ok {
				h.t.Fatal("c1 kept past its retention")
			}
			if n := h.m.Sizes().Ended; n != 0 {
				h.t.Fatalf("%d ended conversations indexed", n)
			}
		}},
		{"a pruned id is not found and may be created again", func(h *harness) {
			h.do(SetPolicy{Patch: MustPatch("retention.ended", time.Minute)})
			h.webChat("c1")
			h.do(End{ConversationID: "c1", By: EndedByVisitor})
			h.advance(time.Minute)
			h.refuse(PostMessage{ConversationID: "c1", Author: AuthorVisitor, Text: "hi"}, ErrNotFound, CodeConversationNotFound)
			c := h.webChat("c1")
			if c.State != StateQueued || len(c.Transcript) != 1 || c.EndedAt != 0 {
				h.t.Fatalf("the new c1: %+v", c)
			}
		}},
		{"pruning voids the conversation's idempotency records", func(h *harness) {
			h.do(SetPolicy{Patch: MustPatch("retention.ended", time.Minute)})
			h.apply("create-c1", CreateConversation{ID: "c1", Channel: capacity.Chat, Message: "hello"})
			h.apply("end-c1", End{ConversationID: "c1", By: EndedByVisitor})
			if out := h.apply("end-c1", End{ConversationID: "c1", By: EndedByVisitor}); !out.Replayed {
				h.t.Fatal("a retry before the pruning was not replayed")
			}
			h.advance(time.Minute)
			// The same key creates c1 again: its record was about the
			// pruned conversation.
			out := h.apply("create-c1", CreateConversation{ID: "c1", Channel: capacity.Chat, Message: "hello"})
			if out.Replayed || out.Err != nil || out.Conversation.State != StateQueued {
				h.t.Fatalf("create after the pruning: %+v", out)
			}
			if out := h.apply("create-c1", CreateConversation{ID: "c1", Channel: capacity.Chat, Message: "hello"}); !out.Replayed {
				h.t.Fatal("the new record does not replay")
			}
		}},
		{"retention 0s prunes in the same apply", func(h *harness) {
			h.do(SetPolicy{Patch: MustPatch("retention.ended", time.Duration(0))})
			h.webChat("c1")
			out := h.do(End{ConversationID: "c1", By: EndedByVisitor})
			if out.Conversation == nil || out.Conversation.State != StateEnded {
				h.t.Fatalf("the end answer: %+v", out.Conversation)
			}
			if len(h.eventsOf(EventEnded, "c1")) != 1 {
				h.t.Fatal("no conversation.ended event")
			}
			if _, ok := h.m.Conversation("c1"); ok {
				h.t.Fatal("c1 kept with retention 0s")
			}
		}},
		{"a shortened retention prunes at once what it no longer keeps", func(h *harness) {
			for _, id := range []string{"c1", "c2", "c3"} {
				h.webChat(id)
				h.do(End{ConversationID: id, By: EndedByVisitor})
				h.advance(5 * time.Minute)
			}
			// c1 ended 15 minutes ago, c2 10, c3 5.
			h.do(SetPolicy{Patch: MustPatch("retention.ended", 12*time.Minute)})
			_, kept1 := h.m.Conversation("c1")
			_, kept2 := h.m.Conversation("c2")
			_, kept3 := h.m.Conversation("c3")
			if kept1 || !kept2 || !kept3 {
				h.t.Fatalf("kept c1 %v c2 %v c3 %v, want c2 and c3", kept1, kept2, kept3)
			}
		}},
		{"ended conversations are pruned in the order they ended, the same after a restore", func(h *harness) {
			h.do(SetPolicy{Patch: MustPatch("retention.ended", time.Hour)})
			h.onlineAgent("a", 5, 5)
			for _, id := range []string{"c3", "c1", "c2"} {
				h.webChat(id)
				h.advance(time.Minute)
			}
			h.do(End{ConversationID: "c2", By: EndedByVisitor})
			h.advance(time.Minute)
			h.do(End{ConversationID: "c3", By: EndedByVisitor})
			h.messaging("m1")
			h.do(Accept{ConversationID: "m1", AgentID: "a"})
			h.do(Release{AgentID: "a", ConversationID: "m1"})
			restored, err := DecodeSnapshot(h.snapshot())
			if err != nil {
				h.t.Fatal(err)
			}
			h.advance(time.Hour - time.Minute)
			if _, ok := h.m.Conversation("c2"); ok {
				h.t.Fatal("c2 (ended first) kept")
			}
			if _, ok := h.m.Conversation("c3"); !ok {
				h.t.Fatal("c3 pruned a minute early")
			}
			restored.Apply(h.now, "", Tick{})
			if string(snapshotBytes(h.t, restored)) != string(h.snapshot()) {
				h.t.Fatal("the restored machine pruned differently")
			}
		}},
	})
}

func TestSolvedTicketsClose(t *testing.T) {
	runBehaviours(t, []behaviour{
		{"a ticket solved for close_solved_after closes and ends its session", func(h *harness) {
			h.onlineAgent("a", 1, 1)
			h.messaging("m1")
			h.accept("m1", "a")
			h.do(SetTicketStatus{ConversationID: "m1", Status: TicketSolved})
			h.advance(96*time.Hour - time.Millisecond)
			if c := h.conv("m1"); c.Ticket.Status != TicketSolved || c.State != StateAssigned {
				h.t.Fatalf("closed early: %+v", c)
			}
			h.advance(time.Millisecond)
			c := h.conv("m1")
			if c.Ticket.Status != TicketClosed || c.State != StateEnded || c.EndedReason != ReasonTicketClosed {
				h.t.Fatalf("after close_solved_after: ticket %s state %s reason %q", c.Ticket.Status, c.State, c.EndedReason)
			}
			if got := h.eventsOf(EventEnded, "m1"); len(got) != 1 || got[0].Data.Reason != ReasonTicketClosed {
				h.t.Fatalf("ended events %+v", got)
			}
			h.wantLoad("a", capacity.Messaging, 0)
			h.refuse(PostMessage{ConversationID: "m1", Author: AuthorVisitor, Text: "hello?"}, ErrConflict, CodeConversationEnded)
		}},
		{"a ticket reopened before then does not close", func(h *harness) {
			h.onlineAgent("a", 1, 1)
			h.messaging("m1")
			h.accept("m1", "a")
			h.do(SetTicketStatus{ConversationID: "m1", Status: TicketSolved})
			h.advance(time.Hour)
			h.do(PostMessage{ConversationID: "m1", Author: AuthorVisitor, Text: "not solved"})
			h.advance(200 * time.Hour)
			if c := h.conv("m1"); c.Ticket.Status != TicketOpen {
				h.t.Fatalf("ticket %s, want open", c.Ticket.Status)
			}
		}},
		{"closed cannot be set, and a closed ticket never changes", func(h *harness) {
			h.messaging("m1")
			h.refuse(SetTicketStatus{ConversationID: "m1", Status: TicketClosed}, ErrInvalid, CodeInvalidTicketStatus)
			h.do(SetTicketStatus{ConversationID: "m1", Status: TicketSolved})
			h.advance(96 * time.Hour)
			h.refuse(SetTicketStatus{ConversationID: "m1", Status: TicketOpen}, ErrConflict, CodeTicketClosed)
		}},
		{"a released conversation's solved ticket still closes", func(h *harness) {
			h.do(SetPolicy{Patch: MustPatch("retention.ended", 200*time.Hour, "ticket.close_solved_after", 48*time.Hour)})
			h.onlineAgent("a", 1, 1)
			h.messaging("m1")
			h.accept("m1", "a")
			h.do(Release{AgentID: "a", ConversationID: "m1", TicketStatus: TicketPending, SetTicket: true})
			h.do(SetTicketStatus{ConversationID: "m1", Status: TicketSolved})
			h.advance(48 * time.Hour)
			if c := h.conv("m1"); c.Ticket.Status != TicketClosed || c.EndedReason != ReasonReleased {
				h.t.Fatalf("ticket %s, reason %q", c.Ticket.Status, c.EndedReason)
			}
		}},
	})
}

func TestTranscriptLimits(t *testing.T) {
	runBehaviours(t, []behaviour{
		{"a message beyond transcript_messages is refused 413 and changes nothing", func(h *harness) {
			h.do(SetPolicy{Patch: MustPatch("limits.transcript_messages", 3)})
			h.webChat("c1") // the first message counts
			h.do(PostMessage{ConversationID: "c1", Author: AuthorVisitor, Text: "two"})
			h.do(PostMessage{ConversationID: "c1", Author: AuthorVisitor, Text: "three"})
			h.refuse(PostMessage{ConversationID: "c1", Author: AuthorVisitor, Text: "four"}, ErrTooLarge, CodeTranscriptFull)
		}},
		{"a message beyond transcript_bytes is refused 413 and changes nothing", func(h *harness) {
			h.do(SetPolicy{Patch: MustPatch("limits.transcript_bytes", 1024)})
			h.webChat("c1") // "hello": 5 bytes
			h.do(PostMessage{ConversationID: "c1", Author: AuthorVisitor, Text: strings.Repeat("x", 1019)})
			h.refuse(PostMessage{ConversationID: "c1", Author: AuthorVisitor, Text: "y"}, ErrTooLarge, CodeTranscriptFull)
			if c := h.conv("c1"); c.TranscriptBytes != 1024 || len(c.Transcript) != 2 {
				h.t.Fatalf("%d bytes in %d messages", c.TranscriptBytes, len(c.Transcript))
			}
		}},
		{"a first message beyond transcript_bytes refuses the create", func(h *harness) {
			h.do(SetPolicy{Patch: MustPatch("limits.transcript_bytes", 1024)})
			h.refuse(CreateConversation{ID: "c1", Channel: capacity.Chat, Message: strings.Repeat("x", 1025)}, ErrTooLarge, CodeTranscriptFull)
		}},
		{"a system notice never takes a transcript beyond its limit", func(h *harness) {
			h.do(SetPolicy{Patch: MustPatch("limits.transcript_messages", 2)})
			h.onlineAgent("a", 1, 0)
			h.webChat("c1")
			h.accept("c1", "a")
			h.do(PostMessage{ConversationID: "c1", Author: AuthorAgent, AgentID: "a", Text: "bye"})
			h.do(End{ConversationID: "c1", By: EndedByAgent, AgentID: "a"}) // would add "The agent has left"
			if c := h.conv("c1"); len(c.Transcript) != 2 || c.State != StateEnded {
				h.t.Fatalf("%d messages, state %s", len(c.Transcript), c.State)
			}
		}},
	})
}

func TestEventLimits(t *testing.T) {
	runBehaviours(t, []behaviour{
		{"events are kept by count, the newest", func(h *harness) {
			h.do(SetEventLimits{Limits: EventLimits{Count: 5, Bytes: MaxEventBytes}})
			for i := range 10 {
				h.do(UpsertAgent{ID: "a", Name: strings.Repeat("n", i+1)})
				h.do(SetAgentStatus{AgentID: "a", Status: AgentStatus(1 + i%2)})
			}
			if n := h.m.Sizes().Events; n != 5 {
				h.t.Fatalf("%d events kept, want 5", n)
			}
			if first := h.m.FirstRetainedEventID(); first != h.m.LastEventID()-4 {
				h.t.Fatalf("first retained %d, last %d", first, h.m.LastEventID())
			}
		}},
		{"events are kept by bytes, and the newest even alone beyond them", func(h *harness) {
			h.do(SetEventLimits{Limits: EventLimits{Count: MaxEventCount, Bytes: MinEventBytes}})
			h.do(SetPolicy{Patch: MustPatch("limits.transcript_bytes", 1<<20)})
			h.webChat("c1")
			h.do(PostMessage{ConversationID: "c1", Author: AuthorVisitor, Text: strings.Repeat("x", 100_000)})
			h.do(End{ConversationID: "c1", By: EndedByVisitor}) // carries the 100 kB transcript
			ended := h.m.LastEventID()
			if n := h.m.Sizes().Events; n != 1 {
				h.t.Fatalf("%d events kept, want only the newest", n)
			}
			h.do(UpsertAgent{ID: "a", Name: "a"})
			if sz := h.m.Sizes(); sz.EventBytes > MinEventBytes || h.m.FirstRetainedEventID() <= ended {
				h.t.Fatalf("%d events of %d bytes, first %d", sz.Events, sz.EventBytes, h.m.FirstRetainedEventID())
			}
		}},
		{"lowered limits trim at once; bad ones are refused", func(h *harness) {
			for range 20 {
				h.do(UpsertAgent{ID: "a", Name: "a", Capacity: capacity.Limits{h.m.Sizes().Events % 3, 0}})
			}
			h.do(SetEventLimits{Limits: EventLimits{Count: 3, Bytes: MaxEventBytes}})
			if n := h.m.Sizes().Events; n != 3 {
				h.t.Fatalf("%d events after lowering the count to 3", n)
			}
			h.refuse(SetEventLimits{Limits: EventLimits{Count: 0, Bytes: MaxEventBytes}}, ErrInvalid, "invalid_event_limits")
			h.refuse(SetEventLimits{Limits: EventLimits{Count: 10, Bytes: 100}}, ErrInvalid, "invalid_event_limits")
			assertRestoresIdentically(h)
		}},
	})
}

// TestIdempotencyRecordsAreSmall: a record keeps the ids a retry needs,
// not the conversation: its transcript is not held by the record.
func TestIdempotencyRecordsAreSmall(t *testing.T) {
	h := newHarness(t)
	big := strings.Repeat("x", 60_000)
	h.apply("k1", CreateConversation{ID: "c1", Channel: capacity.Chat, Message: big})
	rec := h.m.getKey("k1")
	if rec == nil || rec.ConvID != "c1" || rec.ConvSeq != h.conv("c1").Seq {
		t.Fatalf("record %+v", rec)
	}
	var e wire.Encoder
	encodeKeyRecord(&e, rec)
	if len(e.Buf) > 200 {
		t.Fatalf("a record of a create with a 60 kB message takes %d bytes in a snapshot", len(e.Buf))
	}
}

// TestQueueGroups: the queue summed by channel and group, with the longest
// wait even when a newer conversation of higher priority comes first.
func TestQueueGroups(t *testing.T) {
	h := newHarness(t)
	h.do(CreateConversation{ID: "old", Channel: capacity.Chat, Group: "sales"})
	h.advance(time.Minute)
	h.do(CreateConversation{ID: "vip", Channel: capacity.Chat, Group: "sales", Priority: 5, Skills: []string{"vip"}})
	h.do(CreateConversation{ID: "m1", Channel: capacity.Messaging})
	h.do(CreateConversation{ID: "c3", Channel: capacity.Chat})
	got := h.m.QueueGroups()
	want := []QueueGroup{
		{Channel: capacity.Chat, Group: "", Waiting: 1, OldestQueuedAt: h.now},
		{Channel: capacity.Chat, Group: "sales", Waiting: 2, OldestQueuedAt: t0},
		{Channel: capacity.Messaging, Group: "", Waiting: 1, OldestQueuedAt: h.now},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("queue groups\n got %+v\nwant %+v", got, want)
	}
}
