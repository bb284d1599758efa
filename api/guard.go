package api

import (
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/gin-gonic/gin"
)

// guard refuses what a web page could make a visitor's browser send to a
// node: a page on another site can post a "simple" cross-site request
// (text/plain, no preflight), and a page whose name resolves to 127.0.0.1
// (DNS rebinding) is even same-origin with a node on loopback. So:
//   - a request whose Origin is not the node itself (as the request names
//     it: scheme and Host) is refused 403 cross_origin;
//   - a request body must be application/json (a restore's,
//     application/octet-stream), else 415 unsupported_media_type: no
//     browser sends those cross-site without a preflight this server never
//     answers (requireBodyType, checked where a body is read);
//   - without an auth file and --insecure, only loopback Host names are
//     served (403 host_not_allowed): the node trusts whoever reaches it,
//     and a rebound name is not loopback.
func (s *Server) guard(c *gin.Context) {
	r := c.Request
	if s.loopbackHostsOnly && !loopbackHost(r.Host) {
		s.fail(c, errorf(http.StatusForbidden, "host_not_allowed",
			"Host %q is not a loopback name; a node without an auth file serves only localhost and loopback addresses (start it with --auth-file, or --insecure on a private network)", r.Host))
		return
	}
	if o := r.Header.Get("Origin"); o != "" && !sameOrigin(o, r) {
		s.fail(c, errorf(http.StatusForbidden, "cross_origin", "requests from %s are refused: only the node's own pages (%s) may call it from a browser", o, ownOrigin(r)))
		return
	}
	c.Next()
}

// requireBodyType refuses a request body sent as anything but want (415):
// the handlers that read a body check it, after authentication.
func requireBodyType(r *http.Request, want string) error {
	if !hasBody(r) {
		return nil
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != want {
		return errorf(http.StatusUnsupportedMediaType, "unsupported_media_type",
			"the body must be sent with Content-Type: %s (got %q)", want, r.Header.Get("Content-Type"))
	}
	return nil
}

// hasBody reports whether a request carries a body.
func hasBody(r *http.Request) bool {
	return r.ContentLength > 0 || (r.ContentLength < 0 && r.Body != nil && r.Body != http.NoBody)
}

// ownOrigin is the origin of a page this node serves, as the request names
// the node.
func ownOrigin(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// sameOrigin compares an Origin header with the node's own origin,
// default ports and letter case aside.
func sameOrigin(origin string, r *http.Request) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false // "null" (a sandboxed or file: page) and garbage
	}
	own, _ := url.Parse(ownOrigin(r))
	return strings.EqualFold(u.Scheme, own.Scheme) && strings.EqualFold(hostPort(u), hostPort(own))
}

// hostPort is u's host with its port, the scheme's default made explicit.
func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	port := "80"
	if strings.EqualFold(u.Scheme, "https") {
		port = "443"
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// loopbackHost reports whether a Host header names this machine's loopback:
// localhost (or a name under it) or a loopback IP.
func loopbackHost(host string) bool {
	h := host
	if hp, _, err := net.SplitHostPort(host); err == nil {
		h = hp
	}
	h = strings.TrimSuffix(strings.ToLower(strings.Trim(h, "[]")), ".")
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
