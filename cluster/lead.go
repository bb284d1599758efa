package cluster

import (
	"errors"
	"fmt"

	"github.com/hashicorp/raft"
)

// ErrNotLeading: this node does not lead in the term asked about.
var ErrNotLeading = errors.New("cluster: not the leader in this term")

// LeaderTerm returns the term in which this node leads and is ready (its
// term-start barrier passed, so its state reflects every entry of earlier
// terms), or 0 when it does not lead. Work only the leader may do (webhook
// delivery) runs while it returns the same term.
func (n *Node) LeaderTerm() uint64 {
	t := n.readyTerm.Load()
	if t == 0 || n.stopped.Load() || n.raft.State() != raft.Leader || n.raft.CurrentTerm() != t {
		return 0
	}
	return t
}

// VerifyLeader confirms with a quorum that this node still leads in term
// (one heartbeat round). Once it returns nil, no other node can become
// leader before the followers' heartbeat timeout has run from the moment
// it was called.
func (n *Node) VerifyLeader(term uint64) error {
	if n.LeaderTerm() != term {
		return ErrNotLeading
	}
	if err := n.raft.VerifyLeader().Error(); err != nil {
		return fmt.Errorf("%w: %w", ErrNotLeading, err)
	}
	if n.LeaderTerm() != term {
		return ErrNotLeading
	}
	return nil
}
