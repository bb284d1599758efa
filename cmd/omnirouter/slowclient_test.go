package main

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A client that sends its headers a byte at a time, or never finishes its
// body, is disconnected by the server's timeouts rather than holding the
// connection.
func TestSlowClientsAreCutOff(t *testing.T) {
	if defaultHTTPTimeouts.ReadHeader <= 0 || defaultHTTPTimeouts.Read <= 0 || defaultHTTPTimeouts.Write <= 0 || defaultHTTPTimeouts.Idle <= 0 {
		t.Fatalf("every server timeout must be set: %+v", defaultHTTPTimeouts)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) })
	srv := newHTTPServer(h, slog.New(slog.DiscardHandler), httpTimeouts{ReadHeader: 200 * time.Millisecond, Read: 300 * time.Millisecond, Write: time.Second, Idle: time.Second})
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	for name, send := range map[string]string{
		"headers never finished": "POST /v1/conversations HTTP/1.1\r\nHost: x\r\n",
		"body never finished":    "POST /v1/conversations HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{",
	} {
		conn, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Write([]byte(send)); err != nil {
			t.Fatal(err)
		}
		// The server must close the connection well before our own deadline.
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		start := time.Now()
		_, err = bufio.NewReader(conn).ReadString('\n')
		conn.Close()
		if err == nil {
			// A 408 or 400 status line is also a refusal; read it as such.
			continue
		}
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("%s: the server kept the connection open for %v", name, time.Since(start))
		}
		if !strings.Contains(err.Error(), "EOF") && !strings.Contains(err.Error(), "reset") {
			t.Fatalf("%s: %v", name, err)
		}
	}
}

// TestTricklingBodyIsCutOff: a client that keeps sending its body a byte at
// a time is cut off once the read timeout has passed since the request
// began, however long it would go on; and the default is well under two
// minutes.
func TestTricklingBodyIsCutOff(t *testing.T) {
	if defaultHTTPTimeouts.Read > time.Minute {
		t.Fatalf("the default read timeout is %v", defaultHTTPTimeouts.Read)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	readErr := make(chan error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.Copy(io.Discard, r.Body)
		readErr <- err
	})
	srv := newHTTPServer(h, slog.New(slog.DiscardHandler), httpTimeouts{ReadHeader: time.Second, Read: 400 * time.Millisecond, Write: time.Second, Idle: time.Second})
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	if _, err := conn.Write([]byte("POST /v1/conversations HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	// A byte every 20 ms would take half an hour to finish the body.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := conn.Write([]byte("x")); err != nil {
					return
				}
			}
		}
	}()
	select {
	case err := <-readErr:
		if err == nil {
			t.Fatal("the trickling body was read to its end")
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Fatalf("the body was cut off after %v", took)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the server still reads the trickling body after 10 s")
	}
}
