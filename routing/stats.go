package routing

import (
	"slices"
	"strings"
	"time"

	"github.com/omnirouter/omnirouter/capacity"
	"github.com/omnirouter/omnirouter/internal/wire"
)

// Real-time statistics, per channel and group ("" for the whole channel),
// kept in the replicated state so that every node that applied the same
// log answers the same:
//   - what is happening now (waiting, offered, assigned, in wrap-up; agents
//     by status with capacity on the channel; capacity used and total of
//     the online ones), counters kept in step with every change;
//   - what happened over the last 5 minutes, 30 minutes and 24 hours
//     (created, first assignments, missed, ended by reason, the waits to a
//     first assignment and how many were within stats.service_level_target),
//     in time buckets: one-minute buckets for the last 30 minutes and
//     fifteen-minute ones for the last 24 hours, so memory does not grow
//     with traffic. A window is the buckets that started in it: the oldest one
//     may reach up to a bucket's width beyond.
//
// A group is counted once it appears on a conversation or an agent; at most
// MaxStatGroups groups per channel are (the channel's own row counts
// everything).

// MaxStatGroups bounds the groups of one channel that get their own rows.
const MaxStatGroups = 256

// Stats windows.
var StatWindows = []time.Duration{5 * time.Minute, 30 * time.Minute, 24 * time.Hour}

const (
	minuteBuckets = 30
	minuteWidth   = int64(time.Minute / time.Millisecond)
	longBuckets   = 96
	longWidth     = int64(15 * time.Minute / time.Millisecond)
)

// endedReasons are the reasons a window counts, by index.
var endedReasons = []string{ReasonIdleTimeout, ReasonDisconnectTimeout, ReasonInactivityTimeout, ReasonBackgroundTimeout,
	ReasonAgentEnded, ReasonVisitorEnded, ReasonReleased, ReasonTicketClosed, ReasonCallerHungUp, ReasonQueueTimeout}

// waitBounds are the upper bounds (seconds) of the wait histogram's bins;
// the last bin holds longer waits.
var waitBounds = [...]float64{1, 2, 3, 5, 7, 10, 15, 20, 30, 45, 60, 90, 120, 180, 240, 300, 450, 600, 900, 1200,
	1800, 2700, 3600, 5400, 7200, 10800, 14400, 21600, 43200, 86400}

const numWaitBins = len(waitBounds) + 1

// bucket is what happened in one time bucket.
type bucket struct {
	start        int64 // ms; 0: never used
	created      uint32
	assigned     uint32 // first assignments
	missed       uint32
	withinTarget uint32 // first assignments within the service level target
	ended        [10]uint32
	waits        [numWaitBins]uint32
}

// windowRing is one key's buckets. Rings are shared with clones until
// written (copy on write, by owner token).
type windowRing struct {
	minutes [minuteBuckets]bucket
	long    [longBuckets]bucket
	cow     *cowToken
}

// statKey names a row.
type statKey struct {
	ch    capacity.Channel
	group string
}

// statRow is one row's counters of now, and its windows.
type statRow struct {
	offered, assigned, wrapUp int
	agents                    [numStatuses]int // with capacity on the channel
	capUsed, capTotal         int
	ring                      *windowRing // nil until something is recorded
}

// statsIndex is every row. Rows are values in a map that is copied when
// the machine is cloned (a few hundred rows at most), rings are shared.
type statsIndex struct {
	rows map[statKey]*statRow
	// groups counts the groups of each channel that have rows.
	groups [capacity.NumChannels]int
}

func newStatsIndex() *statsIndex { return &statsIndex{rows: map[statKey]*statRow{}} }

// clone copies the rows (the rings are shared until written).
func (s *statsIndex) clone() *statsIndex {
	c := &statsIndex{rows: make(map[statKey]*statRow, len(s.rows)), groups: s.groups}
	for k, r := range s.rows {
		cp := *r
		c.rows[k] = &cp
	}
	return c
}

// row returns the row of (ch, group), making it if there is room; nil when
// the channel has MaxStatGroups groups already.
func (s *statsIndex) row(ch capacity.Channel, group string) *statRow {
	k := statKey{ch, group}
	if r := s.rows[k]; r != nil {
		return r
	}
	if group != "" {
		if s.groups[ch] >= MaxStatGroups {
			return nil
		}
		s.groups[ch]++
	}
	r := &statRow{}
	s.rows[k] = r
	return r
}

// rowsOf calls fn for the channel's row and the group's, if any.
func (m *Machine) rowsOf(ch capacity.Channel, group string, fn func(*statRow)) {
	fn(m.stats.row(ch, ""))
	if group != "" {
		if r := m.stats.row(ch, group); r != nil {
			fn(r)
		}
	}
}

// --- counters of now ------------------------------------------------------

// heldStat adds sign to the counter of c's state (offered, assigned,
// wrap_up) in its rows.
func (m *Machine) heldStat(c *Conversation, sign int) {
	if !held(c) {
		return
	}
	m.rowsOf(c.Channel, c.Group, func(r *statRow) {
		switch c.State {
		case StateOffered:
			r.offered += sign
		case StateAssigned:
			r.assigned += sign
		case StateWrapUp:
			r.wrapUp += sign
		}
	})
}

// agentStat adds sign times agent a's contribution to every row it is in:
// its status on each channel it has capacity on, and its capacity and load.
func (m *Machine) agentStat(a *Agent, sign int) {
	for ch := range capacity.NumChannels {
		if a.Capacity[ch] == 0 && a.Load[ch] == 0 {
			continue
		}
		add := func(r *statRow) {
			if a.Capacity[ch] > 0 {
				r.agents[a.Status] += sign
				if a.Status == StatusOnline {
					r.capTotal += sign * a.Capacity[ch]
				}
			}
			r.capUsed += sign * a.Load[ch]
		}
		add(m.stats.row(ch, ""))
		for _, g := range a.Groups {
			if r := m.stats.row(ch, g); r != nil {
				add(r)
			}
		}
	}
}

// loadStat adds delta to the load counted on ch in agent a's rows.
func (m *Machine) loadStat(a *Agent, ch capacity.Channel, delta int) {
	m.stats.row(ch, "").capUsed += delta
	for _, g := range a.Groups {
		if r := m.stats.row(ch, g); r != nil {
			r.capUsed += delta
		}
	}
}

// --- windows --------------------------------------------------------------

// record adds to the buckets of now in the rows of (ch, group).
func (m *Machine) record(ch capacity.Channel, group string, fn func(*bucket)) {
	m.rowsOf(ch, group, func(r *statRow) {
		if r.ring == nil {
			r.ring = &windowRing{cow: m.cow}
		} else if r.ring.cow != m.cow {
			cp := *r.ring
			cp.cow = m.cow
			r.ring = &cp
		}
		fn(bucketAt(r.ring.minutes[:], minuteWidth, m.now))
		fn(bucketAt(r.ring.long[:], longWidth, m.now))
	})
}

// bucketAt returns the bucket of time t, emptied if it held an older one.
func bucketAt(ring []bucket, width, t int64) *bucket {
	start := t - t%width
	b := &ring[(t/width)%int64(len(ring))]
	if b.start != start {
		*b = bucket{start: start}
	}
	return b
}

func (m *Machine) statCreated(c *Conversation) {
	m.record(c.Channel, c.Group, func(b *bucket) { b.created++ })
}

// statFirstAssigned records a conversation's first assignment and its wait.
func (m *Machine) statFirstAssigned(c *Conversation) {
	wait := float64(m.now-c.QueuedAt) / 1000
	within := m.now-c.QueuedAt <= m.policy.Stats.ServiceLevelTarget.Milliseconds()
	bin := len(waitBounds)
	for i, ub := range waitBounds {
		if wait <= ub {
			bin = i
			break
		}
	}
	m.record(c.Channel, c.Group, func(b *bucket) {
		b.assigned++
		b.waits[bin]++
		if within {
			b.withinTarget++
		}
	})
}

func (m *Machine) statEnded(c *Conversation, reason string) {
	i := slices.Index(endedReasons, reason)
	m.record(c.Channel, c.Group, func(b *bucket) {
		if c.Missed {
			b.missed++
		}
		if i >= 0 {
			b.ended[i]++
		}
	})
}

// --- reading --------------------------------------------------------------

// StatsNow is one row of what is happening now.
type StatsNow struct {
	Channel        capacity.Channel
	Group          string
	Waiting        int
	OldestQueuedAt int64 // 0 when nothing waits
	Offered        int
	Assigned       int
	WrapUp         int
	CapacityUsed   int
	CapacityTotal  int
	Agents         [numStatuses]int // by AgentStatus
}

// StatsWindow is one row of one window.
type StatsWindow struct {
	Window       time.Duration
	Channel      capacity.Channel
	Group        string
	Created      int
	Assigned     int
	Missed       int
	Ended        map[string]int // by reason
	WaitP50      float64        // seconds, from the wait histogram
	WaitP90      float64
	ServiceLevel float64 // first assignments within target / (first assignments + missed); -1 without any
}

// Stats reads every row, channels in order and the channel's own row ("")
// before its groups (by name).
func (m *Machine) Stats() ([]StatsNow, []StatsWindow) {
	keys := make([]statKey, 0, len(m.stats.rows))
	for k := range m.stats.rows {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b statKey) int {
		if a.ch != b.ch {
			return int(a.ch) - int(b.ch)
		}
		return strings.Compare(a.group, b.group)
	})
	// The queue by group; the channel's row ("") sums every group and the
	// conversations of none.
	waiting := map[statKey]QueueGroup{}
	for _, g := range m.QueueGroups() {
		if g.Group != "" {
			waiting[statKey{g.Channel, g.Group}] = g
		}
		all := waiting[statKey{g.Channel, ""}]
		all.Waiting += g.Waiting
		if all.OldestQueuedAt == 0 || g.OldestQueuedAt < all.OldestQueuedAt {
			all.OldestQueuedAt = g.OldestQueuedAt
		}
		waiting[statKey{g.Channel, ""}] = all
	}
	now := make([]StatsNow, 0, len(keys))
	var windows []StatsWindow
	for _, k := range keys {
		r := m.stats.rows[k]
		w := waiting[k]
		now = append(now, StatsNow{Channel: k.ch, Group: k.group, Waiting: w.Waiting, OldestQueuedAt: w.OldestQueuedAt,
			Offered: r.offered, Assigned: r.assigned, WrapUp: r.wrapUp, CapacityUsed: r.capUsed, CapacityTotal: r.capTotal, Agents: r.agents})
		for _, d := range StatWindows {
			windows = append(windows, m.window(r, k, d))
		}
	}
	return now, windows
}

func (m *Machine) window(r *statRow, k statKey, d time.Duration) StatsWindow {
	w := StatsWindow{Window: d, Channel: k.ch, Group: k.group, Ended: map[string]int{}, ServiceLevel: -1}
	if r.ring == nil {
		return w
	}
	ring, width := r.ring.minutes[:], minuteWidth
	if d > time.Duration(minuteBuckets*minuteWidth)*time.Millisecond {
		ring, width = r.ring.long[:], longWidth
	}
	from := m.now - d.Milliseconds()
	var waits [numWaitBins]uint32
	within := 0
	for i := range ring {
		b := &ring[i]
		if b.start == 0 || b.start+width <= from || b.start > m.now {
			continue
		}
		w.Created += int(b.created)
		w.Assigned += int(b.assigned)
		w.Missed += int(b.missed)
		within += int(b.withinTarget)
		for j, n := range b.ended {
			if n > 0 {
				w.Ended[endedReasons[j]] += int(n)
			}
		}
		for j, n := range b.waits {
			waits[j] += n
		}
	}
	w.WaitP50, w.WaitP90 = quantile(&waits, 0.5), quantile(&waits, 0.9)
	if total := w.Assigned + w.Missed; total > 0 {
		w.ServiceLevel = float64(within) / float64(total)
	}
	return w
}

// quantile estimates the q-quantile of a wait histogram, interpolating in
// the bin it falls in (0 when empty).
func quantile(h *[numWaitBins]uint32, q float64) float64 {
	var total uint32
	for _, n := range h {
		total += n
	}
	if total == 0 {
		return 0
	}
	rank := q * float64(total)
	var seen float64
	for i, n := range h {
		if n == 0 {
			continue
		}
		if seen+float64(n) >= rank {
			lo := 0.0
			if i > 0 {
				lo = waitBounds[i-1]
			}
			hi := lo * 2
			if i < len(waitBounds) {
				hi = waitBounds[i]
			}
			return lo + (hi-lo)*(rank-seen)/float64(n)
		}
		seen += float64(n)
	}
	return waitBounds[len(waitBounds)-1]
}

// --- snapshot -------------------------------------------------------------

// sortedKeys lists the rows' keys by channel, then group.
func (s *statsIndex) sortedKeys() []statKey {
	keys := make([]statKey, 0, len(s.rows))
	for k := range s.rows {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b statKey) int {
		if a.ch != b.ch {
			return int(a.ch) - int(b.ch)
		}
		return strings.Compare(a.group, b.group)
	})
	return keys
}

// encodeStats writes every row's key and used buckets; the counters of now
// are derived from agents and conversations when the snapshot is read.
func encodeStats(e *wire.Encoder, s *statsIndex) {
	keys := s.sortedKeys()
	e.Uvarint(uint64(len(keys)))
	for _, k := range keys {
		e.Byte(byte(k.ch))
		e.String(k.group)
		r := s.rows[k]
		e.Bool(r.ring != nil)
		if r.ring == nil {
			continue
		}
		for _, ring := range [][]bucket{r.ring.minutes[:], r.ring.long[:]} {
			used := 0
			for i := range ring {
				if ring[i].start != 0 {
					used++
				}
			}
			e.Uvarint(uint64(used))
			for i := range ring {
				if b := &ring[i]; b.start != 0 {
					e.Uvarint(uint64(i))
					e.Varint(b.start)
					e.Uvarint(uint64(b.created))
					e.Uvarint(uint64(b.assigned))
					e.Uvarint(uint64(b.missed))
					e.Uvarint(uint64(b.withinTarget))
					for _, n := range b.ended {
						e.Uvarint(uint64(n))
					}
					for _, n := range b.waits {
						e.Uvarint(uint64(n))
					}
				}
			}
		}
	}
}

func decodeStats(d *wire.Decoder, m *Machine) {
	n := d.Len(d.Remaining())
	var prev statKey
	for i := 0; i < n && d.Err() == nil; i++ {
		k := statKey{ch: capacity.Channel(d.Byte()), group: d.String()}
		if !k.ch.Valid() {
			d.Fail("stats: bad channel")
			return
		}
		if i > 0 && (k.ch < prev.ch || k.ch == prev.ch && k.group <= prev.group) {
			d.Fail("stats rows out of order")
			return
		}
		prev = k
		r := m.stats.row(k.ch, k.group)
		if r == nil {
			d.Fail("stats: more than %d groups on %s", MaxStatGroups, k.ch)
			return
		}
		if !d.Bool() {
			continue
		}
		r.ring = &windowRing{cow: m.cow}
		for _, ring := range [][]bucket{r.ring.minutes[:], r.ring.long[:]} {
			used := d.Len(len(ring))
			for j := 0; j < used && d.Err() == nil; j++ {
				slot := d.Uvarint()
				if slot >= uint64(len(ring)) {
					d.Fail("stats: bucket %d of %d", slot, len(ring))
					return
				}
				b := &ring[slot]
				b.start = d.Varint()
				b.created, b.assigned, b.missed, b.withinTarget = readU32(d), readU32(d), readU32(d), readU32(d)
				for x := range b.ended {
					b.ended[x] = readU32(d)
				}
				for x := range b.waits {
					b.waits[x] = readU32(d)
				}
			}
		}
	}
}

func readU32(d *wire.Decoder) uint32 {
	v := d.Uvarint()
	if v > 1<<32-1 {
		d.Fail("counter %d out of range", v)
	}
	return uint32(v)
}

// rebuildStats derives the counters of now from agents and conversations.
func (m *Machine) rebuildStats() {
	m.Conversations(func(c *Conversation) bool {
		m.heldStat(c, 1)
		return true
	})
	m.agents.Ascend(func(r agentRef) bool {
		m.agentStat(r.a, 1)
		return true
	})
}

// checkStats compares the counters of now with a count from scratch.
func (m *Machine) checkStats(bad func(string, ...any)) {
	want := &Machine{stats: newStatsIndex(), agents: m.agents, convs: m.convs}
	for k := range m.stats.rows { // the same rows, so that the cap decides nothing
		want.stats.row(k.ch, k.group)
	}
	want.rebuildStats()
	for k, r := range m.stats.rows {
		w := want.stats.rows[k]
		if w == nil {
			bad("stats row %s/%q has no reason to exist", k.ch, k.group)
			continue
		}
		got, exp := *r, *w
		got.ring, exp.ring = nil, nil
		if got != exp {
			bad("stats row %s/%q: %+v, counted %+v", k.ch, k.group, got, exp)
		}
	}
	if len(want.stats.rows) != len(m.stats.rows) {
		bad("stats: %d rows, counting makes %d", len(m.stats.rows), len(want.stats.rows))
	}
}
