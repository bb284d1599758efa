package loadgen

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/omnirouter/omnirouter/internal/testutil"
)

// TestLongPollsResynchroniseOnAnExpiredCursor: a reader whose cursor
// expired (410) resumes from the newest id the answer names, instead of
// asking again with the same cursor.
func TestLongPollsResynchroniseOnAnExpiredCursor(t *testing.T) {
	const newest = 500
	var mu sync.Mutex
	var afters []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		after := r.URL.Query().Get("after")
		mu.Lock()
		afters = append(afters, after)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if n, _ := strconv.Atoi(after); n < 100 {
			w.WriteHeader(http.StatusGone)
			fmt.Fprintf(w, `{"error":{"code":"events_expired","message":"gone","oldest_id":100,"newest_id":%d}}`, newest)
			return
		}
		select { // a long-poll that nothing wakes
		case <-r.Context().Done():
		case <-time.After(200 * time.Millisecond):
		}
		fmt.Fprintf(w, `{"events":[],"next":%s,"newest":%d}`, after, newest)
	}))
	defer srv.Close()

	ctx, cancel := context.WithCancel(context.Background())
	wait := runLongPolls(ctx, []string{srv.URL}, "", nil, 1)
	testutil.Until(t, 10*time.Second, "three requests", func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(afters) < 3 {
			return fmt.Errorf("%d requests", len(afters))
		}
		return nil
	})
	cancel()
	lp := wait()
	mu.Lock()
	defer mu.Unlock()
	if len(afters) < 3 {
		t.Fatalf("the reader made %d requests: %v", len(afters), afters)
	}
	if afters[0] != "0" || afters[1] != strconv.Itoa(newest) || afters[2] != strconv.Itoa(newest) {
		t.Errorf("cursors asked for: %v; want 0, then %d from the 410 answer", afters, newest)
	}
	if lp.Errors["410"] != 1 {
		t.Errorf("errors %v, want one 410", lp.Errors)
	}
}
