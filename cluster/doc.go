// Package cluster replicates the routing state machine across a small
// hashicorp/raft cluster (three nodes in production, one for development).
// It owns the node and its raft wiring: the FSM and its snapshots, the
// transport (TCP or TLS), membership, the leader's clock and ticker, the
// batcher that cuts log entries, and read consistency. Two packages beside
// it own the rest: cluster/forward the protocol that carries a follower's
// writes to the leader, cluster/storage the node's disk (log and stable
// store, data-directory lock, when to snapshot). It
// imports no HTTP framework: Node.Handler is a plain http.Handler the API
// layer mounts. Package cluster/webhook delivers events to webhook
// subscriptions while the node leads (LeaderTerm, VerifyLeader).
//
// # Log entries
//
// Every raft log entry is an envelope: one type byte, one version byte, then
// the payload, written by hand with internal/wire (no reflection). Types
// 1..15 are routing.Kind values and carry the leader's time `at`, the
// client's idempotency key and the command's fields; cluster entries use
// types from 100 (register a node's addresses, restore a backup, a batch of
// entries, forget a node). Types and fields are only appended. An entry the
// running binary cannot decode stops the process (panic) rather than letting
// its replica diverge: run the newer binary.
//
// # Leader clock and timers
//
// Only the leader reads the wall clock: it stamps `at` into every command
// when it proposes it (a follower forwards commands unstamped). On gaining
// leadership it waits for a raft Barrier, registers its own addresses, and
// then proposes a routing.Tick whenever the machine's NextDeadline is due
// (it looks at least every 100 ms). A deadline that passed while there was
// no leader fires once, on the new leader, with its first tick.
//
// # Writes from any node
//
// Propose works on every node. A follower writes the encoded command on
// its forward stream to the leader (package cluster/forward; the leader's
// HTTP address is in the replicated node registry) and gets the Outcome
// back in binary; *routing.Error keeps its class, so errors.Is(err,
// routing.ErrNotFound) works on the far side. Nothing is redirected.
// Without a known leader a request waits up to Config.NoLeaderWait and
// then fails with ErrNoLeader. On the leader, a forwarded command joins
// the batcher's queue the moment it is read.
//
// # Batching
//
// On the leader, concurrent proposals are queued for one batcher goroutine.
// While an entry is being committed (until the leader's state machine starts
// to apply it), new proposals accumulate; the next
// entry carries all of them (up to Config.MaxBatch) as one batch envelope,
// which the FSM applies in order, and each caller gets its own Outcome. A
// lone proposer is never delayed. See DESIGN.md for the measurements.
//
// # Ambiguity
//
// Errors before a command reaches the leader's log (not leader, leadership
// transfer, connection refused) are retried internally. After that point a
// failure (leadership lost, timeout, a forward stream that broke: every
// command written on it and not answered) is reported as ErrAmbiguous: the
// command may or may not have committed, and retrying it with the same
// idempotency key is safe because the state machine replays the first
// outcome of a key.
//
// # Membership
//
// A node joins (Join, or by itself through Config.Join) as a nonvoter, after
// the leader checked its id and addresses and that its raft address
// answers; the leader promotes it to voter once it has caught up, so a node
// that never catches up is never needed for a quorum. A node removed from
// the cluster notices it, records it in its data directory, and refuses
// writes and linearizable reads (ErrRemoved) until it is joined again.
// Status reports each member's suffrage and whether it has caught up.
//
// # Reads
//
// Linearizable reads (the default) use a read index: the leader captures its
// commit index, confirms it still leads (VerifyLeader), and the serving node
// (the leader itself, or a follower that asked the leader for the index over
// HTTP) waits until its state has applied that index before running the read
// locally. A leader serves read indexes only after its term-start barrier.
// Stale reads run on the local state at once.
//
// # Snapshots
//
// FSM.Snapshot clones the machine in O(1) under the lock (copy-on-write);
// Persist serializes the clone while applies continue. The snapshot is a
// small versioned header (applied index, node registry in id order) followed
// by the routing snapshot. Restore builds a fresh machine and swaps it in.
package cluster
