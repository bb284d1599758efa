package api

import (
	"sync/atomic"

	"github.com/omnirouter/omnirouter/routing"
)

// eventCache keeps the JSON of recent events, encoded once for all their
// readers: a thousand long-polls that follow the log would otherwise
// encode every event a thousand times, and that work, not the waking,
// took the CPU that writes needed. Slots are chosen by event id; an event
// larger than maxCachedEvent is encoded for each reader and not kept, so
// the cache holds at most eventCacheSlots × maxCachedEvent bytes.
type eventCache struct {
	slots [eventCacheSlots]atomic.Pointer[cachedEvent]
}

const (
	eventCacheSlots = 4096
	maxCachedEvent  = 16 << 10
)

// cachedEvent is one event's JSON, with what identifies the event: after
// a restore an id may come back for another event, which then differs in
// its time (the clock only moves forward) if not in its type or subject.
type cachedEvent struct {
	id             uint64
	at             int64
	typ            string
	conversationID string
	agentID        string
	json           []byte
}

func (c *cachedEvent) is(e *routing.Event) bool {
	return c.id == e.ID && c.at == e.At && c.typ == e.Type && c.conversationID == e.ConversationID && c.agentID == e.AgentID
}

// encode returns e's JSON, which the caller must not modify.
func (ec *eventCache) encode(e *routing.Event) ([]byte, error) {
	slot := &ec.slots[e.ID%eventCacheSlots]
	if c := slot.Load(); c != nil && c.is(e) {
		return c.json, nil
	}
	b, err := EventJSON(e)
	if err != nil {
		return nil, err
	}
	if len(b) <= maxCachedEvent {
		slot.Store(&cachedEvent{id: e.ID, at: e.At, typ: e.Type, conversationID: e.ConversationID, agentID: e.AgentID, json: b})
	}
	return b, nil
}
