package routing

import (
	"slices"

	"github.com/omnirouter/omnirouter/capacity"
)

// eligible reports whether agent a may be given conversation c now (see
// blocker, whose rules Explain reports).
func (m *Machine) eligible(a *Agent, c *Conversation) bool {
	return m.blocker(a, c) == CauseNone
}

// chooseAgent picks the best eligible agent for c under the strategy,
// preferring agents who have not missed c; nil if none is eligible.
func (m *Machine) chooseAgent(c *Conversation) *Agent {
	var chosen, fallback *Agent
	m.avail[c.Channel].Ascend(func(k availKey) bool {
		a := m.getAgent(k.ID)
		if !m.eligible(a, c) {
			return true
		}
		if contains(c.Missers, a.ID) {
			if fallback == nil {
				fallback = a
			}
			return true
		}
		chosen = a
		return false
	})
	if chosen == nil {
		return fallback
	}
	return chosen
}

// matchWork records, during one apply, what may have made a match
// possible. Before an apply in auto mode no queued conversation has an
// eligible agent (CheckInvariants verifies it), so new matches can only
// involve the agents whose availability grew and the conversations queued
// (or made routable) in this apply: dispatch looks at those alone, instead
// of the whole queue against every agent.
type matchWork struct {
	agents        []string
	conversations []string
	all           bool       // a policy change: look at everything
	keys          []queueKey // scratch
}

// agent records that agent id gained availability (dispatch sorts and
// dedups: a policy change may record every agent).
func (w *matchWork) agent(id string) { w.agents = append(w.agents, id) }

func (w *matchWork) conversation(id string) { w.conversations = append(w.conversations, id) }

func (w *matchWork) reset() {
	w.agents, w.conversations, w.all = w.agents[:0], w.conversations[:0], false
}

// dispatch makes every match this apply made possible. First each agent
// whose availability grew (by id) takes, while it can, the first queued
// conversation it is eligible for in queue order across its channels (one
// queue: highest priority, then oldest eligibility time, whatever the
// channel); that conversation goes to its best eligible agent under the
// strategy, which may be another of them. Then each conversation queued in
// this apply, in queue order, goes to its best eligible agent, if any. No
// other pair can have become possible: the agents that did not gain
// availability had no eligible queued conversation before.
func (m *Machine) dispatch() {
	if m.match.all {
		m.dispatchAll()
		return
	}
	slices.Sort(m.match.agents)
	m.match.agents = slices.Compact(m.match.agents)
	for _, id := range m.match.agents {
		for {
			a := m.getAgent(id)
			if a == nil {
				break
			}
			c := m.firstEligibleAcross(a)
			if c == nil {
				break
			}
			m.route(m.writableConv(c), m.writableAgent(m.chooseAgent(c)), false)
		}
	}
	if len(m.match.conversations) == 0 {
		return
	}
	keys := m.match.keys[:0]
	for _, id := range m.match.conversations {
		if c := m.getConv(id); c != nil && c.State == StateQueued {
			keys = append(keys, qkey(c))
		}
	}
	slices.SortFunc(keys, compareQueueKeys)
	keys = slices.Compact(keys)
	m.match.keys = keys
	var fresh map[*queueClass]int // conversations of this apply per class, when there are several
	if len(keys) > 1 {
		fresh = map[*queueClass]int{}
		for _, k := range keys {
			fresh[m.classOf(m.getConv(k.ID))]++
		}
	}
	for _, k := range keys {
		c := m.getConv(k.ID)
		if c.State != StateQueued {
			continue
		}
		// A class that holds a conversation queued before this apply has
		// no eligible agent (the agents that gained availability took
		// what they could above, and no other agent could take any queued
		// conversation), so neither has c: no scan of the agents.
		cl, n := m.classOf(c), 1
		if fresh != nil {
			n = fresh[cl]
		}
		if cl.queue.Len() > n {
			continue
		}
		if a := m.chooseAgent(c); a != nil {
			m.route(m.writableConv(c), m.writableAgent(a), false)
		}
	}
}

func compareQueueKeys(a, b queueKey) int {
	switch {
	case queueLess(a, b):
		return -1
	case queueLess(b, a):
		return 1
	}
	return 0
}

// dispatchAll matches the whole queue, in queue order across channels,
// until no queued conversation has an eligible agent. Each channel's scan
// resumes where it last found a match: a conversation skipped once cannot
// match later in the same pass, since matching only takes capacity away
// (and, in focus mode, channels).
func (m *Machine) dispatchAll() {
	var from [capacity.NumChannels]queueKey
	var done [capacity.NumChannels]bool
	for ch := range m.queue {
		var ok bool
		from[ch], ok = m.queue[ch].Min()
		done[ch] = !ok
	}
	find := m.newAgentFinder()
	for {
		var conv *Conversation
		var agent *Agent
		for ch := range m.queue {
			if done[ch] {
				continue
			}
			c, a := m.firstRoutable(capacity.Channel(ch), &from[ch], find)
			if c == nil {
				done[ch] = true
				continue
			}
			if conv == nil || queueLess(qkey(c), qkey(conv)) {
				conv, agent = c, a
			}
		}
		if conv == nil {
			return
		}
		m.route(m.writableConv(conv), m.writableAgent(agent), false)
	}
}

// agentFinder is chooseAgent for one pass over the queue in which agents
// only lose availability (each match takes capacity away): whether any
// agent is eligible depends on a conversation's requirement class alone
// (its channel, skills, groups, ticket; having missed it only orders
// agents), so a
// class found with none is not searched again in the pass. Without it a
// pass over a long queue that nobody can take costs the queue's length
// times the agents'.
type agentFinder struct {
	m    *Machine
	dead map[deadClass]bool // classes with no eligible agent; looked up, never iterated
}

type deadClass struct {
	ch  capacity.Channel
	key string
}

func (m *Machine) newAgentFinder() *agentFinder { return &agentFinder{m: m} }

func (f *agentFinder) find(c *Conversation) *Agent {
	key := deadClass{c.Channel, classKey(c)}
	if f.dead[key] {
		return nil
	}
	a := f.m.chooseAgent(c)
	if a == nil {
		if f.dead == nil {
			f.dead = map[deadClass]bool{}
		}
		f.dead[key] = true
	}
	return a
}

// firstRoutable returns the first conversation of ch's queue from *from on
// that has an eligible agent, and that agent, moving *from to it.
func (m *Machine) firstRoutable(ch capacity.Channel, from *queueKey, find *agentFinder) (*Conversation, *Agent) {
	if m.avail[ch].Len() == 0 {
		return nil, nil
	}
	var conv *Conversation
	var agent *Agent
	m.queue[ch].AscendGreaterOrEqual(*from, func(k queueKey) bool {
		c := m.getConv(k.ID)
		if a := find.find(c); a != nil {
			conv, agent, *from = c, a, k
			return false
		}
		return true
	})
	return conv, agent
}

// firstQueued returns the first queued conversation, in routing order
// across channels, for which match returns true.
func (m *Machine) firstQueued(match func(*Conversation) bool) *Conversation {
	var best *Conversation
	var bestKey queueKey
	for ch := range m.queue {
		m.queue[ch].Ascend(func(k queueKey) bool {
			if best != nil && !queueLess(k, bestKey) {
				return false
			}
			if c := m.getConv(k.ID); match(c) {
				best, bestKey = c, k
				return false
			}
			return true
		})
	}
	return best
}

// route offers c to a, or assigns it at once with auto_accept or force.
func (m *Machine) route(c *Conversation, a *Agent, force bool) {
	m.dequeue(c)
	if c.Channel == capacity.Messaging {
		// On assignment a messaging conversation is active, and it is the
		// agent's turn: no inactivity clock until the agent replies.
		if c.Activity == ActivityInactive {
			c.Activity = ActivityActive
			m.emit(EventActive, c.ID, a.ID, EventData{})
		}
		c.AwaitAgent = true
		m.disarm(c, timerInactivity)
	}
	autoAccept, offerTimeout := m.policy.Routing.AutoAccept, m.policy.Routing.OfferTimeout
	switch c.Channel {
	case capacity.Email:
		autoAccept = m.policy.Email.AutoAccept
	case capacity.Voice:
		offerTimeout = m.policy.Voice.RingTimeout
	}
	if force || autoAccept {
		m.hold(c, a, StateAssigned)
		m.joined(c)
		m.emit(EventAssigned, c.ID, a.ID, EventData{})
		m.tookTransfer(c)
		return
	}
	m.hold(c, a, StateOffered)
	m.arm(c, timerOffer, ms(offerTimeout))
	m.emit(EventOffered, c.ID, a.ID, EventData{})
}

// joined records that an agent took c (accepted, or was assigned it): it
// is no missed chat, and a call is answered (it no longer waits for
// voice.max_queue_wait).
func (m *Machine) joined(c *Conversation) {
	if !c.Joined {
		m.statFirstAssigned(c)
	}
	c.Joined = true
	m.disarm(c, timerMaxWait)
}

func (m *Machine) requestAssignment(r RequestAssignment) Outcome {
	var conv *Conversation
	var agent *Agent
	if r.ConversationID != "" {
		c, err := m.openConv(r.ConversationID)
		if err != nil {
			return Outcome{Err: err}
		}
		if c.State != StateQueued {
			return Outcome{Err: conflictf(CodeNotQueued, "conversation %q is not waiting in the queue (state %s)", c.ID, c.State)}
		}
		conv = c
	}
	if r.AgentID != "" {
		a, err := m.agentOrErr(r.AgentID)
		if err != nil {
			return Outcome{Err: err}
		}
		agent = a
	}

	switch {
	case conv != nil && agent != nil:
		if !r.Force && !m.eligible(agent, conv) {
			return Outcome{Err: conflictf(CodeAgentNotEligible, "agent %q is not eligible for conversation %q (needs status online, spare %s capacity, skills %v, group %q)",
				agent.ID, conv.ID, conv.Channel, conv.Skills, conv.Group)}
		}
	case conv != nil:
		if agent = m.chooseAgent(conv); agent == nil {
			return Outcome{Err: notFoundf(CodeNoEligibleAgent, "no eligible agent for conversation %q", conv.ID)}
		}
	case agent != nil:
		if r.Force {
			return Outcome{Err: invalidf(CodeInvalidCommand, "a forced assignment names the conversation")}
		}
		if conv = m.firstEligibleAcross(agent); conv == nil {
			return Outcome{Err: notFoundf(CodeNoEligibleConversation, "no queued conversation agent %q is eligible for", agent.ID)}
		}
	default:
		find := m.newAgentFinder()
		conv = m.firstQueued(func(c *Conversation) bool {
			if a := find.find(c); a != nil {
				agent = a
				return true
			}
			return false
		})
		if conv == nil {
			if m.QueueLen() == 0 {
				return Outcome{Err: notFoundf(CodeNoEligibleConversation, "the queue is empty")}
			}
			return Outcome{Err: notFoundf(CodeNoEligibleAgent, "no eligible agent for any queued conversation")}
		}
	}
	conv = m.writableConv(conv)
	m.route(conv, m.writableAgent(agent), r.Force)
	return Outcome{Conversation: conv, Assignment: &Assignment{ConversationID: conv.ID, AgentID: agent.ID, State: conv.State}}
}

func (m *Machine) setPolicy(p SetPolicy) Outcome {
	if err := p.Patch.Validate(); err != nil {
		return Outcome{Err: err}
	}
	old := m.policy
	p.Patch.apply(&m.policy)
	if old.Routing.Strategy != m.policy.Routing.Strategy || old.Email.RouteToAway != m.policy.Email.RouteToAway {
		m.rebuildAvail()
	}
	if old.Messaging.CountInactiveMessaging != m.policy.Messaging.CountInactiveMessaging {
		m.recountAll()
	}
	m.match.all = true
	m.emit(EventPolicyChanged, "", "", EventData{})
	return Outcome{}
}

func (m *Machine) setEventLimits(c SetEventLimits) Outcome {
	if err := c.Limits.validate(); err != nil {
		return Outcome{Err: err}
	}
	m.eventLimits = c.Limits
	m.events.trim(c.Limits, m.dropEvents())
	return Outcome{}
}

// recountAll applies a changed counting rule to every held conversation.
func (m *Machine) recountAll() {
	for _, id := range m.agentIDs() {
		for _, cid := range m.getAgent(id).Conversations {
			m.recount(m.convW(cid))
		}
	}
}
