package routing

// eventLog keeps the latest events, oldest first, with contiguous ids, in a
// fifo: appending writes one slot, trimming the oldest moves an offset, and
// a clone copies the chunk pointers (EventRetention / fifoChunkLen of
// them), not the events. (A B-tree of events would shift up to a node's
// worth of ~200-byte events on every append and every trim.)
type eventLog struct {
	q fifo[Event]
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
// oldest events beyond limit.
func (l *eventLog) push(e Event, limit int) {
	l.q.push(e)
	for l.q.Len() > limit {
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

func (l *eventLog) clear() { l.q.clear() }

// clone returns a log with the same events; l stays usable.
func (l *eventLog) clone() eventLog { return eventLog{q: l.q.clone()} }
