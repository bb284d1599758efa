package api

import (
	"strings"
	"time"

	"github.com/omnirouter/omnirouter/capacity"
	"github.com/omnirouter/omnirouter/routing"
)

// The JSON shapes of DESIGN.md §5. Routing times are unix milliseconds; the
// API writes them as RFC 3339 UTC with milliseconds, and null when unset.

const timeLayout = "2006-01-02T15:04:05.000Z07:00"

func formatTime(ms int64) *string {
	if ms == 0 {
		return nil
	}
	s := string(appendTime(nil, ms))
	return &s
}

// Channels is a per-channel count: a capacity limit or a load.
type Channels struct {
	Chat      int `json:"chat"`
	Messaging int `json:"messaging"`
}

func channelsOf(v [capacity.NumChannels]int) Channels {
	return Channels{Chat: v[capacity.Chat], Messaging: v[capacity.Messaging]}
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

// PolicyView is the policy's JSON shape (DESIGN.md §5). Every field is a
// pointer so that PUT /v1/policy can tell which ones a request sets.
type PolicyView struct {
	Chat                 *ChatPolicyView      `json:"chat,omitempty"`
	Messaging            *MessagingPolicyView `json:"messaging,omitempty"`
	Routing              *RoutingPolicyView   `json:"routing,omitempty"`
	IdempotencyRetention *string              `json:"idempotency_retention,omitempty"`
}

// ChatPolicyView is the live-chat part of the policy.
type ChatPolicyView struct {
	Web             *WebPolicyView    `json:"web,omitempty"`
	MobileSDK       *MobilePolicyView `json:"mobile_sdk,omitempty"`
	AgentCanEndChat *bool             `json:"agent_can_end_chat,omitempty"`
}

// WebPolicyView is the web widget's timeouts.
type WebPolicyView struct {
	IdleAfter         *string `json:"idle_after,omitempty"`
	IdleTimeout       *string `json:"idle_timeout,omitempty"`
	DisconnectTimeout *string `json:"disconnect_timeout,omitempty"`
}

// MobilePolicyView is the mobile SDK's timeouts.
type MobilePolicyView struct {
	InactivityTimeout *string `json:"inactivity_timeout,omitempty"`
	DisconnectTimeout *string `json:"disconnect_timeout,omitempty"`
	AgentEndedTimeout *string `json:"agent_ended_timeout,omitempty"`
	BackgroundTimeout *string `json:"background_timeout,omitempty"`
}

// MessagingPolicyView is messaging's rules.
type MessagingPolicyView struct {
	InactivityTimeout      *string `json:"inactivity_timeout,omitempty"`
	CountInactiveMessaging *bool   `json:"count_inactive_messaging,omitempty"`
}

// RoutingPolicyView is how conversations meet agents.
type RoutingPolicyView struct {
	Mode          *string `json:"mode,omitempty"`
	Strategy      *string `json:"strategy,omitempty"`
	AutoAccept    *bool   `json:"auto_accept,omitempty"`
	OfferTimeout  *string `json:"offer_timeout,omitempty"`
	ReassignDelay *string `json:"reassign_delay,omitempty"`
}

func ptr[T any](v T) *T { return &v }

// dur writes a duration the way people write them: "10m", "1h", "1h30m".
func dur(d time.Duration) *string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return &s
}

func policyView(p routing.Policy) PolicyView {
	return PolicyView{
		Chat: &ChatPolicyView{
			Web: &WebPolicyView{
				IdleAfter:         dur(p.Web.IdleAfter),
				IdleTimeout:       dur(p.Web.IdleTimeout),
				DisconnectTimeout: dur(p.Web.DisconnectTimeout),
			},
			MobileSDK: &MobilePolicyView{
				InactivityTimeout: dur(p.Mobile.InactivityTimeout),
				DisconnectTimeout: dur(p.Mobile.DisconnectTimeout),
				AgentEndedTimeout: dur(p.Mobile.AgentEndedTimeout),
				BackgroundTimeout: dur(p.Mobile.BackgroundTimeout),
			},
			AgentCanEndChat: ptr(p.AgentCanEndChat),
		},
		Messaging: &MessagingPolicyView{
			InactivityTimeout:      dur(p.Messaging.InactivityTimeout),
			CountInactiveMessaging: ptr(p.Messaging.CountInactiveMessaging),
		},
		Routing: &RoutingPolicyView{
			Mode:          ptr(p.Routing.Mode.String()),
			Strategy:      ptr(p.Routing.Strategy.String()),
			AutoAccept:    ptr(p.Routing.AutoAccept),
			OfferTimeout:  dur(p.Routing.OfferTimeout),
			ReassignDelay: dur(p.Routing.ReassignDelay),
		},
		IdempotencyRetention: dur(p.IdempotencyRetention),
	}
}

// patch turns the fields a request set into a routing.PolicyPatch.
func (v *PolicyView) patch() (routing.PolicyPatch, error) {
	var p routing.PolicyPatch
	var firstErr error
	d := func(name string, s *string) *time.Duration {
		if s == nil || firstErr != nil {
			return nil
		}
		x, err := time.ParseDuration(*s)
		if err != nil {
			firstErr = invalid("invalid_duration", "%s: %q is not a duration (e.g. \"90s\", \"10m\", \"1h\")", name, *s)
			return nil
		}
		return &x
	}
	if c := v.Chat; c != nil {
		if w := c.Web; w != nil {
			p.WebIdleAfter = d("chat.web.idle_after", w.IdleAfter)
			p.WebIdleTimeout = d("chat.web.idle_timeout", w.IdleTimeout)
			p.WebDisconnectTimeout = d("chat.web.disconnect_timeout", w.DisconnectTimeout)
		}
		if m := c.MobileSDK; m != nil {
			p.MobileInactivityTimeout = d("chat.mobile_sdk.inactivity_timeout", m.InactivityTimeout)
			p.MobileDisconnectTimeout = d("chat.mobile_sdk.disconnect_timeout", m.DisconnectTimeout)
			p.MobileAgentEndedTimeout = d("chat.mobile_sdk.agent_ended_timeout", m.AgentEndedTimeout)
			p.MobileBackgroundTimeout = d("chat.mobile_sdk.background_timeout", m.BackgroundTimeout)
		}
		p.AgentCanEndChat = c.AgentCanEndChat
	}
	if m := v.Messaging; m != nil {
		p.MessagingInactivityTimeout = d("messaging.inactivity_timeout", m.InactivityTimeout)
		p.CountInactiveMessaging = m.CountInactiveMessaging
	}
	if r := v.Routing; r != nil {
		if r.Mode != nil {
			mode, err := routing.ParseMode(*r.Mode)
			if err != nil && firstErr == nil {
				firstErr = err
			}
			p.Mode = &mode
		}
		if r.Strategy != nil {
			s, err := routing.ParseStrategy(*r.Strategy)
			if err != nil && firstErr == nil {
				firstErr = err
			}
			p.Strategy = &s
		}
		p.AutoAccept = r.AutoAccept
		p.OfferTimeout = d("routing.offer_timeout", r.OfferTimeout)
		p.ReassignDelay = d("routing.reassign_delay", r.ReassignDelay)
	}
	p.IdempotencyRetention = d("idempotency_retention", v.IdempotencyRetention)
	if firstErr != nil {
		return p, firstErr
	}
	if err := p.Validate(); err != nil {
		return p, err
	}
	return p, nil
}

// ClusterView is GET /v1/cluster.
type ClusterView struct {
	ID           string         `json:"id"`
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
	Voter    bool   `json:"voter"`
	Leader   bool   `json:"leader"`
}

func clusterView(s Status) ClusterView {
	v := ClusterView{ID: s.ID, State: s.State, Leader: s.LeaderID, LeaderHTTP: s.LeaderHTTP,
		Term: s.Term, CommitIndex: s.CommitIndex, AppliedIndex: s.AppliedIndex, Nodes: []NodeInfoView{}}
	for _, n := range s.Nodes {
		v.Nodes = append(v.Nodes, NodeInfoView{ID: n.ID, RaftAddr: n.RaftAddr, HTTPAddr: n.HTTPAddr, Voter: n.Voter, Leader: n.Leader})
	}
	return v
}
