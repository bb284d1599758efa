package sim

import "testing"

// BenchmarkFloorDay simulates one replication of
// examples/simulate/floor.json, a day of a 200-agent chat floor at 1,000
// conversations an hour (about 24,000 conversations), on one core; a run
// of --replications N takes N times this, divided by the cores.
func BenchmarkFloorDay(b *testing.B) {
	sc, err := Load("../examples/simulate/floor.json")
	if err != nil {
		b.Fatal(err)
	}
	var conversations int64
	for b.Loop() {
		r := newReplication(sc, 1, 0, 0)
		if err := r.run(); err != nil {
			b.Fatal(err)
		}
		conversations = int64(r.nextID)
	}
	b.ReportMetric(float64(conversations), "conversations/op")
	b.ReportMetric(float64(conversations)*float64(b.N)/b.Elapsed().Seconds(), "conversations/s")
}
