package buildinfo

import (
	"runtime/debug"
	"testing"
)

func TestRead(t *testing.T) {
	bi := func(main string, settings ...debug.BuildSetting) func() (*debug.BuildInfo, bool) {
		return func() (*debug.BuildInfo, bool) {
			return &debug.BuildInfo{GoVersion: "go1.99", Main: debug.Module{Version: main}, Settings: settings}, true
		}
	}
	rev := debug.BuildSetting{Key: "vcs.revision", Value: "abc123"}
	dirty := debug.BuildSetting{Key: "vcs.modified", Value: "true"}
	for _, tc := range []struct {
		name   string
		linked string
		read   func() (*debug.BuildInfo, bool)
		want   Info
		commit string
	}{
		{"link-time version wins", "v1.2.0", bi("v0.0.0-2026-abc", rev), Info{Version: "v1.2.0", Commit: "abc123", GoVersion: "go1.99"}, "abc123"},
		{"module version", "", bi("v1.3.0"), Info{Version: "v1.3.0", GoVersion: "go1.99"}, "unknown"},
		{"devel build of a dirty tree", "", bi("(devel)", rev, dirty), Info{Version: "devel", Commit: "abc123", Modified: true, GoVersion: "go1.99"}, "abc123-dirty"},
		{"no build info", "", func() (*debug.BuildInfo, bool) { return nil, false }, Info{Version: "devel"}, "unknown"},
	} {
		got := read(tc.linked, tc.read)
		if tc.want.GoVersion == "" {
			tc.want.GoVersion = got.GoVersion // runtime.Version()
		}
		if got != tc.want || got.CommitLabel() != tc.commit {
			t.Errorf("%s: %+v (%s), want %+v (%s)", tc.name, got, got.CommitLabel(), tc.want, tc.commit)
		}
	}
	if Get().Version == "" || Get().GoVersion == "" {
		t.Fatalf("Get: %+v", Get())
	}
}
