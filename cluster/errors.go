package cluster

import (
	"errors"
	"fmt"

	"github.com/hashicorp/raft"

	"github.com/omnirouter/omnirouter/cluster/forward"
	"github.com/omnirouter/omnirouter/cluster/storage"
)

// Sentinel errors. The API layer maps them with errors.Is.
var (
	// ErrNoLeader: no leader is known (an election is in progress or a
	// majority is down) after a short wait. The request was not applied and
	// may be retried; the API answers 503 with Retry-After.
	ErrNoLeader = errors.New("cluster: no leader")
	// ErrAmbiguous: the write may or may not have committed (leadership was
	// lost after the command entered the log, the wait timed out, or a
	// forwarded request lost its response). Retrying with the same
	// idempotency key is safe: it is applied at most once.
	ErrAmbiguous = forward.ErrAmbiguous
	// ErrShutdown: the node is shutting down or shut down.
	ErrShutdown = errors.New("cluster: node is shut down")
	// ErrUnknownNode is returned by Remove for a node not in the cluster.
	ErrUnknownNode = errors.New("cluster: unknown node")
	// ErrRemoved: this node was removed from the cluster (Remove). It
	// refuses writes and linearizable reads until an operator adds it back
	// (Join); stale reads still see its last state. Not retryable here.
	ErrRemoved = errors.New("cluster: this node was removed from the cluster")
	// ErrRaftUnreachable is returned by Join when the new node's raft
	// address does not answer (a TCP connection, with TLS a handshake)
	// within RaftReachTimeout: nothing was changed.
	ErrRaftUnreachable = errors.New("cluster: raft address unreachable")
	// ErrInvalidJoin is returned by Join for a request that could only hurt
	// the cluster: a malformed address, or the raft address of another
	// member that the new node does not prove to own. Nothing was changed.
	ErrInvalidJoin = errors.New("cluster: invalid join")
	// ErrBadBackup: a backup given to RestoreBackup is not a valid state
	// snapshot; nothing was proposed.
	ErrBadBackup = errors.New("cluster: invalid backup")
	// ErrDataDirInUse is returned by Open when another process (or another
	// Node in this one) already runs on the data directory.
	ErrDataDirInUse = storage.ErrDataDirInUse
	// ErrLogStoreMismatch is returned by Open when the data directory
	// already holds raft state in a log store other than the one
	// configured: a node never silently starts with an empty log beside
	// its real one.
	ErrLogStoreMismatch = storage.ErrLogStoreMismatch
)

// errRetry marks a failure that happened before the command reached any log:
// Propose tries again (through the new leader) until its budget runs out.
var errRetry = forward.ErrRetry

// retryable wraps err so that it is retried.
func retryable(err error) error { return fmt.Errorf("%w: %w", errRetry, err) }

// ambiguous wraps err as ErrAmbiguous.
func ambiguous(err error) error { return fmt.Errorf("%w: %w", ErrAmbiguous, err) }

// classifyApplyErr maps an error of a raft ApplyFuture: not leader, a
// leadership transfer or an enqueue timeout happen before the entry is in the
// log and are retried; everything else after enqueue (leadership lost,
// shutdown) is ambiguous.
func classifyApplyErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrNotLeader),
		errors.Is(err, raft.ErrLeadershipTransferInProgress),
		errors.Is(err, raft.ErrEnqueueTimeout):
		return retryable(err)
	case errors.Is(err, raft.ErrLeadershipLost),
		errors.Is(err, raft.ErrRaftShutdown),
		errors.Is(err, raft.ErrAbortedByRestore):
		return ambiguous(err)
	default:
		return ambiguous(err)
	}
}

// Log store kinds (Config.LogStore).
const (
	LogStoreWAL  = storage.WAL
	LogStoreBolt = storage.Bolt
)
