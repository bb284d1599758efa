package cluster

import (
	"fmt"
	"testing"
	"time"

	"github.com/omnirouter/omnirouter/internal/testutil"
)

// TestSnapshotsFollowLogVolume: past the first snapshot, a node snapshots
// again only once the log written since is at least ratio × the last
// snapshot's size, however many entries that takes; with the size
// condition off, the entry count alone decides.
func TestSnapshotsFollowLogVolume(t *testing.T) {
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
				if idx1, mark1, size1 = watch.Last(); idx1 == 0 {
					return fmt.Errorf("none yet")
				}
				return nil
			})
			var idx2, mark2 uint64
			testutil.Until(t, 20*time.Second, "a second snapshot", func() error {
				if idx2, mark2, _ = watch.Last(); idx2 > idx1 {
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
