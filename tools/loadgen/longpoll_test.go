package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
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

// The readers-only workload writes nothing and sets up no agents; its
// readers follow what other clients write (here, the test) from the tail,
// and the memory sampler covers the run.
func TestReadersOnlyWorkloadFollowsOthersWrites(t *testing.T) {
	target := startNode(t)
	newest := func() uint64 {
		var page struct{ Newest uint64 }
		getJSON(t, target+"/v1/events?after=0&limit=1", &page)
		return page.Newest
	}
	agents := func() int {
		var page struct{ Agents []json.RawMessage }
		getJSON(t, target+"/v1/agents", &page)
		return len(page.Agents)
	}
	before := newest()

	// Another client writes through the whole run.
	ctx, stop := context.WithCancel(context.Background())
	writerDone := make(chan int)
	go func() {
		n := 0
		for ctx.Err() == nil {
			body := fmt.Sprintf(`{"id":"w%06d","channel":"chat","message":"hi"}`, n)
			resp, err := http.Post(target+"/v1/conversations", "application/json", strings.NewReader(body))
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusCreated {
					n++
				}
			}
		}
		writerDone <- n
	}()
	const readers = 3
	rep, err := Run(context.Background(), Config{Targets: []string{target}, Duration: 1500 * time.Millisecond,
		Concurrency: 1, Agents: 1, Workload: WorkloadNone, LongPolls: readers, SampleEvery: 200 * time.Millisecond})
	stop()
	written := <-writerDone
	if err != nil {
		t.Fatal(err)
	}
	emitted := int64(newest() - before)
	if written == 0 || emitted == 0 {
		t.Fatalf("the test's writer created %d conversations, %d events", written, emitted)
	}
	if len(rep.Ops) != 0 || rep.Verify != nil {
		t.Errorf("a readers-only run wrote (%v) or verified (%+v)", rep.Ops, rep.Verify)
	}
	if n := agents(); n != 0 {
		t.Errorf("%d agents registered by a readers-only run", n)
	}
	lp := rep.LongPolls
	if lp == nil || lp.Clients != readers || len(lp.Errors) != 0 || lp.Requests < readers {
		t.Fatalf("long polls %+v", lp)
	}
	// Each reader starts at the tail, so it reads at most every event of
	// the run, and all but those written before its first page.
	if lp.Events == 0 || lp.Events > readers*emitted {
		t.Fatalf("readers read %d events; %d were written during the run (%d readers)", lp.Events, emitted, readers)
	}
	if m := rep.Memory; m == nil || len(m.Seconds) < 3 || len(m.Nodes) != 1 || m.Nodes[0].HeapLive[0] <= 0 {
		t.Fatalf("memory samples %+v", rep.Memory)
	}
}

// getJSON decodes the answer to GET url into v.
func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}
