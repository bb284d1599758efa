package loadgen

import (
	"context"
	"fmt"
	"io"
	"math"
	"time"
)

// Memory is every node's memory and state through the run, sampled at a
// fixed interval, so that anyone can see whether it stays flat: the live
// heap and RSS, what the state holds (conversations, the ended ones kept
// for retention, events, idempotency records) and the size of the last
// snapshot.
type Memory struct {
	IntervalSeconds float64      `json:"interval_seconds"`
	Nodes           []NodeMemory `json:"nodes"`
	// Completed is the conversations the tool completed by each sample.
	Completed []int `json:"completed"`
	// Seconds is each sample's time since the load phase started.
	Seconds []float64 `json:"seconds"`
}

// NodeMemory is one node's series; a sample the node did not answer is
// NaN in JSON's stead: null.
type NodeMemory struct {
	Target        string      `json:"target"`
	HeapLive      []nullFloat `json:"heap_live_bytes"`
	RSS           []nullFloat `json:"rss_bytes"`
	Conversations []nullFloat `json:"conversations"`
	Ended         []nullFloat `json:"conversations_ended"`
	Events        []nullFloat `json:"events"`
	EventBytes    []nullFloat `json:"event_bytes"`
	Keys          []nullFloat `json:"idempotency_records"`
	SnapshotBytes []nullFloat `json:"snapshot_bytes"`
}

// nullFloat is a float written as null when it is NaN (a missed sample).
type nullFloat float64

func (f nullFloat) MarshalJSON() ([]byte, error) {
	if math.IsNaN(float64(f)) {
		return []byte("null"), nil
	}
	return fmt.Appendf(nil, "%g", float64(f)), nil
}

func (f *nullFloat) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*f = nullFloat(math.NaN())
		return nil
	}
	var v float64
	_, err := fmt.Sscan(string(b), &v)
	*f = nullFloat(v)
	return err
}

const (
	metricHeapLive  = "omnirouter_heap_live_bytes"
	metricConvs     = "omnirouter_conversations"
	metricEnded     = "omnirouter_conversations_ended"
	metricEvents    = "omnirouter_events_retained"
	metricEventSize = "omnirouter_events_retained_bytes"
	metricKeys      = "omnirouter_idempotency_records"
	metricSnapshot  = "omnirouter_snapshot_last_bytes"
)

var memoryMetrics = []string{metricHeapLive, metricRSS, metricConvs, metricEnded, metricEvents, metricEventSize, metricKeys, metricSnapshot}

// sampleMemory reads every node each interval until ctx ends.
func (r *run) sampleMemory(ctx context.Context, m *metricsReader, start time.Time, every time.Duration) *Memory {
	mem := &Memory{IntervalSeconds: every.Seconds(), Nodes: make([]NodeMemory, len(m.targets))}
	for i, t := range m.targets {
		mem.Nodes[i].Target = t
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		mem.add(m, ctx, start, int(r.done.Load()))
		select {
		case <-ctx.Done():
			return mem
		case <-t.C:
		}
	}
}

func (mem *Memory) add(m *metricsReader, ctx context.Context, start time.Time, completed int) {
	readCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	mem.Seconds = append(mem.Seconds, time.Since(start).Seconds())
	mem.Completed = append(mem.Completed, completed)
	for i, target := range m.targets {
		v, err := m.readNamed(readCtx, target, memoryMetrics)
		get := func(name string) nullFloat {
			if err != nil {
				return nullFloat(math.NaN())
			}
			return nullFloat(v[name])
		}
		n := &mem.Nodes[i]
		n.HeapLive = append(n.HeapLive, get(metricHeapLive))
		n.RSS = append(n.RSS, get(metricRSS))
		n.Conversations = append(n.Conversations, get(metricConvs))
		n.Ended = append(n.Ended, get(metricEnded))
		n.Events = append(n.Events, get(metricEvents))
		n.EventBytes = append(n.EventBytes, get(metricEventSize))
		n.Keys = append(n.Keys, get(metricKeys))
		n.SnapshotBytes = append(n.SnapshotBytes, get(metricSnapshot))
	}
}

// Plateau compares, for every node, the mean of the last third of a
// series with the mean of its middle third.
type Plateau struct {
	Target string  `json:"target"`
	Series string  `json:"series"`
	Middle float64 `json:"middle_mean"`
	Last   float64 `json:"last_mean"`
	// Change is Last/Middle - 1.
	Change float64 `json:"change"`
}

// Plateaus checks the live heap, RSS and snapshot size of every node.
func (mem *Memory) Plateaus() []Plateau {
	var out []Plateau
	for _, n := range mem.Nodes {
		for _, s := range []struct {
			name string
			v    []nullFloat
		}{{"heap_live_bytes", n.HeapLive}, {"rss_bytes", n.RSS}, {"snapshot_bytes", n.SnapshotBytes}} {
			third := len(s.v) / 3
			if third == 0 {
				continue
			}
			p := Plateau{Target: n.Target, Series: s.name, Middle: mean(s.v[third : 2*third]), Last: mean(s.v[2*third:])}
			if p.Middle > 0 {
				p.Change = p.Last/p.Middle - 1
			}
			out = append(out, p)
		}
	}
	return out
}

func mean(v []nullFloat) float64 {
	sum, n := 0.0, 0
	for _, x := range v {
		if !math.IsNaN(float64(x)) {
			sum += float64(x)
			n++
		}
	}
	if n == 0 {
		return math.NaN()
	}
	return sum / float64(n)
}

func (mem *Memory) writeSummary(w io.Writer) {
	fmt.Fprintf(w, "memory (%d samples every %.1fs; last third against the middle third):\n", len(mem.Seconds), mem.IntervalSeconds)
	for _, p := range mem.Plateaus() {
		fmt.Fprintf(w, "  %s %-16s %10.1f MiB → %10.1f MiB  %+.1f%%\n", p.Target, p.Series, p.Middle/(1<<20), p.Last/(1<<20), 100*p.Change)
	}
}
