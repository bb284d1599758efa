package routing

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestEventLogModel drives logs and their clones with random appends of
// events of random sizes and compares each with a plain slice: a clone and
// its original never see each other's later events, trimming by count and
// by bytes keeps the newest (at least one), lookups by id start at the
// right event.
func TestEventLogModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	type pair struct {
		log   eventLog
		model []Event
		next  uint64
		limit EventLimits
	}
	logs := []*pair{{next: 1, limit: EventLimits{Count: 3*fifoChunkLen + 17, Bytes: 200 * 300}}}
	for step := range 20000 {
		p := logs[rng.IntN(len(logs))]
		switch r := rng.IntN(100); {
		case r < 2 && len(logs) < 8: // clone
			cl := &pair{log: p.log.clone(), model: append([]Event(nil), p.model...), next: p.next, limit: p.limit}
			logs = append(logs, cl)
		case r < 3: // clear, as a restore does
			p.log.clear()
			p.model = nil
		default:
			for range 1 + rng.IntN(2*fifoChunkLen) {
				e := Event{ID: p.next, Type: "t", ConversationID: string(make([]byte, rng.IntN(400)))}
				if rng.IntN(1000) == 0 {
					e.ConversationID = string(make([]byte, 100_000)) // alone beyond the byte limit
				}
				p.next++
				p.log.push(e, p.limit, nil)
				p.model = append(p.model, e)
				for len(p.model) > 1 && (len(p.model) > p.limit.Count || modelBytes(p.model) > p.limit.Bytes) {
					p.model = p.model[1:]
				}
			}
		}
		for i, q := range logs {
			if q.log.bytes != modelBytes(q.model) {
				t.Fatalf("step %d log %d: %d bytes, model %d", step, i, q.log.bytes, modelBytes(q.model))
			}
			if q.log.Len() != len(q.model) {
				t.Fatalf("step %d log %d: %d events, model %d", step, i, q.log.Len(), len(q.model))
			}
			if len(q.model) == 0 {
				if _, ok := q.log.first(); ok {
					t.Fatalf("step %d log %d: empty log has a first event", step, i)
				}
				continue
			}
			if f, _ := q.log.first(); f.ID != q.model[0].ID {
				t.Fatalf("step %d log %d: first %d, model %d", step, i, f.ID, q.model[0].ID)
			}
			if l, _ := q.log.last(); l.ID != q.model[len(q.model)-1].ID {
				t.Fatalf("step %d log %d: last %d, model %d", step, i, l.ID, q.model[len(q.model)-1].ID)
			}
			from := q.model[0].ID - 2 + uint64(rng.IntN(len(q.model)+4))
			var got []uint64
			q.log.ascendFrom(from, func(e *Event) bool { got = append(got, e.ID); return len(got) < 300 })
			var want []uint64
			for _, e := range q.model {
				if e.ID >= from && len(want) < 300 {
					want = append(want, e.ID)
				}
			}
			if !slices.Equal(got, want) {
				t.Fatalf("step %d log %d: from %d got %d events (%v...), want %d", step, i, from, len(got), got[:min(3, len(got))], len(want))
			}
		}
	}
}

func modelBytes(es []Event) int64 {
	var n int64
	for i := range es {
		n += EventSize(&es[i])
	}
	return n
}
