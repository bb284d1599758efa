package api

import (
	"encoding/json"
	"io/fs"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/omnirouter/omnirouter/ui"
)

// TestSupervisorPage: the page's files are served at /ui/ without a token
// (they hold no data), behind the same guards as the API: a foreign Origin
// is refused, and a node without an auth file serves loopback names only.
func TestSupervisorPage(t *testing.T) {
	h := newHarness(t, withAuth(testAuth(t)))
	r := h.req("GET", "/ui/", nil)
	if r.Status != 200 || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") || !strings.Contains(string(r.Body), `src="app.js"`) {
		t.Fatalf("GET /ui/: %d %q: %.200s", r.Status, r.Header.Get("Content-Type"), r.Body)
	}
	if r.Header.Get("Content-Security-Policy") == "" {
		t.Error("GET /ui/ without a Content-Security-Policy")
	}
	if r := h.req("HEAD", "/ui/app.js", nil); r.Status != 200 || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/javascript") {
		t.Errorf("HEAD /ui/app.js: %d %q", r.Status, r.Header.Get("Content-Type"))
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get(h.srv.URL + "/ui")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "ui/" {
		t.Errorf("GET /ui: %d to %q, want 301 to ui/", resp.StatusCode, resp.Header.Get("Location"))
	}
	if r := h.req("GET", "/ui/missing.js", nil); r.Status != 404 {
		t.Errorf("GET /ui/missing.js: %d, want 404", r.Status)
	}
	h.fails(405, "method_not_allowed", "POST", "/ui/", "{}")
	h.fails(403, "cross_origin", "GET", "/ui/", nil, "Origin", "http://evil.example")

	loop := newHarness(t, func(c *Config) { c.LoopbackHostsOnly = true })
	if r := loop.req("GET", "/ui/", nil); r.Status != 200 {
		t.Errorf("GET /ui/ on loopback without an auth file: %d", r.Status)
	}
	loop.fails(403, "host_not_allowed", "GET", "/ui/", nil, "Host", "evil.example:8080")
}

// TestPageNamesEveryCause: the page words every cause the explain endpoint
// may answer (the OpenAPI document's enum, itself tested against the state
// machine).
func TestPageNamesEveryCause(t *testing.T) {
	var doc struct {
		Components struct {
			Schemas struct {
				Cause struct {
					Properties struct {
						Cause struct {
							Enum []string `json:"enum"`
						} `json:"cause"`
					} `json:"properties"`
				} `json:"Cause"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	causes := doc.Components.Schemas.Cause.Properties.Cause.Enum
	if len(causes) < 5 {
		t.Fatalf("the OpenAPI document lists %d causes", len(causes))
	}
	js, err := fs.ReadFile(ui.Files(), "app.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range causes {
		if !regexp.MustCompile(`(?m)^\s+` + regexp.QuoteMeta(c) + `: '`).Match(js) {
			t.Errorf("app.js does not word cause %q", c)
		}
	}
}
