package cluster

import (
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/omnirouter/omnirouter/internal/testutil"
)

// Shutdown's drain waits for a heartbeat that is being handled (it would
// write the term to the stable store) and refuses the ones after it.
func TestHeartbeatGate(t *testing.T) {
	var g heartbeatGate
	entered, release := make(chan struct{}), make(chan struct{})
	calls := 0
	h := g.wrap(func(rpc raft.RPC) {
		calls++
		close(entered)
		<-release
		rpc.Respond(nil, nil)
	})
	firstResp := make(chan raft.RPCResponse, 1)
	go h(raft.RPC{RespChan: firstResp})
	<-entered

	drained := make(chan bool, 1)
	go func() { drained <- g.drain(time.Minute) }()
	testutil.Until(t, 10*time.Second, "drain to begin", func() error {
		if !g.refusing() {
			return errors.New("still accepting heartbeats")
		}
		return nil
	})
	select {
	case <-drained:
		t.Fatal("drain returned while a heartbeat was being handled")
	default:
	}
	close(release)
	if ok := <-drained; !ok {
		t.Fatal("drain timed out")
	}
	if r := <-firstResp; r.Error != nil {
		t.Fatalf("the heartbeat in flight was answered with %v", r.Error)
	}

	lateResp := make(chan raft.RPCResponse, 1)
	h(raft.RPC{RespChan: lateResp})
	if r := <-lateResp; !errors.Is(r.Error, raft.ErrTransportShutdown) {
		t.Fatalf("a heartbeat after drain got %v, want ErrTransportShutdown", r.Error)
	}
	if calls != 1 {
		t.Fatalf("handler ran %d times, want 1", calls)
	}
}

// A heartbeat handler that never returns cannot hang shutdown.
func TestHeartbeatGateTimesOut(t *testing.T) {
	var g heartbeatGate
	entered, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	h := g.wrap(func(raft.RPC) { close(entered); <-release })
	go h(raft.RPC{RespChan: make(chan raft.RPCResponse, 1)})
	<-entered
	if g.drain(50 * time.Millisecond) {
		t.Fatal("drain reported success with a handler still running")
	}
}

// The wrapper keeps the optional interfaces raft looks for.
func TestGatedTransportKeepsRaftInterfaces(t *testing.T) {
	var tr raft.Transport = &gatedTransport{}
	if _, ok := tr.(raft.WithClose); !ok {
		t.Error("gatedTransport lost WithClose: raft would not close it on shutdown")
	}
	if _, ok := tr.(raft.WithPreVote); !ok {
		t.Error("gatedTransport lost WithPreVote: raft would disable pre-vote")
	}
}
