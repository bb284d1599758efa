package api

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// benchServer is the API over the in-process fake cluster (a real routing
// machine behind a mutex): what these benchmarks measure is the HTTP layer —
// routing, JSON decoding and validation, auth, views, encoding.
func benchServer(b *testing.B) *Server {
	b.Helper()
	s := New(Config{Cluster: newFakeCluster()})
	for i := range 100 {
		id := fmt.Sprintf("a%03d", i)
		serve(b, s, "PUT", "/v1/agents/"+id, `{"name":"A","capacity":{"chat":50,"messaging":50}}`, http.StatusOK)
		serve(b, s, "PUT", "/v1/agents/"+id+"/status", `{"status":"online"}`, http.StatusOK)
	}
	return s
}

func serve(b *testing.B, s *Server, method, path, body string, want int) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	if rec.Code != want {
		b.Fatalf("%s %s: %d %s", method, path, rec.Code, rec.Body.String())
	}
	return rec
}

// BenchmarkHandlerCreateConversation is POST /v1/conversations end to end in
// the API layer.
func BenchmarkHandlerCreateConversation(b *testing.B) {
	s := benchServer(b)
	bodies := make([]string, b.N)
	for i := range bodies {
		bodies[i] = fmt.Sprintf(`{"id":"c%09d","channel":"chat","client":"web","message":"Hello, I need help with my order"}`, i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		serve(b, s, "POST", "/v1/conversations", bodies[i], http.StatusCreated)
	}
}

// BenchmarkHandlerGetConversation is GET /v1/conversations/{id}.
func BenchmarkHandlerGetConversation(b *testing.B) {
	s := benchServer(b)
	serve(b, s, "POST", "/v1/conversations", `{"id":"c1","channel":"chat","message":"hello"}`, http.StatusCreated)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		serve(b, s, "GET", "/v1/conversations/c1", "", http.StatusOK)
	}
}

// BenchmarkHandlerRejectsMalformed is a 400 (the cost of bad input).
func BenchmarkHandlerRejectsMalformed(b *testing.B) {
	s := benchServer(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		serve(b, s, "POST", "/v1/conversations", `{"channel":`, http.StatusBadRequest)
	}
}
