package routing

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/omnirouter/omnirouter/capacity"
)

var (
	randomSeed = flag.Uint64("routing.seed", 0, "seed for TestRandomCommands (0: time-based)")
	randomOps  = flag.Int("routing.ops", 100_000, "commands applied by TestRandomCommands")
)

// commandGen makes random but plausible commands over small pools of ids,
// so that most commands hit existing agents and conversations.
type commandGen struct {
	r       *rand.Rand
	m       *Machine // peeked at to aim most agent commands at the right agent
	convs   int
	agents  int
	created int
}

func (g *commandGen) agent() string { return fmt.Sprintf("a%d", g.r.IntN(g.agents)) }

// holder returns, most of the time, the agent conversation id is with.
func (g *commandGen) holder(id string) string {
	if c, ok := g.m.Conversation(id); ok && c.AgentID != "" && g.r.IntN(5) > 0 {
		return c.AgentID
	}
	return g.agent()
}

// conv returns, most of the time, a conversation that has not ended.
func (g *commandGen) conv() string {
	if g.created == 0 {
		return "c0"
	}
	if g.r.IntN(5) > 0 {
		var open []string
		g.m.Conversations(func(c *Conversation) bool {
			if c.State != StateEnded {
				open = append(open, c.ID)
			}
			return true
		})
		if len(open) > 0 {
			return open[g.r.IntN(len(open))]
		}
	}
	return fmt.Sprintf("c%d", g.r.IntN(g.created))
}

func (g *commandGen) labels(pool ...string) []string {
	var out []string
	for _, l := range pool {
		if g.r.IntN(3) == 0 {
			out = append(out, l)
		}
	}
	return out
}

func (g *commandGen) dur(maxSec int) *time.Duration {
	d := time.Duration(1+g.r.IntN(maxSec*1000)) * time.Millisecond
	return &d
}

// next returns the time step to apply before the command, and the command.
func (g *commandGen) next() (int64, Command) {
	var step int64
	switch p := g.r.IntN(100); {
	case p < 60:
		step = int64(g.r.IntN(2000))
	case p < 95:
		step = int64(g.r.IntN(120_000))
	case p < 99:
		step = int64(g.r.IntN(3_600_000))
	default:
		step = int64(g.r.IntN(10 * 24 * 3_600_000)) // far in the future
	}
	switch p := g.r.IntN(100); {
	case p < 4:
		return step, UpsertAgent{ID: g.agent(), Capacity: capacity.Limits{g.r.IntN(4), g.r.IntN(4), g.r.IntN(4), g.r.IntN(2)},
			Skills: g.labels("fr", "de", "vip"), Groups: g.labels("support", "sales")}
	case p < 5:
		return step, RemoveAgent{ID: g.agent(), Force: g.r.IntN(2) == 0}
	case p < 12:
		return step, SetAgentStatus{AgentID: g.agent(), Status: AgentStatus(g.r.IntN(int(numStatuses)))}
	case p < 24:
		if g.created < g.convs {
			g.created++
		}
		ch := capacity.Channel(g.r.IntN(int(capacity.NumChannels)))
		cmd := CreateConversation{ID: fmt.Sprintf("c%d", g.created-1), Channel: ch, Priority: g.r.IntN(3) - 1,
			Skills: g.labels("fr", "de"), PushEnabled: g.r.IntN(2) == 0}
		if ch == capacity.Email {
			cmd.Subject = "order"
		}
		if g.r.IntN(3) == 0 {
			cmd.OptionalSkills = g.labels("vip", "de")
			if cmd.Group != "" || g.r.IntN(2) == 0 {
				cmd.Group = "support"
				cmd.SecondaryGroups = g.labels("sales")
			}
		}
		if g.r.IntN(4) == 0 {
			cmd.Group = "support"
		}
		if ch == capacity.Chat {
			cmd.Client = Client(g.r.IntN(int(numClients)))
		}
		if g.r.IntN(2) == 0 && ch != capacity.Voice || ch == capacity.Email {
			cmd.Message = "hello"
		}
		return step, cmd
	case p < 40:
		a, c := Author(g.r.IntN(int(numAuthors))), g.conv()
		return step, PostMessage{ConversationID: c, Author: a, AgentID: g.holder(c), Text: "m"}
	case p < 48:
		return step, Presence{ConversationID: g.conv(), Event: PresenceEvent(g.r.IntN(int(numPresenceEvents)))}
	case p < 60:
		c := g.conv()
		return step, Accept{ConversationID: c, AgentID: g.holder(c)}
	case p < 64:
		c := g.conv()
		return step, Reject{ConversationID: c, AgentID: g.holder(c)}
	case p < 68:
		c := g.conv()
		return step, Leave{ConversationID: c, AgentID: g.holder(c)}
	case p < 73:
		c := g.conv()
		by := EndedBy(g.r.IntN(2))
		return step, End{ConversationID: c, By: by, AgentID: g.holder(c), Voicemail: by == EndedByVisitor && g.r.IntN(3) == 0}
	case p < 78:
		return step, SetTicketStatus{ConversationID: g.conv(), Status: TicketStatus(g.r.IntN(int(numTicketStatuses)))}
	case p < 83:
		c := g.conv()
		return step, Release{AgentID: g.holder(c), ConversationID: c, TicketStatus: TicketStatus(g.r.IntN(int(numTicketStatuses))), SetTicket: g.r.IntN(2) == 0}
	case p < 89:
		r := RequestAssignment{Force: g.r.IntN(5) == 0}
		if g.r.IntN(3) > 0 {
			r.ConversationID = g.conv()
		}
		if g.r.IntN(3) > 0 {
			r.AgentID = g.agent()
		}
		return step, r
	case p < 91:
		// One to three fields of the whole policy table, each within its
		// bounds (durations of at most an hour, so that timers fire).
		var pp PolicyPatch
		for range 1 + g.r.IntN(3) {
			i := g.r.IntN(numPolicyFields)
			f := &policyFields[i]
			v := f.min + g.r.Int64N(f.max-f.min+1)
			if f.kind == PolicyDuration {
				v = int64(*g.dur(3600))
			}
			pp.set |= 1 << i
			pp.vals[i] = v
		}
		return step, SetPolicy{Patch: pp}
	case p < 92:
		return step, SetEventLimits{Limits: EventLimits{Count: 1 + g.r.IntN(300), Bytes: MinEventBytes + g.r.Int64N(1<<20)}}
	case p < 95:
		c := g.conv()
		t := Transfer{ConversationID: c, AgentID: g.holder(c)}
		if g.r.IntN(2) == 0 {
			t.ToAgent = g.agent()
		} else {
			t.ToGroup = []string{"support", "sales"}[g.r.IntN(2)]
		}
		if g.r.IntN(2) == 0 {
			t.Note = "note"
		}
		return step, t
	case p < 97:
		u := UpdateConversation{ConversationID: g.conv(), Set: UpdateFields(1 + g.r.IntN(int(updateAll))),
			Priority: g.r.IntN(5) - 2, Skills: g.labels("fr", "de"), OptionalSkills: g.labels("vip"), SecondaryGroups: g.labels("sales")}
		if g.r.IntN(2) == 0 {
			u.Group = "support"
		}
		return step, u
	case p < 98:
		return step, g.webhook()
	default:
		return step, Tick{}
	}
}

// webhook returns a subscription command over a few ids: creates, updates,
// deletes and delivery progress with cursors around the event log.
func (g *commandGen) webhook() Command {
	id := fmt.Sprintf("w%d", g.r.IntN(3))
	switch g.r.IntN(5) {
	case 0:
		return CreateWebhook{ID: id, URL: "https://example.com/" + id, Events: g.labels(EventQueued, EventEnded, "*"), Secret: "s"}
	case 1:
		return UpdateWebhook{ID: id, Set: WebhookFields(1 + g.r.IntN(int(webhookSetAll))), URL: "http://example.com/x",
			Events: []string{EventAssigned}, Secret: "t", Paused: g.r.IntN(2) == 0}
	case 2:
		return DeleteWebhook{ID: id}
	default:
		w, _ := g.m.Webhook(id)
		last := g.m.LastEventID()
		p := WebhookProgress{ID: id, Seq: w.Seq, Version: w.Version, Cursor: last - min(last, uint64(g.r.IntN(20))) + uint64(g.r.IntN(3)),
			LastSuccessAt: g.m.Now(), LastError: "HTTP 503", LastErrorAt: g.m.Now()}
		if g.r.IntN(2) == 0 {
			p.FailingSince = g.m.Now() - int64(g.r.IntN(7_200_000))
		}
		return CommitWebhooks{Progress: []WebhookProgress{p}}
	}
}

func snapshotBytes(t testing.TB, m *Machine) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := m.WriteSnapshot(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestRandomCommands applies random commands, including ticks far in the
// future, checking the invariants after every one. Along the way it
// restores snapshots into a shadow machine that must then track the
// original byte for byte, and checks that a clone taken earlier still
// serializes to the bytes it had when taken (copy-on-write).
func TestRandomCommands(t *testing.T) {
	seed := *randomSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (rerun with -routing.seed=%d)", seed, seed)
	ops := *randomOps
	if testing.Short() {
		ops = 10_000
	}
	m := New()
	g := &commandGen{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), m: m, convs: 500, agents: 8}
	var lastKey string
	var lastCmd Command
	type keyedCmd struct {
		key string
		cmd Command
	}
	var keyed []keyedCmd
	var shadow *Machine
	var frozen *Machine
	var frozenBytes []byte
	now := t0
	refused, replayed := 0, 0
	for i := range ops {
		step, cmd := g.next()
		now += step
		key := ""
		switch k := g.r.IntN(20); {
		case k == 0 && lastKey != "":
			cmd, key = lastCmd, lastKey // a client retrying
		case k == 1 && len(keyed) > 0:
			// a client retrying late: the key may have expired (and be
			// stored again) or be replayed
			kc := keyed[g.r.IntN(len(keyed))]
			cmd, key = kc.cmd, kc.key
		case k < 4:
			key = fmt.Sprintf("k%d", i)
			if len(keyed) < 64 {
				keyed = append(keyed, keyedCmd{key, cmd})
			} else {
				keyed[g.r.IntN(len(keyed))] = keyedCmd{key, cmd}
			}
		}
		lastKey, lastCmd = key, cmd
		out := m.Apply(now, key, cmd)
		if shadow != nil {
			shadow.Apply(now, key, cmd)
		}
		if out.Err != nil {
			refused++
		}
		if out.Replayed {
			replayed++
		}
		if err := m.CheckInvariants(); err != nil {
			t.Fatalf("seed %d: op %d (%T%+v): invariants broken: %v", seed, i, cmd, cmd, err)
		}
		switch {
		case i%997 == 0:
			snap := snapshotBytes(t, m)
			restored, err := DecodeSnapshot(snap)
			if err != nil {
				t.Fatalf("seed %d: op %d: restore: %v", seed, i, err)
			}
			if again := snapshotBytes(t, restored); !bytes.Equal(snap, again) {
				t.Fatalf("seed %d: op %d: snapshot → restore → snapshot differs", seed, i)
			}
			if shadow != nil {
				if s := snapshotBytes(t, shadow); !bytes.Equal(snap, s) {
					t.Fatalf("seed %d: op %d: machine restored earlier diverged from the original", seed, i)
				}
			}
			shadow = restored
		case i%613 == 0:
			if frozen != nil {
				if got := snapshotBytes(t, frozen); !bytes.Equal(got, frozenBytes) {
					t.Fatalf("seed %d: op %d: a clone changed after later applies (copy-on-write broken)", seed, i)
				}
			}
			frozen = m.Clone()
			frozenBytes = snapshotBytes(t, frozen)
		}
	}
	t.Logf("%d commands, %d refused, %d replayed, %d conversations, %d events", ops, refused, replayed, m.ConversationCount(), m.LastEventID())
	if refused > ops*7/10 || refused == 0 || replayed == 0 {
		t.Fatalf("generator is degenerate: %d of %d refused", refused, ops)
	}
}

// TestDeterministicReplay replays one command log into two fresh machines
// and compares their snapshots byte for byte.
func TestDeterministicReplay(t *testing.T) {
	type entry struct {
		at  int64
		key string
		cmd Command
	}
	// The generator peeks at a machine of its own to aim its commands.
	gm := New()
	g := &commandGen{r: rand.New(rand.NewPCG(7, 11)), m: gm, convs: 200, agents: 6}
	var log []entry
	now := t0
	for i := range 20_000 {
		step, cmd := g.next()
		now += step
		key := ""
		if i%7 == 0 {
			key = fmt.Sprintf("k%d", i%40)
		}
		log = append(log, entry{now, key, cmd})
		gm.Apply(now, key, cmd)
	}
	var events uint64
	replay := func() []byte {
		m := New()
		for _, e := range log {
			m.Apply(e.at, e.key, e.cmd)
		}
		events = m.LastEventID()
		return snapshotBytes(t, m)
	}
	a, b := replay(), replay()
	if !bytes.Equal(a, b) {
		t.Fatal("two replays of the same log differ")
	}
	if events < 5_000 {
		t.Fatalf("the log did suspiciously little: %d events", events)
	}
}

func TestSnapshotRejectsCorruptInput(t *testing.T) {
	h := newHarness(t)
	h.onlineAgent("a", 2, 2)
	h.webChat("c1")
	h.messaging("m1")
	snap := h.snapshot()
	if _, err := DecodeSnapshot(snap); err != nil {
		t.Fatal(err)
	}
	for cut := 0; cut < len(snap); cut++ {
		if _, err := DecodeSnapshot(snap[:cut]); err == nil {
			t.Fatalf("truncated snapshot (%d of %d bytes) accepted", cut, len(snap))
		}
	}
	bad := bytes.Clone(snap)
	bad[len(snapshotMagic)] = 99
	if _, err := DecodeSnapshot(bad); err == nil {
		t.Fatal("unknown version accepted")
	}
}

func TestRestoredMachineContinuesEventIDs(t *testing.T) {
	old := newHarness(t)
	old.onlineAgent("a", 1, 1)
	old.webChat("c1")
	backup := old.snapshot() // a backup with few events
	for i := range 5 {
		old.webChat(fmt.Sprintf("more%d", i))
	}
	last := old.m.LastEventID()

	restored, err := DecodeSnapshot(backup)
	if err != nil {
		t.Fatal(err)
	}
	restored.ContinueEventsAfter(last)
	if _, err := restored.Events(last-3, 10); err != ErrEventsExpired {
		t.Fatalf("a reader behind the restore must resynchronise, got %v", err)
	}
	out := restored.Apply(old.now, "", CreateConversation{ID: "after", Channel: capacity.Chat})
	if len(out.Events) == 0 || out.Events[0].ID != last+1 {
		t.Fatalf("first event after restore has id %v, want %d", out.Events, last+1)
	}
	if evs, err := restored.Events(last, 10); err != nil || len(evs) == 0 || evs[0].ID != last+1 {
		t.Fatalf("resume from the last id seen: %v %v", evs, err)
	}
	if err := restored.CheckInvariants(); err != nil {
		t.Fatal(err)
	}
}

// A snapshot lists every statistics row: one whose body leaves some out
// (found by FuzzDecodeSnapshot: the rows were rebuilt from the state, and
// under the cap of groups a restored machine could keep other rows than
// the one that wrote it) is refused.
func TestSnapshotMustListEveryStatsRow(t *testing.T) {
	h := newHarness(t)
	h.onlineAgent("a", 2, 2)
	h.webChat("c1")
	full := h.snapshot()
	if _, err := DecodeSnapshot(full); err != nil {
		t.Fatal(err)
	}
	h.m.stats = newStatsIndex() // the same state, written without its rows
	short := snapshotBytes(t, h.m)
	if _, err := decodeSnapshotBody(short[:len(short)-trailerLen]); !errors.Is(err, ErrBadSnapshot) {
		t.Fatalf("a snapshot without its stats rows: %v", err)
	}
}
