package routing

import (
	"fmt"
	"strings"

	"github.com/omnirouter/omnirouter/capacity"
)

// Cause is why one agent may not be given one conversation now. The
// dispatcher decides eligibility with blocker, which returns a Cause, and
// Explain reports the same Causes: the two cannot disagree.
type Cause uint8

const (
	CauseNone              Cause = iota // eligible
	CauseOffline                        // the agent is offline
	CauseAway                           // the agent is away (email takes away agents with email.route_to_away)
	CauseTransfersOnly                  // the agent takes transfers only, not the queue
	CauseWaitingForEndUser              // the email's ticket is pending, on hold or solved: nothing is routed until the end user writes
	CauseMissingSkill                   // the agent lacks a required skill
	CauseOtherGroup                     // the agent is in none of the groups that may take it
	CauseSkillsTimeout                  // the agent would suit once routing.skills_timeout relaxes the requirement
	CauseFocusMode                      // routing.focus_mode: the agent has real-time work on another channel
	CauseNoCapacity                     // no spare capacity on the channel
	CauseAlreadyMissed                  // eligible, but missed it: offered it only when no other agent is eligible
	CauseExternalMode                   // eligible, but routing.mode is external and no engine has asked
	numCauses

	// causeRequirement is blocker's answer when the requirement does not
	// suit the agent; Explain says which part (requirementCause).
	causeRequirement = numCauses
)

var causeNames = [numCauses]string{"eligible", "offline", "away", "transfers_only", "waiting_for_end_user",
	"missing_skill", "other_group", "waiting_for_skills_timeout", "focus_mode", "no_capacity",
	"already_missed", "external_mode"}

func (c Cause) String() string {
	if c < numCauses {
		return causeNames[c]
	}
	return fmt.Sprintf("cause(%d)", uint8(c))
}

// CauseNames lists every cause by name, in the order Explain reports them.
func CauseNames() []string { return append([]string(nil), causeNames[1:]...) }

// blocker returns the first rule that keeps agent a from c now, or
// CauseNone when a is eligible: its status lets it receive work on the
// channel, the ticket waits on nobody but the agent, it has what c
// requires, focus mode allows it, and it has spare capacity there. The
// order is the order Explain reports causes in: what lasts longest first.
func (m *Machine) blocker(a *Agent, c *Conversation) Cause {
	switch {
	case !m.receives(a, c.Channel):
		return statusCause(a.Status)
	case !ticketOpen(c):
		return CauseWaitingForEndUser
	case !c.suits(a):
		return causeRequirement
	case !m.focusAllows(a, c.Channel):
		return CauseFocusMode
	case capacity.Spare(a.Capacity, a.Load, c.Channel) <= 0:
		return CauseNoCapacity
	}
	return CauseNone
}

func statusCause(s AgentStatus) Cause {
	switch s {
	case StatusOffline:
		return CauseOffline
	case StatusTransfersOnly:
		return CauseTransfersOnly
	}
	return CauseAway
}

// requirementCause says which part of c's requirement a lacks: a required
// skill, a group, or only what the skills timeout will relax.
func requirementCause(a *Agent, c *Conversation) Cause {
	relaxed := *c
	relaxed.Relaxed = true
	switch {
	case relaxed.suits(a):
		return CauseSkillsTimeout
	case !containsAll(a.Skills, c.Skills):
		return CauseMissingSkill
	}
	return CauseOtherGroup
}

// agentCause is what Explain says of agent a for queued conversation c:
// blocker's cause, with the requirement's made precise, and for an
// eligible agent what may still keep it from c (CauseNone: nothing).
func (m *Machine) agentCause(a *Agent, c *Conversation) Cause {
	switch cause := m.blocker(a, c); cause {
	case causeRequirement:
		return requirementCause(a, c)
	case CauseNone:
		switch {
		case contains(c.Missers, a.ID):
			return CauseAlreadyMissed
		case m.policy.Routing.Mode == ModeExternal:
			return CauseExternalMode
		}
		return CauseNone
	default:
		return cause
	}
}

// MaxCauseAgents is how many agent ids Explain names per cause.
const MaxCauseAgents = 5

// Explanation says where a conversation stands and, while it waits, what
// keeps each agent who takes its channel from it.
type Explanation struct {
	ConversationID string
	State          State
	Channel        capacity.Channel
	// AgentID is the agent it is offered to or held by (empty otherwise).
	AgentID string
	// Position is its 1-based place in its channel's queue, QueueLength
	// that queue's length; Position is 0 when it is not queued.
	Position    int
	QueueLength int
	// Considered counts the agents with capacity on its channel; Eligible
	// those the dispatcher may give it to now. Only a queued conversation
	// is explained agent by agent.
	Considered int
	Eligible   int
	Causes     []CauseCount
	// NextChangeAt is its earliest deadline (unix ms; 0: none): when the
	// skills timeout relaxes it, a call gives up waiting, an idle session
	// ends, and so on.
	NextChangeAt int64
}

// CauseCount is how many agents one cause keeps from the conversation.
type CauseCount struct {
	Cause  Cause
	Count  int
	Agents []string // the first MaxCauseAgents, by id
	// Detail: the skills missing, the groups that may take it, or the
	// loads against capacity of the agents named.
	Detail string
	// At is when the skills timeout relaxes the requirement (unix ms),
	// for CauseSkillsTimeout.
	At int64
}

// Explain says why conversation id waits. It reads the state only.
func (m *Machine) Explain(id string) (Explanation, error) {
	c := m.getConv(id)
	if c == nil {
		return Explanation{}, notFoundf(CodeConversationNotFound, "conversation %q not found", id)
	}
	e := Explanation{ConversationID: c.ID, State: c.State, Channel: c.Channel, NextChangeAt: c.nextDeadline(),
		QueueLength: m.queue[c.Channel].Len()}
	if held(c) {
		e.AgentID = c.AgentID
	}
	if c.State != StateQueued {
		return e, nil
	}
	k := qkey(c)
	m.queue[c.Channel].Ascend(func(q queueKey) bool {
		e.Position++
		return q != k
	})

	var byCause [numCauses]CauseCount
	var missing, loads []string
	m.agents.Ascend(func(r agentRef) bool {
		a := r.a
		if a.Capacity[c.Channel] <= 0 {
			return true
		}
		e.Considered++
		cause := m.agentCause(a, c)
		switch cause {
		case CauseNone:
			e.Eligible++
			return true // in auto mode, offered in the apply that made it eligible
		case CauseAlreadyMissed, CauseExternalMode:
			e.Eligible++
		case CauseMissingSkill:
			for _, s := range c.Skills {
				if !contains(a.Skills, s) && !contains(missing, s) {
					missing = append(missing, s)
				}
			}
		}
		cc := &byCause[cause]
		cc.Count++
		if len(cc.Agents) < MaxCauseAgents {
			cc.Agents = append(cc.Agents, a.ID)
			if cause == CauseNoCapacity {
				loads = append(loads, fmt.Sprintf("%s %d/%d", a.ID, a.Load[c.Channel], a.Capacity[c.Channel]))
			}
		}
		return true
	})
	for cause := CauseOffline; cause < numCauses; cause++ {
		cc := byCause[cause]
		if cc.Count == 0 {
			continue
		}
		cc.Cause = cause
		switch cause {
		case CauseMissingSkill:
			cc.Detail = strings.Join(sortedSet(missing), ", ")
		case CauseOtherGroup:
			cc.Detail = strings.Join(c.reqGroups(), ", ")
		case CauseSkillsTimeout:
			cc.At = c.deadlines[timerRelax]
		case CauseNoCapacity:
			cc.Detail = strings.Join(loads, ", ")
		case CauseFocusMode:
			cc.Detail = "real-time work on another channel"
		}
		e.Causes = append(e.Causes, cc)
	}
	return e, nil
}
