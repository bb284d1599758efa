package sim

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// load writes files (name → content) and the scenario into a directory
// and loads the scenario from there.
func load(t *testing.T, js string, files map[string]string) *Scenario {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "scenario.json")
	if err := os.WriteFile(path, []byte(js), 0o600); err != nil {
		t.Fatal(err)
	}
	sc, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

func mustRun(t *testing.T, sc *Scenario, opt Options) *Report {
	t.Helper()
	if opt.Replications == 0 {
		opt.Replications = 2
	}
	rep, err := Run(sc, opt)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// row is interval k of channel ch.
func row(t *testing.T, rep *Report, k int, ch string) *IntervalRow {
	t.Helper()
	at := rep.intervalStart[k].Format(time.RFC3339)
	for i := range rep.Intervals {
		if r := &rep.Intervals[i]; r.Start == at && r.Channel == ch {
			return r
		}
	}
	t.Fatalf("no row for interval %d (%s) of %s", k, at, ch)
	return nil
}

func isNull(n Num) bool { return math.IsNaN(float64(n)) }

func near(a Num, b float64) bool { return math.Abs(float64(a)-b) < 1e-3 }

// recorded is a scenario of one-hour intervals from midnight with its
// arrivals in arrivals.csv.
func recorded(intervals int, channels, agents, extra string) string {
	return fmt.Sprintf(`{"start": "2027-01-04T00:00:00Z", "interval": "60m", "intervals": %d,
		"service_level": {"answered_within": "20s"}, "arrivals_file": "arrivals.csv",
		"channels": {%s}, "agents": [%s]%s}`, intervals, channels, agents, extra)
}

// TestShifts: an agent whose shift ends finishes what it holds and takes
// nothing new; an agent whose shift starts takes work at once. Agent
// counts, occupancy and waits per interval follow the shifts.
func TestShifts(t *testing.T) {
	sc := load(t, recorded(2,
		`"chat": {"handle_time": {"dist": "fixed", "mean": "50m"}}`,
		`{"count": 1, "capacity": {"chat": 1}, "shift": {"from": 0, "to": 1}},
		 {"count": 1, "capacity": {"chat": 1}, "shift": {"from": 1, "to": 2}}`, ""),
		map[string]string{"arrivals.csv": "time,channel,skills,group,priority\n" +
			"2027-01-04T00:30:00Z,chat\n" + // A takes it, and holds it past its shift until 01:20
			"2027-01-04T01:10:00Z,chat\n" + // B takes it at once, until 02:00
			"2027-01-04T01:30:00Z,chat\n"}) // A is done but off shift: it waits for B, 30 minutes
	rep := mustRun(t, sc, Options{Seed: 1})
	r0, r1 := row(t, rep, 0, "chat"), row(t, rep, 1, "chat")
	if r0.Agents != 1 || r1.Agents != 1 {
		t.Fatalf("agents on shift %d, %d; want 1, 1", r0.Agents, r1.Agents)
	}
	if r0.Offered != 1 || r0.Answered != 1 || r0.ASASeconds != 0 || !near(r0.Occupancy, 0.5) {
		t.Errorf("interval 0: %+v; want one answered at once, occupancy 0.5 (busy 00:30-01:00)", r0.Summary)
	}
	// B is busy 01:10-02:00; A, busy until 01:20, is off shift and not counted.
	if r1.Offered != 2 || r1.Answered != 2 || !near(r1.ASASeconds, 900) || !near(r1.ProbWait, 0.5) || !near(r1.Occupancy, 50.0/60) {
		t.Errorf("interval 1: %+v; want two answered, one after 30 minutes (ASA 900 s), occupancy 50/60", r1.Summary)
	}
	// Identical replications (nothing random here) have zero-width intervals.
	if ci := r1.CI95.ASASeconds; ci == nil || ci[0] != ci[1] {
		t.Errorf("ASA interval %v, want zero width", ci)
	}
}

// TestNobodyOnShift: conversations that arrive when nobody works wait;
// those still waiting when the run ends (nobody comes for the drain
// either) count as offered but neither answered nor abandoned, and the
// run ends.
func TestNobodyOnShift(t *testing.T) {
	sc := load(t, `{"start": "2027-01-04T00:00:00Z", "interval": "30m", "intervals": 3,
		"service_level": {"answered_within": "20s"},
		"channels": {"chat": {"arrivals_per_interval": [20], "handle_time": {"dist": "exponential", "mean": "2m"}}},
		"agents": [{"count": 10, "capacity": {"chat": 1}, "shift": {"from": 0, "to": 1}}]}`, nil)
	rep := mustRun(t, sc, Options{Seed: 1, Replications: 3})
	if r := row(t, rep, 0, "chat"); r.Agents != 10 || r.Offered == 0 || r.Offered != r.Answered {
		t.Errorf("interval 0: %+v", *r)
	}
	for k := 1; k < 3; k++ {
		r := row(t, rep, k, "chat")
		if r.Agents != 0 || r.Offered == 0 || r.Answered != 0 || r.Abandoned != 0 || r.ServiceLevel != 0 ||
			!isNull(r.ASASeconds) || !isNull(r.Occupancy) || r.QueueLength <= 0 {
			t.Errorf("interval %d: %+v; want arrivals, none answered, ASA and occupancy null, a queue", k, *r)
		}
	}
}

// TestRecordedArrivals: an arrival file's rows arrive as recorded, with
// their requirements: a conversation needing a skill nobody has is never
// answered, and abandons when its customer runs out of patience.
func TestRecordedArrivals(t *testing.T) {
	var csvRows strings.Builder
	csvRows.WriteString("time,channel,skills,group,priority\n")
	for i := range 30 {
		fmt.Fprintf(&csvRows, "2027-01-04T00:%02d:00Z, chat, , , 0\n", i)           // interval 0
		fmt.Fprintf(&csvRows, "2027-01-04T01:%02d:00Z, chat, billing;fr, , 5\n", i) // interval 1: nobody speaks fr
	}
	fmt.Fprintf(&csvRows, "2027-01-04T02:00:00Z,voice,,support\n")
	sc := load(t, recorded(3,
		`"chat": {"handle_time": {"dist": "exponential", "mean": "1m"}, "patience": {"dist": "fixed", "mean": "5m"}},
		 "voice": {"handle_time": {"dist": "fixed", "mean": "1m"}}`,
		`{"count": 5, "capacity": {"chat": 2, "voice": 1}, "skills": ["billing"], "groups": ["support"]}`, ""),
		map[string]string{"arrivals.csv": csvRows.String()})
	rep := mustRun(t, sc, Options{Seed: 7, Replications: 3})
	r0, r1, v2 := row(t, rep, 0, "chat"), row(t, rep, 1, "chat"), row(t, rep, 2, "voice")
	if r0.Offered != 30 || r0.Answered != 30 || r0.ServiceLevel != 1 {
		t.Errorf("interval 0: %+v; want 30 offered and answered at once", r0.Summary)
	}
	if r1.Offered != 30 || r1.Answered != 0 || r1.Abandoned != 30 || r1.AbandonRate != 1 || r1.ServiceLevel != 0 {
		t.Errorf("interval 1: %+v; want 30 offered, all abandoned (nobody has skill fr)", r1.Summary)
	}
	if v2.Offered != 1 || v2.Answered != 1 || row(t, rep, 2, "chat").Offered != 0 {
		t.Errorf("interval 2: voice %+v", v2.Summary)
	}
	if rep.Overall.Offered != 61 {
		t.Errorf("offered %v overall, want the file's 61 rows", rep.Overall.Offered)
	}
}

// TestOffersAndAcceptDelay: with routing.auto_accept off the simulated
// agents accept offers after accept_delay: every answer waits that long.
// An offer_timeout shorter than the delay means no offer is ever
// accepted, and the customers abandon.
func TestOffersAndAcceptDelay(t *testing.T) {
	base := `{"start": "2027-01-04T00:00:00Z", "interval": "30m", "intervals": 2,
		"service_level": {"answered_within": "5s"},
		"channels": {"chat": {"arrivals_per_interval": [30], "handle_time": {"dist": "exponential", "mean": "1m"},
			"patience": {"dist": "fixed", "mean": "2m"}}},
		"agents": [{"count": 20, "capacity": {"chat": 1}}],
		"accept_delay": {"dist": "fixed", "mean": "10s"},
		"policy": {"routing": {"auto_accept": false%s}}}`
	rep := mustRun(t, load(t, fmt.Sprintf(base, ""), nil), Options{Seed: 1})
	o := rep.Overall
	if o.Offered == 0 || o.Answered != o.Offered || o.ServiceLevel != 0 || o.ProbWait != 1 || !near(o.ASASeconds, 10) {
		t.Errorf("accept after 10 s: %+v; want all answered after exactly 10 s (service level within 5 s: 0)", o)
	}
	rep = mustRun(t, load(t, fmt.Sprintf(base, `, "offer_timeout": "5s"`), nil), Options{Seed: 1})
	o = rep.Overall
	if o.Offered == 0 || o.Answered != 0 || o.Abandoned != o.Offered {
		t.Errorf("offers time out before the agents accept: %+v; want nothing answered, all abandoned", o)
	}
	// Without the policy's offers, accept_delay does not matter.
	rep = mustRun(t, load(t, strings.Replace(fmt.Sprintf(base, ""), `"auto_accept": false`, `"auto_accept": true`, 1), nil), Options{Seed: 1})
	if o := rep.Overall; o.ServiceLevel != 1 || o.ASASeconds != 0 {
		t.Errorf("auto-accept: %+v; want every conversation answered at once", o)
	}
}

// TestChannelsComplete: every channel ends a conversation its own way
// when the handle time is over (chat: the visitor closes it; a call: the
// agent hangs up, and wrap-up holds the agent; messaging and email: the
// agent releases them), which frees the agent for the next one.
func TestChannelsComplete(t *testing.T) {
	files := map[string]string{"arrivals.csv": "2027-01-04T00:00:00Z,chat\n2027-01-04T00:01:00Z,chat\n" +
		"2027-01-04T00:00:00Z,messaging\n2027-01-04T00:01:00Z,messaging\n" +
		"2027-01-04T00:00:00Z,email\n2027-01-04T00:01:00Z,email\n" +
		"2027-01-04T00:00:00Z,voice\n2027-01-04T00:01:00Z,voice\n"}
	channels := `"chat": {"handle_time": {"dist": "fixed", "mean": "10m"}},
		"messaging": {"handle_time": {"dist": "fixed", "mean": "10m"}},
		"email": {"handle_time": {"dist": "fixed", "mean": "10m"}},
		"voice": {"handle_time": {"dist": "fixed", "mean": "10m"}}`
	agents := `{"count": 1, "capacity": {"chat": 1}}, {"count": 1, "capacity": {"messaging": 1}},
		{"count": 1, "capacity": {"email": 1}}, {"count": 1, "capacity": {"voice": 1}}`
	for _, tc := range []struct {
		wrapUp, maxWait string
		voiceWait       float64 // the second call waits for the first (and its wrap-up)
		voiceOccupied   float64 // minutes of the hour the voice agent is held
		voiceAbandoned  Num
	}{
		{"0s", "10m", 540, 20, 0},
		{"2m", "1h", 660, 24, 0},
		// The state machine's own rule: a call waiting voice.max_queue_wait
		// (10 minutes by default) ends, missed; it counts as abandoned.
		{"2m", "10m", 0, 12, 1},
	} {
		sc := load(t, recorded(1, channels, agents, fmt.Sprintf(`, "policy": {"voice": {"wrap_up": %q, "max_queue_wait": %q}}`, tc.wrapUp, tc.maxWait)), files)
		rep := mustRun(t, sc, Options{Seed: 1})
		for _, ch := range []string{"chat", "messaging", "email", "voice"} {
			r := row(t, rep, 0, ch)
			answered, wait, occupied, abandoned := Num(2), 270.0, 20.0, Num(0) // the second waits 9 of the first's 10 minutes
			if ch == "voice" {
				answered, wait, occupied, abandoned = 2-tc.voiceAbandoned, tc.voiceWait/float64(2-tc.voiceAbandoned), tc.voiceOccupied, tc.voiceAbandoned
			}
			if r.Offered != 2 || r.Answered != answered || r.Abandoned != abandoned || !near(r.ASASeconds, wait) || !near(r.Occupancy, occupied/60) {
				t.Errorf("wrap-up %s, max wait %s, %s: %+v; want %v answered, ASA %v s, occupancy %v/60", tc.wrapUp, tc.maxWait, ch, r.Summary, answered, wait, occupied)
			}
		}
	}
}

// TestCapacityAboveOne: an agent with capacity 3 takes three chats at
// once: occupancy counts slots.
func TestCapacityAboveOne(t *testing.T) {
	sc := load(t, recorded(1, `"chat": {"handle_time": {"dist": "fixed", "mean": "30m"}}`,
		`{"count": 1, "capacity": {"chat": 3}}`, ""),
		map[string]string{"arrivals.csv": "2027-01-04T00:00:00Z,chat\n2027-01-04T00:00:00Z,chat\n2027-01-04T00:00:00Z,chat\n2027-01-04T00:00:00Z,chat\n"})
	r := row(t, mustRun(t, sc, Options{Seed: 1}), 0, "chat")
	// Three at once for 30 minutes, then the fourth for 30: (3·30 + 1·30) / (3·60).
	if r.Answered != 4 || !near(r.ASASeconds, 450) || !near(r.Occupancy, 120.0/180) || !near(r.QueueLength, 0.5) {
		t.Errorf("%+v; want 4 answered, the fourth after 30 minutes, occupancy 2/3, a queue of 1 half the time", r.Summary)
	}
}

// TestDeterministic: the same seed gives byte-identical JSON, CSV and
// charts whatever the number of workers; another seed gives another
// report.
func TestDeterministic(t *testing.T) {
	day, err := Load("../examples/simulate/day.json")
	if err != nil {
		t.Fatal(err)
	}
	small := load(t, `{"start": "2027-01-04T08:00:00Z", "interval": "30m", "intervals": 2,
		"service_level": {"answered_within": "20s"},
		"channels": {"voice": {"arrivals_per_interval": [30, 60], "handle_time": {"dist": "lognormal", "mean": "4m", "sd": "3m"},
			"patience": {"dist": "exponential", "mean": "1m"}}},
		"agents": [{"count": 5, "capacity": {"voice": 1}}]}`, nil)
	outputs := func(sc *Scenario, opt Options) [4][]byte {
		rep := mustRun(t, sc, opt)
		var out [4][]byte
		for i, write := range []func(io.Writer) error{rep.WriteJSON, rep.WriteCSV, rep.WriteServiceLevelSVG, rep.WriteStaffingSVG} {
			var b bytes.Buffer
			if err := write(&b); err != nil {
				t.Fatal(err)
			}
			out[i] = b.Bytes()
		}
		return out
	}
	staffing := &Target{Level: 0.8, Within: 20 * time.Second}
	for _, tc := range []struct {
		name string
		sc   *Scenario
		opt  Options
	}{
		{"day", day, Options{Replications: 3}},
		{"staffing", small, Options{Replications: 3, StaffFor: staffing, staffArrivals: 1000}},
	} {
		opt := tc.opt
		opt.Seed, opt.Workers = 42, 1
		a := outputs(tc.sc, opt)
		opt.Workers = 3
		b := outputs(tc.sc, opt)
		opt.Seed, opt.Workers = 43, 2
		c := outputs(tc.sc, opt)
		for i, name := range []string{"report.json", "intervals.csv", "service_level.svg", "staffing.svg"} {
			if !bytes.Equal(a[i], b[i]) {
				t.Errorf("%s: %s differs between 1 and 3 workers", tc.name, name)
			}
		}
		if bytes.Equal(a[0], c[0]) {
			t.Errorf("%s: seeds 42 and 43 gave the same report", tc.name)
		}
	}
}

// TestReportShape: the report carries the contract's fields, the CSV one
// row per interval and channel, and the charts are well-formed SVG.
func TestReportShape(t *testing.T) {
	sc, err := Load("../examples/simulate/day.json")
	if err != nil {
		t.Fatal(err)
	}
	rep := mustRun(t, sc, Options{Seed: 1, Replications: 2, StaffFor: &Target{Level: 0.8, Within: 20 * time.Second}, staffArrivals: 400})
	var b bytes.Buffer
	if err := rep.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Seed         *uint64                    `json:"seed"`
		Replications *int                       `json:"replications"`
		Overall      map[string]json.RawMessage `json:"overall"`
		Intervals    []map[string]json.RawMessage
		Staffing     []map[string]json.RawMessage
	}
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Seed == nil || *doc.Seed != 1 || doc.Replications == nil || *doc.Replications != 2 {
		t.Errorf("seed, replications: %s", b.String()[:80])
	}
	for _, k := range []string{"offered", "answered", "abandoned", "service_level", "asa_seconds", "abandon_rate", "occupancy", "prob_wait", "queue_length", "ci95"} {
		if _, ok := doc.Overall[k]; !ok {
			t.Errorf("overall has no %q", k)
		}
	}
	var ci map[string]*[2]float64
	if err := json.Unmarshal(doc.Overall["ci95"], &ci); err != nil || ci["service_level"] == nil || ci["asa_seconds"] == nil || ci["abandon_rate"] == nil {
		t.Errorf("overall.ci95 = %s (%v)", doc.Overall["ci95"], err)
	}
	if len(doc.Intervals) != 20*3 {
		t.Fatalf("%d interval rows, want 20 intervals × 3 channels", len(doc.Intervals))
	}
	for _, k := range []string{"start", "channel", "offered", "answered", "abandoned", "service_level", "asa_seconds", "occupancy", "agents", "ci95"} {
		if _, ok := doc.Intervals[0][k]; !ok {
			t.Errorf("intervals[0] has no %q", k)
		}
	}
	if len(doc.Staffing) != 20*3 {
		t.Errorf("%d staffing rows, want one per interval and channel", len(doc.Staffing))
	}
	for _, k := range []string{"start", "channel", "agents"} {
		if _, ok := doc.Staffing[0][k]; !ok {
			t.Errorf("staffing[0] has no %q", k)
		}
	}

	b.Reset()
	if err := rep.WriteCSV(&b); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&b).ReadAll()
	if err != nil || len(rows) != 1+20*3 || rows[0][0] != "start" || rows[0][len(rows[0])-1] != "agents_needed" {
		t.Fatalf("CSV: %d rows (%v), header %v", len(rows), err, rows[0])
	}
	for _, write := range []func(io.Writer) error{rep.WriteServiceLevelSVG, rep.WriteStaffingSVG} {
		b.Reset()
		if err := write(&b); err != nil {
			t.Fatal(err)
		}
		dec := xml.NewDecoder(&b)
		elements := 0
		for {
			tok, err := dec.Token()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("SVG is not well-formed XML: %v", err)
			}
			if _, ok := tok.(xml.StartElement); ok {
				elements++
			}
		}
		if elements < 20 {
			t.Errorf("an SVG with %d elements", elements)
		}
	}
}

// TestScenarioErrors: a wrong scenario is refused with an error that says
// what is wrong, wrapping ErrScenario.
func TestScenarioErrors(t *testing.T) {
	good := map[string]any{
		"start": "2027-01-04T08:00:00Z", "interval": "30m", "intervals": 2,
		"service_level": map[string]any{"answered_within": "20s"},
		"channels": map[string]any{"chat": map[string]any{"arrivals_per_interval": []float64{10, 20},
			"handle_time": map[string]any{"dist": "exponential", "mean": "5m"}}},
		"agents": []any{map[string]any{"count": 3, "capacity": map[string]any{"chat": 2}}},
	}
	with := func(path string, v any) string {
		var doc map[string]any
		b, _ := json.Marshal(good)
		_ = json.Unmarshal(b, &doc)
		parts := strings.Split(path, ".")
		m := doc
		for _, p := range parts[:len(parts)-1] {
			switch x := m[p].(type) {
			case map[string]any:
				m = x
			case []any:
				m = x[0].(map[string]any)
			}
		}
		if v == nil {
			delete(m, parts[len(parts)-1])
		} else {
			m[parts[len(parts)-1]] = v
		}
		b, _ = json.Marshal(doc)
		return string(b)
	}
	for _, tc := range []struct{ js, want string }{
		{`{"start": `, "unexpected EOF"},
		{with("colour", "red"), `unknown field "colour"`},
		{with("start", "today"), "start must be an RFC 3339 time"},
		{with("interval", "90s"), "interval must be whole minutes"},
		{with("interval", "half an hour"), "is not a duration"},
		{with("intervals", 0), "intervals must be 1.."},
		{with("intervals", MaxIntervals+1), "intervals must be 1.."},
		{with("intervals", 1500), "at most 672h0m0s"},
		{with("service_level", nil), "service_level.answered_within is required"},
		{with("channels", map[string]any{}), "at least one channel"},
		{with("channels.sms", map[string]any{}), `unknown channel "sms"`},
		{with("channels.chat.arrivals_per_interval", []float64{1, 2, 3}), "it needs one per interval (2)"},
		{with("channels.chat.arrivals_per_interval", []float64{1, -2}), "must be a number >= 0"},
		{with("channels.chat.arrivals_per_interval", []float64{3e6, 3e6}), "at most 5000000"},
		{with("channels.chat.handle_time", nil), "channels.chat.handle_time is required"},
		{with("channels.chat.handle_time.dist", "gamma"), "must be exponential, lognormal or fixed"},
		{with("channels.chat.handle_time.mean", "0s"), "mean must be above 0"},
		{with("channels.chat.handle_time", map[string]any{"dist": "lognormal", "mean": "5m"}), ".sd"},
		{with("channels.chat.handle_time", map[string]any{"dist": "exponential", "mean": "5m", "sd": "1m"}), "sd is for a lognormal only"},
		{with("channels.chat.skills", []string{""}), "skills"},
		{with("channels.chat.priority", 5000), "priority must be within"},
		{with("channels.email", map[string]any{"arrivals_per_interval": []float64{1}, "handle_time": map[string]any{"dist": "fixed", "mean": "1m"},
			"patience": map[string]any{"dist": "fixed", "mean": "1m"}}), "patience applies to chat and voice"},
		{with("agents", []any{}), "agents: at least one entry"},
		{with("agents.count", 0), "count must be 1.."},
		{with("agents.count", MaxAgents+1), "count must be 1.."},
		{with("agents.capacity", map[string]any{"voice": 2}), "voice capacity 2 is outside 0..1"},
		{with("agents.capacity", map[string]any{"fax": 1}), `unknown channel "fax"`},
		{with("agents.shift", map[string]any{"from": 1, "to": 1}), "shift must have 0 <= from < to <= 2"},
		{with("agents.shift", map[string]any{"from": 0, "to": 3}), "shift must have"},
		{with("policy", map[string]any{"routing": map[string]any{"strategy": "random"}}), "unknown strategy"},
		{with("policy", map[string]any{"routing": map[string]any{"offer_timeout": "forever"}}), "is not a duration"},
		{with("policy", map[string]any{"colour": "red"}), `unknown policy field "colour"`},
		{with("policy", []int{1}), "policy must be an object"},
		{with("policy", map[string]any{"routing": map[string]any{"mode": "external"}}), "a simulation has none"},
		{with("arrivals_file", "missing.csv"), "arrivals_file"},
		{with("accept_delay", map[string]any{"dist": "fixed", "mean": "-1s"}), "accept_delay.mean must be above 0"},
	} {
		_, err := Parse([]byte(tc.js), t.TempDir())
		if err == nil || !errors.Is(err, ErrScenario) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s\n  error %v, want one with %q", tc.js, err, tc.want)
		}
	}
	// A fixed accept delay of 0 is fine; a mean of 0 for anything else is not.
	if _, err := Parse([]byte(with("accept_delay", map[string]any{"dist": "fixed", "mean": "0s"})), "."); err != nil {
		t.Errorf("accept_delay fixed 0s: %v", err)
	}
	if _, err := Run(&Scenario{}, Options{Replications: MaxReplications + 1}); err == nil || !strings.Contains(err.Error(), "replications must be 1..") {
		t.Errorf("too many replications: %v", err)
	}
}

// TestArrivalFileErrors: an arrival file's errors name the line.
func TestArrivalFileErrors(t *testing.T) {
	from, to := time.Date(2027, 1, 4, 0, 0, 0, 0, time.UTC), time.Date(2027, 1, 4, 2, 0, 0, 0, time.UTC)
	for _, tc := range []struct{ file, want string }{
		{"2027-01-04T00:00:00Z,chat\nyesterday,chat\n", "line 2: time \"yesterday\" is not RFC 3339"},
		{"2027-01-04T03:00:00Z,chat\n", "line 1: 2027-01-04T03:00:00Z is outside the scenario"},
		{"2027-01-03T23:59:59Z,chat\n", "outside the scenario"},
		{"2027-01-04T00:00:00Z,fax\n", `line 1: unknown channel "fax"`},
		{"2027-01-04T00:00:00Z,chat,,,high\n", `priority "high" is not an integer`},
		{"2027-01-04T00:00:00Z\n", "want time, channel, skills, group, priority; got 1 fields"},
		{"2027-01-04T00:00:00Z,chat,a;;b\n", "line 1: skills"},
		{"2027-01-04T00:00:00Z,chat,\"unterminated\n", "extraneous or missing"},
	} {
		if _, err := ReadArrivals(strings.NewReader(tc.file), from, to); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.file, err, tc.want)
		}
	}
	// Rows come back in time order; the same time keeps the file's order.
	got, err := ReadArrivals(strings.NewReader("time,channel\n2027-01-04T01:00:00Z,voice\n2027-01-04T00:00:00Z,chat,x\n2027-01-04T00:00:00Z,email,y\n"), from, to)
	if err != nil || len(got) != 3 || got[0].Skills[0] != "x" || got[1].Skills[0] != "y" || got[2].Channel.String() != "voice" {
		t.Errorf("got %+v, %v", got, err)
	}
	// A scenario whose file has a channel it does not describe.
	sc := recorded(1, `"chat": {"handle_time": {"dist": "fixed", "mean": "1m"}}`, `{"count": 1, "capacity": {"chat": 1}}`, "")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "arrivals.csv"), []byte("2027-01-04T00:00:00Z,voice\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Parse([]byte(sc), dir); err == nil || !strings.Contains(err.Error(), "channels does not describe voice") {
		t.Errorf("undescribed channel: %v", err)
	}
	both := recorded(1, `"chat": {"arrivals_per_interval": [1], "handle_time": {"dist": "fixed", "mean": "1m"}}`, `{"count": 1, "capacity": {"chat": 1}}`, "")
	if _, err := Parse([]byte(both), dir); err == nil || !strings.Contains(err.Error(), "replaces the rates") {
		t.Errorf("rates beside an arrival file: %v", err)
	}
}

// TestArrivalFileBound: an arrival file holds at most arrivalLimit rows.
func TestArrivalFileBound(t *testing.T) {
	defer func(n int) { arrivalLimit = n }(arrivalLimit)
	arrivalLimit = 3
	from := time.Date(2027, 1, 4, 0, 0, 0, 0, time.UTC)
	rows := strings.Repeat("2027-01-04T00:00:00Z,chat\n", 3)
	if got, err := ReadArrivals(strings.NewReader(rows), from, from.Add(time.Hour)); err != nil || len(got) != 3 {
		t.Fatalf("3 rows: %d, %v", len(got), err)
	}
	if _, err := ReadArrivals(strings.NewReader(rows+rows[:26]), from, from.Add(time.Hour)); err == nil || !strings.Contains(err.Error(), "more than 3 arrivals") {
		t.Fatalf("4 rows: %v", err)
	}
}

// TestDrainBound: a conversation nobody can take and nobody abandons does
// not keep a run going beyond DrainLimit after the last interval.
func TestDrainBound(t *testing.T) {
	sc := load(t, recorded(1, `"chat": {"handle_time": {"dist": "fixed", "mean": "1m"}}`,
		`{"count": 1, "capacity": {"chat": 1}}`, ""),
		map[string]string{"arrivals.csv": "2027-01-04T00:10:00Z,chat,nobody-has-this\n"})
	r := newReplication(sc, 1, 0, 0)
	if err := r.run(); err != nil {
		t.Fatal(err)
	}
	if r.pending != 1 || r.lastT > r.stopAt {
		t.Errorf("pending %d, stopped at %d (limit %d)", r.pending, r.lastT, r.stopAt)
	}
	c := r.cells[0]
	if c.offered != 1 || c.answered != 0 || c.abandoned != 0 {
		t.Errorf("cell %+v", c)
	}
}

// TestParseTarget reads percent/threshold targets.
func TestParseTarget(t *testing.T) {
	for in, want := range map[string]Target{"80/20s": {0.8, 20 * time.Second}, "90%/1m": {0.9, time.Minute}, "100/0s": {1, 0}} {
		if got, err := ParseTarget(in); err != nil || got != want {
			t.Errorf("%q: %+v, %v", in, got, err)
		}
	}
	for _, in := range []string{"80", "0/20s", "101/20s", "80/soon", "x/20s", "80/-1s"} {
		if _, err := ParseTarget(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

// TestStaffingPool: a channel is staffed with one pool of agents who can
// take any of its conversations: the first entry's capacity with the
// skills and groups of every entry that takes the channel. Staffing what
// no entry could take, or what more agents cannot help, is an error at
// once.
func TestStaffingPool(t *testing.T) {
	js := `{"start": "2027-01-04T00:00:00Z", "interval": "30m", "intervals": 1,
		"service_level": {"answered_within": "20s"}, "arrivals_file": "arrivals.csv",
		"channels": {"chat": {"handle_time": {"dist": "fixed", "mean": "1m"}}},
		"agents": [%s]%s}`
	arrivals := map[string]string{"arrivals.csv": "2027-01-04T00:00:00Z,chat,billing\n2027-01-04T00:10:00Z,chat,,vip\n2027-01-04T00:20:00Z,chat\n"}
	target := &Target{Level: 0.8, Within: 20 * time.Second}
	opt := Options{Replications: 2, StaffFor: target, staffArrivals: 200}
	sc := load(t, fmt.Sprintf(js, `{"count": 1, "capacity": {"chat": 2, "voice": 1}, "skills": ["billing"]},
		{"count": 1, "capacity": {"voice": 1}, "skills": ["fr"]}, {"count": 1, "capacity": {"chat": 1}, "groups": ["vip"]}`, ""), arrivals)
	pool, err := sc.staffingPool(0)
	if err != nil || pool.Capacity != sc.Agents[0].Capacity || fmt.Sprint(pool.Skills, pool.Groups) != "[billing] [vip]" {
		t.Fatalf("pool %+v, %v; want the first chat entry's capacity, skill billing and group vip", pool, err)
	}
	rep, err := Run(sc, opt)
	if err != nil || len(rep.Staffing) != 1 || rep.Staffing[0].Agents != 1 {
		t.Fatalf("staffing %+v, %v; want one agent for three chats in half an hour", rep.Staffing, err)
	}

	for _, tc := range []struct{ agents, extra, want string }{
		{`{"count": 1, "capacity": {"voice": 1}}`, "", "no agents entry takes chat"},
		{`{"count": 1, "capacity": {"chat": 1}, "groups": ["vip"]}`, "", `conversations need skill "billing", which no agents entry has`},
		{`{"count": 1, "capacity": {"chat": 1}, "skills": ["billing"]}`, "", `conversations are for group "vip", which no agents entry is in`},
		// Every offer is accepted after 30 s: no number of agents answers within 20 s.
		{`{"count": 1, "capacity": {"chat": 1}, "skills": ["billing"], "groups": ["vip"]}`,
			`, "accept_delay": {"dist": "fixed", "mean": "30s"}, "policy": {"routing": {"auto_accept": false, "offer_timeout": "1m"}}`,
			"no conversation waits for an agent, and the service level is 0.000: more agents cannot meet 80/20s"},
	} {
		_, err := Run(load(t, fmt.Sprintf(js, tc.agents, tc.extra), arrivals), opt)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s%s: %v; want %q", tc.agents, tc.extra, err, tc.want)
		}
	}
}

// TestStaffingBound: a search stops at MaxStaff agents (lowered here to
// 20, for a load of 40 agents).
func TestStaffingBound(t *testing.T) {
	defer func(n int) { maxStaff = n }(maxStaff)
	maxStaff = 20
	sc := load(t, `{"start": "2027-01-04T00:00:00Z", "interval": "30m", "intervals": 1,
		"service_level": {"answered_within": "20s"},
		"channels": {"chat": {"arrivals_per_interval": [600], "handle_time": {"dist": "fixed", "mean": "2m"}}},
		"agents": [{"count": 1, "capacity": {"chat": 1}}]}`, nil)
	_, err := Run(sc, Options{Replications: 1, StaffFor: &Target{Level: 0.8, Within: 20 * time.Second}, staffArrivals: 2000})
	if err == nil || !strings.Contains(err.Error(), "20 agents do not meet 80/20s") {
		t.Errorf("%v", err)
	}
}

// TestExamples: every example scenario loads and runs.
func TestExamples(t *testing.T) {
	paths, _ := filepath.Glob("../examples/simulate/*.json")
	if len(paths) == 0 {
		t.Fatal("no examples")
	}
	for _, p := range paths {
		sc, err := Load(p)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		rep := mustRun(t, sc, Options{Seed: 1, Replications: 2})
		if rep.Overall.Offered == 0 || rep.Overall.Answered == 0 {
			t.Errorf("%s: nothing happened: %+v", p, rep.Overall)
		}
	}
}
