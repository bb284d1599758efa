package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/omnirouter/omnirouter/cluster"
	"github.com/omnirouter/omnirouter/routing"
)

// apiError is an error with its HTTP status and stable code. Every error
// response is {"error": {"code", "message"}}, with more fields for some
// codes (cursor_ahead: newest_id; events_expired: oldest_id, newest_id).
type apiError struct {
	Status  int
	Code    string
	Message string
	// NewestID and OldestID are event ids that event-cursor errors carry.
	NewestID *uint64
	OldestID *uint64
	// NoRetry: a 503 that retrying on this node will not cure (no
	// Retry-After).
	NoRetry bool
}

func (e *apiError) Error() string { return e.Message }

func errorf(status int, code, format string, args ...any) *apiError {
	return &apiError{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// invalid is a 422 for a value the API refuses before proposing anything.
func invalid(code, format string, args ...any) *apiError {
	return errorf(http.StatusUnprocessableEntity, code, format, args...)
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code     string  `json:"code"`
	Message  string  `json:"message"`
	NewestID *uint64 `json:"newest_id,omitempty"`
	OldestID *uint64 `json:"oldest_id,omitempty"`
}

func (e *apiError) detail() errorDetail {
	return errorDetail{Code: e.Code, Message: e.Message, NewestID: e.NewestID, OldestID: e.OldestID}
}

// toAPIError maps any error a handler meets to a status and code: domain
// errors by class, the cluster's unavailability to 503 and anything else to
// 500.
func toAPIError(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	var re *routing.Error
	if errors.As(err, &re) {
		status := http.StatusUnprocessableEntity
		switch {
		case errors.Is(re.Class, routing.ErrNotFound):
			status = http.StatusNotFound
		case errors.Is(re.Class, routing.ErrConflict):
			status = http.StatusConflict
		case errors.Is(re.Class, routing.ErrTooLarge):
			status = http.StatusRequestEntityTooLarge
		}
		if re == routing.ErrEventsExpired || re.Code == routing.ErrEventsExpired.Code {
			status = http.StatusGone
		}
		return &apiError{Status: status, Code: re.Code, Message: re.Message}
	}
	switch {
	case errors.Is(err, ErrNoLeader):
		return errorf(http.StatusServiceUnavailable, "no_leader", "the cluster has no leader right now; retry shortly")
	case errors.Is(err, ErrAmbiguous):
		return errorf(http.StatusServiceUnavailable, "ambiguous",
			"the request may or may not have been applied; retry it with the same Idempotency-Key to get its result exactly once")
	case errors.Is(err, cluster.ErrShutdown):
		return errorf(http.StatusServiceUnavailable, "shutting_down", "this node is shutting down; use another node")
	case errors.Is(err, cluster.ErrRemoved):
		e := errorf(http.StatusServiceUnavailable, "node_removed",
			"this node was removed from the cluster: it accepts no writes and no linearizable reads (?consistency=stale reads its last state); use a member of the cluster, or add this node back with omnirouter cluster join")
		e.NoRetry = true
		return e
	case errors.Is(err, cluster.ErrRaftUnreachable):
		return invalid("raft_unreachable", "%s", strings.TrimPrefix(err.Error(), "cluster: "))
	case errors.Is(err, cluster.ErrInvalidJoin):
		return invalid("invalid_address", "%s", strings.TrimPrefix(err.Error(), "cluster: invalid join: "))
	case errors.Is(err, cluster.ErrUnknownNode):
		return errorf(http.StatusNotFound, "node_not_found", "%v", err)
	case errors.Is(err, cluster.ErrBadBackup):
		return invalid("invalid_backup", "%v", err)
	case errors.Is(err, context.DeadlineExceeded):
		return errorf(http.StatusGatewayTimeout, "timeout", "the cluster did not answer in time; retry with the same Idempotency-Key")
	case errors.Is(err, context.Canceled):
		return errorf(499, "canceled", "request canceled")
	}
	return errorf(http.StatusInternalServerError, "internal", "internal error")
}

// fail writes err as the response and aborts the request.
func (s *Server) fail(c *gin.Context, err error) {
	ae := toAPIError(err)
	if ae.Status == http.StatusServiceUnavailable && !ae.NoRetry {
		c.Header("Retry-After", "1")
	}
	if ae.Status >= 500 && !ae.NoRetry {
		s.log.Warn("request failed", "method", c.Request.Method, "path", c.Request.URL.Path, "status", ae.Status, "err", err)
	}
	c.AbortWithStatusJSON(ae.Status, errorBody{Error: ae.detail()})
}
