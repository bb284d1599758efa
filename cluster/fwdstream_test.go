package cluster

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/omnirouter/omnirouter/cluster/forward"
	"github.com/omnirouter/omnirouter/internal/testutil"
	"github.com/omnirouter/omnirouter/internal/wire"
	"github.com/omnirouter/omnirouter/routing"
)

// proposeMany proposes count commands (keys key-i, agents i) through tn at
// once and returns every caller's result.
func proposeMany(t *testing.T, tn *testNode, key string, count int) ([]Result, []error) {
	t.Helper()
	return proposeEach(tn, count, 10*time.Second, func(i int) (string, routing.Command) {
		return fmt.Sprintf("%s-%d", key, i), agentCmd(i)
	})
}

// proposeEach proposes count commands through tn at once, each with its
// own deadline, and returns every caller's first answer: unlike
// proposeConcurrently it does not retry, so an ambiguous outcome shows.
func proposeEach(tn *testNode, count int, timeout time.Duration, command func(i int) (string, routing.Command)) ([]Result, []error) {
	results := make([]Result, count)
	errs := make([]error, count)
	var wg sync.WaitGroup
	for i := range count {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key, cmd := command(i)
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			results[i], errs[i] = tn.node.Propose(ctx, key, cmd)
		}()
	}
	wg.Wait()
	return results, errs
}

// TestForwardStream: concurrent writes through a follower travel on one
// stream to the leader, each caller gets its own outcome, and retries with
// the same keys are replayed.
func TestForwardStream(t *testing.T) {
	c := newCluster(t, clusterOpts{n: 3, inmem: true})
	leader := c.waitLeader(nil)
	f := c.follower(leader)

	const count = 300
	before := f.node.Status().Stats
	results, errs := proposeMany(t, f, "stream", count)
	checkAgentOutcomes(t, leader, results, errs)
	after := f.node.Status().Stats
	if cmds := after.Forwarded - before.Forwarded; cmds != count {
		t.Errorf("forwarded %d commands, want %d", cmds, count)
	}
	if n := leader.streamsOpened.Load(); n != 1 {
		t.Errorf("the leader accepted %d forward streams, want 1", n)
	}
	t.Logf("%d commands in %d stream writes", count, after.ForwardRequests-before.ForwardRequests)

	results, errs = proposeMany(t, f, "stream", 20)
	checkReplayed(t, results, errs)
	if n := leader.streamsOpened.Load(); n != 1 {
		t.Errorf("the stream was not kept: %d opened", n)
	}
	c.checkConverged()
}

// TestForwardStreamFollowsTheLeader: after a leadership change the
// follower opens a stream to the new leader, and its writes keep working;
// the stream to the old leader is closed once it carries nothing, and so
// is a node's stream once it leads.
func TestForwardStreamFollowsTheLeader(t *testing.T) {
	c := newCluster(t, clusterOpts{n: 3, inmem: true})
	old := c.waitLeader(nil)
	f := c.follower(old)
	other := c.third(old, f)
	propose(t, f, "before", agentCmd(1))
	if old.streamsOpened.Load() != 1 {
		t.Fatalf("no stream to the first leader")
	}

	c.transferLeadership(old, other)
	res := propose(t, f, "after", agentCmd(2))
	if res.ServedBy != other.cfg.NodeID {
		t.Errorf("served by %s, want the new leader %s", res.ServedBy, other.cfg.NodeID)
	}
	if other.streamsOpened.Load() != 1 {
		t.Errorf("the new leader accepted %d streams, want 1", other.streamsOpened.Load())
	}
	// The retired stream is closed by its watcher.
	testutil.Until(t, 10*time.Second, "the old stream closed", func() error {
		if n := f.node.Status().Stats.ForwardStreams; n != 1 {
			return fmt.Errorf("%d follower streams open", n)
		}
		return nil
	})

	// Once the follower leads itself it forwards nothing: its stream closes
	// without another command.
	c.transferLeadership(other, f)
	testutil.Until(t, 10*time.Second, "the new leader's own stream closed", func() error {
		if n := f.node.Status().Stats.ForwardStreams; n != 0 {
			return fmt.Errorf("%d streams open", n)
		}
		return nil
	})
	c.checkConverged()
}

// TestForwardStreamStalledLeader: a leader that stops reading (a paused
// process) leaves the follower's commands unanswered, and big ones fill the
// stream until a write stalls; the follower closes the stream after
// streamStallTimeout (or half the apply timeout without an answer), its
// callers get ErrAmbiguous then instead of at their deadlines, and its
// forwarder is free for the next command.
func TestForwardStreamStalledLeader(t *testing.T) {
	c := newCluster(t, clusterOpts{n: 3, inmem: true})
	leader := c.waitLeader(nil)
	f := c.follower(leader)
	leader.stallStreams.Store(true)
	// More than the loopback socket buffers hold, so a write blocks.
	big := strings.Repeat("x", 512<<10)
	// A minute is far beyond the watchdog's limits: a command that reaches
	// its deadline was not ended by them.
	_, errs := proposeEach(f, 64, time.Minute, func(i int) (string, routing.Command) {
		return fmt.Sprintf("big-%d", i), routing.UpsertAgent{ID: fmt.Sprintf("big%d", i), Name: big}
	})
	stalled := 0
	for i, err := range errs {
		switch {
		case err == nil:
			t.Errorf("command %d succeeded on a leader that reads nothing", i)
		case !errors.Is(err, ErrAmbiguous):
			t.Errorf("command %d: %v, want ErrAmbiguous", i, err)
		case strings.Contains(err.Error(), "stalled"):
			stalled++
		case !strings.Contains(err.Error(), "no answer"):
			t.Errorf("command %d was not ended by the watchdog: %v", i, err)
		}
	}
	if stalled == 0 {
		t.Errorf("no write stalled: %v", errs[0])
	}
	if n := f.node.Status().Stats.ForwardStreams; n != 0 {
		t.Errorf("%d streams still open", n)
	}
	leader.stallStreams.Store(false)
	propose(t, f, "after-stall", agentCmd(1))
	c.checkConverged()
}

// openRawStream asks url's node for a forward stream, as a follower does,
// and returns the connection (nil unless it answered 101) and the status.
func openRawStream(t *testing.T, url string) (io.ReadWriteCloser, *bufio.Reader, int) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url+forward.Path, nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "omnirouter-forward/1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err := forward.ReadStatus(wire.NewDecoder(body)); !errors.Is(err, forward.ErrRetry) {
			t.Errorf("refused upgrade answered %q (%v), want status RETRY", body, err)
		}
		return nil, nil, resp.StatusCode
	}
	rwc := resp.Body.(io.ReadWriteCloser)
	t.Cleanup(func() { rwc.Close() })
	return rwc, bufio.NewReader(rwc), resp.StatusCode
}

// TestForwardStreamOnlyOnTheLeader: a node that is not leader refuses the
// upgrade with RETRY (nothing happened); a stream whose node stops leading
// answers each later command RETRY, and nothing of it is applied. The test
// speaks the stream's frames itself: a uvarint length, then the payload
// (to the leader: tag, command; back: tag, status, message).
func TestForwardStreamOnlyOnTheLeader(t *testing.T) {
	c := newCluster(t, clusterOpts{n: 3, inmem: true})
	leader := c.waitLeader(nil)
	f := c.follower(leader)
	if _, _, status := openRawStream(t, f.srv.URL); status != http.StatusOK {
		t.Fatalf("upgrade on a follower: HTTP %d, want 200 with RETRY", status)
	}

	rwc, br, _ := openRawStream(t, leader.srv.URL)
	if rwc == nil {
		t.Fatal("the leader refused a stream")
	}
	c.transferLeadership(leader, f)
	var pl wire.Encoder
	pl.Uvarint(7)
	e := commandEntry(0, "deposed", agentCmd(77))
	pl.Bytes(encodeEntry(&e))
	frame := binary.AppendUvarint(nil, uint64(len(pl.Buf)))
	if _, err := rwc.Write(append(frame, pl.Buf...)); err != nil {
		t.Fatal(err)
	}
	size, err := binary.ReadUvarint(br)
	if err != nil {
		t.Fatal(err)
	}
	answer := make([]byte, size)
	if _, err := io.ReadFull(br, answer); err != nil {
		t.Fatal(err)
	}
	d := wire.NewDecoder(answer)
	tag := d.Uvarint()
	status := forward.ReadStatus(d)
	if d.Err() != nil || tag != 7 || !errors.Is(status, forward.ErrRetry) {
		t.Fatalf("answer on a deposed leader's stream: tag %d, %v (%v), want 7 and RETRY", tag, status, d.Err())
	}
	c.checkConverged()
	var applied bool
	f.node.Read(context.Background(), Stale, func(m *routing.Machine) { _, applied = m.Agent(agentCmd(77).ID) })
	if applied {
		t.Error("a command answered RETRY was applied")
	}
}
