package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/omnirouter/omnirouter/capacity"
	"github.com/omnirouter/omnirouter/internal/testutil"
	"github.com/omnirouter/omnirouter/routing"
)

func agentCmd(i int) routing.UpsertAgent {
	return routing.UpsertAgent{ID: fmt.Sprintf("a%03d", i), Name: fmt.Sprintf("agent %d", i), Capacity: capacity.Limits{2, 3}}
}

// writeMany proposes count agents from every live node concurrently and
// returns the ids that were acknowledged.
func writeMany(t *testing.T, c *testCluster, from, count int) []string {
	t.Helper()
	return proposeConcurrently(t, c.live(), count, func(i int) (string, routing.Command) {
		cmd := agentCmd(from + i)
		return cmd.ID, cmd
	})
}

// proposeConcurrently proposes count commands at once, command i through
// live[i%len(live)] with the key "k-"+id (retried while ambiguous), and
// returns the ids whose commands were acknowledged.
func proposeConcurrently(t *testing.T, live []*testNode, count int, command func(i int) (string, routing.Command)) []string {
	t.Helper()
	var (
		mu    sync.Mutex
		acked []string
		wg    sync.WaitGroup
	)
	for i := range count {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id, cmd := command(i)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			res, err := proposeAsClient(ctx, live[i%len(live)], "k-"+id, cmd)
			if err != nil || res.Outcome.Err != nil {
				t.Errorf("%s %s: %v / %v", cmd.Kind(), id, err, res.Outcome.Err)
				return
			}
			mu.Lock()
			acked = append(acked, id)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return acked
}

// workload puts agents online and creates chats and messaging
// conversations from every node concurrently, so that routing offers and
// assigns while the cluster changes; it returns the acknowledged
// conversation ids.
func workload(t *testing.T, c *testCluster, tag string, count int) []string {
	t.Helper()
	live := c.live()
	for i := range 3 {
		id := fmt.Sprintf("w%s-a%d", tag, i)
		propose(t, live[i%len(live)], "", routing.UpsertAgent{ID: id, Name: id, Capacity: capacity.Limits{2, 2}})
		propose(t, live[(i+1)%len(live)], "", routing.SetAgentStatus{AgentID: id, Status: routing.StatusOnline})
	}
	return proposeConcurrently(t, live, count, func(i int) (string, routing.Command) {
		cmd := routing.CreateConversation{ID: fmt.Sprintf("w%s-c%d", tag, i), Channel: capacity.Channel(i % 2),
			Priority: i % 3, Message: "hello"}
		if cmd.Channel == capacity.Chat {
			cmd.Client = routing.ClientWeb
		}
		return cmd.ID, cmd
	})
}

func assertConversations(t *testing.T, c *testCluster, ids []string) {
	t.Helper()
	for _, tn := range c.live() {
		var missing []string
		if _, err := tn.node.Read(context.Background(), Linearizable, func(m *routing.Machine) {
			for _, id := range ids {
				if _, ok := m.Conversation(id); !ok {
					missing = append(missing, id)
				}
			}
		}); err != nil {
			t.Fatalf("read on %s: %v", tn.cfg.NodeID, err)
		}
		if len(missing) > 0 {
			t.Errorf("%s lacks acknowledged conversations %v", tn.cfg.NodeID, missing)
		}
	}
}

func assertAgents(t *testing.T, c *testCluster, ids []string) {
	t.Helper()
	for _, tn := range c.live() {
		var missing []string
		_, err := tn.node.Read(context.Background(), Linearizable, func(m *routing.Machine) {
			for _, id := range ids {
				if _, ok := m.Agent(id); !ok {
					missing = append(missing, id)
				}
			}
		})
		if err != nil {
			t.Fatalf("read on %s: %v", tn.cfg.NodeID, err)
		}
		if len(missing) > 0 {
			t.Errorf("%s lacks acknowledged agents %v", tn.cfg.NodeID, missing)
		}
	}
}

// TestClusterFailoverAndRestart runs three nodes on TCP and raft-boltdb: a
// write through a follower is forwarded, the leader is killed, a new one is
// elected and takes writes, the old one restarts from its data dir and
// catches up; every acknowledged write is everywhere and the states are
// byte-identical.
func TestClusterFailoverAndRestart(t *testing.T) {
	c := newCluster(t, clusterOpts{n: 3})
	leader := c.waitLeader(nil)
	f := c.follower(leader)

	res := propose(t, f, "first", agentCmd(0))
	if res.ServedBy != leader.cfg.NodeID || res.Index == 0 {
		t.Errorf("forwarded write served by %q at %d, want %s", res.ServedBy, res.Index, leader.cfg.NodeID)
	}
	if res.Outcome.Agent == nil || res.Outcome.Agent.ID != "a000" {
		t.Errorf("forwarded outcome lost its agent: %+v", res.Outcome)
	}
	// The leader stamped its clock into the forwarded command.
	f.node.Read(context.Background(), Linearizable, func(m *routing.Machine) {
		if d := time.Since(time.UnixMilli(m.Now())); d < 0 || d > 10*time.Second {
			t.Errorf("machine clock %v is %v from the wall clock", time.UnixMilli(m.Now()), d)
		}
	})
	if f.node.Status().Stats.Forwarded == 0 {
		t.Error("follower did not count a forward")
	}
	// A replayed key gives the first answer again, through the follower.
	if again := propose(t, f, "first", agentCmd(0)); !again.Outcome.Replayed {
		t.Error("retried key was not replayed")
	}
	acked := append([]string{"a000"}, writeMany(t, c, 1, 60)...)
	convs := workload(t, c, "1", 20)

	c.stop(leader)
	newLeader := c.waitLeader(nil)
	if newLeader == leader {
		t.Fatal("old leader still leads")
	}
	acked = append(acked, writeMany(t, c, 100, 40)...)
	convs = append(convs, workload(t, c, "2", 20)...)

	c.start(leader)
	c.waitLeader(nil)
	acked = append(acked, writeMany(t, c, 200, 30)...)
	assertAgents(t, c, acked)
	assertConversations(t, c, convs)
	c.checkConverged()
	testutil.Until(t, 10*time.Second, "the restarted node to follow a leader", func() error {
		if st := leader.node.Status(); st.LeaderChanges == 0 || st.LeaderID == "" {
			return fmt.Errorf("restarted node status: %+v", st)
		}
		return nil
	})
}

// TestNoLeaderFailsFast: one node of a three-node cluster, with the others
// down, answers ErrNoLeader after the short hold instead of hanging.
func TestNoLeaderFailsFast(t *testing.T) {
	c := newCluster(t, clusterOpts{n: 3, inmem: true})
	leader := c.waitLeader(nil)
	for _, tn := range c.live() {
		if tn != leader {
			c.stop(tn)
		}
	}
	testutil.Until(t, 10*time.Second, "the lone node to step down", func() error {
		if lid, _ := leader.node.leaderHTTP(); lid != "" {
			return fmt.Errorf("still sees leader %q", lid)
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	_, err := leader.node.Propose(ctx, "", routing.Tick{})
	if !errors.Is(err, ErrNoLeader) {
		t.Fatalf("Propose: %v, want ErrNoLeader", err)
	}
	_, err = leader.node.Read(ctx, Linearizable, func(*routing.Machine) {})
	if !errors.Is(err, ErrNoLeader) {
		t.Fatalf("Read: %v, want ErrNoLeader", err)
	}
	if took := time.Since(start); took > 8*time.Second {
		t.Errorf("took %v", took)
	}
	if _, err := leader.node.Read(ctx, Stale, func(*routing.Machine) {}); err != nil {
		t.Errorf("stale read: %v", err)
	}
	if leader.node.Ready() == nil {
		t.Error("Ready() without a leader")
	}
}
