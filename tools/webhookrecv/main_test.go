package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/omnirouter/omnirouter/cluster/webhook"
)

// TestReceiver: signed deliveries are taken and counted (a repeat as a
// duplicate, a lower id after a higher one as out of order), a forged one
// is refused, and the counters are served.
func TestReceiver(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { _ = newReceiver("s3cret").run(ln) }()
	url := "http://" + ln.Addr().String() + "/hook"
	post := func(id int, secret string) int {
		t.Helper()
		body := []byte(`{"id":` + strconv.Itoa(id) + `}`)
		req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
		req.Header.Set("Omnirouter-Event-Id", strconv.Itoa(id))
		req.Header.Set("Omnirouter-Timestamp", "1700000000")
		req.Header.Set("Omnirouter-Signature", webhook.Sign(secret, 1700000000, body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, c := range []struct {
		id     int
		secret string
		want   int
	}{{1, "s3cret", 204}, {3, "s3cret", 204}, {3, "s3cret", 204}, {2, "s3cret", 204}, {4, "guess", 401}} {
		if got := post(c.id, c.secret); got != c.want {
			t.Fatalf("event %d signed with %q: %d, want %d", c.id, c.secret, got, c.want)
		}
	}
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st stats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	if st != (stats{Requests: 5, Delivered: 3, Duplicates: 1, BadSignatures: 1, OutOfOrder: 1, MaxID: 3}) {
		t.Fatalf("stats %+v", st)
	}
}

// TestPipelined: requests written together on one connection are all
// answered, in order, in one write (the first read takes them all).
func TestPipelined(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { _ = newReceiver("s3cret").run(ln) }()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var reqs []byte
	for id := 1; id <= 16; id++ {
		body := []byte(`{"id":` + strconv.Itoa(id) + `}`)
		secret := "s3cret"
		if id == 5 {
			secret = "guess"
		}
		reqs = fmt.Appendf(reqs, "POST /hook HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nOmnirouter-Event-Id: %d\r\nOmnirouter-Timestamp: 1700000000\r\nOmnirouter-Signature: %s\r\n\r\n%s",
			len(body), id, webhook.Sign(secret, 1700000000, body), body)
	}
	if _, err := c.Write(reqs); err != nil {
		t.Fatal(err)
	}
	// The answers, all 16 (27 bytes each, 49 for the refused one), in
	// one read.
	const size = 15*len("HTTP/1.1 204 No Content\r\n\r\n") + len("HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n")
	buf := make([]byte, 2*size)
	if err := c.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	if n != size {
		t.Fatalf("%d bytes of answers in the first read, want all %d: %q", n, size, buf[:n])
	}
	br := bufio.NewReader(bytes.NewReader(buf[:n]))
	for id := 1; id <= 16; id++ {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("answer %d of %q: %v", id, buf[:n], err)
		}
		want := 204
		if id == 5 {
			want = 401
		}
		if resp.StatusCode != want {
			t.Fatalf("answer %d: %d, want %d", id, resp.StatusCode, want)
		}
	}
}
