// Package capacity owns the arithmetic of agent capacity: the channels that
// have a limit, the limits themselves (0..MaxLimit per channel), and the rule
// that decides whether a conversation an agent holds counts against its limit.
//
// It is pure: no clock, no I/O. The routing state machine keeps one Limits and
// one Load per agent and asks this package what counts and what is spare.
package capacity

import (
	"errors"
	"fmt"
)

// ErrInvalid is wrapped by every validation error of this package.
var ErrInvalid = errors.New("invalid capacity")

// Channel is a kind of work with its own capacity. Values are only appended:
// they are stored in snapshots and the command log.
type Channel uint8

const (
	// Chat is live chat (web widget or mobile SDK).
	Chat Channel = iota
	// Messaging is asynchronous messaging.
	Messaging
	// Email is email tickets.
	Email
	// Voice is phone calls.
	Voice
	// NumChannels is the number of channels; Limits and Load are indexed by Channel.
	NumChannels
)

// MaxLimit is the largest capacity an agent may have on one channel; a
// voice agent takes one call at a time (MaxVoiceLimit).
const (
	MaxLimit      = 500
	MaxVoiceLimit = 1
)

var channelNames = [NumChannels]string{"chat", "messaging", "email", "voice"}

// maxLimit is the largest limit on ch.
func maxLimit(ch Channel) int {
	if ch == Voice {
		return MaxVoiceLimit
	}
	return MaxLimit
}

// RealTime reports whether work on ch wants the agent's attention now:
// chat, messaging and voice; email waits in the agent's inbox. Focus mode
// keeps an agent on one real-time channel at a time.
func (c Channel) RealTime() bool { return c != Email }

// String returns the channel's API name.
func (c Channel) String() string {
	if c < NumChannels {
		return channelNames[c]
	}
	return fmt.Sprintf("channel(%d)", uint8(c))
}

// Valid reports whether c is a known channel.
func (c Channel) Valid() bool { return c < NumChannels }

// ParseChannel maps an API name to a Channel.
func ParseChannel(s string) (Channel, error) {
	for i, n := range channelNames {
		if n == s {
			return Channel(i), nil
		}
	}
	return 0, fmt.Errorf("%w: unknown channel %q", ErrInvalid, s)
}

// Limits is an agent's capacity per channel. Zero means nothing is routed on
// that channel.
type Limits [NumChannels]int

// Validate checks every limit: 0..MaxLimit, voice 0 or 1.
func (l Limits) Validate() error {
	for ch, n := range l {
		if max := maxLimit(Channel(ch)); n < 0 || n > max {
			return fmt.Errorf("%w: %s capacity %d is outside 0..%d", ErrInvalid, Channel(ch), n, max)
		}
	}
	return nil
}

// Load is the number of conversations counting against an agent's capacity,
// per channel. It may exceed the limit (reactivation, forced assignment, a
// lowered limit); Spare is then zero.
type Load [NumChannels]int

// Spare returns how many more conversations routing may give on ch.
func Spare(l Limits, load Load, ch Channel) int {
	if s := l[ch] - load[ch]; s > 0 {
		return s
	}
	return 0
}

// SparePermille returns the spare share of the limit on ch, in thousandths, for
// the spare_percentage strategy. A zero limit has no spare share.
func SparePermille(l Limits, load Load, ch Channel) int {
	if l[ch] <= 0 {
		return 0
	}
	return Spare(l, load, ch) * 1000 / l[ch]
}

// Holding describes a conversation held by an agent (offered, assigned,
// or a call in wrap-up), as far as counting is concerned.
type Holding struct {
	Channel Channel
	// Active is true when the session activity state is active.
	Active bool
	// TicketOpen is true when there is no ticket or its status is new or open.
	TicketOpen bool
}

// Counts reports whether a held conversation counts against the agent's
// capacity. Live chats and calls (their wrap-up too) always count while
// held. A messaging conversation counts while it is active and its ticket
// is new or open; with countInactiveMessaging it counts while held,
// whatever its activity. An email counts while its ticket is new or open.
func Counts(h Holding, countInactiveMessaging bool) bool {
	switch h.Channel {
	case Messaging:
		return countInactiveMessaging || h.Active && h.TicketOpen
	case Email:
		return h.TicketOpen
	default:
		return true
	}
}
