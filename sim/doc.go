// Package sim owns omnirouter's discrete-event simulation of a support
// floor: a scenario (intervals with arrivals per channel, handle-time and
// patience distributions, agents with shifts, capacities, skills and
// groups, and a routing policy) is played through the real
// routing.Machine, the state machine production runs, with no raft and no
// HTTP in between. Every routing decision in a simulation is therefore the
// one production would make.
//
// The simulation owns what production leaves to people: when customers
// arrive (Poisson arrivals at each interval's rate, or a recorded arrival
// file), how long they wait before giving up (their patience), how long an
// agent takes (the handle time), when agents start and end their shifts,
// and how long they take to accept an offer. It reports, per interval and
// channel and overall, the service level, the average speed of answer,
// abandonment, occupancy and queue length, each with a 95% confidence
// interval over independent replications; and, asked for a target, the
// fewest agents per interval that meet it.
//
// A simulation is deterministic: the same scenario, seed and number of
// replications give a byte-identical report, whatever the number of
// workers that ran the replications. Each replication draws from its own
// random streams, one per purpose (arrivals and customer draws per
// channel, acceptance delays), so changing the staffing does not change
// who arrives when nor how patient they are (common random numbers).
package sim
