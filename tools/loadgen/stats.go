package loadgen

import (
	"math"
	"slices"
	"sync"
	"time"
)

// recorder collects latencies and errors of one operation kind. Workers
// append under a mutex held for nanoseconds; the load tool's own cost stays
// far below the server's.
type recorder struct {
	mu      sync.Mutex
	samples []time.Duration
	errors  map[string]int
	retries map[string]int
}

func (r *recorder) ok(d time.Duration) {
	r.mu.Lock()
	r.samples = append(r.samples, d)
	r.mu.Unlock()
}

func (r *recorder) fail(class string) {
	r.mu.Lock()
	if r.errors == nil {
		r.errors = map[string]int{}
	}
	r.errors[class]++
	r.mu.Unlock()
}

func (r *recorder) retried(class string) {
	r.mu.Lock()
	if r.retries == nil {
		r.retries = map[string]int{}
	}
	r.retries[class]++
	r.mu.Unlock()
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.samples)
}

// Latency is a latency distribution in milliseconds.
type Latency struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99_9"`
	Max  float64 `json:"max"`
}

func percentiles(samples []time.Duration) Latency {
	if len(samples) == 0 {
		return Latency{}
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	at := func(q float64) float64 {
		i := int(math.Ceil(q*float64(len(s)))) - 1
		i = max(0, min(i, len(s)-1))
		return float64(s[i].Microseconds()) / 1000
	}
	return Latency{P50: at(0.50), P90: at(0.90), P99: at(0.99), P999: at(0.999), Max: at(1)}
}

// OpReport is what happened to one kind of operation.
type OpReport struct {
	Count      int            `json:"count"`
	Errors     map[string]int `json:"errors,omitempty"`
	Retries    map[string]int `json:"retries,omitempty"`
	Throughput float64        `json:"per_second"`
	LatencyMS  Latency        `json:"latency_ms"`
}

func (r *recorder) report(elapsed time.Duration) OpReport {
	r.mu.Lock()
	defer r.mu.Unlock()
	return OpReport{Count: len(r.samples), Errors: r.errors, Retries: r.retries,
		Throughput: float64(len(r.samples)) / elapsed.Seconds(), LatencyMS: percentiles(r.samples)}
}
