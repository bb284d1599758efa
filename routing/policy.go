package routing

import "time"

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
}

// WebPolicy is the web widget's session lifecycle (DESIGN §3.1).
type WebPolicy struct {
	IdleAfter         time.Duration // no page activity → inactive
	IdleTimeout       time.Duration // inactive this long → ended
	DisconnectTimeout time.Duration // disconnected this long → ended
}

// MobilePolicy is the mobile SDK's session lifecycle (DESIGN §3.2).
type MobilePolicy struct {
	InactivityTimeout time.Duration
	DisconnectTimeout time.Duration
	AgentEndedTimeout time.Duration
	BackgroundTimeout time.Duration
}

// MessagingPolicy is messaging's activity rules (DESIGN §3.4).
type MessagingPolicy struct {
	InactivityTimeout      time.Duration
	CountInactiveMessaging bool
}

// RoutingPolicy is how conversations meet agents (DESIGN §4).
type RoutingPolicy struct {
	Mode          Mode
	Strategy      Strategy
	AutoAccept    bool
	OfferTimeout  time.Duration
	ReassignDelay time.Duration
}

// DefaultPolicy returns the defaults of DESIGN.md.
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
		},
		IdempotencyRetention: time.Hour,
	}
}

// Bounds on every policy duration.
const (
	MinPolicyDuration = time.Millisecond
	MaxPolicyDuration = 30 * 24 * time.Hour
)

// PolicyPatch sets the fields that are non-nil and keeps the others. It is
// applied inside the state machine, so two concurrent patches of different
// fields both take effect.
type PolicyPatch struct {
	WebIdleAfter               *time.Duration
	WebIdleTimeout             *time.Duration
	WebDisconnectTimeout       *time.Duration
	MobileInactivityTimeout    *time.Duration
	MobileDisconnectTimeout    *time.Duration
	MobileAgentEndedTimeout    *time.Duration
	MobileBackgroundTimeout    *time.Duration
	AgentCanEndChat            *bool
	MessagingInactivityTimeout *time.Duration
	CountInactiveMessaging     *bool
	Mode                       *Mode
	Strategy                   *Strategy
	AutoAccept                 *bool
	OfferTimeout               *time.Duration
	ReassignDelay              *time.Duration
	IdempotencyRetention       *time.Duration
}

// patchDurations lists the patch's duration fields with the policy fields
// they set and their API names, so that validation and application cannot
// drift apart.
func (p *PolicyPatch) durations(pol *Policy) []durationField {
	return []durationField{
		{"chat.web.idle_after", p.WebIdleAfter, &pol.Web.IdleAfter},
		{"chat.web.idle_timeout", p.WebIdleTimeout, &pol.Web.IdleTimeout},
		{"chat.web.disconnect_timeout", p.WebDisconnectTimeout, &pol.Web.DisconnectTimeout},
		{"chat.mobile_sdk.inactivity_timeout", p.MobileInactivityTimeout, &pol.Mobile.InactivityTimeout},
		{"chat.mobile_sdk.disconnect_timeout", p.MobileDisconnectTimeout, &pol.Mobile.DisconnectTimeout},
		{"chat.mobile_sdk.agent_ended_timeout", p.MobileAgentEndedTimeout, &pol.Mobile.AgentEndedTimeout},
		{"chat.mobile_sdk.background_timeout", p.MobileBackgroundTimeout, &pol.Mobile.BackgroundTimeout},
		{"messaging.inactivity_timeout", p.MessagingInactivityTimeout, &pol.Messaging.InactivityTimeout},
		{"routing.offer_timeout", p.OfferTimeout, &pol.Routing.OfferTimeout},
		{"routing.reassign_delay", p.ReassignDelay, &pol.Routing.ReassignDelay},
		{"idempotency_retention", p.IdempotencyRetention, &pol.IdempotencyRetention},
	}
}

type durationField struct {
	name string
	set  *time.Duration
	dst  *time.Duration
}

// Validate checks every field the patch sets.
func (p *PolicyPatch) Validate() error {
	var scratch Policy
	for _, f := range p.durations(&scratch) {
		if f.set != nil && (*f.set < MinPolicyDuration || *f.set > MaxPolicyDuration) {
			return invalidf(CodeInvalidPolicy, "%s must be between %v and %v, got %v", f.name, MinPolicyDuration, MaxPolicyDuration, *f.set)
		}
	}
	if p.Mode != nil && !p.Mode.Valid() {
		return invalidf(CodeInvalidPolicy, "unknown routing mode %d", *p.Mode)
	}
	if p.Strategy != nil && !p.Strategy.Valid() {
		return invalidf(CodeInvalidPolicy, "unknown routing strategy %d", *p.Strategy)
	}
	return nil
}

// apply sets the patch's fields on pol; p must be valid.
func (p *PolicyPatch) apply(pol *Policy) {
	for _, f := range p.durations(pol) {
		if f.set != nil {
			*f.dst = *f.set
		}
	}
	setIf(&pol.AgentCanEndChat, p.AgentCanEndChat)
	setIf(&pol.Messaging.CountInactiveMessaging, p.CountInactiveMessaging)
	setIf(&pol.Routing.Mode, p.Mode)
	setIf(&pol.Routing.Strategy, p.Strategy)
	setIf(&pol.Routing.AutoAccept, p.AutoAccept)
}

func setIf[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}
