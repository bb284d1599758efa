package routing

import "slices"

// eventChunkLen is how many events one chunk of the log holds.
const eventChunkLen = 256

type eventChunk [eventChunkLen]Event

// eventLog keeps the latest events, oldest first, with contiguous ids. It is
// a queue of fixed-size chunks: appending writes one slot, trimming the
// oldest moves an offset, and a clone copies the chunk pointers (EventRetention
// / eventChunkLen of them), not the events. (A B-tree of events, as before,
// shifted up to a node's worth of ~200-byte events on every append and every
// trim: the largest part of applying a create.)
//
// Clones share chunks. A chunk is written only at slots past every sharer's
// end, and only by a log that owns it: after a clone, both sides copy their
// last chunk before their next append into it.
type eventLog struct {
	chunks []*eventChunk // chunks[0][head] is the oldest event
	head   int           // offset of the oldest event in chunks[0]
	n      int           // events held
	// sharedTail: the last chunk is shared with a clone.
	sharedTail bool
}

func (l *eventLog) Len() int { return l.n }

// at returns the i-th oldest event held.
func (l *eventLog) at(i int) *Event {
	p := l.head + i
	return &l.chunks[p/eventChunkLen][p%eventChunkLen]
}

// first returns the oldest event held.
func (l *eventLog) first() (*Event, bool) {
	if l.n == 0 {
		return nil, false
	}
	return l.at(0), true
}

// last returns the newest event held.
func (l *eventLog) last() (*Event, bool) {
	if l.n == 0 {
		return nil, false
	}
	return l.at(l.n - 1), true
}

// push appends e (whose id must follow the newest event's) and drops the
// oldest events beyond limit.
func (l *eventLog) push(e Event, limit int) {
	p := l.head + l.n
	ci := p / eventChunkLen
	if ci == len(l.chunks) {
		l.chunks = append(l.chunks, new(eventChunk))
		l.sharedTail = false
	} else if l.sharedTail && ci == len(l.chunks)-1 {
		cp := *l.chunks[ci]
		l.chunks[ci] = &cp
		l.sharedTail = false
	}
	l.chunks[ci][p%eventChunkLen] = e
	l.n++
	for l.n > limit {
		l.dropOldest()
	}
}

func (l *eventLog) dropOldest() {
	// The slot is left as it is: a clone may still read it.
	l.head++
	l.n--
	if l.head == eventChunkLen || l.n == 0 {
		l.chunks[0] = nil
		l.chunks = l.chunks[1:]
		l.head = 0
		if l.n == 0 {
			l.chunks, l.sharedTail = nil, false
		}
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
		if id-f.ID >= uint64(l.n) {
			return
		}
		i = int(id - f.ID) // ids are contiguous
	}
	for ; i < l.n; i++ {
		if !fn(l.at(i)) {
			return
		}
	}
}

func (l *eventLog) clear() { *l = eventLog{} }

// clone returns a log with the same events; l stays usable.
func (l *eventLog) clone() eventLog {
	if l.n == 0 {
		return eventLog{}
	}
	l.sharedTail = true
	return eventLog{chunks: slices.Clone(l.chunks), head: l.head, n: l.n, sharedTail: true}
}
