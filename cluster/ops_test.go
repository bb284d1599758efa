package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/omnirouter/omnirouter/internal/testutil"
	"github.com/omnirouter/omnirouter/routing"
)

// TestSingleNodeRestartBackupRestore: a node with no join list bootstraps
// alone; its state survives a restart (from log and snapshot), a backup
// restores onto it, and a bad backup is refused before reaching the log.
func TestSingleNodeRestartBackupRestore(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{NodeID: "solo", DataDir: filepath.Join(dir, "solo"), RaftAddr: freeAddr(t),
		HTTPAddr: "127.0.0.1:1", Logger: testLogger()}
	n, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	waitReady := func(n *Node) {
		testutil.Until(t, 10*time.Second, "ready", n.Ready)
	}
	waitReady(n)
	ctx := context.Background()
	for i := range 5 {
		if _, err := n.Propose(ctx, "", agentCmd(i)); err != nil {
			t.Fatal(err)
		}
	}
	var backup bytes.Buffer
	if err := n.Backup(ctx, &backup); err != nil {
		t.Fatal(err)
	}
	if err := n.Snapshot(); err != nil {
		t.Fatal(err)
	}
	for i := 5; i < 8; i++ {
		if _, err := n.Propose(ctx, "", agentCmd(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.Shutdown(); err != nil {
		t.Fatal(err)
	}

	n, err = Open(cfg) // restart: never bootstraps again
	if err != nil {
		t.Fatal(err)
	}
	defer n.Shutdown()
	waitReady(n)
	count := func() (c int) {
		if _, err := n.Read(ctx, Linearizable, func(m *routing.Machine) { c = m.AgentCount() }); err != nil {
			t.Fatal(err)
		}
		return c
	}
	if got := count(); got != 8 {
		t.Fatalf("after restart: %d agents, want 8", got)
	}
	if st := n.Status(); st.State != "Leader" || len(st.Nodes) != 1 || st.Nodes[0].HTTPAddr != "http://127.0.0.1:1" {
		t.Errorf("status: %+v", st)
	}

	if err := n.RestoreBackup(ctx, bytes.NewReader([]byte("not a snapshot"))); !errors.Is(err, ErrBadBackup) {
		t.Fatalf("bad backup: %v", err)
	}
	var lastEvent uint64
	if _, err := n.Read(ctx, Linearizable, func(m *routing.Machine) { lastEvent = m.LastEventID() }); err != nil {
		t.Fatal(err)
	}
	if err := n.RestoreBackup(ctx, bytes.NewReader(backup.Bytes())); err != nil {
		t.Fatal(err)
	}
	if got := count(); got != 5 {
		t.Fatalf("after restore: %d agents, want 5", got)
	}
	var again bytes.Buffer
	if err := n.Backup(ctx, &again); err != nil {
		t.Fatal(err)
	}
	// The restored state is the backup's, with event ids carrying on from
	// the ones readers of this cluster have already seen.
	want, err := routing.DecodeSnapshot(backup.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	want.ContinueEventsAfter(lastEvent)
	var wantBytes bytes.Buffer
	if err := want.WriteSnapshot(&wantBytes); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.Bytes(), wantBytes.Bytes()) {
		t.Error("state after restore differs from the backup")
	}
}

// TestRemoveAndReplaceNode removes a follower, then brings it back as a
// replacement node (same id, empty data dir, new raft address) through the
// same command line: it joins and catches up.
func TestRemoveAndReplaceNode(t *testing.T) {
	c := newCluster(t, clusterOpts{n: 3})
	leader := c.waitLeader(nil)
	gone := c.follower(leader)
	writeMany(t, c, 0, 10)

	var other *testNode
	for _, tn := range c.live() {
		if tn != leader && tn != gone {
			other = tn
		}
	}
	c.stop(gone)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := other.node.Remove(ctx, gone.cfg.NodeID); err != nil { // through a follower
		t.Fatal(err)
	}
	if err := other.node.Remove(ctx, "nobody"); !errors.Is(err, ErrUnknownNode) {
		t.Errorf("Remove(nobody): %v", err)
	}
	testutil.Until(t, 10*time.Second, "two nodes", func() error {
		if st := other.node.Status(); len(st.Nodes) != 2 {
			return fmt.Errorf("%d nodes", len(st.Nodes))
		}
		if _, ok := other.node.fsm.node(gone.cfg.NodeID); ok {
			return errors.New("still registered")
		}
		return nil
	})
	writeMany(t, c, 100, 10)

	gone.cfg.DataDir += "-replacement"
	gone.cfg.RaftAddr = freeAddr(t)
	gone.node = nil
	// An operator cannot add it back before it runs: its raft address
	// does not answer, and nothing changes.
	if err := other.node.Join(ctx, gone.cfg.NodeID, gone.cfg.RaftAddr, gone.srv.URL); !errors.Is(err, ErrRaftUnreachable) {
		t.Fatalf("Join of a node that is not running: %v", err)
	}
	if st := other.node.Status(); len(st.Nodes) != 2 {
		t.Fatalf("a refused join changed the configuration: %+v", st.Nodes)
	}
	// Started with the same command line, it joins by itself; an
	// operator's join (through a follower) then changes nothing.
	c.start(gone)
	c.waitLeader(nil)
	c.waitRegistered()
	if err := other.node.Join(ctx, gone.cfg.NodeID, gone.cfg.RaftAddr, gone.srv.URL); err != nil {
		t.Fatal(err)
	}
	if reg, ok := leader.node.fsm.node(gone.cfg.NodeID); !ok || reg.RaftAddr != gone.cfg.RaftAddr {
		t.Errorf("after Join the registry holds %+v", reg)
	}
	c.checkConverged()
	for _, ni := range gone.node.Status().Nodes {
		if ni.ID == gone.cfg.NodeID && ni.RaftAddr != gone.cfg.RaftAddr {
			t.Errorf("replacement registered with %s, want %s", ni.RaftAddr, gone.cfg.RaftAddr)
		}
	}
}

// TestJoinReplacesClashingAddress: a node re-added under the same id with a
// new raft address replaces the old entry (remove-then-add) without a Remove.
func TestJoinReplacesClashingAddress(t *testing.T) {
	c := newCluster(t, clusterOpts{n: 3})
	leader := c.waitLeader(nil)
	moved := c.follower(leader)
	c.stop(moved)
	moved.cfg.DataDir += "-new"
	moved.cfg.RaftAddr = freeAddr(t)
	moved.node = nil
	c.start(moved)
	c.waitLeader(nil)
	testutil.Until(t, 20*time.Second, "the moved node's new address", func() error {
		cfg, err := leader.node.configuration()
		if err != nil {
			return err
		}
		for _, s := range cfg.Servers {
			if string(s.ID) == moved.cfg.NodeID {
				if string(s.Address) != moved.cfg.RaftAddr {
					return fmt.Errorf("still %s", s.Address)
				}
				if s.Suffrage != raft.Voter {
					return errors.New("not a voter")
				}
				return nil
			}
		}
		return errors.New("not in the configuration")
	})
	c.waitRegistered()
	writeMany(t, c, 0, 10)
	c.checkConverged()
}
