//go:build !unix

package cluster

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ErrDataDirInUse is returned by Open when another process (or another
// Node in this one) already runs on the data directory.
var ErrDataDirInUse = errors.New("cluster: data directory in use")

// lockDataDir only creates dir/LOCK here: there is no flock. The stores'
// own file locks still keep a second process out.
func lockDataDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "LOCK"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("cluster: lock data dir: %w", err)
	}
	return f, nil
}
