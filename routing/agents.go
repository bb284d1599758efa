package routing

import (
	"github.com/omnirouter/omnirouter/capacity"
)

// Limits on identifiers and labels. IDs appear in URLs, so they are limited
// to a URL-safe alphabet.
const (
	MaxIDLen    = 128
	MaxNameLen  = 256
	MaxLabels   = 64
	MaxPriority = 1000
)

// ValidID checks an agent or conversation id (what names it in the
// error): 1..MaxIDLen bytes of letters, digits and - _ . : @, and not "."
// or "..", which do not survive a URL. It is nil or an *Error with code
// invalid_id.
func ValidID(what, id string) error {
	if err := validID(what, id); err != nil {
		return err
	}
	return nil
}

// ValidLabels checks a list of skills or groups (what names the list).
func ValidLabels(what string, labels []string) error {
	if err := validLabels(what, labels); err != nil {
		return err
	}
	return nil
}

func validID(what, id string) *Error {
	if id == "" {
		return invalidf(CodeInvalidID, "%s is required", what)
	}
	if len(id) > MaxIDLen {
		return invalidf(CodeInvalidID, "%s is longer than %d bytes", what, MaxIDLen)
	}
	if id == "." || id == ".." {
		// A URL path segment clients and proxies remove: /v1/agents/..
		// would name another resource.
		return invalidf(CodeInvalidID, "%s may not be %q", what, id)
	}
	for i := 0; i < len(id); i++ {
		b := id[i]
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '-' || b == '_' || b == '.' || b == ':' || b == '@') {
			return invalidf(CodeInvalidID, "%s %q may only hold letters, digits and - _ . : @", what, id)
		}
	}
	return nil
}

func validLabels(what string, labels []string) *Error {
	if len(labels) > MaxLabels {
		return invalidf("invalid_"+what, "at most %d %s", MaxLabels, what)
	}
	for _, l := range labels {
		if l == "" || len(l) > MaxIDLen {
			return invalidf("invalid_"+what, "each of %s must be 1..%d bytes", what, MaxIDLen)
		}
	}
	return nil
}

func (m *Machine) agentOrErr(id string) (*Agent, *Error) {
	if err := validID("agent id", id); err != nil {
		return nil, err
	}
	a := m.getAgent(id)
	if a == nil {
		return nil, notFoundf(CodeAgentNotFound, "agent %q not found", id)
	}
	return a, nil
}

func (m *Machine) upsertAgent(c UpsertAgent) Outcome {
	if err := validID("agent id", c.ID); err != nil {
		return Outcome{Err: err}
	}
	if len(c.Name) > MaxNameLen {
		return Outcome{Err: invalidf("invalid_name", "name is longer than %d bytes", MaxNameLen)}
	}
	if err := c.Capacity.Validate(); err != nil {
		return Outcome{Err: invalidf(CodeInvalidCapacity, "%v", err)}
	}
	if err := validLabels("skills", c.Skills); err != nil {
		return Outcome{Err: err}
	}
	if err := validLabels("groups", c.Groups); err != nil {
		return Outcome{Err: err}
	}

	a := m.getAgent(c.ID)
	if a == nil {
		a = &Agent{ID: c.ID, Status: StatusOffline, cow: m.cow}
		m.putAgent(a)
		m.loadChangedFor(a.ID)
	} else {
		a = m.writableAgent(a)
		if a.Capacity != c.Capacity {
			m.loadChangedFor(a.ID)
		}
		m.agentStat(a, -1)
	}
	a.Name = c.Name
	a.Capacity = c.Capacity
	a.Skills = sortedSet(c.Skills)
	a.Groups = sortedSet(c.Groups)
	m.agentStat(a, 1)
	m.exemptExcess(a)
	m.reindexAvail(a)
	m.match.agent(a.ID) // skills or groups may now match queued work
	return Outcome{Agent: a}
}

// exemptExcess marks, after a limit was lowered, enough of the agent's
// counted conversations as exempt that load <= limit + exempt holds; the
// lowest ids first, for determinism.
func (m *Machine) exemptExcess(a *Agent) {
	for i := range a.Load {
		ch := capacity.Channel(i)
		var counted []string
		exempt := 0
		for _, id := range a.Conversations {
			c := m.getConv(id)
			if c.Channel != ch || !c.Counted {
				continue
			}
			if c.Exempt {
				exempt++
			} else {
				counted = append(counted, id)
			}
		}
		need := a.Load[ch] - a.Capacity[ch] - exempt
		for i := 0; i < need && i < len(counted); i++ {
			m.convW(counted[i]).Exempt = true
		}
	}
}

func (m *Machine) removeAgent(c RemoveAgent) Outcome {
	a, err := m.agentOrErr(c.ID)
	if err != nil {
		return Outcome{Err: err}
	}
	if len(a.Conversations) > 0 && !c.Force {
		return Outcome{Err: conflictf(CodeAgentBusy, "agent %q holds %d conversations; remove it with force to send them back to the queue first", a.ID, len(a.Conversations))}
	}
	a = m.writableAgent(a)
	for _, id := range a.Conversations {
		if c := m.convW(id); c.State == StateWrapUp {
			m.endSession(c, c.EndedReason) // the call is over
		} else {
			m.requeue(c, "agent_removed")
		}
	}
	m.disarmAgent(a)
	m.dropAvail(a)
	m.agentStat(a, -1)
	m.deleteAgent(a.ID)
	m.emit(EventAgentRemoved, "", a.ID, EventData{})
	removed := *a
	return Outcome{Agent: &removed}
}

func (m *Machine) setAgentStatus(c SetAgentStatus) Outcome {
	if !c.Status.Valid() {
		return Outcome{Err: invalidf("invalid_status", "unknown agent status %d", c.Status)}
	}
	a, err := m.agentOrErr(c.AgentID)
	if err != nil {
		return Outcome{Err: err}
	}
	if a.Status == c.Status {
		return Outcome{Agent: a}
	}
	a = m.writableAgent(a)
	prev := a.Status
	m.agentStat(a, -1)
	a.Status = c.Status
	m.agentStat(a, 1)
	m.emit(EventAgentStatus, "", a.ID, EventData{Status: c.Status.String(), Previous: prev.String()})
	if c.Status == StatusOffline {
		// Open offers go back at once; assigned work after reassign_delay.
		holdsAssigned := false
		for _, id := range a.Conversations {
			conv := m.getConv(id)
			if conv.State == StateOffered {
				m.requeue(m.writableConv(conv), "agent_offline")
			} else {
				holdsAssigned = true
			}
		}
		if holdsAssigned {
			m.armAgent(a, ms(m.policy.Routing.ReassignDelay))
		}
	} else {
		m.disarmAgent(a)
	}
	m.reindexAvail(a)
	return Outcome{Agent: a}
}

// fireReassign runs when an agent's reassign_delay has passed: if it is still
// offline, its active assigned conversations go back to the queue with their
// original eligibility time. Inactive messaging conversations and emails stay
// with it (their tickets stay assigned), and so do calls in wrap-up.
func (m *Machine) fireReassign(id string) {
	a := m.getAgent(id)
	if a == nil {
		return
	}
	a = m.writableAgent(a)
	a.ReassignAt = 0
	if a.Status != StatusOffline {
		return
	}
	for _, cid := range a.Conversations {
		conv := m.getConv(cid)
		switch {
		case conv.Channel == capacity.Messaging && conv.Activity != ActivityActive,
			conv.Channel == capacity.Email, // tickets stay with their agent
			conv.State == StateWrapUp:      // the call is over
			continue
		}
		m.requeue(m.writableConv(conv), "agent_offline")
	}
}
