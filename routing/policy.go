package routing

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/omnirouter/omnirouter/capacity"
	"github.com/omnirouter/omnirouter/internal/wire"
)

// Policy holds every tunable of the state machine. It is part of the
// replicated state: it changes only through a SetPolicy command, never from a
// node's local configuration.
type Policy struct {
	Web             WebPolicy
	Mobile          MobilePolicy
	AgentCanEndChat bool
	Messaging       MessagingPolicy
	Routing         RoutingPolicy
	// IdempotencyRetention is how long, in state-machine time, a client key
	// and its first result are kept.
	IdempotencyRetention time.Duration
	Retention            RetentionPolicy
	Ticket               TicketPolicy
	Limits               LimitsPolicy
	Email                EmailPolicy
	Voice                VoicePolicy
	Stats                StatsPolicy
	Webhooks             WebhooksPolicy
}

// WebhooksPolicy is how webhook delivery gives up.
type WebhooksPolicy struct {
	// DisableAfter of continuous delivery failure makes a subscription
	// failing: delivery stops until an operator resumes it.
	DisableAfter time.Duration
}

// StatsPolicy is how statistics judge the waits.
type StatsPolicy struct {
	// ServiceLevelTarget: a first assignment within this wait counts
	// toward the service level.
	ServiceLevelTarget time.Duration
}

// EmailPolicy is how email tickets are routed.
type EmailPolicy struct {
	// AutoAccept assigns an email without an offer.
	AutoAccept bool
	// RouteToAway lets away agents receive email.
	RouteToAway bool
}

// VoicePolicy is how calls ring, end and wait.
type VoicePolicy struct {
	RingTimeout  time.Duration // an unanswered call rings the next agent after this
	WrapUp       time.Duration // an agent stays held this long after a call (0: not at all)
	MaxQueueWait time.Duration // a call waiting (ringing included) this long ends, missed
}

// RetentionPolicy is how long finished work stays in the state.
type RetentionPolicy struct {
	// Ended is how long an ended conversation stays readable after it
	// ended; then it is pruned, and its id may be used again.
	Ended time.Duration
}

// TicketPolicy is the tickets' own lifecycle.
type TicketPolicy struct {
	// CloseSolvedAfter is how long a ticket stays solved before it is
	// closed (its session ends then, if it was still open).
	CloseSolvedAfter time.Duration
}

// LimitsPolicy bounds what one conversation may hold.
type LimitsPolicy struct {
	TranscriptMessages int // messages per transcript, the first one and system notices included
	TranscriptBytes    int // bytes of message text per transcript
}

// WebPolicy is the web widget's session lifecycle.
type WebPolicy struct {
	IdleAfter         time.Duration // no page activity → inactive
	IdleTimeout       time.Duration // inactive this long → ended
	DisconnectTimeout time.Duration // disconnected this long → ended
}

// MobilePolicy is the mobile SDK's session lifecycle.
type MobilePolicy struct {
	InactivityTimeout time.Duration
	DisconnectTimeout time.Duration
	AgentEndedTimeout time.Duration
	BackgroundTimeout time.Duration
}

// MessagingPolicy is messaging's activity rules.
type MessagingPolicy struct {
	InactivityTimeout      time.Duration
	CountInactiveMessaging bool
}

// RoutingPolicy is how conversations meet agents.
type RoutingPolicy struct {
	Mode          Mode
	Strategy      Strategy
	AutoAccept    bool
	OfferTimeout  time.Duration
	ReassignDelay time.Duration
	// FocusMode keeps an agent who holds or was offered real-time work
	// (chat, messaging, voice) from new work on another real-time channel.
	FocusMode bool
	// SkillsTimeout is, per channel, how long after its eligibility time a
	// conversation waits for an agent with its optional skills in its
	// primary group before they are relaxed.
	SkillsTimeout [capacity.NumChannels]time.Duration
}

// DefaultPolicy returns the defaults of the contract.
func DefaultPolicy() Policy {
	return Policy{
		Web: WebPolicy{
			IdleAfter:         10 * time.Minute,
			IdleTimeout:       20 * time.Minute,
			DisconnectTimeout: 2 * time.Minute,
		},
		Mobile: MobilePolicy{
			InactivityTimeout: time.Hour,
			DisconnectTimeout: time.Hour,
			AgentEndedTimeout: 5 * time.Minute,
			BackgroundTimeout: 30 * time.Minute,
		},
		AgentCanEndChat: true,
		Messaging:       MessagingPolicy{InactivityTimeout: 10 * time.Minute},
		Routing: RoutingPolicy{
			Mode:          ModeAuto,
			Strategy:      StrategySpareCapacity,
			OfferTimeout:  30 * time.Second,
			ReassignDelay: time.Minute,
			SkillsTimeout: [capacity.NumChannels]time.Duration{
				capacity.Chat: 30 * time.Second, capacity.Messaging: 30 * time.Second,
				capacity.Email: time.Hour, capacity.Voice: 30 * time.Second,
			},
		},
		IdempotencyRetention: time.Hour,
		Retention:            RetentionPolicy{Ended: 24 * time.Hour},
		Ticket:               TicketPolicy{CloseSolvedAfter: 96 * time.Hour},
		Limits:               LimitsPolicy{TranscriptMessages: 5000, TranscriptBytes: 1 << 20},
		Email:                EmailPolicy{AutoAccept: true},
		Voice:                VoicePolicy{RingTimeout: 30 * time.Second, MaxQueueWait: 10 * time.Minute},
		Stats:                StatsPolicy{ServiceLevelTarget: 30 * time.Second},
		Webhooks:             WebhooksPolicy{DisableAfter: 24 * time.Hour},
	}
}

// Bounds on a policy duration unless its field says otherwise.
const (
	MinPolicyDuration = time.Millisecond
	MaxPolicyDuration = 30 * 24 * time.Hour
)

// Bounds of the fields that have their own.
const (
	MaxCloseSolvedAfter   = 672 * time.Hour // Zendesk's limit: 28 days
	MaxTranscriptMessages = 100_000
	MinTranscriptBytes    = 1 << 10
	MaxTranscriptBytes    = 64 << 20
	MaxWrapUp             = 15 * time.Minute
)

// PolicyKind is the type of a policy field's value.
type PolicyKind uint8

const (
	PolicyDuration PolicyKind = iota // a time.Duration, written "10m" in the API
	PolicyBool
	PolicyInt
	PolicyEnum // one of the field's Values, by name
)

// policyField is one tunable: its API name (a dotted path into the policy
// JSON), its type and bounds, and where it lives in a Policy. Its position
// in policyFields is its number in the log and in snapshots: fields are
// only ever appended.
type policyField struct {
	name     string
	kind     PolicyKind
	min, max int64    // durations (ns) and ints
	values   []string // enums: the names of the values, by value
	get      func(*Policy) int64
	set      func(*Policy, int64)
}

// policyFields is the whole policy. Adding a tunable is one entry here plus
// its field in Policy and its default; the API, the log, snapshots and
// validation all follow this table.
var policyFields = [...]policyField{
	durationField("chat.web.idle_after", func(p *Policy) *time.Duration { return &p.Web.IdleAfter }),
	durationField("chat.web.idle_timeout", func(p *Policy) *time.Duration { return &p.Web.IdleTimeout }),
	durationField("chat.web.disconnect_timeout", func(p *Policy) *time.Duration { return &p.Web.DisconnectTimeout }),
	durationField("chat.mobile_sdk.inactivity_timeout", func(p *Policy) *time.Duration { return &p.Mobile.InactivityTimeout }),
	durationField("chat.mobile_sdk.disconnect_timeout", func(p *Policy) *time.Duration { return &p.Mobile.DisconnectTimeout }),
	durationField("chat.mobile_sdk.agent_ended_timeout", func(p *Policy) *time.Duration { return &p.Mobile.AgentEndedTimeout }),
	durationField("chat.mobile_sdk.background_timeout", func(p *Policy) *time.Duration { return &p.Mobile.BackgroundTimeout }),
	boolField("chat.agent_can_end_chat", func(p *Policy) *bool { return &p.AgentCanEndChat }),
	durationField("messaging.inactivity_timeout", func(p *Policy) *time.Duration { return &p.Messaging.InactivityTimeout }),
	boolField("messaging.count_inactive_messaging", func(p *Policy) *bool { return &p.Messaging.CountInactiveMessaging }),
	enumField("routing.mode", modeNames[:], func(p *Policy) *Mode { return &p.Routing.Mode }),
	enumField("routing.strategy", strategyNames[:], func(p *Policy) *Strategy { return &p.Routing.Strategy }),
	boolField("routing.auto_accept", func(p *Policy) *bool { return &p.Routing.AutoAccept }),
	durationField("routing.offer_timeout", func(p *Policy) *time.Duration { return &p.Routing.OfferTimeout }),
	durationField("routing.reassign_delay", func(p *Policy) *time.Duration { return &p.Routing.ReassignDelay }),
	durationField("idempotency_retention", func(p *Policy) *time.Duration { return &p.IdempotencyRetention }),
	boundedDuration("retention.ended", 0, MaxPolicyDuration, func(p *Policy) *time.Duration { return &p.Retention.Ended }),
	boundedDuration("ticket.close_solved_after", MinPolicyDuration, MaxCloseSolvedAfter, func(p *Policy) *time.Duration { return &p.Ticket.CloseSolvedAfter }),
	intField("limits.transcript_messages", 1, MaxTranscriptMessages, func(p *Policy) *int { return &p.Limits.TranscriptMessages }),
	intField("limits.transcript_bytes", MinTranscriptBytes, MaxTranscriptBytes, func(p *Policy) *int { return &p.Limits.TranscriptBytes }),
	boolField("email.auto_accept", func(p *Policy) *bool { return &p.Email.AutoAccept }),
	boolField("email.route_to_away", func(p *Policy) *bool { return &p.Email.RouteToAway }),
	durationField("voice.ring_timeout", func(p *Policy) *time.Duration { return &p.Voice.RingTimeout }),
	boundedDuration("voice.wrap_up", 0, MaxWrapUp, func(p *Policy) *time.Duration { return &p.Voice.WrapUp }),
	durationField("voice.max_queue_wait", func(p *Policy) *time.Duration { return &p.Voice.MaxQueueWait }),
	boolField("routing.focus_mode", func(p *Policy) *bool { return &p.Routing.FocusMode }),
	durationField("routing.skills_timeout.chat", func(p *Policy) *time.Duration { return &p.Routing.SkillsTimeout[capacity.Chat] }),
	durationField("routing.skills_timeout.messaging", func(p *Policy) *time.Duration { return &p.Routing.SkillsTimeout[capacity.Messaging] }),
	durationField("routing.skills_timeout.email", func(p *Policy) *time.Duration { return &p.Routing.SkillsTimeout[capacity.Email] }),
	durationField("routing.skills_timeout.voice", func(p *Policy) *time.Duration { return &p.Routing.SkillsTimeout[capacity.Voice] }),
	durationField("stats.service_level_target", func(p *Policy) *time.Duration { return &p.Stats.ServiceLevelTarget }),
	durationField("webhooks.disable_after", func(p *Policy) *time.Duration { return &p.Webhooks.DisableAfter }),
}

// numPolicyFields is len(policyFields), a constant.
const numPolicyFields = len(policyFields)

// A patch's presence mask has one bit per field.
var _ = [1]struct{}{}[(numPolicyFields-1)/64]

// durationField is a duration within the default bounds.
func durationField(name string, ref func(*Policy) *time.Duration) policyField {
	return boundedDuration(name, MinPolicyDuration, MaxPolicyDuration, ref)
}

// boundedDuration is a duration within min..max.
func boundedDuration(name string, min, max time.Duration, ref func(*Policy) *time.Duration) policyField {
	return policyField{name: name, kind: PolicyDuration, min: int64(min), max: int64(max),
		get: func(p *Policy) int64 { return int64(*ref(p)) },
		set: func(p *Policy, v int64) { *ref(p) = time.Duration(v) }}
}

func boolField(name string, ref func(*Policy) *bool) policyField {
	return policyField{name: name, kind: PolicyBool, min: 0, max: 1,
		get: func(p *Policy) int64 {
			if *ref(p) {
				return 1
			}
			return 0
		},
		set: func(p *Policy, v int64) { *ref(p) = v != 0 }}
}

// intField is an integer within min..max.
func intField(name string, min, max int, ref func(*Policy) *int) policyField {
	return policyField{name: name, kind: PolicyInt, min: int64(min), max: int64(max),
		get: func(p *Policy) int64 { return int64(*ref(p)) },
		set: func(p *Policy, v int64) { *ref(p) = int(v) }}
}

func enumField[T ~uint8](name string, values []string, ref func(*Policy) *T) policyField {
	return policyField{name: name, kind: PolicyEnum, min: 0, max: int64(len(values) - 1), values: values,
		get: func(p *Policy) int64 { return int64(*ref(p)) },
		set: func(p *Policy, v int64) { *ref(p) = T(v) }}
}

// PolicyValue is one field of a policy, for the API to show.
type PolicyValue struct {
	Name     string // dotted API name: "chat.web.idle_after"
	Kind     PolicyKind
	Duration time.Duration // PolicyDuration
	Bool     bool          // PolicyBool
	Int      int64         // PolicyInt
	Enum     string        // PolicyEnum: the value's name
}

// Values lists every field of p in the table's order.
func (p Policy) Values() []PolicyValue {
	out := make([]PolicyValue, numPolicyFields)
	for i := range policyFields {
		f := &policyFields[i]
		v := f.get(&p)
		out[i] = PolicyValue{Name: f.name, Kind: f.kind}
		switch f.kind {
		case PolicyDuration:
			out[i].Duration = time.Duration(v)
		case PolicyBool:
			out[i].Bool = v != 0
		case PolicyInt:
			out[i].Int = v
		case PolicyEnum:
			out[i].Enum = f.values[v]
		}
	}
	return out
}

// PolicyFieldNames lists the API names of every policy field, in the
// table's order.
func PolicyFieldNames() []string {
	out := make([]string, numPolicyFields)
	for i := range policyFields {
		out[i] = policyFields[i].name
	}
	return out
}

// PolicyFieldInfo describes one policy field, for documents and checks.
type PolicyFieldInfo struct {
	Name     string
	Kind     PolicyKind
	Min, Max int64    // durations in nanoseconds, ints
	Values   []string // enums
}

// PolicyFields describes every policy field, in the table's order.
func PolicyFields() []PolicyFieldInfo {
	out := make([]PolicyFieldInfo, numPolicyFields)
	for i, f := range policyFields {
		out[i] = PolicyFieldInfo{Name: f.name, Kind: f.kind, Min: f.min, Max: f.max, Values: f.values}
	}
	return out
}

// PolicyPatch sets the fields it holds and keeps the others. It is applied
// inside the state machine, so two concurrent patches of different fields
// both take effect.
type PolicyPatch struct {
	set  uint64 // bit i: policyFields[i] is in the patch
	vals [numPolicyFields]int64
}

// Empty reports whether the patch sets nothing.
func (p *PolicyPatch) Empty() bool { return p.set == 0 }

func fieldIndex(name string) int {
	for i := range policyFields {
		if policyFields[i].name == name {
			return i
		}
	}
	return -1
}

// PolicyPatchFromObject makes a patch of a decoded JSON object shaped like
// the policy (as PUT /v1/policy takes it): nested objects are groups of
// the dotted names, leaves are values, null sets nothing; numbers may be
// json.Number. Fields are set in name order, so the first error reported
// does not depend on map order.
func PolicyPatchFromObject(obj map[string]any) (PolicyPatch, error) {
	var patch PolicyPatch
	leaves := map[string]any{}
	flattenObject("", obj, leaves)
	for _, name := range slices.Sorted(maps.Keys(leaves)) {
		v := leaves[name]
		if n, isNumber := v.(json.Number); isNumber {
			i, err := n.Int64()
			if err != nil {
				return patch, invalidf("invalid_type", "policy field %q must be an integer, got %s", name, n)
			}
			v = i
		}
		if err := patch.Set(name, v); err != nil {
			return patch, err
		}
	}
	if err := patch.Validate(); err != nil {
		return patch, err
	}
	return patch, nil
}

// flattenObject collects the leaves of obj under their dotted names.
func flattenObject(prefix string, obj map[string]any, out map[string]any) {
	for k, v := range obj {
		name := k
		if prefix != "" {
			name = prefix + "." + k
		}
		switch x := v.(type) {
		case nil:
		case map[string]any:
			flattenObject(name, x, out)
		default:
			out[name] = x
		}
	}
}

// Set puts one field, by API name, in the patch. v is a time.Duration or a
// duration string ("90s") for a duration, a bool, an int or int64, or an
// enum's value or its name. The value's range is checked by Validate.
func (p *PolicyPatch) Set(name string, v any) error {
	i := fieldIndex(name)
	if i < 0 {
		return invalidf("unknown_field", "unknown policy field %q", name)
	}
	f := &policyFields[i]
	wrong := func(want string) error {
		return invalidf("invalid_type", "policy field %q must be %s", name, want)
	}
	var x int64
	switch f.kind {
	case PolicyDuration:
		switch d := v.(type) {
		case time.Duration:
			x = int64(d)
		case string:
			parsed, err := time.ParseDuration(d)
			if err != nil {
				return invalidf("invalid_duration", "%s: %q is not a duration (e.g. \"90s\", \"10m\", \"1h\")", name, d)
			}
			x = int64(parsed)
		default:
			return wrong("a duration string")
		}
	case PolicyBool:
		b, ok := v.(bool)
		if !ok {
			return wrong("a boolean")
		}
		if b {
			x = 1
		}
	case PolicyInt:
		switch n := v.(type) {
		case int:
			x = int64(n)
		case int64:
			x = n
		default:
			return wrong("an integer")
		}
	case PolicyEnum:
		s, ok := v.(string)
		if !ok {
			if u, isEnum := enumValue(v); isEnum {
				x = u
				break
			}
			return wrong("a string")
		}
		j := slices.Index(f.values, s)
		if j < 0 {
			short := name[strings.LastIndexByte(name, '.')+1:]
			return invalidf("invalid_"+short, "unknown %s %q (one of %s)", short, s, strings.Join(f.values, ", "))
		}
		x = int64(j)
	}
	p.set |= 1 << i
	p.vals[i] = x
	return nil
}

func enumValue(v any) (int64, bool) {
	switch e := v.(type) {
	case Mode:
		return int64(e), true
	case Strategy:
		return int64(e), true
	}
	return 0, false
}

// MustPatch builds a patch from name, value pairs (see Set); it panics on
// a bad pair. For tests and fixed patches in code.
func MustPatch(pairs ...any) PolicyPatch {
	var p PolicyPatch
	for i := 0; i+1 < len(pairs); i += 2 {
		if err := p.Set(pairs[i].(string), pairs[i+1]); err != nil {
			panic(err)
		}
	}
	if len(pairs)%2 != 0 {
		panic("routing: MustPatch takes name, value pairs")
	}
	return p
}

// Validate checks every field the patch sets against its bounds.
func (p *PolicyPatch) Validate() error {
	if p.set&^(uint64(1)<<numPolicyFields-1) != 0 {
		return invalidf(CodeInvalidPolicy, "unknown policy fields in patch")
	}
	for i := range policyFields {
		if p.set&(1<<i) == 0 {
			continue
		}
		if err := policyFields[i].check(p.vals[i]); err != nil {
			return err
		}
	}
	return nil
}

func (f *policyField) check(v int64) error {
	if v >= f.min && v <= f.max {
		return nil
	}
	switch f.kind {
	case PolicyDuration:
		return invalidf(CodeInvalidPolicy, "%s must be between %v and %v, got %v", f.name, time.Duration(f.min), time.Duration(f.max), time.Duration(v))
	case PolicyEnum:
		return invalidf(CodeInvalidPolicy, "unknown %s %d", f.name, v)
	default:
		return invalidf(CodeInvalidPolicy, "%s must be between %d and %d, got %d", f.name, f.min, f.max, v)
	}
}

// apply sets the patch's fields on pol; p must be valid.
// Applied returns pol with the patch's fields set.
func (p PolicyPatch) Applied(pol Policy) Policy {
	p.apply(&pol)
	return pol
}

func (p *PolicyPatch) apply(pol *Policy) {
	for i := range policyFields {
		if p.set&(1<<i) != 0 {
			policyFields[i].set(pol, p.vals[i])
		}
	}
}

// --- encoding -----------------------------------------------------------------

// A patch on the log: the presence mask, then each present field's value
// in table order. A policy in a snapshot: every field's value in table
// order.

func (p *PolicyPatch) encode(e *wire.Encoder) {
	e.Uvarint(p.set)
	for i := range policyFields {
		if p.set&(1<<i) != 0 {
			e.Varint(p.vals[i])
		}
	}
}

func decodePatch(d *wire.Decoder) PolicyPatch {
	var p PolicyPatch
	p.set = d.Uvarint()
	if d.Err() == nil && p.set&^(uint64(1)<<numPolicyFields-1) != 0 {
		d.Fail("unknown policy fields %#x", p.set)
		return PolicyPatch{}
	}
	for i := range policyFields {
		if p.set&(1<<i) != 0 {
			p.vals[i] = d.Varint()
		}
	}
	return p
}

func encodePolicy(e *wire.Encoder, p *Policy) {
	for i := range policyFields {
		e.Varint(policyFields[i].get(p))
	}
}

func decodePolicy(d *wire.Decoder, p *Policy) {
	for i := range policyFields {
		f := &policyFields[i]
		v := d.Varint()
		if d.Err() != nil {
			return
		}
		if err := f.check(v); err != nil {
			d.Fail("policy: %v", err)
			return
		}
		f.set(p, v)
	}
}

// String shows the fields a patch sets, for logs and test failures.
func (p PolicyPatch) String() string {
	var b strings.Builder
	b.WriteByte('{')
	for i := range policyFields {
		if p.set&(1<<i) == 0 {
			continue
		}
		if b.Len() > 1 {
			b.WriteByte(' ')
		}
		f := &policyFields[i]
		fmt.Fprintf(&b, "%s=", f.name)
		switch f.kind {
		case PolicyDuration:
			b.WriteString(time.Duration(p.vals[i]).String())
		case PolicyEnum:
			if p.vals[i] >= 0 && p.vals[i] < int64(len(f.values)) {
				b.WriteString(f.values[p.vals[i]])
			} else {
				fmt.Fprint(&b, p.vals[i])
			}
		default:
			fmt.Fprint(&b, p.vals[i])
		}
	}
	b.WriteByte('}')
	return b.String()
}
