package nemesis

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

var (
	flagNemesis  = flag.Bool("nemesis", false, "run the fault-injection test against a real three-node cluster")
	flagDuration = flag.Duration("nemesis.duration", 60*time.Second, "how long the load and the faults run")
	flagSeed     = flag.Uint64("nemesis.seed", 0, "seed of the fault schedule and the clients (0: random)")
	flagOut      = flag.String("nemesis.out", "", "directory to keep the history, seed and visualization in")
)

// The run's policy: timers short enough to fire many times within the run
// (offers, rings, waiting calls, wrap-up), and an hour of reassign_delay so
// that only the moves the model allows happen without a client operation
// (see model.go). Emails are assigned without an offer, away agents get
// them too. Focus mode starts off; the workload turns it on and off.
var runPolicy = map[string]any{
	"chat": map[string]any{
		"web":                map[string]string{"idle_after": "5s", "idle_timeout": "5s", "disconnect_timeout": "2s"},
		"agent_can_end_chat": true,
	},
	"messaging": map[string]any{"inactivity_timeout": "3s", "count_inactive_messaging": false},
	"email":     map[string]any{"auto_accept": true, "route_to_away": true},
	"voice":     map[string]any{"ring_timeout": "2s", "wrap_up": "3s", "max_queue_wait": "5s"},
	"routing": map[string]any{"mode": "auto", "strategy": "spare_capacity", "auto_accept": false,
		"offer_timeout": "3s", "reassign_delay": "1h", "focus_mode": false},
}

// serveFlags: continuous raft snapshots (there is no "snapshot now"
// endpoint: GET /v1/cluster/snapshot is a backup download; the size
// condition is off, or snapshots would space out as the state grows), few
// trailing logs so that a node coming back catches up by InstallSnapshot.
var serveFlags = []string{"--snapshot-threshold", "100", "--snapshot-log-ratio", "0", "--snapshot-interval", "1s", "--trailing-logs", "20",
	"--shutdown-timeout", "3s", "--log-level", "info"}

// TestNemesis runs the load and the nemesis against a real cluster, then
// heals it and checks linearizability and the invariants.
func TestNemesis(t *testing.T) {
	if !*flagNemesis {
		t.Skip("fault injection runs with -nemesis (and -nemesis.duration, -nemesis.seed)")
	}
	seed := *flagSeed
	if seed == 0 {
		seed = rand.Uint64() % 1_000_000_000
	}
	t.Logf("seed %d (replay: go test ./tools/nemesis -run TestNemesis -nemesis -nemesis.seed %d -nemesis.duration %v)", seed, seed, *flagDuration)
	rng := rand.New(rand.NewPCG(seed, 0))

	dir := t.TempDir()
	bin, err := Build("../..", dir)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewCluster(ClusterConfig{Bin: bin, Dir: dir, Extra: serveFlags})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Shutdown)
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.WaitReady(ctx, 60*time.Second); err != nil {
		t.Fatal(err)
	}

	hist := NewHistory()
	var urls []string
	for _, n := range c.Nodes {
		urls = append(urls, n.URL())
	}
	agents := AgentMix(8, rng)
	for _, a := range agents {
		t.Logf("agent %s", a)
	}
	w := &Workload{Hist: hist, URLs: urls, Seed: seed, Agents: agents, Visitors: 6, Policy: runPolicy, FocusEvery: 8 * time.Second}
	if err := w.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	hooks, err := StartWebhookCheck(ctx, c, seed, 5) // webhook.go
	if err != nil {
		t.Fatal(err)
	}
	defer hooks.Close()

	// Load and faults.
	nem := &Nemesis{C: c, Rng: rand.New(rand.NewPCG(seed, 1)), Hist: hist, Logf: t.Logf}
	runCtx, stop := context.WithTimeout(ctx, *flagDuration)
	done := make(chan struct{})
	go func() { nem.Run(runCtx); close(done) }()
	w.Run(runCtx)
	stop()
	<-done
	t.Logf("load and faults over after %v; healing", time.Since(hist.start).Round(time.Second))

	// Heal, quiesce, check.
	var verdict []string
	fail := func(format string, args ...any) {
		verdict = append(verdict, "FAIL "+fmt.Sprintf(format, args...))
	}
	pass := func(format string, args ...any) {
		verdict = append(verdict, "ok   "+fmt.Sprintf(format, args...))
	}
	nem.HealAll()
	if err := c.WaitReady(ctx, 90*time.Second); err != nil {
		keepNodeLogs(t, c, seed)
		t.Fatalf("cluster not ready after healing: %v", err)
	}
	if err := w.Drain(ctx); err != nil {
		keepNodeLogs(t, c, seed)
		t.Fatalf("drain: %v", err)
	}
	convs := w.Conversations()
	ids := make([]string, 0, len(convs))
	for id := range convs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	// Every armed timer must fire: each chat ends (its idle timer is always
	// armed), each queued messaging conversation becomes inactive, each
	// call not in progress ends (max_queue_wait, or wrap-up).
	pending := ids
	timersErr := Poll(ctx, 90*time.Second, func() error {
		var still []string
		for _, id := range pending {
			code, b, err := get(ctx, c.Nodes[0].URL()+"/v1/conversations/"+id, 10*time.Second)
			if err != nil {
				return err
			}
			if code == 404 {
				continue
			}
			var cv Conversation
			if err := jsonUnmarshal(b, &cv); err != nil {
				return err
			}
			if (cv.Channel == "chat" && cv.State != "ended") || (cv.Channel == "messaging" && cv.State == "queued" && cv.Activity != "inactive") ||
				(cv.Channel == "voice" && cv.State != "ended" && cv.State != "assigned") {
				still = append(still, id)
			}
		}
		pending = still
		if len(still) > 0 {
			return fmt.Errorf("%d conversations still waiting for a timer, e.g. %s", len(still), still[0])
		}
		return nil
	})
	if timersErr != nil {
		fail("timers: %v", timersErr)
	} else {
		pass("timers: every chat ended, every queued messaging conversation went inactive, every call not in progress ended")
	}
	applied, err := c.WaitConverged(ctx, 60*time.Second)
	if err != nil {
		t.Fatalf("nodes do not converge: %v", err)
	}

	identical, size, snaps, err := CompareSnapshots(ctx, c)
	switch {
	case err != nil:
		fail("snapshots: %v", err)
	case !identical:
		fail("snapshots differ between nodes at applied index %d", applied)
		for id, b := range snaps {
			_ = os.WriteFile(filepath.Join(dir, "snapshot-"+id+".bin"), b, 0o644)
		}
	default:
		pass("snapshots byte-identical on all 3 nodes (%d bytes, applied index %d)", size, applied)
	}
	if bad := CheckInvariants(ctx, c); len(bad) > 0 {
		fail("invariants: %s", strings.Join(bad, "; "))
	} else {
		pass("GET /v1/debug/invariants ok on every node")
	}
	reads, diffs, err := ReadAll(ctx, c, ids)
	if err != nil {
		t.Fatalf("reading conversations: %v", err)
	}
	if len(diffs) > 0 {
		fail("stale reads differ between nodes: %s", strings.Join(first(diffs, 5), "; "))
	} else {
		pass("stale reads of all %d conversations identical on every node", len(ids))
	}
	ops := hist.Ops()
	if bad := CheckMessages(ops, reads); len(bad) > 0 {
		fail("acknowledged writes: %d problems: %s", len(bad), strings.Join(first(bad, 5), "; "))
	} else {
		pass("every acknowledged conversation and message present, in order; no rejected message applied")
	}
	focus := NewFocusSchedule(ops)
	var replay *Replay
	events, err := FetchEvents(ctx, c.Nodes[0])
	if err != nil {
		fail("event stream: %v", err)
	} else {
		r := NewReplay(convs, agents, focus)
		replay = r
		for i := range events {
			r.Apply(&events[i])
		}
		r.Finish(reads)
		ended, chats := 0, 0
		for id, rc := range r.Convs {
			if rc.Ended == 1 {
				ended++
			}
			if convs[id] == "chat" && reads[id] != nil {
				chats++
				if rc.Ended != 1 {
					r.violations = append(r.violations, fmt.Sprintf("chat %s ended %d times", id, rc.Ended))
				}
			}
		}
		if v := r.Violations(); len(v) > 0 {
			fail("event stream replay: %d violations: %s", len(v), strings.Join(first(v, 8), "; "))
		} else {
			pass("event stream (%d events): one holder at a time, routing only within capacity and (%d routings in focus mode) focus mode, loads as reported, no agent over capacity but by reactivation, none on two calls, %d conversations ended exactly once (%d chats)",
				len(events), sum(r.FocusRouted), ended, chats)
		}
	}
	if bad, summary := hooks.Finish(ctx); len(bad) > 0 {
		fail("webhooks: %d problems: %s", len(bad), strings.Join(first(bad, 5), "; "))
	} else {
		pass("webhooks: %s", summary)
	}
	if v := w.Violations(); len(v) > 0 {
		fail("client-side checks: %s", strings.Join(first(v, 5), "; "))
	}
	readBad, readStats := CheckAgentReads(ops, convs, focus)
	if len(readBad) > 0 {
		fail("agent reads: %d violations: %s", len(readBad), strings.Join(first(readBad, 5), "; "))
	} else {
		pass("agent reads (%d, %d in focus mode, %d showing a chat or call routed in focus mode): no chat or call above capacity, never a chat and a call both routed in focus mode",
			readStats.Reads, readStats.InFocus, readStats.Checkable)
	}
	if len(hist.ServerErrors) > 0 {
		fail("%d answers with a 5xx other than 502/503/504: %s", len(hist.ServerErrors), strings.Join(first(hist.ServerErrors, 5), "; "))
	}

	model := Model(AgentsOf(agents))
	pops := Operations(ops)
	start := time.Now()
	res, info := porcupine.CheckOperationsVerbose(model, pops, 5*time.Minute)
	switch res {
	case porcupine.Ok:
		pass("linearizable: %d conversation operations checked with porcupine in %v", len(pops), time.Since(start).Round(time.Millisecond))
	case porcupine.Unknown:
		fail("linearizability check timed out (%d operations)", len(pops))
	default:
		fail("NOT linearizable (%d conversation operations)", len(pops))
	}

	faults := nem.Faults()
	// ≥5 in the 60 s run, ≥20 in the 5-minute one.
	minFaults := max(1, int(*flagDuration/(12*time.Second)))
	if len(faults) < minFaults {
		fail("only %d faults injected (want ≥ %d)", len(faults), minFaults)
	}

	// Report.
	var sb strings.Builder
	fmt.Fprintf(&sb, "nemesis report (seed %d, %v of load):\n", seed, *flagDuration)
	fmt.Fprintf(&sb, "operations: %d\n", len(ops))
	byKind := map[string]map[Status]int{}
	statuses := map[Status]int{}
	for _, op := range ops {
		if byKind[op.Kind] == nil {
			byKind[op.Kind] = map[Status]int{}
		}
		byKind[op.Kind][op.Status]++
		statuses[op.Status]++
	}
	kinds := make([]string, 0, len(byKind))
	for k := range byKind {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		m := byKind[k]
		fmt.Fprintf(&sb, "  %-13s ok %5d  rejected %5d  ambiguous %4d\n", k, m[OK], m[Rejected], m[Ambiguous])
	}
	fmt.Fprintf(&sb, "  total         ok %5d  rejected %5d  ambiguous %4d\n", statuses[OK], statuses[Rejected], statuses[Ambiguous])
	codes := map[string]int{}
	for _, op := range ops {
		if op.Status == Rejected {
			codes[fmt.Sprintf("%d %s", op.HTTP, op.Code)]++
		}
	}
	fmt.Fprintf(&sb, "rejections by code: %v\n", codes)
	byChannel := map[string]int{}
	created := map[string]int{}
	for _, op := range ops {
		if op.Channel != "" {
			byChannel[op.Channel]++
			if op.Kind == KindCreate && op.Status == OK {
				created[op.Channel]++
			}
		}
	}
	fmt.Fprintf(&sb, "operations per channel: %v; conversations created: %v\n", byChannel, created)
	fmt.Fprintf(&sb, "  acknowledged  %9s %9s %9s %9s\n", "chat", "messaging", "email", "voice")
	for _, k := range kinds {
		var row [4]int
		seen := false
		for _, op := range ops {
			if i := slices.Index(Channels, op.Channel); op.Kind == k && op.Status == OK && i >= 0 {
				row[i]++
				seen = true
			}
		}
		if seen {
			fmt.Fprintf(&sb, "  %-13s %9d %9d %9d %9d\n", k, row[0], row[1], row[2], row[3])
		}
	}
	if replay != nil {
		reasons := map[string]int{}
		for id, rc := range replay.Convs {
			if rc.Ended == 1 && (convs[id] == "voice" || convs[id] == "email") {
				reasons[convs[id]+":"+rc.Reason]++
			}
		}
		fmt.Fprintf(&sb, "routed per channel: %v, in focus mode: %v; loads above capacity reported (reactivation): %v\n",
			replay.Routed, replay.FocusRouted, replay.OverCapacity)
		fmt.Fprintf(&sb, "calls and emails ended by reason: %v\n", reasons)
	}
	evTypes := map[string]int{}
	for _, e := range events {
		if e.Type == "ticket.created" && convs[e.ConversationID] == "voice" {
			var d struct {
				Ticket struct {
					Via string `json:"via"`
				} `json:"ticket"`
			}
			if decodeBody(e.Data, &d) {
				evTypes["ticket.created/voice via "+d.Ticket.Via]++
			}
		}
		if e.Type == "conversation.wrap_up" || e.Type == "conversation.offer_timed_out" || e.Type == "conversation.rejected" ||
			e.Type == "conversation.requeued" || e.Type == "policy.changed" {
			evTypes[e.Type+"/"+convs[e.ConversationID]]++
		}
	}
	fmt.Fprintf(&sb, "events: %v\n", evTypes)
	fmt.Fprintf(&sb, "focus mode: schedule %v then %v\n", focus.Prefix, fmtTail(focus.Tail))
	fk := map[string]int{}
	for _, f := range faults {
		fk[f.Kind]++
	}
	fmt.Fprintf(&sb, "faults: %d %v\n", len(faults), fk)
	fmt.Fprintf(&sb, "proxy: %d connections, %d dropped, %d unattributed\n", c.Net.Accepted.Load(), c.Net.Dropped.Load(), c.Net.Unresolved.Load())
	fmt.Fprintf(&sb, "raft snapshots: %s\n", snapshotCounts(c))
	for _, v := range verdict {
		sb.WriteString(v + "\n")
	}
	t.Log(sb.String())

	failed := false
	for _, v := range verdict {
		failed = failed || strings.HasPrefix(v, "FAIL")
	}
	if failed || *flagOut != "" {
		dump := &Dump{Seed: seed, Faults: faults, Ops: ops, Verdict: verdict}
		dirs := []string{dir}
		if *flagOut != "" {
			dirs = append(dirs, *flagOut)
		} else if keep, err := os.MkdirTemp("", fmt.Sprintf("omnirouter-nemesis-%d-", seed)); err == nil {
			dirs = append(dirs, keep) // t.TempDir is removed at the end
		}
		for _, d := range dirs {
			_ = os.MkdirAll(d, 0o755)
			path := filepath.Join(d, fmt.Sprintf("nemesis-%d-history.json", seed))
			if err := dump.WriteFile(path); err != nil {
				t.Errorf("writing history: %v", err)
				continue
			}
			t.Logf("history and seed written to %s", path)
			if res == porcupine.Illegal {
				html := filepath.Join(d, fmt.Sprintf("nemesis-%d-linearizability.html", seed))
				if err := porcupine.VisualizePath(model, info, html); err == nil {
					t.Logf("porcupine visualization: %s", html)
				}
			}
			if failed && d != dir {
				copyNodeLogs(c, d)
			}
		}
	}
	if failed {
		t.Fatal("nemesis run failed; see the report above")
	}
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func fmtTail(b *bool) string {
	if b == nil {
		return "unknown"
	}
	return fmt.Sprint(*b)
}

func first(ss []string, n int) []string {
	if len(ss) > n {
		return append(ss[:n:n], fmt.Sprintf("… %d more", len(ss)-n))
	}
	return ss
}

// snapshotCounts counts the raft snapshots each node's log reports.
func snapshotCounts(c *Cluster) string {
	var parts []string
	for _, n := range c.Nodes {
		b, _ := os.ReadFile(n.LogPath)
		s := string(b)
		parts = append(parts, fmt.Sprintf("%s taken %d installed %d", n.ID,
			strings.Count(s, "snapshot complete"), strings.Count(s, "snapshot installed")+strings.Count(s, "Installed remote snapshot")))
	}
	return strings.Join(parts, ", ")
}

// keepNodeLogs copies every node's log out of the test's temporary
// directory (to -nemesis.out, else a new temporary directory that is not
// removed) before a run gives up early, so the failure can be read.
func keepNodeLogs(t *testing.T, c *Cluster, seed uint64) {
	d := *flagOut
	if d == "" {
		var err error
		if d, err = os.MkdirTemp("", fmt.Sprintf("omnirouter-nemesis-%d-", seed)); err != nil {
			t.Logf("keeping node logs: %v", err)
			return
		}
	}
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Logf("keeping node logs: %v", err)
		return
	}
	copyNodeLogs(c, d)
	t.Logf("node logs kept in %s", d)
}

// copyNodeLogs copies every node's log into dir as <id>.log.
func copyNodeLogs(c *Cluster, dir string) {
	for _, n := range c.Nodes {
		if b, err := os.ReadFile(n.LogPath); err == nil {
			_ = os.WriteFile(filepath.Join(dir, n.ID+".log"), b, 0o644)
		}
	}
}
