package webhook

import (
	"bufio"
	"strings"
	"testing"
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
