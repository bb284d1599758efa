package jsonstr

import (
	"encoding/json"
	"testing"
)

func check(t *testing.T, s string) {
	t.Helper()
	want, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if got := Append([]byte("x"), s); string(got) != "x"+string(want) {
		t.Errorf("Append(%q) = %s, want x%s", s, got, want)
	}
}

// TestAppendMatchesMarshal: every escape encoding/json makes by default.
func TestAppendMatchesMarshal(t *testing.T) {
	for _, s := range []string{"", "plain", `quote " and \ backslash`, "\b\f\n\r\t", "\x00\x01\x1f\x7f",
		"<html> & co", "ünïcödé ✓ 😀", "bad \xff utf-8 \xc3", "line\u2028para\u2029"} {
		check(t, s)
	}
	for c := range 256 {
		check(t, string([]byte{byte(c)}))
	}
}

func FuzzAppend(f *testing.F) {
	f.Add("a<b>\"c\\\u2028\xff")
	f.Fuzz(check)
}
