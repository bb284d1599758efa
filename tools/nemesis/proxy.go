package nemesis

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
)

// Mode is how a partitioned node's connections fail.
type Mode int

const (
	// Refuse closes new connections at once (the peer sees a reset/EOF).
	Refuse Mode = iota
	// Blackhole accepts new connections and silently drops what they carry
	// until the partition heals (the peer sees timeouts).
	Blackhole
)

func (m Mode) String() string {
	if m == Blackhole {
		return "blackhole"
	}
	return "refuse"
}

// Resolver names the node that dialed an accepted connection ("" when it
// cannot tell).
type Resolver func(c net.Conn) string

// Net is a set of fault-injecting TCP proxies between cluster nodes. Each
// listener forwards to one node's real port; every accepted connection is
// attributed to the node that dialed it (a Resolver), so that partitioning a
// node cuts both what it receives and what it sends.
type Net struct {
	resolve Resolver

	mu        sync.Mutex
	cut       map[string]Mode // partitioned nodes
	conns     map[*pipe]struct{}
	listeners []net.Listener
	closed    bool
	wg        sync.WaitGroup

	// Stats.
	Accepted   atomic.Int64
	Dropped    atomic.Int64 // refused, blackholed or cut connections
	Unresolved atomic.Int64 // connections whose dialer could not be named
}

type pipe struct {
	src, dst string
	a        net.Conn // accepted

	mu     sync.Mutex
	b      net.Conn // dialed to the target (nil while blackholed)
	closed bool
}

func (p *pipe) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	_ = p.a.Close()
	if p.b != nil {
		_ = p.b.Close()
	}
}

// forwarding reports whether p carries traffic (not blackholed).
func (p *pipe) forwarding() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.b != nil
}

// NewNet returns an empty Net. resolve may be nil (no attribution: only the
// destination side of a partition is cut).
func NewNet(resolve Resolver) *Net {
	if resolve == nil {
		resolve = func(net.Conn) string { return "" }
	}
	return &Net{resolve: resolve, cut: map[string]Mode{}, conns: map[*pipe]struct{}{}}
}

// Listen opens a proxy on a free 127.0.0.1 port that forwards to target, the
// real address of node dst, and returns the proxy's address.
func (n *Net) Listen(dst, target string) (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		l.Close()
		return "", errors.New("nemesis: net closed")
	}
	n.listeners = append(n.listeners, l)
	n.wg.Add(1)
	n.mu.Unlock()
	go n.accept(l, dst, target)
	return l.Addr().String(), nil
}

func (n *Net) accept(l net.Listener, dst, target string) {
	defer n.wg.Done()
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		n.Accepted.Add(1)
		src := n.resolve(c)
		if src == "" {
			n.Unresolved.Add(1)
		}
		go n.serve(c, src, dst, target)
	}
}

// blocked reports how a connection from src to dst must fail, if it must;
// mu is held. An unattributed connection is blocked while any partition is
// in force (it might come from the partitioned node).
func (n *Net) blocked(src, dst string) (Mode, bool) {
	if m, ok := n.cut[dst]; ok {
		return m, true
	}
	if m, ok := n.cut[src]; ok && src != "" {
		return m, true
	}
	if src == "" {
		for _, m := range n.cut {
			return m, true
		}
	}
	return 0, false
}

func (n *Net) serve(a net.Conn, src, dst, target string) {
	p := &pipe{src: src, dst: dst, a: a}
	n.mu.Lock()
	mode, blocked := n.blocked(src, dst)
	if n.closed || (blocked && mode == Refuse) {
		n.mu.Unlock()
		n.Dropped.Add(1)
		a.Close()
		return
	}
	n.conns[p] = struct{}{}
	n.mu.Unlock()
	defer func() {
		n.mu.Lock()
		delete(n.conns, p)
		n.mu.Unlock()
		p.close()
	}()
	if blocked { // blackhole: swallow until healed (Heal closes it)
		n.Dropped.Add(1)
		_, _ = io.Copy(io.Discard, a)
		return
	}
	b, err := net.Dial("tcp", target)
	if err != nil {
		return
	}
	n.mu.Lock()
	if _, still := n.conns[p]; !still || n.closed {
		n.mu.Unlock()
		b.Close()
		return
	}
	if _, blocked := n.blocked(src, dst); blocked { // partitioned while dialing
		n.mu.Unlock()
		b.Close()
		return
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		n.mu.Unlock()
		b.Close()
		return
	}
	p.b = b
	p.mu.Unlock()
	n.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(b, a); done <- struct{}{} }()
	go func() { _, _ = io.Copy(a, b); done <- struct{}{} }()
	<-done // either side ending ends both
}

// Partition cuts node off: its open connections (both directions) are
// closed, and new ones to or from it fail in the given mode until Heal.
func (n *Net) Partition(node string, mode Mode) {
	n.mu.Lock()
	n.cut[node] = mode
	var victims []*pipe
	for p := range n.conns {
		if p.src == node || p.dst == node || p.src == "" {
			victims = append(victims, p)
		}
	}
	n.mu.Unlock()
	for _, p := range victims {
		n.Dropped.Add(1)
		p.close()
	}
}

// Heal lifts node's partition; blackholed connections are closed so their
// dialers reconnect.
func (n *Net) Heal(node string) {
	n.mu.Lock()
	delete(n.cut, node)
	var victims []*pipe
	for p := range n.conns {
		if !p.forwarding() { // blackholed
			if _, still := n.blocked(p.src, p.dst); !still {
				victims = append(victims, p)
			}
		}
	}
	n.mu.Unlock()
	for _, p := range victims {
		p.close()
	}
}

// HealAll lifts every partition.
func (n *Net) HealAll() {
	n.mu.Lock()
	var nodes []string
	for id := range n.cut {
		nodes = append(nodes, id)
	}
	n.mu.Unlock()
	for _, id := range nodes {
		n.Heal(id)
	}
}

// Partitioned lists the nodes cut off now.
func (n *Net) Partitioned() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	for id := range n.cut {
		out = append(out, id)
	}
	return out
}

// Close stops every listener and connection.
func (n *Net) Close() {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return
	}
	n.closed = true
	ls := n.listeners
	var ps []*pipe
	for p := range n.conns {
		ps = append(ps, p)
	}
	n.mu.Unlock()
	for _, l := range ls {
		l.Close()
	}
	for _, p := range ps {
		p.close()
	}
	n.wg.Wait()
}

// ProcResolver attributes a connection accepted on 127.0.0.1 to the process
// that dialed it, through Linux's /proc: the dialer's socket is the line of
// /proc/net/tcp whose local address is the connection's remote address, and
// its inode is among the file descriptors of exactly one process. pids
// returns the current pid → node id map (processes restart).
func ProcResolver(pids func() map[int]string) Resolver {
	return func(c net.Conn) string {
		remote, ok1 := c.RemoteAddr().(*net.TCPAddr)
		local, ok2 := c.LocalAddr().(*net.TCPAddr)
		if !ok1 || !ok2 {
			return ""
		}
		inode, err := socketInode(remote, local)
		if err != nil || inode == "" {
			return ""
		}
		want := "socket:[" + inode + "]"
		for pid, node := range pids() {
			fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
			if err != nil {
				continue
			}
			for _, fd := range fds {
				if l, err := os.Readlink(filepath.Join(fmt.Sprintf("/proc/%d/fd", pid), fd.Name())); err == nil && l == want {
					return node
				}
			}
		}
		return ""
	}
}

// socketInode finds the inode of the TCP socket whose local end is local and
// remote end is remote (IPv4 only).
func socketInode(local, remote *net.TCPAddr) (string, error) {
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		return "", err
	}
	defer f.Close()
	l, r := procAddr(local), procAddr(remote)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 10 || fields[1] != l || fields[2] != r {
			continue
		}
		return fields[9], nil
	}
	return "", sc.Err()
}

// procAddr writes an IPv4 address the way /proc/net/tcp does: the address
// as a little-endian 32-bit hex word, then the port in hex.
func procAddr(a *net.TCPAddr) string {
	ip := a.IP.To4()
	if ip == nil {
		return ""
	}
	return fmt.Sprintf("%02X%02X%02X%02X:%04X", ip[3], ip[2], ip[1], ip[0], a.Port)
}
