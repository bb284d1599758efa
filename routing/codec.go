package routing

import (
	"github.com/omnirouter/omnirouter/capacity"
	"github.com/omnirouter/omnirouter/internal/wire"
)

// The command schema: commandTable maps every Kind to its name, the
// decoder of its fields and the function that applies it. A command's
// fields are written by its encode method in the order its decoder reads
// them. Kinds are only appended; a released command's encoding never
// changes (a new meaning is a new kind). Adding a command is a type in
// commands.go, its entry here, and its domain code.

type commandSpec struct {
	name   string
	decode func(d *wire.Decoder) Command
	apply  func(m *Machine, c Command) Outcome
}

// spec ties a command type to its decoder and apply function.
func spec[C Command](name string, decode func(d *wire.Decoder) C, apply func(m *Machine, c C) Outcome) commandSpec {
	return commandSpec{
		name:   name,
		decode: func(d *wire.Decoder) Command { return decode(d) },
		apply:  func(m *Machine, c Command) Outcome { return apply(m, c.(C)) },
	}
}

var commandTable [numKinds]commandSpec

func init() {
	// In init, not a var initializer: the apply functions reach Kind.String
	// (through errors), which reads this table.
	commandTable = [numKinds]commandSpec{
		KindUpsertAgent:       spec("upsert_agent", decodeUpsertAgent, (*Machine).upsertAgent),
		KindRemoveAgent:       spec("remove_agent", decodeRemoveAgent, (*Machine).removeAgent),
		KindSetAgentStatus:    spec("set_agent_status", decodeSetAgentStatus, (*Machine).setAgentStatus),
		KindCreate:            spec("create_conversation", decodeCreate, (*Machine).create),
		KindMessage:           spec("message", decodeMessage, (*Machine).postMessage),
		KindPresence:          spec("presence", decodePresence, (*Machine).presence),
		KindAccept:            spec("accept", decodeAccept, (*Machine).accept),
		KindReject:            spec("reject", decodeReject, (*Machine).reject),
		KindLeave:             spec("leave", decodeLeave, (*Machine).leave),
		KindEnd:               spec("end", decodeEnd, (*Machine).end),
		KindSetTicketStatus:   spec("set_ticket_status", decodeSetTicketStatus, (*Machine).setTicketStatus),
		KindRelease:           spec("release", decodeRelease, (*Machine).release),
		KindRequestAssignment: spec("request_assignment", decodeRequestAssignment, (*Machine).requestAssignment),
		KindSetPolicy:         spec("set_policy", decodeSetPolicy, (*Machine).setPolicy),
		KindTick:              spec("tick", func(*wire.Decoder) Tick { return Tick{} }, func(*Machine, Tick) Outcome { return Outcome{} }),
		KindSetEventLimits:    spec("set_event_limits", decodeSetEventLimits, (*Machine).setEventLimits),
		KindTransfer:          spec("transfer", decodeTransfer, (*Machine).transfer),
		KindUpdate:            spec("update_conversation", decodeUpdate, (*Machine).update),
		KindCreateWebhook:     spec("create_webhook", decodeCreateWebhook, (*Machine).createWebhook),
		KindUpdateWebhook:     spec("update_webhook", decodeUpdateWebhook, (*Machine).updateWebhook),
		KindDeleteWebhook:     spec("delete_webhook", decodeDeleteWebhook, (*Machine).deleteWebhook),
		KindCommitWebhooks:    spec("commit_webhooks", decodeCommitWebhooks, (*Machine).commitWebhooks),
	}
}

func (k Kind) known() bool { return k > 0 && k < numKinds && commandTable[k].decode != nil }

func (k Kind) String() string {
	if k.known() {
		return commandTable[k].name
	}
	return "unknown"
}

// AppendCommand appends cmd's fields in the log's encoding. The kind is not
// written: the caller's envelope carries it.
func AppendCommand(e *wire.Encoder, cmd Command) { cmd.encode(e) }

// ReadCommand reads the fields of a command of kind k written by
// AppendCommand. An unknown kind or a bad field fails d (check d.Err()).
func ReadCommand(d *wire.Decoder, k Kind) Command {
	if !k.known() {
		d.Fail("unknown command kind %d", uint8(k))
		return nil
	}
	return commandTable[k].decode(d)
}

// KnownKind reports whether k names a command of this build.
func KnownKind(k Kind) bool { return k.known() }

// --- fields of each command ---------------------------------------------------

func (c UpsertAgent) encode(e *wire.Encoder) {
	e.String(c.ID)
	e.String(c.Name)
	appendLimits(e, c.Capacity[:])
	e.Strings(c.Skills)
	e.Strings(c.Groups)
}

func decodeUpsertAgent(d *wire.Decoder) UpsertAgent {
	c := UpsertAgent{ID: d.String(), Name: d.String()}
	readLimits(d, c.Capacity[:])
	c.Skills = d.Strings()
	c.Groups = d.Strings()
	return c
}

func (c RemoveAgent) encode(e *wire.Encoder) {
	e.String(c.ID)
	e.Bool(c.Force)
}

func decodeRemoveAgent(d *wire.Decoder) RemoveAgent {
	return RemoveAgent{ID: d.String(), Force: d.Bool()}
}

func (c SetAgentStatus) encode(e *wire.Encoder) {
	e.String(c.AgentID)
	e.Byte(byte(c.Status))
}

func decodeSetAgentStatus(d *wire.Decoder) SetAgentStatus {
	return SetAgentStatus{AgentID: d.String(), Status: readEnum[AgentStatus](d, "agent status")}
}

func (c CreateConversation) encode(e *wire.Encoder) {
	e.String(c.ID)
	e.Byte(byte(c.Channel))
	e.Byte(byte(c.Client))
	e.Bool(c.PushEnabled)
	e.Int(c.Priority)
	e.Strings(c.Skills)
	e.String(c.Group)
	e.String(c.VisitorID)
	e.String(c.Message)
	e.String(c.Subject)
	e.Strings(c.OptionalSkills)
	e.Strings(c.SecondaryGroups)
}

func decodeCreate(d *wire.Decoder) CreateConversation {
	c := CreateConversation{ID: d.String()}
	c.Channel = readEnum[capacity.Channel](d, "channel")
	c.Client = readEnum[Client](d, "client")
	c.PushEnabled = d.Bool()
	c.Priority = d.Int()
	c.Skills = d.Strings()
	c.Group = d.String()
	c.VisitorID = d.String()
	c.Message = d.String()
	c.Subject = d.String()
	c.OptionalSkills = d.Strings()
	c.SecondaryGroups = d.Strings()
	return c
}

func (c PostMessage) encode(e *wire.Encoder) {
	e.String(c.ConversationID)
	e.Byte(byte(c.Author))
	e.String(c.AgentID)
	e.String(c.Text)
}

func decodeMessage(d *wire.Decoder) PostMessage {
	c := PostMessage{ConversationID: d.String()}
	c.Author = readEnum[Author](d, "author")
	c.AgentID = d.String()
	c.Text = d.String()
	return c
}

func (c Presence) encode(e *wire.Encoder) {
	e.String(c.ConversationID)
	e.Byte(byte(c.Event))
}

func decodePresence(d *wire.Decoder) Presence {
	return Presence{ConversationID: d.String(), Event: readEnum[PresenceEvent](d, "presence event")}
}

func (c Accept) encode(e *wire.Encoder) { encodePair(e, c.ConversationID, c.AgentID) }
func (c Reject) encode(e *wire.Encoder) { encodePair(e, c.ConversationID, c.AgentID) }
func (c Leave) encode(e *wire.Encoder)  { encodePair(e, c.ConversationID, c.AgentID) }

func encodePair(e *wire.Encoder, conversationID, agentID string) {
	e.String(conversationID)
	e.String(agentID)
}

func decodeAccept(d *wire.Decoder) Accept {
	return Accept{ConversationID: d.String(), AgentID: d.String()}
}
func decodeReject(d *wire.Decoder) Reject {
	return Reject{ConversationID: d.String(), AgentID: d.String()}
}
func decodeLeave(d *wire.Decoder) Leave {
	return Leave{ConversationID: d.String(), AgentID: d.String()}
}

func (c End) encode(e *wire.Encoder) {
	e.String(c.ConversationID)
	e.Byte(byte(c.By))
	e.String(c.AgentID)
	e.Bool(c.Voicemail)
}

func decodeEnd(d *wire.Decoder) End {
	c := End{ConversationID: d.String()}
	c.By = readEnum[EndedBy](d, "ended by")
	c.AgentID = d.String()
	c.Voicemail = d.Bool()
	return c
}

func (c SetTicketStatus) encode(e *wire.Encoder) {
	e.String(c.ConversationID)
	e.Byte(byte(c.Status))
}

func decodeSetTicketStatus(d *wire.Decoder) SetTicketStatus {
	return SetTicketStatus{ConversationID: d.String(), Status: readEnum[TicketStatus](d, "ticket status")}
}

func (c Release) encode(e *wire.Encoder) {
	e.String(c.AgentID)
	e.String(c.ConversationID)
	e.Byte(byte(c.TicketStatus))
	e.Bool(c.SetTicket)
}

func decodeRelease(d *wire.Decoder) Release {
	c := Release{AgentID: d.String(), ConversationID: d.String()}
	c.TicketStatus = readEnum[TicketStatus](d, "ticket status")
	c.SetTicket = d.Bool()
	return c
}

func (c RequestAssignment) encode(e *wire.Encoder) {
	e.String(c.AgentID)
	e.String(c.ConversationID)
	e.Bool(c.Force)
}

func decodeRequestAssignment(d *wire.Decoder) RequestAssignment {
	return RequestAssignment{AgentID: d.String(), ConversationID: d.String(), Force: d.Bool()}
}

func (c SetPolicy) encode(e *wire.Encoder) { c.Patch.encode(e) }

func decodeSetPolicy(d *wire.Decoder) SetPolicy { return SetPolicy{Patch: decodePatch(d)} }

func (Tick) encode(*wire.Encoder) {}

func (c SetEventLimits) encode(e *wire.Encoder) {
	e.Int(c.Limits.Count)
	e.Varint(c.Limits.Bytes)
}

func (c Transfer) encode(e *wire.Encoder) {
	e.String(c.ConversationID)
	e.String(c.AgentID)
	e.String(c.ToAgent)
	e.String(c.ToGroup)
	e.String(c.Note)
}

func decodeTransfer(d *wire.Decoder) Transfer {
	return Transfer{ConversationID: d.String(), AgentID: d.String(), ToAgent: d.String(), ToGroup: d.String(), Note: d.String()}
}

// An update writes its mask, then only the fields the mask sets.
func (c UpdateConversation) encode(e *wire.Encoder) {
	e.String(c.ConversationID)
	e.Byte(byte(c.Set))
	if c.Set&UpdatePriority != 0 {
		e.Int(c.Priority)
	}
	if c.Set&UpdateGroup != 0 {
		e.String(c.Group)
	}
	if c.Set&UpdateSkills != 0 {
		e.Strings(c.Skills)
	}
	if c.Set&UpdateOptionalSkills != 0 {
		e.Strings(c.OptionalSkills)
	}
	if c.Set&UpdateSecondaryGroups != 0 {
		e.Strings(c.SecondaryGroups)
	}
}

func decodeUpdate(d *wire.Decoder) UpdateConversation {
	c := UpdateConversation{ConversationID: d.String(), Set: UpdateFields(d.Byte())}
	if d.Err() == nil && c.Set&^updateAll != 0 {
		d.Fail("unknown update fields %#x", byte(c.Set))
		return c
	}
	if c.Set&UpdatePriority != 0 {
		c.Priority = d.Int()
	}
	if c.Set&UpdateGroup != 0 {
		c.Group = d.String()
	}
	if c.Set&UpdateSkills != 0 {
		c.Skills = d.Strings()
	}
	if c.Set&UpdateOptionalSkills != 0 {
		c.OptionalSkills = d.Strings()
	}
	if c.Set&UpdateSecondaryGroups != 0 {
		c.SecondaryGroups = d.Strings()
	}
	return c
}

func decodeSetEventLimits(d *wire.Decoder) SetEventLimits {
	return SetEventLimits{Limits: EventLimits{Count: d.Int(), Bytes: d.Varint()}}
}

// --- shared field encodings ----------------------------------------------------

// enum is a routing enum stored as one byte.
type enum interface {
	~uint8
	Valid() bool
}

func readEnum[E enum](d *wire.Decoder, what string) E {
	v := E(d.Byte())
	if d.Err() == nil && !v.Valid() {
		d.Fail("unknown %s %d", what, uint8(v))
	}
	return v
}

// appendLimits writes per-channel integers with their count, so that
// channels can be appended.
func appendLimits(e *wire.Encoder, v []int) {
	e.Uvarint(uint64(len(v)))
	for _, n := range v {
		e.Int(n)
	}
}

func readLimits(d *wire.Decoder, dst []int) {
	n := d.Uvarint()
	if d.Err() == nil && n > uint64(len(dst)) {
		d.Fail("%d channels, know %d", n, len(dst))
		return
	}
	for i := 0; i < int(n); i++ {
		dst[i] = d.Int()
	}
}
