package routing

import (
	"errors"
	"fmt"
	"slices"

	"github.com/google/btree"

	"github.com/omnirouter/omnirouter/capacity"
)

// CheckInvariants verifies the state's internal consistency and returns
// every violation found (nil when sound):
//   - each agent's load equals what its conversations say, and its list of
//     conversations matches who holds what;
//   - a conversation is held by at most one agent;
//   - every queued conversation is in the queue index once, and nothing else;
//   - every armed timer is in the deadline index, and nothing else;
//   - no agent is above capacity except by exempt conversations
//     (reactivation, forced assignment, a lowered limit);
//   - the availability index lists exactly the online agents with spare
//     capacity; key and event indexes are coherent;
//   - every webhook subscription is valid and its cursor lies between the
//     oldest retained event (minus one) and the newest;
//   - in auto mode, no queued conversation has an eligible agent (every
//     match was made in the apply that made it possible).
//
// It reads the whole state: meant for tests, fuzzing and a debug endpoint.
func (m *Machine) CheckInvariants() error {
	var errs []error
	bad := func(format string, args ...any) {
		if len(errs) < 20 {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}

	holders := map[string]string{}
	m.agents.Ascend(func(r agentRef) bool {
		a := r.a
		if !slices.IsSorted(a.Conversations) || len(slices.Compact(slices.Clone(a.Conversations))) != len(a.Conversations) {
			bad("agent %s: conversation list not sorted and unique", a.ID)
		}
		var load, exempt capacity.Load
		for _, id := range a.Conversations {
			if other, dup := holders[id]; dup {
				bad("conversation %s held by both %s and %s", id, other, a.ID)
			}
			holders[id] = a.ID
			c := m.getConv(id)
			if c == nil {
				bad("agent %s lists missing conversation %s", a.ID, id)
				continue
			}
			if !held(c) || c.AgentID != a.ID {
				bad("agent %s lists conversation %s, which is %s with agent %q", a.ID, id, c.State, c.AgentID)
			}
			if c.Counted {
				load[c.Channel]++
				if c.Exempt {
					exempt[c.Channel]++
				}
			}
		}
		for ch := range load {
			if load[ch] != a.Load[ch] {
				bad("agent %s: %s load %d but its conversations count %d", a.ID, capacity.Channel(ch), a.Load[ch], load[ch])
			}
			if a.Load[ch] > a.Capacity[ch]+exempt[ch] {
				bad("agent %s over %s capacity: load %d, limit %d, exempt %d", a.ID, capacity.Channel(ch), a.Load[ch], a.Capacity[ch], exempt[ch])
			}
			want := m.receives(a, capacity.Channel(ch)) && capacity.Spare(a.Capacity, a.Load, capacity.Channel(ch)) > 0
			slot := a.avail[ch]
			if slot.in != want || (want && (slot.key != m.strategyKey(a, capacity.Channel(ch)) || !m.avail[ch].Has(slot.key))) {
				bad("agent %s: availability index wrong on %s", a.ID, capacity.Channel(ch))
			}
		}
		if (a.ReassignAt != 0) != m.deadlines.Has(deadlineKey{At: a.ReassignAt, Owner: ownerAgent, ID: a.ID}) {
			bad("agent %s: reassign timer not indexed", a.ID)
		}
		return true
	})

	queued, armed, ended := 0, 0, 0
	m.agents.Ascend(func(r agentRef) bool {
		a := r.a
		if a.ReassignAt != 0 {
			armed++
		}
		return true
	})
	m.Conversations(func(c *Conversation) bool {
		if held(c) && holders[c.ID] != c.AgentID {
			bad("conversation %s is %s with %s, who does not list it", c.ID, c.State, c.AgentID)
		}
		if !held(c) && holders[c.ID] != "" {
			bad("conversation %s is %s but listed by %s", c.ID, c.State, holders[c.ID])
		}
		if c.Counted != m.shouldCount(c) {
			bad("conversation %s: counted=%v, counting rule says %v", c.ID, c.Counted, !c.Counted)
		}
		if c.Exempt && !c.Counted {
			bad("conversation %s exempt but not counted", c.ID)
		}
		if (c.State == StateEnded || c.State == StateWrapUp) != (c.Activity == ActivityEnded) {
			bad("conversation %s: state %s with activity %s", c.ID, c.State, c.Activity)
		}
		if (c.State == StateWrapUp) != (c.deadlines[timerWrapUp] != 0) {
			bad("conversation %s: state %s, wrap-up timer armed=%v", c.ID, c.State, c.deadlines[timerWrapUp] != 0)
		}
		if want := c.relaxable() && !c.Relaxed && c.State != StateEnded && c.State != StateWrapUp; want != (c.deadlines[timerRelax] != 0) {
			bad("conversation %s: relax timer armed=%v, want %v", c.ID, c.deadlines[timerRelax] != 0, want)
		}
		if c.TransferPending && c.State != StateQueued && c.State != StateOffered {
			bad("conversation %s: a transfer pending in state %s", c.ID, c.State)
		}
		if c.TransferTarget != "" && (!c.TransferPending || c.State != StateOffered || c.AgentID != c.TransferTarget) {
			bad("conversation %s: transfer target %s, but %s with %q", c.ID, c.TransferTarget, c.State, c.AgentID)
		}
		if c.deadlines[timerMaxWait] != 0 && (c.Channel != capacity.Voice || c.Joined || (c.State != StateQueued && c.State != StateOffered)) {
			bad("conversation %s: %s, %s, joined=%v with the queue-wait timer armed", c.ID, c.Channel, c.State, c.Joined)
		}
		if c.State == StateEnded {
			ended++
			if !m.ended.Has(endedKey{At: c.EndedAt, Seq: c.Seq}) {
				bad("ended conversation %s is not in the ended index", c.ID)
			}
			if c.EndedAt+m.policy.Retention.Ended.Milliseconds() < m.now {
				bad("ended conversation %s outlived its retention (ended %d, now %d)", c.ID, c.EndedAt, m.now)
			}
		}
		textBytes := 0
		for i := range c.Transcript {
			textBytes += len(c.Transcript[i].Text)
		}
		if textBytes != c.TranscriptBytes {
			bad("conversation %s: transcript of %d bytes counted as %d", c.ID, textBytes, c.TranscriptBytes)
		}
		if (c.Ticket != nil && c.Ticket.Status == TicketSolved) != (c.deadlines[timerCloseSolved] != 0) {
			bad("conversation %s: ticket %v with the close timer armed=%v", c.ID, c.Ticket, c.deadlines[timerCloseSolved] != 0)
		}
		if c.Ticket != nil && c.Ticket.Status == TicketClosed && c.State != StateEnded {
			bad("conversation %s: ticket closed but the session is %s", c.ID, c.State)
		}
		if c.State == StateQueued {
			queued++
			if !m.queue[c.Channel].Has(qkey(c)) {
				bad("queued conversation %s missing from the queue index", c.ID)
			}
		}
		for t, at := range c.deadlines {
			if at == 0 {
				continue
			}
			armed++
			if !m.deadlines.Has(deadlineKey{At: at, Owner: ownerConversation, ID: c.ID, Timer: timer(t)}) {
				bad("conversation %s: timer %d at %d not in the deadline index", c.ID, t, at)
			}
			if (c.State == StateEnded || c.State == StateWrapUp) && timer(t) != timerCloseSolved && timer(t) != timerWrapUp {
				bad("ended conversation %s has timer %d armed", c.ID, t)
			}
		}
		if (c.State == StateOffered) != (c.deadlines[timerOffer] != 0) {
			bad("conversation %s: state %s but offer timer armed=%v", c.ID, c.State, c.deadlines[timerOffer] != 0)
		}
		return true
	})
	classed := 0
	for ch := range m.classes {
		m.classes[ch].Ascend(func(cl *queueClass) bool {
			classed += cl.queue.Len()
			if cl.queue.Len() == 0 {
				bad("empty queue class %q kept", cl.key)
			}
			if cl.byAge.Len() != cl.queue.Len() {
				bad("queue class %q holds %d conversations by age, %d in routing order", cl.key, cl.byAge.Len(), cl.queue.Len())
			}
			cl.queue.Ascend(func(k queueKey) bool {
				if c := m.getConv(k.ID); c == nil || c.State != StateQueued || classKey(c) != cl.key || qkey(c) != k {
					bad("queue class %q holds %s, which does not belong there", cl.key, k.ID)
				} else if !cl.byAge.Has(ageKey{QueuedAt: c.QueuedAt, Seq: c.Seq}) {
					bad("queue class %q lacks %s by age", cl.key, k.ID)
				}
				return true
			})
			return true
		})
	}
	if classed != queued {
		bad("queue classes hold %d entries for %d queued conversations", classed, queued)
	}
	if queued != m.QueueLen() {
		bad("queue index holds %d entries for %d queued conversations", m.QueueLen(), queued)
	}
	if ended != m.ended.Len() {
		bad("ended index holds %d entries for %d ended conversations", m.ended.Len(), ended)
	}
	if armed != m.deadlines.Len() {
		bad("deadline index holds %d entries for %d armed timers", m.deadlines.Len(), armed)
	}
	availCount := 0
	m.agents.Ascend(func(r agentRef) bool {
		a := r.a
		for _, s := range a.avail {
			if s.in {
				availCount++
			}
		}
		return true
	})
	total := 0
	for ch := range m.avail {
		total += m.avail[ch].Len()
	}
	if total != availCount {
		bad("availability index holds %d entries for %d available agent channels", total, availCount)
	}
	if m.policy.Routing.Mode == ModeAuto {
		for ch := range m.queue {
			m.queue[ch].Ascend(func(k queueKey) bool {
				if c := m.getConv(k.ID); c != nil {
					if a := m.chooseAgent(c); a != nil {
						bad("auto mode: queued conversation %s could go to agent %s", c.ID, a.ID)
					}
				}
				return true
			})
		}
	}
	m.convs.Ascend(func(r convRef) bool {
		if r.seq != r.c.Seq {
			bad("conversation %s is indexed at arrival %d, its own is %d", r.c.ID, r.seq, r.c.Seq)
		}
		return true
	})
	if m.convByID != nil {
		checkMirror(bad, "conversation", m.convByID, m.convs, func(r convRef) (string, *Conversation) { return r.c.ID, r.c })
	}
	if m.agentByID != nil {
		checkMirror(bad, "agent", m.agentByID, m.agents, func(r agentRef) (string, *Agent) { return r.id, r.a })
	}
	m.checkKeys(bad)
	m.checkStats(bad)
	m.checkWebhooks(bad)
	var eventBytes int64
	m.events.q.each(0, func(e *Event) bool {
		eventBytes += EventSize(e)
		return true
	})
	if eventBytes != m.events.bytes {
		bad("event log counts %d bytes, its events weigh %d", m.events.bytes, eventBytes)
	}
	if n := m.events.Len(); n > 1 && (n > m.eventLimits.Count || m.events.bytes > m.eventLimits.Bytes) {
		bad("%d events (%d bytes) retained, limits %d and %d", n, m.events.bytes, m.eventLimits.Count, m.eventLimits.Bytes)
	} else if n > 0 {
		first, _ := m.events.first()
		last, _ := m.events.last()
		if last.ID != m.nextEventID-1 || last.ID-first.ID+1 != uint64(n) {
			bad("event ids not contiguous: %d..%d for %d events, next %d", first.ID, last.ID, n, m.nextEventID)
		}
	}
	return errors.Join(errs...)
}

// checkKeys: a key is stored again only once its record has expired (or
// its conversation was pruned), and
// the lookup map holds each key's latest record.
func (m *Machine) checkKeys(bad func(string, ...any)) {
	latest := make(map[string]*keyRecord, m.keys.Len())
	m.keys.each(0, func(rec **keyRecord) bool {
		if prev := latest[(*rec).Key]; prev != nil && prev.ExpireAt > m.now && m.recordLive(prev) {
			bad("idempotency key %q stored again before its record expired", prev.Key)
		}
		latest[(*rec).Key] = *rec
		return true
	})
	if m.keyByName == nil {
		return
	}
	if len(m.keyByName) != len(latest) {
		bad("key lookup map holds %d, records %d keys", len(m.keyByName), len(latest))
	}
	m.keys.each(0, func(rec **keyRecord) bool { // not the map: its order is random
		if k := (*rec).Key; latest[k] == *rec && m.keyByName[k] != *rec {
			bad("key lookup map is stale for %q", k)
		}
		return true
	})
}

// checkMirror reports a lookup map that does not hold exactly the index's
// entries.
func checkMirror[T any, V comparable](bad func(string, ...any), what string, mirror map[string]V, index *btree.BTreeG[T], entry func(T) (string, V)) {
	if len(mirror) != index.Len() {
		bad("%s lookup map holds %d, index %d", what, len(mirror), index.Len())
	}
	index.Ascend(func(item T) bool {
		if id, v := entry(item); mirror[id] != v {
			bad("%s lookup map is stale for %q", what, id)
		}
		return true
	})
}
