package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/omnirouter/omnirouter/internal/testutil"
	"github.com/omnirouter/omnirouter/routing"
)

// nodeInfo is member id as tn sees it.
func nodeInfo(tn *testNode, id string) (NodeInfo, bool) {
	for _, ni := range tn.node.Status().Nodes {
		if ni.ID == id {
			return ni, true
		}
	}
	return NodeInfo{}, false
}

// TestJoinRefusesBadRequests: a join with a malformed id or address, or a
// raft address that does not answer, is refused and changes nothing.
func TestJoinRefusesBadRequests(t *testing.T) {
	c := newCluster(t, clusterOpts{n: 3})
	leader := c.waitLeader(nil)
	follower := c.follower(leader)
	// A port that is not listening.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	ctx := context.Background()
	for _, tc := range []struct {
		id, raft, http string
		want           error
	}{
		{"n4", "notanaddr", "alsonot", ErrInvalidJoin},
		{"n4", "127.0.0.1", "http://127.0.0.1:1", ErrInvalidJoin},
		{"n4", "127.0.0.1:99999", "http://127.0.0.1:1", ErrInvalidJoin},
		{"n4", "0.0.0.0:7000", "http://127.0.0.1:1", ErrInvalidJoin},
		{"n4", "127.0.0.1:7000", "ftp://127.0.0.1:1", ErrInvalidJoin},
		{"n4", "127.0.0.1:7000", "http://127.0.0.1:1/path", ErrInvalidJoin},
		{"n4", "127.0.0.1:7000", "", ErrInvalidJoin},
		{"", "127.0.0.1:7000", "http://127.0.0.1:1", ErrInvalidJoin},
		{"n4", closed, "http://127.0.0.1:1", ErrRaftUnreachable},
		// Another member's raft address under a new id: the node at
		// http_addr must answer as n4.
		{"n4", follower.node.raftAddr(), follower.srv.URL, ErrInvalidJoin},
	} {
		for _, via := range []*testNode{leader, follower} {
			err := via.node.Join(ctx, tc.id, tc.raft, tc.http)
			if !errors.Is(err, tc.want) {
				t.Errorf("join %q %q %q via %s: %v, want %v", tc.id, tc.raft, tc.http, via.cfg.NodeID, err, tc.want)
			}
		}
	}
	for _, tn := range c.live() {
		if st := tn.node.Status(); len(st.Nodes) != 3 {
			t.Fatalf("%s: a refused join changed the configuration: %+v", tn.cfg.NodeID, st.Nodes)
		}
	}
	writeMany(t, c, 0, 5)
}

// TestJoinAsNonvoterPromotedOnceCaughtUp: a fourth node joins as a
// nonvoter, is not promoted while the leader cannot tell how far it has
// applied, and becomes a voter once it can — on a new leader, when the old
// one is gone by then.
func TestJoinAsNonvoterPromotedOnceCaughtUp(t *testing.T) {
	c := newCluster(t, clusterOpts{n: 3})
	leader := c.waitLeader(nil)
	writeMany(t, c, 0, 20)

	n4 := c.newNodeHidden("n4")
	testutil.Until(t, 20*time.Second, "n4 in the configuration", func() error {
		ni, ok := nodeInfo(leader, "n4")
		if !ok || ni.HTTPAddr == "" {
			return fmt.Errorf("not there yet: %+v", ni)
		}
		return nil
	})
	// Several rounds of the leader's checks later, n4 is still a nonvoter.
	rounds := leader.node.memberChecks.Load()
	testutil.Until(t, 20*time.Second, "three more member checks", func() error {
		if got := leader.node.memberChecks.Load(); got < rounds+3 {
			return fmt.Errorf("%d rounds", got-rounds)
		}
		return nil
	})
	ni, _ := nodeInfo(leader, "n4")
	if ni.Voter || ni.Suffrage != "nonvoter" || ni.CaughtUp {
		t.Fatalf("n4 promoted without the leader knowing it caught up: %+v", ni)
	}
	// The new node itself has caught up meanwhile.
	testutil.Until(t, 20*time.Second, "n4 has applied the log", func() error {
		if !n4.node.caughtUp("n4") {
			return errors.New("not yet")
		}
		return nil
	})

	// The leader goes; the next one promotes n4 once n4 answers.
	c.stop(leader)
	newLeader := c.waitLeader(c.live()[:2])
	n4.hideInfo.Store(false)
	testutil.Until(t, 20*time.Second, "n4 a voter", func() error {
		ni, ok := nodeInfo(newLeader, "n4")
		if !ok || !ni.Voter || ni.Suffrage != "voter" || !ni.CaughtUp {
			return fmt.Errorf("%+v", ni)
		}
		return nil
	})
	// A follower reports every member's caught_up as the leader sees it.
	var follower *testNode
	for _, tn := range c.live() {
		if tn != newLeader && tn != n4 {
			follower = tn
		}
	}
	st := follower.node.ClusterStatus(context.Background())
	for _, ni := range st.Nodes {
		want := ni.ID != leader.cfg.NodeID // the stopped one is not caught up
		if ni.CaughtUp != want {
			t.Errorf("%s reports %s caught_up=%v", follower.cfg.NodeID, ni.ID, ni.CaughtUp)
		}
	}
	// Three of four voters are up: writes go on, and n4 has them.
	writeMany(t, c, 100, 5)
	c.checkConverged()
}

// newNodeHidden adds a node whose info endpoint does not answer yet.
func (c *testCluster) newNodeHidden(id string) *testNode {
	tn := c.newNode(id)
	tn.hideInfo.Store(true)
	for _, o := range c.nodes {
		tn.cfg.Join = append(tn.cfg.Join, o.srv.URL)
	}
	c.nodes = append(c.nodes, tn)
	c.start(tn)
	return tn
}

// TestRemovedNodeKnowsIt: a running node that is removed reports it,
// refuses writes and linearizable reads with ErrRemoved, serves stale
// reads of its last state, stays removed across a restart on the same data
// directory, and becomes a member again when an operator adds it back.
func TestRemovedNodeKnowsIt(t *testing.T) {
	c := newCluster(t, clusterOpts{n: 3})
	leader := c.waitLeader(nil)
	gone := c.follower(leader)
	writeMany(t, c, 0, 5)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := leader.node.Remove(ctx, gone.cfg.NodeID); err != nil {
		t.Fatal(err)
	}
	waitRemoved := func() {
		t.Helper()
		testutil.Until(t, 20*time.Second, "the removed node knows it", func() error {
			if !gone.node.Status().Removed {
				return errors.New("not yet")
			}
			return nil
		})
	}
	waitRemoved()
	checkRemovedBehaviour(t, gone, true)
	// A member's request to bring its addresses up to date does not add
	// it back (the node sends one when it has not seen its removal yet).
	for _, kind := range []joinKind{joinMember, joinFresh} {
		if err := gone.node.requestJoin(ctx, leader.srv.URL, kind); !errors.Is(err, ErrRemoved) {
			t.Fatalf("a removed node's own join (%d): %v", kind, err)
		}
	}
	if st := leader.node.Status(); len(st.Nodes) != 2 {
		t.Fatalf("a removed node's own join added it back: %+v", st.Nodes)
	}

	// A restart on the same data directory: still removed. (Its state
	// machine is then what its last snapshot holds: raft applies the log
	// only once a leader says what is committed.)
	c.stop(gone)
	c.start(gone)
	waitRemoved()
	checkRemovedBehaviour(t, gone, false)
	if st := leader.node.Status(); len(st.Nodes) != 2 {
		t.Fatalf("the removed node rejoined by itself: %+v", st.Nodes)
	}

	// An operator adds it back: it is a member again, then a voter.
	if err := leader.node.Join(ctx, gone.cfg.NodeID, gone.cfg.RaftAddr, gone.srv.URL); err != nil {
		t.Fatal(err)
	}
	c.waitRegistered()
	testutil.Until(t, 20*time.Second, "a member again", func() error {
		if gone.node.Status().Removed || gone.node.Ready() != nil {
			return fmt.Errorf("removed %v, ready %v", gone.node.Status().Removed, gone.node.Ready())
		}
		return nil
	})
	propose(t, gone, "", agentCmd(50))
	c.checkConverged()
}

// TestRemovedWhileDown: a node removed while it was stopped learns it from
// its peers when it starts again.
func TestRemovedWhileDown(t *testing.T) {
	c := newCluster(t, clusterOpts{n: 3})
	leader := c.waitLeader(nil)
	gone := c.follower(leader)
	c.stop(gone)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := leader.node.Remove(ctx, gone.cfg.NodeID); err != nil {
		t.Fatal(err)
	}
	c.start(gone)
	testutil.Until(t, 20*time.Second, "the removed node knows it", func() error {
		if !gone.node.Status().Removed {
			return errors.New("not yet")
		}
		return nil
	})
	checkRemovedBehaviour(t, gone, false)
}

// checkRemovedBehaviour checks what a removed node does; withState: its
// stale reads see the agents written earlier.
func checkRemovedBehaviour(t *testing.T, tn *testNode, withState bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tn.node.Ready(); !errors.Is(err, ErrRemoved) {
		t.Errorf("Ready: %v", err)
	}
	if _, err := tn.node.Propose(ctx, "", agentCmd(99)); !errors.Is(err, ErrRemoved) {
		t.Errorf("Propose: %v", err)
	}
	if _, err := tn.node.Read(ctx, Linearizable, func(*routing.Machine) {}); !errors.Is(err, ErrRemoved) {
		t.Errorf("linearizable Read: %v", err)
	}
	agents := 0
	if _, err := tn.node.Read(ctx, Stale, func(m *routing.Machine) { agents = m.AgentCount() }); err != nil || withState && agents == 0 {
		t.Errorf("stale Read: %v, %d agents", err, agents)
	}
	for _, ni := range tn.node.Status().Nodes {
		if ni.CaughtUp {
			t.Errorf("a removed node reports %s caught up", ni.ID)
		}
	}
}
