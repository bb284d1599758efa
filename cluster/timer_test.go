package cluster

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/omnirouter/omnirouter/capacity"
	"github.com/omnirouter/omnirouter/internal/testutil"
	"github.com/omnirouter/omnirouter/routing"
)

// TestTimerFiresOnceAfterFailover arms a web chat's disconnect timeout, kills
// the leader before it is due, and checks that after the election the chat
// ends exactly once, on every node (the restarted old leader included).
func TestTimerFiresOnceAfterFailover(t *testing.T) {
	c := newCluster(t, clusterOpts{n: 3})
	leader := c.waitLeader(nil)
	f := c.follower(leader)

	disconnect, idle := 1500*time.Millisecond, time.Hour
	propose(t, f, "", routing.SetPolicy{Patch: routing.MustPatch("chat.web.disconnect_timeout", disconnect, "chat.web.idle_after", idle)})
	propose(t, f, "", routing.UpsertAgent{ID: "a1", Name: "Ana", Capacity: capacity.Limits{2, 2}})
	propose(t, f, "", routing.SetAgentStatus{AgentID: "a1", Status: routing.StatusOnline})
	propose(t, f, "", routing.CreateConversation{ID: "c1", Channel: capacity.Chat, Client: routing.ClientWeb, Message: "hello"})
	propose(t, f, "", routing.Presence{ConversationID: "c1", Event: routing.PresenceDisconnected})

	c.stop(leader)
	c.waitLeader(nil)
	testutil.Until(t, 20*time.Second, "the chat to end", func() error {
		var st routing.State
		_, err := f.node.Read(context.Background(), Linearizable, func(m *routing.Machine) {
			cv, _ := m.Conversation("c1")
			st = cv.State
		})
		if err != nil {
			return err
		}
		if st != routing.StateEnded {
			return fmt.Errorf("state %v", st)
		}
		return nil
	})
	c.start(leader)
	c.waitLeader(nil)
	c.checkConverged()
	for _, tn := range c.live() {
		var ended int
		var err error
		tn.node.Read(context.Background(), Linearizable, func(m *routing.Machine) {
			var evs []routing.Event
			evs, err = m.Events(0, 1_000_000)
			for _, e := range evs {
				if e.Type == routing.EventEnded && e.ConversationID == "c1" {
					ended++
					if e.Data.Reason != routing.ReasonDisconnectTimeout {
						err = errors.Join(err, fmt.Errorf("ended with reason %q", e.Data.Reason))
					}
				}
			}
		})
		if err != nil || ended != 1 {
			t.Errorf("%s: %d conversation.ended events for c1 (err %v), want 1", tn.cfg.NodeID, ended, err)
		}
	}
}

// TestWaitEvents wakes on a new event and honours its context.
func TestWaitEvents(t *testing.T) {
	c := newCluster(t, clusterOpts{n: 1})
	n := c.nodes[0]
	var last uint64
	n.node.Read(context.Background(), Stale, func(m *routing.Machine) { last = m.LastEventID() })

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	err := n.node.WaitEvents(ctx, last)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitEvents with nothing new: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- n.node.WaitEvents(ctx, last)
	}()
	propose(t, n, "", routing.UpsertAgent{ID: "a1", Name: "Ana", Capacity: capacity.Limits{1, 1}})
	propose(t, n, "", routing.SetAgentStatus{AgentID: "a1", Status: routing.StatusOnline})
	if err := <-done; err != nil {
		t.Fatalf("WaitEvents: %v", err)
	}
}
