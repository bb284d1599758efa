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
// states the routing rules allow; routing (an offer, or an email's direct
// assignment) only picks an agent with spare capacity on the channel and,
// while focus mode is on, no counting real-time work on another real-time
// channel; no agent is above capacity except by reactivation (a messaging
// conversation or an email that starts counting again while its agent is
// full), and never above one call; every agent.capacity_changed reports
// the load the replay computes; a conversation ends at most once and has
// no event after it ended; an offer times out only while it is open; a
// call goes to wrap-up only from a call in progress; an activity timer
// never fires twice in a row. channels names each conversation's channel,
// caps each agent's capacity; focus says which focus mode each
// policy.changed event set.
type Replay struct {
	Convs  map[string]*ReplayConv
	Agents map[string]*ReplayAgent
	// Routed counts routings per channel, FocusRouted those made while
	// focus mode was on, OverCapacity the agent.capacity_changed events
	// that report a load above capacity (by reactivation), per channel.
	Routed, FocusRouted, OverCapacity map[string]int

	channels   map[string]string
	focus      FocusSchedule
	policies   int  // policy.changed events so far
	focusOn    bool // focus mode now, when focusKnown
	focusKnown bool
	violations []string
	lastID     uint64
}

// ReplayConv is a conversation as the events show it.
type ReplayConv struct {
	Channel    string
	St         string // queued, offered, assigned, unassigned, wrap_up, ended
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
func NewReplay(channels map[string]string, agents []AgentSpec, focus FocusSchedule) *Replay {
	r := &Replay{Convs: map[string]*ReplayConv{}, Agents: map[string]*ReplayAgent{}, channels: channels, focus: focus,
		focusKnown: true, Routed: map[string]int{}, FocusRouted: map[string]int{}, OverCapacity: map[string]int{}}
	for _, a := range agents {
		r.Agents[a.ID] = &ReplayAgent{Cap: a.capacity(), Load: map[string]int{}, Exempt: map[string]int{}}
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

// realTime reports whether ch is a real-time channel (focus mode's).
func realTime(ch string) bool { return ch != "email" }

// counts mirrors the state machine's counting rule: a held chat or call
// (offered, assigned, in wrap-up) counts; a held email while its ticket is
// new or open; a held messaging conversation while also active.
func counts(c *ReplayConv) bool {
	if c.Holder == "" || (c.St != "offered" && c.St != "assigned" && c.St != "wrap_up") {
		return false
	}
	switch c.Channel {
	case "messaging":
		return c.Active && c.TicketOpen
	case "email":
		return c.TicketOpen
	}
	return true
}

// recount brings c's contribution to its holder's load in line with the
// counting rule. reactivation marks a conversation that starts counting
// while its agent is full as exempt (messaging and email only: a chat or a
// call never counts again without being routed).
func (r *Replay) recount(e *Event, c *ReplayConv, reactivation bool) {
	want := counts(c)
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
			if !reactivation || c.Channel == "chat" || c.Channel == "voice" {
				r.bad(e, "agent %s above %s capacity: load %d, capacity %d", c.Holder, c.Channel, a.Load[c.Channel], a.Cap[c.Channel])
			}
			a.Exempt[c.Channel]++
		}
		if c.Channel == "voice" && a.Load["voice"] > 1 {
			r.bad(e, "agent %s on %d calls at once", c.Holder, a.Load["voice"])
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

// route checks a routing decision, c from the queue to agent e.AgentID in
// state st: spare capacity on the channel, and in focus mode no counting
// real-time work on another real-time channel.
func (r *Replay) route(e *Event, c *ReplayConv, st string) {
	a := r.agent(e.AgentID)
	if a.Load[c.Channel] >= a.Cap[c.Channel] {
		r.bad(e, "routed to agent %s with no spare %s capacity (load %d, capacity %d)", e.AgentID, c.Channel, a.Load[c.Channel], a.Cap[c.Channel])
	}
	r.Routed[c.Channel]++
	if r.focusKnown && r.focusOn {
		r.FocusRouted[c.Channel]++
		if realTime(c.Channel) {
			for _, other := range Channels {
				if other != c.Channel && realTime(other) && a.Load[other] > 0 {
					r.bad(e, "focus mode on: %s routed to agent %s, who has %d counting on %s", c.Channel, e.AgentID, a.Load[other], other)
				}
			}
		}
	}
	c.St, c.Holder = st, e.AgentID
	r.recount(e, c, false)
}

// Apply replays one event.
func (r *Replay) Apply(e *Event) {
	if r.lastID != 0 && e.ID != r.lastID+1 {
		r.bad(e, "event ids jump from %d", r.lastID)
	}
	if r.lastID == 0 && e.ID != 1 {
		r.bad(e, "the event log starts at %d: the replay needs it whole", e.ID)
	}
	r.lastID = e.ID
	if e.Type == "policy.changed" {
		r.focusOn, r.focusKnown = r.focus.At(r.policies)
		r.policies++
		return
	}
	if strings.HasPrefix(e.Type, "agent.") {
		if e.Type == "agent.capacity_changed" {
			a := r.agent(e.AgentID)
			var d struct {
				Capacity map[string]int `json:"capacity"`
				Load     map[string]int `json:"load"`
			}
			if decodeBody(e.Data, &d) {
				a.Cap = d.Capacity
				for _, ch := range Channels {
					if d.Load[ch] != a.Load[ch] {
						r.bad(e, "reported %s load %d, replay has %d", ch, d.Load[ch], a.Load[ch])
						a.Load[ch] = d.Load[ch]
					}
					if d.Load[ch] > d.Capacity[ch] {
						r.OverCapacity[ch]++
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
		if c.Channel == "email" {
			r.bad(e, "an email offered (email.auto_accept is on)")
		}
		r.route(e, c, "offered")
	case "conversation.assigned":
		switch {
		case c.St == "queued" && c.Holder == "":
			// Routed without an offer: an email (email.auto_accept).
			if c.Channel != "email" {
				r.bad(e, "a %s assigned without an offer (routing.auto_accept is off)", c.Channel)
			}
			r.route(e, c, "assigned")
		case heldBy("offered"):
			c.St = "assigned"
			r.recount(e, c, false)
		default:
			r.bad(e, "assigned while %s held by %q (no offer to this agent)", c.St, c.Holder)
		}
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
	case "conversation.wrap_up":
		if c.Channel != "voice" || !heldBy("assigned") {
			r.bad(e, "wrap-up of a %s while %s held by %q", c.Channel, c.St, c.Holder)
		}
		c.St = "wrap_up"
		r.recount(e, c, false)
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

// FocusSchedule is which focus mode the run's PUT /v1/policy writes set,
// in the order they applied, as far as the history tells: the writes
// acknowledged one after the other (each answered before the next was
// sent) applied once each in that order; from the first write whose
// outcome is unknown on, the order is unknown, and the schedule knows the
// mode only when every later write sets the same one (the workload sees to
// it).
type FocusSchedule struct {
	// Prefix is the mode set by each of the first policy.changed events.
	Prefix []bool
	// Tail is the mode set by every later one; nil when unknown.
	Tail *bool
	ops  []Op // the policy writes, by call
}

// focusOf parses a policy op's argument.
func focusOf(op Op) (on, ok bool) {
	switch op.Arg {
	case focusArg(true):
		return true, true
	case focusArg(false):
		return false, true
	}
	return false, false
}

// NewFocusSchedule reads the policy writes (KindPolicy) of a history.
func NewFocusSchedule(ops []Op) FocusSchedule {
	var f FocusSchedule
	for _, op := range ops {
		if op.Kind == KindPolicy {
			f.ops = append(f.ops, op)
		}
	}
	sort.SliceStable(f.ops, func(i, j int) bool { return f.ops[i].Call < f.ops[j].Call })
	i := 0
	for ; i < len(f.ops); i++ {
		op := f.ops[i]
		if op.Status == Ambiguous || (i+1 < len(f.ops) && op.Return >= f.ops[i+1].Call) {
			break
		}
		if op.Status == OK {
			on, ok := focusOf(op)
			if !ok {
				return FocusSchedule{ops: f.ops} // a write of unknown effect: nothing is known
			}
			f.Prefix = append(f.Prefix, on)
		}
	}
	var tail *bool
	for _, op := range f.ops[i:] {
		if op.Status == Rejected {
			continue
		}
		on, ok := focusOf(op)
		if !ok || (tail != nil && *tail != on) {
			return FocusSchedule{Prefix: f.Prefix, ops: f.ops}
		}
		tail = &on
	}
	f.Tail = tail
	return f
}

// At is the focus mode the i-th policy.changed event (from 0) set, and
// whether it is known.
func (f FocusSchedule) At(i int) (on, known bool) {
	if i < len(f.Prefix) {
		return f.Prefix[i], true
	}
	if f.Tail != nil {
		return *f.Tail, true
	}
	return false, false
}

// On reports whether focus mode was certainly on throughout [t1, t2]
// (history times): a write turning it on was acknowledged by t1, and every
// write that may have turned it off by t2 had applied before that one was
// sent.
func (f FocusSchedule) On(t1, t2 int64) bool {
	for _, p := range f.ops {
		if on, ok := focusOf(p); !ok || !on || p.Status != OK || p.Return > t1 {
			continue
		}
		certain := true
		for _, q := range f.ops {
			if on, ok := focusOf(q); ok && on || q.Status == Rejected || q.Call > t2 {
				continue
			}
			if q.Status != OK || q.Return >= p.Call {
				certain = false
				break
			}
		}
		if certain {
			return true
		}
	}
	return false
}

// AgentReadStats is what CheckAgentReads looked at.
type AgentReadStats struct {
	Reads      int // agent reads with an answer
	InFocus    int // of which made while focus mode was certainly on
	Checkable  int // reads showing a chat or a call certainly routed in focus mode
	BothLoaded int // agent reads showing load on two real-time channels (any time)
}

// CheckAgentReads checks what the agents read about themselves
// (KindAgentRead ops with their View): no chat load above capacity, no
// call load above capacity or one (a chat or a call never counts above
// capacity: no forced assignment in the run; messaging and email may, by
// reactivation, which the answer cannot tell apart); and focus mode.
//
// Focus mode, from reads alone: a conversation an agent holds in read R
// but did not hold in its previous read R0 was routed to it in between
// (routing is the only way to hold one in this run) and held ever since.
// Held chats and calls always count. So if R shows a chat and a call both
// absent from earlier reads, and focus mode was certainly on from the
// earlier of those reads through R, the one routed second was routed while
// the other counted on another real-time channel: a violation. Messaging
// is left out: a held messaging conversation stops counting when inactive
// and counts again on an end-user message without being routed, which
// reads cannot see; the event-stream replay checks it exactly.
func CheckAgentReads(ops []Op, channels map[string]string, focus FocusSchedule) ([]string, AgentReadStats) {
	var bad []string
	var st AgentReadStats
	type agentReads struct {
		reads []Op
		since map[string]int // held conversation → first read of its current holding
	}
	by := map[string]*agentReads{}
	var ids []string
	for _, op := range ops {
		if op.Kind != KindAgentRead || op.Status != OK || op.View == nil {
			continue
		}
		ar := by[op.Agent]
		if ar == nil {
			ar = &agentReads{since: map[string]int{}}
			by[op.Agent] = ar
			ids = append(ids, op.Agent)
		}
		ar.reads = append(ar.reads, op)
	}
	sort.Strings(ids)
	for _, id := range ids {
		ar := by[id]
		sort.SliceStable(ar.reads, func(i, j int) bool { return ar.reads[i].Call < ar.reads[j].Call })
		for j, r := range ar.reads {
			st.Reads++
			v := r.View
			if v.Load["chat"] > v.Capacity["chat"] {
				bad = append(bad, fmt.Sprintf("op %d: agent %s chat load %d above capacity %d", r.ID, id, v.Load["chat"], v.Capacity["chat"]))
			}
			if v.Load["voice"] > min(v.Capacity["voice"], 1) {
				bad = append(bad, fmt.Sprintf("op %d: agent %s on %d calls, voice capacity %d", r.ID, id, v.Load["voice"], v.Capacity["voice"]))
			}
			loaded := 0
			for _, ch := range Channels {
				if realTime(ch) && v.Load[ch] > 0 {
					loaded++
				}
			}
			if loaded > 1 {
				st.BothLoaded++
			}
			since := map[string]int{}
			for _, c := range v.Conversations {
				if k, ok := ar.since[c]; ok {
					since[c] = k
				} else {
					since[c] = j
				}
			}
			ar.since = since
			if focus.On(r.Call, r.Return) {
				st.InFocus++
			}
			// The chats and calls held since a read that did not show them:
			// from when on each was certainly routed.
			from := map[string]int64{}
			for _, c := range v.Conversations {
				ch := channels[c]
				if k := since[c]; k > 0 && (ch == "chat" || ch == "voice") {
					// The latest witness gives the shortest span to be sure of.
					from[ch] = max(from[ch], ar.reads[k-1].Call)
				}
			}
			for _, t := range from {
				if focus.On(t, r.Return) {
					st.Checkable++
					break
				}
			}
			if len(from) == 2 && focus.On(min(from["chat"], from["voice"]), r.Return) {
				bad = append(bad, fmt.Sprintf("op %d: agent %s holds chat and call %v, both routed while focus mode was on", r.ID, id, v.Conversations))
			}
		}
	}
	return bad, st
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
			if op.Arg == "" {
				continue // a call: no first message
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
