package nemesis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/omnirouter/omnirouter/internal/pause"

	"github.com/omnirouter/omnirouter/internal/testutil"
)

// Build compiles the omnirouter binary of the module rooted at moduleDir
// into dir and returns its path.
func Build(moduleDir, dir string) (string, error) {
	bin := filepath.Join(dir, "omnirouter")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/omnirouter")
	cmd.Dir = moduleDir
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
}

// Node is one `omnirouter serve` process, restartable with the same command
// line and data directory.
type Node struct {
	ID       string
	HTTPAddr string // real listen address, where clients go
	RaftAddr string // real raft listen address
	RaftAdv  string // proxy address peers dial for raft
	HTTPAdv  string // proxy address peers dial for forwarding
	DataDir  string
	LogPath  string
	Args     []string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	paused bool
	starts int
}

// URL is the node's real HTTP base URL.
func (n *Node) URL() string { return "http://" + n.HTTPAddr }

// Start runs the process (again). Its output is appended to LogPath.
func (n *Node) Start(bin string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		select {
		case <-n.exited:
		default:
			return fmt.Errorf("%s is running", n.ID)
		}
	}
	logf, err := os.OpenFile(n.LogPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	n.starts++
	fmt.Fprintf(logf, "=== start %d of %s at %s\n", n.starts, n.ID, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(bin, n.Args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(exited) }()
	n.cmd, n.exited, n.paused = cmd, exited, false
	return nil
}

// Running reports whether the process is alive (paused counts as alive).
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return false
	}
	select {
	case <-n.exited:
		return false
	default:
		return true
	}
}

// Pid is the process id, 0 when not running.
func (n *Node) Pid() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil || n.cmd.Process == nil {
		return 0
	}
	select {
	case <-n.exited:
		return 0
	default:
		return n.cmd.Process.Pid
	}
}

// Signal sends sig to the running process.
func (n *Node) Signal(sig syscall.Signal) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return fmt.Errorf("%s not started", n.ID)
	}
	select {
	case <-n.exited:
		return fmt.Errorf("%s not running", n.ID)
	default:
	}
	switch sig {
	case syscall.SIGSTOP:
		n.paused = true
	case syscall.SIGCONT:
		n.paused = false
	}
	return n.cmd.Process.Signal(sig)
}

// Paused reports whether the process was stopped with SIGSTOP.
func (n *Node) Paused() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.paused
}

// Stop sends sig (a paused process is continued first for SIGTERM) and waits
// up to d for the exit; then it kills.
func (n *Node) Stop(sig syscall.Signal, d time.Duration) error {
	n.mu.Lock()
	cmd, exited, paused := n.cmd, n.exited, n.paused
	n.mu.Unlock()
	if cmd == nil {
		return nil
	}
	select {
	case <-exited:
		return nil
	default:
	}
	_ = cmd.Process.Signal(sig)
	if paused && sig != syscall.SIGKILL {
		_ = cmd.Process.Signal(syscall.SIGCONT)
	}
	select {
	case <-exited:
		return nil
	case <-time.After(d):
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-exited
		return fmt.Errorf("%s did not exit within %v after %v: killed", n.ID, d, sig)
	}
}

// Cluster is three omnirouter processes whose node-to-node traffic goes
// through a Net.
type Cluster struct {
	Bin   string
	Nodes []*Node
	Net   *Net
}

// ClusterConfig is what NewCluster needs.
type ClusterConfig struct {
	Bin   string
	Dir   string   // data dirs and logs go here
	Size  int      // default 3
	Extra []string // extra `serve` flags
	// Direct runs the nodes without the fault-injecting proxies between
	// them (a load or soak test, not a fault test).
	Direct bool
}

// NewCluster allocates addresses and proxies and writes every node's command
// line; Start runs them.
func NewCluster(cfg ClusterConfig) (*Cluster, error) {
	if cfg.Size == 0 {
		cfg.Size = 3
	}
	c := &Cluster{Bin: cfg.Bin}
	c.Net = NewNet(ProcResolver(c.pids))
	var joins []string
	for i := range cfg.Size {
		n := &Node{ID: fmt.Sprintf("n%d", i+1)}
		var err error
		if n.HTTPAddr, err = testutil.FreeAddr(); err != nil {
			return nil, err
		}
		if n.RaftAddr, err = testutil.FreeAddr(); err != nil {
			return nil, err
		}
		if cfg.Direct {
			n.RaftAdv, n.HTTPAdv = n.RaftAddr, n.HTTPAddr
		} else {
			if n.RaftAdv, err = c.Net.Listen(n.ID, n.RaftAddr); err != nil {
				return nil, err
			}
			if n.HTTPAdv, err = c.Net.Listen(n.ID, n.HTTPAddr); err != nil {
				return nil, err
			}
		}
		n.DataDir = filepath.Join(cfg.Dir, n.ID)
		n.LogPath = filepath.Join(cfg.Dir, n.ID+".log")
		joins = append(joins, n.URL())
		c.Nodes = append(c.Nodes, n)
	}
	for _, n := range c.Nodes {
		n.Args = append([]string{"serve", "--node-id", n.ID,
			"--http-addr", n.HTTPAddr, "--advertise-http", "http://" + n.HTTPAdv,
			"--raft-addr", n.RaftAddr, "--advertise-raft", n.RaftAdv,
			"--data-dir", n.DataDir, "--bootstrap-expect", fmt.Sprint(cfg.Size),
			"--join", strings.Join(joins, ",")}, cfg.Extra...)
	}
	return c, nil
}

func (c *Cluster) pids() map[int]string {
	m := map[int]string{}
	for _, n := range c.Nodes {
		if pid := n.Pid(); pid != 0 {
			m[pid] = n.ID
		}
	}
	return m
}

// Start starts every node that is not running.
func (c *Cluster) Start() error {
	for _, n := range c.Nodes {
		if !n.Running() {
			if err := n.Start(c.Bin); err != nil {
				return err
			}
		}
	}
	return nil
}

// Node returns the node with the given id.
func (c *Cluster) Node(id string) *Node {
	for _, n := range c.Nodes {
		if n.ID == id {
			return n
		}
	}
	return nil
}

// Shutdown kills every process and closes the proxies. It is safe to call
// more than once.
func (c *Cluster) Shutdown() {
	for _, n := range c.Nodes {
		_ = n.Stop(syscall.SIGKILL, 10*time.Second)
	}
	c.Net.Close()
}

// ClusterStatus is GET /v1/cluster.
type ClusterStatus struct {
	Leader       string `json:"leader"`
	Term         uint64 `json:"term"`
	CommitIndex  uint64 `json:"commit_index"`
	AppliedIndex uint64 `json:"applied_index"`
}

var probe = &http.Client{Timeout: 2 * time.Second}

// Status asks one node for its view of the cluster.
func (n *Node) Status(ctx context.Context) (ClusterStatus, error) {
	var st ClusterStatus
	req, _ := http.NewRequestWithContext(ctx, "GET", n.URL()+"/v1/cluster", nil)
	resp, err := probe.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return st, fmt.Errorf("%s /v1/cluster: %d", n.ID, resp.StatusCode)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// Ready reports whether /readyz answers 200.
func (n *Node) Ready(ctx context.Context) error {
	req, _ := http.NewRequestWithContext(ctx, "GET", n.URL()+"/readyz", nil)
	resp, err := probe.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s not ready: %d", n.ID, resp.StatusCode)
	}
	return nil
}

// Leader returns the node the majority of reachable nodes name as leader.
func (c *Cluster) Leader(ctx context.Context) (*Node, error) {
	votes := map[string]int{}
	for _, n := range c.Nodes {
		if !n.Running() || n.Paused() {
			continue
		}
		st, err := n.Status(ctx)
		if err == nil && st.Leader != "" {
			votes[st.Leader]++
		}
	}
	best, bestVotes := "", 0
	for id, v := range votes {
		if v > bestVotes || (v == bestVotes && id < best) {
			best, bestVotes = id, v
		}
	}
	if best == "" {
		return nil, errors.New("no node names a leader")
	}
	return c.Node(best), nil
}

// Poll calls f until it succeeds or d passes, pausing briefly between tries.
func Poll(ctx context.Context, d time.Duration, f func() error) error {
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %v: %w", d, err)
		}
		if !pause.For(ctx, 50*time.Millisecond) {
			return ctx.Err()
		}
	}
}

// WaitReady polls until every node is ready.
func (c *Cluster) WaitReady(ctx context.Context, d time.Duration) error {
	return Poll(ctx, d, func() error {
		for _, n := range c.Nodes {
			if !n.Running() {
				return fmt.Errorf("%s is not running", n.ID)
			}
			if err := n.Ready(ctx); err != nil {
				return err
			}
		}
		return nil
	})
}

// WaitConverged polls until every node reports the same applied index, twice
// in a row at least 200 ms apart, and returns it.
func (c *Cluster) WaitConverged(ctx context.Context, d time.Duration) (uint64, error) {
	var last uint64
	var lastAt time.Time
	var idx uint64
	err := Poll(ctx, d, func() error {
		var first uint64
		for i, n := range c.Nodes {
			st, err := n.Status(ctx)
			if err != nil {
				return err
			}
			if i == 0 {
				first = st.AppliedIndex
			} else if st.AppliedIndex != first {
				return fmt.Errorf("applied index differs: %s at %d, n1 at %d", n.ID, st.AppliedIndex, first)
			}
		}
		if first != last || lastAt.IsZero() {
			last, lastAt = first, time.Now()
			return fmt.Errorf("applied index %d not yet stable", first)
		}
		if time.Since(lastAt) < 200*time.Millisecond {
			return fmt.Errorf("applied index %d not yet stable", first)
		}
		idx = first
		return nil
	})
	return idx, err
}
