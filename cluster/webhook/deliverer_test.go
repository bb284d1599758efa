package webhook_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/omnirouter/omnirouter/cluster"
	"github.com/omnirouter/omnirouter/cluster/webhook"
	"github.com/omnirouter/omnirouter/internal/testutil"
	"github.com/omnirouter/omnirouter/routing"
)

// encode stands in for the API's event view.
func encode(e *routing.Event) ([]byte, error) {
	return json.Marshal(map[string]any{"id": e.ID, "type": e.Type, "conversation_id": e.ConversationID})
}

// testNode is a cluster node with its HTTP server and its deliverer.
type testNode struct {
	node *cluster.Node
	srv  *httptest.Server
	d    *webhook.Deliverer
	stop func()
}

func (tn *testNode) shutdown() {
	if tn.stop != nil {
		tn.stop()
		tn.stop = nil
	}
}

// startNodes runs n nodes that form a cluster, each with a deliverer
// configured by cfg, and waits for a ready leader.
func startNodes(t *testing.T, n int, cfg webhook.Config) []*testNode {
	t.Helper()
	dir := t.TempDir()
	nodes := make([]*testNode, n)
	var urls []string
	handlers := make([]http.Handler, n)
	var mu sync.Mutex
	for i := range nodes {
		i := i
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			h := handlers[i]
			mu.Unlock()
			if h == nil {
				http.Error(w, "down", http.StatusServiceUnavailable)
				return
			}
			h.ServeHTTP(w, r)
		}))
		t.Cleanup(srv.Close)
		nodes[i] = &testNode{srv: srv}
		urls = append(urls, srv.URL)
	}
	for i, tn := range nodes {
		raftAddr, err := testutil.FreeAddr()
		if err != nil {
			t.Fatal(err)
		}
		c := cluster.Config{NodeID: fmt.Sprintf("n%d", i+1), DataDir: filepath.Join(dir, fmt.Sprint(i)), RaftAddr: raftAddr,
			HTTPAddr: tn.srv.URL, Logger: slog.New(slog.DiscardHandler)}
		if n > 1 {
			c.BootstrapExpect, c.Join = n, urls
		}
		node, err := cluster.Open(c)
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		handlers[i] = node.Handler()
		mu.Unlock()
		dc := cfg
		dc.Node, dc.Encode = node, encode
		d, err := webhook.New(dc)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { d.Run(ctx); close(done) }()
		tn.node, tn.d = node, d
		tn.stop = func() {
			cancel()
			<-done
			_ = node.Shutdown()
		}
		t.Cleanup(tn.shutdown)
	}
	testutil.Until(t, 30*time.Second, "a ready leader", func() error {
		for _, tn := range nodes {
			if tn.node.LeaderTerm() != 0 {
				return nil
			}
		}
		return fmt.Errorf("no leader")
	})
	return nodes
}

func leader(t *testing.T, nodes []*testNode) *testNode {
	t.Helper()
	var l *testNode
	testutil.Until(t, 30*time.Second, "a ready leader", func() error {
		for _, tn := range nodes {
			if tn.stop != nil && tn.node.LeaderTerm() != 0 {
				l = tn
				return nil
			}
		}
		return fmt.Errorf("no leader")
	})
	return l
}

func propose(t *testing.T, n *cluster.Node, cmd routing.Command) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := n.Propose(ctx, "", cmd)
	if err == nil {
		err = res.Outcome.Err
	}
	if err != nil {
		t.Fatalf("%T: %v", cmd, err)
	}
}

func state(t *testing.T, n *cluster.Node, id string) (routing.Webhook, uint64) {
	t.Helper()
	var w routing.Webhook
	var last uint64
	if _, err := n.Read(context.Background(), cluster.Stale, func(m *routing.Machine) {
		w, _ = m.Webhook(id)
		last = m.LastEventID()
	}); err != nil {
		t.Fatal(err)
	}
	return w, last
}

// delivery is one request a receiver got.
type delivery struct {
	id       uint64
	typ      string
	node     string
	term     uint64
	verified bool
	ok       bool // answered 2xx
}

// readDelivery is what a receiver records of one request: its headers,
// and whether its signature verifies and its body is the event they name.
func readDelivery(secret string, h http.Header, body []byte) delivery {
	d := delivery{typ: h.Get(webhook.HeaderEventType), node: h.Get(webhook.HeaderNode)}
	d.id, _ = strconv.ParseUint(h.Get(webhook.HeaderEventID), 10, 64)
	d.term, _ = strconv.ParseUint(h.Get(webhook.HeaderTerm), 10, 64)
	var ev struct {
		ID   uint64 `json:"id"`
		Type string `json:"type"`
	}
	d.verified = webhook.Verify(secret, h.Get(webhook.HeaderTimestamp), body, h.Get(webhook.HeaderSignature)) &&
		json.Unmarshal(body, &ev) == nil && ev.ID == d.id && ev.Type == d.typ
	return d
}

// deliveryLog is the deliveries a test receiver got, in arrival order.
type deliveryLog struct {
	logMu  sync.Mutex
	logged []delivery
}

func (l *deliveryLog) add(d delivery) {
	l.logMu.Lock()
	l.logged = append(l.logged, d)
	l.logMu.Unlock()
}

func (l *deliveryLog) deliveries() []delivery {
	l.logMu.Lock()
	defer l.logMu.Unlock()
	return slices.Clone(l.logged)
}

// delivered is the set of event ids answered 2xx.
func (l *deliveryLog) delivered() map[uint64]bool {
	out := map[uint64]bool{}
	for _, d := range l.deliveries() {
		if d.ok {
			out[d.id] = true
		}
	}
	return out
}

// hang is how long a receiver's answer 0 takes: longer than any test's
// timeout.
const hang = 3 * time.Second

// receiver is a webhook endpoint that records every delivery and answers
// as answer decides (nil: 204).
type receiver struct {
	srv    *httptest.Server
	secret string

	// closeOnError: an answer other than 2xx says "Connection: close", so
	// the server serves none of the requests behind it on the connection.
	closeOnError bool

	deliveryLog

	mu     sync.Mutex
	answer func(id uint64) int // a status; 0 answers 503 after hang, or when the request is canceled
}

func newReceiver(t *testing.T, secret string) *receiver {
	r := &receiver{secret: secret}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	d := readDelivery(r.secret, req.Header, body)
	r.mu.Lock()
	answer := r.answer
	r.mu.Unlock()
	status := http.StatusNoContent
	if answer != nil {
		status = answer(d.id)
	}
	if status == 0 {
		// Longer than the sender waits. The wait is bounded: a handler
		// with pipelined requests behind it is not told when the client
		// closes the connection.
		slow := time.NewTimer(hang)
		select {
		case <-req.Context().Done():
		case <-slow.C:
		}
		slow.Stop()
		status = http.StatusServiceUnavailable
	}
	d.ok = status/100 == 2
	r.add(d)
	if r.closeOnError && !d.ok {
		w.Header().Set("Connection", "close")
	}
	w.WriteHeader(status)
}

func (r *receiver) setAnswer(f func(id uint64) int) {
	r.mu.Lock()
	r.answer = f
	r.mu.Unlock()
}

// check: every id of want was delivered and no other id sent; every
// signature verified; ids were first sent in increasing order, and an id
// was first sent only while fewer than window smaller wanted ids were not
// yet delivered (those in flight before it in its window; with a window of
// 1, only once every smaller wanted id was delivered).
func (r *receiver) check(t *testing.T, want []uint64, window int) {
	t.Helper()
	checkDeliveries(t, r.deliveries(), want, window)
}

func checkDeliveries(t *testing.T, got []delivery, want []uint64, window int) {
	t.Helper()
	ok := map[uint64]bool{}
	var lastFirst uint64
	for i, d := range got {
		if !d.verified {
			t.Errorf("delivery %d (event %d): signature or body does not verify", i, d.id)
		}
		if !slices.Contains(want, d.id) {
			t.Errorf("delivery %d: event %d (%s) was not wanted", i, d.id, d.typ)
		}
		if d.id > lastFirst {
			// A first delivery: the wanted ids before it not yet
			// delivered are in flight in its window.
			var pending []uint64
			for _, w := range want {
				if w < d.id && !ok[w] {
					pending = append(pending, w)
				}
			}
			if len(pending) >= window {
				t.Fatalf("event %d sent before events %v were delivered (window %d)", d.id, pending, window)
			}
			lastFirst = d.id
		} else if !ok[d.id] && !slices.ContainsFunc(got[:i], func(e delivery) bool { return e.id == d.id }) {
			t.Fatalf("delivery %d: event %d first sent after event %d", i, d.id, lastFirst)
		}
		if d.ok {
			ok[d.id] = true
		}
	}
	for _, w := range want {
		if !ok[w] {
			t.Errorf("event %d never delivered", w)
		}
	}
}

// createConversations creates count messaging conversations (a
// ticket.created and a conversation.queued each) and returns the ids of
// the events of the given types (all without) they emitted.
func createConversations(t *testing.T, n *cluster.Node, prefix string, count int, types ...string) []uint64 {
	t.Helper()
	_, from := state(t, n, "")
	for i := range count {
		propose(t, n, routing.CreateConversation{ID: fmt.Sprintf("%s%d", prefix, i), Channel: 1})
	}
	return eventIDs(t, n, from, types...)
}

// eventIDs lists the ids of the events after an id, of the given types (all
// without).
func eventIDs(t *testing.T, n *cluster.Node, after uint64, types ...string) []uint64 {
	t.Helper()
	var ids []uint64
	if _, err := n.Read(context.Background(), cluster.Stale, func(m *routing.Machine) {
		_ = m.EachEvent(after, func(e *routing.Event) bool {
			if len(types) == 0 || slices.Contains(types, e.Type) {
				ids = append(ids, e.ID)
			}
			return true
		})
	}); err != nil {
		t.Fatal(err)
	}
	return ids
}

func subscribe(t *testing.T, n *cluster.Node, id, url, secret string, events ...string) {
	t.Helper()
	propose(t, n, routing.CreateWebhook{ID: id, URL: url, Events: events, Secret: secret})
}

var fast = webhook.Config{Backoff: webhook.Backoff{Min: 5 * time.Millisecond, Max: 50 * time.Millisecond},
	Timeout: 300 * time.Millisecond, CommitInterval: 50 * time.Millisecond}

// pipeline is the default Config.Pipeline.
const pipeline = 16

// TestDeliveriesInOrderThroughFailures, one request at a time and
// pipelined: a receiver that fails a share of the deliveries (an error
// status, a redirect, no answer in time) gets every event, first in id
// order, each first sent only with fewer than a window of earlier ones
// undelivered (with one at a time: once every earlier one was delivered).
// A receiver that closes the connection with each refusal serves none of
// the requests pipelined behind it, and so sees what one request at a
// time gives: every event first sent once every earlier one was delivered.
func TestDeliveriesInOrderThroughFailures(t *testing.T) {
	for _, c := range []struct {
		depth, window int
		closeOnError  bool
	}{{1, 1, false}, {pipeline, pipeline, false}, {pipeline, 1, true}} {
		t.Run(fmt.Sprintf("pipeline %d, refusals close %v", c.depth, c.closeOnError), func(t *testing.T) {
			cfg := fast
			cfg.Pipeline = c.depth
			testDeliveriesThroughFailures(t, cfg, c.window, c.closeOnError)
		})
	}
}

func testDeliveriesThroughFailures(t *testing.T, cfg webhook.Config, window int, closeOnError bool) {
	nodes := startNodes(t, 1, cfg)
	n := nodes[0].node
	rcv := newReceiver(t, "s3cret")
	rcv.closeOnError = closeOnError
	var rngMu sync.Mutex
	rng := rand.New(rand.NewPCG(1, 2))
	rcv.setAnswer(func(uint64) int {
		rngMu.Lock()
		p := rng.IntN(10)
		rngMu.Unlock()
		switch p {
		case 0, 1:
			return http.StatusInternalServerError
		case 2:
			return http.StatusFound // a redirect is not followed: a failure
		case 3:
			return 0 // slower than the timeout
		}
		return http.StatusOK
	})
	createConversations(t, n, "before", 3) // before the subscription: not delivered
	subscribe(t, n, "w1", rcv.srv.URL+"/hook", "s3cret", routing.EventQueued)
	_, from := state(t, n, "")
	createConversations(t, n, "c", 30)
	propose(t, n, routing.UpsertAgent{ID: "a1", Name: "not wanted"})
	createConversations(t, n, "d", 30)
	want := eventIDs(t, n, from, routing.EventQueued)
	testutil.Until(t, 60*time.Second, "every event delivered", func() error {
		if got := rcv.delivered(); len(got) < len(want) {
			return fmt.Errorf("%d of %d delivered", len(got), len(want))
		}
		return nil
	})
	rcv.check(t, want, window)
	for _, d := range rcv.deliveries() {
		if d.node != "n1" || d.term != n.LeaderTerm() {
			t.Fatalf("delivery by %s in term %d, the leader is n1 in term %d", d.node, d.term, n.LeaderTerm())
		}
	}
	if len(rcv.deliveries()) == len(want) {
		t.Fatal("no delivery failed: the receiver's failures were not exercised")
	}
	testutil.Until(t, 10*time.Second, "the cursor committed", func() error {
		w, last := state(t, n, "w1")
		if w.Cursor != last || w.FailingSince != 0 || w.LastSuccessAt == 0 || w.LastError == "" {
			return fmt.Errorf("cursor %d of %d, status %+v", w.Cursor, last, w)
		}
		return nil
	})
}

func TestCommitAfterEnoughDeliveries(t *testing.T) {
	cfg := fast
	cfg.CommitInterval, cfg.CommitEvery = time.Hour, 20
	nodes := startNodes(t, 1, cfg)
	n := nodes[0].node
	rcv := newReceiver(t, "s")
	subscribe(t, n, "w1", rcv.srv.URL, "s", "*")
	ids := createConversations(t, n, "c", 15)
	testutil.Until(t, 30*time.Second, "a commit after 20 deliveries, long before the interval", func() error {
		if w, _ := state(t, n, "w1"); w.Cursor < ids[19] {
			return fmt.Errorf("cursor %d, the 20th event is %d", w.Cursor, ids[19])
		}
		return nil
	})
}

func TestStuckReceiverHoldsOnlyItsOwnQueue(t *testing.T) {
	nodes := startNodes(t, 1, webhook.Config{CommitInterval: 50 * time.Millisecond})
	n := nodes[0].node
	stuck, fine := newReceiver(t, "s"), newReceiver(t, "s")
	release := make(chan struct{})
	stuck.setAnswer(func(uint64) int {
		<-release
		return http.StatusOK
	})
	defer close(release)
	subscribe(t, n, "stuck", stuck.srv.URL, "s", "*")
	subscribe(t, n, "fine", fine.srv.URL, "s", "*")
	want := createConversations(t, n, "c", 40)
	testutil.Until(t, 30*time.Second, "the healthy receiver got everything", func() error {
		if got := fine.delivered(); len(got) < len(want) {
			return fmt.Errorf("%d of %d", len(got), len(want))
		}
		return nil
	})
	fine.check(t, want, pipeline)
	testutil.Until(t, 10*time.Second, "the healthy cursor committed", func() error {
		if w, last := state(t, n, "fine"); w.Cursor != last {
			return fmt.Errorf("cursor %d of %d", w.Cursor, last)
		}
		return nil
	})
	if w, last := state(t, n, "stuck"); w.Cursor >= want[0] || last-w.Cursor < uint64(len(want)) {
		t.Fatalf("stuck subscription at cursor %d (lag %d)", w.Cursor, last-w.Cursor)
	}
}

func TestPauseFailingAndResume(t *testing.T) {
	nodes := startNodes(t, 1, fast)
	n := nodes[0].node
	rcv := newReceiver(t, "s")
	propose(t, n, routing.SetPolicy{Patch: routing.MustPatch("webhooks.disable_after", "500ms")})
	subscribe(t, n, "w1", rcv.srv.URL, "s", routing.EventQueued)

	// Paused: nothing is delivered; resumed: everything since the cursor.
	propose(t, n, routing.UpdateWebhook{ID: "w1", Set: routing.WebhookSetPaused, Paused: true})
	testutil.Until(t, 10*time.Second, "the paused subscription's worker stopped", func() error {
		if r := nodes[0].d.Running(); len(r) != 0 {
			return fmt.Errorf("running %v", r)
		}
		return nil
	})
	first := createConversations(t, n, "p", 5, routing.EventQueued)
	propose(t, n, routing.UpdateWebhook{ID: "w1", Set: routing.WebhookSetPaused, Paused: false})
	testutil.Until(t, 10*time.Second, "delivered after resuming", func() error {
		if got := rcv.delivered(); len(got) < len(first) {
			return fmt.Errorf("%d of %d", len(got), len(first))
		}
		return nil
	})

	// A receiver failing for webhooks.disable_after: failing, stopped.
	rcv.setAnswer(func(uint64) int { return http.StatusServiceUnavailable })
	more := createConversations(t, n, "f", 3, routing.EventQueued)
	testutil.Until(t, 10*time.Second, "failing", func() error {
		w, _ := state(t, n, "w1")
		if w.State() != routing.WebhookFailing || w.LastError != "HTTP 503" || w.FailingSince == 0 {
			return fmt.Errorf("%s %q since %d", w.State(), w.LastError, w.FailingSince)
		}
		return nil
	})
	testutil.Until(t, 10*time.Second, "the failing subscription's worker stopped", func() error {
		if r := nodes[0].d.Running(); len(r) != 0 {
			return fmt.Errorf("running %v", r)
		}
		return nil
	})
	rcv.setAnswer(nil)
	more = append(more, createConversations(t, n, "g", 2, routing.EventQueued)...)
	propose(t, n, routing.UpdateWebhook{ID: "w1", Set: routing.WebhookSetPaused, Paused: false})
	testutil.Until(t, 10*time.Second, "delivered from the cursor after resuming", func() error {
		if got := rcv.delivered(); len(got) < len(first)+len(more) {
			return fmt.Errorf("%d of %d", len(got), len(first)+len(more))
		}
		return nil
	})
	rcv.check(t, append(first, more...), pipeline)
	if w, _ := state(t, n, "w1"); w.State() != routing.WebhookActive || w.Skipped != 0 {
		t.Fatalf("after resuming: %+v", w)
	}
}

// TestNewLeaderResumesFromCommittedCursor: a three-node cluster whose
// leader steps down (a clean shutdown hands leadership over) while its
// receiver is slow: the new leader delivers the rest, from the committed
// cursor, and the old leader sends nothing after the new term's first
// delivery.
func TestNewLeaderResumesFromCommittedCursor(t *testing.T) {
	if testing.Short() {
		t.Skip("three nodes")
	}
	nodes := startNodes(t, 3, fast)
	l := leader(t, nodes)
	rcv := newReceiver(t, "s")
	subscribe(t, l.node, "w1", rcv.srv.URL, "s", "*")
	created, _ := state(t, l.node, "w1")
	oldTerm := l.node.LeaderTerm()
	want := createConversations(t, l.node, "a", 20)
	testutil.Until(t, 30*time.Second, "some deliveries", func() error {
		if got := rcv.delivered(); len(got) < 5 {
			return fmt.Errorf("%d", len(got))
		}
		return nil
	})
	l.shutdown()
	var live []*testNode
	for _, tn := range nodes {
		if tn != l {
			live = append(live, tn)
		}
	}
	nl := leader(t, live)
	want = append(want, createConversations(t, nl.node, "b", 20)...)
	testutil.Until(t, 60*time.Second, "every event delivered", func() error {
		if got := rcv.delivered(); len(got) < len(want) {
			return fmt.Errorf("%d of %d", len(got), len(want))
		}
		return nil
	})
	// Every event after the subscription's creation.
	if all := eventIDs(t, nl.node, created.Cursor); !slices.Equal(all, want) {
		t.Fatalf("events after the subscription %v, created %v", all, want)
	}
	rcv.check(t, want, pipeline)
	var newest uint64
	for _, d := range rcv.deliveries() {
		if d.term < newest {
			t.Fatalf("a delivery of term %d (%s) after one of term %d", d.term, d.node, newest)
		}
		newest = max(newest, d.term)
		if d.term == oldTerm && d.node != l.node.ID() {
			t.Fatalf("delivery by %s in the old leader's term", d.node)
		}
	}
	if first, last := rcv.deliveries()[0], rcv.deliveries()[len(rcv.deliveries())-1]; first.node == last.node || first.term >= last.term {
		t.Fatalf("deliveries from %s (term %d) to %s (term %d): no failover seen", first.node, first.term, last.node, last.term)
	}
}

// TestConnections: deliveries over https, to a receiver that closes every
// connection after its answer (saying so), and to one that hangs up after
// answering without a word: all delivered, and none counted as a failure
// (a kept-alive connection the receiver closed is retried on a new one at
// once).
func TestConnections(t *testing.T) {
	rcvTLS := &receiver{secret: "s"}
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(rcvTLS.serve))
	t.Cleanup(tlsSrv.Close)
	rcvTLS.srv = tlsSrv
	pool := x509.NewCertPool()
	pool.AddCert(tlsSrv.Certificate())

	closing := &receiver{secret: "s"}
	closing.srv = httptest.NewUnstartedServer(http.HandlerFunc(closing.serve))
	closing.srv.Config.SetKeepAlivesEnabled(false)
	closing.srv.Start()
	t.Cleanup(closing.srv.Close)

	// hangup answers 204 without "Connection: close", then closes the
	// connection: the next request on it finds it closed.
	hangup := &receiver{secret: "s"}
	hangup.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hangup.serve(discard{}, r)
		conn, bw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		_, _ = bw.WriteString("HTTP/1.1 204 No Content\r\n\r\n")
		_ = bw.Flush()
		conn.Close()
	}))
	t.Cleanup(hangup.srv.Close)

	cfg := webhook.Config{TLS: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, CommitInterval: 50 * time.Millisecond}
	nodes := startNodes(t, 1, cfg)
	n := nodes[0].node
	rcvs := map[string]*receiver{"tls": rcvTLS, "closing": closing, "hangup": hangup}
	for id, r := range rcvs {
		subscribe(t, n, id, r.srv.URL+"/in?x=1", "s", routing.EventQueued)
	}
	var want []uint64
	for i := range 20 {
		want = append(want, createConversations(t, n, fmt.Sprintf("c%d-", i), 1, routing.EventQueued)...)
	}
	for id, r := range rcvs {
		testutil.Until(t, 30*time.Second, id+" got everything", func() error {
			if got := r.delivered(); len(got) < len(want) {
				return fmt.Errorf("%d of %d", len(got), len(want))
			}
			return nil
		})
		r.check(t, want, pipeline)
		if len(r.deliveries()) != len(want) {
			t.Errorf("%s: %d requests for %d events", id, len(r.deliveries()), len(want))
		}
		testutil.Until(t, 10*time.Second, id+" committed", func() error {
			if w, last := state(t, n, id); w.Cursor != last || w.LastError != "" {
				return fmt.Errorf("cursor %d of %d, last error %q", w.Cursor, last, w.LastError)
			}
			return nil
		})
	}
}

// discard is a ResponseWriter that drops the answer.
type discard struct{}

func (discard) Header() http.Header         { return http.Header{} }
func (discard) Write(b []byte) (int, error) { return len(b), nil }
func (discard) WriteHeader(int)             {}
