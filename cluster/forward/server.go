package forward

import (
	"bufio"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/omnirouter/omnirouter/internal/wire"
)

// Leader is what the Server needs from the node it runs on.
type Leader interface {
	// IsLeader reports whether this node leads now.
	IsLeader() bool
	// Propose queues an encoded command for the leader's log. done is
	// called exactly once with its result or error, and must not block.
	// An error return means the command was never queued (done is not
	// called); wrap ErrRetry when sending it again may succeed.
	Propose(cmd []byte, done func(Result, error)) error
}

// Server is the leader's side: it accepts followers' streams.
type Server struct {
	leader Leader

	mu      sync.Mutex
	closed  bool
	streams map[*leaderStream]struct{}
	wg      sync.WaitGroup
}

// NewServer returns a Server that queues commands on leader.
func NewServer(leader Leader) *Server {
	return &Server{leader: leader, streams: map[*leaderStream]struct{}{}}
}

// Close ends every stream and waits for their goroutines; later upgrades
// are refused.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	streams := make([]*leaderStream, 0, len(s.streams))
	for ls := range s.streams {
		streams = append(streams, ls)
	}
	s.mu.Unlock()
	for _, ls := range streams {
		ls.close()
	}
	s.wg.Wait()
}

// ServeHTTP upgrades a follower's request to a stream. A node that does
// not lead answers HTTP 200 with status RETRY.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.EqualFold(r.Header.Get("Upgrade"), protocol) {
		http.Error(w, "expected Upgrade: "+protocol, http.StatusBadRequest)
		return
	}
	if !s.leader.IsLeader() {
		var e wire.Encoder
		AppendStatus(&e, ErrRetry)
		w.Header().Set("Content-Type", "application/x-omnirouter-cluster")
		w.WriteHeader(http.StatusOK)
		w.Write(e.Buf)
		return
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, "cannot take over the connection: "+err.Error(), http.StatusInternalServerError)
		return
	}
	// The server's read and write timeouts were for one request.
	conn.SetDeadline(time.Time{})
	brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: " + protocol + "\r\n\r\n")
	ls := &leaderStream{s: s, conn: conn, br: brw.Reader, wake: make(chan struct{}, 1)}
	s.mu.Lock()
	if s.closed || brw.Flush() != nil {
		s.mu.Unlock()
		conn.Close()
		return
	}
	s.streams[ls] = struct{}{}
	s.wg.Add(2)
	s.mu.Unlock()
	go ls.readLoop()
	go ls.writeLoop()
}

// leaderStream is the leader's half of one follower's stream.
type leaderStream struct {
	s    *Server
	conn io.ReadWriteCloser
	br   *bufio.Reader
	wake chan struct{}

	mu     sync.Mutex
	out    []taggedResult
	closed bool
}

type taggedResult struct {
	tag uint64
	res Result
	err error
}

// readLoop queues every command it reads; its result goes back through
// push.
func (ls *leaderStream) readLoop() {
	defer ls.s.wg.Done()
	defer ls.close()
	for {
		frame, err := readFrame(ls.br)
		if err != nil {
			return
		}
		d := wire.NewDecoder(frame)
		tag := d.Uvarint()
		cmd := d.Bytes()
		if d.Err() != nil || d.Remaining() != 0 {
			return // not this protocol: drop the stream
		}
		done := func(res Result, err error) { ls.push(tag, res, err) }
		if err := ls.s.leader.Propose(cmd, done); err != nil {
			ls.push(tag, nil, err)
		}
	}
}

// push queues a result for the writer; it never blocks (the leader's
// batcher calls it).
func (ls *leaderStream) push(tag uint64, res Result, err error) {
	ls.mu.Lock()
	if !ls.closed {
		ls.out = append(ls.out, taggedResult{tag, res, err})
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
	ls.s.mu.Lock()
	delete(ls.s.streams, ls)
	ls.s.mu.Unlock()
	select {
	case ls.wake <- struct{}{}:
	default:
	}
}

// writeLoop writes what push queued, all of it in one write.
func (ls *leaderStream) writeLoop() {
	defer ls.s.wg.Done()
	var spare []taggedResult
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
			if it.err != nil {
				AppendStatus(&pl, it.err)
			} else {
				pl.Byte(stOK)
				it.res.AppendTo(&pl)
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
