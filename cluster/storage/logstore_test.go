package storage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

func TestChooseLogStore(t *testing.T) {
	mk := func(t *testing.T, files ...string) string {
		dir := t.TempDir()
		for _, f := range files {
			var err error
			if f == walDir {
				err = os.Mkdir(filepath.Join(dir, f), 0o700)
			} else {
				err = os.WriteFile(filepath.Join(dir, f), nil, 0o600)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	cases := []struct {
		name       string
		files      []string
		configured string
		want       string
		wantErr    error
	}{
		{"new dir defaults to wal", nil, "", WAL, nil},
		{"new dir, bolt asked", nil, Bolt, Bolt, nil},
		{"new dir, wal asked", nil, WAL, WAL, nil},
		{"existing bolt kept", []string{boltFile}, "", Bolt, nil},
		{"existing wal kept", []string{walDir}, "", WAL, nil},
		{"existing bolt, bolt asked", []string{boltFile}, Bolt, Bolt, nil},
		{"existing bolt, wal asked", []string{boltFile}, WAL, "", ErrLogStoreMismatch},
		{"existing wal, bolt asked", []string{walDir}, Bolt, "", ErrLogStoreMismatch},
		{"both present", []string{boltFile, walDir}, "", "", ErrLogStoreMismatch},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := chooseLogStore(mk(t, tc.files...), tc.configured)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	if _, err := chooseLogStore(t.TempDir(), "rocks"); err == nil {
		t.Fatal("unknown kind accepted")
	}
}

// TestLogStoresSurviveRestart writes through each kind of log store, shuts
// the node down before any snapshot (so everything comes back from the
// log), reopens it and finds every write; reopening with the other kind
// asked for is refused and leaves the data alone.
// raft-wal v0.4.0 marked the tail segment sealed without writing its index
// ("sealed segment has no index block" at the next start: the node could
// not start again; the nemesis found it). v0.4.2 has the fix.
func TestWALTailTruncateThenRestart(t *testing.T) {
	dir := t.TempDir()
	open := func() *Stores {
		t.Helper()
		s, err := Open(dir, WAL, 0, hclog.NewNullLogger())
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open()
	var logs []*raft.Log
	for i := uint64(1); i <= 20; i++ {
		logs = append(logs, &raft.Log{Index: i, Term: 1, Type: raft.LogCommand, Data: []byte(fmt.Sprintf("entry %d", i))})
	}
	if err := s.Logs.StoreLogs(logs); err != nil {
		t.Fatal(err)
	}
	if err := s.Logs.DeleteRange(18, 20); err != nil { // clearing a log suffix
		t.Fatal(err)
	}
	if err := s.Logs.StoreLogs([]*raft.Log{{Index: 18, Term: 2, Type: raft.LogCommand, Data: []byte("new 18")}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open()
	defer s.Close()
	for i := uint64(1); i <= 18; i++ {
		var l raft.Log
		if err := s.Logs.GetLog(i, &l); err != nil {
			t.Fatalf("after restart, entry %d: %v", i, err)
		}
		if want := fmt.Sprintf("entry %d", i); i < 18 && string(l.Data) != want {
			t.Fatalf("entry %d holds %q", i, l.Data)
		}
	}
	if last, _ := s.Logs.LastIndex(); last != 18 {
		t.Fatalf("last index %d after restart, want 18", last)
	}
}
