package webhook

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/omnirouter/omnirouter/cluster"
	"github.com/omnirouter/omnirouter/internal/pause"
	"github.com/omnirouter/omnirouter/routing"
)

// worker delivers one version of one subscription during one term.
type worker struct {
	s      *session
	sub    routing.Webhook // as it was when the worker started
	p      *progress
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	snd    *sender // nil: through the http.Client
	signer *signer
	sig    []byte // the signature of the request being written
	hdr    []byte // its header lines
	obs    attemptMetrics
}

// startWorker runs a worker for sub once the previous one for it has
// stopped; session.mu is held.
func (s *session) startWorker(sub routing.Webhook, p *progress) *worker {
	ctx, cancel := context.WithCancel(s.ctx)
	w := &worker{s: s, sub: sub, p: p, ctx: ctx, cancel: cancel, done: make(chan struct{})}
	prev := p.last
	p.last = w
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(w.done)
		if prev != nil {
			select {
			case <-prev.done:
			case <-ctx.Done():
				return
			}
		}
		w.snd = s.d.newSender(sub.URL)
		w.signer = newSigner(sub.Secret)
		w.obs = s.d.metrics.forWebhook(sub.ID)
		defer func() {
			if w.snd != nil {
				w.snd.close()
			}
		}()
		w.run()
	}()
	return w
}

// run delivers the wanted events after the cursor, in id order, each until
// it is delivered, until the worker is canceled. Events are sent in
// windows (attempt); after a failure the failed event is tried again
// alone, with backoff, and windows resume once it is delivered.
func (w *worker) run() {
	var batch []routing.Event
	d := w.s.d
	for w.ctx.Err() == nil {
		var scanned uint64
		var ok bool
		batch, scanned, ok = w.read(batch[:0])
		if !ok {
			return
		}
		failures := 0
		for i := 0; i < len(batch); {
			w.p.advance(batch[i].ID - 1) // every wanted event before it is delivered
			window := 1
			if failures == 0 {
				window = w.window()
			}
			n, err := w.attempt(batch[i:min(len(batch), i+window)])
			if n > 0 && failures > 0 {
				d.log.Info("webhook delivered after failures", "webhook", w.sub.ID, "event", batch[i].ID, "failures", failures)
				failures = 0
			}
			i += n
			if err == nil {
				continue
			}
			if w.ctx.Err() != nil {
				return
			}
			if w.p.failed(err.Error(), time.Now().UnixMilli()) {
				d.log.Warn("webhook delivery failed; retrying with backoff", "webhook", w.sub.ID, "event", batch[i].ID, "err", err)
			}
			failures++
			if !pause.For(w.ctx, d.cfg.Backoff.Delay(failures, rand.Float64())) {
				return
			}
		}
		w.p.advance(scanned)
		if len(batch) == 0 {
			ctx, cancel := context.WithTimeout(w.ctx, idleWait)
			_ = d.node.WaitEvents(ctx, scanned)
			cancel()
		}
		clear(batch) // drop references to transcripts
	}
}

// window is the most events the next attempt may send.
func (w *worker) window() int {
	if w.snd == nil {
		return 1
	}
	return w.snd.window()
}

// read appends to buf the next wanted events after the cursor (the
// progress's, or the state's when retention moved it further) and returns
// the last event id it looked at. ok is false once the subscription is
// gone.
func (w *worker) read(buf []routing.Event) (evs []routing.Event, scanned uint64, ok bool) {
	from := w.p.position()
	ok = true
	_, err := w.s.d.node.Read(w.ctx, cluster.Stale, func(m *routing.Machine) {
		sub, found := m.Webhook(w.sub.ID)
		if !found || sub.Seq != w.sub.Seq {
			ok = false
			return
		}
		// A cursor in the state is never behind the retained events.
		from = max(from, sub.Cursor, m.FirstRetainedEventID()-1)
		scanned = from
		n := 0
		_ = m.EachEvent(from, func(e *routing.Event) bool {
			scanned = e.ID
			if w.sub.Wants(e.Type) {
				buf = append(buf, *e)
			}
			n++
			return len(buf) < readBatch && n < maxScan
		})
	})
	return buf, scanned, ok && err == nil
}

// current reports whether the state still holds the worker's subscription
// as it started, active: a pause, an update or a delete stops delivery
// before the next attempt, on the leader that applied it.
func (w *worker) current() bool {
	ok := false
	_, _ = w.s.d.node.Read(w.ctx, cluster.Stale, func(m *routing.Machine) {
		sub, found := m.Webhook(w.sub.ID)
		ok = found && sub.Seq == w.sub.Seq && sub.Version == w.sub.Version && sub.State() == routing.WebhookActive
	})
	return ok
}

// attempt sends evs[0] and, on the worker's own connection, as many of
// the events after it as fit in one window, as soon as the node is
// confirmed to lead in the session's term. It returns how many of them,
// from the first, were delivered (recorded in the progress and the
// metrics), and why the next one was not (nil: every event sent was
// delivered; fewer than len(evs) may have been sent).
//
// The leadership and subscription checks are made once per window, not
// per event: the window's requests leave in one write right after them,
// so a check between two of them would look at the same moment. A
// pause, update or delete applied while a window is on its way stops
// delivery before the next window, as one applied while a single request
// is on its way stops it before the next request; a leader that loses
// its term cancels the window's answers at once.
func (w *worker) attempt(evs []routing.Event) (int, error) {
	d := w.s.d
	for !w.s.leading() {
		if !pause.For(w.ctx, 50*time.Millisecond) {
			return 0, w.ctx.Err()
		}
	}
	if !w.current() {
		w.cancel() // paused, changed or deleted: the supervisor takes it from here
		return 0, context.Canceled
	}
	if w.snd == nil {
		// Through the http.Client: a proxy is in the way, or one was
		// configured. One request at a time.
		body, err := w.encode(&evs[0])
		if err != nil {
			return 0, err
		}
		start := time.Now()
		ts := start.Unix()
		w.sig = w.signer.append(w.sig[:0], ts, body)
		err = clientPost(w.ctx, d.cfg.Client, d.cfg.Timeout, w.sub.URL, d.userAgent, w.headers(&evs[0], ts), body)
		if w.ctx.Err() != nil {
			return 0, w.ctx.Err()
		}
		w.obs.attempt(time.Since(start), err)
		if err != nil {
			return 0, err
		}
		if w.p.succeeded(evs[0].ID, 1, time.Now().UnixMilli(), d.cfg.CommitEvery) {
			w.s.askCommit()
		}
		return 1, nil
	}
	snd := w.snd
	snd.reset()
	ts := time.Now().Unix()
	for i := range evs {
		body, err := w.encode(&evs[i])
		if err != nil {
			if i == 0 {
				return 0, err
			}
			break // the window ends before it: it fails as the first of the next
		}
		if i > 0 && snd.size()+len(body) > maxWindowBytes {
			break
		}
		w.sig = w.signer.append(w.sig[:0], ts, body)
		h := w.headers(&evs[i], ts)
		w.hdr = h.appendLines(w.hdr[:0])
		snd.add(body, w.hdr)
	}
	n, err := snd.send(w.ctx)
	// Answers read before a cancellation are deliveries all the same: the
	// progress and the metrics count them.
	for i := range n {
		w.obs.attempt(snd.took[i], nil)
	}
	if n > 0 && w.p.succeeded(evs[n-1].ID, n, snd.answeredAt.UnixMilli(), d.cfg.CommitEvery) {
		w.s.askCommit()
	}
	if err != nil && w.ctx.Err() == nil && len(snd.took) > n {
		w.obs.attempt(snd.took[n], err)
	}
	return n, err
}

// encode is ev's body.
func (w *worker) encode(ev *routing.Event) ([]byte, error) {
	body, err := w.s.d.cfg.Encode(ev)
	if err != nil {
		// A bug, not the receiver's fault; retried like a failure so that
		// the event is never skipped.
		w.s.d.log.Error("encoding a webhook event", "webhook", w.sub.ID, "event", ev.ID, "err", err)
		return nil, fmt.Errorf("encoding the event: %w", err)
	}
	return body, nil
}

// headers are the headers of an attempt at ev signed at ts, with the
// signature in w.sig.
func (w *worker) headers(ev *routing.Event, ts int64) deliveryHeaders {
	return deliveryHeaders{eventID: ev.ID, eventType: ev.Type, timestamp: ts, signature: w.sig, node: w.s.d.nodeID, term: w.s.term}
}

// deliveryHeaders are the headers of one attempt besides the framing ones.
type deliveryHeaders struct {
	eventID   uint64
	eventType string
	timestamp int64
	signature []byte
	node      string
	term      uint64
}

// appendLines appends the headers as lines, each ending in CRLF.
func (h *deliveryHeaders) appendLines(b []byte) []byte {
	b = append(b, HeaderEventID+": "...)
	b = strconv.AppendUint(b, h.eventID, 10)
	b = append(b, "\r\n"+HeaderEventType+": "...)
	b = append(b, h.eventType...)
	b = append(b, "\r\n"+HeaderTimestamp+": "...)
	b = strconv.AppendInt(b, h.timestamp, 10)
	b = append(b, "\r\n"+HeaderSignature+": "...)
	b = append(b, h.signature...)
	b = append(b, "\r\n"+HeaderNode+": "...)
	b = append(b, h.node...)
	b = append(b, "\r\n"+HeaderTerm+": "...)
	b = strconv.AppendUint(b, h.term, 10)
	return append(b, "\r\n"...)
}

// clientPost sends one attempt through client; nil means a 2xx within
// timeout.
func clientPost(ctx context.Context, client *http.Client, timeout time.Duration, url, userAgent string, h deliveryHeaders, body []byte) error {
	reqCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(reqCtx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set(HeaderEventID, strconv.FormatUint(h.eventID, 10))
	req.Header.Set(HeaderEventType, h.eventType)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(h.timestamp, 10))
	req.Header.Set(HeaderSignature, string(h.signature))
	req.Header.Set(HeaderNode, h.node)
	req.Header.Set(HeaderTerm, strconv.FormatUint(h.term, 10))
	resp, err := client.Do(req)
	if err == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxAnswerBody))
		resp.Body.Close()
	}
	switch {
	case reqCtx.Err() != nil && ctx.Err() == nil:
		return fmt.Errorf("%w (%v)", errTimeout, timeout)
	case err != nil:
		return err
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return nil
}
