package sim

import (
	"encoding/csv"
	"encoding/json"
	"io"
	"math"
	"strconv"
	"time"

	"github.com/omnirouter/omnirouter/capacity"
)

// Report is what a simulation found: per interval and channel, per
// channel and overall, the mean over the replications of each measure
// with its 95% confidence interval. Rates are fractions in 0..1.
type Report struct {
	Seed                  uint64           `json:"seed"`
	Replications          int              `json:"replications"`
	Start                 string           `json:"start"`
	Interval              string           `json:"interval"`
	AnsweredWithinSeconds Num              `json:"answered_within_seconds"`
	Overall               Summary          `json:"overall"`
	Channels              []ChannelSummary `json:"channels"`
	Intervals             []IntervalRow    `json:"intervals"`
	// Staffing is set by a run with a staffing target (Options.StaffFor).
	Staffing      []StaffingRow `json:"staffing,omitempty"`
	StaffingGoal  *StaffingGoal `json:"staffing_target,omitempty"`
	intervalStart []time.Time
}

// Summary is the measures of a set of conversations (those that arrived in
// an interval, on a channel, or in the whole run) and of the time they
// span. Offered, answered and abandoned are means per replication; a
// conversation still waiting when the run ended is neither answered nor
// abandoned. A measure with nothing to measure (no arrivals, no staffed
// capacity) is null.
type Summary struct {
	Offered   Num `json:"offered"`
	Answered  Num `json:"answered"`
	Abandoned Num `json:"abandoned"`
	// ServiceLevel: answered within the target, of the offered.
	ServiceLevel Num `json:"service_level"`
	// ASASeconds: the average wait of the answered, from arrival to
	// assignment (or to the accepted offer).
	ASASeconds Num `json:"asa_seconds"`
	// AbandonRate: abandoned, of the offered.
	AbandonRate Num `json:"abandon_rate"`
	// Occupancy: the capacity in use (offered, assigned or in wrap-up),
	// of the capacity of the agents on shift, over time.
	Occupancy Num `json:"occupancy"`
	// ProbWait: the share of the answered that waited at all.
	ProbWait Num `json:"prob_wait"`
	// QueueLength: the mean number of conversations queued, over time.
	QueueLength Num `json:"queue_length"`
	CI95        CI  `json:"ci95"`
}

// CI holds 95% confidence intervals over the replications (Student's t):
// null with fewer than two replications that measured something.
type CI struct {
	ServiceLevel *Bounds `json:"service_level"`
	ASASeconds   *Bounds `json:"asa_seconds"`
	AbandonRate  *Bounds `json:"abandon_rate"`
	Occupancy    *Bounds `json:"occupancy"`
	ProbWait     *Bounds `json:"prob_wait"`
	QueueLength  *Bounds `json:"queue_length"`
}

// Bounds is a confidence interval, [low, high].
type Bounds [2]Num

// ChannelSummary is one channel over the whole run.
type ChannelSummary struct {
	Channel string `json:"channel"`
	Summary
}

// IntervalRow is one channel in one interval.
type IntervalRow struct {
	Start   string `json:"start"`
	Channel string `json:"channel"`
	// Agents is the number of agents on shift who take the channel.
	Agents int `json:"agents"`
	Summary
}

// StaffingGoal is the target a staffing search met.
type StaffingGoal struct {
	ServiceLevel          Num `json:"service_level"`
	AnsweredWithinSeconds Num `json:"answered_within_seconds"`
}

// StaffingRow is the fewest agents an interval needs on a channel.
type StaffingRow struct {
	Start   string `json:"start"`
	Channel string `json:"channel"`
	Agents  int    `json:"agents"`
	// ServiceLevel is the service level those agents give.
	ServiceLevel Num `json:"service_level"`
}

// Num is a measure: written with at most four decimals, and null when it
// is not a number (nothing to measure).
type Num float64

// MarshalJSON writes n rounded to four decimals, or null.
func (n Num) MarshalJSON() ([]byte, error) {
	if math.IsNaN(float64(n)) || math.IsInf(float64(n), 0) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, round4(float64(n)), 'f', -1, 64), nil
}

// UnmarshalJSON reads a number or null (NaN).
func (n *Num) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*n = Num(math.NaN())
		return nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	*n = Num(f)
	return nil
}

func round4(f float64) float64 {
	r := math.Round(f*1e4) / 1e4
	if r == 0 {
		return 0 // no -0
	}
	return r
}

// --- aggregation over replications ------------------------------------------------

// stat accumulates one measure over replications (Welford's algorithm, in
// replication order, so the result does not depend on which worker ran
// what).
type stat struct {
	n       int
	mean, m float64
}

func (s *stat) add(v float64) {
	if math.IsNaN(v) {
		return
	}
	s.n++
	d := v - s.mean
	s.mean += d / float64(s.n)
	s.m += d * (v - s.mean)
}

func (s *stat) value() Num {
	if s.n == 0 {
		return Num(math.NaN())
	}
	return Num(s.mean)
}

// ci is the 95% confidence interval of the mean, clipped to the
// measure's range [lo, hi]: a rate is never below 0 or above 1, a wait
// never below 0.
func (s *stat) ci(lo, hi float64) *Bounds {
	if s.n < 2 {
		return nil
	}
	h := tQuantile975(s.n-1) * math.Sqrt(s.m/float64(s.n-1)/float64(s.n))
	return &Bounds{Num(max(lo, s.mean-h)), Num(min(hi, s.mean+h))}
}

// tTable is Student's t 0.975 quantile for 1..30 degrees of freedom.
var tTable = [...]float64{12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
	2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
	2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042}

// tQuantile975 is Student's t 0.975 quantile: from the table up to 30
// degrees of freedom, then interpolated in 1/df through 40, 60, 120 and
// infinity (1.960), within 0.001 of the exact value.
func tQuantile975(df int) float64 {
	if df <= len(tTable) {
		return tTable[df-1]
	}
	pts := [...]struct{ df, t float64 }{{30, 2.042}, {40, 2.021}, {60, 2.000}, {120, 1.980}, {math.Inf(1), 1.960}}
	x := 1 / float64(df)
	for i := 1; i < len(pts); i++ {
		if float64(df) <= pts[i].df {
			x0, x1 := 1/pts[i-1].df, 1/pts[i].df
			return pts[i-1].t + (pts[i].t-pts[i-1].t)*(x-x0)/(x1-x0)
		}
	}
	return 1.960
}

var inf = math.Inf(1)

// measures are the per-replication values of a Summary's measures.
type measures struct {
	offered, answered, abandoned, sl, asa, abandon, occupancy, probWait, queue float64
}

func ratio(a, b int64) float64 {
	if b == 0 {
		return math.NaN()
	}
	return float64(a) / float64(b)
}

func measuresOf(c *cell, spanMs int64) measures {
	return measures{
		offered: float64(c.offered), answered: float64(c.answered), abandoned: float64(c.abandoned),
		sl: ratio(c.within, c.offered), asa: ratio(c.waitMs, c.answered) / 1000, abandon: ratio(c.abandoned, c.offered),
		occupancy: ratio(c.busyMs, c.slotMs), probWait: ratio(c.waited, c.answered), queue: float64(c.queueMs) / float64(spanMs),
	}
}

type summaryStats struct {
	offered, answered, abandoned, sl, asa, abandon, occupancy, probWait, queue stat
}

func (s *summaryStats) add(m measures) {
	s.offered.add(m.offered)
	s.answered.add(m.answered)
	s.abandoned.add(m.abandoned)
	s.sl.add(m.sl)
	s.asa.add(m.asa)
	s.abandon.add(m.abandon)
	s.occupancy.add(m.occupancy)
	s.probWait.add(m.probWait)
	s.queue.add(m.queue)
}

func (s *summaryStats) summary() Summary {
	return Summary{
		Offered: s.offered.value(), Answered: s.answered.value(), Abandoned: s.abandoned.value(),
		ServiceLevel: s.sl.value(), ASASeconds: s.asa.value(), AbandonRate: s.abandon.value(),
		Occupancy: s.occupancy.value(), ProbWait: s.probWait.value(), QueueLength: s.queue.value(),
		CI95: CI{ServiceLevel: s.sl.ci(0, 1), ASASeconds: s.asa.ci(0, inf), AbandonRate: s.abandon.ci(0, 1),
			Occupancy: s.occupancy.ci(0, inf), ProbWait: s.probWait.ci(0, 1), QueueLength: s.queue.ci(0, inf)},
	}
}

// aggregate folds the replications' cells into a report, one replication
// at a time, in replication order.
type aggregate struct {
	sc       *Scenario
	used     []capacity.Channel
	rows     []summaryStats // [interval*len(used) + i]
	channels []summaryStats
	overall  summaryStats
	n        int
}

func newAggregate(sc *Scenario) *aggregate {
	a := &aggregate{sc: sc}
	for ch, c := range sc.Channels {
		if c != nil {
			a.used = append(a.used, capacity.Channel(ch))
		}
	}
	a.rows = make([]summaryStats, sc.Intervals*len(a.used))
	a.channels = make([]summaryStats, len(a.used))
	return a
}

func (a *aggregate) add(cells []cell) {
	a.n++
	iv := a.sc.Interval.Milliseconds()
	span := iv * int64(a.sc.Intervals)
	var all cell
	for i, ch := range a.used {
		var total cell
		for k := range a.sc.Intervals {
			c := &cells[k*int(capacity.NumChannels)+int(ch)]
			a.rows[k*len(a.used)+i].add(measuresOf(c, iv))
			total.add(c)
		}
		a.channels[i].add(measuresOf(&total, span))
		all.add(&total)
	}
	a.overall.add(measuresOf(&all, span))
}

func (a *aggregate) report(seed uint64) *Report {
	sc := a.sc
	r := &Report{
		Seed: seed, Replications: a.n, Start: sc.Start.UTC().Format(time.RFC3339), Interval: sc.Interval.String(),
		AnsweredWithinSeconds: Num(sc.AnsweredWithin.Seconds()), Overall: a.overall.summary(),
	}
	for i, ch := range a.used {
		r.Channels = append(r.Channels, ChannelSummary{Channel: ch.String(), Summary: a.channels[i].summary()})
	}
	for k := range sc.Intervals {
		at := sc.Start.Add(time.Duration(k) * sc.Interval).UTC()
		r.intervalStart = append(r.intervalStart, at)
		for i, ch := range a.used {
			r.Intervals = append(r.Intervals, IntervalRow{Start: at.Format(time.RFC3339), Channel: ch.String(),
				Agents: sc.agentsOn(k, ch), Summary: a.rows[k*len(a.used)+i].summary()})
		}
	}
	return r
}

// agentsOn is the number of agents on shift in interval k who take ch.
func (sc *Scenario) agentsOn(k int, ch capacity.Channel) int {
	n := 0
	for _, g := range sc.Agents {
		if g.From <= k && k < g.To && g.Capacity[ch] > 0 {
			n += g.Count
		}
	}
	return n
}

// --- output ----------------------------------------------------------------------

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// WriteCSV writes one row per interval and channel: the measures and the
// bounds of their confidence intervals (empty when null), and the agents
// the staffing search asks for when there is one.
func (r *Report) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	header := []string{"start", "channel", "agents", "offered", "answered", "abandoned",
		"service_level", "service_level_lo", "service_level_hi", "asa_seconds", "asa_seconds_lo", "asa_seconds_hi",
		"abandon_rate", "abandon_rate_lo", "abandon_rate_hi", "occupancy", "prob_wait", "queue_length"}
	if r.Staffing != nil {
		header = append(header, "agents_needed")
	}
	if err := cw.Write(header); err != nil {
		return err
	}
	need := map[string]int{}
	for _, s := range r.Staffing {
		need[s.Start+"/"+s.Channel] = s.Agents
	}
	for _, row := range r.Intervals {
		s := &row.Summary
		rec := []string{row.Start, row.Channel, strconv.Itoa(row.Agents), csvNum(s.Offered), csvNum(s.Answered), csvNum(s.Abandoned),
			csvNum(s.ServiceLevel), csvLo(s.CI95.ServiceLevel), csvHi(s.CI95.ServiceLevel),
			csvNum(s.ASASeconds), csvLo(s.CI95.ASASeconds), csvHi(s.CI95.ASASeconds),
			csvNum(s.AbandonRate), csvLo(s.CI95.AbandonRate), csvHi(s.CI95.AbandonRate),
			csvNum(s.Occupancy), csvNum(s.ProbWait), csvNum(s.QueueLength)}
		if r.Staffing != nil {
			if n, ok := need[row.Start+"/"+row.Channel]; ok {
				rec = append(rec, strconv.Itoa(n))
			} else {
				rec = append(rec, "")
			}
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

func csvNum(n Num) string {
	b, _ := n.MarshalJSON()
	if string(b) == "null" {
		return ""
	}
	return string(b)
}

func csvLo(b *Bounds) string {
	if b == nil {
		return ""
	}
	return csvNum(b[0])
}

func csvHi(b *Bounds) string {
	if b == nil {
		return ""
	}
	return csvNum(b[1])
}
