package storage

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	raftwal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
	"github.com/hashicorp/raft-wal/segment"

	"github.com/omnirouter/omnirouter/internal/testutil"
)

// TestSegmentFS: a new segment is all zeros on disk at its full size,
// whether filled on the spot (the first) or taken from the spare filled in
// the background (the next ones); an existing name is refused without
// using up the spare; a reopened tail is writable; Close waits for a fill;
// a spare left by an earlier process is removed.
func TestSegmentFS(t *testing.T) {
	dir := t.TempDir()
	spare := filepath.Join(dir, spareSegmentName)
	if err := os.WriteFile(spare, []byte("half-filled leftover"), 0o644); err != nil {
		t.Fatal(err)
	}
	v, err := newSegmentFS(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(spare); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("leftover spare not removed: %v", err)
	}
	const size = 3<<20 + 123 // not a multiple of the fill's chunk
	spareReady := func() {
		t.Helper()
		testutil.Until(t, 10*time.Second, "a spare segment", func() error {
			v.mu.Lock()
			defer v.mu.Unlock()
			if v.spareSize != size {
				return fmt.Errorf("spare of %d bytes", v.spareSize)
			}
			return nil
		})
	}
	checkZeros := func(name string, at int64, text string) {
		t.Helper()
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		want := make([]byte, size)
		copy(want[at:], text)
		if !bytes.Equal(got, want) {
			t.Fatalf("%s holds %d bytes, not the zeros and the write", name, len(got))
		}
	}
	for i, name := range []string{"a.wal", "b.wal", "c.wal"} {
		if i > 0 {
			spareReady()
		}
		f, err := v.Create(dir, name, size)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt([]byte("hello"), 10); err != nil {
			t.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		checkZeros(name, 10, "hello")
	}
	spareReady()
	if _, err := v.Create(dir, "a.wal", size); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("creating an existing segment: %v, want ErrExist", err)
	}
	checkZeros("a.wal", 10, "hello")
	spareReady() // still there
	w, err := v.OpenWriter(dir, "a.wal")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteAt([]byte("again"), 20); err != nil {
		t.Fatal(err)
	}
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if got, _ := os.ReadFile(filepath.Join(dir, "a.wal")); string(got[20:25]) != "again" {
		t.Fatal("write through a reopened segment lost")
	}
	// A different size: filled on the spot, and a fill of that size starts.
	if _, err := v.Create(dir, "d.wal", 1<<20); err != nil {
		t.Fatal(err)
	}
	v.Close()
	v.mu.Lock()
	filling := v.filling
	v.mu.Unlock()
	if filling != nil {
		t.Fatal("Close returned while a spare was being filled")
	}
	if _, err := v.Create(dir, "e.wal", 1<<20); err != nil {
		t.Fatal(err)
	}
	v.mu.Lock()
	filling = v.filling
	v.mu.Unlock()
	if filling != nil {
		t.Fatal("a closed file system started a fill")
	}
}

// BenchmarkWALAppend: one 3 KB entry per append, each fsynced, on segments
// raft-wal reserves with fallocate and on zero-filled ones (ours).
func BenchmarkWALAppend(b *testing.B) {
	for _, zeroed := range []bool{false, true} {
		name := "fallocated"
		if zeroed {
			name = "zeroed"
		}
		b.Run(name, func(b *testing.B) {
			dir := b.TempDir()
			meta := &metadb.BoltMetaDB{}
			defer meta.Close()
			vfs, err := newSegmentFS(dir)
			if err != nil {
				b.Fatal(err)
			}
			defer vfs.Close()
			filer := segment.NewFiler(dir, vfs)
			if !zeroed {
				filer = nil // raft-wal's default: fallocate
			}
			var w *raftwal.WAL
			if filer != nil {
				w, err = raftwal.Open(dir, raftwal.WithMetaStore(meta), raftwal.WithSegmentFiler(filer))
			} else {
				w, err = raftwal.Open(dir, raftwal.WithMetaStore(meta))
			}
			if err != nil {
				b.Fatal(err)
			}
			defer w.Close()
			data := make([]byte, 3000)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := w.StoreLogs([]*raft.Log{{Index: uint64(i + 1), Term: 1, Data: data}}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestSyncData: a segment's sync reaches the disk call and reports its
// failure (a closed file) rather than passing it off as durable.
func TestSyncData(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "seg"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("entry")); err != nil {
		t.Fatal(err)
	}
	if err := syncData(f); err != nil {
		t.Fatalf("sync of an open file: %v", err)
	}
	f.Close()
	if err := syncData(f); err == nil {
		t.Fatal("sync of a closed file reported success")
	}
}
