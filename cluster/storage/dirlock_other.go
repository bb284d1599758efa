//go:build !unix

package storage

import (
	"fmt"
	"os"
	"path/filepath"
)

// LockDir only creates dir/LOCK here: there is no flock. The stores'
// own file locks still keep a second process out.
func LockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "LOCK"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("storage: lock data dir: %w", err)
	}
	return f, nil
}
