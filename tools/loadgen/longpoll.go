package loadgen

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	json "github.com/goccy/go-json"

	"github.com/omnirouter/omnirouter/internal/pause"
)

// LongPolls is what the run's event readers saw: clients that follow the
// event log with long-polls (GET /v1/events?after=N&wait=30s), each
// re-polling from the last id it got as soon as an answer comes, as an
// agent workspace or an integration does.
type LongPolls struct {
	Clients  int            `json:"clients"`
	Requests int64          `json:"requests"`
	Events   int64          `json:"events"`
	Errors   map[string]int `json:"errors,omitempty"`
}

// runLongPolls starts n readers spread over the targets; they stop with
// ctx and the returned function waits for them and reports.
func runLongPolls(ctx context.Context, targets []string, token string, tlsConfig *tls.Config, n int) func() *LongPolls {
	lp := &LongPolls{Clients: n, Errors: map[string]int{}}
	var requests, events atomic.Int64
	var mu sync.Mutex
	tr := &http.Transport{TLSClientConfig: tlsConfig, MaxIdleConnsPerHost: n, MaxConnsPerHost: n, IdleConnTimeout: time.Minute}
	hc := &http.Client{Transport: tr, Timeout: time.Minute}
	var wg sync.WaitGroup
	for i := range n {
		target := targets[i%len(targets)]
		wg.Go(func() {
			var after uint64
			var buf bytes.Buffer
			first := true
			for ctx.Err() == nil {
				url := fmt.Sprintf("%s/v1/events?after=%d&wait=30s", target, after)
				if first {
					// Start at the tail: the reader cares about what happens
					// from now on.
					url = target + "/v1/events?after=0&limit=1"
				}
				page, err := getEvents(ctx, hc, url, token, after, &buf)
				requests.Add(1)
				var cursorErr *cursorError
				if errors.As(err, &cursorErr) {
					// The cursor expired (410) or is ahead (400): resynchronise
					// from the newest id, as the answer says.
					mu.Lock()
					lp.Errors[err.Error()]++
					mu.Unlock()
					after, first = cursorErr.newest, false
					continue
				}
				if err != nil {
					if ctx.Err() == nil {
						mu.Lock()
						lp.Errors[err.Error()]++
						mu.Unlock()
						pause.For(ctx, 100*time.Millisecond)
					}
					continue
				}
				if first {
					after, first = page.Newest, false
					continue
				}
				events.Add(int64(page.Events))
				after = page.Next
			}
		})
	}
	return func() *LongPolls {
		wg.Wait()
		tr.CloseIdleConnections()
		lp.Requests, lp.Events = requests.Load(), events.Load()
		return lp
	}
}

// eventsPage is the part of GET /v1/events the readers read: the cursor
// fields and how many events came (ids are consecutive, so next minus the
// cursor the page was asked from). The events themselves are not decoded:
// a thousand readers of every event decoding each one took most of a core
// from the machine they measure.
type eventsPage struct {
	Events int
	Next   uint64
	Newest uint64
}

// pageTail matches the end of a page, after its events: the server writes
// "next" and "newest" last, so the last match is the page's own even when
// an event's data holds the same words.
var pageTail = regexp.MustCompile(`"next":(\d+),"newest":(\d+)\}\s*$`)

// getEvents reads one page after the cursor after into buf (reused).
func getEvents(ctx context.Context, hc *http.Client, url, token string, after uint64, buf *bytes.Buffer) (eventsPage, error) {
	var page eventsPage
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return page, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return page, fmt.Errorf("transport")
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var body struct {
			Error struct {
				NewestID *uint64 `json:"newest_id"`
			} `json:"error"`
		}
		if json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&body) == nil && body.Error.NewestID != nil &&
			(resp.StatusCode == http.StatusGone || resp.StatusCode == http.StatusBadRequest) {
			return page, &cursorError{status: resp.StatusCode, newest: *body.Error.NewestID}
		}
		io.Copy(io.Discard, resp.Body)
		return page, fmt.Errorf("%d", resp.StatusCode)
	}
	buf.Reset()
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		return page, fmt.Errorf("transport")
	}
	b := buf.Bytes()
	m := pageTail.FindSubmatch(b[max(0, len(b)-96):])
	if m == nil {
		return page, fmt.Errorf("malformed page")
	}
	page.Next, _ = strconv.ParseUint(string(m[1]), 10, 64)
	page.Newest, _ = strconv.ParseUint(string(m[2]), 10, 64)
	if page.Next < after {
		return page, fmt.Errorf("malformed page")
	}
	page.Events = int(page.Next - after)
	return page, nil
}

// cursorError is a 410 events_expired or 400 cursor_ahead answer: the
// reader resumes from newest.
type cursorError struct {
	status int
	newest uint64
}

func (e *cursorError) Error() string { return strconv.Itoa(e.status) }
