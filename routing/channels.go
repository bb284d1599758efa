package routing

import "github.com/omnirouter/omnirouter/capacity"

// Email and voice: the rules of the two channels that are not live chat or
// messaging.
//
// An email is a ticket: no session timers; its ticket (new from creation,
// via email) decides whether it counts (new, open) or not (pending,
// on-hold, solved; it stays assigned). An end-user reply to a ticket that
// does not count opens it and makes it count again for the same agent,
// even above capacity, or sends it back to the queue with its eligibility
// time when that agent cannot receive email now.
//
// A call rings the agent it is offered to for voice.ring_timeout; reject or
// no answer rings the next, the call keeping its place. Accept answers it.
// When either side hangs up the agent stays held (routing state wrap_up,
// counting toward voice capacity) for voice.wrap_up, or until it releases
// the call. A call that ends before anyone answered (the caller hung up, or
// it waited voice.max_queue_wait, ringing included) is a missed call with a
// ticket (via missed_call, or voicemail when the caller left one).

// endUserEmail applies an end user's reply to an email.
func (m *Machine) endUserEmail(c *Conversation) {
	if c.Ticket == nil || c.Ticket.Status == TicketNew || c.Ticket.Status == TicketOpen {
		return
	}
	m.setTicket(c, TicketOpen)
	if !held(c) {
		return // queued: the ticket is routable again (setTicket re-indexed it)
	}
	if a := m.getAgent(c.AgentID); c.State == StateAssigned && !m.receives(a, capacity.Email) {
		m.requeue(c, "agent_not_available")
		return
	}
	m.recount(c) // counts again, above capacity if need be (exempt)
}

// hangUp ends a call from either side: one not yet answered is a missed
// call; an answered one puts its agent in wrap-up (or ends at once without
// wrap-up).
func (m *Machine) hangUp(c *Conversation, reason string, voicemail bool) {
	switch {
	case !c.Joined:
		m.missedCall(c, ReasonCallerHungUp, voicemail)
		return
	case c.State != StateAssigned || m.policy.Voice.WrapUp <= 0:
		// Without wrap-up, or answered once but waiting again (its agent
		// went away): nobody to hold.
		m.endSession(c, reason)
		return
	}
	m.heldStat(c, -1)
	c.State = StateWrapUp
	m.heldStat(c, 1)
	c.Activity = ActivityEnded
	c.EndedReason = reason
	for t := range numTimers {
		if t != timerCloseSolved {
			m.disarm(c, t)
		}
	}
	m.arm(c, timerWrapUp, ms(m.policy.Voice.WrapUp))
	m.emit(EventWrapUp, c.ID, c.AgentID, EventData{Reason: reason})
}

// missedCall ends a call nobody answered, with its ticket.
func (m *Machine) missedCall(c *Conversation, reason string, voicemail bool) {
	if c.Ticket == nil {
		via := ViaMissedCall
		if voicemail {
			via = ViaVoicemail
		}
		m.newTicket(c, TicketNew, via)
	}
	m.endSession(c, reason)
}

// releaseWrapUp is an agent releasing a call in wrap-up: it ends now.
func (m *Machine) releaseWrapUp(p Release) Outcome {
	if p.SetTicket {
		return Outcome{Err: invalidf("invalid_ticket_status", "a call has no ticket status to set on release")}
	}
	c, err := m.convOrErr(p.ConversationID)
	if err != nil {
		return Outcome{Err: err}
	}
	if err := m.heldBy(c, p.AgentID, StateWrapUp); err != nil {
		if c.State == StateAssigned && c.AgentID == p.AgentID {
			return Outcome{Err: conflictf(CodeNotAssigned, "call %q is still going on: end it (hang up) first", c.ID)}
		}
		return Outcome{Err: err}
	}
	c = m.writableConv(c)
	m.endSession(c, c.EndedReason)
	return Outcome{Conversation: c, Agent: &Agent{ID: p.AgentID}}
}
