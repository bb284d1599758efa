package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/omnirouter/omnirouter/sim"
)

const exampleDay = "../../examples/simulate/day.json"

// TestSimulate: omnirouter simulate writes the JSON report to standard
// output, or with --out the report, the CSV and the charts into a
// directory with a summary on standard output; flags go before or after
// the scenario; the same seed gives the same report.
func TestSimulate(t *testing.T) {
	code, out1, errs := runOut(t, "simulate", exampleDay, "--replications", "2", "--seed", "7", "--quiet")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var rep sim.Report
	if err := json.Unmarshal([]byte(out1), &rep); err != nil || rep.Seed != 7 || rep.Replications != 2 || len(rep.Intervals) != 60 {
		t.Fatalf("report: %v; seed %d, replications %d, %d rows", err, rep.Seed, rep.Replications, len(rep.Intervals))
	}
	if errs != "" {
		t.Errorf("--quiet printed %q", errs)
	}
	code, out2, _ := runOut(t, "simulate", "--seed=7", "--quiet", "--replications=2", exampleDay)
	if code != 0 || out1 != out2 {
		t.Errorf("the same seed with the flags first: exit %d, same report %v", code, out1 == out2)
	}

	dir := filepath.Join(t.TempDir(), "out")
	code, out, errs := runOut(t, "simulate", exampleDay, "--replications", "2", "--out", dir, "--quiet")
	if code != 0 {
		t.Fatalf("--out: exit %d: %s", code, errs)
	}
	for _, want := range []string{"2 replications (seed 1)", "service level (within 30s)", "abandonment", "occupancy", "wrote " + dir} {
		if !strings.Contains(out, want) {
			t.Errorf("summary has no %q:\n%s", want, out)
		}
	}
	for _, name := range []string{"report.json", "intervals.csv", "service_level.svg", "staffing.svg"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || len(b) == 0 {
			t.Errorf("%s: %v", name, err)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 4 {
		t.Errorf("%d files in the output directory, want 4", len(entries))
	}
}

// TestSimulateErrors: a command line error is exit 2 with a pointer to
// --help; a wrong scenario is exit 1 with what is wrong; nothing is
// written.
func TestSimulateErrors(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte(`{"start": "2027-01-04T08:00:00Z", "interval": "30m", "intervals": 0}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"simulate"}, 2, "usage: omnirouter simulate <scenario.json>"},
		{[]string{"simulate", exampleDay, exampleDay}, 2, "usage: omnirouter simulate"},
		{[]string{"simulate", exampleDay, "--replications", "0"}, 2, "--replications must be 1..1000"},
		{[]string{"simulate", exampleDay, "--staff-for", "80"}, 2, "--staff-for: a target is percent/threshold"},
		{[]string{"simulate", exampleDay, "--colour"}, 2, "omnirouter simulate --help lists the flags"},
		{[]string{"simulate", filepath.Join(t.TempDir(), "missing.json")}, 1, "no such file"},
		{[]string{"simulate", bad}, 1, "intervals must be 1..2880"},
	} {
		code, out, errs := runOut(t, tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.want) || out != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want %d and %q", tc.args, code, out, errs, tc.code, tc.want)
		}
	}
}

// TestProgressPrinter: progress lines name the stage and the count.
func TestProgressPrinter(t *testing.T) {
	var b bytes.Buffer
	p := progressPrinter(&b, 0)
	p(sim.Progress{Stage: "replications", Done: 3, Total: 10})
	p(sim.Progress{Stage: "staffing", Done: 10, Total: 10})
	if got := b.String(); !strings.Contains(got, "simulate: replications 3/10") || !strings.Contains(got, "simulate: staffing 10/10") {
		t.Errorf("progress: %q", got)
	}
}
