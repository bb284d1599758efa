package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/omnirouter/omnirouter/api"
)

// TestInsightCommands: explain and policy preview against a real node.
func TestInsightCommands(t *testing.T) {
	base := startNode(t)
	t.Setenv("OMNIROUTER_ADDR", base)
	put(t, base+"/v1/policy", `{"routing":{"mode":"external"}}`)
	put(t, base+"/v1/agents/a1", `{"name":"Ana","capacity":{"chat":1},"skills":["fr"]}`)
	put(t, base+"/v1/agents/a1/status", `{"status":"online"}`)
	put(t, base+"/v1/agents/a2", `{"name":"Bo","capacity":{"chat":2}}`)
	req, _ := http.NewRequest("POST", base+"/v1/conversations", strings.NewReader(`{"id":"c1","channel":"chat","skills":["fr"],"message":"bonjour"}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 201 {
		t.Fatalf("create: %v %v", err, resp)
	}
	resp.Body.Close()

	out := runOK(t, "explain", "c1")
	for _, want := range []string{"1 of 1 waiting on chat", "2 with chat capacity, 1 eligible", "external_mode", "offline", "a2"} {
		if !strings.Contains(out, want) {
			t.Fatalf("explain: no %q in\n%s", want, out)
		}
	}
	var e api.ExplanationView
	if err := json.Unmarshal([]byte(runOK(t, "explain", "c1", "-o", "json")), &e); err != nil || e.EligibleAgents != 1 || len(e.Causes) != 2 {
		t.Fatalf("explain json: %v %+v", err, e)
	}
	var o, errb bytes.Buffer
	if code := run([]string{"explain", "nope"}, &o, &errb); code != 1 || !strings.Contains(errb.String(), "conversation_not_found") {
		t.Fatalf("explain of an unknown conversation: exit %d %s", code, errb.String())
	}

	out = runOK(t, "policy", "preview", "routing.mode=auto")
	for _, want := range []string{"would offer 1", "c1", "a1", "offered", "chat 0→1 of 1", "nothing was changed"} {
		if !strings.Contains(out, want) {
			t.Fatalf("preview: no %q in\n%s", want, out)
		}
	}
	if out := runOK(t, "policy", "get"); !strings.Contains(out, "routing.mode") || !strings.Contains(out, "external") {
		t.Fatalf("the preview changed the policy:\n%s", out)
	}
	if code := run([]string{"policy", "preview", "routing.mode=sometimes"}, &o, &errb); code != 1 {
		t.Fatalf("a bad preview: exit %d", code)
	}
}
