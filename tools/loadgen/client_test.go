package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestClientNodeChoice: a client with a home node sends every request
// there, and moves on to the next node only when its home fails; without a
// home, requests rotate over all nodes.
func TestClientNodeChoice(t *testing.T) {
	var hits [3]atomic.Int64
	var down [3]atomic.Bool
	var targets []string
	for i := range 3 {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits[i].Add(1)
			if down[i].Load() {
				w.WriteHeader(http.StatusServiceUnavailable)
				w.Write([]byte(`{"error":{"code":"no_leader","message":"down"}}`))
				return
			}
			w.Write([]byte(`{}`))
		}))
		defer srv.Close()
		targets = append(targets, srv.URL)
	}
	c, err := newClient(targets, "", 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	counts := func() [3]int64 {
		var out [3]int64
		for i := range hits {
			out[i] = hits[i].Swap(0)
		}
		return out
	}

	ctx := context.Background()
	for range 9 {
		if err := c.do(withHome(ctx, 4), "GET", "/x", "", nil, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	if got := counts(); got != [3]int64{0, 9, 0} {
		t.Fatalf("home 4 of 3 nodes: hits %v, want all on node 1", got)
	}

	down[1].Store(true)
	if err := c.do(withHome(ctx, 1), "POST", "/x", "k", map[string]string{}, nil, nil); err != nil {
		t.Fatal(err)
	}
	if got := counts(); got != [3]int64{0, 1, 1} {
		t.Fatalf("home down: hits %v, want one failed try there, then node 2", got)
	}
	down[1].Store(false)

	for range 9 {
		if err := c.do(ctx, "GET", "/x", "", nil, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	if got := counts(); got != [3]int64{3, 3, 3} {
		t.Fatalf("no home: hits %v, want an even rotation", got)
	}
}

// TestClientConnections: the tool's own HTTP/1.1 connections are kept alive
// and reused, a server's "Connection: close" is honoured, and chunked and
// error answers are read whole.
func TestClientConnections(t *testing.T) {
	var dials atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/close":
			w.Header().Set("Connection", "close")
			w.Write([]byte(`{"id":"c"}`))
		case "/chunked":
			w.Write([]byte(`{"id":"`))
			w.(http.Flusher).Flush() // no Content-Length: chunked
			w.Write([]byte(strings.Repeat("x", 100000) + `"}`))
		case "/hints":
			w.Header().Set("Link", "</style.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints) // an interim answer first
			w.Write([]byte(`{"id":"h"}`))
		case "/unsized":
			// HTTP/1.0 style: no length, the body ends when the server closes.
			conn, brw, _ := http.NewResponseController(w).Hijack()
			brw.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{\"id\":\"u\"}")
			brw.Flush()
			conn.Close()
		case "/refused":
			if r.Header.Get("Idempotency-Key") != "k1" || r.Header.Get("Content-Type") != "application/json" {
				t.Errorf("headers: %v", r.Header)
			}
			w.WriteHeader(http.StatusConflict)
			w.Write([]byte(`{"error":{"code":"conflict","message":"no"}}`))
		default:
			body, _ := io.ReadAll(r.Body)
			w.Write([]byte(`{"id":` + strconv.Quote(string(body)) + `}`))
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			dials.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	c, err := newClient([]string{srv.URL}, "", 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	ctx := context.Background()
	var out struct{ ID string }
	for i := range 20 {
		if err := c.do(ctx, "POST", "/echo", "", map[string]int{"n": i}, &out, nil); err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf(`{"n":%d}`, i); out.ID != want {
			t.Fatalf("answer %q, want %q", out.ID, want)
		}
	}
	if n := dials.Load(); n != 1 {
		t.Fatalf("20 sequential requests used %d connections, want 1 (keep-alive)", n)
	}
	for range 2 {
		if err := c.do(ctx, "GET", "/close", "", nil, &out, nil); err != nil || out.ID != "c" {
			t.Fatalf("close: %v %q", err, out.ID)
		}
	}
	// The first close ends the kept-alive connection, the second a new one.
	if n := dials.Load(); n != 2 {
		t.Fatalf("after two answers with Connection: close: %d connections, want 2", n)
	}
	if err := c.do(ctx, "GET", "/chunked", "", nil, &out, nil); err != nil || len(out.ID) != 100000 {
		t.Fatalf("chunked: %v, %d bytes", err, len(out.ID))
	}
	err = c.do(ctx, "POST", "/refused", "k1", map[string]string{}, nil, nil)
	var ae *apiError
	if !errors.As(err, &ae) || ae.Status != http.StatusConflict || ae.Code != "conflict" {
		t.Fatalf("refused: %v", err)
	}
	if err := c.do(ctx, "POST", "/echo", "", "again", &out, nil); err != nil || out.ID != `"again"` {
		t.Fatalf("after an error answer the connection is reused: %v %q", err, out.ID)
	}
	if n := dials.Load(); n != 3 {
		t.Fatalf("%d connections, want 3", n)
	}
	if err := c.do(ctx, "GET", "/hints", "", nil, &out, nil); err != nil || out.ID != "h" {
		t.Fatalf("after an interim answer: %v %q", err, out.ID)
	}
	if err := c.do(ctx, "GET", "/unsized", "", nil, &out, nil); err != nil || out.ID != "u" {
		t.Fatalf("close-delimited body: %v %q", err, out.ID)
	}
	if err := c.do(ctx, "POST", "/echo", "", "last", &out, nil); err != nil || out.ID != `"last"` {
		t.Fatalf("after a close-delimited body: %v %q", err, out.ID)
	}
	// The interim answer kept the connection; the unsized body ended it.
	if n := dials.Load(); n != 4 {
		t.Fatalf("%d connections, want 4", n)
	}
}

// TestErrorsByClass: the report counts a refused operation under its HTTP
// status and API code, and a retried one (no leader, then success) as a
// retry of that class and a success, not as an error.
func TestErrorsByClass(t *testing.T) {
	var flaky atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/refused":
			w.WriteHeader(http.StatusConflict)
			w.Write([]byte(`{"error":{"code":"conversation_ended","message":"ended"}}`))
		case flaky.Add(1) == 1:
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte(`{"error":{"code":"no_leader","message":"electing"}}`))
		default:
			w.Write([]byte(`{}`))
		}
	}))
	defer srv.Close()
	c, err := newClient([]string{srv.URL}, "", 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	r := &run{c: c, ops: map[string]*recorder{}}
	ctx := context.Background()
	if err := r.call(ctx, "end", "POST", "/refused", "k1", map[string]string{}, nil); err == nil {
		t.Fatal("a 409 was reported as a success")
	}
	if err := r.call(ctx, "message", "POST", "/flaky", "k2", map[string]string{}, nil); err != nil {
		t.Fatalf("a request retried after a 503: %v", err)
	}
	end, msg := r.op("end").report(time.Second), r.op("message").report(time.Second)
	if end.Count != 0 || len(end.Errors) != 1 || end.Errors["409 conversation_ended"] != 1 {
		t.Errorf("end: count %d, errors %v; want 0 and one 409 conversation_ended", end.Count, end.Errors)
	}
	if msg.Count != 1 || len(msg.Errors) != 0 || msg.Retries["503 no_leader"] != 1 {
		t.Errorf("message: count %d, errors %v, retries %v; want 1, none, one 503 no_leader", msg.Count, msg.Errors, msg.Retries)
	}
}
