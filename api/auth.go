package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/omnirouter/omnirouter/routing"
)

// Role is what a token may do.
type Role string

const (
	// RoleOperator may do everything.
	RoleOperator Role = "operator"
	// RoleRouter is a routing engine or channel integration: it creates and
	// updates conversations on the visitor's side, requests assignments and
	// reads everything.
	RoleRouter Role = "router"
	// RoleAgent is an agent (or the workspace acting for one): it acts only for
	// its own agent id, and reads everything.
	RoleAgent Role = "agent"
)

// Principal is the authenticated caller.
type Principal struct {
	// Name identifies the caller; idempotency keys are scoped by it.
	Name    string
	Role    Role
	AgentID string // for RoleAgent
}

// anonymous is the caller when no auth file is configured: an operator.
var anonymous = &Principal{Name: "anonymous", Role: RoleOperator}

// nobody is an unauthenticated caller when an auth file is configured: it
// has no role.
var nobody = &Principal{Name: "nobody"}

// AuthFile is the --auth-file format:
//
//	{"tokens": [
//	  {"token": "…", "role": "operator", "name": "ops"},
//	  {"token": "…", "role": "router", "name": "engine"},
//	  {"token": "…", "role": "agent", "agent_id": "a1"}
//	 ],
//	 "cluster_secret": "…"}
//
// name is optional (it defaults to a hash of the token) and scopes the
// caller's idempotency keys; agent_id is required for, and only allowed on,
// agent tokens.
type AuthFile struct {
	Tokens []TokenEntry `json:"tokens"`
	// ClusterSecret protects the node-to-node endpoints under /internal/.
	// Optional: by default it is derived from the operator tokens, so every
	// node given the same file agrees.
	ClusterSecret string `json:"cluster_secret,omitempty"`
}

// TokenEntry is one bearer token.
type TokenEntry struct {
	Token   string `json:"token"`
	Role    Role   `json:"role"`
	AgentID string `json:"agent_id,omitempty"`
	Name    string `json:"name,omitempty"`
}

// Auth checks bearer tokens. A nil *Auth lets everybody in as an operator.
type Auth struct {
	digests       [][sha256.Size]byte
	principals    []*Principal
	clusterSecret string
	derivedSecret string
}

// LoadAuthFile reads and validates an auth file.
func LoadAuthFile(path string) (*Auth, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth file: %w", err)
	}
	var f AuthFile
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("auth file %s: %w", path, err)
	}
	a, err := NewAuth(f)
	if err != nil {
		return nil, fmt.Errorf("auth file %s: %w", path, err)
	}
	return a, nil
}

// NewAuth validates the tokens of an auth file.
func NewAuth(f AuthFile) (*Auth, error) {
	if len(f.Tokens) == 0 {
		return nil, fmt.Errorf("no tokens")
	}
	a := &Auth{clusterSecret: f.ClusterSecret, derivedSecret: deriveSecret(f)}
	seen := map[string]bool{}
	for i, t := range f.Tokens {
		if t.Token == "" {
			return nil, fmt.Errorf("token %d: empty token", i)
		}
		if seen[t.Token] {
			return nil, fmt.Errorf("token %d: duplicate token", i)
		}
		seen[t.Token] = true
		switch t.Role {
		case RoleOperator, RoleRouter:
			if t.AgentID != "" {
				return nil, fmt.Errorf("token %d: agent_id is only for role %q", i, RoleAgent)
			}
		case RoleAgent:
			if err := routing.ValidID("agent_id", t.AgentID); err != nil {
				return nil, fmt.Errorf("token %d: %v", i, err)
			}
		default:
			return nil, fmt.Errorf("token %d: role %q is not operator, router or agent", i, t.Role)
		}
		d := sha256.Sum256([]byte(t.Token))
		name := t.Name
		if name == "" {
			name = "token-" + hex.EncodeToString(d[:8])
		}
		a.digests = append(a.digests, d)
		a.principals = append(a.principals, &Principal{Name: name, Role: t.Role, AgentID: t.AgentID})
	}
	return a, nil
}

// lookup finds the principal of a token. It compares the token's digest with
// every configured digest in constant time, without stopping at a match, so
// the time taken tells nothing about which token or prefix matched.
func (a *Auth) lookup(token string) *Principal {
	d := sha256.Sum256([]byte(token))
	found := -1
	for i := range a.digests {
		if subtle.ConstantTimeCompare(d[:], a.digests[i][:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return nil
	}
	return a.principals[found]
}

const principalKey = "omnirouter.principal"

// authenticate sets the caller's principal, or answers 401.
func (s *Server) authenticate(c *gin.Context) {
	if s.auth == nil {
		return // principal() answers anonymous; c.Set would allocate gin's key map per request
	}
	token, ok := bearerToken(c.GetHeader("Authorization"))
	if !ok {
		c.Header("WWW-Authenticate", `Bearer realm="omnirouter"`)
		s.fail(c, errorf(http.StatusUnauthorized, "unauthorized", "missing bearer token (Authorization: Bearer <token>)"))
		return
	}
	p := s.auth.lookup(token)
	if p == nil {
		c.Header("WWW-Authenticate", `Bearer realm="omnirouter", error="invalid_token"`)
		s.fail(c, errorf(http.StatusUnauthorized, "unauthorized", "invalid token"))
		return
	}
	c.Set(principalKey, p)
}

// bearerToken reads "Bearer <token>"; the scheme's case does not matter
// (RFC 7235 §2.1).
func bearerToken(h string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// principal is the caller authenticate found. Without an auth file every
// caller is the anonymous operator; with one, a request that did not pass
// through authenticate (a route registered outside the authenticated group)
// is nobody, whom every role check refuses, rather than an operator.
func (s *Server) principal(c *gin.Context) *Principal {
	if p, ok := c.Get(principalKey); ok {
		return p.(*Principal)
	}
	if s.auth == nil {
		return anonymous
	}
	return nobody
}

func forbidden(format string, args ...any) error {
	return errorf(http.StatusForbidden, "forbidden", format, args...)
}

// allow checks that the caller has one of the roles.
func (s *Server) allow(c *gin.Context, roles ...Role) error {
	p := s.principal(c)
	for _, r := range roles {
		if p.Role == r {
			return nil
		}
	}
	return forbidden("role %s may not %s %s", p.Role, c.Request.Method, c.FullPath())
}

// actAs checks that the caller may act for agentID: operators for anyone,
// agent tokens for their own agent only, plus the extra roles given.
func (s *Server) actAs(c *gin.Context, agentID string, roles ...Role) error {
	p := s.principal(c)
	switch {
	case p.Role == RoleOperator:
		return nil
	case p.Role == RoleAgent:
		if p.AgentID == agentID {
			return nil
		}
		return forbidden("this token acts for agent %q only, not %q", p.AgentID, agentID)
	}
	for _, r := range roles {
		if p.Role == r {
			return nil
		}
	}
	return forbidden("role %s may not act for agent %q", p.Role, agentID)
}

// requireRoles is allow as middleware.
func (s *Server) requireRoles(roles ...Role) gin.HandlerFunc {
	return func(c *gin.Context) {
		if err := s.allow(c, roles...); err != nil {
			s.fail(c, err)
		}
	}
}
