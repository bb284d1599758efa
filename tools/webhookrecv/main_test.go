package main

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"testing"

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
