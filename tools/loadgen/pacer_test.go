package loadgen

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"
)

// fakeClock is a clock that moves only when the pacer sleeps or the test
// advances it.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration // the pacer's goroutine only
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func (c *fakeClock) pacer(start time.Time, d time.Duration, rate float64) *pacer {
	p := newPacer(start, start.Add(d), rate)
	p.now = func() time.Time {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.now
	}
	p.sleep = func(_ context.Context, d time.Duration) {
		c.sleeps = append(c.sleeps, d)
		c.advance(d)
	}
	return p
}

func TestPacerKeepsItsScheduleWhenTheWorkersFallBehind(t *testing.T) {
	start := time.Unix(1_700_000_000, 0)
	clock := &fakeClock{now: start}
	// 200 arrivals/s for 100 ms: due at 0, 5, ..., 95 ms.
	p := clock.pacer(start, 100*time.Millisecond, 200)
	if n := p.scheduled(); n != 20 {
		t.Fatalf("scheduled %d arrivals, want 20", n)
	}
	out := make(chan time.Time)
	sent := make(chan int, 1)
	go func() { sent <- p.run(context.Background(), out) }()

	var got []time.Time
	for range 5 {
		got = append(got, <-out)
	}
	// The workers are busy for 40 ms: eight arrivals fall due meanwhile
	// (5 to 12 or 6 to 13, as the pacer's goroutine had got on).
	clock.advance(40 * time.Millisecond)
	for len(got) < 20 {
		got = append(got, <-out)
	}
	if n := <-sent; n != 20 || len(got) != 20 {
		t.Fatalf("sent %d, received %d arrivals; want 20", n, len(got))
	}
	for i, due := range got {
		if want := start.Add(time.Duration(i) * 5 * time.Millisecond); !due.Equal(want) {
			t.Fatalf("arrival %d due at %v, want %v: a late arrival must keep its own due time", i, due.Sub(start), want.Sub(start))
		}
	}
	// It slept once for each arrival still ahead of the clock: not for the
	// first (due at once), nor for the eight that fell due while the
	// workers were busy.
	if len(clock.sleeps) != 19-8 {
		t.Errorf("slept %d times, want 11: %v", len(clock.sleeps), clock.sleeps)
	}
}

// A timer that fires late is the tool's lateness: the arrival it woke for
// is timed from the wake-up, and the ones due by then from their due times.
func TestPacerTimesALateWakeUpFromTheWakeUp(t *testing.T) {
	start := time.Unix(1_700_000_000, 0)
	clock := &fakeClock{now: start}
	p := clock.pacer(start, 30*time.Millisecond, 100) // due at 0, 10, 20 ms
	p.sleep = func(_ context.Context, d time.Duration) { clock.advance(d + 12*time.Millisecond) }
	out := make(chan time.Time)
	sent := make(chan int, 1)
	go func() { sent <- p.run(context.Background(), out) }()
	got := []time.Duration{(<-out).Sub(start), (<-out).Sub(start), (<-out).Sub(start)}
	<-sent
	// Arrival 1 woke at 22 ms, when arrival 2 was due already.
	if want := []time.Duration{0, 22 * time.Millisecond, 20 * time.Millisecond}; !slices.Equal(got, want) {
		t.Fatalf("arrivals timed from %v, want %v", got, want)
	}
}

func TestPacerStopsWithItsContext(t *testing.T) {
	start := time.Unix(1_700_000_000, 0)
	clock := &fakeClock{now: start}
	p := clock.pacer(start, time.Second, 1000)
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan time.Time)
	sent := make(chan int, 1)
	go func() { sent <- p.run(ctx, out) }()
	<-out
	<-out
	cancel() // nobody takes the third arrival
	if n := <-sent; n != 2 {
		t.Fatalf("sent %d arrivals after the context ended, want 2", n)
	}
}

func TestPacerScheduledCountsArrivalsDueBeforeTheEnd(t *testing.T) {
	start := time.Unix(1_700_000_000, 0)
	for _, tc := range []struct {
		d    time.Duration
		rate float64
		want int
	}{
		{time.Second, 1000, 1000},         // due at 0 .. 999 ms; 1000 ms is the end
		{time.Second + 1, 1000, 1001},     // one nanosecond more takes the arrival at 1 s
		{1500 * time.Millisecond, 3, 5},   // 0, 333, 667, 1000, 1333 ms
		{10 * time.Millisecond, 0.5, 1},   // the first arrival is due at once
		{20 * time.Second, 15000, 300000}, // float steps do not lose one
	} {
		if got := newPacer(start, start.Add(tc.d), tc.rate).scheduled(); got != tc.want {
			t.Errorf("%v at %v/s: scheduled %d, want %d", tc.d, tc.rate, got, tc.want)
		}
	}
}
