package loadgen

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// TestClientNodeChoice: a client with a home node sends every request
// there, and moves on to the next node only when its home fails; without a
// home, requests rotate over all nodes.
func TestClientNodeChoice(t *testing.T) {
	var hits [3]atomic.Int64
	var down [3]atomic.Bool
	var targets []string
	for i := range 3 {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits[i].Add(1)
			if down[i].Load() {
				w.WriteHeader(http.StatusServiceUnavailable)
				w.Write([]byte(`{"error":{"code":"no_leader","message":"down"}}`))
				return
			}
			w.Write([]byte(`{}`))
		}))
		defer srv.Close()
		targets = append(targets, srv.URL)
	}
	c, err := newClient(targets, "", 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	counts := func() [3]int64 {
		var out [3]int64
		for i := range hits {
			out[i] = hits[i].Swap(0)
		}
		return out
	}

	ctx := context.Background()
	for range 9 {
		if err := c.do(withHome(ctx, 4), "GET", "/x", "", nil, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	if got := counts(); got != [3]int64{0, 9, 0} {
		t.Fatalf("home 4 of 3 nodes: hits %v, want all on node 1", got)
	}

	down[1].Store(true)
	if err := c.do(withHome(ctx, 1), "POST", "/x", "k", map[string]string{}, nil, nil); err != nil {
		t.Fatal(err)
	}
	if got := counts(); got != [3]int64{0, 1, 1} {
		t.Fatalf("home down: hits %v, want one failed try there, then node 2", got)
	}
	down[1].Store(false)

	for range 9 {
		if err := c.do(ctx, "GET", "/x", "", nil, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	if got := counts(); got != [3]int64{3, 3, 3} {
		t.Fatalf("no home: hits %v, want an even rotation", got)
	}
}
