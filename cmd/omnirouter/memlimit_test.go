package main

import (
	"io"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"runtime/debug"
	"strings"
	"testing"
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

// files is a read function over a fixed set of files.
func files(m map[string]string) func(string) ([]byte, error) {
	return func(name string) ([]byte, error) {
		if s, ok := m[name]; ok {
			return []byte(s), nil
		}
		return nil, fs.ErrNotExist
	}
}

const meminfo16G = "MemTotal:       16777216 kB\nMemFree:         1000 kB\n"

func TestAvailableMemory(t *testing.T) {
	for _, tc := range []struct {
		name   string
		files  map[string]string
		want   int64
		source string
	}{{
		name:   "no cgroup limit",
		files:  map[string]string{"/proc/meminfo": meminfo16G, "/proc/self/cgroup": "0::/\n", "/sys/fs/cgroup/memory.max": "max\n"},
		want:   16 << 30,
		source: "/proc/meminfo MemTotal",
	}, {
		name:   "v2 container (namespace root)",
		files:  map[string]string{"/proc/meminfo": meminfo16G, "/proc/self/cgroup": "0::/\n", "/sys/fs/cgroup/memory.max": "2147483648\n"},
		want:   2 << 30,
		source: "/sys/fs/cgroup/memory.max",
	}, {
		name: "v2 service: the lowest limit on its path",
		files: map[string]string{"/proc/meminfo": meminfo16G, "/proc/self/cgroup": "0::/system.slice/omnirouter.service\n",
			"/sys/fs/cgroup/system.slice/memory.max":                    "4294967296\n",
			"/sys/fs/cgroup/system.slice/omnirouter.service/memory.max": "max\n"},
		want:   4 << 30,
		source: "/sys/fs/cgroup/system.slice/memory.max",
	}, {
		name: "v1 hybrid, as on the CI machine",
		files: map[string]string{"/proc/meminfo": meminfo16G,
			"/proc/self/cgroup":                                          "9:name=systemd:/\n4:memory:/process_api/e7\n1:cpu:/\n0::/\n",
			"/sys/fs/cgroup/memory/memory.limit_in_bytes":                "9223372036854771712\n",
			"/sys/fs/cgroup/memory/process_api/e7/memory.limit_in_bytes": "1073741824\n"},
		want:   1 << 30,
		source: "/sys/fs/cgroup/memory/process_api/e7/memory.limit_in_bytes",
	}, {
		name: "v1 limit above the machine's memory",
		files: map[string]string{"/proc/meminfo": meminfo16G, "/proc/self/cgroup": "4:cpu,memory:/\n",
			"/sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n"},
		want:   16 << 30,
		source: "/proc/meminfo MemTotal",
	}, {
		name:   "no /proc/self/cgroup",
		files:  map[string]string{"/proc/meminfo": meminfo16G},
		want:   16 << 30,
		source: "/proc/meminfo MemTotal",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got, source, err := availableMemory(files(tc.files))
			if err != nil || got != tc.want || source != tc.source {
				t.Fatalf("got %d from %q (%v), want %d from %q", got, source, err, tc.want, tc.source)
			}
		})
	}
	for _, bad := range []string{"", "MemFree: 1 kB\n", "MemTotal: lots\n"} {
		if _, _, err := availableMemory(files(map[string]string{"/proc/meminfo": bad})); err == nil {
			t.Errorf("meminfo %q: no error", bad)
		}
	}
}

// TestSetMemoryLimit: --memory-limit sets the runtime's soft limit unless
// GOMEMLIMIT is set, which always wins; auto takes a share of this
// machine's memory.
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
	avail, _, err := availableMemory(os.ReadFile)
	if err != nil {
		t.Skipf("this machine's memory: %v", err)
	}
	setMemoryLimit(memoryLimitFlag{auto: true}, log)
	if got, want := debug.SetMemoryLimit(-1), int64(float64(avail)*autoMemoryShare); got != want {
		t.Fatalf("auto: limit %d, want %d", got, want)
	}

	debug.SetMemoryLimit(math.MaxInt64)
	t.Setenv("GOMEMLIMIT", "1GiB")
	setMemoryLimit(memoryLimitFlag{bytes: 3 << 30}, log)
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Fatalf("with GOMEMLIMIT set: limit %d, want it left alone", got)
	}
}
