package cluster

import (
	"fmt"

	"github.com/omnirouter/omnirouter/internal/wire"
	"github.com/omnirouter/omnirouter/routing"
)

// Envelope types. Types 1..99 are routing.Kind values (the command's fields
// are routing's encoding: routing.AppendCommand); cluster-level entries use
// their own numbers from 100. Types are only ever appended.
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
		routing.AppendCommand(enc, e.cmd)
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
		if e.typ >= typeRegister {
			d.Fail("unknown entry type %d", e.typ)
			return e
		}
		e.at = d.Varint()
		e.key = d.String()
		e.cmd = routing.ReadCommand(d, routing.Kind(e.typ))
	}
	return e
}
