// Package pause owns the one way this project waits out a duration in
// running code (a retry's backoff, a poll's interval, a fault held for a
// while): for d, or less if a context ends first. Waiting for an event with
// a time limit is a select on the event and a timer, not a pause; tests
// wait with internal/testutil.Until.
package pause

import (
	"context"
	"time"
)

// For waits d and reports true, or returns false as soon as ctx ends.
func For(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
