package api

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
)

func init() { gin.SetMode(gin.TestMode) }

// Tokens of the test auth file.
const (
	tokOperator = "op-token-0123456789"
	tokRouter   = "router-token-0123456789"
	tokAgentA1  = "agent-a1-token-0123456789"
	tokAgentA2  = "agent-a2-token-0123456789"
)

func testAuth(t *testing.T) *Auth {
	t.Helper()
	a, err := NewAuth(AuthFile{Tokens: []TokenEntry{
		{Token: tokOperator, Role: RoleOperator, Name: "ops"},
		{Token: tokRouter, Role: RoleRouter, Name: "engine"},
		{Token: tokAgentA1, Role: RoleAgent, AgentID: "a1"},
		{Token: tokAgentA2, Role: RoleAgent, AgentID: "a2"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

type harness struct {
	t     *testing.T
	fake  *fakeCluster
	api   *Server
	srv   *httptest.Server
	token string // default token for requests
}

type harnessOpt func(*Config)

func withAuth(a *Auth) harnessOpt     { return func(c *Config) { c.Auth = a } }
func withMaxMessage(n int) harnessOpt { return func(c *Config) { c.MaxMessageBytes = n } }

func newHarness(t *testing.T, opts ...harnessOpt) *harness {
	t.Helper()
	f := newFakeCluster()
	cfg := Config{Cluster: f, Now: f.clock}
	for _, o := range opts {
		o(&cfg)
	}
	s := New(cfg)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		s.CloseStreams()
		srv.Close()
	})
	return &harness{t: t, fake: f, api: s, srv: srv}
}

type response struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("response is not a JSON object: %v: %s", err, r.Body)
	}
	return m
}

// errCode returns the error code of an error response.
func (r response) errCode(t *testing.T) string {
	t.Helper()
	m := r.json(t)
	e, ok := m["error"].(map[string]any)
	if !ok {
		t.Fatalf("not an error body: %s", r.Body)
	}
	if _, ok := e["message"].(string); !ok {
		t.Fatalf("error without message: %s", r.Body)
	}
	return e["code"].(string)
}

// req sends a request; body may be nil, a string (sent as is) or a value
// encoded as JSON. headers are name, value pairs.
func (h *harness) req(method, path string, body any, headers ...string) response {
	h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			h.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	r, err := http.NewRequest(method, h.srv.URL+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if body != nil {
		r.Header.Set("Content-Type", "application/json")
	}
	if h.token != "" {
		r.Header.Set("Authorization", "Bearer "+h.token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i] == "Authorization" && headers[i+1] == "" {
			r.Header.Del("Authorization")
			continue
		}
		if headers[i] == "Host" {
			r.Host = headers[i+1]
			continue
		}
		r.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// must sends a request and fails the test unless the status is want.
func (h *harness) must(want int, method, path string, body any, headers ...string) map[string]any {
	h.t.Helper()
	r := h.req(method, path, body, headers...)
	if r.Status != want {
		h.t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.Status, want, r.Body)
	}
	if len(r.Body) == 0 {
		return nil
	}
	return r.json(h.t)
}

// fails sends a request and checks its error status and code.
func (h *harness) fails(status int, code, method, path string, body any, headers ...string) {
	h.t.Helper()
	r := h.req(method, path, body, headers...)
	if r.Status != status {
		h.t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.Status, status, r.Body)
	}
	if got := r.errCode(h.t); code != "" && got != code {
		h.t.Fatalf("%s %s: code %q, want %q: %s", method, path, got, code, r.Body)
	}
}

// agent creates an online agent.
func (h *harness) agent(id string, chat, messaging int) {
	h.t.Helper()
	h.must(200, "PUT", "/v1/agents/"+id, map[string]any{"name": id, "capacity": map[string]int{"chat": chat, "messaging": messaging}}, "Authorization", "Bearer "+h.opToken())
	h.must(200, "PUT", "/v1/agents/"+id+"/status", map[string]string{"status": "online"}, "Authorization", "Bearer "+h.opToken())
}

func (h *harness) opToken() string {
	if h.api.auth == nil {
		return ""
	}
	return tokOperator
}

func str(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}
