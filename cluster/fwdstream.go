package cluster

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/omnirouter/omnirouter/internal/wire"
)

// Forward streams: a follower keeps one connection to the leader (an HTTP
// request upgraded to this protocol, so it passes the same port, TLS and
// cluster secret as the other internal endpoints) and writes each
// forwarded command on it as soon as the forwarder takes it; the leader
// queues every command for its batcher as it reads it and writes each
// result back when it commits, tagged with the command's number.
//
// Compared with proposebatch requests (one in flight per follower), a
// forwarded command no longer waits for the previous request's answer
// before it leaves, and commands from both followers reach the leader's
// queue together: each log entry carries what all nodes received while the
// previous one committed, instead of the followers' requests taking turns
// as entries of their own. At 64 clients on three nodes that halves the
// entries per command. A leader that does not serve streams (an older
// release, or not leader when asked) is sent proposebatch requests as
// before.
//
// Frames, both ways: a uvarint length, then that many bytes. Follower to
// leader: uvarint tag, entry (as bytes). Leader to follower: uvarint tag,
// then one result as in a proposebatch answer.
const (
	pathProposeStream = PathPrefix + "proposestream"
	streamProtocol    = "omnirouter-forward/1"
	maxStreamFrame    = maxBody
	// streamDialTimeout bounds opening a stream; the command waiting for
	// it goes by proposebatch instead.
	streamDialTimeout = 2 * time.Second
	// streamRedialPause is how long a follower keeps to proposebatch after
	// a leader would not open a stream (an older release, or a node that
	// was not leader yet when asked).
	streamRedialPause = time.Second
	// streamStallTimeout closes a stream whose write has not returned in
	// this long (the leader does not read: paused or gone), so that the
	// forwarder is free to reach the next leader.
	streamStallTimeout = 2 * time.Second
	streamWatchEvery   = 250 * time.Millisecond
)

// fwdStream is a follower's stream to one leader.
type fwdStream struct {
	n    *Node
	addr string
	rwc  io.ReadWriteCloser
	br   *bufio.Reader

	mu       sync.Mutex
	pending  map[uint64]*fwdReq // written (or being written), not answered
	err      error              // set once: the stream is broken
	retiring time.Time          // the leader changed: close once drained

	opened  time.Time    // for writing's clock (monotonic)
	writing atomic.Int64 // 1 + nanoseconds after opened a write started; 0 between writes
	// heard is when (nanoseconds after opened) the stream last made
	// progress: a result came, or a command went out to an idle stream.
	heard   atomic.Int64
	nextTag uint64 // forwarder only
	buf     []byte // forwarder only
}

// forwardStream returns the stream to the current leader, opening one if
// needed, or nil when commands should go by proposebatch. Forwarder only.
func (n *Node) forwardStream() *fwdStream {
	lid, addr := n.leaderHTTP()
	if addr == "" || lid == n.id {
		return nil
	}
	if s := n.stream; s != nil {
		if s.addr == addr && s.usable() {
			return s
		}
		s.retire()
		n.stream = nil
	}
	if addr == n.noStreamAddr && time.Now().Before(n.noStreamUntil) {
		return nil
	}
	s, err := n.dialStream(addr)
	if err != nil {
		n.log.Debug("forward stream not opened; using proposebatch", "leader", addr, "err", err)
		n.noStreamAddr, n.noStreamUntil = addr, time.Now().Add(streamRedialPause)
		return nil
	}
	n.stream = s
	return s
}

// dialStream upgrades a request to the leader's stream endpoint.
func (n *Node) dialStream(addr string) (*fwdStream, error) {
	ctx, cancel := context.WithTimeout(n.ctx, streamDialTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, addr+pathProposeStream, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", streamProtocol)
	resp, err := n.http.Do(req)
	if err != nil {
		return nil, err
	}
	rwc, ok := resp.Body.(io.ReadWriteCloser)
	if resp.StatusCode != http.StatusSwitchingProtocols || !ok {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		resp.Body.Close()
		return nil, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	s := &fwdStream{n: n, addr: addr, rwc: rwc, br: bufio.NewReaderSize(rwc, 32<<10), pending: map[uint64]*fwdReq{}, opened: time.Now()}
	if !n.goStream(2) {
		rwc.Close()
		return nil, ErrShutdown
	}
	n.streamMu.Lock()
	n.openStreams++
	n.streamMu.Unlock()
	go s.readLoop()
	go s.watch()
	return s, nil
}

// usable reports whether new commands may go on the stream: it is not
// broken and not retired.
func (s *fwdStream) usable() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err == nil && s.retiring.IsZero()
}

// inFlight reports whether commands written on the stream await results.
func (s *fwdStream) inFlight() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending) > 0
}

// retire lets the stream finish the commands it carries, then closes it.
func (s *fwdStream) retire() {
	s.mu.Lock()
	if s.retiring.IsZero() {
		s.retiring = time.Now()
	}
	s.mu.Unlock()
}

// send writes batch (every command in state fwdTaken) on the stream. A
// command that cannot be written is answered here.
func (s *fwdStream) send(batch []*fwdReq) {
	s.mu.Lock()
	if err := s.err; err != nil {
		s.mu.Unlock()
		for _, r := range batch {
			r.done <- fwdResult{err: retryable(err)} // nothing was written
		}
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
		pl.Bytes(encodeEntry(&r.e))
		buf = appendFrame(buf, pl.Buf)
	}
	s.mu.Unlock()
	s.n.stats.forwardRequests.Add(1)
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
func (s *fwdStream) fail(err error) {
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
	s.n.streamMu.Lock()
	s.n.openStreams--
	s.n.streamMu.Unlock()
	for _, r := range pending {
		r.done <- fwdResult{err: ambiguous(err)}
	}
}

// readLoop hands each result to its command.
func (s *fwdStream) readLoop() {
	defer s.n.streamWG.Done()
	for {
		frame, err := readFrame(s.br)
		if err != nil {
			s.fail(fmt.Errorf("forward stream from %s: %w", s.addr, err))
			return
		}
		// The results' strings share the frame: one copy serves them all.
		d := wire.NewSharedDecoder(frame)
		tag := d.Uvarint()
		res := readForwardResult(d)
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
			r.done <- res
		}
	}
}

// watch closes the stream when a write stalls, when commands have waited
// for half the apply timeout without any answer coming (a leader that
// stopped reading, as a paused process does, while raft still lists it),
// when it has been retired (the leader changed) and carries nothing more
// (or its callers have all given up), or when the node stops.
func (s *fwdStream) watch() {
	defer s.n.streamWG.Done()
	t := time.NewTicker(streamWatchEvery)
	defer t.Stop()
	for {
		select {
		case <-s.n.ctx.Done():
			s.fail(ErrShutdown)
			return
		case <-t.C:
		}
		if w := s.writing.Load(); w != 0 && time.Since(s.opened)-time.Duration(w-1) > streamStallTimeout {
			s.fail(fmt.Errorf("forward stream to %s: a write stalled for %v", s.addr, streamStallTimeout))
		}
		// The leader changed (or this node leads now, and forwards
		// nothing): the forwarder would only notice with its next command.
		if _, addr := s.n.leaderHTTP(); addr != s.addr {
			s.retire()
		}
		s.mu.Lock()
		done, retiring, idle := s.err != nil, s.retiring, len(s.pending) == 0
		s.mu.Unlock()
		if done {
			return
		}
		if silent := time.Since(s.opened) - time.Duration(s.heard.Load()); !idle && silent > s.n.cfg.ApplyTimeout/2 {
			s.fail(fmt.Errorf("forward stream to %s: no answer for %v", s.addr, silent.Round(time.Millisecond)))
			return
		}
		if !retiring.IsZero() && (idle || time.Since(retiring) > s.n.cfg.ApplyTimeout) {
			s.fail(errors.New("forward stream retired: the leader changed"))
			return
		}
	}
}

// forwardStreams counts this node's open streams to leaders.
func (n *Node) forwardStreams() int {
	n.streamMu.Lock()
	defer n.streamMu.Unlock()
	return n.openStreams
}

// goStream counts k stream goroutines about to start, unless the node is
// shutting down.
func (n *Node) goStream(k int) bool {
	n.streamMu.Lock()
	defer n.streamMu.Unlock()
	if n.streamsClosed {
		return false
	}
	n.streamWG.Add(k)
	return true
}

// closeStreams stops new streams and waits for the running ones (which end
// with n.ctx).
func (n *Node) closeStreams() {
	n.streamMu.Lock()
	n.streamsClosed = true
	n.streamMu.Unlock()
	n.streamWG.Wait()
}

// appendFrame appends one frame carrying payload to buf.
func appendFrame(buf, payload []byte) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(payload)))
	return append(buf, payload...)
}

// readFrame reads one frame's payload.
func readFrame(br *bufio.Reader) ([]byte, error) {
	size, err := binary.ReadUvarint(br)
	if err != nil {
		return nil, err
	}
	if size > maxStreamFrame {
		return nil, fmt.Errorf("frame of %d bytes", size)
	}
	frame := make([]byte, size)
	if _, err := io.ReadFull(br, frame); err != nil {
		return nil, err
	}
	return frame, nil
}

// leaderStream is the leader's half of one follower's stream.
type leaderStream struct {
	n    *Node
	conn io.ReadWriteCloser
	br   *bufio.Reader
	wake chan struct{}

	mu     sync.Mutex
	out    []streamResult
	closed bool
}

type streamResult struct {
	tag uint64
	r   proposalResult
}

// serveProposeStream upgrades the request to a forward stream.
func (n *Node) serveProposeStream(w http.ResponseWriter, r *http.Request) {
	if !strings.EqualFold(r.Header.Get("Upgrade"), streamProtocol) {
		http.Error(w, "expected Upgrade: "+streamProtocol, http.StatusBadRequest)
		return
	}
	if n.raft.State() != raft.Leader {
		writeErr(w, retryable(raft.ErrNotLeader))
		return
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, "cannot take over the connection: "+err.Error(), http.StatusInternalServerError)
		return
	}
	// The server's read and write timeouts were for one request.
	conn.SetDeadline(time.Time{})
	brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: " + streamProtocol + "\r\n\r\n")
	if err := brw.Flush(); err != nil || !n.goStream(2) {
		conn.Close()
		return
	}
	ls := &leaderStream{n: n, conn: conn, br: brw.Reader, wake: make(chan struct{}, 1)}
	go ls.readLoop()
	go ls.writeLoop()
}

// readLoop queues every command it reads for the batcher; its result goes
// back through push.
func (ls *leaderStream) readLoop() {
	defer ls.n.streamWG.Done()
	stop := context.AfterFunc(ls.n.ctx, ls.close)
	defer stop()
	defer ls.close()
	for {
		frame, err := readFrame(ls.br)
		if err != nil {
			return
		}
		d := wire.NewDecoder(frame)
		tag := d.Uvarint()
		body := d.Bytes()
		if err := d.Err(); err != nil {
			return // not this protocol: drop the stream
		}
		e, err := decodeForwarded(body)
		if err != nil {
			ls.push(tag, proposalResult{err: err})
			continue
		}
		p := &proposal{sink: func(r proposalResult) { ls.push(tag, r) }}
		if err := ls.n.enqueue(ls.n.ctx, p, e); err != nil {
			ls.push(tag, proposalResult{err: err})
		}
	}
}

// push queues a result for the writer; it never blocks (the batcher calls
// it).
func (ls *leaderStream) push(tag uint64, r proposalResult) {
	ls.mu.Lock()
	if !ls.closed {
		ls.out = append(ls.out, streamResult{tag, r})
	}
	ls.mu.Unlock()
	select {
	case ls.wake <- struct{}{}:
	default:
	}
}

func (ls *leaderStream) close() {
	ls.mu.Lock()
	ls.closed = true
	ls.out = nil
	ls.mu.Unlock()
	ls.conn.Close()
	select {
	case ls.wake <- struct{}{}:
	default:
	}
}

// writeLoop writes what push queued, all of it in one write.
func (ls *leaderStream) writeLoop() {
	defer ls.n.streamWG.Done()
	var spare []streamResult
	var buf []byte
	var pl wire.Encoder
	for range ls.wake {
		ls.mu.Lock()
		if ls.closed {
			ls.mu.Unlock()
			return
		}
		items := ls.out
		ls.out = spare[:0]
		ls.mu.Unlock()
		buf = buf[:0]
		for _, it := range items {
			pl.Buf = pl.Buf[:0]
			pl.Uvarint(it.tag)
			if it.r.err != nil {
				appendStatusErr(&pl, it.r.err)
			} else {
				pl.Byte(stOK)
				appendApplied(&pl, ls.n.id, it.r.index, &it.r.res)
			}
			buf = appendFrame(buf, pl.Buf)
		}
		clear(items)
		spare = items
		if len(buf) == 0 {
			continue
		}
		if _, err := ls.conn.Write(buf); err != nil {
			ls.close()
			return
		}
		if cap(buf) > 1<<20 {
			buf = nil
		}
	}
}
