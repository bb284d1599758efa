package deadline

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/omnirouter/omnirouter/internal/testutil"
)

func TestDeadlineIsTimeoutRoundedUpToGrain(t *testing.T) {
	const timeout, grain = time.Hour, 50 * time.Millisecond
	s := New(timeout, grain)
	before := time.Now()
	ctx := s.Context(context.Background())
	after := time.Now()
	dl, ok := ctx.Deadline()
	if !ok {
		t.Fatal("no deadline")
	}
	if dl.Before(before.Add(timeout)) || dl.After(after.Add(timeout+grain)) {
		t.Fatalf("deadline %v not in [%v, %v]", dl, before.Add(timeout), after.Add(timeout+grain))
	}
	if dl.UnixNano()%int64(grain) != 0 {
		t.Fatalf("deadline %v is not on a %v boundary", dl, grain)
	}
	if ctx.Err() != nil {
		t.Fatalf("Err before the deadline: %v", ctx.Err())
	}
	select {
	case <-ctx.Done():
		t.Fatal("Done closed an hour early")
	default:
	}
}

func TestRequestsInOneWindowShareATimer(t *testing.T) {
	s := New(time.Hour, time.Hour)
	dones := map[<-chan struct{}]bool{}
	for range 1000 {
		dones[s.Context(context.Background()).Done()] = true
	}
	// An hour-wide window: the calls fall in one, or two if they straddle
	// its edge.
	if len(dones) > 2 {
		t.Fatalf("1000 requests within an hour made %d timers", len(dones))
	}
}

func TestDoneClosesAtTheDeadline(t *testing.T) {
	s := New(20*time.Millisecond, 10*time.Millisecond)
	ctx := s.Context(context.Background())
	dl, _ := ctx.Deadline()
	testutil.Until(t, 5*time.Second, "the shared deadline to pass", func() error {
		select {
		case <-ctx.Done():
			return nil
		default:
			return errors.New("Done still open")
		}
	})
	if now := time.Now(); now.Before(dl) {
		t.Fatalf("Done closed at %v, before the deadline %v", now, dl)
	}
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("Err after the deadline: %v", ctx.Err())
	}
	// A later request gets a new window, not the closed one.
	next := s.Context(context.Background())
	if next.Err() != nil {
		t.Fatalf("a request after the deadline starts expired: %v", next.Err())
	}
}

type key struct{}

func TestParentValuesPassButItsCancellationDoesNot(t *testing.T) {
	s := New(time.Hour, time.Second)
	parent, cancel := context.WithCancel(context.WithValue(context.Background(), key{}, "v"))
	ctx := s.Context(parent)
	cancel()
	if got := ctx.Value(key{}); got != "v" {
		t.Fatalf("Value = %v, want the parent's", got)
	}
	if ctx.Err() != nil {
		t.Fatalf("the parent's cancellation ended the wait: %v", ctx.Err())
	}
	// A child made with the context package still ends at the deadline.
	child, stop := context.WithCancel(ctx)
	defer stop()
	if dl, _ := child.Deadline(); dl != must(ctx.Deadline()) {
		t.Fatalf("child deadline %v, want %v", dl, must(ctx.Deadline()))
	}
}

func must(t time.Time, _ bool) time.Time { return t }

func TestConcurrentRequests(t *testing.T) {
	s := New(30*time.Millisecond, 5*time.Millisecond)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				ctx := s.Context(context.Background())
				if dl, _ := ctx.Deadline(); time.Until(dl) > 35*time.Millisecond {
					t.Errorf("deadline %v from now, want at most 35ms", time.Until(dl))
					return
				}
			}
		}()
	}
	wg.Wait()
}
