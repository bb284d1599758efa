// Package routing is omnirouter's deterministic state machine: agents,
// conversations and their session lifecycle, the queue, matching and offers,
// reopening and transcripts, idempotency keys and the event log.
//
// A Machine changes only through Apply, which takes the leader's time with
// each command. It never reads the clock, starts no goroutine, uses no
// randomness and never iterates a Go map: every choice walks an ordered index
// with a total tie-breaker. Two machines fed the same commands therefore hold
// byte-identical snapshots, which is what lets the cluster replicate it.
//
// Timers are state. Each conversation stores its deadlines, and a deadline
// index ordered by (time, owner, id, timer) answers what is due; every Apply
// first fires whatever is due at its time, and the Tick command exists only to
// advance time when nothing else happens.
//
// A Machine is not safe for concurrent use, but Clone is O(1) and the clone
// may be read (and snapshotted) while the original keeps applying: agents and
// conversations are copied on first write after a clone.
package routing

import (
	"errors"
	"slices"
	"strconv"

	"github.com/google/btree"

	"github.com/omnirouter/omnirouter/capacity"
)

// EventLimits bound the event log that readers resume from: the oldest
// events go as soon as either bound is exceeded (the newest event always
// stays). They are replicated state, set by SetEventLimits.
type EventLimits struct {
	Count int
	Bytes int64
}

// DefaultEventLimits keep 100,000 events or 256 MiB of them.
var DefaultEventLimits = EventLimits{Count: 100_000, Bytes: 256 << 20}

// Validate checks the limits' bounds.
func (l EventLimits) Validate() error {
	if err := l.validate(); err != nil {
		return err
	}
	return nil
}

func (l EventLimits) validate() *Error {
	if l.Count < 1 || l.Count > MaxEventCount || l.Bytes < MinEventBytes || l.Bytes > MaxEventBytes {
		return invalidf("invalid_event_limits", "event retention must be 1..%d events and %d..%d bytes, got %d and %d",
			MaxEventCount, MinEventBytes, MaxEventBytes, l.Count, l.Bytes)
	}
	return nil
}

// Bounds of EventLimits.
const (
	MaxEventCount = 10_000_000
	MinEventBytes = 64 << 10
	MaxEventBytes = 64 << 30
)

// cowToken marks which Machine owns an agent or conversation: an item owned
// by another token is shared with a clone and must be copied before writing;
// an item with no token (nil) has been handed out in an outcome and is
// never written again by anyone.
type cowToken struct{ _ byte }

const btreeDegree = 32

// Machine is the routing state machine.
type Machine struct {
	now    int64
	policy Policy

	agents  *btree.BTreeG[agentRef]
	convs   *btree.BTreeG[convRef]
	queue   [capacity.NumChannels]*btree.BTreeG[queueKey]    // one per channel: capacity is per channel
	classes [capacity.NumChannels]*btree.BTreeG[*queueClass] // the queue by requirement (queue.go)
	// spareClass is the class that emptied last, for the next new class to
	// reuse (never a clone's: a clone gets copies of the classes, and none
	// of this); classProbe is the value class lookups search with.
	spareClass *queueClass
	classProbe queueClass
	deadlines  *btree.BTreeG[deadlineKey]
	avail      [capacity.NumChannels]*btree.BTreeG[availKey]
	// ended lists the ended conversations by when they ended: the first
	// one is pruned at its EndedAt plus retention.ended.
	ended       *btree.BTreeG[endedKey]
	events      eventLog
	eventLimits EventLimits
	stats       *statsIndex // real-time statistics (stats.go)
	// webhooks are the subscriptions by id (webhooks.go); webhookFloor is
	// their lowest cursor, so that retention dropping an event every
	// subscription is past costs one comparison.
	webhooks       *btree.BTreeG[Webhook]
	webhookFloor   uint64
	nextWebhookSeq uint64

	// keys holds the idempotency records in the order they were stored,
	// which is the order they expire in (each expires a retention period
	// after the clock, which only moves forward), so expiry drops them
	// from the front. A key stored again after its record expired is in
	// it twice; the later record is the key's. keyByName finds a key's
	// record. (B-trees by key and by expiry would cost two random-position
	// inserts in 200k-entry trees per keyed command.)
	keys      fifo[*keyRecord]
	keyByName map[string]*keyRecord

	// convByID finds a conversation by id; convs (in arrival order) is the
	// source of truth: ordered for snapshots, cloned in O(1). Only looked
	// up, never iterated, so it cannot make replicas differ.
	//
	// A clone has neither map (nil): the cluster only writes snapshots
	// from one. CheckInvariants on a clone finds conversations by a scan.
	convByID map[string]*Conversation
	// agentByID is to agents what convByID is to convs (an agent lookup
	// came to 5% of applying a lifecycle's commands as a B-tree search).
	agentByID map[string]*Agent

	nextEventID uint64 // id of the next event
	nextSeq     uint64 // arrival sequence of the next conversation
	nextTicket  uint64 // number of the next ticket

	cow *cowToken
	// forked: a fork (fork), applied to while the machine it was forked
	// from goes on.
	forked bool

	// Per-apply scratch, empty between applies.
	collectEvents bool // this apply returns its events: emit keeps copies
	emitted       []Event
	loadChanged   []string // agents whose load or capacity changed in this apply
	match         matchWork
}

// convRef is an item of the conversation index, which keeps conversations
// in arrival order (Seq, assigned by Apply and never changed): a new
// conversation goes at the end of the B-tree, along a path that stays in
// the cache, where a position by id (or by a hash of it) is a descent
// through cold nodes on every create (such inserts into a 250k-entry index
// measured a third of a follower's create). Lookups by id go through
// convByID. The order is the same on every replica.
type convRef struct {
	seq uint64
	c   *Conversation
}

func convLess(a, b convRef) bool { return a.seq < b.seq }

// agentRef is an item of the agent index: a small value, so that a
// lookup probe does not allocate.
type agentRef struct {
	id string
	a  *Agent
}

// queueKey orders the queue: priority (higher first), then eligibility time
// (oldest first), then arrival sequence.
type queueKey struct {
	Priority int
	QueuedAt int64
	Seq      uint64
	ID       string
}

func queueLess(a, b queueKey) bool {
	if a.Priority != b.Priority {
		return a.Priority > b.Priority
	}
	if a.QueuedAt != b.QueuedAt {
		return a.QueuedAt < b.QueuedAt
	}
	if a.Seq != b.Seq {
		return a.Seq < b.Seq
	}
	return a.ID < b.ID
}

// deadline owners
const (
	ownerConversation uint8 = iota
	ownerAgent
)

// deadlineKey is one armed timer.
type deadlineKey struct {
	At    int64
	Owner uint8
	ID    string
	Timer timer
}

func deadlineLess(a, b deadlineKey) bool {
	if a.At != b.At {
		return a.At < b.At
	}
	if a.Owner != b.Owner {
		return a.Owner < b.Owner
	}
	if a.ID != b.ID {
		return a.ID < b.ID
	}
	return a.Timer < b.Timer
}

// availKey orders the agents routing may give work on one channel (online,
// spare capacity), best first under the current strategy.
type availKey struct {
	Primary   int64
	Secondary int64
	ID        string
}

func availLess(a, b availKey) bool {
	if a.Primary != b.Primary {
		return a.Primary < b.Primary
	}
	if a.Secondary != b.Secondary {
		return a.Secondary < b.Secondary
	}
	return a.ID < b.ID
}

// endedKey orders the ended conversations: by end time, then arrival.
type endedKey struct {
	At  int64
	Seq uint64
}

func endedLess(a, b endedKey) bool {
	if a.At != b.At {
		return a.At < b.At
	}
	return a.Seq < b.Seq
}

// keyRecord is a client key and what a retry needs of the first result:
// whether it was refused (and why), the assignment it made, and the
// conversation or agent it was about. A retry is answered with their
// current state. A record of a conversation that has since been pruned
// (its id may be in use again, by another arrival) is void.
type keyRecord struct {
	Key        string
	Kind       Kind
	Target     string
	ExpireAt   int64
	Err        *Error
	Assignment *Assignment
	ConvID     string // the conversation the outcome carried, if any
	ConvSeq    uint64 // its arrival sequence
	AgentID    string // the agent the outcome carried, if any
}

// live reports whether the record's conversation is still the one it was
// about.
func (m *Machine) recordLive(rec *keyRecord) bool {
	if rec.ConvID == "" {
		return true
	}
	c := m.getConv(rec.ConvID)
	return c != nil && c.Seq == rec.ConvSeq
}

// replay is the answer a record gives a retry.
func (rec *keyRecord) replay() Outcome {
	out := Outcome{Replayed: true, ConversationID: rec.ConvID, AgentID: rec.AgentID}
	if rec.Err != nil {
		out.Err = rec.Err
	}
	if rec.Assignment != nil {
		a := *rec.Assignment
		out.Assignment = &a
	}
	return out
}

// newKeyRecord keeps what a retry of cmd needs of out.
func newKeyRecord(key string, cmd Command, expireAt int64, out *Outcome) *keyRecord {
	rec := &keyRecord{Key: key, Kind: cmd.Kind(), Target: cmd.target(), ExpireAt: expireAt}
	var derr *Error
	if errors.As(out.Err, &derr) {
		rec.Err = derr
	}
	if out.Assignment != nil {
		a := *out.Assignment
		rec.Assignment = &a
	}
	if c := out.Conversation; c != nil {
		rec.ConvID, rec.ConvSeq = c.ID, c.Seq
	}
	if a := out.Agent; a != nil {
		rec.AgentID = a.ID
	}
	return rec
}

// New returns an empty machine with the default policy.
func New() *Machine {
	m := &Machine{
		policy:         DefaultPolicy(),
		agents:         btree.NewG(btreeDegree, func(a, b agentRef) bool { return a.id < b.id }),
		convs:          btree.NewG(btreeDegree, convLess),
		deadlines:      btree.NewG(btreeDegree, deadlineLess),
		ended:          btree.NewG(btreeDegree, endedLess),
		eventLimits:    DefaultEventLimits,
		stats:          newStatsIndex(),
		webhooks:       newWebhookIndex(),
		convByID:       map[string]*Conversation{},
		agentByID:      map[string]*Agent{},
		keyByName:      map[string]*keyRecord{},
		nextEventID:    1,
		nextSeq:        1,
		nextTicket:     1,
		nextWebhookSeq: 1,
		cow:            &cowToken{},
	}
	for ch := range m.avail {
		m.avail[ch] = btree.NewG(btreeDegree, availLess)
		m.queue[ch] = btree.NewG(btreeDegree, queueLess)
		m.classes[ch] = newClassIndex()
	}
	return m
}

// Clone returns a frozen copy of the machine in O(1). The copy may be read
// and snapshotted concurrently with further Applies on m; it must not itself
// be applied to. Clone must not run concurrently with Apply.
func (m *Machine) Clone() *Machine {
	c := *m
	c.agents = m.agents.Clone()
	c.convs = m.convs.Clone()
	c.deadlines = m.deadlines.Clone()
	c.ended = m.ended.Clone()
	c.stats = m.stats.clone()
	c.webhooks = m.webhooks.Clone()
	for ch := range m.avail {
		c.avail[ch] = m.avail[ch].Clone()
		c.queue[ch] = m.queue[ch].Clone()
		c.classes[ch] = cloneClasses(m.classes[ch])
	}
	c.keys = m.keys.clone()
	c.events = m.events.clone()
	c.emitted, c.loadChanged, c.spareClass = nil, nil, nil
	c.convByID, c.keyByName, c.agentByID = nil, nil, nil // they belong to m, which goes on changing
	// Both sides get new tokens: every item that exists now is shared and is
	// copied by whichever side writes it first.
	c.cow = &cowToken{}
	m.cow = &cowToken{}
	return &c
}

// Now is the state machine's clock (unix ms): the largest `at` applied.
func (m *Machine) Now() int64 { return m.now }

// Policy returns the current policy.
func (m *Machine) Policy() Policy { return m.policy }

// NextDeadline returns the earliest armed deadline or pruning, if any. The
// leader proposes a Tick when it is due.
func (m *Machine) NextDeadline() (int64, bool) {
	d, ok := m.deadlines.Min()
	if p, pok := m.nextPrune(); pok && (!ok || p < d.At) {
		return p, true
	}
	return d.At, ok
}

// nextPrune is when the oldest ended conversation is due to be pruned.
func (m *Machine) nextPrune() (int64, bool) {
	k, ok := m.ended.Min()
	return k.At + m.policy.Retention.Ended.Milliseconds(), ok
}

// pruneDue prunes every ended conversation whose retention is over now.
func (m *Machine) pruneDue() {
	for p, ok := m.nextPrune(); ok && p <= m.now; p, ok = m.nextPrune() {
		m.prune()
	}
}

// prune removes the ended conversation that ended first. Pruning emits no
// event: the conversation.ended event already told everything.
func (m *Machine) prune() {
	k, _ := m.ended.DeleteMin()
	r, ok := m.convs.Delete(convRef{seq: k.Seq})
	if !ok {
		return
	}
	c := r.c
	for t, at := range c.deadlines {
		if at != 0 {
			m.deadlines.Delete(deadlineKey{At: at, Owner: ownerConversation, ID: c.ID, Timer: timer(t)})
		}
	}
	if m.convByID != nil && m.convByID[c.ID] == c {
		delete(m.convByID, c.ID)
	}
}

// Conversation returns a copy of a conversation.
func (m *Machine) Conversation(id string) (Conversation, bool) {
	c := m.getConv(id)
	if c == nil {
		return Conversation{}, false
	}
	return *c, true
}

// Agent returns a copy of an agent.
func (m *Machine) Agent(id string) (Agent, bool) {
	a := m.getAgent(id)
	if a == nil {
		return Agent{}, false
	}
	return *a, true
}

// Agents returns every agent, ordered by id.
func (m *Machine) Agents() []Agent {
	out := make([]Agent, 0, m.agents.Len())
	m.agents.Ascend(func(r agentRef) bool {
		out = append(out, *r.a)
		return true
	})
	return out
}

// AgentsAfter returns up to limit agents by id after the id after ("": from
// the first), and whether more follow.
func (m *Machine) AgentsAfter(after string, limit int) (page []Agent, more bool) {
	m.agents.AscendGreaterOrEqual(agentRef{id: after}, func(r agentRef) bool {
		if r.id == after {
			return true
		}
		if len(page) == limit {
			more = true
			return false
		}
		page = append(page, *r.a)
		return true
	})
	return page, more
}

// AgentCount and ConversationCount size the state, for metrics.
func (m *Machine) AgentCount() int        { return m.agents.Len() }
func (m *Machine) ConversationCount() int { return m.convs.Len() }

// Sizes counts what the state holds, for metrics and the load tool.
type Sizes struct {
	Agents        int
	Conversations int // live and ended
	Ended         int // ended, kept for retention.ended
	Queued        int
	Events        int
	EventBytes    int64 // the event log's size as its limit counts it
	Keys          int   // idempotency records
}

// Sizes counts what the state holds.
func (m *Machine) Sizes() Sizes {
	return Sizes{Agents: m.agents.Len(), Conversations: m.convs.Len(), Ended: m.ended.Len(), Queued: m.QueueLen(),
		Events: m.events.Len(), EventBytes: m.events.bytes, Keys: m.keys.Len()}
}

// EventLimits returns the event log's bounds.
func (m *Machine) EventLimits() EventLimits { return m.eventLimits }

// Conversations calls fn for every conversation until fn returns false, in
// arrival order (the same on every replica). fn must not keep or modify the
// pointer.
func (m *Machine) Conversations(fn func(*Conversation) bool) {
	m.convs.Ascend(func(r convRef) bool { return fn(r.c) })
}

// Queue returns every queued conversation in routing order, each with its
// position in its channel's queue.
func (m *Machine) Queue() []QueueEntry { return m.QueueItems(QueueFilter{}) }

// QueueLen is the number of queued conversations.
func (m *Machine) QueueLen() int {
	n := 0
	for _, q := range m.queue {
		n += q.Len()
	}
	return n
}

// ChannelQueueLen is the number of queued conversations on one channel.
func (m *Machine) ChannelQueueLen(ch capacity.Channel) int { return m.queue[ch].Len() }

// LastEventID is the id of the newest event (0 if none yet).
func (m *Machine) LastEventID() uint64 { return m.nextEventID - 1 }

// FirstRetainedEventID is the oldest event still kept (LastEventID()+1 when
// none is kept).
func (m *Machine) FirstRetainedEventID() uint64 {
	if e, ok := m.events.first(); ok {
		return e.ID
	}
	return m.nextEventID
}

// ErrEventsExpired: the events after the requested id are no longer all
// retained; the reader must resynchronise from current state.
var ErrEventsExpired = &Error{Class: ErrNotFound, Code: "events_expired", Message: "events after this id are no longer retained"}

// Events returns up to max events with id > after, oldest first. It fails
// with ErrEventsExpired when some of them are no longer retained.
func (m *Machine) Events(after uint64, max int) ([]Event, error) {
	var out []Event
	err := m.EachEvent(after, func(e *Event) bool {
		out = append(out, *e)
		return len(out) < max
	})
	return out, err
}

// EachEvent calls fn on the events with id > after, oldest first, until fn
// returns false; fn must not keep or modify the event. Like Events, it
// fails with ErrEventsExpired when some of them are no longer retained.
func (m *Machine) EachEvent(after uint64, fn func(*Event) bool) error {
	if after+1 < m.FirstRetainedEventID() {
		return ErrEventsExpired
	}
	m.events.ascendFrom(after+1, fn)
	return nil
}

// --- copy-on-write access -------------------------------------------------

func (m *Machine) getConv(id string) *Conversation {
	if m.convByID != nil {
		return m.convByID[id]
	}
	return m.scanConv(id) // a clone
}

// scanConv finds a conversation by id without the lookup map.
func (m *Machine) scanConv(id string) *Conversation {
	var found *Conversation
	m.convs.Ascend(func(r convRef) bool {
		if r.c.ID == id {
			found = r.c
		}
		return found == nil
	})
	return found
}

// putConv adds or replaces a conversation in the index and reports whether
// one with its arrival sequence was there.
func (m *Machine) putConv(c *Conversation) (replaced bool) {
	_, replaced = m.convs.ReplaceOrInsert(convRef{seq: c.Seq, c: c})
	if m.convByID != nil {
		m.convByID[c.ID] = c
	}
	return replaced
}

// getKey returns an idempotency key's record, if any. Only Apply looks
// keys up, and never on a clone.
func (m *Machine) getKey(key string) *keyRecord { return m.keyByName[key] }

// putKey stores rec as its key's record.
func (m *Machine) putKey(rec *keyRecord) {
	m.keys.push(rec)
	m.keyByName[rec.Key] = rec
}

// expireKeys drops the records that expired by m.now, oldest first.
func (m *Machine) expireKeys() {
	for m.keys.Len() > 0 {
		rec := *m.keys.at(0)
		if rec.ExpireAt > m.now {
			// Normally every record behind it expires later. If the
			// retention was shortened, a later record may already have
			// expired: it stays until those before it go, and Apply
			// ignores it meanwhile (it checks ExpireAt).
			return
		}
		m.keys.dropOldest()
		if m.keyByName[rec.Key] == rec { // not since stored again
			delete(m.keyByName, rec.Key)
		}
	}
}

func (m *Machine) getAgent(id string) *Agent {
	if m.agentByID != nil {
		return m.agentByID[id]
	}
	r, _ := m.agents.Get(agentRef{id: id}) // a clone
	return r.a
}

// putAgent adds or replaces an agent in the index.
func (m *Machine) putAgent(a *Agent) {
	m.agents.ReplaceOrInsert(agentRef{a.ID, a})
	if m.agentByID != nil {
		m.agentByID[a.ID] = a
	}
}

// deleteAgent removes an agent from the index.
func (m *Machine) deleteAgent(id string) {
	m.agents.Delete(agentRef{id: id})
	delete(m.agentByID, id)
}

// writableConv returns a conversation this machine may modify: the item
// itself if it owns it, otherwise a copy that replaces it in the index.
func (m *Machine) writableConv(c *Conversation) *Conversation {
	if c.cow == m.cow {
		return c
	}
	cp := *c
	cp.cow = m.cow
	if m.forked {
		// The original may append to the shared transcript's spare room
		// at the same time: this side's next append reallocates.
		cp.Transcript = slices.Clip(cp.Transcript)
	}
	m.putConv(&cp)
	return &cp
}

// freezeConv makes c read-only for this machine: its next write copies it.
// An item this machine does not own is left alone (it is shared with a
// clone, so it is copied on write already, and writing its token here
// would race with the clone's reader).
func (m *Machine) freezeConv(c *Conversation) {
	if c.cow == m.cow {
		c.cow = nil
	}
}

func (m *Machine) freezeAgent(a *Agent) {
	if a.cow == m.cow {
		a.cow = nil
	}
}

func (m *Machine) writableAgent(a *Agent) *Agent {
	if a.cow == m.cow {
		return a
	}
	cp := *a
	cp.cow = m.cow
	m.putAgent(&cp)
	return &cp
}

// convW looks a conversation up for writing.
func (m *Machine) convW(id string) *Conversation {
	if c := m.getConv(id); c != nil {
		return m.writableConv(c)
	}
	return nil
}

// agentW looks an agent up for writing.
func (m *Machine) agentW(id string) *Agent {
	if a := m.getAgent(id); a != nil {
		return m.writableAgent(a)
	}
	return nil
}

// --- small helpers --------------------------------------------------------

// sortedSet returns a sorted copy of ss without duplicates or empty strings.
func sortedSet(ss []string) []string {
	if len(ss) == 0 {
		return nil
	}
	out := slices.Clone(ss)
	slices.Sort(out)
	out = slices.Compact(out)
	if out[0] == "" {
		out = out[1:]
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// withString returns a new sorted slice with s added (never modifies ss,
// which a clone may share).
func withString(ss []string, s string) []string {
	i, found := slices.BinarySearch(ss, s)
	if found {
		return ss
	}
	out := make([]string, 0, len(ss)+1)
	out = append(out, ss[:i]...)
	out = append(out, s)
	return append(out, ss[i:]...)
}

// withoutString returns a new sorted slice with s removed.
func withoutString(ss []string, s string) []string {
	i, found := slices.BinarySearch(ss, s)
	if !found {
		return ss
	}
	if len(ss) == 1 {
		return nil
	}
	out := make([]string, 0, len(ss)-1)
	out = append(out, ss[:i]...)
	return append(out, ss[i+1:]...)
}

func containsAll(have, want []string) bool {
	for _, w := range want {
		if _, ok := slices.BinarySearch(have, w); !ok {
			return false
		}
	}
	return true
}

func contains(ss []string, s string) bool {
	_, ok := slices.BinarySearch(ss, s)
	return ok
}

func ticketID(n uint64) string { return "t" + strconv.FormatUint(n, 10) }

// ContinueEventsAfter makes a machine restored from a backup carry on the
// event ids of the machine it replaces, whose readers have seen ids up to
// last: ids must keep increasing. The backup's retained events belong to
// another history and are dropped, so a reader resuming from an older id
// is told to resynchronise (ErrEventsExpired) instead of being fed them.
func (m *Machine) ContinueEventsAfter(last uint64) {
	m.nextEventID = max(m.nextEventID, last+1)
	if drop := m.dropEvents(); drop != nil {
		m.events.q.each(0, func(e *Event) bool {
			drop(e)
			return true
		})
	}
	m.events.clear()
	m.webhooksAfterRestore()
}
