package ui

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func get(t *testing.T, path string) (*http.Response, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	Handler().ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	res := rec.Result()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(b)
}

func TestHandlerServesThePage(t *testing.T) {
	for path, ctype := range map[string]string{
		"/":        "text/html; charset=utf-8",
		"/app.js":  "text/javascript; charset=utf-8",
		"/app.css": "text/css; charset=utf-8",
	} {
		res, body := get(t, path)
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != ctype || body == "" {
			t.Errorf("GET %s: %d %q, %d bytes; want 200 %q", path, res.StatusCode, res.Header.Get("Content-Type"), len(body), ctype)
		}
		for _, hdr := range []string{"Content-Security-Policy", "X-Content-Type-Options", "X-Frame-Options", "Cache-Control"} {
			if res.Header.Get(hdr) == "" {
				t.Errorf("GET %s: no %s", path, hdr)
			}
		}
	}
	if res, _ := get(t, "/nothing.js"); res.StatusCode != 404 {
		t.Errorf("GET /nothing.js: %d, want 404", res.StatusCode)
	}
}

// TestPageIsSelfContained: the page loads nothing from another origin (no
// CDN, no font service) and every file it names is embedded.
func TestPageIsSelfContained(t *testing.T) {
	files := Files()
	ref := regexp.MustCompile(`(?:src|href)="([^"]+)"`)
	index, err := fs.ReadFile(files, "index.html")
	if err != nil {
		t.Fatal(err)
	}
	refs := ref.FindAllStringSubmatch(string(index), -1)
	if len(refs) < 2 {
		t.Fatalf("index.html names %d files, want the script and the stylesheet", len(refs))
	}
	for _, m := range refs {
		if strings.HasPrefix(m[1], "data:") {
			continue
		}
		if _, err := fs.Stat(files, m[1]); err != nil {
			t.Errorf("index.html names %s: %v", m[1], err)
		}
	}
	external := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}`)
	err = fs.WalkDir(files, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(files, path)
		if err != nil {
			return err
		}
		if m := external.Find(b); m != nil {
			t.Errorf("%s refers to another origin: %s", path, m)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
