package routing

import (
	"slices"
	"time"
)

// Apply applies one command at the leader's time at (unix ms) and returns
// its outcome. key, when not empty, is the client's idempotency key: a key
// seen before (and not yet expired) returns the first outcome again and
// changes nothing at all; a key reused for a different command is refused.
//
// Apply first moves the clock to max(now, at) and fires every deadline due,
// then runs the command; in auto mode it then matches the queue with agents.
// A refused command leaves the state as the due timers left it.
func (m *Machine) Apply(at int64, key string, cmd Command) Outcome {
	out, _ := m.apply(at, key, cmd, true)
	return out
}

// ApplyCounting is Apply for a caller that only needs to know whether
// events were emitted (the cluster, which wakes event readers; they read
// the event log): the outcome carries no Events, and n is how many were
// emitted. It saves a copy of every emitted event on every replica.
func (m *Machine) ApplyCounting(at int64, key string, cmd Command) (out Outcome, n int) {
	return m.apply(at, key, cmd, false)
}

func (m *Machine) apply(at int64, key string, cmd Command, withEvents bool) (Outcome, int) {
	if key != "" {
		if rec := m.getKey(key); rec != nil && rec.ExpireAt > max(m.now, at) && m.recordLive(rec) {
			if rec.Kind != cmd.Kind() || rec.Target != cmd.target() {
				return Outcome{Err: conflictf(CodeIdempotencyKeyReused, "idempotency key %q was used for a different request", key)}, 0
			}
			return rec.replay(), 0
		}
	}

	firstEvent := m.nextEventID
	m.collectEvents = withEvents
	m.advance(at)
	out := m.run(cmd)
	// Dispatch even after a refusal: the refused command changed nothing,
	// but timers that fired before it may have made a match possible.
	if m.policy.Routing.Mode == ModeAuto {
		m.dispatch()
	}
	m.match.reset()
	m.flushLoadEvents()
	// An ended conversation whose retention is already over (0s, or a
	// shortened retention) goes now, not at the next command.
	m.pruneDue()
	// The entities are read after dispatch, so a created conversation that
	// was offered at once is returned as offered.
	m.refreshOutcome(&out)

	if key != "" {
		m.putKey(newKeyRecord(key, cmd, m.now+m.policy.IdempotencyRetention.Milliseconds(), &out))
	}
	// m.emitted is a scratch buffer kept across applies (growing a fresh
	// slice of ~200-byte events took three allocations for a create); the
	// outcome gets an exact copy. Without events nothing is collected: the
	// ids say how many there were.
	if len(m.emitted) > 0 {
		out.Events = slices.Clone(m.emitted)
		clear(m.emitted)
		m.emitted = m.emitted[:0]
	}
	m.collectEvents = false
	return out, int(m.nextEventID - firstEvent)
}

// run validates and executes one command.
func (m *Machine) run(cmd Command) Outcome {
	if k := cmd.Kind(); k.known() {
		return commandTable[k].apply(m, cmd)
	}
	return Outcome{Err: invalidf(CodeInvalidCommand, "unknown command %T", cmd)}
}

// refreshOutcome points out's entities at their state after the command,
// frozen rather than copied: an item handed out (to the caller, and kept
// in an idempotency record) is never written again, because the next
// command that changes it copies it first (writableConv, writableAgent),
// as it does for an item shared with a snapshot. A create then stores its
// conversation once instead of twice; a command that changes an item
// copies it once either way.
func (m *Machine) refreshOutcome(out *Outcome) {
	if out.Err != nil {
		out.Conversation, out.Agent = nil, nil
		return
	}
	if out.Conversation != nil {
		if c := m.getConv(out.Conversation.ID); c != nil {
			m.freezeConv(c)
			out.Conversation = c
		}
	}
	if out.Agent != nil {
		if a := m.getAgent(out.Agent.ID); a != nil {
			m.freezeAgent(a)
			out.Agent = a
		}
	}
	if out.Assignment != nil {
		if c := m.getConv(out.Assignment.ConversationID); c != nil {
			out.Assignment.State = c.State
		}
	}
}

// advance fires every deadline due by at, and prunes every ended
// conversation whose retention ran out by then, in time order (a pruning
// before a timer due at the same time); then it moves the clock to at and
// drops expired idempotency keys. The clock steps through each deadline as
// it fires, so a timer armed by a firing one (idle, then idle timeout)
// counts from when it should have fired, however late the tick that
// catches up comes.
func (m *Machine) advance(at int64) {
	for {
		d, ok := m.deadlines.Min()
		if p, due := m.nextPrune(); due && p <= at && (!ok || p <= d.At) {
			m.now = max(m.now, p)
			m.prune()
			continue
		}
		if !ok || d.At > at {
			break
		}
		m.deadlines.DeleteMin()
		m.now = max(m.now, d.At)
		m.fire(d)
	}
	m.now = max(m.now, at)
	m.expireKeys()
}

func ms(d time.Duration) int64 { return d.Milliseconds() }
