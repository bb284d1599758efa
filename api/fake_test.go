package api

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/omnirouter/omnirouter/internal/testutil"
	"github.com/omnirouter/omnirouter/routing"
)

// fakeCluster is a single-process Cluster: a real routing.Machine behind a
// mutex, with a clock the test controls. Errors can be injected.
type fakeCluster struct {
	mu      sync.Mutex
	m       *routing.Machine
	now     time.Time
	changed chan struct{} // closed and replaced after every apply
	id      string

	proposeErr error // returned by Propose when set
	readErr    error // returned by Read when set
	// linearErr is returned by reads at any level but Stale: a follower
	// that cannot reach its leader.
	linearErr error
	readyErr  error
	// removedNode makes Status report this node removed.
	removedNode bool
	waiters     int // goroutines parked in WaitEvents
	joined      []string
	removed     []string
}

func newFakeCluster() *fakeCluster {
	return &fakeCluster{
		m:       routing.New(),
		now:     time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC),
		changed: make(chan struct{}),
		id:      "fake1",
	}
}

func (f *fakeCluster) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// advance moves the fake clock and lets due deadlines fire with a Tick.
func (f *fakeCluster) advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.mu.Unlock()
	_, _ = f.Propose(context.Background(), "", routing.Tick{})
}

func (f *fakeCluster) setErrs(propose, read error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.proposeErr, f.readErr = propose, read
}

func (f *fakeCluster) Propose(ctx context.Context, key string, cmd routing.Command) (Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.proposeErr != nil {
		return Result{}, f.proposeErr
	}
	out := f.m.Apply(f.now.UnixMilli(), key, cmd)
	close(f.changed)
	f.changed = make(chan struct{})
	return Result{Outcome: out, ServedBy: f.id, Index: 1}, nil
}

func (f *fakeCluster) Read(ctx context.Context, level ReadLevel, fn func(m *routing.Machine)) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.readErr != nil {
		return "", f.readErr
	}
	if f.linearErr != nil && level != Stale {
		return "", f.linearErr
	}
	fn(f.m)
	return f.id, nil
}

func (f *fakeCluster) Clone(ctx context.Context, level ReadLevel) (*routing.Machine, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.readErr != nil {
		return nil, "", f.readErr
	}
	return f.m.Clone(), f.id, nil
}

func (f *fakeCluster) WaitEvents(ctx context.Context, after uint64) error {
	for {
		f.mu.Lock()
		last, ch := f.m.LastEventID(), f.changed
		f.mu.Unlock()
		if last > after {
			return nil
		}
		f.setWaiters(+1)
		select {
		case <-ctx.Done():
			f.setWaiters(-1)
			return ctx.Err()
		case <-ch:
			f.setWaiters(-1)
		}
	}
}

func (f *fakeCluster) Status() Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	return Status{ID: f.id, State: "Leader", Removed: f.removedNode, LeaderID: f.id, LeaderHTTP: "http://127.0.0.1:0", Term: 2, CommitIndex: 7, AppliedIndex: 7,
		Nodes: []NodeInfo{{ID: f.id, RaftAddr: "127.0.0.1:7000", HTTPAddr: "http://127.0.0.1:8080", Voter: true, Leader: true}}}
}

func (f *fakeCluster) ClusterStatus(ctx context.Context) Status { return f.Status() }

func (f *fakeCluster) Ready() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.readyErr
}

func (f *fakeCluster) Join(ctx context.Context, id, raftAddr, httpAddr string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.proposeErr != nil {
		return f.proposeErr
	}
	f.joined = append(f.joined, id)
	return nil
}

func (f *fakeCluster) Remove(ctx context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.removed = append(f.removed, id)
	return nil
}

func (f *fakeCluster) Backup(ctx context.Context, w io.Writer) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.m.WriteSnapshot(w)
}

func (f *fakeCluster) RestoreBackup(ctx context.Context, r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m, err := routing.ReadSnapshot(bytes.NewReader(b))
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.m = m
	return nil
}

func (f *fakeCluster) setWaiters(d int) {
	f.mu.Lock()
	f.waiters += d
	f.mu.Unlock()
}

// waitForWaiters polls until n goroutines are parked in WaitEvents.
func (f *fakeCluster) waitForWaiters(t testing.TB, n int) {
	t.Helper()
	testutil.Until(t, 10*time.Second, "goroutines waiting for events", func() error {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.waiters < n {
			return fmt.Errorf("%d waiting, want %d", f.waiters, n)
		}
		return nil
	})
}
