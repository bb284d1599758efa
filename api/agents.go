package api

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/omnirouter/omnirouter/capacity"
	"github.com/omnirouter/omnirouter/routing"
)

// releaseRequest is a release's body.
type releaseRequest struct {
	ConversationID string  `json:"conversation_id"`
	TicketStatus   *string `json:"ticket_status"`
}

type agentRequest struct {
	Name     string `json:"name"`
	Capacity *struct {
		Chat      *int `json:"chat"`
		Messaging *int `json:"messaging"`
		Email     *int `json:"email"`
		Voice     *int `json:"voice"`
	} `json:"capacity"`
	Skills []string `json:"skills"`
	Groups []string `json:"groups"`
}

// PUT /v1/agents/{id}: create or replace an agent's profile and capacity.
func (s *Server) putAgent(c *gin.Context) {
	id := c.Param("id")
	var req agentRequest
	if err := decode(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	if err := routing.ValidID("agent id", id); err != nil {
		s.fail(c, err)
		return
	}
	var limits capacity.Limits
	if req.Capacity != nil {
		if req.Capacity.Chat != nil {
			limits[capacity.Chat] = *req.Capacity.Chat
		}
		if req.Capacity.Messaging != nil {
			limits[capacity.Messaging] = *req.Capacity.Messaging
		}
		if req.Capacity.Email != nil {
			limits[capacity.Email] = *req.Capacity.Email
		}
		if req.Capacity.Voice != nil {
			limits[capacity.Voice] = *req.Capacity.Voice
		}
	}
	if err := limits.Validate(); err != nil {
		s.fail(c, invalid(routing.CodeInvalidCapacity, "%v", err))
		return
	}
	if err := routing.ValidLabels("skills", req.Skills); err != nil {
		s.fail(c, err)
		return
	}
	if err := routing.ValidLabels("groups", req.Groups); err != nil {
		s.fail(c, err)
		return
	}
	out, ok := s.propose(c, routing.UpsertAgent{ID: id, Name: req.Name, Capacity: limits, Skills: req.Skills, Groups: req.Groups})
	if ok {
		s.respondAgent(c, id, out)
	}
}

// PUT /v1/agents/{id}/status.
func (s *Server) putAgentStatus(c *gin.Context) {
	id := c.Param("id")
	if err := s.actAs(c, id); err != nil {
		s.fail(c, err)
		return
	}
	var req struct {
		Status string `json:"status"`
	}
	if err := decode(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	st, err := routing.ParseAgentStatus(req.Status)
	if err != nil {
		s.fail(c, err)
		return
	}
	out, ok := s.propose(c, routing.SetAgentStatus{AgentID: id, Status: st})
	if ok {
		s.respondAgent(c, id, out)
	}
}

// POST /v1/agents/{id}/release.
func (s *Server) releaseCapacity(c *gin.Context) {
	id := c.Param("id")
	if err := s.actAs(c, id); err != nil {
		s.fail(c, err)
		return
	}
	var req releaseRequest
	if err := decode(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	if err := routing.ValidID("conversation_id", req.ConversationID); err != nil {
		s.fail(c, err)
		return
	}
	cmd := routing.Release{AgentID: id, ConversationID: req.ConversationID}
	if req.TicketStatus != nil && *req.TicketStatus != "" {
		ts, err := routing.ParseTicketStatus(*req.TicketStatus)
		if err != nil {
			s.fail(c, err)
			return
		}
		cmd.TicketStatus, cmd.SetTicket = ts, true
	}
	out, ok := s.propose(c, cmd)
	if ok {
		s.respondAgent(c, id, out)
	}
}

// respondAgent writes the agent a command returned, or reads it when the
// outcome does not carry it.
func (s *Server) respondAgent(c *gin.Context, id string, out routing.Outcome) {
	if out.Agent != nil {
		writeAgentJSON(c, http.StatusOK, out.Agent)
		return
	}
	// The write is applied on the leader: only a linearizable read is sure to
	// see it here.
	s.writeAgent(c, id, Linearizable)
}

func (s *Server) writeAgent(c *gin.Context, id string, level ReadLevel) {
	var a routing.Agent
	var found bool
	if !s.readAt(c, level, func(m *routing.Machine) { a, found = m.Agent(id) }) {
		return
	}
	if !found {
		s.fail(c, errorf(http.StatusNotFound, routing.CodeAgentNotFound, "agent %q not found", id))
		return
	}
	writeAgentJSON(c, http.StatusOK, &a)
}

// GET /v1/agents/{id}.
func (s *Server) getAgent(c *gin.Context) {
	level, err := readLevel(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.writeAgent(c, c.Param("id"), level)
}

// GET /v1/agents.
func (s *Server) listAgents(c *gin.Context) {
	limit, err := limitQuery(c, 0)
	if err != nil {
		s.fail(c, err)
		return
	}
	after := c.Query("after")
	if after != "" && limit == 0 {
		limit = defaultListLimit
	}
	var out AgentListView
	if !s.read(c, func(m *routing.Machine) {
		var agents []routing.Agent
		var more bool
		if limit == 0 {
			agents = m.Agents()
		} else {
			agents, more = m.AgentsAfter(after, limit)
		}
		out = AgentListView{Agents: make([]AgentView, len(agents)), Total: m.AgentCount()}
		for i := range agents {
			out.Agents[i] = agentView(&agents[i])
		}
		if more {
			out.Next = agents[len(agents)-1].ID
		}
	}) {
		return
	}
	writeJSON(c, http.StatusOK, out)
}

// AgentListView answers GET /v1/agents: every agent by id, or with limit a
// page of them (pass next as after for the next page; "" at the end).
type AgentListView struct {
	Agents []AgentView `json:"agents"`
	Next   string      `json:"next"`
	Total  int         `json:"total"`
}
