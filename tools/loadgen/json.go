package loadgen

import (
	"bytes"
	"encoding/json"
	"errors"
	"unicode/utf8"

	"github.com/omnirouter/omnirouter/internal/jsonstr"
)

// The tool shares the machine with the cluster it measures, so the bodies
// it sends every few microseconds and the three fields it reads back are
// handled here rather than through encoding/json's reflection (which cost
// an eighth of the tool's CPU in the lifecycle workload).

// rawJSON is a request body already encoded.
type rawJSON []byte

// object encodes a JSON object of string members, given as alternating
// names and values.
func object(kv ...string) rawJSON {
	b := make([]byte, 0, 64)
	b = append(b, '{')
	for i := 0; i+1 < len(kv); i += 2 {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsonstr.Append(b, kv[i])
		b = append(b, ':')
		b = jsonstr.Append(b, kv[i+1])
	}
	return append(b, '}')
}

// errSyntax is a malformed JSON answer.
var errSyntax = errors.New("malformed JSON")

// topLevelStrings calls fn with each string member of the JSON object in
// data, skipping members of other types and everything nested.
func topLevelStrings(data []byte, fn func(name, value string)) error {
	s := scanner{data: data}
	s.space()
	if !s.eat('{') {
		return errSyntax
	}
	s.space()
	if s.eat('}') {
		return s.end()
	}
	for {
		s.space()
		name, ok := s.str()
		if !ok {
			return errSyntax
		}
		s.space()
		if !s.eat(':') {
			return errSyntax
		}
		s.space()
		if s.peek() == '"' {
			v, ok := s.str()
			if !ok {
				return errSyntax
			}
			fn(name, v)
		} else if !s.skipValue(0) {
			return errSyntax
		}
		s.space()
		if s.eat('}') {
			return s.end()
		}
		if !s.eat(',') {
			return errSyntax
		}
	}
}

type scanner struct {
	data []byte
	i    int
}

func (s *scanner) peek() byte {
	if s.i < len(s.data) {
		return s.data[s.i]
	}
	return 0
}

func (s *scanner) eat(c byte) bool {
	if s.peek() == c {
		s.i++
		return true
	}
	return false
}

func (s *scanner) space() {
	for s.i < len(s.data) {
		switch s.data[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) end() error {
	s.space()
	if s.i != len(s.data) {
		return errSyntax
	}
	return nil
}

// str reads a string; one without escapes is returned without unquoting.
func (s *scanner) str() (string, bool) {
	start := s.i
	if !s.skipString() {
		return "", false
	}
	raw := s.data[start:s.i]
	if bytes.IndexByte(raw, '\\') < 0 && utf8.Valid(raw) {
		return string(raw[1 : len(raw)-1]), true
	}
	var v string
	err := json.Unmarshal(raw, &v)
	return v, err == nil
}

// skipValue skips a number, literal, array or object (strings inside are
// scanned so that brackets in them do not count).
func (s *scanner) skipValue(depth int) bool {
	if depth > 64 {
		return false
	}
	switch c := s.peek(); {
	case c == '"':
		return s.skipString()
	case c == '{' || c == '[':
		closing := byte('}')
		if c == '[' {
			closing = ']'
		}
		s.i++
		s.space()
		if s.eat(closing) {
			return true
		}
		for {
			s.space()
			if c == '{' {
				if !s.skipString() {
					return false
				}
				s.space()
				if !s.eat(':') {
					return false
				}
				s.space()
			}
			if !s.skipValue(depth + 1) {
				return false
			}
			s.space()
			if s.eat(closing) {
				return true
			}
			if !s.eat(',') {
				return false
			}
		}
	default:
		start := s.i
		for s.i < len(s.data) {
			switch s.data[s.i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return s.literal(start)
			}
			s.i++
		}
		return s.literal(start)
	}
}

// literal checks that data[start:s.i] is a number, true, false or null.
func (s *scanner) literal(start int) bool {
	switch lit := string(s.data[start:s.i]); lit {
	case "true", "false", "null":
		return true
	case "":
		return false
	default:
		return isNumber(lit)
	}
}

// isNumber reports whether lit is a JSON number:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func isNumber(lit string) bool {
	i := 0
	digits := func() bool {
		start := i
		for i < len(lit) && lit[i] >= '0' && lit[i] <= '9' {
			i++
		}
		return i > start
	}
	if i < len(lit) && lit[i] == '-' {
		i++
	}
	switch {
	case i < len(lit) && lit[i] == '0':
		i++
	case !digits():
		return false
	}
	if i < len(lit) && lit[i] == '.' {
		i++
		if !digits() {
			return false
		}
	}
	if i < len(lit) && (lit[i] == 'e' || lit[i] == 'E') {
		i++
		if i < len(lit) && (lit[i] == '+' || lit[i] == '-') {
			i++
		}
		if !digits() {
			return false
		}
	}
	return i == len(lit)
}

// skipString passes over a string, checking its escapes only as far as
// finding its end needs.
func (s *scanner) skipString() bool {
	if !s.eat('"') {
		return false
	}
	for s.i < len(s.data) {
		switch c := s.data[s.i]; {
		case c == '"':
			s.i++
			return true
		case c == '\\':
			s.i += 2
		case c < 0x20:
			return false
		default:
			s.i++
		}
	}
	return false
}

// answerDecoder is an answer type that reads its JSON itself.
type answerDecoder interface {
	decodeAnswer(data []byte) error
}

// decodeAnswer reads the conversation's id, state and agent_id.
func (c *conversation) decodeAnswer(data []byte) error {
	*c = conversation{}
	return topLevelStrings(data, func(name, value string) {
		switch name {
		case "id":
			c.ID = value
		case "state":
			c.State = value
		case "agent_id":
			c.AgentID = value
		}
	})
}
