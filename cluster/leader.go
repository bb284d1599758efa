package cluster

import (
	"context"
	"time"

	"github.com/omnirouter/omnirouter/internal/pause"

	"github.com/hashicorp/raft"

	"github.com/omnirouter/omnirouter/routing"
)

// tickCheck is the longest the leader goes without looking at the next
// deadline.
const tickCheck = 100 * time.Millisecond

// leaderLoop runs while this node leads. For each term it waits for a
// Barrier (so the state reflects every entry of earlier terms), registers
// this node's addresses (which also moves the applied index past raft's
// no-op), marks itself ready for linearizable reads, then proposes a Tick
// whenever the earliest deadline is due.
func (n *Node) leaderLoop(ctx context.Context) {
	for ctx.Err() == nil {
		term := n.raft.CurrentTerm()
		if !n.leaderStart(ctx) {
			return
		}
		n.readyTerm.Store(term)
		n.log.Info("leader ready", "term", term)
		n.runTicker(ctx, term)
	}
}

// leaderStart does the barrier and the self-registration (and proposes its
// event limits when the state holds others), retrying until they succeed or
// leadership ends.
func (n *Node) leaderStart(ctx context.Context) bool {
	for backoff := 50 * time.Millisecond; ; backoff = min(2*backoff, time.Second) {
		if ctx.Err() != nil || n.raft.State() != raft.Leader {
			return false
		}
		err := n.raft.Barrier(n.cfg.ApplyTimeout).Error()
		if err == nil {
			pctx, cancel := context.WithTimeout(ctx, n.cfg.ApplyTimeout)
			_, _, err = n.proposeLocal(pctx, entry{typ: typeRegister, node: n.selfInfo()})
			if err == nil {
				err = n.proposeEventLimits(pctx)
			}
			cancel()
			if err == nil {
				return true
			}
		}
		n.log.Warn("leader start: barrier or registration failed", "err", err)
		if !pause.For(ctx, backoff) {
			return false
		}
	}
}

// runTicker proposes a Tick as soon as the earliest deadline is due, until
// leadership or the term ends.
func (n *Node) runTicker(ctx context.Context, term uint64) {
	t := time.NewTimer(0)
	defer t.Stop()
	var lastTick int64 // leader time of the last successful tick
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if n.raft.State() != raft.Leader || n.raft.CurrentTerm() != term {
			return
		}
		n.fsm.mu.RLock()
		due, ok := n.fsm.m.NextDeadline()
		n.fsm.mu.RUnlock()
		now := time.Now().UnixMilli()
		wait := tickCheck
		if ok && due <= now {
			pctx, cancel := context.WithTimeout(ctx, n.cfg.ApplyTimeout)
			_, _, err := n.proposeLocal(pctx, commandEntry(0, "", routing.Tick{}))
			cancel()
			switch {
			case err != nil:
				if ctx.Err() == nil {
					n.log.Warn("tick failed", "err", err)
				}
			case due <= lastTick:
				// A tick already covered this deadline and it is still
				// armed: do not spin on it (look again at the usual pace).
			default:
				wait = 5 * time.Millisecond // look again at once
			}
			if err == nil {
				lastTick = now
			}
		} else if ok {
			wait = min(wait, time.Duration(due-now)*time.Millisecond)
		}
		t.Reset(wait)
	}
}

// proposeEventLimits makes the state's event limits this node's, if they
// differ.
func (n *Node) proposeEventLimits(ctx context.Context) error {
	n.fsm.mu.RLock()
	current := n.fsm.m.EventLimits()
	n.fsm.mu.RUnlock()
	if current == n.cfg.EventLimits {
		return nil
	}
	res, _, err := n.proposeLocal(ctx, commandEntry(0, "", routing.SetEventLimits{Limits: n.cfg.EventLimits}))
	if err != nil {
		return err
	}
	if res.out.Err != nil {
		return res.out.Err // Open checked them: not expected
	}
	n.log.Info("event limits set", "count", n.cfg.EventLimits.Count, "bytes", n.cfg.EventLimits.Bytes)
	return nil
}
