package nemesis

import (
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

var testAgents = []string{"a1", "a2", "a3"}

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
