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
	// NumChannels is the number of channels; Limits and Load are indexed by Channel.
	NumChannels
)

// MaxLimit is the largest capacity an agent may have on one channel.
const MaxLimit = 500

var channelNames = [NumChannels]string{"chat", "messaging"}

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

// Validate checks that every limit is within 0..MaxLimit.
func (l Limits) Validate() error {
	for ch, n := range l {
		if n < 0 || n > MaxLimit {
			return fmt.Errorf("%w: %s capacity %d is outside 0..%d", ErrInvalid, Channel(ch), n, MaxLimit)
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

// Holding describes a conversation held by an agent (offered or assigned), as
// far as counting is concerned.
type Holding struct {
	Channel Channel
	// Active is true when the session activity state is active.
	Active bool
	// TicketOpen is true when there is no ticket or its status is new or open.
	TicketOpen bool
}

// Counts reports whether a held conversation counts against the agent's
// capacity. Live chats always count while held. A messaging conversation
// counts while it is active and its ticket is new or open; with
// countInactiveMessaging it counts while held, whatever its activity.
func Counts(h Holding, countInactiveMessaging bool) bool {
	if h.Channel != Messaging {
		return true
	}
	if countInactiveMessaging {
		return true
	}
	return h.Active && h.TicketOpen
}
