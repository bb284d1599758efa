package routing

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/omnirouter/omnirouter/capacity"
)

func (h *harness) explain(id string) Explanation {
	h.t.Helper()
	e, err := h.m.Explain(id)
	if err != nil {
		h.t.Fatalf("explain %s: %v", id, err)
	}
	return e
}

// causesOf maps each cause Explain gives to the agents it names.
func causesOf(e Explanation) map[string][]string {
	out := map[string][]string{}
	for _, c := range e.Causes {
		if c.Count != len(c.Agents) && len(c.Agents) != MaxCauseAgents {
			panic(fmt.Sprintf("cause %s: count %d but %d agents named", c.Cause, c.Count, len(c.Agents)))
		}
		out[c.Cause.String()] = c.Agents
	}
	return out
}

func causeOf(e Explanation, cause Cause) CauseCount {
	for _, c := range e.Causes {
		if c.Cause == cause {
			return c
		}
	}
	return CauseCount{}
}

func (h *harness) agentWith(id string, status AgentStatus, limits capacity.Limits, skills, groups []string) {
	h.t.Helper()
	h.do(UpsertAgent{ID: id, Capacity: limits, Skills: skills, Groups: groups})
	h.do(SetAgentStatus{AgentID: id, Status: status})
}

// One waiting chat and an agent kept from it by each cause in turn.
func TestExplainNamesEveryCauseOfAWait(t *testing.T) {
	h := newHarness(t, rawPatch("routing.skills_timeout.chat", int64(time.Minute)), rawPatch("routing.focus_mode", 1))
	all := []string{"fr", "vip"}
	support := []string{"support"}
	chat1 := capacity.Limits{capacity.Chat: 1}

	// full holds a chat at its capacity of one; focus a messaging
	// conversation, which focus mode keeps it to.
	h.agentWith("full", StatusOnline, chat1, all, support)
	h.webChat("c0")
	h.accept("c0", "full")
	h.agentWith("focus", StatusOnline, capacity.Limits{capacity.Chat: 2, capacity.Messaging: 1}, all, support)
	h.messaging("m0")
	h.accept("m0", "focus")

	h.agentWith("off", StatusOffline, chat1, all, support)
	h.agentWith("away", StatusAway, chat1, all, support)
	h.agentWith("xfer", StatusTransfersOnly, chat1, all, support)
	h.agentWith("nofr", StatusOnline, chat1, []string{"vip"}, support)
	h.agentWith("nofr2", StatusOnline, chat1, nil, support)
	h.agentWith("billing", StatusOnline, chat1, all, []string{"billing"})
	h.agentWith("novip", StatusOnline, chat1, []string{"fr"}, support)
	h.agentWith("sales", StatusOnline, chat1, all, []string{"sales"})
	h.agentWith("mailonly", StatusOnline, capacity.Limits{capacity.Email: 5}, all, support)

	h.do(CreateConversation{ID: "c1", Channel: capacity.Chat, Skills: []string{"fr"}, Group: "support",
		OptionalSkills: []string{"vip"}, SecondaryGroups: []string{"sales"}, Message: "bonjour"})
	c1 := h.conv("c1")
	e := h.explain("c1")
	if e.State != StateQueued || e.Channel != capacity.Chat || e.Position != 1 || e.QueueLength != 1 || e.AgentID != "" {
		t.Fatalf("explain: %+v", e)
	}
	if e.Considered != 10 || e.Eligible != 0 {
		t.Fatalf("considered %d (want 10: not mailonly), eligible %d (want 0)", e.Considered, e.Eligible)
	}
	want := map[string][]string{
		"offline":                    {"off"},
		"away":                       {"away"},
		"transfers_only":             {"xfer"},
		"missing_skill":              {"nofr", "nofr2"},
		"other_group":                {"billing"},
		"waiting_for_skills_timeout": {"novip", "sales"},
		"focus_mode":                 {"focus"},
		"no_capacity":                {"full"},
	}
	got := causesOf(e)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("causes\n got %v\nwant %v", got, want)
	}
	// In the order of the rules.
	var order []Cause
	for _, c := range e.Causes {
		order = append(order, c.Cause)
	}
	if !slices.IsSorted(order) {
		t.Fatalf("causes out of order: %v", order)
	}
	if d := causeOf(e, CauseMissingSkill).Detail; d != "fr" {
		t.Fatalf("missing_skill detail %q, want the skill", d)
	}
	if d := causeOf(e, CauseOtherGroup).Detail; d != "support" {
		t.Fatalf("other_group detail %q, want the group", d)
	}
	if d := causeOf(e, CauseNoCapacity).Detail; d != "full 1/1" {
		t.Fatalf("no_capacity detail %q, want load/capacity", d)
	}
	relaxAt := c1.QueuedAt + time.Minute.Milliseconds()
	if at := causeOf(e, CauseSkillsTimeout).At; at != relaxAt {
		t.Fatalf("skills timeout at %d, want %d", at, relaxAt)
	}
	if e.NextChangeAt == 0 || e.NextChangeAt > relaxAt {
		t.Fatalf("next change at %d, want the earliest deadline, at most %d", e.NextChangeAt, relaxAt)
	}

	// When the skills timeout passes, the agents it named may take it.
	h.advance(time.Minute)
	if c := h.conv("c1"); c.State != StateOffered || c.AgentID != "novip" && c.AgentID != "sales" {
		t.Fatalf("after the skills timeout c1 is %s with %q, want offered to novip or sales", c.State, c.AgentID)
	}
	if e := h.explain("c1"); e.Position != 0 || e.AgentID != h.conv("c1").AgentID || len(e.Causes) != 0 {
		t.Fatalf("explain of an offered conversation: %+v", e)
	}
}

// In external mode an eligible agent waits for an engine; an agent who
// missed the conversation is named apart, and still eligible.
func TestExplainExternalModeAndMissers(t *testing.T) {
	h := newHarness(t, rawPatch("routing.mode", int64(ModeExternal)))
	h.onlineAgent("a1", 1, 0)
	h.onlineAgent("a2", 1, 0)
	h.webChat("c")
	e := h.explain("c")
	if e.Eligible != 2 || fmt.Sprint(causesOf(e)) != fmt.Sprint(map[string][]string{"external_mode": {"a1", "a2"}}) {
		t.Fatalf("external mode: %+v", e)
	}
	h.do(RequestAssignment{ConversationID: "c", AgentID: "a1"})
	h.do(Reject{ConversationID: "c", AgentID: "a1"})
	e = h.explain("c")
	want := map[string][]string{"already_missed": {"a1"}, "external_mode": {"a2"}}
	if e.Eligible != 2 || fmt.Sprint(causesOf(e)) != fmt.Sprint(want) {
		t.Fatalf("after a1 rejected: %+v", e)
	}
}

// An email whose ticket waits on the end user is routed to nobody.
func TestExplainTicketWaitingForEndUser(t *testing.T) {
	h := newHarness(t)
	h.agentWith("a", StatusOffline, capacity.Limits{capacity.Email: 3}, nil, nil)
	h.do(CreateConversation{ID: "e", Channel: capacity.Email, Subject: "refund", Message: "hello"})
	h.do(SetTicketStatus{ConversationID: "e", Status: TicketPending})
	h.do(SetAgentStatus{AgentID: "a", Status: StatusOnline})
	e := h.explain("e")
	if e.State != StateQueued || fmt.Sprint(causesOf(e)) != fmt.Sprint(map[string][]string{"waiting_for_end_user": {"a"}}) {
		t.Fatalf("pending ticket: %+v", e)
	}
}

func TestExplainPositionAndUnknown(t *testing.T) {
	h := newHarness(t)
	h.webChat("old")
	h.webChat("new")
	h.do(CreateConversation{ID: "urgent", Channel: capacity.Chat, Priority: 2, Message: "help"})
	h.messaging("m")
	for id, pos := range map[string]int{"urgent": 1, "old": 2, "new": 3} {
		if e := h.explain(id); e.Position != pos || e.QueueLength != 3 {
			t.Fatalf("%s: position %d of %d, want %d of 3", id, e.Position, e.QueueLength, pos)
		}
	}
	if e := h.explain("m"); e.Position != 1 || e.QueueLength != 1 {
		t.Fatalf("messaging queue: %+v", e)
	}
	if _, err := h.m.Explain("nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown conversation: %v", err)
	}
}

// For random states, Explain counts an agent eligible exactly when the
// dispatcher may give it the conversation, and says a conversation has an
// eligible agent exactly when an engine's request for it is answered.
func TestExplainAgreesWithTheDispatcher(t *testing.T) {
	seed := *randomSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (rerun with -routing.seed=%d)", seed, seed)
	ops := 20_000
	if testing.Short() {
		ops = 4_000
	}
	m := New()
	g := &commandGen{r: rand.New(rand.NewPCG(seed, seed^0x51)), m: m, convs: 60, agents: 8}
	now := t0
	// Mostly external mode, where eligible agents and queued
	// conversations meet; random policy changes switch it now and then.
	m.Apply(now, "", SetPolicy{Patch: rawPatch("routing.mode", int64(ModeExternal))})
	checked, withEligible := 0, 0
	for i := range ops {
		step, cmd := g.next()
		now += step
		m.Apply(now, "", cmd)
		if i%25 != 0 {
			continue
		}
		// Timers due now (armed at once in this apply) fire first, as in
		// the requests below.
		m.Apply(now, "", Tick{})
		external := m.policy.Routing.Mode == ModeExternal
		eligibleAgents := map[string]bool{}
		for ch := range capacity.NumChannels {
			var queued []queueKey
			m.queue[ch].Ascend(func(k queueKey) bool { queued = append(queued, k); return true })
			for _, k := range queued {
				e, err := m.Explain(k.ID)
				if err != nil {
					t.Fatal(err)
				}
				checked++
				if !external && e.Eligible != 0 {
					t.Fatalf("op %d: auto mode, yet %d eligible agents for queued %s: %+v", i, e.Eligible, k.ID, e)
				}
				// An engine asks for the conversation: it gets an agent
				// exactly when Explain counts one eligible.
				out := m.fork().Apply(now, "", RequestAssignment{ConversationID: k.ID})
				if (out.Err == nil) != (e.Eligible > 0) {
					t.Fatalf("op %d: %s: explain counts %d eligible, engine request gives %v", i, k.ID, e.Eligible, out.Err)
				}
				if e.Eligible > 0 {
					withEligible++
				}
				c := m.getConv(k.ID)
				m.agents.Ascend(func(r agentRef) bool {
					a := r.a
					if a.Capacity[ch] == 0 {
						return true
					}
					cause := m.agentCause(a, c)
					ok := cause == CauseNone || cause == CauseAlreadyMissed || cause == CauseExternalMode
					if ok {
						eligibleAgents[a.ID] = true
					}
					out := m.fork().Apply(now, "", RequestAssignment{ConversationID: k.ID, AgentID: a.ID})
					if (out.Err == nil) != ok {
						t.Fatalf("op %d: %s for %s: explain says %s, engine request gives %v", i, a.ID, k.ID, cause, out.Err)
					}
					checkCause(t, m, a, c, cause)
					return true
				})
			}
		}
		// An agent asks for work (the dispatcher's queue-by-class path):
		// it gets some exactly when Explain counts it eligible for one.
		m.agents.Ascend(func(r agentRef) bool {
			out := m.fork().Apply(now, "", RequestAssignment{AgentID: r.id})
			if (out.Err == nil) != eligibleAgents[r.id] {
				t.Fatalf("op %d: agent %s asks for work: %v; explain counts it eligible for some: %v", i, r.id, out.Err, eligibleAgents[r.id])
			}
			return true
		})
	}
	if checked < 100 || withEligible < 20 {
		t.Fatalf("the random states explained %d queued conversations, %d with eligible agents: too few to mean much", checked, withEligible)
	}
	t.Logf("%d explanations checked, %d with eligible agents", checked, withEligible)
}

// checkCause checks what a cause claims against the agent and
// conversation directly.
func checkCause(t *testing.T, m *Machine, a *Agent, c *Conversation, cause Cause) {
	t.Helper()
	bad := func(why string) { t.Fatalf("%s for %s: cause %s, but %s", a.ID, c.ID, cause, why) }
	switch cause {
	case CauseOffline:
		if a.Status != StatusOffline {
			bad("the agent is " + a.Status.String())
		}
	case CauseMissingSkill:
		if containsAll(a.Skills, c.Skills) {
			bad("it has every required skill")
		}
	case CauseNoCapacity:
		if a.Load[c.Channel] < a.Capacity[c.Channel] {
			bad(fmt.Sprintf("load %d of %d", a.Load[c.Channel], a.Capacity[c.Channel]))
		}
	case CauseSkillsTimeout:
		if c.Relaxed || c.deadlines[timerRelax] == 0 {
			bad("nothing is left to relax")
		}
	case CauseFocusMode:
		if !m.policy.Routing.FocusMode {
			bad("focus mode is off")
		}
	case CauseWaitingForEndUser:
		if ticketOpen(c) {
			bad("its ticket is open")
		}
	}
}
