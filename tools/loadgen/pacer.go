package loadgen

import (
	"context"
	"time"

	"github.com/omnirouter/omnirouter/internal/pause"
)

// A pacer hands out the arrivals of an open-loop run: arrival i is due at
// start + i/rate, whether or not the cluster kept up with the ones before.
// Each arrival carries its due time, and the first operation it starts is
// timed from that time. If every worker is busy, arrivals wait, and the wait
// counts in their latency, as it does for a visitor whose chat the service
// is slow to take. A closed loop, where each client starts its next
// conversation only when the last one ends, slows its own arrivals when the
// service slows, and so hides the queue (coordinated omission).
type pacer struct {
	start    time.Time
	end      time.Time // arrivals are due before end
	interval float64   // nanoseconds between arrivals

	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) // returns early when ctx is done
}

func newPacer(start, end time.Time, rate float64) *pacer {
	return &pacer{start: start, end: end, interval: float64(time.Second) / rate,
		now: time.Now, sleep: func(ctx context.Context, d time.Duration) { pause.For(ctx, d) }}
}

// due is when arrival i is due.
func (p *pacer) due(i int) time.Time {
	return p.start.Add(time.Duration(float64(i) * p.interval))
}

// scheduled is how many arrivals are due before the end of the run.
func (p *pacer) scheduled() int {
	n := int(float64(p.end.Sub(p.start)) / p.interval)
	if p.due(n).Before(p.end) {
		n++
	}
	return n
}

// run sends each arrival on out once it is due, until the run ends or ctx
// is done, and returns how many it sent. A send blocks while every worker
// is busy; the arrivals that fall due meanwhile follow at once, each with
// its own due time, so the wait counts in their latency.
//
// What it sends is the time to measure the arrival from: its due time, or
// when the pacer woke for it if that was later. A timer fires late (up to a
// millisecond on an idle machine), and that lateness is the tool's, not
// the cluster's: counted, it would add ~0.7 ms to every creation at low
// rates.
func (p *pacer) run(ctx context.Context, out chan<- time.Time) int {
	for i := 0; ; i++ {
		due := p.due(i)
		if !due.Before(p.end) {
			return i
		}
		from := due
		if wait := due.Sub(p.now()); wait > 0 {
			p.sleep(ctx, wait)
			from = p.now()
			if from.Before(due) { // woken early: ctx is done, or a coarse clock
				from = due
			}
		}
		select {
		case out <- from:
		case <-ctx.Done():
			return i
		}
	}
}
