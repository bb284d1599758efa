package api

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// flatCases are bodies decodeFlat must take (fast) or leave to
// encoding/json (not fast).
var flatCases = []struct {
	body string
	fast bool
}{
	{`{"id":"c000000001","channel":"chat","message":"Hello, I need help with my order","skills":["run-1"]}`, true},
	{` { "channel" : "messaging" , "client":"web", "push_enabled":true, "priority": -3, "skills": [ ], "group":"g", "visitor_id":"v1" } `, true},
	{`{"message":"héllo ✓"}`, true},
	{`{}`, true},
	{`{"priority":0}`, true},
	{`{"priority":-0}`, true},
	{`{"message":"a \"quote\""}`, false},        // escape
	{`{"message":null}`, false},                 // null
	{`{"id":"a","id":"b"}`, false},              // repeated key
	{`{"ID":"a"}`, false},                       // not the exact name (encoding/json folds case)
	{`{"priority":1.0}`, false},                 // a fraction
	{`{"priority":1e2}`, false},                 // an exponent
	{`{"priority":01}`, false},                  // a leading zero
	{`{"priority":1234567890123456789}`, false}, // 19 digits
	{`{"skills":["a",1]}`, false},               // not a string list
	{`{"id":{"x":1}}`, false},                   // nested
	{`{"id":"a"} x`, false},                     // trailing data
	{`{"id":"a",}`, false},                      // trailing comma
	{`{"unknown":"a"}`, false},
	{`{"priority":"5"}`, false},  // wrong type
	{"{\"id\":\"\xff\"}", false}, // invalid UTF-8
	{"{\"id\":\"a\tb\"}", false}, // a control character
	{`[]`, false},
	{`{"id":"a"`, false},
}

func TestFlatDecodeTakesCommonBodies(t *testing.T) {
	for _, c := range flatCases {
		var r createRequest
		if got := decodeFlat([]byte(c.body), &r); got != c.fast {
			t.Errorf("decodeFlat(%s) = %v, want %v", c.body, got, c.fast)
		}
	}
}

// FuzzFlatDecode: whatever decodeFlat takes, encoding/json (as decode runs
// it) decodes to the same value; whatever it leaves, encoding/json decodes
// into the partly filled value exactly as into a fresh one.
func FuzzFlatDecode(f *testing.F) {
	for _, c := range flatCases {
		f.Add([]byte(c.body))
	}
	f.Add([]byte(`{"author":"agent","agent_id":"a1","text":"hi"}`))
	f.Add([]byte(`{"by":"agent","agent_id":"a1"}`))
	f.Add([]byte(`{"conversation_id":"c1","ticket_status":"pending"}`))
	f.Add([]byte(`{"agent_id":"a1","AGENT_ID":"a2"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		checkFlat(t, body, func() flatTarget { return new(createRequest) })
		checkFlat(t, body, func() flatTarget { return new(messageRequest) })
		checkFlat(t, body, func() flatTarget { return new(agentIDRequest) })
		checkFlat(t, body, func() flatTarget { return new(endRequest) })
		checkFlat(t, body, func() flatTarget { return new(releaseRequest) })
	})
}

func checkFlat(t *testing.T, body []byte, fresh func() flatTarget) {
	t.Helper()
	std := func(v any) (any, error) {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		err := dec.Decode(v)
		if err == nil && dec.More() {
			err = errTrailing
		}
		return v, err
	}
	fast := fresh()
	if decodeFlat(body, fast) {
		want, err := std(fresh())
		if err != nil {
			t.Fatalf("decodeFlat took %q, encoding/json refuses it: %v", body, err)
		}
		if !reflect.DeepEqual(fast, want) {
			t.Fatalf("%q: decodeFlat %+v, encoding/json %+v", body, fast, want)
		}
		return
	}
	got, gerr := std(fast) // into what decodeFlat left behind
	want, werr := std(fresh())
	if (gerr == nil) != (werr == nil) || gerr == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("%q: after decodeFlat gave up, encoding/json gives %+v (%v), from fresh %+v (%v)", body, got, gerr, want, werr)
	}
}

var errTrailing = jsonTrailingError{}

type jsonTrailingError struct{}

func (jsonTrailingError) Error() string { return "trailing data" }
