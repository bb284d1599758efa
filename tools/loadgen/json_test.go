package loadgen

import (
	"encoding/json"
	"testing"
)

// marshal is what encoding/json writes for v.
func marshal(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var awkwardStrings = []string{
	"", "plain", `quote " and \ backslash`, "new\nline\ttab\rcr", "\x00\x01\x1f\x7f",
	"ünïcödé ✓ 😀", "bad \xff utf-8 \xc3", "line\u2028para\u2029", "<html> & co",
}

func TestObjectEncodesAsEncodingJSON(t *testing.T) {
	for _, s := range awkwardStrings {
		got := string(object("k", s, "second", "v"))
		want := `{"k":` + marshal(t, s) + `,"second":"v"}`
		if got != want {
			t.Errorf("object(%q) = %s, want %s", s, got, want)
		}
	}
	if got := string(object()); got != "{}" {
		t.Errorf("object() = %s", got)
	}
}

func TestRequestBodiesEncodeAsEncodingJSON(t *testing.T) {
	bodies := []interface{ encode() rawJSON }{
		createBody{ID: "c1", Channel: "chat", Client: "web", Message: "hi \"there\"", Skills: []string{"run", "ü"}},
		createBody{ID: "c2", Channel: "messaging", Message: "", Skills: []string{}},
		createBody{ID: "c3", Channel: "messaging"},
		messageBody{Author: "agent", AgentID: "a1", Text: "hello\n"},
		messageBody{Author: "visitor", Text: "bad \xff"},
	}
	for _, b := range bodies {
		if got, want := string(b.encode()), marshal(t, b); got != want {
			t.Errorf("%#v encodes as %s, want %s", b, got, want)
		}
	}
}

func TestConversationDecodeAnswer(t *testing.T) {
	answer := `{"id":"c\u00fc1","channel":"chat","state":"offered","nested":{"state":"x","a":[1,-2.5e3,"]}",{"agent_id":"no"}]},
		"transcript":[{"text":"{\"agent_id\":\"no\"}"}],"n":null,"t":true,"agent_id":"a7","ok":false}`
	c := conversation{ID: "stale", AgentID: "stale"}
	if err := c.decodeAnswer([]byte(answer)); err != nil {
		t.Fatal(err)
	}
	if want := (conversation{ID: "cü1", State: "offered", AgentID: "a7"}); c != want {
		t.Fatalf("decoded %+v, want %+v", c, want)
	}
	if err := c.decodeAnswer([]byte(`{"id":"x"}`)); err != nil || c != (conversation{ID: "x"}) {
		t.Fatalf("a short answer decodes as %+v, %v: fields of the previous one must not stay", c, err)
	}
	for _, bad := range []string{``, `[]`, `{`, `{"id":"x"`, `{"id":}`, `{"id":"x",}`, `{"id" "x"}`, `{"a":01}`,
		`{"a":tru}`, `{"a":[1,]}`, `{"a":{"b"}}`, `{"id":"x"} extra`, "{\"id\":\"a\nb\"}", `{"a":-}`, `{"a":1.}`, `{"a":1e}`} {
		if err := c.decodeAnswer([]byte(bad)); err == nil {
			t.Errorf("%q decoded without an error", bad)
		}
	}
}

// FuzzTopLevelStrings: every JSON object encoding/json reads, the scanner
// reads too, with the same string members (the last of a repeated name
// wins, as in encoding/json) and no others.
func FuzzTopLevelStrings(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":"b","c":1,"d":[{"e":"f"}],"a":"g"}`, `{"s":"\ud83d\ude00 \/ \u00e9"}`,
		` { "x" : { "y" : [ true , null , -0.5E+2 ] } , "z" : "w" } `, `{"a":"\ud800"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var want map[string]any
		if json.Unmarshal(data, &want) != nil || want == nil {
			return
		}
		got := map[string]string{}
		if err := topLevelStrings(data, func(name, value string) { got[name] = value }); err != nil {
			t.Fatalf("valid object %q: %v", data, err)
		}
		for name, v := range want {
			if s, ok := v.(string); ok && got[name] != s {
				t.Fatalf("%q: member %q = %q, want %q", data, name, got[name], s)
			}
		}
		for name := range got {
			// A name repeated with a value of another type last is a
			// string member too; it only has to be one.
			if _, ok := want[name]; !ok {
				t.Fatalf("%q: read member %q, which the object does not have", data, name)
			}
		}
	})
}
