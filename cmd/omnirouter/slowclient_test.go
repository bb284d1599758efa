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
