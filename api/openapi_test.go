package api

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/omnirouter/omnirouter/capacity"
	"github.com/omnirouter/omnirouter/routing"
)

// TestOpenAPICoversRoutes checks that every registered route is documented
// and every documented operation is registered.
func TestOpenAPICoversRoutes(t *testing.T) {
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(OpenAPI(), &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("not OpenAPI 3: %q", doc.OpenAPI)
	}
	s := New(Config{Cluster: newFakeCluster()})
	param := regexp.MustCompile(`:([A-Za-z_]+)`)
	registered := map[string]bool{}
	for _, r := range s.Engine().Routes() {
		if strings.HasPrefix(r.Path, "/internal/") {
			continue // node-to-node, not part of the public API
		}
		if r.Path == "/ui" || strings.HasPrefix(r.Path, "/ui/") {
			continue // the supervisor page's files, not part of the API
		}
		path := param.ReplaceAllString(r.Path, "{$1}")
		key := strings.ToLower(r.Method) + " " + path
		registered[key] = true
		if _, ok := doc.Paths[path][strings.ToLower(r.Method)]; !ok {
			t.Errorf("route %s %s is not in openapi.json", r.Method, path)
		}
	}
	for path, ops := range doc.Paths {
		for method := range ops {
			if !registered[method+" "+path] {
				t.Errorf("openapi.json documents %s %s, which is not registered", strings.ToUpper(method), path)
			}
		}
	}
}

// TestOpenAPIRefsResolve checks that every $ref points to a component.
func TestOpenAPIRefsResolve(t *testing.T) {
	var doc map[string]any
	if err := json.Unmarshal(OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if ref, ok := x["$ref"].(string); ok {
				var node any = doc
				for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
					m, _ := node.(map[string]any)
					node = m[part]
				}
				if node == nil {
					t.Errorf("dangling $ref %s", ref)
				}
			}
			for _, c := range x {
				walk(c)
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	walk(doc)
}

func TestOpenAPIServed(t *testing.T) {
	h := newHarness(t)
	r := h.req("GET", "/v1/openapi.json", nil)
	var doc struct {
		Paths map[string]any `json:"paths"`
	}
	if r.Status != 200 || r.Header.Get("Content-Type") != "application/json" || json.Unmarshal(r.Body, &doc) != nil || len(doc.Paths) == 0 {
		t.Fatalf("openapi.json: %d %s", r.Status, r.Header.Get("Content-Type"))
	}
}

// TestOpenAPIPolicyMatchesTheTable: the Policy schema documents exactly the
// state machine's policy fields, each with its JSON type (and an enum's
// values).
func TestOpenAPIPolicyMatchesTheTable(t *testing.T) {
	var doc struct {
		Components struct {
			Schemas map[string]json.RawMessage `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	type schema struct {
		Type       string             `json:"type"`
		Enum       []string           `json:"enum"`
		Properties map[string]*schema `json:"properties"`
	}
	var policy schema
	if err := json.Unmarshal(doc.Components.Schemas["Policy"], &policy); err != nil {
		t.Fatal(err)
	}
	leaves := map[string]*schema{}
	var walk func(prefix string, s *schema)
	walk = func(prefix string, s *schema) {
		for k, p := range s.Properties {
			name := k
			if prefix != "" {
				name = prefix + "." + k
			}
			if p.Type == "object" {
				walk(name, p)
			} else {
				leaves[name] = p
			}
		}
	}
	walk("", &policy)
	want := map[routing.PolicyKind]string{routing.PolicyDuration: "string", routing.PolicyBool: "boolean",
		routing.PolicyInt: "integer", routing.PolicyEnum: "string"}
	for _, f := range routing.PolicyFields() {
		leaf, ok := leaves[f.Name]
		if !ok {
			t.Errorf("policy field %s is not in the OpenAPI Policy schema", f.Name)
			continue
		}
		delete(leaves, f.Name)
		if leaf.Type != want[f.Kind] {
			t.Errorf("policy field %s: type %q, want %q", f.Name, leaf.Type, want[f.Kind])
		}
		if f.Kind == routing.PolicyEnum && !slices.Equal(leaf.Enum, f.Values) {
			t.Errorf("policy field %s: enum %v, want %v", f.Name, leaf.Enum, f.Values)
		}
	}
	for name := range leaves {
		t.Errorf("the OpenAPI Policy schema documents %s, which the policy does not have", name)
	}
}

// TestOpenAPIEnumsMatch: the enums the document lists are the state
// machine's: channels, conversation states, ticket statuses and origins,
// event types, the causes of a wait.
func TestOpenAPIEnumsMatch(t *testing.T) {
	var doc map[string]any
	if err := json.Unmarshal(OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	enum := func(path ...string) []string {
		var node any = doc
		for _, p := range path {
			node = node.(map[string]any)[p]
		}
		var out []string
		for _, v := range node.(map[string]any)["enum"].([]any) {
			out = append(out, v.(string))
		}
		return out
	}
	var channels, states, ticketStatuses []string
	for ch := range capacity.NumChannels {
		channels = append(channels, ch.String())
	}
	for s := routing.State(0); !strings.HasPrefix(s.String(), "unknown"); s++ {
		states = append(states, s.String())
	}
	for s := routing.TicketStatus(0); !strings.HasPrefix(s.String(), "unknown"); s++ {
		ticketStatuses = append(ticketStatuses, s.String())
	}
	schemas := []string{"components", "schemas"}
	for _, c := range []struct {
		path []string
		want []string
	}{
		{append(schemas, "Conversation", "properties", "channel"), channels},
		{append(schemas, "ConversationCreate", "properties", "channel"), channels},
		{append(schemas, "Conversation", "properties", "state"), states},
		{append(schemas, "Ticket", "properties", "status"), ticketStatuses},
		{append(schemas, "Ticket", "properties", "via"), []string{routing.ViaMessaging, routing.ViaEmail, routing.ViaMissedChat, routing.ViaMissedCall, routing.ViaVoicemail, routing.ViaAPI}},
		{append(schemas, "Event", "properties", "type"), routing.EventTypes()},
		{append(schemas, "Explanation", "properties", "state"), states},
		{append(schemas, "Explanation", "properties", "channel"), channels},
		{append(schemas, "Cause", "properties", "cause"), routing.CauseNames()},
		{append(schemas, "PreviewHolding", "properties", "state"), states},
	} {
		if got := enum(c.path...); !slices.Equal(got, c.want) {
			t.Errorf("%s: enum %v, want %v", strings.Join(c.path[2:], "."), got, c.want)
		}
	}
}
