package routing

import "github.com/omnirouter/omnirouter/capacity"

// fork returns a copy of m that may be applied to, in O(n) for its lookup
// maps, while m goes on being read or applied to elsewhere (Clone's copy
// may only be read). m must not be applied to during the call.
func (m *Machine) fork() *Machine {
	f := m.Clone()
	f.forked = true
	f.match = matchWork{}
	f.convByID = make(map[string]*Conversation, f.convs.Len())
	f.convs.Ascend(func(r convRef) bool {
		f.convByID[r.c.ID] = r.c
		return true
	})
	f.agentByID = make(map[string]*Agent, f.agents.Len())
	f.agents.Ascend(func(r agentRef) bool {
		f.agentByID[r.id] = r.a
		return true
	})
	f.keyByName = make(map[string]*keyRecord, f.keys.Len())
	f.keys.each(0, func(r **keyRecord) bool {
		f.keyByName[(*r).Key] = *r // oldest first: a key's later record wins
		return true
	})
	return f
}

// MaxPreviewItems bounds each list of a PolicyPreview; its Totals count
// them all.
const MaxPreviewItems = 500

// PolicyPreview is what a policy patch would change now.
type PolicyPreview struct {
	Policy Policy // the policy with the patch applied
	// Offers are the conversations the change would offer or assign, and
	// to whom; Withdrawn those it would take back from the agent that has
	// them (offered or held before, not after). Counted and Uncounted are
	// the conversations an agent holds before and after that would start
	// or stop counting against its capacity; Agents every agent whose load
	// would change.
	Offers    []PreviewHolding
	Withdrawn []PreviewHolding
	Counted   []string
	Uncounted []string
	Agents    []PreviewLoad
	// Totals counts each list in full (the lists stop at MaxPreviewItems).
	Totals PreviewTotals
}

// PreviewHolding is one conversation and the agent it is (or was) with.
type PreviewHolding struct {
	ConversationID string
	AgentID        string
	State          State
}

// PreviewLoad is one agent's load before and after, against its capacity.
type PreviewLoad struct {
	AgentID       string
	Capacity      capacity.Limits
	Before, After capacity.Load
}

// PreviewTotals counts a preview's lists in full.
type PreviewTotals struct {
	Offers, Withdrawn, Counted, Uncounted, Agents int
}

// PreviewPolicy applies patch to a fork of m at m's clock, as SetPolicy
// would, and answers what it changed; m is not changed. m must not be
// applied to during the call: the cluster hands it a Clone.
func (m *Machine) PreviewPolicy(patch PolicyPatch) (PolicyPreview, error) {
	f := m.fork()
	if out := f.Apply(m.now, "", SetPolicy{Patch: patch}); out.Err != nil {
		return PolicyPreview{}, out.Err
	}
	p := PolicyPreview{Policy: f.policy}
	// Everything the apply wrote, f copied first (copy on write): an item
	// still shared with m is unchanged.
	f.convs.Ascend(func(r convRef) bool {
		after := r.c
		if after.cow != f.cow {
			return true
		}
		before, _ := m.convs.Get(convRef{seq: after.Seq})
		if before.c == nil {
			return true
		}
		p.compareConversation(before.c, after)
		return true
	})
	f.agents.Ascend(func(r agentRef) bool {
		after := r.a
		if after.cow != f.cow {
			return true
		}
		before, _ := m.agents.Get(agentRef{id: after.ID})
		if before.a != nil && before.a.Load != after.Load {
			p.Totals.Agents++
			if len(p.Agents) < MaxPreviewItems {
				p.Agents = append(p.Agents, PreviewLoad{AgentID: after.ID, Capacity: after.Capacity, Before: before.a.Load, After: after.Load})
			}
		}
		return true
	})
	return p, nil
}

func (p *PolicyPreview) compareConversation(before, after *Conversation) {
	if held(after) && (!held(before) || before.AgentID != after.AgentID) {
		p.Totals.Offers++
		if len(p.Offers) < MaxPreviewItems {
			p.Offers = append(p.Offers, PreviewHolding{ConversationID: after.ID, AgentID: after.AgentID, State: after.State})
		}
	}
	if held(before) && (!held(after) || before.AgentID != after.AgentID) {
		p.Totals.Withdrawn++
		if len(p.Withdrawn) < MaxPreviewItems {
			p.Withdrawn = append(p.Withdrawn, PreviewHolding{ConversationID: before.ID, AgentID: before.AgentID, State: before.State})
		}
	}
	if !held(before) || !held(after) || before.AgentID != after.AgentID {
		return // an offer or a withdrawal: not a change of counting
	}
	switch {
	case after.Counted && !before.Counted:
		p.Totals.Counted++
		if len(p.Counted) < MaxPreviewItems {
			p.Counted = append(p.Counted, after.ID)
		}
	case before.Counted && !after.Counted:
		p.Totals.Uncounted++
		if len(p.Uncounted) < MaxPreviewItems {
			p.Uncounted = append(p.Uncounted, after.ID)
		}
	}
}
