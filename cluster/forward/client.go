package forward

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/omnirouter/omnirouter/internal/wire"
)

// Config configures a Forwarder.
type Config struct {
	// HTTP reaches the leader (its transport carries the cluster's TLS
	// and secret).
	HTTP *http.Client
	// Leader returns the current leader's HTTP base URL, or "" when no
	// leader is known or this node leads.
	Leader func() string
	// AnswerTimeout closes a stream whose commands get no answer for this
	// long (default 5s).
	AnswerTimeout time.Duration
	// RetireTimeout closes a retired stream (the leader changed) this long
	// after it was retired, even with commands still unanswered (default
	// 10s).
	RetireTimeout time.Duration
	Logger        *slog.Logger
}

// Forwarder is a follower's side: it queues the commands its callers
// forward and writes them on its stream to the leader.
type Forwarder struct {
	cfg    Config
	queue  chan *request
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{} // the forwarder goroutine ended

	// Stream goroutines; none start once closed. open counts live streams.
	mu       sync.Mutex
	closed   bool
	streamWG sync.WaitGroup
	open     int

	stream *stream // the forwarder goroutine's current stream
	writes atomic.Uint64
}

// states of a queued request
const (
	reqQueued    int32 = iota // waiting for the forwarder
	reqTaken                  // being written (may reach the leader)
	reqCancelled              // its caller gave up first: never sent
)

// request is one command waiting to be forwarded.
type request struct {
	cmd   []byte
	state atomic.Int32
	done  chan answer
}

type answer struct {
	d   *wire.Decoder // positioned at the result (status OK)
	err error
}

// NewForwarder starts a forwarder; Close stops it.
func NewForwarder(cfg Config) *Forwarder {
	if cfg.AnswerTimeout <= 0 {
		cfg.AnswerTimeout = 5 * time.Second
	}
	if cfg.RetireTimeout <= 0 {
		cfg.RetireTimeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	f := &Forwarder{cfg: cfg, queue: make(chan *request, 4096), done: make(chan struct{})}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	go f.run()
	return f
}

// Forward sends cmd (an encoded command) to the leader and returns a
// decoder positioned at its result. Errors: ErrRetry (it never reached a
// leader's queue), ErrAmbiguous (it may have committed), *Refused, or
// ctx's error when it was cancelled before it was sent.
func (f *Forwarder) Forward(ctx context.Context, cmd []byte) (*wire.Decoder, error) {
	r := &request{cmd: cmd, done: make(chan answer, 1)}
	select {
	case f.queue <- r:
	case <-ctx.Done():
		return nil, ctx.Err() // never queued
	case <-f.ctx.Done():
		return nil, fmt.Errorf("%w: %w", ErrRetry, ErrClosed)
	}
	select {
	case a := <-r.done:
		return a.d, a.err
	case <-ctx.Done():
		if r.state.CompareAndSwap(reqQueued, reqCancelled) {
			return nil, ctx.Err() // never sent
		}
		return nil, fmt.Errorf("%w: %w", ErrAmbiguous, ctx.Err())
	case <-f.ctx.Done():
		if r.state.CompareAndSwap(reqQueued, reqCancelled) {
			return nil, fmt.Errorf("%w: %w", ErrRetry, ErrClosed)
		}
		return nil, fmt.Errorf("%w: %w", ErrAmbiguous, ErrClosed)
	}
}

// Writes counts the stream writes so far (commands per write is the
// forwarder's batching gain).
func (f *Forwarder) Writes() uint64 { return f.writes.Load() }

// Streams is the number of open streams (1 while forwarding to a leader).
func (f *Forwarder) Streams() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.open
}

// Close stops the forwarder: queued commands get ErrRetry, commands on a
// stream ErrAmbiguous, and every goroutine has ended when it returns.
func (f *Forwarder) Close() {
	f.cancel()
	<-f.done
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	f.streamWG.Wait()
}

// run takes queued commands and writes them on the leader's stream: at once
// on an idle stream; while earlier commands are in flight, after gathering
// for up to Linger (one write for several).
func (f *Forwarder) run() {
	defer close(f.done)
	batch := make([]*request, 0, MaxBatch)
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	for {
		batch = batch[:0]
		select {
		case r := <-f.queue:
			batch = append(batch, r)
		case <-f.ctx.Done():
			f.drain()
			return
		}
		st, err := f.currentStream()
		if err != nil {
			fail(take(fill(f.queue, batch)), err)
			continue
		}
		if st.inFlight() {
			linger.Reset(Linger)
		collect:
			for len(batch) < MaxBatch {
				select {
				case r := <-f.queue:
					batch = append(batch, r)
				case <-linger.C:
					break collect
				}
			}
			linger.Stop()
		}
		if send := take(fill(f.queue, batch)); len(send) > 0 {
			st.send(send)
		}
	}
}

// fill adds what is queued now to batch, up to MaxBatch.
func fill(queue chan *request, batch []*request) []*request {
	for len(batch) < MaxBatch {
		select {
		case r := <-queue:
			batch = append(batch, r)
		default:
			return batch
		}
	}
	return batch
}

// take moves the requests whose callers still wait to reqTaken and returns
// them (in a new slice: the forwarder reuses batch).
func take(batch []*request) []*request {
	send := make([]*request, 0, len(batch))
	for _, r := range batch {
		if r.state.CompareAndSwap(reqQueued, reqTaken) {
			send = append(send, r)
		}
	}
	return send
}

// fail answers taken requests that were never written.
func fail(rs []*request, err error) {
	for _, r := range rs {
		r.done <- answer{err: err}
	}
}

func (f *Forwarder) drain() {
	for {
		select {
		case r := <-f.queue:
			fail(take([]*request{r}), fmt.Errorf("%w: %w", ErrRetry, ErrClosed))
		default:
			if f.stream != nil {
				f.stream.fail(ErrClosed)
			}
			return
		}
	}
}

// currentStream returns the stream to the current leader, opening one if
// needed. Its error is ErrRetry: nothing was sent.
func (f *Forwarder) currentStream() (*stream, error) {
	addr := f.cfg.Leader()
	if addr == "" {
		return nil, fmt.Errorf("%w: no leader known", ErrRetry)
	}
	if s := f.stream; s != nil {
		if s.addr == addr && s.usable() {
			return s, nil
		}
		s.retire()
		f.stream = nil
	}
	s, err := f.dial(addr)
	if err != nil {
		return nil, fmt.Errorf("%w: forward stream to %s: %w", ErrRetry, addr, err)
	}
	f.stream = s
	return s, nil
}

// dial upgrades a request to the leader's stream endpoint.
func (f *Forwarder) dial(addr string) (*stream, error) {
	ctx, cancel := context.WithTimeout(f.ctx, DialTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, addr+Path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", protocol)
	resp, err := f.cfg.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	rwc, ok := resp.Body.(io.ReadWriteCloser)
	if resp.StatusCode != http.StatusSwitchingProtocols || !ok {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			// The node answered with a status: RETRY when it does not lead.
			if err := ReadStatus(wire.NewDecoder(body)); err != nil {
				return nil, err
			}
		}
		return nil, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	s := &stream{f: f, addr: addr, rwc: rwc, br: bufio.NewReaderSize(rwc, 32<<10), pending: map[uint64]*request{}, opened: time.Now()}
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		rwc.Close()
		return nil, ErrClosed
	}
	f.streamWG.Add(2)
	f.open++
	f.mu.Unlock()
	go s.readLoop()
	go s.watch()
	return s, nil
}

// stream is a follower's stream to one leader.
type stream struct {
	f    *Forwarder
	addr string
	rwc  io.ReadWriteCloser
	br   *bufio.Reader

	mu       sync.Mutex
	pending  map[uint64]*request // written (or being written), not answered
	err      error               // set once: the stream is broken
	retiring time.Time           // the leader changed: close once drained

	opened  time.Time    // for the clocks below (monotonic)
	writing atomic.Int64 // 1 + nanoseconds after opened a write started; 0 between writes
	// heard is when (nanoseconds after opened) the stream last made
	// progress: a result came, or a command went out to an idle stream.
	heard   atomic.Int64
	nextTag uint64 // forwarder goroutine only
	buf     []byte // forwarder goroutine only
}

// usable reports whether new commands may go on the stream: it is not
// broken and not retired.
func (s *stream) usable() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err == nil && s.retiring.IsZero()
}

// inFlight reports whether commands written on the stream await results.
func (s *stream) inFlight() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending) > 0
}

// retire lets the stream finish the commands it carries, then closes it.
func (s *stream) retire() {
	s.mu.Lock()
	if s.retiring.IsZero() {
		s.retiring = time.Now()
	}
	s.mu.Unlock()
}

// send writes batch (every request taken) on the stream. A request that
// cannot be written is answered here.
func (s *stream) send(batch []*request) {
	s.mu.Lock()
	if err := s.err; err != nil {
		s.mu.Unlock()
		fail(batch, fmt.Errorf("%w: %w", ErrRetry, err)) // nothing was written
		return
	}
	if len(s.pending) == 0 {
		s.heard.Store(int64(time.Since(s.opened)))
	}
	buf := s.buf[:0]
	var pl wire.Encoder
	for _, r := range batch {
		s.nextTag++
		s.pending[s.nextTag] = r
		pl.Buf = pl.Buf[:0]
		pl.Uvarint(s.nextTag)
		pl.Bytes(r.cmd)
		buf = appendFrame(buf, pl.Buf)
	}
	s.mu.Unlock()
	s.f.writes.Add(1)
	s.writing.Store(1 + int64(time.Since(s.opened)))
	_, err := s.rwc.Write(buf)
	s.writing.Store(0)
	if err != nil {
		s.fail(fmt.Errorf("forward stream to %s: %w", s.addr, err))
	}
	if cap(buf) <= 1<<20 {
		s.buf = buf
	}
}

// fail breaks the stream: every command written on it gets ErrAmbiguous
// (the leader may have read it), and the forwarder opens a new one.
func (s *stream) fail(err error) {
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		return
	}
	s.err = err
	pending := s.pending
	s.pending = nil
	s.mu.Unlock()
	s.rwc.Close()
	s.f.mu.Lock()
	s.f.open--
	s.f.mu.Unlock()
	for _, r := range pending {
		r.done <- answer{err: fmt.Errorf("%w: %w", ErrAmbiguous, err)}
	}
}

// readLoop hands each result to its command.
func (s *stream) readLoop() {
	defer s.f.streamWG.Done()
	for {
		frame, err := readFrame(s.br)
		if err != nil {
			s.fail(fmt.Errorf("forward stream from %s: %w", s.addr, err))
			return
		}
		// The result's strings share the frame: one copy serves them all.
		d := wire.NewSharedDecoder(frame)
		tag := d.Uvarint()
		status := ReadStatus(d)
		if err := d.Err(); err != nil {
			s.fail(fmt.Errorf("undecodable answer on forward stream from %s: %w", s.addr, err))
			return
		}
		s.heard.Store(int64(time.Since(s.opened)))
		s.mu.Lock()
		r := s.pending[tag]
		delete(s.pending, tag)
		s.mu.Unlock()
		if r != nil {
			r.done <- answer{d: d, err: status}
		}
	}
}

// watch closes the stream when a write stalls, when commands have waited
// AnswerTimeout without any answer coming (a leader that stopped reading,
// as a paused process does, while raft still lists it), when it has been
// retired (the leader changed) and carries nothing more (or RetireTimeout
// passed), or when the forwarder closes.
func (s *stream) watch() {
	defer s.f.streamWG.Done()
	t := time.NewTicker(watchEvery)
	defer t.Stop()
	for {
		select {
		case <-s.f.ctx.Done():
			s.fail(ErrClosed)
			return
		case <-t.C:
		}
		if w := s.writing.Load(); w != 0 && time.Since(s.opened)-time.Duration(w-1) > StallTimeout {
			s.fail(fmt.Errorf("forward stream to %s: a write stalled for %v", s.addr, StallTimeout))
		}
		// The leader changed (or this node leads now, and forwards
		// nothing): the forwarder would only notice with its next command.
		if s.f.cfg.Leader() != s.addr {
			s.retire()
		}
		s.mu.Lock()
		done, retiring, idle := s.err != nil, s.retiring, len(s.pending) == 0
		s.mu.Unlock()
		if done {
			return
		}
		if silent := time.Since(s.opened) - time.Duration(s.heard.Load()); !idle && silent > s.f.cfg.AnswerTimeout {
			s.fail(fmt.Errorf("forward stream to %s: no answer for %v", s.addr, silent.Round(time.Millisecond)))
			return
		}
		if !retiring.IsZero() && (idle || time.Since(retiring) > s.f.cfg.RetireTimeout) {
			s.fail(errors.New("forward stream retired: the leader changed"))
			return
		}
	}
}
