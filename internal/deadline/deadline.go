// Package deadline owns shared, coarse request deadlines: every request that
// starts within the same short window gets the same deadline and the same
// Done channel, closed by one timer for the whole window.
//
// context.WithTimeout costs a timer, a context and a registration with its
// parent per request: at ten thousand writes a second that was 3-5% of a
// node's CPU and one allocation in eight. A request's wait for the cluster
// only needs an upper bound, and a bound a few tens of milliseconds later
// than asked changes nothing for a ten-second timeout.
package deadline

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Shared hands out contexts whose deadline is at least Timeout from now and
// at most Timeout plus Grain.
type Shared struct {
	timeout, grain time.Duration

	mu  sync.Mutex // serializes making a bucket
	cur atomic.Pointer[bucket]
}

// bucket is one window's deadline and the channel closed when it passes.
type bucket struct {
	at   time.Time
	done chan struct{}
}

// New returns deadlines timeout from now, rounded up to grain (which must
// be positive).
func New(timeout, grain time.Duration) *Shared {
	if grain <= 0 {
		panic("deadline: grain must be positive")
	}
	return &Shared{timeout: timeout, grain: grain}
}

// Context returns a context that carries parent's values and ends at the
// shared deadline. Unlike a context.WithTimeout child, it does not end
// when parent is cancelled: a request whose client went away still waits
// for the outcome of what it started (it is in flight either way), and the
// deadline bounds that wait.
func (s *Shared) Context(parent context.Context) context.Context {
	return &sharedCtx{Context: parent, b: s.current()}
}

func (s *Shared) current() *bucket {
	want := time.Now().Add(s.timeout)
	if b := s.cur.Load(); b != nil && !b.at.Before(want) {
		return b
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if b := s.cur.Load(); b != nil && !b.at.Before(want) {
		return b // another request made it meanwhile
	}
	// Rounded up on the wall clock to space the buckets out; want's
	// monotonic reading stays with at, so the timer measures real time.
	g := int64(s.grain)
	at := want.Add(time.Duration((g - want.UnixNano()%g) % g))
	b := &bucket{at: at, done: make(chan struct{})}
	time.AfterFunc(time.Until(at), func() { close(b.done) })
	s.cur.Store(b)
	return b
}

// sharedCtx is a request's view of a bucket.
type sharedCtx struct {
	context.Context // for Value
	b               *bucket
}

func (c *sharedCtx) Deadline() (time.Time, bool) { return c.b.at, true }

func (c *sharedCtx) Done() <-chan struct{} { return c.b.done }

func (c *sharedCtx) Err() error {
	select {
	case <-c.b.done:
		return context.DeadlineExceeded
	default:
		return nil
	}
}

func (c *sharedCtx) String() string { return "deadline.Shared(" + c.b.at.String() + ")" }
