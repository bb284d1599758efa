// Package pause owns the one way this project waits out a duration in
// running code: for d, or less if a context ends first. (Tests wait with
// internal/testutil.Until instead.)
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
