package api

import (
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/omnirouter/omnirouter/capacity"
	"github.com/omnirouter/omnirouter/routing"
)

// Routing control: transfers, updates, removing agents, lists and
// statistics.

// POST /v1/conversations/{id}/transfer: its holder (agent_id) hands it to
// another agent (to_agent) or a group (to_group). Agents transfer only what
// they hold; routers and operators anything.
func (s *Server) transfer(c *gin.Context) {
	var req struct {
		AgentID string `json:"agent_id"`
		ToAgent string `json:"to_agent"`
		ToGroup string `json:"to_group"`
		Note    string `json:"note"`
	}
	if err := decode(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	if err := routing.ValidID("agent_id", req.AgentID); err != nil {
		s.fail(c, err)
		return
	}
	if err := s.actAs(c, req.AgentID, RoleRouter); err != nil {
		s.fail(c, err)
		return
	}
	if req.Note != "" {
		if err := s.checkText(req.Note); err != nil {
			s.fail(c, err)
			return
		}
	}
	id := c.Param("id")
	s.conversationCommand(c, id, routing.Transfer{ConversationID: id, AgentID: req.AgentID, ToAgent: req.ToAgent,
		ToGroup: req.ToGroup, Note: req.Note})
}

// PATCH /v1/conversations/{id}: priority, group, skills, optional skills,
// secondary groups; a queued conversation keeps its eligibility time.
func (s *Server) patchConversation(c *gin.Context) {
	var req struct {
		Priority        *int      `json:"priority"`
		Group           *string   `json:"group"`
		Skills          *[]string `json:"skills"`
		OptionalSkills  *[]string `json:"optional_skills"`
		SecondaryGroups *[]string `json:"secondary_groups"`
	}
	if err := decode(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	id := c.Param("id")
	u := routing.UpdateConversation{ConversationID: id}
	if req.Priority != nil {
		u.Set |= routing.UpdatePriority
		u.Priority = *req.Priority
	}
	if req.Group != nil {
		u.Set |= routing.UpdateGroup
		u.Group = *req.Group
	}
	if req.Skills != nil {
		u.Set |= routing.UpdateSkills
		u.Skills = *req.Skills
	}
	if req.OptionalSkills != nil {
		u.Set |= routing.UpdateOptionalSkills
		u.OptionalSkills = *req.OptionalSkills
	}
	if req.SecondaryGroups != nil {
		u.Set |= routing.UpdateSecondaryGroups
		u.SecondaryGroups = *req.SecondaryGroups
	}
	if u.Set == 0 {
		s.fail(c, invalid("invalid_update", "set at least one of priority, group, skills, optional_skills, secondary_groups"))
		return
	}
	s.conversationCommand(c, id, u)
}

// DELETE /v1/agents/{id}[?force=true] → 204. An agent that holds work is
// 409 agent_busy unless forced: its work goes back to the queue first.
func (s *Server) deleteAgent(c *gin.Context) {
	id := c.Param("id")
	if err := routing.ValidID("agent id", id); err != nil {
		s.fail(c, err)
		return
	}
	force, err := boolQuery(c, "force")
	if err != nil {
		s.fail(c, err)
		return
	}
	if _, ok := s.propose(c, routing.RemoveAgent{ID: id, Force: force}); ok {
		c.Status(http.StatusNoContent)
	}
}

func boolQuery(c *gin.Context, name string) (bool, error) {
	v, ok := c.GetQuery(name)
	if !ok || v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, invalid("invalid_"+name, "%s must be true or false, got %q", name, v)
	}
	return b, nil
}

const (
	defaultListLimit = 100
	maxListLimit     = 1000
)

func limitQuery(c *gin.Context, def int) (int, error) {
	v := c.Query("limit")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxListLimit {
		return 0, invalid("invalid_limit", "limit must be between 1 and %d, got %q", maxListLimit, v)
	}
	return n, nil
}

func channelQuery(c *gin.Context) (capacity.Channel, bool, error) {
	v := c.Query("channel")
	if v == "" {
		return 0, false, nil
	}
	ch, err := capacity.ParseChannel(v)
	if err != nil {
		return 0, false, invalid("invalid_channel", "channel must be chat, messaging, email or voice, got %q", v)
	}
	return ch, true, nil
}

// GET /v1/conversations?state=&channel=&agent_id=&group=&limit=&after=:
// by id, a page at a time; next is the after of the next page ("" at the
// end).
func (s *Server) listConversations(c *gin.Context) {
	var f routing.ConversationFilter
	var err error
	if v := c.Query("state"); v != "" {
		if f.State, err = routing.ParseState(v); err != nil {
			s.fail(c, err)
			return
		}
		f.HasState = true
	}
	if f.Channel, f.HasChannel, err = channelQuery(c); err != nil {
		s.fail(c, err)
		return
	}
	f.AgentID, f.Group = c.Query("agent_id"), c.Query("group")
	limit, err := limitQuery(c, defaultListLimit)
	if err != nil {
		s.fail(c, err)
		return
	}
	after := c.Query("after")
	var page []routing.Conversation
	var more bool
	if !s.read(c, func(m *routing.Machine) { page, more = m.ListConversations(f, after, limit) }) {
		return
	}
	next := ""
	if more {
		next = page[len(page)-1].ID
	}
	out := ConversationListView{Conversations: make([]ConversationView, len(page)), Next: next}
	for i := range page {
		out.Conversations[i] = conversationView(&page[i], noTranscript)
	}
	writeJSON(c, http.StatusOK, out)
}

// GET /v1/stats: per channel and group, now and over 5m, 30m and 24h.
func (s *Server) stats(c *gin.Context) {
	var now []routing.StatsNow
	var windows []routing.StatsWindow
	var at int64
	if !s.read(c, func(m *routing.Machine) {
		now, windows = m.Stats()
		at = m.Now()
	}) {
		return
	}
	out := StatsView{At: formatTime(at), Channels: make([]StatsNowView, len(now)), Windows: make([]StatsWindowView, len(windows))}
	for i, r := range now {
		v := StatsNowView{Channel: r.Channel.String(), Group: r.Group, Waiting: r.Waiting, Offered: r.Offered,
			Assigned: r.Assigned, WrapUp: r.WrapUp, CapacityUsed: r.CapacityUsed, CapacityTotal: r.CapacityTotal,
			Agents: AgentsByStatus{Online: r.Agents[routing.StatusOnline], Away: r.Agents[routing.StatusAway],
				TransfersOnly: r.Agents[routing.StatusTransfersOnly], Offline: r.Agents[routing.StatusOffline]}}
		if r.OldestQueuedAt != 0 {
			v.LongestWaitSeconds = float64(max(0, at-r.OldestQueuedAt)) / 1000
		}
		out.Channels[i] = v
	}
	for i, w := range windows {
		v := StatsWindowView{Window: formatDuration(w.Window), Channel: w.Channel.String(), Group: w.Group, Created: w.Created,
			Assigned: w.Assigned, Missed: w.Missed, Ended: w.Ended, WaitP50Seconds: w.WaitP50, WaitP90Seconds: w.WaitP90}
		if w.ServiceLevel >= 0 {
			sl := w.ServiceLevel
			v.ServiceLevel = &sl
		}
		out.Windows[i] = v
	}
	writeJSON(c, http.StatusOK, out)
}

// ConversationListView is a page of GET /v1/conversations.
type ConversationListView struct {
	Conversations []ConversationView `json:"conversations"`
	Next          string             `json:"next"`
}

// StatsView is GET /v1/stats. Waits are counted at the state machine's
// time of the read, so nodes that applied the same index answer the same.
type StatsView struct {
	At       *string           `json:"at"`
	Channels []StatsNowView    `json:"channels"`
	Windows  []StatsWindowView `json:"windows"`
}

// StatsNowView is one channel's (group "") or group's row of now.
type StatsNowView struct {
	Channel            string         `json:"channel"`
	Group              string         `json:"group"`
	Waiting            int            `json:"waiting"`
	LongestWaitSeconds float64        `json:"longest_wait_seconds"`
	Offered            int            `json:"offered"`
	Assigned           int            `json:"assigned"`
	WrapUp             int            `json:"wrap_up"`
	CapacityUsed       int            `json:"capacity_used"`
	CapacityTotal      int            `json:"capacity_total"`
	Agents             AgentsByStatus `json:"agents"`
}

// AgentsByStatus counts agents with capacity on a channel.
type AgentsByStatus struct {
	Online        int `json:"online"`
	Away          int `json:"away"`
	TransfersOnly int `json:"transfers_only"`
	Offline       int `json:"offline"`
}

// StatsWindowView is one row of one window.
type StatsWindowView struct {
	Window         string         `json:"window"`
	Channel        string         `json:"channel"`
	Group          string         `json:"group"`
	Created        int            `json:"created"`
	Assigned       int            `json:"assigned"`
	Missed         int            `json:"missed"`
	Ended          map[string]int `json:"ended"`
	WaitP50Seconds float64        `json:"wait_p50_seconds"`
	WaitP90Seconds float64        `json:"wait_p90_seconds"`
	ServiceLevel   *float64       `json:"service_level"`
}
