package testutil

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// recorder is a testing.TB that records Fatalf instead of stopping.
type recorder struct {
	testing.TB
	failed string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = format
	for _, a := range args {
		if err, ok := a.(error); ok {
			r.failed += " " + err.Error()
		}
	}
}

// TestUntil: a condition that comes true ends the wait; one that never
// does fails the test with its last error.
func TestUntil(t *testing.T) {
	n := 0
	Until(t, 5*time.Second, "the third look", func() error {
		if n++; n < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if n != 3 {
		t.Fatalf("looked %d times, want 3", n)
	}
	r := &recorder{TB: t}
	Until(r, 30*time.Millisecond, "never", func() error { return errors.New("still false") })
	if !strings.Contains(r.failed, "still false") {
		t.Fatalf("a condition that never held did not fail the test: %q", r.failed)
	}
}
