package cluster

import (
	"errors"
	"io"
	"math/rand/v2"
	"time"

	"github.com/hashicorp/raft"
)

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
		if !n.fsm.snaps.Due(n.fsm.applied.Load(), n.cfg.SnapshotThreshold, n.cfg.SnapshotLogRatio) {
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
