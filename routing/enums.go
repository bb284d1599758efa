package routing

import "fmt"

// The enums below are stored in snapshots and in the command log as their
// numeric values: values are only ever appended, never renumbered.

// State is a conversation's routing state.
type State uint8

const (
	StateQueued     State = iota // waiting in the queue
	StateOffered                 // offered to one agent, who may accept or reject
	StateAssigned                // an agent holds it
	StateUnassigned              // chat only: the agent left, the session is still open
	StateEnded                   // the session is over
	StateWrapUp                  // voice: the call is over, its agent still held for wrap-up
	numStates
)

// Activity is a conversation's session activity state.
type Activity uint8

const (
	ActivityActive Activity = iota
	ActivityInactive
	ActivityEnded
	numActivities
)

// Client is the live-chat client a visitor uses. Messaging has none.
type Client uint8

const (
	ClientNone Client = iota
	ClientWeb
	ClientMobileSDK
	numClients
)

// Author says who wrote a message.
type Author uint8

const (
	AuthorVisitor Author = iota // the visitor (live chat) or end user (messaging)
	AuthorAgent
	AuthorSystem
	numAuthors
)

// PresenceEvent is a signal about the visitor's connection or activity.
type PresenceEvent uint8

const (
	PresenceActivity PresenceEvent = iota
	PresenceDisconnected
	PresenceConnected
	PresenceBackgrounded
	PresenceForegrounded
	numPresenceEvents
)

// AgentStatus is an agent's availability.
type AgentStatus uint8

const (
	StatusOffline AgentStatus = iota
	StatusOnline
	StatusAway
	StatusTransfersOnly
	numStatuses
)

// TicketStatus is the status of a conversation's ticket.
type TicketStatus uint8

const (
	TicketNew TicketStatus = iota
	TicketOpen
	TicketPending
	TicketOnHold
	TicketSolved
	// TicketClosed is set by the state machine only, close_solved_after
	// past solved; a closed ticket never changes again.
	TicketClosed
	numTicketStatuses
)

// EndedBy says who ends a conversation in an End command.
type EndedBy uint8

const (
	EndedByVisitor EndedBy = iota
	EndedByAgent
	numEndedBy
)

// Mode is the routing mode.
type Mode uint8

const (
	// ModeAuto matches the queue and agents inside every command.
	ModeAuto Mode = iota
	// ModeExternal waits for a routing engine's RequestAssignment.
	ModeExternal
	numModes
)

// Strategy chooses among eligible agents.
type Strategy uint8

const (
	// StrategySpareCapacity picks the most free slots.
	StrategySpareCapacity Strategy = iota
	// StrategySparePercentage picks the largest free share of the limit.
	StrategySparePercentage
	// StrategyRoundRobin picks the agent whose last assignment is oldest.
	StrategyRoundRobin
	numStrategies
)

// Ended reasons, as they appear in conversations and events.
const (
	ReasonIdleTimeout       = "idle_timeout"
	ReasonDisconnectTimeout = "disconnect_timeout"
	ReasonInactivityTimeout = "inactivity_timeout"
	ReasonBackgroundTimeout = "background_timeout"
	ReasonAgentEnded        = "agent_ended"
	ReasonVisitorEnded      = "visitor_ended"
	ReasonReleased          = "released"
	ReasonTicketClosed      = "ticket_closed"
	ReasonCallerHungUp      = "caller_hung_up" // voice: before anyone answered
	ReasonQueueTimeout      = "queue_timeout"  // voice: waited voice.max_queue_wait
)

var (
	stateNames        = [...]string{"queued", "offered", "assigned", "unassigned", "ended", "wrap_up"}
	activityNames     = [...]string{"active", "inactive", "ended"}
	clientNames       = [...]string{"", "web", "mobile_sdk"}
	authorNames       = [...]string{"visitor", "agent", "system"}
	presenceNames     = [...]string{"activity", "disconnected", "connected", "backgrounded", "foregrounded"}
	statusNames       = [...]string{"offline", "online", "away", "transfers_only"}
	ticketStatusNames = [...]string{"new", "open", "pending", "on-hold", "solved", "closed"}
	endedByNames      = [...]string{"visitor", "agent"}
	modeNames         = [...]string{"auto", "external"}
	strategyNames     = [...]string{"spare_capacity", "spare_percentage", "round_robin"}
	_                 = [1]struct{}{}[len(stateNames)-int(numStates)]
	_                 = [1]struct{}{}[len(activityNames)-int(numActivities)]
	_                 = [1]struct{}{}[len(clientNames)-int(numClients)]
	_                 = [1]struct{}{}[len(authorNames)-int(numAuthors)]
	_                 = [1]struct{}{}[len(presenceNames)-int(numPresenceEvents)]
	_                 = [1]struct{}{}[len(statusNames)-int(numStatuses)]
	_                 = [1]struct{}{}[len(ticketStatusNames)-int(numTicketStatuses)]
	_                 = [1]struct{}{}[len(endedByNames)-int(numEndedBy)]
	_                 = [1]struct{}{}[len(modeNames)-int(numModes)]
	_                 = [1]struct{}{}[len(strategyNames)-int(numStrategies)]
)

func name[T ~uint8](names []string, v T) string {
	if int(v) < len(names) {
		return names[v]
	}
	return fmt.Sprintf("unknown(%d)", uint8(v))
}

func parse[T ~uint8](names []string, what, s string) (T, error) {
	for i, n := range names {
		if n == s && (n != "" || what == "client") {
			return T(i), nil
		}
	}
	return 0, invalidf("invalid_"+what, "unknown %s %q", what, s)
}

func (v State) String() string         { return name(stateNames[:], v) }
func (v Activity) String() string      { return name(activityNames[:], v) }
func (v Client) String() string        { return name(clientNames[:], v) }
func (v Author) String() string        { return name(authorNames[:], v) }
func (v PresenceEvent) String() string { return name(presenceNames[:], v) }
func (v AgentStatus) String() string   { return name(statusNames[:], v) }
func (v TicketStatus) String() string  { return name(ticketStatusNames[:], v) }
func (v EndedBy) String() string       { return name(endedByNames[:], v) }
func (v Mode) String() string          { return name(modeNames[:], v) }
func (v Strategy) String() string      { return name(strategyNames[:], v) }

// Valid reports whether the value is a known one; decoders use these.
func (v State) Valid() bool         { return v < numStates }
func (v Activity) Valid() bool      { return v < numActivities }
func (v Client) Valid() bool        { return v < numClients }
func (v Author) Valid() bool        { return v < numAuthors }
func (v PresenceEvent) Valid() bool { return v < numPresenceEvents }
func (v AgentStatus) Valid() bool   { return v < numStatuses }
func (v TicketStatus) Valid() bool  { return v < numTicketStatuses }
func (v EndedBy) Valid() bool       { return v < numEndedBy }
func (v Mode) Valid() bool          { return v < numModes }
func (v Strategy) Valid() bool      { return v < numStrategies }

// ParseState maps a routing state's name.
func ParseState(s string) (State, error) { return parse[State](stateNames[:], "state", s) }

// ParseClient maps "web" or "mobile_sdk" (or "" for none) to a Client.
func ParseClient(s string) (Client, error) { return parse[Client](clientNames[:], "client", s) }

// ParseAuthor maps an API author name.
func ParseAuthor(s string) (Author, error) { return parse[Author](authorNames[:], "author", s) }

// ParsePresenceEvent maps an API presence event name.
func ParsePresenceEvent(s string) (PresenceEvent, error) {
	return parse[PresenceEvent](presenceNames[:], "presence_event", s)
}

// ParseAgentStatus maps an API agent status name.
func ParseAgentStatus(s string) (AgentStatus, error) {
	return parse[AgentStatus](statusNames[:], "status", s)
}

// ParseTicketStatus maps an API ticket status name.
func ParseTicketStatus(s string) (TicketStatus, error) {
	return parse[TicketStatus](ticketStatusNames[:], "ticket_status", s)
}

// ParseEndedBy maps "visitor" or "agent".
func ParseEndedBy(s string) (EndedBy, error) { return parse[EndedBy](endedByNames[:], "by", s) }

// ParseMode maps "auto" or "external".
func ParseMode(s string) (Mode, error) { return parse[Mode](modeNames[:], "mode", s) }

// ParseStrategy maps a strategy name.
func ParseStrategy(s string) (Strategy, error) {
	return parse[Strategy](strategyNames[:], "strategy", s)
}
