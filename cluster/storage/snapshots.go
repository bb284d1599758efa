package storage

import (
	"sync"
)

// When a node snapshots.
//
// raft's own rule is a count of log entries (SnapshotThreshold). A snapshot
// here serializes the whole state, so under that rule alone its cost per
// write grows with the state: with 250k conversations a snapshot took ~1.2 s
// of a node's CPU every 8192 entries (~170k batched commands under load),
// and would take minutes per few seconds of writes at millions. The node
// therefore snapshots when both hold:
//   - at least SnapshotThreshold entries were applied since the last
//     snapshot (raft's rule), and
//   - at least SnapshotLogRatio × (the last snapshot's size) bytes of log
//     were applied since then,
//
// so that the bytes written into snapshots stay within 1/ratio of the bytes
// written into the log however large the state grows, and a restart replays
// at most about ratio × (state size) of log on top of its snapshot. raft's
// own trigger is switched off (threshold at the maximum); the node asks raft
// for a snapshot when the rule says so.

// SnapshotWatch records what the rule needs: the log bytes applied, and the
// index, log-byte mark and size of the last snapshot this node wrote or
// installed. It is safe for concurrent use (the FSM adds bytes, snapshot
// persists and restores record snapshots, the node's loop asks Due).
type SnapshotWatch struct {
	mu       sync.Mutex
	logBytes uint64 // bytes of log entries applied since the process started
	index    uint64 // applied index of the last snapshot
	mark     uint64 // logBytes when the last snapshot was taken
	size     uint64 // its size in bytes (0: none yet)
}

// Applied adds n bytes of applied log.
func (w *SnapshotWatch) Applied(n int) {
	w.mu.Lock()
	w.logBytes += uint64(n)
	w.mu.Unlock()
}

// Position is the log-byte count now, for a snapshot being cut.
func (w *SnapshotWatch) Position() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.logBytes
}

// Taken records a snapshot of the state at index, cut when the log-byte
// count was mark, size bytes long.
func (w *SnapshotWatch) Taken(index, mark, size uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if index < w.index {
		return // an older snapshot finished late
	}
	w.index, w.mark, w.size = index, mark, size
}

// Due reports whether a node whose state is at appliedIndex should
// snapshot now. ratio <= 0 leaves only the entry count.
func (w *SnapshotWatch) Due(appliedIndex, minEntries uint64, ratio float64) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if appliedIndex <= w.index || appliedIndex-w.index < minEntries {
		return false
	}
	return ratio <= 0 || float64(w.logBytes-w.mark) >= ratio*float64(w.size)
}

// Last returns the index, log-byte mark and size of the last snapshot.
func (w *SnapshotWatch) Last() (index, mark, size uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.index, w.mark, w.size
}
