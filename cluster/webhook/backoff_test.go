package webhook_test

import (
	"testing"
	"time"

	"github.com/omnirouter/omnirouter/cluster/webhook"
)

func TestBackoff(t *testing.T) {
	b := webhook.DefaultBackoff
	within := func(failures int, jitter float64, lo, hi time.Duration) {
		t.Helper()
		if d := b.Delay(failures, jitter); d < lo || d > hi {
			t.Errorf("Delay(%d, %v) = %v, want %v..%v", failures, jitter, d, lo, hi)
		}
	}
	// From 1 s, never below it.
	within(1, 0, time.Second, time.Second)
	within(1, 0.999, time.Second, 1200*time.Millisecond)
	within(0, 0.5, time.Second, 1200*time.Millisecond)
	// Doubling, with ±20% jitter.
	within(2, 0, 1600*time.Millisecond, 1600*time.Millisecond)
	within(2, 0.5, 2*time.Second, 2*time.Second)
	within(5, 0.5, 16*time.Second, 16*time.Second)
	within(5, 0, 12800*time.Millisecond, 12800*time.Millisecond)
	// Up to 5 min, never above it, however many failures.
	within(9, 0.5, 256*time.Second, 256*time.Second)
	within(10, 0.5, 5*time.Minute, 5*time.Minute)
	within(10, 0.999, 5*time.Minute, 5*time.Minute)
	within(10, 0, 4*time.Minute, 4*time.Minute)
	within(1_000_000, 0.999, 4*time.Minute, 5*time.Minute)
	// Without jitter's variation, the delay never shrinks.
	prev := time.Duration(0)
	for f := 1; f < 40; f++ {
		d := b.Delay(f, 0.5)
		if d < prev {
			t.Fatalf("Delay(%d) = %v < Delay(%d) = %v", f, d, f-1, prev)
		}
		prev = d
	}
}
