package routing

import (
	"container/heap"
	"slices"

	"github.com/omnirouter/omnirouter/capacity"
)

// Lists for readers: conversations by id with filters, and the queue by
// channel and group. They read the state only.

// ConversationFilter selects conversations; a zero field selects any.
type ConversationFilter struct {
	State      State
	HasState   bool
	Channel    capacity.Channel
	HasChannel bool
	AgentID    string
	Group      string
}

func (f *ConversationFilter) match(c *Conversation) bool {
	return (!f.HasState || c.State == f.State) && (!f.HasChannel || c.Channel == f.Channel) &&
		(f.AgentID == "" || c.AgentID == f.AgentID) && (f.Group == "" || c.Group == f.Group)
}

// ListConversations returns the first limit conversations in id order
// with ids after after that match f, and whether more follow. It walks
// every conversation once, keeping the limit+1 smallest ids (a heap):
// callers with a large state run it on a Clone.
func (m *Machine) ListConversations(f ConversationFilter, after string, limit int) (page []Conversation, more bool) {
	h := &idHeap{}
	m.Conversations(func(c *Conversation) bool {
		if c.ID <= after || !f.match(c) {
			return true
		}
		if h.Len() <= limit {
			heap.Push(h, c)
		} else if c.ID < (*h)[0].ID {
			(*h)[0] = c
			heap.Fix(h, 0)
		}
		return true
	})
	found := make([]*Conversation, h.Len())
	copy(found, *h)
	slices.SortFunc(found, func(a, b *Conversation) int {
		if a.ID < b.ID {
			return -1
		}
		return 1
	})
	if len(found) > limit {
		found, more = found[:limit], true
	}
	page = make([]Conversation, len(found))
	for i, c := range found {
		page[i] = *c
	}
	return page, more
}

// idHeap is a max-heap of conversations by id.
type idHeap []*Conversation

func (h idHeap) Len() int           { return len(h) }
func (h idHeap) Less(i, j int) bool { return h[i].ID > h[j].ID }
func (h idHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *idHeap) Push(x any)        { *h = append(*h, x.(*Conversation)) }
func (h *idHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// QueueFilter selects queued conversations; a zero field selects any.
type QueueFilter struct {
	Channel    capacity.Channel
	HasChannel bool
	Group      string
	Limit      int // 0: no limit
}

// QueueItems returns queued conversations in routing order (across
// channels: priority, then eligibility time, then arrival), each with its
// position in its own channel's queue, whatever the filter.
func (m *Machine) QueueItems(f QueueFilter) []QueueEntry {
	var perChannel [capacity.NumChannels][]QueueEntry
	for ch := range capacity.NumChannels {
		if f.HasChannel && ch != f.Channel {
			continue
		}
		pos := 0
		m.queue[ch].Ascend(func(k queueKey) bool {
			pos++
			c := m.getConv(k.ID)
			if f.Group != "" && c.Group != f.Group {
				return true
			}
			perChannel[ch] = append(perChannel[ch], QueueEntry{ID: k.ID, Channel: ch, Priority: k.Priority,
				QueuedAt: k.QueuedAt, Position: pos, Group: c.Group})
			return f.Limit == 0 || len(perChannel[ch]) < f.Limit
		})
	}
	var out []QueueEntry
	var next [capacity.NumChannels]int
	for f.Limit == 0 || len(out) < f.Limit {
		best := -1
		for ch := range perChannel {
			if next[ch] < len(perChannel[ch]) && (best < 0 || entryLess(perChannel[ch][next[ch]], perChannel[best][next[best]])) {
				best = ch
			}
		}
		if best < 0 {
			break
		}
		out = append(out, perChannel[best][next[best]])
		next[best]++
	}
	return out
}

func entryLess(a, b QueueEntry) bool {
	return queueLess(queueKey{a.Priority, a.QueuedAt, 0, a.ID}, queueKey{b.Priority, b.QueuedAt, 0, b.ID})
}
