package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"slices"
)

// serveTLS is a node's TLS setup from --tls-cert, --tls-key and --tls-ca.
// A nil *serveTLS means plain HTTP and TCP.
type serveTLS struct {
	http   *tls.Config // the HTTP API server
	raft   *tls.Config // raft, accepting and dialling
	client *tls.Config // node-to-node HTTP client
	ca     *x509.CertPool
}

func (t *serveTLS) scheme() string {
	if t == nil {
		return "http"
	}
	return "https"
}

// mutual reports whether nodes authenticate each other with certificates.
func (t *serveTLS) mutual() bool { return t != nil && t.ca != nil }

func (t *serveTLS) raftConfig() *tls.Config {
	if t == nil {
		return nil
	}
	return t.raft
}

func (t *serveTLS) clientConfig() *tls.Config {
	if t == nil {
		return nil
	}
	return t.client
}

// loadServeTLS checks the TLS flags and loads the files. Without --tls-ca a
// node serves HTTPS but its peers could not verify each other (self-signed
// or private certificates) nor authenticate clients, so a cluster (--join or
// --bootstrap-expect > 1) needs --tls-ca.
func loadServeTLS(cfg serveConfig) (*serveTLS, error) {
	switch {
	case cfg.TLSCert == "" && cfg.TLSKey == "" && cfg.TLSCA == "":
		return nil, nil
	case cfg.TLSCert != "" && cfg.TLSKey == "":
		return nil, errors.New("--tls-cert needs --tls-key")
	case cfg.TLSCert == "" && cfg.TLSKey != "":
		return nil, errors.New("--tls-key needs --tls-cert")
	case cfg.TLSCert == "":
		return nil, errors.New("--tls-ca needs --tls-cert and --tls-key: with a CA, nodes authenticate each other with their certificates")
	}
	cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert %s / --tls-key %s: %w", cfg.TLSCert, cfg.TLSKey, err)
	}
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("--tls-cert %s: %w", cfg.TLSCert, err)
		}
	}
	t := &serveTLS{
		http: &tls.Config{
			Certificates: []tls.Certificate{cert},
			MinVersion:   tls.VersionTLS12,
			NextProtos:   []string{"http/1.1"},
		},
		raft:   &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		client: &tls.Config{MinVersion: tls.VersionTLS12},
	}
	if cfg.TLSCA == "" {
		if len(cfg.Join) > 0 || cfg.BootstrapExpect > 1 {
			return nil, errors.New("TLS in a cluster (--join or --bootstrap-expect > 1) needs --tls-ca: nodes verify each other's certificates against it (mutual TLS)")
		}
		return t, nil
	}
	pem, err := os.ReadFile(cfg.TLSCA)
	if err != nil {
		return nil, fmt.Errorf("--tls-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--tls-ca %s: no PEM certificate found", cfg.TLSCA)
	}
	// Catch a certificate the peers would refuse now rather than at the
	// first connection: it must chain to the CA and serve as both a server
	// and a client certificate.
	inter := x509.NewCertPool()
	for _, der := range cert.Certificate[1:] {
		if c, err := x509.ParseCertificate(der); err == nil {
			inter.AddCert(c)
		}
	}
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if len(leaf.ExtKeyUsage) > 0 && !slices.Contains(leaf.ExtKeyUsage, usage) && !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageAny) {
			return nil, fmt.Errorf("--tls-cert %s: the certificate must allow both serverAuth and clientAuth (extended key usage) for mutual TLS between nodes", cfg.TLSCert)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return nil, fmt.Errorf("--tls-cert %s does not chain to --tls-ca %s: %w", cfg.TLSCert, cfg.TLSCA, err)
	}
	t.ca = pool
	// Users need no certificate; nodes present theirs, and /internal/
	// requires it (api.Config.InternalClientCert).
	t.http.ClientCAs, t.http.ClientAuth = pool, tls.VerifyClientCertIfGiven
	t.raft.RootCAs, t.raft.ClientCAs, t.raft.ClientAuth = pool, pool, tls.RequireAndVerifyClientCert
	t.client.RootCAs, t.client.Certificates = pool, []tls.Certificate{cert}
	return t, nil
}
