// Package webhook delivers the event log to webhook subscriptions. It runs
// on every node and delivers only while its node leads: one goroutine per
// active subscription POSTs each wanted event, in event id order, signed
// with the subscription's secret (Sign), on a kept-alive connection that
// carries up to Config.Pipeline requests at once (HTTP/1.1 pipelining,
// answers read in order). A failed delivery is retried alone with backoff
// (Backoff) before any later event is sent again: requests that were
// already behind it on the connection may have reached the receiver, and
// come again after it (same event id), but an event is first sent only
// after every earlier one it wants, and the cursor passes an event only
// once it was answered 2xx. A stuck receiver holds only its own
// subscription.
//
// How far each subscription got (its cursor, last success, last error and
// since when it has been failing) is committed through raft
// (routing.CommitWebhooks) every CommitInterval or every CommitEvery
// deliveries, whichever comes first. A new leader starts from the
// committed cursors: an event delivered after the last commit is delivered
// again (same event id), none is skipped.
//
// A deposed leader stops at once: the goroutines of a term are canceled
// as soon as the node stops leading in it, and every attempt first checks
// the term and a lease, renewed by a quorum round (Node.VerifyLeader) when
// older than Config.Lease, so a leader that was paused or cut off asks the
// cluster before it sends again. Every delivery names its node and term in
// the Omnirouter-Node and Omnirouter-Term headers.
//
// The package holds no state of its own that matters after a restart:
// what it must not lose is in the replicated state machine.
package webhook

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/omnirouter/omnirouter/cluster"
	"github.com/omnirouter/omnirouter/internal/buildinfo"
	"github.com/omnirouter/omnirouter/routing"
)

// Node is what the deliverer needs of its cluster node; *cluster.Node
// implements it.
type Node interface {
	// ID names the node in the Omnirouter-Node header.
	ID() string
	// LeaderTerm is the term the node leads and is ready in, 0 when it
	// does not lead.
	LeaderTerm() uint64
	// VerifyLeader confirms with a quorum that the node still leads in
	// term.
	VerifyLeader(term uint64) error
	Read(ctx context.Context, level cluster.ReadLevel, fn func(*routing.Machine)) (string, error)
	Propose(ctx context.Context, key string, cmd routing.Command) (cluster.Result, error)
	// WaitEvents returns once the local state holds an event after after.
	WaitEvents(ctx context.Context, after uint64) error
}

// Config configures a Deliverer. Zero values take the defaults noted.
type Config struct {
	Node Node
	// Encode is an event's JSON, the body of its delivery (the API's
	// event view, the same as GET /v1/events gives).
	Encode func(*routing.Event) ([]byte, error)
	// Client, when set, sends the deliveries. Default: each subscription
	// keeps one connection of its own (HTTP/1.1, keep-alive), through the
	// HTTP(S)_PROXY of the environment when there is one. Redirects are
	// not followed: a 3xx is a failure.
	Client *http.Client
	// TLS configures https connections (nil: the system's roots, TLS 1.2
	// at least).
	TLS *tls.Config
	// Timeout is how long a receiver has to answer 2xx (default 10s).
	Timeout time.Duration
	// Pipeline is the most deliveries of a subscription in flight on its
	// connection at once (default DefaultPipeline; 1: one at a time). When events are
	// waiting, up to this many requests leave in one write (HTTP/1.1
	// pipelining) and their answers are read in order. Deliveries through
	// Client go one at a time.
	Pipeline int
	// Backoff spaces retries (default DefaultBackoff: 1 s to 5 min).
	Backoff Backoff
	// CommitEvery and CommitInterval: progress is committed after this
	// many deliveries of a subscription (default 100) or this long
	// (default 1s), whichever comes first.
	CommitEvery    int
	CommitInterval time.Duration
	// Lease is how long a quorum's confirmation of this node's leadership
	// lets it send without asking again (default 200ms; keep it well under
	// the raft heartbeat timeout).
	Lease time.Duration
	// Registerer receives the metrics (nil: none).
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

const (
	// DefaultPipeline is Config.Pipeline's default.
	DefaultPipeline = 16
	// readBatch is the most events a subscription reads from the state
	// at once, maxScan the most it looks at (most may be of types it does
	// not want) under one read lock.
	readBatch = 64
	maxScan   = 4096
	// supervise is how often the deliverer looks at its node's leadership
	// and the subscriptions.
	supervise = 100 * time.Millisecond
	// idleWait bounds a subscription's wait for new events.
	idleWait = time.Second
)

// Deliverer delivers events to the subscriptions while its node leads.
type Deliverer struct {
	cfg       Config
	node      Node
	log       *slog.Logger
	metrics   *metrics
	userAgent string
	nodeID    string // as the Omnirouter-Node header says it
	// customClient: Config.Client was given; every delivery goes through it.
	customClient bool

	mu      sync.Mutex
	current *session // the running term's session, nil when not leading
}

var _ Node = (*cluster.Node)(nil)

// New makes a Deliverer; Run runs it.
func New(cfg Config) (*Deliverer, error) {
	if cfg.Node == nil || cfg.Encode == nil {
		return nil, errors.New("webhook: Node and Encode are required")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Pipeline <= 0 {
		cfg.Pipeline = DefaultPipeline
	}
	if cfg.Backoff == (Backoff{}) {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.CommitEvery <= 0 {
		cfg.CommitEvery = 100
	}
	if cfg.CommitInterval <= 0 {
		cfg.CommitInterval = time.Second
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 200 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	custom := cfg.Client != nil
	if cfg.Client == nil {
		cfg.Client = defaultClient(cfg.TLS)
	}
	d := &Deliverer{cfg: cfg, node: cfg.Node, log: cfg.Logger.With("component", "webhooks"),
		userAgent: headerSafe("omnirouter-webhook/" + buildinfo.Get().Version), nodeID: headerSafe(cfg.Node.ID()),
		customClient: custom}
	m, err := newMetrics(d, cfg.Registerer)
	if err != nil {
		return nil, err
	}
	d.metrics = m
	return d, nil
}

// Run delivers until ctx is done: while the node leads, a term's session
// runs the subscriptions; when it stops leading the session ends at once.
// On return, a node that still leads commits the progress it made.
func (d *Deliverer) Run(ctx context.Context) {
	var s *session
	defer func() {
		if s != nil {
			d.setCurrent(nil)
			s.stop(true)
		}
	}()
	t := time.NewTicker(supervise)
	defer t.Stop()
	var lastTidy time.Time
	for {
		term := d.node.LeaderTerm()
		if s != nil && s.term != term {
			d.setCurrent(nil)
			s.stop(false)
			s = nil
		}
		if s == nil && term != 0 && ctx.Err() == nil {
			s = d.start(ctx, term)
			d.setCurrent(s)
		}
		if s != nil {
			s.reconcile()
		} else if time.Since(lastTidy) >= time.Second {
			d.metrics.tidy(d.subscriptionIDs(ctx))
			lastTidy = time.Now()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// defaultClient is the client of deliveries through a proxy: redirects are
// answers, not followed.
func defaultClient(tlsConfig *tls.Config) *http.Client {
	t := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
		TLSClientConfig:     tlsConfig,
	}
	return &http.Client{
		Transport:     t,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// headerSafe replaces the bytes a header value cannot hold (controls) by
// underscores: the requests' headers are written by hand.
func headerSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '_'
		}
		return r
	}, s)
}

// newSender returns the connection of a worker for rawURL, or nil when its
// deliveries go through the http.Client (configured, or a proxy).
func (d *Deliverer) newSender(rawURL string) *sender {
	if d.customClient {
		return nil
	}
	req, err := http.NewRequest(http.MethodPost, rawURL, nil)
	if err != nil {
		return nil
	}
	if proxy, err := http.ProxyFromEnvironment(req); err != nil || proxy != nil {
		return nil
	}
	s, err := newSender(rawURL, d.userAgent, d.cfg.Timeout, d.cfg.Pipeline, d.cfg.TLS)
	if err != nil {
		return nil
	}
	return s
}

func (d *Deliverer) setCurrent(s *session) {
	d.mu.Lock()
	d.current = s
	d.mu.Unlock()
}

// Running lists, in id order, the subscriptions this node is delivering to
// right now (none unless it leads).
func (d *Deliverer) Running() []string {
	d.mu.Lock()
	s := d.current
	d.mu.Unlock()
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, 0, len(s.workers))
	for id := range s.workers {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func (d *Deliverer) subscriptionIDs(ctx context.Context) []string {
	var ids []string
	_, _ = d.node.Read(ctx, cluster.Stale, func(m *routing.Machine) {
		for _, w := range m.Webhooks() {
			ids = append(ids, w.ID)
		}
	})
	return ids
}

// --- a term's session ---------------------------------------------------------

// session is the work of one term of leadership.
type session struct {
	d    *Deliverer
	term uint64
	ctx  context.Context
	// cancel ends the term's goroutines.
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// kick asks the committer for a commit before its interval.
	kick chan struct{}

	// mu guards progress and workers (the supervisor and the committer).
	mu       sync.Mutex
	progress map[string]*progress // by subscription id
	workers  map[string]*worker   // running, by subscription id

	leaseMu    sync.Mutex
	leaseUntil time.Time
}

func (d *Deliverer) start(parent context.Context, term uint64) *session {
	ctx, cancel := context.WithCancel(parent)
	s := &session{d: d, term: term, ctx: ctx, cancel: cancel, kick: make(chan struct{}, 1),
		progress: map[string]*progress{}, workers: map[string]*worker{}}
	d.log.Info("delivering webhooks", "term", term)
	s.wg.Add(1)
	go s.commitLoop()
	return s
}

// stop ends the session and waits for its goroutines. final: the
// deliverer is stopping, not the leadership: commit what was delivered if
// the node still leads.
func (s *session) stop(final bool) {
	s.cancel()
	s.wg.Wait()
	if final && s.d.node.LeaderTerm() == s.term {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if err := s.commit(ctx); err != nil {
			s.d.log.Warn("webhook progress not committed at shutdown: the next leader delivers it again", "err", err)
		}
		cancel()
	}
	s.d.log.Info("stopped delivering webhooks", "term", s.term)
}

// leading reports whether the session's node still leads in its term,
// confirmed by a quorum within the lease.
func (s *session) leading() bool {
	if s.ctx.Err() != nil || s.d.node.LeaderTerm() != s.term {
		return false
	}
	s.leaseMu.Lock()
	defer s.leaseMu.Unlock()
	if time.Now().Before(s.leaseUntil) {
		return true
	}
	start := time.Now()
	if err := s.d.node.VerifyLeader(s.term); err != nil {
		return false
	}
	s.leaseUntil = start.Add(s.d.cfg.Lease)
	return true
}

// reconcile starts, restarts and stops the workers after the
// subscriptions in the state: a worker per active subscription, a new one
// whenever its subscription changes.
func (s *session) reconcile() {
	var subs []routing.Webhook
	if _, err := s.d.node.Read(s.ctx, cluster.Stale, func(m *routing.Machine) { subs = m.Webhooks() }); err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := make(map[string]bool, len(subs))
	for _, sub := range subs {
		seen[sub.ID] = true
		p := s.progress[sub.ID]
		if p == nil || p.seq != sub.Seq {
			if w := s.workers[sub.ID]; w != nil {
				w.cancel()
				delete(s.workers, sub.ID)
			}
			p = newProgress(sub)
			s.progress[sub.ID] = p
		}
		p.follow(sub)
		w := s.workers[sub.ID]
		if w != nil && (sub.State() != routing.WebhookActive || w.sub.Version != sub.Version) {
			w.cancel()
			delete(s.workers, sub.ID)
		}
		if sub.State() == routing.WebhookActive && s.workers[sub.ID] == nil {
			s.workers[sub.ID] = s.startWorker(sub, p)
		}
	}
	for id := range s.progress {
		if !seen[id] {
			if w := s.workers[id]; w != nil {
				w.cancel()
				delete(s.workers, id)
			}
			delete(s.progress, id)
			s.d.metrics.forget(id)
		}
	}
}

// commitLoop commits the progress every CommitInterval, or sooner when a
// worker asks.
func (s *session) commitLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.d.cfg.CommitInterval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		case <-s.kick:
		}
		if err := s.commit(s.ctx); err != nil && s.ctx.Err() == nil {
			s.d.log.Warn("committing webhook progress", "err", err)
		}
	}
}

// commit proposes the progress that changed since it was last committed,
// and the failure status of every active subscription that has been
// failing for webhooks.disable_after (the state machine then makes it
// failing).
func (s *session) commit(ctx context.Context) error {
	var disableAfter int64
	active := map[string]uint64{} // id → sequence of the active subscriptions
	if _, err := s.d.node.Read(ctx, cluster.Stale, func(m *routing.Machine) {
		disableAfter = m.Policy().Webhooks.DisableAfter.Milliseconds()
		for _, w := range m.Webhooks() {
			if w.State() == routing.WebhookActive {
				active[w.ID] = w.Seq
			}
		}
	}); err != nil {
		return err
	}
	s.mu.Lock()
	ps := make([]*progress, 0, len(s.progress))
	for _, p := range s.progress {
		ps = append(ps, p)
	}
	s.mu.Unlock()
	slices.SortFunc(ps, func(a, b *progress) int {
		if a.id < b.id {
			return -1
		}
		if a.id > b.id {
			return 1
		}
		return 0
	})
	now := time.Now().UnixMilli()
	var batch []routing.WebhookProgress
	var marks []uint64
	var taken []*progress
	for _, p := range ps {
		wp, changes, due := p.take(now, disableAfter, active[p.id] == p.seq)
		if due {
			batch, marks, taken = append(batch, wp), append(marks, changes), append(taken, p)
		}
	}
	if len(batch) == 0 {
		return nil
	}
	res, err := s.d.node.Propose(ctx, "", routing.CommitWebhooks{Progress: batch})
	if err == nil {
		err = res.Outcome.Err
	}
	if err != nil {
		return err
	}
	for i, p := range taken {
		p.committedUpTo(marks[i])
	}
	return nil
}

// askCommit asks the committer for a commit now.
func (s *session) askCommit() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// --- progress --------------------------------------------------------------------

// progress is how far delivery to one subscription has got in this term:
// what the next commit carries.
type progress struct {
	id  string
	seq uint64
	// last is the worker started last for it (session.mu): a new one
	// starts once it has stopped.
	last *worker

	mu      sync.Mutex
	version uint64
	cursor  uint64
	status  status
	// changes counts changes; committed is the count the last commit
	// carried.
	changes, committed uint64
	// delivered counts deliveries since the last commit was taken.
	delivered int
}

// status is a subscription's delivery status, times in unix ms.
type status struct {
	lastSuccessAt, lastErrorAt, failingSince int64
	lastError                                string
}

func newProgress(sub routing.Webhook) *progress {
	return &progress{id: sub.ID, seq: sub.Seq, version: sub.Version, cursor: sub.Cursor,
		status: status{lastSuccessAt: sub.LastSuccessAt, lastErrorAt: sub.LastErrorAt,
			failingSince: sub.FailingSince, lastError: sub.LastError}}
}

// follow takes in what the state says: a later cursor (retention skipped
// ahead, or an earlier leader's commit), and a new version, whose run of
// failures is the state's (an update that resumes a subscription ends it)
// while the last success and error are the latest known.
func (p *progress) follow(sub routing.Webhook) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cursor = max(p.cursor, sub.Cursor)
	if sub.Version != p.version {
		p.version = sub.Version
		p.status.failingSince = sub.FailingSince
		p.status.lastSuccessAt = max(p.status.lastSuccessAt, sub.LastSuccessAt)
		if sub.LastErrorAt > p.status.lastErrorAt {
			p.status.lastError, p.status.lastErrorAt = sub.LastError, sub.LastErrorAt
		}
		p.changes++ // the status is committed again, on this version
	}
}

// position is where delivery resumes.
func (p *progress) position() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cursor
}

// advance records that every wanted event up to id was delivered.
func (p *progress) advance(id uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if id > p.cursor {
		p.cursor = id
		p.changes++
	}
}

// succeeded records n deliveries, the last of event id at now: every
// wanted event up to id was delivered. It reports whether enough
// deliveries piled up for a commit.
func (p *progress) succeeded(id uint64, n int, now int64, every int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cursor = max(p.cursor, id)
	p.status.lastSuccessAt = now
	p.status.failingSince = 0
	p.changes++
	p.delivered += n
	return p.delivered >= every
}

// failed records a failed attempt at now; it reports whether it starts a
// run of failures.
func (p *progress) failed(msg string, now int64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	first := p.status.failingSince == 0
	if first {
		p.status.failingSince = now
	}
	p.status.lastError, p.status.lastErrorAt = msg, now
	p.changes++
	return first
}

// take returns the progress to commit and the change count it reflects;
// due is false when nothing needs committing.
func (p *progress) take(now, disableAfter int64, active bool) (routing.WebhookProgress, uint64, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	due := p.changes != p.committed ||
		active && p.status.failingSince != 0 && now-p.status.failingSince >= disableAfter
	p.delivered = 0
	return routing.WebhookProgress{ID: p.id, Seq: p.seq, Version: p.version, Cursor: p.cursor,
		LastSuccessAt: p.status.lastSuccessAt, LastError: p.status.lastError, LastErrorAt: p.status.lastErrorAt,
		FailingSince: p.status.failingSince}, p.changes, due
}

func (p *progress) committedUpTo(changes uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.committed = max(p.committed, changes)
}
