package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/omnirouter/omnirouter/internal/pause"

	"github.com/hashicorp/raft"

	"github.com/omnirouter/omnirouter/cluster/forward"
	"github.com/omnirouter/omnirouter/internal/wire"
)

// runMembership makes sure this node is a member with its current
// addresses and that its HTTP address is in the replicated registry. A fresh
// node with BootstrapExpect > 1 finds its peers through Join and, when it
// has the lowest id of BootstrapExpect fresh nodes, bootstraps them all (see
// DESIGN.md). It keeps checking slowly afterwards, so a restart with new
// addresses re-registers, and a node removed from the cluster notices it.
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
	ctx, cancel := context.WithTimeout(n.ctx, 5*time.Second)
	defer cancel()
	leader := n.raft.State() == raft.Leader
	if leader {
		n.setRemoved(false)
	} else if n.checkRemoved(ctx, cfg) {
		return true, nil // nothing to do until an operator adds it back
	}
	inConfig := slices.ContainsFunc(cfg.Servers, func(s raft.Server) bool {
		return string(s.ID) == n.id && string(s.Address) == self.RaftAddr
	})
	reg, registered := n.fsm.node(n.id)
	if inConfig && registered && reg == self {
		return true, nil
	}
	if leader {
		return false, nil // the leader loop registers the leader
	}
	if len(cfg.Servers) > 0 && !hasServer(cfg, n.id) && registered {
		// A member still catching up to the configuration that holds it,
		// or a removed node: neither asks to join (a removed node waits
		// for an operator).
		return false, errors.New("not in this node's configuration yet")
	}
	if _, addr := n.leaderHTTP(); addr != "" {
		kind := joinFresh
		if hasServer(cfg, n.id) {
			kind = joinMember
		}
		err := n.requestJoin(ctx, addr, kind)
		if errors.Is(err, ErrRemoved) && kind == joinMember {
			n.setRemoved(true) // the leader's configuration lacks this member
			return true, nil
		}
		return false, err
	}
	if len(cfg.Servers) > 0 {
		return false, errors.New("no leader yet")
	}
	if len(n.cfg.Join) == 0 {
		return false, fmt.Errorf("not bootstrapped: bootstrap-expect %d and nothing to join", n.cfg.BootstrapExpect)
	}
	return false, n.joinOrBootstrap(ctx, self)
}

func hasServer(cfg raft.Configuration, id string) bool {
	return slices.ContainsFunc(cfg.Servers, func(s raft.Server) bool { return string(s.ID) == id })
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
		pv, err := n.probe(ctx, addr)
		if err != nil {
			lastErr = err
			continue
		}
		info := pv.info
		if pv.hasState {
			if err := n.requestJoin(ctx, addr, joinFresh); err != nil {
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
	cfg, _, err := n.configurationIndex()
	return cfg, err
}

// configurationIndex is the latest configuration and the index of the log
// entry that holds it (a membership change made against it passes that
// index, so that it fails rather than undo a concurrent change).
func (n *Node) configurationIndex() (raft.Configuration, uint64, error) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return raft.Configuration{}, 0, err
	}
	return f.Configuration(), f.Index(), nil
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

// joinKind says who asks for a join.
type joinKind byte

const (
	// joinFresh: a node asks for itself and its configuration does not
	// hold it (a new node, or one still catching up).
	joinFresh joinKind = iota
	// joinMember: a node asks for itself and its own configuration holds
	// it: it wants its addresses brought up to date, and is refused
	// (ErrRemoved) if the leader's configuration lacks it: an operator
	// removed it, and only an operator joins it again.
	joinMember
	// joinOperator: an operator's request (Join).
	joinOperator
)

// requestJoin asks the peer at addr (which forwards to its leader) to add
// this node.
func (n *Node) requestJoin(ctx context.Context, addr string, kind joinKind) error {
	enc := requestBody()
	appendJoin(enc, n.selfInfo(), kind)
	_, _, err := n.call(ctx, addr+pathJoin, enc.Buf)
	return refusedAs(err, ErrRemoved)
}

// appendJoin encodes a join request: the node, then who asks (absent from
// an older node's request: joinFresh).
func appendJoin(enc *wire.Encoder, info NodeInfo, kind joinKind) {
	appendInfo(enc, info)
	enc.Byte(byte(kind))
}

func readJoin(d *wire.Decoder) (NodeInfo, joinKind) {
	info := readInfo(d)
	kind := joinFresh
	if d.Err() == nil && d.Remaining() > 0 {
		kind = joinKind(d.Byte())
	}
	if kind > joinOperator {
		d.Fail("unknown join kind %d", kind)
	}
	return info, kind
}

// peerView is a peer's answer to the info probe: who it is and whether it
// has raft state, then (absent from an older node's answer) how far it has
// applied, the leader it knows and its latest configuration.
type peerView struct {
	info     NodeInfo
	hasState bool
	extended bool
	applied  uint64
	leader   string // "" when it knows none
	members  []memberView
}

// memberView is one server of a peer's configuration, with whether that
// peer counts it as caught up (only a leader knows it of others).
type memberView struct {
	id       string
	voter    bool
	caughtUp bool
}

func (n *Node) probe(ctx context.Context, addr string) (peerView, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, addr+pathInfo, nil)
	if err != nil {
		return peerView{}, err
	}
	resp, err := n.http.Do(req)
	if err != nil {
		return peerView{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return peerView{}, fmt.Errorf("%s: HTTP %d", addr, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return peerView{}, err
	}
	d := wire.NewDecoder(body)
	st := forward.ReadStatus(d)
	pv := peerView{info: readInfo(d), hasState: d.Bool()}
	if st == nil && d.Err() == nil && d.Remaining() > 0 {
		pv.extended = true
		pv.applied = d.Uvarint()
		pv.leader = d.String()
		count := d.Len(1 << 10)
		for range count {
			pv.members = append(pv.members, memberView{id: d.String(), voter: d.Bool(), caughtUp: d.Bool()})
		}
	}
	if err := d.Err(); err != nil || st != nil {
		return peerView{}, fmt.Errorf("%s: bad info answer", addr)
	}
	return pv, nil
}

func (n *Node) serveInfo(w http.ResponseWriter, r *http.Request) {
	cfg, err := n.configuration()
	var enc wire.Encoder
	forward.AppendOK(&enc)
	appendInfo(&enc, n.selfInfo())
	enc.Bool(err != nil || len(cfg.Servers) > 0)
	enc.Uvarint(n.fsm.applied.Load())
	_, leader := n.raft.LeaderWithID()
	enc.String(string(leader))
	enc.Uvarint(uint64(len(cfg.Servers)))
	for _, s := range cfg.Servers {
		enc.String(string(s.ID))
		enc.Bool(s.Suffrage == raft.Voter)
		enc.Bool(n.caughtUp(string(s.ID)))
	}
	writeResponse(w, &enc)
}

// serveJoin adds the node in the request: on the leader directly, on a
// follower by forwarding once to the leader.
func (n *Node) serveJoin(w http.ResponseWriter, r *http.Request) {
	d, ok := readRequest(w, r)
	if !ok {
		return
	}
	info, kind := readJoin(d)
	if err := d.Err(); err != nil || info.ID == "" || info.RaftAddr == "" {
		writeErr(w, fmt.Errorf("cluster: bad join request: %v", err))
		return
	}
	ctx, cancel := n.serveCtx(r)
	defer cancel()
	err := n.onLeader(ctx, r.URL.Query().Has("fwd"), func(ctx context.Context) error {
		return n.addNode(ctx, info, kind)
	}, func(ctx context.Context, addr string) error {
		enc := requestBody()
		appendJoin(enc, info, kind)
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

// addNode adds info as a nonvoter (the leader's member watch promotes it
// to voter once it has caught up), removing first any server with the same
// id or the same address but not both (a replaced node), then records its
// HTTP address. Before changing anything it checks the addresses, that the
// raft address answers, and that a node taking another member's raft
// address is the one answering there. A node's own request is refused
// (ErrRemoved) when an operator removed it: it asks as a member and this
// configuration lacks it, or it is the very node this leader removed
// moments ago (its request may have been on its way); only an operator
// joins it again. A new machine in its place is not refused.
func (n *Node) addNode(ctx context.Context, info NodeInfo, kind joinKind) error {
	if err := n.validJoin(info); err != nil {
		return err
	}
	cfg, err := n.configuration()
	if err != nil {
		return retryable(err)
	}
	if kind != joinOperator && !hasServer(cfg, info.ID) && (kind == joinMember || n.sameIncarnation(ctx, info)) {
		return fmt.Errorf("%w: %s is not in the leader's configuration; an operator joins it again (omnirouter cluster join)", ErrRemoved, info.ID)
	}
	member := false
	var clashes []raft.Server
	for _, s := range cfg.Servers {
		sameID, sameAddr := string(s.ID) == info.ID, string(s.Address) == info.RaftAddr
		switch {
		case sameID && sameAddr:
			member = true
		case sameID || sameAddr:
			clashes = append(clashes, s)
		}
	}
	if !member {
		if err := n.checkRaftReachable(ctx, info.RaftAddr); err != nil {
			return err
		}
		for _, s := range clashes {
			if string(s.ID) != info.ID {
				if err := n.checkOwnsAddress(ctx, info, string(s.ID)); err != nil {
					return err
				}
			}
		}
	}
	for _, s := range clashes {
		n.log.Info("removing clashing server before join", "id", s.ID, "addr", s.Address, "joining", info.ID)
		if err := n.raft.RemoveServer(s.ID, 0, 0).Error(); err != nil {
			return membershipErr(err)
		}
		if string(s.ID) != info.ID {
			if _, _, err := n.proposeLocal(ctx, entry{typ: typeDeregister, id: string(s.ID)}); err != nil {
				return err
			}
		}
	}
	if !member {
		n.log.Info("adding nonvoter; it becomes a voter once it has caught up", "id", info.ID, "addr", info.RaftAddr)
		if err := n.raft.AddNonvoter(raft.ServerID(info.ID), raft.ServerAddress(info.RaftAddr), 0, 0).Error(); err != nil {
			return membershipErr(err)
		}
	}
	if cur, ok := n.fsm.node(info.ID); ok && cur == info {
		return nil
	}
	_, _, err = n.proposeLocal(ctx, entry{typ: typeRegister, node: info})
	return err
}

// validJoin checks a join request's id and addresses (the raft address only
// on a TCP transport: in-memory transports have their own addresses).
func (n *Node) validJoin(info NodeInfo) error {
	if info.ID == "" {
		return fmt.Errorf("%w: the node id is required", ErrInvalidJoin)
	}
	if n.cfg.Transport == nil {
		if err := ValidRaftAddr(info.RaftAddr); err != nil {
			return fmt.Errorf("%w: raft_addr: %w", ErrInvalidJoin, err)
		}
	} else if info.RaftAddr == "" {
		return fmt.Errorf("%w: the raft address is required", ErrInvalidJoin)
	}
	if err := ValidHTTPAddr(info.HTTPAddr); err != nil {
		return fmt.Errorf("%w: http_addr: %w", ErrInvalidJoin, err)
	}
	return nil
}

// RaftReachTimeout bounds the check that a joining node's raft address
// answers.
const RaftReachTimeout = 5 * time.Second

// checkRaftReachable opens a connection to a joining node's raft address
// (with TLS, completing the handshake, so a peer with a certificate the
// cluster does not trust is refused here) and closes it.
func (n *Node) checkRaftReachable(ctx context.Context, addr string) error {
	if n.cfg.Transport != nil {
		return nil // an in-memory transport (tests) has no network to check
	}
	ctx, cancel := context.WithTimeout(ctx, RaftReachTimeout)
	defer cancel()
	var (
		conn net.Conn
		err  error
	)
	if n.tlsStream != nil {
		d := &tls.Dialer{NetDialer: &net.Dialer{}, Config: n.tlsStream.cfg}
		conn, err = d.DialContext(ctx, "tcp", addr)
	} else {
		conn, err = (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return fmt.Errorf("%w: %s did not answer within %v: %v", ErrRaftUnreachable, addr, RaftReachTimeout, err)
	}
	conn.Close()
	return nil
}

// checkOwnsAddress makes sure that a node joining at the raft address of
// another member (a machine replaced under a new id) is really there: its
// HTTP address must answer as info. Otherwise a mistyped address would
// remove a healthy member.
func (n *Node) checkOwnsAddress(ctx context.Context, info NodeInfo, holder string) error {
	ctx, cancel := context.WithTimeout(ctx, RaftReachTimeout)
	defer cancel()
	pv, err := n.probe(ctx, info.HTTPAddr)
	if err == nil && pv.info.ID == info.ID && pv.info.RaftAddr == info.RaftAddr {
		return nil
	}
	got := "no answer"
	if err == nil {
		got = fmt.Sprintf("node %q with raft address %s answered", pv.info.ID, pv.info.RaftAddr)
	}
	return fmt.Errorf("%w: raft_addr %s is member %s's address, and at http_addr %s %s, not %s: remove %s first, or check the addresses",
		ErrInvalidJoin, info.RaftAddr, holder, info.HTTPAddr, got, info.ID, holder)
}

// ValidRaftAddr checks a raft address: host:port with a port in 1..65535
// and a host that is not an unspecified address (0.0.0.0, ::), which no
// peer could dial.
func ValidRaftAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port", addr)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("%q: the port must be a number in 1..65535", addr)
	}
	if host == "" {
		return fmt.Errorf("%q has no host", addr)
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return fmt.Errorf("%q: %s is not an address peers can reach", addr, host)
	}
	if strings.ContainsAny(host, " /?#@") {
		return fmt.Errorf("%q: bad host", addr)
	}
	return nil
}

// ValidHTTPAddr checks a node's HTTP address: an http:// or https:// URL of
// a host and port (or host:port alone, to which the scheme is added), with
// no path, query or credentials.
func ValidHTTPAddr(addr string) error {
	if addr == "" {
		return errors.New("an HTTP address such as http://10.0.0.4:8080 is required")
	}
	s := strings.TrimRight(addr, "/")
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not a URL such as http://10.0.0.4:8080", addr)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%q: the scheme must be http or https", addr)
	}
	if u.Host == "" || u.Hostname() == "" || u.User != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q is not a URL such as http://10.0.0.4:8080 (a host and port, nothing after)", addr)
	}
	if p := u.Port(); p != "" {
		if v, err := strconv.Atoi(p); err != nil || v < 1 || v > 65535 {
			return fmt.Errorf("%q: the port must be a number in 1..65535", addr)
		}
	}
	if ip := net.ParseIP(u.Hostname()); ip != nil && ip.IsUnspecified() {
		return fmt.Errorf("%q: %s is not an address peers can reach", addr, u.Hostname())
	}
	return nil
}

func membershipErr(err error) error {
	if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipTransferInProgress) ||
		errors.Is(err, raft.ErrLeadershipLost) {
		return retryable(err)
	}
	return fmt.Errorf("cluster: membership change: %w", err)
}

// --- remove -------------------------------------------------------------------

// Join adds a node (POST /v1/cluster/join) with the given raft and HTTP
// addresses, replacing a server with the same id or address. It may be
// called on any node; the leader checks the addresses and that the raft
// address answers (ErrInvalidJoin, ErrRaftUnreachable: nothing changed),
// adds the node as a nonvoter and promotes it to voter once it has caught
// up. Nodes started with Join addresses go through the same path.
func (n *Node) Join(ctx context.Context, id, raftAddr, httpAddr string) error {
	info := NodeInfo{ID: id, RaftAddr: raftAddr, HTTPAddr: n.cfg.normalizeURL(httpAddr)}
	if err := n.validJoin(info); err != nil {
		return err
	}
	if n.removed.Load() {
		return ErrRemoved
	}
	enc := requestBody()
	appendJoin(enc, info, joinOperator)
	err := n.retryOnLeader(ctx, func(ctx context.Context) error { return n.addNode(ctx, info, joinOperator) },
		pathJoin+"?fwd=1", enc.Buf)
	return refusedAs(err, ErrRaftUnreachable, ErrInvalidJoin)
}

// Remove takes a node out of the cluster and forgets its addresses. It may
// be called on any node. Removing the leader makes it step down.
func (n *Node) Remove(ctx context.Context, id string) error {
	if n.removed.Load() {
		return ErrRemoved
	}
	enc := requestBody()
	enc.String(id)
	err := n.retryOnLeader(ctx, func(ctx context.Context) error { return n.removeNode(ctx, id) },
		pathRemove+"?fwd=1", enc.Buf)
	if errors.Is(refusedAs(err, ErrUnknownNode), ErrUnknownNode) {
		return ErrUnknownNode
	}
	return err
}

// refusedAs turns the leader's refusal of a forwarded request back into
// the sentinel its message carries (the refusal crossed the wire as text),
// keeping the message.
func refusedAs(err error, sentinels ...error) error {
	if err == nil || !isRefusal(err) {
		return err
	}
	for _, s := range sentinels {
		if strings.Contains(err.Error(), s.Error()) {
			var r *forward.Refused
			errors.As(err, &r)
			return fmt.Errorf("%w: %s", s, strings.TrimPrefix(r.Message, s.Error()+": "))
		}
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
	i := slices.IndexFunc(cfg.Servers, func(s raft.Server) bool { return string(s.ID) == id })
	inConfig := i >= 0
	_, registered := n.fsm.node(id)
	if !inConfig && !registered {
		return ErrUnknownNode
	}
	if inConfig {
		n.log.Info("removing server", "id", id)
		n.noteRemoved(id, string(cfg.Servers[i].Address))
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
