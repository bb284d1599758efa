package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/omnirouter/omnirouter/internal/pause"

	"github.com/hashicorp/raft"

	"github.com/omnirouter/omnirouter/cluster/forward"
	"github.com/omnirouter/omnirouter/internal/wire"
)

// runMembership makes sure this node is a voter with its current addresses
// and that its HTTP address is in the replicated registry. A fresh node with
// BootstrapExpect > 1 finds its peers through Join and, when it has the
// lowest id of BootstrapExpect fresh nodes, bootstraps them all (see
// DESIGN.md). It keeps checking slowly afterwards, so a restart with new
// addresses re-registers.
func (n *Node) runMembership() {
	defer n.wg.Done()
	loggedWaiting := false
	for {
		wait := 200 * time.Millisecond
		done, err := n.membershipStep()
		switch {
		case done:
			wait = 2 * time.Second
			loggedWaiting = false
		case err != nil && !loggedWaiting:
			n.log.Info("waiting to join the cluster", "err", err)
			loggedWaiting = true
		}
		if !pause.For(n.ctx, wait) {
			return
		}
	}
}

// membershipStep does one round; done reports that nothing is left to do.
func (n *Node) membershipStep() (done bool, err error) {
	self := n.selfInfo()
	cfg, err := n.configuration()
	if err != nil {
		return false, err
	}
	inConfig := slices.ContainsFunc(cfg.Servers, func(s raft.Server) bool {
		return string(s.ID) == n.id && string(s.Address) == self.RaftAddr
	})
	reg, registered := n.fsm.node(n.id)
	if inConfig && registered && reg == self {
		return true, nil
	}
	if n.raft.State() == raft.Leader {
		return false, nil // the leader loop registers the leader
	}
	ctx, cancel := context.WithTimeout(n.ctx, 5*time.Second)
	defer cancel()
	if _, addr := n.leaderHTTP(); addr != "" {
		return false, n.requestJoin(ctx, addr)
	}
	if len(cfg.Servers) > 0 {
		return false, errors.New("no leader yet")
	}
	if len(n.cfg.Join) == 0 {
		return false, fmt.Errorf("not bootstrapped: bootstrap-expect %d and nothing to join", n.cfg.BootstrapExpect)
	}
	return false, n.joinOrBootstrap(ctx, self)
}

// joinOrBootstrap probes the join addresses. A peer that is part of a
// cluster gets a join request; otherwise, once BootstrapExpect fresh nodes
// (this one included) are known, the one with the lowest id bootstraps them.
func (n *Node) joinOrBootstrap(ctx context.Context, self NodeInfo) error {
	fresh := map[string]NodeInfo{self.ID: self}
	var lastErr error
	for _, addr := range n.cfg.Join {
		if addr == n.cfg.HTTPAddr {
			continue
		}
		info, hasState, err := n.probe(ctx, addr)
		if err != nil {
			lastErr = err
			continue
		}
		if hasState {
			if err := n.requestJoin(ctx, addr); err != nil {
				lastErr = err
				continue
			}
			return nil
		}
		if info.ID != "" && info.ID != self.ID {
			fresh[info.ID] = info
		}
	}
	expect := max(n.cfg.BootstrapExpect, 1)
	if lastErr != nil {
		// Never bootstrap on a partial view: an unreachable peer may be part
		// of a running cluster that this node should join instead.
		return lastErr
	}
	if len(fresh) < expect {
		return fmt.Errorf("%d of %d expected nodes found", len(fresh), expect)
	}
	ids := sortedNodes(fresh)
	if ids[0].ID != self.ID {
		return fmt.Errorf("waiting for %s to bootstrap the cluster", ids[0].ID)
	}
	servers := make([]raft.Server, len(ids))
	for i, ni := range ids {
		servers[i] = raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(ni.ID), Address: raft.ServerAddress(ni.RaftAddr)}
	}
	n.log.Info("bootstrapping the cluster", "voters", len(servers))
	err := n.raft.BootstrapCluster(raft.Configuration{Servers: servers}).Error()
	if err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
		return fmt.Errorf("bootstrap: %w", err)
	}
	return nil
}

func (n *Node) configuration() (raft.Configuration, error) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return raft.Configuration{}, err
	}
	return f.Configuration(), nil
}

// --- join -------------------------------------------------------------------

func appendInfo(enc *wire.Encoder, ni NodeInfo) {
	enc.String(ni.ID)
	enc.String(ni.RaftAddr)
	enc.String(ni.HTTPAddr)
}

func readInfo(d *wire.Decoder) NodeInfo {
	return NodeInfo{ID: d.String(), RaftAddr: d.String(), HTTPAddr: d.String()}
}

// requestJoin asks the peer at addr (which forwards to its leader) to add
// this node.
func (n *Node) requestJoin(ctx context.Context, addr string) error {
	enc := requestBody()
	appendInfo(enc, n.selfInfo())
	_, _, err := n.call(ctx, addr+pathJoin, enc.Buf)
	return err
}

func (n *Node) probe(ctx context.Context, addr string) (NodeInfo, bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, addr+pathInfo, nil)
	if err != nil {
		return NodeInfo{}, false, err
	}
	resp, err := n.http.Do(req)
	if err != nil {
		return NodeInfo{}, false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return NodeInfo{}, false, fmt.Errorf("%s: HTTP %d", addr, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return NodeInfo{}, false, err
	}
	d := wire.NewDecoder(body)
	st := forward.ReadStatus(d)
	info := readInfo(d)
	hasState := d.Bool()
	if err := d.Err(); err != nil || st != nil {
		return NodeInfo{}, false, fmt.Errorf("%s: bad info answer", addr)
	}
	return info, hasState, nil
}

func (n *Node) serveInfo(w http.ResponseWriter, r *http.Request) {
	cfg, err := n.configuration()
	var enc wire.Encoder
	forward.AppendOK(&enc)
	appendInfo(&enc, n.selfInfo())
	enc.Bool(err != nil || len(cfg.Servers) > 0)
	writeResponse(w, &enc)
}

// serveJoin adds the node in the request: on the leader directly, on a
// follower by forwarding once to the leader.
func (n *Node) serveJoin(w http.ResponseWriter, r *http.Request) {
	d, ok := readRequest(w, r)
	if !ok {
		return
	}
	info := readInfo(d)
	if err := d.Err(); err != nil || info.ID == "" || info.RaftAddr == "" {
		writeErr(w, fmt.Errorf("cluster: bad join request: %v", err))
		return
	}
	ctx, cancel := n.serveCtx(r)
	defer cancel()
	err := n.onLeader(ctx, r.URL.Query().Has("fwd"), func(ctx context.Context) error {
		return n.addNode(ctx, info)
	}, func(ctx context.Context, addr string) error {
		enc := requestBody()
		appendInfo(enc, info)
		_, _, err := n.call(ctx, addr+pathJoin+"?fwd=1", enc.Buf)
		return err
	})
	if err != nil {
		writeErr(w, err)
		return
	}
	writeOK(w)
}

// onLeader runs local on the leader, or remote against the leader's HTTP
// address (unless forwarded is set: one hop only). It does not wait for a
// leader: callers retry.
func (n *Node) onLeader(ctx context.Context, forwarded bool, local func(context.Context) error,
	remote func(context.Context, string) error) error {
	if n.raft.State() == raft.Leader {
		return local(ctx)
	}
	if forwarded {
		return retryable(raft.ErrNotLeader)
	}
	if _, addr := n.leaderHTTP(); addr != "" {
		return remote(ctx, addr)
	}
	return retryable(ErrNoLeader)
}

// addNode makes info a voter, removing first any server with the same id or
// the same address but not both (a replaced node), then records its HTTP
// address.
func (n *Node) addNode(ctx context.Context, info NodeInfo) error {
	cfg, err := n.configuration()
	if err != nil {
		return retryable(err)
	}
	member := false
	for _, s := range cfg.Servers {
		sameID, sameAddr := string(s.ID) == info.ID, string(s.Address) == info.RaftAddr
		switch {
		case sameID && sameAddr:
			member = true
		case sameID || sameAddr:
			n.log.Info("removing clashing server before join", "id", s.ID, "addr", s.Address, "joining", info.ID)
			if err := n.raft.RemoveServer(s.ID, 0, 0).Error(); err != nil {
				return membershipErr(err)
			}
			if !sameID {
				if _, _, err := n.proposeLocal(ctx, entry{typ: typeDeregister, id: string(s.ID)}); err != nil {
					return err
				}
			}
		}
	}
	if !member {
		n.log.Info("adding voter", "id", info.ID, "addr", info.RaftAddr)
		if err := n.raft.AddVoter(raft.ServerID(info.ID), raft.ServerAddress(info.RaftAddr), 0, 0).Error(); err != nil {
			return membershipErr(err)
		}
	}
	if cur, ok := n.fsm.node(info.ID); ok && cur == info {
		return nil
	}
	_, _, err = n.proposeLocal(ctx, entry{typ: typeRegister, node: info})
	return err
}

func membershipErr(err error) error {
	if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipTransferInProgress) ||
		errors.Is(err, raft.ErrLeadershipLost) {
		return retryable(err)
	}
	return fmt.Errorf("cluster: membership change: %w", err)
}

// --- remove -------------------------------------------------------------------

// Join adds a node (POST /v1/cluster/join): it becomes a voter with the
// given raft address, replacing a server with the same id or address, and
// its HTTP address is replicated. It may be called on any node. Nodes
// started with Join addresses do this for themselves.
func (n *Node) Join(ctx context.Context, id, raftAddr, httpAddr string) error {
	info := NodeInfo{ID: id, RaftAddr: raftAddr, HTTPAddr: n.cfg.normalizeURL(httpAddr)}
	if info.ID == "" || info.RaftAddr == "" {
		return errors.New("cluster: join needs a node id and a raft address")
	}
	enc := requestBody()
	appendInfo(enc, info)
	return n.retryOnLeader(ctx, func(ctx context.Context) error { return n.addNode(ctx, info) },
		pathJoin+"?fwd=1", enc.Buf)
}

// Remove takes a node out of the cluster and forgets its addresses. It may
// be called on any node. Removing the leader makes it step down.
func (n *Node) Remove(ctx context.Context, id string) error {
	enc := requestBody()
	enc.String(id)
	err := n.retryOnLeader(ctx, func(ctx context.Context) error { return n.removeNode(ctx, id) },
		pathRemove+"?fwd=1", enc.Buf)
	if err != nil && isRefusal(err) && strings.Contains(err.Error(), ErrUnknownNode.Error()) {
		return ErrUnknownNode
	}
	return err
}

// retryOnLeader runs local on the leader or posts body to the leader's path,
// retrying what is retryable for up to NoLeaderWait.
func (n *Node) retryOnLeader(ctx context.Context, local func(context.Context) error, path string, body []byte) error {
	ctx, cancel := n.withApplyTimeout(ctx)
	defer cancel()
	giveUp := time.Now().Add(n.cfg.NoLeaderWait)
	for {
		err := n.onLeader(ctx, false, local, func(ctx context.Context, addr string) error {
			_, _, err := n.call(ctx, addr+path, body)
			return err
		})
		if err == nil || !errors.Is(err, errRetry) {
			return err
		}
		if perr := n.pause(ctx, giveUp); perr != nil {
			if errors.Is(perr, ErrShutdown) {
				return ErrShutdown
			}
			return fmt.Errorf("%w (last attempt: %v)", ErrNoLeader, err)
		}
	}
}

func (n *Node) removeNode(ctx context.Context, id string) error {
	cfg, err := n.configuration()
	if err != nil {
		return retryable(err)
	}
	inConfig := slices.ContainsFunc(cfg.Servers, func(s raft.Server) bool { return string(s.ID) == id })
	_, registered := n.fsm.node(id)
	if !inConfig && !registered {
		return ErrUnknownNode
	}
	if inConfig {
		n.log.Info("removing server", "id", id)
		if err := n.raft.RemoveServer(raft.ServerID(id), 0, 0).Error(); err != nil {
			return membershipErr(err)
		}
	}
	if registered {
		if _, _, err := n.proposeLocal(ctx, entry{typ: typeDeregister, id: id}); err != nil {
			return err
		}
	}
	return nil
}

func (n *Node) serveRemove(w http.ResponseWriter, r *http.Request) {
	d, ok := readRequest(w, r)
	if !ok {
		return
	}
	id := d.String()
	if err := d.Err(); err != nil || id == "" {
		writeErr(w, fmt.Errorf("cluster: bad remove request: %v", err))
		return
	}
	ctx, cancel := n.serveCtx(r)
	defer cancel()
	var err error
	if n.raft.State() == raft.Leader {
		err = n.removeNode(ctx, id)
	} else {
		err = retryable(raft.ErrNotLeader)
	}
	if err != nil {
		writeErr(w, err)
		return
	}
	writeOK(w)
}
