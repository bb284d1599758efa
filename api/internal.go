package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/hex"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/gin-gonic/gin"
)

// InternalSecretHeader carries the cluster secret on node-to-node requests
// (the cluster's /internal/ endpoints: forwarded writes, read indexes,
// joins). Users' tokens are not accepted there.
const InternalSecretHeader = "X-Omnirouter-Cluster-Secret"

// ClusterSecret is the secret nodes present to each other's /internal/
// endpoints: the auth file's cluster_secret, or else one derived from its
// operator tokens, so that nodes sharing an auth file agree without more
// configuration.
func (a *Auth) ClusterSecret() string {
	if a.clusterSecret != "" {
		return a.clusterSecret
	}
	return a.derivedSecret
}

func deriveSecret(f AuthFile) string {
	var ops []string
	for _, t := range f.Tokens {
		if t.Role == RoleOperator {
			ops = append(ops, t.Token)
		}
	}
	if len(ops) == 0 {
		for _, t := range f.Tokens {
			ops = append(ops, t.Token)
		}
	}
	slices.Sort(ops)
	h := sha256.New()
	h.Write([]byte("omnirouter cluster secret v1\x00"))
	for _, t := range ops {
		h.Write([]byte(t))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// guardInternal refuses node-to-node requests without the cluster secret,
// and, when required, without a verified client certificate.
func (s *Server) guardInternal(c *gin.Context) {
	if s.internalCert {
		if tc := c.Request.TLS; tc == nil || len(tc.VerifiedChains) == 0 {
			s.fail(c, errorf(http.StatusUnauthorized, "unauthorized", "internal endpoints need a client certificate signed by the cluster CA"))
			return
		}
	}
	if s.internalSecret == "" {
		return
	}
	got := sha256.Sum256([]byte(c.GetHeader(InternalSecretHeader)))
	want := sha256.Sum256([]byte(s.internalSecret))
	if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
		s.fail(c, errorf(http.StatusUnauthorized, "unauthorized", "internal endpoints need the cluster secret"))
	}
}

// InternalClient is the HTTP client a node uses to reach its peers'
// /internal/ endpoints: it presents the cluster secret (when not empty).
func InternalClient(secret string) *http.Client {
	return InternalClientTLS(secret, nil)
}

// InternalClientTLS is InternalClient for https peers: tc carries the
// node's client certificate and the cluster CA as RootCAs (nil: plain
// defaults).
func InternalClientTLS(secret string, tc *tls.Config) *http.Client {
	base := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout: 5 * time.Second,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 128,
		IdleConnTimeout:     90 * time.Second,
	}
	if tc != nil {
		base.TLSClientConfig = tc.Clone()
	}
	if secret == "" {
		return &http.Client{Transport: base}
	}
	return &http.Client{Transport: secretTransport{base: base, secret: secret}}
}

type secretTransport struct {
	base   http.RoundTripper
	secret string
}

func (t secretTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(InternalSecretHeader, t.secret)
	return t.base.RoundTrip(r)
}
