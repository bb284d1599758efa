package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/omnirouter/omnirouter/internal/testutil"
	"github.com/omnirouter/omnirouter/routing"
)

// nodeTLS is a node's mutual TLS configuration: its own certificate, the
// CA as roots for servers and as the only issuer of accepted clients.
func nodeTLS(t testing.TB, ca *testutil.CA, name string) *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{ca.Issue(t, name)},
		RootCAs:      ca.Pool,
		ClientCAs:    ca.Pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS12,
	}
}

// httpServerTLS is the internal HTTP server's configuration: the node's
// certificate, client certificates required and verified.
func httpServerTLS(ca *testutil.CA, node *tls.Config) *tls.Config {
	return &tls.Config{
		Certificates: node.Certificates,
		ClientCAs:    ca.Pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS12,
	}
}

// TestTLSCluster runs three nodes whose raft connections and internal HTTP
// calls use mutual TLS: writes through a follower are forwarded over https
// with the node's client certificate and replicated; plain TCP cannot speak
// to the raft port.
func TestTLSCluster(t *testing.T) {
	pki := testutil.NewCA(t, "cluster CA")
	c := newCluster(t, clusterOpts{n: 3, pki: pki})
	leader := c.waitLeader(nil)
	f := c.follower(leader)
	if !strings.HasPrefix(f.node.cfg.HTTPAddr, "https://") {
		t.Fatalf("HTTP address %s", f.node.cfg.HTTPAddr)
	}
	for _, tn := range c.nodes {
		if tn.node.tlsStream == nil {
			t.Fatalf("%s: raft is not on TLS", tn.cfg.NodeID)
		}
	}
	before := leader.mtlsRequests.Load()
	propose(t, f, "k-tls-1", agentCmd(1))
	if leader.mtlsRequests.Load() == before {
		t.Fatal("the forwarded write did not reach the leader over mutual TLS")
	}
	if leader.streamsOpened.Load() != 1 {
		t.Fatal("the follower did not forward on a stream over TLS")
	}
	writeMany(t, c, 10, 30)
	c.checkConverged()
	for _, tn := range c.nodes {
		var ok bool
		tn.node.Read(context.Background(), Stale, func(m *routing.Machine) { _, ok = m.Agent("a001") })
		if !ok {
			t.Fatalf("%s: forwarded write not replicated", tn.cfg.NodeID)
		}
	}

	// Plain TCP to a TLS raft port: the RPC fails and nothing changes.
	plain, err := raft.NewTCPTransport("127.0.0.1:0", nil, 1, 2*time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	term := leader.node.raft.CurrentTerm()
	var vresp raft.RequestVoteResponse
	err = plain.RequestVote(raft.ServerID(leader.cfg.NodeID), raft.ServerAddress(leader.node.raftAddr()),
		&raft.RequestVoteRequest{RPCHeader: raft.RPCHeader{Addr: []byte("127.0.0.1:1"), ID: []byte("intruder")},
			Term: term + 100, LastLogIndex: 1 << 40, LastLogTerm: term + 100}, &vresp)
	if err == nil {
		t.Fatal("a plain TCP RequestVote was answered by a TLS raft port")
	}
	t.Logf("plain RequestVote: %v", err)
	if got := leader.node.raft.CurrentTerm(); got != term {
		t.Fatalf("term moved from %d to %d", term, got)
	}
}

// TestTLSRogueNode checks that a node whose certificate another CA signed
// can neither join through the internal HTTP endpoints nor take part in
// raft, in either direction, while the cluster keeps working.
func TestTLSRogueNode(t *testing.T) {
	pki := testutil.NewCA(t, "cluster CA")
	c := newCluster(t, clusterOpts{n: 3, pki: pki})
	leader := c.waitLeader(nil)

	// The rogue trusts both CAs, so only its own certificate is wrong, and
	// it presents that certificate even though the cluster asks for one of
	// its own CA (Go's client would otherwise send none).
	other := testutil.NewCA(t, "other CA")
	both := x509.NewCertPool()
	both.AddCert(pki.Cert)
	both.AddCert(other.Cert)
	rogueTLS := nodeTLS(t, other, "rogue")
	rogueTLS.RootCAs, rogueTLS.ClientCAs = both, both
	rogueCert := rogueTLS.Certificates[0]
	rogueTLS.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &rogueCert, nil }
	var joins []string
	for _, tn := range c.nodes {
		joins = append(joins, tn.srv.URL)
	}
	rogue, err := Open(Config{
		NodeID: "rogue", DataDir: filepath.Join(t.TempDir(), "rogue"), RaftAddr: freeAddr(t),
		HTTPAddr: "127.0.0.1:1", BootstrapExpect: 3, Join: joins, Logger: testLogger(), TLS: rogueTLS,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer rogue.Shutdown()
	if rogue.cfg.HTTPAddr != "https://127.0.0.1:1" {
		t.Fatalf("scheme-less address with TLS: %s", rogue.cfg.HTTPAddr)
	}

	// HTTP: the cluster's internal endpoints refuse its client certificate.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := rogue.probe(ctx, leader.srv.URL); err == nil {
		t.Fatal("the rogue's HTTP client reached the internal endpoints")
	} else {
		t.Logf("rogue probe: %v", err)
	}

	// raft, rogue → cluster: a vote request with a huge term is refused at
	// the handshake and the leader's term does not move.
	term := leader.node.raft.CurrentTerm()
	refusedBefore := leader.node.tlsStream.refused.Load()
	var vresp raft.RequestVoteResponse
	err = rogue.trans.RequestVote(raft.ServerID(leader.cfg.NodeID), raft.ServerAddress(leader.node.raftAddr()),
		&raft.RequestVoteRequest{RPCHeader: raft.RPCHeader{Addr: []byte(rogue.raftAddr()), ID: []byte("rogue")},
			Term: term + 100, LastLogIndex: 1 << 40, LastLogTerm: term + 100}, &vresp)
	if err == nil {
		t.Fatal("the rogue's RequestVote was answered")
	}
	t.Logf("rogue RequestVote: %v", err)
	testutil.Until(t, 10*time.Second, "the leader refusing the rogue's handshake", func() error {
		if leader.node.tlsStream.refused.Load() == refusedBefore {
			return errors.New("no refused handshake yet")
		}
		return nil
	})
	if got := leader.node.raft.CurrentTerm(); got != term {
		t.Fatalf("term moved from %d to %d", term, got)
	}

	// raft, cluster → rogue: even added to the configuration it receives
	// nothing, because the leader does not trust its server certificate.
	dialRefused := leader.node.tlsStream.refused.Load()
	if err := leader.node.raft.AddNonvoter("rogue", raft.ServerAddress(rogue.raftAddr()), 0, 5*time.Second).Error(); err != nil {
		t.Fatalf("add the rogue as a non-voter: %v", err)
	}
	testutil.Until(t, 10*time.Second, "the leader refusing to replicate to the rogue", func() error {
		if leader.node.tlsStream.refused.Load() == dialRefused {
			return errors.New("no refused dial yet")
		}
		return nil
	})
	acked := writeMany(t, c, 100, 20)
	c.checkConverged()
	if len(acked) != 20 {
		t.Fatalf("%d of 20 writes acknowledged", len(acked))
	}
	if idx := rogue.raft.LastIndex(); idx != 0 {
		t.Fatalf("the rogue received log entries up to %d", idx)
	}
	if applied := rogue.Status().AppliedIndex; applied != 0 {
		t.Fatalf("the rogue applied up to %d", applied)
	}
	if err := leader.node.raft.RemoveServer("rogue", 0, 5*time.Second).Error(); err != nil {
		t.Fatalf("remove the rogue: %v", err)
	}
	c.checkConverged()
}

// TestTLSConfigErrors covers the stream layer's refusals.
func TestTLSConfigErrors(t *testing.T) {
	pki := testutil.NewCA(t, "ca")
	cfg := nodeTLS(t, pki, "n1")
	_, err := Open(Config{NodeID: "n1", DataDir: t.TempDir(), RaftAddr: "0.0.0.0:0", TLS: cfg, Logger: testLogger()})
	if err == nil {
		t.Fatal("an unspecified advertise address was accepted")
	}
	_, err = Open(Config{NodeID: "n1", DataDir: t.TempDir(), RaftAddr: freeAddr(t), TLS: &tls.Config{}, Logger: testLogger()})
	if err == nil {
		t.Fatal("a TLS configuration without a certificate was accepted")
	}
	// The caller's configuration is not modified; the layer enforces TLS 1.2.
	old := &tls.Config{Certificates: cfg.Certificates, MinVersion: tls.VersionTLS10}
	if got := raftTLSConfig(old); got.MinVersion != tls.VersionTLS12 || old.MinVersion != tls.VersionTLS10 {
		t.Fatalf("min version %x / %x", got.MinVersion, old.MinVersion)
	}
}
