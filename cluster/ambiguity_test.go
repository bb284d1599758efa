package cluster

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestForwardLostAnswerIsAmbiguous: the leader applies a forwarded command
// but the answer never reaches the follower: the caller gets ErrAmbiguous,
// and a retry with the same key returns the first outcome.
func TestForwardLostAnswerIsAmbiguous(t *testing.T) {
	c := newCluster(t, clusterOpts{n: 3, inmem: true})
	leader := c.waitLeader(nil)
	f := c.follower(leader)

	leader.dropAnswers.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := f.node.Propose(ctx, "lost-answer", agentCmd(1))
	if !errors.Is(err, ErrAmbiguous) {
		t.Fatalf("Propose with a lost answer: %v, want ErrAmbiguous", err)
	}
	leader.dropAnswers.Store(false)
	res := propose(t, f, "lost-answer", agentCmd(1))
	if !res.Outcome.Replayed {
		t.Error("the retry was applied again instead of replayed")
	}
	// The answer was lost on a forward stream; the retry opened another.
	if n := leader.streamsOpened.Load(); n != 2 {
		t.Errorf("%d forward streams, want 2", n)
	}
	c.checkConverged()
}

// TestIsolatedLeaderWriteIsAmbiguous: a write accepted by a leader that has
// just lost its majority cannot be confirmed: ErrAmbiguous, never a plain
// failure. After healing, the retry with the same key is applied once.
func TestIsolatedLeaderWriteIsAmbiguous(t *testing.T) {
	c := newCluster(t, clusterOpts{n: 3, inmem: true})
	leader := c.waitLeader(nil)
	c.partition(leader)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := leader.node.Propose(ctx, "isolated", agentCmd(7))
	switch {
	case errors.Is(err, ErrAmbiguous):
	case errors.Is(err, ErrNoLeader):
		// It had already stepped down before the command reached its log.
		t.Log("leader stepped down before the proposal; nothing to be ambiguous about")
	default:
		t.Fatalf("Propose on an isolated leader: %v, want ErrAmbiguous", err)
	}
	c.heal()
	c.waitLeader(nil)
	propose(t, leader, "isolated", agentCmd(7)) // the retry is safe
	c.checkConverged()
}
