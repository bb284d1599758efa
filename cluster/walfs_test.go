package cluster

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/raft"
	raftwal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
	"github.com/hashicorp/raft-wal/segment"
)

// TestZeroedSegmentFS: a new segment is all zeros on disk at its full size,
// an existing name is refused, and a reopened tail is writable.
func TestZeroedSegmentFS(t *testing.T) {
	dir := t.TempDir()
	vfs := newZeroedSegmentFS()
	const size = 3<<20 + 123 // not a multiple of the fill's chunk
	f, err := vfs.Create(dir, "a.wal", size)
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
	got, err := os.ReadFile(filepath.Join(dir, "a.wal"))
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, size)
	copy(want[10:], "hello")
	if !bytes.Equal(got, want) {
		t.Fatalf("segment holds %d bytes, not the zeros and the write", len(got))
	}
	if _, err := vfs.Create(dir, "a.wal", size); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("creating an existing segment: %v, want ErrExist", err)
	}
	w, err := vfs.OpenWriter(dir, "a.wal")
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
			filer := segment.NewFiler(dir, newZeroedSegmentFS())
			if !zeroed {
				filer = nil // raft-wal's default: fallocate
			}
			var w *raftwal.WAL
			var err error
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
