package sim

import "testing"

// floorDay is a day of a 200-agent chat floor at 1,000 conversations an
// hour: 48 half-hour intervals, agents taking two chats at once, handle
// times of 20 minutes on average (lognormal), customers who wait 3
// minutes on average before giving up: about 83% occupancy.
const floorDay = `{"start": "2027-01-04T00:00:00Z", "interval": "30m", "intervals": 48,
	"service_level": {"answered_within": "30s"},
	"channels": {"chat": {"arrivals_per_interval": [500],
		"handle_time": {"dist": "lognormal", "mean": "20m", "sd": "12m"},
		"patience": {"dist": "exponential", "mean": "3m"}}},
	"agents": [{"count": 200, "capacity": {"chat": 2}}]}`

// BenchmarkFloorDay simulates one replication of floorDay (about 24,000
// conversations) on one core; a run of --replications N takes N times
// this divided by the cores.
func BenchmarkFloorDay(b *testing.B) {
	sc, err := Parse([]byte(floorDay), ".")
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
