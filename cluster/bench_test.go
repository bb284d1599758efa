package cluster

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/omnirouter/omnirouter/capacity"
	"github.com/omnirouter/omnirouter/routing"
)

// BenchmarkPropose commits UpsertAgent commands on a three-node in-process
// cluster (TCP transport, raft-boltdb with fsync in t.TempDir()), proposed on
// the leader by 1, 16 and 64 concurrent proposers, with batching off
// (MaxBatch 1: one log entry per command; raft still groups entries into one
// disk write) and on (MaxBatch 256: one log entry per batch).
//
// Measured with (2 cores shared with other work, so ±20%):
//
//	go test -run '^$' -bench BenchmarkPropose -benchtime 3s ./cluster/
//
//	batch=off/proposers=1     1091922 ns/op    916 cmds/s   1.0 cmds/entry
//	batch=off/proposers=16     129910 ns/op   7698 cmds/s   1.0 cmds/entry
//	batch=off/proposers=64      60132 ns/op  16630 cmds/s   1.0 cmds/entry
//	batch=on/proposers=1       936060 ns/op   1068 cmds/s   1.0 cmds/entry
//	batch=on/proposers=16      110572 ns/op   9044 cmds/s   8.0 cmds/entry
//	batch=on/proposers=64       36765 ns/op  27200 cmds/s  32.1 cmds/entry
//	batch=off/via=follower/proposers=64   99654 ns/op  10035 cmds/s
//	batch=on/via=follower/proposers=64    75470 ns/op  13250 cmds/s
//
// With forwards batched on the follower (one request in flight):
//
//	batch=on/via=follower/proposers=64    39371 ns/op  25399 cmds/s  32 cmds/forward
//
// Before the in-flight limit (batcher cutting an entry as soon as raft took
// the previous one) batch=on gave 1.03 cmds/entry and no gain over off.
func BenchmarkPropose(b *testing.B) {
	for _, batch := range []struct {
		name string
		max  int
	}{{"off", 1}, {"on", 256}} {
		b.Run("batch="+batch.name, func(b *testing.B) {
			c := newCluster(b, clusterOpts{n: 3, maxBatch: batch.max})
			leader := c.waitLeader(nil)
			for _, proposers := range []int{1, 16, 64} {
				b.Run(fmt.Sprintf("proposers=%d", proposers), func(b *testing.B) {
					benchPropose(b, leader.node, proposers)
				})
			}
			// Through a follower: commands are forwarded over HTTP, batched.
			b.Run("via=follower/proposers=64", func(b *testing.B) {
				benchPropose(b, c.follower(leader).node, 64)
			})
		})
	}
}

func benchPropose(b *testing.B, n *Node, proposers int) {
	var seq atomic.Uint64
	one := func() {
		i := seq.Add(1)
		cmd := routing.UpsertAgent{ID: fmt.Sprintf("a%d", i%1000), Name: "bench", Capacity: capacity.Limits{2, 3}}
		res, err := n.Propose(context.Background(), "", cmd)
		if err != nil || res.Outcome.Err != nil {
			b.Errorf("propose: %v / %v", err, res.Outcome.Err)
		}
	}
	before := n.Status().Stats
	b.ResetTimer()
	if proposers == 1 {
		for range b.N {
			one()
		}
	} else {
		b.SetParallelism(max(1, proposers/runtime.GOMAXPROCS(0)))
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				one()
			}
		})
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "cmds/s")
	after := n.Status().Stats
	if e := after.Entries - before.Entries; e > 0 {
		b.ReportMetric(float64(after.Commands-before.Commands)/float64(e), "cmds/entry")
	}
	if r := after.ForwardRequests - before.ForwardRequests; r > 0 {
		b.ReportMetric(float64(after.Forwarded-before.Forwarded)/float64(r), "cmds/forward")
	}
}
