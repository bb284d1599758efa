package wire

import (
	"errors"
	"math"
	"slices"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	var e Encoder
	e.Uvarint(math.MaxUint64)
	e.Varint(math.MinInt64)
	e.Int(-42)
	e.Byte(7)
	e.Bool(true)
	e.String("héllo")
	e.Bytes([]byte{1, 2, 3})
	e.Strings([]string{"a", "", "c"})
	e.Strings(nil)

	d := NewDecoder(e.Buf)
	if v := d.Uvarint(); v != math.MaxUint64 {
		t.Errorf("uvarint %d", v)
	}
	if v := d.Varint(); v != math.MinInt64 {
		t.Errorf("varint %d", v)
	}
	if v := d.Int(); v != -42 {
		t.Errorf("int %d", v)
	}
	if v := d.Byte(); v != 7 {
		t.Errorf("byte %d", v)
	}
	if !d.Bool() {
		t.Error("bool")
	}
	if v := d.String(); v != "héllo" {
		t.Errorf("string %q", v)
	}
	if v := d.Bytes(); !slices.Equal(v, []byte{1, 2, 3}) {
		t.Errorf("bytes %v", v)
	}
	if v := d.Strings(); !slices.Equal(v, []string{"a", "", "c"}) {
		t.Errorf("strings %v", v)
	}
	if v := d.Strings(); v != nil {
		t.Errorf("empty strings %v", v)
	}
	if d.Err() != nil || d.Remaining() != 0 {
		t.Fatalf("err %v, %d left", d.Err(), d.Remaining())
	}
}

func TestCorruptInputIsAnErrorNotAPanic(t *testing.T) {
	var e Encoder
	e.String("hello")
	e.Bool(true)
	full := e.Buf
	for cut := range len(full) {
		d := NewDecoder(full[:cut])
		_ = d.String()
		_ = d.Bool()
		if !errors.Is(d.Err(), ErrCorrupt) {
			t.Errorf("truncated to %d bytes: err %v", cut, d.Err())
		}
	}
	// A huge length prefix must not allocate.
	var big Encoder
	big.Uvarint(1 << 40)
	d := NewDecoder(big.Buf)
	if s := d.String(); s != "" || !errors.Is(d.Err(), ErrCorrupt) {
		t.Errorf("huge length: %q %v", s, d.Err())
	}
	d = NewDecoder([]byte{2})
	if d.Bool(); !errors.Is(d.Err(), ErrCorrupt) {
		t.Error("bool 2 accepted")
	}
	var wide Encoder
	wide.Varint(math.MaxInt64)
	if d = NewDecoder(wide.Buf); d.Int() != 0 || d.Err() == nil {
		t.Error("out-of-range int accepted")
	}
}

func TestOverlongVarintsAreRefused(t *testing.T) {
	for _, b := range [][]byte{{0xd1, 0x00}, {0x80, 0x00}, {0xff, 0x80, 0x00}} {
		if d := NewDecoder(b); d.Uvarint() != 0 || !errors.Is(d.Err(), ErrCorrupt) {
			t.Errorf("uvarint % x accepted", b)
		}
		if d := NewDecoder(b); d.Varint() != 0 || !errors.Is(d.Err(), ErrCorrupt) {
			t.Errorf("varint % x accepted", b)
		}
	}
	for _, v := range []uint64{0, 1, 127, 128, 1 << 40, math.MaxUint64} {
		var e Encoder
		e.Uvarint(v)
		if d := NewDecoder(e.Buf); d.Uvarint() != v || d.Err() != nil {
			t.Errorf("%d does not round-trip: %v", v, d.Err())
		}
	}
}

// A shared decoder reads the same values with one allocation for all its
// strings, and they survive the input being overwritten (they are a copy).
func TestSharedDecoder(t *testing.T) {
	var e Encoder
	words := []string{"conversation-1", "", "idempotency-key", "héllo", "agent-7"}
	for _, w := range words {
		e.String(w)
		e.Varint(-3)
	}
	e.Strings(words)
	in := slices.Clone(e.Buf)
	d := NewSharedDecoder(in)
	var got []string
	for range words {
		got = append(got, d.String())
		if v := d.Varint(); v != -3 {
			t.Fatalf("varint %d", v)
		}
	}
	got = append(got, d.Strings()...)
	if d.Err() != nil || d.Remaining() != 0 {
		t.Fatalf("err %v, %d left", d.Err(), d.Remaining())
	}
	clear(in)
	if want := append(slices.Clone(words), words...); !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	allocs := testing.AllocsPerRun(100, func() {
		d := NewSharedDecoder(e.Buf)
		for range words {
			_ = d.String()
			_ = d.Varint()
		}
	})
	if allocs > 2 { // the string copy, and the decoder if it escapes
		t.Errorf("%v allocations for %d strings, want at most 2", allocs, len(words))
	}
	if d := NewSharedDecoder([]byte{5, 'a'}); d.String() != "" || d.Err() == nil {
		t.Error("a truncated string must fail")
	}
}
