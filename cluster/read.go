package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"github.com/omnirouter/omnirouter/routing"
)

// ReadLevel is a read's consistency.
type ReadLevel uint8

const (
	// Linearizable reads see every write acknowledged before they started,
	// on any node (read index: the leader confirms its leadership and names
	// its commit index; the serving node waits until it has applied it).
	Linearizable ReadLevel = iota
	// Stale reads run on the local state at once; they may miss recent
	// writes and work without a leader.
	Stale
)

func (l ReadLevel) String() string {
	if l == Stale {
		return "stale"
	}
	return "linearizable"
}

// Read runs fn on this node's state machine under a read lock, at the given
// consistency, and returns this node's id. fn must not keep the machine or
// modify it. A removed node serves stale reads of its last state only
// (linearizable ones fail with ErrRemoved).
func (n *Node) Read(ctx context.Context, level ReadLevel, fn func(m *routing.Machine)) (servedBy string, err error) {
	if level != Stale {
		if err := n.Barrier(ctx); err != nil {
			return "", err
		}
	}
	n.fsm.mu.RLock()
	defer n.fsm.mu.RUnlock()
	fn(n.fsm.m)
	return n.id, nil
}

// Clone returns a frozen copy of this node's state at the given
// consistency, and this node's id. The copy is taken in O(1) under the
// lock and may then be read, or forked (routing.Machine.PreviewPolicy),
// for as long as the caller likes while applies go on.
func (n *Node) Clone(ctx context.Context, level ReadLevel) (*routing.Machine, string, error) {
	if level != Stale {
		if err := n.Barrier(ctx); err != nil {
			return nil, "", err
		}
	}
	n.fsm.mu.Lock() // Clone writes the machine's copy-on-write token
	m := n.fsm.m.Clone()
	n.fsm.mu.Unlock()
	return m, n.id, nil
}

// Barrier returns once this node's state reflects every write committed
// before the call (the read-index protocol, without running anything).
func (n *Node) Barrier(ctx context.Context) error {
	ctx, cancel := n.withApplyTimeout(ctx)
	defer cancel()
	idx, err := n.readIndex(ctx)
	if err != nil {
		return err
	}
	return n.waitApplied(ctx, idx)
}

// readIndex gets a read index from the leader (this node or over HTTP),
// waiting up to NoLeaderWait for a leader.
func (n *Node) readIndex(ctx context.Context) (uint64, error) {
	giveUp := time.Now().Add(n.cfg.NoLeaderWait)
	for {
		if n.stopped.Load() {
			return 0, ErrShutdown
		}
		if n.removed.Load() {
			return 0, ErrRemoved
		}
		var (
			idx uint64
			err error
		)
		if n.raft.State() == raft.Leader {
			idx, err = n.readIndexLocal()
		} else if lid, addr := n.leaderHTTP(); addr == "" || lid == n.id {
			err = retryable(ErrNoLeader)
		} else {
			idx, err = n.readIndexFromLeader(ctx, addr)
		}
		if err == nil {
			return idx, nil
		}
		if perr := n.pause(ctx, giveUp); perr != nil {
			if errors.Is(perr, ErrShutdown) {
				return 0, ErrShutdown
			}
			return 0, fmt.Errorf("%w (last attempt: %v)", ErrNoLeader, err)
		}
	}
}

// WaitEvents returns nil as soon as the local state holds an event with an
// id greater than after, or ctx's error. Waiting costs the apply path
// nothing per waiter (broadcast).
func (n *Node) WaitEvents(ctx context.Context, after uint64) error {
	return n.fsm.events.wait(ctx, n.ctx, after)
}
