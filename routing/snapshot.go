package routing

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"time"

	"github.com/omnirouter/omnirouter/capacity"
	"github.com/omnirouter/omnirouter/internal/wire"
)

// Snapshot format: the magic "omnirouter-state", a format version byte, then
// the machine's scalars, policy, agents, conversations, idempotency keys and
// retained events, each list in index order, so that two machines with the
// same state write the same bytes. Derived indexes (queue, deadlines,
// availability) are rebuilt on read.
//
// Conversations are listed in arrival order (Seq) and idempotency records
// in the order they were stored (Machine.keys; a key stored again after
// expiring appears twice, the later record is the key's).
//
// A trailer ends every snapshot: the length of everything before it (8
// bytes, big-endian) and the CRC-32C of it (4 bytes). A snapshot is a
// backup file an operator carries around: one flipped or missing byte
// anywhere makes it refused before a single field is read.
//
// Compatibility: a release reads its own version and the previous
// release's; the version changes whenever the layout does (docs/compatibility.md).
const (
	snapshotMagic   = "omnirouter-state"
	snapshotVersion = 3
	trailerLen      = 12
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// summingWriter counts and checksums what passes through it.
type summingWriter struct {
	w   io.Writer
	n   uint64
	crc uint32
}

func (s *summingWriter) Write(p []byte) (int, error) {
	n, err := s.w.Write(p)
	s.n += uint64(n)
	s.crc = crc32.Update(s.crc, castagnoli, p[:n])
	return n, err
}

// checkTrailer verifies a snapshot's length and checksum and returns what
// the trailer covers.
func checkTrailer(data []byte) ([]byte, error) {
	if len(data) < len(snapshotMagic)+1+trailerLen {
		return nil, fmt.Errorf("%w: %d bytes is too short for a snapshot", ErrBadSnapshot, len(data))
	}
	body, trailer := data[:len(data)-trailerLen], data[len(data)-trailerLen:]
	if n := binary.BigEndian.Uint64(trailer); n != uint64(len(body)) {
		return nil, fmt.Errorf("%w: it says it holds %d bytes before its checksum, it holds %d (truncated or extended)", ErrBadSnapshot, n, len(body))
	}
	if sum := binary.BigEndian.Uint32(trailer[8:]); sum != crc32.Checksum(body, castagnoli) {
		return nil, fmt.Errorf("%w: checksum mismatch (the file is damaged)", ErrBadSnapshot)
	}
	return body, nil
}

// ErrBadSnapshot is wrapped by every ReadSnapshot error.
var ErrBadSnapshot = errors.New("bad snapshot")

const flushAt = 64 << 10

// WriteSnapshot writes the whole state to w. Writing a Clone while the
// original keeps applying is safe.
func (m *Machine) WriteSnapshot(w io.Writer) error {
	sum := &summingWriter{w: w}
	bw := bufio.NewWriterSize(sum, flushAt)
	e := &wire.Encoder{Buf: make([]byte, 0, flushAt)}
	var werr error
	flush := func(force bool) {
		if werr == nil && (force || len(e.Buf) >= flushAt) {
			_, werr = bw.Write(e.Buf)
			e.Buf = e.Buf[:0]
		}
	}
	e.Buf = append(e.Buf, snapshotMagic...)
	e.Byte(snapshotVersion)
	e.Varint(m.now)
	e.Uvarint(m.nextEventID)
	e.Uvarint(m.nextSeq)
	e.Uvarint(m.nextTicket)
	encodePolicy(e, &m.policy)
	e.Int(m.eventLimits.Count)
	e.Varint(m.eventLimits.Bytes)

	e.Uvarint(uint64(m.agents.Len()))
	m.agents.Ascend(func(r agentRef) bool {
		encodeAgent(e, r.a)
		flush(false)
		return true
	})
	e.Uvarint(uint64(m.convs.Len()))
	m.convs.Ascend(func(r convRef) bool {
		encodeConversation(e, r.c)
		flush(false)
		return true
	})
	e.Uvarint(uint64(m.keys.Len()))
	m.keys.each(0, func(rec **keyRecord) bool {
		encodeKeyRecord(e, *rec)
		flush(false)
		return true
	})
	e.Uvarint(uint64(m.events.Len()))
	m.events.ascendFrom(0, func(ev *Event) bool {
		encodeEvent(e, ev)
		flush(false)
		return true
	})
	encodeStats(e, m.stats)
	encodeWebhooks(e, m)
	flush(true)
	if werr != nil {
		return werr
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	var trailer [trailerLen]byte
	binary.BigEndian.PutUint64(trailer[:], sum.n)
	binary.BigEndian.PutUint32(trailer[8:], sum.crc)
	_, err := w.Write(trailer[:])
	return err
}

// ReadSnapshot builds a fresh machine from a snapshot written by
// WriteSnapshot. It never panics on bad input and checks the invariants of
// what it read.
func ReadSnapshot(r io.Reader) (*Machine, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadSnapshot, err)
	}
	return DecodeSnapshot(data)
}

// DecodeSnapshot is ReadSnapshot on bytes.
func DecodeSnapshot(data []byte) (*Machine, error) {
	body, err := checkTrailer(data)
	if err != nil {
		return nil, err
	}
	return decodeSnapshotBody(body)
}

// decodeSnapshotBody decodes what the trailer covers (fuzzed on its own:
// the checksum would refuse nearly every mutation first).
func decodeSnapshotBody(data []byte) (*Machine, error) {
	if len(data) < len(snapshotMagic)+1 || string(data[:len(snapshotMagic)]) != snapshotMagic {
		return nil, fmt.Errorf("%w: not an omnirouter state snapshot", ErrBadSnapshot)
	}
	if version := data[len(snapshotMagic)]; version != snapshotVersion {
		return nil, fmt.Errorf("%w: format version %d, this build reads %d", ErrBadSnapshot, version, snapshotVersion)
	}
	// Lists must be strictly ordered: a duplicate or a shuffled list is
	// corruption, not another state.
	d := wire.NewDecoder(data[len(snapshotMagic)+1:])
	m := New()
	m.now = d.Varint()
	m.nextEventID = d.Uvarint()
	m.nextSeq = d.Uvarint()
	m.nextTicket = d.Uvarint()
	decodePolicy(d, &m.policy)
	m.eventLimits = EventLimits{Count: d.Int(), Bytes: d.Varint()}
	if d.Err() == nil && m.eventLimits.validate() != nil {
		d.Fail("event limits: %v", m.eventLimits.validate())
	}

	n := d.Len(d.Remaining())
	var prev string
	for i := 0; i < n && d.Err() == nil; i++ {
		a := decodeAgent(d)
		a.cow = m.cow
		if i > 0 && a.ID <= prev {
			d.Fail("agents out of order")
		}
		prev = a.ID
		m.putAgent(a)
	}
	n = d.Len(d.Remaining())
	var prevConv *Conversation
	for i := 0; i < n && d.Err() == nil; i++ {
		c := decodeConversation(d)
		c.cow = m.cow
		if i > 0 && prevConv.Seq >= c.Seq {
			d.Fail("conversations out of order")
		}
		if c.Seq == 0 || c.Seq >= m.nextSeq {
			d.Fail("conversation %q has arrival sequence %d, next is %d", c.ID, c.Seq, m.nextSeq)
		}
		if m.putConv(c) {
			d.Fail("two conversations have arrival sequence %d", c.Seq)
		}
		prevConv = c
	}
	n = d.Len(d.Remaining())
	for i := 0; i < n && d.Err() == nil; i++ {
		m.putKey(decodeKeyRecord(d))
	}
	n = d.Len(d.Remaining())
	var prevID uint64
	for i := 0; i < n && d.Err() == nil; i++ {
		ev := decodeEvent(d)
		if ev.ID <= prevID || ev.ID >= m.nextEventID || (i > 0 && ev.ID != prevID+1) {
			d.Fail("event ids out of order or not contiguous")
		}
		prevID = ev.ID
		m.events.push(ev, m.eventLimits, nil)
	}
	if d.Err() == nil && m.events.Len() != n {
		d.Fail("%d events, more than the limits (%d, %d bytes) keep", n, m.eventLimits.Count, m.eventLimits.Bytes)
	}
	decodeStats(d, m)
	statRows := len(m.stats.rows)
	decodeWebhooks(d, m)
	if d.Err() == nil && d.Remaining() != 0 {
		d.Fail("%d trailing bytes", d.Remaining())
	}
	if err := d.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadSnapshot, err)
	}
	m.rebuildIndexes()
	if len(m.stats.rows) != statRows {
		// A snapshot lists every row, so that a restored machine has the
		// same rows under the cap of groups as the one that wrote it.
		return nil, fmt.Errorf("%w: stats: the state has %d rows, the snapshot lists %d", ErrBadSnapshot, len(m.stats.rows), statRows)
	}
	if err := m.CheckInvariants(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadSnapshot, err)
	}
	return m, nil
}

// rebuildIndexes derives the queue, deadline and availability indexes from
// agents and conversations.
func (m *Machine) rebuildIndexes() {
	m.Conversations(func(c *Conversation) bool {
		if c.State == StateQueued {
			m.queueInsert(c)
		}
		if c.State == StateEnded {
			m.ended.ReplaceOrInsert(endedKey{At: c.EndedAt, Seq: c.Seq})
		}
		for t, at := range c.deadlines {
			if at != 0 {
				m.deadlines.ReplaceOrInsert(deadlineKey{At: at, Owner: ownerConversation, ID: c.ID, Timer: timer(t)})
			}
		}
		return true
	})
	m.rebuildStats()
	m.agents.Ascend(func(r agentRef) bool {
		a := r.a
		if a.ReassignAt != 0 {
			m.deadlines.ReplaceOrInsert(deadlineKey{At: a.ReassignAt, Owner: ownerAgent, ID: a.ID})
		}
		m.reindexAvail(a)
		return true
	})
	m.match.reset()
}

func encodeDuration(e *wire.Encoder, d time.Duration) { e.Varint(int64(d)) }
func decodeDuration(d *wire.Decoder) time.Duration    { return time.Duration(d.Varint()) }

func encodeLimits(e *wire.Encoder, l [capacity.NumChannels]int) {
	for _, n := range l {
		e.Int(n)
	}
}

func decodeLimits(d *wire.Decoder) (l [capacity.NumChannels]int) {
	for i := range l {
		l[i] = d.Int()
	}
	return l
}

func encodeAgent(e *wire.Encoder, a *Agent) {
	e.String(a.ID)
	e.String(a.Name)
	e.Byte(byte(a.Status))
	encodeLimits(e, a.Capacity)
	encodeLimits(e, a.Load)
	e.Strings(a.Skills)
	e.Strings(a.Groups)
	e.Strings(a.Conversations)
	for _, t := range a.LastAssigned {
		e.Varint(t)
	}
	e.Varint(a.ReassignAt)
}

func decodeAgent(d *wire.Decoder) *Agent {
	a := &Agent{ID: d.String(), Name: d.String(), Status: AgentStatus(d.Byte())}
	a.Capacity = decodeLimits(d)
	a.Load = decodeLimits(d)
	a.Skills = d.Strings()
	a.Groups = d.Strings()
	a.Conversations = d.Strings()
	for i := range a.LastAssigned {
		a.LastAssigned[i] = d.Varint()
	}
	a.ReassignAt = d.Varint()
	if !a.Status.Valid() {
		d.Fail("bad agent status")
	}
	if a.Capacity.Validate() != nil {
		d.Fail("bad agent capacity")
	}
	return a
}

func encodeTicket(e *wire.Encoder, t *Ticket) {
	e.Bool(t != nil)
	if t != nil {
		e.String(t.ID)
		e.Byte(byte(t.Status))
		e.Varint(t.CreatedAt)
		e.String(t.Via)
	}
}

func decodeTicket(d *wire.Decoder) *Ticket {
	if !d.Bool() {
		return nil
	}
	t := &Ticket{ID: d.String(), Status: TicketStatus(d.Byte()), CreatedAt: d.Varint(), Via: d.String()}
	if !t.Status.Valid() {
		d.Fail("bad ticket status")
	}
	return t
}

func encodeMessages(e *wire.Encoder, ms []Message) {
	e.Uvarint(uint64(len(ms)))
	for i := range ms {
		e.Byte(byte(ms[i].Author))
		e.String(ms[i].AgentID)
		e.String(ms[i].Text)
		e.Varint(ms[i].At)
	}
}

func decodeMessages(d *wire.Decoder) []Message {
	n := d.Len(d.Remaining() / 4) // a message takes at least four bytes
	if n == 0 {
		return nil
	}
	ms := make([]Message, n)
	for i := range ms {
		ms[i] = Message{Author: Author(d.Byte()), AgentID: d.String(), Text: d.String(), At: d.Varint()}
		if !ms[i].Author.Valid() {
			d.Fail("bad message author")
		}
	}
	return ms
}

func encodeConversation(e *wire.Encoder, c *Conversation) {
	e.String(c.ID)
	e.Byte(byte(c.Channel))
	e.Byte(byte(c.Client))
	e.Bool(c.PushEnabled)
	e.Int(c.Priority)
	e.Strings(c.Skills)
	e.String(c.Group)
	e.String(c.VisitorID)
	e.String(c.Subject)
	e.Strings(c.OptionalSkills)
	e.Strings(c.SecondaryGroups)
	e.Bool(c.Relaxed)
	e.Bool(c.TransferPending)
	e.String(c.TransferTarget)
	e.Byte(byte(c.State))
	e.Byte(byte(c.Activity))
	e.String(c.AgentID)
	e.Bool(c.Missed)
	e.String(c.EndedReason)
	e.Varint(c.CreatedAt)
	e.Varint(c.EndedAt)
	e.Varint(c.QueuedAt)
	e.Uvarint(c.Seq)
	encodeTicket(e, c.Ticket)
	encodeMessages(e, c.Transcript)
	e.Bool(c.Joined)
	e.Strings(c.Missers)
	e.Bool(c.Counted)
	e.Bool(c.Exempt)
	e.Bool(c.AwaitAgent)
	e.Bool(c.Disconnected)
	e.Bool(c.Backgrounded)
	for _, t := range c.deadlines {
		e.Varint(t)
	}
}

func decodeConversation(d *wire.Decoder) *Conversation {
	c := &Conversation{ID: d.String(), Channel: capacity.Channel(d.Byte()), Client: Client(d.Byte()),
		PushEnabled: d.Bool(), Priority: d.Int(), Skills: d.Strings(), Group: d.String(), VisitorID: d.String(),
		Subject: d.String(), OptionalSkills: d.Strings(), SecondaryGroups: d.Strings(), Relaxed: d.Bool(), TransferPending: d.Bool(),
		TransferTarget: d.String(), State: State(d.Byte()), Activity: Activity(d.Byte()), AgentID: d.String(), Missed: d.Bool(),
		EndedReason: d.String(), CreatedAt: d.Varint(), EndedAt: d.Varint(), QueuedAt: d.Varint(), Seq: d.Uvarint()}
	c.Ticket = decodeTicket(d)
	c.Transcript = decodeMessages(d)
	for i := range c.Transcript {
		c.TranscriptBytes += len(c.Transcript[i].Text)
	}
	c.Joined = d.Bool()
	c.Missers = d.Strings()
	c.Counted = d.Bool()
	c.Exempt = d.Bool()
	c.AwaitAgent = d.Bool()
	c.Disconnected = d.Bool()
	c.Backgrounded = d.Bool()
	for i := range c.deadlines {
		c.deadlines[i] = d.Varint()
	}
	if !c.Channel.Valid() || !c.Client.Valid() || !c.State.Valid() || !c.Activity.Valid() {
		d.Fail("bad conversation enum")
	}
	return c
}

func encodeEvent(e *wire.Encoder, ev *Event) {
	e.Uvarint(ev.ID)
	e.String(ev.Type)
	e.Varint(ev.At)
	e.String(ev.ConversationID)
	e.String(ev.AgentID)
	x := &ev.Data
	e.String(x.Reason)
	e.String(x.Status)
	e.String(x.Previous)
	e.Bool(x.Missed)
	encodeMessages(e, x.Transcript)
	encodeTicket(e, x.Ticket)
	encodeLimits(e, x.Capacity)
	encodeLimits(e, x.Load)
	e.Bool(x.Message != nil)
	if x.Message != nil {
		encodeMessages(e, []Message{*x.Message})
	}
	e.String(x.TargetAgent)
	e.String(x.TargetGroup)
}

func decodeEvent(d *wire.Decoder) Event {
	ev := Event{ID: d.Uvarint(), Type: d.String(), At: d.Varint(), ConversationID: d.String(), AgentID: d.String()}
	x := &ev.Data
	x.Reason = d.String()
	x.Status = d.String()
	x.Previous = d.String()
	x.Missed = d.Bool()
	x.Transcript = decodeMessages(d)
	x.Ticket = decodeTicket(d)
	x.Capacity = decodeLimits(d)
	x.Load = decodeLimits(d)
	if d.Bool() {
		if ms := decodeMessages(d); len(ms) == 1 {
			x.Message = &ms[0]
		} else {
			d.Fail("bad event message")
		}
	}
	x.TargetAgent = d.String()
	x.TargetGroup = d.String()
	return ev
}

func encodeError(e *wire.Encoder, err *Error) {
	if err == nil {
		e.Byte(0)
		return
	}
	class := 0
	for i, c := range errorClasses {
		if c == err.Class {
			class = i + 1
		}
	}
	e.Byte(byte(class))
	e.String(err.Code)
	e.String(err.Message)
}

func decodeError(d *wire.Decoder) *Error {
	class := d.Byte()
	if class == 0 {
		return nil
	}
	if int(class) > len(errorClasses) {
		d.Fail("bad error class")
		return nil
	}
	return &Error{Class: errorClasses[class-1], Code: d.String(), Message: d.String()}
}

func encodeAssignment(e *wire.Encoder, a *Assignment) {
	e.Bool(a != nil)
	if a != nil {
		e.String(a.ConversationID)
		e.String(a.AgentID)
		e.Byte(byte(a.State))
	}
}

func decodeAssignment(d *wire.Decoder) *Assignment {
	if !d.Bool() {
		return nil
	}
	a := &Assignment{ConversationID: d.String(), AgentID: d.String(), State: State(d.Byte())}
	if !a.State.Valid() {
		d.Fail("bad assignment state")
	}
	return a
}

func encodeKeyRecord(e *wire.Encoder, k *keyRecord) {
	e.String(k.Key)
	e.Byte(byte(k.Kind))
	e.String(k.Target)
	e.Varint(k.ExpireAt)
	encodeError(e, k.Err)
	encodeAssignment(e, k.Assignment)
	e.String(k.ConvID)
	e.Uvarint(k.ConvSeq)
	e.String(k.AgentID)
}

func decodeKeyRecord(d *wire.Decoder) *keyRecord {
	k := &keyRecord{Key: d.String(), Kind: Kind(d.Byte()), Target: d.String(), ExpireAt: d.Varint()}
	k.Err = decodeError(d)
	k.Assignment = decodeAssignment(d)
	k.ConvID = d.String()
	k.ConvSeq = d.Uvarint()
	k.AgentID = d.String()
	return k
}

// EncodeOutcome appends an outcome (without its events) in the snapshot's
// encoding; the cluster uses it to return a forwarded command's result.
func EncodeOutcome(e *wire.Encoder, o Outcome) {
	e.Bool(o.Conversation != nil)
	if o.Conversation != nil {
		encodeConversation(e, o.Conversation)
	}
	e.Bool(o.Agent != nil)
	if o.Agent != nil {
		encodeAgent(e, o.Agent)
	}
	encodeAssignment(e, o.Assignment)
	var derr *Error
	errors.As(o.Err, &derr)
	encodeError(e, derr)
	e.Bool(o.Replayed)
	e.String(o.ConversationID)
	e.String(o.AgentID)
}

// DecodeOutcome reads an outcome written by EncodeOutcome.
func DecodeOutcome(d *wire.Decoder) Outcome {
	var o Outcome
	if d.Bool() {
		o.Conversation = decodeConversation(d)
	}
	if d.Bool() {
		o.Agent = decodeAgent(d)
	}
	o.Assignment = decodeAssignment(d)
	if err := decodeError(d); err != nil {
		o.Err = err
	}
	o.Replayed = d.Bool()
	o.ConversationID = d.String()
	o.AgentID = d.String()
	return o
}
