package storage

import (
	"testing"
)

func TestSnapshotRule(t *testing.T) {
	var w SnapshotWatch
	w.Applied(1000)
	if w.Due(3, 4, 1) {
		t.Error("due after 3 entries with a threshold of 4")
	}
	if !w.Due(4, 4, 1) {
		t.Error("first snapshot not due after the threshold (no size to compare with yet)")
	}
	w.Taken(4, w.Position(), 5000) // a 5000-byte snapshot at index 4
	w.Applied(4999)
	if w.Due(100, 4, 1) {
		t.Error("due with 4999 log bytes since a 5000-byte snapshot at ratio 1")
	}
	if !w.Due(100, 4, 0.5) {
		t.Error("not due with 4999 log bytes since a 5000-byte snapshot at ratio 0.5")
	}
	if !w.Due(100, 4, -1) {
		t.Error("size condition off, yet not due after 96 entries")
	}
	w.Applied(1)
	if !w.Due(100, 4, 1) {
		t.Error("not due with 5000 log bytes since a 5000-byte snapshot at ratio 1")
	}
	if w.Due(7, 4, 1) {
		t.Error("due after 3 entries since the last snapshot")
	}
	w.Taken(2, 0, 1) // an older snapshot finishing late changes nothing
	if w.index != 4 || w.size != 5000 {
		t.Errorf("a late older snapshot replaced the record: index %d size %d", w.index, w.size)
	}
}
