package sim

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/omnirouter/omnirouter/capacity"
	"github.com/omnirouter/omnirouter/routing"
)

// ErrScenario is wrapped by every error about a scenario or its arrival
// file: the input is wrong, and nothing was simulated.
var ErrScenario = errors.New("invalid scenario")

// Bounds of a scenario: a simulation holds per-interval results for every
// replication and keeps every live conversation, so what it accepts is
// bounded.
const (
	MaxIntervals      = 2880                // 30 days of 15-minute intervals
	MaxHorizon        = 28 * 24 * time.Hour // warm-up and intervals together
	MinInterval       = time.Minute
	MaxInterval       = 24 * time.Hour
	MaxAgents         = 20_000    // agents of a scenario, all entries together
	MaxArrivals       = 5_000_000 // expected or recorded arrivals of one replication
	MaxReplications   = 1000      // replications of one run
	MaxArrivalsFile   = 1 << 30   // bytes of an arrival file
	maxDistMean       = 24 * time.Hour
	maxLabelsPerEntry = routing.MaxLabels
)

// Scenario is a simulated stretch of a support floor's life. Parse or
// Load make one from its JSON form (docs/insight.md describes it).
type Scenario struct {
	Start     time.Time     // when the first interval begins
	Interval  time.Duration // the length of every interval
	Intervals int
	// WarmUp is simulated before Start and not reported: with Poisson
	// arrivals at the first interval's rates and its agents (an arrival
	// file replays its own records before Start), so that the floor is
	// not empty when measuring starts.
	WarmUp time.Duration
	// AnsweredWithin is the service-level threshold: a conversation
	// answered (assigned, or its offer accepted) within it counts.
	AnsweredWithin time.Duration
	// Channels are the simulated channels, by capacity.Channel; nil for
	// one that is not simulated.
	Channels [capacity.NumChannels]*Channel
	// Recorded arrivals (an arrival file), in time order; when set, the
	// channels' rates are not used.
	Recorded []Arrival
	Agents   []AgentGroup
	// AcceptDelay is how long an agent takes to accept an offer when the
	// policy makes offers (routing.auto_accept off); nil: at once.
	AcceptDelay *Dist
	// Policy is applied over the simulation's own defaults (simDefaults).
	Policy routing.PolicyPatch
}

// Channel is how conversations come and go on one channel.
type Channel struct {
	// PerInterval is the expected number of arrivals in each interval
	// (Poisson arrivals at a constant rate within an interval).
	PerInterval []float64
	HandleTime  Dist
	// Patience is how long a customer waits for an answer before giving
	// up (an abandonment); nil: forever. Chat and voice only: messaging
	// and email have no session the end user can end.
	Patience *Dist
	// What generated conversations require.
	Skills   []string
	Group    string
	Priority int
	// mix, when set, is drawn from for each generated conversation's
	// requirement instead (staffing from a recorded file).
	mix []Requirement
}

// Requirement is what a conversation asks of its agent.
type Requirement struct {
	Skills   []string
	Group    string
	Priority int
}

// Arrival is one recorded conversation.
type Arrival struct {
	At      time.Time
	Channel capacity.Channel
	Requirement
}

// AgentGroup is Count identical agents working the same shift.
type AgentGroup struct {
	Count    int
	Capacity capacity.Limits
	Skills   []string
	Groups   []string
	// From and To are interval indexes: the agents work from the start of
	// interval From to the start of interval To (To = Intervals: to the
	// end, and on until the last conversations are settled).
	From, To int
}

// DistKind is the shape of a distribution.
type DistKind uint8

const (
	Exponential DistKind = iota
	Lognormal
	Fixed
)

var distNames = [...]string{"exponential", "lognormal", "fixed"}

func (k DistKind) String() string { return distNames[k] }

// Dist is a distribution of durations.
type Dist struct {
	Kind DistKind
	Mean time.Duration
	SD   time.Duration // lognormal only
	// mu and sigma are the lognormal's parameters (of the log, in ms).
	mu, sigma float64
}

// --- the JSON form ---------------------------------------------------------------

type scenarioJSON struct {
	Start        string                 `json:"start"`
	Interval     string                 `json:"interval"`
	Intervals    int                    `json:"intervals"`
	WarmUp       string                 `json:"warm_up"`
	ServiceLevel *serviceLevelJSON      `json:"service_level"`
	Channels     map[string]channelJSON `json:"channels"`
	ArrivalsFile string                 `json:"arrivals_file"`
	Agents       []agentJSON            `json:"agents"`
	AcceptDelay  *distJSON              `json:"accept_delay"`
	Policy       json.RawMessage        `json:"policy"`
	Description  string                 `json:"description"` // free text, for the reader of the file
}

type serviceLevelJSON struct {
	AnsweredWithin string `json:"answered_within"`
}

type channelJSON struct {
	ArrivalsPerInterval []float64 `json:"arrivals_per_interval"`
	HandleTime          *distJSON `json:"handle_time"`
	Patience            *distJSON `json:"patience"`
	Skills              []string  `json:"skills"`
	Group               string    `json:"group"`
	Priority            int       `json:"priority"`
}

type distJSON struct {
	Dist string `json:"dist"`
	Mean string `json:"mean"`
	SD   string `json:"sd"`
}

type agentJSON struct {
	Count    int            `json:"count"`
	Capacity map[string]int `json:"capacity"`
	Skills   []string       `json:"skills"`
	Groups   []string       `json:"groups"`
	Shift    *shiftJSON     `json:"shift"`
}

type shiftJSON struct {
	From int `json:"from"`
	To   int `json:"to"`
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrScenario, fmt.Sprintf(format, args...))
}

// Load reads a scenario file; an arrival file it names is read relative to
// the scenario file's directory.
func Load(path string) (*Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(data, filepath.Dir(path))
}

// Parse reads a scenario from its JSON form. dir is where a relative
// arrivals_file is looked for.
func Parse(data []byte, dir string) (*Scenario, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var j scenarioJSON
	if err := dec.Decode(&j); err != nil {
		return nil, invalid("%v", err)
	}
	if dec.More() {
		return nil, invalid("trailing data after the scenario object")
	}
	sc := &Scenario{Intervals: j.Intervals}
	var err error
	if sc.Start, err = time.Parse(time.RFC3339, j.Start); err != nil {
		return nil, invalid("start must be an RFC 3339 time (2027-01-04T08:00:00Z), got %q", j.Start)
	}
	if sc.Interval, err = duration("interval", j.Interval); err != nil {
		return nil, err
	}
	if sc.Interval < MinInterval || sc.Interval > MaxInterval || sc.Interval%time.Minute != 0 {
		return nil, invalid("interval must be whole minutes within %v..%v (usually 15m or 30m), got %v", MinInterval, MaxInterval, sc.Interval)
	}
	if sc.Intervals < 1 || sc.Intervals > MaxIntervals {
		return nil, invalid("intervals must be 1..%d, got %d", MaxIntervals, sc.Intervals)
	}
	if j.WarmUp != "" {
		if sc.WarmUp, err = duration("warm_up", j.WarmUp); err != nil {
			return nil, err
		}
		if sc.WarmUp < 0 {
			return nil, invalid("warm_up must not be negative, got %v", sc.WarmUp)
		}
	}
	if horizon := sc.WarmUp + time.Duration(sc.Intervals)*sc.Interval; horizon > MaxHorizon {
		return nil, invalid("warm_up and intervals span %v; at most %v", horizon, MaxHorizon)
	}
	if j.ServiceLevel == nil || j.ServiceLevel.AnsweredWithin == "" {
		return nil, invalid("service_level.answered_within is required (e.g. \"20s\")")
	}
	if sc.AnsweredWithin, err = duration("service_level.answered_within", j.ServiceLevel.AnsweredWithin); err != nil {
		return nil, err
	}
	if sc.AnsweredWithin < 0 {
		return nil, invalid("service_level.answered_within must not be negative")
	}
	if err := sc.parseChannels(&j); err != nil {
		return nil, err
	}
	if j.ArrivalsFile != "" {
		path := j.ArrivalsFile
		if !filepath.IsAbs(path) {
			path = filepath.Join(dir, path)
		}
		if err := sc.readArrivalsFile(path); err != nil {
			return nil, err
		}
	}
	if err := sc.parseAgents(j.Agents); err != nil {
		return nil, err
	}
	if j.AcceptDelay != nil {
		d, err := parseDist("accept_delay", j.AcceptDelay, true)
		if err != nil {
			return nil, err
		}
		sc.AcceptDelay = &d
	}
	if len(j.Policy) > 0 {
		if sc.Policy, err = parsePolicy(j.Policy); err != nil {
			return nil, err
		}
	}
	return sc, nil
}

func duration(field, s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, invalid("%s: %q is not a duration (e.g. \"30m\", \"20s\")", field, s)
	}
	return d, nil
}

func (sc *Scenario) parseChannels(j *scenarioJSON) error {
	if len(j.Channels) == 0 {
		return invalid("channels: at least one channel (chat, messaging, email, voice) is required")
	}
	names := make([]string, 0, len(j.Channels))
	for name := range j.Channels {
		names = append(names, name)
	}
	slices.Sort(names) // the first error does not depend on map order
	expected := 0.0
	for _, name := range names {
		cj := j.Channels[name]
		ch, err := capacity.ParseChannel(name)
		if err != nil {
			return invalid("channels: unknown channel %q (chat, messaging, email, voice)", name)
		}
		c := &Channel{Skills: cj.Skills, Group: cj.Group, Priority: cj.Priority}
		where := "channels." + name
		if cj.HandleTime == nil {
			return invalid("%s.handle_time is required", where)
		}
		if c.HandleTime, err = parseDist(where+".handle_time", cj.HandleTime, false); err != nil {
			return err
		}
		if cj.Patience != nil {
			if ch == capacity.Messaging || ch == capacity.Email {
				return invalid("%s.patience: %s has no session the end user can end; patience applies to chat and voice", where, name)
			}
			p, err := parseDist(where+".patience", cj.Patience, false)
			if err != nil {
				return err
			}
			c.Patience = &p
		}
		if err := checkRequirement(where, cj.Skills, cj.Group, cj.Priority); err != nil {
			return invalid("%v", err)
		}
		switch {
		case j.ArrivalsFile != "" && cj.ArrivalsPerInterval != nil:
			return invalid("%s.arrivals_per_interval: the scenario has an arrivals_file, which replaces the rates", where)
		case j.ArrivalsFile != "":
		case len(cj.ArrivalsPerInterval) == 1:
			c.PerInterval = slices.Repeat(cj.ArrivalsPerInterval, j.Intervals)
		case len(cj.ArrivalsPerInterval) == j.Intervals:
			c.PerInterval = cj.ArrivalsPerInterval
		default:
			return invalid("%s.arrivals_per_interval has %d values; it needs one per interval (%d), or one for all", where, len(cj.ArrivalsPerInterval), j.Intervals)
		}
		for i, n := range c.PerInterval {
			if n < 0 || math.IsNaN(n) || math.IsInf(n, 0) {
				return invalid("%s.arrivals_per_interval[%d] must be a number >= 0, got %v", where, i, n)
			}
			expected += n
		}
		sc.Channels[ch] = c
	}
	for _, c := range sc.Channels {
		if c != nil && len(c.PerInterval) > 0 && sc.WarmUp > 0 {
			expected += c.PerInterval[0] * float64(sc.WarmUp) / float64(sc.Interval)
		}
	}
	if expected > MaxArrivals {
		return invalid("the scenario expects %.0f arrivals per replication; at most %d", expected, MaxArrivals)
	}
	return nil
}

// checkRequirement checks what a conversation requires as the state
// machine would.
func checkRequirement(where string, skills []string, group string, priority int) error {
	if err := routing.ValidLabels("skills", skills); err != nil {
		return fmt.Errorf("%s: skills: %v", where, err)
	}
	if group != "" {
		if err := routing.ValidLabels("group", []string{group}); err != nil {
			return fmt.Errorf("%s: group: %v", where, err)
		}
	}
	if priority < -routing.MaxPriority || priority > routing.MaxPriority {
		return fmt.Errorf("%s: priority must be within -%d..%d", where, routing.MaxPriority, routing.MaxPriority)
	}
	return nil
}

func parseDist(where string, j *distJSON, zeroOK bool) (Dist, error) {
	var d Dist
	i := slices.Index(distNames[:], j.Dist)
	if i < 0 {
		return d, invalid("%s.dist must be exponential, lognormal or fixed, got %q", where, j.Dist)
	}
	d.Kind = DistKind(i)
	var err error
	if d.Mean, err = duration(where+".mean", j.Mean); err != nil {
		return d, err
	}
	if d.Mean < 0 || d.Mean > maxDistMean || (d.Mean == 0 && !(zeroOK && d.Kind == Fixed)) {
		return d, invalid("%s.mean must be above 0 and at most %v, got %v", where, maxDistMean, d.Mean)
	}
	switch {
	case d.Kind == Lognormal:
		if d.SD, err = duration(where+".sd", j.SD); err != nil {
			return d, err
		}
		if d.SD <= 0 || d.SD > maxDistMean {
			return d, invalid("%s.sd must be above 0 and at most %v, got %v", where, maxDistMean, d.SD)
		}
		// A lognormal with mean m and standard deviation s: the log is
		// normal with sigma² = ln(1 + s²/m²) and mu = ln m - sigma²/2.
		m, s := float64(d.Mean.Milliseconds()), float64(d.SD.Milliseconds())
		if m < 1 || s < 1 {
			return d, invalid("%s: a lognormal's mean and sd must be at least 1ms", where)
		}
		d.sigma = math.Sqrt(math.Log1p(s * s / (m * m)))
		d.mu = math.Log(m) - d.sigma*d.sigma/2
	case j.SD != "":
		return d, invalid("%s.sd is for a lognormal only", where)
	}
	return d, nil
}

func (sc *Scenario) parseAgents(agents []agentJSON) error {
	if len(agents) == 0 {
		return invalid("agents: at least one entry is required")
	}
	total := 0
	for i, aj := range agents {
		where := fmt.Sprintf("agents[%d]", i)
		g := AgentGroup{Count: aj.Count, Skills: aj.Skills, Groups: aj.Groups, From: 0, To: sc.Intervals}
		if aj.Count < 1 || aj.Count > MaxAgents {
			return invalid("%s.count must be 1..%d, got %d", where, MaxAgents, aj.Count)
		}
		total += aj.Count
		if total > MaxAgents {
			return invalid("agents: at most %d agents in all", MaxAgents)
		}
		if len(aj.Capacity) == 0 {
			return invalid("%s.capacity is required, e.g. {\"chat\": 3}", where)
		}
		for name, n := range aj.Capacity {
			ch, err := capacity.ParseChannel(name)
			if err != nil {
				return invalid("%s.capacity: unknown channel %q", where, name)
			}
			g.Capacity[ch] = n
		}
		if err := g.Capacity.Validate(); err != nil {
			return invalid("%s.capacity: %v", where, err)
		}
		if err := routing.ValidLabels("skills", aj.Skills); err != nil {
			return invalid("%s.skills: %v", where, err)
		}
		if err := routing.ValidLabels("groups", aj.Groups); err != nil {
			return invalid("%s.groups: %v", where, err)
		}
		if aj.Shift != nil {
			g.From, g.To = aj.Shift.From, aj.Shift.To
			if g.From < 0 || g.To > sc.Intervals || g.From >= g.To {
				return invalid("%s.shift must have 0 <= from < to <= %d (interval indexes), got %d..%d", where, sc.Intervals, g.From, g.To)
			}
		}
		sc.Agents = append(sc.Agents, g)
	}
	return nil
}

// parsePolicy reads the policy as PUT /v1/policy takes it: an object whose
// leaves are policy fields by dotted name.
func parsePolicy(raw json.RawMessage) (routing.PolicyPatch, error) {
	var patch routing.PolicyPatch
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var root any
	if err := dec.Decode(&root); err != nil {
		return patch, invalid("policy: %v", err)
	}
	if root == nil {
		return patch, nil
	}
	obj, ok := root.(map[string]any)
	if !ok {
		return patch, invalid("policy must be an object, as PUT /v1/policy takes it")
	}
	patch, err := routing.PolicyPatchFromObject(obj)
	if err != nil {
		return patch, invalid("policy: %v", err)
	}
	if patch.Applied(routing.DefaultPolicy()).Routing.Mode == routing.ModeExternal {
		return patch, invalid("policy: routing.mode external waits for a routing engine to ask for assignments, and a simulation has none")
	}
	return patch, nil
}

// --- the arrival file ------------------------------------------------------------

// readArrivalsFile reads recorded arrivals: CSV rows of time (RFC 3339),
// channel, skills (separated by ';'), group and priority, an optional
// header row first. Every row must fall within the warm-up or the
// intervals, and name a channel the scenario describes.
func (sc *Scenario) readArrivalsFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return invalid("arrivals_file: %v", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > MaxArrivalsFile {
		return invalid("arrivals_file: %s is %d bytes; at most %d", path, st.Size(), MaxArrivalsFile)
	}
	arrivals, err := ReadArrivals(f, sc.Start.Add(-sc.WarmUp), sc.end())
	if err != nil {
		return invalid("arrivals_file %s: %v", path, err)
	}
	for _, a := range arrivals {
		if sc.Channels[a.Channel] == nil {
			return invalid("arrivals_file %s: it has %s arrivals, and channels does not describe %s (its handle_time)", path, a.Channel, a.Channel)
		}
	}
	sc.Recorded = arrivals
	return nil
}

// ReadArrivals reads an arrival file (see Scenario.Recorded): rows of
// time, channel, skills, group, priority, at or after from and before to,
// returned in time order (rows at the same time keep the file's order).
func ReadArrivals(r io.Reader, from, to time.Time) ([]Arrival, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	cr.ReuseRecord = true
	var out []Arrival
	for line := 1; ; line++ {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if line == 1 && len(rec) > 0 && strings.EqualFold(strings.TrimSpace(rec[0]), "time") {
			continue // the header
		}
		if len(rec) < 2 || len(rec) > 5 {
			return nil, fmt.Errorf("line %d: want time, channel, skills, group, priority; got %d fields", line, len(rec))
		}
		for len(rec) < 5 {
			rec = append(rec, "")
		}
		var a Arrival
		if a.At, err = time.Parse(time.RFC3339Nano, strings.TrimSpace(rec[0])); err != nil {
			return nil, fmt.Errorf("line %d: time %q is not RFC 3339", line, rec[0])
		}
		if a.At.Before(from) || !a.At.Before(to) {
			return nil, fmt.Errorf("line %d: %s is outside the scenario (%s to %s)", line, rec[0], from.Format(time.RFC3339), to.Format(time.RFC3339))
		}
		if a.Channel, err = capacity.ParseChannel(strings.TrimSpace(rec[1])); err != nil {
			return nil, fmt.Errorf("line %d: unknown channel %q", line, rec[1])
		}
		if s := strings.TrimSpace(rec[2]); s != "" {
			for _, sk := range strings.Split(s, ";") {
				a.Skills = append(a.Skills, strings.TrimSpace(sk))
			}
		}
		a.Group = strings.TrimSpace(rec[3])
		if p := strings.TrimSpace(rec[4]); p != "" {
			if a.Priority, err = strconv.Atoi(p); err != nil {
				return nil, fmt.Errorf("line %d: priority %q is not an integer", line, rec[4])
			}
		}
		if err := checkRequirement(fmt.Sprintf("line %d", line), a.Skills, a.Group, a.Priority); err != nil {
			return nil, err
		}
		if len(out) >= arrivalLimit {
			return nil, fmt.Errorf("more than %d arrivals", arrivalLimit)
		}
		out = append(out, a)
	}
	slices.SortStableFunc(out, func(a, b Arrival) int { return a.At.Compare(b.At) })
	return out, nil
}

// arrivalLimit is MaxArrivals; tests lower it.
var arrivalLimit = MaxArrivals

// end is when the last interval ends.
func (sc *Scenario) end() time.Time {
	return sc.Start.Add(time.Duration(sc.Intervals) * sc.Interval)
}
