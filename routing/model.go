package routing

import "github.com/omnirouter/omnirouter/capacity"

// Times are unix milliseconds of state-machine time throughout this package.

// Message is one transcript entry. Messages are never modified once appended.
type Message struct {
	Author  Author
	AgentID string
	Text    string
	At      int64
}

// Ticket is the ticket attached to a conversation.
type Ticket struct {
	ID        string
	Status    TicketStatus
	CreatedAt int64
	Via       string // "messaging", "missed_chat" or "api"
}

// Ticket origins.
const (
	ViaMessaging  = "messaging"
	ViaEmail      = "email"
	ViaMissedChat = "missed_chat"
	ViaMissedCall = "missed_call"
	ViaVoicemail  = "voicemail" // a missed call whose caller left a voicemail
	ViaAPI        = "api"
)

// timer identifies one of a conversation's deadlines.
type timer uint8

const (
	timerOffer       timer = iota // offer not accepted in time
	timerIdle                     // web: no activity for idle_after → inactive
	timerIdleEnd                  // web: idle for idle_timeout → ended
	timerDisconnect               // visitor disconnected too long → ended
	timerInactivity               // mobile: no chat activity → ended; messaging: → inactive
	timerBackground               // mobile: backgrounded without push → ended
	timerAgentEnded               // mobile: agent ended; session ends then
	timerCloseSolved              // ticket solved close_solved_after ago → closed
	timerMaxWait                  // voice: waited voice.max_queue_wait unanswered → ended
	timerWrapUp                   // voice: wrap-up over → ended
	timerRelax                    // skills_timeout passed: optional skills dropped, secondary groups in
	numTimers
)

// Conversation is a chat, messaging conversation, email or call. Values
// handed out by the Machine are copies; their slices are shared and must be treated as
// read-only.
type Conversation struct {
	ID          string
	Channel     capacity.Channel
	Client      Client
	PushEnabled bool
	Priority    int
	Skills      []string // sorted, unique
	Group       string
	// OptionalSkills and SecondaryGroups (sorted, unique) are relaxed
	// routing.skills_timeout after the eligibility time (Relaxed).
	OptionalSkills  []string
	SecondaryGroups []string
	Relaxed         bool
	// TransferPending: a transfer was asked and nobody took the
	// conversation since (conversation.transferred is due when someone
	// does). TransferTarget is the agent a transfer offers it to, until
	// that offer is answered.
	TransferPending bool
	TransferTarget  string
	VisitorID       string
	Subject         string // email

	State       State
	Activity    Activity
	AgentID     string // the agent offered to, or holding, or (after release) last holding it
	Missed      bool
	EndedReason string
	CreatedAt   int64
	EndedAt     int64
	// QueuedAt is the eligibility time: set when first queued and kept across
	// requeues, so a reopened or re-offered conversation keeps its place.
	QueuedAt int64
	Seq      uint64 // arrival sequence, the queue's last tie-breaker
	Ticket   *Ticket
	// Transcript only ever grows: copies may share its backing array.
	Transcript []Message
	// TranscriptBytes is the text bytes of Transcript, checked against
	// limits.transcript_bytes.
	TranscriptBytes int

	Joined       bool     // an agent accepted it at least once (not a missed chat)
	Missers      []string // agents who rejected or let an offer time out, sorted
	Counted      bool     // counts against AgentID's capacity
	Exempt       bool     // counted over capacity by reactivation, force or a lowered limit
	AwaitAgent   bool     // messaging: the end user wrote last, it is the agent's turn
	Disconnected bool
	Backgrounded bool

	deadlines [numTimers]int64 // 0 = not armed
	cow       *cowToken
}

// Deadline returns when the named timer fires (0 if not armed); for tests and
// debugging.
func (c *Conversation) nextDeadline() int64 {
	var min int64
	for _, d := range c.deadlines {
		if d != 0 && (min == 0 || d < min) {
			min = d
		}
	}
	return min
}

// Agent is an agent with its capacity and load.
type Agent struct {
	ID       string
	Name     string
	Status   AgentStatus
	Capacity capacity.Limits
	Load     capacity.Load
	Skills   []string // sorted, unique
	Groups   []string // sorted, unique
	// Conversations lists the conversations the agent holds (offered or
	// assigned, counting or not), sorted by id.
	Conversations []string
	// LastAssigned is, per channel, when the agent last got a conversation:
	// the tie-breaker of spare_capacity and the key of round_robin.
	LastAssigned [capacity.NumChannels]int64
	// ReassignAt is when an offline agent's assigned work goes back to the
	// queue (0 = not armed).
	ReassignAt int64

	avail [capacity.NumChannels]availSlot // position in the availability index
	cow   *cowToken
}

// Assignment is the result of a routing engine's RequestAssignment.
type Assignment struct {
	ConversationID string
	AgentID        string
	State          State // offered or assigned
}

// QueueEntry is one conversation in routing order.
type QueueEntry struct {
	ID       string
	Channel  capacity.Channel
	Priority int
	QueuedAt int64
	Position int // from 1, in its channel's queue
	Group    string
}

// Event types.
const (
	EventQueued        = "conversation.queued"
	EventOffered       = "conversation.offered"
	EventAssigned      = "conversation.assigned"
	EventRejected      = "conversation.rejected"
	EventOfferTimedOut = "conversation.offer_timed_out"
	EventUnassigned    = "conversation.unassigned"
	EventRequeued      = "conversation.requeued"
	EventInactive      = "conversation.inactive"
	EventActive        = "conversation.active"
	EventEnded         = "conversation.ended"
	EventWrapUp        = "conversation.wrap_up"
	EventTransferReq   = "conversation.transfer_requested"
	EventTransferred   = "conversation.transferred"
	EventUpdated       = "conversation.updated"
	EventMessage       = "conversation.message"
	EventTicketCreated = "ticket.created"
	EventTicketUpdated = "ticket.updated"
	EventAgentStatus   = "agent.status_changed"
	EventAgentCapacity = "agent.capacity_changed"
	EventAgentRemoved  = "agent.removed"
	EventPolicyChanged = "policy.changed"
)

// EventTypes lists every event type, for documents and checks.
func EventTypes() []string {
	return []string{EventQueued, EventOffered, EventAssigned, EventRejected, EventOfferTimedOut, EventUnassigned,
		EventRequeued, EventInactive, EventActive, EventEnded, EventWrapUp, EventTransferReq, EventTransferred,
		EventUpdated, EventMessage, EventTicketCreated,
		EventTicketUpdated, EventAgentStatus, EventAgentCapacity, EventAgentRemoved, EventPolicyChanged}
}

// Event is something a routing engine, workspace or ticketing system cares
// about. IDs increase by one with every event.
type Event struct {
	ID             uint64
	Type           string
	At             int64
	ConversationID string
	AgentID        string
	Data           EventData
}

// EventData carries what an event's type needs; unused fields are zero.
type EventData struct {
	Reason     string    // ended reason, requeue cause, agent-left notice
	Status     string    // agent status, ticket status
	Previous   string    // previous agent status
	Missed     bool      // ended: a missed chat
	Transcript []Message // ended: the whole transcript
	Ticket     *Ticket   // ticket.created / ticket.updated
	Capacity   capacity.Limits
	Load       capacity.Load
	Message    *Message // conversation.message
	// TargetAgent and TargetGroup: where a transfer was asked to go.
	TargetAgent string
	TargetGroup string
}

// Outcome is what applying one command produced. It is a value: the cluster
// returns it to the caller, and an idempotency key replays it.
type Outcome struct {
	// Conversation is the updated conversation when the command is about one.
	Conversation *Conversation
	// Agent is the updated agent when the command is about one.
	Agent *Agent
	// Assignment is set by RequestAssignment.
	Assignment *Assignment
	// Err is a domain error (*Error) when the command was refused; a refused
	// command changed nothing (timers that were due still fired).
	Err error
	// Events are every event this apply emitted, timers included, in order.
	// A replayed outcome carries none.
	Events []Event
	// Replayed is true when the outcome answers a retried key. A replay
	// carries the first result's error or assignment, and the ids of the
	// conversation and agent it was about (ConversationID, AgentID), not
	// their state: the caller reads that.
	Replayed       bool
	ConversationID string
	AgentID        string
}
