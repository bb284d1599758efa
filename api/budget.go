package api

import (
	"context"
	"sync"
)

// byteBudget bounds the bytes of answers being built or sent at once (event
// pages and streams): a reader takes its answer's bytes before building it
// and gives them back once the answer is written, so that many slow or
// repeated readers wait for each other instead of pinning memory.
type byteBudget struct {
	mu    sync.Mutex
	size  int64
	inUse int64
	freed chan struct{} // closed, and replaced, when bytes are given back
}

func newByteBudget(size int64) *byteBudget {
	return &byteBudget{size: size, freed: make(chan struct{})}
}

// clamp makes a request for more than the whole budget a request for all of
// it: an answer that large is still served, alone.
func (b *byteBudget) clamp(n int64) int64 { return max(0, min(n, b.size)) }

// tryAcquire takes n bytes if they are free now.
func (b *byteBudget) tryAcquire(n int64) bool {
	n = b.clamp(n)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.inUse+n > b.size {
		return false
	}
	b.inUse += n
	return true
}

// acquire takes n bytes, waiting until they are free or ctx ends.
func (b *byteBudget) acquire(ctx context.Context, n int64) error {
	n = b.clamp(n)
	for {
		b.mu.Lock()
		if b.inUse+n <= b.size {
			b.inUse += n
			b.mu.Unlock()
			return nil
		}
		freed := b.freed
		b.mu.Unlock()
		select {
		case <-freed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// release gives back n bytes taken with acquire or tryAcquire.
func (b *byteBudget) release(n int64) {
	n = b.clamp(n)
	if n == 0 {
		return
	}
	b.mu.Lock()
	b.inUse -= n
	close(b.freed)
	b.freed = make(chan struct{})
	b.mu.Unlock()
}

// used is the bytes taken now.
func (b *byteBudget) used() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.inUse
}
