package forward

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/omnirouter/omnirouter/internal/testutil"
	"github.com/omnirouter/omnirouter/internal/wire"
)

// echo is a result that writes back the command it answers.
type echo []byte

func (e echo) AppendTo(enc *wire.Encoder) { enc.Bytes(e) }

// fakeLeader answers every command with its own bytes, at once or, when
// hold is set, never (a leader whose log does not commit).
type fakeLeader struct {
	leading  atomic.Bool
	hold     atomic.Bool
	refuse   atomic.Bool
	proposed atomic.Int64
}

func (l *fakeLeader) IsLeader() bool { return l.leading.Load() }

func (l *fakeLeader) Propose(cmd []byte, done func(Result, error)) error {
	if !l.leading.Load() {
		return fmt.Errorf("%w: not the leader", ErrRetry)
	}
	if l.refuse.Load() {
		return errors.New("undecodable command")
	}
	l.proposed.Add(1)
	if !l.hold.Load() {
		done(echo(append([]byte(nil), cmd...)), nil)
	}
	return nil
}

// leaderServer serves a fake leader's streams over real HTTP.
func leaderServer(t *testing.T) (*fakeLeader, *Server, *httptest.Server) {
	l := &fakeLeader{}
	l.leading.Store(true)
	s := NewServer(l)
	mux := http.NewServeMux()
	mux.Handle("POST "+Path, s)
	hs := httptest.NewServer(mux)
	t.Cleanup(func() {
		s.Close()
		hs.Close()
	})
	return l, s, hs
}

func newForwarder(t *testing.T, leader *atomic.Value, answerTimeout time.Duration) *Forwarder {
	f := NewForwarder(Config{HTTP: &http.Client{}, Leader: func() string { return leader.Load().(string) }, AnswerTimeout: answerTimeout})
	t.Cleanup(f.Close)
	return f
}

func forward(f *Forwarder, cmd string, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	d, err := f.Forward(ctx, []byte(cmd))
	if err != nil {
		return "", err
	}
	got := d.Bytes()
	if d.Err() != nil {
		return "", d.Err()
	}
	return string(got), nil
}

// TestStreamCarriesCommands: concurrent commands share one stream and
// fewer writes than commands, and each caller gets its own answer.
func TestStreamCarriesCommands(t *testing.T) {
	_, _, hs := leaderServer(t)
	var leader atomic.Value
	leader.Store(hs.URL)
	f := newForwarder(t, &leader, time.Second)
	const n = 300
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			want := fmt.Sprintf("cmd-%d", i)
			got, err := forward(f, want, 10*time.Second)
			if err == nil && got != want {
				err = fmt.Errorf("answer %q", got)
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("command %d: %v", i, err)
		}
	}
	if s := f.Streams(); s != 1 {
		t.Errorf("%d streams open, want 1", s)
	}
	if w := f.Writes(); w >= n {
		t.Errorf("%d writes for %d commands", w, n)
	}
}

// TestFollowerRefusesUpgrade: a node that does not lead answers the
// upgrade RETRY; the command was not sent anywhere.
func TestFollowerRefusesUpgrade(t *testing.T) {
	l, _, hs := leaderServer(t)
	l.leading.Store(false)
	var leader atomic.Value
	leader.Store(hs.URL)
	f := newForwarder(t, &leader, time.Second)
	if _, err := forward(f, "x", 5*time.Second); !errors.Is(err, ErrRetry) || errors.Is(err, ErrAmbiguous) {
		t.Fatalf("err = %v, want ErrRetry", err)
	}
	if l.proposed.Load() != 0 || f.Streams() != 0 {
		t.Fatalf("proposed %d, streams %d", l.proposed.Load(), f.Streams())
	}
}

// TestDeposedLeaderAnswersRetry: a stream accepted while the node led gets
// RETRY for each command once it no longer leads, never ambiguous.
func TestDeposedLeaderAnswersRetry(t *testing.T) {
	l, _, hs := leaderServer(t)
	var leader atomic.Value
	leader.Store(hs.URL)
	f := newForwarder(t, &leader, time.Second)
	if _, err := forward(f, "first", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	l.leading.Store(false)
	if _, err := forward(f, "second", 5*time.Second); !errors.Is(err, ErrRetry) || errors.Is(err, ErrAmbiguous) {
		t.Fatalf("err = %v, want ErrRetry", err)
	}
	if l.proposed.Load() != 1 {
		t.Fatalf("%d proposed, want 1", l.proposed.Load())
	}
}

// TestRefusedCommand: a command the leader refuses (it could not be
// queued for another reason than leadership) is *Refused.
func TestRefusedCommand(t *testing.T) {
	l, _, hs := leaderServer(t)
	l.refuse.Store(true)
	var leader atomic.Value
	leader.Store(hs.URL)
	f := newForwarder(t, &leader, time.Second)
	_, err := forward(f, "x", 5*time.Second)
	var r *Refused
	if !errors.As(err, &r) || !strings.Contains(r.Message, "undecodable") {
		t.Fatalf("err = %v, want *Refused", err)
	}
}

// TestBrokenStreamIsAmbiguous: commands written on a stream that breaks
// before their answers come are ErrAmbiguous: the leader may have
// committed them.
func TestBrokenStreamIsAmbiguous(t *testing.T) {
	l, s, hs := leaderServer(t)
	l.hold.Store(true)
	var leader atomic.Value
	leader.Store(hs.URL)
	f := newForwarder(t, &leader, time.Minute)
	errc := make(chan error, 1)
	go func() {
		_, err := forward(f, "held", 30*time.Second)
		errc <- err
	}()
	testutil.Until(t, 10*time.Second, "the command proposed", func() error {
		if l.proposed.Load() != 1 {
			return errors.New("not yet")
		}
		return nil
	})
	s.Close() // cuts every stream
	if err := <-errc; !errors.Is(err, ErrAmbiguous) {
		t.Fatalf("err = %v, want ErrAmbiguous", err)
	}
	testutil.Until(t, 10*time.Second, "the stream closed", func() error {
		if n := f.Streams(); n != 0 {
			return fmt.Errorf("%d streams", n)
		}
		return nil
	})
}

// TestSilentLeaderClosesStream: commands that get no answer for
// AnswerTimeout end as ErrAmbiguous then, not at their callers' deadline.
func TestSilentLeaderClosesStream(t *testing.T) {
	l, _, hs := leaderServer(t)
	l.hold.Store(true)
	var leader atomic.Value
	leader.Store(hs.URL)
	f := newForwarder(t, &leader, 500*time.Millisecond)
	_, err := forward(f, "x", time.Minute)
	if !errors.Is(err, ErrAmbiguous) || !strings.Contains(err.Error(), "no answer") {
		t.Fatalf("err = %v, want ErrAmbiguous after no answer", err)
	}
}

// TestSendOnBrokenStream: a command taken for a stream that broke
// meanwhile was never written: ErrRetry, not ambiguous.
func TestSendOnBrokenStream(t *testing.T) {
	s := &stream{err: errors.New("connection reset")}
	r := &request{done: make(chan answer, 1)}
	r.state.Store(reqTaken)
	s.send([]*request{r})
	if a := <-r.done; !errors.Is(a.err, ErrRetry) || errors.Is(a.err, ErrAmbiguous) {
		t.Fatalf("answer %v, want ErrRetry", a.err)
	}
}

// TestStreamFollowsTheLeader: when the leader changes, commands go to the
// new one and the old stream closes once it carries nothing.
func TestStreamFollowsTheLeader(t *testing.T) {
	_, _, first := leaderServer(t)
	_, _, second := leaderServer(t)
	var leader atomic.Value
	leader.Store(first.URL)
	f := newForwarder(t, &leader, time.Second)
	if _, err := forward(f, "a", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	leader.Store(second.URL)
	if got, err := forward(f, "b", 5*time.Second); err != nil || got != "b" {
		t.Fatalf("after the change: %q %v", got, err)
	}
	testutil.Until(t, 10*time.Second, "the old stream closed", func() error {
		if n := f.Streams(); n != 1 {
			return fmt.Errorf("%d streams", n)
		}
		return nil
	})
	leader.Store("") // this node leads: it forwards nothing
	if _, err := forward(f, "c", 5*time.Second); !errors.Is(err, ErrRetry) {
		t.Fatalf("without a leader: %v, want ErrRetry", err)
	}
	testutil.Until(t, 10*time.Second, "every stream closed", func() error {
		if n := f.Streams(); n != 0 {
			return fmt.Errorf("%d streams", n)
		}
		return nil
	})
}

// TestCancelledBeforeSent: a caller that gives up while its command is
// still queued gets its context's error, not ErrAmbiguous.
func TestCancelledBeforeSent(t *testing.T) {
	var leader atomic.Value
	leader.Store("")
	f := newForwarder(t, &leader, time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := f.Forward(ctx, []byte("x")); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}
