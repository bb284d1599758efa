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
	sig    []byte // the current attempt's signature
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
// it is delivered, until the worker is canceled.
func (w *worker) run() {
	var batch []routing.Event
	for w.ctx.Err() == nil {
		var scanned uint64
		var ok bool
		batch, scanned, ok = w.read(batch[:0])
		if !ok {
			return
		}
		for i := range batch {
			w.p.advance(batch[i].ID - 1) // every wanted event before it is delivered
			if !w.deliver(&batch[i]) {
				return
			}
		}
		w.p.advance(scanned)
		if len(batch) == 0 {
			ctx, cancel := context.WithTimeout(w.ctx, idleWait)
			_ = w.s.d.node.WaitEvents(ctx, scanned)
			cancel()
		}
		clear(batch) // drop references to transcripts
	}
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

// deliver posts ev until the receiver takes it; false when the worker was
// canceled first.
func (w *worker) deliver(ev *routing.Event) bool {
	d := w.s.d
	for failures := 0; ; {
		err := w.attempt(ev)
		if w.ctx.Err() != nil {
			return false
		}
		now := time.Now().UnixMilli()
		if err == nil {
			if failures > 0 {
				d.log.Info("webhook delivered after failures", "webhook", w.sub.ID, "event", ev.ID, "failures", failures)
			}
			if w.p.succeeded(ev.ID, now, d.cfg.CommitEvery) {
				w.s.askCommit()
			}
			return true
		}
		if w.p.failed(err.Error(), now) {
			d.log.Warn("webhook delivery failed; retrying with backoff", "webhook", w.sub.ID, "event", ev.ID, "err", err)
		}
		failures++
		if !pause.For(w.ctx, d.cfg.Backoff.Delay(failures, rand.Float64())) {
			return false
		}
	}
}

// attempt encodes and sends ev once, as soon as the node is confirmed to
// lead in the session's term.
func (w *worker) attempt(ev *routing.Event) error {
	d := w.s.d
	body, err := d.cfg.Encode(ev)
	if err != nil {
		// A bug, not the receiver's fault; retried like a failure so that
		// the event is never skipped.
		d.log.Error("encoding a webhook event", "webhook", w.sub.ID, "event", ev.ID, "err", err)
		return fmt.Errorf("encoding the event: %w", err)
	}
	for !w.s.leading() {
		if !pause.For(w.ctx, 50*time.Millisecond) {
			return w.ctx.Err()
		}
	}
	if !w.current() {
		w.cancel() // paused, changed or deleted: the supervisor takes it from here
		return context.Canceled
	}
	start := time.Now()
	err = w.post(ev, body)
	if w.ctx.Err() == nil {
		w.obs.attempt(time.Since(start), err)
	}
	return err
}

// post sends one attempt; nil means a 2xx within the timeout.
func (w *worker) post(ev *routing.Event, body []byte) error {
	d := w.s.d
	ts := time.Now().Unix()
	w.sig = w.signer.append(w.sig[:0], ts, body)
	h := deliveryHeaders{eventID: ev.ID, eventType: ev.Type, timestamp: ts, signature: w.sig, node: d.nodeID, term: w.s.term}
	if w.snd != nil {
		w.hdr = h.appendLines(w.hdr[:0])
		return w.snd.post(w.ctx, body, w.hdr)
	}
	// Through the http.Client: a proxy is in the way, or one was configured.
	return clientPost(w.ctx, d.cfg.Client, d.cfg.Timeout, w.sub.URL, d.userAgent, h, body)
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
