package routing

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/omnirouter/omnirouter/capacity"
)

// previewPatch is a random patch, weighted towards the fields whose change
// moves work at once.
func previewPatch(g *commandGen) PolicyPatch {
	switch g.r.IntN(6) {
	case 0:
		return rawPatch("routing.mode", int64(g.r.IntN(2)))
	case 1:
		return rawPatch("messaging.count_inactive_messaging", int64(g.r.IntN(2)))
	case 2:
		return rawPatch("email.route_to_away", int64(g.r.IntN(2)))
	case 3:
		return rawPatch("routing.focus_mode", int64(g.r.IntN(2)))
	case 4:
		return rawPatch("routing.strategy", int64(g.r.IntN(2)))
	}
	return g.next2Policy()
}

// next2Policy draws commands until the generator makes a policy change.
func (g *commandGen) next2Policy() PolicyPatch {
	for {
		if _, cmd := g.next(); cmd.Kind() == KindSetPolicy {
			return cmd.(SetPolicy).Patch
		}
	}
}

// expectedPreview is what applying a patch did, read through the public
// accessors of the machine before and after.
func expectedPreview(before, after *Machine) PolicyPreview {
	var p PolicyPreview
	p.Policy = after.Policy()
	before.Conversations(func(b *Conversation) bool {
		a, ok := after.Conversation(b.ID)
		if !ok {
			return true
		}
		heldBy := func(c Conversation) string {
			if c.AgentID != "" && (c.State == StateOffered || c.State == StateAssigned || c.State == StateWrapUp) {
				return c.AgentID
			}
			return ""
		}
		hb, ha := heldBy(*b), heldBy(a)
		if ha != "" && ha != hb {
			p.Offers = append(p.Offers, PreviewHolding{ConversationID: a.ID, AgentID: ha, State: a.State})
		}
		if hb != "" && ha != hb {
			p.Withdrawn = append(p.Withdrawn, PreviewHolding{ConversationID: b.ID, AgentID: hb, State: b.State})
		}
		if hb == "" || ha != hb {
			return true
		}
		if a.Counted && !b.Counted {
			p.Counted = append(p.Counted, a.ID)
		}
		if b.Counted && !a.Counted {
			p.Uncounted = append(p.Uncounted, a.ID)
		}
		return true
	})
	for _, b := range before.Agents() {
		if a, ok := after.Agent(b.ID); ok && a.Load != b.Load {
			p.Agents = append(p.Agents, PreviewLoad{AgentID: b.ID, Capacity: a.Capacity, Before: b.Load, After: a.Load})
		}
	}
	p.Totals = PreviewTotals{len(p.Offers), len(p.Withdrawn), len(p.Counted), len(p.Uncounted), len(p.Agents)}
	return p
}

// For random states and patches, a preview answers what applying the patch
// for real then does, and changes nothing.
func TestPreviewPolicyMatchesApplyingIt(t *testing.T) {
	seed := *randomSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (rerun with -routing.seed=%d)", seed, seed)
	ops := 20_000
	m := New()
	g := &commandGen{r: rand.New(rand.NewPCG(seed, seed^0x77)), m: m, convs: 80, agents: 8}
	now := t0
	// Mostly external mode, where switching to auto moves work at once.
	m.Apply(now, "", SetPolicy{Patch: rawPatch("routing.mode", int64(ModeExternal))})
	previews, moved := 0, 0
	for i := range ops {
		step, cmd := g.next()
		now += step
		m.Apply(now, "", cmd)
		if i%20 != 0 {
			continue
		}
		m.Apply(now, "", Tick{}) // due timers fire first, in both
		patch := previewPatch(g)
		state := snapshotBytes(t, m)

		frozen := m.Clone()
		got, err := frozen.PreviewPolicy(patch)
		if !bytes.Equal(snapshotBytes(t, m), state) || !bytes.Equal(snapshotBytes(t, frozen), state) {
			t.Fatalf("op %d: the preview changed the state", i)
		}

		// Applied for real on a replica restored from the snapshot, so that
		// m goes on in its own policy.
		before, err2 := ReadSnapshot(bytes.NewReader(state))
		if err2 != nil {
			t.Fatal(err2)
		}
		replica, _ := ReadSnapshot(bytes.NewReader(state))
		out := replica.Apply(now, "", SetPolicy{Patch: patch})
		if err != nil || out.Err != nil {
			if !errors.Is(err, ErrInvalid) || fmt.Sprint(err) != fmt.Sprint(out.Err) {
				t.Fatalf("op %d: preview says %v, applying says %v", i, err, out.Err)
			}
			continue
		}
		previews++
		want := expectedPreview(before, replica)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("op %d: patch %+v\npreview %+v\napplied %+v", i, patch, got, want)
		}
		// Every offer the apply emitted is in the preview.
		for _, e := range out.Events {
			if e.Type != EventOffered && e.Type != EventAssigned {
				continue
			}
			found := false
			for _, o := range got.Offers {
				found = found || o.ConversationID == e.ConversationID && o.AgentID == e.AgentID
			}
			if !found {
				t.Fatalf("op %d: the apply emitted %s %s→%s, the preview has no such offer", i, e.Type, e.ConversationID, e.AgentID)
			}
		}
		if got.Totals != (PreviewTotals{}) {
			moved++
		}
	}
	if previews < 100 || moved < 5 {
		t.Fatalf("%d previews, %d that moved work: too few to mean much", previews, moved)
	}
	t.Logf("%d previews, %d moved work", previews, moved)
}

func TestPreviewPolicyRefusesABadPatch(t *testing.T) {
	h := newHarness(t)
	if _, err := h.m.Clone().PreviewPolicy(rawPatch("routing.offer_timeout", -5)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a negative timeout previewed: %v", err)
	}
}

// A preview of switching to auto mode names the offers it would make; of
// counting inactive messaging, the conversations that would count.
func TestPreviewPolicyNamesOffersAndCounting(t *testing.T) {
	h := newHarness(t, rawPatch("routing.mode", int64(ModeExternal)))
	h.onlineAgent("a", 1, 2)
	h.webChat("c1")
	h.webChat("c2")
	p, err := h.m.Clone().PreviewPolicy(rawPatch("routing.mode", int64(ModeAuto)))
	if err != nil {
		t.Fatal(err)
	}
	want := []PreviewHolding{{ConversationID: "c1", AgentID: "a", State: StateOffered}}
	if !reflect.DeepEqual(p.Offers, want) || p.Totals.Offers != 1 || p.Policy.Routing.Mode != ModeAuto {
		t.Fatalf("offers %+v, want %+v", p.Offers, want)
	}
	if len(p.Agents) != 1 || p.Agents[0].Before[capacity.Chat] != 0 || p.Agents[0].After[capacity.Chat] != 1 {
		t.Fatalf("agents %+v", p.Agents)
	}
	if c := h.conv("c1"); c.State != StateQueued || h.m.Policy().Routing.Mode != ModeExternal {
		t.Fatalf("the preview offered c1 for real: %s", c.State)
	}

	// A messaging conversation gone inactive stops counting; a preview of
	// counting inactive messaging says it would count again.
	h.messaging("m")
	h.do(RequestAssignment{ConversationID: "m", AgentID: "a"})
	h.accept("m", "a")
	h.do(PostMessage{ConversationID: "m", Author: AuthorAgent, AgentID: "a", Text: "how can I help?"})
	h.advance(10 * time.Minute)
	if c := h.conv("m"); c.Activity != ActivityInactive || c.Counted {
		t.Fatalf("m: %s, counted %v; want inactive, not counted", c.Activity, c.Counted)
	}
	p, err = h.m.Clone().PreviewPolicy(rawPatch("messaging.count_inactive_messaging", 1))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(p.Counted) != "[m]" || len(p.Uncounted) != 0 || len(p.Agents) != 1 || p.Agents[0].After[capacity.Messaging] != 1 {
		t.Fatalf("counting preview: %+v", p)
	}
}

// A preview runs on a clone while the machine it was taken from goes on
// applying (run with -race).
func TestPreviewPolicyBesideApplies(t *testing.T) {
	m := New()
	g := &commandGen{r: rand.New(rand.NewPCG(7, 8)), m: m, convs: 80, agents: 8}
	now := t0
	for range 3000 {
		step, cmd := g.next()
		now += step
		m.Apply(now, "", cmd)
	}
	frozen := m.Clone()
	var wg sync.WaitGroup
	wg.Go(func() {
		for range 2000 {
			step, cmd := g.next()
			now += step
			m.Apply(now, "", cmd)
		}
	})
	for i := range 20 {
		if _, err := frozen.PreviewPolicy(rawPatch("routing.mode", int64(i%2))); err != nil {
			t.Error(err)
		}
	}
	wg.Wait()
}

// insightState is 10,000 agents in 20 groups and 100,000 conversations,
// half of them held, built once for the benchmarks that read it (Stats,
// Explain, PolicyChange): callers must not apply to it (fork it).
func insightState(b *testing.B) *Machine {
	insight.once.Do(func() {
		m := New()
		m.Apply(t0, "", SetPolicy{Patch: MustPatch("routing.auto_accept", true)})
		for i := range 10_000 {
			id := fmt.Sprintf("a%05d", i)
			m.Apply(t0, "", UpsertAgent{ID: id, Capacity: capacity.Limits{5, 5, 5, 1}, Groups: []string{fmt.Sprintf("g%02d", i%20)}})
			m.Apply(t0, "", SetAgentStatus{AgentID: id, Status: StatusOnline})
		}
		for i := range 100_000 {
			m.Apply(t0+int64(i), "", CreateConversation{ID: fmt.Sprintf("c%06d", i), Channel: capacity.Channel(i % 2),
				Group: fmt.Sprintf("g%02d", i%20), Message: "hi"})
		}
		insight.m = m
	})
	b.ResetTimer()
	return insight.m
}

var insight struct {
	once sync.Once
	m    *Machine
}

// BenchmarkExplain: why the last queued chat waits, against 10,000 agents.
func BenchmarkExplain(b *testing.B) {
	m := insightState(b)
	last := fmt.Sprintf("c%06d", 99_998)
	if c, _ := m.Conversation(last); c.State != StateQueued {
		b.Fatalf("%s is %s", last, c.State)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if e, err := m.Explain(last); err != nil || e.Considered != 10_000 {
			b.Fatal(e, err)
		}
	}
}

// BenchmarkPolicyChange: a change of strategy on that state, applied (it
// rebuilds the availability index and matches the whole queue: 25,000
// chats wait in groups whose agents are full while 5,000 agents of other
// groups have room) and previewed (the same on a fork, and the
// comparison).
func BenchmarkPolicyChange(b *testing.B) {
	m := insightState(b).fork()
	strategies := []string{"round_robin", "spare_capacity"}
	b.Run("apply", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if out := m.Apply(m.now, "", SetPolicy{Patch: MustPatch("routing.strategy", strategies[i%2])}); out.Err != nil {
				b.Fatal(out.Err)
			}
		}
	})
	frozen := m.Clone()
	b.Run("preview", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := frozen.PreviewPolicy(MustPatch("routing.strategy", strategies[i%2])); err != nil {
				b.Fatal(err)
			}
		}
	})
}
