package cluster

import (
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// raft answers heartbeats on the transport's connection goroutines (a fast
// path beside its main loop), so raft.Shutdown does not wait for them. A
// heartbeat that passed raft's own shutdown check just before Shutdown can
// still write the current term to the stable store after Shutdown returned;
// if the node has closed its stores by then, raft panics ("failed to save
// current term: closed"). CI hit it under the race detector. gatedTransport
// lets Shutdown refuse new heartbeats and wait for those in flight before
// the stores close.

// heartbeatGate counts heartbeat handlers in flight and, once drained,
// refuses new ones.
type heartbeatGate struct {
	mu       sync.Mutex
	closed   bool
	inflight sync.WaitGroup
}

// wrap returns fn behind the gate.
func (g *heartbeatGate) wrap(fn func(raft.RPC)) func(raft.RPC) {
	return func(rpc raft.RPC) {
		g.mu.Lock()
		if g.closed {
			g.mu.Unlock()
			rpc.Respond(nil, raft.ErrTransportShutdown)
			return
		}
		g.inflight.Add(1)
		g.mu.Unlock()
		defer g.inflight.Done()
		fn(rpc)
	}
}

// drain refuses heartbeats from now on and waits up to timeout for those in
// flight; it reports whether they all finished. (A heartbeat does not block
// inside raft: the bound only keeps a bug there from hanging shutdown.)
func (g *heartbeatGate) drain(timeout time.Duration) bool {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	done := make(chan struct{})
	go func() {
		g.inflight.Wait()
		close(done)
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

// refusing reports whether drain has begun.
func (g *heartbeatGate) refusing() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.closed
}

// gatedTransport is raft's TCP transport with its heartbeat handler behind
// a gate. Embedding the pointer keeps every method, and so every optional
// interface raft looks for (WithClose, WithPreVote).
type gatedTransport struct {
	*raft.NetworkTransport
	gate heartbeatGate
}

func (t *gatedTransport) SetHeartbeatHandler(fn func(raft.RPC)) {
	if fn != nil {
		fn = t.gate.wrap(fn)
	}
	t.NetworkTransport.SetHeartbeatHandler(fn)
}
