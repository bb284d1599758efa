package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// client talks to one node's HTTP API on behalf of the CLI subcommands.
type client struct {
	addr   string
	token  string
	caFile string
	http   *http.Client
}

// clientFlags registers the client's flags; call setup after parsing.
func clientFlags(fs *flag.FlagSet) *client {
	c := &client{http: &http.Client{Timeout: 5 * time.Minute}}
	fs.StringVar(&c.addr, "addr", "http://127.0.0.1:8080", "any node's HTTP address (https://… for a node with TLS)")
	fs.StringVar(&c.token, "token", "", "bearer token")
	fs.StringVar(&c.caFile, "tls-ca", "", "PEM CA certificate(s) to verify an https node with (default: the system's)")
	return c
}

// setup applies the parsed flags: --tls-ca replaces the system roots.
func (c *client) setup() error {
	if c.caFile == "" {
		return nil
	}
	pool, err := caPool(c.caFile)
	if err != nil {
		return err
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	c.http.Transport = t
	return nil
}

// caPool reads the PEM certificates a client trusts (--tls-ca).
func caPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("--tls-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--tls-ca %s: no PEM certificate found", file)
	}
	return pool, nil
}

func (c *client) url(path string) string {
	addr := strings.TrimRight(c.addr, "/")
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	return addr + path
}

// do sends a request and returns the response body of a 2xx answer, or an
// error carrying the API's error code and message.
func (c *client) do(method, path string, body io.Reader, contentType string) ([]byte, error) {
	req, err := http.NewRequest(method, c.url(path), body)
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if json.Unmarshal(b, &e) == nil && e.Error.Code != "" {
			return nil, fmt.Errorf("%s %s: %d %s: %s", method, path, resp.StatusCode, e.Error.Code, e.Error.Message)
		}
		return nil, fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	return b, nil
}

func (c *client) json(method, path string, body any) ([]byte, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		r = bytes.NewReader(b)
	}
	return c.do(method, path, r, "application/json")
}
