package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/omnirouter/omnirouter/cluster"
	"github.com/omnirouter/omnirouter/internal/buildinfo"
	"github.com/omnirouter/omnirouter/internal/deadline"
	"github.com/omnirouter/omnirouter/routing"
	"github.com/omnirouter/omnirouter/ui"
)

// DefaultMaxMessageBytes is the default limit on one message's text.
const DefaultMaxMessageBytes = 64 << 10

// proposeTimeout bounds how long a mutation or a read waits for the
// cluster; requests share a deadline per deadlineGrain window (one timer per
// window instead of one per request).
const (
	proposeTimeout = 10 * time.Second
	deadlineGrain  = 50 * time.Millisecond
)

// Config configures a Server.
type Config struct {
	Cluster Cluster
	// Auth checks bearer tokens; nil means no authentication (every caller is
	// an operator).
	Auth *Auth
	// Internal, when set, is mounted at /internal/ for node-to-node traffic
	// (the cluster's own handler); it is not behind users' tokens.
	Internal http.Handler
	// InternalSecret, when set, must be presented in InternalSecretHeader by
	// every request under /internal/ (see Auth.ClusterSecret).
	InternalSecret string
	// InternalClientCert, when set, makes every request under /internal/
	// present a client certificate the server verified (the HTTP server's
	// TLS ClientCAs, with tls.VerifyClientCertIfGiven so that users need
	// none), in addition to InternalSecret.
	InternalClientCert bool
	// MaxMessageBytes limits one message's text (413 beyond);
	// 0 means DefaultMaxMessageBytes.
	MaxMessageBytes int
	// Registry receives the API's metrics; nil means a new registry.
	Registry *prometheus.Registry
	Logger   *slog.Logger
	// Now is the wall clock used for wait times; nil means time.Now.
	Now func() time.Time
	// LoopbackHostsOnly serves only requests whose Host is a loopback name
	// (a node without an auth file, not started --insecure).
	LoopbackHostsOnly bool
	// MaxLongPolls bounds the event readers waiting at once (long-polls
	// with wait, event streams); beyond it 429 too_many_long_polls. 0
	// means DefaultMaxLongPolls.
	MaxLongPolls int
	// AnswerMemory bounds the bytes of event pages and streamed events
	// being built or sent at once; 0 means DefaultAnswerMemory.
	AnswerMemory int64
	// EventsLinger is how long a long-poll whose page is short may wait
	// for more events, counted from its arrival (see Server.linger); 0
	// answers at once.
	EventsLinger time.Duration
}

// DefaultMaxLongPolls and DefaultAnswerMemory are the defaults of
// Config.MaxLongPolls and Config.AnswerMemory.
const (
	DefaultMaxLongPolls       = 2048
	DefaultAnswerMemory int64 = 256 << 20
	// DefaultEventsLinger is --events-linger's default: an event reaches a
	// busy long-poll reader within about this much, and a reader makes at
	// most about five requests a second.
	DefaultEventsLinger = 200 * time.Millisecond
)

// Server is the HTTP API.
type Server struct {
	eventJSON      eventCache // the JSON of recent events, for every reader
	cluster        Cluster
	auth           *Auth
	log            *slog.Logger
	maxMessage     int
	now            func() time.Time
	engine         *gin.Engine
	metrics        *metrics
	registry       *prometheus.Registry
	internalH      http.Handler
	internalSecret string
	internalCert   bool
	deadlines      *deadline.Shared
	// loopbackHostsOnly: see Config.LoopbackHostsOnly and guard.
	loopbackHostsOnly bool
	// previews admits one policy preview at a time (previewPolicy).
	previews chan struct{}
	// longPolls counts the waiting event readers, at most maxLongPolls.
	longPolls    atomic.Int64
	maxLongPolls int
	eventsLinger time.Duration
	// answers bounds the memory of event answers in flight.
	answers *byteBudget

	// openAPI is the OpenAPI document as served: info.version is this
	// build's version.
	openAPIServed []byte

	// closing is canceled by CloseStreams: long-polls and SSE streams end.
	closing      context.Context
	closeStreams context.CancelFunc
}

// New builds the API. Call Run to count events for /metrics.
func New(cfg Config) *Server {
	s := &Server{
		cluster:        cfg.Cluster,
		auth:           cfg.Auth,
		log:            cfg.Logger,
		maxMessage:     cfg.MaxMessageBytes,
		now:            cfg.Now,
		registry:       cfg.Registry,
		internalH:      cfg.Internal,
		internalSecret: cfg.InternalSecret,
		internalCert:   cfg.InternalClientCert,

		loopbackHostsOnly: cfg.LoopbackHostsOnly,
		deadlines:         deadline.New(proposeTimeout, deadlineGrain),
		previews:          make(chan struct{}, 1),
		maxLongPolls:      cfg.MaxLongPolls,
		eventsLinger:      cfg.EventsLinger,
	}
	if s.maxLongPolls <= 0 {
		s.maxLongPolls = DefaultMaxLongPolls
	}
	if cfg.AnswerMemory <= 0 {
		cfg.AnswerMemory = DefaultAnswerMemory
	}
	s.answers = newByteBudget(cfg.AnswerMemory)
	s.closing, s.closeStreams = context.WithCancel(context.Background())
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.maxMessage <= 0 {
		s.maxMessage = DefaultMaxMessageBytes
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.registry == nil {
		s.registry = prometheus.NewRegistry()
	}
	s.metrics = newMetrics(s)
	s.openAPIServed = servedOpenAPI(buildinfo.Get().Version)
	s.engine = s.routes()
	return s
}

// Handler returns the HTTP handler of the whole API.
func (s *Server) Handler() http.Handler { return s.engine }

// CloseStreams ends every long-poll and event stream, so that
// http.Server.Shutdown does not wait for them. Call it before Shutdown.
func (s *Server) CloseStreams() { s.closeStreams() }

// Engine returns the gin engine, for tests that list its routes.
func (s *Server) Engine() *gin.Engine { return s.engine }

func (s *Server) routes() *gin.Engine {
	r := gin.New()
	r.HandleMethodNotAllowed = true
	r.ContextWithFallback = true
	// Every answer is JSON: no HTML redirect for a trailing slash.
	r.RedirectTrailingSlash = false
	r.RedirectFixedPath = false
	r.Use(s.recoverer, s.observe, s.guard)
	r.NoRoute(func(c *gin.Context) {
		p := c.Request.URL.Path
		if trimmed := strings.TrimRight(p, "/"); trimmed != p && trimmed != "" {
			s.fail(c, errorf(http.StatusNotFound, "not_found", "no such endpoint %s (paths take no trailing slash: %s)", p, trimmed))
			return
		}
		s.fail(c, errorf(http.StatusNotFound, "not_found", "no such endpoint %s", p))
	})
	r.NoMethod(func(c *gin.Context) {
		s.fail(c, errorf(http.StatusMethodNotAllowed, "method_not_allowed", "%s is not allowed on %s", c.Request.Method, c.Request.URL.Path))
	})

	r.GET("/healthz", s.healthz)
	r.HEAD("/healthz", s.healthz)
	r.GET("/readyz", s.readyz)
	r.HEAD("/readyz", s.readyz)
	r.GET("/metrics", gin.WrapH(s.metricsHandler()))
	r.GET("/v1/openapi.json", s.openAPI)
	// The supervisor page: static files, open like /healthz; its data comes
	// from /v1 with the visitor's token.
	page := gin.WrapH(http.StripPrefix("/ui", ui.Handler()))
	r.GET("/ui/*file", page)
	r.HEAD("/ui/*file", page)
	r.GET("/ui", func(c *gin.Context) {
		// Relative, so that a proxy's path prefix is kept.
		c.Header("Location", "ui/")
		c.Status(http.StatusMovedPermanently)
	})
	if s.internalH != nil {
		r.Any("/internal/*path", s.guardInternal, gin.WrapH(s.internalH))
	}

	v1 := r.Group("/v1", s.authenticate)
	all := []Role{RoleOperator, RoleRouter, RoleAgent}
	op := s.requireRoles(RoleOperator)

	v1.PUT("/agents/:id", op, s.putAgent)
	v1.PUT("/agents/:id/status", s.putAgentStatus)
	v1.GET("/agents", s.requireRoles(all...), s.listAgents)
	v1.GET("/agents/:id", s.requireRoles(all...), s.getAgent)
	v1.POST("/agents/:id/release", s.releaseCapacity)
	v1.DELETE("/agents/:id", op, s.deleteAgent)

	v1.POST("/conversations", s.requireRoles(RoleOperator, RoleRouter), s.createConversation)
	v1.GET("/conversations", s.requireRoles(all...), s.listConversations)
	v1.GET("/conversations/:id", s.requireRoles(all...), s.getConversation)
	v1.GET("/conversations/:id/explain", s.requireRoles(all...), s.explain)
	v1.PATCH("/conversations/:id", s.requireRoles(RoleOperator, RoleRouter), s.patchConversation)
	v1.POST("/conversations/:id/transfer", s.transfer)
	v1.POST("/conversations/:id/messages", s.postMessage)
	v1.POST("/conversations/:id/presence", s.requireRoles(RoleOperator, RoleRouter), s.postPresence)
	v1.POST("/conversations/:id/accept", s.accept)
	v1.POST("/conversations/:id/reject", s.reject)
	v1.POST("/conversations/:id/leave", s.leave)
	v1.POST("/conversations/:id/end", s.end)
	v1.PUT("/conversations/:id/ticket", s.requireRoles(RoleOperator, RoleRouter), s.putTicket)

	v1.GET("/queue", s.requireRoles(all...), s.getQueue)
	v1.GET("/stats", s.requireRoles(all...), s.stats)
	v1.POST("/assignments", s.requireRoles(RoleOperator, RoleRouter), s.requestAssignment)
	v1.GET("/events", s.requireRoles(all...), s.events)
	v1.GET("/policy", s.requireRoles(all...), s.getPolicy)
	v1.PUT("/policy", op, s.putPolicy)
	v1.POST("/policy/preview", s.requireRoles(all...), s.previewPolicy)

	v1.POST("/webhooks", op, s.createWebhook)
	v1.GET("/webhooks", op, s.listWebhooks)
	v1.GET("/webhooks/:id", op, s.getWebhook)
	v1.PUT("/webhooks/:id", op, s.putWebhook)
	v1.DELETE("/webhooks/:id", op, s.deleteWebhook)

	v1.GET("/cluster", s.requireRoles(all...), s.getCluster)
	v1.POST("/cluster/join", op, s.joinNode)
	v1.DELETE("/cluster/nodes/:id", op, s.removeNode)
	v1.GET("/cluster/snapshot", op, s.snapshot)
	v1.POST("/cluster/restore", op, s.restore)
	v1.GET("/debug/invariants", op, s.invariants)
	return r
}

func (s *Server) recoverer(c *gin.Context) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("handler panic", "method", c.Request.Method, "path", c.Request.URL.Path, "panic", v)
			s.fail(c, errorf(http.StatusInternalServerError, "internal", "internal error"))
		}
	}()
	c.Next()
}

// --- proposing and reading ------------------------------------------------

// idempotencyKey returns the request's Idempotency-Key scoped to its caller,
// so that two callers can never replay each other's results.
func (s *Server) idempotencyKey(c *gin.Context) (string, error) {
	k := c.GetHeader("Idempotency-Key")
	if k == "" {
		return "", nil
	}
	if len(k) > MaxKeyLen {
		return "", invalid("invalid_idempotency_key", "Idempotency-Key is longer than %d bytes", MaxKeyLen)
	}
	return s.principal(c).Name + "\x00" + k, nil
}

// propose replicates cmd with the request's idempotency key. It returns the
// outcome, having already written the error response when it fails or the
// state machine refused the command.
func (s *Server) propose(c *gin.Context, cmd routing.Command) (routing.Outcome, bool) {
	key, err := s.idempotencyKey(c)
	if err != nil {
		s.fail(c, err)
		return routing.Outcome{}, false
	}
	return s.proposeKey(c, key, cmd)
}

func (s *Server) proposeKey(c *gin.Context, key string, cmd routing.Command) (routing.Outcome, bool) {
	// A client that hangs up does not cut the wait short: the command is in
	// flight either way, and its outcome is what makes the wait end.
	ctx := s.deadlines.Context(c.Request.Context())
	start := time.Now()
	res, err := s.cluster.Propose(ctx, key, cmd)
	s.metrics.observeApply(cmd.Kind().String(), err, time.Since(start))
	if res.ServedBy != "" {
		c.Header("X-Omnirouter-Node", res.ServedBy)
	}
	if err != nil {
		s.fail(c, err)
		return routing.Outcome{}, false
	}
	if res.Outcome.Err != nil {
		s.fail(c, res.Outcome.Err)
		return routing.Outcome{}, false
	}
	return res.Outcome, true
}

// readLevel parses ?consistency=linearizable|stale.
func readLevel(c *gin.Context) (ReadLevel, error) {
	switch c.Query("consistency") {
	case "", "linearizable", "strong":
		return Linearizable, nil
	case "stale":
		return Stale, nil
	}
	return 0, invalid("invalid_consistency", "consistency must be \"linearizable\" or \"stale\", got %q", c.Query("consistency"))
}

// read runs fn at the request's consistency level and sets X-Omnirouter-Node.
func (s *Server) read(c *gin.Context, fn func(m *routing.Machine)) bool {
	level, err := readLevel(c)
	if err != nil {
		s.fail(c, err)
		return false
	}
	return s.readAt(c, level, fn)
}

func (s *Server) readAt(c *gin.Context, level ReadLevel, fn func(m *routing.Machine)) bool {
	ctx := s.deadlines.Context(c.Request.Context())
	by, err := s.cluster.Read(ctx, level, fn)
	if by != "" {
		c.Header("X-Omnirouter-Node", by)
	}
	if err != nil {
		s.fail(c, err)
		return false
	}
	return true
}

// newID makes the id of an entity created without one: prefix and n
// bytes in hex, derived from the (scoped) idempotency key when there is
// one, so that a retried create names the same entity; random otherwise.
// kind keeps the ids of different entities from one key apart.
func newID(kind, prefix string, n int, scopedKey string) string {
	b := make([]byte, n)
	if scopedKey != "" {
		h := sha256.Sum256([]byte(kind + "\x00" + scopedKey))
		copy(b, h[:])
	} else if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return prefix + hex.EncodeToString(b)
}

// --- health ----------------------------------------------------------------

func (s *Server) healthz(c *gin.Context) {
	s.writeJSON(c, http.StatusOK, gin.H{"status": "ok"})
}

// readyz is 200 when this node can serve; 503 not_ready (with
// Retry-After) while it cannot yet, and 503 node_removed (without: waiting
// will not help) once it was removed from the cluster.
func (s *Server) readyz(c *gin.Context) {
	if err := s.cluster.Ready(); err != nil {
		if errors.Is(err, cluster.ErrRemoved) {
			s.writeJSON(c, http.StatusServiceUnavailable, errorBody{Error: toAPIError(err).detail()})
			return
		}
		c.Header("Retry-After", "1")
		s.writeJSON(c, http.StatusServiceUnavailable, errorBody{Error: errorDetail{Code: "not_ready", Message: err.Error()}})
		return
	}
	s.writeJSON(c, http.StatusOK, gin.H{"status": "ready"})
}
