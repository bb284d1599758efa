package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// raftHandshakeTimeout bounds an inbound raft connection's TLS handshake, so
// that a peer that connects and sends nothing does not hold a goroutine.
const raftHandshakeTimeout = 10 * time.Second

// tlsStreamLayer is a raft.StreamLayer over TLS. One *tls.Config serves both
// ends: as a server it presents Certificates and, when ClientAuth says so,
// verifies the peer's certificate against ClientCAs; as a client it presents
// the same Certificates and verifies the server against RootCAs (nil: the
// system pool) and the host part of the dialled address (a DNS name, or an
// IP address matched against the certificate's IP SANs).
type tlsStreamLayer struct {
	ln        net.Listener // plain TCP; Accept wraps each connection
	advertise net.Addr
	cfg       *tls.Config
	log       *slog.Logger
	// refused counts TLS handshakes that failed, both inbound (a peer whose
	// certificate is not trusted) and outbound (a server we do not trust).
	refused atomic.Uint64
}

// raftTLSConfig is cfg with TLS 1.2 as the floor. The caller's config is not
// modified.
func raftTLSConfig(cfg *tls.Config) *tls.Config {
	c := cfg.Clone()
	if c.MinVersion < tls.VersionTLS12 {
		c.MinVersion = tls.VersionTLS12
	}
	return c
}

// newTLSStreamLayer listens on bind and advertises advertise, which must be
// a concrete address (not 0.0.0.0), as raft's TCP transport requires.
func newTLSStreamLayer(bind string, advertise *net.TCPAddr, cfg *tls.Config, log *slog.Logger) (*tlsStreamLayer, error) {
	if advertise.IP == nil || advertise.IP.IsUnspecified() {
		return nil, fmt.Errorf("raft advertise address %s is not advertisable: set the advertised raft address", advertise)
	}
	if len(cfg.Certificates) == 0 && cfg.GetCertificate == nil {
		return nil, errors.New("raft TLS: no certificate")
	}
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, err
	}
	return &tlsStreamLayer{ln: ln, advertise: advertise, cfg: raftTLSConfig(cfg), log: log}, nil
}

// Accept waits for the next connection. The TLS handshake runs on the
// connection's first read or write (in the transport's per-connection
// goroutine, bounded by raftHandshakeTimeout), never in the accept loop.
func (s *tlsStreamLayer) Accept() (net.Conn, error) {
	c, err := s.ln.Accept()
	if err != nil {
		return nil, err
	}
	return &tlsServerConn{Conn: tls.Server(c, s.cfg), layer: s}, nil
}

// Close stops listening.
func (s *tlsStreamLayer) Close() error { return s.ln.Close() }

// Addr is the advertised address.
func (s *tlsStreamLayer) Addr() net.Addr { return s.advertise }

// Dial connects to a peer and completes the handshake (verifying the peer's
// certificate) within timeout. With an empty ServerName, tls.DialWithDialer
// verifies the host part of address.
func (s *tlsStreamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout}
	conn, err := tls.DialWithDialer(d, "tcp", string(address), s.cfg)
	if err != nil {
		var opErr *net.OpError
		if !errors.As(err, &opErr) || opErr.Op != "dial" {
			s.refused.Add(1) // a handshake failure, not a refused TCP connection
		}
		return nil, err
	}
	return conn, nil
}

// tlsServerConn is an accepted connection whose handshake is bounded in time
// and logged when it fails.
type tlsServerConn struct {
	*tls.Conn
	layer *tlsStreamLayer
	once  sync.Once
	err   error
}

func (c *tlsServerConn) handshake() error {
	c.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), raftHandshakeTimeout)
		defer cancel()
		if err := c.Conn.HandshakeContext(ctx); err != nil {
			c.err = err
			c.layer.refused.Add(1)
			c.layer.log.Warn("raft connection refused: TLS handshake failed", "remote", c.RemoteAddr().String(), "err", err)
		}
	})
	return c.err
}

func (c *tlsServerConn) Read(b []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Read(b)
}

func (c *tlsServerConn) Write(b []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Write(b)
}
