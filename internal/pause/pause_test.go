package pause

import (
	"context"
	"testing"
	"time"
)

func TestForWaitsTheDuration(t *testing.T) {
	start := time.Now()
	if !For(context.Background(), 5*time.Millisecond) {
		t.Fatal("For reported an ended context")
	}
	if waited := time.Since(start); waited < 5*time.Millisecond {
		t.Fatalf("returned after %v, before the 5 ms", waited)
	}
}

func TestForReturnsWhenTheContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	done := make(chan bool, 1)
	go func() { done <- For(ctx, time.Hour) }()
	select {
	case waited := <-done:
		if waited {
			t.Fatal("For reported an hour waited out on an ended context")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("For did not return within 10 s of its context ending (it waits an hour)")
	}
}
