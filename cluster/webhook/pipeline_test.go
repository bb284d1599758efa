package webhook_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/omnirouter/omnirouter/cluster"
	"github.com/omnirouter/omnirouter/cluster/webhook"
	"github.com/omnirouter/omnirouter/internal/testutil"
	"github.com/omnirouter/omnirouter/routing"
)

// pipeReceiver is a webhook endpoint that reads requests off each
// connection itself, as a server that serves pipelined requests does: it
// answers in order and writes its answers once no further request is
// buffered, so that it can tell how many requests were in flight at once.
type pipeReceiver struct {
	t      *testing.T
	ln     net.Listener
	secret string
	// perConn, when set, is how many requests a connection serves before
	// the receiver closes it; sayClose: the last answer says
	// "Connection: close" (otherwise the connection just ends).
	perConn  int
	sayClose bool

	deliveryLog

	mu   sync.Mutex
	seen map[uint64]int // requests by event id
	// answer is the status of the seen-th request (from 0) of event id
	// (nil: 204); 0 answers nothing, and the connection is read until the
	// sender closes it.
	answer func(id uint64, seen int) int
	conns  int
	// maxBatch is the most requests answered in one write.
	maxBatch int
}

func newPipeReceiver(t *testing.T, secret string) *pipeReceiver {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &pipeReceiver{t: t, ln: ln, secret: secret, seen: map[uint64]int{}}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
			r.mu.Lock()
			r.conns++
			r.mu.Unlock()
			wg.Add(1)
			go func() { defer wg.Done(); r.serve(c) }()
		}
	}()
	return r
}

func (r *pipeReceiver) url() string { return "http://" + r.ln.Addr().String() + "/hook" }

func (r *pipeReceiver) setAnswer(f func(id uint64, seen int) int) {
	r.mu.Lock()
	r.answer = f
	r.mu.Unlock()
}

func (r *pipeReceiver) serve(c net.Conn) {
	defer c.Close()
	br, bw := bufio.NewReaderSize(c, 64<<10), bufio.NewWriter(c)
	batch := 0
	for served := 1; ; served++ {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return
		}
		d := readDelivery(r.secret, req.Header, body)
		r.mu.Lock()
		status := http.StatusNoContent
		if r.answer != nil {
			status = r.answer(d.id, r.seen[d.id])
		}
		r.seen[d.id]++
		d.ok = status/100 == 2
		r.add(d)
		r.mu.Unlock()
		if status == 0 {
			if bw.Flush() != nil {
				return
			}
			_, _ = io.Copy(io.Discard, c) // until the sender closes it
			return
		}
		last := r.perConn > 0 && served == r.perConn
		fmt.Fprintf(bw, "HTTP/1.1 %d %s\r\n", status, http.StatusText(status))
		if last && r.sayClose {
			_, _ = bw.WriteString("Connection: close\r\n")
		}
		_, _ = bw.WriteString("Content-Length: 0\r\n\r\n")
		batch++
		if br.Buffered() == 0 || last {
			r.mu.Lock()
			r.maxBatch = max(r.maxBatch, batch)
			r.mu.Unlock()
			batch = 0
			if bw.Flush() != nil {
				return
			}
		}
		if last {
			return
		}
	}
}

func (r *pipeReceiver) stats() (conns, maxBatch int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.conns, r.maxBatch
}

// backlog creates count conversations while subscription id is paused, and
// resumes it: its worker starts with every queued event waiting. It
// returns the ids of the conversation.queued events.
func backlog(t *testing.T, tn *testNode, id string, count int) []uint64 {
	t.Helper()
	n := tn.node
	propose(t, n, routing.UpdateWebhook{ID: id, Set: routing.WebhookSetPaused, Paused: true})
	testutil.Until(t, 10*time.Second, "the paused subscription's worker stopped", func() error {
		if r := tn.d.Running(); slices.Contains(r, id) {
			return fmt.Errorf("running %v", r)
		}
		return nil
	})
	want := createConversations(t, n, id+"-", count, routing.EventQueued)
	propose(t, n, routing.UpdateWebhook{ID: id, Set: routing.WebhookSetPaused, Paused: false})
	return want
}

// untilDelivered waits for every id of want to be answered 2xx and for the
// cursor to be committed past them.
func untilDelivered(t *testing.T, n *cluster.Node, id string, delivered func() map[uint64]bool, want []uint64) {
	t.Helper()
	testutil.Until(t, 30*time.Second, "every event delivered", func() error {
		got := delivered()
		for _, w := range want {
			if !got[w] {
				return fmt.Errorf("event %d not delivered (%d of %d)", w, len(got), len(want))
			}
		}
		return nil
	})
	testutil.Until(t, 10*time.Second, "the cursor committed", func() error {
		if w, _ := state(t, n, id); w.Cursor < want[len(want)-1] {
			return fmt.Errorf("cursor %d, the last event %d", w.Cursor, want[len(want)-1])
		}
		return nil
	})
}

// TestPipelinedWindowInOrder: with events waiting, up to a window of
// requests is in flight on one connection (more than one, never more than
// Config.Pipeline), and every event arrives once, in id order.
func TestPipelinedWindowInOrder(t *testing.T) {
	for _, depth := range []int{4, pipeline} {
		t.Run(fmt.Sprintf("pipeline %d", depth), func(t *testing.T) {
			cfg := fast
			cfg.Pipeline = depth
			nodes := startNodes(t, 1, cfg)
			n := nodes[0].node
			rcv := newPipeReceiver(t, "s")
			subscribe(t, n, "w1", rcv.url(), "s", routing.EventQueued)
			want := backlog(t, nodes[0], "w1", 50)
			untilDelivered(t, n, "w1", rcv.delivered, want)
			got := rcv.deliveries()
			var ids []uint64
			for _, d := range got {
				ids = append(ids, d.id)
			}
			if !slices.Equal(ids, want) {
				t.Fatalf("requests for events %v, want each of %v once in order", ids, want)
			}
			checkDeliveries(t, got, want, depth)
			conns, maxBatch := rcv.stats()
			if maxBatch < 2 || maxBatch > depth {
				t.Fatalf("at most %d requests answered at once, want 2 to %d", maxBatch, depth)
			}
			if conns != 1 {
				t.Fatalf("%d connections, want one kept alive", conns)
			}
			if w, _ := state(t, n, "w1"); w.LastError != "" {
				t.Fatalf("a failure recorded: %q", w.LastError)
			}
		})
	}
}

// TestFailureInWindow: the receiver answers 500 to the 5th of a window of
// 16 (and keeps answering 500 to that event until the test lets it
// through), 204 to the rest. The deliveries before it count, the cursor
// stays short of it while it fails even though the receiver took events
// after it, and once it is delivered every event has been delivered at
// least once, first sent in id order, duplicates (same id) allowed.
func TestFailureInWindow(t *testing.T) {
	cfg := fast
	cfg.Backoff = webhook.Backoff{Min: 20 * time.Millisecond, Max: 40 * time.Millisecond}
	nodes := startNodes(t, 1, cfg)
	n := nodes[0].node
	rcv := newPipeReceiver(t, "s")
	var mu sync.Mutex
	var requests int
	var failing uint64 // the event of the 5th request
	release := false
	rcv.setAnswer(func(id uint64, seen int) int {
		mu.Lock()
		defer mu.Unlock()
		if requests++; requests == 5 {
			failing = id
		}
		if id == failing && !release {
			return http.StatusInternalServerError
		}
		return http.StatusNoContent
	})
	subscribe(t, n, "w1", rcv.url(), "s", routing.EventQueued)
	want := backlog(t, nodes[0], "w1", 40)
	testutil.Until(t, 10*time.Second, "a 5th request", func() error {
		mu.Lock()
		defer mu.Unlock()
		if failing == 0 {
			return fmt.Errorf("%d requests", requests)
		}
		return nil
	})
	if failing != want[4] {
		t.Fatalf("the 5th request was for event %d, want %d (events %v)", failing, want[4], want)
	}
	// While it fails, the cursor reaches the event before it and no
	// further, and the failure is in the status.
	testutil.Until(t, 20*time.Second, "the cursor committed up to the failing event", func() error {
		w, _ := state(t, n, "w1")
		if w.Cursor >= failing {
			t.Fatalf("cursor %d past event %d, which was never delivered", w.Cursor, failing)
		}
		if w.Cursor != failing-1 || w.LastError != "HTTP 500" {
			return fmt.Errorf("cursor %d (want %d), last error %q", w.Cursor, failing-1, w.LastError)
		}
		return nil
	})
	testutil.Until(t, 10*time.Second, "the failing event retried", func() error {
		var tries int
		for _, d := range rcv.deliveries() {
			if d.id == failing {
				tries++
			}
		}
		if tries < 3 {
			return fmt.Errorf("%d tries", tries)
		}
		return nil
	})
	got := rcv.deliveries()
	var firstFail int
	for i, d := range got {
		if d.id == failing {
			firstFail = i
			break
		}
	}
	for i, d := range got {
		if i < firstFail && !d.ok {
			t.Fatalf("delivery %d (event %d) failed before the failing event", i, d.id)
		}
		if d.id > want[pipeline-1] {
			t.Fatalf("event %d, beyond the failed window, sent while event %d fails", d.id, failing)
		}
	}
	if w, _ := state(t, n, "w1"); w.Cursor >= failing {
		t.Fatalf("cursor %d past event %d, which was never delivered", w.Cursor, failing)
	}
	mu.Lock()
	release = true
	mu.Unlock()
	untilDelivered(t, n, "w1", rcv.delivered, want)
	checkDeliveries(t, rcv.deliveries(), want, pipeline)
}

// TestReceiverEndsEachConnection: a receiver that serves one request per
// connection, saying so ("Connection: close") or just closing it, gets
// every event once, without a failure: the sender falls back to one
// request in flight. One that closes a kept-alive connection every 3
// requests gets every event too, still pipelined.
func TestReceiverEndsEachConnection(t *testing.T) {
	for _, c := range []struct {
		name     string
		perConn  int
		sayClose bool
	}{{"connection close", 1, true}, {"hang up", 1, false}, {"every 3 requests", 3, true}} {
		t.Run(c.name, func(t *testing.T) {
			nodes := startNodes(t, 1, fast)
			n := nodes[0].node
			rcv := newPipeReceiver(t, "s")
			rcv.perConn, rcv.sayClose = c.perConn, c.sayClose
			subscribe(t, n, "w1", rcv.url(), "s", routing.EventQueued)
			want := backlog(t, nodes[0], "w1", 40)
			untilDelivered(t, n, "w1", rcv.delivered, want)
			got := rcv.deliveries()
			checkDeliveries(t, got, want, pipeline)
			if len(got) != len(want) {
				t.Errorf("%d requests for %d events", len(got), len(want))
			}
			if w, _ := state(t, n, "w1"); w.LastError != "" {
				t.Errorf("a failure recorded: %q", w.LastError)
			}
			conns, maxBatch := rcv.stats()
			if want := (len(want) + c.perConn - 1) / c.perConn; conns != want {
				t.Errorf("%d connections, want %d", conns, want)
			}
			if c.perConn > 1 && maxBatch < 2 {
				t.Errorf("at most %d request answered at once: not pipelined", maxBatch)
			}
		})
	}
}

// TestTimeoutInWindow: the receiver does not answer the 3rd request of a
// window: the two before it are delivered, the rest of the window goes
// again after the timeout, and every event is delivered.
func TestTimeoutInWindow(t *testing.T) {
	nodes := startNodes(t, 1, fast)
	n := nodes[0].node
	rcv := newPipeReceiver(t, "s")
	requests := 0
	rcv.setAnswer(func(id uint64, seen int) int {
		if requests++; requests == 3 {
			return 0
		}
		return http.StatusNoContent
	})
	subscribe(t, n, "w1", rcv.url(), "s", routing.EventQueued)
	want := backlog(t, nodes[0], "w1", 30)
	untilDelivered(t, n, "w1", rcv.delivered, want)
	got := rcv.deliveries()
	checkDeliveries(t, got, want, pipeline)
	var ids []uint64
	for _, d := range got[:4] {
		ids = append(ids, d.id)
	}
	if !slices.Equal(ids, []uint64{want[0], want[1], want[2], want[2]}) {
		t.Fatalf("first requests for events %v, want %v then the unanswered one again", ids, want[:3])
	}
	if w, _ := state(t, n, "w1"); w.LastError != "no answer in time (300ms)" {
		t.Fatalf("last error %q", w.LastError)
	}
}
