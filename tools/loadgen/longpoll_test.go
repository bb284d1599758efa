package loadgen

import (
	"bytes"
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

// TestEventPageIsReadFromItsTail: a reader takes next and newest from the
// end of the page, even when an event's data holds the same words, and
// counts the events from its cursor; a page without them is an error.
func TestEventPageIsReadFromItsTail(t *testing.T) {
	body := `{"events":[{"id":41,"data":{"text":"\"next\":999,\"newest\":999}"}},{"id":42}],"next":42,"newest":57}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("bad") != "" {
			fmt.Fprint(w, `{"events":[]}`)
			return
		}
		fmt.Fprintln(w, body)
	}))
	defer srv.Close()
	var buf bytes.Buffer
	page, err := getEvents(context.Background(), srv.Client(), srv.URL+"/v1/events", "", 40, &buf)
	if err != nil || page.Next != 42 || page.Newest != 57 || page.Events != 2 {
		t.Fatalf("page %+v, err %v; want next 42, newest 57, 2 events", page, err)
	}
	if _, err := getEvents(context.Background(), srv.Client(), srv.URL+"/v1/events?bad=1", "", 40, &buf); err == nil {
		t.Fatal("a page without next and newest was read")
	}
}
