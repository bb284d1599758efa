package api

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/omnirouter/omnirouter/routing"
)

// ExplanationView answers GET /v1/conversations/{id}/explain.
type ExplanationView struct {
	ID               string      `json:"id"`
	State            string      `json:"state"`
	Channel          string      `json:"channel"`
	AgentID          *string     `json:"agent_id"`
	Position         *int        `json:"position"`
	QueueLength      int         `json:"queue_length"`
	AgentsConsidered int         `json:"agents_considered"`
	EligibleAgents   int         `json:"eligible_agents"`
	Causes           []CauseView `json:"causes"`
	NextChangeAt     *string     `json:"next_change_at"`
}

// CauseView is one cause of a wait: how many agents it keeps from the
// conversation and the first of them by id.
type CauseView struct {
	Cause  string   `json:"cause"`
	Count  int      `json:"count"`
	Agents []string `json:"agents"`
	Detail string   `json:"detail"`
	At     *string  `json:"at"`
}

func explanationView(e *routing.Explanation) ExplanationView {
	v := ExplanationView{
		ID:               e.ConversationID,
		State:            e.State.String(),
		Channel:          e.Channel.String(),
		QueueLength:      e.QueueLength,
		AgentsConsidered: e.Considered,
		EligibleAgents:   e.Eligible,
		Causes:           make([]CauseView, 0, len(e.Causes)),
		NextChangeAt:     formatTime(e.NextChangeAt),
	}
	if e.AgentID != "" {
		v.AgentID = &e.AgentID
	}
	if e.Position > 0 {
		v.Position = &e.Position
	}
	for _, c := range e.Causes {
		cv := CauseView{Cause: c.Cause.String(), Count: c.Count, Agents: nonNil(c.Agents), Detail: c.Detail, At: formatTime(c.At)}
		if c.Cause == routing.CauseSkillsTimeout && cv.At != nil {
			cv.Detail = "relaxed at " + *cv.At
		}
		v.Causes = append(v.Causes, cv)
	}
	return v
}

// GET /v1/conversations/{id}/explain.
func (s *Server) explain(c *gin.Context) {
	var e routing.Explanation
	var err error
	if !s.read(c, func(m *routing.Machine) { e, err = m.Explain(c.Param("id")) }) {
		return
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	writeJSON(c, http.StatusOK, explanationView(&e))
}

// PreviewView answers POST /v1/policy/preview.
type PreviewView struct {
	Offers    []HoldingView     `json:"offers"`
	Withdrawn []HoldingView     `json:"withdrawn"`
	Counted   []string          `json:"counted"`
	Uncounted []string          `json:"uncounted"`
	Agents    []LoadChangeView  `json:"agents"`
	Totals    PreviewTotalsView `json:"totals"`
	Policy    map[string]any    `json:"policy"`
}

// HoldingView is a conversation and the agent a preview gives it to (or
// takes it from).
type HoldingView struct {
	ConversationID string `json:"conversation_id"`
	AgentID        string `json:"agent_id"`
	State          string `json:"state"`
}

// LoadChangeView is one agent's load before and after a previewed change.
type LoadChangeView struct {
	ID         string   `json:"id"`
	Capacity   Channels `json:"capacity"`
	LoadBefore Channels `json:"load_before"`
	LoadAfter  Channels `json:"load_after"`
}

// PreviewTotalsView counts a preview's lists in full; each list holds at
// most routing.MaxPreviewItems.
type PreviewTotalsView struct {
	Offers    int `json:"offers"`
	Withdrawn int `json:"withdrawn"`
	Counted   int `json:"counted"`
	Uncounted int `json:"uncounted"`
	Agents    int `json:"agents"`
}

func holdingViews(hs []routing.PreviewHolding) []HoldingView {
	out := make([]HoldingView, 0, len(hs))
	for _, h := range hs {
		out = append(out, HoldingView{ConversationID: h.ConversationID, AgentID: h.AgentID, State: h.State.String()})
	}
	return out
}

func previewView(p *routing.PolicyPreview) PreviewView {
	v := PreviewView{
		Offers:    holdingViews(p.Offers),
		Withdrawn: holdingViews(p.Withdrawn),
		Counted:   nonNil(p.Counted),
		Uncounted: nonNil(p.Uncounted),
		Agents:    make([]LoadChangeView, 0, len(p.Agents)),
		Totals:    PreviewTotalsView(p.Totals),
		Policy:    policyJSON(p.Policy),
	}
	for _, a := range p.Agents {
		v.Agents = append(v.Agents, LoadChangeView{ID: a.AgentID, Capacity: channelsOf(a.Capacity),
			LoadBefore: channelsOf(a.Before), LoadAfter: channelsOf(a.After)})
	}
	return v
}

// POST /v1/policy/preview: the body of PUT /v1/policy applied to a fork of
// a linearizable clone of the state; nothing is proposed. A fork holds
// lookup maps of the whole state, so previews run one at a time.
func (s *Server) previewPolicy(c *gin.Context) {
	patch, err := decodePolicyPatch(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	ctx := s.deadlines.Context(c.Request.Context())
	select {
	case s.previews <- struct{}{}:
		defer func() { <-s.previews }()
	case <-ctx.Done():
		s.fail(c, errorf(http.StatusServiceUnavailable, "busy", "another policy preview is running; try again"))
		return
	}
	m, by, err := s.cluster.Clone(ctx, Linearizable)
	if by != "" {
		c.Header("X-Omnirouter-Node", by)
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	p, err := m.PreviewPolicy(patch)
	if err != nil {
		s.fail(c, err)
		return
	}
	writeJSON(c, http.StatusOK, previewView(&p))
}
