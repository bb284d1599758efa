package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/omnirouter/omnirouter/internal/testutil"
)

// testCA is a CA whose certificates are PEM files, as serve reads them.
type testCA struct {
	*testutil.CA
	file string // the CA certificate, PEM
	dir  string
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	ca, dir := testutil.NewCA(t, name), t.TempDir()
	return &testCA{CA: ca, file: ca.WriteCert(t, dir, name+"-ca.pem"), dir: dir}
}

// issue writes name.pem and name-key.pem: a certificate for 127.0.0.1 and
// localhost with the given extended key usages (server and client when
// none are given).
func (ca *testCA) issue(t *testing.T, name string, usages ...x509.ExtKeyUsage) (certFile, keyFile string) {
	t.Helper()
	return testutil.WriteFiles(t, ca.dir, name, ca.Issue(t, name, usages...))
}

// httpsClient trusts roots (nil: the system's) and presents cert if given.
func httpsClient(roots *x509.CertPool, cert *tls.Certificate) *http.Client {
	tc := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	if cert != nil {
		tc.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}
}

func TestTLSFlagValidation(t *testing.T) {
	ca := newTestCA(t, "cluster")
	cert, key := ca.issue(t, "n1")
	serverOnly, serverOnlyKey := ca.issue(t, "server-only", x509.ExtKeyUsageServerAuth)
	other := newTestCA(t, "other")
	otherCert, otherKey := other.issue(t, "stranger")
	notPEM := filepath.Join(t.TempDir(), "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "missing.pem")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--tls-cert", cert}, "--tls-cert needs --tls-key"},
		{[]string{"--tls-key", key}, "--tls-key needs --tls-cert"},
		{[]string{"--tls-ca", ca.file}, "--tls-ca needs --tls-cert"},
		{[]string{"--tls-cert", missing, "--tls-key", key}, "missing.pem"},
		{[]string{"--tls-cert", cert, "--tls-key", otherKey}, "private key does not match"},
		{[]string{"--tls-cert", cert, "--tls-key", key, "--tls-ca", missing}, "--tls-ca"},
		{[]string{"--tls-cert", cert, "--tls-key", key, "--tls-ca", notPEM}, "no PEM certificate"},
		{[]string{"--tls-cert", otherCert, "--tls-key", otherKey, "--tls-ca", ca.file}, "does not chain to --tls-ca"},
		{[]string{"--tls-cert", serverOnly, "--tls-key", serverOnlyKey, "--tls-ca", ca.file}, "clientAuth"},
		{[]string{"--tls-cert", cert, "--tls-key", key, "--join", "127.0.0.1:1"}, "needs --tls-ca"},
		{[]string{"--tls-cert", cert, "--tls-key", key, "--bootstrap-expect", "3"}, "needs --tls-ca"},
		// TLS does not replace authentication: a public address still needs
		// an auth file or --insecure.
		{[]string{"--tls-cert", cert, "--tls-key", key, "--tls-ca", ca.file, "--http-addr", "0.0.0.0:0"}, "--insecure"},
	} {
		args := append([]string{"--data-dir", t.TempDir(), "--http-addr", freePort(t), "--raft-addr", freePort(t)}, c.args...)
		err := serve(args, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("serve %v: %v, want an error containing %q", c.args, err, c.want)
		}
	}

	// The environment sets the TLS flags like every other flag.
	t.Setenv("OMNIROUTER_TLS_CERT", cert)
	t.Setenv("OMNIROUTER_TLS_KEY", key)
	t.Setenv("OMNIROUTER_TLS_CA", ca.file)
	var cfg serveConfig
	if err := parseFlags(serveFlags(&cfg, io.Discard), nil); err != nil {
		t.Fatal(err)
	}
	if cfg.TLSCert != cert || cfg.TLSKey != key || cfg.TLSCA != ca.file {
		t.Fatalf("TLS flags from the environment: %+v", cfg)
	}
	tc, err := loadServeTLS(cfg)
	if err != nil || !tc.mutual() || tc.raft.ClientAuth != tls.RequireAndVerifyClientCert ||
		tc.http.ClientAuth != tls.VerifyClientCertIfGiven || len(tc.client.Certificates) != 1 || tc.http.MinVersion != tls.VersionTLS12 {
		t.Fatalf("TLS setup: %+v %v", tc, err)
	}
	// The client's CA file must hold a certificate.
	var out, errb bytes.Buffer
	if code := run([]string{"status", "--tls-ca", notPEM}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "no PEM certificate") {
		t.Fatalf("client with a bad --tls-ca: exit %d: %s", code, errb.String())
	}
}

// TestProcessTLSCluster runs three nodes with mutual TLS between them:
// users reach them over https with the CA (no client certificate), writes
// through a follower are forwarded, and reads on another node see them.
func TestProcessTLSCluster(t *testing.T) {
	ca := newTestCA(t, "cluster")
	files := make([][2]string, 3)
	for i := range files {
		files[i][0], files[i][1] = ca.issue(t, fmt.Sprintf("n%d", i+1))
	}
	hc := httpsClient(ca.Pool, nil)
	procs := startThreeWith(t, "https", hc, func(i int) []string {
		return []string{"--tls-cert", files[i][0], "--tls-key", files[i][1], "--tls-ca", ca.file}
	})

	var leader *proc
	testutil.Until(t, 30*time.Second, "a leader", func() error {
		code, m, err := requestWith(hc, "", "GET", procs[0].url()+"/v1/cluster", nil)
		if err != nil || code != 200 {
			return fmt.Errorf("%d %v %v", code, m, err)
		}
		for _, p := range procs {
			if p.id == m["leader"] {
				leader = p
				return nil
			}
		}
		return fmt.Errorf("no leader in %v", m)
	})
	var followers []*proc
	for _, p := range procs {
		if p != leader {
			followers = append(followers, p)
		}
	}
	via, readOn := followers[0], followers[1]
	if code, m, err := requestWith(hc, "", "PUT", via.url()+"/v1/agents/a1", map[string]any{"name": "Ana", "capacity": map[string]int{"chat": 1}}); code != 200 {
		t.Fatalf("create an agent through a follower: %d %v %v", code, m, err)
	}
	if code, m, err := requestWith(hc, "", "POST", via.url()+"/v1/conversations", map[string]any{"id": "c1", "channel": "chat", "message": "hello"}); code != 201 {
		t.Fatalf("create a conversation through a follower: %d %v %v", code, m, err)
	}
	for _, p := range []*proc{readOn, leader} {
		if code, m, err := requestWith(hc, "", "GET", p.url()+"/v1/agents/a1", nil); code != 200 || m["id"] != "a1" {
			t.Fatalf("agent on %s: %d %v %v", p.id, code, m, err)
		}
		if code, m, err := requestWith(hc, "", "GET", p.url()+"/v1/conversations/c1", nil); code != 200 || m["id"] != "c1" {
			t.Fatalf("conversation on %s: %d %v %v", p.id, code, m, err)
		}
	}

	// Plain HTTP to the TLS port is not served.
	// (Go's server answers 400 "Client sent an HTTP request to an HTTPS
	// server" before closing.)
	if code, m, err := request("GET", "http://"+readOn.httpAddr+"/v1/agents/a1", nil); err == nil && code != 400 {
		t.Fatalf("plain http: %d %v", code, m)
	}
	// A client that does not trust the cluster CA fails the handshake.
	if _, _, err := requestWith(httpsClient(nil, nil), "", "GET", readOn.url()+"/v1/agents/a1", nil); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("a client without the CA: %v", err)
	}
	// /internal/ needs a client certificate of the cluster CA, even without
	// an auth file; a user certificate of another CA is refused at the
	// handshake.
	if code, _, err := requestWith(hc, "", "GET", readOn.url()+"/internal/cluster/info", nil); err != nil || code != 401 {
		t.Fatalf("internal endpoint without a client certificate: %d %v", code, err)
	}
	nodeCert, err := tls.LoadX509KeyPair(files[0][0], files[0][1])
	if err != nil {
		t.Fatal(err)
	}
	if code, _, err := requestWith(httpsClient(ca.Pool, &nodeCert), "", "GET", readOn.url()+"/internal/cluster/info", nil); err != nil || code != 200 {
		t.Fatalf("internal endpoint with a node certificate: %d %v", code, err)
	}
	other := newTestCA(t, "other")
	oc, ok := other.issue(t, "stranger")
	strangerCert, err := tls.LoadX509KeyPair(oc, ok)
	if err != nil {
		t.Fatal(err)
	}
	stranger := httpsClient(ca.Pool, nil)
	stranger.Transport.(*http.Transport).TLSClientConfig.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		return &strangerCert, nil
	}
	if code, _, err := requestWith(stranger, "", "GET", readOn.url()+"/internal/cluster/info", nil); err == nil {
		t.Fatalf("a certificate of another CA reached /internal/: %d", code)
	}

	// The CLI verifies the node with --tls-ca (or OMNIROUTER_TLS_CA).
	var out, errb bytes.Buffer
	if code := run([]string{"status", "--addr", readOn.url(), "--tls-ca", ca.file}, &out, &errb); code != 0 || !strings.Contains(out.String(), leader.id) {
		t.Fatalf("omnirouter status over https: exit %d: %s %s", code, out.String(), errb.String())
	}
	out.Reset()
	errb.Reset()
	if code := run([]string{"status", "--addr", readOn.url()}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "certificate") {
		t.Fatalf("omnirouter status without the CA: exit %d: %s", code, errb.String())
	}
	t.Setenv("OMNIROUTER_TLS_CA", ca.file)
	out.Reset()
	errb.Reset()
	if code := run([]string{"conversation", "--addr", leader.url(), "c1", "-o", "json"}, &out, &errb); code != 0 || !strings.Contains(out.String(), `"c1"`) {
		t.Fatalf("omnirouter conversation with OMNIROUTER_TLS_CA: exit %d: %s %s", code, out.String(), errb.String())
	}
}

// TestProcessTLSSingleNode: one node needs only a certificate and its key.
func TestProcessTLSSingleNode(t *testing.T) {
	bin := binary(t)
	ca := newTestCA(t, "solo")
	cert, key := ca.issue(t, "solo")
	addr := freePort(t)
	p := startProc(t, bin, "serve", "--node-id", "solo", "--http-addr", addr, "--raft-addr", freePort(t),
		"--data-dir", filepath.Join(t.TempDir(), "data"), "--tls-cert", cert, "--tls-key", key)
	p.id, p.httpAddr, p.scheme = "solo", addr, "https"
	hc := httpsClient(ca.Pool, nil)
	testutil.Until(t, 30*time.Second, "ready", func() error {
		select {
		case <-p.exited:
			t.Fatalf("exited:\n%s", p.logText())
		default:
		}
		code, _, err := requestWith(hc, "", "GET", p.url()+"/readyz", nil)
		if err != nil || code != 200 {
			return fmt.Errorf("%d %v", code, err)
		}
		return nil
	})
	if code, m, err := requestWith(hc, "", "POST", p.url()+"/v1/conversations", map[string]any{"id": "c1", "channel": "messaging", "message": "x"}); code != 201 {
		t.Fatalf("create over https: %d %v %v", code, m, err)
	}
	// Without a CA there is no client certificate to check on /internal/:
	// only the cluster secret (none here) guards it, as without TLS.
	if code, _, err := requestWith(hc, "", "GET", p.url()+"/internal/cluster/info", nil); err != nil || code != 200 {
		t.Fatalf("internal info on a single node: %d %v", code, err)
	}
}
