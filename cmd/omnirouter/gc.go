package main

import (
	"log/slog"
	"os"
	"runtime/debug"
)

// defaultGCPercent lets the heap grow to five times its live size between
// collections. A node's live heap is mostly the replicated state (hundreds
// of thousands of small objects), which every collection rescans; at Go's
// default of 100 the collector took a fifth of a node's CPU under load.
// The heap may then take five times the live state: --memory-limit (see
// memlimit.go) makes the collector run sooner as the heap nears what the
// node may use, so the headroom is spent only where there is memory for it.
const defaultGCPercent = 400

// setGCPercent applies --gc-percent unless the operator set GOGC, which
// always wins. An empty GOGC is unset, as the runtime reads it.
func setGCPercent(percent int, log *slog.Logger) {
	if v := os.Getenv("GOGC"); v != "" {
		log.Info("GC target from GOGC", "GOGC", v)
		return
	}
	if percent > 0 {
		debug.SetGCPercent(percent)
	}
}
