package cluster

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/omnirouter/omnirouter/internal/pause"
)

// eventsWake is how often, at most, event readers waiting for new events
// are woken: every event of the window reaches them in one wake-up.
const eventsWake = 25 * time.Millisecond

// broadcast wakes the readers waiting for new events without making the
// apply path pay for each of them: an apply that emitted events stores the
// newest id and drops a token in a one-slot channel (constant time,
// however many wait); one goroutine closes the channel the readers wait on,
// at most every eventsWake, and puts a new one in its place.
type broadcast struct {
	last   atomic.Uint64 // newest event id applied
	ch     atomic.Pointer[chan struct{}]
	signal chan struct{}
}

func newBroadcast() *broadcast {
	b := &broadcast{signal: make(chan struct{}, 1)}
	ch := make(chan struct{})
	b.ch.Store(&ch)
	return b
}

// publish records the newest event id and asks for a wake-up; called by
// the FSM under its lock.
func (b *broadcast) publish(last uint64) {
	b.last.Store(last)
	select {
	case b.signal <- struct{}{}:
	default: // a wake-up is already due
	}
}

// run wakes the readers until ctx ends.
func (b *broadcast) run(ctx context.Context) {
	for {
		select {
		case <-b.signal:
		case <-ctx.Done():
			return
		}
		next := make(chan struct{})
		close(*b.ch.Swap(&next))
		if !pause.For(ctx, eventsWake) {
			return
		}
	}
}

// wait returns nil once an event newer than after has been applied.
func (b *broadcast) wait(ctx, stop context.Context, after uint64) error {
	for {
		// The channel before the id: a publish after this load of the id
		// closes this channel or a later one.
		ch := *b.ch.Load()
		if b.last.Load() > after {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-stop.Done():
			return ErrShutdown
		}
	}
}
