package cluster

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/omnirouter/omnirouter/internal/testutil"
	"github.com/omnirouter/omnirouter/routing"
)

func TestLogStoresSurviveRestart(t *testing.T) {
	for _, kind := range []string{LogStoreWAL, LogStoreBolt} {
		t.Run(kind, func(t *testing.T) {
			cfg := Config{NodeID: "solo", DataDir: filepath.Join(t.TempDir(), "solo"), RaftAddr: freeAddr(t),
				HTTPAddr: "127.0.0.1:1", Logger: testLogger(), LogStore: kind, SnapshotThreshold: 1 << 20}
			n, err := Open(cfg)
			if err != nil {
				t.Fatal(err)
			}
			testutil.Until(t, 10*time.Second, "ready", n.Ready)
			if got := n.stores.Kind; got != kind {
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
			testutil.Until(t, 10*time.Second, "ready", n.Ready)
			if got := n.stores.Kind; got != kind {
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

// TestWALTailTruncateThenRestart: raft deletes a follower's conflicting
// log suffix (DeleteRange up to the last index) when a new leader's log
// disagrees; after a restart every remaining entry must still be readable.
