// Package httpbody reads a request body whole, at most a limit, into a
// buffer sized from Content-Length when the client sent one: io.ReadAll
// starts at 512 bytes and doubles, copying as it grows (it was the largest
// single allocation site of a leader serving forwarded batches).
package httpbody

import (
	"io"
	"net/http"
)

// maxPresize bounds the buffer reserved from a Content-Length header.
const maxPresize = 256 << 10

// Read returns r's body (r is a request a server received), or an error
// wrapping *http.MaxBytesError when it is longer than limit (the connection
// is then closed after the answer, as http.MaxBytesReader does).
func Read(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	body := http.MaxBytesReader(w, r.Body, limit)
	if n := r.ContentLength; n >= 0 && n <= min(limit, maxPresize) {
		// A declared length is only a claim: what is reserved before any
		// byte arrives is capped (longer bodies grow as they come). A
		// server request's body ends at its Content-Length (net/http frames
		// it so); one shorter than declared is io.ErrUnexpectedEOF.
		buf := make([]byte, n)
		if _, err := io.ReadFull(body, buf); err != nil {
			return nil, err
		}
		return buf, nil
	}
	return io.ReadAll(body)
}
