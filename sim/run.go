package sim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/omnirouter/omnirouter/capacity"
	"github.com/omnirouter/omnirouter/routing"
)

// DrainLimit bounds how long a replication goes on after the last
// interval, with no new arrivals and the last interval's agents, for the
// conversations that arrived in it to be answered or abandoned. Those still
// waiting then count as neither.
const DrainLimit = 24 * time.Hour

// simDefaults is the policy a simulation starts from, before the
// scenario's: an assignment is the answer (routing.auto_accept), ended
// conversations leave the state at once (nothing reads them), and a web
// chat's idle timers are out of the way, since a simulated visitor sends
// no page activity: its session lasts as its patience and handle time say.
// A scenario's policy may set any of them back.
var simDefaults = routing.MustPatch(
	"routing.auto_accept", true,
	"retention.ended", time.Duration(0),
	"chat.web.idle_after", routing.MaxPolicyDuration,
	"chat.web.idle_timeout", routing.MaxPolicyDuration,
)

// cell is what one replication measured on one channel in one interval.
// Conversations count in the interval they arrived in; time integrals in
// the interval the time is in.
type cell struct {
	offered, answered, within, waited, abandoned int64
	waitMs                                       int64 // summed over the answered
	queueMs                                      int64 // conversations queued × ms
	busyMs                                       int64 // capacity used by on-shift agents × ms
	slotMs                                       int64 // capacity of on-shift agents × ms
}

func (c *cell) add(o *cell) {
	c.offered += o.offered
	c.answered += o.answered
	c.within += o.within
	c.waited += o.waited
	c.abandoned += o.abandoned
	c.waitMs += o.waitMs
	c.queueMs += o.queueMs
	c.busyMs += o.busyMs
	c.slotMs += o.slotMs
}

// event kinds of the simulation's own calendar (the state machine keeps
// its own timers).
const (
	evBoundary uint8 = iota // an interval starts (or, at the end, the drain)
	evArrival               // a Poisson arrival on a channel
	evRecorded              // a recorded arrival
	evAbandon               // a customer's patience runs out
	evAccept                // an agent accepts an offer
	evComplete              // an agent finishes a conversation
	evOffline               // an agent past its shift, with nothing left, goes offline
)

type event struct {
	at   int64
	seq  uint64
	kind uint8
	ch   capacity.Channel
	gen  uint32
	n    int // boundary: interval index; recorded: index; offline: agent
	conv *conv
}

// calendar is a binary min-heap of events by (at, seq): equal times in
// the order they were scheduled.
type calendar []event

func (h calendar) less(i, j int) bool {
	return h[i].at < h[j].at || h[i].at == h[j].at && h[i].seq < h[j].seq
}

func (h *calendar) push(e event) {
	*h = append(*h, e)
	s := *h
	for i := len(s) - 1; i > 0; {
		p := (i - 1) / 2
		if !s.less(i, p) {
			break
		}
		s[i], s[p] = s[p], s[i]
		i = p
	}
}

func (h *calendar) pop() event {
	s := *h
	top := s[0]
	n := len(s) - 1
	s[0] = s[n]
	s[n] = event{}
	s = s[:n]
	for i := 0; ; {
		l, small := 2*i+1, i
		if l < n && s.less(l, small) {
			small = l
		}
		if r := l + 1; r < n && s.less(r, small) {
			small = r
		}
		if small == i {
			break
		}
		s[i], s[small] = s[small], s[i]
		i = small
	}
	*h = s
	return top
}

// conv is a simulated customer's conversation.
type conv struct {
	id      string
	ch      capacity.Channel
	arrived int64
	cell    int // index in the replication's cells; -1 when not measured (warm-up)
	handle  int64
	agent   string // offered to or held by
	offers  uint32 // offers made so far: an acceptance answers the latest only
	offered bool
	held    bool // assigned to agent
	// answered: an agent took it; done: its handle time is over while it
	// was not held (it ends as soon as someone holds it again).
	answered, done, ended bool
}

type simAgent struct {
	id      string
	cap     capacity.Limits
	load    capacity.Load
	onShift bool
	leaving bool // past its shift, finishing its work
}

// replication is one run of a scenario through a fresh routing.Machine.
type replication struct {
	sc       *Scenario
	m        *routing.Machine
	t0       int64 // warm-up start, ms
	start    int64 // first interval, ms
	interval int64
	stopAt   int64
	cells    []cell // [interval*NumChannels + channel]

	cal    calendar
	seq    uint64
	convs  map[string]*conv
	nextID uint64

	agents    []simAgent
	agentByID map[string]int
	starts    [][]int // agents whose shift starts at interval k
	ends      [][]int // agents whose shift ends at interval k

	arrRng  [capacity.NumChannels]*rand.Rand
	custRng [capacity.NumChannels]*rand.Rand
	accRng  *rand.Rand
	arrPos  [capacity.NumChannels]float64 // ms since t0 of the last Poisson arrival

	cur     int // interval being measured: -1 warm-up, Intervals: draining
	lastT   int64
	queue   [capacity.NumChannels]int64
	load    [capacity.NumChannels]int64
	slots   [capacity.NumChannels]int64
	used    []capacity.Channel
	pending int // measured conversations not yet answered or abandoned
	// lastEvent is the id of the last event observed.
	lastEvent uint64
	err       error
}

func newReplication(sc *Scenario, seed, key uint64, rep int) *replication {
	r := &replication{
		sc:       sc,
		start:    sc.Start.UnixMilli(),
		interval: sc.Interval.Milliseconds(),
		cells:    make([]cell, sc.Intervals*int(capacity.NumChannels)),
		convs:    map[string]*conv{},
		cur:      -1,
	}
	r.t0 = r.start - sc.WarmUp.Milliseconds()
	r.stopAt = r.start + int64(sc.Intervals)*r.interval + DrainLimit.Milliseconds()
	r.lastT = r.t0
	for ch, c := range sc.Channels {
		if c == nil {
			continue
		}
		r.used = append(r.used, capacity.Channel(ch))
		r.arrRng[ch] = stream(seed, key, rep, purposeArrivals+ch)
		r.custRng[ch] = stream(seed, key, rep, purposeCustomers+ch)
	}
	r.accRng = stream(seed, key, rep, purposeAccept)
	return r
}

func (r *replication) schedule(e event) {
	e.seq = r.seq
	r.seq++
	r.cal.push(e)
}

// run plays the scenario and leaves what it measured in r.cells.
func (r *replication) run() error {
	if err := r.setup(); err != nil {
		return err
	}
	for r.err == nil && !(r.cur >= r.sc.Intervals && r.pending == 0) {
		next := int64(math.MaxInt64)
		if len(r.cal) > 0 {
			next = r.cal[0].at
		}
		if d, ok := r.m.NextDeadline(); ok && d <= next {
			if d > r.stopAt {
				break
			}
			r.advance(d)
			r.apply(d, routing.Tick{})
			continue
		}
		if len(r.cal) == 0 || next > r.stopAt {
			break
		}
		e := r.cal.pop()
		r.advance(e.at)
		r.handle(e)
	}
	return r.err
}

func (r *replication) setup() error {
	r.m = routing.New()
	r.m.Apply(r.t0, "", routing.SetEventLimits{Limits: eventLimits})
	if out := r.m.Apply(r.t0, "", routing.SetPolicy{Patch: simDefaults}); out.Err != nil {
		return out.Err
	}
	if !r.sc.Policy.Empty() {
		if out := r.m.Apply(r.t0, "", routing.SetPolicy{Patch: r.sc.Policy}); out.Err != nil {
			return fmt.Errorf("%w: policy: %v", ErrScenario, out.Err)
		}
	}
	r.starts = make([][]int, r.sc.Intervals+1)
	r.ends = make([][]int, r.sc.Intervals+1)
	r.agentByID = map[string]int{}
	for _, g := range r.sc.Agents {
		for range g.Count {
			i := len(r.agents)
			id := "a" + strconv.Itoa(i+1)
			r.agents = append(r.agents, simAgent{id: id, cap: g.Capacity})
			r.agentByID[id] = i
			r.starts[g.From] = append(r.starts[g.From], i)
			r.ends[g.To] = append(r.ends[g.To], i)
			out := r.m.Apply(r.t0, "", routing.UpsertAgent{ID: id, Capacity: g.Capacity, Skills: g.Skills, Groups: g.Groups})
			if out.Err != nil {
				return fmt.Errorf("%w: agents: %v", ErrScenario, out.Err)
			}
		}
	}
	for k := 0; k <= r.sc.Intervals; k++ {
		r.schedule(event{at: r.start + int64(k)*r.interval, kind: evBoundary, n: k})
	}
	r.lastEvent = r.m.LastEventID() // the setup's events tell nothing
	for _, i := range r.starts[0] {
		r.startShift(i)
	}
	if len(r.sc.Recorded) > 0 {
		r.scheduleRecorded(0)
	} else {
		for _, ch := range r.used {
			r.scheduleArrival(ch)
		}
	}
	return r.err
}

// advance accounts for the time up to t: queue length, capacity used and
// capacity staffed, in the interval being measured.
func (r *replication) advance(t int64) {
	if dt := t - r.lastT; dt > 0 && r.cur >= 0 && r.cur < r.sc.Intervals {
		base := r.cur * int(capacity.NumChannels)
		for _, ch := range r.used {
			c := &r.cells[base+int(ch)]
			c.queueMs += r.queue[ch] * dt
			c.busyMs += r.load[ch] * dt
			c.slotMs += r.slots[ch] * dt
		}
	}
	r.lastT = max(r.lastT, t)
}

// apply applies one command and follows what the state machine did from
// its event log: reading the events in place saves copying each into an
// outcome (the log keeps far more than one command emits, and a gap would
// be reported).
func (r *replication) apply(at int64, cmd routing.Command) {
	out, n := r.m.ApplyCounting(at, "", cmd)
	if out.Err != nil && r.err == nil {
		r.err = fmt.Errorf("the state machine refused %T at %s: %v", cmd, time.UnixMilli(at).UTC().Format(time.RFC3339), out.Err)
	}
	if n > 0 {
		if err := r.m.EachEvent(r.lastEvent, r.observe); err != nil && r.err == nil {
			r.err = fmt.Errorf("events lost: %v", err)
		}
		r.lastEvent = r.m.LastEventID()
	}
	for _, ch := range r.used {
		r.queue[ch] = int64(r.m.ChannelQueueLen(ch))
	}
}

// eventLimits keep enough events for any one command's.
var eventLimits = routing.EventLimits{Count: 100_000, Bytes: 8 << 20}

// observe follows one event of the state machine's.
func (r *replication) observe(e *routing.Event) bool {
	if e.Type == routing.EventAgentCapacity {
		r.loadChanged(e.AgentID, e.Data.Load)
		return true
	}
	c := r.convs[e.ConversationID]
	if c == nil {
		return true
	}
	switch e.Type {
	case routing.EventOffered:
		c.agent, c.offered = e.AgentID, true
		c.offers++
		delay := int64(0)
		if d := r.sc.AcceptDelay; d != nil {
			delay = d.sample(r.accRng)
		}
		r.schedule(event{at: e.At + delay, kind: evAccept, conv: c, gen: c.offers})
	case routing.EventAssigned:
		c.agent, c.held, c.offered = e.AgentID, true, false
		if !c.answered {
			r.answered(c, e.At)
			r.schedule(event{at: e.At + c.handle, kind: evComplete, conv: c})
		} else if c.done {
			r.schedule(event{at: e.At, kind: evComplete, conv: c})
		}
	case routing.EventOfferTimedOut, routing.EventRejected, routing.EventRequeued, routing.EventUnassigned:
		c.held, c.offered = false, false
	case routing.EventEnded:
		c.ended, c.held, c.offered = true, false, false
		delete(r.convs, c.id)
		if !c.answered && c.cell >= 0 {
			r.cells[c.cell].abandoned++
			r.pending--
		}
	}
	return true
}

func (r *replication) answered(c *conv, at int64) {
	c.answered = true
	if c.cell < 0 {
		return
	}
	cl := &r.cells[c.cell]
	wait := at - c.arrived
	cl.answered++
	cl.waitMs += wait
	if wait > 0 {
		cl.waited++
	}
	if wait <= r.sc.AnsweredWithin.Milliseconds() {
		cl.within++
	}
	r.pending--
}

func (r *replication) loadChanged(id string, load capacity.Load) {
	i, ok := r.agentByID[id]
	if !ok {
		return
	}
	a := &r.agents[i]
	if a.onShift {
		for _, ch := range r.used {
			r.load[ch] += int64(load[ch] - a.load[ch])
		}
	}
	a.load = load
	if a.leaving && load == (capacity.Load{}) {
		r.schedule(event{at: r.m.Now(), kind: evOffline, n: i})
	}
}

func (r *replication) handle(e event) {
	switch e.kind {
	case evBoundary:
		r.cur = e.n
		if e.n == 0 || e.n >= r.sc.Intervals {
			return // shifts from 0 started with the warm-up; the last agents stay for the drain
		}
		for _, i := range r.starts[e.n] {
			r.startShift(i)
		}
		for _, i := range r.ends[e.n] {
			r.endShift(i)
		}
	case evArrival:
		r.arrive(e.at, e.ch, r.requirement(e.ch))
		r.scheduleArrival(e.ch)
	case evRecorded:
		a := &r.sc.Recorded[e.n]
		r.arrive(e.at, a.Channel, a.Requirement)
		r.scheduleRecorded(e.n + 1)
	case evAbandon:
		if c := e.conv; !c.answered && !c.ended {
			r.apply(e.at, routing.End{ConversationID: c.id, By: routing.EndedByVisitor})
		}
	case evAccept:
		if c := e.conv; !c.ended && c.offered && c.offers == e.gen {
			r.apply(e.at, routing.Accept{ConversationID: c.id, AgentID: c.agent})
		}
	case evComplete:
		r.complete(e.at, e.conv)
	case evOffline:
		a := &r.agents[e.n]
		if ag, ok := r.m.Agent(a.id); a.leaving && ok && len(ag.Conversations) == 0 && ag.Status != routing.StatusOffline {
			a.leaving = false
			r.apply(e.at, routing.SetAgentStatus{AgentID: a.id, Status: routing.StatusOffline})
		}
	}
}

// complete ends a conversation whose handle time is over, as its channel
// ends: the visitor closes a chat, the agent hangs up a call (wrap-up
// follows, if the policy has one), the agent releases messaging and email.
func (r *replication) complete(at int64, c *conv) {
	if c.ended {
		return
	}
	if !c.held {
		c.done = true
		return
	}
	var cmd routing.Command
	switch c.ch {
	case capacity.Chat:
		cmd = routing.End{ConversationID: c.id, By: routing.EndedByVisitor}
	case capacity.Voice:
		cmd = routing.End{ConversationID: c.id, By: routing.EndedByAgent, AgentID: c.agent}
	default:
		cmd = routing.Release{ConversationID: c.id, AgentID: c.agent}
	}
	r.apply(at, cmd)
}

func (r *replication) startShift(i int) {
	a := &r.agents[i]
	a.onShift, a.leaving = true, false
	for _, ch := range r.used {
		r.slots[ch] += int64(a.cap[ch])
		r.load[ch] += int64(a.load[ch])
	}
	r.apply(r.m.Now(), routing.SetAgentStatus{AgentID: a.id, Status: routing.StatusOnline})
}

// endShift takes an agent out of routing at the end of its shift: it
// finishes what it holds (status away), then goes offline.
func (r *replication) endShift(i int) {
	a := &r.agents[i]
	a.onShift, a.leaving = false, true
	for _, ch := range r.used {
		r.slots[ch] -= int64(a.cap[ch])
		r.load[ch] -= int64(a.load[ch])
	}
	r.apply(r.m.Now(), routing.SetAgentStatus{AgentID: a.id, Status: routing.StatusAway})
	if a.load == (capacity.Load{}) {
		r.schedule(event{at: r.m.Now(), kind: evOffline, n: i})
	}
}

// requirement is what a generated conversation on ch requires.
func (r *replication) requirement(ch capacity.Channel) Requirement {
	c := r.sc.Channels[ch]
	if len(c.mix) > 0 {
		return c.mix[r.custRng[ch].IntN(len(c.mix))]
	}
	return Requirement{Skills: c.Skills, Group: c.Group, Priority: c.Priority}
}

// arrive creates a conversation: its customer's handle time and patience
// are drawn now, from the channel's own stream.
func (r *replication) arrive(at int64, ch capacity.Channel, req Requirement) {
	spec := r.sc.Channels[ch]
	rng := r.custRng[ch]
	r.nextID++
	c := &conv{id: "c" + strconv.FormatUint(r.nextID, 36), ch: ch, arrived: at, cell: -1}
	c.handle = spec.HandleTime.sample(rng)
	patience := int64(-1)
	if spec.Patience != nil {
		patience = spec.Patience.sample(rng)
	}
	if at >= r.start {
		k := int((at - r.start) / r.interval)
		c.cell = k*int(capacity.NumChannels) + int(ch)
		r.cells[c.cell].offered++
		r.pending++
	}
	r.convs[c.id] = c
	cmd := routing.CreateConversation{ID: c.id, Channel: ch, Skills: req.Skills, Group: req.Group, Priority: req.Priority}
	if ch == capacity.Email {
		cmd.Message = "(simulated)"
	}
	r.apply(at, cmd)
	if patience >= 0 && !c.answered && !c.ended {
		r.schedule(event{at: at + patience, kind: evAbandon, conv: c})
	}
}

// scheduleArrival schedules the next Poisson arrival on ch: exponential
// gaps at the rate of the interval the last arrival is in (the first
// interval's during the warm-up); a gap that crosses the end of an
// interval starts again from there at the next one's rate, which is
// exact for a Poisson process (it has no memory).
func (r *replication) scheduleArrival(ch capacity.Channel) {
	spec := r.sc.Channels[ch]
	warm := float64(r.start - r.t0)
	iv := float64(r.interval)
	t := r.arrPos[ch]
	for {
		k := -1
		segEnd := warm
		if t >= warm {
			k = int((t - warm) / iv)
			if k >= r.sc.Intervals {
				return
			}
			segEnd = warm + float64(k+1)*iv
		}
		rate := spec.PerInterval[max(k, 0)] / iv // arrivals per ms
		if rate <= 0 {
			t = segEnd
			continue
		}
		t += r.arrRng[ch].ExpFloat64() / rate
		if t < segEnd {
			r.arrPos[ch] = t
			r.schedule(event{at: r.t0 + int64(t), kind: evArrival, ch: ch})
			return
		}
		t = segEnd
	}
}

func (r *replication) scheduleRecorded(i int) {
	if i < len(r.sc.Recorded) {
		r.schedule(event{at: r.sc.Recorded[i].At.UnixMilli(), kind: evRecorded, n: i})
	}
}
