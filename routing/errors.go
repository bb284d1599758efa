package routing

import (
	"errors"
	"fmt"
)

// Sentinel error classes. Every domain error returned by the state machine is
// an *Error whose Unwrap returns one of these, so callers map them with
// errors.Is (404, 409, 422 at the HTTP boundary).
var (
	// ErrNotFound: the agent or conversation does not exist, or nothing could be
	// assigned.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the request is valid but the current state forbids it
	// (conversation ended, offer made to someone else, key reused).
	ErrConflict = errors.New("conflict")
	// ErrInvalid: a value is malformed or out of range.
	ErrInvalid = errors.New("invalid value")
	// ErrTooLarge: the request would make something grow beyond its limit
	// (a transcript beyond limits.transcript_messages or _bytes).
	ErrTooLarge = errors.New("too large")
)

// errorClasses gives each class a stable number for snapshots (only
// appended).
var errorClasses = [...]error{ErrNotFound, ErrConflict, ErrInvalid, ErrTooLarge}

// Error is a typed domain error: a class, a stable machine-readable code and
// a human message. It is a value that survives snapshots (idempotency keys
// replay it).
type Error struct {
	Class   error
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Message }

// Unwrap returns the class, so errors.Is(err, ErrNotFound) works.
func (e *Error) Unwrap() error { return e.Class }

func notFoundf(code, format string, args ...any) *Error {
	return &Error{Class: ErrNotFound, Code: code, Message: fmt.Sprintf(format, args...)}
}

func conflictf(code, format string, args ...any) *Error {
	return &Error{Class: ErrConflict, Code: code, Message: fmt.Sprintf(format, args...)}
}

func tooLargef(code, format string, args ...any) *Error {
	return &Error{Class: ErrTooLarge, Code: code, Message: fmt.Sprintf(format, args...)}
}

func invalidf(code, format string, args ...any) *Error {
	return &Error{Class: ErrInvalid, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Codes of errors a routing engine reacts to.
const (
	CodeAgentNotFound           = "agent_not_found"
	CodeConversationNotFound    = "conversation_not_found"
	CodeConversationExists      = "conversation_exists"
	CodeConversationEnded       = "conversation_ended"
	CodeNoEligibleAgent         = "no_eligible_agent"
	CodeNoEligibleConversation  = "no_eligible_conversation"
	CodeNotOffered              = "not_offered"
	CodeNotAssigned             = "not_assigned"
	CodeAgentNotEligible        = "agent_not_eligible"
	CodeNotQueued               = "not_queued"
	CodeAgentEndDisabled        = "agent_end_disabled"
	CodeIdempotencyKeyReused    = "idempotency_key_reused"
	CodeWrongChannel            = "wrong_channel"
	CodeInvalidID               = "invalid_id"
	CodeInvalidCapacity         = "invalid_capacity"
	CodeInvalidText             = "invalid_text"
	CodeInvalidPolicy           = "invalid_policy"
	CodeInvalidCommand          = "invalid_command"
	CodeInvalidPriority         = "invalid_priority"
	CodeConversationUnavailable = "conversation_unavailable"
	CodeTranscriptFull          = "transcript_full"
	CodeTicketClosed            = "ticket_closed"
	CodeInvalidTicketStatus     = "invalid_ticket_status"
	CodeAgentBusy               = "agent_busy"
	CodeTargetUnavailable       = "target_unavailable"
	CodeInvalidTransfer         = "invalid_transfer"
)
