package nemesis

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"
)

var checkHTTP = &http.Client{Timeout: 30 * time.Second}

// get fetches url, retrying transport errors and 5xx for up to d.
func get(ctx context.Context, url string, d time.Duration) (int, []byte, error) {
	var code int
	var body []byte
	err := Poll(ctx, d, func() error {
		req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
		resp, err := checkHTTP.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		if resp.StatusCode == 502 || resp.StatusCode == 503 || resp.StatusCode == 504 {
			return fmt.Errorf("GET %s: %d %s", url, resp.StatusCode, b)
		}
		code, body = resp.StatusCode, b
		return nil
	})
	return code, body, err
}

// CompareSnapshots downloads GET /v1/cluster/snapshot from every node (each
// node serves its own replica after a read barrier) and reports whether they
// are byte-identical. It retries while the applied index moves (a timer may
// still fire). On a mismatch it returns the differing snapshots.
func CompareSnapshots(ctx context.Context, c *Cluster) (identical bool, size int, snaps map[string][]byte, err error) {
	for range 10 {
		before, err := c.WaitConverged(ctx, 60*time.Second)
		if err != nil {
			return false, 0, nil, err
		}
		snaps = map[string][]byte{}
		for _, n := range c.Nodes {
			code, b, err := get(ctx, n.URL()+"/v1/cluster/snapshot", 30*time.Second)
			if err != nil {
				return false, 0, nil, err
			}
			if code != 200 {
				return false, 0, nil, fmt.Errorf("snapshot from %s: %d %s", n.ID, code, b)
			}
			snaps[n.ID] = b
		}
		after, err := c.WaitConverged(ctx, 60*time.Second)
		if err != nil {
			return false, 0, nil, err
		}
		first := snaps[c.Nodes[0].ID]
		same := true
		for _, n := range c.Nodes[1:] {
			same = same && bytes.Equal(first, snaps[n.ID])
		}
		if same {
			return true, len(first), nil, nil
		}
		if before == after {
			return false, len(first), snaps, nil
		}
	}
	return false, 0, snaps, nil
}

// CheckInvariants runs GET /v1/debug/invariants on every node.
func CheckInvariants(ctx context.Context, c *Cluster) []string {
	var bad []string
	for _, n := range c.Nodes {
		code, b, err := get(ctx, n.URL()+"/v1/debug/invariants", 30*time.Second)
		if err != nil || code != 200 {
			bad = append(bad, fmt.Sprintf("%s: invariants: %d %s %v", n.ID, code, b, err))
		}
	}
	return bad
}

// Conversation is GET /v1/conversations/{id}.
type Conversation struct {
	ID          string `json:"id"`
	Channel     string `json:"channel"`
	State       string `json:"state"`
	Activity    string `json:"activity"`
	AgentID     string `json:"agent_id"`
	EndedReason string `json:"ended_reason"`
	Transcript  []struct {
		Author string `json:"author"`
		Text   string `json:"text"`
	} `json:"transcript"`
}

func (cv *Conversation) texts() []string {
	var out []string
	for _, m := range cv.Transcript {
		out = append(out, m.Text)
	}
	return out
}

// ReadAll reads every conversation in ids on every node with
// ?consistency=stale and checks that the nodes' answers are byte-identical.
// It returns the first node's view (nil for a conversation that does not
// exist).
func ReadAll(ctx context.Context, c *Cluster, ids []string) (map[string]*Conversation, []string, error) {
	out := map[string]*Conversation{}
	var bad []string
	for _, id := range ids {
		var first []byte
		var firstCode int
		for i, n := range c.Nodes {
			code, b, err := get(ctx, n.URL()+"/v1/conversations/"+id+"?consistency=stale", 30*time.Second)
			if err != nil {
				return nil, nil, err
			}
			if i == 0 {
				first, firstCode = b, code
				if code == 200 {
					var cv Conversation
					if err := json.Unmarshal(b, &cv); err != nil {
						return nil, nil, err
					}
					out[id] = &cv
				} else if code != 404 {
					bad = append(bad, fmt.Sprintf("%s on %s: %d %s", id, n.ID, code, b))
				}
				continue
			}
			if code != firstCode || !bytes.Equal(b, first) {
				bad = append(bad, fmt.Sprintf("%s differs: %s says %d %s; %s says %d %s", id, c.Nodes[0].ID, firstCode, first, n.ID, code, b))
			}
		}
	}
	return out, bad, nil
}

// Event is one entry of GET /v1/events.
type Event struct {
	ID             uint64         `json:"id"`
	Type           string         `json:"type"`
	ConversationID string         `json:"conversation_id"`
	AgentID        string         `json:"agent_id"`
	Data           map[string]any `json:"data"`
}

// FetchEvents reads the whole event log from one node.
func FetchEvents(ctx context.Context, n *Node) ([]Event, error) {
	var all []Event
	after := uint64(0)
	for {
		code, b, err := get(ctx, fmt.Sprintf("%s/v1/events?after=%d&limit=1000", n.URL(), after), 30*time.Second)
		if err != nil {
			return nil, err
		}
		if code != 200 {
			return nil, fmt.Errorf("events after %d: %d %s", after, code, b)
		}
		var page struct {
			Events []Event `json:"events"`
			Next   uint64  `json:"next"`
		}
		if err := json.Unmarshal(b, &page); err != nil {
			return nil, err
		}
		if len(page.Events) == 0 {
			return all, nil
		}
		all = append(all, page.Events...)
		after = page.Next
	}
}

// Replay replays the event stream and checks, at every event: a
// conversation is held by at most one agent and only moves between holding
// states the routing rules allow; an offer is only made to an agent with
// spare capacity on the channel; no agent is above capacity except by
// reactivation (a messaging conversation that starts counting again while
// its agent is full); every agent.capacity_changed reports the load the
// replay computes; a conversation ends at most once and has no event after
// it ended; an offer times out only while it is open; an activity timer
// never fires twice in a row. channels names each conversation's channel,
// caps each agent's capacity.
type Replay struct {
	Convs  map[string]*ReplayConv
	Agents map[string]*ReplayAgent

	channels   map[string]string
	violations []string
	lastID     uint64
}

// ReplayConv is a conversation as the events show it.
type ReplayConv struct {
	Channel    string
	St         string // queued, offered, assigned, unassigned, ended
	Holder     string
	Active     bool
	TicketOpen bool
	Counted    bool
	Exempt     bool
	Ended      int
	Reason     string
	Transcript []string // from conversation.ended
}

// ReplayAgent is an agent's load as the events show it.
type ReplayAgent struct {
	Cap  map[string]int
	Load map[string]int
	// Exempt counts counted conversations over capacity by reactivation.
	Exempt map[string]int
}

// NewReplay starts a replay.
func NewReplay(channels map[string]string, agents []AgentSpec) *Replay {
	r := &Replay{Convs: map[string]*ReplayConv{}, Agents: map[string]*ReplayAgent{}, channels: channels}
	for _, a := range agents {
		r.Agents[a.ID] = &ReplayAgent{Cap: map[string]int{"chat": a.Chat, "messaging": a.Messaging},
			Load: map[string]int{}, Exempt: map[string]int{}}
	}
	return r
}

// Violations found so far.
func (r *Replay) Violations() []string { return r.violations }

func (r *Replay) bad(e *Event, format string, args ...any) {
	if len(r.violations) < 200 {
		r.violations = append(r.violations, fmt.Sprintf("event %d %s conv=%s agent=%s: %s", e.ID, e.Type, e.ConversationID, e.AgentID, fmt.Sprintf(format, args...)))
	}
}

func (r *Replay) agent(id string) *ReplayAgent {
	a := r.Agents[id]
	if a == nil {
		a = &ReplayAgent{Cap: map[string]int{}, Load: map[string]int{}, Exempt: map[string]int{}}
		r.Agents[id] = a
	}
	return a
}

func (r *Replay) conv(id string) *ReplayConv {
	c := r.Convs[id]
	if c == nil {
		c = &ReplayConv{Channel: r.channels[id], Active: true, TicketOpen: true}
		r.Convs[id] = c
	}
	return c
}

// recount mirrors the state machine's counting rule: a held chat counts; a
// held messaging conversation counts while active with an open ticket.
// reactivation marks a conversation that starts counting while its agent
// is full as exempt.
func (r *Replay) recount(e *Event, c *ReplayConv, reactivation bool) {
	held := c.Holder != "" && (c.St == "offered" || c.St == "assigned")
	want := held && (c.Channel == "chat" || (c.Active && c.TicketOpen))
	if want == c.Counted {
		return
	}
	a := r.agent(c.Holder)
	if !want && c.Holder == "" {
		r.bad(e, "a counted conversation lost its holder")
		return
	}
	if want {
		a.Load[c.Channel]++
		c.Exempt = a.Load[c.Channel] > a.Cap[c.Channel]
		if c.Exempt {
			if !reactivation {
				r.bad(e, "agent %s above %s capacity: load %d, capacity %d", c.Holder, c.Channel, a.Load[c.Channel], a.Cap[c.Channel])
			}
			a.Exempt[c.Channel]++
		}
	} else {
		a.Load[c.Channel]--
		if c.Exempt {
			a.Exempt[c.Channel]--
		}
		c.Exempt = false
	}
	c.Counted = want
}

// release takes c from its holder (the holder must be agent when given).
func (r *Replay) release(e *Event, c *ReplayConv, st string) {
	c.St = st
	r.recount(e, c, false)
	c.Holder = ""
}

// Apply replays one event.
func (r *Replay) Apply(e *Event) {
	if r.lastID != 0 && e.ID != r.lastID+1 {
		r.bad(e, "event ids jump from %d", r.lastID)
	}
	r.lastID = e.ID
	if strings.HasPrefix(e.Type, "agent.") {
		if e.Type == "agent.capacity_changed" {
			a := r.agent(e.AgentID)
			var d struct {
				Capacity map[string]int `json:"capacity"`
				Load     map[string]int `json:"load"`
			}
			if decodeBody(e.Data, &d) {
				a.Cap = d.Capacity
				for _, ch := range []string{"chat", "messaging"} {
					if d.Load[ch] != a.Load[ch] {
						r.bad(e, "reported %s load %d, replay has %d", ch, d.Load[ch], a.Load[ch])
						a.Load[ch] = d.Load[ch]
					}
				}
			}
		}
		return
	}
	if e.ConversationID == "" {
		return
	}
	c := r.conv(e.ConversationID)
	if c.St == "ended" && !strings.HasPrefix(e.Type, "ticket.") {
		r.bad(e, "event after the conversation ended")
	}
	heldBy := func(st string) bool { return c.St == st && c.Holder == e.AgentID }
	switch e.Type {
	case "conversation.queued":
		if c.St != "" {
			r.bad(e, "queued twice (state %s)", c.St)
		}
		c.St = "queued"
	case "conversation.offered":
		if c.St != "queued" || c.Holder != "" {
			r.bad(e, "offered while %s held by %q", c.St, c.Holder)
		}
		a := r.agent(e.AgentID)
		if a.Load[c.Channel] >= a.Cap[c.Channel] {
			r.bad(e, "routed to agent %s with no spare %s capacity (load %d, capacity %d)", e.AgentID, c.Channel, a.Load[c.Channel], a.Cap[c.Channel])
		}
		c.St, c.Holder = "offered", e.AgentID
		r.recount(e, c, false)
	case "conversation.assigned":
		if !heldBy("offered") {
			r.bad(e, "assigned while %s held by %q (no offer to this agent)", c.St, c.Holder)
		}
		c.St, c.Holder = "assigned", e.AgentID
		r.recount(e, c, false)
	case "conversation.rejected", "conversation.offer_timed_out":
		if !heldBy("offered") {
			r.bad(e, "offer returned while %s held by %q", c.St, c.Holder)
		}
		r.release(e, c, "queued")
	case "conversation.unassigned":
		if !heldBy("assigned") {
			r.bad(e, "unassigned while %s held by %q", c.St, c.Holder)
		}
		r.release(e, c, "unassigned")
	case "conversation.requeued":
		switch {
		case e.AgentID == "" && c.St != "unassigned":
			r.bad(e, "reopened while %s", c.St)
		case e.AgentID != "" && c.Holder != e.AgentID:
			r.bad(e, "requeued from %s while held by %q", e.AgentID, c.Holder)
		}
		r.release(e, c, "queued")
	case "conversation.ended":
		c.Ended++
		if c.Ended > 1 {
			r.bad(e, "ended %d times", c.Ended)
		}
		c.Reason, _ = e.Data["reason"].(string)
		c.Transcript = nil
		if tr, ok := e.Data["transcript"].([]any); ok {
			for _, m := range tr {
				if mm, ok := m.(map[string]any); ok {
					t, _ := mm["text"].(string)
					c.Transcript = append(c.Transcript, t)
				}
			}
		}
		r.release(e, c, "ended")
	case "conversation.inactive":
		if !c.Active {
			r.bad(e, "inactive twice: an activity timer fired twice")
		}
		c.Active = false
		r.recount(e, c, false)
	case "conversation.active":
		c.Active = true
		r.recount(e, c, true)
	case "ticket.created", "ticket.updated":
		var d struct {
			Ticket struct {
				Status string `json:"status"`
			} `json:"ticket"`
		}
		if decodeBody(e.Data, &d) {
			c.TicketOpen = d.Ticket.Status == "new" || d.Ticket.Status == "open"
			if c.St != "ended" {
				r.recount(e, c, true)
			}
		}
	}
}

// Finish checks the final state against the stale reads: every
// conversation's replayed state and holder match what the nodes hold, and an
// ended one's conversation.ended transcript is its transcript.
func (r *Replay) Finish(reads map[string]*Conversation) {
	ids := make([]string, 0, len(reads))
	for id := range reads {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	e := &Event{Type: "final"}
	for _, id := range ids {
		cv := reads[id]
		if cv == nil {
			continue
		}
		e.ConversationID = id
		rc := r.Convs[id]
		if rc == nil {
			r.bad(e, "no event for an existing conversation")
			continue
		}
		holder := rc.Holder
		if cv.State == "ended" || cv.State == "queued" || cv.State == "unassigned" {
			holder = cv.AgentID // not compared
		}
		if rc.St != cv.State || holder != cv.AgentID {
			r.bad(e, "replay ends %s(%s), node holds %s(%s)", rc.St, rc.Holder, cv.State, cv.AgentID)
		}
		if cv.State == "ended" && !slices.Equal(rc.Transcript, cv.texts()) {
			r.bad(e, "conversation.ended carried %q, transcript is %q", rc.Transcript, cv.texts())
		}
	}
}

// CheckMessages checks the transcripts against the history: every
// acknowledged message (and a create's first message) is in its
// conversation's transcript, in the order the acknowledgements imply; no
// rejected message is; every acknowledged create exists.
func CheckMessages(ops []Op, reads map[string]*Conversation) []string {
	var bad []string
	type acked struct {
		op  Op
		pos int
	}
	byConv := map[string][]acked{}
	for _, op := range ops {
		if op.Kind != KindCreate && op.Kind != KindMsgVisitor && op.Kind != KindMsgAgent {
			continue
		}
		cv := reads[op.Conv]
		switch op.Status {
		case OK:
			if cv == nil {
				bad = append(bad, fmt.Sprintf("op %d: acknowledged %s of %s, which does not exist", op.ID, op.Kind, op.Conv))
				continue
			}
			pos := slices.Index(cv.texts(), op.Arg)
			if pos < 0 {
				bad = append(bad, fmt.Sprintf("op %d: acknowledged message %q missing from %s", op.ID, op.Arg, op.Conv))
				continue
			}
			byConv[op.Conv] = append(byConv[op.Conv], acked{op, pos})
		case Rejected:
			if cv != nil && op.Kind != KindCreate && slices.Contains(cv.texts(), op.Arg) {
				bad = append(bad, fmt.Sprintf("op %d: rejected message %q (%s) is in %s", op.ID, op.Arg, op.Code, op.Conv))
			}
		}
	}
	for conv, as := range byConv {
		for _, a := range as {
			for _, b := range as {
				if a.op.Return < b.op.Call && a.pos > b.pos {
					bad = append(bad, fmt.Sprintf("%s: message %q (op %d) acknowledged before %q (op %d) was sent, but comes after it",
						conv, a.op.Arg, a.op.ID, b.op.Arg, b.op.ID))
				}
			}
		}
	}
	return bad
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
