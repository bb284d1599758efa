package routing

// eventLog keeps the latest events, oldest first, with contiguous ids, in a
// fifo: appending writes one slot, trimming the oldest moves an offset, and
// a clone copies the chunk pointers (one per fifoChunkLen events), not the
// events. (A B-tree of events would shift up to a node's worth of ~200-byte
// events on every append and every trim.)
type eventLog struct {
	q     fifo[Event]
	bytes int64 // EventSize of every event held
}

// EventSize is an event's weight against EventLimits.Bytes: its text and
// identifiers plus a fixed overhead per event and per message, close to
// what it takes in memory and in a snapshot. It depends on the event alone,
// so every replica counts the same.
func EventSize(e *Event) int64 {
	const perEvent, perMessage, perTicket = 96, 48, 48
	n := int64(perEvent + len(e.Type) + len(e.ConversationID) + len(e.AgentID) +
		len(e.Data.Reason) + len(e.Data.Status) + len(e.Data.Previous) + len(e.Data.TargetAgent) + len(e.Data.TargetGroup))
	for i := range e.Data.Transcript {
		n += int64(perMessage + len(e.Data.Transcript[i].AgentID) + len(e.Data.Transcript[i].Text))
	}
	if m := e.Data.Message; m != nil {
		n += int64(perMessage + len(m.AgentID) + len(m.Text))
	}
	if t := e.Data.Ticket; t != nil {
		n += int64(perTicket + len(t.ID) + len(t.Via))
	}
	return n
}

func (l *eventLog) Len() int { return l.q.Len() }

// first returns the oldest event held.
func (l *eventLog) first() (*Event, bool) {
	if l.q.Len() == 0 {
		return nil, false
	}
	return l.q.at(0), true
}

// last returns the newest event held.
func (l *eventLog) last() (*Event, bool) {
	if l.q.Len() == 0 {
		return nil, false
	}
	return l.q.at(l.q.Len() - 1), true
}

// push appends e (whose id must follow the newest event's) and drops the
// oldest events beyond the limits, calling drop (when not nil) on each
// before it goes.
func (l *eventLog) push(e Event, lim EventLimits, drop func(*Event)) {
	l.q.push(e)
	l.bytes += EventSize(&e)
	l.trim(lim, drop)
}

// trim drops the oldest events while either limit is exceeded, keeping the
// newest, calling drop (when not nil) on each before it goes.
func (l *eventLog) trim(lim EventLimits, drop func(*Event)) {
	for l.q.Len() > 1 && (l.q.Len() > lim.Count || l.bytes > lim.Bytes) {
		if drop != nil {
			drop(l.q.at(0))
		}
		l.bytes -= EventSize(l.q.at(0))
		l.q.dropOldest()
	}
}

// ascendFrom calls fn on the events with id >= id, oldest first, until it
// returns false.
func (l *eventLog) ascendFrom(id uint64, fn func(*Event) bool) {
	f, ok := l.first()
	if !ok {
		return
	}
	i := 0
	if id > f.ID {
		if id-f.ID >= uint64(l.q.Len()) {
			return
		}
		i = int(id - f.ID) // ids are contiguous
	}
	l.q.each(i, fn)
}

func (l *eventLog) clear() { *l = eventLog{} }

// clone returns a log with the same events; l stays usable.
func (l *eventLog) clone() eventLog { return eventLog{q: l.q.clone(), bytes: l.bytes} }
