package api

import (
	"context"
	"errors"
	"net/http"
	runtimemetrics "runtime/metrics"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/omnirouter/omnirouter/capacity"
	"github.com/omnirouter/omnirouter/internal/buildinfo"
	"github.com/omnirouter/omnirouter/internal/pause"
	"github.com/omnirouter/omnirouter/routing"
)

// metrics are the API's Prometheus metrics. Gauges of the routing state are
// computed at scrape time from a stale read of this node's state machine;
// counters of routing activity count the events this node has seen since it
// started (every node sees every event, so any node's counters will do).
type metrics struct {
	httpDuration  *prometheus.HistogramVec
	applyDuration *prometheus.HistogramVec
	offers        *prometheus.CounterVec
	assignments   *prometheus.CounterVec
	ended         *prometheus.CounterVec
	tickets       *prometheus.CounterVec
	events        prometheus.Counter

	httpObservers  observers[httpLabels]
	applyObservers observers[applyLabels]
}

const ns = "omnirouter"

func newMetrics(s *Server) *metrics {
	m := &metrics{
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Name: "http_request_duration_seconds",
			Help:    "HTTP request latency by route, method and status code.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"route", "method", "code"}),
		applyDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Name: "apply_duration_seconds",
			Help:    "Time to replicate and apply one command (Propose), by command and result.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"command", "result"}),
		offers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "offers_total",
			Help: "Offers seen in the event log by outcome (made, accepted, rejected, timed_out) and channel.",
		}, []string{"outcome", "channel"}),
		assignments: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "assignments_total",
			Help: "Conversations assigned to an agent (accepted offers and direct assignments), by channel.",
		}, []string{"channel"}),
		ended: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "sessions_ended_total",
			Help: "Sessions ended, by channel and reason.",
		}, []string{"channel", "reason"}),
		tickets: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "tickets_created_total",
			Help: "Tickets created, by origin (via).",
		}, []string{"via"}),
		events: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Name: "events_seen_total",
			Help: "Events of the routing log seen by this node since it started.",
		}),
	}
	for _, o := range []string{"made", "accepted", "rejected", "timed_out"} {
		for ch := capacity.Channel(0); ch < capacity.NumChannels; ch++ {
			m.offers.WithLabelValues(o, ch.String())
		}
	}
	bi := buildinfo.Get()
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: ns, Name: "build_info",
		Help:        "1, labelled with the running build's version, commit and Go version.",
		ConstLabels: prometheus.Labels{"version": bi.Version, "commit": bi.CommitLabel(), "goversion": bi.GoVersion},
	})
	buildInfo.Set(1)
	readers := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: ns, Name: "event_readers_waiting",
		Help: "Event readers waiting on this node (long-polls with wait, event streams), at most --max-long-polls.",
	}, func() float64 { return float64(s.longPolls.Load()) })
	answerBytes := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: ns, Name: "answer_bytes_in_flight",
		Help: "Bytes of event pages and streamed events being built or sent, at most --answer-memory.",
	}, func() float64 { return float64(s.answers.used()) })
	s.registry.MustRegister(m.httpDuration, m.applyDuration, m.offers, m.assignments, m.ended,
		m.tickets, m.events, buildInfo, readers, answerBytes, &stateCollector{s: s})
	// The process and Go collectors are registered once per registry.
	_ = s.registry.Register(collectors.NewGoCollector())
	_ = s.registry.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (s *Server) metricsHandler() http.Handler {
	return promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{ErrorLog: nil})
}

// observe records every request's latency by route.
func (s *Server) observe(c *gin.Context) {
	start := time.Now()
	c.Next()
	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}
	k := httpLabels{route: route, method: methodLabel(c.Request.Method), code: c.Writer.Status()}
	s.metrics.httpObservers.get(k, func() prometheus.Observer {
		return s.metrics.httpDuration.WithLabelValues(k.route, k.method, strconv.Itoa(k.code))
	}).Observe(time.Since(start).Seconds())
}

// methodLabel keeps the method label to the methods HTTP defines: net/http
// accepts any token as a method, and each new one would be a new series.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "other"
}

type httpLabels struct {
	route, method string
	code          int
}

type applyLabels struct{ command, result string }

// observers remembers the histogram of each label combination seen (there
// are as many as the vector has series), so that a request costs one map
// lookup instead of hashing and comparing its label values in the vector.
type observers[K comparable] struct{ m sync.Map }

func (o *observers[K]) get(k K, lookup func() prometheus.Observer) prometheus.Observer {
	if h, ok := o.m.Load(k); ok {
		return h.(prometheus.Observer)
	}
	h, _ := o.m.LoadOrStore(k, lookup())
	return h.(prometheus.Observer)
}

func (m *metrics) observeApply(command string, err error, d time.Duration) {
	result := "ok"
	switch {
	case errors.Is(err, ErrNoLeader):
		result = "no_leader"
	case errors.Is(err, ErrAmbiguous):
		result = "ambiguous"
	case err != nil:
		result = "error"
	}
	m.applyObservers.get(applyLabels{command, result}, func() prometheus.Observer {
		return m.applyDuration.WithLabelValues(command, result)
	}).Observe(d.Seconds())
}

// Run counts the events this node applies, until
// ctx is done. It serves /metrics' counters; the API works without it.
func (s *Server) Run(ctx context.Context) {
	var after uint64
	for {
		_, err := s.cluster.Read(ctx, Stale, func(m *routing.Machine) { after = m.LastEventID() })
		if err == nil {
			break
		}
		if !pause.For(ctx, time.Second) {
			return
		}
	}
	offered := map[string]string{} // conversation → agent of its open offer
	for {
		if err := s.cluster.WaitEvents(ctx, after); err != nil {
			if ctx.Err() != nil {
				return
			}
			if !pause.For(ctx, time.Second) {
				return
			}
			continue
		}
		_, err := s.cluster.Read(ctx, Stale, func(m *routing.Machine) {
			// In place (no copies), and at most a page under the lock.
			n := 0
			err := m.EachEvent(after, func(e *routing.Event) bool {
				s.metrics.count(m, e, offered)
				after = e.ID
				n++
				return n < MaxEventsLimit
			})
			if errors.Is(err, routing.ErrEventsExpired) {
				after = m.LastEventID() // fell too far behind: skip ahead
			}
		})
		if err != nil && ctx.Err() != nil {
			return
		}
	}
}

func (m *metrics) count(mc *routing.Machine, e *routing.Event, offered map[string]string) {
	m.events.Inc()
	// The conversation is looked up, under the state's lock, only for the
	// counters that carry its channel: most events need no lookup, and at
	// 64-client create load a lookup for every event took 2% of a node's
	// CPU.
	channel := func() string {
		if e.ConversationID == "" {
			return ""
		}
		if c, ok := mc.Conversation(e.ConversationID); ok {
			return c.Channel.String()
		}
		return ""
	}
	switch e.Type {
	case routing.EventOffered:
		m.offers.WithLabelValues("made", channel()).Inc()
		offered[e.ConversationID] = e.AgentID
	case routing.EventAssigned:
		ch := channel()
		if a, ok := offered[e.ConversationID]; ok && a == e.AgentID {
			m.offers.WithLabelValues("accepted", ch).Inc()
		}
		delete(offered, e.ConversationID)
		m.assignments.WithLabelValues(ch).Inc()
	case routing.EventRejected:
		m.offers.WithLabelValues("rejected", channel()).Inc()
		delete(offered, e.ConversationID)
	case routing.EventOfferTimedOut:
		m.offers.WithLabelValues("timed_out", channel()).Inc()
		delete(offered, e.ConversationID)
	case routing.EventEnded:
		m.ended.WithLabelValues(channel(), e.Data.Reason).Inc()
		delete(offered, e.ConversationID)
	case routing.EventRequeued:
		delete(offered, e.ConversationID)
	case routing.EventTicketCreated:
		via := ""
		if e.Data.Ticket != nil {
			via = e.Data.Ticket.Via
		}
		m.tickets.WithLabelValues(via).Inc()
	}
}

// stateCollector computes the gauges of the routing state and raft at
// scrape time.
type stateCollector struct{ s *Server }

var (
	descQueueDepth = prometheus.NewDesc(ns+"_queue_depth", "Conversations waiting in the queue, by channel and group.", []string{"channel", "group"}, nil)
	descOldestWait = prometheus.NewDesc(ns+"_queue_oldest_wait_seconds", "Wait of the oldest queued conversation (since its eligibility time), by channel and group.", []string{"channel", "group"}, nil)
	descCapUsed    = prometheus.NewDesc(ns+"_capacity_used", "Conversations counting against agents' capacity, by channel.", []string{"channel"}, nil)
	descCapTotal   = prometheus.NewDesc(ns+"_capacity_total", "Sum of the capacity of online agents, by channel.", []string{"channel"}, nil)
	descAgents     = prometheus.NewDesc(ns+"_agents", "Agents by status.", []string{"status"}, nil)
	descConvs      = prometheus.NewDesc(ns+"_conversations", "Conversations known to the state machine (including ended ones).", nil, nil)
	descEndedConvs = prometheus.NewDesc(ns+"_conversations_ended", "Ended conversations kept until retention.ended has passed.", nil, nil)
	descEvents     = prometheus.NewDesc(ns+"_events_retained", "Events kept for readers that resume from an id.", nil, nil)
	descEventBytes = prometheus.NewDesc(ns+"_events_retained_bytes", "Size of the events kept, as --event-retention-bytes counts it.", nil, nil)
	descKeys       = prometheus.NewDesc(ns+"_idempotency_records", "Idempotency records kept.", nil, nil)
	descSnapBytes  = prometheus.NewDesc(ns+"_snapshot_last_bytes", "Size of the last raft snapshot this node wrote or installed (0: none yet).", nil, nil)
	descHeapLive   = prometheus.NewDesc(ns+"_heap_live_bytes", "Go heap held by live objects at the end of the last garbage collection.", nil, nil)
	descRaftState  = prometheus.NewDesc(ns+"_raft_state", "1 for this node's current raft state.", []string{"state"}, nil)
	descTerm       = prometheus.NewDesc(ns+"_raft_term", "Current raft term.", nil, nil)
	descCommit     = prometheus.NewDesc(ns+"_raft_commit_index", "Raft commit index.", nil, nil)
	descApplied    = prometheus.NewDesc(ns+"_raft_applied_index", "Raft applied index.", nil, nil)
	descLeaderChg  = prometheus.NewDesc(ns+"_raft_leader_changes_total", "Leader changes this node observed since it started.", nil, nil)
	descForwarded  = prometheus.NewDesc(ns+"_forwarded_writes_total", "Writes this node forwarded to the leader.", nil, nil)
	descFwdReqs    = prometheus.NewDesc(ns+"_forward_requests_total", "Writes on this node's forward stream that carried its forwarded commands to the leader (forwarded commands per write: the forwarder's batch size).", nil, nil)
	descFwdStreams = prometheus.NewDesc(ns+"_forward_streams_open", "Open streams this node forwards writes on (1 on a follower that forwards).", nil, nil)
	descEntries    = prometheus.NewDesc(ns+"_proposed_entries_total", "Raft log entries this node proposed as leader.", nil, nil)
	descCommands   = prometheus.NewDesc(ns+"_proposed_commands_total", "Commands those entries carried (commands per entry: the batch size).", nil, nil)
	descLastEvent  = prometheus.NewDesc(ns+"_last_event_id", "Id of the newest event in this node's state.", nil, nil)
	descScrapeErr  = prometheus.NewDesc(ns+"_state_scrape_error", "1 when the state could not be read for this scrape.", nil, nil)
)

func (sc *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descQueueDepth, descOldestWait, descCapUsed, descCapTotal, descAgents,
		descConvs, descEndedConvs, descEvents, descEventBytes, descKeys, descSnapBytes, descHeapLive,
		descRaftState, descTerm, descCommit, descApplied, descLeaderChg, descForwarded, descFwdReqs, descFwdStreams, descEntries, descCommands, descLastEvent, descScrapeErr} {
		ch <- d
	}
}

type queueKey struct{ channel, group string }

func (sc *stateCollector) Collect(ch chan<- prometheus.Metric) {
	s := sc.s
	st := s.cluster.Status()
	for _, state := range []string{"Leader", "Follower", "Candidate", "Shutdown"} {
		v := 0.0
		if st.State == state {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(descRaftState, prometheus.GaugeValue, v, state)
	}
	ch <- prometheus.MustNewConstMetric(descTerm, prometheus.GaugeValue, float64(st.Term))
	ch <- prometheus.MustNewConstMetric(descCommit, prometheus.GaugeValue, float64(st.CommitIndex))
	ch <- prometheus.MustNewConstMetric(descApplied, prometheus.GaugeValue, float64(st.AppliedIndex))
	ch <- prometheus.MustNewConstMetric(descLeaderChg, prometheus.CounterValue, float64(st.LeaderChanges))
	ch <- prometheus.MustNewConstMetric(descForwarded, prometheus.CounterValue, float64(st.Stats.Forwarded))
	ch <- prometheus.MustNewConstMetric(descFwdReqs, prometheus.CounterValue, float64(st.Stats.ForwardRequests))
	ch <- prometheus.MustNewConstMetric(descFwdStreams, prometheus.GaugeValue, float64(st.Stats.ForwardStreams))
	ch <- prometheus.MustNewConstMetric(descSnapBytes, prometheus.GaugeValue, float64(st.Stats.LastSnapshotBytes))
	ch <- prometheus.MustNewConstMetric(descHeapLive, prometheus.GaugeValue, float64(liveHeap()))
	ch <- prometheus.MustNewConstMetric(descEntries, prometheus.CounterValue, float64(st.Stats.Entries))
	ch <- prometheus.MustNewConstMetric(descCommands, prometheus.CounterValue, float64(st.Stats.Commands))

	now := s.now().UnixMilli()
	depth := map[queueKey]int{}
	oldest := map[queueKey]int64{}
	var used, total capacity.Load
	statuses := map[string]int{}
	var sizes routing.Sizes
	var lastEvent uint64
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := s.cluster.Read(ctx, Stale, func(m *routing.Machine) {
		for _, g := range m.QueueGroups() {
			k := queueKey{channel: g.Channel.String(), group: g.Group}
			depth[k] += g.Waiting
			if o, ok := oldest[k]; !ok || g.OldestQueuedAt < o {
				oldest[k] = g.OldestQueuedAt
			}
		}
		for _, a := range m.Agents() {
			statuses[a.Status.String()]++
			for c := range capacity.NumChannels {
				used[c] += a.Load[c]
				if a.Status == routing.StatusOnline {
					total[c] += a.Capacity[c]
				}
			}
		}
		sizes = m.Sizes()
		lastEvent = m.LastEventID()
	})
	if err != nil {
		ch <- prometheus.MustNewConstMetric(descScrapeErr, prometheus.GaugeValue, 1)
		return
	}
	ch <- prometheus.MustNewConstMetric(descScrapeErr, prometheus.GaugeValue, 0)
	for k, n := range depth {
		ch <- prometheus.MustNewConstMetric(descQueueDepth, prometheus.GaugeValue, float64(n), k.channel, k.group)
		ch <- prometheus.MustNewConstMetric(descOldestWait, prometheus.GaugeValue, float64(max(0, now-oldest[k]))/1000, k.channel, k.group)
	}
	for c := range capacity.NumChannels {
		// Empty channels still report a zero depth, so dashboards see them.
		if _, ok := depth[queueKey{channel: c.String()}]; !ok {
			ch <- prometheus.MustNewConstMetric(descQueueDepth, prometheus.GaugeValue, 0, c.String(), "")
			ch <- prometheus.MustNewConstMetric(descOldestWait, prometheus.GaugeValue, 0, c.String(), "")
		}
		ch <- prometheus.MustNewConstMetric(descCapUsed, prometheus.GaugeValue, float64(used[c]), c.String())
		ch <- prometheus.MustNewConstMetric(descCapTotal, prometheus.GaugeValue, float64(total[c]), c.String())
	}
	for _, st := range []routing.AgentStatus{routing.StatusOffline, routing.StatusOnline, routing.StatusAway, routing.StatusTransfersOnly} {
		ch <- prometheus.MustNewConstMetric(descAgents, prometheus.GaugeValue, float64(statuses[st.String()]), st.String())
	}
	ch <- prometheus.MustNewConstMetric(descConvs, prometheus.GaugeValue, float64(sizes.Conversations))
	ch <- prometheus.MustNewConstMetric(descEndedConvs, prometheus.GaugeValue, float64(sizes.Ended))
	ch <- prometheus.MustNewConstMetric(descEvents, prometheus.GaugeValue, float64(sizes.Events))
	ch <- prometheus.MustNewConstMetric(descEventBytes, prometheus.GaugeValue, float64(sizes.EventBytes))
	ch <- prometheus.MustNewConstMetric(descKeys, prometheus.GaugeValue, float64(sizes.Keys))
	ch <- prometheus.MustNewConstMetric(descLastEvent, prometheus.GaugeValue, float64(lastEvent))
}

// liveHeap reads the runtime's count of live heap bytes (as of the last
// collection).
func liveHeap() uint64 {
	sample := []runtimemetrics.Sample{{Name: "/gc/heap/live:bytes"}}
	runtimemetrics.Read(sample)
	if sample[0].Value.Kind() != runtimemetrics.KindUint64 {
		return 0
	}
	return sample[0].Value.Uint64()
}
