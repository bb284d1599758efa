package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The tool speaks HTTP/1.1 over its own keep-alive connections instead of
// net/http's Transport. It shares the machine's cores with the cluster it
// measures, and the Transport spends two goroutine hand-offs (its read and
// write loops) and a connection-pool lookup on every request: about half of
// the tool's CPU at 64 clients. Here the calling goroutine writes the
// request and reads the answer on a connection it owns for the call.
// Responses are read by readAnswer: sized, chunked and close-delimited
// bodies, "Connection: close", interim answers.

// requestTimeout bounds one request whose context has no deadline.
const requestTimeout = 30 * time.Second

// origin is one node's connections.
type origin struct {
	hostport, host string
	tls            *tls.Config
	idle           chan *httpConn // keep-alive connections not in use
}

func newOrigin(base string, tlsConfig *tls.Config, maxIdle int) (*origin, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("target %q: %w", base, err)
	}
	o := &origin{host: u.Host, hostport: u.Host, idle: make(chan *httpConn, maxIdle)}
	switch u.Scheme {
	case "http":
		if u.Port() == "" {
			o.hostport = net.JoinHostPort(u.Hostname(), "80")
		}
	case "https":
		if u.Port() == "" {
			o.hostport = net.JoinHostPort(u.Hostname(), "443")
		}
		o.tls = &tls.Config{}
		if tlsConfig != nil {
			o.tls = tlsConfig.Clone()
		}
		if o.tls.ServerName == "" {
			o.tls.ServerName = u.Hostname()
		}
		o.tls.NextProtos = []string{"http/1.1"}
	default:
		return nil, fmt.Errorf("target %q: scheme must be http or https", base)
	}
	return o, nil
}

// httpConn is one keep-alive connection, used by one request at a time.
type httpConn struct {
	nc  net.Conn
	br  *bufio.Reader
	bw  *bufio.Writer
	buf bytes.Buffer // the last response body
}

// get takes an idle connection or dials a new one.
func (o *origin) get(ctx context.Context) (*httpConn, error) {
	select {
	case c := <-o.idle:
		return c, nil
	default:
	}
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	var nc net.Conn
	var err error
	if o.tls != nil {
		nc, err = (&tls.Dialer{NetDialer: d, Config: o.tls}).DialContext(ctx, "tcp", o.hostport)
	} else {
		nc, err = d.DialContext(ctx, "tcp", o.hostport)
	}
	if err != nil {
		return nil, err
	}
	return &httpConn{nc: nc, br: bufio.NewReaderSize(nc, 16<<10), bw: bufio.NewWriterSize(nc, 4<<10)}, nil
}

// put keeps c for the next request, or closes it when enough are idle.
func (o *origin) put(c *httpConn) {
	select {
	case o.idle <- c:
	default:
		c.nc.Close()
	}
}

// closeIdle closes every idle connection.
func (o *origin) closeIdle() {
	for {
		select {
		case c := <-o.idle:
			c.nc.Close()
		default:
			return
		}
	}
}

// roundTrip sends one request on c and returns the status and body (valid
// until c's next request). After an error c must be closed; otherwise
// reuse says whether the server keeps the connection open.
func (o *origin) roundTrip(ctx context.Context, c *httpConn, method, path string, hdr []string, payload []byte) (status int, body []byte, reuse bool, err error) {
	dl, ok := ctx.Deadline()
	if !ok {
		dl = time.Now().Add(requestTimeout)
	}
	if err := c.nc.SetDeadline(dl); err != nil {
		return 0, nil, false, fmt.Errorf("connection broken: %w", err)
	}
	// A cancelled context (not just an expired one) interrupts the
	// connection too, as it would with net/http.
	stop := context.AfterFunc(ctx, func() { c.nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	broken := func(err error) (int, []byte, bool, error) {
		// The connection's deadline is the context's: when it passes, the
		// read may fail a moment before the context reports it.
		if ok && !time.Now().Before(dl) {
			<-ctx.Done()
		}
		if ctx.Err() != nil {
			return 0, nil, false, ctx.Err()
		}
		return 0, nil, false, fmt.Errorf("connection broken: %w", err)
	}

	bw := c.bw
	bw.WriteString(method)
	bw.WriteByte(' ')
	bw.WriteString(path)
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(o.host)
	bw.WriteString("\r\n")
	for i := 0; i+1 < len(hdr); i += 2 {
		bw.WriteString(hdr[i])
		bw.WriteString(": ")
		bw.WriteString(hdr[i+1])
		bw.WriteString("\r\n")
	}
	if payload != nil {
		bw.WriteString("Content-Type: application/json\r\nContent-Length: ")
		var num [20]byte
		bw.Write(strconv.AppendInt(num[:0], int64(len(payload)), 10))
		bw.WriteString("\r\n\r\n")
		bw.Write(payload)
	} else {
		bw.WriteString("\r\n")
	}
	if err := bw.Flush(); err != nil {
		return broken(err)
	}
	status, reuse, err = c.readAnswer()
	if err != nil {
		return broken(err)
	}
	return status, c.buf.Bytes(), reuse, nil
}

// readAnswer reads one response into c.buf. It reads what a server may
// send an HTTP/1.1 client (interim 1xx answers, a sized, chunked or
// close-delimited body, Connection: close, HTTP/1.0) without building an
// http.Response: parsing with net/http was a tenth of the tool's CPU.
func (c *httpConn) readAnswer() (status int, reuse bool, err error) {
	for {
		line, err := c.readLine()
		if err != nil {
			return 0, false, err
		}
		proto, rest, _ := strings.Cut(line, " ")
		code, _, _ := strings.Cut(rest, " ")
		if len(code) != 3 || !strings.HasPrefix(proto, "HTTP/1.") {
			return 0, false, fmt.Errorf("malformed status line %q", line)
		}
		if status, err = strconv.Atoi(code); err != nil || status < 100 {
			return 0, false, fmt.Errorf("malformed status line %q", line)
		}
		reuse = proto != "HTTP/1.0"
		length, chunked := int64(-1), false
		for {
			line, err := c.readLine()
			if err != nil {
				return 0, false, err
			}
			if line == "" {
				break
			}
			name, value, ok := strings.Cut(line, ":")
			if !ok {
				return 0, false, fmt.Errorf("malformed header line %q", line)
			}
			value = strings.TrimSpace(value)
			switch {
			case strings.EqualFold(name, "Content-Length"):
				if length, err = strconv.ParseInt(value, 10, 64); err != nil || length < 0 {
					return 0, false, fmt.Errorf("bad Content-Length %q", value)
				}
			case strings.EqualFold(name, "Transfer-Encoding"):
				chunked = strings.EqualFold(value, "chunked")
				if !chunked {
					return 0, false, fmt.Errorf("unsupported Transfer-Encoding %q", value)
				}
			case strings.EqualFold(name, "Connection"):
				if strings.EqualFold(value, "close") {
					reuse = false
				} else if strings.EqualFold(value, "keep-alive") {
					reuse = true
				}
			}
		}
		if status < 200 {
			continue // interim answer: the real one follows
		}
		c.buf.Reset()
		switch {
		case status == http.StatusNoContent || status == http.StatusNotModified:
		case chunked:
			if _, err = c.buf.ReadFrom(httputil.NewChunkedReader(c.br)); err == nil {
				err = c.skipTrailer()
			}
		case length >= 0:
			_, err = io.CopyN(&c.buf, c.br, length)
		default:
			_, err = c.buf.ReadFrom(c.br) // until the server closes
			reuse = false
		}
		return status, reuse, err
	}
}

// skipTrailer reads a chunked body's trailer, up to its empty line.
func (c *httpConn) skipTrailer() error {
	for {
		line, err := c.readLine()
		if err != nil || line == "" {
			return err
		}
	}
}

// readLine reads one CRLF-terminated line (without the CRLF).
func (c *httpConn) readLine() (string, error) {
	b, err := c.br.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			err = errors.New("header line too long")
		}
		return "", err
	}
	return string(bytes.TrimRight(b, "\r\n")), nil
}
