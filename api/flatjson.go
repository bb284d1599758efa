package api

import "unicode/utf8"

// A fast path for the request bodies on the hot path (create, message,
// accept, leave, end, release): flat JSON objects of plain strings, booleans,
// integers and string lists. encoding/json's Decoder spent ~5% of each
// node's CPU on them under load (reflection, its own copy of the body, a
// scanner state machine per byte). decodeFlat handles only what it can
// decode exactly as encoding/json would, and gives up on everything else —
// escapes, null, nested values, numbers with a fraction or exponent, keys
// that are not a field's exact name, a repeated key, anything malformed —
// leaving the body to encoding/json, which then produces the same value or
// the same error it always did. FuzzFlatDecode checks the "same value".

// flatKind is the JSON type of a scanned member.
type flatKind uint8

const (
	flatString flatKind = iota + 1
	flatBool
	flatInt
	flatStrings // an array of strings
)

// flatValue is one member's value.
type flatValue struct {
	kind flatKind
	str  string
	b    bool
	n    int
	strs []string
}

// flatTarget is a request body decodeFlat can fill. setFlat stores one
// member and reports whether key is exactly one of the body's field names
// and v of the type that field takes; false sends the body to
// encoding/json.
type flatTarget interface {
	setFlat(key string, v flatValue) bool // by value: a pointer would move the scan's members to the heap
}

// maxFlatMembers bounds the members of a body decodeFlat takes: request
// bodies have a handful of fields; a longer object goes to encoding/json.
const maxFlatMembers = 16

// decodeFlat decodes body into dst and reports whether it could. It only
// calls setFlat once the whole body has scanned cleanly, so a body it gives
// up on at scanning leaves dst untouched; one it gives up on in setFlat (an
// unknown key, a value of another type) has set only members that
// encoding/json sets to the same values.
func decodeFlat(body []byte, dst flatTarget) bool {
	s := string(body) // one copy; the members' strings are slices of it
	var keys [maxFlatMembers]string
	var vals [maxFlatMembers]flatValue
	n := 0
	i := skipSpace(s, 0)
	if i == len(s) || s[i] != '{' {
		return false
	}
	i = skipSpace(s, i+1)
	if i < len(s) && s[i] == '}' {
		i++
	} else {
		for {
			if n == maxFlatMembers {
				return false
			}
			key, j, ok := scanString(s, i)
			if !ok {
				return false
			}
			for _, k := range keys[:n] {
				if k == key {
					return false // encoding/json keeps the last; leave it to it
				}
			}
			j = skipSpace(s, j)
			if j == len(s) || s[j] != ':' {
				return false
			}
			if j, ok = scanValue(s, skipSpace(s, j+1), &vals[n]); !ok {
				return false
			}
			keys[n] = key
			n++
			j = skipSpace(s, j)
			if j == len(s) {
				return false
			}
			if s[j] == '}' {
				i = j + 1
				break
			}
			if s[j] != ',' {
				return false
			}
			i = skipSpace(s, j+1)
		}
	}
	if skipSpace(s, i) != len(s) {
		return false // trailing data
	}
	for k := range n {
		if !dst.setFlat(keys[k], vals[k]) {
			return false
		}
	}
	return true
}

func skipSpace(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
		i++
	}
	return i
}

// scanString scans a string starting at s[i] (its opening quote) and
// returns its contents and the index after its closing quote. It gives up
// on escapes, control characters and invalid UTF-8 (which encoding/json
// would replace with U+FFFD).
func scanString(s string, i int) (string, int, bool) {
	if i == len(s) || s[i] != '"' {
		return "", i, false
	}
	start := i + 1
	ascii := true
	for j := start; j < len(s); j++ {
		switch c := s[j]; {
		case c == '"':
			str := s[start:j]
			if !ascii && !utf8.ValidString(str) {
				return "", j, false
			}
			return str, j + 1, true
		case c == '\\' || c < 0x20:
			return "", j, false
		case c >= 0x80:
			ascii = false
		}
	}
	return "", len(s), false
}

// scanValue scans the value starting at s[i] into v.
func scanValue(s string, i int, v *flatValue) (int, bool) {
	if i == len(s) {
		return i, false
	}
	switch c := s[i]; {
	case c == '"':
		str, j, ok := scanString(s, i)
		*v = flatValue{kind: flatString, str: str}
		return j, ok
	case c == 't' && len(s)-i >= 4 && s[i:i+4] == "true":
		*v = flatValue{kind: flatBool, b: true}
		return i + 4, true
	case c == 'f' && len(s)-i >= 5 && s[i:i+5] == "false":
		*v = flatValue{kind: flatBool}
		return i + 5, true
	case c == '-' || c >= '0' && c <= '9':
		return scanInt(s, i, v)
	case c == '[':
		return scanStrings(s, i, v)
	}
	return i, false
}

// scanInt scans an integer: an optional minus, then 0 or a digit string not
// starting with 0, at most 18 digits (no overflow of an int64), not followed
// by a fraction or an exponent.
func scanInt(s string, i int, v *flatValue) (int, bool) {
	neg := s[i] == '-'
	if neg {
		i++
	}
	start := i
	n := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		n = n*10 + int(s[i]-'0')
		i++
	}
	digits := i - start
	if digits == 0 || digits > 18 || digits > 1 && s[start] == '0' {
		return i, false
	}
	if i < len(s) && (s[i] == '.' || s[i] == 'e' || s[i] == 'E') {
		return i, false
	}
	if neg {
		n = -n
	}
	*v = flatValue{kind: flatInt, n: n}
	return i, true
}

// scanStrings scans an array of strings; [] is an empty, non-nil list, as
// encoding/json makes it.
func scanStrings(s string, i int, v *flatValue) (int, bool) {
	strs := []string{}
	i = skipSpace(s, i+1)
	if i < len(s) && s[i] == ']' {
		*v = flatValue{kind: flatStrings, strs: strs}
		return i + 1, true
	}
	for {
		str, j, ok := scanString(s, i)
		if !ok {
			return j, false
		}
		strs = append(strs, str)
		j = skipSpace(s, j)
		if j == len(s) {
			return j, false
		}
		if s[j] == ']' {
			*v = flatValue{kind: flatStrings, strs: strs}
			return j + 1, true
		}
		if s[j] != ',' {
			return j, false
		}
		i = skipSpace(s, j+1)
	}
}

// Small setters for the fields of the hot request bodies.

func setFlatString(dst *string, v flatValue) bool {
	if v.kind != flatString {
		return false
	}
	*dst = v.str
	return true
}

func setFlatStringPtr(dst **string, v flatValue) bool {
	if v.kind != flatString {
		return false
	}
	str := v.str
	*dst = &str
	return true
}

func setFlatBool(dst *bool, v flatValue) bool {
	if v.kind != flatBool {
		return false
	}
	*dst = v.b
	return true
}

func setFlatInt(dst *int, v flatValue) bool {
	if v.kind != flatInt {
		return false
	}
	*dst = v.n
	return true
}

func setFlatStrings(dst *[]string, v flatValue) bool {
	if v.kind != flatStrings {
		return false
	}
	*dst = v.strs
	return true
}

func (r *createRequest) setFlat(key string, v flatValue) bool {
	switch key {
	case "id":
		return setFlatString(&r.ID, v)
	case "channel":
		return setFlatString(&r.Channel, v)
	case "client":
		return setFlatString(&r.Client, v)
	case "push_enabled":
		return setFlatBool(&r.PushEnabled, v)
	case "priority":
		return setFlatInt(&r.Priority, v)
	case "skills":
		return setFlatStrings(&r.Skills, v)
	case "group":
		return setFlatString(&r.Group, v)
	case "visitor_id":
		return setFlatString(&r.VisitorID, v)
	case "message":
		return setFlatStringPtr(&r.Message, v)
	case "subject":
		return setFlatString(&r.Subject, v)
	}
	return false
}

func (r *messageRequest) setFlat(key string, v flatValue) bool {
	switch key {
	case "author":
		return setFlatString(&r.Author, v)
	case "agent_id":
		return setFlatString(&r.AgentID, v)
	case "text":
		return setFlatString(&r.Text, v)
	}
	return false
}

func (r *agentIDRequest) setFlat(key string, v flatValue) bool {
	if key == "agent_id" {
		return setFlatString(&r.AgentID, v)
	}
	return false
}

func (r *endRequest) setFlat(key string, v flatValue) bool {
	switch key {
	case "by":
		return setFlatString(&r.By, v)
	case "agent_id":
		return setFlatString(&r.AgentID, v)
	case "voicemail":
		return setFlatBool(&r.Voicemail, v)
	}
	return false
}

func (r *releaseRequest) setFlat(key string, v flatValue) bool {
	switch key {
	case "conversation_id":
		return setFlatString(&r.ConversationID, v)
	case "ticket_status":
		return setFlatStringPtr(&r.TicketStatus, v)
	}
	return false
}
