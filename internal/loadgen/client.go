package loadgen

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// client is a keep-alive HTTP client spread over the cluster's nodes. Every
// mutation carries an Idempotency-Key, so that a retry after 503 (no leader)
// or an ambiguous outcome is applied at most once.
type client struct {
	http    *http.Client
	targets []string
	token   string
	next    atomic.Uint64
	retries int
}

func newClient(targets []string, token string, conns int, tlsConfig *tls.Config) *client {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        conns * 2,
		MaxIdleConnsPerHost: conns * 2,
		MaxConnsPerHost:     0,
		IdleConnTimeout:     90 * time.Second,
		TLSClientConfig:     tlsConfig,
	}
	return &client{http: &http.Client{Transport: tr, Timeout: 30 * time.Second}, targets: targets, token: token, retries: 20}
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
		var target string
		if pinned {
			target = c.targets[(home+attempt)%len(c.targets)]
		} else {
			target = c.targets[c.next.Add(1)%uint64(len(c.targets))]
		}
		err = c.once(ctx, method, target+path, key, payload, out)
		if err == nil || !retryable(err) || ctx.Err() != nil {
			return err
		}
		if onRetry != nil {
			onRetry(err)
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(min(attempt+1, 10)) * 50 * time.Millisecond):
		}
	}
	return err
}

func (c *client) once(ctx context.Context, method, url, key string, payload []byte, out any) error {
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return err
	}
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		_ = json.Unmarshal(data, &e)
		return &apiError{Status: resp.StatusCode, Code: e.Error.Code, Msg: e.Error.Message}
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}
