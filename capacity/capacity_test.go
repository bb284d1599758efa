package capacity

import (
	"errors"
	"testing"
)

func TestLimitsValidate(t *testing.T) {
	for _, tc := range []struct {
		limits Limits
		ok     bool
	}{
		{Limits{0, 0}, true},
		{Limits{MaxLimit, 3}, true},
		{Limits{MaxLimit + 1, 0}, false},
		{Limits{0, -1}, false},
	} {
		err := tc.limits.Validate()
		if (err == nil) != tc.ok {
			t.Errorf("%v: err %v, want ok=%v", tc.limits, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("%v: error %v does not wrap ErrInvalid", tc.limits, err)
		}
	}
}

func TestSpare(t *testing.T) {
	l := Limits{3, 10}
	for _, tc := range []struct {
		load     Load
		ch       Channel
		spare    int
		permille int
	}{
		{Load{0, 0}, Chat, 3, 1000},
		{Load{2, 0}, Chat, 1, 333},
		{Load{3, 0}, Chat, 0, 0},
		{Load{5, 0}, Chat, 0, 0}, // over capacity (reactivation): no spare, never negative
		{Load{0, 4}, Messaging, 6, 600},
	} {
		if got := Spare(l, tc.load, tc.ch); got != tc.spare {
			t.Errorf("Spare(%v, %v, %s) = %d, want %d", l, tc.load, tc.ch, got, tc.spare)
		}
		if got := SparePermille(l, tc.load, tc.ch); got != tc.permille {
			t.Errorf("SparePermille(%v, %v, %s) = %d, want %d", l, tc.load, tc.ch, got, tc.permille)
		}
	}
	if got := SparePermille(Limits{0, 0}, Load{}, Chat); got != 0 {
		t.Errorf("zero limit has spare share %d", got)
	}
}

func TestCounts(t *testing.T) {
	for _, tc := range []struct {
		name          string
		h             Holding
		countInactive bool
		want          bool
	}{
		{"live chat always counts", Holding{Channel: Chat}, false, true},
		{"active messaging with an open ticket counts", Holding{Messaging, true, true}, false, true},
		{"inactive messaging does not count", Holding{Messaging, false, true}, false, false},
		{"messaging with a pending ticket does not count", Holding{Messaging, true, false}, false, false},
		{"count_inactive_messaging counts inactive ones", Holding{Messaging, false, false}, true, true},
	} {
		if got := Counts(tc.h, tc.countInactive); got != tc.want {
			t.Errorf("%s: got %v", tc.name, got)
		}
	}
}

func TestParseChannel(t *testing.T) {
	for _, ch := range []Channel{Chat, Messaging, Email, Voice} {
		got, err := ParseChannel(ch.String())
		if err != nil || got != ch {
			t.Errorf("round trip %s: %v %v", ch, got, err)
		}
	}
	if _, err := ParseChannel("fax"); !errors.Is(err, ErrInvalid) {
		t.Errorf("unknown channel: %v", err)
	}
}

// TestFourChannels: email and voice beside chat and messaging; a voice
// agent takes one call at a time; email is the channel focus mode lets
// through.
func TestFourChannels(t *testing.T) {
	for s, want := range map[string]Channel{"chat": Chat, "messaging": Messaging, "email": Email, "voice": Voice} {
		if got, err := ParseChannel(s); err != nil || got != want || got.String() != s {
			t.Errorf("%s: %v %v", s, got, err)
		}
	}
	if err := (Limits{Voice: 1, Email: MaxLimit}).Validate(); err != nil {
		t.Errorf("voice 1, email %d: %v", MaxLimit, err)
	}
	if err := (Limits{Voice: 2}).Validate(); !errors.Is(err, ErrInvalid) {
		t.Errorf("voice 2: %v, want ErrInvalid", err)
	}
	for ch := range NumChannels {
		if ch.RealTime() == (ch == Email) {
			t.Errorf("%s real-time %v", ch, ch.RealTime())
		}
	}
	for _, tc := range []struct {
		h    Holding
		want bool
	}{
		{Holding{Channel: Email, TicketOpen: true}, true},
		{Holding{Channel: Email, TicketOpen: false, Active: true}, false},
		{Holding{Channel: Voice}, true},
	} {
		if got := Counts(tc.h, false); got != tc.want {
			t.Errorf("Counts(%+v) = %v, want %v", tc.h, got, tc.want)
		}
	}
}
