package cluster

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/omnirouter/omnirouter/capacity"
	"github.com/omnirouter/omnirouter/internal/testutil"
	"github.com/omnirouter/omnirouter/routing"
)

// TestNextEntryIsCutWhileTheLeaderApplies holds the leader's state machine
// inside the apply of one batch entry and checks that the batcher proposes
// the next entry meanwhile: the pipeline slot is given back at commit, not
// after the apply and its delivery. Both commands then complete.
func TestNextEntryIsCutWhileTheLeaderApplies(t *testing.T) {
	var holdOn atomic.Value // the node id whose state machine to hold
	holdOn.Store("")
	held := make(chan struct{}, 1)
	release := make(chan struct{})
	var holding atomic.Bool
	c := newCluster(t, clusterOpts{n: 3, tweak: func(cfg *Config) {
		id := cfg.NodeID
		cfg.beforeApply = func([]byte) {
			if holdOn.Load() == id && holding.CompareAndSwap(false, true) {
				held <- struct{}{}
				<-release
			}
		}
	}})
	var releaseOnce sync.Once
	letGo := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(letGo) // before the cluster's own cleanup, which waits for the state machine
	leader := c.waitLeader(nil)
	propose(t, leader, "", routing.UpsertAgent{ID: "warm", Capacity: capacity.Limits{1, 1}})

	holdOn.Store(leader.cfg.NodeID)
	type result struct {
		res Result
		err error
	}
	results := make(chan result, 2)
	send := func(id string) {
		go func() {
			res, err := leader.node.Propose(t.Context(), "", routing.UpsertAgent{ID: id, Capacity: capacity.Limits{1, 1}})
			results <- result{res, err}
		}()
	}
	send("first")
	select {
	case <-held:
	case <-time.After(10 * time.Second):
		t.Fatal("the leader never applied the first entry")
	}
	before := leader.node.Status().Stats.Entries
	send("second")
	testutil.Until(t, 5*time.Second, "the second entry proposed while the first is applied", func() error {
		if got := leader.node.Status().Stats.Entries; got != before+1 {
			return fmt.Errorf("%d entries proposed, want %d", got, before+1)
		}
		return nil
	})
	letGo()
	for range 2 {
		r := <-results
		if r.err != nil || r.res.Outcome.Err != nil {
			t.Fatalf("propose: %v / %v", r.err, r.res.Outcome.Err)
		}
	}
}
