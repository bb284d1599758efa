package routing

import (
	"fmt"
	"testing"
	"time"

	"github.com/omnirouter/omnirouter/capacity"
)

func statsRow(h *harness, ch capacity.Channel, group string) (StatsNow, map[time.Duration]StatsWindow) {
	h.t.Helper()
	now, windows := h.m.Stats()
	ws := map[time.Duration]StatsWindow{}
	for _, w := range windows {
		if w.Channel == ch && w.Group == group {
			ws[w.Window] = w
		}
	}
	for _, r := range now {
		if r.Channel == ch && r.Group == group {
			return r, ws
		}
	}
	h.t.Fatalf("no stats row %s/%q", ch, group)
	return StatsNow{}, nil
}

func TestStats(t *testing.T) {
	runBehaviours(t, []behaviour{
		{"now: waiting, longest wait, offered, assigned, agents by status, capacity used and total, per channel and group", func(h *harness) {
			h.do(UpsertAgent{ID: "a", Name: "a", Capacity: capacity.Limits{2, 0}, Groups: []string{"sales"}})
			h.do(SetAgentStatus{AgentID: "a", Status: StatusOnline})
			h.do(UpsertAgent{ID: "b", Name: "b", Capacity: capacity.Limits{1, 0}})
			h.do(CreateConversation{ID: "c1", Channel: capacity.Chat, Message: "hi", Group: "sales"}) // offered to a
			h.accept("c1", "a")
			h.do(CreateConversation{ID: "c2", Channel: capacity.Chat, Message: "hi", Group: "sales"}) // offered to a
			h.do(CreateConversation{ID: "c3", Channel: capacity.Chat, Message: "hi", Group: "support"})
			all, _ := statsRow(h, capacity.Chat, "")
			if all.Waiting != 1 || all.OldestQueuedAt != h.now || all.Offered != 1 || all.Assigned != 1 ||
				all.CapacityUsed != 2 || all.CapacityTotal != 2 || all.Agents[StatusOnline] != 1 || all.Agents[StatusOffline] != 1 {
				h.t.Fatalf("chat: %+v", all)
			}
			sales, _ := statsRow(h, capacity.Chat, "sales")
			if sales.Waiting != 0 || sales.Offered != 1 || sales.Assigned != 1 || sales.Agents[StatusOnline] != 1 || sales.CapacityTotal != 2 {
				h.t.Fatalf("chat sales: %+v", sales)
			}
			if support, _ := statsRow(h, capacity.Chat, "support"); support.Waiting != 1 || support.Agents[StatusOnline] != 0 {
				h.t.Fatalf("chat support: %+v", support)
			}
		}},
		{"windows: created, first assignments and their waits, service level, ended by reason, missed", func(h *harness) {
			h.do(SetPolicy{Patch: MustPatch("stats.service_level_target", "20s", "routing.auto_accept", true)})
			h.webChat("c1") // waits 10 s
			h.webChat("c2") // waits 40 s
			h.webChat("c3") // missed
			h.advance(10 * time.Second)
			h.onlineAgent("a", 1, 0) // takes c1
			h.do(End{ConversationID: "c1", By: EndedByVisitor})
			h.advance(30 * time.Second) // c2 has waited 40 s
			h.do(End{ConversationID: "c3", By: EndedByVisitor})
			// c2 goes to a when c1 ends... at 10 s: check what the windows say.
			_, ws := statsRow(h, capacity.Chat, "")
			w := ws[5*time.Minute]
			if w.Created != 3 || w.Assigned != 2 || w.Missed != 1 || w.Ended[ReasonVisitorEnded] != 2 {
				h.t.Fatalf("5m window: %+v", w)
			}
			if w.WaitP50 <= 0 || w.WaitP90 < w.WaitP50 {
				h.t.Fatalf("waits p50 %v p90 %v", w.WaitP50, w.WaitP90)
			}
			if w.ServiceLevel < 0.66 || w.ServiceLevel > 0.67 { // c1 and c2 within 20 s (c2 went at 10 s), c3 missed
				h.t.Fatalf("service level %v", w.ServiceLevel)
			}
			if ws[24*time.Hour].Created != 3 {
				h.t.Fatalf("24h window %+v", ws[24*time.Hour])
			}
			h.advance(10 * time.Minute)
			if _, ws := statsRow(h, capacity.Chat, ""); ws[5*time.Minute].Created != 0 || ws[30*time.Minute].Created != 3 {
				h.t.Fatalf("after 10 minutes: 5m %+v, 30m %+v", ws[5*time.Minute], ws[30*time.Minute])
			}
			h.advance(25 * time.Hour)
			if _, ws := statsRow(h, capacity.Chat, ""); ws[24*time.Hour].Created != 0 || ws[24*time.Hour].ServiceLevel != -1 {
				h.t.Fatalf("after a day: %+v", ws[24*time.Hour])
			}
			assertRestoresIdentically(h)
		}},
		{"a channel counts at most MaxStatGroups groups of its own", func(h *harness) {
			for i := range MaxStatGroups + 3 {
				h.do(CreateConversation{ID: fmt.Sprintf("c%d", i), Channel: capacity.Voice, Group: fmt.Sprintf("g%03d", i)})
			}
			now, _ := h.m.Stats()
			groups := 0
			for _, r := range now {
				if r.Channel == capacity.Voice && r.Group != "" {
					groups++
				}
			}
			if groups != MaxStatGroups {
				h.t.Fatalf("%d voice groups counted", groups)
			}
			if all, _ := statsRow(h, capacity.Voice, ""); all.Waiting != MaxStatGroups+3 {
				h.t.Fatalf("the channel's row: %+v", all)
			}
		}},
	})
}

func TestQuantile(t *testing.T) {
	var h [numWaitBins]uint32
	if quantile(&h, 0.5) != 0 {
		t.Fatal("empty histogram")
	}
	h[0] = 10 // (0, 1 s]
	if q := quantile(&h, 0.5); q != 0.5 {
		t.Fatalf("p50 of 10 waits under 1 s: %v", q)
	}
	h[numWaitBins-1] = 90 // beyond a day
	if q := quantile(&h, 0.9); q < waitBounds[len(waitBounds)-1] {
		t.Fatalf("p90 with most waits beyond a day: %v", q)
	}
}

// BenchmarkStats: a stats read with 100,000 conversations (in 20 groups,
// half of them held) and 10,000 agents; the target is under a millisecond.
func BenchmarkStats(b *testing.B) {
	m := insightState(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		now, windows := m.Stats()
		if len(now) == 0 || len(windows) == 0 {
			b.Fatal("no stats")
		}
	}
}
