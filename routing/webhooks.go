package routing

import (
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/google/btree"

	"github.com/omnirouter/omnirouter/internal/wire"
)

// Webhook subscriptions are replicated state: which URL hears which event
// types, with which secret, and how far delivery has got. The leader
// delivers (outside the state machine) and commits each subscription's
// cursor and delivery status back through CommitWebhooks, so a new leader
// resumes from the committed cursor: an event may be delivered twice,
// never skipped while it is retained.
//
// A cursor never points before the event log's oldest retained event
// minus one: when retention drops an event a subscription has not
// delivered, its cursor moves past it and, when the subscription wanted
// it, its Skipped count grows. A subscription therefore holds back no
// event beyond the event log's own bounds.

// Bounds of webhook subscriptions.
const (
	MaxWebhooks         = 100
	MaxWebhookURLLen    = 2048
	MaxWebhookSecretLen = 1024
	// MaxWebhookErrorLen bounds the last error kept per subscription.
	MaxWebhookErrorLen = 256
)

// WebhookAllEvents subscribes to every event type.
const WebhookAllEvents = "*"

// Webhook error codes.
const (
	CodeWebhookNotFound = "webhook_not_found"
	CodeWebhookExists   = "webhook_exists"
	CodeTooManyWebhooks = "too_many_webhooks"
	CodeInvalidURL      = "invalid_url"
	CodeInvalidEvents   = "invalid_events"
	CodeInvalidSecret   = "invalid_secret"
)

// WebhookState is what a subscription is doing.
type WebhookState uint8

const (
	WebhookActive  WebhookState = iota // delivered by the leader
	WebhookPaused                      // paused by an operator
	WebhookFailing                     // failed continuously for webhooks.disable_after: delivery stopped
)

var webhookStateNames = [...]string{"active", "paused", "failing"}

func (s WebhookState) String() string {
	if int(s) < len(webhookStateNames) {
		return webhookStateNames[s]
	}
	return "unknown"
}

// Webhook is one subscription. Values handed out by the Machine are
// copies; Events is shared and read-only.
type Webhook struct {
	ID     string
	URL    string
	Events []string // sorted, unique event types; or just WebhookAllEvents
	Secret string
	Paused bool
	// Failing: it failed continuously for webhooks.disable_after; only an
	// update that unpauses it (Paused false) resumes it.
	Failing bool
	// Seq identifies this subscription among all ever created (an id may
	// be used again after a delete); Version grows with every update.
	// Progress names both: a commit meant for a deleted subscription, or
	// status measured before an update, is not applied to what replaced
	// it.
	Seq       uint64
	Version   uint64
	CreatedAt int64
	// Cursor is the last event id delivered (or not wanted): delivery
	// resumes after it.
	Cursor uint64
	// Skipped counts the wanted events retention dropped before they were
	// delivered.
	Skipped uint64
	// FailingSince is when the current run of failed deliveries began (0:
	// the last attempt succeeded), in the leader's time.
	FailingSince  int64
	LastSuccessAt int64
	LastError     string
	LastErrorAt   int64
}

// State is the subscription's state.
func (w Webhook) State() WebhookState {
	switch {
	case w.Paused:
		return WebhookPaused
	case w.Failing:
		return WebhookFailing
	}
	return WebhookActive
}

// Wants reports whether the subscription receives events of type typ.
func (w Webhook) Wants(typ string) bool {
	if len(w.Events) == 1 && w.Events[0] == WebhookAllEvents {
		return true
	}
	_, ok := slices.BinarySearch(w.Events, typ)
	return ok
}

// webhookLess orders subscriptions by id.
func webhookLess(a, b Webhook) bool { return a.ID < b.ID }

func newWebhookIndex() *btree.BTreeG[Webhook] { return btree.NewG(btreeDegree, webhookLess) }

// --- validation -----------------------------------------------------------

// ValidWebhookURL checks a subscription's URL: absolute http or https with
// a host, at most MaxWebhookURLLen bytes.
func ValidWebhookURL(u string) error {
	if err := validWebhookURL(u); err != nil {
		return err
	}
	return nil
}

func validWebhookURL(u string) *Error {
	if len(u) > MaxWebhookURLLen {
		return invalidf(CodeInvalidURL, "url is longer than %d bytes", MaxWebhookURLLen)
	}
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" || p.Hostname() == "" {
		return invalidf(CodeInvalidURL, "url must be an absolute http:// or https:// URL with a host, got %q", u)
	}
	return nil
}

// ValidWebhookEvents checks a subscription's event types: at least one,
// each a known type (EventTypes) or "*".
func ValidWebhookEvents(events []string) error {
	if err := validWebhookEvents(events); err != nil {
		return err
	}
	return nil
}

func validWebhookEvents(events []string) *Error {
	if len(events) == 0 {
		return invalidf(CodeInvalidEvents, "events must name at least one event type, or \"*\" for all")
	}
	if len(events) > 2*len(EventTypes()) {
		return invalidf(CodeInvalidEvents, "at most %d event types", len(EventTypes()))
	}
	known := EventTypes()
	for _, e := range events {
		if e != WebhookAllEvents && !slices.Contains(known, e) {
			return invalidf(CodeInvalidEvents, "unknown event type %q (one of %s, or \"*\")", e, strings.Join(known, ", "))
		}
	}
	return nil
}

// ValidWebhookSecret checks a subscription's signing secret: 1 to
// MaxWebhookSecretLen bytes.
func ValidWebhookSecret(s string) error {
	if err := validWebhookSecret(s); err != nil {
		return err
	}
	return nil
}

func validWebhookSecret(s string) *Error {
	if s == "" || len(s) > MaxWebhookSecretLen {
		return invalidf(CodeInvalidSecret, "secret must be 1..%d bytes", MaxWebhookSecretLen)
	}
	return nil
}

// normalizeEvents sorts and deduplicates a valid list; "*" anywhere means
// every type.
func normalizeEvents(events []string) []string {
	if slices.Contains(events, WebhookAllEvents) {
		return []string{WebhookAllEvents}
	}
	return sortedSet(events)
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// --- commands -------------------------------------------------------------

// CreateWebhook subscribes a URL to event types. ID is made by the caller
// before the command is proposed. The subscription starts with the first
// event after its creation.
type CreateWebhook struct {
	ID     string
	URL    string
	Events []string
	Secret string
}

// UpdateWebhook changes the fields Set names. Paused false also resumes a
// failing subscription, from its cursor.
type UpdateWebhook struct {
	ID     string
	Set    WebhookFields
	URL    string
	Events []string
	Secret string
	Paused bool
}

// WebhookFields says which fields an UpdateWebhook sets.
type WebhookFields uint8

const (
	WebhookSetURL WebhookFields = 1 << iota
	WebhookSetEvents
	WebhookSetSecret
	WebhookSetPaused
	webhookSetAll = WebhookSetPaused<<1 - 1
)

// DeleteWebhook removes a subscription.
type DeleteWebhook struct{ ID string }

// CommitWebhooks records how far the leader's delivery has got, for
// several subscriptions at once.
type CommitWebhooks struct{ Progress []WebhookProgress }

// WebhookProgress is one subscription's delivery progress. Times are the
// leader's. A cursor only moves forward; the status (last success, last
// error, failing since) is applied only to the Version it was measured
// on.
type WebhookProgress struct {
	ID            string
	Seq           uint64
	Version       uint64
	Cursor        uint64
	LastSuccessAt int64
	LastError     string
	LastErrorAt   int64
	FailingSince  int64 // 0: the last attempt succeeded
}

func (CreateWebhook) Kind() Kind  { return KindCreateWebhook }
func (UpdateWebhook) Kind() Kind  { return KindUpdateWebhook }
func (DeleteWebhook) Kind() Kind  { return KindDeleteWebhook }
func (CommitWebhooks) Kind() Kind { return KindCommitWebhooks }

// Webhook commands' targets are prefixed: a key reused across a
// conversation and a subscription of the same id is a reuse.
func (c CreateWebhook) target() string { return "webhook/" + c.ID }
func (c UpdateWebhook) target() string { return "webhook/" + c.ID }
func (c DeleteWebhook) target() string { return "webhook/" + c.ID }
func (CommitWebhooks) target() string  { return "" }

func (c CreateWebhook) encode(e *wire.Encoder) {
	e.String(c.ID)
	e.String(c.URL)
	e.Strings(c.Events)
	e.String(c.Secret)
}

func decodeCreateWebhook(d *wire.Decoder) CreateWebhook {
	return CreateWebhook{ID: d.String(), URL: d.String(), Events: d.Strings(), Secret: d.String()}
}

// An update writes its mask, then only the fields the mask sets.
func (c UpdateWebhook) encode(e *wire.Encoder) {
	e.String(c.ID)
	e.Byte(byte(c.Set))
	if c.Set&WebhookSetURL != 0 {
		e.String(c.URL)
	}
	if c.Set&WebhookSetEvents != 0 {
		e.Strings(c.Events)
	}
	if c.Set&WebhookSetSecret != 0 {
		e.String(c.Secret)
	}
	if c.Set&WebhookSetPaused != 0 {
		e.Bool(c.Paused)
	}
}

func decodeUpdateWebhook(d *wire.Decoder) UpdateWebhook {
	c := UpdateWebhook{ID: d.String(), Set: WebhookFields(d.Byte())}
	if d.Err() == nil && c.Set&^webhookSetAll != 0 {
		d.Fail("unknown webhook fields %#x", byte(c.Set))
		return c
	}
	if c.Set&WebhookSetURL != 0 {
		c.URL = d.String()
	}
	if c.Set&WebhookSetEvents != 0 {
		c.Events = d.Strings()
	}
	if c.Set&WebhookSetSecret != 0 {
		c.Secret = d.String()
	}
	if c.Set&WebhookSetPaused != 0 {
		c.Paused = d.Bool()
	}
	return c
}

func (c DeleteWebhook) encode(e *wire.Encoder) { e.String(c.ID) }

func decodeDeleteWebhook(d *wire.Decoder) DeleteWebhook { return DeleteWebhook{ID: d.String()} }

func (c CommitWebhooks) encode(e *wire.Encoder) {
	e.Uvarint(uint64(len(c.Progress)))
	for i := range c.Progress {
		p := &c.Progress[i]
		e.String(p.ID)
		e.Uvarint(p.Seq)
		e.Uvarint(p.Version)
		e.Uvarint(p.Cursor)
		e.Varint(p.LastSuccessAt)
		e.String(p.LastError)
		e.Varint(p.LastErrorAt)
		e.Varint(p.FailingSince)
	}
}

func decodeCommitWebhooks(d *wire.Decoder) CommitWebhooks {
	n := d.Len(d.Remaining() / 8) // an entry takes at least eight bytes
	c := CommitWebhooks{Progress: make([]WebhookProgress, 0, n)}
	for i := 0; i < n && d.Err() == nil; i++ {
		c.Progress = append(c.Progress, WebhookProgress{ID: d.String(), Seq: d.Uvarint(), Version: d.Uvarint(),
			Cursor: d.Uvarint(), LastSuccessAt: d.Varint(), LastError: d.String(), LastErrorAt: d.Varint(), FailingSince: d.Varint()})
	}
	return c
}

// --- apply ----------------------------------------------------------------

func (m *Machine) createWebhook(c CreateWebhook) Outcome {
	if err := validID("webhook id", c.ID); err != nil {
		return Outcome{Err: err}
	}
	if err := validWebhookURL(c.URL); err != nil {
		return Outcome{Err: err}
	}
	if err := validWebhookEvents(c.Events); err != nil {
		return Outcome{Err: err}
	}
	if err := validWebhookSecret(c.Secret); err != nil {
		return Outcome{Err: err}
	}
	if _, ok := m.webhooks.Get(Webhook{ID: c.ID}); ok {
		return Outcome{Err: conflictf(CodeWebhookExists, "webhook %q already exists", c.ID)}
	}
	if m.webhooks.Len() >= MaxWebhooks {
		return Outcome{Err: conflictf(CodeTooManyWebhooks, "at most %d webhooks; delete one first", MaxWebhooks)}
	}
	m.webhooks.ReplaceOrInsert(Webhook{ID: c.ID, URL: c.URL, Events: normalizeEvents(c.Events), Secret: c.Secret,
		Seq: m.nextWebhookSeq, Version: 1, CreatedAt: m.now, Cursor: m.LastEventID()})
	m.nextWebhookSeq++
	m.refreshWebhookFloor()
	return Outcome{}
}

func (m *Machine) updateWebhook(c UpdateWebhook) Outcome {
	if c.Set&^webhookSetAll != 0 {
		return Outcome{Err: invalidf(CodeInvalidCommand, "unknown webhook fields %#x", byte(c.Set))}
	}
	w, ok := m.webhooks.Get(Webhook{ID: c.ID})
	if !ok {
		return Outcome{Err: notFoundf(CodeWebhookNotFound, "webhook %q not found", c.ID)}
	}
	if c.Set&WebhookSetURL != 0 {
		if err := validWebhookURL(c.URL); err != nil {
			return Outcome{Err: err}
		}
		w.URL = c.URL
	}
	if c.Set&WebhookSetEvents != 0 {
		if err := validWebhookEvents(c.Events); err != nil {
			return Outcome{Err: err}
		}
		w.Events = normalizeEvents(c.Events)
	}
	if c.Set&WebhookSetSecret != 0 {
		if err := validWebhookSecret(c.Secret); err != nil {
			return Outcome{Err: err}
		}
		w.Secret = c.Secret
	}
	if c.Set&WebhookSetPaused != 0 {
		w.Paused = c.Paused
		if !c.Paused {
			w.Failing, w.FailingSince = false, 0
		}
	}
	w.Version++
	m.webhooks.ReplaceOrInsert(w)
	return Outcome{}
}

func (m *Machine) deleteWebhook(c DeleteWebhook) Outcome {
	if _, ok := m.webhooks.Delete(Webhook{ID: c.ID}); !ok {
		return Outcome{Err: notFoundf(CodeWebhookNotFound, "webhook %q not found", c.ID)}
	}
	m.refreshWebhookFloor()
	return Outcome{}
}

// commitWebhooks applies delivery progress. Entries for subscriptions that
// no longer exist (or were deleted and created again) are ignored; a
// subscription that has been failing for webhooks.disable_after by the
// state machine's clock becomes failing.
func (m *Machine) commitWebhooks(c CommitWebhooks) Outcome {
	disableAfter := m.policy.Webhooks.DisableAfter.Milliseconds()
	for i := range c.Progress {
		p := &c.Progress[i]
		w, ok := m.webhooks.Get(Webhook{ID: p.ID})
		if !ok || w.Seq != p.Seq {
			continue
		}
		if cur := min(p.Cursor, m.LastEventID()); cur > w.Cursor {
			w.Cursor = cur
		}
		if p.Version == w.Version {
			w.LastSuccessAt = max(w.LastSuccessAt, p.LastSuccessAt)
			if p.LastErrorAt > w.LastErrorAt {
				w.LastError, w.LastErrorAt = truncateUTF8(p.LastError, MaxWebhookErrorLen), p.LastErrorAt
			}
			w.FailingSince = max(p.FailingSince, 0)
			if !w.Paused && !w.Failing && w.FailingSince != 0 && m.now-w.FailingSince >= disableAfter {
				w.Failing = true
			}
		}
		m.webhooks.ReplaceOrInsert(w)
	}
	m.refreshWebhookFloor()
	return Outcome{}
}

// refreshWebhookFloor recomputes the lowest cursor.
func (m *Machine) refreshWebhookFloor() { m.webhookFloor = m.lowestCursor() }

// lowestCursor is the lowest cursor of all subscriptions (0 without any).
func (m *Machine) lowestCursor() uint64 {
	floor, first := uint64(0), true
	m.webhooks.Ascend(func(w Webhook) bool {
		if first || w.Cursor < floor {
			floor, first = w.Cursor, false
		}
		return true
	})
	return floor
}

// webhookDrop is called for each event retention drops, oldest first:
// every subscription that has not got past it moves past it, and counts it
// as skipped if it wanted it.
func (m *Machine) webhookDrop(e *Event) {
	if e.ID <= m.webhookFloor {
		return
	}
	var moved []Webhook
	m.webhooks.Ascend(func(w Webhook) bool {
		if w.Cursor < e.ID {
			w.Cursor = e.ID
			if w.Wants(e.Type) {
				w.Skipped++
			}
			moved = append(moved, w)
		}
		return true
	})
	for _, w := range moved {
		m.webhooks.ReplaceOrInsert(w)
	}
	m.refreshWebhookFloor()
}

// dropEvents returns the function that retention calls for each event it
// drops (nil without subscriptions: nothing to do).
func (m *Machine) dropEvents() func(*Event) {
	if m.webhooks.Len() == 0 {
		return nil
	}
	return m.webhookDrop
}

// webhooksAfterRestore: a restored backup's retained events are dropped
// (counted as skipped where undelivered) and its subscriptions continue
// from the first event after the restore.
func (m *Machine) webhooksAfterRestore() {
	if m.webhooks.Len() == 0 {
		return
	}
	last := m.LastEventID()
	var moved []Webhook
	m.webhooks.Ascend(func(w Webhook) bool {
		if w.Cursor < last {
			w.Cursor = last
			moved = append(moved, w)
		}
		return true
	})
	for _, w := range moved {
		m.webhooks.ReplaceOrInsert(w)
	}
	m.refreshWebhookFloor()
}

// --- reads ----------------------------------------------------------------

// Webhooks returns every subscription, ordered by id.
func (m *Machine) Webhooks() []Webhook {
	out := make([]Webhook, 0, m.webhooks.Len())
	m.webhooks.Ascend(func(w Webhook) bool {
		out = append(out, w)
		return true
	})
	return out
}

// Webhook returns one subscription.
func (m *Machine) Webhook(id string) (Webhook, bool) {
	return m.webhooks.Get(Webhook{ID: id})
}

// --- snapshots ------------------------------------------------------------

func encodeWebhooks(e *wire.Encoder, m *Machine) {
	e.Uvarint(m.nextWebhookSeq)
	e.Uvarint(uint64(m.webhooks.Len()))
	m.webhooks.Ascend(func(w Webhook) bool {
		e.String(w.ID)
		e.String(w.URL)
		e.Strings(w.Events)
		e.String(w.Secret)
		e.Bool(w.Paused)
		e.Bool(w.Failing)
		e.Uvarint(w.Seq)
		e.Uvarint(w.Version)
		e.Varint(w.CreatedAt)
		e.Uvarint(w.Cursor)
		e.Uvarint(w.Skipped)
		e.Varint(w.FailingSince)
		e.Varint(w.LastSuccessAt)
		e.String(w.LastError)
		e.Varint(w.LastErrorAt)
		return true
	})
}

func decodeWebhooks(d *wire.Decoder, m *Machine) {
	m.nextWebhookSeq = d.Uvarint()
	n := d.Len(min(d.Remaining(), MaxWebhooks))
	var prev string
	for i := 0; i < n && d.Err() == nil; i++ {
		w := Webhook{ID: d.String(), URL: d.String(), Events: d.Strings(), Secret: d.String(), Paused: d.Bool(),
			Failing: d.Bool(), Seq: d.Uvarint(), Version: d.Uvarint(), CreatedAt: d.Varint(), Cursor: d.Uvarint(),
			Skipped: d.Uvarint(), FailingSince: d.Varint(), LastSuccessAt: d.Varint(), LastError: d.String(), LastErrorAt: d.Varint()}
		if d.Err() != nil {
			return
		}
		if i > 0 && w.ID <= prev {
			d.Fail("webhooks out of order")
			return
		}
		prev = w.ID
		if w.Seq >= m.nextWebhookSeq {
			d.Fail("webhook %q has sequence %d, next is %d", w.ID, w.Seq, m.nextWebhookSeq)
			return
		}
		m.webhooks.ReplaceOrInsert(w)
	}
	m.refreshWebhookFloor()
}

// checkWebhooks: each subscription is valid, its cursor between the oldest
// retained event minus one and the newest, and the floor is the lowest
// cursor.
func (m *Machine) checkWebhooks(bad func(string, ...any)) {
	if m.webhooks.Len() > MaxWebhooks {
		bad("%d webhooks, more than %d", m.webhooks.Len(), MaxWebhooks)
	}
	first, last := m.FirstRetainedEventID(), m.LastEventID()
	seqs := map[uint64]bool{}
	m.webhooks.Ascend(func(w Webhook) bool {
		if validID("webhook id", w.ID) != nil || validWebhookURL(w.URL) != nil || validWebhookEvents(w.Events) != nil ||
			validWebhookSecret(w.Secret) != nil || !slices.Equal(w.Events, normalizeEvents(w.Events)) {
			bad("webhook %s: invalid fields", w.ID)
		}
		if w.Cursor+1 < first || w.Cursor > last {
			bad("webhook %s: cursor %d outside %d..%d", w.ID, w.Cursor, first-1, last)
		}
		if w.Seq == 0 || w.Seq >= m.nextWebhookSeq || seqs[w.Seq] {
			bad("webhook %s: sequence %d (next %d) not unique", w.ID, w.Seq, m.nextWebhookSeq)
		}
		seqs[w.Seq] = true
		if len(w.LastError) > MaxWebhookErrorLen {
			bad("webhook %s: last error of %d bytes", w.ID, len(w.LastError))
		}
		return true
	})
	if low := m.lowestCursor(); low != m.webhookFloor {
		bad("webhook floor %d, lowest cursor %d", m.webhookFloor, low)
	}
}
