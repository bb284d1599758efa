package api

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/omnirouter/omnirouter/capacity"
	"github.com/omnirouter/omnirouter/routing"
)

type messageRequest struct {
	Author  string `json:"author"`
	AgentID string `json:"agent_id"`
	Text    string `json:"text"`
}

type agentIDRequest struct {
	AgentID string `json:"agent_id"`
}

type endRequest struct {
	By        string `json:"by"`
	AgentID   string `json:"agent_id"`
	Voicemail bool   `json:"voicemail"`
}

type createRequest struct {
	ID          string   `json:"id"`
	Channel     string   `json:"channel"`
	Client      string   `json:"client"`
	PushEnabled bool     `json:"push_enabled"`
	Priority    int      `json:"priority"`
	Skills      []string `json:"skills"`
	Group       string   `json:"group"`
	VisitorID   string   `json:"visitor_id"`
	Message     *string  `json:"message"`
	Subject     string   `json:"subject"`
	// Relaxed routing.skills_timeout after the eligibility time.
	OptionalSkills  []string `json:"optional_skills"`
	SecondaryGroups []string `json:"secondary_groups"`
}

// POST /v1/conversations → 201.
func (s *Server) createConversation(c *gin.Context) {
	var req createRequest
	if err := decode(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	key, err := s.idempotencyKey(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	ch, err := capacity.ParseChannel(req.Channel)
	if err != nil {
		s.fail(c, invalid("invalid_channel", "channel must be \"chat\", \"messaging\", \"email\" or \"voice\", got %q", req.Channel))
		return
	}
	cmd := routing.CreateConversation{ID: req.ID, Channel: ch, PushEnabled: req.PushEnabled, Priority: req.Priority,
		Skills: req.Skills, Group: req.Group, VisitorID: req.VisitorID, Subject: req.Subject,
		OptionalSkills: req.OptionalSkills, SecondaryGroups: req.SecondaryGroups}
	switch {
	case ch == capacity.Chat && req.Client == "":
		cmd.Client = routing.ClientWeb
	case ch == capacity.Chat:
		if cmd.Client, err = routing.ParseClient(req.Client); err != nil || cmd.Client == routing.ClientNone {
			s.fail(c, invalid("invalid_client", "client must be \"web\" or \"mobile_sdk\", got %q", req.Client))
			return
		}
	case req.Client != "":
		s.fail(c, invalid("invalid_client", "client is for chat conversations only"))
		return
	}
	if req.Priority < -routing.MaxPriority || req.Priority > routing.MaxPriority {
		s.fail(c, invalid(routing.CodeInvalidPriority, "priority must be between %d and %d", -routing.MaxPriority, routing.MaxPriority))
		return
	}
	if cmd.ID == "" {
		cmd.ID = newID("conversation", "c_", 16, key)
	}
	if err := routing.ValidID("id", cmd.ID); err != nil {
		s.fail(c, err)
		return
	}
	if err := routing.ValidLabels("skills", req.Skills); err != nil {
		s.fail(c, err)
		return
	}
	if len(req.Group) > routing.MaxIDLen {
		s.fail(c, invalid("invalid_group", "group is longer than %d bytes", routing.MaxIDLen))
		return
	}
	if req.Message != nil {
		if err := s.checkText(*req.Message); err != nil {
			s.fail(c, err)
			return
		}
		cmd.Message = *req.Message
	}
	span, err := transcriptQuery(c, fullTranscript) // at most the first message
	if err != nil {
		s.fail(c, err)
		return
	}
	out, ok := s.proposeKey(c, key, cmd)
	if ok {
		s.respondConversation(c, http.StatusCreated, cmd.ID, out, span)
	}
}

func (s *Server) checkText(text string) error {
	if text == "" {
		return invalid(routing.CodeInvalidText, "text is required")
	}
	if len(text) > s.maxMessage {
		return errorf(http.StatusRequestEntityTooLarge, "message_too_large", "message text is %d bytes; the limit is %d", len(text), s.maxMessage)
	}
	return nil
}

// GET /v1/conversations/{id}.
func (s *Server) getConversation(c *gin.Context) {
	level, err := readLevel(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	span, err := transcriptQuery(c, fullTranscript)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.writeConversation(c, http.StatusOK, c.Param("id"), level, span)
}

func (s *Server) writeConversation(c *gin.Context, status int, id string, level ReadLevel, span transcriptSpan) {
	var conv routing.Conversation
	var found bool
	if !s.readAt(c, level, func(m *routing.Machine) { conv, found = m.Conversation(id) }) {
		return
	}
	if !found {
		s.fail(c, errorf(http.StatusNotFound, routing.CodeConversationNotFound, "conversation %q not found", id))
		return
	}
	s.writeConversationJSON(c, status, &conv, span)
}

func (s *Server) respondConversation(c *gin.Context, status int, id string, out routing.Outcome, span transcriptSpan) {
	if out.Conversation != nil {
		s.writeConversationJSON(c, status, out.Conversation, span)
		return
	}
	s.writeConversation(c, status, id, Linearizable, span)
}

// POST /v1/conversations/{id}/messages.
func (s *Server) postMessage(c *gin.Context) {
	id := c.Param("id")
	var req messageRequest
	if err := decode(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	author, err := routing.ParseAuthor(req.Author)
	if err != nil || author == routing.AuthorSystem {
		s.fail(c, invalid("invalid_author", "author must be \"visitor\" or \"agent\", got %q", req.Author))
		return
	}
	cmd := routing.PostMessage{ConversationID: id, Author: author, Text: req.Text, AgentID: req.AgentID}
	if err := s.checkActor(c, author == routing.AuthorAgent, req.AgentID, `author "agent"`); err != nil {
		s.fail(c, err)
		return
	}
	if err := s.checkText(req.Text); err != nil {
		s.fail(c, err)
		return
	}
	s.conversationCommand(c, id, cmd)
}

// POST /v1/conversations/{id}/presence.
func (s *Server) postPresence(c *gin.Context) {
	var req struct {
		Event string `json:"event"`
	}
	if err := decode(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	ev, err := routing.ParsePresenceEvent(req.Event)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.conversationCommand(c, c.Param("id"), routing.Presence{ConversationID: c.Param("id"), Event: ev})
}

// agentRequestBody is {agent_id} for accept, reject and leave.
func (s *Server) agentAction(c *gin.Context, mk func(conv, agent string) routing.Command) {
	var req agentIDRequest
	if err := decode(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	if err := routing.ValidID("agent_id", req.AgentID); err != nil {
		s.fail(c, err)
		return
	}
	if err := s.actAs(c, req.AgentID); err != nil {
		s.fail(c, err)
		return
	}
	id := c.Param("id")
	s.conversationCommand(c, id, mk(id, req.AgentID))
}

// POST /v1/conversations/{id}/accept.
func (s *Server) accept(c *gin.Context) {
	s.agentAction(c, func(conv, agent string) routing.Command {
		return routing.Accept{ConversationID: conv, AgentID: agent}
	})
}

// POST /v1/conversations/{id}/reject.
func (s *Server) reject(c *gin.Context) {
	s.agentAction(c, func(conv, agent string) routing.Command {
		return routing.Reject{ConversationID: conv, AgentID: agent}
	})
}

// POST /v1/conversations/{id}/leave.
func (s *Server) leave(c *gin.Context) {
	s.agentAction(c, func(conv, agent string) routing.Command {
		return routing.Leave{ConversationID: conv, AgentID: agent}
	})
}

// POST /v1/conversations/{id}/end.
func (s *Server) end(c *gin.Context) {
	var req endRequest
	if err := decode(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	by, err := routing.ParseEndedBy(req.By)
	if err != nil {
		s.fail(c, err)
		return
	}
	id := c.Param("id")
	cmd := routing.End{ConversationID: id, By: by, Voicemail: req.Voicemail, AgentID: req.AgentID}
	if err := s.checkActor(c, by == routing.EndedByAgent, req.AgentID, `by "agent"`); err != nil {
		s.fail(c, err)
		return
	}
	s.conversationCommand(c, id, cmd)
}

// PUT /v1/conversations/{id}/ticket.
func (s *Server) putTicket(c *gin.Context) {
	var req struct {
		Status string `json:"status"`
	}
	if err := decode(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	st, err := routing.ParseTicketStatus(req.Status)
	if err != nil {
		s.fail(c, err)
		return
	}
	id := c.Param("id")
	s.conversationCommand(c, id, routing.SetTicketStatus{ConversationID: id, Status: st})
}

// conversationCommand proposes a command about conversation id and answers
// with the updated conversation.
func (s *Server) conversationCommand(c *gin.Context, id string, cmd routing.Command) {
	if err := routing.ValidID("conversation id", id); err != nil {
		s.fail(c, err)
		return
	}
	span, err := transcriptQuery(c, noTranscript)
	if err != nil {
		s.fail(c, err)
		return
	}
	out, ok := s.propose(c, cmd)
	if ok {
		s.respondConversation(c, http.StatusOK, id, out, span)
	}
}

// POST /v1/assignments: a routing engine asks for an assignment.
func (s *Server) requestAssignment(c *gin.Context) {
	var req struct {
		AgentID        string `json:"agent_id"`
		ConversationID string `json:"conversation_id"`
		Force          bool   `json:"force"`
	}
	if err := decode(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	if req.AgentID != "" {
		if err := routing.ValidID("agent_id", req.AgentID); err != nil {
			s.fail(c, err)
			return
		}
	}
	if req.ConversationID != "" {
		if err := routing.ValidID("conversation_id", req.ConversationID); err != nil {
			s.fail(c, err)
			return
		}
	}
	if req.Force {
		if err := s.allow(c, RoleOperator); err != nil {
			s.fail(c, forbidden("only operators may force an assignment"))
			return
		}
		if req.AgentID == "" || req.ConversationID == "" {
			s.fail(c, invalid("invalid_assignment", "a forced assignment names both agent_id and conversation_id"))
			return
		}
	}
	out, ok := s.propose(c, routing.RequestAssignment{AgentID: req.AgentID, ConversationID: req.ConversationID, Force: req.Force})
	if !ok {
		return
	}
	if out.Assignment == nil {
		s.fail(c, errorf(http.StatusNotFound, routing.CodeNoEligibleConversation, "nothing could be assigned"))
		return
	}
	a := out.Assignment
	s.writeJSON(c, http.StatusOK, AssignmentView{ConversationID: a.ConversationID, AgentID: a.AgentID, State: a.State.String()})
}

// GET /v1/queue[?channel=&group=&limit=]: in routing order, each
// conversation with its position in its channel's queue.
func (s *Server) getQueue(c *gin.Context) {
	var f routing.QueueFilter
	var err error
	if f.Channel, f.HasChannel, err = channelQuery(c); err != nil {
		s.fail(c, err)
		return
	}
	f.Group = c.Query("group")
	if f.Limit, err = limitQuery(c, maxListLimit); err != nil {
		s.fail(c, err)
		return
	}
	now := s.now().UnixMilli()
	out := QueueView{Items: []QueueItem{}}
	if !s.read(c, func(m *routing.Machine) {
		for _, e := range m.QueueItems(f) {
			wait := float64(max(0, now-e.QueuedAt)) / 1000
			out.Items = append(out.Items, QueueItem{ID: e.ID, Channel: e.Channel.String(), Priority: e.Priority, Group: e.Group,
				QueuedAt: formatTime(e.QueuedAt), Position: e.Position, WaitSeconds: wait})
		}
		for _, g := range m.QueueGroups() {
			if (!f.HasChannel || g.Channel == f.Channel) && (f.Group == "" || g.Group == f.Group) {
				out.Waiting += g.Waiting
			}
		}
	}) {
		return
	}
	s.writeJSON(c, http.StatusOK, out)
}

// QueueView answers GET /v1/queue: the first items in routing order (at
// most limit, 1000 by default) and how many wait in all under the filter.
type QueueView struct {
	Items   []QueueItem `json:"items"`
	Waiting int         `json:"waiting"`
}

// checkActor checks who an action taken by an agent or by the end user's
// side is for: an agent's names its agent_id, which an agent token may only
// be its own; the end user's side (an operator or a router) names none.
func (s *Server) checkActor(c *gin.Context, byAgent bool, agentID, agentSide string) error {
	if !byAgent {
		if agentID != "" {
			return invalid("invalid_agent_id", "agent_id is only for %s", agentSide)
		}
		return s.allow(c, RoleOperator, RoleRouter)
	}
	if err := routing.ValidID("agent_id", agentID); err != nil {
		return err
	}
	return s.actAs(c, agentID)
}
