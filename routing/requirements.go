package routing

import "strings"

// What an agent needs to take a conversation: every required skill, and
// the conversation's group when it has one. A conversation may also carry
// optional skills and secondary groups: for routing.skills_timeout of its
// channel after its eligibility time only agents with every optional skill
// too, in the primary group, may take it; then the optional skills are
// dropped and agents of the secondary groups may take it as well
// (Relaxed, set by the relax timer).

// suits reports whether agent a has what c requires now (status, capacity
// and the rest aside).
func (c *Conversation) suits(a *Agent) bool {
	if !containsAll(a.Skills, c.Skills) || !c.Relaxed && !containsAll(a.Skills, c.OptionalSkills) {
		return false
	}
	return c.Group == "" || inAnyGroup(a, c.reqGroups())
}

func inAnyGroup(a *Agent, groups []string) bool {
	for _, g := range groups {
		if contains(a.Groups, g) {
			return true
		}
	}
	return false
}

// reqSkills is every skill c requires now.
func (c *Conversation) reqSkills() []string {
	if c.Relaxed || len(c.OptionalSkills) == 0 {
		return c.Skills
	}
	return sortedSet(append(append([]string(nil), c.Skills...), c.OptionalSkills...))
}

// reqGroups is the groups one of which an agent must be in to take c now
// (nil: any agent).
func (c *Conversation) reqGroups() []string {
	switch {
	case c.Group == "":
		return nil
	case !c.Relaxed || len(c.SecondaryGroups) == 0:
		return []string{c.Group}
	default:
		return sortedSet(append([]string{c.Group}, c.SecondaryGroups...))
	}
}

// classKey names c's requirement class: routable or not, the groups, the
// skills.
func classKey(c *Conversation) string {
	var b strings.Builder
	if !ticketOpen(c) {
		b.WriteString("!")
	}
	if c.Group != "" {
		for i, g := range c.reqGroups() {
			if i > 0 {
				b.WriteByte(1)
			}
			b.WriteString(g)
		}
	}
	for _, s := range c.reqSkills() {
		b.WriteByte(0)
		b.WriteString(s)
	}
	return b.String()
}

// relaxable reports whether c has anything to relax.
func (c *Conversation) relaxable() bool {
	return len(c.OptionalSkills) > 0 || len(c.SecondaryGroups) > 0
}

// armRelax arms c's relax timer at its eligibility time plus the channel's
// skills timeout (at once if that has passed), unless it has nothing to
// relax or is relaxed already.
func (m *Machine) armRelax(c *Conversation) {
	if c.Relaxed || !c.relaxable() {
		m.disarm(c, timerRelax)
		return
	}
	due := c.QueuedAt + ms(m.policy.Routing.SkillsTimeout[c.Channel])
	m.arm(c, timerRelax, max(0, due-m.now))
}

// relax drops c's optional skills and lets its secondary groups in.
func (m *Machine) relax(c *Conversation) {
	m.requeueClass(c, func() { c.Relaxed = true })
}

// requeueClass changes what decides c's requirement class, keeping it
// indexed when it is queued (and looking for an agent for it anew).
func (m *Machine) requeueClass(c *Conversation, change func()) {
	if c.State != StateQueued {
		change()
		return
	}
	m.queueDelete(c)
	change()
	m.queueInsert(c)
	m.match.conversation(c.ID)
}

// validRequirement checks the labels of a conversation's requirement.
func validRequirement(skills, optional []string, group string, secondary []string) *Error {
	if err := validLabels("skills", skills); err != nil {
		return err
	}
	if err := validLabels("optional_skills", optional); err != nil {
		return err
	}
	if err := validLabels("secondary_groups", secondary); err != nil {
		return err
	}
	if len(group) > MaxIDLen {
		return invalidf("invalid_group", "group is longer than %d bytes", MaxIDLen)
	}
	if group == "" && len(secondary) > 0 {
		return invalidf("invalid_secondary_groups", "secondary groups widen a primary group: set group too")
	}
	return nil
}
