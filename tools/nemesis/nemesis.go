package nemesis

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/omnirouter/omnirouter/internal/pause"
)

// Fault kinds.
const (
	FaultKillLeader = "kill_leader" // SIGKILL the leader, restart it later
	FaultPause      = "pause"       // SIGSTOP a node, SIGCONT later
	FaultPartition  = "partition"   // cut a node off through the proxy, heal later
	FaultRestartAll = "restart_all" // SIGTERM every node, start them all
	FaultBackup     = "backup"      // download a state snapshot from a node under load
)

// FaultKinds is every kind, in schedule order before shuffling.
var FaultKinds = []string{FaultKillLeader, FaultPause, FaultPartition, FaultRestartAll, FaultBackup}

// Fault is one injected fault; times are since the history's start.
type Fault struct {
	Kind  string        `json:"kind"`
	Node  string        `json:"node,omitempty"`
	Mode  string        `json:"mode,omitempty"`
	Start time.Duration `json:"start"`
	End   time.Duration `json:"end"`
	Err   string        `json:"err,omitempty"`
}

// Nemesis injects faults into a cluster on a schedule drawn from its seed.
type Nemesis struct {
	C    *Cluster
	Rng  *rand.Rand
	Hist *History
	Logf func(format string, args ...any)

	mu     sync.Mutex
	faults []Fault
}

// Faults returns the faults injected so far.
func (n *Nemesis) Faults() []Fault {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]Fault(nil), n.faults...)
}

func (n *Nemesis) since() time.Duration { return time.Since(n.Hist.start) }

func (n *Nemesis) dur(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(n.Rng.Int64N(int64(hi-lo)+1))
}

// Run injects faults until ctx is done: each round runs every kind once in
// a seeded order, one fault at a time, a short gap between them, waiting for
// the cluster to be ready again after each. It heals everything before
// returning.
func (n *Nemesis) Run(ctx context.Context) {
	defer n.HealAll()
	for ctx.Err() == nil {
		kinds := append([]string(nil), FaultKinds...)
		n.Rng.Shuffle(len(kinds), func(i, j int) { kinds[i], kinds[j] = kinds[j], kinds[i] })
		for _, k := range kinds {
			if !pause.For(ctx, n.dur(time.Second, 2500*time.Millisecond)) {
				return
			}
			f := n.inject(ctx, k)
			n.mu.Lock()
			n.faults = append(n.faults, f)
			n.mu.Unlock()
			n.Logf("fault %-11s node=%s %s [%v → %v] %s", f.Kind, f.Node, f.Mode,
				f.Start.Round(time.Millisecond), f.End.Round(time.Millisecond), f.Err)
			// Let the cluster recover before the next fault (bounded).
			_ = n.C.WaitReady(context.Background(), 30*time.Second)
		}
	}
}

// hold waits d, or less if ctx ends (faults are always undone).
func hold(ctx context.Context, d time.Duration) { pause.For(ctx, d) }

func (n *Nemesis) inject(ctx context.Context, kind string) (f Fault) {
	f = Fault{Kind: kind, Start: n.since()}
	defer func() { f.End = n.since() }()
	victim := n.C.Nodes[n.Rng.IntN(len(n.C.Nodes))]
	var err error
	switch kind {
	case FaultKillLeader:
		down := n.dur(500*time.Millisecond, 3*time.Second)
		lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		var leader *Node
		_ = Poll(lctx, 10*time.Second, func() error {
			var e error
			leader, e = n.C.Leader(lctx)
			return e
		})
		cancel()
		if leader != nil {
			victim = leader
		} else {
			f.Err = "no leader found: killed a random node"
		}
		f.Node = victim.ID
		_ = victim.Stop(syscall.SIGKILL, 10*time.Second)
		hold(ctx, down)
		err = victim.Start(n.C.Bin)
	case FaultPause:
		f.Node = victim.ID
		if err = victim.Signal(syscall.SIGSTOP); err == nil {
			hold(ctx, n.dur(time.Second, 5*time.Second))
			err = victim.Signal(syscall.SIGCONT)
		}
	case FaultPartition:
		f.Node = victim.ID
		mode := Mode(n.Rng.IntN(2))
		f.Mode = mode.String()
		n.C.Net.Partition(victim.ID, mode)
		hold(ctx, n.dur(2*time.Second, 6*time.Second))
		n.C.Net.Heal(victim.ID)
	case FaultRestartAll:
		var wg sync.WaitGroup
		for _, nd := range n.C.Nodes {
			wg.Add(1)
			go func() { defer wg.Done(); _ = nd.Stop(syscall.SIGTERM, 15*time.Second) }()
		}
		wg.Wait()
		hold(ctx, n.dur(200*time.Millisecond, 2*time.Second))
		err = n.C.Start()
	case FaultBackup:
		f.Node = victim.ID
		err = backup(ctx, victim)
	}
	if err != nil {
		f.Err = err.Error()
	}
	return f
}

func backup(ctx context.Context, nd *Node) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", nd.URL()+"/v1/cluster/snapshot", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	nb, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != 200 {
		return fmt.Errorf("backup from %s: %d", nd.ID, resp.StatusCode)
	}
	if nb == 0 {
		return fmt.Errorf("backup from %s: empty", nd.ID)
	}
	return nil
}

// HealAll undoes every fault in force: partitions healed, paused nodes
// continued, stopped nodes started.
func (n *Nemesis) HealAll() {
	n.C.Net.HealAll()
	for _, nd := range n.C.Nodes {
		if nd.Paused() {
			_ = nd.Signal(syscall.SIGCONT)
		}
	}
	_ = n.C.Start()
}
