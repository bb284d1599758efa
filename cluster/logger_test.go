package cluster

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

func TestRaftLogFormatsHclogFmtValues(t *testing.T) {
	var buf strings.Builder
	l := newHCLogger(slog.New(slog.NewTextHandler(&buf, nil)), "raft")
	l.Info("initial configuration", "servers", hclog.Fmt("%+v", []int{1, 2}))
	l.Debug("dropped below INFO")
	got := buf.String()
	if !strings.Contains(got, `servers="[1 2]"`) {
		t.Fatalf("log line %q", got)
	}
	if strings.Contains(got, "dropped") {
		t.Fatalf("DEBUG line logged: %q", got)
	}
}
