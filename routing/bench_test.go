package routing

import (
	"bytes"
	"fmt"
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/omnirouter/omnirouter/capacity"
)

// benchMachine returns a machine with n online agents (capacity 10 chat,
// 10 messaging) in auto mode.
func benchMachine(b *testing.B, agents int) *Machine {
	b.Helper()
	m := New()
	for i := range agents {
		id := fmt.Sprintf("a%04d", i)
		m.Apply(t0, "", UpsertAgent{ID: id, Capacity: capacity.Limits{10, 10}})
		m.Apply(t0, "", SetAgentStatus{AgentID: id, Status: StatusOnline})
	}
	return m
}

// BenchmarkApplyCreate measures the `create` workload: a conversation created
// and routed (offered to an agent, or queued once all are full).
func BenchmarkApplyCreate(b *testing.B) {
	m := benchMachine(b, 500)
	ids := make([]string, b.N)
	for i := range ids {
		ids[i] = fmt.Sprintf("c%09d", i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out := m.Apply(t0+int64(i), "", CreateConversation{ID: ids[i], Channel: capacity.Chat, Message: "hi"})
		if out.Err != nil {
			b.Fatal(out.Err)
		}
	}
}

// BenchmarkApplyCreateBehindLargeQueue creates conversations that agents
// can take while 50,000 others wait for a skill nobody online has: the cost
// of routing must not grow with the queue.
func BenchmarkApplyCreateBehindLargeQueue(b *testing.B) {
	m := benchMachine(b, 100)
	for i := range 50_000 {
		m.Apply(t0, "", CreateConversation{ID: fmt.Sprintf("q%06d", i), Channel: capacity.Chat, Skills: []string{"klingon"}})
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		id := fmt.Sprintf("c%09d", i)
		out := m.Apply(t0+int64(i), "", CreateConversation{ID: id, Channel: capacity.Chat})
		if out.Err != nil {
			b.Fatal(out.Err)
		}
		// Free the slot again so that agents stay available.
		m.Apply(t0+int64(i), "", End{ConversationID: id, By: EndedByVisitor})
	}
}

// BenchmarkApplyLifecycle measures one whole chat: create (offered),
// accept, a message each way, visitor end (which frees the slot).
func BenchmarkApplyLifecycle(b *testing.B) {
	m := benchMachine(b, 500)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		at := t0 + int64(i)
		id := fmt.Sprintf("c%09d", i)
		out := m.Apply(at, "", CreateConversation{ID: id, Channel: capacity.Chat, Message: "hi"})
		agent := out.Conversation.AgentID
		m.Apply(at, "", Accept{ConversationID: id, AgentID: agent})
		m.Apply(at, "", PostMessage{ConversationID: id, Author: AuthorAgent, AgentID: agent, Text: "hello"})
		m.Apply(at, "", PostMessage{ConversationID: id, Author: AuthorVisitor, Text: "thanks"})
		if out := m.Apply(at, "", End{ConversationID: id, By: EndedByVisitor}); out.Err != nil {
			b.Fatal(out.Err)
		}
	}
}

// BenchmarkApplyKeyed is BenchmarkApplyCreate with an idempotency key.
func BenchmarkApplyKeyed(b *testing.B) {
	benchKeyed(b, func(m *Machine, at int64, key string, cmd Command) { m.Apply(at, key, cmd) })
}

// BenchmarkApplyKeyedCounting is BenchmarkApplyKeyed through
// ApplyCounting, as the cluster applies: no copy of the events.
func BenchmarkApplyKeyedCounting(b *testing.B) {
	benchKeyed(b, func(m *Machine, at int64, key string, cmd Command) { m.ApplyCounting(at, key, cmd) })
}

func benchKeyed(b *testing.B, apply func(m *Machine, at int64, key string, cmd Command)) {
	m := benchMachine(b, 500)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		id := fmt.Sprintf("c%09d", i)
		apply(m, t0+int64(i), "k"+id, CreateConversation{ID: id, Channel: capacity.Messaging})
	}
}

func benchState(b *testing.B) *Machine {
	m := benchMachine(b, 500)
	for i := range 20_000 {
		m.Apply(t0+int64(i), "", CreateConversation{ID: fmt.Sprintf("c%06d", i), Channel: capacity.Channel(i % 2), Message: "hello there"})
	}
	return m
}

// BenchmarkClone is what a raft snapshot costs the apply loop.
func BenchmarkClone(b *testing.B) {
	m := benchState(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m.Clone()
		// The first write after a clone copies what it touches.
		m.Apply(m.Now(), "", Tick{})
	}
}

// BenchmarkWriteSnapshot serializes 20,000 conversations and 500 agents.
func BenchmarkWriteSnapshot(b *testing.B) {
	m := benchState(b)
	var buf bytes.Buffer
	m.WriteSnapshot(&buf)
	b.SetBytes(int64(buf.Len()))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := m.WriteSnapshot(io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReadSnapshot(b *testing.B) {
	m := benchState(b)
	var buf bytes.Buffer
	m.WriteSnapshot(&buf)
	b.SetBytes(int64(buf.Len()))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := DecodeSnapshot(buf.Bytes()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkApplyLifecycleKeyed applies what `omnirouter bench --workload
// lifecycle` sends, command for command and each with its idempotency key:
// alternately a chat (create, accept, a message each way, leave, the
// visitor's message that reopens it, accept again, end) and a messaging
// conversation (create, accept, a message each way, release). 500 agents
// with one skill, which every conversation asks for. ns/op is per command.
func BenchmarkApplyLifecycleKeyed(b *testing.B) {
	m := New()
	skills := []string{"run1"}
	for i := range 500 {
		id := fmt.Sprintf("a%04d", i)
		m.Apply(t0, id+"-u", UpsertAgent{ID: id, Capacity: capacity.Limits{4, 8}, Skills: skills})
		m.Apply(t0, id+"-s", SetAgentStatus{AgentID: id, Status: StatusOnline})
	}
	at := t0
	apply := func(key string, cmd Command) Outcome {
		at++
		out, _ := m.ApplyCounting(at, key, cmd)
		if out.Err != nil {
			b.Fatalf("%s: %v", key, out.Err)
		}
		return out
	}
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; n < b.N; {
		id := fmt.Sprintf("run1-w001-%07d", n)
		chat := n%2 == 0
		ch := capacity.Messaging
		if chat {
			ch = capacity.Chat
		}
		out := apply(id, CreateConversation{ID: id, Channel: ch, Message: "Hello, I need help with my order", Skills: skills})
		agent := out.Conversation.AgentID
		apply(id+"-acc", Accept{ConversationID: id, AgentID: agent})
		apply(id+"-m1", PostMessage{ConversationID: id, Author: AuthorAgent, AgentID: agent, Text: "Hi, how can I help?"})
		apply(id+"-m2", PostMessage{ConversationID: id, Author: AuthorVisitor, Text: "Where is my parcel?"})
		if !chat {
			apply(id+"-rel", Release{AgentID: agent, ConversationID: id, TicketStatus: TicketPending, SetTicket: true})
			n += 5
			continue
		}
		apply(id+"-leave", Leave{ConversationID: id, AgentID: agent})
		out = apply(id+"-m3", PostMessage{ConversationID: id, Author: AuthorVisitor, Text: "Sorry, one more thing"})
		apply(id+"-acc2", Accept{ConversationID: id, AgentID: out.Conversation.AgentID})
		apply(id+"-end", End{ConversationID: id, By: EndedByVisitor})
		n += 8
	}
}

// decisionMachines caches the machines of BenchmarkRoutingDecision by
// channels and queue length (building one with a million queued takes
// seconds, and the benchmark leaves it as it found it).
var decisionMachines = map[[2]int]*Machine{}

// BenchmarkRoutingDecision: an agent comes online and is offered the first
// queued conversation it may take on each of its channels, then goes
// offline and the offers return to their places; 10,000 agents, the queue
// at 10,000 and at 1,000,000 conversations in eight requirement classes
// per channel, over two channels (chat, messaging) and over four (email
// offered rather than assigned, so that it returns too). The cost of a
// decision must not grow with the queue (the target: at most twice as much
// at 1M).
func BenchmarkRoutingDecision(b *testing.B) {
	for _, channels := range []int{2, 4} {
		for _, queued := range []int{10_000, 1_000_000} {
			b.Run(fmt.Sprintf("channels=%d/queued=%d", channels, queued), func(b *testing.B) {
				m := decisionMachine(channels, queued)
				at := t0 + int64(queued/1000) // the last create's time: no timer is due
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					id := fmt.Sprintf("a%05d", i%10_000)
					out := m.Apply(at, "", SetAgentStatus{AgentID: id, Status: StatusOnline})
					if out.Err != nil || len(out.Agent.Conversations) != channels {
						b.Fatalf("online: %v, holds %v", out.Err, out.Agent.Conversations)
					}
					m.Apply(at, "", SetAgentStatus{AgentID: id, Status: StatusOffline})
				}
			})
		}
	}
}

func decisionMachine(channels, queued int) *Machine {
	if m := decisionMachines[[2]int{channels, queued}]; m != nil {
		return m
	}
	m := New()
	m.Apply(t0, "", SetPolicy{Patch: MustPatch("email.auto_accept", false)})
	skills := []string{"de", "en", "es", "fr", "it", "ja", "nl", "pt"}
	var limits capacity.Limits
	for ch := range channels {
		limits[ch] = 1
	}
	for i := range 10_000 {
		m.Apply(t0, "", UpsertAgent{ID: fmt.Sprintf("a%05d", i), Capacity: limits, Skills: skills})
	}
	for i := range queued {
		create := CreateConversation{ID: fmt.Sprintf("q%07d", i), Channel: capacity.Channel(i % channels),
			Skills: skills[(i/channels)%len(skills) : (i/channels)%len(skills)+1]}
		if create.Channel == capacity.Email {
			create.Message = "Where is my parcel?"
		}
		if out := m.Apply(t0+int64(i/1000), "", create); out.Err != nil {
			panic(out.Err)
		}
	}
	decisionMachines[[2]int{channels, queued}] = m
	return m
}

// BenchmarkApplyChannels: whole conversations, one channel after another,
// over two channels (chat, messaging) and over four, on 500 agents who take
// every channel of the run. A conversation's commands are those of
// tools/loadgen's lifecycle (a chat: create, accept, a message each way,
// end; messaging and email: release instead of end, and an email is
// assigned without an offer; a call: create, answer, hang up). Besides
// ns/command over all of them, each channel's commands are timed apart
// (chat-ns/cmd, ...): the chat and messaging commands are the same in both
// runs, and must cost within a tenth of each other, four channels against
// two; the mix of all commands differs (calls and emails take fewer
// commands per conversation, so creations weigh more).
func BenchmarkApplyChannels(b *testing.B) {
	for _, channels := range []int{2, 4} {
		b.Run(fmt.Sprintf("channels=%d", channels), func(b *testing.B) {
			m := New()
			limits := capacity.Limits{10, 10}
			if channels == 4 {
				limits = capacity.Limits{10, 10, 10, 1}
			}
			for i := range 500 {
				id := fmt.Sprintf("a%04d", i)
				m.Apply(t0, "", UpsertAgent{ID: id, Capacity: limits})
				m.Apply(t0, "", SetAgentStatus{AgentID: id, Status: StatusOnline})
			}
			var spent [capacity.NumChannels]time.Duration
			var commands [capacity.NumChannels]int
			var ch capacity.Channel
			apply := func(at int64, cmd Command) Outcome {
				start := time.Now()
				out := m.Apply(at, "", cmd)
				spent[ch] += time.Since(start)
				commands[ch]++
				if out.Err != nil {
					b.Fatalf("%T: %v", cmd, out.Err)
				}
				return out
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				at := t0 + int64(i)
				id := fmt.Sprintf("c%09d", i)
				ch = capacity.Channel(i % channels)
				create := CreateConversation{ID: id, Channel: ch, Message: "hi"}
				if ch == capacity.Voice {
					create.Message = ""
				}
				out := apply(at, create)
				agent := out.Conversation.AgentID
				if agent == "" {
					b.Fatalf("%s on %v was not routed", id, ch)
				}
				if out.Conversation.State == StateOffered {
					apply(at, Accept{ConversationID: id, AgentID: agent})
				}
				if ch == capacity.Voice {
					apply(at, End{ConversationID: id, By: EndedByAgent, AgentID: agent})
					continue
				}
				apply(at, PostMessage{ConversationID: id, Author: AuthorAgent, AgentID: agent, Text: "hello"})
				apply(at, PostMessage{ConversationID: id, Author: AuthorVisitor, Text: "thanks"})
				if ch == capacity.Chat {
					apply(at, End{ConversationID: id, By: EndedByVisitor})
				} else {
					apply(at, Release{AgentID: agent, ConversationID: id, TicketStatus: TicketPending, SetTicket: true})
				}
			}
			b.StopTimer()
			var total time.Duration
			var n int
			for c := range channels {
				total += spent[c]
				n += commands[c]
				if commands[c] > 0 {
					b.ReportMetric(float64(spent[c].Nanoseconds())/float64(commands[c]), capacity.Channel(c).String()+"-ns/cmd")
				}
			}
			b.ReportMetric(float64(total.Nanoseconds())/float64(n), "ns/command")
		})
	}
}

// BenchmarkStateBytes reports what the state holds per conversation, as
// live heap and as snapshot bytes: a live one (a queued chat with its
// first message), a retained one (a chat ended after an accept and a
// message each way, kept for retention.ended) and an idempotency record.
// Events are kept apart (the fewest the limits allow), since their own
// limits bound them. One iteration is the whole measurement.
func BenchmarkStateBytes(b *testing.B) {
	const n = 100_000
	for b.Loop() {
		m := New()
		m.Apply(t0, "", SetEventLimits{Limits: EventLimits{Count: 1, Bytes: MinEventBytes}})
		for i := range 500 {
			m.Apply(t0, "", UpsertAgent{ID: fmt.Sprintf("a%04d", i), Capacity: capacity.Limits{10, 10}})
		}
		heap0, snap0 := stateBytes(b, m)
		at := t0
		for i := range n { // no agent online: every chat waits
			m.Apply(at, "", CreateConversation{ID: fmt.Sprintf("q%06d", i), Channel: capacity.Chat, Message: "Where is my parcel?"})
		}
		heapLive, snapLive := stateBytes(b, m)
		for i := range 500 {
			m.Apply(at, "", SetAgentStatus{AgentID: fmt.Sprintf("a%04d", i), Status: StatusOnline})
		}
		for i := range n { // each chat offered, accepted, answered and ended
			at++
			id := fmt.Sprintf("q%06d", i)
			agent := m.convByID[id].AgentID
			if agent == "" {
				b.Fatalf("%s not offered", id)
			}
			m.Apply(at, "", Accept{ConversationID: id, AgentID: agent})
			m.Apply(at, "", PostMessage{ConversationID: id, Author: AuthorAgent, AgentID: agent, Text: "Let me look."})
			m.Apply(at, "", PostMessage{ConversationID: id, Author: AuthorVisitor, Text: "Thanks"})
			m.Apply(at, "", End{ConversationID: id, By: EndedByVisitor})
		}
		heapEnded, snapEnded := stateBytes(b, m)
		for i := range n {
			m.Apply(at, fmt.Sprintf("key-%06d", i), SetAgentStatus{AgentID: fmt.Sprintf("a%04d", i%500), Status: StatusOnline})
		}
		heapKeys, snapKeys := stateBytes(b, m)
		b.ReportMetric((heapLive-heap0)/n, "heap-B/live")
		b.ReportMetric((snapLive-snap0)/n, "snap-B/live")
		b.ReportMetric((heapEnded-heap0)/n, "heap-B/retained")
		b.ReportMetric((snapEnded-snap0)/n, "snap-B/retained")
		b.ReportMetric((heapKeys-heapEnded)/n, "heap-B/key")
		b.ReportMetric((snapKeys-snapEnded)/n, "snap-B/key")
	}
}

// stateBytes is the live heap after a collection and m's snapshot size.
func stateBytes(b *testing.B, m *Machine) (heap, snapshot float64) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	var buf bytes.Buffer
	if err := m.WriteSnapshot(&buf); err != nil {
		b.Fatal(err)
	}
	return float64(ms.HeapAlloc), float64(buf.Len())
}
