// Command webhookrecv is a webhook receiver for load measurements
// (scripts/webhook-bench.sh): it verifies every delivery's signature,
// answers 204, and counts deliveries, duplicates, bad signatures and
// first deliveries that came after a higher event id. It reads requests
// itself, one goroutine per connection, so that the receiver costs the
// machine it shares with the nodes as little as a receiver can: answers
// are buffered and written once no further request is buffered, so a
// window of pipelined deliveries costs it one read and one write. GET
// /stats (any path) answers the counters as JSON.
//
//	go run ./tools/webhookrecv --addr 127.0.0.1:9299 --secret whsec_bench
package main

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"io"
	"log"
	"net"
	"strconv"
	"sync"
)

type stats struct {
	Requests      int    `json:"requests"`
	Delivered     int    `json:"delivered"`
	Duplicates    int    `json:"duplicates"`
	BadSignatures int    `json:"bad_signatures"`
	OutOfOrder    int    `json:"out_of_order"`
	MaxID         uint64 `json:"max_id"`
}

type receiver struct {
	secret []byte
	mu     sync.Mutex
	seen   map[uint64]bool
	st     stats
}

func main() {
	addr := flag.String("addr", "127.0.0.1:9299", "listen address")
	secret := flag.String("secret", "whsec_bench", "the subscription's secret")
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	log.Fatal(newReceiver(*secret).run(ln))
}

func newReceiver(secret string) *receiver {
	return &receiver{secret: []byte(secret), seen: map[uint64]bool{}}
}

// run serves the connections ln accepts until it fails.
func (r *receiver) run(ln net.Listener) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go r.serve(c)
	}
}

// request is what the receiver reads of one request.
type request struct {
	method  string
	id      uint64
	ts, sig []byte
	body    []byte
}

func (r *receiver) serve(c net.Conn) {
	defer c.Close()
	br, bw := bufio.NewReaderSize(c, 16<<10), bufio.NewWriterSize(c, 4096)
	mac := hmac.New(sha256.New, r.secret)
	var req request
	var sum, want []byte
	for {
		// The answers so far go once no further request is buffered: the
		// client waits for them before it sends more.
		if br.Buffered() == 0 && bw.Buffered() > 0 {
			if err := bw.Flush(); err != nil {
				return
			}
		}
		if err := readRequest(br, &req); err != nil {
			return
		}
		if req.method == "GET" {
			r.mu.Lock()
			b, _ := json.Marshal(r.st)
			r.mu.Unlock()
			_, _ = bw.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(b)) + "\r\n\r\n")
			_, _ = bw.Write(b)
			continue
		}
		mac.Reset()
		mac.Write(req.ts)
		mac.Write([]byte{'.'})
		mac.Write(req.body)
		sum = mac.Sum(sum[:0])
		want = append(append(want[:0], "v1="...), hex.EncodeToString(sum)...)
		ok := hmac.Equal(want, req.sig)
		r.count(req.id, ok)
		answer := "HTTP/1.1 204 No Content\r\n\r\n"
		if !ok {
			answer = "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n"
		}
		if _, err := bw.WriteString(answer); err != nil {
			return
		}
	}
}

func (r *receiver) count(id uint64, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.st.Requests++
	switch {
	case !ok:
		r.st.BadSignatures++
	case r.seen[id]:
		r.st.Duplicates++
	default:
		if id < r.st.MaxID {
			r.st.OutOfOrder++
		}
		r.seen[id] = true
		r.st.Delivered++
		r.st.MaxID = max(r.st.MaxID, id)
	}
}

// readRequest reads one HTTP/1.1 request with a Content-Length body (what
// omnirouter sends) into req, reusing its buffers.
func readRequest(br *bufio.Reader, req *request) error {
	req.id, req.ts, req.sig = 0, req.ts[:0], req.sig[:0]
	n := 0
	for first := true; ; first = false {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		if first {
			m, _, _ := bytes.Cut(line, []byte(" "))
			req.method = string(m)
			continue
		}
		k, v, _ := bytes.Cut(line, []byte(":"))
		v = bytes.TrimSpace(v)
		switch {
		case bytes.EqualFold(k, []byte("Content-Length")):
			n, _ = strconv.Atoi(string(v))
		case bytes.EqualFold(k, []byte("Omnirouter-Event-Id")):
			req.id, _ = strconv.ParseUint(string(v), 10, 64)
		case bytes.EqualFold(k, []byte("Omnirouter-Timestamp")):
			req.ts = append(req.ts, v...)
		case bytes.EqualFold(k, []byte("Omnirouter-Signature")):
			req.sig = append(req.sig, v...)
		}
	}
	if cap(req.body) < n {
		req.body = make([]byte, n)
	}
	req.body = req.body[:n]
	_, err := io.ReadFull(br, req.body)
	return err
}
