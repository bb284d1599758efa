package api

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/omnirouter/omnirouter/cluster"
	"github.com/omnirouter/omnirouter/internal/buildinfo"
)

// TestJoinChecksTheRequest: a join with a bad id or address is refused with
// 422 naming the field, before the cluster is asked; the cluster's own
// refusals (unreachable raft address, another member's address) keep their
// codes.
func TestJoinChecksTheRequest(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct {
		body  map[string]string
		code  string
		field string
	}{
		{map[string]string{"id": "n4", "raft_addr": "notanaddr", "http_addr": "alsonot"}, "invalid_address", "raft_addr"},
		{map[string]string{"id": "n4", "raft_addr": "10.0.0.4", "http_addr": "http://10.0.0.4:8080"}, "invalid_address", "raft_addr"},
		{map[string]string{"id": "n4", "raft_addr": "10.0.0.4:70000", "http_addr": "http://10.0.0.4:8080"}, "invalid_address", "raft_addr"},
		{map[string]string{"id": "n4", "raft_addr": "0.0.0.0:7000", "http_addr": "http://10.0.0.4:8080"}, "invalid_address", "raft_addr"},
		{map[string]string{"id": "n4", "raft_addr": "10.0.0.4:7000", "http_addr": "alsonot:x"}, "invalid_address", "http_addr"},
		{map[string]string{"id": "n4", "raft_addr": "10.0.0.4:7000", "http_addr": "ftp://10.0.0.4:21"}, "invalid_address", "http_addr"},
		{map[string]string{"id": "n4", "raft_addr": "10.0.0.4:7000"}, "invalid_address", "http_addr"},
		{map[string]string{"id": "n 4", "raft_addr": "10.0.0.4:7000", "http_addr": "http://10.0.0.4:8080"}, "invalid_id", "id"},
		{map[string]string{"raft_addr": "10.0.0.4:7000", "http_addr": "http://10.0.0.4:8080"}, "invalid_id", "id"},
	} {
		r := h.req("POST", "/v1/cluster/join", tc.body)
		msg, _ := r.json(t)["error"].(map[string]any)["message"].(string)
		if r.Status != 422 || r.errCode(t) != tc.code || !strings.HasPrefix(msg, tc.field) {
			t.Errorf("join %v: %d %s", tc.body, r.Status, r.Body)
		}
	}
	if len(h.fake.joined) != 0 {
		t.Fatalf("refused joins reached the cluster: %v", h.fake.joined)
	}
	good := map[string]string{"id": "n4", "raft_addr": "10.0.0.4:7000", "http_addr": "10.0.0.4:8080"}
	h.fake.setErrs(fmt.Errorf("%w: 10.0.0.4:7000 did not answer within 5s", cluster.ErrRaftUnreachable), nil)
	h.fails(422, "raft_unreachable", "POST", "/v1/cluster/join", good)
	h.fake.setErrs(fmt.Errorf("%w: raft_addr 10.0.0.4:7000 is member n1's address", cluster.ErrInvalidJoin), nil)
	h.fails(422, "invalid_address", "POST", "/v1/cluster/join", good)
	h.fake.setErrs(nil, nil)
	h.must(200, "POST", "/v1/cluster/join", good)
}

// TestRemovedNodeAnswers: a node that was removed says so in /v1/cluster
// and /readyz, and answers writes with 503 node_removed without
// Retry-After (waiting on this node will not help).
func TestRemovedNodeAnswers(t *testing.T) {
	h := newHarness(t)
	h.fake.mu.Lock()
	h.fake.removedNode = true
	h.fake.readyErr = cluster.ErrRemoved
	h.fake.proposeErr = cluster.ErrRemoved
	h.fake.mu.Unlock()
	if cl := h.must(200, "GET", "/v1/cluster", nil); str(cl, "state") != "removed" {
		t.Fatalf("cluster: %v", cl)
	}
	for _, r := range []response{
		h.req("GET", "/readyz", nil),
		h.req("PUT", "/v1/agents/a1", map[string]any{"name": "Ana"}),
		h.req("POST", "/v1/conversations", map[string]any{"channel": "chat"}),
	} {
		if r.Status != 503 || r.errCode(t) != "node_removed" || r.Header.Get("Retry-After") != "" {
			t.Errorf("%d %v %s", r.Status, r.Header, r.Body)
		}
	}
}

func TestClusterStates(t *testing.T) {
	for raftState, want := range map[string]string{"Leader": "leader", "Follower": "follower", "Candidate": "candidate"} {
		if got := clusterView(Status{State: raftState}).State; got != want {
			t.Errorf("%s: %s", raftState, got)
		}
	}
	if got := clusterView(Status{State: "Follower", Removed: true}).State; got != "removed" {
		t.Errorf("removed: %s", got)
	}
	v := clusterView(Status{Nodes: []NodeInfo{{ID: "n4", Suffrage: "nonvoter", CaughtUp: false}, {ID: "n1", Suffrage: "voter", Voter: true, CaughtUp: true}}})
	if v.Nodes[0].Suffrage != "nonvoter" || v.Nodes[0].CaughtUp || v.Nodes[1].Suffrage != "voter" || !v.Nodes[1].CaughtUp {
		t.Fatalf("nodes: %+v", v.Nodes)
	}
}

// TestEventCursors: a cursor beyond the newest event is 400 cursor_ahead
// with newest_id (the newest itself is fine: a reader waits there); one
// whose events are gone is 410 events_expired with oldest_id and how to
// resynchronise. SSE answers the same before it starts the stream.
func TestEventCursors(t *testing.T) {
	h := newHarness(t)
	h.agent("a1", 1, 1)
	h.must(201, "POST", "/v1/conversations", map[string]any{"id": "c1", "channel": "chat"})
	h.fake.mu.Lock()
	newest := h.fake.m.LastEventID()
	h.fake.mu.Unlock()
	after := func(n uint64) string { return "/v1/events?after=" + strconv.FormatUint(n, 10) }
	sse := []string{"Accept", "text/event-stream"}

	h.must(200, "GET", after(newest), nil)
	for _, headers := range [][]string{nil, sse} {
		r := h.req("GET", after(newest+1), nil, headers...)
		e := errorFields(t, r)
		if r.Status != 400 || e["code"] != "cursor_ahead" || e["newest_id"] != float64(newest) {
			t.Errorf("cursor ahead %v: %d %s", headers, r.Status, r.Body)
		}
	}
	r := h.req("GET", "/v1/events", nil, "Accept", "text/event-stream", "Last-Event-ID", strconv.FormatUint(newest+100, 10))
	if r.Status != 400 || errorFields(t, r)["code"] != "cursor_ahead" {
		t.Errorf("Last-Event-ID ahead: %d %s", r.Status, r.Body)
	}

	// Drop the retained events, as a restore does: every older cursor has
	// expired, the newest is still good.
	h.fake.mu.Lock()
	h.fake.m.ContinueEventsAfter(newest)
	h.fake.mu.Unlock()
	h.must(201, "POST", "/v1/conversations", map[string]any{"id": "c2", "channel": "messaging"})
	h.fake.mu.Lock()
	newest2 := h.fake.m.LastEventID()
	h.fake.mu.Unlock()
	for _, headers := range [][]string{nil, sse} {
		r := h.req("GET", after(1), nil, headers...)
		e := errorFields(t, r)
		msg, _ := e["message"].(string)
		if r.Status != 410 || e["code"] != "events_expired" || e["oldest_id"] != float64(newest+1) || e["newest_id"] != float64(newest2) ||
			!strings.Contains(msg, "read the current state") || !strings.Contains(msg, "after="+strconv.FormatUint(newest2, 10)) {
			t.Errorf("expired %v: %d %s", headers, r.Status, r.Body)
		}
	}
	if p := h.must(200, "GET", after(newest), nil); len(p["events"].([]any)) == 0 {
		t.Fatalf("after the newest retained cursor: %v", p)
	}
}

func errorFields(t *testing.T, r response) map[string]any {
	t.Helper()
	var body struct {
		Error map[string]any `json:"error"`
	}
	if err := json.Unmarshal(r.Body, &body); err != nil || body.Error == nil {
		t.Fatalf("not an error body (%d): %s", r.Status, r.Body)
	}
	return body.Error
}

// TestHTTPEdges: HEAD on the probes; a trailing slash answers JSON, never
// an HTML redirect.
func TestHTTPEdges(t *testing.T) {
	h := newHarness(t)
	for _, path := range []string{"/healthz", "/readyz"} {
		r := h.req("HEAD", path, nil)
		if r.Status != 200 || len(r.Body) != 0 {
			t.Errorf("HEAD %s: %d %q", path, r.Status, r.Body)
		}
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, path := range []string{"/v1/agents/", "/healthz/", "/v1/cluster/", "/v1/conversations/c1/"} {
		resp, err := client.Get(h.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var body struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if resp.StatusCode != 404 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") ||
			json.Unmarshal(b, &body) != nil || body.Error.Code != "not_found" || !strings.Contains(body.Error.Message, strings.TrimSuffix(path, "/")+")") {
			t.Errorf("GET %s: %d %s %s", path, resp.StatusCode, resp.Header.Get("Content-Type"), b)
		}
	}
}

// TestBuildInfo: /metrics and the OpenAPI document name the running build.
func TestBuildInfo(t *testing.T) {
	h := newHarness(t)
	bi := buildinfo.Get()
	r := h.req("GET", "/metrics", nil)
	want := fmt.Sprintf(`omnirouter_build_info{commit=%q,goversion=%q,version=%q} 1`, bi.CommitLabel(), bi.GoVersion, bi.Version)
	if !strings.Contains(string(r.Body), want) {
		t.Fatalf("/metrics lacks %s", want)
	}
	var served, repo map[string]any
	if err := json.Unmarshal(h.req("GET", "/v1/openapi.json", nil).Body, &served); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(OpenAPI(), &repo); err != nil {
		t.Fatal(err)
	}
	if v := served["info"].(map[string]any)["version"]; v != bi.Version {
		t.Fatalf("served info.version %v, want %s", v, bi.Version)
	}
	// Nothing else differs from the document in the repository.
	repo["info"].(map[string]any)["version"] = bi.Version
	if !reflect.DeepEqual(served, repo) {
		t.Fatal("the served document differs from openapi.json beyond info.version")
	}
}

// TestOpenAPIClusterShapes: the cluster view and the error body carry
// exactly the properties the OpenAPI document gives them.
func TestOpenAPIClusterShapes(t *testing.T) {
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Properties map[string]json.RawMessage `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	keys := func(v any) []string {
		b, _ := json.Marshal(v)
		var m map[string]any
		json.Unmarshal(b, &m)
		var out []string
		for k := range m {
			out = append(out, k)
		}
		return sortStrings(out)
	}
	props := func(schema string) []string {
		var out []string
		for k := range doc.Components.Schemas[schema].Properties {
			out = append(out, k)
		}
		return sortStrings(out)
	}
	v := clusterView(Status{Nodes: []NodeInfo{{ID: "n1"}}})
	if got, want := keys(v), props("Cluster"); !reflect.DeepEqual(got, want) {
		t.Errorf("cluster: %v, documented %v", got, want)
	}
	if got, want := keys(v.Nodes[0]), props("NodeInfo"); !reflect.DeepEqual(got, want) {
		t.Errorf("node: %v, documented %v", got, want)
	}
	n := uint64(1)
	var errSchema struct {
		Properties struct {
			Error struct {
				Properties map[string]json.RawMessage `json:"properties"`
			} `json:"error"`
		} `json:"properties"`
	}
	var all map[string]map[string]json.RawMessage
	json.Unmarshal(OpenAPI(), &all)
	var schemas map[string]json.RawMessage
	json.Unmarshal(all["components"]["schemas"], &schemas)
	json.Unmarshal(schemas["Error"], &errSchema)
	var documented []string
	for k := range errSchema.Properties.Error.Properties {
		documented = append(documented, k)
	}
	if got := keys(errorDetail{NewestID: &n, OldestID: &n}); !reflect.DeepEqual(got, sortStrings(documented)) {
		t.Errorf("error: %v, documented %v", got, documented)
	}
}

func sortStrings(s []string) []string {
	slices.Sort(s)
	return s
}
