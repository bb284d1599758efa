package cluster

import (
	"fmt"
	"math"
	"os"
	"path/filepath"

	walfs "github.com/hashicorp/raft-wal/fs"
	"github.com/hashicorp/raft-wal/types"
)

// zeroedSegmentFS is the file system the raft WAL runs on: raft-wal's own,
// except that a new segment file is filled with zeros and synced when it is
// created, where raft-wal reserves it with fallocate.
//
// Why: an fallocated extent is "unwritten" until data lands in it, so every
// append converts a piece of it, and the fsync that makes the append
// durable also commits that metadata change to the file-system journal.
// Over written zeros an append changes no metadata, and its fsync only
// writes the data. Measured on the ext4 dev VM (3 KB appends, each
// fsynced): 185 µs and 98 µs of CPU per fsync over fallocated space, 117 µs
// and 63 µs over zeros; two of these fsyncs are in series on every commit.
// Filling a 64 MiB segment costs ~35 ms once per segment. Durability is
// unchanged: every append is still fsynced before raft acknowledges it.
type zeroedSegmentFS struct {
	*walfs.FS
}

var _ types.VFS = zeroedSegmentFS{}

func newZeroedSegmentFS() zeroedSegmentFS { return zeroedSegmentFS{FS: walfs.New()} }

// zeroChunk is what one write of the fill writes.
var zeroChunk = make([]byte, 1<<20)

// Create makes a new segment file of size bytes, all zeros, on disk. Like
// raft-wal's, it refuses a name that exists, and the directory entry is
// synced with the file's first Sync (before anything in it is acknowledged).
func (zeroedSegmentFS) Create(dir, name string, size uint64) (types.WritableFile, error) {
	if size > math.MaxInt32 {
		return nil, fmt.Errorf("maximum file size is %d bytes", math.MaxInt32)
	}
	path := filepath.Join(dir, name)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := zeroFill(f, int64(size)); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("cluster: fill wal segment %s: %w", name, err)
	}
	return &segmentFile{File: f, dir: dir}, nil
}

func zeroFill(f *os.File, size int64) error {
	for off := int64(0); off < size; off += int64(len(zeroChunk)) {
		n := min(int64(len(zeroChunk)), size-off)
		if _, err := f.WriteAt(zeroChunk[:n], off); err != nil {
			return err
		}
	}
	return f.Sync()
}

// OpenWriter opens an existing segment (the tail, after a restart).
func (zeroedSegmentFS) OpenWriter(dir, name string) (types.WritableFile, error) {
	f, err := os.OpenFile(filepath.Join(dir, name), os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	return &segmentFile{File: f, dirSynced: true}, nil
}

// segmentFile is a writable segment. Its first Sync after creation also
// syncs the directory, so that the file's name survives a crash.
type segmentFile struct {
	*os.File
	dir       string
	dirSynced bool // raft-wal never calls Sync concurrently
}

func (f *segmentFile) Sync() error {
	if err := f.File.Sync(); err != nil {
		return err
	}
	if f.dirSynced {
		return nil
	}
	d, err := os.Open(f.dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		f.dirSynced = true
	}
	return err
}
