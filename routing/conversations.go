package routing

import (
	"github.com/omnirouter/omnirouter/capacity"
)

// MaxTextLen bounds one message inside the state machine; the API enforces
// its own, usually smaller, configurable limit. MaxSubjectLen bounds an
// email's subject.
const (
	MaxTextLen    = 1 << 20
	MaxSubjectLen = 998 // an email header line (RFC 5322)
)

// System notices appended to transcripts.
const noticeAgentLeft = "The agent has left the chat."

func (m *Machine) convOrErr(id string) (*Conversation, *Error) {
	if err := validID("conversation id", id); err != nil {
		return nil, err
	}
	c := m.getConv(id)
	if c == nil {
		return nil, notFoundf(CodeConversationNotFound, "conversation %q not found", id)
	}
	return c, nil
}

// openConv returns a conversation that is not ended, or the error to refuse
// the command with.
func (m *Machine) openConv(id string) (*Conversation, *Error) {
	c, err := m.convOrErr(id)
	if err != nil {
		return nil, err
	}
	if c.State == StateEnded || c.State == StateWrapUp {
		if c.Channel == capacity.Messaging {
			return nil, conflictf(CodeConversationEnded, "conversation %q was released and has ended; start a new conversation", id)
		}
		return nil, conflictf(CodeConversationEnded, "conversation %q has ended", id)
	}
	return c, nil
}

// transcriptRoom refuses a message that would take c's transcript beyond
// limits.transcript_messages or limits.transcript_bytes.
func (m *Machine) transcriptRoom(c *Conversation, text string) *Error {
	lim := m.policy.Limits
	if len(c.Transcript)+1 > lim.TranscriptMessages || c.TranscriptBytes+len(text) > lim.TranscriptBytes {
		return tooLargef(CodeTranscriptFull, "the transcript of conversation %q is full: %d messages and %d bytes, limits %d and %d",
			c.ID, len(c.Transcript), c.TranscriptBytes, lim.TranscriptMessages, lim.TranscriptBytes)
	}
	return nil
}

// appendMessage adds msg to c's transcript (which has room for it).
func appendMessage(c *Conversation, msg Message) {
	c.Transcript = append(c.Transcript, msg)
	c.TranscriptBytes += len(msg.Text)
}

// appendNotice adds a system notice when the transcript has room for it;
// a full transcript goes without: the limit holds for every message.
func (m *Machine) appendNotice(c *Conversation, text string) {
	if m.transcriptRoom(c, text) == nil {
		appendMessage(c, Message{Author: AuthorSystem, Text: text, At: m.now})
	}
}

func validText(text string) *Error {
	if text == "" {
		return invalidf(CodeInvalidText, "message text is required")
	}
	if len(text) > MaxTextLen {
		return invalidf(CodeInvalidText, "message text is longer than %d bytes", MaxTextLen)
	}
	return nil
}

func (m *Machine) create(c CreateConversation) Outcome {
	if err := validID("conversation id", c.ID); err != nil {
		return Outcome{Err: err}
	}
	if !c.Channel.Valid() {
		return Outcome{Err: invalidf("invalid_channel", "unknown channel %d", c.Channel)}
	}
	if !c.Client.Valid() {
		return Outcome{Err: invalidf("invalid_client", "unknown client %d", c.Client)}
	}
	if c.Channel != capacity.Chat && c.Client != ClientNone {
		return Outcome{Err: invalidf("invalid_client", "client applies to chat only")}
	}
	if c.Subject != "" && c.Channel != capacity.Email {
		return Outcome{Err: invalidf("invalid_subject", "a subject is for email only")}
	}
	if len(c.Subject) > MaxSubjectLen {
		return Outcome{Err: invalidf("invalid_subject", "subject is longer than %d bytes", MaxSubjectLen)}
	}
	if c.Channel == capacity.Email && c.Message == "" {
		return Outcome{Err: invalidf(CodeInvalidText, "an email needs its message")}
	}
	if c.Channel == capacity.Voice && c.Message != "" {
		return Outcome{Err: invalidf(CodeInvalidText, "a call has no message")}
	}
	if c.Priority < -MaxPriority || c.Priority > MaxPriority {
		return Outcome{Err: invalidf(CodeInvalidPriority, "priority must be within -%d..%d", MaxPriority, MaxPriority)}
	}
	if err := validRequirement(c.Skills, c.OptionalSkills, c.Group, c.SecondaryGroups); err != nil {
		return Outcome{Err: err}
	}
	if len(c.VisitorID) > MaxIDLen {
		return Outcome{Err: invalidf("invalid_visitor_id", "visitor_id is longer than %d bytes", MaxIDLen)}
	}
	if c.Message != "" {
		if err := validText(c.Message); err != nil {
			return Outcome{Err: err}
		}
		if len(c.Message) > m.policy.Limits.TranscriptBytes {
			return Outcome{Err: tooLargef(CodeTranscriptFull, "the first message is %d bytes; limits.transcript_bytes is %d", len(c.Message), m.policy.Limits.TranscriptBytes)}
		}
	}
	if m.getConv(c.ID) != nil {
		return Outcome{Err: conflictf(CodeConversationExists, "conversation %q already exists", c.ID)}
	}

	conv := &Conversation{
		ID: c.ID, Channel: c.Channel, Client: c.Client, PushEnabled: c.PushEnabled,
		Priority: c.Priority, Skills: sortedSet(c.Skills), Group: c.Group, VisitorID: c.VisitorID, Subject: c.Subject,
		OptionalSkills: sortedSet(c.OptionalSkills), SecondaryGroups: sortedSet(c.SecondaryGroups),
		Activity: ActivityActive, CreatedAt: m.now, QueuedAt: m.now, Seq: m.nextSeq, cow: m.cow,
	}
	if conv.Channel == capacity.Chat && conv.Client == ClientNone {
		conv.Client = ClientWeb
	}
	m.nextSeq++
	m.putConv(conv)
	switch conv.Channel {
	case capacity.Messaging:
		m.newTicket(conv, TicketNew, ViaMessaging)
	case capacity.Email:
		m.newTicket(conv, TicketNew, ViaEmail)
	}
	if c.Message != "" {
		appendMessage(conv, Message{Author: AuthorVisitor, Text: c.Message, At: m.now})
	}
	m.armActivityTimers(conv)
	m.armRelax(conv)
	m.statCreated(conv)
	m.enqueue(conv)
	m.emit(EventQueued, conv.ID, "", EventData{})
	return Outcome{Conversation: conv}
}

// armActivityTimers starts a new conversation's activity clock: an email
// has none; a call waits at most voice.max_queue_wait for an answer.
func (m *Machine) armActivityTimers(c *Conversation) {
	switch {
	case c.Channel == capacity.Email:
	case c.Channel == capacity.Voice:
		m.arm(c, timerMaxWait, ms(m.policy.Voice.MaxQueueWait))
	case c.Channel == capacity.Messaging:
		m.arm(c, timerInactivity, ms(m.policy.Messaging.InactivityTimeout))
	case c.Client == ClientMobileSDK:
		m.arm(c, timerInactivity, ms(m.policy.Mobile.InactivityTimeout))
	default:
		m.arm(c, timerIdle, ms(m.policy.Web.IdleAfter))
	}
}

func (m *Machine) newTicket(c *Conversation, status TicketStatus, via string) {
	c.Ticket = &Ticket{ID: ticketID(m.nextTicket), Status: status, CreatedAt: m.now, Via: via}
	m.nextTicket++
	m.emit(EventTicketCreated, c.ID, c.AgentID, EventData{Ticket: c.Ticket, Status: status.String()})
}

// setTicket changes the ticket's status (tickets are replaced, never
// modified in place: clones share them). A queued conversation may become
// routable or stop being so.
func (m *Machine) setTicket(c *Conversation, status TicketStatus) {
	if c.State == StateQueued {
		// The ticket is part of the requirement class: re-index.
		m.queueDelete(c)
		defer func() {
			m.queueInsert(c)
			m.match.conversation(c.ID)
		}()
	}
	if c.Ticket == nil {
		m.newTicket(c, status, ViaAPI)
	} else if c.Ticket.Status != status {
		t := *c.Ticket
		t.Status = status
		c.Ticket = &t
		m.emit(EventTicketUpdated, c.ID, c.AgentID, EventData{Ticket: c.Ticket, Status: status.String()})
	}
	// A solved ticket closes close_solved_after later, unless it changes
	// first.
	switch {
	case status != TicketSolved:
		m.disarm(c, timerCloseSolved)
	case c.deadlines[timerCloseSolved] == 0:
		m.arm(c, timerCloseSolved, ms(m.policy.Ticket.CloseSolvedAfter))
	}
}

// closeTicket closes a ticket that stayed solved: its session ends, if it
// was still open, which starts its retention window.
func (m *Machine) closeTicket(c *Conversation) {
	t := *c.Ticket
	t.Status = TicketClosed
	c.Ticket = &t
	m.emit(EventTicketUpdated, c.ID, c.AgentID, EventData{Ticket: c.Ticket, Status: TicketClosed.String()})
	if c.State != StateEnded {
		m.endSession(c, ReasonTicketClosed)
	}
}

func (m *Machine) postMessage(p PostMessage) Outcome {
	if !p.Author.Valid() {
		return Outcome{Err: invalidf("invalid_author", "unknown author %d", p.Author)}
	}
	if err := validText(p.Text); err != nil {
		return Outcome{Err: err}
	}
	c, err := m.openConv(p.ConversationID)
	if err != nil {
		return Outcome{Err: err}
	}
	if c.Channel == capacity.Voice && p.Author != AuthorSystem {
		return Outcome{Err: conflictf(CodeWrongChannel, "a call has no messages")}
	}
	if p.Author == AuthorAgent {
		if _, err := m.agentOrErr(p.AgentID); err != nil {
			return Outcome{Err: err}
		}
		if c.State != StateAssigned || c.AgentID != p.AgentID {
			return Outcome{Err: conflictf(CodeNotAssigned, "conversation %q is not assigned to agent %q", c.ID, p.AgentID)}
		}
	}
	if err := m.transcriptRoom(c, p.Text); err != nil {
		return Outcome{Err: err}
	}
	c = m.writableConv(c)
	msg := Message{Author: p.Author, Text: p.Text, At: m.now}
	if p.Author == AuthorAgent {
		msg.AgentID = p.AgentID
	}
	appendMessage(c, msg)
	m.emit(EventMessage, c.ID, msg.AgentID, EventData{Message: &msg})

	switch {
	case p.Author == AuthorSystem:
	case c.Channel == capacity.Email:
		if p.Author == AuthorVisitor {
			m.endUserEmail(c)
		}
	case c.Channel == capacity.Messaging && p.Author == AuthorVisitor:
		m.endUserMessage(c)
	case c.Channel == capacity.Messaging:
		// The inactivity clock starts at the first agent message after the
		// end user's last one.
		if c.AwaitAgent {
			c.AwaitAgent = false
			m.arm(c, timerInactivity, ms(m.policy.Messaging.InactivityTimeout))
		}
	case p.Author == AuthorVisitor:
		m.visitorActivity(c)
		if c.State == StateUnassigned {
			// Reopen: the same conversation goes back to the queue with its
			// original eligibility time and transcript.
			m.disarm(c, timerAgentEnded)
			m.enqueue(c)
			m.emit(EventRequeued, c.ID, "", EventData{Reason: "visitor_message"})
		}
	case c.Client == ClientMobileSDK:
		m.arm(c, timerInactivity, ms(m.policy.Mobile.InactivityTimeout)) // agent chat activity
	}
	return Outcome{Conversation: c}
}

// visitorActivity restarts a chat's idle or inactivity clock.
func (m *Machine) visitorActivity(c *Conversation) {
	if c.Activity == ActivityInactive {
		c.Activity = ActivityActive
		m.emit(EventActive, c.ID, c.AgentID, EventData{})
	}
	if c.Client == ClientMobileSDK {
		m.arm(c, timerInactivity, ms(m.policy.Mobile.InactivityTimeout))
		return
	}
	m.disarm(c, timerIdleEnd)
	m.arm(c, timerIdle, ms(m.policy.Web.IdleAfter))
}

// endUserMessage applies a messaging end user's message: reactivation,
// counting again (even above capacity), and the inactivity clock.
func (m *Machine) endUserMessage(c *Conversation) {
	reactivated := c.Activity == ActivityInactive
	if reactivated {
		c.Activity = ActivityActive
		m.emit(EventActive, c.ID, c.AgentID, EventData{})
	}
	if c.Ticket != nil && c.Ticket.Status != TicketNew {
		m.setTicket(c, TicketOpen)
	}
	if held(c) {
		if a := m.getAgent(c.AgentID); reactivated && a.Status != StatusOnline && c.State == StateAssigned {
			m.disarm(c, timerInactivity)
			c.AwaitAgent = false
			m.requeue(c, "agent_not_online")
		} else {
			m.recount(c)
			c.AwaitAgent = true
			m.disarm(c, timerInactivity)
			return
		}
	}
	m.arm(c, timerInactivity, ms(m.policy.Messaging.InactivityTimeout))
}

func (m *Machine) presence(p Presence) Outcome {
	if !p.Event.Valid() {
		return Outcome{Err: invalidf("invalid_presence_event", "unknown presence event %d", p.Event)}
	}
	c, err := m.openConv(p.ConversationID)
	if err != nil {
		return Outcome{Err: err}
	}
	if c.Channel != capacity.Chat {
		return Outcome{Err: conflictf(CodeWrongChannel, "presence events apply to live chat, not %s", c.Channel)}
	}
	if (p.Event == PresenceBackgrounded || p.Event == PresenceForegrounded) && c.Client != ClientMobileSDK {
		return Outcome{Err: conflictf("wrong_client", "%s applies to the mobile SDK only", p.Event)}
	}
	c = m.writableConv(c)
	switch p.Event {
	case PresenceActivity:
		m.visitorActivity(c)
	case PresenceDisconnected:
		c.Disconnected = true
		timeout := m.policy.Web.DisconnectTimeout
		if c.Client == ClientMobileSDK {
			timeout = m.policy.Mobile.DisconnectTimeout
		}
		if c.deadlines[timerDisconnect] == 0 {
			m.arm(c, timerDisconnect, ms(timeout))
		}
	case PresenceConnected:
		c.Disconnected = false
		m.disarm(c, timerDisconnect)
	case PresenceBackgrounded:
		c.Backgrounded = true
		if !c.PushEnabled && c.deadlines[timerBackground] == 0 {
			m.arm(c, timerBackground, ms(m.policy.Mobile.BackgroundTimeout))
		}
	case PresenceForegrounded:
		c.Backgrounded = false
		m.disarm(c, timerBackground)
	}
	return Outcome{Conversation: c}
}

// heldBy checks that agentID exists and that c is in state want and held by
// it.
func (m *Machine) heldBy(c *Conversation, agentID string, want State) *Error {
	if _, err := m.agentOrErr(agentID); err != nil {
		return err
	}
	if c.State == want && c.AgentID == agentID {
		return nil
	}
	if want == StateOffered {
		return conflictf(CodeNotOffered, "conversation %q is not offered to agent %q (state %s)", c.ID, agentID, c.State)
	}
	return conflictf(CodeNotAssigned, "conversation %q is not assigned to agent %q (state %s)", c.ID, agentID, c.State)
}

func (m *Machine) accept(p Accept) Outcome {
	c, err := m.openConv(p.ConversationID)
	if err != nil {
		return Outcome{Err: err}
	}
	if c.State == StateAssigned && c.AgentID == p.AgentID {
		return Outcome{Conversation: c} // a retried accept
	}
	if err := m.heldBy(c, p.AgentID, StateOffered); err != nil {
		return Outcome{Err: err}
	}
	c = m.writableConv(c)
	m.disarm(c, timerOffer)
	m.heldStat(c, -1)
	c.State = StateAssigned
	m.heldStat(c, 1)
	m.joined(c)
	m.emit(EventAssigned, c.ID, c.AgentID, EventData{})
	m.tookTransfer(c)
	return Outcome{Conversation: c}
}

func (m *Machine) reject(p Reject) Outcome {
	c, err := m.openConv(p.ConversationID)
	if err != nil {
		return Outcome{Err: err}
	}
	if err := m.heldBy(c, p.AgentID, StateOffered); err != nil {
		return Outcome{Err: err}
	}
	c = m.writableConv(c)
	m.returnOffer(c, EventRejected)
	return Outcome{Conversation: c}
}

// returnOffer puts an offered conversation back in its place in the queue,
// remembering that the agent missed it.
func (m *Machine) returnOffer(c *Conversation, event string) {
	agent := c.AgentID
	c.Missers = withString(c.Missers, agent)
	m.unhold(c, StateQueued, false)
	if c.TransferTarget == agent {
		m.transferDeclined(c, agent)
	}
	m.enqueue(c)
	m.emit(event, c.ID, agent, EventData{})
}

func (m *Machine) leave(p Leave) Outcome {
	c, err := m.openConv(p.ConversationID)
	if err != nil {
		return Outcome{Err: err}
	}
	if c.Channel != capacity.Chat {
		return Outcome{Err: conflictf(CodeWrongChannel, "leave applies to live chat; release a messaging conversation instead")}
	}
	if err := m.heldBy(c, p.AgentID, StateAssigned); err != nil {
		return Outcome{Err: err}
	}
	c = m.writableConv(c)
	m.unassign(c, "agent_left")
	return Outcome{Conversation: c}
}

// unassign takes a chat from its agent; the session stays open and a
// visitor message puts it back in the queue.
func (m *Machine) unassign(c *Conversation, reason string) {
	agent := c.AgentID
	m.unhold(c, StateUnassigned, false)
	m.emit(EventUnassigned, c.ID, agent, EventData{Reason: reason})
}

func (m *Machine) end(p End) Outcome {
	if !p.By.Valid() {
		return Outcome{Err: invalidf("invalid_by", "unknown ender %d", p.By)}
	}
	if p.Voicemail && p.By != EndedByVisitor {
		return Outcome{Err: invalidf("invalid_voicemail", "voicemail is for a caller who hangs up")}
	}
	c, err := m.openConv(p.ConversationID)
	if err != nil {
		return Outcome{Err: err}
	}
	if p.Voicemail && c.Channel != capacity.Voice {
		return Outcome{Err: invalidf("invalid_voicemail", "voicemail is for a call")}
	}
	if p.By == EndedByVisitor {
		switch c.Channel {
		case capacity.Messaging, capacity.Email:
			return Outcome{Err: conflictf(CodeWrongChannel, "%s has no session the end user can end", c.Channel)}
		case capacity.Voice:
			c = m.writableConv(c)
			m.hangUp(c, ReasonVisitorEnded, p.Voicemail)
			return Outcome{Conversation: c}
		}
		c = m.writableConv(c)
		m.endSession(c, ReasonVisitorEnded)
		return Outcome{Conversation: c}
	}
	if err := m.heldBy(c, p.AgentID, StateAssigned); err != nil {
		return Outcome{Err: err}
	}
	switch {
	case c.Channel == capacity.Voice:
		c = m.writableConv(c)
		m.hangUp(c, ReasonAgentEnded, false)
		return Outcome{Conversation: c}
	case c.Channel == capacity.Messaging || c.Channel == capacity.Email:
		return m.release(Release{AgentID: p.AgentID, ConversationID: c.ID})
	case c.Client == ClientMobileSDK:
		// The SDK session outlives the agent for agent_ended_timeout: a
		// visitor message in that window reopens the chat.
		c = m.writableConv(c)
		m.unassign(c, ReasonAgentEnded)
		m.disarm(c, timerDisconnect)
		m.arm(c, timerAgentEnded, ms(m.policy.Mobile.AgentEndedTimeout))
		return Outcome{Conversation: c}
	default:
		if !m.policy.AgentCanEndChat {
			return Outcome{Err: conflictf(CodeAgentEndDisabled, "agents may not end chats (policy agent_can_end_chat is off); leave the chat instead")}
		}
		c = m.writableConv(c)
		m.appendNotice(c, noticeAgentLeft)
		m.endSession(c, ReasonAgentEnded)
		return Outcome{Conversation: c}
	}
}

// endSession ends c for good: capacity released, out of the queue, timers
// disarmed, a missed chat gets its ticket now, and one conversation.ended
// event carries the whole transcript.
func (m *Machine) endSession(c *Conversation, reason string) {
	m.dequeue(c)
	m.unhold(c, StateEnded, true)
	for t := range numTimers {
		if t != timerCloseSolved { // a solved ticket still closes
			m.disarm(c, t)
		}
	}
	c.State = StateEnded
	c.Activity = ActivityEnded
	c.EndedReason = reason
	c.TransferPending, c.TransferTarget = false, ""
	c.EndedAt = m.now
	c.AwaitAgent = false
	if c.Channel == capacity.Chat && !c.Joined {
		c.Missed = true
		if c.Ticket == nil {
			m.newTicket(c, TicketNew, ViaMissedChat)
		}
	}
	if c.Channel == capacity.Voice && !c.Joined {
		c.Missed = true // missedCall made its ticket
	}
	m.statEnded(c, reason)
	m.ended.ReplaceOrInsert(endedKey{At: c.EndedAt, Seq: c.Seq})
	m.emit(EventEnded, c.ID, c.AgentID, EventData{Reason: reason, Missed: c.Missed, Transcript: c.Transcript})
}

func (m *Machine) setTicketStatus(p SetTicketStatus) Outcome {
	if !p.Status.Valid() {
		return Outcome{Err: invalidf("invalid_ticket_status", "unknown ticket status %d", p.Status)}
	}
	if p.Status == TicketClosed {
		return Outcome{Err: invalidf(CodeInvalidTicketStatus, "a ticket is closed by the state machine, close_solved_after past solved; it cannot be set")}
	}
	c, err := m.convOrErr(p.ConversationID)
	if err != nil {
		return Outcome{Err: err}
	}
	if c.Ticket != nil && c.Ticket.Status == TicketClosed {
		return Outcome{Err: conflictf(CodeTicketClosed, "the ticket of conversation %q is closed; a closed ticket never changes", c.ID)}
	}
	c = m.writableConv(c)
	m.setTicket(c, p.Status)
	if c.Channel == capacity.Email && held(c) {
		m.recount(c) // new and open count; pending, on-hold and solved do not
	}
	if c.Channel == capacity.Messaging && c.State != StateEnded {
		if p.Status != TicketNew && p.Status != TicketOpen && c.Activity == ActivityActive {
			m.becomeInactive(c)
		}
		if held(c) {
			m.recount(c)
		}
	}
	return Outcome{Conversation: c}
}

// becomeInactive marks a messaging conversation inactive; it stops counting
// unless count_inactive_messaging is on. The ticket stays with the agent.
func (m *Machine) becomeInactive(c *Conversation) {
	m.disarm(c, timerInactivity)
	c.AwaitAgent = false
	c.Activity = ActivityInactive
	m.emit(EventInactive, c.ID, c.AgentID, EventData{})
	if held(c) {
		m.recount(c)
	}
}

func (m *Machine) release(p Release) Outcome {
	if p.SetTicket && p.TicketStatus != TicketPending && p.TicketStatus != TicketOnHold {
		return Outcome{Err: invalidf("invalid_ticket_status", "release sets the ticket to pending or on-hold, not %s", p.TicketStatus)}
	}
	if c, err := m.convOrErr(p.ConversationID); err == nil && c.Channel == capacity.Voice {
		return m.releaseWrapUp(p)
	}
	c, err := m.openConv(p.ConversationID)
	if err != nil {
		return Outcome{Err: err}
	}
	if err := m.heldBy(c, p.AgentID, StateAssigned); err != nil {
		return Outcome{Err: err}
	}
	c = m.writableConv(c)
	// The agent is returned too: releasing is an agent's action, and its
	// caller wants the freed load.
	agent := &Agent{ID: p.AgentID}
	if c.Channel == capacity.Chat {
		m.unassign(c, "agent_left")
		return Outcome{Conversation: c, Agent: agent}
	}
	if p.SetTicket {
		m.setTicket(c, p.TicketStatus)
	}
	m.endSession(c, ReasonReleased)
	return Outcome{Conversation: c, Agent: agent}
}

// fireConversation runs one of a conversation's timers.
func (m *Machine) fireConversation(id string, t timer) {
	c := m.getConv(id)
	if c == nil {
		return
	}
	c = m.writableConv(c)
	c.deadlines[t] = 0
	switch t {
	case timerOffer:
		if c.State == StateOffered {
			m.returnOffer(c, EventOfferTimedOut)
		}
	case timerIdle:
		c.Activity = ActivityInactive
		m.emit(EventInactive, c.ID, c.AgentID, EventData{Reason: "visitor_idle"})
		m.arm(c, timerIdleEnd, ms(m.policy.Web.IdleTimeout))
	case timerIdleEnd:
		m.endSession(c, ReasonIdleTimeout)
	case timerDisconnect:
		m.endSession(c, ReasonDisconnectTimeout)
	case timerInactivity:
		if c.Channel == capacity.Messaging {
			m.becomeInactive(c)
		} else {
			m.endSession(c, ReasonInactivityTimeout)
		}
	case timerBackground:
		m.endSession(c, ReasonBackgroundTimeout)
	case timerAgentEnded:
		m.endSession(c, ReasonAgentEnded)
	case timerCloseSolved:
		m.closeTicket(c)
	case timerMaxWait:
		if c.State == StateQueued || c.State == StateOffered {
			m.missedCall(c, ReasonQueueTimeout, false)
		}
	case timerWrapUp:
		if c.State == StateWrapUp {
			m.endSession(c, c.EndedReason)
		}
	case timerRelax:
		m.relax(c)
	}
}

func (m *Machine) fire(d deadlineKey) {
	if d.Owner == ownerAgent {
		m.fireReassign(d.ID)
		return
	}
	m.fireConversation(d.ID, d.Timer)
}
