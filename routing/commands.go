package routing

import (
	"github.com/omnirouter/omnirouter/capacity"
	"github.com/omnirouter/omnirouter/internal/wire"
)

// Kind identifies a command type. Kinds are stored in the replicated log:
// they are only ever appended, never renumbered or reused.
type Kind uint8

const (
	KindUpsertAgent       Kind = 1
	KindRemoveAgent       Kind = 2
	KindSetAgentStatus    Kind = 3
	KindCreate            Kind = 4
	KindMessage           Kind = 5
	KindPresence          Kind = 6
	KindAccept            Kind = 7
	KindReject            Kind = 8
	KindLeave             Kind = 9
	KindEnd               Kind = 10
	KindSetTicketStatus   Kind = 11
	KindRelease           Kind = 12
	KindRequestAssignment Kind = 13
	KindSetPolicy         Kind = 14
	KindTick              Kind = 15
	KindSetEventLimits    Kind = 16
	KindTransfer          Kind = 17
	KindUpdate            Kind = 18
	KindCreateWebhook     Kind = 19
	KindUpdateWebhook     Kind = 20
	KindDeleteWebhook     Kind = 21
	KindCommitWebhooks    Kind = 22
	// numKinds is one past the newest kind.
	numKinds = KindCommitWebhooks + 1
)

// Command is one input of the state machine. Every command is applied with
// the leader's time and an optional client key (see Machine.Apply).
type Command interface {
	Kind() Kind
	// target names the agent or conversation the command is about, to tell a
	// retried key from a key reused for something else.
	target() string
	// encode writes the command's fields for the log (codec.go).
	encode(e *wire.Encoder)
}

// UpsertAgent creates an agent or updates its name, capacity, skills and
// groups. A new agent starts offline.
type UpsertAgent struct {
	ID       string
	Name     string
	Capacity capacity.Limits
	Skills   []string
	Groups   []string
}

// RemoveAgent deletes an agent. One that holds work is refused unless
// Force: then everything it holds goes back to the queue first.
type RemoveAgent struct {
	ID    string
	Force bool
}

// SetAgentStatus changes an agent's availability.
type SetAgentStatus struct {
	AgentID string
	Status  AgentStatus
}

// CreateConversation starts a conversation and queues it. ID is made by the
// caller before the command is proposed (never inside Apply).
type CreateConversation struct {
	ID          string
	Channel     capacity.Channel
	Client      Client // chat only; ClientNone means web
	PushEnabled bool   // mobile SDK: push notifications on
	Priority    int
	Skills      []string
	Group       string
	// OptionalSkills and SecondaryGroups relax after the channel's
	// routing.skills_timeout.
	OptionalSkills  []string
	SecondaryGroups []string
	VisitorID       string
	Message         string // the first end-user message: optional, but an email's
	Subject         string // email only
}

// PostMessage appends a message to a conversation's transcript.
type PostMessage struct {
	ConversationID string
	Author         Author
	AgentID        string // required when Author is AuthorAgent
	Text           string
}

// Presence reports a visitor connection or activity signal.
type Presence struct {
	ConversationID string
	Event          PresenceEvent
}

// Accept is an agent accepting an offer (joining the conversation).
type Accept struct{ ConversationID, AgentID string }

// Reject is an agent declining an offer.
type Reject struct{ ConversationID, AgentID string }

// Leave is an agent leaving a chat it holds; the session stays open.
type Leave struct{ ConversationID, AgentID string }

// End ends a conversation's session, by the visitor or by an agent.
type End struct {
	ConversationID string
	By             EndedBy
	AgentID        string // required when By is EndedByAgent
	// Voicemail: a caller who hangs up before anyone answered left a
	// voicemail (the missed call's ticket says so).
	Voicemail bool
}

// SetTicketStatus changes the status of a conversation's ticket (creating
// one if the conversation has none).
type SetTicketStatus struct {
	ConversationID string
	Status         TicketStatus
}

// Release is an agent releasing the capacity a conversation holds. For
// messaging it ends the session for good and optionally sets the ticket
// status (pending or on-hold); for a chat it is the same as Leave.
type Release struct {
	AgentID        string
	ConversationID string
	TicketStatus   TicketStatus
	SetTicket      bool // TicketStatus is meaningful
}

// RequestAssignment is a routing engine asking for an assignment: of a given
// conversation, to a given agent, or both; with neither, the next match.
// Force (operators only) assigns over capacity and regardless of status.
type RequestAssignment struct {
	AgentID        string
	ConversationID string
	Force          bool
}

// SetPolicy changes the fields the patch sets.
type SetPolicy struct{ Patch PolicyPatch }

// Tick advances the state machine's clock; every deadline due fires. The
// leader proposes it when the earliest deadline is due.
type Tick struct{}

// Transfer hands a conversation its holder (AgentID) has to another agent,
// who is offered it, or to a group, whose queue it joins; it keeps its
// eligibility time and transcript, and Note becomes a system message.
type Transfer struct {
	ConversationID string
	AgentID        string // the current holder
	ToAgent        string
	ToGroup        string
	Note           string
}

// UpdateConversation changes the fields Set names; a queued conversation
// keeps its eligibility time and takes its new place in the queue.
type UpdateConversation struct {
	ConversationID  string
	Set             UpdateFields
	Priority        int
	Group           string
	Skills          []string
	OptionalSkills  []string
	SecondaryGroups []string
}

// UpdateFields says which fields an UpdateConversation sets.
type UpdateFields uint8

const (
	UpdatePriority UpdateFields = 1 << iota
	UpdateGroup
	UpdateSkills
	UpdateOptionalSkills
	UpdateSecondaryGroups
	updateAll = UpdateSecondaryGroups<<1 - 1
)

// SetEventLimits bounds the event log. The leader proposes its configured
// limits when they differ from the state's, so every replica keeps the same
// events.
type SetEventLimits struct{ Limits EventLimits }

func (UpsertAgent) Kind() Kind        { return KindUpsertAgent }
func (RemoveAgent) Kind() Kind        { return KindRemoveAgent }
func (SetAgentStatus) Kind() Kind     { return KindSetAgentStatus }
func (CreateConversation) Kind() Kind { return KindCreate }
func (PostMessage) Kind() Kind        { return KindMessage }
func (Presence) Kind() Kind           { return KindPresence }
func (Accept) Kind() Kind             { return KindAccept }
func (Reject) Kind() Kind             { return KindReject }
func (Leave) Kind() Kind              { return KindLeave }
func (End) Kind() Kind                { return KindEnd }
func (SetTicketStatus) Kind() Kind    { return KindSetTicketStatus }
func (Release) Kind() Kind            { return KindRelease }
func (RequestAssignment) Kind() Kind  { return KindRequestAssignment }
func (SetPolicy) Kind() Kind          { return KindSetPolicy }
func (Tick) Kind() Kind               { return KindTick }
func (SetEventLimits) Kind() Kind     { return KindSetEventLimits }
func (Transfer) Kind() Kind           { return KindTransfer }
func (UpdateConversation) Kind() Kind { return KindUpdate }

func (c UpsertAgent) target() string        { return c.ID }
func (c RemoveAgent) target() string        { return c.ID }
func (c SetAgentStatus) target() string     { return c.AgentID }
func (c CreateConversation) target() string { return c.ID }
func (c PostMessage) target() string        { return c.ConversationID }
func (c Presence) target() string           { return c.ConversationID }
func (c Accept) target() string             { return c.ConversationID }
func (c Reject) target() string             { return c.ConversationID }
func (c Leave) target() string              { return c.ConversationID }
func (c End) target() string                { return c.ConversationID }
func (c SetTicketStatus) target() string    { return c.ConversationID }
func (c Release) target() string            { return c.ConversationID }
func (c RequestAssignment) target() string  { return c.ConversationID + "/" + c.AgentID }
func (SetPolicy) target() string            { return "" }
func (Tick) target() string                 { return "" }
func (SetEventLimits) target() string       { return "" }
func (c Transfer) target() string           { return c.ConversationID }
func (c UpdateConversation) target() string { return c.ConversationID }
