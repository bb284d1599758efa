package routing

import (
	"slices"
	"strings"

	"github.com/google/btree"

	"github.com/omnirouter/omnirouter/capacity"
)

// The queue is kept twice per channel: one B-tree in routing order (what
// the queue endpoint lists and a full dispatch walks), and one per
// requirement class — conversations needing the same skills and group, and
// equally routable. Whether an agent may take a conversation depends only
// on its class, so "the first queued conversation this agent may take" is
// the best of a few class heads, however long the queue of conversations
// nobody online can take.

// queueClass is the queued conversations of one channel sharing one
// requirement.
type queueClass struct {
	key      string
	skills   []string // every one required
	groups   []string // one required (none: any agent)
	group    string   // the conversations' primary group, for sums by group
	routable bool
	queue    *btree.BTreeG[queueKey]
	// byAge is the same conversations by eligibility time: its first is
	// the class's longest wait (the queue's first may be a newer
	// conversation of higher priority).
	byAge *btree.BTreeG[ageKey]
}

// ageKey orders a class's conversations by eligibility time, then arrival.
type ageKey struct {
	QueuedAt int64
	Seq      uint64
}

func ageLess(a, b ageKey) bool {
	if a.QueuedAt != b.QueuedAt {
		return a.QueuedAt < b.QueuedAt
	}
	return a.Seq < b.Seq
}

func newClassIndex() *btree.BTreeG[*queueClass] {
	return btree.NewG(8, func(a, b *queueClass) bool { return a.key < b.key })
}

// cloneClasses copies a class index for a Clone: new class values whose
// queues are copy-on-write clones, so that neither side sees the other's
// writes.
func cloneClasses(t *btree.BTreeG[*queueClass]) *btree.BTreeG[*queueClass] {
	out := newClassIndex()
	t.Ascend(func(cl *queueClass) bool {
		cp := *cl
		cp.queue = cl.queue.Clone()
		cp.byAge = cl.byAge.Clone()
		out.ReplaceOrInsert(&cp)
		return true
	})
	return out
}

// queueInsert indexes a queued conversation.
func (m *Machine) queueInsert(c *Conversation) {
	k := qkey(c)
	m.queue[c.Channel].ReplaceOrInsert(k)
	m.classProbe.key = classKey(c)
	cl, ok := m.classes[c.Channel].Get(&m.classProbe)
	if !ok {
		// A conversation that is offered as soon as it is created empties
		// its class again at once: the class emptied last is reused
		// rather than a new one and its B-tree allocated for each.
		var q *btree.BTreeG[queueKey]
		var ages *btree.BTreeG[ageKey]
		if cl = m.spareClass; cl != nil {
			q, ages, m.spareClass = cl.queue, cl.byAge, nil
		} else {
			cl, q, ages = &queueClass{}, btree.NewG(btreeDegree, queueLess), btree.NewG(btreeDegree, ageLess)
		}
		*cl = queueClass{key: m.classProbe.key, skills: c.reqSkills(), groups: c.reqGroups(), group: c.Group, routable: ticketOpen(c), queue: q, byAge: ages}
		m.classes[c.Channel].ReplaceOrInsert(cl)
	}
	m.classProbe.key = ""
	cl.queue.ReplaceOrInsert(k)
	cl.byAge.ReplaceOrInsert(ageKey{QueuedAt: c.QueuedAt, Seq: c.Seq})
}

// classOf returns the class of queued conversation c.
func (m *Machine) classOf(c *Conversation) *queueClass {
	m.classProbe.key = classKey(c)
	cl, _ := m.classes[c.Channel].Get(&m.classProbe)
	m.classProbe.key = ""
	return cl
}

// queueDelete removes a conversation from the queue indexes.
func (m *Machine) queueDelete(c *Conversation) {
	k := qkey(c)
	m.queue[c.Channel].Delete(k)
	m.classProbe.key = classKey(c)
	cl, ok := m.classes[c.Channel].Get(&m.classProbe)
	m.classProbe.key = ""
	if ok {
		cl.queue.Delete(k)
		cl.byAge.Delete(ageKey{QueuedAt: c.QueuedAt, Seq: c.Seq})
		if cl.queue.Len() == 0 {
			m.classes[c.Channel].Delete(cl)
			m.spareClass = cl
		}
	}
}

// classEligible reports whether agent a may take the conversations of cl
// (its status and spare capacity aside).
func classEligible(a *Agent, cl *queueClass) bool {
	return cl.routable && containsAll(a.Skills, cl.skills) && (len(cl.groups) == 0 || inAnyGroup(a, cl.groups))
}

// firstEligibleAcross returns the first queued conversation, in routing
// order across channels, that agent a may take now: one queue for an agent
// who takes several channels.
func (m *Machine) firstEligibleAcross(a *Agent) *Conversation {
	var best *Conversation
	for ch := range capacity.NumChannels {
		if c := m.firstEligible(a, ch); c != nil && (best == nil || queueLess(qkey(c), qkey(best))) {
			best = c
		}
	}
	return best
}

// firstEligible returns the first queued conversation on ch, in routing
// order, that agent a may take now.
func (m *Machine) firstEligible(a *Agent, ch capacity.Channel) *Conversation {
	if !m.receives(a, ch) || capacity.Spare(a.Capacity, a.Load, ch) == 0 || !m.focusAllows(a, ch) {
		return nil
	}
	var best queueKey
	found := false
	m.classes[ch].Ascend(func(cl *queueClass) bool {
		if classEligible(a, cl) {
			if head, ok := cl.queue.Min(); ok && (!found || queueLess(head, best)) {
				best, found = head, true
			}
		}
		return true
	})
	if !found {
		return nil
	}
	return m.getConv(best.ID)
}

// QueueGroup is how many conversations wait on one channel for one group
// ("" for none), and since when the longest has.
type QueueGroup struct {
	Channel        capacity.Channel
	Group          string
	Waiting        int
	OldestQueuedAt int64
}

// QueueGroups sums the queue by channel and group, in that order. It costs
// a step per requirement class, not per queued conversation.
func (m *Machine) QueueGroups() []QueueGroup {
	var out []QueueGroup
	for ch := range m.classes {
		start := len(out)
		m.classes[ch].Ascend(func(cl *queueClass) bool {
			oldest, _ := cl.byAge.Min()
			i := slices.IndexFunc(out[start:], func(g QueueGroup) bool { return g.Group == cl.group })
			if i < 0 {
				out = append(out, QueueGroup{Channel: capacity.Channel(ch), Group: cl.group, Waiting: cl.queue.Len(), OldestQueuedAt: oldest.QueuedAt})
				return true
			}
			g := &out[start+i]
			g.Waiting += cl.queue.Len()
			g.OldestQueuedAt = min(g.OldestQueuedAt, oldest.QueuedAt)
			return true
		})
		slices.SortFunc(out[start:], func(a, b QueueGroup) int { return strings.Compare(a.Group, b.Group) })
	}
	return out
}
