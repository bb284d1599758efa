package cluster

import (
	"fmt"
	"testing"
	"time"

	"github.com/omnirouter/omnirouter/internal/testutil"
)

func TestSnapshotRule(t *testing.T) {
	var w snapshotWatch
	w.applied(1000)
	if w.due(3, 4, 1) {
		t.Error("due after 3 entries with a threshold of 4")
	}
	if !w.due(4, 4, 1) {
		t.Error("first snapshot not due after the threshold (no size to compare with yet)")
	}
	w.taken(4, w.position(), 5000) // a 5000-byte snapshot at index 4
	w.applied(4999)
	if w.due(100, 4, 1) {
		t.Error("due with 4999 log bytes since a 5000-byte snapshot at ratio 1")
	}
	if !w.due(100, 4, 0.5) {
		t.Error("not due with 4999 log bytes since a 5000-byte snapshot at ratio 0.5")
	}
	if !w.due(100, 4, -1) {
		t.Error("size condition off, yet not due after 96 entries")
	}
	w.applied(1)
	if !w.due(100, 4, 1) {
		t.Error("not due with 5000 log bytes since a 5000-byte snapshot at ratio 1")
	}
	if w.due(7, 4, 1) {
		t.Error("due after 3 entries since the last snapshot")
	}
	w.taken(2, 0, 1) // an older snapshot finishing late changes nothing
	if w.index != 4 || w.size != 5000 {
		t.Errorf("a late older snapshot replaced the record: index %d size %d", w.index, w.size)
	}
}

func (w *snapshotWatch) last() (index, mark, size uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.index, w.mark, w.size
}

// TestSnapshotsFollowLogVolume: past the first snapshot, a node snapshots
// again only once the log written since is at least ratio × the last
// snapshot's size, however many entries that takes; with the size
// condition off, the entry count alone decides.
func TestSnapshotsFollowLogVolume(t *testing.T) {
	routingReady(t)
	for _, tc := range []struct {
		name  string
		ratio float64
	}{{"ratio 1", 1}, {"ratio 3", 3}, {"entries only", -1}} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t, clusterOpts{n: 1, inmem: true, tweak: func(cfg *Config) {
				cfg.SnapshotThreshold = 4
				cfg.SnapshotLogRatio = tc.ratio
				cfg.SnapshotInterval = 5 * time.Millisecond
			}})
			n := c.waitLeader(nil)
			watch := &n.node.fsm.snaps
			i := 0
			write := func() {
				propose(t, n, "", agentCmd(i)) // one entry each: sequential
				i++
			}
			for range 40 {
				write()
			}
			var idx1, mark1, size1 uint64
			testutil.Until(t, 10*time.Second, "a first snapshot", func() error {
				if idx1, mark1, size1 = watch.last(); idx1 == 0 {
					return fmt.Errorf("none yet")
				}
				return nil
			})
			var idx2, mark2 uint64
			testutil.Until(t, 20*time.Second, "a second snapshot", func() error {
				if idx2, mark2, _ = watch.last(); idx2 > idx1 {
					return nil
				}
				write()
				return fmt.Errorf("none yet after %d writes", i)
			})
			logged := mark2 - mark1
			if tc.ratio > 0 && float64(logged) < tc.ratio*float64(size1) {
				t.Errorf("second snapshot after %d log bytes; the first was %d bytes and the ratio %v", logged, size1, tc.ratio)
			}
			if idx2-idx1 < 4 {
				t.Errorf("second snapshot %d entries after the first, threshold 4", idx2-idx1)
			}
			t.Logf("first snapshot %d bytes at index %d; second at index %d after %d log bytes", size1, idx1, idx2, logged)
		})
	}
}
