package cluster

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/omnirouter/omnirouter/internal/wire"
)

// Forward batching: on a follower, concurrent Propose calls are queued for
// one forwarder goroutine. While a forward request is in flight the rest
// accumulate; the next request carries all of them (up to maxForwardBatch)
// to the leader's proposebatch endpoint, which queues them all for its own
// batcher and answers with one result per command, in order.
const (
	maxForwardBatch = 256 // commands per forward request
	// maxForwardInflight is the number of forward requests in flight per
	// follower. 1 measured best (BenchmarkPropose via=follower, 64
	// proposers: ~24k cmds/s at 32 cmds/request; 2, 4, 8 in flight: ~16.5k).
	maxForwardInflight = 1
	maxServeBatch      = 4096 // commands the leader accepts in one request
	// forwardLinger is how long commands gather before a stream write
	// while others are in flight. The leader only takes them when its
	// previous entry commits (~2 ms apart under load), so the wait rarely
	// delays a command, and fewer writes cost both nodes less: 200 µs cut
	// node CPU per command ~4% against none, 500 µs no more (create at 64
	// clients, two alternating rounds each).
	forwardLinger = 200 * time.Microsecond
)

// states of a queued forward
const (
	fwdQueued    int32 = iota // waiting for the forwarder
	fwdTaken                  // in a request (may reach the leader)
	fwdCancelled              // its caller gave up first: never sent
)

// fwdReq is one command waiting to be forwarded.
type fwdReq struct {
	ctx   context.Context
	e     entry
	state atomic.Int32
	done  chan fwdResult
}

type fwdResult struct {
	res    applyResult
	served string
	idx    uint64
	err    error
}

// forwardBatched forwards e to the leader together with whatever other
// commands are waiting. Like forwardPropose: a safe-to-retry failure is
// retryable, an answer that never came back is ambiguous.
func (n *Node) forwardBatched(ctx context.Context, e entry) (applyResult, string, uint64, error) {
	r := &fwdReq{ctx: ctx, e: e, done: make(chan fwdResult, 1)}
	select {
	case n.forwards <- r:
	case <-ctx.Done():
		return applyResult{}, "", 0, ctx.Err() // never queued
	case <-n.ctx.Done():
		return applyResult{}, "", 0, retryable(ErrShutdown)
	}
	select {
	case res := <-r.done:
		return res.res, res.served, res.idx, res.err
	case <-ctx.Done():
		if r.state.CompareAndSwap(fwdQueued, fwdCancelled) {
			return applyResult{}, "", 0, ctx.Err() // never sent
		}
		return applyResult{}, "", 0, ambiguous(ctx.Err())
	case <-n.ctx.Done():
		if r.state.CompareAndSwap(fwdQueued, fwdCancelled) {
			return applyResult{}, "", 0, retryable(ErrShutdown)
		}
		return applyResult{}, "", 0, ambiguous(ErrShutdown)
	}
}

// runForwarder sends the queued commands to the leader: on the leader's
// forward stream as soon as it takes them (fwdstream.go), or, when there is
// none, in proposebatch requests: the first waiting command opens a
// request; while maxForwardInflight requests are in flight more commands
// queue and leave together.
func (n *Node) runForwarder() {
	defer n.wg.Done()
	batch := make([]*fwdReq, 0, maxForwardBatch)
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	for {
		batch = batch[:0]
		select {
		case r := <-n.forwards:
			batch = append(batch, r)
		case <-n.ctx.Done():
			n.drainForwards()
			return
		}
		if st := n.forwardStream(); st != nil {
			// On a stream nothing waits for an answer before sending. While
			// earlier commands are in flight, commands gather for up to
			// forwardLinger first (one write for several); on an idle
			// stream the command leaves at once.
			if st.inFlight() {
				linger.Reset(forwardLinger)
			collect:
				for len(batch) < maxForwardBatch {
					select {
					case r := <-n.forwards:
						batch = append(batch, r)
					case <-linger.C:
						break collect
					}
				}
				linger.Stop()
			}
			batch = fillForwards(n.forwards, batch)
			if send := takeForwards(batch); len(send) > 0 {
				st.send(send)
			}
			continue
		}
		select {
		case n.fwdInflight <- struct{}{}:
		case <-n.ctx.Done():
			failForwards(batch, retryable(ErrShutdown))
			n.drainForwards()
			return
		}
		batch = fillForwards(n.forwards, batch)
		send := takeForwards(batch)
		if len(send) == 0 {
			<-n.fwdInflight
			continue
		}
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			n.sendForwards(send)
			<-n.fwdInflight
		}()
	}
}

// fillForwards adds what is queued now to batch, up to maxForwardBatch.
func fillForwards(queue chan *fwdReq, batch []*fwdReq) []*fwdReq {
	for len(batch) < maxForwardBatch {
		select {
		case r := <-queue:
			batch = append(batch, r)
		default:
			return batch
		}
	}
	return batch
}

// takeForwards moves the commands whose callers still wait to fwdTaken and
// returns them (in a new slice: the forwarder reuses batch).
func takeForwards(batch []*fwdReq) []*fwdReq {
	send := make([]*fwdReq, 0, len(batch))
	for _, r := range batch {
		if r.state.CompareAndSwap(fwdQueued, fwdTaken) {
			send = append(send, r)
		}
	}
	return send
}

// failForwards answers every command that was not cancelled with err (which
// must be safe: they were never sent).
func failForwards(batch []*fwdReq, err error) {
	for _, r := range batch {
		if r.state.CompareAndSwap(fwdQueued, fwdTaken) {
			r.done <- fwdResult{err: err}
		}
	}
}

func (n *Node) drainForwards() {
	for {
		select {
		case r := <-n.forwards:
			failForwards([]*fwdReq{r}, retryable(ErrShutdown))
		default:
			return
		}
	}
}

// sendForwards sends one proposebatch request and hands every command its
// own result. Each r is in state fwdTaken and gets exactly one result.
func (n *Node) sendForwards(batch []*fwdReq) {
	reply := func(err error) {
		for _, r := range batch {
			r.done <- fwdResult{err: err}
		}
	}
	lid, addr := n.leaderHTTP()
	if addr == "" || lid == n.id {
		reply(retryable(ErrNoLeader)) // the callers look again
		return
	}
	// The request lives as long as the most patient caller (each has a
	// deadline: propose sets one); a caller that gives up earlier gets
	// ErrAmbiguous from forwardBatched.
	var dl time.Time
	for _, r := range batch {
		if d, ok := r.ctx.Deadline(); ok && d.After(dl) {
			dl = d
		}
	}
	if dl.IsZero() {
		dl = time.Now().Add(n.cfg.ApplyTimeout)
	}
	ctx, cancel := context.WithDeadline(n.ctx, dl)
	defer cancel()

	enc := wire.Encoder{Buf: make([]byte, 0, 192*len(batch))}
	enc.Byte(forwardVersion)
	enc.Uvarint(uint64(len(batch)))
	for _, r := range batch {
		enc.Bytes(encodeEntry(&r.e))
	}
	n.stats.forwardRequests.Add(1)
	d, sent, err := n.call(ctx, addr+pathProposeBatch, enc.Buf)
	if err != nil {
		if isNotFound(err) {
			n.forwardEach(addr, batch) // a leader of the previous release
			return
		}
		if sent && !errors.Is(err, ErrAmbiguous) && !isRefusal(err) {
			err = ambiguous(err) // the leader may have applied any of them
		}
		reply(err)
		return
	}
	results := make([]fwdResult, len(batch))
	if cnt := d.Uvarint(); d.Err() == nil && cnt != uint64(len(batch)) {
		d.Fail("%d results for %d commands", cnt, len(batch))
	}
	for i := 0; i < len(batch) && d.Err() == nil; i++ {
		results[i] = readForwardResult(d)
	}
	if err := d.Err(); err != nil {
		reply(ambiguous(fmt.Errorf("undecodable answer from leader: %w", err)))
		return
	}
	for i, r := range batch {
		r.done <- results[i]
	}
}

// forwardEach forwards the commands one request each (protocol version 1).
func (n *Node) forwardEach(addr string, batch []*fwdReq) {
	var wg sync.WaitGroup
	for _, r := range batch {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n.stats.forwardRequests.Add(1)
			res, served, idx, err := n.forwardPropose(r.ctx, addr, &r.e)
			r.done <- fwdResult{res: res, served: served, idx: idx, err: err}
		}()
	}
	wg.Wait()
}

// readForwardResult reads one command's result in a proposebatch answer.
func readForwardResult(d *wire.Decoder) fwdResult {
	switch st := d.Byte(); st {
	case stOK:
		res, served, idx := readApplied(d)
		return fwdResult{res: res, served: served, idx: idx}
	case stRetry:
		return fwdResult{err: retryable(fmt.Errorf("leader: %s", d.String()))}
	case stAmbiguous:
		return fwdResult{err: ambiguous(fmt.Errorf("leader: %s", d.String()))}
	case stError:
		return fwdResult{err: refusal{fmt.Errorf("cluster: leader refused: %s", d.String())}}
	default:
		d.Fail("bad result status %d", st)
		return fwdResult{}
	}
}

// batchAnswerBufs holds serveProposeBatch's answer buffers; one over
// maxPooledBatchAnswer (a huge batch) is left to the collector.
var batchAnswerBufs = sync.Pool{New: func() any { return new([]byte) }}

const maxPooledBatchAnswer = 1 << 20

// serveProposeBatch is the leader's half: it queues every command for the
// local batcher at once, then answers OK, the count and one result per
// command in order (status byte, then the applied answer or a message).
// If the first command cannot be queued (not leader) the whole request is
// answered RETRY; a later command that cannot be queued gets that error as
// its own result, and so do the ones after it (none of them was queued).
func (n *Node) serveProposeBatch(w http.ResponseWriter, r *http.Request) {
	d, ok := readRequestMin(w, r, forwardVersion)
	if !ok {
		return
	}
	cnt := d.Len(maxServeBatch)
	entries := make([]entry, 0, cnt)
	for i := 0; i < cnt && d.Err() == nil; i++ {
		e, err := decodeForwarded(d.Bytes())
		if err != nil {
			writeErr(w, err)
			return
		}
		entries = append(entries, e)
	}
	if err := d.Err(); err != nil || cnt == 0 {
		if err == nil {
			err = errors.New("cluster: empty batch")
		}
		writeErr(w, fmt.Errorf("cluster: bad batch request: %w", err))
		return
	}
	ctx, cancel := n.serveCtx(r)
	defer cancel()
	ps := make([]*proposal, len(entries))
	var qerr error
	for i := range entries {
		if ps[i], qerr = n.enqueueLocal(ctx, entries[i]); qerr != nil {
			break
		}
	}
	if ps[0] == nil {
		writeErr(w, qerr)
		return
	}
	// ~0.5 KB per answer (a conversation's state); the buffer is reused
	// (it was a tenth of the bytes a leader allocated).
	bp := batchAnswerBufs.Get().(*[]byte)
	enc := wire.Encoder{Buf: slices.Grow((*bp)[:0], 512*len(entries))}
	defer func() {
		if cap(enc.Buf) <= maxPooledBatchAnswer {
			*bp = enc.Buf
			batchAnswerBufs.Put(bp)
		}
	}()
	enc.Byte(stOK)
	enc.Uvarint(uint64(len(entries)))
	for _, p := range ps {
		if p == nil {
			appendStatusErr(&enc, qerr)
			continue
		}
		res, idx, err := n.waitLocal(ctx, p)
		if err != nil {
			appendStatusErr(&enc, err)
			continue
		}
		enc.Byte(stOK)
		appendApplied(&enc, n.id, idx, &res)
	}
	writeResponse(w, &enc)
}

// appendStatusErr writes err's status byte and message (as writeErr does).
func appendStatusErr(enc *wire.Encoder, err error) {
	switch {
	case errors.Is(err, errRetry), errors.Is(err, ErrNoLeader):
		enc.Byte(stRetry)
	case errors.Is(err, ErrAmbiguous):
		enc.Byte(stAmbiguous)
	default:
		enc.Byte(stError)
	}
	enc.String(err.Error())
}
