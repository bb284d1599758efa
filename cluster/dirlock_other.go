//go:build !unix

package cluster

import (
	"fmt"
	"os"
	"path/filepath"
)

// lockDataDir only creates dir/LOCK here: there is no flock. The stores'
// own file locks still keep a second process out.
func lockDataDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "LOCK"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("cluster: lock data dir: %w", err)
	}
	return f, nil
}
