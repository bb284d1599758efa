// Package storage owns what a node keeps on its disk besides snapshots:
// the raft log and stable store (hashicorp/raft-wal on a file system of
// zero-filled segments, or raft-boltdb), the data directory's lock, the
// node's membership record, and the rule that decides when a node
// snapshots.
//
// Nothing here ever skips an fsync: an acknowledged write survives a
// crash.
package storage

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	raftwal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
	"github.com/hashicorp/raft-wal/segment"
	"go.etcd.io/bbolt"
)

// Log store kinds.
const (
	// WAL keeps the raft log in hashicorp/raft-wal segment files:
	// an append is one write and one fsync of a zero-filled segment, so a
	// commit costs one fsync on each node where bbolt pays two (data pages,
	// then the meta page). Term and vote live in a small bbolt file beside
	// it (written only on elections).
	WAL = "wal"
	// Bolt keeps log and stable state in one raft-boltdb/v2 file
	// (raft.db), every commit fsynced.
	Bolt = "bolt"
)

const (
	boltFile = "raft.db"
	walDir   = "wal"
)

// Sentinel errors.
var (
	// ErrDataDirInUse: another process (or another node in this one)
	// already runs on the data directory.
	ErrDataDirInUse = errors.New("data directory in use")
	// ErrLogStoreMismatch: the data directory already holds raft state in
	// another log store than the one asked for: a node never silently
	// starts with an empty log beside its real one.
	ErrLogStoreMismatch = errors.New("data directory holds another log store")
)

// Stores are the log and stable store raft runs on.
type Stores struct {
	Kind   string // WAL or Bolt
	Logs   raft.LogStore
	Stable raft.StableStore
	closer io.Closer
}

// Close closes the stores.
func (s *Stores) Close() error { return s.closer.Close() }

// chooseLogStore decides which store a data directory uses. Existing state
// wins over the configured kind only when the configuration did not ask
// for one explicitly; an explicit request that contradicts the directory
// is refused.
func chooseLogStore(dataDir, configured string) (string, error) {
	hasBolt := exists(filepath.Join(dataDir, boltFile))
	hasWAL := exists(filepath.Join(dataDir, walDir))
	switch {
	case hasBolt && hasWAL:
		return "", fmt.Errorf("%w: both %s and %s/ exist in %s", ErrLogStoreMismatch, boltFile, walDir, dataDir)
	case hasBolt && configured == WAL:
		return "", fmt.Errorf("%w: %s holds a bolt log (%s); start with --log-store bolt", ErrLogStoreMismatch, dataDir, boltFile)
	case hasWAL && configured == Bolt:
		return "", fmt.Errorf("%w: %s holds a wal log (%s/); start with --log-store wal", ErrLogStoreMismatch, dataDir, walDir)
	case hasBolt:
		return Bolt, nil
	case hasWAL:
		return WAL, nil
	case configured == "":
		return WAL, nil
	case configured == WAL || configured == Bolt:
		return configured, nil
	default:
		return "", fmt.Errorf("storage: unknown log store %q (want %q or %q)", configured, WAL, Bolt)
	}
}

// closers closes each in order and returns the first error.
type closers []io.Closer

func (cs closers) Close() error {
	var first error
	for _, c := range cs {
		if err := c.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return !errors.Is(err, fs.ErrNotExist)
}

// Open opens the data directory's log and stable store: the kind the
// directory already holds, else configured ("" means WAL). segmentSize
// overrides the WAL's segment size (0: raft-wal's 64 MiB). Neither kind
// ever skips an fsync.
func Open(dataDir, configured string, segmentSize int, log hclog.Logger) (*Stores, error) {
	kind, err := chooseLogStore(dataDir, configured)
	if err != nil {
		return nil, err
	}
	switch kind {
	case WAL:
		dir := filepath.Join(dataDir, walDir)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("storage: wal dir: %w", err)
		}
		// The WAL does not close a meta store it opened itself, so it gets
		// one it does not own and both are closed on shutdown.
		meta := &metadb.BoltMetaDB{}
		if segmentSize <= 0 {
			segmentSize = raftwal.DefaultSegmentSize
		}
		vfs, err := newSegmentFS(dir)
		if err != nil {
			return nil, err
		}
		w, err := raftwal.Open(dir, raftwal.WithLogger(log.Named("wal")), raftwal.WithMetaStore(meta),
			raftwal.WithSegmentSize(segmentSize), raftwal.WithSegmentFiler(segment.NewFiler(dir, vfs)))
		if err != nil {
			vfs.Close()
			meta.Close()
			return nil, fmt.Errorf("storage: open wal: %w", err)
		}
		// The file system closes after the WAL: it waits for a spare
		// segment being filled.
		return &Stores{Kind: kind, Logs: w, Stable: w, closer: closers{w, vfs, meta}}, nil
	default:
		// The freelist is not written with each commit (it is rebuilt by
		// scanning when the file is opened), which cuts the pages every
		// append writes; the map freelist keeps that scan cheap.
		store, err := raftboltdb.New(raftboltdb.Options{
			Path:   filepath.Join(dataDir, boltFile),
			NoSync: false,
			BoltOptions: &bbolt.Options{
				Timeout:        time.Second,
				NoFreelistSync: true,
				FreelistType:   bbolt.FreelistMapType,
			},
		})
		if err != nil {
			return nil, fmt.Errorf("storage: open raft store: %w", err)
		}
		return &Stores{Kind: kind, Logs: store, Stable: store, closer: store}, nil
	}
}
