package api

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/omnirouter/omnirouter/internal/testutil"
)

// TestInternalNeedsClientCertificate: with InternalClientCert, /internal/
// requires a verified client certificate on top of the cluster secret;
// users' endpoints need none.
func TestInternalNeedsClientCertificate(t *testing.T) {
	ca := testutil.NewCA(t, "ca")
	node := ca.Issue(t, "node")
	pool := ca.Pool
	a := testAuth(t)
	internal := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	s := New(Config{Cluster: newFakeCluster(), Auth: a, Internal: internal, InternalSecret: a.ClusterSecret(), InternalClientCert: true})
	srv := httptest.NewUnstartedServer(s.Handler())
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{node}, ClientCAs: pool, ClientAuth: tls.VerifyClientCertIfGiven}
	srv.StartTLS()
	defer srv.Close()

	withCert := &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{node}}
	noCert := &tls.Config{RootCAs: pool}
	for _, c := range []struct {
		name   string
		client *http.Client
		path   string
		want   int
	}{
		{"certificate and secret", InternalClientTLS(a.ClusterSecret(), withCert), "/internal/cluster/propose", http.StatusTeapot},
		{"secret without certificate", InternalClientTLS(a.ClusterSecret(), noCert), "/internal/cluster/propose", 401},
		{"certificate without secret", InternalClientTLS("", withCert), "/internal/cluster/propose", 401},
		{"user without certificate", InternalClientTLS("", noCert), "/healthz", 200},
	} {
		method := http.MethodPost
		if c.path == "/healthz" {
			method = http.MethodGet
		}
		req, _ := http.NewRequest(method, srv.URL+c.path, nil)
		resp, err := c.client.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%s: status %d, want %d", c.name, resp.StatusCode, c.want)
		}
	}

	// Over plain HTTP there is no certificate at all: refused.
	plain := httptest.NewServer(s.Handler())
	defer plain.Close()
	resp, err := InternalClient(a.ClusterSecret()).Post(plain.URL+"/internal/cluster/propose", "application/octet-stream", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("plain http with the secret: %d", resp.StatusCode)
	}
}
