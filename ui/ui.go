// Package ui owns the supervisor page's static files: the live view of the
// floor (queues, agents, the cluster, a conversation's explain and
// transcript) that a node serves at /ui/. The files are plain HTML, CSS and
// JavaScript embedded in the binary; the page reads the public API with the
// visitor's token, so it holds no data and needs no authentication itself.
package ui

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed static
var static embed.FS

// contentSecurityPolicy lets the page load only its own files and talk
// only to its own node: no inline script, no other origin, no framing.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"

// Files returns the page's files: index.html, app.js, app.css.
func Files() fs.FS {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the directory is embedded above
	}
	return sub
}

// Handler serves the page's files at the root of the paths it is given
// ("/" is index.html); mount it under a prefix with http.StripPrefix. Every
// answer forbids framing and other origins, and asks browsers to revalidate
// so that a node upgraded in place serves its new page at once.
func Handler() http.Handler {
	files := http.FileServerFS(Files())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
}
