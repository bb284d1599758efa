package main

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/KimMachineGun/automemlimit/memlimit"
)

// autoMemoryShare is the part of the memory available to the node (its
// cgroup's limit, else the machine's) that --memory-limit auto gives the Go
// heap; the rest is for goroutine stacks, the runtime and the kernel's
// page cache of the raft log.
const autoMemoryShare = 0.8

// memoryLimitFlag is --memory-limit: "auto", "off", or a size.
type memoryLimitFlag struct {
	auto  bool
	bytes int64 // when not auto; 0 means off
}

func (f *memoryLimitFlag) String() string {
	switch {
	case f.auto:
		return "auto"
	case f.bytes == 0:
		return "off"
	}
	return strconv.FormatInt(f.bytes, 10)
}

func (f *memoryLimitFlag) Set(s string) error {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "auto":
		*f = memoryLimitFlag{auto: true}
		return nil
	case "off", "0":
		*f = memoryLimitFlag{}
		return nil
	}
	n, err := parseSize(s)
	if err != nil {
		return err
	}
	*f = memoryLimitFlag{bytes: n}
	return nil
}

// sizeFlag is a byte count flag written with parseSize's units.
type sizeFlag int64

func (f *sizeFlag) String() string { return strconv.FormatInt(int64(*f), 10) }

func (f *sizeFlag) Set(s string) error {
	n, err := parseSize(s)
	if err != nil {
		return err
	}
	*f = sizeFlag(n)
	return nil
}

var sizeUnits = []struct {
	suffix string
	shift  uint
}{{"kib", 10}, {"mib", 20}, {"gib", 30}, {"tib", 40}, {"k", 10}, {"m", 20}, {"g", 30}, {"t", 40}, {"b", 0}}

// parseSize reads a byte count: digits with an optional binary unit (B, K or
// KiB, M or MiB, G or GiB, T or TiB; any case).
func parseSize(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	var shift uint
	for _, u := range sizeUnits {
		if strings.HasSuffix(t, u.suffix) {
			t, shift = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.shift
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n <= 0 || n > math.MaxInt64>>shift {
		return 0, fmt.Errorf("%q is not a size: want a positive number of bytes with an optional unit (B, KiB, MiB, GiB, TiB), e.g. 4GiB", s)
	}
	return n << shift, nil
}

// availableMemory is the memory the node may use: its cgroup's limit when
// one is set and lower than the machine's memory, else the machine's.
// Production passes memlimit.FromCgroup (v1 or v2, found through
// /proc/self/mountinfo, the lowest limit on the cgroup's path) and
// memlimit.FromSystem. The comparison is ours: the library's ApplyFallback
// asks the machine only when the cgroup has no limit, and a limit above the
// machine's memory (a container allowed more than its node has) would set
// a soft limit the heap can never reach. A cgroup limit that cannot be read
// is logged and the machine's memory used.
func availableMemory(cgroup, machine memlimit.Provider, log *slog.Logger) (bytes int64, source string, err error) {
	limit, cerr := cgroup()
	if cerr != nil && !errors.Is(cerr, memlimit.ErrNoLimit) && !errors.Is(cerr, memlimit.ErrNoCgroup) &&
		!errors.Is(cerr, memlimit.ErrCgroupsNotSupported) {
		log.Warn("cannot read the cgroup's memory limit", "err", cerr)
	}
	total, merr := machine()
	switch {
	case merr == nil && (cerr != nil || limit >= total):
		return clampInt64(total), "machine", nil
	case cerr == nil:
		return clampInt64(limit), "cgroup", nil
	}
	return 0, "", fmt.Errorf("the machine's memory: %w", merr)
}

func clampInt64(n uint64) int64 {
	return int64(min(n, math.MaxInt64))
}

// setMemoryLimit applies --memory-limit unless the operator set GOMEMLIMIT,
// which always wins (an empty GOMEMLIMIT is unset, as the runtime reads
// it). The limit is soft: as the heap nears it the collector runs sooner
// than --gc-percent would, so a node whose state has grown does not take
// five times that state in memory and get killed; the runtime caps the
// collector at about half the CPU rather than thrash. The library's
// memlimit.Set is not used: it also obeys AUTOMEMLIMIT, a third knob beside
// the flag and GOMEMLIMIT that could change the share or turn auto off
// unseen, and it logs the limit without saying where it came from.
func setMemoryLimit(f memoryLimitFlag, log *slog.Logger) {
	if v := os.Getenv("GOMEMLIMIT"); v != "" {
		log.Info("memory limit from GOMEMLIMIT", "GOMEMLIMIT", v)
		return
	}
	switch {
	case f.auto:
		avail, source, err := availableMemory(memlimit.FromCgroup, memlimit.FromSystem, log)
		if err != nil {
			log.Warn("no memory limit: cannot tell the memory available", "err", err)
			return
		}
		limit := int64(float64(avail) * autoMemoryShare)
		debug.SetMemoryLimit(limit)
		log.Info("memory limit", "bytes", limit, "of", avail, "from", source)
	case f.bytes > 0:
		debug.SetMemoryLimit(f.bytes)
		log.Info("memory limit", "bytes", f.bytes)
	default:
		debug.SetMemoryLimit(math.MaxInt64)
	}
}
