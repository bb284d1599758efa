package api

import (
	"context"
	"io"

	"github.com/omnirouter/omnirouter/cluster"
	"github.com/omnirouter/omnirouter/routing"
)

// Cluster is what the API needs from the replicated state machine. It is
// declared here, by its consumer; *cluster.Node implements it and the
// handler tests use a single-process fake.
type Cluster interface {
	// Propose replicates cmd and returns its outcome once applied. key is the
	// caller's idempotency key, already scoped to the caller ("" for none).
	Propose(ctx context.Context, key string, cmd routing.Command) (Result, error)
	// Read runs fn against the state machine at the given level and names the
	// node whose state fn saw.
	Read(ctx context.Context, level ReadLevel, fn func(m *routing.Machine)) (servedBy string, err error)
	// Clone returns a frozen copy of the state at the given level (for a
	// policy preview, which works on a fork of it outside the lock).
	Clone(ctx context.Context, level ReadLevel) (m *routing.Machine, servedBy string, err error)
	// WaitEvents returns nil once the local machine holds an event newer than
	// after, or ctx's error.
	WaitEvents(ctx context.Context, after uint64) error
	// Status is this node's view of the cluster, cheap (metrics read it).
	Status() Status
	// ClusterStatus is Status with every member's CaughtUp as the leader
	// sees it (a follower asks the leader); GET /v1/cluster answers it.
	ClusterStatus(ctx context.Context) Status
	Ready() error
	Remove(ctx context.Context, id string) error
	Backup(ctx context.Context, w io.Writer) error
	RestoreBackup(ctx context.Context, r io.Reader) error
}

// Joiner is implemented by clusters that add members on an operator's
// request (POST /v1/cluster/join); without it the endpoint answers 501.
// Nodes normally join by themselves through --join.
type Joiner interface {
	Join(ctx context.Context, id, raftAddr, httpAddr string) error
}

// The cluster's value types, named here so that handlers read naturally.
type (
	ReadLevel = cluster.ReadLevel
	Result    = cluster.Result
	Status    = cluster.Status
	NodeInfo  = cluster.NodeInfo
)

// Read levels.
const (
	Linearizable = cluster.Linearizable
	Stale        = cluster.Stale
)

// The cluster's errors the API maps (see toAPIError).
var (
	// ErrNoLeader → 503 no_leader with Retry-After.
	ErrNoLeader = cluster.ErrNoLeader
	// ErrAmbiguous → 503 ambiguous: retry with the same Idempotency-Key.
	ErrAmbiguous = cluster.ErrAmbiguous
)
