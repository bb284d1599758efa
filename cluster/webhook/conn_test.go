package webhook

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestReadAnswer: the status, whether the connection carries on, and that
// exactly the answer was read (the next one parses) for every framing.
func TestReadAnswer(t *testing.T) {
	const next = "HTTP/1.1 204 No Content\r\n\r\n"
	cases := []struct {
		name, in string
		status   int
		keep     bool
		err      bool
	}{
		{"no content", "HTTP/1.1 204 No Content\r\nDate: x\r\n\r\n", 204, true, false},
		{"a length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 200, true, false},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3\r\nabc\r\n0\r\n\r\n", 200, true, false},
		{"chunked with a trailer", "HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-T: 1\r\n\r\n", 202, true, false},
		{"after 100 Continue", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n", 201, true, false},
		{"an error", "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy", 503, true, false},
		{"connection close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", 200, false, false},
		{"HTTP/1.0", "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", 200, false, false},
		{"a body to the end", "HTTP/1.1 200 OK\r\n\r\nwhatever", 200, false, false},
		{"a big body", "HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n", 200, false, false},
		{"no status line", "", 0, false, true},
		{"garbage", "SSH-2.0-OpenSSH\r\n\r\n", 0, false, true},
		{"a bad length", "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", 200, false, true},
		{"cut short", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 200, false, true},
	}
	for _, c := range cases {
		in := c.in
		if c.keep {
			in += next
		}
		br := bufio.NewReaderSize(strings.NewReader(in), 4096)
		status, keep, err := readAnswer(br)
		if status != c.status || keep != c.keep || (err != nil) != c.err {
			t.Errorf("%s: status %d keep %v err %v; want %d %v err=%v", c.name, status, keep, err, c.status, c.keep, c.err)
			continue
		}
		if c.keep {
			if status, keep, err := readAnswer(br); status != 204 || !keep || err != nil {
				t.Errorf("%s: the next answer reads as %d %v %v", c.name, status, keep, err)
			}
		}
	}
}

// scriptedReceiver serves each connection with serve, on 127.0.0.1, until
// the test ends, and returns its URL.
func scriptedReceiver(t *testing.T, serve func(c net.Conn, br *bufio.Reader)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				serve(c, bufio.NewReader(c))
			}()
		}
	}()
	return "http://" + ln.Addr().String() + "/hook"
}

// readEventID reads a request and returns its event id.
func readEventID(br *bufio.Reader) (int, error) {
	req, err := http.ReadRequest(br)
	if err != nil {
		return 0, err
	}
	if _, err := io.Copy(io.Discard, req.Body); err != nil {
		return 0, err
	}
	return strconv.Atoi(req.Header.Get(HeaderEventID))
}

// window fills s with requests for events from..to.
func window(s *sender, from, to int) {
	s.reset()
	for id := from; id <= to; id++ {
		h := deliveryHeaders{eventID: uint64(id), eventType: "t", timestamp: 1, signature: []byte("v1=00"), node: "n1", term: 1}
		s.add([]byte(`{}`), h.appendLines(nil))
	}
}

// TestSendWindow: a window's requests leave together (the receiver reads
// all 16 before it answers any) and are answered in order; an error status
// in the middle counts the answers before it, and closes the connection,
// since the answers after it are not read; at depth 1 an error status
// keeps the connection.
func TestSendWindow(t *testing.T) {
	var mu sync.Mutex
	var got []int
	conns := 0
	url := scriptedReceiver(t, func(c net.Conn, br *bufio.Reader) {
		mu.Lock()
		conns++
		mu.Unlock()
		for {
			var ids []int
			for len(ids) == 0 || br.Buffered() > 0 {
				id, err := readEventID(br)
				if err != nil {
					return
				}
				ids = append(ids, id)
			}
			mu.Lock()
			got = append(got, ids...)
			mu.Unlock()
			var answers []byte
			for _, id := range ids {
				if id == 5 || id == 21 {
					answers = append(answers, "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\noops"...)
				} else {
					answers = append(answers, "HTTP/1.1 204 No Content\r\n\r\n"...)
				}
			}
			if _, err := c.Write(answers); err != nil {
				return
			}
		}
	})
	s, err := newSender(url, "test", 5*time.Second, 16, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	ctx := context.Background()

	window(s, 1, 4)
	if n, err := s.send(ctx); n != 4 || err != nil || len(s.took) != 4 {
		t.Fatalf("4 requests: %d answered, %v, %d times", n, err, len(s.took))
	}
	window(s, 1, 16)
	if n, err := s.send(ctx); n != 4 || err == nil || err.Error() != "HTTP 500" || len(s.took) != 5 {
		t.Fatalf("16 requests, the 5th refused: %d answered, %v, %d times", n, err, len(s.took))
	}
	if s.conn != nil {
		t.Fatal("the connection was kept with the answers after the failure unread")
	}
	mu.Lock()
	if len(got) != 20 || got[4] != 1 || got[19] != 16 {
		t.Fatalf("the receiver got %v, want 1-4 then 1-16", got)
	}
	mu.Unlock()

	one, err := newSender(url, "test", 5*time.Second, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer one.close()
	window(one, 20, 20)
	if n, err := one.send(ctx); n != 1 || err != nil {
		t.Fatalf("depth 1: %d, %v", n, err)
	}
	window(one, 21, 21)
	if n, err := one.send(ctx); n != 0 || err == nil || err.Error() != "HTTP 500" || one.conn == nil {
		t.Fatalf("depth 1, refused: %d, %v, connection kept %v", n, err, one.conn != nil)
	}
	window(one, 22, 22)
	if n, err := one.send(ctx); n != 1 || err != nil {
		t.Fatalf("depth 1, after the refusal: %d, %v", n, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if conns != 2 {
		t.Fatalf("%d connections, want 2 (one per sender: at depth 1 a refusal keeps it)", conns)
	}
}

// TestSendAnswerDeadline: each answer has the timeout from the one before
// it, so a receiver that takes most of the timeout over each of several
// pipelined requests has them all delivered; one that stops answering
// times out with the answers before counted.
func TestSendAnswerDeadline(t *testing.T) {
	const timeout = time.Second
	url := scriptedReceiver(t, func(c net.Conn, br *bufio.Reader) {
		for {
			id, err := readEventID(br)
			if err != nil {
				return
			}
			if id == 13 {
				_, _ = io.Copy(io.Discard, c) // never answered
				return
			}
			time.Sleep(timeout * 6 / 10) // a slow receiver, not a wait for the test
			if _, err := c.Write([]byte("HTTP/1.1 204 No Content\r\n\r\n")); err != nil {
				return
			}
		}
	})
	s, err := newSender(url, "test", timeout, 16, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	window(s, 1, 3)
	if n, err := s.send(context.Background()); n != 3 || err != nil {
		t.Fatalf("3 slow answers: %d, %v", n, err)
	}
	window(s, 11, 14)
	n, err := s.send(context.Background())
	if n != 2 || !errors.Is(err, errTimeout) || s.conn != nil {
		t.Fatalf("the 3rd of 4 never answered: %d answered, %v, connection kept %v", n, err, s.conn != nil)
	}
}

// TestSendReceiverEndsConnections: a receiver that serves one request per
// connection gets each request of a window once, on a connection of its
// own, without a failure, and the sender then keeps one request in
// flight; one that serves several before it closes keeps pipelining.
func TestSendReceiverEndsConnections(t *testing.T) {
	for _, c := range []struct {
		name    string
		perConn int
		answer  string
	}{
		{"connection close", 1, "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n"},
		{"hang up", 1, "HTTP/1.1 204 No Content\r\n\r\n"},
		{"HTTP/1.0", 1, "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"},
		{"every 3", 3, "HTTP/1.1 204 No Content\r\n\r\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var mu sync.Mutex
			var got []int
			conns := 0
			url := scriptedReceiver(t, func(conn net.Conn, br *bufio.Reader) {
				mu.Lock()
				conns++
				mu.Unlock()
				for range c.perConn {
					id, err := readEventID(br)
					if err != nil {
						return
					}
					mu.Lock()
					got = append(got, id)
					mu.Unlock()
					if _, err := conn.Write([]byte(c.answer)); err != nil {
						return
					}
				}
			})
			s, err := newSender(url, "test", 5*time.Second, 16, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer s.close()
			window(s, 1, 10)
			if n, err := s.send(context.Background()); n != 10 || err != nil {
				t.Fatalf("%d answered, %v", n, err)
			}
			mu.Lock()
			defer mu.Unlock()
			if want := []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}; !slices.Equal(got, want) {
				t.Fatalf("the receiver got %v, want %v", got, want)
			}
			if want := (10 + c.perConn - 1) / c.perConn; conns != want {
				t.Fatalf("%d connections, want %d", conns, want)
			}
			if want := map[bool]int{true: 1, false: 16}[c.perConn == 1]; s.window() != want {
				t.Fatalf("window %d after, want %d", s.window(), want)
			}
		})
	}
}
