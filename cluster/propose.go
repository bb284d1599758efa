package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/omnirouter/omnirouter/internal/pause"

	"github.com/hashicorp/raft"

	"github.com/omnirouter/omnirouter/cluster/forward"

	"github.com/omnirouter/omnirouter/routing"
)

// Result is a committed command's answer.
type Result struct {
	// Outcome is the state machine's answer; Outcome.Err is a refused
	// command (a *routing.Error), not a cluster failure.
	Outcome routing.Outcome
	// ServedBy is the id of the leader that applied the command.
	ServedBy string
	// Index is the raft log index of the entry that carried it.
	Index uint64
}

// enqueueTimeout bounds how long the batcher waits for room in raft's queue.
const enqueueTimeout = 5 * time.Second

// retryPause is how often a request waiting for a leader looks again.
const retryPause = 20 * time.Millisecond

// Propose replicates cmd and returns its outcome. Any node accepts it: a
// follower forwards it to the leader's internal endpoint, and the leader
// stamps its clock into it. key is the client's idempotency key ("" for
// none).
//
// Errors: ErrNoLeader (nothing was applied; retry later), ErrAmbiguous (the
// command may have committed; retry with the same key), ErrShutdown, or a
// context error before anything was sent. A domain refusal is not an error
// here: it is Result.Outcome.Err.
func (n *Node) Propose(ctx context.Context, key string, cmd routing.Command) (Result, error) {
	if cmd == nil {
		return Result{}, errors.New("cluster: nil command")
	}
	res, served, idx, err := n.propose(ctx, commandEntry(0, key, cmd))
	if err != nil {
		return Result{}, err
	}
	return Result{Outcome: res.out, ServedBy: served, Index: idx}, res.err
}

// propose sends one entry to the leader, wherever it is, retrying what is
// safe to retry until a leader answers or the no-leader budget is spent.
func (n *Node) propose(ctx context.Context, e entry) (applyResult, string, uint64, error) {
	ctx, cancel := n.withApplyTimeout(ctx)
	defer cancel()
	giveUp := time.Now().Add(n.cfg.NoLeaderWait)
	for {
		if n.stopped.Load() {
			return applyResult{}, "", 0, ErrShutdown
		}
		if n.removed.Load() {
			return applyResult{}, "", 0, ErrRemoved
		}
		var (
			res    applyResult
			served string
			idx    uint64
			err    error
		)
		if n.raft.State() == raft.Leader {
			served = n.id
			res, idx, err = n.proposeLocal(ctx, e)
		} else if lid, addr := n.leaderHTTP(); addr == "" || lid == n.id {
			err = retryable(ErrNoLeader)
		} else {
			n.stats.forwarded.Add(1)
			res, served, idx, err = n.forwardCommand(ctx, e)
		}
		if err == nil {
			return res, served, idx, nil
		}
		if !errors.Is(err, errRetry) {
			return applyResult{}, "", 0, err
		}
		if perr := n.pause(ctx, giveUp); perr != nil {
			if errors.Is(perr, ErrShutdown) {
				return applyResult{}, "", 0, ErrShutdown
			}
			return applyResult{}, "", 0, fmt.Errorf("%w (last attempt: %v)", ErrNoLeader, err)
		}
	}
}

// forwardCommand sends e to the leader on this node's forward stream.
func (n *Node) forwardCommand(ctx context.Context, e entry) (applyResult, string, uint64, error) {
	d, err := n.fwd.Forward(ctx, encodeEntry(&e))
	if err != nil {
		return applyResult{}, "", 0, err
	}
	a := readApplied(d)
	if err := d.Err(); err != nil {
		return applyResult{}, "", 0, ambiguous(fmt.Errorf("undecodable answer from leader: %w", err))
	}
	return a.res, a.served, a.index, nil
}

// streamLeader is the node as its forward.Server sees it: followers'
// commands go to the batcher like local ones.
type streamLeader Node

func (l *streamLeader) IsLeader() bool { return l.raft.State() == raft.Leader }

func (l *streamLeader) Propose(cmd []byte, done func(forward.Result, error)) error {
	n := (*Node)(l)
	e, err := decodeEntry(cmd)
	if err == nil && e.typ == typeBatch {
		err = errors.New("cluster: batches are not forwarded") // only the leader's batcher makes them
	}
	if err != nil {
		return err
	}
	p := &proposal{sink: func(r proposalResult) {
		if r.err != nil {
			done(nil, r.err)
			return
		}
		done(&appliedAnswer{served: n.id, index: r.index, res: r.res}, nil)
	}}
	if err := n.enqueue(n.ctx, p, e); err != nil {
		if errors.Is(err, ErrShutdown) {
			err = retryable(err)
		}
		return err
	}
	return nil
}

// pause waits retryPause, or fails when the budget or ctx runs out, or the
// node stops.
func (n *Node) pause(ctx context.Context, giveUp time.Time) error {
	if !time.Now().Add(retryPause).Before(giveUp) {
		return errors.New("no leader found in time")
	}
	if !pause.For(ctx, retryPause) {
		return ctx.Err()
	}
	if n.stopped.Load() {
		return ErrShutdown
	}
	return nil
}

// leaderHTTP returns the current leader's id and HTTP address, if both are
// known.
func (n *Node) leaderHTTP() (string, string) {
	_, id := n.raft.LeaderWithID()
	if id == "" {
		return "", ""
	}
	info, ok := n.fsm.node(string(id))
	if !ok {
		return string(id), ""
	}
	return string(id), info.HTTPAddr
}

// proposal is one entry queued for the batcher. Its result goes to done,
// or, for a command that came in on a forward stream, to sink (which must
// not block: the batcher's pipeline slot is held until every result of an
// entry is handed over).
type proposal struct {
	e    entry
	done chan proposalResult
	sink func(proposalResult)
}

// finish hands the proposal its result.
func (p *proposal) finish(r proposalResult) {
	if p.sink != nil {
		p.sink(r)
		return
	}
	p.done <- r
}

// proposals recycles proposals and their result channels (two allocations
// per command on the leader). A proposal goes back only once its result
// has been received, the last thing the batcher does with it; one given up
// on (the caller's deadline passed) is left to the garbage collector, since
// its result may still be sent.
var proposals = sync.Pool{New: func() any { return &proposal{done: make(chan proposalResult, 1)} }}

func (p *proposal) release() {
	if p.sink != nil {
		return // a stream's: not from the pool
	}
	p.e = entry{}
	proposals.Put(p)
}

type proposalResult struct {
	res   applyResult
	index uint64
	err   error
}

// proposeLocal proposes e on this node, which must be the leader. A
// routing command gets the leader's clock here.
func (n *Node) proposeLocal(ctx context.Context, e entry) (applyResult, uint64, error) {
	p, err := n.enqueueLocal(ctx, e)
	if err != nil {
		return applyResult{}, 0, err
	}
	return n.waitLocal(ctx, p)
}

// enqueueLocal hands e to the batcher (stamping the leader's clock into a
// routing command). An error means e was never queued.
func (n *Node) enqueueLocal(ctx context.Context, e entry) (*proposal, error) {
	p := proposals.Get().(*proposal)
	if err := n.enqueue(ctx, p, e); err != nil {
		return nil, err
	}
	return p, nil
}

// enqueue stamps e and queues it as p; an error means p was never queued
// (and went back to the pool if it came from there).
func (n *Node) enqueue(ctx context.Context, p *proposal, e entry) error {
	if n.raft.State() != raft.Leader {
		p.release()
		return retryable(raft.ErrNotLeader)
	}
	if e.typ < typeRegister {
		e.at = time.Now().UnixMilli()
	}
	p.e = e
	select {
	case n.proposals <- p:
		return nil
	case <-ctx.Done():
		p.release()
		return ctx.Err() // never queued
	case <-n.ctx.Done():
		p.release()
		return ErrShutdown
	}
}

// waitLocal waits for a queued proposal's result; giving up is ambiguous.
func (n *Node) waitLocal(ctx context.Context, p *proposal) (applyResult, uint64, error) {
	select {
	case r := <-p.done:
		p.release()
		return r.res, r.index, r.err
	case <-ctx.Done():
		return applyResult{}, 0, ambiguous(ctx.Err())
	case <-n.ctx.Done():
		return applyResult{}, 0, ambiguous(ErrShutdown)
	}
}

// runBatcher takes what concurrent proposers queued (up to MaxBatch) and
// makes it one log entry, so they share a raft round trip, an fsync and the
// per-entry work; at most MaxInflight entries are committing at once.
func (n *Node) runBatcher() {
	defer n.wg.Done()
	batch := make([]*proposal, 0, n.cfg.MaxBatch)
	for {
		batch = batch[:0]
		select {
		case p := <-n.proposals:
			batch = append(batch, p)
		case <-n.ctx.Done():
			n.drainProposals()
			return
		}
		// Wait for a free pipeline slot: while the entries in flight are
		// being written and replicated, more proposals queue up and leave
		// together (group commit). With nothing in flight this is immediate.
		select {
		case n.inflight <- struct{}{}:
		case <-n.ctx.Done():
			batch[0].finish(proposalResult{err: retryable(ErrShutdown)})
			n.drainProposals()
			return
		}
	fill:
		for len(batch) < n.cfg.MaxBatch {
			select {
			case p := <-n.proposals:
				batch = append(batch, p)
			default:
				break fill
			}
		}
		var data []byte
		if len(batch) == 1 {
			data = encodeEntry(&batch[0].e)
		} else {
			data = encodeBatchOf(len(batch), func(i int) *entry { return &batch[i].e })
		}
		n.stats.entries.Add(1)
		n.stats.commands.Add(uint64(len(batch)))
		slot := &inflightEntry{data: data}
		n.lastEntry.Store(slot)
		f := n.raft.Apply(data, enqueueTimeout)
		go func(batch []*proposal) {
			deliver(f, batch)
			slot.release(n)
		}(append([]*proposal(nil), batch...))
	}
}

// inflightEntry is one of the batcher's entries being committed. Its
// pipeline slot is given back once, by whichever comes first: the leader's
// state machine starting to apply it (it has committed) or its delivery
// (it failed, or the state machine did not recognise it). Freeing the slot
// at commit lets the next entry be written and replicated while the leader
// applies this one, instead of after.
type inflightEntry struct {
	data     []byte
	released atomic.Bool
}

func (e *inflightEntry) release(n *Node) {
	if e.released.CompareAndSwap(false, true) {
		<-n.inflight
	}
}

// entryCommitted is called by the state machine before it applies a
// committed entry. On the leader, raft hands the state machine the very
// slice the batcher proposed, so the batcher's newest entry is recognised
// by its first byte's address (no copy, no decoding).
func (n *Node) entryCommitted(data []byte) {
	if e := n.lastEntry.Load(); e != nil && len(data) > 0 && len(e.data) == len(data) && &e.data[0] == &data[0] {
		e.release(n)
	}
	if n.cfg.beforeApply != nil {
		n.cfg.beforeApply(data)
	}
}

// deliver waits for a batch's commit and hands each proposer its result.
func deliver(f raft.ApplyFuture, batch []*proposal) {
	if err := f.Error(); err != nil {
		err = classifyApplyErr(err)
		for _, p := range batch {
			p.finish(proposalResult{err: err})
		}
		return
	}
	idx := f.Index()
	switch resp := f.Response().(type) {
	case applyResult:
		batch[0].finish(proposalResult{res: resp, index: idx})
	case []applyResult:
		for i, p := range batch {
			p.finish(proposalResult{res: resp[i], index: idx})
		}
	default:
		err := ambiguous(fmt.Errorf("unexpected apply response %T", resp))
		for _, p := range batch {
			p.finish(proposalResult{err: err})
		}
	}
}

func (n *Node) drainProposals() {
	for {
		select {
		case p := <-n.proposals:
			p.finish(proposalResult{err: retryable(ErrShutdown)})
		default:
			return
		}
	}
}
