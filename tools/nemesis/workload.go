package nemesis

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/omnirouter/omnirouter/internal/pause"
)

// AgentSpec is one agent of the run and its capacity per channel (voice 0
// or 1).
type AgentSpec struct {
	ID        string
	Chat      int
	Messaging int
	Email     int
	Voice     int
}

// Cap is the agent's capacity on ch.
func (a AgentSpec) Cap(ch string) int {
	switch ch {
	case "chat":
		return a.Chat
	case "messaging":
		return a.Messaging
	case "email":
		return a.Email
	case "voice":
		return a.Voice
	}
	return 0
}

func (a AgentSpec) capacity() map[string]int {
	return map[string]int{"chat": a.Chat, "messaging": a.Messaging, "email": a.Email, "voice": a.Voice}
}

func (a AgentSpec) String() string {
	return fmt.Sprintf("%s chat=%d messaging=%d email=%d voice=%d", a.ID, a.Chat, a.Messaging, a.Email, a.Voice)
}

// agentProfiles are the channels of the agents of a run, in turn.
var agentProfiles = [][]string{
	{"chat", "messaging", "email", "voice"},
	{"voice"},
	{"chat", "messaging", "email"},
	{"email", "voice"},
	{"chat", "messaging", "email", "voice"},
	{"chat", "voice"},
	{"messaging", "email"},
	{"chat", "messaging", "voice"},
}

// AgentMix returns n agents like a support floor's, in turn on every
// channel, voice only, every channel but voice, email and calls, chat and
// calls, messaging and email, live work only; capacities drawn from rng
// (voice 1). Focus mode matters to those with two real-time channels or
// more.
func AgentMix(n int, rng *rand.Rand) []AgentSpec {
	var out []AgentSpec
	for i := range n {
		a := AgentSpec{ID: fmt.Sprintf("a%d", i+1)}
		for _, ch := range agentProfiles[i%len(agentProfiles)] {
			switch ch {
			case "chat":
				a.Chat = 1 + rng.IntN(2)
			case "messaging":
				a.Messaging = 1 + rng.IntN(2)
			case "email":
				a.Email = 1 + rng.IntN(2)
			case "voice":
				a.Voice = 1
			}
		}
		out = append(out, a)
	}
	return out
}

// Workload drives the cluster like production: visitors open conversations
// on every channel and write to them, hang up calls; agents accept, reject,
// write, leave, end, set email tickets pending or solved, hang up and
// release; a routing engine asks for assignments; an operator turns focus
// mode on and off. Every operation goes through a Client and is recorded.
type Workload struct {
	Hist   *History
	URLs   []string
	Seed   uint64
	Agents []AgentSpec
	// Visitors is the number of visitor goroutines.
	Visitors int
	// Policy is set at Setup; it must set routing.focus_mode (false).
	Policy map[string]any
	// FocusEvery is the mean time between focus-mode toggles (0: never).
	FocusEvery time.Duration

	opCtx      context.Context
	mu         sync.Mutex
	convs      []convInfo
	nextConv   int
	violations []string
	clients    int
	// policyAmbiguous: a PUT /v1/policy whose outcome is unknown was sent;
	// from then on every policy write sets the same focus mode, so that the
	// order in which they apply does not matter (FocusSchedule).
	policyAmbiguous bool
}

type convInfo struct {
	id, channel string
	owner       int // visitor client id
}

// Violations are invariant breaches the clients saw in answers.
func (w *Workload) Violations() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.violations...)
}

func (w *Workload) violation(format string, args ...any) {
	w.mu.Lock()
	w.violations = append(w.violations, fmt.Sprintf(format, args...))
	w.mu.Unlock()
}

// Conversations lists every conversation a create was sent for (acknowledged
// or not), with its channel.
func (w *Workload) Conversations() map[string]string {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := map[string]string{}
	for _, c := range w.convs {
		m[c.id] = c.channel
	}
	return m
}

func (w *Workload) newClient() *Client {
	w.mu.Lock()
	id := w.clients
	w.clients++
	w.mu.Unlock()
	rng := rand.New(rand.NewPCG(w.Seed, uint64(id)+1))
	return NewClient(id, w.URLs, w.Hist, rng, fmt.Sprintf("k%d", w.Seed))
}

// focusArg is a policy op's argument: the focus mode it sets.
func focusArg(on bool) string { return fmt.Sprintf("focus_mode=%v", on) }

// putPolicy sends one PUT /v1/policy that sets focus mode to focus (body
// must say so), recorded as a KindPolicy op.
func (w *Workload) putPolicy(ctx context.Context, c *Client, body map[string]any, focus bool) *Op {
	op := c.Do(ctx, &Op{Kind: KindPolicy, Arg: focusArg(focus)}, "PUT", "/v1/policy", body)
	if op.Status == Ambiguous {
		w.mu.Lock()
		w.policyAmbiguous = true
		w.mu.Unlock()
	}
	return op
}

// Setup sets the policy, registers the agents and sets them online,
// retrying until done.
func (w *Workload) Setup(ctx context.Context) error {
	c := w.newClient()
	c.Patient = true
	if err := Poll(ctx, 60*time.Second, func() error {
		op := w.putPolicy(ctx, c, w.Policy, false)
		if op.Status != OK {
			return fmt.Errorf("policy: %s %d %s %s", op.Status, op.HTTP, op.Code, op.Err)
		}
		return nil
	}); err != nil {
		return err
	}
	for _, a := range w.Agents {
		for _, step := range []struct {
			kind, arg, method, path string
			body                    any
		}{
			{KindAgentPut, a.String(), "PUT", "/v1/agents/" + a.ID,
				map[string]any{"name": "agent " + a.ID, "capacity": a.capacity()}},
			{KindAgentStatus, "online", "PUT", "/v1/agents/" + a.ID + "/status", map[string]string{"status": "online"}},
		} {
			err := Poll(ctx, 60*time.Second, func() error {
				op := c.Do(ctx, &Op{Kind: step.kind, Agent: a.ID, Arg: step.arg}, step.method, step.path, step.body)
				if op.Status != OK {
					return fmt.Errorf("%s %s: %s %d %s %s", step.method, step.path, op.Status, op.HTTP, op.Code, op.Err)
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// Run runs every client until ctx is done.
// Operations in flight when it ends run to completion.
func (w *Workload) Run(ctx context.Context) {
	w.opCtx = context.WithoutCancel(ctx)
	var wg sync.WaitGroup
	for range w.Visitors {
		wg.Add(1)
		go func() { defer wg.Done(); w.visitor(ctx, w.newClient()) }()
	}
	for _, a := range w.Agents {
		wg.Add(1)
		go func() { defer wg.Done(); w.agent(ctx, w.newClient(), a) }()
	}
	wg.Add(1)
	go func() { defer wg.Done(); w.router(ctx, w.newClient()) }()
	if w.FocusEvery > 0 {
		wg.Add(1)
		go func() { defer wg.Done(); w.focus(ctx, w.newClient()) }()
	}
	wg.Wait()
}

func think(ctx context.Context, rng *rand.Rand) bool {
	return pause.For(ctx, time.Duration(100+rng.IntN(250))*time.Millisecond)
}

// newChannel draws a new conversation's channel.
func newChannel(rng *rand.Rand) string {
	switch r := rng.IntN(100); {
	case r < 35:
		return "chat"
	case r < 60:
		return "messaging"
	case r < 80:
		return "email"
	}
	return "voice"
}

// visitor opens conversations on every channel and writes to them, goes
// away and comes back, ends chats, hangs up calls (leaving a voicemail
// now and then when nobody answered).
func (w *Workload) visitor(ctx context.Context, c *Client) {
	var mine []convInfo
	ended := map[string]bool{}
	seen := map[string]string{} // conversation → state last read
	msg := 0
	text := func() string { msg++; return fmt.Sprintf("v%d-%d", c.ID, msg) }
	for think(ctx, c.rng) {
		var live []convInfo
		for _, cv := range mine {
			if !ended[cv.id] {
				live = append(live, cv)
			}
		}
		if len(live) < 2 || (c.rng.IntN(100) < 15 && len(live) < 4) {
			ch := newChannel(c.rng)
			w.mu.Lock()
			w.nextConv++
			cv := convInfo{id: fmt.Sprintf("%s%d", ch[:1], w.nextConv), channel: ch, owner: c.ID}
			w.convs = append(w.convs, cv)
			w.mu.Unlock()
			mine = append(mine, cv)
			body := map[string]any{"id": cv.id, "channel": ch}
			t := ""
			if ch != "voice" { // a call has no message
				t = text()
				body["message"] = t
			}
			if ch == "email" {
				body["subject"] = "about " + t
			}
			op := c.Do(w.opCtx, &Op{Kind: KindCreate, Conv: cv.id, Channel: ch, Arg: t}, "POST", "/v1/conversations", body)
			if op.Status == Rejected {
				ended[cv.id] = true
			}
			continue
		}
		cv := live[c.rng.IntN(len(live))]
		path := "/v1/conversations/" + cv.id
		read := func() {
			op := c.Do(w.opCtx, &Op{Kind: KindRead, Conv: cv.id, Channel: cv.channel}, "GET", path, nil)
			seen[cv.id] = op.State
			if op.State == "ended" || op.State == "wrap_up" || op.Code == "conversation_not_found" {
				ended[cv.id] = true
			}
		}
		write := func() {
			t := text()
			op := c.Do(w.opCtx, &Op{Kind: KindMsgVisitor, Conv: cv.id, Channel: cv.channel, Arg: t}, "POST",
				path+"/messages", map[string]string{"author": "visitor", "text": t})
			if op.Status == Rejected {
				ended[cv.id] = true
			}
		}
		r := c.rng.IntN(100)
		switch cv.channel {
		case "chat":
			switch {
			case r < 50:
				write()
			case r < 65:
				read()
			case r < 80:
				ev := "disconnected"
				if c.rng.IntN(2) == 0 {
					ev = "connected"
				}
				c.Do(w.opCtx, &Op{Kind: KindPresence, Conv: cv.id, Channel: cv.channel, Arg: ev}, "POST",
					path+"/presence", map[string]string{"event": ev})
			case r < 90:
				op := c.Do(w.opCtx, &Op{Kind: KindEndVisitor, Conv: cv.id, Channel: cv.channel}, "POST",
					path+"/end", map[string]string{"by": "visitor"})
				if op.Status != Ambiguous {
					ended[cv.id] = true
				}
			default:
				ended[cv.id] = true // forget it: its timers will end it
			}
		case "messaging", "email":
			// The end user writes (an email reply reopens a pending or
			// solved ticket), or forgets the conversation, which waits.
			switch {
			case r < 60:
				write()
			case r < 92:
				read()
			default:
				ended[cv.id] = true
			}
		case "voice":
			// The caller waits on the line, and hangs up now and then:
			// before an answer (a missed call, sometimes with a
			// voicemail) or after.
			waiting := seen[cv.id] == "queued" || seen[cv.id] == "offered"
			switch {
			case r < 70 || seen[cv.id] == "":
				read()
			case r < 80 || (waiting && r < 88):
				body := map[string]any{"by": "visitor"}
				arg := ""
				if waiting && c.rng.IntN(2) == 0 {
					body["voicemail"], arg = true, "voicemail"
				}
				op := c.Do(w.opCtx, &Op{Kind: KindEndVisitor, Conv: cv.id, Channel: cv.channel, Arg: arg}, "POST", path+"/end", body)
				if op.Status != Ambiguous {
					ended[cv.id] = true
				}
			default:
				read()
			}
		}
	}
}

// AgentView is GET /v1/agents/{id} as an agent read records it.
type AgentView struct {
	Status        string         `json:"status"`
	Capacity      map[string]int `json:"capacity"`
	Load          map[string]int `json:"load"`
	Conversations []string       `json:"conversations"`
}

// agent plays one agent: it looks at its conversations, accepts or
// rejects offers (calls ring), writes, leaves and ends chats, releases
// messaging, sets its emails' tickets pending, on-hold or solved and
// releases them, hangs up calls and releases them from wrap-up, and
// sometimes goes offline or away.
func (w *Workload) agent(ctx context.Context, c *Client, a AgentSpec) {
	msg := 0
	status := "online"
	channels := w.Conversations
	for think(ctx, c.rng) {
		if r := c.rng.IntN(100); r < 4 {
			next := "online"
			if status == "online" {
				next = []string{"offline", "away"}[c.rng.IntN(2)]
			}
			op := c.Do(w.opCtx, &Op{Kind: KindAgentStatus, Agent: a.ID, Arg: next}, "PUT", "/v1/agents/"+a.ID+"/status",
				map[string]string{"status": next})
			if op.Status == OK {
				status = next
			}
			continue
		}
		op := c.Do(w.opCtx, &Op{Kind: KindAgentRead, Agent: a.ID}, "GET", "/v1/agents/"+a.ID, nil)
		if op.Status != OK {
			continue
		}
		var v AgentView
		if !decodeBody(op.body, &v) {
			w.violation("op %d: agent %s: undecodable answer %v", op.ID, a.ID, op.body)
			continue
		}
		c.hist.Update(op, func(op *Op) { op.View = &v })
		known := channels()
		for _, id := range v.Conversations {
			ch, ok := known[id]
			if !ok || ctx.Err() != nil {
				continue
			}
			rd := c.Do(w.opCtx, &Op{Kind: KindRead, Conv: id, Channel: ch}, "GET", "/v1/conversations/"+id, nil)
			if rd.Status != OK || rd.Holder != a.ID {
				continue
			}
			w.act(c, a, id, ch, rd.State, &msg)
		}
	}
}

// act is what agent a does with conversation id, which it was just seen
// holding in state st.
func (w *Workload) act(c *Client, a AgentSpec, id, ch, st string, msg *int) {
	path := "/v1/conversations/" + id
	do := func(kind, arg, method, path string, body any) {
		c.Do(w.opCtx, &Op{Kind: kind, Conv: id, Channel: ch, Agent: a.ID, Arg: arg}, method, path, body)
	}
	write := func() {
		*msg++
		t := fmt.Sprintf("%s-%d", a.ID, *msg)
		do(KindMsgAgent, t, "POST", path+"/messages", map[string]string{"author": "agent", "agent_id": a.ID, "text": t})
	}
	release := func(ticket string) {
		body := map[string]string{"conversation_id": id}
		if ticket != "" {
			body["ticket_status"] = ticket
		}
		do(KindRelease, ticket, "POST", "/v1/agents/"+a.ID+"/release", body)
	}
	agentEnd := func() {
		do(KindEndAgent, "", "POST", path+"/end", map[string]string{"by": "agent", "agent_id": a.ID})
	}
	r := c.rng.IntN(100)
	switch {
	case st == "offered" && r < 80:
		do(KindAccept, "", "POST", path+"/accept", map[string]string{"agent_id": a.ID})
	case st == "offered" && r < 90:
		do(KindReject, "", "POST", path+"/reject", map[string]string{"agent_id": a.ID})
	case st == "wrap_up" && r < 20:
		release("") // or let voice.wrap_up end it
	case st != "assigned":
	case ch == "chat":
		switch {
		case r < 45:
			write()
		case r < 65:
			do(KindLeave, "", "POST", path+"/leave", map[string]string{"agent_id": a.ID})
		case r < 75:
			agentEnd()
		}
	case ch == "messaging":
		switch {
		case r < 45:
			write()
		case r < 70:
			release("")
		}
	case ch == "email":
		switch {
		case r < 35:
			write()
		case r < 65:
			ticket := []string{"pending", "pending", "solved", "on-hold", "open"}[c.rng.IntN(5)]
			do(KindTicket, ticket, "PUT", path+"/ticket", map[string]string{"status": ticket})
		case r < 70:
			release([]string{"", "pending", "on-hold"}[c.rng.IntN(3)])
		case r < 72:
			agentEnd()
		}
	case ch == "voice":
		if r < 30 {
			agentEnd() // hang up: wrap-up follows
		}
	}
}

// router asks for assignments now and then (the cluster routes by itself in
// auto mode: most answers are 404) and reads random conversations.
func (w *Workload) router(ctx context.Context, c *Client) {
	for think(ctx, c.rng) {
		if c.rng.IntN(3) == 0 {
			op := c.Do(w.opCtx, &Op{Kind: KindAssign}, "POST", "/v1/assignments", map[string]any{})
			if op.Status == OK {
				conv, _ := op.body["conversation_id"].(string)
				ch := w.Conversations()[conv]
				c.hist.Update(op, func(op *Op) { op.Conv, op.Agent, op.Channel = conv, op.Holder, ch })
				if ch == "" {
					w.violation("op %d: assignment of unknown conversation %q", op.ID, conv)
				}
			}
			continue
		}
		w.mu.Lock()
		var cv convInfo
		if len(w.convs) > 0 {
			cv = w.convs[c.rng.IntN(len(w.convs))]
		}
		w.mu.Unlock()
		if cv.id != "" {
			c.Do(w.opCtx, &Op{Kind: KindRead, Conv: cv.id, Channel: cv.channel}, "GET", "/v1/conversations/"+cv.id, nil)
		}
	}
}

// focus is the operator turning routing.focus_mode on and off, about every
// FocusEvery. A write it cannot confirm freezes the mode: it is written
// again until acknowledged, and never changed after.
func (w *Workload) focus(ctx context.Context, c *Client) {
	c.Patient = true
	on := false
	for pause.For(ctx, w.FocusEvery/2+time.Duration(c.rng.Int64N(int64(w.FocusEvery)))) {
		w.mu.Lock()
		frozen := w.policyAmbiguous
		w.mu.Unlock()
		if frozen {
			return
		}
		want := !on
		for {
			op := w.putPolicy(w.opCtx, c, map[string]any{"routing": map[string]any{"focus_mode": want}}, want)
			if op.Status == OK {
				on = want
				break
			}
			if op.Status == Rejected {
				w.violation("op %d: focus_mode=%v refused: %d %s %s", op.ID, want, op.HTTP, op.Code, op.Err)
				return
			}
			if !pause.For(ctx, time.Second) {
				return
			}
		}
	}
}

// Drain sets every agent offline (so that nothing new is offered) and
// returns once each answer is known.
func (w *Workload) Drain(ctx context.Context) error {
	c := w.newClient()
	for _, a := range w.Agents {
		err := Poll(ctx, 60*time.Second, func() error {
			op := c.Do(ctx, &Op{Kind: KindAgentStatus, Agent: a.ID, Arg: "offline"}, "PUT", "/v1/agents/"+a.ID+"/status",
				map[string]string{"status": "offline"})
			if op.Status != OK {
				return fmt.Errorf("agent %s offline: %s %d %s", a.ID, op.Status, op.HTTP, op.Err)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}
