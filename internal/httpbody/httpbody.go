// Package httpbody reads an HTTP body whole, at most a limit, into a buffer
// sized from Content-Length when the peer sent one: io.ReadAll starts at
// 512 bytes and doubles, copying as it grows (it was the largest single
// allocation site of a leader serving forwarded batches).
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
	return ReadSized(http.MaxBytesReader(w, r.Body, limit), r.ContentLength, limit)
}

// ReadSized reads body whole. declared is its Content-Length (-1 when
// unknown) and limit the most it may hold; body must itself stop at limit
// (http.MaxBytesReader, io.LimitReader): ReadSized only sizes the buffer.
// net/http frames a body with a Content-Length at that length, so one
// shorter than declared is io.ErrUnexpectedEOF.
func ReadSized(body io.Reader, declared, limit int64) ([]byte, error) {
	if declared >= 0 && declared <= min(limit, maxPresize) {
		// A declared length is only a claim: what is reserved before any
		// byte arrives is capped (longer bodies grow as they come).
		buf := make([]byte, declared)
		if _, err := io.ReadFull(body, buf); err != nil {
			return nil, err
		}
		return buf, nil
	}
	return io.ReadAll(body)
}
