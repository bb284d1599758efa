package api

import (
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/omnirouter/omnirouter/routing"
)

// GET /v1/policy.
func (s *Server) getPolicy(c *gin.Context) {
	var p routing.Policy
	if s.read(c, func(m *routing.Machine) { p = m.Policy() }) {
		c.JSON(http.StatusOK, policyView(p))
	}
}

// PUT /v1/policy sets the fields the body contains and keeps the others; it
// answers with the whole policy.
func (s *Server) putPolicy(c *gin.Context) {
	var req PolicyView
	if err := decode(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	patch, err := req.patch()
	if err != nil {
		s.fail(c, err)
		return
	}
	if _, ok := s.propose(c, routing.SetPolicy{Patch: patch}); !ok {
		return
	}
	// The write is applied on the leader; a linearizable read sees it.
	var p routing.Policy
	if s.readAt(c, Linearizable, func(m *routing.Machine) { p = m.Policy() }) {
		c.JSON(http.StatusOK, policyView(p))
	}
}

// GET /v1/debug/invariants checks the state machine's internal consistency
// (operators; the load tool calls it to verify a run).
func (s *Server) invariants(c *gin.Context) {
	var err error
	if !s.readAt(c, Linearizable, func(m *routing.Machine) { err = m.CheckInvariants() }) {
		return
	}
	violations := []string{}
	if err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			if line = strings.TrimSpace(line); line != "" {
				violations = append(violations, line)
			}
		}
		s.log.Error("state machine invariants violated", "violations", len(violations), "err", err)
		c.JSON(http.StatusInternalServerError, gin.H{"ok": false, "violations": violations})
		return
	}
	c.JSON(http.StatusOK, gin.H{"ok": true, "violations": violations})
}
