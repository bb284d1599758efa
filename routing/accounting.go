package routing

import (
	"slices"

	"github.com/omnirouter/omnirouter/capacity"
)

// This file keeps the derived indexes and counters in step with agents and
// conversations: the availability index, agent load, the queue, timers and
// the event log. Every write to state goes through these helpers.

// availSlot records whether and where an agent sits in one channel's
// availability index.
type availSlot struct {
	in    bool
	key   availKey
	spare int
}

// --- events ---------------------------------------------------------------

func (m *Machine) emit(typ string, convID, agentID string, data EventData) {
	e := Event{ID: m.nextEventID, Type: typ, At: m.now, ConversationID: convID, AgentID: agentID, Data: data}
	m.nextEventID++
	m.events.push(e, m.eventLimits, m.dropEvents())
	if m.collectEvents {
		m.emitted = append(m.emitted, e)
	}
}

// loadChangedFor notes that an agent's load or capacity changed in this
// apply; one agent.capacity_changed event per agent is emitted at the end.
func (m *Machine) loadChangedFor(agentID string) {
	if !slices.Contains(m.loadChanged, agentID) {
		m.loadChanged = append(m.loadChanged, agentID)
	}
}

func (m *Machine) flushLoadEvents() {
	slices.Sort(m.loadChanged)
	for _, id := range m.loadChanged {
		if a := m.getAgent(id); a != nil {
			m.emit(EventAgentCapacity, "", id, EventData{Capacity: a.Capacity, Load: a.Load})
		}
	}
	m.loadChanged = m.loadChanged[:0]
}

// --- availability index ---------------------------------------------------

// strategyKey orders available agents for one channel under the current
// strategy; lower is better, ties go to the lower id.
func (m *Machine) strategyKey(a *Agent, ch capacity.Channel) availKey {
	last := a.LastAssigned[ch]
	switch m.policy.Routing.Strategy {
	case StrategySparePercentage:
		return availKey{Primary: -int64(capacity.SparePermille(a.Capacity, a.Load, ch)), Secondary: last, ID: a.ID}
	case StrategyRoundRobin:
		return availKey{Primary: last, ID: a.ID}
	default:
		return availKey{Primary: -int64(capacity.Spare(a.Capacity, a.Load, ch)), Secondary: last, ID: a.ID}
	}
}

// reindexAvail puts a (writable) agent where it belongs in every channel's
// availability index: present when online with spare capacity.
func (m *Machine) reindexAvail(a *Agent) {
	for i := range a.avail {
		ch := capacity.Channel(i)
		want := m.receives(a, ch) && capacity.Spare(a.Capacity, a.Load, ch) > 0
		var key availKey
		if want {
			key = m.strategyKey(a, ch)
		}
		slot := &a.avail[i]
		before := 0
		if slot.in {
			before = slot.spare
		}
		if slot.in && (!want || slot.key != key) {
			m.avail[i].Delete(slot.key)
			slot.in = false
		}
		if want && !slot.in {
			spare := capacity.Spare(a.Capacity, a.Load, ch)
			m.avail[i].ReplaceOrInsert(key)
			*slot = availSlot{in: true, key: key, spare: spare}
			if spare > before {
				m.match.agent(a.ID)
			}
		}
	}
}

func (m *Machine) dropAvail(a *Agent) {
	for i := range a.avail {
		if a.avail[i].in {
			m.avail[i].Delete(a.avail[i].key)
			a.avail[i] = availSlot{}
		}
	}
}

// rebuildAvail recomputes every agent's index position (strategy change).
func (m *Machine) rebuildAvail() {
	for _, id := range m.agentIDs() {
		a := m.agentW(id)
		m.dropAvail(a)
		m.reindexAvail(a)
	}
}

func (m *Machine) agentIDs() []string {
	ids := make([]string, 0, m.agents.Len())
	m.agents.Ascend(func(r agentRef) bool {
		ids = append(ids, r.id)
		return true
	})
	return ids
}

// --- holding and load ----------------------------------------------------

func held(c *Conversation) bool {
	return c.AgentID != "" && (c.State == StateOffered || c.State == StateAssigned || c.State == StateWrapUp)
}

// receives reports whether agent a's status lets routing give it work on
// ch: online, or away for email when email.route_to_away is on.
func (m *Machine) receives(a *Agent, ch capacity.Channel) bool {
	return a.Status == StatusOnline || ch == capacity.Email && a.Status == StatusAway && m.policy.Email.RouteToAway
}

// focusAllows reports whether focus mode lets agent a take work on ch: with
// routing.focus_mode on, an agent with real-time work counting on one
// channel (offered or held) gets no real-time work on another; email is
// exempt.
func (m *Machine) focusAllows(a *Agent, ch capacity.Channel) bool {
	if !m.policy.Routing.FocusMode || !ch.RealTime() {
		return true
	}
	for other := range capacity.NumChannels {
		if other != ch && other.RealTime() && a.Load[other] > 0 {
			return false
		}
	}
	return true
}

func ticketOpen(c *Conversation) bool {
	return c.Ticket == nil || c.Ticket.Status == TicketNew || c.Ticket.Status == TicketOpen
}

func (m *Machine) shouldCount(c *Conversation) bool {
	if !held(c) {
		return false
	}
	return capacity.Counts(capacity.Holding{Channel: c.Channel, Active: c.Activity == ActivityActive, TicketOpen: ticketOpen(c)},
		m.policy.Messaging.CountInactiveMessaging)
}

// recount brings c's contribution to its agent's load in line with the
// counting rule. A conversation that starts counting while the agent is at
// or over its limit is marked exempt: it is over capacity by reactivation or
// by a forced assignment, never by routing (which only picks agents with
// spare capacity before holding).
func (m *Machine) recount(c *Conversation) {
	want := m.shouldCount(c)
	if want == c.Counted {
		return
	}
	a := m.agentW(c.AgentID)
	ch := c.Channel
	delta := 1
	if !want {
		delta = -1
	}
	m.loadStat(a, ch, delta)
	if want {
		a.Load[ch]++
		c.Exempt = a.Load[ch] > a.Capacity[ch]
	} else {
		a.Load[ch]--
		c.Exempt = false
		if a.Load[ch] == 0 && ch.RealTime() && m.policy.Routing.FocusMode {
			// Focus mode let the agent through on its other real-time
			// channels only now, whatever its spare capacity on this one.
			m.match.agent(a.ID)
		}
	}
	c.Counted = want
	m.loadChangedFor(a.ID)
	m.reindexAvail(a)
}

// hold gives c to agent a in the given state (offered or assigned).
func (m *Machine) hold(c *Conversation, a *Agent, state State) {
	c.State = state
	c.AgentID = a.ID
	m.heldStat(c, 1)
	a.Conversations = withString(a.Conversations, c.ID)
	a.LastAssigned[c.Channel] = m.now
	m.reindexAvail(a)
	m.recount(c)
}

// unhold takes c away from its agent. keepAgent leaves AgentID set (an
// ended conversation remembers who had it last).
func (m *Machine) unhold(c *Conversation, newState State, keepAgent bool) {
	if held(c) {
		m.heldStat(c, -1)
		a := m.agentW(c.AgentID)
		c.State = newState // no longer held: recount drops the load
		m.recount(c)
		c.Exempt = false
		a.Conversations = withoutString(a.Conversations, c.ID)
		m.disarm(c, timerOffer)
		m.disarm(c, timerWrapUp)
	}
	c.State = newState
	if !keepAgent {
		c.AgentID = ""
	}
}

// --- queue ------------------------------------------------------------------

func qkey(c *Conversation) queueKey {
	return queueKey{Priority: c.Priority, QueuedAt: c.QueuedAt, Seq: c.Seq, ID: c.ID}
}

// enqueue puts c (not held) in the queue, keeping its eligibility time. A
// messaging conversation back in the queue is nobody's turn any more: its
// inactivity clock runs again.
func (m *Machine) enqueue(c *Conversation) {
	c.State = StateQueued
	c.AgentID = ""
	if c.Channel == capacity.Messaging && c.Activity == ActivityActive && c.deadlines[timerInactivity] == 0 {
		c.AwaitAgent = false
		m.arm(c, timerInactivity, ms(m.policy.Messaging.InactivityTimeout))
	}
	m.queueInsert(c)
	m.match.conversation(c.ID)
}

func (m *Machine) dequeue(c *Conversation) {
	if c.State == StateQueued {
		m.queueDelete(c)
	}
}

// requeue takes c from its agent (if any) and puts it back in the queue with
// its original eligibility time.
func (m *Machine) requeue(c *Conversation, reason string) {
	agent := c.AgentID
	m.unhold(c, StateQueued, false)
	if c.TransferTarget != "" && c.TransferTarget == agent {
		m.transferDeclined(c, agent)
	}
	m.enqueue(c)
	m.emit(EventRequeued, c.ID, agent, EventData{Reason: reason})
}

// --- timers ------------------------------------------------------------------

func (m *Machine) arm(c *Conversation, t timer, after int64) {
	m.disarm(c, t)
	at := m.now + after
	c.deadlines[t] = at
	m.deadlines.ReplaceOrInsert(deadlineKey{At: at, Owner: ownerConversation, ID: c.ID, Timer: t})
}

func (m *Machine) disarm(c *Conversation, t timer) {
	if at := c.deadlines[t]; at != 0 {
		m.deadlines.Delete(deadlineKey{At: at, Owner: ownerConversation, ID: c.ID, Timer: t})
		c.deadlines[t] = 0
	}
}

func (m *Machine) disarmAll(c *Conversation) {
	for t := range c.deadlines {
		m.disarm(c, timer(t))
	}
}

func (m *Machine) armAgent(a *Agent, after int64) {
	m.disarmAgent(a)
	a.ReassignAt = m.now + after
	m.deadlines.ReplaceOrInsert(deadlineKey{At: a.ReassignAt, Owner: ownerAgent, ID: a.ID})
}

func (m *Machine) disarmAgent(a *Agent) {
	if a.ReassignAt != 0 {
		m.deadlines.Delete(deadlineKey{At: a.ReassignAt, Owner: ownerAgent, ID: a.ID})
		a.ReassignAt = 0
	}
}
