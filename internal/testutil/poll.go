// Package testutil holds what the project's tests share and the product
// never uses: how tests wait (a condition polled with a deadline, never a
// bare sleep), free loopback addresses for servers a test starts, and
// throwaway certificate authorities for the TLS tests. It is imported by
// tests and by the test tools under tools/ only.
package testutil

import (
	"testing"
	"time"
)

// PollInterval is the pause between two looks at the condition.
const PollInterval = 10 * time.Millisecond

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
		time.Sleep(PollInterval)
	}
}
