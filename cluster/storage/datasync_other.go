//go:build !linux

package storage

import "os"

// syncData makes f's written data durable; fdatasync is Linux's.
func syncData(f *os.File) error { return f.Sync() }
