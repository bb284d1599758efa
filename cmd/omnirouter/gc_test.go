package main

import (
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"testing"
)

// TestSetGCPercent: --gc-percent sets the GC target unless GOGC is set,
// which always wins.
func TestSetGCPercent(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	orig := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(orig) })
	if v, ok := os.LookupEnv("GOGC"); ok {
		t.Cleanup(func() { os.Setenv("GOGC", v) })
	}
	os.Unsetenv("GOGC")

	setGCPercent(250, log)
	if got := debug.SetGCPercent(100); got != 250 {
		t.Fatalf("without GOGC: GC percent %d, want 250", got)
	}

	t.Setenv("GOGC", "")
	setGCPercent(300, log)
	if got := debug.SetGCPercent(100); got != 300 {
		t.Fatalf("with GOGC empty (unset for the runtime): GC percent %d, want 300", got)
	}

	t.Setenv("GOGC", "150")
	setGCPercent(250, log)
	if got := debug.SetGCPercent(100); got != 100 {
		t.Fatalf("with GOGC set: GC percent %d, want it left alone (100)", got)
	}
}
