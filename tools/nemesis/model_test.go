package nemesis

import (
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

var testAgents = Agents{
	"chat": {"a1", "a2", "a3"}, "messaging": {"a1", "a2", "a3"},
	"email": {"a1", "a2", "a3", "a4"}, "voice": {"a1", "a2", "a3"}, // a4: email only
}

// op builds a history entry: [call, ret] in arbitrary units; ret -1 means
// ambiguous.
func hop(kind, conv, ch, agent string, call, ret int64, st Status, state, holder, code string) Op {
	return Op{Kind: kind, Conv: conv, Channel: ch, Agent: agent, Call: call, Return: ret, Status: st, State: state, Holder: holder, Code: code}
}

func check(t *testing.T, ops []Op) porcupine.CheckResult {
	t.Helper()
	res, _ := porcupine.CheckOperationsVerbose(Model(testAgents), Operations(ops), 5*time.Second)
	return res
}

func TestModelAcceptsLegalHistory(t *testing.T) {
	ops := []Op{
		hop(KindCreate, "c1", "chat", "", 0, 10, OK, "queued", "", ""),
		hop(KindRead, "c1", "chat", "", 20, 30, OK, "offered", "a1", ""),             // auto dispatch
		hop(KindAccept, "c1", "chat", "a2", 31, 32, Rejected, "", "", "not_offered"), // offered to a1, not a2
		hop(KindAccept, "c1", "chat", "a1", 40, 50, OK, "assigned", "a1", ""),
		hop(KindMsgAgent, "c1", "chat", "a1", 51, 52, OK, "assigned", "a1", ""),
		hop(KindLeave, "c1", "chat", "a1", 60, 70, OK, "unassigned", "", ""),
		hop(KindMsgVisitor, "c1", "chat", "", 80, 90, OK, "offered", "a2", ""), // reopened, re-offered in the same apply
		hop(KindRead, "c1", "chat", "", 91, 92, OK, "queued", "", ""),          // the offer timed out
		hop(KindAccept, "c1", "chat", "a3", 100, 110, OK, "assigned", "a3", ""),
		hop(KindEndVisitor, "c1", "chat", "", 120, 130, OK, "ended", "a3", ""),
		hop(KindRead, "c1", "chat", "", 140, 150, OK, "ended", "a3", ""),
		hop(KindMsgVisitor, "c1", "chat", "", 160, 170, Rejected, "", "", "conversation_ended"),

		// Ambiguous operations may have happened: an accept whose client gave
		// up, later seen applied.
		hop(KindCreate, "m1", "messaging", "", 0, 10, OK, "offered", "a2", ""),
		hop(KindAccept, "m1", "messaging", "a2", 20, -1, Ambiguous, "", "", ""),
		hop(KindRead, "m1", "messaging", "", 200, 210, OK, "assigned", "a2", ""),
		hop(KindRelease, "m1", "messaging", "a2", 220, 230, OK, "", "", ""),
		hop(KindRead, "m1", "messaging", "", 240, 250, OK, "ended", "a2", ""),
		// ... or not: here the create itself was lost.
		hop(KindCreate, "m2", "messaging", "", 0, -1, Ambiguous, "", "", ""),
		hop(KindRead, "m2", "messaging", "", 100, 110, Rejected, "", "", "conversation_not_found"),
		// Concurrent accept and leave: either order is fine.
		hop(KindCreate, "c2", "chat", "", 0, 10, OK, "offered", "a1", ""),
		hop(KindAccept, "c2", "chat", "a1", 20, 40, OK, "assigned", "a1", ""),
		hop(KindLeave, "c2", "chat", "a1", 21, 39, OK, "unassigned", "", ""),
	}
	if res := check(t, ops); res != porcupine.Ok {
		t.Fatalf("legal history judged %s", res)
	}
}

func TestModelRejectsDoubleAssignment(t *testing.T) {
	ops := []Op{
		hop(KindCreate, "c1", "chat", "", 0, 10, OK, "offered", "a1", ""),
		hop(KindAccept, "c1", "chat", "a1", 20, 30, OK, "assigned", "a1", ""),
		// a1 never left: nothing may offer c1 to a2, let alone assign it.
		hop(KindAccept, "c1", "chat", "a2", 40, 50, OK, "assigned", "a2", ""),
	}
	if res := check(t, ops); res != porcupine.Illegal {
		t.Fatalf("double assignment judged %s", res)
	}
}

func TestModelRejectsIllegalHistories(t *testing.T) {
	cases := map[string][]Op{
		"ended conversation read back open": {
			hop(KindCreate, "c1", "chat", "", 0, 10, OK, "queued", "", ""),
			hop(KindEndVisitor, "c1", "chat", "", 20, 30, OK, "ended", "", ""),
			hop(KindRead, "c1", "chat", "", 40, 50, OK, "queued", "", ""),
		},
		"messaging ended without a release": {
			hop(KindCreate, "m1", "messaging", "", 0, 10, OK, "offered", "a1", ""),
			hop(KindAccept, "m1", "messaging", "a1", 20, 30, OK, "assigned", "a1", ""),
			hop(KindRead, "m1", "messaging", "", 40, 50, OK, "ended", "a1", ""),
		},
		"a rejected leave that took effect": {
			hop(KindCreate, "c1", "chat", "", 0, 10, OK, "offered", "a1", ""),
			hop(KindAccept, "c1", "chat", "a1", 20, 30, OK, "assigned", "a1", ""),
			hop(KindLeave, "c1", "chat", "a1", 40, 50, Rejected, "", "", "not_assigned"),
		},
		"stale read after an acknowledged accept": {
			hop(KindCreate, "c1", "chat", "", 0, 10, OK, "offered", "a1", ""),
			hop(KindAccept, "c1", "chat", "a1", 20, 30, OK, "assigned", "a1", ""),
			hop(KindRead, "c1", "chat", "", 40, 50, OK, "offered", "a1", ""),
		},
		"an assigned conversation taken over without a leave": {
			hop(KindCreate, "c1", "chat", "", 0, 10, OK, "offered", "a1", ""),
			hop(KindAccept, "c1", "chat", "a1", 20, 30, OK, "assigned", "a1", ""),
			hop(KindRead, "c1", "chat", "", 40, 50, OK, "offered", "a2", ""),
		},
	}
	for name, ops := range cases {
		if res := check(t, ops); res != porcupine.Illegal {
			t.Errorf("%s: judged %s", name, res)
		}
	}
}

// tick sets the ticket status an answer carries.
func tick(op Op, status string) Op { op.Ticket = status; return op }

// arg sets an op's argument (a ticket status, a voicemail).
func arg(op Op, a string) Op { op.Arg = a; return op }

func TestModelAcceptsEmailHistory(t *testing.T) {
	ops := []Op{
		// Assigned without an offer; the agent sets the ticket pending: it
		// stays assigned.
		tick(hop(KindCreate, "e1", "email", "", 0, 10, OK, "assigned", "a1", ""), "new"),
		hop(KindAccept, "e1", "email", "a1", 11, 12, OK, "assigned", "a1", ""), // a retried accept
		tick(hop(KindMsgAgent, "e1", "email", "a1", 20, 30, OK, "assigned", "a1", ""), "new"),
		tick(arg(hop(KindTicket, "e1", "email", "a1", 40, 50, OK, "assigned", "a1", ""), "pending"), "pending"),
		tick(hop(KindRead, "e1", "email", "", 60, 70, OK, "assigned", "a1", ""), "pending"),
		// The end user replies: open again for the same agent.
		tick(hop(KindMsgVisitor, "e1", "email", "", 80, 90, OK, "assigned", "a1", ""), "open"),
		tick(arg(hop(KindTicket, "e1", "email", "a1", 100, 110, OK, "assigned", "a1", ""), "solved"), "solved"),
		// Replied to while a1 was offline: back in the queue, then to a2.
		tick(hop(KindMsgVisitor, "e1", "email", "", 120, 130, OK, "assigned", "a2", ""), "open"),
		hop(KindLeave, "e1", "email", "a2", 140, 150, Rejected, "", "", "wrong_channel"),
		hop(KindEndVisitor, "e1", "email", "", 160, 170, Rejected, "", "", "wrong_channel"),
		arg(hop(KindRelease, "e1", "email", "a2", 180, 190, OK, "", "", ""), "pending"),
		tick(hop(KindRead, "e1", "email", "", 200, 210, OK, "ended", "a2", ""), "pending"),
		tick(hop(KindMsgVisitor, "e1", "email", "", 220, 230, Rejected, "", "", "conversation_ended"), ""),

		// A queued email whose ticket waits is not routed until the end
		// user writes; the router's assignment assigns an email.
		tick(hop(KindCreate, "e2", "email", "", 0, 10, OK, "queued", "", ""), "new"),
		tick(arg(hop(KindTicket, "e2", "email", "", 20, 30, OK, "queued", "", ""), "on-hold"), "on-hold"),
		tick(hop(KindRead, "e2", "email", "", 40, 50, OK, "queued", "", ""), "on-hold"),
		tick(hop(KindMsgVisitor, "e2", "email", "", 60, 70, OK, "queued", "", ""), "open"),
		hop(KindAssign, "e2", "email", "a4", 80, 90, OK, "assigned", "a4", ""),
		hop(KindEndAgent, "e2", "email", "a4", 100, 110, OK, "ended", "a4", ""),
	}
	if res := check(t, ops); res != porcupine.Ok {
		t.Fatalf("legal email history judged %s", res)
	}
}

func TestModelAcceptsVoiceHistory(t *testing.T) {
	ops := []Op{
		// Rings a1, who rejects; rings a2, no answer (ring timeout); a3
		// answers, hangs up, wrap-up, releases.
		hop(KindCreate, "v1", "voice", "", 0, 10, OK, "offered", "a1", ""),
		hop(KindReject, "v1", "voice", "a1", 20, 30, OK, "offered", "a2", ""),
		hop(KindRead, "v1", "voice", "", 40, 50, OK, "offered", "a3", ""),
		hop(KindAccept, "v1", "voice", "a2", 51, 52, Rejected, "", "", "not_offered"),
		hop(KindAccept, "v1", "voice", "a3", 60, 70, OK, "assigned", "a3", ""),
		hop(KindMsgAgent, "v1", "voice", "a3", 71, 72, Rejected, "", "", "wrong_channel"),
		hop(KindRelease, "v1", "voice", "a3", 75, 76, Rejected, "", "", "not_assigned"), // still talking
		hop(KindEndAgent, "v1", "voice", "a3", 80, 90, OK, "wrap_up", "a3", ""),
		hop(KindRead, "v1", "voice", "", 100, 110, OK, "wrap_up", "a3", ""),
		hop(KindEndVisitor, "v1", "voice", "", 111, 112, Rejected, "", "", "conversation_ended"),
		hop(KindRelease, "v1", "voice", "a3", 120, 130, OK, "", "", ""),
		hop(KindRead, "v1", "voice", "", 140, 150, OK, "ended", "a3", ""),
		hop(KindRelease, "v1", "voice", "a3", 160, 170, Rejected, "", "", "not_assigned"), // released already

		// The caller hangs up after an answer: wrap-up ends by its timer.
		hop(KindCreate, "v2", "voice", "", 0, 10, OK, "queued", "", ""),
		hop(KindAssign, "v2", "voice", "a1", 20, 30, OK, "offered", "a1", ""),
		hop(KindAccept, "v2", "voice", "a1", 40, 50, OK, "assigned", "a1", ""),
		hop(KindEndVisitor, "v2", "voice", "", 60, 70, OK, "wrap_up", "a1", ""),
		hop(KindRead, "v2", "voice", "", 80, 90, OK, "ended", "a1", ""),

		// A caller hangs up while ringing (a missed call, voicemail); a
		// call nobody answers ends by voice.max_queue_wait.
		hop(KindCreate, "v3", "voice", "", 0, 10, OK, "offered", "a2", ""),
		arg(hop(KindEndVisitor, "v3", "voice", "", 20, 30, OK, "ended", "a2", ""), "voicemail"),
		hop(KindCreate, "v4", "voice", "", 0, 10, OK, "queued", "", ""),
		hop(KindRead, "v4", "voice", "", 20, 30, OK, "ended", "", ""),
	}
	if res := check(t, ops); res != porcupine.Ok {
		t.Fatalf("legal voice history judged %s", res)
	}
}

func TestModelRejectsIllegalEmailAndVoiceHistories(t *testing.T) {
	cases := map[string][]Op{
		"an email offered instead of assigned": {
			hop(KindCreate, "e1", "email", "", 0, 10, OK, "queued", "", ""),
			hop(KindRead, "e1", "email", "", 20, 30, OK, "offered", "a1", ""),
		},
		"an email ended without a release": {
			hop(KindCreate, "e1", "email", "", 0, 10, OK, "assigned", "a1", ""),
			hop(KindRead, "e1", "email", "", 20, 30, OK, "ended", "a1", ""),
		},
		"an assigned email requeued without an end-user reply": {
			hop(KindCreate, "e1", "email", "", 0, 10, OK, "assigned", "a1", ""),
			arg(hop(KindTicket, "e1", "email", "a1", 20, 30, OK, "assigned", "a1", ""), "pending"),
			hop(KindRead, "e1", "email", "", 40, 50, OK, "queued", "", ""),
		},
		"an email with an open ticket requeued by a reply": {
			tick(hop(KindCreate, "e1", "email", "", 0, 10, OK, "assigned", "a1", ""), "new"),
			hop(KindMsgVisitor, "e1", "email", "", 20, 30, OK, "queued", "", ""),
		},
		"an email routed while its ticket waits": {
			hop(KindCreate, "e1", "email", "", 0, 10, OK, "queued", "", ""),
			arg(hop(KindTicket, "e1", "email", "", 20, 30, OK, "queued", "", ""), "pending"),
			hop(KindRead, "e1", "email", "", 40, 50, OK, "assigned", "a2", ""),
		},
		"a pending ticket read back open without a reply": {
			hop(KindCreate, "e1", "email", "", 0, 10, OK, "assigned", "a1", ""),
			arg(hop(KindTicket, "e1", "email", "a1", 20, 30, OK, "assigned", "a1", ""), "solved"),
			tick(hop(KindRead, "e1", "email", "", 40, 50, OK, "assigned", "a1", ""), "open"),
		},
		"an answered call ended without a hang-up": {
			hop(KindCreate, "v1", "voice", "", 0, 10, OK, "offered", "a1", ""),
			hop(KindAccept, "v1", "voice", "a1", 20, 30, OK, "assigned", "a1", ""),
			hop(KindRead, "v1", "voice", "", 40, 50, OK, "ended", "a1", ""),
		},
		"an answered call back in the queue": {
			hop(KindCreate, "v1", "voice", "", 0, 10, OK, "offered", "a1", ""),
			hop(KindAccept, "v1", "voice", "a1", 20, 30, OK, "assigned", "a1", ""),
			hop(KindRead, "v1", "voice", "", 40, 50, OK, "offered", "a2", ""),
		},
		"a call in wrap-up taken by another agent": {
			hop(KindCreate, "v1", "voice", "", 0, 10, OK, "offered", "a1", ""),
			hop(KindAccept, "v1", "voice", "a1", 20, 30, OK, "assigned", "a1", ""),
			hop(KindEndAgent, "v1", "voice", "a1", 40, 50, OK, "wrap_up", "a1", ""),
			hop(KindRead, "v1", "voice", "", 60, 70, OK, "wrap_up", "a2", ""),
		},
		"a call in wrap-up back in progress": {
			hop(KindCreate, "v1", "voice", "", 0, 10, OK, "offered", "a1", ""),
			hop(KindAccept, "v1", "voice", "a1", 20, 30, OK, "assigned", "a1", ""),
			hop(KindEndVisitor, "v1", "voice", "", 40, 50, OK, "wrap_up", "a1", ""),
			hop(KindRead, "v1", "voice", "", 60, 70, OK, "assigned", "a1", ""),
		},
		"a call released from wrap-up after it ended": {
			hop(KindCreate, "v1", "voice", "", 0, 10, OK, "offered", "a1", ""),
			hop(KindAccept, "v1", "voice", "a1", 20, 30, OK, "assigned", "a1", ""),
			hop(KindEndAgent, "v1", "voice", "a1", 40, 50, OK, "ended", "a1", ""),
			hop(KindRelease, "v1", "voice", "a1", 60, 70, OK, "", "", ""),
		},
		"a release of a call still in progress acknowledged": {
			hop(KindCreate, "v1", "voice", "", 0, 10, OK, "offered", "a1", ""),
			hop(KindAccept, "v1", "voice", "a1", 20, 30, OK, "assigned", "a1", ""),
			hop(KindRelease, "v1", "voice", "a1", 40, 50, OK, "", "", ""),
		},
		"a wrap-up released twice": {
			hop(KindCreate, "v1", "voice", "", 0, 10, OK, "offered", "a1", ""),
			hop(KindAccept, "v1", "voice", "a1", 20, 30, OK, "assigned", "a1", ""),
			hop(KindEndAgent, "v1", "voice", "a1", 40, 50, OK, "wrap_up", "a1", ""),
			hop(KindRelease, "v1", "voice", "a1", 60, 70, OK, "", "", ""),
			hop(KindRelease, "v1", "voice", "a1", 80, 90, OK, "", "", ""),
		},
		"a call rung to an agent without voice": {
			hop(KindCreate, "v1", "voice", "", 0, 10, OK, "queued", "", ""),
			hop(KindRead, "v1", "voice", "", 20, 30, OK, "offered", "a4", ""),
		},
		"a rejected call answered": {
			hop(KindCreate, "v1", "voice", "", 0, 10, OK, "offered", "a1", ""),
			hop(KindReject, "v1", "voice", "a1", 20, 30, OK, "assigned", "a1", ""),
		},
	}
	for name, ops := range cases {
		if res := check(t, ops); res != porcupine.Illegal {
			t.Errorf("%s: judged %s", name, res)
		}
	}
}
