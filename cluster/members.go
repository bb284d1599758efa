package cluster

import (
	"context"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/omnirouter/omnirouter/cluster/storage"
	"github.com/omnirouter/omnirouter/internal/pause"
)

// The leader's watch over the members: every memberCheckEvery it asks each
// member (GET /internal/cluster/info at its registered HTTP address) how far
// it has applied. A member is caught up when its applied index is within
// catchUpSlack entries of the commit index the leader read when it asked;
// a nonvoter that is caught up is promoted to voter. A node that
// joined with a wrong address therefore never votes, and a cluster never
// needs it for a quorum. Each new leader keeps doing it, so a promotion cut
// short by a leader change happens on the next one.
const (
	memberCheckEvery = 500 * time.Millisecond
	memberProbeWait  = time.Second
	// catchUpSlack is how many entries a caught-up member may trail the
	// leader's commit index by (a healthy follower under load trails it
	// by a few entries plus the time the question takes).
	catchUpSlack = 32
	// memberStale is how long a member's last answer counts.
	memberStale = 3 * time.Second
	// peerCheckEvery bounds how often a node without a leader asks its
	// peers whether it is still a member.
	peerCheckEvery = time.Second
)

// memberHealth is the leader's last word on one member.
type memberHealth struct {
	applied  uint64
	caughtUp bool
	at       time.Time
}

// watchMembers runs while this node leads, beside the leader loop.
func (n *Node) watchMembers(ctx context.Context) {
	n.healthMu.Lock()
	n.health = map[string]memberHealth{}
	n.healthMu.Unlock()
	for {
		wait := memberCheckEvery
		if n.readyTerm.Load() == n.raft.CurrentTerm() {
			n.checkMembers(ctx)
		} else {
			wait = 20 * time.Millisecond // the first check as soon as this leader is ready
		}
		if !pause.For(ctx, wait) {
			return
		}
	}
}

// checkMembers asks every other member how far it has applied, records
// which are caught up, and promotes one caught-up nonvoter to voter.
func (n *Node) checkMembers(ctx context.Context) {
	if n.raft.State() != raft.Leader {
		return
	}
	cfg, cfgIndex, err := n.configurationIndex()
	if err != nil {
		return
	}
	commit := n.raft.CommitIndex()
	results := make([]memberHealth, len(cfg.Servers))
	var wg sync.WaitGroup
	for i, s := range cfg.Servers {
		if string(s.ID) == n.id {
			continue
		}
		results[i].at = time.Now() // not caught up unless it answers
		reg, ok := n.fsm.node(string(s.ID))
		if !ok || reg.HTTPAddr == "" {
			continue // not registered yet: cannot be asked
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			pctx, cancel := context.WithTimeout(ctx, memberProbeWait)
			defer cancel()
			pv, err := n.probe(pctx, reg.HTTPAddr)
			if err != nil || !pv.extended || pv.info.ID != string(s.ID) {
				return
			}
			results[i] = memberHealth{applied: pv.applied, caughtUp: pv.applied+catchUpSlack >= commit, at: time.Now()}
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return
	}
	defer n.memberChecks.Add(1)
	n.healthMu.Lock()
	for i, s := range cfg.Servers {
		if !results[i].at.IsZero() {
			n.health[string(s.ID)] = results[i]
		}
	}
	n.healthMu.Unlock()
	for i, s := range cfg.Servers {
		if s.Suffrage != raft.Nonvoter || !results[i].caughtUp {
			continue
		}
		n.log.Info("promoting nonvoter to voter: it has caught up", "id", s.ID, "applied", results[i].applied, "leader_commit", commit)
		// Against the configuration just read: a concurrent change (a
		// removal) makes this fail, and the next round looks again.
		if err := n.raft.AddVoter(s.ID, s.Address, cfgIndex, 0).Error(); err != nil {
			n.log.Warn("promotion to voter failed; will retry", "id", s.ID, "err", err)
		}
		return // one change per round: the configuration index moved
	}
}

// caughtUp reports whether member id is caught up, as far as this node
// knows: the leader knows it of every member (its last check), a follower
// only of itself (it hears from the leader and has applied what it knows
// to be committed).
func (n *Node) caughtUp(id string) bool {
	if n.removed.Load() {
		return false
	}
	if n.raft.State() == raft.Leader {
		if id == n.id {
			return true
		}
		n.healthMu.Lock()
		h, ok := n.health[id]
		n.healthMu.Unlock()
		return ok && h.caughtUp && time.Since(h.at) < memberStale
	}
	if id != n.id {
		return false
	}
	return n.leaderContact() && n.fsm.applied.Load()+catchUpSlack >= n.raft.CommitIndex()
}

// leaderContact reports whether this follower hears from a leader.
func (n *Node) leaderContact() bool {
	_, id := n.raft.LeaderWithID()
	return id != "" && time.Since(n.raft.LastContact()) < 3*n.cfg.HeartbeatTimeout
}

// --- a removed node ------------------------------------------------------------

// checkRemoved decides whether this node has been removed from the cluster
// and returns the verdict. A leader replicates only to members, so contact
// with a leader while the latest configuration holds this node clears it
// (the configuration may still lack a node that is catching up). Without a
// leader the node asks its peers: one that knows a leader answers with its
// configuration, and a configuration without this node proves the removal
// (also for a node that was down when it was removed and never saw the
// change). Only a node that has been a member can have been removed: one
// whose join never completed is not.
func (n *Node) checkRemoved(ctx context.Context, cfg raft.Configuration) bool {
	if len(cfg.Servers) == 0 {
		return n.removed.Load()
	}
	selfIn := hasServer(cfg, n.id)
	if n.leaderContact() {
		if selfIn {
			n.setRemoved(false)
		}
		return n.removed.Load()
	}
	_, registered := n.fsm.node(n.id)
	if !selfIn && !registered && n.membership == storage.MembershipUnknown {
		return false
	}
	if time.Since(n.lastPeerCheck) >= peerCheckEvery {
		n.lastPeerCheck = time.Now()
		if removed, known := n.askPeers(ctx, cfg); known {
			n.setRemoved(removed)
		}
	}
	return n.removed.Load()
}

// askPeers asks the other nodes this node knows of (its configuration's
// registered HTTP addresses and Join) whether it is in their leader's
// configuration. known is false when no peer that knows a leader answered.
// The leader's own answer wins over a follower's.
func (n *Node) askPeers(ctx context.Context, cfg raft.Configuration) (removed, known bool) {
	var addrs []string
	seen := map[string]bool{n.cfg.HTTPAddr: true}
	add := func(a string) {
		if a != "" && !seen[a] {
			seen[a] = true
			addrs = append(addrs, a)
		}
	}
	for _, s := range cfg.Servers {
		if reg, ok := n.fsm.node(string(s.ID)); ok && string(s.ID) != n.id {
			add(reg.HTTPAddr)
		}
	}
	for _, a := range n.cfg.Join {
		add(a)
	}
	views := make([]peerView, len(addrs))
	var wg sync.WaitGroup
	for i, a := range addrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			if pv, err := n.probe(pctx, a); err == nil {
				views[i] = pv
			}
		}()
	}
	wg.Wait()
	for _, fromLeader := range []bool{true, false} {
		for _, pv := range views {
			if !pv.extended || pv.leader == "" || pv.leader == n.id || (pv.leader == pv.info.ID) != fromLeader {
				continue
			}
			for _, m := range pv.members {
				if m.id == n.id {
					return false, true
				}
			}
			return true, true
		}
	}
	return false, false
}

// setRemoved records whether this node is removed (false: it is a member),
// in memory and in the data directory, logging a change (the removal once,
// at ERROR).
func (n *Node) setRemoved(removed bool) {
	m := storage.MembershipMember
	if removed {
		m = storage.MembershipRemoved
	}
	if n.membership != m {
		if err := storage.WriteMembership(n.cfg.DataDir, m); err != nil {
			n.log.Warn("recording membership", "err", err)
		} else {
			n.membership = m
		}
	}
	if n.removed.Swap(removed) == removed {
		return
	}
	if removed {
		n.logRemoved()
	} else {
		n.log.Info("this node is a member of the cluster again")
	}
}

func (n *Node) logRemoved() {
	n.log.Error("this node was removed from the cluster: it refuses writes (503 node_removed) and serves only stale reads of its last state until an operator adds it back (omnirouter cluster join)")
}

// removeGuard is how long a leader remembers the nodes it removed, to
// refuse their own join requests sent before they could learn of it.
const removeGuard = 30 * time.Second

// noteRemoved records that this leader removed id, at raft address addr.
func (n *Node) noteRemoved(id, addr string) {
	n.healthMu.Lock()
	defer n.healthMu.Unlock()
	now := time.Now()
	for k, r := range n.removedAt { // bounded: forget the old ones
		if now.Sub(r.at) > removeGuard {
			delete(n.removedAt, k)
		}
	}
	if n.removedAt == nil {
		n.removedAt = map[string]removal{}
	}
	n.removedAt[id] = removal{addr: addr, at: now}
}

type removal struct {
	addr string
	at   time.Time
}

// sameIncarnation reports whether a node asking to join for itself is the
// node this leader removed moments ago, rather than a new machine taking
// its place: the same raft address, and it already holds raft state (a new
// machine, or one whose disk was wiped, holds none: nobody replicates to
// an address outside the configuration). When the node cannot be asked,
// it is not refused.
func (n *Node) sameIncarnation(ctx context.Context, info NodeInfo) bool {
	n.healthMu.Lock()
	r, ok := n.removedAt[info.ID]
	n.healthMu.Unlock()
	if !ok || time.Since(r.at) >= removeGuard || r.addr != info.RaftAddr {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	pv, err := n.probe(ctx, info.HTTPAddr)
	return err == nil && pv.info.ID == info.ID && pv.hasState
}

// Removed reports whether this node knows it was removed from the cluster.
func (n *Node) Removed() bool { return n.removed.Load() }

// ClusterStatus is Status with every member's CaughtUp as the leader sees
// it: a follower asks the leader (within a second; on failure it reports
// what it knows itself).
func (n *Node) ClusterStatus(ctx context.Context) Status {
	s := n.Status()
	if s.Removed || s.LeaderHTTP == "" || s.LeaderID == n.id {
		return s
	}
	ctx, cancel := context.WithTimeout(ctx, memberProbeWait)
	defer cancel()
	pv, err := n.probe(ctx, s.LeaderHTTP)
	if err != nil || !pv.extended || pv.info.ID != s.LeaderID {
		return s
	}
	caught := make(map[string]bool, len(pv.members))
	for _, m := range pv.members {
		caught[m.id] = m.caughtUp
	}
	for i := range s.Nodes {
		if v, ok := caught[s.Nodes[i].ID]; ok {
			s.Nodes[i].CaughtUp = v
		}
	}
	return s
}
