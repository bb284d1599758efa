package nemesis

import (
	"encoding/json"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// A real history (a 60 s run, seed 404): the agents' setup and every
// operation on 12 emails (tickets set pending, solved and on-hold, end-user
// replies, one assigned to two agents in turn, releases) and 16 calls
// (rings, rejections, answers, hang-ups, wrap-up, voicemail, calls nobody
// answered).
const realHistory = "testdata/history-email-voice.json"

func loadHistory(t *testing.T) ([]Op, Agents) {
	t.Helper()
	b, err := os.ReadFile(realHistory)
	if err != nil {
		t.Fatal(err)
	}
	var d Dump
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	var specs []AgentSpec
	var ops []Op
	for _, op := range d.Ops {
		if op.Kind != KindAgentPut {
			ops = append(ops, op)
			continue
		}
		var a AgentSpec
		if _, err := fmt.Sscanf(op.Arg, "%s chat=%d messaging=%d email=%d voice=%d", &a.ID, &a.Chat, &a.Messaging, &a.Email, &a.Voice); err != nil {
			t.Fatalf("agent %q: %v", op.Arg, err)
		}
		specs = append(specs, a)
	}
	return ops, AgentsOf(specs)
}

func linearizable(t *testing.T, agents Agents, ops []Op) porcupine.CheckResult {
	t.Helper()
	res, _ := porcupine.CheckOperationsVerbose(Model(agents), Operations(ops), 10*time.Second)
	return res
}

// isolated reports whether ops[i] is alone in time on its conversation: no
// other operation on it overlaps it, none whose outcome is unknown came
// before it. Falsifying such an answer cannot be explained by another order
// of the operations.
func isolated(ops []Op, idx []int, i int) bool {
	op := ops[i]
	for _, j := range idx {
		o := ops[j]
		if j == i {
			continue
		}
		if o.Status == Ambiguous && o.Call < op.Return {
			return false
		}
		if o.Call < op.Return && op.Call < o.Return {
			return false
		}
	}
	return true
}

// TestModelCatchesMutationsOfARealHistory checks that the model accepts a
// real history of emails and calls, and rejects it once one answer that no
// other order of operations could explain is falsified: a holder swapped
// for another agent of the channel, a state moved where no timer can take
// it (an email read as offered, a call read as answered without an
// accept, an answered email or call read as ended, a call in wrap-up read
// back in progress, an ended one read back assigned), an email's ticket
// read open while it waits on the end user or the other way round.
func TestModelCatchesMutationsOfARealHistory(t *testing.T) {
	ops, agents := loadHistory(t)
	if res := linearizable(t, agents, ops); res != porcupine.Ok {
		t.Fatalf("the real history judged %s", res)
	}
	byConv := map[string][]int{}
	for i, op := range ops {
		byConv[op.Conv] = append(byConv[op.Conv], i)
	}
	otherAgent := func(op *Op) string {
		for _, a := range agents[op.Channel] {
			if a != op.Holder {
				return a
			}
		}
		return ""
	}
	holderOr := func(op *Op) string {
		if op.Holder != "" {
			return op.Holder
		}
		return agents[op.Channel][0]
	}
	mutations := []struct {
		kind string
		f    func(op *Op) bool // false: does not apply
	}{
		{"holder", func(op *Op) bool {
			// An offer may move to another agent by itself (timeout).
			if op.State != "assigned" && op.State != "wrap_up" || otherAgent(op) == "" {
				return false
			}
			op.Holder = otherAgent(op)
			return true
		}},
		{"state", func(op *Op) bool {
			switch {
			case op.State == "queued" && op.Channel == "email":
				op.State, op.Holder = "offered", holderOr(op)
			case op.State == "queued" && op.Channel == "voice":
				op.State, op.Holder = "assigned", holderOr(op)
			case op.State == "offered":
				op.State = "assigned"
			case op.State == "assigned":
				op.State = "ended"
			case op.State == "wrap_up":
				op.State = "assigned"
			case op.State == "ended":
				op.State, op.Holder = "assigned", holderOr(op)
			default:
				return false
			}
			return true
		}},
		{"ticket", func(op *Op) bool {
			if op.Channel != "email" {
				return false // the model follows email tickets only
			}
			switch op.Ticket {
			case "pending", "on-hold", "solved":
				op.Ticket = "open"
			case "new", "open":
				op.Ticket = "pending"
			default:
				return false
			}
			return true
		}},
	}
	for _, m := range mutations {
		tried, caught := 0, 0
		for i, op := range ops {
			if op.Status != OK || op.State == "" || op.Kind == KindRelease || !isolated(ops, byConv[op.Conv], i) {
				continue
			}
			mut := op
			if !m.f(&mut) {
				continue
			}
			var conv []Op
			for _, j := range byConv[op.Conv] {
				if j == i {
					conv = append(conv, mut)
				} else {
					conv = append(conv, ops[j])
				}
			}
			tried++
			if linearizable(t, agents, conv) == porcupine.Illegal {
				caught++
			} else {
				t.Errorf("%s mutation not caught: op %d %s %s: %s(%s) %s → %s(%s) %s", m.kind, op.ID, op.Kind, op.Conv,
					op.State, op.Holder, op.Ticket, mut.State, mut.Holder, mut.Ticket)
			}
		}
		t.Logf("%s mutations: %d of %d caught", m.kind, caught, tried)
		if tried < 20 {
			t.Errorf("%s mutations: only %d apply", m.kind, tried)
		}
	}
}
