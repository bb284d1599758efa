package nemesis

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/omnirouter/omnirouter/cluster/webhook"
	"github.com/omnirouter/omnirouter/internal/pause"
)

// WebhookReceiver is a real HTTP endpoint for webhook deliveries that
// records every request, verifies its signature, and fails a share of them
// at random: an error status, a connection dropped without an answer, or
// an answer that comes slowly (but in time).
type WebhookReceiver struct {
	Secret string

	ln    net.Listener
	srv   *http.Server
	start time.Time

	mu          sync.Mutex
	rng         *rand.Rand
	failPercent int
	slowPercent int
	slowMax     time.Duration
	got         []Delivery
}

// Delivery is one request the receiver got.
type Delivery struct {
	Seq      int           `json:"seq"` // arrival order
	At       time.Duration `json:"at"`  // arrival, since the receiver started
	EventID  uint64        `json:"event_id"`
	Type     string        `json:"type"`
	Node     string        `json:"node"`
	Term     uint64        `json:"term"`
	Verified bool          `json:"verified"` // the signature and the body check out
	OK       bool          `json:"ok"`       // answered 2xx
	Answer   string        `json:"answer"`   // what the receiver did
}

// NewWebhookReceiver listens on a free loopback port. failPercent of the
// deliveries fail (an error status or a dropped connection), slowPercent
// are answered after up to slowMax; the choices come from seed.
func NewWebhookReceiver(secret string, seed uint64, failPercent, slowPercent int, slowMax time.Duration) (*WebhookReceiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &WebhookReceiver{Secret: secret, ln: ln, start: time.Now(), rng: rand.New(rand.NewPCG(seed, 7)),
		failPercent: failPercent, slowPercent: slowPercent, slowMax: slowMax}
	r.srv = &http.Server{Handler: http.HandlerFunc(r.serve), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

// URL is where to deliver.
func (r *WebhookReceiver) URL() string { return "http://" + r.ln.Addr().String() + "/hooks/omnirouter" }

// Close stops the receiver.
func (r *WebhookReceiver) Close() { _ = r.srv.Close() }

// SetFailures changes the shares of failing and slow answers.
func (r *WebhookReceiver) SetFailures(failPercent, slowPercent int) {
	r.mu.Lock()
	r.failPercent, r.slowPercent = failPercent, slowPercent
	r.mu.Unlock()
}

func (r *WebhookReceiver) serve(w http.ResponseWriter, req *http.Request) {
	d := Delivery{At: time.Since(r.start), Type: req.Header.Get(webhook.HeaderEventType), Node: req.Header.Get(webhook.HeaderNode)}
	d.EventID, _ = strconv.ParseUint(req.Header.Get(webhook.HeaderEventID), 10, 64)
	d.Term, _ = strconv.ParseUint(req.Header.Get(webhook.HeaderTerm), 10, 64)
	r.mu.Lock()
	d.Seq = len(r.got)
	r.got = append(r.got, d) // recorded on arrival: the order deliveries were sent in
	p := r.rng.IntN(100)
	slow := time.Duration(r.rng.Int64N(int64(r.slowMax) + 1))
	fail, slowShare := r.failPercent, r.slowPercent
	r.mu.Unlock()

	body, err := io.ReadAll(io.LimitReader(req.Body, 8<<20))
	verified := err == nil && webhook.Verify(r.Secret, req.Header.Get(webhook.HeaderTimestamp), body, req.Header.Get(webhook.HeaderSignature))
	var ev struct {
		ID   uint64 `json:"id"`
		Type string `json:"type"`
	}
	if verified && (json.Unmarshal(body, &ev) != nil || ev.ID != d.EventID || ev.Type != d.Type) {
		verified = false
	}
	status, answer := http.StatusNoContent, "204"
	switch {
	case p < fail/2:
		status, answer = http.StatusServiceUnavailable, "503"
	case p < fail:
		answer = "dropped"
	case p < fail+slowShare:
		answer = "slow " + slow.Round(time.Millisecond).String()
		pause.For(req.Context(), slow)
	}
	r.mu.Lock()
	r.got[d.Seq].Verified = verified
	r.got[d.Seq].OK = answer != "dropped" && status/100 == 2 && req.Context().Err() == nil
	r.got[d.Seq].Answer = answer
	r.mu.Unlock()
	if answer == "dropped" {
		panic(http.ErrAbortHandler) // the connection closes without an answer
	}
	w.WriteHeader(status)
}

// Deliveries returns every request so far, in arrival order.
func (r *WebhookReceiver) Deliveries() []Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// Delivered counts the distinct event ids answered 2xx.
func (r *WebhookReceiver) Delivered() int {
	seen := map[uint64]bool{}
	for _, d := range r.Deliveries() {
		if d.OK {
			seen[d.EventID] = true
		}
	}
	return len(seen)
}

// LeaderWatch records which node led in each term, as the leaders say of
// themselves (GET /v1/cluster on every node, state leader).
type LeaderWatch struct {
	mu        sync.Mutex
	leaders   map[uint64]string
	conflicts []string
	done      chan struct{}
}

// WatchLeaders polls every node of c every interval until ctx ends.
func WatchLeaders(ctx context.Context, c *Cluster, every time.Duration) *LeaderWatch {
	w := &LeaderWatch{leaders: map[uint64]string{}, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for pause.For(ctx, every) {
			for _, n := range c.Nodes {
				if !n.Running() || n.Paused() {
					continue
				}
				sctx, cancel := context.WithTimeout(ctx, time.Second)
				v, err := n.self(sctx)
				cancel()
				if err == nil && v.State == "leader" && v.Term != 0 {
					w.note(v.Term, v.ID)
				}
			}
		}
	}()
	return w
}

// selfView is the answering node's part of GET /v1/cluster.
type selfView struct {
	ID    string `json:"id"`
	State string `json:"state"`
	Term  uint64 `json:"term"`
}

func (n *Node) self(ctx context.Context) (selfView, error) {
	var v selfView
	req, _ := http.NewRequestWithContext(ctx, "GET", n.URL()+"/v1/cluster?consistency=stale", nil)
	resp, err := probe.Do(req)
	if err != nil {
		return v, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return v, fmt.Errorf("%s /v1/cluster: %d", n.ID, resp.StatusCode)
	}
	return v, json.NewDecoder(resp.Body).Decode(&v)
}

func (w *LeaderWatch) note(term uint64, id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if prev, ok := w.leaders[term]; ok && prev != id {
		w.conflicts = append(w.conflicts, fmt.Sprintf("term %d: %s and %s both said they led", term, prev, id))
		return
	}
	w.leaders[term] = id
}

// Leaders returns the leader seen for each term, and any term two nodes
// claimed.
func (w *LeaderWatch) Leaders() (map[uint64]string, []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[uint64]string, len(w.leaders))
	for t, id := range w.leaders {
		out[t] = id
	}
	return out, slices.Clone(w.conflicts)
}

// WebhookReport sums up a check of the deliveries.
type WebhookReport struct {
	Wanted, Requests, Failed, Duplicates int
	Terms                                []uint64
	Nodes                                []string
	Unattributed                         int // deliveries of a term the watch never saw a leader for
}

// CheckWebhookDeliveries checks a receiver's deliveries against want, the
// ids of every event the subscription wanted, in id order, as the sender
// promises them: each was delivered (2xx) at least once and no other id
// was sent; every signature verified; each id reached the receiver for
// the first time only after every smaller wanted id had (a refused or
// pipelined request counts: a receiver never sees an earlier event for
// the first time), and fewer than window wanted ids ahead of the oldest
// one not yet delivered (the sender's pipelining depth); a term's
// deliveries all came from one node, the one that led in that term (as
// leaders recorded it). Requests of an old term may arrive after a newer
// term's: an old leader's pipelined requests can be served late, and their
// events come again from the new leader. It returns the violations found
// (at most 20) and a report.
func CheckWebhookDeliveries(got []Delivery, want []uint64, leaders map[uint64]string, window int) ([]string, WebhookReport) {
	var bad []string
	fail := func(format string, args ...any) {
		if len(bad) < 20 {
			bad = append(bad, fmt.Sprintf(format, args...))
		}
	}
	rep := WebhookReport{Wanted: len(want), Requests: len(got)}
	wanted := make(map[uint64]int, len(want)) // id → index in want
	for i, id := range want {
		wanted[id] = i
	}
	ok := make([]bool, len(want))
	next := 0 // every wanted id before want[next] has been delivered
	seen := 0 // every wanted id before want[seen] has reached the receiver
	sent := map[uint64]bool{}
	nodes := map[string]bool{}
	terms := map[uint64]string{}
	for _, d := range got {
		if !d.Verified {
			fail("delivery %d (event %d from %s): the signature or the body does not verify", d.Seq, d.EventID, d.Node)
		}
		i, isWanted := wanted[d.EventID]
		if !isWanted {
			fail("delivery %d: event %d (%s) was not wanted", d.Seq, d.EventID, d.Type)
			continue
		}
		if !sent[d.EventID] {
			sent[d.EventID] = true
			switch {
			case i > seen:
				fail("delivery %d: event %d reached the receiver before event %d", d.Seq, d.EventID, want[seen])
			case i >= next+window:
				fail("delivery %d: event %d sent with %d earlier events undelivered (window %d)", d.Seq, d.EventID, i-next, window)
			}
			for seen < len(want) && sent[want[seen]] {
				seen++
			}
		}
		if d.OK && ok[i] {
			rep.Duplicates++
		}
		if prev, seen := terms[d.Term]; seen && prev != d.Node {
			fail("term %d: deliveries from %s and %s", d.Term, prev, d.Node)
		}
		terms[d.Term] = d.Node
		nodes[d.Node] = true
		switch l, known := leaders[d.Term]; {
		case !known:
			rep.Unattributed++
		case l != d.Node:
			fail("delivery %d: event %d sent by %s in term %d, led by %s", d.Seq, d.EventID, d.Node, d.Term, l)
		}
		if !d.OK {
			rep.Failed++
			continue
		}
		ok[i] = true
		for next < len(want) && ok[next] {
			next++
		}
	}
	var missing []uint64
	for i, id := range want {
		if !ok[i] {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		fail("%d wanted events never delivered, e.g. %v", len(missing), missing[:min(len(missing), 10)])
	}
	for t := range terms {
		rep.Terms = append(rep.Terms, t)
	}
	sort.Slice(rep.Terms, func(i, j int) bool { return rep.Terms[i] < rep.Terms[j] })
	for n := range nodes {
		rep.Nodes = append(rep.Nodes, n)
	}
	sort.Strings(rep.Nodes)
	return bad, rep
}

// WebhookStatus is GET /v1/webhooks/{id}.
type WebhookStatus struct {
	ID      string `json:"id"`
	State   string `json:"state"`
	Cursor  uint64 `json:"cursor"`
	Lag     uint64 `json:"lag"`
	Skipped uint64 `json:"skipped"`
}

// Subscribe creates a webhook subscription through any node, retrying
// (with one idempotency key) until it is created, and returns its status.
func Subscribe(ctx context.Context, c *Cluster, id, url, secret string, events []string) (WebhookStatus, error) {
	var st WebhookStatus
	body, _ := json.Marshal(map[string]any{"id": id, "url": url, "secret": secret, "events": events})
	err := Poll(ctx, 60*time.Second, func() error {
		for _, n := range c.Nodes {
			code, b, err := send(ctx, "POST", n.URL()+"/v1/webhooks", "subscribe-"+id, body)
			if err != nil {
				continue
			}
			if code == 201 {
				return json.Unmarshal(b, &st)
			}
			if code < 500 {
				return fmt.Errorf("POST /v1/webhooks: %d %s", code, b)
			}
		}
		return errors.New("no node created the subscription")
	})
	return st, err
}

// WebhookState reads a subscription's status from a node that answers.
func WebhookState(ctx context.Context, c *Cluster, id string) (WebhookStatus, error) {
	var st WebhookStatus
	for _, n := range c.Nodes {
		if !n.Running() || n.Paused() {
			continue
		}
		code, b, err := send(ctx, "GET", n.URL()+"/v1/webhooks/"+id, "", nil)
		if err == nil && code == 200 {
			return st, json.Unmarshal(b, &st)
		}
	}
	return st, errors.New("no node answered")
}

func send(ctx context.Context, method, url, key string, body []byte) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := probe.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// WantedEvents lists, in id order, the ids of the events after after whose
// type is in types (every type when types holds "*"), from one node's
// event log.
func WantedEvents(ctx context.Context, n *Node, after uint64, types []string) ([]uint64, error) {
	evs, err := FetchEvents(ctx, n)
	if err != nil {
		return nil, err
	}
	var ids []uint64
	for _, e := range evs {
		if e.ID > after && (slices.Contains(types, "*") || slices.Contains(types, e.Type)) {
			ids = append(ids, e.ID)
		}
	}
	return ids, nil
}

// WebhookCheck follows a webhook subscription through a run: a receiver
// that fails and slows a share of the deliveries, subscribed to
// conversation and ticket events, and a watch of the leaders. Finish checks,
// once the cluster is healed, that no event was skipped.
type WebhookCheck struct {
	c      *Cluster
	rcv    *WebhookReceiver
	watch  *LeaderWatch
	stop   context.CancelFunc
	sub    WebhookStatus
	types  []string
	secret string
}

// WebhookCheckTypes are the event types the check subscribes to.
var WebhookCheckTypes = []string{"conversation.queued", "conversation.ended", "ticket.created"}

// StartWebhookCheck subscribes a new receiver (failing failPercent of the
// deliveries, slowing as many) to WebhookCheckTypes.
func StartWebhookCheck(ctx context.Context, c *Cluster, seed uint64, failPercent int) (*WebhookCheck, error) {
	const secret = "whsec_nemesis"
	rcv, err := NewWebhookReceiver(secret, seed, failPercent, failPercent, 500*time.Millisecond)
	if err != nil {
		return nil, err
	}
	wctx, stop := context.WithCancel(context.Background())
	w := &WebhookCheck{c: c, rcv: rcv, watch: WatchLeaders(wctx, c, 50*time.Millisecond), stop: stop, types: WebhookCheckTypes, secret: secret}
	if w.sub, err = Subscribe(ctx, c, "nemesis", rcv.URL(), secret, w.types); err != nil {
		w.Close()
		return nil, err
	}
	return w, nil
}

// Close stops the receiver and the watch.
func (w *WebhookCheck) Close() {
	w.stop()
	<-w.watch.done
	w.rcv.Close()
}

// Finish waits until every wanted event up to the newest one now has been
// delivered (the receiver stops failing first, so that the backlog drains)
// and checks the deliveries (CheckWebhookDeliveries) and the subscription's
// status (active, nothing skipped). It returns the violations and a
// summary.
func (w *WebhookCheck) Finish(ctx context.Context) ([]string, string) {
	w.rcv.SetFailures(0, 0)
	evs, err := FetchEvents(ctx, w.c.Nodes[0])
	if err != nil {
		return []string{fmt.Sprintf("reading events: %v", err)}, ""
	}
	var want []uint64
	var newest uint64
	for _, e := range evs {
		newest = e.ID
		if e.ID > w.sub.Cursor && slices.Contains(w.types, e.Type) {
			want = append(want, e.ID)
		}
	}
	var bad []string
	if err := Poll(ctx, 5*time.Minute, func() error {
		have := map[uint64]bool{}
		for _, d := range w.rcv.Deliveries() {
			if d.OK {
				have[d.EventID] = true
			}
		}
		for _, id := range want {
			if !have[id] {
				return fmt.Errorf("event %d not delivered yet", id)
			}
		}
		return nil
	}); err != nil {
		bad = append(bad, fmt.Sprintf("waiting for the deliveries: %v", err))
	}
	if err := Poll(ctx, 30*time.Second, func() error {
		st, err := WebhookState(ctx, w.c, w.sub.ID)
		if err == nil && (st.Cursor < newest || st.State != "active" || st.Skipped != 0) {
			err = fmt.Errorf("status %+v, newest event %d", st, newest)
		}
		return err
	}); err != nil {
		bad = append(bad, fmt.Sprintf("subscription status: %v", err))
	}
	w.stop()
	<-w.watch.done
	var got []Delivery
	for _, d := range w.rcv.Deliveries() {
		if d.EventID <= newest {
			got = append(got, d)
		}
	}
	leaders, conflicts := w.watch.Leaders()
	more, rep := CheckWebhookDeliveries(got, want, leaders, webhook.DefaultPipeline)
	bad = append(append(bad, more...), conflicts...)
	return bad, fmt.Sprintf("%d wanted events delivered (%d requests, %d failed, %d duplicates) in terms %v by %v, nothing skipped, first deliveries in id order, every signature valid, %d requests of a term no leader was seen for",
		rep.Wanted, rep.Requests, rep.Failed, rep.Duplicates, rep.Terms, rep.Nodes, rep.Unattributed)
}
