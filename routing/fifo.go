package routing

import "slices"

// fifoChunkLen is how many values one chunk of a fifo holds.
const fifoChunkLen = 256

// fifo is a queue of values in fixed-size chunks, oldest first: appending
// writes one slot, dropping the oldest moves an offset, and a clone copies
// the chunk pointers (one per fifoChunkLen values), not the values. The
// event log and the idempotency records are kept in one; both only ever
// grow at the back and shrink at the front.
//
// Clones share chunks. A chunk is written only at slots past every sharer's
// end, and only by a queue that owns it: after a clone, both sides copy their
// last chunk before their next append into it.
type fifo[T any] struct {
	chunks [][]T // chunks[0][head] is the oldest value
	head   int   // offset of the oldest value in chunks[0]
	n      int   // values held
	// sharedTail: the last chunk is shared with a clone.
	sharedTail bool
}

func (q *fifo[T]) Len() int { return q.n }

// at returns the i-th oldest value held.
func (q *fifo[T]) at(i int) *T {
	p := q.head + i
	return &q.chunks[p/fifoChunkLen][p%fifoChunkLen]
}

// push appends v.
func (q *fifo[T]) push(v T) {
	p := q.head + q.n
	ci := p / fifoChunkLen
	if ci == len(q.chunks) {
		q.chunks = append(q.chunks, make([]T, fifoChunkLen))
		q.sharedTail = false
	} else if q.sharedTail && ci == len(q.chunks)-1 {
		q.chunks[ci] = slices.Clone(q.chunks[ci])
		q.sharedTail = false
	}
	q.chunks[ci][p%fifoChunkLen] = v
	q.n++
}

// dropOldest removes the oldest value; the queue must not be empty.
func (q *fifo[T]) dropOldest() {
	// The slot is left as it is: a clone may still read it. A chunk is
	// let go as a whole once its last value is dropped.
	q.head++
	q.n--
	if q.head == fifoChunkLen || q.n == 0 {
		q.chunks[0] = nil
		q.chunks = q.chunks[1:]
		q.head = 0
		if q.n == 0 {
			q.chunks, q.sharedTail = nil, false
		}
	}
}

// each calls fn on the values from the i-th oldest on, oldest first, until
// fn returns false.
func (q *fifo[T]) each(i int, fn func(*T) bool) {
	for ; i < q.n; i++ {
		if !fn(q.at(i)) {
			return
		}
	}
}

func (q *fifo[T]) clear() { *q = fifo[T]{} }

// clone returns a queue with the same values; q stays usable.
func (q *fifo[T]) clone() fifo[T] {
	if q.n == 0 {
		return fifo[T]{}
	}
	q.sharedTail = true
	return fifo[T]{chunks: slices.Clone(q.chunks), head: q.head, n: q.n, sharedTail: true}
}
