// Package buildinfo says which build of omnirouter is running: its
// version, the commit it was built from and the Go version, from the
// binary's own build information (runtime/debug.ReadBuildInfo).
package buildinfo

import (
	"runtime"
	"runtime/debug"
	"sync"
)

// version, when set at link time, names the release:
//
//	go build -ldflags "-X github.com/omnirouter/omnirouter/internal/buildinfo.version=v1.2.0" ./cmd/omnirouter
var version string

// Info describes the running build.
type Info struct {
	// Version is the link-time version when set, else the main module's
	// version as the go command stamped it (a tag, or a pseudo-version for
	// a build from a checkout), else "devel".
	Version string
	// Commit is the VCS revision the binary was built from ("" when
	// unknown, e.g. in tests); Modified reports uncommitted changes.
	Commit   string
	Modified bool
	// GoVersion is the Go toolchain that built it.
	GoVersion string
}

var (
	once sync.Once
	info Info
)

// Get returns the running build's information.
func Get() Info {
	once.Do(func() { info = read(version, debug.ReadBuildInfo) })
	return info
}

func read(linked string, readBuildInfo func() (*debug.BuildInfo, bool)) Info {
	i := Info{Version: linked, GoVersion: runtime.Version()}
	bi, ok := readBuildInfo()
	if ok {
		if bi.GoVersion != "" {
			i.GoVersion = bi.GoVersion
		}
		if i.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			i.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				i.Commit = s.Value
			case "vcs.modified":
				i.Modified = s.Value == "true"
			}
		}
	}
	if i.Version == "" {
		i.Version = "devel"
	}
	return i
}

// CommitLabel is the commit as shown to people: the revision, with
// "-dirty" when the tree had uncommitted changes, or "unknown".
func (i Info) CommitLabel() string {
	switch {
	case i.Commit == "":
		return "unknown"
	case i.Modified:
		return i.Commit + "-dirty"
	}
	return i.Commit
}
