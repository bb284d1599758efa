package routing

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/omnirouter/omnirouter/capacity"
)

// TestLookupMirrors: the lookup maps follow every change of the
// conversation, agent and key indexes (including copy-on-write copies after a
// clone), a clone without them finds the same things, and a stale mirror
// is caught by the invariant check.
func TestLookupMirrors(t *testing.T) {
	h := newHarness(t)
	h.onlineAgent("a", 1, 1)
	h.webChat("c1")
	if out := h.apply("k1", CreateConversation{ID: "c2", Channel: capacity.Messaging}); out.Err != nil {
		t.Fatal(out.Err)
	}
	frozen := h.m.Clone()
	h.accept("c1", "a") // c1 is shared with the clone: copied, re-indexed
	if got := h.m.getConv("c1"); got == frozen.getConv("c1") || got.State != StateAssigned {
		t.Fatalf("after the clone, c1 was not copied into the live machine's lookup")
	}
	if out := h.apply("", UpsertAgent{ID: "a", Capacity: capacity.Limits{2, 2}}); out.Err != nil {
		t.Fatal(out.Err)
	}
	if got := h.m.getAgent("a"); got == frozen.getAgent("a") || got.Capacity != (capacity.Limits{2, 2}) || got != h.m.agentByID["a"] {
		t.Fatalf("after the clone, agent a was not copied into the live machine's lookup")
	}
	if frozen.convByID != nil || frozen.keyByName != nil || frozen.agentByID != nil {
		t.Fatal("a clone shares the live machine's lookup maps")
	}
	h.onlineAgent("b", 1, 1)
	if out := h.apply("", RemoveAgent{ID: "b"}); out.Err != nil {
		t.Fatal(out.Err)
	}
	if _, ok := h.m.agentByID["b"]; ok || h.m.getAgent("b") != nil {
		t.Fatal("a removed agent stays in the lookup")
	}
	if frozen.getConv("c1").State == StateAssigned || frozen.keys.Len() != 1 || (*frozen.keys.at(0)).Key != "k1" {
		t.Fatal("the clone does not find its own state")
	}
	if err := frozen.CheckInvariants(); err != nil {
		t.Fatal(err)
	}
	if err := h.m.CheckInvariants(); err != nil {
		t.Fatal(err)
	}

	back, err := ReadSnapshot(strings.NewReader(string(h.snapshot())))
	if err != nil {
		t.Fatal(err)
	}
	if back.getConv("c2") == nil || back.getKey("k1") == nil || back.getAgent("a") == nil || back.convByID == nil || back.agentByID == nil {
		t.Fatal("a restored machine has no lookups")
	}

	h.m.convByID["c1"] = frozen.getConv("c1") // stale
	if err := h.m.CheckInvariants(); err == nil || !strings.Contains(err.Error(), `conversation lookup map is stale for "c1"`) {
		t.Fatalf("stale conversation lookup not caught: %v", err)
	}
	h.m.convByID["c1"] = h.m.scanConv("c1")
	h.m.agentByID["a"] = frozen.getAgent("a") // stale
	if err := h.m.CheckInvariants(); err == nil || !strings.Contains(err.Error(), `agent lookup map is stale for "a"`) {
		t.Fatalf("stale agent lookup not caught: %v", err)
	}
	delete(h.m.agentByID, "a")
	if err := h.m.CheckInvariants(); err == nil || !strings.Contains(err.Error(), "agent lookup map holds") {
		t.Fatalf("missing agent lookup not caught: %v", err)
	}
	r, _ := h.m.agents.Get(agentRef{id: "a"})
	h.m.agentByID["a"] = r.a
	delete(h.m.keyByName, "k1")
	if err := h.m.CheckInvariants(); err == nil || !strings.Contains(err.Error(), "key lookup map") {
		t.Fatalf("missing key lookup not caught: %v", err)
	}
}

// TestApplyCounting: ApplyCounting changes the state exactly as Apply does
// and returns the same outcome without the events, counting them instead.
func TestApplyCounting(t *testing.T) {
	full, counting := New(), New()
	cmds := []Command{
		UpsertAgent{ID: "a", Capacity: capacity.Limits{capacity.Chat: 1}},
		SetAgentStatus{AgentID: "a", Status: StatusOnline},
		CreateConversation{ID: "c1", Channel: capacity.Chat, Client: ClientWeb, Message: "hi"},
		Accept{ConversationID: "c1", AgentID: "a"},
		PostMessage{ConversationID: "c1", Author: AuthorAgent, AgentID: "a", Text: "hello"},
		End{ConversationID: "c1", By: EndedByVisitor},
		Accept{ConversationID: "c1", AgentID: "a"}, // refused
		CreateConversation{ID: "c2", Channel: capacity.Chat, Client: ClientWeb, Message: "hi"},
		Tick{}, // an hour later: the offer and the session's timers fire
		Tick{}, // replayed: the same key
	}
	total := 0
	for i, cmd := range cmds {
		at, key := t0+int64(i)*1000, fmt.Sprintf("k%d", i)
		if _, ok := cmd.(Tick); ok {
			at, key = t0+3_600_000, "tick"
		}
		want := full.Apply(at, key, cmd)
		got, n := counting.ApplyCounting(at, key, cmd)
		if n != len(want.Events) || got.Events != nil {
			t.Fatalf("%T: counted %d events and kept %d, Apply emitted %d", cmd, n, len(got.Events), len(want.Events))
		}
		total += n
		if _, ok := cmd.(Tick); ok && (n == 0) != got.Replayed {
			t.Fatalf("tick (replayed %v) counted %d events", got.Replayed, n)
		}
		want.Events = nil
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%T: outcome %+v, Apply's %+v", cmd, got, want)
		}
	}
	if total == 0 {
		t.Fatal("no events counted")
	}
	if !bytes.Equal(snapshotBytes(t, full), snapshotBytes(t, counting)) {
		t.Fatal("ApplyCounting left another state than Apply")
	}
}

// TestQueueClassReuse: the class a conversation leaves empty is reused for
// the next new class, under that class's requirement, and a clone neither
// shares it nor sees the live machine's classes change.
func TestQueueClassReuse(t *testing.T) {
	h := newHarness(t)
	h.onlineAgent("a", 1, 1, "billing")
	h.do(CreateConversation{ID: "c1", Channel: capacity.Chat, Skills: []string{"billing"}}) // offered at once
	spare := h.m.spareClass
	if spare == nil || spare.queue.Len() != 0 || h.m.classes[capacity.Chat].Len() != 0 {
		t.Fatalf("the emptied class was not kept aside: %+v", spare)
	}
	frozen := h.m.Clone()
	if frozen.spareClass != nil {
		t.Fatal("a clone shares the spare class")
	}
	// The agent is full: these two wait, in two classes.
	h.do(CreateConversation{ID: "c2", Channel: capacity.Chat, Skills: []string{"klingon"}})
	h.do(CreateConversation{ID: "c3", Channel: capacity.Chat, Skills: []string{"billing"}})
	cl, ok := h.m.classes[capacity.Chat].Get(&queueClass{key: classKey(ptr(h.conv("c2")))})
	if !ok || cl != spare || cl.queue.Len() != 1 || len(cl.skills) != 1 || cl.skills[0] != "klingon" {
		t.Fatalf("c2's class is %+v, want the spare reused for skill klingon", cl)
	}
	if h.m.spareClass != nil || h.m.classes[capacity.Chat].Len() != 2 {
		t.Fatalf("spare %p still set, %d classes", h.m.spareClass, h.m.classes[capacity.Chat].Len())
	}
	if frozen.classes[capacity.Chat].Len() != 0 || frozen.QueueLen() != 0 {
		t.Fatal("the clone sees the live machine's queue")
	}
	// c1 ends: c3 (billing) is offered, c2 waits on.
	h.do(End{ConversationID: "c1", By: EndedByVisitor})
	h.wantState("c3", StateOffered, h.conv("c3").Activity)
	h.wantState("c2", StateQueued, h.conv("c2").Activity)
	if err := h.m.CheckInvariants(); err != nil {
		t.Fatal(err)
	}
	if err := frozen.CheckInvariants(); err != nil {
		t.Fatal(err)
	}
}
