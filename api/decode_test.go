package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	jsonv2 "github.com/go-json-experiment/json"
)

// decodeBody runs decode on body as a request's JSON body.
func decodeBody(t *testing.T, body string, v any) error {
	t.Helper()
	rec := httptest.NewRecorder()
	c, _ := gin.CreateTestContext(rec)
	c.Request = httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
	c.Request.Header.Set("Content-Type", "application/json")
	return decode(c, v)
}

// Every request body goes through decode: what it takes, and the status and
// code of what it refuses, with the field named.
func TestDecode(t *testing.T) {
	msg := "hi"
	for _, tc := range []struct {
		body string
		want createRequest
	}{
		{``, createRequest{}},
		{" \n\t", createRequest{}},
		{`{}`, createRequest{}},
		{` { "id" : "c1", "channel":"chat", "client":"web", "push_enabled":true, "priority":-3, "skills":[],
			"group":"g", "visitor_id":"v", "message":"hi", "subject":"s" } `,
			createRequest{ID: "c1", Channel: "chat", Client: "web", PushEnabled: true, Priority: -3, Skills: []string{},
				Group: "g", VisitorID: "v", Message: &msg, Subject: "s"}},
		{`{"id":"a \"q\" \u00e9 \ud83d\ude00","message":null}`, createRequest{ID: `a "q" é 😀`}},
	} {
		var got createRequest
		if err := decodeBody(t, tc.body, &got); err != nil {
			t.Errorf("%q: %v", tc.body, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: decoded %+v, want %+v", tc.body, got, tc.want)
		}
	}

	for _, tc := range []struct {
		body   string
		status int
		code   string
		says   string
	}{
		{`{"id":`, 400, "malformed_json", ""},
		{`[1,2]`, 400, "malformed_json", "JSON object"},
		{`"c1"`, 400, "malformed_json", "JSON object"},
		{`{"id":"a"} {"id":"b"}`, 400, "malformed_json", "trailing data"},
		{`{"id":"a",}`, 400, "malformed_json", ""},
		{`{"priority":"high"}`, 422, "invalid_type", `"priority" must be a JSON int`},
		{`{"skills":["a",1]}`, 422, "invalid_type", `"skills`},
		{`{"push_enabled":"yes"}`, 422, "invalid_type", `"push_enabled" must be a JSON bool`},
		{`{"channel":"chat","colour":"blue"}`, 422, "unknown_field", `"colour"`},
		{`{"Channel":"chat"}`, 422, "unknown_field", `"Channel"`},
		{`{"channel":"chat","channel":"email"}`, 400, "malformed_json", "duplicate"},
		{"{\"id\":\"a\xffb\"}", 400, "malformed_json", "UTF-8"},
		{`{"id":"` + strings.Repeat("x", MaxBodyBytes) + `"}`, 413, "body_too_large", ""},
	} {
		var got createRequest
		err := decodeBody(t, tc.body, &got)
		var ae *apiError
		if !errors.As(err, &ae) || ae.Status != tc.status || ae.Code != tc.code || !strings.Contains(ae.Message, tc.says) {
			t.Errorf("%.40q: got %v, want %d %s saying %q", tc.body, err, tc.status, tc.code, tc.says)
		}
	}
}

// BenchmarkDecodeCreateBody: a create's body as decode reads it (json/v2,
// unknown names refused) against encoding/json's Decoder with
// DisallowUnknownFields, the choice of decode's comment.
func BenchmarkDecodeCreateBody(b *testing.B) {
	body := []byte(`{"id":"c000000012","channel":"chat","client":"web","skills":["b1234567"],"message":"Hello, I need help with my order"}`)
	b.Run("json-v2", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var req createRequest
			if err := jsonv2.Unmarshal(body, &req, jsonv2.RejectUnknownMembers(true)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var req createRequest
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&req); err != nil || dec.More() {
				b.Fatal(err)
			}
		}
	})
}
