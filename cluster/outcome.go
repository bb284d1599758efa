package cluster

import (
	"github.com/omnirouter/omnirouter/internal/wire"
	"github.com/omnirouter/omnirouter/routing"
)

// The Outcome codec carries a leader's answer back to the follower that
// forwarded the command. It is routing's own encoding (the one its
// snapshots use for idempotency records), versioned with the forwarding
// protocol (forwardVersion). Events are not carried: the forwarding caller
// reads events from its own replica's log.

func appendOutcome(enc *wire.Encoder, o *routing.Outcome) { routing.EncodeOutcome(enc, *o) }

func readOutcome(d *wire.Decoder) routing.Outcome { return routing.DecodeOutcome(d) }
