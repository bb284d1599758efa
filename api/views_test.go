package api

import (
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/omnirouter/omnirouter/capacity"
	"github.com/omnirouter/omnirouter/routing"
)

// marshalString is what the API writes for v.
func marshalString(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The conversation answer, byte for byte: members in the documented order,
// strings escaped as encoding/json does (HTML characters, U+2028, invalid
// UTF-8), times in RFC 3339 UTC with milliseconds and null when unset,
// client null off chat, the lists and the transcript [] when empty, the
// transcript's length, ticket null
// when none, a message's agent_id only when set.
func TestConversationShape(t *testing.T) {
	for _, tc := range []struct {
		conv routing.Conversation
		want string
	}{{
		conv: routing.Conversation{ID: "c1", Channel: capacity.Chat, Client: routing.ClientMobileSDK, PushEnabled: true,
			Priority: -3, Skills: []string{"fr", `a "b"`}, OptionalSkills: []string{"vip"}, Group: "<g&>", SecondaryGroups: []string{"g2", "g3"}, VisitorID: "v\u2028", Subject: "bad \xff",
			State: routing.StateAssigned, Activity: routing.ActivityInactive, AgentID: "a1", Missed: true, EndedReason: "x",
			CreatedAt: 1700000000123, QueuedAt: 1, EndedAt: -1,
			Ticket: &routing.Ticket{ID: "t1", Status: routing.TicketPending, CreatedAt: 1700000001000, Via: "email"},
			Transcript: []routing.Message{
				{Author: routing.AuthorVisitor, Text: "hi\n", At: 1700000000123},
				{Author: routing.AuthorAgent, AgentID: "a1", Text: "hello", At: 1700000002500},
			}},
		want: `{"id":"c1","channel":"chat","client":"mobile_sdk","push_enabled":true,"priority":-3,"skills":["fr","a \"b\""],"optional_skills":["vip"],"group":"\u003cg\u0026\u003e","secondary_groups":["g2","g3"],"visitor_id":"v\u2028","subject":"bad \ufffd","state":"assigned","activity":"inactive","agent_id":"a1","missed":true,"ended_reason":"x","created_at":"2023-11-14T22:13:20.123Z","queued_at":"1970-01-01T00:00:00.001Z","ended_at":"1969-12-31T23:59:59.999Z","ticket":{"id":"t1","status":"pending","created_at":"2023-11-14T22:13:21.000Z","via":"email"},"transcript":[{"author":"visitor","text":"hi\n","at":"2023-11-14T22:13:20.123Z"},{"author":"agent","agent_id":"a1","text":"hello","at":"2023-11-14T22:13:22.500Z"}],"transcript_length":2}`,
	}, {
		conv: routing.Conversation{ID: "m1", Channel: capacity.Messaging, Client: routing.ClientWeb, State: routing.StateQueued},
		want: `{"id":"m1","channel":"messaging","client":null,"push_enabled":false,"priority":0,"skills":[],"optional_skills":[],"group":"","secondary_groups":[],"visitor_id":"","subject":"","state":"queued","activity":"active","agent_id":"","missed":false,"ended_reason":"","created_at":null,"queued_at":null,"ended_at":null,"ticket":null,"transcript":[],"transcript_length":0}`,
	}, {
		conv: routing.Conversation{ID: "c2", Channel: capacity.Chat, Skills: []string{}, Transcript: []routing.Message{}},
		want: `{"id":"c2","channel":"chat","client":"web","push_enabled":false,"priority":0,"skills":[],"optional_skills":[],"group":"","secondary_groups":[],"visitor_id":"","subject":"","state":"queued","activity":"active","agent_id":"","missed":false,"ended_reason":"","created_at":null,"queued_at":null,"ended_at":null,"ticket":null,"transcript":[],"transcript_length":0}`,
	}} {
		if got := marshalString(t, conversationView(&tc.conv, fullTranscript)); got != tc.want {
			t.Errorf("conversation %s:\n got %s\nwant %s", tc.conv.ID, got, tc.want)
		}
	}
}

// The agent answer, byte for byte: every channel in capacity and load, the
// lists [] when empty.
func TestAgentShape(t *testing.T) {
	for _, tc := range []struct {
		agent routing.Agent
		want  string
	}{{
		agent: routing.Agent{ID: "a1", Name: "Ana <x>", Status: routing.StatusOnline, Capacity: capacity.Limits{2, 8, 8, 1},
			Load: capacity.Load{1, 0, 3, 0}, Skills: []string{"fr"}, Groups: []string{"g1", "g2"}, Conversations: []string{"c1"}},
		want: `{"id":"a1","name":"Ana \u003cx\u003e","status":"online","capacity":{"chat":2,"messaging":8,"email":8,"voice":1},"load":{"chat":1,"messaging":0,"email":3,"voice":0},"skills":["fr"],"groups":["g1","g2"],"conversations":["c1"]}`,
	}, {
		agent: routing.Agent{ID: "a2"},
		want:  `{"id":"a2","name":"","status":"offline","capacity":{"chat":0,"messaging":0,"email":0,"voice":0},"load":{"chat":0,"messaging":0,"email":0,"voice":0},"skills":[],"groups":[],"conversations":[]}`,
	}} {
		if got := marshalString(t, agentView(&tc.agent)); got != tc.want {
			t.Errorf("agent %s:\n got %s\nwant %s", tc.agent.ID, got, tc.want)
		}
	}
}

// Times are RFC 3339 UTC with milliseconds, always three digits; 0 is unset.
func TestFormatTime(t *testing.T) {
	for ms, want := range map[int64]string{
		1:               "1970-01-01T00:00:00.001Z",
		-1:              "1969-12-31T23:59:59.999Z",
		951782400000:    "2000-02-29T00:00:00.000Z",
		1700000000120:   "2023-11-14T22:13:20.120Z",
		253402300799999: "9999-12-31T23:59:59.999Z",
	} {
		// Twice: the second comes from the last-formatted cache.
		for range 2 {
			if got := formatTime(ms); got == nil || *got != want {
				t.Errorf("formatTime(%d) = %v, want %s", ms, got, want)
			}
		}
	}
	if got := formatTime(0); got != nil {
		t.Errorf("formatTime(0) = %s, want nil (null)", *got)
	}
}

// Answers formatted at once, with times that differ and times that repeat,
// each get their own times (the race detector watches the shared cache).
func TestFormatTimeConcurrently(t *testing.T) {
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 2000 {
				ms := int64(1700000000000 + (i+g)%7)
				want := time.UnixMilli(ms).UTC().Format(timeLayout)
				if got := formatTime(ms); *got != want {
					t.Errorf("formatTime(%d) = %s, want %s", ms, *got, want)
					return
				}
			}
		})
	}
	wg.Wait()
}

// A page of GET /v1/conversations is its conversations (without their
// transcripts), [] when none, and the next page's after, "" at the end.
func TestConversationListShape(t *testing.T) {
	h := newHarness(t)
	if r := h.req("GET", "/v1/conversations?group=nobody", nil); r.Status != 200 || string(r.Body) != `{"conversations":[],"next":""}` {
		t.Fatalf("empty page: %d %s", r.Status, r.Body)
	}
	h.must(201, "POST", "/v1/conversations", map[string]any{"id": "c1", "channel": "messaging"})
	h.must(201, "POST", "/v1/conversations", map[string]any{"id": "c2", "channel": "messaging"})
	r := h.req("GET", "/v1/conversations?limit=1", nil)
	var page struct {
		Conversations []json.RawMessage `json:"conversations"`
		Next          string            `json:"next"`
	}
	if err := json.Unmarshal(r.Body, &page); err != nil || r.Status != 200 {
		t.Fatalf("page: %d %s %v", r.Status, r.Body, err)
	}
	one := h.req("GET", "/v1/conversations/c1?transcript=none", nil)
	if len(page.Conversations) != 1 || page.Next != "c1" || string(page.Conversations[0]) != string(one.Body) {
		t.Fatalf("page of one: %s, want c1 as GET answers it without its transcript (%s) and next c1", r.Body, one.Body)
	}
}
