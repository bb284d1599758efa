package cluster

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/omnirouter/omnirouter/routing"
)

func TestChooseLogStore(t *testing.T) {
	mk := func(t *testing.T, files ...string) string {
		dir := t.TempDir()
		for _, f := range files {
			var err error
			if f == walDir {
				err = os.Mkdir(filepath.Join(dir, f), 0o700)
			} else {
				err = os.WriteFile(filepath.Join(dir, f), nil, 0o600)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	cases := []struct {
		name       string
		files      []string
		configured string
		want       string
		wantErr    error
	}{
		{"new dir defaults to wal", nil, "", LogStoreWAL, nil},
		{"new dir, bolt asked", nil, LogStoreBolt, LogStoreBolt, nil},
		{"new dir, wal asked", nil, LogStoreWAL, LogStoreWAL, nil},
		{"existing bolt kept", []string{boltFile}, "", LogStoreBolt, nil},
		{"existing wal kept", []string{walDir}, "", LogStoreWAL, nil},
		{"existing bolt, bolt asked", []string{boltFile}, LogStoreBolt, LogStoreBolt, nil},
		{"existing bolt, wal asked", []string{boltFile}, LogStoreWAL, "", ErrLogStoreMismatch},
		{"existing wal, bolt asked", []string{walDir}, LogStoreBolt, "", ErrLogStoreMismatch},
		{"both present", []string{boltFile, walDir}, "", "", ErrLogStoreMismatch},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := chooseLogStore(mk(t, tc.files...), tc.configured)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	if _, err := chooseLogStore(t.TempDir(), "rocks"); err == nil {
		t.Fatal("unknown kind accepted")
	}
}

// TestLogStoresSurviveRestart writes through each kind of log store, shuts
// the node down before any snapshot (so everything comes back from the
// log), reopens it and finds every write; reopening with the other kind
// asked for is refused and leaves the data alone.
func TestLogStoresSurviveRestart(t *testing.T) {
	routingReady(t)
	for _, kind := range []string{LogStoreWAL, LogStoreBolt} {
		t.Run(kind, func(t *testing.T) {
			cfg := Config{NodeID: "solo", DataDir: filepath.Join(t.TempDir(), "solo"), RaftAddr: freeAddr(t),
				HTTPAddr: "127.0.0.1:1", Logger: testLogger(), LogStore: kind, SnapshotThreshold: 1 << 20}
			n, err := Open(cfg)
			if err != nil {
				t.Fatal(err)
			}
			waitFor(t, 10*time.Second, "ready", n.Ready)
			if got := n.stores.kind; got != kind {
				t.Fatalf("store kind %q, want %q", got, kind)
			}
			second := cfg
			second.RaftAddr = freeAddr(t)
			if _, err := Open(second); !errors.Is(err, ErrDataDirInUse) {
				t.Fatalf("second node on the same data dir: err = %v, want ErrDataDirInUse", err)
			}
			ctx := context.Background()
			const writes = 50
			for i := range writes {
				if _, err := n.Propose(ctx, "", agentCmd(i)); err != nil {
					t.Fatal(err)
				}
			}
			if err := n.Shutdown(); err != nil {
				t.Fatal(err)
			}

			other := LogStoreBolt
			if kind == LogStoreBolt {
				other = LogStoreWAL
			}
			wrong := cfg
			wrong.LogStore = other
			if _, err := Open(wrong); !errors.Is(err, ErrLogStoreMismatch) {
				t.Fatalf("reopen asking for %s: err = %v, want ErrLogStoreMismatch", other, err)
			}

			again := cfg
			again.LogStore = "" // what the directory holds
			n, err = Open(again)
			if err != nil {
				t.Fatal(err)
			}
			defer n.Shutdown()
			waitFor(t, 10*time.Second, "ready", n.Ready)
			if got := n.stores.kind; got != kind {
				t.Fatalf("reopened store kind %q, want %q", got, kind)
			}
			var agents int
			if _, err := n.Read(ctx, Linearizable, func(m *routing.Machine) { agents = m.AgentCount() }); err != nil {
				t.Fatal(err)
			}
			if agents != writes {
				t.Fatalf("after restart: %d agents, want %d", agents, writes)
			}
		})
	}
}
