package storage

import (
	"os"
	"syscall"
)

// syncData makes f's written data durable with fdatasync, as etcd's WAL
// does: a segment's size never changes after it is filled (segmentFS), so
// the data is all an append needs on disk, and fsync would also commit the
// inode's new modification time to the file-system journal.
func syncData(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			if err != nil {
				return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: err}
			}
			return nil
		}
	}
}
