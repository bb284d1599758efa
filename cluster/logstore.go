package cluster

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

// Log store kinds (Config.LogStore).
const (
	// LogStoreWAL keeps the raft log in hashicorp/raft-wal segment files:
	// an append is one write and one fsync of a zero-filled segment, so a
	// commit costs one fsync on each node where bbolt pays two (data pages,
	// then the meta page). Term and vote live in a small bbolt file beside
	// it (written only on elections).
	LogStoreWAL = "wal"
	// LogStoreBolt keeps log and stable state in one raft-boltdb/v2 file
	// (raft.db), every commit fsynced.
	LogStoreBolt = "bolt"
)

const (
	boltFile = "raft.db"
	walDir   = "wal"
)

// raftStores is the log and stable store raft runs on, and how to close them.
type raftStores struct {
	kind   string
	logs   raft.LogStore
	stable raft.StableStore
	closer io.Closer
}

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
	case hasBolt && configured == LogStoreWAL:
		return "", fmt.Errorf("%w: %s holds a bolt log (%s); start with --log-store bolt", ErrLogStoreMismatch, dataDir, boltFile)
	case hasWAL && configured == LogStoreBolt:
		return "", fmt.Errorf("%w: %s holds a wal log (%s/); start with --log-store wal", ErrLogStoreMismatch, dataDir, walDir)
	case hasBolt:
		return LogStoreBolt, nil
	case hasWAL:
		return LogStoreWAL, nil
	case configured == "":
		return LogStoreWAL, nil
	case configured == LogStoreWAL || configured == LogStoreBolt:
		return configured, nil
	default:
		return "", fmt.Errorf("cluster: unknown log store %q (want %q or %q)", configured, LogStoreWAL, LogStoreBolt)
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

// openRaftStores opens the data directory's log and stable store. Neither
// kind ever skips an fsync: an acknowledged write survives a crash.
func openRaftStores(dataDir, configured string, segmentSize int, log hclog.Logger) (*raftStores, error) {
	kind, err := chooseLogStore(dataDir, configured)
	if err != nil {
		return nil, err
	}
	switch kind {
	case LogStoreWAL:
		dir := filepath.Join(dataDir, walDir)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("cluster: wal dir: %w", err)
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
			return nil, fmt.Errorf("cluster: open wal: %w", err)
		}
		// The file system closes after the WAL: it waits for a spare
		// segment being filled.
		return &raftStores{kind: kind, logs: w, stable: w, closer: closers{w, vfs, meta}}, nil
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
			return nil, fmt.Errorf("cluster: open raft store: %w", err)
		}
		return &raftStores{kind: kind, logs: store, stable: store, closer: store}, nil
	}
}
