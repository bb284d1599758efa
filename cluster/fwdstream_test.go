package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/omnirouter/omnirouter/internal/poll"
	"github.com/omnirouter/omnirouter/routing"
)

// proposeMany proposes count commands (keys key-i, agents i) through tn at
// once and returns every caller's result.
func proposeMany(t *testing.T, tn *testNode, key string, count int) ([]Result, []error) {
	t.Helper()
	results := make([]Result, count)
	errs := make([]error, count)
	var wg sync.WaitGroup
	for i := range count {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			results[i], errs[i] = tn.node.Propose(ctx, fmt.Sprintf("%s-%d", key, i), agentCmd(i))
		}()
	}
	wg.Wait()
	return results, errs
}

// TestForwardStream: concurrent writes through a follower travel on one
// stream to the leader, each caller gets its own outcome, and retries with
// the same keys are replayed.
func TestForwardStream(t *testing.T) {
	routingReady(t)
	c := newCluster(t, clusterOpts{n: 3, inmem: true})
	leader := c.waitLeader(nil)
	f := c.follower(leader)

	const count = 300
	before := f.node.Status().Stats
	results, errs := proposeMany(t, f, "stream", count)
	checkAgentOutcomes(t, leader, results, errs)
	after := f.node.Status().Stats
	if cmds := after.Forwarded - before.Forwarded; cmds != count {
		t.Errorf("forwarded %d commands, want %d", cmds, count)
	}
	if n := leader.streamsOpened.Load(); n != 1 {
		t.Errorf("the leader accepted %d forward streams, want 1", n)
	}
	t.Logf("%d commands in %d stream writes", count, after.ForwardRequests-before.ForwardRequests)

	results, errs = proposeMany(t, f, "stream", 20)
	checkReplayed(t, results, errs)
	if n := leader.streamsOpened.Load(); n != 1 {
		t.Errorf("the stream was not kept: %d opened", n)
	}
	c.checkConverged()
}

// TestForwardStreamFollowsTheLeader: after a leadership change the
// follower opens a stream to the new leader, and its writes keep working;
// the stream to the old leader is closed once it carries nothing, and so
// is a node's stream once it leads.
func TestForwardStreamFollowsTheLeader(t *testing.T) {
	routingReady(t)
	c := newCluster(t, clusterOpts{n: 3, inmem: true})
	old := c.waitLeader(nil)
	f := c.follower(old)
	other := c.third(old, f)
	propose(t, f, "before", agentCmd(1))
	if old.streamsOpened.Load() != 1 {
		t.Fatalf("no stream to the first leader")
	}

	if err := old.node.raft.LeadershipTransferToServer(raft.ServerID(other.cfg.NodeID), raft.ServerAddress(other.inmem.LocalAddr())).Error(); err != nil {
		t.Fatalf("leadership transfer: %v", err)
	}
	if l := c.waitLeader(nil); l != other {
		t.Fatalf("leader is %s, want %s", l.cfg.NodeID, other.cfg.NodeID)
	}
	res := propose(t, f, "after", agentCmd(2))
	if res.ServedBy != other.cfg.NodeID {
		t.Errorf("served by %s, want the new leader %s", res.ServedBy, other.cfg.NodeID)
	}
	if other.streamsOpened.Load() != 1 {
		t.Errorf("the new leader accepted %d streams, want 1", other.streamsOpened.Load())
	}
	// The retired stream is closed by its watcher.
	poll.Until(t, 10*time.Second, "the old stream closed", func() error {
		if n := f.node.Status().Stats.ForwardStreams; n != 1 {
			return fmt.Errorf("%d follower streams open", n)
		}
		return nil
	})

	// Once the follower leads itself it forwards nothing: its stream closes
	// without another command.
	if err := other.node.raft.LeadershipTransferToServer(raft.ServerID(f.cfg.NodeID), raft.ServerAddress(f.inmem.LocalAddr())).Error(); err != nil {
		t.Fatalf("leadership transfer: %v", err)
	}
	if l := c.waitLeader(nil); l != f {
		t.Fatalf("leader is %s, want %s", l.cfg.NodeID, f.cfg.NodeID)
	}
	poll.Until(t, 10*time.Second, "the new leader's own stream closed", func() error {
		if n := f.node.Status().Stats.ForwardStreams; n != 0 {
			return fmt.Errorf("%d streams open", n)
		}
		return nil
	})
	c.checkConverged()
}

// TestForwardFallsBackToProposeBatch: a leader that does not know forward
// streams (HTTP 404, the previous release) gets proposebatch requests.
func TestForwardFallsBackToProposeBatch(t *testing.T) {
	routingReady(t)
	c := newCluster(t, clusterOpts{n: 3, inmem: true})
	leader := c.waitLeader(nil)
	leader.noStream.Store(true)
	f := c.follower(leader)
	results, errs := proposeMany(t, f, "fallback", 50)
	checkAgentOutcomes(t, leader, results, errs)
	if n := leader.streamsOpened.Load(); n != 0 {
		t.Errorf("%d streams accepted by a leader that refuses them", n)
	}
	c.checkConverged()
}

// TestForwardStreamStalledLeader: a leader that stops reading (a paused
// process) leaves the follower's commands unanswered, and big ones fill the
// stream until a write stalls; the follower closes the stream after
// streamStallTimeout (or half the apply timeout without an answer), its
// callers get ErrAmbiguous then instead of at their deadlines, and its
// forwarder is free for the next command.
func TestForwardStreamStalledLeader(t *testing.T) {
	routingReady(t)
	c := newCluster(t, clusterOpts{n: 3, inmem: true})
	leader := c.waitLeader(nil)
	f := c.follower(leader)
	leader.stallStreams.Store(true)
	// More than the loopback socket buffers hold, so a write blocks.
	big := strings.Repeat("x", 512<<10)
	const count = 64
	errs := make([]error, count)
	var wg sync.WaitGroup
	for i := range count {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Far beyond the watchdog's limits: a command that reaches
			// its deadline was not ended by them.
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_, errs[i] = f.node.Propose(ctx, fmt.Sprintf("big-%d", i), routing.UpsertAgent{ID: fmt.Sprintf("big%d", i), Name: big})
		}()
	}
	wg.Wait()
	stalled := 0
	for i, err := range errs {
		switch {
		case err == nil:
			t.Errorf("command %d succeeded on a leader that reads nothing", i)
		case !errors.Is(err, ErrAmbiguous):
			t.Errorf("command %d: %v, want ErrAmbiguous", i, err)
		case strings.Contains(err.Error(), "stalled"):
			stalled++
		case !strings.Contains(err.Error(), "no answer"):
			t.Errorf("command %d was not ended by the watchdog: %v", i, err)
		}
	}
	if stalled == 0 {
		t.Errorf("no write stalled: %v", errs[0])
	}
	if n := f.node.Status().Stats.ForwardStreams; n != 0 {
		t.Errorf("%d streams still open", n)
	}
	leader.stallStreams.Store(false)
	propose(t, f, "after-stall", agentCmd(1))
	c.checkConverged()
}
