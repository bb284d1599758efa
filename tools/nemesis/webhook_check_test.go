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
	good := []Delivery{d(3, "n1", 2, true), d(5, "n1", 2, false), d(5, "n1", 2, true), d(5, "n2", 3, true), d(8, "n2", 3, true)}
	want := []uint64{3, 5, 8}
	if bad, rep := CheckWebhookDeliveries(good, want, leaders); len(bad) != 0 || rep.Duplicates != 1 || rep.Failed != 1 {
		t.Fatalf("a good run: %v %+v", bad, rep)
	}
	for name, c := range map[string]struct {
		got  []Delivery
		want string
	}{
		"missing":        {good[:4], "never delivered"},
		"out of order":   {[]Delivery{d(3, "n1", 2, true), d(8, "n1", 2, true), d(5, "n1", 2, true)}, "first sent before event 5"},
		"bad signature":  {append([]Delivery{{EventID: 3, Node: "n1", Term: 2, OK: true}}, good[1:]...), "does not verify"},
		"stale term":     {[]Delivery{d(3, "n1", 2, true), d(5, "n2", 3, true), d(8, "n1", 2, true)}, "after a delivery of term 3"},
		"not the leader": {[]Delivery{d(3, "n1", 2, true), d(5, "n3", 3, true), d(8, "n2", 3, true)}, "led by n2"},
		"unwanted":       {append(good, d(9, "n2", 3, true)), "not wanted"},
	} {
		bad, _ := CheckWebhookDeliveries(c.got, want, leaders)
		if !strings.Contains(strings.Join(bad, "\n"), c.want) {
			t.Errorf("%s: violations %q, want one saying %q", name, bad, c.want)
		}
	}
}
