package webhook

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/omnirouter/omnirouter/cluster"
	"github.com/omnirouter/omnirouter/routing"
)

// metrics: attempts as this node made them (only a leader delivers), and
// at scrape time what the replicated state says of each subscription (the
// same on every node). A subscription's series go when it is deleted.
type metrics struct {
	d          *Deliverer
	deliveries *prometheus.CounterVec
	failures   *prometheus.CounterVec
	latency    *prometheus.HistogramVec

	lag     *prometheus.Desc
	skipped *prometheus.Desc
	states  *prometheus.Desc

	mu  sync.Mutex
	ids map[string]bool // subscriptions with attempt series
}

const ns = "omnirouter"

func newMetrics(d *Deliverer, reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		d: d,
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "webhook_deliveries_total",
			Help: "Events this node delivered to each webhook subscription (a 2xx in time).",
		}, []string{"webhook"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "webhook_failures_total",
			Help: "Failed delivery attempts of this node, by webhook subscription (retried with backoff).",
		}, []string{"webhook"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Name: "webhook_delivery_duration_seconds",
			Help:    "Time from sending a delivery to its answer (or failure), by webhook subscription.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"webhook"}),
		lag: prometheus.NewDesc(ns+"_webhook_lag_events",
			"Events behind: the newest event id minus the subscription's committed cursor.", []string{"webhook"}, nil),
		skipped: prometheus.NewDesc(ns+"_webhook_skipped_events_total",
			"Wanted events that left event retention before they were delivered.", []string{"webhook"}, nil),
		states: prometheus.NewDesc(ns+"_webhooks",
			"Webhook subscriptions by state (active, paused, failing).", []string{"state"}, nil),
		ids: map[string]bool{},
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.deliveries, m.failures, m.latency, (*stateCollector)(m)} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// attemptMetrics are one subscription's series.
type attemptMetrics struct {
	latency              prometheus.Observer
	deliveries, failures prometheus.Counter
}

// forWebhook returns a subscription's series.
func (m *metrics) forWebhook(id string) attemptMetrics {
	m.mu.Lock()
	m.ids[id] = true
	m.mu.Unlock()
	return attemptMetrics{latency: m.latency.WithLabelValues(id), deliveries: m.deliveries.WithLabelValues(id),
		failures: m.failures.WithLabelValues(id)}
}

// attempt records one delivery attempt.
func (a attemptMetrics) attempt(took time.Duration, err error) {
	a.latency.Observe(took.Seconds())
	if err == nil {
		a.deliveries.Inc()
	} else {
		a.failures.Inc()
	}
}

// forget drops a deleted subscription's series.
func (m *metrics) forget(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.ids[id] {
		return
	}
	delete(m.ids, id)
	m.deliveries.DeleteLabelValues(id)
	m.failures.DeleteLabelValues(id)
	m.latency.DeleteLabelValues(id)
}

// tidy forgets every subscription not in ids (those that exist).
func (m *metrics) tidy(ids []string) {
	m.mu.Lock()
	var gone []string
	for id := range m.ids {
		if !slices.Contains(ids, id) {
			gone = append(gone, id)
		}
	}
	m.mu.Unlock()
	for _, id := range gone {
		m.forget(id)
	}
}

// stateCollector reports what the state says of each subscription.
type stateCollector metrics

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.lag
	ch <- c.skipped
	ch <- c.states
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	var subs []routing.Webhook
	var last uint64
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.d.node.Read(ctx, cluster.Stale, func(m *routing.Machine) {
		subs, last = m.Webhooks(), m.LastEventID()
	}); err != nil {
		return
	}
	var byState [3]int
	for _, w := range subs {
		ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, float64(last-min(last, w.Cursor)), w.ID)
		ch <- prometheus.MustNewConstMetric(c.skipped, prometheus.CounterValue, float64(w.Skipped), w.ID)
		if s := w.State(); int(s) < len(byState) {
			byState[s]++
		}
	}
	for s, n := range byState {
		ch <- prometheus.MustNewConstMetric(c.states, prometheus.GaugeValue, float64(n), routing.WebhookState(s).String())
	}
}
