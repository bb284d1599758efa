package main

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
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
		return 0, fmt.Errorf("%q is not a size: want auto, off, or a positive number of bytes with an optional unit (B, KiB, MiB, GiB, TiB), e.g. 4GiB", s)
	}
	return n << shift, nil
}

// availableMemory is the memory the node may use: its cgroup's limit
// (v2, else v1) when one is set and lower than the machine's memory, else
// the machine's. read reads a file (os.ReadFile; tests give their own).
func availableMemory(read func(string) ([]byte, error)) (bytes int64, source string, err error) {
	total, err := memTotal(read)
	if err != nil {
		return 0, "", err
	}
	if limit, where, ok := cgroupMemoryLimit(read); ok && limit < total {
		return limit, where, nil
	}
	return total, "/proc/meminfo MemTotal", nil
}

func memTotal(read func(string) ([]byte, error)) (int64, error) {
	b, err := read("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, "MemTotal:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 2 && f[1] == "kB" {
			if kb, err := strconv.ParseInt(f[0], 10, 64); err == nil && kb > 0 {
				return kb << 10, nil
			}
		}
		return 0, fmt.Errorf("/proc/meminfo: cannot read %q", strings.TrimSpace(line))
	}
	return 0, errors.New("/proc/meminfo has no MemTotal")
}

// cgroupMemoryLimit finds the memory limit of the process's cgroup: the
// lowest limit set on the cgroup /proc/self/cgroup names or on one of its
// ancestors, under v2 (memory.max below /sys/fs/cgroup) or v1
// (memory.limit_in_bytes below the memory controller's mount). Inside a
// container's cgroup namespace the path is /, the container's own.
func cgroupMemoryLimit(read func(string) ([]byte, error)) (int64, string, bool) {
	b, err := read("/proc/self/cgroup")
	if err != nil {
		return 0, "", false
	}
	best, where := int64(math.MaxInt64), ""
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		// hierarchy-id:controllers:path; v2's is 0::path.
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 {
			continue
		}
		var root, file string
		switch {
		case f[0] == "0" && f[1] == "":
			root, file = "/sys/fs/cgroup", "memory.max"
		case slices.Contains(strings.Split(f[1], ","), "memory"):
			root, file = "/sys/fs/cgroup/memory", "memory.limit_in_bytes"
		default:
			continue
		}
		for dir := path.Clean("/" + f[2]); ; dir = path.Dir(dir) {
			name := path.Join(root, dir, file)
			if n, ok := readLimit(read, name); ok && n < best {
				best, where = n, name
			}
			if dir == "/" {
				break
			}
		}
	}
	return best, where, where != ""
}

// readLimit reads a cgroup limit file: a byte count, or "max" (no limit;
// v1 writes a number near 2^63 instead, which availableMemory's comparison
// with the machine's memory discards).
func readLimit(read func(string) ([]byte, error), file string) (int64, bool) {
	b, err := read(file)
	if err != nil {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return n, err == nil && n > 0
}

// setMemoryLimit applies --memory-limit unless the operator set GOMEMLIMIT,
// which always wins. The limit is soft: as the heap nears it the collector
// runs sooner than --gc-percent would, so a node whose state has grown does
// not take five times that state in memory and get killed; the runtime caps
// the collector at about half the CPU rather than thrash.
func setMemoryLimit(f memoryLimitFlag, log *slog.Logger) {
	if v, ok := os.LookupEnv("GOMEMLIMIT"); ok {
		log.Info("memory limit from GOMEMLIMIT", "GOMEMLIMIT", v)
		return
	}
	switch {
	case f.auto:
		avail, source, err := availableMemory(os.ReadFile)
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
