package storage

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Membership is what a node records about its own membership, so that a
// restart does not forget it: raft rebuilds the state machine only once a
// leader says what is committed, and a removed node hears from no leader.
type Membership string

const (
	// MembershipUnknown: nothing recorded (a new node, or a data directory
	// older than the record).
	MembershipUnknown Membership = ""
	// MembershipMember: the node has been in the cluster's configuration.
	MembershipMember Membership = "member"
	// MembershipRemoved: the node learnt it was removed from the cluster.
	MembershipRemoved Membership = "removed"
)

const membershipFile = "MEMBERSHIP"

// ReadMembership reads the record in dir.
func ReadMembership(dir string) (Membership, error) {
	b, err := os.ReadFile(filepath.Join(dir, membershipFile))
	if errors.Is(err, fs.ErrNotExist) {
		return MembershipUnknown, nil
	}
	if err != nil {
		return MembershipUnknown, fmt.Errorf("storage: %w", err)
	}
	switch m := Membership(strings.TrimSpace(string(b))); m {
	case MembershipMember, MembershipRemoved:
		return m, nil
	default:
		return MembershipUnknown, fmt.Errorf("storage: %s holds %q", membershipFile, m)
	}
}

// WriteMembership replaces the record in dir (written to a temporary file,
// synced, then renamed over the old one).
func WriteMembership(dir string, m Membership) error {
	path := filepath.Join(dir, membershipFile)
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	_, err = f.WriteString(string(m) + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("storage: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
