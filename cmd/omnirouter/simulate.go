package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/omnirouter/omnirouter/sim"
)

// simulateCommand is `omnirouter simulate scenario.json`: a scenario
// played through the routing state machine, offline (package sim).
func simulateCommand(args []string, e *env) error {
	fs := flag.NewFlagSet("simulate", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	replications := fs.Int("replications", 10, fmt.Sprintf("independent runs of the scenario, 1..%d; the confidence intervals are over them", sim.MaxReplications))
	seed := fs.Uint64("seed", 1, "seed of the random draws: the same seed, scenario and replications give the same report, byte for byte")
	out := fs.String("out", "", "write report.json, intervals.csv, service_level.svg and staffing.svg to this directory (created if need be); without it the JSON report goes to standard output")
	staffFor := fs.String("staff-for", "", "also find the fewest agents per interval and channel that meet this target, percent/threshold (e.g. 80/20s: 80% answered within 20 seconds)")
	workers := fs.Int("workers", 0, "replications run in parallel (0: one per CPU); the report does not depend on it")
	quiet := fs.Bool("quiet", false, "no progress lines on standard error")
	fs.Usage = func() {}
	usage := func(w io.Writer) {
		fmt.Fprint(w, `Usage: omnirouter simulate <scenario.json> [flags]

Plays a scenario (arrivals per channel and interval, or a recorded arrival
file; handle-time and patience distributions; agents with shifts,
capacities, skills and groups; a routing policy) through omnirouter's
routing state machine, offline, and reports service level, average speed
of answer, abandonment, occupancy and queue length per interval and
overall, with 95% confidence intervals over the replications.
docs/insight.md describes the scenario and the report.

Flags (anywhere on the line):
`)
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(e.stderr)
	}
	pos, err := parseInterleaved(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		usage(e.stdout)
		return errHelp
	}
	if err != nil {
		fmt.Fprintln(e.stderr, "omnirouter simulate --help lists the flags")
		return errUsage
	}
	if len(pos) != 1 {
		fmt.Fprintln(e.stderr, "usage: omnirouter simulate <scenario.json> [flags] (omnirouter simulate --help)")
		return errUsage
	}
	opt := sim.Options{Replications: *replications, Seed: *seed, Workers: *workers}
	if *staffFor != "" {
		target, err := sim.ParseTarget(*staffFor)
		if err != nil {
			fmt.Fprintf(e.stderr, "omnirouter simulate: --staff-for: %v\n", err)
			return errUsage
		}
		opt.StaffFor = &target
	}
	if opt.Replications < 1 || opt.Replications > sim.MaxReplications {
		fmt.Fprintf(e.stderr, "omnirouter simulate: --replications must be 1..%d, got %d\n", sim.MaxReplications, opt.Replications)
		return errUsage
	}
	sc, err := sim.Load(pos[0])
	if err != nil {
		return err
	}
	if !*quiet {
		opt.Progress = progressPrinter(e.stderr, time.Second)
	}
	rep, err := sim.Run(sc, opt)
	if err != nil {
		return err
	}
	if *out == "" {
		return rep.WriteJSON(e.stdout)
	}
	if err := writeSimulation(*out, rep); err != nil {
		return err
	}
	return summarize(e.stdout, *out, rep)
}

// progressPrinter prints a line on w as work completes, at most one per
// every, and none for a run that is over within the first every.
func progressPrinter(w io.Writer, every time.Duration) func(sim.Progress) {
	start := time.Now()
	var last time.Time
	return func(p sim.Progress) {
		now := time.Now()
		if now.Sub(start) < every || now.Sub(last) < every && p.Done < p.Total {
			return
		}
		last = now
		fmt.Fprintf(w, "simulate: %s %d/%d (%s)\n", p.Stage, p.Done, p.Total, now.Sub(start).Round(100*time.Millisecond))
	}
}

// writeSimulation writes the report's files into dir.
func writeSimulation(dir string, rep *sim.Report) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, f := range []struct {
		name  string
		write func(io.Writer) error
	}{
		{"report.json", rep.WriteJSON},
		{"intervals.csv", rep.WriteCSV},
		{"service_level.svg", rep.WriteServiceLevelSVG},
		{"staffing.svg", rep.WriteStaffingSVG},
	} {
		var b bytes.Buffer
		if err := f.write(&b); err != nil {
			return err
		}
		path := filepath.Join(dir, f.name)
		if err := os.WriteFile(path+".tmp", b.Bytes(), 0o644); err != nil {
			return err
		}
		if err := os.Rename(path+".tmp", path); err != nil {
			return err
		}
	}
	return nil
}

// summarize prints the overall figures and where the files are.
func summarize(w io.Writer, dir string, rep *sim.Report) error {
	o := rep.Overall
	fmt.Fprintf(w, "%d replications (seed %d), %s per interval from %s\n", rep.Replications, rep.Seed, rep.Interval, rep.Start)
	fmt.Fprintf(w, "offered %s, answered %s, abandoned %s per replication\n", num(o.Offered, 1), num(o.Answered, 1), num(o.Abandoned, 1))
	fmt.Fprintf(w, "service level (within %ss)  %s %s\n", num(rep.AnsweredWithinSeconds, 0), pct(o.ServiceLevel), pctCI(o.CI95.ServiceLevel))
	fmt.Fprintf(w, "average speed of answer    %ss %s\n", num(o.ASASeconds, 1), secCI(o.CI95.ASASeconds))
	fmt.Fprintf(w, "abandonment                %s %s\n", pct(o.AbandonRate), pctCI(o.CI95.AbandonRate))
	fmt.Fprintf(w, "occupancy                  %s %s\n", pct(o.Occupancy), pctCI(o.CI95.Occupancy))
	if rep.Staffing != nil {
		peak := map[string]int{}
		var order []string
		for _, s := range rep.Staffing {
			if _, ok := peak[s.Channel]; !ok {
				order = append(order, s.Channel)
			}
			peak[s.Channel] = max(peak[s.Channel], s.Agents)
		}
		for _, ch := range order {
			fmt.Fprintf(w, "staffing %s: at most %d agents in an interval (intervals.csv, agents_needed)\n", ch, peak[ch])
		}
	}
	_, err := fmt.Fprintf(w, "wrote %s\n", filepath.Join(dir, "{report.json,intervals.csv,service_level.svg,staffing.svg}"))
	return err
}

func num(n sim.Num, decimals int) string {
	b, _ := n.MarshalJSON()
	if string(b) == "null" {
		return "-"
	}
	return fmt.Sprintf("%.*f", decimals, float64(n))
}

func pct(n sim.Num) string {
	if b, _ := n.MarshalJSON(); string(b) == "null" {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", float64(n)*100)
}

func pctCI(b *sim.Bounds) string {
	if b == nil {
		return ""
	}
	return fmt.Sprintf("(95%% CI %.1f%%–%.1f%%)", float64(b[0])*100, float64(b[1])*100)
}

func secCI(b *sim.Bounds) string {
	if b == nil {
		return ""
	}
	return fmt.Sprintf("(95%% CI %.1fs–%.1fs)", float64(b[0]), float64(b[1]))
}
