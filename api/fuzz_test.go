package api_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/omnirouter/omnirouter/api"
	"github.com/omnirouter/omnirouter/cluster"
	"github.com/omnirouter/omnirouter/internal/testutil"
	"github.com/omnirouter/omnirouter/routing"
)

// fuzzNode is a real single-node cluster (raft on bbolt in a temp dir)
// behind the real gin router, seeded with an agent and two conversations,
// with every timeout at its maximum so that nothing changes while a fuzz
// input is checked except what the input does.
func fuzzNode(tb testing.TB) (*cluster.Node, http.Handler) {
	tb.Helper()
	gin.SetMode(gin.ReleaseMode)
	raftAddr, err := testutil.FreeAddr()
	if err != nil {
		tb.Fatal(err)
	}
	node, err := cluster.Open(cluster.Config{NodeID: "f1", DataDir: tb.TempDir(), RaftAddr: raftAddr,
		HTTPAddr: "http://127.0.0.1:1", BootstrapExpect: 1, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { node.Shutdown() })
	h := api.New(api.Config{Cluster: node, Internal: node.Handler()}).Handler()
	testutil.Until(tb, 20*time.Second, "the node ready", node.Ready)
	long := `"720h"`
	for _, r := range []struct{ method, path, body string }{
		{"PUT", "/v1/policy", `{"chat":{"web":{"idle_after":` + long + `,"idle_timeout":` + long + `,"disconnect_timeout":` + long + `},
			"mobile_sdk":{"inactivity_timeout":` + long + `,"disconnect_timeout":` + long + `,"agent_ended_timeout":` + long + `,"background_timeout":` + long + `}},
			"messaging":{"inactivity_timeout":` + long + `},"routing":{"offer_timeout":` + long + `,"reassign_delay":` + long + `}}`},
		{"PUT", "/v1/agents/a1", `{"name":"Ana","capacity":{"chat":2,"messaging":2},"skills":["fr"],"groups":["support"]}`},
		{"PUT", "/v1/agents/a1/status", `{"status":"online"}`},
		{"POST", "/v1/conversations", `{"id":"c1","channel":"chat","client":"web","message":"hi"}`},
		{"POST", "/v1/conversations", `{"id":"m1","channel":"messaging","message":"hi"}`},
	} {
		if rec := do(h, r.method, r.path, []byte(r.body)); rec.Code >= 300 {
			tb.Fatalf("seed %s %s: %d %s", r.method, r.path, rec.Code, rec.Body)
		}
	}
	return node, h
}

func do(h http.Handler, method, path string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func lastEvent(tb testing.TB, node *cluster.Node) uint64 {
	var id uint64
	if _, err := node.Read(context.Background(), cluster.Linearizable, func(m *routing.Machine) { id = m.LastEventID() }); err != nil {
		tb.Fatal(err)
	}
	return id
}

// fuzzRoutes are the mutations whose bodies are fuzzed (cluster membership
// and restore are left out: a fuzzed join would add a voter that does not
// exist and cost the single node its quorum).
var fuzzRoutes = []struct{ method, path, seed string }{
	{"PUT", "/v1/agents/a1", `{"name":"Ana","capacity":{"chat":3,"messaging":1},"skills":["fr"],"groups":["g"]}`},
	{"PUT", "/v1/agents/a2", `{"name":"Bo","capacity":{"chat":0,"messaging":500}}`},
	{"PUT", "/v1/agents/a1/status", `{"status":"away"}`},
	{"POST", "/v1/agents/a1/release", `{"conversation_id":"m1","ticket_status":"on-hold"}`},
	{"POST", "/v1/conversations", `{"id":"c2","channel":"chat","client":"mobile_sdk","push_enabled":true,"priority":2,"skills":["fr"],"group":"support","visitor_id":"v1","message":"bonjour"}`},
	{"POST", "/v1/conversations/c1/messages", `{"author":"agent","agent_id":"a1","text":"hello"}`},
	{"POST", "/v1/conversations/c1/presence", `{"event":"disconnected"}`},
	{"POST", "/v1/conversations/c1/accept", `{"agent_id":"a1"}`},
	{"POST", "/v1/conversations/c1/reject", `{"agent_id":"a1"}`},
	{"POST", "/v1/conversations/c1/leave", `{"agent_id":"a1"}`},
	{"POST", "/v1/conversations/c1/end", `{"by":"agent","agent_id":"a1"}`},
	{"PUT", "/v1/conversations/m1/ticket", `{"status":"pending"}`},
	{"POST", "/v1/assignments", `{"agent_id":"a1","conversation_id":"c1"}`},
}

// FuzzRequestBodies sends arbitrary bodies to the API's mutations, through
// the real router into a real single-node cluster: no input may cause a
// 5xx, and a refused one (4xx) must change nothing — every change emits an
// event, so the newest event id must stay where it was.
func FuzzRequestBodies(f *testing.F) {
	for i, r := range fuzzRoutes {
		f.Add(uint8(i), []byte(r.seed))
		f.Add(uint8(i), []byte(`{}`))
		f.Add(uint8(i), []byte(`{"id":`))
	}
	node, h := fuzzNode(f)
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		r := fuzzRoutes[int(route)%len(fuzzRoutes)]
		before := lastEvent(t, node)
		rec := do(h, r.method, r.path, body)
		if rec.Code >= 500 {
			t.Fatalf("%s %s %q: %d %s", r.method, r.path, body, rec.Code, rec.Body)
		}
		if rec.Code >= 400 {
			if !strings.Contains(rec.Body.String(), `"error":{"code":`) {
				t.Fatalf("%d without an error body: %s", rec.Code, rec.Body)
			}
			if after := lastEvent(t, node); after != before {
				t.Fatalf("%s %s %q was refused (%d %s) but changed the state (events %d → %d)",
					r.method, r.path, body, rec.Code, rec.Body, before, after)
			}
		}
	})
}

// FuzzPolicyBody does the same for PUT /v1/policy: a refused patch leaves
// the policy as it was.
func FuzzPolicyBody(f *testing.F) {
	for _, seed := range []string{
		`{"routing":{"mode":"external","strategy":"round_robin","auto_accept":true,"offer_timeout":"45s"}}`,
		`{"chat":{"agent_can_end_chat":false,"web":{"idle_after":"5m"}},"messaging":{"count_inactive_messaging":true}}`,
		`{"routing":{"offer_timeout":"-1s"}}`, `{"routing":{"strategy":"fastest"}}`, `[]`, `{"chat":{"web":{"idle_after":5}}}`,
	} {
		f.Add([]byte(seed))
	}
	_, h := fuzzNode(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		before := do(h, "GET", "/v1/policy", nil).Body.String()
		rec := do(h, "PUT", "/v1/policy", body)
		if rec.Code >= 500 {
			t.Fatalf("%q: %d %s", body, rec.Code, rec.Body)
		}
		if rec.Code >= 400 {
			if after := do(h, "GET", "/v1/policy", nil).Body.String(); after != before {
				t.Fatalf("%q refused (%d) but the policy changed:\n%s\n%s", body, rec.Code, before, after)
			}
		}
	})
}
