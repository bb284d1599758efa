package api

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/omnirouter/omnirouter/capacity"
	"github.com/omnirouter/omnirouter/routing"
)

// The API's JSON shapes (docs/contract.md). Routing times are unix milliseconds; the
// API writes them as RFC 3339 UTC with milliseconds, and null when unset.

const timeLayout = "2006-01-02T15:04:05.000Z07:00"

func formatTime(ms int64) *string {
	if ms == 0 {
		return nil
	}
	// The times of one answer, and of the answers to one batch of writes,
	// are mostly the same millisecond (the leader stamps a batch once): the
	// last one formatted is kept and its string shared, read-only.
	if last := lastFormatted.Load(); last != nil && last.ms == ms {
		return &last.s
	}
	t := &formattedTime{ms: ms, s: time.UnixMilli(ms).UTC().Format(timeLayout)}
	lastFormatted.Store(t)
	return &t.s
}

type formattedTime struct {
	ms int64
	s  string
}

var lastFormatted atomic.Pointer[formattedTime]

const jsonContentType = "application/json; charset=utf-8"

// largeAnswer: an answer above this many bytes (a long transcript, a
// whole floor of agents) takes its bytes from the answer memory while it
// is written; when the memory is taken, 503 busy at once rather than
// holding the answer while it waits.
const largeAnswer = 64 << 10

// writeJSON answers with json.Marshal(v); an answer over largeAnswer takes
// its bytes from the answer memory while it is written.
func (s *Server) writeJSON(c *gin.Context, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		_ = c.Error(err)
		c.AbortWithStatusJSON(http.StatusInternalServerError, errorBody{Error: toAPIError(err).detail()})
		return
	}
	if n := int64(len(b)); n > largeAnswer {
		if !s.answers.tryAcquire(n) {
			s.fail(c, errorf(http.StatusServiceUnavailable, "busy", "this node is sending as many large answers as its memory allows (--answer-memory); retry"))
			return
		}
		defer s.answers.release(n)
	}
	writeBody(c, status, b)
}

// writeBody answers with the JSON b and its Content-Length, so that an
// answer over net/http's 2 KB buffer (a long transcript, say) is not sent
// chunked.
func writeBody(c *gin.Context, status int, b []byte) {
	c.Header("Content-Length", strconv.Itoa(len(b)))
	c.Data(status, jsonContentType, b)
}

func (s *Server) writeConversationJSON(c *gin.Context, status int, conv *routing.Conversation, span transcriptSpan) {
	s.writeJSON(c, status, conversationView(conv, span))
}

// transcriptSpan is how much of its transcript a conversation answer
// carries: none (transcript null), or the messages from..from+limit (limit
// 0: to the end). A transcript may hold limits.transcript_bytes of text:
// answers to writes and list pages leave it out unless asked, so that no
// answer repeats a large transcript unasked.
type transcriptSpan struct {
	include     bool
	from, limit int
}

var (
	noTranscript   = transcriptSpan{}
	fullTranscript = transcriptSpan{include: true}
)

// MaxTranscriptPage bounds transcript_limit.
const MaxTranscriptPage = 1000

// transcriptQuery reads ?transcript=full|none and, on a read,
// ?transcript_from=N&transcript_limit=M. def is the answer's default.
func transcriptQuery(c *gin.Context, def transcriptSpan) (transcriptSpan, error) {
	span := def
	switch v := c.Query("transcript"); v {
	case "":
	case "full":
		span = fullTranscript
	case "none":
		span = noTranscript
	default:
		return span, invalid("invalid_transcript", "transcript must be \"full\" or \"none\", got %q", v)
	}
	from, limit := c.Query("transcript_from"), c.Query("transcript_limit")
	if from == "" && limit == "" {
		return span, nil
	}
	if c.Request.Method != http.MethodGet || c.Query("transcript") == "none" {
		return span, invalid("invalid_transcript", "transcript_from and transcript_limit page the transcript of GET /v1/conversations/{id}")
	}
	span = transcriptSpan{include: true}
	var err error
	if from != "" {
		if span.from, err = strconv.Atoi(from); err != nil || span.from < 0 {
			return span, invalid("invalid_transcript", "transcript_from must be a message index (0 or more), got %q", from)
		}
	}
	if limit != "" {
		if span.limit, err = strconv.Atoi(limit); err != nil || span.limit < 1 || span.limit > MaxTranscriptPage {
			return span, invalid("invalid_transcript", "transcript_limit must be between 1 and %d, got %q", MaxTranscriptPage, limit)
		}
	}
	return span, nil
}

func (s *Server) writeAgentJSON(c *gin.Context, status int, a *routing.Agent) {
	s.writeJSON(c, status, agentView(a))
}

// Channels is a per-channel count: a capacity limit or a load.
type Channels struct {
	Chat      int `json:"chat"`
	Messaging int `json:"messaging"`
	Email     int `json:"email"`
	Voice     int `json:"voice"`
}

func channelsOf(v [capacity.NumChannels]int) Channels {
	return Channels{Chat: v[capacity.Chat], Messaging: v[capacity.Messaging], Email: v[capacity.Email], Voice: v[capacity.Voice]}
}

// ConversationView is a conversation as the API returns it. client is null
// off the chat channel; skills and transcript are [] when empty.
type ConversationView struct {
	ID          string   `json:"id"`
	Channel     string   `json:"channel"`
	Client      *string  `json:"client"`
	PushEnabled bool     `json:"push_enabled"`
	Priority    int      `json:"priority"`
	Skills      []string `json:"skills"`
	// OptionalSkills and SecondaryGroups relax after routing.skills_timeout.
	OptionalSkills  []string    `json:"optional_skills"`
	Group           string      `json:"group"`
	SecondaryGroups []string    `json:"secondary_groups"`
	VisitorID       string      `json:"visitor_id"`
	Subject         string      `json:"subject"`
	State           string      `json:"state"`
	Activity        string      `json:"activity"`
	AgentID         string      `json:"agent_id"`
	Missed          bool        `json:"missed"`
	EndedReason     string      `json:"ended_reason"`
	CreatedAt       *string     `json:"created_at"`
	QueuedAt        *string     `json:"queued_at"`
	EndedAt         *string     `json:"ended_at"`
	Ticket          *TicketView `json:"ticket"`
	// Transcript is null when the answer leaves it out (transcriptSpan);
	// TranscriptLength is the number of messages in the whole transcript.
	Transcript       []MessageView `json:"transcript"`
	TranscriptLength int           `json:"transcript_length"`
}

func conversationView(c *routing.Conversation, span transcriptSpan) ConversationView {
	var client *string
	if c.Channel == capacity.Chat {
		s := c.Client.String()
		if c.Client == routing.ClientNone {
			s = routing.ClientWeb.String()
		}
		client = &s
	}
	return ConversationView{
		ID:               c.ID,
		Channel:          c.Channel.String(),
		Client:           client,
		PushEnabled:      c.PushEnabled,
		Priority:         c.Priority,
		Skills:           nonNil(c.Skills),
		OptionalSkills:   nonNil(c.OptionalSkills),
		Group:            c.Group,
		SecondaryGroups:  nonNil(c.SecondaryGroups),
		VisitorID:        c.VisitorID,
		Subject:          c.Subject,
		State:            c.State.String(),
		Activity:         c.Activity.String(),
		AgentID:          c.AgentID,
		Missed:           c.Missed,
		EndedReason:      c.EndedReason,
		CreatedAt:        formatTime(c.CreatedAt),
		QueuedAt:         formatTime(c.QueuedAt),
		EndedAt:          formatTime(c.EndedAt),
		Ticket:           ticketView(c.Ticket),
		Transcript:       spanView(c.Transcript, span),
		TranscriptLength: len(c.Transcript),
	}
}

func spanView(ms []routing.Message, span transcriptSpan) []MessageView {
	if !span.include {
		return nil
	}
	from := min(span.from, len(ms))
	to := len(ms)
	if span.limit > 0 {
		to = min(to, from+span.limit)
	}
	return transcriptView(ms[from:to])
}

// AgentView is an agent as the API returns it.
type AgentView struct {
	ID            string   `json:"id"`
	Name          string   `json:"name"`
	Status        string   `json:"status"`
	Capacity      Channels `json:"capacity"`
	Load          Channels `json:"load"`
	Skills        []string `json:"skills"`
	Groups        []string `json:"groups"`
	Conversations []string `json:"conversations"`
}

func nonNil(ss []string) []string {
	if ss == nil {
		return []string{}
	}
	return ss
}

func agentView(a *routing.Agent) AgentView {
	return AgentView{
		ID:            a.ID,
		Name:          a.Name,
		Status:        a.Status.String(),
		Capacity:      channelsOf(a.Capacity),
		Load:          channelsOf(a.Load),
		Skills:        nonNil(a.Skills),
		Groups:        nonNil(a.Groups),
		Conversations: nonNil(a.Conversations),
	}
}

// TicketView is a conversation's ticket.
type TicketView struct {
	ID        string  `json:"id"`
	Status    string  `json:"status"`
	CreatedAt *string `json:"created_at"`
	Via       string  `json:"via"`
}

func ticketView(t *routing.Ticket) *TicketView {
	if t == nil {
		return nil
	}
	return &TicketView{ID: t.ID, Status: t.Status.String(), CreatedAt: formatTime(t.CreatedAt), Via: t.Via}
}

// MessageView is one transcript entry.
type MessageView struct {
	Author  string  `json:"author"`
	AgentID string  `json:"agent_id,omitempty"`
	Text    string  `json:"text"`
	At      *string `json:"at"`
}

func messageView(m *routing.Message) MessageView {
	return MessageView{Author: m.Author.String(), AgentID: m.AgentID, Text: m.Text, At: formatTime(m.At)}
}

func transcriptView(ms []routing.Message) []MessageView {
	out := make([]MessageView, len(ms))
	for i := range ms {
		out[i] = messageView(&ms[i])
	}
	return out
}

// QueueItem is one queued conversation in routing order.
type QueueItem struct {
	ID          string  `json:"id"`
	Channel     string  `json:"channel"`
	Priority    int     `json:"priority"`
	Group       string  `json:"group"`
	QueuedAt    *string `json:"queued_at"`
	Position    int     `json:"position"`
	WaitSeconds float64 `json:"wait_seconds"`
}

// AssignmentView is the answer to POST /v1/assignments.
type AssignmentView struct {
	ConversationID string `json:"conversation_id"`
	AgentID        string `json:"agent_id"`
	State          string `json:"state"`
}

// EventView is one event of GET /v1/events.
type EventView struct {
	ID             uint64         `json:"id"`
	Type           string         `json:"type"`
	At             *string        `json:"at"`
	ConversationID string         `json:"conversation_id,omitempty"`
	AgentID        string         `json:"agent_id,omitempty"`
	Data           map[string]any `json:"data"`
}

// eventView keeps only the fields of routing.EventData that matter for the
// event's type.
func eventView(e *routing.Event) EventView {
	d := &e.Data
	data := map[string]any{}
	if d.Reason != "" {
		data["reason"] = d.Reason
	}
	switch e.Type {
	case routing.EventEnded:
		data["reason"] = d.Reason
		data["missed"] = d.Missed
		data["transcript"] = transcriptView(d.Transcript)
	case routing.EventTicketCreated, routing.EventTicketUpdated:
		data["ticket"] = ticketView(d.Ticket)
	case routing.EventAgentStatus:
		data["status"] = d.Status
		data["previous"] = d.Previous
	case routing.EventAgentCapacity:
		data["capacity"] = channelsOf(d.Capacity)
		data["load"] = channelsOf(d.Load)
	case routing.EventMessage:
		if d.Message != nil {
			data["message"] = messageView(d.Message)
		}
	default:
		if d.Status != "" {
			data["status"] = d.Status
		}
		if d.Ticket != nil {
			data["ticket"] = ticketView(d.Ticket)
		}
	}
	return EventView{ID: e.ID, Type: e.Type, At: formatTime(e.At),
		ConversationID: e.ConversationID, AgentID: e.AgentID, Data: data}
}

// ClusterView is GET /v1/cluster.
type ClusterView struct {
	ID string `json:"id"`
	// State is this node's: leader, follower, candidate, removed (or
	// shutdown, briefly, while it stops).
	State        string         `json:"state"`
	Leader       string         `json:"leader"`
	LeaderHTTP   string         `json:"leader_http"`
	Term         uint64         `json:"term"`
	CommitIndex  uint64         `json:"commit_index"`
	AppliedIndex uint64         `json:"applied_index"`
	Nodes        []NodeInfoView `json:"nodes"`
}

// NodeInfoView is one cluster member.
type NodeInfoView struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	HTTPAddr string `json:"http_addr"`
	// Suffrage is voter or nonvoter: a node joins as a nonvoter and
	// becomes a voter once it has caught up with the leader's log.
	Suffrage string `json:"suffrage"`
	// CaughtUp: the node has applied (nearly) everything the leader has
	// committed, as the leader last saw it.
	CaughtUp bool `json:"caught_up"`
	Voter    bool `json:"voter"`
	Leader   bool `json:"leader"`
}

// nodeState is the state GET /v1/cluster reports for the answering node.
func nodeState(s Status) string {
	if s.Removed {
		return "removed"
	}
	return strings.ToLower(s.State)
}

func clusterView(s Status) ClusterView {
	v := ClusterView{ID: s.ID, State: nodeState(s), Leader: s.LeaderID, LeaderHTTP: s.LeaderHTTP,
		Term: s.Term, CommitIndex: s.CommitIndex, AppliedIndex: s.AppliedIndex, Nodes: []NodeInfoView{}}
	for _, n := range s.Nodes {
		v.Nodes = append(v.Nodes, NodeInfoView{ID: n.ID, RaftAddr: n.RaftAddr, HTTPAddr: n.HTTPAddr,
			Suffrage: n.Suffrage, CaughtUp: n.CaughtUp, Voter: n.Voter, Leader: n.Leader})
	}
	return v
}
