package routing

import "github.com/omnirouter/omnirouter/capacity"

// Routing control: transfers and updates of a conversation after it was
// created.

func (m *Machine) transfer(t Transfer) Outcome {
	if (t.ToAgent == "") == (t.ToGroup == "") {
		return Outcome{Err: invalidf(CodeInvalidTransfer, "a transfer names to_agent or to_group, one of them")}
	}
	if t.ToAgent != "" {
		if err := validID("to_agent", t.ToAgent); err != nil {
			return Outcome{Err: err}
		}
	}
	if err := validLabels("to_group", []string{t.ToGroup}); t.ToGroup != "" && err != nil {
		return Outcome{Err: err}
	}
	if t.Note != "" {
		if err := validText(t.Note); err != nil {
			return Outcome{Err: err}
		}
	}
	c, err := m.openConv(t.ConversationID)
	if err != nil {
		return Outcome{Err: err}
	}
	if err := m.heldBy(c, t.AgentID, StateAssigned); err != nil {
		return Outcome{Err: err}
	}
	var target *Agent
	if t.ToAgent != "" {
		if t.ToAgent == t.AgentID {
			return Outcome{Err: invalidf(CodeInvalidTransfer, "agent %q holds conversation %q already", t.ToAgent, c.ID)}
		}
		if target, err = m.agentOrErr(t.ToAgent); err != nil {
			return Outcome{Err: err}
		}
		if target.Status != StatusOnline && target.Status != StatusTransfersOnly || capacity.Spare(target.Capacity, target.Load, c.Channel) == 0 {
			return Outcome{Err: conflictf(CodeTargetUnavailable, "agent %q cannot take a %s transfer now (status %s, %s load %d of %d)",
				target.ID, c.Channel, target.Status, c.Channel, target.Load[c.Channel], target.Capacity[c.Channel])}
		}
	}
	if t.Note != "" {
		if err := m.transcriptRoom(c, t.Note); err != nil {
			return Outcome{Err: err}
		}
	}

	c = m.writableConv(c)
	if t.Note != "" {
		appendMessage(c, Message{Author: AuthorSystem, Text: t.Note, At: m.now})
	}
	from := c.AgentID
	m.unhold(c, StateQueued, false) // the holder's capacity is free at once
	c.TransferPending = true
	m.emit(EventTransferReq, c.ID, from, EventData{TargetAgent: t.ToAgent, TargetGroup: t.ToGroup})
	if target != nil {
		c.TransferTarget = target.ID
		m.route(c, m.writableAgent(target), false)
		return Outcome{Conversation: c}
	}
	c.Group = t.ToGroup // not indexed in the queue yet: enqueue does it
	m.enqueue(c)
	return Outcome{Conversation: c}
}

// tookTransfer notes that a transferred conversation has a new holder.
func (m *Machine) tookTransfer(c *Conversation) {
	if c.TransferPending {
		c.TransferPending, c.TransferTarget = false, ""
		m.emit(EventTransferred, c.ID, c.AgentID, EventData{})
	}
}

// transferDeclined sends a conversation its transfer target did not take
// to the queue of the target's first group (or its own group).
func (m *Machine) transferDeclined(c *Conversation, target string) {
	c.TransferTarget = ""
	if a := m.getAgent(target); a != nil && len(a.Groups) > 0 {
		c.Group = a.Groups[0]
	}
}

func (m *Machine) update(u UpdateConversation) Outcome {
	if u.Set == 0 || u.Set&^updateAll != 0 {
		return Outcome{Err: invalidf(CodeInvalidCommand, "an update sets one field or more")}
	}
	if u.Set&UpdatePriority != 0 && (u.Priority < -MaxPriority || u.Priority > MaxPriority) {
		return Outcome{Err: invalidf(CodeInvalidPriority, "priority must be within -%d..%d", MaxPriority, MaxPriority)}
	}
	c, err := m.openConv(u.ConversationID)
	if err != nil {
		return Outcome{Err: err}
	}
	// The requirement it would have.
	skills, optional, group, secondary := c.Skills, c.OptionalSkills, c.Group, c.SecondaryGroups
	if u.Set&UpdateSkills != 0 {
		skills = u.Skills
	}
	if u.Set&UpdateOptionalSkills != 0 {
		optional = u.OptionalSkills
	}
	if u.Set&UpdateGroup != 0 {
		group = u.Group
	}
	if u.Set&UpdateSecondaryGroups != 0 {
		secondary = u.SecondaryGroups
	}
	if err := validRequirement(skills, optional, group, secondary); err != nil {
		return Outcome{Err: err}
	}
	c = m.writableConv(c)
	m.heldStat(c, -1) // its group may change
	m.requeueClass(c, func() {
		if u.Set&UpdatePriority != 0 {
			c.Priority = u.Priority
		}
		c.Skills, c.OptionalSkills, c.Group, c.SecondaryGroups = sortedSet(skills), sortedSet(optional), group, sortedSet(secondary)
	})
	m.heldStat(c, 1)
	m.armRelax(c)
	m.emit(EventUpdated, c.ID, c.AgentID, EventData{})
	return Outcome{Conversation: c}
}
