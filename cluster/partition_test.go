package cluster

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/omnirouter/omnirouter/internal/testutil"
	"github.com/omnirouter/omnirouter/routing"
)

// TestPartitionMinorityHeals isolates the leader (a minority of one): the
// majority elects a new leader and takes writes, the isolated node refuses
// writes with ErrNoLeader; after healing it converges.
func TestPartitionMinorityHeals(t *testing.T) {
	c := newCluster(t, clusterOpts{n: 3, inmem: true})
	old := c.waitLeader(nil)
	acked := writeMany(t, c, 0, 20)
	convs := workload(t, c, "1", 10)

	c.partition(old)
	var majority []*testNode
	for _, tn := range c.live() {
		if tn != old {
			majority = append(majority, tn)
		}
	}
	newLeader := c.waitLeader(majority)
	testutil.Until(t, 10*time.Second, "the isolated node to step down", func() error {
		if old.node.raft.State() == raft.Leader {
			return errors.New("still leader")
		}
		return nil
	})
	for i := 100; i < 130; i++ {
		cmd := agentCmd(i)
		propose(t, majority[i%2], "k-"+cmd.ID, cmd)
		acked = append(acked, cmd.ID)
	}
	// The isolated node has not seen them.
	old.node.Read(context.Background(), Stale, func(m *routing.Machine) {
		if _, ok := m.Agent("a100"); ok {
			t.Error("isolated node saw a write of the majority")
		}
	})
	// It cannot take writes of its own: with no leader in its view the
	// request fails fast (or, if it still knows the new leader's address
	// from the registry, is forwarded over HTTP, which is not partitioned).
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	_, err := old.node.Propose(ctx, "", routing.Tick{})
	cancel()
	if err != nil && !errors.Is(err, ErrNoLeader) {
		t.Errorf("isolated Propose: %v", err)
	}

	c.heal()
	testutil.Until(t, 20*time.Second, "the isolated node to rejoin", func() error {
		if lid, _ := old.node.leaderHTTP(); lid == "" {
			return errors.New("no leader seen")
		}
		return nil
	})
	_ = newLeader
	c.waitLeader(nil)
	convs = append(convs, workload(t, c, "2", 10)...)
	assertAgents(t, c, acked)
	assertConversations(t, c, convs)
	c.checkConverged()
}

// TestLaggingFollowerCatchesUpBySnapshot: a follower cut off while the
// leader writes and compacts its log can only catch up by installing a
// snapshot. The WAL frees log entries a whole segment at a time (and serves
// the rest of a segment past a head truncation), so it runs with 1 KiB
// segments here.
func TestLaggingFollowerCatchesUpBySnapshot(t *testing.T) {
	for _, kind := range []string{LogStoreWAL, LogStoreBolt} {
		t.Run(kind, func(t *testing.T) { testLaggingFollowerCatchesUpBySnapshot(t, kind) })
	}
}

func testLaggingFollowerCatchesUpBySnapshot(t *testing.T, kind string) {
	c := newCluster(t, clusterOpts{n: 3, inmem: true, tweak: func(cfg *Config) {
		cfg.LogStore = kind
		cfg.walSegmentSize = 1 << 10
		cfg.SnapshotThreshold = 16
		cfg.TrailingLogs = 4
		cfg.SnapshotInterval = 50 * time.Millisecond
	}})
	leader := c.waitLeader(nil)
	lag := c.follower(leader)
	c.partition(lag)
	// Sequential writes, so every command is its own log entry.
	var acked []string
	for i := range 60 {
		cmd := agentCmd(i)
		propose(t, leader, "", cmd)
		acked = append(acked, cmd.ID)
	}
	if err := leader.node.Snapshot(); err != nil {
		t.Fatal(err)
	}
	for i := 60; i < 70; i++ {
		cmd := agentCmd(i)
		propose(t, leader, "", cmd)
		acked = append(acked, cmd.ID)
	}
	if err := leader.node.Snapshot(); err != nil {
		t.Fatal(err)
	}
	first, _ := leader.node.stores.Logs.FirstIndex()
	if first <= lag.node.fsm.applied.Load()+1 {
		t.Fatalf("leader log still starts at %d; the follower applied %d", first, lag.node.fsm.applied.Load())
	}
	c.heal()
	testutil.Until(t, 20*time.Second, "the follower to install a snapshot", func() error {
		if lag.node.fsm.restores.Load() == 0 {
			return fmt.Errorf("no restore yet (applied %d)", lag.node.fsm.applied.Load())
		}
		return nil
	})
	c.waitLeader(nil)
	assertAgents(t, c, acked)
	c.checkConverged()
}
