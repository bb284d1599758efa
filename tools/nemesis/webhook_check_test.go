package nemesis

import (
	"strings"
	"testing"
)

// TestCheckWebhookDeliveries: the checker finds each kind of violation.
func TestCheckWebhookDeliveries(t *testing.T) {
	leaders := map[uint64]string{2: "n1", 3: "n2"}
	d := func(id uint64, node string, term uint64, ok bool) Delivery {
		return Delivery{EventID: id, Node: node, Term: term, OK: ok, Verified: true}
	}
	// Event 5 is refused, 8 (pipelined behind it) taken, 5 taken on retry
	// and again from the next leader; a request of term 2 arrives late.
	good := []Delivery{d(3, "n1", 2, true), d(5, "n1", 2, false), d(8, "n1", 2, true), d(5, "n1", 2, true), d(5, "n2", 3, true), d(8, "n1", 2, true), d(8, "n2", 3, true)}
	want := []uint64{3, 5, 8}
	if bad, rep := CheckWebhookDeliveries(good, want, leaders, 2); len(bad) != 0 || rep.Duplicates != 3 || rep.Failed != 1 {
		t.Fatalf("a good run: %v %+v", bad, rep)
	}
	for name, c := range map[string]struct {
		got  []Delivery
		want string
	}{
		"missing":        {good[:2], "never delivered"},
		"out of order":   {[]Delivery{d(3, "n1", 2, true), d(8, "n1", 2, true), d(5, "n1", 2, true)}, "reached the receiver before event 5"},
		"beyond window":  {[]Delivery{d(3, "n1", 2, false), d(5, "n1", 2, true), d(8, "n1", 2, true), d(3, "n1", 2, true)}, "2 earlier events undelivered"},
		"bad signature":  {append([]Delivery{{EventID: 3, Node: "n1", Term: 2, OK: true}}, good[1:]...), "does not verify"},
		"two nodes":      {[]Delivery{d(3, "n1", 2, true), d(5, "n2", 2, true), d(8, "n1", 2, true)}, "deliveries from n1 and n2"},
		"not the leader": {[]Delivery{d(3, "n1", 2, true), d(5, "n3", 3, true), d(8, "n2", 3, true)}, "led by n2"},
		"unwanted":       {append(good, d(9, "n2", 3, true)), "not wanted"},
	} {
		bad, _ := CheckWebhookDeliveries(c.got, want, leaders, 2)
		if !strings.Contains(strings.Join(bad, "\n"), c.want) {
			t.Errorf("%s: violations %q, want one saying %q", name, bad, c.want)
		}
	}
}
