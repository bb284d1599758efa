package cluster

import (
	"fmt"
	"time"

	"github.com/omnirouter/omnirouter/capacity"
	"github.com/omnirouter/omnirouter/internal/wire"
	"github.com/omnirouter/omnirouter/routing"
)

// Envelope types. Types 1..99 are routing.Kind values; cluster-level entries
// use their own numbers from 100. Types are only ever appended.
const (
	typeRegister   byte = 100 // a node's raft and HTTP addresses
	typeRestore    byte = 101 // replace the routing state by a backup
	typeBatch      byte = 102 // several entries applied in order
	typeDeregister byte = 103 // forget a removed node's addresses
)

// envelopeVersion is the payload version written by this code; decoders
// accept every version they know (only 1 so far).
const envelopeVersion byte = 1

// maxBatch bounds the entries of one batch envelope on decode.
const maxBatch = 1 << 16

// entry is one decoded envelope.
type entry struct {
	typ   byte
	at    int64  // leader time (unix ms), routing commands
	key   string // idempotency key, routing commands
	cmd   routing.Command
	node  NodeInfo // typeRegister
	id    string   // typeDeregister
	data  []byte   // typeRestore: a routing snapshot
	batch []entry  // typeBatch
}

func commandEntry(at int64, key string, cmd routing.Command) entry {
	return entry{typ: byte(cmd.Kind()), at: at, key: key, cmd: cmd}
}

// encodeEntry returns the envelope of e.
func encodeEntry(e *entry) []byte {
	enc := wire.Encoder{Buf: make([]byte, 0, 192)} // a create with a message fits
	appendEntry(&enc, e)
	return enc.Buf
}

// encodeBatch returns one batch envelope holding es in order.
func encodeBatch(es []entry) []byte {
	return encodeBatchOf(len(es), func(i int) *entry { return &es[i] })
}

// encodeBatchOf returns one batch envelope holding at(0..n-1) in order.
func encodeBatchOf(n int, at func(i int) *entry) []byte {
	enc := wire.Encoder{Buf: make([]byte, 0, 192*n)}
	enc.Byte(typeBatch)
	enc.Byte(envelopeVersion)
	enc.Uvarint(uint64(n))
	for i := range n {
		appendEntry(&enc, at(i))
	}
	return enc.Buf
}

func appendEntry(enc *wire.Encoder, e *entry) {
	enc.Byte(e.typ)
	enc.Byte(envelopeVersion)
	switch e.typ {
	case typeRegister:
		enc.String(e.node.ID)
		enc.String(e.node.RaftAddr)
		enc.String(e.node.HTTPAddr)
	case typeDeregister:
		enc.String(e.id)
	case typeRestore:
		enc.Bytes(e.data)
	case typeBatch:
		enc.Uvarint(uint64(len(e.batch)))
		for i := range e.batch {
			appendEntry(enc, &e.batch[i])
		}
	default:
		enc.Varint(e.at)
		enc.String(e.key)
		appendCommand(enc, e.cmd)
	}
}

// decodeEntry decodes one whole envelope. It never panics: garbage yields an
// error wrapping wire.ErrCorrupt.
func decodeEntry(b []byte) (entry, error) {
	d := wire.NewDecoder(b)
	if len(b) > 0 && (b[0] < typeRegister || b[0] == typeBatch) {
		// Commands: their strings (ids, keys, texts) go into the state
		// together, so one copy of the entry serves them all. Not for a
		// restore, whose bytes would be copied twice.
		d = wire.NewSharedDecoder(b)
	}
	e := readEntry(d, true)
	if d.Err() == nil && d.Remaining() != 0 {
		d.Fail("%d trailing bytes", d.Remaining())
	}
	if err := d.Err(); err != nil {
		return entry{}, fmt.Errorf("cluster: decode log entry: %w", err)
	}
	return e, nil
}

func readEntry(d *wire.Decoder, top bool) entry {
	var e entry
	e.typ = d.Byte()
	if v := d.Byte(); d.Err() == nil && v != envelopeVersion {
		d.Fail("entry type %d: unknown version %d", e.typ, v)
	}
	if d.Err() != nil {
		return e
	}
	switch e.typ {
	case typeRegister:
		e.node.ID = d.String()
		e.node.RaftAddr = d.String()
		e.node.HTTPAddr = d.String()
	case typeDeregister:
		e.id = d.String()
	case typeRestore:
		e.data = d.Bytes()
	case typeBatch:
		if !top {
			d.Fail("nested batch")
			return e
		}
		n := d.Len(min(d.Remaining(), maxBatch)) // each entry takes at least one byte
		e.batch = make([]entry, 0, n)
		for i := 0; i < n && d.Err() == nil; i++ {
			e.batch = append(e.batch, readEntry(d, false))
		}
	default:
		e.at = d.Varint()
		e.key = d.String()
		e.cmd = readCommand(d, routing.Kind(e.typ))
	}
	return e
}

// --- routing commands ------------------------------------------------------

func appendCommand(enc *wire.Encoder, cmd routing.Command) {
	switch c := cmd.(type) {
	case routing.UpsertAgent:
		enc.String(c.ID)
		enc.String(c.Name)
		appendLimits(enc, c.Capacity[:])
		enc.Strings(c.Skills)
		enc.Strings(c.Groups)
	case routing.RemoveAgent:
		enc.String(c.ID)
	case routing.SetAgentStatus:
		enc.String(c.AgentID)
		enc.Byte(byte(c.Status))
	case routing.CreateConversation:
		enc.String(c.ID)
		enc.Byte(byte(c.Channel))
		enc.Byte(byte(c.Client))
		enc.Bool(c.PushEnabled)
		enc.Int(c.Priority)
		enc.Strings(c.Skills)
		enc.String(c.Group)
		enc.String(c.VisitorID)
		enc.String(c.Message)
	case routing.PostMessage:
		enc.String(c.ConversationID)
		enc.Byte(byte(c.Author))
		enc.String(c.AgentID)
		enc.String(c.Text)
	case routing.Presence:
		enc.String(c.ConversationID)
		enc.Byte(byte(c.Event))
	case routing.Accept:
		enc.String(c.ConversationID)
		enc.String(c.AgentID)
	case routing.Reject:
		enc.String(c.ConversationID)
		enc.String(c.AgentID)
	case routing.Leave:
		enc.String(c.ConversationID)
		enc.String(c.AgentID)
	case routing.End:
		enc.String(c.ConversationID)
		enc.Byte(byte(c.By))
		enc.String(c.AgentID)
	case routing.SetTicketStatus:
		enc.String(c.ConversationID)
		enc.Byte(byte(c.Status))
	case routing.Release:
		enc.String(c.AgentID)
		enc.String(c.ConversationID)
		enc.Byte(byte(c.TicketStatus))
		enc.Bool(c.SetTicket)
	case routing.RequestAssignment:
		enc.String(c.AgentID)
		enc.String(c.ConversationID)
		enc.Bool(c.Force)
	case routing.SetPolicy:
		appendPatch(enc, &c.Patch)
	case routing.Tick:
	default:
		// Every routing.Command is one of the types above; a new kind must be
		// added here (and to readCommand) before it can be proposed.
		panic(fmt.Sprintf("cluster: no encoding for command %T", cmd))
	}
}

func readCommand(d *wire.Decoder, k routing.Kind) routing.Command {
	switch k {
	case routing.KindUpsertAgent:
		c := routing.UpsertAgent{ID: d.String(), Name: d.String()}
		readLimits(d, c.Capacity[:])
		c.Skills = d.Strings()
		c.Groups = d.Strings()
		return c
	case routing.KindRemoveAgent:
		return routing.RemoveAgent{ID: d.String()}
	case routing.KindSetAgentStatus:
		return routing.SetAgentStatus{AgentID: d.String(), Status: readEnum[routing.AgentStatus](d, "agent status")}
	case routing.KindCreate:
		c := routing.CreateConversation{ID: d.String()}
		c.Channel = readChannel(d)
		c.Client = readEnum[routing.Client](d, "client")
		c.PushEnabled = d.Bool()
		c.Priority = d.Int()
		c.Skills = d.Strings()
		c.Group = d.String()
		c.VisitorID = d.String()
		c.Message = d.String()
		return c
	case routing.KindMessage:
		c := routing.PostMessage{ConversationID: d.String()}
		c.Author = readEnum[routing.Author](d, "author")
		c.AgentID = d.String()
		c.Text = d.String()
		return c
	case routing.KindPresence:
		return routing.Presence{ConversationID: d.String(), Event: readEnum[routing.PresenceEvent](d, "presence event")}
	case routing.KindAccept:
		return routing.Accept{ConversationID: d.String(), AgentID: d.String()}
	case routing.KindReject:
		return routing.Reject{ConversationID: d.String(), AgentID: d.String()}
	case routing.KindLeave:
		return routing.Leave{ConversationID: d.String(), AgentID: d.String()}
	case routing.KindEnd:
		c := routing.End{ConversationID: d.String()}
		c.By = readEnum[routing.EndedBy](d, "ended by")
		c.AgentID = d.String()
		return c
	case routing.KindSetTicketStatus:
		return routing.SetTicketStatus{ConversationID: d.String(), Status: readEnum[routing.TicketStatus](d, "ticket status")}
	case routing.KindRelease:
		c := routing.Release{AgentID: d.String(), ConversationID: d.String()}
		c.TicketStatus = readEnum[routing.TicketStatus](d, "ticket status")
		c.SetTicket = d.Bool()
		return c
	case routing.KindRequestAssignment:
		return routing.RequestAssignment{AgentID: d.String(), ConversationID: d.String(), Force: d.Bool()}
	case routing.KindSetPolicy:
		var c routing.SetPolicy
		readPatch(d, &c.Patch)
		return c
	case routing.KindTick:
		return routing.Tick{}
	default:
		d.Fail("unknown entry type %d", byte(k))
		return nil
	}
}

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

func readChannel(d *wire.Decoder) capacity.Channel {
	return readEnum[capacity.Channel](d, "channel")
}

// appendLimits writes per-channel integers with their count, so channels can
// be appended later.
func appendLimits(enc *wire.Encoder, v []int) {
	enc.Uvarint(uint64(len(v)))
	for _, n := range v {
		enc.Int(n)
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

// --- policy patch ------------------------------------------------------------

// patchDurations and patchBools list the patch's fields in their fixed wire
// order: bit i of the presence mask is field i (durations first, then bools,
// then mode and strategy). Fields are only appended.
func patchDurations(p *routing.PolicyPatch) []**time.Duration {
	return []**time.Duration{
		&p.WebIdleAfter, &p.WebIdleTimeout, &p.WebDisconnectTimeout,
		&p.MobileInactivityTimeout, &p.MobileDisconnectTimeout,
		&p.MobileAgentEndedTimeout, &p.MobileBackgroundTimeout,
		&p.MessagingInactivityTimeout, &p.OfferTimeout, &p.ReassignDelay,
		&p.IdempotencyRetention,
	}
}

func patchBools(p *routing.PolicyPatch) []**bool {
	return []**bool{&p.AgentCanEndChat, &p.CountInactiveMessaging, &p.AutoAccept}
}

const (
	numPatchDurations = 11
	numPatchBools     = 3
	patchModeBit      = numPatchDurations + numPatchBools
	patchStrategyBit  = patchModeBit + 1
	patchKnownBits    = uint64(1)<<(patchStrategyBit+1) - 1
)

func appendPatch(enc *wire.Encoder, p *routing.PolicyPatch) {
	var mask uint64
	ds, bs := patchDurations(p), patchBools(p)
	for i, f := range ds {
		if *f != nil {
			mask |= 1 << i
		}
	}
	for i, f := range bs {
		if *f != nil {
			mask |= 1 << (numPatchDurations + i)
		}
	}
	if p.Mode != nil {
		mask |= 1 << patchModeBit
	}
	if p.Strategy != nil {
		mask |= 1 << patchStrategyBit
	}
	enc.Uvarint(mask)
	for _, f := range ds {
		if *f != nil {
			enc.Varint(int64(**f))
		}
	}
	for _, f := range bs {
		if *f != nil {
			enc.Bool(**f)
		}
	}
	if p.Mode != nil {
		enc.Byte(byte(*p.Mode))
	}
	if p.Strategy != nil {
		enc.Byte(byte(*p.Strategy))
	}
}

func readPatch(d *wire.Decoder, p *routing.PolicyPatch) {
	mask := d.Uvarint()
	if d.Err() == nil && mask&^patchKnownBits != 0 {
		d.Fail("unknown policy fields %#x", mask&^patchKnownBits)
		return
	}
	for i, f := range patchDurations(p) {
		if mask&(1<<i) != 0 {
			v := time.Duration(d.Varint())
			*f = &v
		}
	}
	for i, f := range patchBools(p) {
		if mask&(1<<(numPatchDurations+i)) != 0 {
			v := d.Bool()
			*f = &v
		}
	}
	if mask&(1<<patchModeBit) != 0 {
		v := readEnum[routing.Mode](d, "routing mode")
		p.Mode = &v
	}
	if mask&(1<<patchStrategyBit) != 0 {
		v := readEnum[routing.Strategy](d, "routing strategy")
		p.Strategy = &v
	}
}
