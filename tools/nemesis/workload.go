package nemesis

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/omnirouter/omnirouter/internal/pause"
)

// AgentSpec is one agent of the run and its capacity.
type AgentSpec struct {
	ID        string
	Chat      int
	Messaging int
}

// Workload drives the cluster like production: visitors open and write to
// conversations, agents accept, write, leave, end and release, a routing
// engine asks for assignments. Every operation goes through a Client and is
// recorded.
type Workload struct {
	Hist   *History
	URLs   []string
	Seed   uint64
	Agents []AgentSpec
	// Visitors is the number of visitor goroutines.
	Visitors int

	opCtx      context.Context
	mu         sync.Mutex
	convs      []convInfo
	nextConv   int
	violations []string
	clients    int
}

type convInfo struct {
	id, channel string
	owner       int // visitor client id
}

// Violations are invariant breaches the clients saw in answers (an agent
// read above capacity).
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

// Setup registers the agents and sets them online, retrying until done.
func (w *Workload) Setup(ctx context.Context) error {
	c := w.newClient()
	for _, a := range w.Agents {
		for _, step := range []struct {
			kind, arg, method, path string
			body                    any
		}{
			{KindAgentPut, fmt.Sprintf("chat=%d messaging=%d", a.Chat, a.Messaging), "PUT", "/v1/agents/" + a.ID,
				map[string]any{"name": "agent " + a.ID, "capacity": map[string]int{"chat": a.Chat, "messaging": a.Messaging}}},
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
	wg.Wait()
}

func think(ctx context.Context, rng *rand.Rand) bool {
	return pause.For(ctx, time.Duration(100+rng.IntN(250))*time.Millisecond)
}

// visitor opens conversations and writes to them, goes away and comes back,
// ends chats.
func (w *Workload) visitor(ctx context.Context, c *Client) {
	var mine []convInfo
	ended := map[string]bool{}
	msg := 0
	text := func() string { msg++; return fmt.Sprintf("v%d-%d", c.ID, msg) }
	for think(ctx, c.rng) {
		var live []convInfo
		for _, cv := range mine {
			if !ended[cv.id] {
				live = append(live, cv)
			}
		}
		r := c.rng.IntN(100)
		switch {
		case len(live) < 2 || (r < 15 && len(live) < 4):
			ch := "chat"
			if c.rng.IntN(100) < 40 {
				ch = "messaging"
			}
			w.mu.Lock()
			w.nextConv++
			cv := convInfo{id: fmt.Sprintf("%s%d", ch[:1], w.nextConv), channel: ch, owner: c.ID}
			w.convs = append(w.convs, cv)
			w.mu.Unlock()
			mine = append(mine, cv)
			t := text()
			op := c.Do(w.opCtx, &Op{Kind: KindCreate, Conv: cv.id, Channel: ch, Arg: t}, "POST", "/v1/conversations",
				map[string]any{"id": cv.id, "channel": ch, "message": t})
			if op.Status == Rejected {
				ended[cv.id] = true
			}
		case r < 60:
			cv := live[c.rng.IntN(len(live))]
			t := text()
			op := c.Do(w.opCtx, &Op{Kind: KindMsgVisitor, Conv: cv.id, Channel: cv.channel, Arg: t}, "POST",
				"/v1/conversations/"+cv.id+"/messages", map[string]string{"author": "visitor", "text": t})
			if op.Status == Rejected {
				ended[cv.id] = true
			}
		case r < 72:
			cv := live[c.rng.IntN(len(live))]
			op := c.Do(w.opCtx, &Op{Kind: KindRead, Conv: cv.id, Channel: cv.channel}, "GET", "/v1/conversations/"+cv.id, nil)
			if op.State == "ended" || op.Code == "conversation_not_found" {
				ended[cv.id] = true
			}
		case r < 85:
			cv := live[c.rng.IntN(len(live))]
			if cv.channel != "chat" {
				continue
			}
			ev := "disconnected"
			if c.rng.IntN(2) == 0 {
				ev = "connected"
			}
			c.Do(w.opCtx, &Op{Kind: KindPresence, Conv: cv.id, Channel: cv.channel, Arg: ev}, "POST",
				"/v1/conversations/"+cv.id+"/presence", map[string]string{"event": ev})
		case r < 92:
			cv := live[c.rng.IntN(len(live))]
			if cv.channel != "chat" {
				continue
			}
			op := c.Do(w.opCtx, &Op{Kind: KindEndVisitor, Conv: cv.id, Channel: cv.channel}, "POST",
				"/v1/conversations/"+cv.id+"/end", map[string]string{"by": "visitor"})
			if op.Status != Ambiguous {
				ended[cv.id] = true
			}
		default:
			// Forget about a conversation: its timers will end it (chat) or
			// it waits (messaging).
			ended[live[c.rng.IntN(len(live))].id] = true
		}
	}
}

type agentView struct {
	Status        string         `json:"status"`
	Capacity      map[string]int `json:"capacity"`
	Load          map[string]int `json:"load"`
	Conversations []string       `json:"conversations"`
}

// agent plays one agent: it looks at its conversations, accepts offers,
// writes, leaves, ends and releases, and sometimes goes offline or away.
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
		var v agentView
		if !decodeBody(op.body, &v) {
			continue
		}
		// Chat can only go above capacity by an operator's forced assignment
		// or a lowered limit, neither of which this run does.
		if v.Load["chat"] > v.Capacity["chat"] {
			w.violation("op %d: agent %s chat load %d above capacity %d", op.ID, a.ID, v.Load["chat"], v.Capacity["chat"])
		}
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
			r := c.rng.IntN(100)
			path := "/v1/conversations/" + id
			switch {
			case rd.State == "offered" && r < 85:
				c.Do(w.opCtx, &Op{Kind: KindAccept, Conv: id, Channel: ch, Agent: a.ID}, "POST", path+"/accept",
					map[string]string{"agent_id": a.ID})
			case rd.State != "assigned":
			case r < 45:
				msg++
				t := fmt.Sprintf("%s-%d", a.ID, msg)
				c.Do(w.opCtx, &Op{Kind: KindMsgAgent, Conv: id, Channel: ch, Agent: a.ID, Arg: t}, "POST", path+"/messages",
					map[string]string{"author": "agent", "agent_id": a.ID, "text": t})
			case ch == "chat" && r < 65:
				c.Do(w.opCtx, &Op{Kind: KindLeave, Conv: id, Channel: ch, Agent: a.ID}, "POST", path+"/leave",
					map[string]string{"agent_id": a.ID})
			case ch == "chat" && r < 75:
				c.Do(w.opCtx, &Op{Kind: KindEndAgent, Conv: id, Channel: ch, Agent: a.ID}, "POST", path+"/end",
					map[string]string{"by": "agent", "agent_id": a.ID})
			case ch == "messaging" && r < 70:
				c.Do(w.opCtx, &Op{Kind: KindRelease, Conv: id, Channel: ch, Agent: a.ID}, "POST", "/v1/agents/"+a.ID+"/release",
					map[string]string{"conversation_id": id})
			}
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
