package webhook

import "time"

// Backoff is when a delivery is tried again after failures: Min after the
// first, doubling with each further failure up to Max, each delay scaled by
// a random factor between 0.8 and 1.2 (so that receivers that failed
// together are not retried together) and kept within Min..Max.
type Backoff struct {
	Min, Max time.Duration
}

// DefaultBackoff retries from 1 s to 5 min.
var DefaultBackoff = Backoff{Min: time.Second, Max: 5 * time.Minute}

// Delay is the wait before the next attempt after failures consecutive
// failures (1 for the first), with jitter in [0, 1) (a uniform random
// number).
func (b Backoff) Delay(failures int, jitter float64) time.Duration {
	d := b.Min
	for i := 1; i < failures && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	d = time.Duration(float64(d) * (0.8 + 0.4*jitter))
	return max(b.Min, min(d, b.Max))
}
