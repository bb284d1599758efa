package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/omnirouter/omnirouter/internal/httpbody"
	"github.com/omnirouter/omnirouter/routing"
)

// The policy's JSON is routing's table of policy fields: a field named
// "chat.web.idle_after" is {"chat": {"web": {"idle_after": "10m"}}}.
// Durations are Go duration strings, enums their names.

// GET /v1/policy.
func (s *Server) getPolicy(c *gin.Context) {
	var p routing.Policy
	if s.read(c, func(m *routing.Machine) { p = m.Policy() }) {
		writeJSON(c, http.StatusOK, policyJSON(p))
	}
}

// PUT /v1/policy sets the fields the body contains and keeps the others; it
// answers with the whole policy.
func (s *Server) putPolicy(c *gin.Context) {
	patch, err := decodePolicyPatch(c)
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
		writeJSON(c, http.StatusOK, policyJSON(p))
	}
}

// policyJSON nests the policy's fields by their dotted names.
func policyJSON(p routing.Policy) map[string]any {
	root := map[string]any{}
	for _, v := range p.Values() {
		parts := strings.Split(v.Name, ".")
		m := root
		for _, k := range parts[:len(parts)-1] {
			next, ok := m[k].(map[string]any)
			if !ok {
				next = map[string]any{}
				m[k] = next
			}
			m = next
		}
		var val any
		switch v.Kind {
		case routing.PolicyDuration:
			val = formatDuration(v.Duration)
		case routing.PolicyBool:
			val = v.Bool
		case routing.PolicyInt:
			val = v.Int
		case routing.PolicyEnum:
			val = v.Enum
		}
		m[parts[len(parts)-1]] = val
	}
	return root
}

// formatDuration writes a duration the way people write them: "10m", "1h",
// "1h30m".
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// decodePolicyPatch reads a PUT /v1/policy body: a JSON object whose
// leaves are policy fields. A null leaf or group sets nothing.
func decodePolicyPatch(c *gin.Context) (routing.PolicyPatch, error) {
	var patch routing.PolicyPatch
	if err := requireBodyType(c.Request, "application/json"); err != nil {
		return patch, err
	}
	body, err := httpbody.Read(c.Writer, c.Request, MaxBodyBytes)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return patch, errorf(http.StatusRequestEntityTooLarge, "body_too_large", "request body exceeds %d bytes", MaxBodyBytes)
		}
		return patch, errorf(http.StatusBadRequest, "unreadable_body", "cannot read request body: %v", err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var root any
	if err := dec.Decode(&root); err != nil {
		return patch, errorf(http.StatusBadRequest, "malformed_json", "malformed JSON: %v", err)
	}
	if dec.More() {
		return patch, errorf(http.StatusBadRequest, "malformed_json", "malformed JSON: trailing data after the object")
	}
	obj, ok := root.(map[string]any)
	if !ok {
		return patch, errorf(http.StatusBadRequest, "malformed_json", "request body must be a JSON object")
	}
	return routing.PolicyPatchFromObject(obj)
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
		writeJSON(c, http.StatusInternalServerError, gin.H{"ok": false, "violations": violations})
		return
	}
	writeJSON(c, http.StatusOK, gin.H{"ok": true, "violations": violations})
}
