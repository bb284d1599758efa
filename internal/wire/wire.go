// Package wire is the compact binary encoding shared by the state machine's
// snapshots and the cluster's command log: varints, length-prefixed strings
// and a decoder that records its first error instead of panicking, so that a
// corrupt or hostile input is rejected as a value.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// ErrCorrupt is returned by Decoder.Err when the input is truncated or holds a
// value out of range.
var ErrCorrupt = errors.New("wire: corrupt input")

// MaxStringLen bounds every decoded string or byte slice, so that a corrupt
// length prefix cannot make the decoder allocate gigabytes.
const MaxStringLen = 64 << 20

// Encoder appends values to a byte slice.
type Encoder struct{ Buf []byte }

// Uvarint appends an unsigned varint.
func (e *Encoder) Uvarint(v uint64) { e.Buf = binary.AppendUvarint(e.Buf, v) }

// Varint appends a signed (zig-zag) varint.
func (e *Encoder) Varint(v int64) { e.Buf = binary.AppendVarint(e.Buf, v) }

// Int appends an int as a signed varint.
func (e *Encoder) Int(v int) { e.Varint(int64(v)) }

// Byte appends one byte.
func (e *Encoder) Byte(b byte) { e.Buf = append(e.Buf, b) }

// Bool appends a bool as one byte.
func (e *Encoder) Bool(b bool) {
	if b {
		e.Buf = append(e.Buf, 1)
	} else {
		e.Buf = append(e.Buf, 0)
	}
}

// String appends a length-prefixed string.
func (e *Encoder) String(s string) {
	e.Uvarint(uint64(len(s)))
	e.Buf = append(e.Buf, s...)
}

// Bytes appends a length-prefixed byte slice.
func (e *Encoder) Bytes(b []byte) {
	e.Uvarint(uint64(len(b)))
	e.Buf = append(e.Buf, b...)
}

// Strings appends a counted list of strings.
func (e *Encoder) Strings(ss []string) {
	e.Uvarint(uint64(len(ss)))
	for _, s := range ss {
		e.String(s)
	}
}

// Decoder reads values written by Encoder. After the first error every read
// returns a zero value; check Err once at the end.
type Decoder struct {
	buf []byte
	err error
	// shared, when set, holds the whole input as one string: String then
	// returns substrings of it instead of allocating each string.
	shared string
}

// NewDecoder reads from b.
func NewDecoder(b []byte) *Decoder { return &Decoder{buf: b} }

// NewSharedDecoder reads from b like NewDecoder, but copies b into one
// string up front and returns every decoded string as a piece of it: one
// allocation for the input instead of one per string. The price is that the
// whole input stays in memory while any string read from it does, so use
// it for inputs whose strings live and die together (a log entry's
// commands), not for a snapshot.
func NewSharedDecoder(b []byte) *Decoder { return &Decoder{buf: b, shared: string(b)} }

// Err reports the first decoding error, if any.
func (d *Decoder) Err() error { return d.err }

// Remaining is the number of bytes not yet read.
func (d *Decoder) Remaining() int { return len(d.buf) }

// Fail records err (wrapped in ErrCorrupt) unless an error is already recorded.
func (d *Decoder) Fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
	}
	d.buf = nil
}

// Uvarint reads an unsigned varint.
func (d *Decoder) Uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.buf)
	if n <= 0 || !minimal(d.buf[:n]) {
		d.Fail("bad uvarint")
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

// Varint reads a signed varint.
func (d *Decoder) Varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.buf)
	if n <= 0 || !minimal(d.buf[:n]) {
		d.Fail("bad varint")
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

// minimal reports whether a varint is in its shortest form. encoding/binary
// also accepts overlong forms (0xd1 0x00 for 0x51); refusing them keeps one
// encoding per value, so that equal states always have equal bytes.
func minimal(b []byte) bool { return len(b) == 1 || b[len(b)-1] != 0 }

// Int reads an int written by Encoder.Int, rejecting values that overflow int32
// (no field of ours is that large).
func (d *Decoder) Int() int {
	v := d.Varint()
	if v > math.MaxInt32 || v < math.MinInt32 {
		d.Fail("int out of range: %d", v)
		return 0
	}
	return int(v)
}

// Byte reads one byte.
func (d *Decoder) Byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.buf) == 0 {
		d.Fail("truncated")
		return 0
	}
	b := d.buf[0]
	d.buf = d.buf[1:]
	return b
}

// Bool reads a bool.
func (d *Decoder) Bool() bool {
	switch d.Byte() {
	case 0:
		return false
	case 1:
		return true
	default:
		d.Fail("bad bool")
		return false
	}
}

// Len reads a length prefix and checks it against the bytes left and max.
func (d *Decoder) Len(max int) int {
	n := d.Uvarint()
	if d.err != nil {
		return 0
	}
	if n > uint64(max) || n > uint64(len(d.buf)) {
		d.Fail("length %d out of range", n)
		return 0
	}
	return int(n)
}

// String reads a length-prefixed string.
func (d *Decoder) String() string {
	n := d.Len(MaxStringLen)
	if d.err != nil || n == 0 {
		return ""
	}
	var s string
	if d.shared != "" {
		at := len(d.shared) - len(d.buf)
		s = d.shared[at : at+n]
	} else {
		s = string(d.buf[:n])
	}
	d.buf = d.buf[n:]
	return s
}

// Bytes reads a length-prefixed byte slice (a copy).
func (d *Decoder) Bytes() []byte {
	n := d.Len(MaxStringLen)
	if d.err != nil || n == 0 {
		return nil
	}
	b := append([]byte(nil), d.buf[:n]...)
	d.buf = d.buf[n:]
	return b
}

// Strings reads a counted list of strings; an empty list decodes as nil.
func (d *Decoder) Strings() []string {
	n := d.Len(len(d.buf)) // each string takes at least one byte
	if d.err != nil || n == 0 {
		return nil
	}
	ss := make([]string, n)
	for i := range ss {
		ss[i] = d.String()
	}
	return ss
}
