//go:build unix

package webhook

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BenchmarkPost is one delivery on a kept-alive connection, written by the
// sender and by the http.Client that deliveries through a proxy use, to a
// receiver in the same process that reads each request and answers 204
// (writing its answers once no further request is buffered, as a server
// that serves pipelined requests does). cpu-ns/op is the process's CPU
// (both sides) per delivery: the receiver's work is the same in both, so
// the difference is the sender's saving. The sender is kept only while it
// saves at least a tenth of it. "sender, 16 pipelined" sends windows of 16
// deliveries, each a request of its own, in one write; an op is still one
// delivery.
func BenchmarkPost(b *testing.B) {
	url := startBenchReceiver(b)
	body := []byte(`{"id":123456,"type":"conversation.queued","at":"2026-12-06T13:20:42.123Z","conversation":{"id":"c-0123456789","channel":"chat","state":"queued","priority":0,"group":"support","skills":["en"],"created_at":"2026-12-06T13:20:42.123Z","eligible_at":"2026-12-06T13:20:42.123Z","transcript":null,"transcript_length":1,"ticket":{"id":4711,"status":"new"}}}`)
	h := deliveryHeaders{eventID: 123456, eventType: "conversation.queued", timestamp: time.Now().Unix(),
		signature: []byte("v1=" + strings.Repeat("ab", 32)), node: "n1", term: 7}
	ctx := context.Background()

	b.Run("sender", func(b *testing.B) {
		s, err := newSender(url, "omnirouter-webhook/bench", 10*time.Second, 1, nil)
		if err != nil {
			b.Fatal(err)
		}
		defer s.close()
		var lines []byte
		b.ReportAllocs()
		defer reportCPU(b)()
		for b.Loop() {
			lines = h.appendLines(lines[:0])
			s.reset()
			s.add(body, lines)
			if _, err := s.send(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("sender, 16 pipelined", func(b *testing.B) {
		const window = 16
		s, err := newSender(url, "omnirouter-webhook/bench", 10*time.Second, window, nil)
		if err != nil {
			b.Fatal(err)
		}
		defer s.close()
		var lines []byte
		b.ReportAllocs()
		b.ResetTimer()
		defer reportCPU(b)()
		for done := 0; done < b.N; {
			s.reset()
			for range min(window, b.N-done) {
				lines = h.appendLines(lines[:0])
				s.add(body, lines)
			}
			n, err := s.send(ctx)
			if err != nil {
				b.Fatal(err)
			}
			done += n
		}
	})
	b.Run("http.Client", func(b *testing.B) {
		client := defaultClient(nil)
		defer client.CloseIdleConnections()
		b.ReportAllocs()
		defer reportCPU(b)()
		for b.Loop() {
			if err := clientPost(ctx, client, 10*time.Second, url, "omnirouter-webhook/bench", h, body); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// reportCPU reports the process's CPU time per iteration as cpu-ns/op when
// the function it returns is called.
func reportCPU(b *testing.B) func() {
	start := processCPU(b)
	return func() {
		b.ReportMetric(float64(processCPU(b)-start)/float64(b.N), "cpu-ns/op")
	}
}

func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// startBenchReceiver serves 204 to every request on 127.0.0.1 until the
// benchmark ends, and returns its URL.
func startBenchReceiver(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go serveBenchConn(conn)
		}
	}()
	return "http://" + ln.Addr().String() + "/hook"
}

func serveBenchConn(conn net.Conn) {
	defer conn.Close()
	br, bw := bufio.NewReader(conn), bufio.NewWriter(conn)
	for {
		length := 0
		for {
			line, err := br.ReadSlice('\n')
			if err != nil {
				return
			}
			line = bytes.TrimRight(line, "\r\n")
			if len(line) == 0 {
				break
			}
			if name, value, ok := bytes.Cut(line, []byte{':'}); ok && bytes.EqualFold(name, []byte("Content-Length")) {
				length, _ = strconv.Atoi(string(bytes.TrimSpace(value)))
			}
		}
		if _, err := br.Discard(length); err != nil {
			return
		}
		_, _ = bw.WriteString("HTTP/1.1 204 No Content\r\n\r\n")
		if br.Buffered() == 0 {
			if err := bw.Flush(); err != nil {
				return
			}
		}
	}
}
