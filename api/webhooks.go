package api

import (
	"encoding/json"
	"net/http"
	"net/url"

	"github.com/gin-gonic/gin"

	"github.com/omnirouter/omnirouter/routing"
)

// Webhook subscriptions (operators only): the leader POSTs each event a
// subscription wants to its URL (package cluster/webhook); these handlers
// manage the subscriptions and show how far delivery has got. The secret
// is written, never read back.

// WebhookView is a subscription as the API returns it.
type WebhookView struct {
	ID     string   `json:"id"`
	URL    string   `json:"url"`
	Events []string `json:"events"`
	// State is active, paused or failing.
	State string `json:"state"`
	// Cursor is the last event id delivered (or not wanted); Lag the
	// events after it (the newest event id minus the cursor).
	Cursor        uint64  `json:"cursor"`
	Lag           uint64  `json:"lag"`
	Skipped       uint64  `json:"skipped"`
	LastSuccessAt *string `json:"last_success_at"`
	LastError     *string `json:"last_error"`
	LastErrorAt   *string `json:"last_error_at"`
	FailingSince  *string `json:"failing_since"`
	CreatedAt     *string `json:"created_at"`
}

func webhookView(w *routing.Webhook, newest uint64) WebhookView {
	v := WebhookView{ID: w.ID, URL: redactedURL(w.URL), Events: nonNil(w.Events), State: w.State().String(),
		Cursor: w.Cursor, Lag: newest - min(newest, w.Cursor), Skipped: w.Skipped,
		LastSuccessAt: formatTime(w.LastSuccessAt), LastErrorAt: formatTime(w.LastErrorAt),
		FailingSince: formatTime(w.FailingSince), CreatedAt: formatTime(w.CreatedAt)}
	if w.LastError != "" {
		v.LastError = &w.LastError
	}
	return v
}

// redactedURL hides a password the URL carries (user:password@host), as
// the secret is hidden.
func redactedURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	return u.Redacted()
}

// EventJSON is an event as GET /v1/events gives it: the body of its
// webhook deliveries.
func EventJSON(e *routing.Event) ([]byte, error) { return json.Marshal(eventView(e)) }

type webhookRequest struct {
	ID     *string   `json:"id"`
	URL    *string   `json:"url"`
	Events *[]string `json:"events"`
	Secret *string   `json:"secret"`
	Paused *bool     `json:"paused"`
}

// check validates the fields the request holds.
func (r *webhookRequest) check() error {
	if r.URL != nil {
		if err := routing.ValidWebhookURL(*r.URL); err != nil {
			return err
		}
	}
	if r.Events != nil {
		if err := routing.ValidWebhookEvents(*r.Events); err != nil {
			return err
		}
	}
	if r.Secret != nil {
		if err := routing.ValidWebhookSecret(*r.Secret); err != nil {
			return err
		}
	}
	return nil
}

// POST /v1/webhooks {id?, url, events, secret} → 201 with the subscription.
// It starts with the first event after its creation.
func (s *Server) createWebhook(c *gin.Context) {
	var req webhookRequest
	if err := decode(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	switch {
	case req.Paused != nil:
		s.fail(c, invalid("unknown_field", "paused is set with PUT /v1/webhooks/{id}"))
		return
	case req.URL == nil:
		s.fail(c, invalid(routing.CodeInvalidURL, "url is required"))
		return
	case req.Events == nil:
		s.fail(c, invalid(routing.CodeInvalidEvents, "events is required: event types, or [\"*\"] for all"))
		return
	case req.Secret == nil:
		s.fail(c, invalid(routing.CodeInvalidSecret, "secret is required: it signs every delivery"))
		return
	}
	if err := req.check(); err != nil {
		s.fail(c, err)
		return
	}
	key, err := s.idempotencyKey(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	id := ""
	if req.ID != nil {
		id = *req.ID
		if err := routing.ValidID("webhook id", id); err != nil {
			s.fail(c, err)
			return
		}
	} else {
		id = newID("webhook", "wh_", 12, key)
	}
	if _, ok := s.proposeKey(c, key, routing.CreateWebhook{ID: id, URL: *req.URL, Events: *req.Events, Secret: *req.Secret}); ok {
		s.writeWebhook(c, http.StatusCreated, id, Linearizable)
	}
}

// PUT /v1/webhooks/{id} {url?, events?, secret?, paused?} → 200 with the
// subscription: sets the fields given. paused false resumes a paused or
// failing subscription from its cursor.
func (s *Server) putWebhook(c *gin.Context) {
	id := c.Param("id")
	var req webhookRequest
	if err := decode(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	if req.ID != nil && *req.ID != id {
		s.fail(c, invalid("invalid_id", "the id is the path's; it cannot be changed"))
		return
	}
	if err := req.check(); err != nil {
		s.fail(c, err)
		return
	}
	u := routing.UpdateWebhook{ID: id}
	if req.URL != nil {
		u.Set |= routing.WebhookSetURL
		u.URL = *req.URL
	}
	if req.Events != nil {
		u.Set |= routing.WebhookSetEvents
		u.Events = *req.Events
	}
	if req.Secret != nil {
		u.Set |= routing.WebhookSetSecret
		u.Secret = *req.Secret
	}
	if req.Paused != nil {
		u.Set |= routing.WebhookSetPaused
		u.Paused = *req.Paused
	}
	if u.Set == 0 {
		s.fail(c, invalid("invalid_update", "set at least one of url, events, secret, paused"))
		return
	}
	if _, ok := s.propose(c, u); ok {
		s.writeWebhook(c, http.StatusOK, id, Linearizable)
	}
}

// DELETE /v1/webhooks/{id} → 204.
func (s *Server) deleteWebhook(c *gin.Context) {
	if _, ok := s.propose(c, routing.DeleteWebhook{ID: c.Param("id")}); ok {
		c.Status(http.StatusNoContent)
	}
}

// GET /v1/webhooks/{id}.
func (s *Server) getWebhook(c *gin.Context) {
	level, err := readLevel(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.writeWebhook(c, http.StatusOK, c.Param("id"), level)
}

// GET /v1/webhooks → {"webhooks": [...]} by id.
func (s *Server) listWebhooks(c *gin.Context) {
	views := []WebhookView{}
	if !s.read(c, func(m *routing.Machine) {
		newest := m.LastEventID()
		for _, w := range m.Webhooks() {
			views = append(views, webhookView(&w, newest))
		}
	}) {
		return
	}
	c.JSON(http.StatusOK, gin.H{"webhooks": views})
}

func (s *Server) writeWebhook(c *gin.Context, status int, id string, level ReadLevel) {
	var v WebhookView
	var found bool
	if !s.readAt(c, level, func(m *routing.Machine) {
		var w routing.Webhook
		if w, found = m.Webhook(id); found {
			v = webhookView(&w, m.LastEventID())
		}
	}) {
		return
	}
	if !found {
		s.fail(c, errorf(http.StatusNotFound, routing.CodeWebhookNotFound, "webhook %q not found", id))
		return
	}
	c.JSON(status, v)
}
