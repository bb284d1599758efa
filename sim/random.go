package sim

import (
	"math"
	"math/rand/v2"
)

// Random streams. Every replication has its own streams, one per purpose,
// each a PCG generator seeded from (seed, replication, purpose) through
// splitmix64, so the draws of one purpose never depend on how many draws
// another made: with more agents, the same customers arrive at the same
// times with the same patience and handle times.

// Stream purposes: per channel, arrival times and the customers' own draws
// (handle time, patience, requirement); acceptance delays.
const (
	purposeArrivals = 1 + iota*8 // + channel
	purposeCustomers
	purposeAccept
	purposeRecorded
)

// splitmix64 is one step of the splitmix64 generator (Steele, Lea and
// Flood), a good mixer of nearby seeds.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// stream returns the generator of one purpose of one replication. key
// separates independent runs under one seed (staffing searches use one key
// per channel and rate).
func stream(seed, key uint64, replication int, purpose int) *rand.Rand {
	a := splitmix64(seed ^ splitmix64(key))
	b := splitmix64(a ^ splitmix64(uint64(replication)<<8|uint64(purpose)))
	return rand.New(rand.NewPCG(a, b))
}

// sample draws a duration in milliseconds.
func (d *Dist) sample(r *rand.Rand) int64 {
	var v float64
	switch d.Kind {
	case Exponential:
		v = r.ExpFloat64() * float64(d.Mean.Milliseconds())
	case Lognormal:
		v = math.Exp(d.mu + d.sigma*r.NormFloat64())
	default:
		return d.Mean.Milliseconds()
	}
	if v > float64(maxDistMean.Milliseconds())*100 {
		v = float64(maxDistMean.Milliseconds()) * 100 // a bound on the tail, far beyond any horizon
	}
	return int64(math.Round(v))
}

// meanMs is the distribution's mean in milliseconds.
func (d *Dist) meanMs() float64 { return float64(d.Mean.Milliseconds()) }
