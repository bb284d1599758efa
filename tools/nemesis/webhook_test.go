package nemesis

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/omnirouter/omnirouter/cluster/webhook"
	"github.com/omnirouter/omnirouter/internal/pause"
)

// TestWebhooksThroughLeaderKills runs three real nodes and a receiver that
// fails a share of the deliveries and is sometimes slow, creates and ends
// conversations while the leader is SIGKILLed and restarted twice, and
// checks that every wanted event was delivered at least once, first in
// increasing id order, signed, and only by the node leading at the time.
func TestWebhooksThroughLeaderKills(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs three nodes")
	}
	dir := t.TempDir()
	bin, err := Build("../..", dir)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewCluster(ClusterConfig{Bin: bin, Dir: dir, Direct: true, Extra: []string{"--log-level", "warn"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Shutdown)
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := c.WaitReady(ctx, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rcv, err := NewWebhookReceiver("whsec_test", seed, 10, 10, 1500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer rcv.Close()
	watch := WatchLeaders(ctx, c, 50*time.Millisecond)
	types := []string{"conversation.queued", "conversation.ended"}
	sub, err := Subscribe(ctx, c, "hooks", rcv.URL(), "whsec_test", types)
	if err != nil {
		t.Fatal(err)
	}

	// The load: web chats, every other one ended by its visitor.
	hist := NewHistory()
	var urls []string
	for _, n := range c.Nodes {
		urls = append(urls, n.URL())
	}
	load, stopLoad := context.WithCancel(ctx)
	loadDone := make(chan int)
	go func() {
		cl := NewClient(0, urls, hist, rand.New(rand.NewPCG(seed, 1)), "webhooks")
		cl.Deadline = 30 * time.Second
		n := 0
		for ; load.Err() == nil; n++ {
			id := fmt.Sprintf("c%d", n)
			cl.Do(context.Background(), &Op{Kind: KindCreate, Conv: id}, "POST", "/v1/conversations", map[string]any{"id": id, "channel": "chat", "message": "hi"})
			if n%2 == 1 {
				cl.Do(context.Background(), &Op{Kind: KindEndVisitor, Conv: id}, "POST", "/v1/conversations/"+id+"/end", map[string]any{"by": "visitor"})
			}
			pause.For(load, 200*time.Millisecond)
		}
		loadDone <- n
	}()

	deliveredAtLeast := func(n int) {
		t.Helper()
		if err := Poll(ctx, 120*time.Second, func() error {
			if got := rcv.Delivered(); got < n {
				return fmt.Errorf("%d events delivered, waiting for %d", got, n)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	killLeader := func() string {
		t.Helper()
		var leader *Node
		if err := Poll(ctx, 30*time.Second, func() error {
			var err error
			leader, err = c.Leader(ctx)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if err := leader.Stop(syscall.SIGKILL, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		// A new leader among the others, then the killed node back.
		if err := Poll(ctx, 30*time.Second, func() error {
			l, err := c.Leader(ctx)
			if err == nil && l == leader {
				return fmt.Errorf("%s still named leader", l.ID)
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if err := leader.Start(bin); err != nil {
			t.Fatal(err)
		}
		if err := c.WaitReady(ctx, 60*time.Second); err != nil {
			t.Fatal(err)
		}
		return leader.ID
	}
	deliveredAtLeast(15)
	first := killLeader()
	deliveredAtLeast(rcv.Delivered() + 15)
	second := killLeader()
	deliveredAtLeast(rcv.Delivered() + 15)
	stopLoad()
	created := <-loadDone
	t.Logf("killed %s then %s; %d conversations created", first, second, created)

	want, err := WantedEvents(ctx, c.Nodes[0], sub.Cursor, types)
	if err != nil {
		t.Fatal(err)
	}
	deliveredAtLeast(len(want))
	if err := Poll(ctx, 30*time.Second, func() error {
		st, err := WebhookState(ctx, c, "hooks")
		if err == nil && (st.Lag != 0 || st.State != "active" || st.Skipped != 0) {
			err = fmt.Errorf("%+v", st)
		}
		return err
	}); err != nil {
		t.Fatalf("the committed cursor did not catch up: %v", err)
	}
	cancel()
	<-watch.done
	leaders, conflicts := watch.Leaders()
	bad, rep := CheckWebhookDeliveries(rcv.Deliveries(), want, leaders, webhook.DefaultPipeline)
	bad = append(bad, conflicts...)
	t.Logf("%d wanted events, %d requests (%d failed, %d duplicates), terms %v, nodes %v, %d requests of a term no leader was seen for",
		rep.Wanted, rep.Requests, rep.Failed, rep.Duplicates, rep.Terms, rep.Nodes, rep.Unattributed)
	if len(bad) > 0 {
		t.Fatalf("webhook deliveries:\n%s", strings.Join(bad, "\n"))
	}
	if len(rep.Terms) < 3 || len(rep.Nodes) < 2 || rep.Failed == 0 {
		t.Fatalf("the run did not exercise failover and failures: terms %v, nodes %v, %d failed", rep.Terms, rep.Nodes, rep.Failed)
	}
	if rep.Unattributed > rep.Requests/10 {
		t.Fatalf("%d of %d deliveries in terms no leader was seen for", rep.Unattributed, rep.Requests)
	}
}
