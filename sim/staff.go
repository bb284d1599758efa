package sim

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/omnirouter/omnirouter/capacity"
)

// Target is a service-level goal: at least Level (0..1] of the offered
// conversations answered within Within.
type Target struct {
	Level  float64
	Within time.Duration
}

// ParseTarget reads a target written percent/threshold: "80/20s" is 80%
// answered within 20 seconds.
func ParseTarget(s string) (Target, error) {
	p, d, ok := strings.Cut(s, "/")
	if !ok {
		return Target{}, fmt.Errorf("a target is percent/threshold, e.g. 80/20s; got %q", s)
	}
	pct, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(p), "%"), 64)
	if err != nil || !(pct > 0 && pct <= 100) {
		return Target{}, fmt.Errorf("a target's percent must be above 0 and at most 100, got %q", p)
	}
	within, err := time.ParseDuration(strings.TrimSpace(d))
	if err != nil || within < 0 || within > maxDistMean {
		return Target{}, fmt.Errorf("a target's threshold must be a duration (e.g. 20s) up to %v, got %q", maxDistMean, d)
	}
	return Target{Level: pct / 100, Within: within}, nil
}

func (t Target) String() string {
	return strconv.FormatFloat(t.Level*100, 'f', -1, 64) + "/" + t.Within.String()
}

// MaxStaff bounds a staffing search: a channel and interval that would
// need more agents than this is reported as an error.
const MaxStaff = 5000

// maxStaff is MaxStaff; tests lower it.
var maxStaff = MaxStaff

// Staffing windows: each interval is staffed as if its rate went on long
// enough for the floor to settle (a warm-up), and is measured over a
// window long enough for about staffArrivals conversations over all
// replications (never shorter than the interval): the precision of a
// service level estimate depends on how many conversations it counts,
// and 40,000 put its standard error near one point of percentage.
const (
	staffArrivals  = 40_000
	staffMinWarmUp = time.Hour
	staffMaxWarmUp = 24 * time.Hour
)

// staffTask is one channel and interval to staff.
type staffTask struct {
	ch       capacity.Channel
	interval int
	perIv    float64 // expected arrivals per interval
	mix      []Requirement
	key      uint64
	tmpl     *AgentGroup
	// results
	agents int
	sl     float64
	err    error
}

// staff finds, for every channel and interval, the fewest agents that
// meet opt.StaffFor, each interval on its own: its arrival rate held
// steady (after a warm-up), the channel's handle time and patience, the
// scenario's policy, and one pool of agents who can take any of the
// channel's conversations (staffingPool). An arrival file gives each
// interval's rate (its count of arrivals) and the requirements the
// conversations are drawn from. The service level of a staffing is the
// mean over the replications, with the same random draws for every
// number of agents tried.
func staff(sc *Scenario, opt Options, workers int, report *Report) error {
	target := *opt.StaffFor
	var tasks []*staffTask
	for ch, c := range sc.Channels {
		if c == nil {
			continue
		}
		tmpl, err := sc.staffingPool(capacity.Channel(ch))
		if err != nil {
			return err
		}
		counts, mixes := sc.recordedByInterval(capacity.Channel(ch))
		for k := range sc.Intervals {
			t := &staffTask{ch: capacity.Channel(ch), interval: k, tmpl: tmpl}
			if sc.Recorded != nil {
				t.perIv, t.mix = float64(counts[k]), mixes[k]
				t.key = splitmix64(uint64(ch)<<32 | uint64(k) | 1<<62)
			} else {
				t.perIv = c.PerInterval[k]
				// The same rate gets the same draws, and so the same answer.
				t.key = splitmix64(uint64(ch)<<56 ^ math.Float64bits(t.perIv))
			}
			tasks = append(tasks, t)
		}
	}
	// One search per distinct task; the others copy its answer.
	type taskKey struct {
		ch  capacity.Channel
		key uint64
	}
	first := map[taskKey]*staffTask{}
	var unique []*staffTask
	for _, t := range tasks {
		if _, seen := first[taskKey{t.ch, t.key}]; !seen {
			first[taskKey{t.ch, t.key}] = t
			unique = append(unique, t)
		}
	}
	var (
		mu   sync.Mutex
		done int
		next int
		wg   sync.WaitGroup
	)
	for range min(workers, len(unique)) {
		wg.Go(func() {
			for {
				mu.Lock()
				if next == len(unique) {
					mu.Unlock()
					return
				}
				t := unique[next]
				next++
				mu.Unlock()
				t.agents, t.sl, t.err = searchStaff(sc, opt, target, t)
				mu.Lock()
				done++
				if opt.Progress != nil {
					opt.Progress(Progress{Stage: "staffing", Done: done, Total: len(unique)})
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	report.StaffingGoal = &StaffingGoal{ServiceLevel: Num(target.Level), AnsweredWithinSeconds: Num(target.Within.Seconds())}
	report.Staffing = []StaffingRow{}
	for _, t := range tasks {
		f := first[taskKey{t.ch, t.key}]
		if f.err != nil {
			return f.err
		}
		report.Staffing = append(report.Staffing, StaffingRow{
			Start:   sc.Start.Add(time.Duration(t.interval) * sc.Interval).UTC().Format(time.RFC3339),
			Channel: t.ch.String(), Agents: f.agents, ServiceLevel: Num(f.sl),
		})
	}
	return nil
}

// staffingPool is the kind of agent a channel is staffed with: the
// capacity of the first agents entry that takes the channel, and every
// skill and group of all the entries that take it, so that one pool can
// take every conversation the scenario's agents can. A conversation that
// none of them could take is an error now, not a search that cannot end.
func (sc *Scenario) staffingPool(ch capacity.Channel) (*AgentGroup, error) {
	var pool *AgentGroup
	for _, g := range sc.Agents {
		if g.Capacity[ch] == 0 {
			continue
		}
		if pool == nil {
			pool = &AgentGroup{Capacity: g.Capacity}
		}
		pool.Skills = union(pool.Skills, g.Skills)
		pool.Groups = union(pool.Groups, g.Groups)
	}
	if pool == nil {
		return nil, fmt.Errorf("%w: staffing %s: no agents entry takes %s (capacity above 0) to staff it with", ErrScenario, ch, ch)
	}
	if len(pool.Skills) > maxLabelsPerEntry || len(pool.Groups) > maxLabelsPerEntry {
		return nil, fmt.Errorf("%w: staffing %s: the agents that take it have more than %d skills or groups together", ErrScenario, ch, maxLabelsPerEntry)
	}
	reqs := []Requirement{{Skills: sc.Channels[ch].Skills, Group: sc.Channels[ch].Group}}
	if sc.Recorded != nil {
		reqs = reqs[:0]
		for _, a := range sc.Recorded {
			if a.Channel == ch {
				reqs = append(reqs, a.Requirement)
			}
		}
	}
	for _, r := range reqs {
		for _, s := range r.Skills {
			if !slices.Contains(pool.Skills, s) {
				return nil, fmt.Errorf("%w: staffing %s: conversations need skill %q, which no agents entry has", ErrScenario, ch, s)
			}
		}
		if r.Group != "" && !slices.Contains(pool.Groups, r.Group) {
			return nil, fmt.Errorf("%w: staffing %s: conversations are for group %q, which no agents entry is in", ErrScenario, ch, r.Group)
		}
	}
	return pool, nil
}

// union is a and the elements of b it lacks, in order.
func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, s := range b {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// recordedByInterval counts the recorded arrivals on ch per interval, and
// collects their requirements.
func (sc *Scenario) recordedByInterval(ch capacity.Channel) ([]int, [][]Requirement) {
	if sc.Recorded == nil {
		return nil, nil
	}
	counts := make([]int, sc.Intervals)
	mixes := make([][]Requirement, sc.Intervals)
	for _, a := range sc.Recorded {
		if a.Channel != ch || a.At.Before(sc.Start) {
			continue
		}
		k := int(a.At.Sub(sc.Start) / sc.Interval)
		counts[k]++
		mixes[k] = append(mixes[k], a.Requirement)
	}
	return counts, mixes
}

// searchStaff finds the fewest agents that meet the target for one task.
// No fewer than Level × offered load / capacity can: the answered cannot
// outnumber what the agents can handle. It starts from the Erlang C
// staffing (each agent as many servers as its capacity, nobody
// abandoning), steps down or up from there in steps that double until
// the answer is bracketed, then bisects; usually two or three probes.
func searchStaff(sc *Scenario, opt Options, target Target, t *staffTask) (int, float64, error) {
	if t.perIv == 0 {
		return 0, math.NaN(), nil
	}
	spec := sc.Channels[t.ch]
	perAgent := t.tmpl.Capacity[t.ch]
	lambda := t.perIv / float64(sc.Interval.Milliseconds()) // per ms
	load := lambda * spec.HandleTime.meanMs()               // in capacity slots
	lo := max(0, int(math.Ceil(target.Level*load/float64(perAgent)))-1)
	results := map[int]float64{}
	probe := func(n int) (bool, error) {
		if _, ok := results[n]; !ok {
			sl, queued, err := staffProbe(sc, opt, target, t, n)
			if err != nil {
				return false, err
			}
			results[n] = sl
			if !queued && sl < target.Level {
				return false, fmt.Errorf("staffing %s at %s: with %d agents no conversation waits for an agent, and the service level is %.3f: more agents cannot meet %v (do offers take longer than %v to accept?)",
					t.ch, sc.Start.Add(time.Duration(t.interval)*sc.Interval).UTC().Format(time.RFC3339), n, sl, target, target.Within)
			}
		}
		return results[n] >= target.Level, nil
	}
	start := erlangCStaff(load, float64(target.Within.Milliseconds())/spec.HandleTime.meanMs(), target.Level)
	hi := min(maxStaff, max(lo+1, (start+perAgent-1)/perAgent))
	ok, err := probe(hi)
	if err != nil {
		return 0, 0, err
	}
	if ok {
		for step := 1; hi-step > lo; step *= 2 {
			ok, err := probe(hi - step)
			if err != nil {
				return 0, 0, err
			}
			if !ok {
				lo = hi - step
				break
			}
			hi -= step
		}
	} else {
		for step := 1; ; step *= 2 {
			if hi >= maxStaff {
				return 0, 0, fmt.Errorf("staffing %s at %s: %d agents do not meet %v (service level %.3f)",
					t.ch, sc.Start.Add(time.Duration(t.interval)*sc.Interval).UTC().Format(time.RFC3339), hi, target, results[hi])
			}
			lo, hi = hi, min(maxStaff, hi+step)
			ok, err := probe(hi)
			if err != nil {
				return 0, 0, err
			}
			if ok {
				break
			}
		}
	}
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		ok, err := probe(mid)
		if err != nil {
			return 0, 0, err
		}
		if ok {
			hi = mid
		} else {
			lo = mid
		}
	}
	return hi, results[hi], nil
}

// erlangCStaff is where a staffing search starts: the fewest servers s
// of an M/M/s queue with offered load a (in servers) whose probability of
// answering within t (in mean handle times) is at least level:
// 1 − C(s, a)·e^{−(s−a)t} ≥ level. C comes from Erlang B by its
// recursion B(k) = a·B(k−1) / (k + a·B(k−1)), C = s·B / (s − a(1 − B)),
// which does not overflow at any size.
func erlangCStaff(a, t, level float64) int {
	b := 1.0
	for s := 1; s <= MaxStaff*capacity.MaxLimit; s++ {
		b = a * b / (float64(s) + a*b)
		if float64(s) <= a {
			continue
		}
		c := float64(s) * b / (float64(s) - a*(1-b))
		if 1-c*math.Exp(-(float64(s)-a)*t) >= level {
			return s
		}
	}
	return MaxStaff * capacity.MaxLimit
}

// staffProbe is the mean service level of n agents on one task, and
// whether any conversation had to wait in the queue.
func staffProbe(sc *Scenario, opt Options, target Target, t *staffTask, n int) (float64, bool, error) {
	spec := *sc.Channels[t.ch]
	warm := min(staffMaxWarmUp, max(staffMinWarmUp, 10*spec.HandleTime.Mean, sc.WarmUp))
	total := staffArrivals
	if opt.staffArrivals > 0 {
		total = opt.staffArrivals
	}
	perRep := float64(total) / float64(opt.Replications)
	window := time.Duration(perRep / t.perIv * float64(sc.Interval)).Round(time.Minute)
	window = min(max(window, sc.Interval), MaxHorizon-warm)
	spec.PerInterval = []float64{t.perIv * float64(window) / float64(sc.Interval)}
	spec.mix = t.mix
	probe := &Scenario{
		Start: sc.Start, Interval: window, Intervals: 1, WarmUp: warm, AnsweredWithin: target.Within,
		AcceptDelay: sc.AcceptDelay, Policy: sc.Policy,
		Agents: []AgentGroup{{Count: n, Capacity: t.tmpl.Capacity, Skills: t.tmpl.Skills, Groups: t.tmpl.Groups, From: 0, To: 1}},
	}
	probe.Channels[t.ch] = &spec
	var sl stat
	queued := false
	err := replicate(probe, opt.Seed, t.key, opt.Replications, 1, func(r *replication) {
		c := &r.cells[int(t.ch)]
		sl.add(ratio(c.within, c.offered))
		queued = queued || c.queueMs > 0
	})
	if err != nil {
		return 0, false, err
	}
	if sl.n == 0 {
		return 1, false, nil // no arrivals in any replication: nothing to miss
	}
	return sl.mean, queued, nil
}
