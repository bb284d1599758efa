package sim

import (
	"fmt"
	"runtime"
	"sync"
)

// Options are how a scenario is run.
type Options struct {
	// Replications are independent runs of the scenario (1..MaxReplications);
	// the confidence intervals are over them.
	Replications int
	// Seed chooses the random draws: the same seed gives the same report.
	Seed uint64
	// Workers run replications in parallel (0: one per CPU). The report
	// does not depend on it.
	Workers int
	// StaffFor, when set, also finds the fewest agents per interval and
	// channel that meet it (Report.Staffing).
	StaffFor *Target
	// Progress, when set, is called as work completes (from one goroutine
	// at a time).
	Progress func(Progress)

	// staffArrivals overrides staffArrivals (tests).
	staffArrivals int
}

// Progress is how far a run is.
type Progress struct {
	Stage       string // "replications" or "staffing"
	Done, Total int
}

// Run simulates the scenario and reports.
func Run(sc *Scenario, opt Options) (*Report, error) {
	if opt.Replications < 1 || opt.Replications > MaxReplications {
		return nil, fmt.Errorf("replications must be 1..%d, got %d", MaxReplications, opt.Replications)
	}
	workers := opt.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	agg := newAggregate(sc)
	err := replicate(sc, opt.Seed, 0, opt.Replications, workers, func(rep *replication) {
		agg.add(rep.cells)
		if opt.Progress != nil {
			opt.Progress(Progress{Stage: "replications", Done: agg.n, Total: opt.Replications})
		}
	})
	if err != nil {
		return nil, err
	}
	report := agg.report(opt.Seed)
	if opt.StaffFor != nil {
		if err := staff(sc, opt, workers, report); err != nil {
			return nil, err
		}
	}
	return report, nil
}

// replicate runs n replications of sc, workers at a time, and hands each
// finished one to done in replication order.
func replicate(sc *Scenario, seed, key uint64, n, workers int, done func(*replication)) error {
	batch := make([]*replication, 0, workers)
	errs := make([]error, workers)
	for first := 0; first < n; first += workers {
		batch = batch[:0]
		for i := first; i < min(n, first+workers); i++ {
			batch = append(batch, newReplication(sc, seed, key, i))
		}
		var wg sync.WaitGroup
		for i, r := range batch {
			wg.Go(func() { errs[i] = r.run() })
		}
		wg.Wait()
		for i, r := range batch {
			if errs[i] != nil {
				return errs[i]
			}
			done(r)
		}
	}
	return nil
}
