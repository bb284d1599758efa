package main

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/KimMachineGun/automemlimit/memlimit"
)

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"1": 1, "512B": 512, "64k": 64 << 10, "64KiB": 64 << 10, "3MiB": 3 << 20,
		"4GiB": 4 << 30, "4g": 4 << 30, " 2 GiB ": 2 << 30, "1TiB": 1 << 40,
	} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "GiB", "-1GiB", "0", "1.5GiB", "4GB", "4 gigs", "9999999TiB", "0x10"} {
		if got, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) = %d, want an error", in, got)
		}
	}
}

func TestMemoryLimitFlag(t *testing.T) {
	var f memoryLimitFlag
	for in, want := range map[string]memoryLimitFlag{
		"auto": {auto: true}, "AUTO": {auto: true}, "off": {}, "0": {}, "1GiB": {bytes: 1 << 30},
	} {
		if err := f.Set(in); err != nil || f != want {
			t.Errorf("Set(%q) = %+v, %v; want %+v", in, f, err, want)
		}
	}
	if err := f.Set("lots"); err == nil || !strings.Contains(err.Error(), "4GiB") {
		t.Errorf("Set(lots): %v, want an error that shows the form", err)
	}
	// Through the flag set, as the command line and OMNIROUTER_MEMORY_LIMIT reach it.
	var cfg serveConfig
	fset := serveFlags(&cfg, io.Discard)
	if cfg.MemoryLimit != (memoryLimitFlag{auto: true}) {
		t.Fatalf("default %+v, want auto", cfg.MemoryLimit)
	}
	if err := fset.Parse([]string{"--memory-limit", "512MiB"}); err != nil || cfg.MemoryLimit.bytes != 512<<20 {
		t.Fatalf("--memory-limit 512MiB: %+v, %v", cfg.MemoryLimit, err)
	}
	if err := serveFlags(&cfg, io.Discard).Parse([]string{"--memory-limit", "12 parsecs"}); err == nil {
		t.Fatal("--memory-limit 12 parsecs accepted")
	}
}

// failing is a provider that fails with err.
func failing(err error) memlimit.Provider {
	return func() (uint64, error) { return 0, err }
}

// TestAvailableMemory: the cgroup's limit when it is below the machine's
// memory, else the machine's; an unreadable cgroup limit is logged.
func TestAvailableMemory(t *testing.T) {
	const machine = 16 << 30
	errUnreadable := fmt.Errorf("open memory.max: %w", fs.ErrPermission)
	for _, tc := range []struct {
		name            string
		cgroup, machine memlimit.Provider
		want            int64
		source          string
		warn            bool
	}{
		{"cgroup limit", memlimit.Limit(2 << 30), memlimit.Limit(machine), 2 << 30, "cgroup", false},
		{"no cgroup limit", failing(memlimit.ErrNoLimit), memlimit.Limit(machine), machine, "machine", false},
		{"not in a cgroup", failing(memlimit.ErrNoCgroup), memlimit.Limit(machine), machine, "machine", false},
		{"no cgroups on this system", failing(memlimit.ErrCgroupsNotSupported), memlimit.Limit(machine), machine, "machine", false},
		{"cgroup limit above the machine's memory", memlimit.Limit(64 << 30), memlimit.Limit(machine), machine, "machine", false},
		{"cgroup limit unreadable", failing(errUnreadable), memlimit.Limit(machine), machine, "machine", true},
		{"machine's memory unknown", memlimit.Limit(2 << 30), failing(memlimit.ErrNoLimit), 2 << 30, "cgroup", false},
		{"cgroup limit beyond int64", memlimit.Limit(math.MaxUint64), failing(memlimit.ErrNoLimit), math.MaxInt64, "cgroup", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logged bytes.Buffer
			got, source, err := availableMemory(tc.cgroup, tc.machine, slog.New(slog.NewTextHandler(&logged, nil)))
			if err != nil || got != tc.want || source != tc.source {
				t.Fatalf("got %d from %q (%v), want %d from %q", got, source, err, tc.want, tc.source)
			}
			if warned := strings.Contains(logged.String(), "level=WARN"); warned != tc.warn {
				t.Fatalf("warned %v, want %v; log: %s", warned, tc.warn, logged.String())
			}
		})
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if got, source, err := availableMemory(failing(memlimit.ErrNoLimit), failing(memlimit.ErrNoLimit), log); err == nil {
		t.Fatalf("neither the cgroup nor the machine knows: %d from %q, want an error", got, source)
	}
}

// TestSetMemoryLimit: --memory-limit sets the runtime's soft limit unless
// GOMEMLIMIT is set, which always wins; auto takes a share of the memory
// available to this process (its cgroup's limit, else the machine's).
func TestSetMemoryLimit(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	orig := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(orig) })
	t.Setenv("GOMEMLIMIT", "")
	os.Unsetenv("GOMEMLIMIT") // t.Setenv above restores it

	setMemoryLimit(memoryLimitFlag{bytes: 3 << 30}, log)
	if got := debug.SetMemoryLimit(-1); got != 3<<30 {
		t.Fatalf("3GiB: limit %d", got)
	}
	setMemoryLimit(memoryLimitFlag{}, log)
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Fatalf("off: limit %d", got)
	}

	avail, _, err := availableMemory(memlimit.FromCgroup, memlimit.FromSystem, log)
	if err != nil {
		t.Skipf("this machine's memory: %v", err)
	}
	if avail <= 0 || avail == math.MaxInt64 {
		t.Fatalf("available memory %d", avail)
	}
	setMemoryLimit(memoryLimitFlag{auto: true}, log)
	if got, want := debug.SetMemoryLimit(-1), int64(float64(avail)*0.8); got != want {
		t.Fatalf("auto: limit %d, want 80%% of %d = %d", got, avail, want)
	}

	debug.SetMemoryLimit(math.MaxInt64)
	t.Setenv("GOMEMLIMIT", "1GiB")
	setMemoryLimit(memoryLimitFlag{bytes: 3 << 30}, log)
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Fatalf("with GOMEMLIMIT set: limit %d, want it left alone", got)
	}
	// The runtime reads an empty GOMEMLIMIT as unset; so does the flag.
	t.Setenv("GOMEMLIMIT", "")
	setMemoryLimit(memoryLimitFlag{bytes: 3 << 30}, log)
	if got := debug.SetMemoryLimit(-1); got != 3<<30 {
		t.Fatalf("with GOMEMLIMIT empty: limit %d, want the flag's 3GiB", got)
	}
}
