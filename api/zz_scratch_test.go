package api

import (
	"bytes"
	"encoding/json"
	"testing"

	jsonv2 "github.com/go-json-experiment/json"
	jsonv1 "github.com/go-json-experiment/json/v1"

	"github.com/omnirouter/omnirouter/capacity"
	"github.com/omnirouter/omnirouter/routing"
)

func scratchConv() *routing.Conversation {
	return &routing.Conversation{ID: "c000012345", Channel: capacity.Chat, Client: routing.ClientWeb, CreatedAt: 1765000000000, QueuedAt: 1765000000000,
		Transcript: []routing.Message{{Author: routing.AuthorVisitor, Text: "Hello, I need help with my order", At: 1765000000000}}}
}

func BenchmarkScratchV1(b *testing.B) {
	c := scratchConv()
	b.ReportAllocs()
	for b.Loop() {
		_, _ = json.Marshal(conversationView(c, fullTranscript))
	}
}
func BenchmarkScratchExpV1(b *testing.B) {
	c := scratchConv()
	b.ReportAllocs()
	for b.Loop() {
		_, _ = jsonv1.Marshal(conversationView(c, fullTranscript))
	}
}
func BenchmarkScratchV2Write(b *testing.B) {
	c := scratchConv()
	var buf bytes.Buffer
	o := jsonv1.DefaultOptionsV1()
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		_ = jsonv2.MarshalWrite(&buf, conversationView(c, fullTranscript), o)
	}
}
func TestScratchSame(t *testing.T) {
	c := scratchConv()
	a, _ := json.Marshal(conversationView(c, fullTranscript))
	b2, _ := jsonv1.Marshal(conversationView(c, fullTranscript))
	var buf bytes.Buffer
	_ = jsonv2.MarshalWrite(&buf, conversationView(c, fullTranscript), jsonv1.DefaultOptionsV1())
	if string(a) != string(b2) || string(a) != buf.String() {
		t.Fatalf("%s\n%s\n%s", a, b2, buf.String())
	}
	t.Logf("%s", a)
}
