package api

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// testCert returns a CA (self-signed when parent is nil) or a leaf signed
// by parent, valid for 127.0.0.1, for server and client use.
func testCert(t *testing.T, name string, parent *tls.Certificate) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	signer, signerKey := tmpl, any(key)
	if parent == nil {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage |= x509.KeyUsageCertSign
	} else {
		signer, signerKey = parent.Leaf, parent.PrivateKey
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// TestInternalNeedsClientCertificate: with InternalClientCert, /internal/
// requires a verified client certificate on top of the cluster secret;
// users' endpoints need none.
func TestInternalNeedsClientCertificate(t *testing.T) {
	ca := testCert(t, "ca", nil)
	node := testCert(t, "node", &ca)
	pool := x509.NewCertPool()
	pool.AddCert(ca.Leaf)
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
