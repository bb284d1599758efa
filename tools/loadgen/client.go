package loadgen

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	// The tool shares the machine with the nodes it loads: go-json reads an
	// answer in about a fifth of encoding/json's CPU (2.4 µs against 12 µs
	// for a conversation, 2 vCPU, 2026-12-06), and the answers are the
	// nodes', so its leniency with malformed JSON costs nothing here.
	json "github.com/goccy/go-json"

	"github.com/omnirouter/omnirouter/internal/pause"
)

// client is a keep-alive HTTP client spread over the cluster's nodes. Every
// mutation carries an Idempotency-Key, so that a retry after 503 (no leader)
// or an ambiguous outcome is applied at most once.
type client struct {
	targets []string
	origins []*origin // per target
	token   string
	next    atomic.Uint64
	retries int
}

// newClient makes a client for targets (base URLs with a scheme), keeping
// up to conns idle connections per node.
func newClient(targets []string, token string, conns int, tlsConfig *tls.Config) (*client, error) {
	c := &client{targets: targets, token: token, retries: 20}
	for _, t := range targets {
		o, err := newOrigin(t, tlsConfig, conns)
		if err != nil {
			return nil, err
		}
		c.origins = append(c.origins, o)
	}
	return c, nil
}

// close closes the idle connections.
func (c *client) close() {
	for _, o := range c.origins {
		o.closeIdle()
	}
}

// apiError is a non-2xx answer.
type apiError struct {
	Status int
	Code   string
	Msg    string
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Msg) }

// class names an error for the report: the HTTP status and the API's code,
// or the transport failure.
func errorClass(err error) string {
	var ae *apiError
	if errors.As(err, &ae) {
		return strconv.Itoa(ae.Status) + " " + ae.Code
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timeout"
	}
	return "transport"
}

// isNotFound reports whether err is the API's 404.
func isNotFound(err error) bool {
	var ae *apiError
	return errors.As(err, &ae) && ae.Status == http.StatusNotFound
}

// retryable reports whether the same request, with the same key, should be
// sent again: no leader, an ambiguous outcome, a transport failure.
func retryable(err error) bool {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.Status == http.StatusServiceUnavailable || ae.Status == http.StatusGatewayTimeout || ae.Status == http.StatusBadGateway
	}
	return err != nil
}

// homeKey carries a client's home node index in a context.
type homeKey struct{}

// withHome makes every request sent with ctx go first to targets[home %
// len(targets)]: a client keeps to one node, as an application behind a
// keep-alive connection or a sticky load balancer does, while the clients
// together spread over all nodes. A failed attempt moves on to the next
// node.
func withHome(ctx context.Context, home int) context.Context {
	return context.WithValue(ctx, homeKey{}, home)
}

// do sends one request (to the context's home node, else to a node chosen
// round-robin) and decodes a JSON answer into out (if not nil). onRetry is
// told about each failed attempt.
func (c *client) do(ctx context.Context, method, path, key string, body, out any, onRetry func(error)) error {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return err
		}
	}
	var err error
	home, pinned := ctx.Value(homeKey{}).(int)
	for attempt := 0; attempt <= c.retries; attempt++ {
		var target int
		if pinned {
			target = (home + attempt) % len(c.targets)
		} else {
			target = int(c.next.Add(1) % uint64(len(c.targets)))
		}
		err = c.once(ctx, c.origins[target], method, path, key, payload, out)
		if err == nil || !retryable(err) || ctx.Err() != nil {
			return err
		}
		if onRetry != nil {
			onRetry(err)
		}
		if !pause.For(ctx, time.Duration(min(attempt+1, 10))*50*time.Millisecond) {
			return err
		}
	}
	return err
}

func (c *client) once(ctx context.Context, o *origin, method, path, key string, payload []byte, out any) error {
	var hdr [4]string
	h := hdr[:0]
	if key != "" {
		h = append(h, "Idempotency-Key", key)
	}
	if c.token != "" {
		h = append(h, "Authorization", "Bearer "+c.token)
	}
	conn, err := o.get(ctx)
	if err != nil {
		return err
	}
	status, data, reuse, err := o.roundTrip(ctx, conn, method, path, h, payload)
	if err != nil {
		conn.nc.Close()
		return err
	}
	defer func() {
		if reuse {
			o.put(conn)
		} else {
			conn.nc.Close()
		}
	}()
	if status >= 300 {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		_ = json.Unmarshal(data, &e)
		return &apiError{Status: status, Code: e.Error.Code, Msg: e.Error.Message}
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}
