package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/omnirouter/omnirouter/api"
	"github.com/omnirouter/omnirouter/cluster"
	"github.com/omnirouter/omnirouter/cluster/webhook"
	"github.com/omnirouter/omnirouter/internal/buildinfo"
	"github.com/omnirouter/omnirouter/routing"
)

// serveConfig is `omnirouter serve`'s configuration.
type serveConfig struct {
	NodeID            string
	HTTPAddr          string
	RaftAddr          string
	AdvertiseHTTP     string
	AdvertiseRaft     string
	DataDir           string
	LogStore          string
	BootstrapExpect   int
	Join              listFlag
	AuthFile          string
	Insecure          bool
	MaxMessageBytes   int
	SnapshotThreshold uint64
	SnapshotLogRatio  float64
	SnapshotInterval  time.Duration
	TrailingLogs      uint64
	LogLevel          string
	LogFormat         string
	ShutdownTimeout   time.Duration
	PprofAddr         string
	GCPercent         int
	MemoryLimit       memoryLimitFlag
	TLSCert           string
	TLSKey            string
	TLSCA             string
	EventCount        int
	EventBytes        sizeFlag
	ReadTimeout       time.Duration
	MaxLongPolls      int
	EventsLinger      time.Duration
	WebhookPipeline   int
	AnswerMemory      sizeFlag
}

func serveFlags(cfg *serveConfig, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.NodeID, "node-id", "node1", "this node's stable id in the cluster")
	fs.StringVar(&cfg.HTTPAddr, "http-addr", "127.0.0.1:8080", "HTTP API listen address")
	fs.StringVar(&cfg.RaftAddr, "raft-addr", "127.0.0.1:7000", "raft TCP listen address")
	fs.StringVar(&cfg.AdvertiseHTTP, "advertise-http", "", "HTTP base URL peers use to reach this node (default http://<http-addr>)")
	fs.StringVar(&cfg.AdvertiseRaft, "advertise-raft", "", "raft address peers use to reach this node (default <raft-addr>)")
	fs.StringVar(&cfg.DataDir, "data-dir", "./data", "directory of the raft log, stable store and snapshots")
	fs.StringVar(&cfg.LogStore, "log-store", "", "raft log store of a new data directory: wal (one fsync per append) or bolt (raft-boltdb); default: what --data-dir holds, else wal")
	fs.IntVar(&cfg.BootstrapExpect, "bootstrap-expect", 1, "number of voters of a new cluster (1: single node)")
	fs.Var(&cfg.Join, "join", "other nodes' HTTP addresses, comma-separated (or repeated)")
	fs.StringVar(&cfg.AuthFile, "auth-file", "", "JSON file of bearer tokens and roles; without it there is no authentication")
	fs.BoolVar(&cfg.Insecure, "insecure", false, "allow listening on non-loopback addresses without an auth file")
	fs.IntVar(&cfg.MaxMessageBytes, "max-message-bytes", api.DefaultMaxMessageBytes, "largest message text accepted (bytes; 413 beyond)")
	fs.Uint64Var(&cfg.SnapshotThreshold, "snapshot-threshold", 8192, "least log entries between snapshots")
	fs.Float64Var(&cfg.SnapshotLogRatio, "snapshot-log-ratio", 1, "least log written between snapshots, as a multiple of the last snapshot's size (0: entries only)")
	fs.DurationVar(&cfg.SnapshotInterval, "snapshot-interval", 30*time.Second, "how often the node checks whether to snapshot")
	fs.Uint64Var(&cfg.TrailingLogs, "trailing-logs", 10240, "log entries kept after a snapshot")
	fs.StringVar(&cfg.LogLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&cfg.LogFormat, "log-format", "text", "text or json")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", 10*time.Second, "how long a clean shutdown waits for requests in flight")
	fs.StringVar(&cfg.TLSCert, "tls-cert", "", "PEM certificate (chain) of this node: HTTP and raft over TLS (with --tls-key)")
	fs.StringVar(&cfg.TLSKey, "tls-key", "", "PEM private key of --tls-cert")
	fs.StringVar(&cfg.TLSCA, "tls-ca", "", "PEM CA certificate(s) of the cluster: mutual TLS between nodes (required for a cluster with TLS)")
	fs.IntVar(&cfg.GCPercent, "gc-percent", defaultGCPercent, "Go GC target: heap growth in percent between collections (Go's default is 100; the GOGC variable wins when set)")
	fs.IntVar(&cfg.EventCount, "event-retention-count", routing.DefaultEventLimits.Count, "events kept for readers that resume from an id (the oldest go first; with --event-retention-bytes, whichever binds first); the leader's value is the cluster's")
	cfg.EventBytes = sizeFlag(routing.DefaultEventLimits.Bytes)
	fs.Var(&cfg.EventBytes, "event-retention-bytes", "bytes of events kept (e.g. 256MiB; with --event-retention-count, whichever binds first); the leader's value is the cluster's")
	fs.DurationVar(&cfg.ReadTimeout, "http-read-timeout", defaultHTTPTimeouts.Read, "longest a client may take to send a request, headers and body (a restore's body aside): a body that trickles in is cut off then")
	fs.IntVar(&cfg.MaxLongPolls, "max-long-polls", api.DefaultMaxLongPolls, "event readers that may wait at once on this node (long-polls with wait, event streams); 429 too_many_long_polls beyond")
	fs.DurationVar(&cfg.EventsLinger, "events-linger", api.DefaultEventsLinger, "how long a long-poll whose page is short waits for more events, from its arrival (0: answers at once); readers that re-poll at once are answered at most this often")
	fs.IntVar(&cfg.WebhookPipeline, "webhook-pipeline", webhook.DefaultPipeline, "webhook deliveries of a subscription in flight at once on its connection (HTTP/1.1 pipelining; 1: one at a time)")
	cfg.AnswerMemory = sizeFlag(api.DefaultAnswerMemory)
	fs.Var(&cfg.AnswerMemory, "answer-memory", "bytes of event pages and streamed events being built or sent at once (e.g. 256MiB): readers beyond it wait their turn")
	cfg.MemoryLimit = memoryLimitFlag{auto: true}
	fs.Var(&cfg.MemoryLimit, "memory-limit", "soft limit of the Go heap: a size (e.g. 4GiB), off, or auto: 80% of the cgroup's memory limit, else of the machine's memory (the GOMEMLIMIT variable wins when set)")
	fs.StringVar(&cfg.PprofAddr, "pprof-addr", "", "serve Go profiles (net/http/pprof) on this loopback address, e.g. 127.0.0.1:6060; off when empty")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: omnirouter serve [flags]\n\nRuns one node. With no flags: a single-node cluster on 127.0.0.1:8080, data in ./data.\nEvery flag can also be set with its environment variable, e.g. --node-id with OMNIROUTER_NODE_ID.\n\n")
		fs.PrintDefaults()
	}
	return fs
}

func newLogger(level, format string, w io.Writer) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %v", err)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format must be text or json, got %q", format)
}

// isLoopback reports whether a listen address only accepts local
// connections.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// serveCommand is `omnirouter serve`.
func serveCommand(args []string, e *env) error { return serve(args, e.stdout, e.stderr) }

// serve runs a node until SIGINT or SIGTERM; --help goes to stdout.
func serve(args []string, stdout, stderr io.Writer) error {
	var cfg serveConfig
	fs := serveFlags(&cfg, stderr)
	if err := parseFlagsHelp(fs, args, stdout); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	log, err := newLogger(cfg.LogLevel, cfg.LogFormat, stderr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return runNode(ctx, cfg, log)
}

// runNode runs a node until ctx is done, then shuts it down cleanly.
func runNode(ctx context.Context, cfg serveConfig, log *slog.Logger) error {
	var auth *api.Auth
	if cfg.AuthFile != "" {
		a, err := api.LoadAuthFile(cfg.AuthFile)
		if err != nil {
			return err
		}
		auth = a
	} else {
		if !cfg.Insecure && (!isLoopback(cfg.HTTPAddr) || !isLoopback(cfg.RaftAddr)) {
			return fmt.Errorf("without --auth-file omnirouter only listens on loopback addresses (http %s, raft %s); pass --auth-file, or --insecure on a private network", cfg.HTTPAddr, cfg.RaftAddr)
		}
		log.Warn("authentication is OFF: no --auth-file, every caller is an operator", "http_addr", cfg.HTTPAddr, "insecure", cfg.Insecure)
	}
	if cfg.PprofAddr != "" && !isLoopback(cfg.PprofAddr) {
		return fmt.Errorf("--pprof-addr %s: profiles are only served on a loopback address", cfg.PprofAddr)
	}
	if cfg.MaxMessageBytes <= 0 {
		return fmt.Errorf("--max-message-bytes must be positive")
	}
	tlsc, err := loadServeTLS(cfg)
	if err != nil {
		return err
	}
	advertise := cfg.AdvertiseHTTP
	if advertise == "" {
		host, _, _ := net.SplitHostPort(cfg.HTTPAddr)
		if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
			return fmt.Errorf("--http-addr %s listens on every interface: set --advertise-http to the URL peers use", cfg.HTTPAddr)
		}
		advertise = tlsc.scheme() + "://" + cfg.HTTPAddr
	}

	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("http listener: %w", err)
	}
	if tlsc != nil {
		ln = tls.NewListener(ln, tlsc.http)
	}
	defer ln.Close()
	stopPprof, err := servePprof(cfg.PprofAddr, log)
	if err != nil {
		return err
	}
	defer stopPprof()

	secret := ""
	if auth != nil {
		secret = auth.ClusterSecret()
	}
	node, err := cluster.Open(cluster.Config{
		NodeID:            cfg.NodeID,
		DataDir:           cfg.DataDir,
		LogStore:          cfg.LogStore,
		RaftAddr:          cfg.RaftAddr,
		RaftAdvertise:     cfg.AdvertiseRaft,
		HTTPAddr:          advertise,
		BootstrapExpect:   cfg.BootstrapExpect,
		Join:              cfg.Join,
		Logger:            log,
		TLS:               tlsc.raftConfig(),
		HTTPClient:        api.InternalClientTLS(secret, tlsc.clientConfig()),
		SnapshotThreshold: cfg.SnapshotThreshold,
		SnapshotLogRatio:  snapshotLogRatio(cfg.SnapshotLogRatio),
		SnapshotInterval:  cfg.SnapshotInterval,
		TrailingLogs:      cfg.TrailingLogs,
		EventLimits:       routing.EventLimits{Count: cfg.EventCount, Bytes: int64(cfg.EventBytes)},
	})
	if err != nil {
		return err
	}

	setGCPercent(cfg.GCPercent, log)
	setMemoryLimit(cfg.MemoryLimit, log)
	gin.SetMode(gin.ReleaseMode)
	registry := prometheus.NewRegistry()
	server := api.New(api.Config{
		Registry:           registry,
		Cluster:            node,
		Auth:               auth,
		Internal:           node.Handler(),
		InternalSecret:     secret,
		InternalClientCert: tlsc.mutual(),
		MaxMessageBytes:    cfg.MaxMessageBytes,
		Logger:             log,
		LoopbackHostsOnly:  auth == nil && !cfg.Insecure,
		MaxLongPolls:       cfg.MaxLongPolls,
		EventsLinger:       cfg.EventsLinger,
		AnswerMemory:       int64(cfg.AnswerMemory),
	})
	runCtx, cancelRun := context.WithCancel(context.Background())
	runDone := make(chan struct{})
	go func() { server.Run(runCtx); close(runDone) }()
	// Webhooks are delivered by the leader; the deliverer runs on every node.
	hooks, err := webhook.New(webhook.Config{Node: node, Encode: api.EventJSON, Registerer: registry, Logger: log, Pipeline: cfg.WebhookPipeline})
	if err != nil {
		cancelRun()
		<-runDone
		_ = node.Shutdown()
		return err
	}
	hooksCtx, stopHooks := context.WithCancel(context.Background())
	hooksDone := make(chan struct{})
	go func() { hooks.Run(hooksCtx); close(hooksDone) }()

	timeouts := defaultHTTPTimeouts
	if cfg.ReadTimeout > 0 {
		timeouts.Read = cfg.ReadTimeout
	}
	srv := newHTTPServer(server.Handler(), log, timeouts)
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	log.Info("omnirouter serving", "version", buildinfo.Get().Version, "node_id", cfg.NodeID, "http_addr", ln.Addr().String(), "advertise_http", advertise,
		"raft_addr", cfg.RaftAddr, "data_dir", cfg.DataDir, "bootstrap_expect", cfg.BootstrapExpect, "join", strings.Join(cfg.Join, ","),
		"auth", auth != nil, "tls", tlsc != nil, "mutual_tls", tlsc.mutual())

	var result error
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err := <-serveErr:
		result = fmt.Errorf("http server: %w", err)
	}
	server.CloseStreams()
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Warn("http shutdown", "err", err)
	}
	cancel()
	cancelRun()
	<-runDone
	stopHooks() // before the node: a leader commits the progress it made
	<-hooksDone
	if err := node.Shutdown(); err != nil {
		log.Warn("node shutdown", "err", err)
		if result == nil {
			result = err
		}
	}
	log.Info("stopped")
	return result
}

// httpTimeouts bound how long a client may take: a slow or stalled client
// (slowloris) is cut off instead of holding a connection and a goroutine.
type httpTimeouts struct {
	ReadHeader, Read, Write, Idle time.Duration
}

var defaultHTTPTimeouts = httpTimeouts{
	ReadHeader: 10 * time.Second,
	// A request's headers and body, a restore's aside (it extends its own);
	// --http-read-timeout.
	Read: 30 * time.Second,
	// Long-polls, event streams and backups extend their own deadline.
	Write: 30 * time.Second,
	Idle:  2 * time.Minute,
}

func newHTTPServer(h http.Handler, log *slog.Logger, t httpTimeouts) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: t.ReadHeader,
		ReadTimeout:       t.Read,
		WriteTimeout:      t.Write,
		IdleTimeout:       t.Idle,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// snapshotLogRatio maps the flag (0: the size condition off) to
// cluster.Config's convention (0: the default, negative: off).
func snapshotLogRatio(flag float64) float64 {
	if flag <= 0 {
		return -1
	}
	return flag
}
