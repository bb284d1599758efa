package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/omnirouter/omnirouter/routing"
)

const (
	// MaxEventsWait bounds a long-poll's wait.
	MaxEventsWait = 30 * time.Second
	// DefaultEventsLimit and MaxEventsLimit bound one batch of events.
	DefaultEventsLimit = 100
	MaxEventsLimit     = 1000
	// sseHeartbeat is how often an idle SSE stream sends a comment line, so
	// that proxies and clients see the connection is alive.
	sseHeartbeat = 15 * time.Second
)

// MaxEventsPageBytes bounds a page of events: a page stops before it,
// with at least one event (one event larger than this is a page alone).
const MaxEventsPageBytes = 4 << 20

// EventsPage is the long-poll answer: pass next as after to continue;
// newest is the newest event id when the page was read.
type EventsPage struct {
	Events []EventView `json:"events"`
	Next   uint64      `json:"next"`
	Newest uint64      `json:"newest"`
}

// eventsPageJSON is EventsPage with its events encoded one by one, so
// that a page stops at a size.
type eventsPageJSON struct {
	Events []json.RawMessage `json:"events"`
	Next   uint64            `json:"next"`
	Newest uint64            `json:"newest"`
}

// appendJSON appends the page as json.Marshal writes it, given events that
// json.Marshal wrote, but without json.Marshal scanning every event again
// to compact it: with a thousand readers following the log that scan took
// a quarter of a node's CPU (BenchmarkEventsPage: 100 events, 105 µs
// against 1 µs; 2 vCPU, 2026-12-06).
func (p *eventsPageJSON) appendJSON(b []byte) []byte {
	b = append(b, `{"events":[`...)
	for i, e := range p.Events {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, e...)
	}
	b = append(b, `],"next":`...)
	b = strconv.AppendUint(b, p.Next, 10)
	b = append(b, `,"newest":`...)
	b = strconv.AppendUint(b, p.Newest, 10)
	return append(b, '}')
}

type eventsQuery struct {
	after uint64
	wait  time.Duration
	limit int
	level ReadLevel
}

func parseEventsQuery(c *gin.Context) (eventsQuery, error) {
	q := eventsQuery{limit: DefaultEventsLimit}
	var err error
	if v := c.Query("after"); v != "" {
		if q.after, err = strconv.ParseUint(v, 10, 64); err != nil {
			return q, invalid("invalid_after", "after must be an event id (a non-negative integer), got %q", v)
		}
	}
	if v := c.GetHeader("Last-Event-ID"); v != "" {
		if q.after, err = strconv.ParseUint(strings.TrimSpace(v), 10, 64); err != nil {
			return q, invalid("invalid_after", "Last-Event-ID must be an event id, got %q", v)
		}
	}
	if v := c.Query("wait"); v != "" {
		if q.wait, err = time.ParseDuration(v); err != nil || q.wait < 0 {
			return q, invalid("invalid_wait", "wait must be a non-negative duration such as \"5s\", got %q", v)
		}
		q.wait = min(q.wait, MaxEventsWait)
	}
	if v := c.Query("limit"); v != "" {
		if q.limit, err = strconv.Atoi(v); err != nil || q.limit < 1 || q.limit > MaxEventsLimit {
			return q, invalid("invalid_limit", "limit must be between 1 and %d, got %q", MaxEventsLimit, v)
		}
	}
	q.level, err = readLevel(c)
	return q, err
}

// GET /v1/events: the event log after an id, as a JSON long-poll or, with
// Accept: text/event-stream, as server-sent events. Event ids are the same on
// every node, so a client resumes anywhere from the last id it saw.
func (s *Server) events(c *gin.Context) {
	q, err := parseEventsQuery(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	if strings.Contains(c.GetHeader("Accept"), "text/event-stream") {
		s.streamEvents(c, q)
		return
	}
	arrived := time.Now()
	ctx, cancel := s.streamContext(c)
	defer cancel()
	if q.wait > 0 {
		release, ok := s.admitLongPoll(c)
		if !ok {
			return
		}
		defer release()
	}
	extendWriteDeadline(c, q.wait+30*time.Second)

	evs, newest, ok := s.readNewEvents(c, q)
	if !ok {
		return
	}
	if len(evs) == 0 && q.wait > 0 {
		wctx, wcancel := context.WithTimeout(ctx, q.wait)
		err := s.cluster.WaitEvents(wctx, q.after)
		wcancel()
		switch {
		case err == nil:
			if evs, newest, ok = s.readEvents(c, Stale, q.after, q.limit); !ok {
				return
			}
		case c.Request.Context().Err() != nil:
			return // the client went away
		case wctx.Err() == nil:
			s.fail(c, err)
			return
		}
	}
	if evs, newest, ok = s.linger(c, ctx, q, arrived, evs, newest); !ok {
		return
	}
	s.writeEventsPage(c, ctx, evs, q.after, newest)
}

// linger holds a long-poll's answer while its page is short: a page with
// fewer events than the reader's limit, holding every event this node has
// after the cursor, waits until the limit's worth of events is there or
// --events-linger has passed since the request arrived (never past its
// wait), then is read again with whatever came meanwhile. A reader that
// re-polls as soon as it is answered would otherwise be answered at once
// with the one or two events written since, and a thousand such readers
// make tens of thousands of requests a second; lingering answers each at
// most about once per linger, with more events per page. A reader that
// waited longer than that for its first event, or whose page is full, is
// answered at once. ok is false when the answer was written (an error) or
// the client went away.
func (s *Server) linger(c *gin.Context, ctx context.Context, q eventsQuery, arrived time.Time, evs []routing.Event, newest uint64) ([]routing.Event, uint64, bool) {
	if s.eventsLinger <= 0 || q.wait <= 0 || len(evs) == 0 || len(evs) >= q.limit || evs[len(evs)-1].ID < newest {
		return evs, newest, true
	}
	deadline := arrived.Add(min(s.eventsLinger, q.wait))
	if !time.Now().Before(deadline) {
		return evs, newest, true
	}
	// Event ids are consecutive: a full page is there once the event
	// limit ids past the cursor is.
	lctx, cancel := context.WithDeadline(ctx, deadline)
	_ = s.cluster.WaitEvents(lctx, q.after+uint64(q.limit)-1)
	cancel()
	if c.Request.Context().Err() != nil {
		return nil, 0, false // the client went away
	}
	// A full page, the linger's end or the node closing its readers: the
	// reader gets what there is now.
	return s.readEvents(c, Stale, q.after, q.limit)
}

// writeEventsPage encodes events one by one until the page would reach
// MaxEventsPageBytes (keeping at least one), taking each one's bytes from
// the answer budget (waiting for the first, stopping the page early when
// the budget has no room for more), and gives them back once the page is
// written. The page and its copy in the answer are counted.
func (s *Server) writeEventsPage(c *gin.Context, ctx context.Context, evs []routing.Event, after, newest uint64) {
	page := eventsPageJSON{Events: make([]json.RawMessage, 0, len(evs)), Next: after, Newest: newest}
	size, held := 64, int64(0)
	defer func() { s.answers.release(held) }()
	for i := range evs {
		b, err := s.eventJSON.encode(&evs[i])
		if err != nil {
			s.fail(c, err)
			return
		}
		if i > 0 && size+len(b)+1 > MaxEventsPageBytes {
			break
		}
		n := 2 * int64(len(b))
		if i == 0 {
			if err := s.answers.acquire(ctx, n); err != nil {
				s.fail(c, errorf(http.StatusServiceUnavailable, "busy", "this node is sending as many answers as its memory allows (--answer-memory); retry"))
				return
			}
		} else if !s.answers.tryAcquire(n) {
			break
		}
		held += n
		page.Events = append(page.Events, b)
		page.Next = evs[i].ID
		size += len(b) + 1
	}
	writeBody(c, http.StatusOK, page.appendJSON(make([]byte, 0, size+64)))
}

// admitLongPoll counts a waiting reader (a long-poll or an event stream)
// against --max-long-polls, answering 429 too_many_long_polls beyond it.
func (s *Server) admitLongPoll(c *gin.Context) (release func(), ok bool) {
	if s.longPolls.Add(1) > int64(s.maxLongPolls) {
		s.longPolls.Add(-1)
		c.Header("Retry-After", "1")
		s.fail(c, errorf(http.StatusTooManyRequests, "too_many_long_polls",
			"this node serves %d waiting event readers already; retry, or read without wait", s.maxLongPolls))
		return nil, false
	}
	return func() { s.longPolls.Add(-1) }, true
}

// readNewEvents reads the page a reader asked for. Every node numbers the
// events alike and holds only committed ones, so when this node already
// has events after the reader's cursor, a page of them skips nothing
// whatever the level asked for, and spares the linearizable read its round
// trip to the leader (with a thousand readers following the log, a sixth
// of a follower's CPU). A reader with nothing new here is read at its
// level, which is what tells "wait for the next" from "cursor ahead".
func (s *Server) readNewEvents(c *gin.Context, q eventsQuery) ([]routing.Event, uint64, bool) {
	if q.level != Stale {
		var evs []routing.Event
		var newest uint64
		ctx := s.deadlines.Context(c.Request.Context())
		by, err := s.cluster.Read(ctx, Stale, func(m *routing.Machine) {
			if m.LastEventID() > q.after {
				evs, newest, _ = eventsAfter(m, q.after, q.limit)
			}
		})
		if err == nil && len(evs) > 0 {
			c.Header("X-Omnirouter-Node", by)
			return evs, newest, true
		}
	}
	return s.readEvents(c, q.level, q.after, q.limit)
}

// readEvents reads up to limit events after an id, stopping once their
// size (routing.EventSize) passes MaxEventsPageBytes, and the newest event
// id, writing the error response when it fails (400 cursor_ahead, 410
// events_expired).
func (s *Server) readEvents(c *gin.Context, level ReadLevel, after uint64, limit int) ([]routing.Event, uint64, bool) {
	var evs []routing.Event
	var newest uint64
	var rerr error
	if !s.readAt(c, level, func(m *routing.Machine) { evs, newest, rerr = eventsAfter(m, after, limit) }) {
		return nil, 0, false
	}
	if rerr != nil {
		s.fail(c, rerr)
		return nil, 0, false
	}
	return evs, newest, true
}

// eventsAfter returns up to limit events with an id above after (fewer
// when their size passes MaxEventsPageBytes; at least one), and the newest
// id. A cursor beyond the newest event is an error (cursor_ahead): a client
// that kept it would silently skip every event up to it. Asking after the
// newest id is not: that is how a reader waits for the next event. When
// the events after the cursor are no longer all retained the error
// (events_expired) names the oldest retained id and says how to
// resynchronise.
func eventsAfter(m *routing.Machine, after uint64, limit int) ([]routing.Event, uint64, error) {
	newest := m.LastEventID()
	if after > newest {
		e := errorf(http.StatusBadRequest, "cursor_ahead",
			"event id %d is beyond the newest event, %d: a cursor holds an event id this API returned; read the current state, then resume with after=%d (newest_id)", after, newest, newest)
		e.NewestID = &newest
		return nil, newest, e
	}
	var evs []routing.Event
	var size int64
	err := m.EachEvent(after, func(e *routing.Event) bool {
		evs = append(evs, *e)
		size += routing.EventSize(e)
		return len(evs) < limit && size < MaxEventsPageBytes
	})
	if errors.Is(err, routing.ErrEventsExpired) {
		oldest := m.FirstRetainedEventID()
		e := errorf(http.StatusGone, "events_expired",
			"the events after id %d are no longer retained (the oldest kept is %d): read the current state (agents, the queue, the conversations you follow), then resume with after=%d (newest_id)", after, oldest, newest)
		e.OldestID, e.NewestID = &oldest, &newest
		return nil, newest, e
	}
	return evs, newest, err
}

// streamContext is the request's context, also canceled when the server
// closes its streams for shutdown.
func (s *Server) streamContext(c *gin.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(c.Request.Context())
	stop := context.AfterFunc(s.closing, cancel)
	return ctx, func() { stop(); cancel() }
}

// streamEvents serves the event log as server-sent events: id is the event
// id, event its type and data the event's JSON. Last-Event-ID resumes.
func (s *Server) streamEvents(c *gin.Context, q eventsQuery) {
	ctx, cancel := s.streamContext(c)
	defer cancel()
	release, ok := s.admitLongPoll(c)
	if !ok {
		return
	}
	defer release()
	// The first read decides the status: a cursor ahead is still a 400, an
	// expired one a 410.
	evs, _, ok := s.readEvents(c, q.level, q.after, q.limit)
	if !ok {
		return
	}
	h := c.Writer.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	c.Status(http.StatusOK)
	rc := http.NewResponseController(c.Writer)
	after := q.after
	for {
		_ = rc.SetWriteDeadline(time.Now().Add(sseHeartbeat + 30*time.Second))
		for i := range evs {
			data, err := s.eventJSON.encode(&evs[i])
			if err != nil {
				s.log.Error("encoding event", "id", evs[i].ID, "err", err)
				return
			}
			n := int64(len(data))
			if err := s.answers.acquire(ctx, n); err != nil {
				return
			}
			_, err = fmt.Fprintf(c.Writer, "id: %d\nevent: %s\ndata: %s\n\n", evs[i].ID, evs[i].Type, data)
			s.answers.release(n)
			if err != nil {
				return
			}
			after = evs[i].ID
		}
		if len(evs) == 0 {
			// A comment line: keeps the connection alive, ignored by clients.
			if _, err := fmt.Fprint(c.Writer, ": keep-alive\n\n"); err != nil {
				return
			}
		}
		if err := rc.Flush(); err != nil {
			return
		}
		if len(evs) < q.limit {
			wctx, wcancel := context.WithTimeout(ctx, sseHeartbeat)
			err := s.cluster.WaitEvents(wctx, after)
			wcancel()
			if ctx.Err() != nil {
				return
			}
			if err != nil && !errors.Is(err, context.DeadlineExceeded) {
				s.sseError(c, err)
				return
			}
		}
		var rerr error
		var lerr error
		_, lerr = s.cluster.Read(ctx, Stale, func(m *routing.Machine) { evs, _, rerr = eventsAfter(m, after, q.limit) })
		if lerr == nil {
			lerr = rerr
		}
		if lerr != nil {
			if ctx.Err() == nil {
				s.sseError(c, lerr)
			}
			return
		}
	}
}

// sseError ends a stream with an error event carrying the usual error body.
func (s *Server) sseError(c *gin.Context, err error) {
	ae := toAPIError(err)
	data, _ := json.Marshal(errorBody{Error: ae.detail()})
	fmt.Fprintf(c.Writer, "event: error\ndata: %s\n\n", data)
	_ = http.NewResponseController(c.Writer).Flush()
}
