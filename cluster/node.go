package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/omnirouter/omnirouter/cluster/forward"
	"github.com/omnirouter/omnirouter/cluster/storage"
	"github.com/omnirouter/omnirouter/routing"
)

// Config configures a Node. Zero durations and counts take the defaults
// noted on each field.
type Config struct {
	// NodeID is the node's stable identity in the cluster (never derived from
	// an address). Required.
	NodeID string
	// DataDir holds the raft log and stable store (wal/ or raft.db) and
	// snapshots/. Required.
	DataDir string
	// LogStore is LogStoreWAL or LogStoreBolt. Empty: what DataDir already
	// holds, else LogStoreWAL. A data dir keeps the kind it was created with.
	LogStore string
	// RaftAddr is the raft TCP address to listen on and advertise
	// (host:port). Ignored when Transport is set.
	RaftAddr string
	// RaftAdvertise, when set, is advertised instead of RaftAddr (e.g. when
	// binding 0.0.0.0).
	RaftAdvertise string
	// HTTPAddr is this node's HTTP base URL as its peers reach it
	// (http://host:port). It is replicated so any node can find the leader.
	HTTPAddr string
	// BootstrapExpect is the number of voters of a new cluster. 0 or 1 with
	// no Join: a single-node cluster bootstraps at once.
	BootstrapExpect int
	// Join lists peers' HTTP base URLs to find or form the cluster.
	Join []string
	// Transport overrides the TCP transport (tests use raft.InmemTransport).
	Transport raft.Transport
	// TLS, when set, runs raft over TLS with this configuration, used both
	// to accept connections (Certificates; set ClientAuth to
	// tls.RequireAndVerifyClientCert and ClientCAs for mutual TLS) and to
	// dial peers (the same Certificates; RootCAs verifies the peer against
	// the host part of its raft address, a DNS name or an IP SAN). TLS 1.2
	// is the minimum. It also makes addresses given without a scheme
	// (HTTPAddr, Join, join requests) default to https://, and the default
	// HTTPClient use it. nil: plain TCP and http://.
	TLS *tls.Config
	// Logger receives the node's and raft's logs (raft at INFO and above).
	Logger *slog.Logger
	// HTTPClient is used to reach peers' internal endpoints.
	HTTPClient *http.Client

	HeartbeatTimeout   time.Duration // default 500ms
	ElectionTimeout    time.Duration // default 500ms
	LeaderLeaseTimeout time.Duration // default 250ms
	CommitTimeout      time.Duration // default 20ms
	// A node snapshots when at least SnapshotThreshold entries and
	// SnapshotLogRatio × (its last snapshot's size) bytes of log were
	// applied since its last snapshot (snappolicy.go), checked every
	// SnapshotInterval to twice that.
	SnapshotThreshold uint64        // default 8192 entries
	SnapshotLogRatio  float64       // default 1; negative: entries only
	SnapshotInterval  time.Duration // default 30s
	TrailingLogs      uint64        // default 10240 entries
	// MaxBatch is the most commands one log entry carries (default 256; 1
	// turns batching off).
	MaxBatch int
	// MaxInflight is how many log entries of proposals may be committing at
	// once before new proposals wait and group (default 1, which measured
	// best: the next batch is cut when the previous one commits, that is
	// when the leader's state machine starts to apply it).
	MaxInflight int
	// NoLeaderWait is how long a request waits for a leader before
	// ErrNoLeader (default 2s).
	NoLeaderWait time.Duration
	// ApplyTimeout bounds a write's wait for commit when its context has no
	// deadline (default 10s); past it the write is ambiguous.
	ApplyTimeout time.Duration
	// EventLimits bound the replicated event log (zero fields: routing's
	// defaults). They are part of the state: a leader proposes its own when
	// the state holds others, so give every node the same.
	EventLimits routing.EventLimits

	// walSegmentSize overrides raft-wal's segment size (64 MiB) in tests:
	// the WAL frees log entries only a whole segment at a time.
	walSegmentSize int
	// beforeApply, in tests, runs on the state machine's goroutine before
	// each committed entry is applied (after the batcher was told).
	beforeApply func(data []byte)
}

func (c *Config) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.HeartbeatTimeout, 500*time.Millisecond)
	def(&c.ElectionTimeout, 500*time.Millisecond)
	def(&c.LeaderLeaseTimeout, 250*time.Millisecond)
	def(&c.CommitTimeout, 20*time.Millisecond)
	def(&c.SnapshotInterval, 30*time.Second)
	def(&c.NoLeaderWait, 2*time.Second)
	def(&c.ApplyTimeout, 10*time.Second)
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = 8192
	}
	if c.SnapshotLogRatio == 0 {
		c.SnapshotLogRatio = 1
	}
	if c.TrailingLogs == 0 {
		c.TrailingLogs = 10240
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = 256
	}
	if c.MaxInflight <= 0 {
		c.MaxInflight = 1
		if c.MaxBatch == 1 {
			c.MaxInflight = 1024 // no batching: let raft group the entries
		}
	}
	if c.EventLimits.Count == 0 {
		c.EventLimits.Count = routing.DefaultEventLimits.Count
	}
	if c.EventLimits.Bytes == 0 {
		c.EventLimits.Bytes = routing.DefaultEventLimits.Bytes
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.HTTPClient == nil {
		t := &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        256,
			MaxIdleConnsPerHost: 128,
			IdleConnTimeout:     90 * time.Second,
		}
		if c.TLS != nil {
			t.TLSClientConfig = raftTLSConfig(c.TLS)
		}
		c.HTTPClient = &http.Client{Transport: t}
	}
	c.HTTPAddr = c.normalizeURL(c.HTTPAddr)
	for i, j := range c.Join {
		c.Join[i] = c.normalizeURL(j)
	}
}

// normalizeURL turns host:port into http://host:port (https:// with TLS)
// and drops a trailing slash.
func (c *Config) normalizeURL(s string) string {
	s = strings.TrimRight(strings.TrimSpace(s), "/")
	if s != "" && !strings.Contains(s, "://") {
		if c.TLS != nil {
			s = "https://" + s
		} else {
			s = "http://" + s
		}
	}
	return s
}

// NodeInfo describes one cluster member. The fields after HTTPAddr are
// set in Status only.
type NodeInfo struct {
	ID       string
	RaftAddr string
	HTTPAddr string
	Voter    bool
	Leader   bool
	// Suffrage is "voter" or "nonvoter" (a node that joined and has not
	// caught up yet).
	Suffrage string
	// CaughtUp: its state has applied (nearly) all the leader has
	// committed, as far as the node asked knows (see ClusterStatus).
	CaughtUp bool
}

// Node is one member of the replicated cluster: it owns raft, its stores and
// transport, the leader's ticker and the forwarding of requests to the
// leader.
type Node struct {
	cfg    Config
	id     string
	log    *slog.Logger
	raft   *raft.Raft
	fsm    *fsm
	stores *storage.Stores
	// dirLock holds the data directory's lock until the stores are closed.
	dirLock *os.File
	trans   raft.Transport
	http    *http.Client
	// tlsStream is the raft stream layer when Config.TLS is set.
	tlsStream *tlsStreamLayer

	proposals chan *proposal
	inflight  chan struct{}                 // one token per log entry being committed
	lastEntry atomic.Pointer[inflightEntry] // the batcher's newest entry

	fwd       *forward.Forwarder // follower: writes to the leader
	fwdServer *forward.Server    // leader: followers' streams

	ctx    context.Context // cancelled by Shutdown
	cancel context.CancelFunc
	wg     sync.WaitGroup

	leaderMu      sync.Mutex
	leaderStop    context.CancelFunc // stops the running leader loop
	leaderDone    chan struct{}
	readyTerm     atomic.Uint64 // leader: barrier passed and self registered in this term
	lastLeader    atomic.Value
	leaderChanges atomic.Uint64

	stats struct {
		entries, commands, forwarded atomic.Uint64
	}

	// removed: this node knows it was removed from the cluster.
	removed atomic.Bool
	// membership is what the data directory records (Open and the
	// membership goroutine only).
	membership storage.Membership
	// lastPeerCheck is when the membership loop last asked the peers
	// whether this node is still a member (that goroutine only).
	lastPeerCheck time.Time
	// health is the leader's last word on each member (members.go).
	healthMu     sync.Mutex
	health       map[string]memberHealth
	memberChecks atomic.Uint64 // rounds of checkMembers done
	// removedAt: when this node, as leader, removed each node (members.go).
	removedAt map[string]removal

	shutdownOnce sync.Once
	shutdownErr  error
	stopped      atomic.Bool
}

// Open opens (or creates) the node's data directory and starts raft. A node
// with existing raft state never bootstraps again; a new one bootstraps or
// joins in the background (see cluster/DESIGN.md).
func Open(cfg Config) (*Node, error) {
	if cfg.NodeID == "" {
		return nil, errors.New("cluster: NodeID is required")
	}
	if cfg.DataDir == "" {
		return nil, errors.New("cluster: DataDir is required")
	}
	cfg.Join = append([]string(nil), cfg.Join...)
	cfg.setDefaults()
	if err := cfg.EventLimits.Validate(); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("cluster: data dir: %w", err)
	}
	dirLock, err := storage.LockDir(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	n := &Node{
		dirLock:   dirLock,
		cfg:       cfg,
		id:        cfg.NodeID,
		log:       cfg.Logger.With("node", cfg.NodeID),
		fsm:       newFSM(),
		http:      cfg.HTTPClient,
		proposals: make(chan *proposal, 4096),
		inflight:  make(chan struct{}, cfg.MaxInflight),
	}
	n.lastLeader.Store("")
	n.fsm.beforeApply = n.entryCommitted
	if n.membership, err = storage.ReadMembership(cfg.DataDir); err != nil {
		dirLock.Close()
		return nil, err
	}
	if n.membership == storage.MembershipRemoved {
		n.removed.Store(true)
		n.logRemoved()
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	if err := n.openRaft(); err != nil {
		n.cancel()
		n.closeStores()
		return nil, err
	}
	n.fwdServer = forward.NewServer((*streamLeader)(n))
	n.fwd = forward.NewForwarder(forward.Config{
		HTTP: n.http,
		Leader: func() string {
			if id, addr := n.leaderHTTP(); id != n.id {
				return addr
			}
			return ""
		},
		AnswerTimeout: n.cfg.ApplyTimeout / 2,
		RetireTimeout: n.cfg.ApplyTimeout,
		Logger:        n.log,
	})
	n.wg.Add(5)
	go func() {
		defer n.wg.Done()
		n.fsm.events.run(n.ctx)
	}()
	go n.snapshotLoop()
	go n.watchLeadership()
	go n.runBatcher()
	go n.runMembership()
	return n, nil
}

func (n *Node) openRaft() error {
	hl := newHCLogger(n.log, "raft")
	stores, err := storage.Open(n.cfg.DataDir, n.cfg.LogStore, n.cfg.walSegmentSize, hl)
	if err != nil {
		return err
	}
	n.stores = stores
	n.log.Info("raft log store", "kind", stores.Kind)
	logs, err := raft.NewLogCache(512, stores.Logs)
	if err != nil {
		return fmt.Errorf("cluster: log cache: %w", err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(n.cfg.DataDir, 2, hl)
	if err != nil {
		return fmt.Errorf("cluster: snapshot store: %w", err)
	}
	if n.cfg.Transport != nil {
		n.trans = n.cfg.Transport
	} else {
		adv := n.cfg.RaftAdvertise
		if adv == "" {
			adv = n.cfg.RaftAddr
		}
		addr, err := net.ResolveTCPAddr("tcp", adv)
		if err != nil {
			return fmt.Errorf("cluster: raft address %q: %w", adv, err)
		}
		if n.cfg.TLS != nil {
			stream, err := newTLSStreamLayer(n.cfg.RaftAddr, addr, n.cfg.TLS, n.log)
			if err != nil {
				return fmt.Errorf("cluster: raft transport: %w", err)
			}
			n.tlsStream = stream
			// The same pool and timeout as the TCP transport below.
			n.trans = &gatedTransport{NetworkTransport: raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
				Stream: stream, MaxPool: 4, Timeout: 10 * time.Second, Logger: hl,
			})}
		} else {
			t, err := raft.NewTCPTransportWithLogger(n.cfg.RaftAddr, addr, 4, 10*time.Second, hl)
			if err != nil {
				return fmt.Errorf("cluster: raft transport: %w", err)
			}
			n.trans = &gatedTransport{NetworkTransport: t}
		}
	}

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(n.id)
	rc.Logger = hl
	rc.HeartbeatTimeout = n.cfg.HeartbeatTimeout
	rc.ElectionTimeout = n.cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = n.cfg.LeaderLeaseTimeout
	rc.CommitTimeout = n.cfg.CommitTimeout
	// snapshotLoop decides when to snapshot; raft's own trigger never fires.
	rc.SnapshotThreshold = math.MaxUint64
	rc.SnapshotInterval = n.cfg.SnapshotInterval
	rc.TrailingLogs = n.cfg.TrailingLogs
	rc.ShutdownOnRemove = false
	rc.BatchApplyCh = true
	rc.MaxAppendEntries = 128
	rc.NoLegacyTelemetry = true
	if err := raft.ValidateConfig(rc); err != nil {
		return fmt.Errorf("cluster: raft config: %w", err)
	}

	existing, err := raft.HasExistingState(logs, stores.Stable, snaps)
	if err != nil {
		return fmt.Errorf("cluster: inspect raft state: %w", err)
	}
	r, err := raft.NewRaft(rc, n.fsm, logs, stores.Stable, snaps, n.trans)
	if err != nil {
		return fmt.Errorf("cluster: start raft: %w", err)
	}
	n.raft = r
	if !existing && n.cfg.BootstrapExpect <= 1 && len(n.cfg.Join) == 0 {
		n.log.Info("bootstrapping a single-node cluster")
		err := r.BootstrapCluster(raft.Configuration{Servers: []raft.Server{n.selfServer()}}).Error()
		if err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			return fmt.Errorf("cluster: bootstrap: %w", err)
		}
	}
	return nil
}

func (n *Node) raftAddr() string { return string(n.trans.LocalAddr()) }

func (n *Node) selfServer() raft.Server {
	return raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(n.id), Address: n.trans.LocalAddr()}
}

func (n *Node) selfInfo() NodeInfo {
	return NodeInfo{ID: n.id, RaftAddr: n.raftAddr(), HTTPAddr: n.cfg.HTTPAddr}
}

// ID is this node's id.
func (n *Node) ID() string { return n.id }

// Shutdown stops the node gracefully: leadership is handed over if this node
// leads, then raft stops (and the heartbeats it answers on the transport's
// goroutines), then the stores are closed, in that order.
func (n *Node) Shutdown() error {
	n.shutdownOnce.Do(func() {
		n.stopped.Store(true)
		if n.raft.State() == raft.Leader && n.hasOtherVoters() {
			if err := n.raft.LeadershipTransfer().Error(); err != nil {
				n.log.Warn("leadership transfer before shutdown failed", "err", err)
			}
		}
		n.cancel()
		n.stopLeaderLoop()
		n.fwd.Close()
		n.fwdServer.Close()
		if err := n.raft.Shutdown().Error(); err != nil {
			n.shutdownErr = fmt.Errorf("cluster: raft shutdown: %w", err)
		}
		if gt, ok := n.trans.(*gatedTransport); ok && !gt.gate.drain(5*time.Second) {
			n.log.Warn("a raft heartbeat was still being handled 5s after raft stopped")
		}
		n.wg.Wait()
		n.http.CloseIdleConnections()
		if err := n.closeStores(); err != nil && n.shutdownErr == nil {
			n.shutdownErr = err
		}
	})
	return n.shutdownErr
}

func (n *Node) hasOtherVoters() bool {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return false
	}
	for _, s := range f.Configuration().Servers {
		if s.Suffrage == raft.Voter && string(s.ID) != n.id {
			return true
		}
	}
	return false
}

func (n *Node) closeStores() error {
	if c, ok := n.trans.(interface{ Close() error }); ok && n.raft == nil {
		c.Close()
	}
	var err error
	if n.stores != nil {
		if cerr := n.stores.Close(); cerr != nil {
			err = fmt.Errorf("cluster: close raft store: %w", cerr)
		}
	}
	if n.dirLock != nil {
		n.dirLock.Close() // releases the lock
	}
	return err
}

// --- leadership ----------------------------------------------------------------

// watchLeadership follows raft's leader observations (plus a slow poll, in
// case an observation was dropped) and starts or stops the leader loop.
func (n *Node) watchLeadership() {
	defer n.wg.Done()
	ch := make(chan raft.Observation, 16)
	obs := raft.NewObserver(ch, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	n.raft.RegisterObserver(obs)
	defer n.raft.DeregisterObserver(obs)
	poll := time.NewTicker(250 * time.Millisecond)
	defer poll.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case o := <-ch:
			n.noteLeader(string(o.Data.(raft.LeaderObservation).LeaderID))
		case <-poll.C:
			// raft may have observed a leader before the observer was
			// registered (a restarted node hears the leader at once).
			_, id := n.raft.LeaderWithID()
			n.noteLeader(string(id))
		}
		if n.raft.State() == raft.Leader {
			n.startLeaderLoop()
		} else {
			n.stopLeaderLoop()
		}
	}
}

// noteLeader counts a change of the known leader; an empty id (no leader
// right now) is not a change.
func (n *Node) noteLeader(id string) {
	if id == "" || id == n.lastLeader.Load().(string) {
		return
	}
	n.lastLeader.Store(id)
	n.leaderChanges.Add(1)
	n.log.Info("leader changed", "leader", id)
}

func (n *Node) startLeaderLoop() {
	n.leaderMu.Lock()
	defer n.leaderMu.Unlock()
	if n.leaderStop != nil || n.stopped.Load() {
		return
	}
	ctx, cancel := context.WithCancel(n.ctx)
	done := make(chan struct{})
	n.leaderStop, n.leaderDone = cancel, done
	go func() {
		defer close(done)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			n.watchMembers(ctx)
		}()
		n.leaderLoop(ctx)
		wg.Wait()
	}()
}

func (n *Node) stopLeaderLoop() {
	n.leaderMu.Lock()
	stop, done := n.leaderStop, n.leaderDone
	n.leaderStop, n.leaderDone = nil, nil
	n.leaderMu.Unlock()
	if stop != nil {
		n.readyTerm.Store(0)
		stop()
		<-done
	}
}
