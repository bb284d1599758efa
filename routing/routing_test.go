package routing

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/omnirouter/omnirouter/capacity"
)

func (h *harness) holders() map[string]string {
	out := map[string]string{}
	for _, a := range h.m.Agents() {
		for _, c := range a.Conversations {
			out[c] = a.ID
		}
	}
	return out
}

func (h *harness) wantOfferedTo(conv, agent string) {
	h.t.Helper()
	c := h.conv(conv)
	if c.State != StateOffered || c.AgentID != agent {
		h.t.Fatalf("conversation %s: %s to %q, want offered to %q", conv, c.State, c.AgentID, agent)
	}
}

// DESIGN §4: capacity and routing.
func TestCapacityAndRouting(t *testing.T) {
	runBehaviours(t, []behaviour{
		{"capacity is 0..500 per channel", func(h *harness) {
			h.do(UpsertAgent{ID: "a1", Capacity: capacity.Limits{500, 0}})
			h.refuse(UpsertAgent{ID: "a1", Capacity: capacity.Limits{501, 0}}, ErrInvalid, CodeInvalidCapacity)
			h.refuse(UpsertAgent{ID: "a1", Capacity: capacity.Limits{0, -1}}, ErrInvalid, CodeInvalidCapacity)
		}},
		{"zero capacity routes nothing on that channel", func(h *harness) {
			h.onlineAgent("a1", 0, 3)
			h.webChat("c1")
			h.wantState("c1", StateQueued, ActivityActive)
			h.messaging("m1")
			h.wantOfferedTo("m1", "a1")
		}},
		{"chat and messaging count separately", func(h *harness) {
			h.onlineAgent("a1", 1, 1)
			h.webChat("c1")
			h.messaging("m1")
			h.wantOfferedTo("c1", "a1")
			h.wantOfferedTo("m1", "a1")
		}},
		{"routing never exceeds capacity and offers count", func(h *harness) {
			h.onlineAgent("a1", 2, 0)
			for i := range 5 {
				h.webChat(fmt.Sprintf("c%d", i))
			}
			h.wantLoad("a1", capacity.Chat, 2) // two offers, not yet accepted
			if h.m.QueueLen() != 3 {
				h.t.Fatalf("queue %d, want 3", h.m.QueueLen())
			}
		}},
		{"eligibility needs online status, every skill and the group", func(h *harness) {
			h.do(UpsertAgent{ID: "away", Capacity: capacity.Limits{5, 5}, Skills: []string{"fr", "vip"}, Groups: []string{"support"}})
			h.do(SetAgentStatus{AgentID: "away", Status: StatusAway})
			h.do(UpsertAgent{ID: "fr-only", Capacity: capacity.Limits{5, 5}, Skills: []string{"fr"}, Groups: []string{"support"}})
			h.do(SetAgentStatus{AgentID: "fr-only", Status: StatusOnline})
			h.do(UpsertAgent{ID: "sales", Capacity: capacity.Limits{5, 5}, Skills: []string{"fr", "vip"}, Groups: []string{"sales"}})
			h.do(SetAgentStatus{AgentID: "sales", Status: StatusOnline})
			h.do(UpsertAgent{ID: "transfers", Capacity: capacity.Limits{5, 5}, Skills: []string{"fr", "vip"}, Groups: []string{"support"}})
			h.do(SetAgentStatus{AgentID: "transfers", Status: StatusTransfersOnly})
			h.do(CreateConversation{ID: "c1", Channel: capacity.Chat, Skills: []string{"vip", "fr"}, Group: "support"})
			h.wantState("c1", StateQueued, ActivityActive)
			h.do(UpsertAgent{ID: "right", Capacity: capacity.Limits{1, 0}, Skills: []string{"fr", "vip", "de"}, Groups: []string{"support"}})
			h.do(SetAgentStatus{AgentID: "right", Status: StatusOnline})
			h.wantOfferedTo("c1", "right")
		}},
		{"an agent gaining a skill gets the queued work it now matches at once", func(h *harness) {
			h.onlineAgent("a", 2, 0)
			h.do(CreateConversation{ID: "c1", Channel: capacity.Chat, Skills: []string{"de"}})
			h.wantState("c1", StateQueued, ActivityActive)
			h.do(UpsertAgent{ID: "a", Capacity: capacity.Limits{2, 0}, Skills: []string{"de"}})
			h.wantOfferedTo("c1", "a")
		}},
		{"queue order is priority, then eligibility time, then arrival", func(h *harness) {
			h.do(CreateConversation{ID: "old", Channel: capacity.Chat})
			h.now += 1000
			h.do(CreateConversation{ID: "b", Channel: capacity.Chat})
			h.do(CreateConversation{ID: "a", Channel: capacity.Chat})
			h.do(CreateConversation{ID: "urgent", Channel: capacity.Chat, Priority: 5})
			var got []string
			for _, q := range h.m.Queue() {
				got = append(got, q.ID)
				if q.Position != len(got) {
					h.t.Fatalf("position %d for %s", q.Position, q.ID)
				}
			}
			if want := []string{"urgent", "old", "b", "a"}; !slices.Equal(got, want) {
				h.t.Fatalf("queue %v, want %v", got, want)
			}
			h.onlineAgent("x", 1, 0)
			h.wantOfferedTo("urgent", "x")
		}},
		{"spare_capacity picks the most free slots, then the oldest last assignment, then id", func(h *harness) {
			h.onlineAgent("b", 3, 0)
			h.onlineAgent("a", 3, 0)
			h.onlineAgent("c", 2, 0)
			h.webChat("c1")
			h.wantOfferedTo("c1", "a") // a and b tie on 3 free, never assigned: id
			h.now++
			h.webChat("c2")
			h.wantOfferedTo("c2", "b") // b has 3 free, a 2
			h.now++
			h.webChat("c3")
			h.wantOfferedTo("c3", "c") // all have 2 free: c's last assignment is oldest (never)
			h.now++
			h.webChat("c4")
			h.wantOfferedTo("c4", "a") // a and b have 2 free, c 1: a was assigned before b
		}},
		{"spare_percentage picks the largest free share", func(h *harness) {
			h.do(SetPolicy{Patch: MustPatch("routing.strategy", StrategySparePercentage)})
			h.onlineAgent("big", 10, 0)
			h.onlineAgent("small", 2, 0)
			for i := range 4 {
				h.webChat(fmt.Sprintf("c%d", i))
				h.now++
			}
			// big 10→ takes c0 (100% vs 100%: id), small takes c1 (100% vs 90%),
			// then big 90% vs 50%: c2 and c3 to big.
			want := map[string]string{"c0": "big", "c1": "small", "c2": "big", "c3": "big"}
			for c, a := range want {
				h.wantOfferedTo(c, a)
			}
		}},
		{"round_robin picks the agent whose last assignment is oldest", func(h *harness) {
			h.do(SetPolicy{Patch: MustPatch("routing.strategy", StrategyRoundRobin)})
			h.onlineAgent("a", 10, 0)
			h.onlineAgent("b", 1, 0)
			h.onlineAgent("c", 10, 0)
			var got []string
			for i := range 5 {
				h.now++
				got = append(got, h.do(CreateConversation{ID: fmt.Sprintf("c%d", i), Channel: capacity.Chat}).Conversation.AgentID)
			}
			if want := []string{"a", "b", "c", "a", "c"}; !slices.Equal(got, want) {
				h.t.Fatalf("round robin %v, want %v", got, want)
			}
		}},
		{"a release assigns the next waiting conversation at once", func(h *harness) {
			h.onlineAgent("a1", 0, 1)
			h.messaging("m1")
			h.accept("m1", "a1")
			h.messaging("m2")
			h.wantState("m2", StateQueued, ActivityActive)
			out := h.do(Release{AgentID: "a1", ConversationID: "m1"})
			h.wantOfferedTo("m2", "a1")
			var offered bool
			for _, e := range out.Events {
				offered = offered || (e.Type == EventOffered && e.ConversationID == "m2")
			}
			if !offered {
				h.t.Fatal("the release's own events do not include the next offer")
			}
		}},
		{"a rejected offer goes to the next eligible agent and keeps its place", func(h *harness) {
			h.onlineAgent("a", 1, 0)
			h.onlineAgent("b", 1, 0)
			h.webChat("c1")
			queuedAt := h.conv("c1").QueuedAt
			h.wantOfferedTo("c1", "a")
			h.now += 5000
			h.do(Reject{ConversationID: "c1", AgentID: "a"})
			h.wantOfferedTo("c1", "b")
			if h.conv("c1").QueuedAt != queuedAt {
				h.t.Fatal("rejected conversation lost its place")
			}
		}},
		{"an offer not accepted in offer_timeout goes to the next agent, back to a misser only when no one else is eligible", func(h *harness) {
			h.onlineAgent("a", 1, 0)
			h.onlineAgent("b", 1, 0)
			h.webChat("c1")
			h.wantOfferedTo("c1", "a")
			h.advance(30 * time.Second)
			h.wantOfferedTo("c1", "b")
			if len(h.eventsOf(EventOfferTimedOut, "c1")) != 1 {
				h.t.Fatal("no offer_timed_out event")
			}
			h.advance(30 * time.Second)
			h.wantOfferedTo("c1", "a") // both missed it: back to the best one
		}},
		{"auto_accept assigns at once", func(h *harness) {
			h.do(SetPolicy{Patch: MustPatch("routing.auto_accept", true)})
			h.onlineAgent("a", 1, 0)
			h.webChat("c1")
			h.wantState("c1", StateAssigned, ActivityActive)
			if !h.conv("c1").Joined {
				h.t.Fatal("auto-accepted chat not joined")
			}
		}},
		{"accepting an offer made to someone else is a conflict", func(h *harness) {
			h.onlineAgent("a", 1, 0)
			h.do(UpsertAgent{ID: "b", Capacity: capacity.Limits{1, 0}})
			h.webChat("c1")
			h.refuse(Accept{ConversationID: "c1", AgentID: "b"}, ErrConflict, CodeNotOffered)
			h.refuse(Accept{ConversationID: "c1", AgentID: "nobody"}, ErrNotFound, CodeAgentNotFound)
			h.refuse(Accept{ConversationID: "nope", AgentID: "a"}, ErrNotFound, CodeConversationNotFound)
		}},
		{"agent going offline returns offers at once and assigned work after reassign_delay", func(h *harness) {
			h.onlineAgent("a", 2, 0)
			h.webChat("c1")
			h.accept("c1", "a")
			h.webChat("c2") // offered, not accepted
			h.do(SetAgentStatus{AgentID: "a", Status: StatusOffline})
			h.wantState("c2", StateQueued, ActivityActive)
			h.wantState("c1", StateAssigned, ActivityActive)
			h.advance(time.Minute - time.Millisecond)
			h.wantState("c1", StateAssigned, ActivityActive)
			h.advance(time.Millisecond)
			h.wantState("c1", StateQueued, ActivityActive)
			if h.conv("c1").QueuedAt != t0 {
				h.t.Fatal("requeued conversation lost its eligibility time")
			}
			h.wantLoad("a", capacity.Chat, 0)
		}},
		{"agent back online before reassign_delay keeps its work", func(h *harness) {
			h.onlineAgent("a", 2, 0)
			h.webChat("c1")
			h.accept("c1", "a")
			h.do(SetAgentStatus{AgentID: "a", Status: StatusOffline})
			h.advance(30 * time.Second)
			h.do(SetAgentStatus{AgentID: "a", Status: StatusOnline})
			h.advance(time.Minute)
			h.wantState("c1", StateAssigned, ActivityActive)
		}},
		{"an agent that holds work is busy; removed with force, what it held is requeued", func(h *harness) {
			h.onlineAgent("a", 2, 0)
			h.webChat("c1")
			h.accept("c1", "a")
			h.refuse(RemoveAgent{ID: "a"}, ErrConflict, CodeAgentBusy)
			h.do(RemoveAgent{ID: "a", Force: true})
			h.wantState("c1", StateQueued, ActivityActive)
			if _, ok := h.m.Agent("a"); ok {
				h.t.Fatal("agent still there")
			}
		}},
		{"lowering a limit below the load is allowed and routes nothing until below", func(h *harness) {
			h.onlineAgent("a", 3, 0)
			for i := range 3 {
				h.webChat(fmt.Sprintf("c%d", i))
				h.accept(fmt.Sprintf("c%d", i), "a")
			}
			h.do(UpsertAgent{ID: "a", Capacity: capacity.Limits{1, 0}})
			h.webChat("c9")
			h.do(Leave{ConversationID: "c0", AgentID: "a"})
			h.wantState("c9", StateQueued, ActivityActive)
			h.do(Leave{ConversationID: "c1", AgentID: "a"})
			h.do(Leave{ConversationID: "c2", AgentID: "a"})
			h.wantOfferedTo("c9", "a")
		}},
	})
}

// DESIGN §4 routing mode external: the state machine only validates.
func TestExternalAssignments(t *testing.T) {
	ext := MustPatch("routing.mode", ModeExternal)
	rows := []behaviour{
		{"conversations wait for the routing engine", func(h *harness) {
			h.onlineAgent("a", 1, 0)
			h.webChat("c1")
			h.wantState("c1", StateQueued, ActivityActive)
		}},
		{"by conversation picks the best agent", func(h *harness) {
			h.onlineAgent("a", 1, 0)
			h.onlineAgent("b", 2, 0)
			h.webChat("c1")
			out := h.do(RequestAssignment{ConversationID: "c1"})
			if *out.Assignment != (Assignment{ConversationID: "c1", AgentID: "b", State: StateOffered}) {
				h.t.Fatalf("assignment %+v", out.Assignment)
			}
		}},
		{"by agent picks the first conversation it is eligible for", func(h *harness) {
			h.onlineAgent("a", 1, 0, "de")
			h.do(CreateConversation{ID: "fr", Channel: capacity.Chat, Skills: []string{"fr"}})
			h.do(CreateConversation{ID: "de", Channel: capacity.Chat, Skills: []string{"de"}})
			out := h.do(RequestAssignment{AgentID: "a"})
			if out.Assignment.ConversationID != "de" {
				h.t.Fatalf("assignment %+v", out.Assignment)
			}
		}},
		{"both named is validated", func(h *harness) {
			h.onlineAgent("a", 1, 0)
			h.do(UpsertAgent{ID: "off", Capacity: capacity.Limits{1, 0}})
			h.webChat("c1")
			h.refuse(RequestAssignment{ConversationID: "c1", AgentID: "off"}, ErrConflict, CodeAgentNotEligible)
			h.do(RequestAssignment{ConversationID: "c1", AgentID: "a"})
			h.wantOfferedTo("c1", "a")
			h.refuse(RequestAssignment{ConversationID: "c1", AgentID: "a"}, ErrConflict, CodeNotQueued)
		}},
		{"nothing to assign is a clear not-found", func(h *harness) {
			h.refuse(RequestAssignment{}, ErrNotFound, CodeNoEligibleConversation)
			h.webChat("c1")
			h.refuse(RequestAssignment{ConversationID: "c1"}, ErrNotFound, CodeNoEligibleAgent)
			h.onlineAgent("a", 0, 1)
			h.refuse(RequestAssignment{AgentID: "a"}, ErrNotFound, CodeNoEligibleConversation)
		}},
		{"a forced assignment may exceed capacity and is visible in the load", func(h *harness) {
			h.onlineAgent("a", 1, 0)
			h.webChat("c1")
			h.webChat("c2")
			h.do(RequestAssignment{ConversationID: "c1", AgentID: "a"})
			h.do(RequestAssignment{ConversationID: "c2", AgentID: "a", Force: true})
			h.wantState("c2", StateAssigned, ActivityActive)
			h.wantLoad("a", capacity.Chat, 2)
		}},
		{"switching to auto dispatches what waits", func(h *harness) {
			h.onlineAgent("a", 1, 0)
			h.webChat("c1")
			h.do(SetPolicy{Patch: MustPatch("routing.mode", ModeAuto)})
			h.wantOfferedTo("c1", "a")
		}},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) { row.run(newHarness(t, ext)) })
	}
}

func TestIdempotencyKeys(t *testing.T) {
	runBehaviours(t, []behaviour{
		{"a repeated key returns the first result and changes nothing", func(h *harness) {
			h.onlineAgent("a", 1, 0)
			first := h.apply("k1", CreateConversation{ID: "c1", Channel: capacity.Chat, Message: "hi"})
			h.accept("c1", "a")
			before := h.snapshot()
			again := h.apply("k1", CreateConversation{ID: "c1", Channel: capacity.Chat, Message: "hi"})
			if !again.Replayed || again.Err != nil || again.ConversationID != first.Conversation.ID || again.Conversation != nil || len(again.Events) != 0 {
				h.t.Fatalf("replay %+v, first %+v", again, first)
			}
			if string(before) != string(h.snapshot()) {
				h.t.Fatal("replay changed the state")
			}
		}},
		{"a refusal is replayed too", func(h *harness) {
			out := h.apply("k1", Accept{ConversationID: "nope", AgentID: "a"})
			again := h.apply("k1", Accept{ConversationID: "nope", AgentID: "a"})
			if out.Err == nil || again.Err == nil || again.Err.Error() != out.Err.Error() || !again.Replayed {
				h.t.Fatalf("first %v, replay %v", out.Err, again.Err)
			}
		}},
		{"a key reused for another request is refused", func(h *harness) {
			h.apply("k1", CreateConversation{ID: "c1", Channel: capacity.Chat})
			h.apply("k1", CreateConversation{ID: "c2", Channel: capacity.Chat})
			if _, ok := h.m.Conversation("c2"); ok {
				h.t.Fatal("reused key applied a different command")
			}
		}},
		{"keys expire after the retention period in state-machine time", func(h *harness) {
			h.do(SetPolicy{Patch: MustPatch("idempotency_retention", time.Minute)})
			h.apply("k1", CreateConversation{ID: "c1", Channel: capacity.Chat})
			h.advance(time.Minute)
			if out := h.apply("k1", CreateConversation{ID: "c1", Channel: capacity.Chat}); out.Replayed {
				h.t.Fatal("expired key replayed")
			}
		}},
		{"an expired key may be used for another request, which it then replays", func(h *harness) {
			h.do(SetPolicy{Patch: MustPatch("idempotency_retention", time.Minute)})
			h.apply("k1", CreateConversation{ID: "c1", Channel: capacity.Chat})
			h.advance(2 * time.Minute)
			if out := h.apply("k1", CreateConversation{ID: "c2", Channel: capacity.Chat}); out.Err != nil || out.Replayed {
				h.t.Fatalf("expired key for another request: %+v", out)
			}
			if again := h.apply("k1", CreateConversation{ID: "c2", Channel: capacity.Chat}); !again.Replayed || again.ConversationID != "c2" {
				h.t.Fatalf("replay of the new request: %+v", again)
			}
			assertRestoresIdentically(h)
		}},
		{"a shortened retention applies to keys stored after it", func(h *harness) {
			h.apply("old", CreateConversation{ID: "c1", Channel: capacity.Chat}) // kept an hour
			h.do(SetPolicy{Patch: MustPatch("idempotency_retention", time.Minute)})
			h.apply("new", CreateConversation{ID: "c2", Channel: capacity.Chat}) // kept a minute
			h.advance(2 * time.Minute)
			h.do(SetPolicy{Patch: MustPatch("idempotency_retention", time.Hour)})
			if out := h.apply("new", CreateConversation{ID: "c2", Channel: capacity.Chat}); out.Replayed {
				h.t.Fatal("a key replayed after its (shortened) retention")
			}
			if out := h.apply("old", CreateConversation{ID: "c1", Channel: capacity.Chat}); !out.Replayed {
				h.t.Fatal("a key stored before the retention was shortened expired early")
			}
			assertRestoresIdentically(h) // 30 minutes later
			h.advance(29 * time.Minute)  // "old" and the first "new" expired, the second "new" not
			if out := h.apply("new", CreateConversation{ID: "c2", Channel: capacity.Chat}); !out.Replayed {
				h.t.Fatal("a key stored again lost its record when its first record expired")
			}
			h.advance(time.Hour)
			if n := h.m.keys.Len(); n != 0 {
				h.t.Fatalf("%d idempotency records kept after every one expired", n)
			}
		}},
	})
}

// assertRestoresIdentically: the machine's snapshot restores to a machine
// that writes the same bytes and then follows the original byte for byte.
func assertRestoresIdentically(h *harness) {
	h.t.Helper()
	snap := h.snapshot()
	back, err := DecodeSnapshot(snap)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := back.CheckInvariants(); err != nil {
		h.t.Fatal(err)
	}
	if !bytes.Equal(snapshotBytes(h.t, back), snap) {
		h.t.Fatal("snapshot → restore → snapshot differs")
	}
	h.advance(30 * time.Minute)
	back.Apply(h.now, "", Tick{})
	if !bytes.Equal(snapshotBytes(h.t, back), h.snapshot()) {
		h.t.Fatal("the restored machine diverged after time passed")
	}
}

func TestEventIDsIncreaseByOne(t *testing.T) {
	h := newHarness(t)
	h.onlineAgent("a", 1, 1)
	h.webChat("c1")
	h.accept("c1", "a")
	h.messaging("m1")
	h.advance(time.Hour)
	evs, err := h.m.Events(0, 1000)
	if err != nil || len(evs) < 10 {
		t.Fatalf("events %d err %v", len(evs), err)
	}
	for i, e := range evs {
		if e.ID != uint64(i+1) {
			t.Fatalf("event %d has id %d", i, e.ID)
		}
	}
	types := map[string]bool{}
	for _, e := range evs {
		types[e.Type] = true
	}
	for _, want := range []string{EventQueued, EventOffered, EventAssigned, EventInactive, EventEnded, EventTicketCreated, EventAgentStatus, EventAgentCapacity} {
		if !types[want] {
			t.Errorf("no %s event", want)
		}
	}
	if rest, _ := h.m.Events(uint64(len(evs)-2), 10); len(rest) != 2 {
		t.Fatalf("resume: %d events", len(rest))
	}
	var seen []uint64
	if err := h.m.EachEvent(3, func(e *Event) bool { seen = append(seen, e.ID); return len(seen) < 4 }); err != nil ||
		!slices.Equal(seen, []uint64{4, 5, 6, 7}) {
		t.Fatalf("EachEvent after 3, stopping at 4: %v %v", seen, err)
	}
}

func TestRefusedInputChangesNothing(t *testing.T) {
	h := newHarness(t)
	h.onlineAgent("a", 1, 1)
	h.webChat("c1")
	h.refuse(UpsertAgent{ID: ""}, ErrInvalid, CodeInvalidID)
	h.refuse(UpsertAgent{ID: "bad id/../"}, ErrInvalid, CodeInvalidID)
	h.refuse(CreateConversation{ID: "c1", Channel: capacity.Chat}, ErrConflict, CodeConversationExists)
	h.refuse(CreateConversation{ID: "c2", Channel: 9}, ErrInvalid, "invalid_channel")
	h.refuse(CreateConversation{ID: "c2", Channel: capacity.Messaging, Client: ClientWeb}, ErrInvalid, "invalid_client")
	h.refuse(PostMessage{ConversationID: "c1", Author: AuthorVisitor}, ErrInvalid, CodeInvalidText)
	h.refuse(PostMessage{ConversationID: "c1", Author: AuthorAgent, AgentID: "a", Text: "x"}, ErrConflict, CodeNotAssigned)
	h.refuse(SetAgentStatus{AgentID: "a", Status: 42}, ErrInvalid, "invalid_status")
	h.refuse(SetPolicy{Patch: MustPatch("routing.offer_timeout", time.Duration(0))}, ErrInvalid, CodeInvalidPolicy)
	h.refuse(SetPolicy{Patch: rawPatch("routing.strategy", 9)}, ErrInvalid, CodeInvalidPolicy)
	h.refuse(Leave{ConversationID: "c1", AgentID: "a"}, ErrConflict, CodeNotAssigned)
	h.refuse(Presence{ConversationID: "c1", Event: 77}, ErrInvalid, "invalid_presence_event")
}

// TestOutcomesAreNotChangedLater: the conversation and agent an outcome
// carries are handed to the caller and kept in idempotency records without
// a copy; every later command, and a clone, must leave them as they were.
func TestOutcomesAreNotChangedLater(t *testing.T) {
	h := newHarness(t)
	type kept struct {
		what string
		now  func() string
		was  string
	}
	var outs []kept
	keep := func(what string, out Outcome) {
		t.Helper()
		if out.Err != nil {
			t.Fatalf("%s refused: %v", what, out.Err)
		}
		if c := out.Conversation; c != nil {
			outs = append(outs, kept{what + " conversation", func() string { return fmt.Sprintf("%+v", *c) }, fmt.Sprintf("%+v", *c)})
		}
		if a := out.Agent; a != nil {
			outs = append(outs, kept{what + " agent", func() string { return fmt.Sprintf("%+v", *a) }, fmt.Sprintf("%+v", *a)})
		}
	}
	keep("upsert", h.apply("k1", UpsertAgent{ID: "a", Name: "a", Capacity: capacity.Limits{2, 1}, Skills: []string{"en"}}))
	keep("online", h.apply("k2", SetAgentStatus{AgentID: "a", Status: StatusOnline}))
	created := h.apply("k3", CreateConversation{ID: "c1", Channel: capacity.Chat, Client: ClientWeb, Message: "hello"})
	keep("create", created)
	createdAs := fmt.Sprintf("%+v", *created.Conversation)
	keep("create 2", h.apply("k4", CreateConversation{ID: "c2", Channel: capacity.Chat, Client: ClientWeb, Message: "hi"}))
	clone := h.m.Clone()
	keep("accept", h.apply("k5", Accept{ConversationID: "c1", AgentID: "a"}))
	keep("message", h.apply("k6", PostMessage{ConversationID: "c1", Author: AuthorVisitor, Text: "more"}))
	keep("message 2", h.apply("k7", PostMessage{ConversationID: "c1", Author: AuthorAgent, AgentID: "a", Text: "answer"}))
	keep("accept 2", h.apply("k8", Accept{ConversationID: "c2", AgentID: "a"}))
	keep("end", h.apply("k9", End{ConversationID: "c1"}))
	keep("rename", h.apply("k10", UpsertAgent{ID: "a", Name: "b", Capacity: capacity.Limits{3, 1}, Skills: []string{"de", "en"}}))
	keep("offline", h.apply("k11", SetAgentStatus{AgentID: "a", Status: StatusOffline}))
	if again := h.apply("k3", CreateConversation{ID: "c1", Channel: capacity.Chat, Client: ClientWeb, Message: "hello"}); !again.Replayed || again.ConversationID != "c1" {
		t.Errorf("replayed create: %+v, want a replay naming c1 (first answer %s)", again, createdAs)
	}
	h.advance(time.Hour)
	clone.Apply(h.now, "", PostMessage{ConversationID: "c2", Author: AuthorVisitor, Text: "on the clone"})
	for _, k := range outs {
		if now := k.now(); now != k.was {
			t.Errorf("%s changed after it was answered:\nwas %s\nnow %s", k.what, k.was, now)
		}
	}
}
