package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/omnirouter/omnirouter/internal/testutil"
	"github.com/omnirouter/omnirouter/internal/wire"
)

// holdFirstBatch blocks the leader's proposebatch requests, starts count
// concurrent proposals (keys key-i, agents i) through f, waits until the
// first request is held and the other count-1 commands are queued on the
// follower, then releases the leader. It returns every caller's result.
func holdFirstBatch(t *testing.T, leader, f *testNode, key string, count int) ([]Result, []error) {
	t.Helper()
	if count < 3 {
		t.Fatal("holdFirstBatch needs at least 3 commands")
	}
	// proposebatch is the path to a leader without forward streams.
	leader.noStream.Store(true)
	hold := make(chan struct{})
	leader.holdBatch.Store(&hold)
	defer leader.holdBatch.Store(nil)
	released := false
	defer func() {
		if !released {
			close(hold)
		}
	}()
	results := make([]Result, count)
	errs := make([]error, count)
	var wg sync.WaitGroup
	var finished atomic.Int32
	start := func(i int) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer finished.Add(1)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			results[i], errs[i] = f.node.Propose(ctx, fmt.Sprintf("%s-%d", key, i), agentCmd(i))
		}()
	}
	// A lone command opens the first request, which the leader holds...
	start(0)
	testutil.Until(t, 10*time.Second, "the first forward request in flight", func() error {
		if len(f.node.fwdInflight) != 1 || len(f.node.forwards) != 0 {
			return errors.New("not yet")
		}
		return nil
	})
	// ...while all the others queue behind it.
	for i := 1; i < count; i++ {
		start(i)
	}
	testutil.Until(t, 10*time.Second, "commands queued behind the held forward request", func() error {
		// The forwarder itself holds the next command while it waits for
		// the in-flight slot.
		if q := len(f.node.forwards); q != count-2 {
			return fmt.Errorf("%d queued, %d finished", q, finished.Load())
		}
		return nil
	})
	close(hold)
	released = true
	wg.Wait()
	return results, errs
}

// TestForwardBatching: concurrent writes through a follower travel to the
// leader in fewer requests than commands, and every caller gets its own
// outcome.
func TestForwardBatching(t *testing.T) {
	routingReady(t)
	c := newCluster(t, clusterOpts{n: 3, inmem: true})
	leader := c.waitLeader(nil)
	f := c.follower(leader)

	const count = 300 // > maxForwardBatch: the queue leaves in two requests
	before := f.node.Status().Stats
	results, errs := holdFirstBatch(t, leader, f, "batch", count)
	checkAgentOutcomes(t, leader, results, errs)
	after := f.node.Status().Stats
	cmds, reqs := after.Forwarded-before.Forwarded, after.ForwardRequests-before.ForwardRequests
	t.Logf("%d commands forwarded in %d requests", cmds, reqs)
	if cmds != count {
		t.Errorf("forwarded %d commands, want %d", cmds, count)
	}
	// One held request with the first command, then the 299 queued commands
	// in ceil(299/256) = 2 requests.
	if want := uint64(1 + (count-1+maxForwardBatch-1)/maxForwardBatch); reqs != want {
		t.Errorf("%d forward requests for %d commands, want %d", reqs, count, want)
	}
	// Retries with the same keys are replayed, through the batch path too.
	results, errs = holdFirstBatch(t, leader, f, "batch", 20)
	checkReplayed(t, results, errs)
	c.checkConverged()
}

// TestForwardBatchLostAnswerIsAmbiguous: the leader applies a forwarded
// batch but its answer never reaches the follower: every command in it is
// ErrAmbiguous, and retries with the same keys return the first outcomes.
func TestForwardBatchLostAnswerIsAmbiguous(t *testing.T) {
	routingReady(t)
	c := newCluster(t, clusterOpts{n: 3, inmem: true})
	leader := c.waitLeader(nil)
	f := c.follower(leader)

	const count = 40
	before := f.node.Status().Stats
	leader.dropAnswers.Store(true)
	_, errs := holdFirstBatch(t, leader, f, "lost-batch", count)
	leader.dropAnswers.Store(false)
	for i, err := range errs {
		if !errors.Is(err, ErrAmbiguous) {
			t.Errorf("command %d with a lost answer: %v, want ErrAmbiguous", i, err)
		}
	}
	if reqs := f.node.Status().Stats.ForwardRequests - before.ForwardRequests; reqs != 2 {
		t.Errorf("%d forward requests, want 2 (a lone one, then %d together)", reqs, count-1)
	}
	for i := range count {
		res := propose(t, f, fmt.Sprintf("lost-batch-%d", i), agentCmd(i))
		if !res.Outcome.Replayed {
			t.Errorf("retry %d was applied again instead of replayed", i)
		}
	}
	c.checkConverged()
}

// TestForwardProtocolVersions: a proposebatch sent to a node that is not
// the leader is answered RETRY as a whole (nothing happened), and the
// leader still serves the version 1 single-command propose.
func TestForwardProtocolVersions(t *testing.T) {
	routingReady(t)
	c := newCluster(t, clusterOpts{n: 3, inmem: true})
	leader := c.waitLeader(nil)
	f := c.follower(leader)
	other := c.third(leader, f)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var enc wire.Encoder
	enc.Byte(forwardVersion)
	enc.Uvarint(3)
	for i := range 3 {
		e := commandEntry(0, fmt.Sprintf("v-%d", i), agentCmd(i))
		enc.Bytes(encodeEntry(&e))
	}
	_, sent, err := f.node.call(ctx, other.cfg.HTTPAddr+pathProposeBatch, enc.Buf)
	if !errors.Is(err, errRetry) || sent {
		t.Fatalf("batch to a follower: sent %v, err %v; want a retryable error", sent, err)
	}
	// Version 1, one command per request (followers of the previous release).
	e := commandEntry(0, "v1", agentCmd(7))
	res, served, idx, err := f.node.forwardPropose(ctx, leader.cfg.HTTPAddr, &e)
	if err != nil || res.err != nil || served != leader.cfg.NodeID || idx == 0 ||
		res.out.Agent == nil || res.out.Agent.ID != agentCmd(7).ID {
		t.Fatalf("version 1 propose: %+v %q %d %v", res, served, idx, err)
	}
	// A version the leader does not know is refused before anything runs.
	_, _, err = f.node.call(ctx, leader.cfg.HTTPAddr+pathProposeBatch, append([]byte{forwardVersion + 1}, enc.Buf[1:]...))
	if err == nil {
		t.Fatal("a future protocol version was accepted")
	}
	c.checkConverged()
}

// TestForwardAnswersAreSized: an internal answer (a batch's results run to
// several KB) carries its length instead of going out chunked, which
// net/http does to an unsized body over 2 KB: more writes per answer.
func TestForwardAnswersAreSized(t *testing.T) {
	payload := bytes.Repeat([]byte{7}, 10_000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		enc := wire.Encoder{Buf: payload}
		writeResponse(w, &enc)
	}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(body, payload) {
		t.Fatalf("body of %d bytes, want the %d written", len(body), len(payload))
	}
	if len(resp.TransferEncoding) != 0 || resp.ContentLength != int64(len(payload)) {
		t.Fatalf("sent with transfer encoding %v, length %d", resp.TransferEncoding, resp.ContentLength)
	}
}
