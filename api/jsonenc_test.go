package api

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/omnirouter/omnirouter/capacity"
	"github.com/omnirouter/omnirouter/routing"
)

// awkward strings: everything encoding/json escapes, or must not.
var awkward = []string{
	"", "plain", `quote " and \ backslash`, "<script>&amp;</script>", "tab\tnew\nline\rcr\bbs\fff",
	"\x00\x01\x1f\x7f", "héllo wörld ✓ 😀", "line\u2028sep\u2029para", "bad \xff utf8 \xc3", "\xed\xa0\x80 surrogate",
}

func sampleConversations() []routing.Conversation {
	var out []routing.Conversation
	for i, s := range awkward {
		c := routing.Conversation{
			ID: "c-" + s, Channel: capacity.Channel(i % int(capacity.NumChannels)), Client: routing.Client(i % 4),
			PushEnabled: i%2 == 0, Priority: i*7 - 20, Group: s, VisitorID: s, State: routing.State(i % 8),
			Activity: routing.Activity(i % 5), AgentID: s, Missed: i%3 == 0, EndedReason: s,
			CreatedAt: 1700000000123 + int64(i), QueuedAt: int64(i%2) * 1700000000999, EndedAt: int64(i%3) * 1,
		}
		if i%2 == 1 {
			c.Skills = []string{s, "billing", ""}
		}
		if i%3 != 0 {
			c.Ticket = &routing.Ticket{ID: "t-" + s, Status: routing.TicketStatus(i % 5), CreatedAt: int64(i%2) * 1700000001000, Via: s}
		}
		for j := 0; j < i%4; j++ {
			c.Transcript = append(c.Transcript, routing.Message{Author: routing.Author(j % 4), AgentID: awkward[(i+j)%len(awkward)],
				Text: awkward[(i+2*j)%len(awkward)], At: int64(j) * 1700000000001})
		}
		out = append(out, c)
	}
	return out
}

// The hand-written answers are byte for byte what json.Marshal makes of
// the documented view structs.
func TestConversationJSONMatchesMarshal(t *testing.T) {
	for _, c := range sampleConversations() {
		sameAsMarshal(t, "conversation "+c.ID, appendConversationJSON(nil, &c), conversationView(&c))
	}
}

// sameAsMarshal fails t unless got is json.Marshal(view).
func sameAsMarshal(t *testing.T, what string, got []byte, view any) {
	t.Helper()
	want, err := json.Marshal(view)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s:\n got %s\nwant %s", what, got, want)
	}
}

func TestAgentJSONMatchesMarshal(t *testing.T) {
	for i, s := range awkward {
		a := routing.Agent{ID: "a-" + s, Name: s, Status: routing.AgentStatus(i % 4),
			Capacity: capacity.Limits{i, 2 * i}, Load: capacity.Load{i % 3, -i}}
		if i%2 == 0 {
			a.Skills, a.Groups, a.Conversations = []string{s}, []string{"g", s}, []string{"c1", s}
		}
		sameAsMarshal(t, "agent "+a.ID, appendAgentJSON(nil, &a), agentView(&a))
	}
}

func FuzzConversationJSON(f *testing.F) {
	for _, s := range awkward {
		f.Add(s, s, int64(1700000000123), 3)
	}
	f.Fuzz(func(t *testing.T, a, b string, at int64, n int) {
		c := routing.Conversation{ID: a, Group: b, VisitorID: a + b, Skills: []string{b, a}, CreatedAt: at,
			Priority: n, State: routing.State(n & 7), Channel: capacity.Channel(n & 1), Client: routing.Client(n & 3),
			Ticket:     &routing.Ticket{ID: b, Via: a, CreatedAt: -at},
			Transcript: []routing.Message{{Author: routing.Author(n & 3), AgentID: b, Text: a, At: at}}}
		sameAsMarshal(t, "conversation", appendConversationJSON(nil, &c), conversationView(&c))
	})
}

// The hand-written timestamps are what time.Format writes, over the whole
// fast range and at its edges (leap years, centuries, the last millisecond).
func TestRFC3339Milli(t *testing.T) {
	check := func(ms int64) {
		t.Helper()
		want := time.UnixMilli(ms).UTC().Format(timeLayout)
		if got := string(appendRFC3339Milli(nil, ms)); got != want {
			t.Fatalf("%d: got %s, want %s", ms, got, want)
		}
	}
	for _, ms := range []int64{1, 999, 86399999, 86400000, 951782400000, 951868799999, 4107542400000, 1700000000123, maxFastTime} {
		check(ms)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 200000 {
		check(1 + r.Int64N(maxFastTime))
	}
	if got, want := string(appendJSONTime(nil, -1)), `"1969-12-31T23:59:59.999Z"`; got != want {
		t.Errorf("before 1970: got %s, want %s", got, want)
	}
}

// ConversationView is the conversation shape of DESIGN.md §5 as a struct,
// so that json.Marshal can be the oracle of appendConversationJSON (which
// is how the API writes conversations).
type ConversationView struct {
	ID          string        `json:"id"`
	Channel     string        `json:"channel"`
	Client      *string       `json:"client"`
	PushEnabled bool          `json:"push_enabled"`
	Priority    int           `json:"priority"`
	Skills      []string      `json:"skills"`
	Optional    []string      `json:"optional_skills"`
	Group       string        `json:"group"`
	Secondary   []string      `json:"secondary_groups"`
	VisitorID   string        `json:"visitor_id"`
	Subject     string        `json:"subject"`
	State       string        `json:"state"`
	Activity    string        `json:"activity"`
	AgentID     string        `json:"agent_id"`
	Missed      bool          `json:"missed"`
	EndedReason string        `json:"ended_reason"`
	CreatedAt   *string       `json:"created_at"`
	QueuedAt    *string       `json:"queued_at"`
	EndedAt     *string       `json:"ended_at"`
	Ticket      *TicketView   `json:"ticket"`
	Transcript  []MessageView `json:"transcript"`
}

func conversationView(c *routing.Conversation) ConversationView {
	var client *string
	if c.Channel == capacity.Chat {
		s := c.Client.String()
		if c.Client == routing.ClientNone {
			s = routing.ClientWeb.String()
		}
		client = &s
	}
	return ConversationView{
		ID:          c.ID,
		Channel:     c.Channel.String(),
		Client:      client,
		PushEnabled: c.PushEnabled,
		Priority:    c.Priority,
		Skills:      nonNil(c.Skills),
		Optional:    nonNil(c.OptionalSkills),
		Group:       c.Group,
		Secondary:   nonNil(c.SecondaryGroups),
		VisitorID:   c.VisitorID,
		Subject:     c.Subject,
		State:       c.State.String(),
		Activity:    c.Activity.String(),
		AgentID:     c.AgentID,
		Missed:      c.Missed,
		EndedReason: c.EndedReason,
		CreatedAt:   formatTime(c.CreatedAt),
		QueuedAt:    formatTime(c.QueuedAt),
		EndedAt:     formatTime(c.EndedAt),
		Ticket:      ticketView(c.Ticket),
		Transcript:  transcriptView(c.Transcript),
	}
}
