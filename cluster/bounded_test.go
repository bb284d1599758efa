package cluster

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/omnirouter/omnirouter/capacity"
	"github.com/omnirouter/omnirouter/internal/testutil"
	"github.com/omnirouter/omnirouter/routing"
)

// sizesOf reads a node's state sizes.
func sizesOf(tn *testNode) routing.Sizes {
	var s routing.Sizes
	tn.node.Read(context.Background(), Stale, func(m *routing.Machine) { s = m.Sizes() })
	return s
}

// TestPruningAfterSnapshotInstall: a follower that catches up by
// installing a snapshot prunes the same ended conversations at the same
// times as the others: every node ends with none, and identical states.
func TestPruningAfterSnapshotInstall(t *testing.T) {
	c := newCluster(t, clusterOpts{n: 3, inmem: true, tweak: func(cfg *Config) {
		cfg.LogStore = LogStoreBolt
		cfg.SnapshotThreshold = 16
		cfg.TrailingLogs = 4
		cfg.SnapshotInterval = 50 * time.Millisecond
	}})
	leader := c.waitLeader(nil)
	propose(t, leader, "", routing.SetPolicy{Patch: routing.MustPatch("retention.ended", "3s")})
	lag := c.follower(leader)
	c.partition(lag)
	for i := range 40 {
		id := fmt.Sprintf("c%d", i)
		propose(t, leader, "", routing.CreateConversation{ID: id, Channel: capacity.Chat, Message: "hello"})
		propose(t, leader, "", routing.End{ConversationID: id, By: routing.EndedByVisitor})
	}
	if err := leader.node.Snapshot(); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		propose(t, leader, "", agentCmd(i))
	}
	if err := leader.node.Snapshot(); err != nil {
		t.Fatal(err)
	}
	if n := sizesOf(leader).Ended; n == 0 {
		t.Fatal("nothing ended to prune")
	}
	c.heal()
	testutil.Until(t, 20*time.Second, "the follower to install a snapshot", func() error {
		if lag.node.fsm.restores.Load() == 0 {
			return fmt.Errorf("no restore yet (applied %d)", lag.node.fsm.applied.Load())
		}
		return nil
	})
	if n := sizesOf(lag).Ended; n == 0 {
		t.Fatal("the installed snapshot held no ended conversation: the pruning would not be tested")
	}
	// The leader's ticker prunes as the retention runs out.
	testutil.Until(t, 20*time.Second, "every node to prune every ended conversation", func() error {
		for _, tn := range c.live() {
			if s := sizesOf(tn); s.Ended != 0 || s.Conversations != 0 {
				return fmt.Errorf("%s holds %d conversations, %d ended", tn.cfg.NodeID, s.Conversations, s.Ended)
			}
		}
		return nil
	})
	c.checkConverged()
}

// TestLeaderSetsEventLimits: the state takes the leader's configured event
// limits when it gains leadership, so every replica trims the same events.
func TestLeaderSetsEventLimits(t *testing.T) {
	limits := routing.EventLimits{Count: 25, Bytes: 1 << 20}
	c := newCluster(t, clusterOpts{n: 3, inmem: true, tweak: func(cfg *Config) { cfg.EventLimits = limits }})
	leader := c.waitLeader(nil)
	for i := range 40 {
		propose(t, c.follower(leader), "", agentCmd(i))
	}
	testutil.Until(t, 10*time.Second, "every node at the leader's limits", func() error {
		for _, tn := range c.live() {
			var got routing.EventLimits
			tn.node.Read(context.Background(), Stale, func(m *routing.Machine) { got = m.EventLimits() })
			if s := sizesOf(tn); got != limits || s.Events != limits.Count {
				return fmt.Errorf("%s: limits %+v, %d events", tn.cfg.NodeID, got, s.Events)
			}
		}
		return nil
	})
	c.checkConverged()
	if _, err := Open(Config{NodeID: "x", DataDir: t.TempDir(), EventLimits: routing.EventLimits{Count: -1}}); err == nil {
		t.Fatal("a node opened with a negative event count")
	}
}
