package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/hashicorp/raft"

	"github.com/omnirouter/omnirouter/routing"
)

// Status is a node's view of the cluster (GET /v1/cluster).
type Status struct {
	ID    string
	State string // "Leader", "Follower", "Candidate", "Shutdown"
	// Removed: this node knows it was removed from the cluster; it refuses
	// writes and linearizable reads (ErrRemoved).
	Removed       bool
	LeaderID      string
	LeaderHTTP    string
	Term          uint64
	CommitIndex   uint64
	AppliedIndex  uint64 // of the local state machine
	LastLogIndex  uint64
	Nodes         []NodeInfo // the raft configuration, by id, with HTTP addresses
	LeaderChanges uint64     // leader changes this node observed since it started
	Stats         Stats
}

// Stats are cheap counters for metrics.
type Stats struct {
	// Entries and Commands count log entries this node proposed as leader
	// and the commands they carried (Commands/Entries is the batching gain).
	Entries  uint64
	Commands uint64
	// Forwarded counts writes this node forwarded to a leader, and
	// ForwardRequests the stream writes that carried them
	// (Forwarded/ForwardRequests is the forwarder's batching gain).
	Forwarded       uint64
	ForwardRequests uint64
	// ForwardStreams is the number of open forward streams to leaders (1
	// on a follower that forwards).
	ForwardStreams int
	// SnapshotRestores counts raft snapshots installed into the state.
	SnapshotRestores uint64
	// LastSnapshotBytes and LastSnapshotIndex describe the last snapshot
	// this node wrote or installed (0: none yet).
	LastSnapshotBytes uint64
	LastSnapshotIndex uint64
}

// Status reports this node's view of the cluster.
func (n *Node) Status() Status {
	s := Status{
		ID:            n.id,
		State:         n.raft.State().String(),
		Term:          n.raft.CurrentTerm(),
		CommitIndex:   n.raft.CommitIndex(),
		AppliedIndex:  n.fsm.applied.Load(),
		LastLogIndex:  n.raft.LastIndex(),
		LeaderChanges: n.leaderChanges.Load(),
		Removed:       n.removed.Load(),
		Stats: Stats{
			Entries:          n.stats.entries.Load(),
			Commands:         n.stats.commands.Load(),
			Forwarded:        n.stats.forwarded.Load(),
			ForwardRequests:  n.fwd.Writes(),
			ForwardStreams:   n.fwd.Streams(),
			SnapshotRestores: n.fsm.restores.Load(),
		},
	}
	s.Stats.LastSnapshotIndex, _, s.Stats.LastSnapshotBytes = n.fsm.snaps.Last()
	s.LeaderID, s.LeaderHTTP = n.leaderHTTP()
	if cfg, err := n.configuration(); err == nil {
		for _, srv := range cfg.Servers {
			ni := NodeInfo{ID: string(srv.ID), RaftAddr: string(srv.Address),
				Voter: srv.Suffrage == raft.Voter, Leader: string(srv.ID) == s.LeaderID,
				Suffrage: strings.ToLower(srv.Suffrage.String()), CaughtUp: n.caughtUp(string(srv.ID))}
			if reg, ok := n.fsm.node(ni.ID); ok {
				ni.HTTPAddr = reg.HTTPAddr
			}
			s.Nodes = append(s.Nodes, ni)
		}
	}
	return s
}

// Ready reports whether this node can serve: a leader is known (and, on the
// leader, its term-start barrier passed), and the local state has applied
// what this node knows to be committed.
func (n *Node) Ready() error {
	if n.stopped.Load() {
		return ErrShutdown
	}
	if n.removed.Load() {
		return ErrRemoved
	}
	lid, addr := n.leaderHTTP()
	if lid == "" {
		return ErrNoLeader
	}
	if lid == n.id {
		if n.raft.State() != raft.Leader || n.readyTerm.Load() != n.raft.CurrentTerm() {
			return errors.New("cluster: leader is not ready yet")
		}
		return nil
	}
	if addr == "" {
		return fmt.Errorf("cluster: leader %s has no known HTTP address yet", lid)
	}
	if since := time.Since(n.raft.LastContact()); since > 5*n.cfg.HeartbeatTimeout {
		return fmt.Errorf("cluster: no contact with the leader for %v", since.Round(time.Millisecond))
	}
	commit := n.raft.CommitIndex()
	if n.fsm.applied.Load() < commit && n.raft.AppliedIndex() < commit {
		return fmt.Errorf("cluster: applying the log (%d of %d)", n.fsm.applied.Load(), commit)
	}
	return nil
}

// Snapshot forces a raft snapshot now (tests, operators).
func (n *Node) Snapshot() error {
	err := n.raft.Snapshot().Error()
	if errors.Is(err, raft.ErrNothingNewToSnapshot) {
		return nil
	}
	return err
}

// Backup writes a consistent snapshot of the whole routing state (the
// format of routing.WriteSnapshot), as of a linearizable read. Serializing
// happens outside the lock on an O(1) clone.
func (n *Node) Backup(ctx context.Context, w io.Writer) error {
	if err := n.Barrier(ctx); err != nil {
		return err
	}
	n.fsm.mu.Lock() // Clone writes the copy-on-write token
	c := n.fsm.m.Clone()
	n.fsm.mu.Unlock()
	return c.WriteSnapshot(w)
}

// RestoreBackup replaces the routing state on every node by a backup taken
// with Backup. The backup is checked here first, so a bad file is refused
// (ErrBadBackup) before it reaches the log. The node registry is kept.
func (n *Node) RestoreBackup(ctx context.Context, r io.Reader) error {
	data, err := io.ReadAll(io.LimitReader(r, maxBody))
	if err != nil {
		return fmt.Errorf("cluster: read backup: %w", err)
	}
	m, err := routing.ReadSnapshot(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadBackup, err)
	}
	if err := m.CheckInvariants(); err != nil {
		return fmt.Errorf("%w: %w", ErrBadBackup, err)
	}
	res, _, _, err := n.propose(ctx, entry{typ: typeRestore, data: data})
	if err != nil {
		return err
	}
	return res.err
}
