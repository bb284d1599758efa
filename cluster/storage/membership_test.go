package storage

import (
	"os"
	"path/filepath"
	"testing"
)

func TestMembershipRecord(t *testing.T) {
	dir := t.TempDir()
	if m, err := ReadMembership(dir); err != nil || m != MembershipUnknown {
		t.Fatalf("empty dir: %q %v", m, err)
	}
	for _, want := range []Membership{MembershipMember, MembershipRemoved, MembershipMember} {
		if err := WriteMembership(dir, want); err != nil {
			t.Fatal(err)
		}
		if m, err := ReadMembership(dir); err != nil || m != want {
			t.Fatalf("read %q %v, want %q", m, err, want)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, membershipFile), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadMembership(dir); err == nil {
		t.Fatal("a garbled record was accepted")
	}
}
