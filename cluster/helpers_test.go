package cluster

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/omnirouter/omnirouter/cluster/forward"
	"github.com/omnirouter/omnirouter/internal/testutil"
	"github.com/omnirouter/omnirouter/routing"
)

// testNode is one cluster member with an HTTP server that outlives restarts.
type testNode struct {
	cfg     Config
	node    *Node
	srv     *httptest.Server
	handler atomic.Pointer[http.Handler]
	inmem   *raft.InmemTransport
	// dropAnswers makes forward streams opened while it is set lose their
	// answers: the first result closes the stream instead.
	dropAnswers atomic.Bool
	// streamsOpened counts forward stream requests that reached the node
	// (a leader accepts them; another node answers RETRY).
	streamsOpened atomic.Uint64
	// stallStreams makes the node stop reading forward streams opened
	// while it is set, as a paused process does.
	stallStreams atomic.Bool
	// mtlsRequests counts requests that presented a verified client
	// certificate (TLS clusters).
	mtlsRequests atomic.Uint64
	// hideInfo makes the node's info endpoint answer 503, so that the
	// leader cannot tell how far it has applied.
	hideInfo atomic.Bool
}

type testCluster struct {
	t     testing.TB
	nodes []*testNode
	inmem bool
	dir   string
	opts  clusterOpts
}

type clusterOpts struct {
	n        int
	inmem    bool
	maxBatch int
	tweak    func(*Config)
	// pki, when set, runs raft and the internal HTTP endpoints over mutual
	// TLS with certificates issued by it (see tls_test.go).
	pki *testutil.CA
}

func testLogger() *slog.Logger {
	if testing.Verbose() && os.Getenv("CLUSTER_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func freeAddr(t testing.TB) string {
	addr, err := testutil.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// newCluster starts o.n nodes that find each other through BootstrapExpect
// and Join, the same way the binary does, and waits for a ready leader.
func newCluster(t testing.TB, o clusterOpts) *testCluster {
	c := &testCluster{t: t, inmem: o.inmem, dir: t.TempDir(), opts: o}
	var urls []string
	for i := range o.n {
		tn := c.newNode(fmt.Sprintf("n%d", i+1))
		tn.cfg.BootstrapExpect = o.n
		urls = append(urls, tn.srv.URL)
		c.nodes = append(c.nodes, tn)
	}
	if o.inmem {
		c.connectAll()
	}
	for _, tn := range c.nodes {
		tn.cfg.Join = urls
		c.start(tn)
	}
	t.Cleanup(c.close)
	c.waitLeader(nil)
	c.waitRegistered()
	return c
}

// newNode makes a node (not started) with its HTTP server running.
func (c *testCluster) newNode(id string) *testNode {
	o := c.opts
	tn := &testNode{}
	tn.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
			tn.mtlsRequests.Add(1)
		}
		h := tn.handler.Load()
		if h == nil || (r.URL.Path == pathInfo && tn.hideInfo.Load()) {
			http.Error(w, "node down", http.StatusServiceUnavailable)
			return
		}
		if r.URL.Path == forward.Path {
			tn.streamsOpened.Add(1)
			if tn.dropAnswers.Load() {
				w = dropStreamAnswers{w}
			}
			if tn.stallStreams.Load() {
				w = stallStream{w}
			}
		}
		(*h).ServeHTTP(w, r)
	}))
	var tlsConfig *tls.Config
	if o.pki != nil {
		tlsConfig = nodeTLS(c.t, o.pki, id)
		tn.srv.TLS = httpServerTLS(o.pki, tlsConfig)
		tn.srv.StartTLS()
	} else {
		tn.srv.Start()
	}
	tn.cfg = Config{
		NodeID:   id,
		DataDir:  filepath.Join(c.dir, id),
		HTTPAddr: tn.srv.URL,
		Logger:   testLogger(),
		MaxBatch: o.maxBatch,
		TLS:      tlsConfig,
	}
	if o.inmem {
		addr, trans := raft.NewInmemTransport(raft.ServerAddress(tn.cfg.NodeID + "-raft"))
		tn.inmem = trans
		tn.cfg.Transport = trans
		tn.cfg.RaftAddr = string(addr)
	} else {
		tn.cfg.RaftAddr = freeAddr(c.t)
	}
	if o.tweak != nil {
		o.tweak(&tn.cfg)
	}
	return tn
}

func (c *testCluster) connectAll() {
	for _, a := range c.nodes {
		for _, b := range c.nodes {
			if a != b {
				a.inmem.Connect(b.inmem.LocalAddr(), b.inmem)
			}
		}
	}
}

// partition cuts tn off from every other node (both directions).
func (c *testCluster) partition(tn *testNode) {
	for _, o := range c.nodes {
		if o != tn {
			tn.inmem.Disconnect(o.inmem.LocalAddr())
			o.inmem.Disconnect(tn.inmem.LocalAddr())
		}
	}
}

func (c *testCluster) heal() { c.connectAll() }

func (c *testCluster) start(tn *testNode) {
	c.t.Helper()
	if tn.inmem != nil && tn.node != nil {
		// A shut-down InmemTransport cannot be reused: give the node a new one
		// at the same address.
		_, trans := raft.NewInmemTransport(tn.inmem.LocalAddr())
		tn.inmem = trans
		tn.cfg.Transport = trans
		c.connectAll()
	}
	n, err := Open(tn.cfg)
	if err != nil {
		c.t.Fatalf("open %s: %v", tn.cfg.NodeID, err)
	}
	tn.node = n
	h := n.Handler()
	tn.handler.Store(&h)
}

func (c *testCluster) stop(tn *testNode) {
	c.t.Helper()
	tn.handler.Store(nil)
	if err := tn.node.Shutdown(); err != nil {
		c.t.Errorf("shutdown %s: %v", tn.cfg.NodeID, err)
	}
}

func (c *testCluster) close() {
	for _, tn := range c.nodes {
		if tn.node != nil && !tn.node.stopped.Load() {
			tn.handler.Store(nil)
			tn.node.Shutdown()
		}
		tn.srv.Close()
	}
}

func (c *testCluster) live() []*testNode {
	var out []*testNode
	for _, tn := range c.nodes {
		if tn.node != nil && !tn.node.stopped.Load() {
			out = append(out, tn)
		}
	}
	return out
}

// waitLeader waits until one of among (default: the live nodes) is a ready
// leader that all of them follow, and returns it.
func (c *testCluster) waitLeader(among []*testNode) *testNode {
	c.t.Helper()
	if among == nil {
		among = c.live()
	}
	var leader *testNode
	testutil.Until(c.t, 20*time.Second, "a ready leader", func() error {
		leader = nil
		for _, tn := range among {
			if tn.node.raft.State() == raft.Leader && tn.node.Ready() == nil {
				leader = tn
			}
		}
		if leader == nil {
			return errors.New("no ready leader")
		}
		for _, tn := range among {
			if lid, _ := tn.node.leaderHTTP(); lid != leader.cfg.NodeID {
				return fmt.Errorf("%s follows %q", tn.cfg.NodeID, lid)
			}
		}
		return nil
	})
	return leader
}

// waitRegistered waits until every live node is a voter with a known HTTP
// address, as seen by every live node.
func (c *testCluster) waitRegistered() {
	c.t.Helper()
	testutil.Until(c.t, 20*time.Second, "all nodes registered", func() error {
		for _, tn := range c.live() {
			st := tn.node.Status()
			if len(st.Nodes) != len(c.nodes) {
				return fmt.Errorf("%s sees %d nodes", tn.cfg.NodeID, len(st.Nodes))
			}
			for _, ni := range st.Nodes {
				if ni.HTTPAddr == "" || !ni.Voter {
					return fmt.Errorf("%s: node %+v", tn.cfg.NodeID, ni)
				}
			}
		}
		return nil
	})
}

// stateOf is a node's whole routing state in snapshot form, as of a
// linearizable read on that node.
func stateOf(t testing.TB, tn *testNode) []byte {
	t.Helper()
	var buf bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tn.node.Backup(ctx, &buf); err != nil {
		t.Fatalf("backup %s: %v", tn.cfg.NodeID, err)
	}
	return buf.Bytes()
}

// checkConverged waits until every live node holds byte-identical state and
// checks the state machine's invariants on each.
func (c *testCluster) checkConverged() {
	c.t.Helper()
	testutil.Until(c.t, 20*time.Second, "identical state on every node", func() error {
		var first []byte
		for i, tn := range c.live() {
			s := stateOf(c.t, tn)
			if i == 0 {
				first = s
			} else if !bytes.Equal(first, s) {
				return fmt.Errorf("%s differs (%d vs %d bytes)", tn.cfg.NodeID, len(s), len(first))
			}
		}
		return nil
	})
	for _, tn := range c.live() {
		var err error
		tn.node.Read(context.Background(), Stale, func(m *routing.Machine) { err = m.CheckInvariants() })
		if err != nil {
			c.t.Errorf("%s: invariants: %v", tn.cfg.NodeID, err)
		}
	}
}

func propose(t testing.TB, tn *testNode, key string, cmd routing.Command) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := proposeAsClient(ctx, tn, key, cmd)
	if err != nil {
		t.Fatalf("propose %s on %s: %v", cmd.Kind(), tn.cfg.NodeID, err)
	}
	if res.Outcome.Err != nil {
		t.Fatalf("propose %s on %s: refused: %v", cmd.Kind(), tn.cfg.NodeID, res.Outcome.Err)
	}
	return res
}

// proposeAsClient proposes like a well-behaved client: an ambiguous outcome
// (leadership lost mid-commit) or no leader is retried, with the same key,
// until ctx ends. A test that acknowledges only what this returns checks
// exactly the promise the cluster makes.
func proposeAsClient(ctx context.Context, tn *testNode, key string, cmd routing.Command) (Result, error) {
	for {
		res, err := tn.node.Propose(ctx, key, cmd)
		if err == nil || !(errors.Is(err, ErrAmbiguous) || errors.Is(err, ErrNoLeader)) || ctx.Err() != nil {
			return res, err
		}
		select {
		case <-ctx.Done():
			return res, err
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// transferLeadership moves leadership from the leader to to and waits
// until every node follows it.
func (c *testCluster) transferLeadership(from, to *testNode) {
	c.t.Helper()
	if err := from.node.raft.LeadershipTransferToServer(raft.ServerID(to.cfg.NodeID), raft.ServerAddress(to.inmem.LocalAddr())).Error(); err != nil {
		c.t.Fatalf("leadership transfer: %v", err)
	}
	if l := c.waitLeader(nil); l != to {
		c.t.Fatalf("leader is %s, want %s", l.cfg.NodeID, to.cfg.NodeID)
	}
}

// third returns the live node that is neither a nor b.
func (c *testCluster) third(a, b *testNode) *testNode {
	for _, tn := range c.live() {
		if tn != a && tn != b {
			return tn
		}
	}
	c.t.Fatal("no third node")
	return nil
}

// checkAgentOutcomes checks that proposal i (agentCmd(i)) succeeded and was
// answered with its own agent by leader.
func checkAgentOutcomes(t *testing.T, leader *testNode, results []Result, errs []error) {
	t.Helper()
	for i := range results {
		if errs[i] != nil {
			t.Fatalf("command %d: %v", i, errs[i])
		}
		res := results[i]
		if res.Outcome.Err != nil {
			t.Fatalf("command %d refused: %v", i, res.Outcome.Err)
		}
		if want := agentCmd(i).ID; res.Outcome.Agent == nil || res.Outcome.Agent.ID != want {
			t.Errorf("command %d: outcome %+v, want agent %s", i, res.Outcome.Agent, want)
		}
		if res.ServedBy != leader.cfg.NodeID || res.Index == 0 {
			t.Errorf("command %d served by %q at %d", i, res.ServedBy, res.Index)
		}
	}
}

// checkReplayed checks that every proposal was answered as a replay.
func checkReplayed(t *testing.T, results []Result, errs []error) {
	t.Helper()
	for i := range results {
		if errs[i] != nil || !results[i].Outcome.Replayed {
			t.Errorf("retry %d: err %v, replayed %v", i, errs[i], results[i].Outcome.Replayed)
		}
	}
}

func (c *testCluster) follower(leader *testNode) *testNode {
	for _, tn := range c.live() {
		if tn != leader {
			return tn
		}
	}
	c.t.Fatal("no follower")
	return nil
}

// dropStreamAnswers hands the stream handler a connection that lets the
// upgrade answer through and then closes instead of writing a result.
type dropStreamAnswers struct{ http.ResponseWriter }

func (d dropStreamAnswers) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(d.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	dc := &dropAfterUpgrade{Conn: conn}
	return dc, bufio.NewReadWriter(brw.Reader, bufio.NewWriter(dc)), nil
}

type dropAfterUpgrade struct {
	net.Conn
	upgraded atomic.Bool
}

func (c *dropAfterUpgrade) Write(b []byte) (int, error) {
	if !c.upgraded.Swap(true) {
		return c.Conn.Write(b) // 101 Switching Protocols
	}
	c.Conn.Close()
	return 0, net.ErrClosed
}

// stallStream hands the stream handler a connection whose reads block
// until it is closed.
type stallStream struct{ http.ResponseWriter }

func (d stallStream) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(d.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	sc := &stalledConn{Conn: conn, closed: make(chan struct{})}
	return sc, bufio.NewReadWriter(bufio.NewReader(sc), brw.Writer), nil
}

type stalledConn struct {
	net.Conn
	once   sync.Once
	closed chan struct{}
}

func (c *stalledConn) Read([]byte) (int, error) {
	<-c.closed
	return 0, net.ErrClosed
}

func (c *stalledConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return c.Conn.Close()
}
