package httpbody

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestRead: bodies with and without Content-Length are read whole, and a
// body over the limit is refused with *http.MaxBytesError either way.
func TestRead(t *testing.T) {
	for _, tc := range []struct {
		name    string
		body    string
		length  int64 // -1: unknown (chunked)
		limit   int64
		wantErr bool
	}{
		{"sized", "hello world", 11, 100, false},
		{"unsized", "hello world", -1, 100, false},
		{"empty", "", 0, 100, false},
		{"at the limit", "12345", 5, 5, false},
		{"over the limit, sized", "123456", 6, 5, true},
		{"over the limit, unsized", "123456", -1, 5, true},
		{"shorter than declared", "abc", 10, 100, true}, // a client that hung up
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/", io.NopCloser(strings.NewReader(tc.body)))
			r.ContentLength = tc.length
			got, err := Read(httptest.NewRecorder(), r, tc.limit)
			var mbe *http.MaxBytesError
			if tc.wantErr {
				if !errors.As(err, &mbe) && !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("err %v, want *http.MaxBytesError or io.ErrUnexpectedEOF", err)
				}
				return
			}
			if err != nil || string(got) != tc.body {
				t.Fatalf("got %q, %v; want %q", got, err, tc.body)
			}
		})
	}
}

// TestReadSized: a peer's answer (no server-side limit reader) is read
// whole whether or not its length was declared, and one shorter than
// declared is an error, not a short body.
func TestReadSized(t *testing.T) {
	// 11: sized; -1: unknown; over the presize cap: read as it comes.
	for _, declared := range []int64{11, -1, maxPresize + 1} {
		got, err := ReadSized(strings.NewReader("hello world"), declared, 1<<30)
		if err != nil || string(got) != "hello world" {
			t.Fatalf("declared %d: got %q, %v", declared, got, err)
		}
	}
	if _, err := ReadSized(strings.NewReader("abc"), 10, 100); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("short body: %v, want io.ErrUnexpectedEOF", err)
	}
}
