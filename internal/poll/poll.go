// Package poll is how tests wait: a condition polled with a deadline,
// never a bare sleep. It is imported by tests only.
package poll

import (
	"testing"
	"time"
)

// Interval is the pause between two looks at the condition.
const Interval = 10 * time.Millisecond

// Until calls cond until it returns nil; when timeout passes first, it
// fails t with what and cond's last error.
func Until(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s: %v", timeout, what, err)
			return
		}
		time.Sleep(Interval)
	}
}
