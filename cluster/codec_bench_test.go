package cluster

import (
	"testing"

	"github.com/omnirouter/omnirouter/capacity"
	"github.com/omnirouter/omnirouter/routing"
)

var benchCreate = routing.CreateConversation{ID: "c-0123456789abcdef0123456789abcdef", Channel: capacity.Chat,
	Client: routing.ClientWeb, Priority: 1, Skills: []string{"fr"}, Group: "support", VisitorID: "v-42",
	Message: "Hello, I need help with my order"}

// BenchmarkEncodeCommand is the leader's cost to put one command in the log.
func BenchmarkEncodeCommand(b *testing.B) {
	e := commandEntry(1767225600000, "key-0123456789", benchCreate)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if len(encodeEntry(&e)) == 0 {
			b.Fatal("empty")
		}
	}
}

// BenchmarkDecodeCommand is every replica's cost to read it back.
func BenchmarkDecodeCommand(b *testing.B) {
	e := commandEntry(1767225600000, "key-0123456789", benchCreate)
	data := encodeEntry(&e)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := decodeEntry(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodeBatch64 is one batch entry of 64 commands.
func BenchmarkEncodeBatch64(b *testing.B) {
	es := make([]entry, 64)
	for i := range es {
		es[i] = commandEntry(1767225600000, "key-0123456789", benchCreate)
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		encodeBatch(es)
	}
}
