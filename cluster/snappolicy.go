package cluster

import (
	"errors"
	"io"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/hashicorp/raft"
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
// own trigger is switched off (threshold at the maximum); snapshotLoop asks
// raft for a snapshot when the rule says so.

// snapshotWatch records what the rule needs: the log bytes applied, and the
// index, log-byte mark and size of the last snapshot this node wrote or
// installed. Apply adds bytes from raft's FSM goroutine; Persist and Restore
// record snapshots; snapshotLoop reads.
type snapshotWatch struct {
	mu       sync.Mutex
	logBytes uint64 // bytes of log entries applied since the process started
	index    uint64 // applied index of the last snapshot
	mark     uint64 // logBytes when the last snapshot was taken
	size     uint64 // its size in bytes (0: none yet)
}

func (w *snapshotWatch) applied(n int) {
	w.mu.Lock()
	w.logBytes += uint64(n)
	w.mu.Unlock()
}

// position is the log-byte count now, for a snapshot being cut.
func (w *snapshotWatch) position() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.logBytes
}

// taken records a snapshot of the state at index, cut when the log-byte
// count was mark, size bytes long.
func (w *snapshotWatch) taken(index, mark, size uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if index < w.index {
		return // an older snapshot finished late
	}
	w.index, w.mark, w.size = index, mark, size
}

// due reports whether a node whose state is at appliedIndex should
// snapshot now. ratio <= 0 leaves only the entry count.
func (w *snapshotWatch) due(appliedIndex, minEntries uint64, ratio float64) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if appliedIndex <= w.index || appliedIndex-w.index < minEntries {
		return false
	}
	return ratio <= 0 || float64(w.logBytes-w.mark) >= ratio*float64(w.size)
}

// snapshotLoop checks the rule every SnapshotInterval to twice that (the
// jitter raft's own trigger has: nodes started together would otherwise
// snapshot together, and a snapshot is a burst of CPU on each) and asks raft
// for a snapshot when it holds.
func (n *Node) snapshotLoop() {
	defer n.wg.Done()
	every := n.cfg.SnapshotInterval
	t := time.NewTimer(every + rand.N(every))
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
			t.Reset(every + rand.N(every))
		}
		if !n.fsm.snaps.due(n.fsm.applied.Load(), n.cfg.SnapshotThreshold, n.cfg.SnapshotLogRatio) {
			continue
		}
		err := n.raft.Snapshot().Error()
		if err != nil && !errors.Is(err, raft.ErrNothingNewToSnapshot) && !errors.Is(err, raft.ErrRaftShutdown) {
			n.log.Warn("snapshot failed", "err", err)
		}
	}
}

// countingWriter counts what passes through to w.
type countingWriter struct {
	w io.Writer
	n uint64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += uint64(n)
	return n, err
}

// countingReader counts what is read from r.
type countingReader struct {
	r io.Reader
	n uint64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += uint64(n)
	return n, err
}
