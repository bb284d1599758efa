package cluster

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"
)

// TestBroadcastWakesEveryWaiter: a thousand readers each wait for every id
// in turn while events are published one at a time; none misses one (each
// wait returns) and none returns before its id is published.
func TestBroadcastWakesEveryWaiter(t *testing.T) {
	b := newBroadcast()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go b.run(ctx)
	const waiters, ids = 1000, 50
	var wg sync.WaitGroup
	errs := make(chan error, waiters)
	for range waiters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for after := uint64(0); after < ids; after++ {
				wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
				err := b.wait(wctx, ctx, after)
				wcancel()
				if err != nil {
					errs <- err
					return
				}
				if got := b.last.Load(); got <= after {
					errs <- errors.New("woke before the id was published")
					return
				}
			}
		}()
	}
	for id := uint64(1); id <= ids; id++ {
		b.publish(id)
		runtime.Gosched() // let waiters in between publishes
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// TestBroadcastWaitEnds: a wait ends with its context, and with the node.
func TestBroadcastWaitEnds(t *testing.T) {
	b := newBroadcast()
	stop, stopNode := context.WithCancel(context.Background())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.wait(ctx, stop, 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled wait: %v", err)
	}
	stopNode()
	if err := b.wait(context.Background(), stop, 0); !errors.Is(err, ErrShutdown) {
		t.Fatalf("wait on a stopped node: %v", err)
	}
	b.publish(3)
	if err := b.wait(context.Background(), context.Background(), 2); err != nil {
		t.Fatalf("an id already published: %v", err)
	}
}
