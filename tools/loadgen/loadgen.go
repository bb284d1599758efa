// Package loadgen is omnirouter's load tool (`omnirouter bench`): it drives
// a running cluster through its public HTTP API the way production does —
// agents online, visitors and end users writing, agents accepting, leaving
// and releasing, a routing engine's reads — reports throughput and latency
// per operation, and then checks its own work: every acknowledged
// conversation must be in the cluster and the state machine's invariants
// must hold.
package loadgen

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/omnirouter/omnirouter/internal/pause"
)

// Workloads.
const (
	// WorkloadLifecycle plays whole conversations, on each channel in turn:
	// a chat from creation to offer, accept, messages, leave, reopen,
	// accept and end; a messaging conversation from creation to accept,
	// messages and release; an email from creation (assigned at once) to a
	// reply each way and release; a call from creation to ringing, answer
	// and hang-up.
	WorkloadLifecycle = "lifecycle"
	// WorkloadCreate only creates conversations: comparable to a key-value put.
	WorkloadCreate = "create"
	// WorkloadMixed mixes lifecycles, creations and reads.
	WorkloadMixed = "mixed"
	// WorkloadNone writes nothing: the run only reads, with its long-poll
	// readers and memory samples, while another process writes (event
	// readers measured apart from the writers whose latency they cost).
	WorkloadNone = "none"
)

// Config says what to run.
type Config struct {
	Targets     []string // HTTP base URLs of the nodes
	Duration    time.Duration
	Concurrency int
	Agents      int
	Workload    string
	Token       string      // bearer token (operator), if the cluster has auth
	TLS         *tls.Config // for https nodes (a private CA); targets without a scheme then default to https
	Progress    io.Writer   // a progress line a second; nil for none
	RunID       string      // prefix of every id the run creates; default from the clock
	SkipVerify  bool
	// Rate, when positive, makes the run an open loop: Rate arrivals per
	// second (conversations; for create, creations; for mixed, work
	// items) on a fixed schedule, at most Concurrency at once, each first
	// request timed from when its arrival was due (see pacer). Zero is a
	// closed loop: each of Concurrency clients starts its next arrival
	// when the last one is done.
	Rate float64
	// SampleEvery is how often every node's memory and state are read
	// through the run (Report.Memory); 0 reads none.
	SampleEvery time.Duration
	// MaxArrivals, when positive, ends the run once that many arrivals
	// have started (or Duration passed, whichever comes first).
	MaxArrivals int
	// LongPolls is how many event readers follow the event log with
	// long-polls through the load phase (Report.LongPolls).
	LongPolls int
}

// Report is the outcome of a run, as printed and as JSON.
type Report struct {
	Workload        string              `json:"workload"`
	Concurrency     int                 `json:"concurrency"`
	Agents          int                 `json:"agents"`
	Targets         []string            `json:"targets"`
	StartedAt       time.Time           `json:"started_at"`
	DurationSeconds float64             `json:"duration_seconds"`
	Ops             map[string]OpReport `json:"ops"`
	TimeToOfferMS   Latency             `json:"time_to_offer_ms"`
	Completed       int                 `json:"conversations_completed"`
	CompletedPerSec float64             `json:"conversations_completed_per_second"`
	OpenLoop        *OpenLoop           `json:"open_loop,omitempty"`
	Resources       *Resources          `json:"resources,omitempty"`
	Memory          *Memory             `json:"memory,omitempty"`
	LongPolls       *LongPolls          `json:"long_polls,omitempty"`
	Verify          *Verification       `json:"verify,omitempty"`
}

// OpenLoop is how an open-loop run's schedule went. Arrivals that were due
// but never started (every client was busy until the end) and a growing
// start lag both say the cluster did not keep up with the rate.
type OpenLoop struct {
	Rate      float64 `json:"rate_per_second"`
	Scheduled int     `json:"arrivals_scheduled"`
	Started   int     `json:"arrivals_started"`
	// StartLagMS is from when an arrival was due (or the tool's timer
	// fired, if later) to when a client took it: the wait for a free
	// client, which a cluster that keeps up keeps near zero.
	StartLagMS Latency `json:"start_lag_ms"`
}

// Verification is the tool's check of its own work.
type Verification struct {
	Checked int `json:"checked"`
	// Pruned counts conversations the run ended long enough ago for the
	// cluster to have pruned them (retention.ended), and that were gone.
	Pruned     int      `json:"pruned"`
	Missing    []string `json:"missing,omitempty"`
	Invariants string   `json:"invariants"`
}

// ErrVerify is returned (with the report) when the cluster lost an
// acknowledged conversation or broke an invariant.
var ErrVerify = errors.New("verification failed")

type run struct {
	cfg      Config
	c        *client
	ops      map[string]*recorder
	opsMu    sync.Mutex
	offerLat recorder
	startLag recorder // open loop: how late arrivals were taken
	done     atomic.Int64
	arrived  atomic.Int64 // arrivals started
	agents   []string
	created  [][]string   // per worker: acknowledged conversation ids
	ended    [][]endedAck // per worker: conversations the run ended
}

// endedAck is a conversation the run ended, and when: acked when the
// cluster answered, else the end was sent and its outcome is unknown (the
// run stopped first).
type endedAck struct {
	id    string
	at    time.Time
	acked bool
}

func (r *run) op(kind string) *recorder {
	r.opsMu.Lock()
	defer r.opsMu.Unlock()
	rec, ok := r.ops[kind]
	if !ok {
		rec = &recorder{}
		r.ops[kind] = rec
	}
	return rec
}

// call runs one API call, timing it under kind.
func (r *run) call(ctx context.Context, kind, method, path, key string, body, out any) error {
	return r.callFrom(ctx, time.Time{}, kind, method, path, key, body, out)
}

// callFrom is call timed from start, or from now if start is zero: an
// open-loop arrival's first request is timed from when it was due.
func (r *run) callFrom(ctx context.Context, start time.Time, kind, method, path, key string, body, out any) error {
	rec := r.op(kind)
	if start.IsZero() {
		start = time.Now()
	}
	err := r.c.do(ctx, method, path, key, body, out, func(err error) { rec.retried(errorClass(err)) })
	if err != nil {
		if ctx.Err() == nil {
			rec.fail(errorClass(err))
		}
		return err
	}
	rec.ok(time.Since(start))
	return nil
}

// Run executes the configured workload and verifies the cluster afterwards.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if len(cfg.Targets) == 0 {
		return nil, errors.New("no targets")
	}
	if cfg.Concurrency <= 0 || cfg.Agents <= 0 || cfg.Duration <= 0 {
		return nil, errors.New("concurrency, agents and duration must be positive")
	}
	if cfg.Rate < 0 || math.IsNaN(cfg.Rate) || math.IsInf(cfg.Rate, 0) {
		return nil, fmt.Errorf("rate %v: must be a positive number of arrivals per second, or 0 for a closed loop", cfg.Rate)
	}
	switch cfg.Workload {
	case WorkloadLifecycle, WorkloadCreate, WorkloadMixed, WorkloadNone:
	default:
		return nil, fmt.Errorf("unknown workload %q (lifecycle, create, mixed or none)", cfg.Workload)
	}
	scheme := "http://"
	if cfg.TLS != nil {
		scheme = "https://"
	}
	for i, t := range cfg.Targets {
		if !strings.Contains(t, "://") {
			cfg.Targets[i] = scheme + t
		}
		cfg.Targets[i] = strings.TrimRight(cfg.Targets[i], "/")
	}
	if cfg.RunID == "" {
		cfg.RunID = fmt.Sprintf("b%x", time.Now().UnixNano()&0xffffffffff)
	}
	c, err := newClient(cfg.Targets, cfg.Token, cfg.Concurrency, cfg.TLS)
	if err != nil {
		return nil, err
	}
	defer c.close()
	r := &run{cfg: cfg, c: c, ops: map[string]*recorder{},
		created: make([][]string, cfg.Concurrency), ended: make([][]endedAck, cfg.Concurrency)}
	writes := cfg.Workload != WorkloadNone
	if writes {
		if err := r.setup(ctx); err != nil {
			return nil, fmt.Errorf("setting up agents: %w", err)
		}
	}

	metrics := newMetricsReader(cfg.Targets, cfg.Token, cfg.TLS)
	before := metrics.sample(ctx, r.totalOps())
	runCtx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	start := time.Now()
	stopProgress := r.progress(start)
	var arrivals chan time.Time
	var pace *pacer
	started := make(chan int, 1)
	if cfg.Rate > 0 {
		arrivals = make(chan time.Time)
		end, _ := runCtx.Deadline() // the workers stop there too
		pace = newPacer(start, end, cfg.Rate)
		go func() { started <- pace.run(runCtx, arrivals) }()
	}
	stopPolls := func() *LongPolls { return nil }
	if cfg.LongPolls > 0 {
		stopPolls = runLongPolls(runCtx, cfg.Targets, cfg.Token, cfg.TLS, cfg.LongPolls)
	}
	memc := make(chan *Memory, 1)
	if cfg.SampleEvery > 0 {
		go func() { memc <- r.sampleMemory(runCtx, metrics, start, cfg.SampleEvery) }()
	} else {
		memc <- nil
	}
	var wg sync.WaitGroup
	if writes {
		for w := range cfg.Concurrency {
			wg.Go(func() { r.worker(withHome(runCtx, w), w, arrivals) })
		}
	} else {
		<-runCtx.Done() // readers only: they run until the run's end
	}
	wg.Wait()
	elapsed := time.Since(start)
	stopProgress()
	cancel() // the sampler's last reading is the run's end
	mem := <-memc
	polls := stopPolls()
	after := metrics.sample(ctx, r.totalOps())

	rep := &Report{Workload: cfg.Workload, Concurrency: cfg.Concurrency, Agents: cfg.Agents, Targets: cfg.Targets,
		StartedAt: start.UTC(), DurationSeconds: elapsed.Seconds(), Ops: map[string]OpReport{},
		Completed: int(r.done.Load()), CompletedPerSec: float64(r.done.Load()) / elapsed.Seconds()}
	for kind, rec := range r.ops {
		rep.Ops[kind] = rec.report(elapsed)
	}
	rep.TimeToOfferMS = r.offerLat.report(elapsed).LatencyMS
	if pace != nil {
		// The pacer returns once the run's context ends, as the workers did.
		rep.OpenLoop = &OpenLoop{Rate: cfg.Rate, Scheduled: pace.scheduled(), Started: <-started,
			StartLagMS: r.startLag.report(elapsed).LatencyMS}
	}
	rep.Resources = resources(cfg.Targets, before, after)
	rep.Memory = mem
	rep.LongPolls = polls
	if cfg.SkipVerify || !writes {
		return rep, nil
	}
	rep.Verify = r.verify(ctx)
	if len(rep.Verify.Missing) > 0 || rep.Verify.Invariants != "ok" {
		return rep, ErrVerify
	}
	return rep, nil
}

func (r *run) setup(ctx context.Context) error {
	r.agents = make([]string, r.cfg.Agents)
	errs := make(chan error, r.cfg.Agents)
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	for i := range r.agents {
		id := fmt.Sprintf("%s-a%04d", r.cfg.RunID, i)
		r.agents[i] = id
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			body := map[string]any{"name": id, "capacity": map[string]int{"chat": 4, "messaging": 8, "email": 8, "voice": 1}, "skills": []string{r.cfg.RunID}}
			if err := r.call(ctx, "agent_upsert", "PUT", "/v1/agents/"+id, id+"-u", body, nil); err != nil {
				errs <- err
				return
			}
			if err := r.call(ctx, "agent_status", "PUT", "/v1/agents/"+id+"/status", id+"-s", statusBody{Status: "online"}, nil); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// totalOps is how many operations succeeded so far, setup's included.
func (r *run) totalOps() int {
	r.opsMu.Lock()
	defer r.opsMu.Unlock()
	ops := 0
	for _, rec := range r.ops {
		ops += rec.count()
	}
	return ops
}

func (r *run) progress(start time.Time) (stop func()) {
	if r.cfg.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		last, lastOps := start, 0
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				ops := r.totalOps()
				fmt.Fprintf(r.cfg.Progress, "%5.0fs  %8d ops  %8.0f ops/s  %7d conversations completed\n",
					now.Sub(start).Seconds(), ops, float64(ops-lastOps)/now.Sub(last).Seconds(), r.done.Load())
				last, lastOps = now, ops
			}
		}
	}()
	return func() { close(done); <-finished }
}

// conversation is the part of the API's conversation the tool reads.
type conversation struct {
	ID      string `json:"id"`
	State   string `json:"state"`
	AgentID string `json:"agent_id"`
}

// worker plays one client. In a closed loop it starts its next arrival as
// soon as the last one is done; in an open loop it takes arrivals from the
// pacer, each timed from the time the pacer sent with it (begin).
func (r *run) worker(ctx context.Context, w int, arrivals <-chan time.Time) {
	rng := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
	for i := 0; ctx.Err() == nil; i++ {
		if n := r.arrived.Add(1); r.cfg.MaxArrivals > 0 && n > int64(r.cfg.MaxArrivals) {
			return
		}
		var begin time.Time // zero: each call timed from its own start
		if arrivals != nil {
			select {
			case begin = <-arrivals:
			case <-ctx.Done():
				return
			}
			r.startLag.ok(max(0, time.Since(begin)))
		}
		id := fmt.Sprintf("%s-w%03d-%07d", r.cfg.RunID, w, i)
		switch r.cfg.Workload {
		case WorkloadCreate:
			r.create(ctx, begin, w, id, "chat", false)
		case WorkloadLifecycle:
			r.lifecycle(ctx, begin, w, id, lifecycleChannels[i%len(lifecycleChannels)])
		case WorkloadMixed:
			switch p := rng.IntN(10); {
			case p < 5:
				r.lifecycle(ctx, begin, w, id, lifecycleChannels[i%len(lifecycleChannels)])
			case p < 8:
				r.create(ctx, begin, w, id, []string{"chat", "messaging"}[rng.IntN(2)], false)
			default:
				r.read(ctx, begin, w, rng)
			}
		}
	}
}

// messageBody is a message request.
type messageBody struct {
	Author  string `json:"author"`
	AgentID string `json:"agent_id,omitempty"`
	Text    string `json:"text"`
}

// createBody is a create request.
type createBody struct {
	ID      string   `json:"id"`
	Channel string   `json:"channel"`
	Client  string   `json:"client,omitempty"`
	Subject string   `json:"subject,omitempty"`
	Message string   `json:"message,omitempty"`
	Skills  []string `json:"skills"`
}

// agentIDBody is an accept's or a leave's body.
type agentIDBody struct {
	AgentID string `json:"agent_id"`
}

// endBody is an end's body.
type endBody struct {
	By      string `json:"by"`
	AgentID string `json:"agent_id,omitempty"`
}

// releaseBody is a release's body.
type releaseBody struct {
	ConversationID string `json:"conversation_id"`
	TicketStatus   string `json:"ticket_status"`
}

// statusBody is an agent status change.
type statusBody struct {
	Status string `json:"status"`
}

// create creates a conversation, timed from begin (now if zero); with
// read, it decodes the answer (the create workload does not need it, and
// the tool shares the machine).
func (r *run) create(ctx context.Context, begin time.Time, w int, id, channel string, read bool) (conversation, bool) {
	var conv conversation
	// The run's skill keeps its conversations and agents apart from earlier
	// runs' (a create run leaves a queue behind that would come first).
	body := createBody{ID: id, Channel: channel, Message: "Hello, I need help with my order", Skills: []string{r.cfg.RunID}}
	switch channel {
	case "chat":
		body.Client = "web"
	case "email":
		body.Subject = "My order"
	case "voice":
		body.Message = "" // a call has none
	}
	var out any
	if read {
		out = &conv
	}
	if err := r.callFrom(ctx, begin, "create", "POST", "/v1/conversations", id, body, out); err != nil {
		return conv, false
	}
	r.created[w] = append(r.created[w], id)
	return conv, true
}

func (r *run) read(ctx context.Context, begin time.Time, w int, rng *rand.Rand) {
	ids := r.created[w]
	if len(ids) == 0 {
		return
	}
	var conv conversation
	_ = r.callFrom(ctx, begin, "get_conversation", "GET", "/v1/conversations/"+ids[rng.IntN(len(ids))], "", nil, &conv)
}

// awaitOffer returns the conversation once it is offered or assigned,
// polling while it waits in the queue.
func (r *run) awaitOffer(ctx context.Context, conv conversation, created time.Time) (conversation, bool) {
	for ctx.Err() == nil {
		if conv.State == "offered" || conv.State == "assigned" {
			r.offerLat.ok(time.Since(created))
			return conv, true
		}
		if !pause.For(ctx, 20*time.Millisecond) {
			return conv, false
		}
		if err := r.call(ctx, "get_conversation", "GET", "/v1/conversations/"+conv.ID, "", nil, &conv); err != nil {
			return conv, false
		}
	}
	return conv, false
}

// accept has the offered agent accept (nothing to do if auto-accepted).
func (r *run) accept(ctx context.Context, conv conversation, key string) bool {
	if conv.State == "assigned" {
		return true
	}
	return r.call(ctx, "accept", "POST", "/v1/conversations/"+conv.ID+"/accept", key, agentIDBody{AgentID: conv.AgentID}, nil) == nil
}

// lifecycleChannels are the channels the lifecycle workload plays in turn.
var lifecycleChannels = []string{"chat", "messaging", "email", "voice"}

// lifecycle plays one conversation; its creation (and its time to offer)
// is timed from begin, or from now if begin is zero.
func (r *run) lifecycle(ctx context.Context, begin time.Time, w int, id string, channel string) {
	chat := channel == "chat"
	start := begin
	if start.IsZero() {
		start = time.Now()
	}
	conv, ok := r.create(ctx, start, w, id, channel, true)
	if !ok {
		return
	}
	if conv, ok = r.awaitOffer(ctx, conv, start); !ok || !r.accept(ctx, conv, id+"-acc") {
		return
	}
	agent := conv.AgentID
	path := "/v1/conversations/" + id
	if channel == "voice" {
		// Answered, then the agent hangs up (no wrap-up by default).
		r.finish(w, id, r.call(ctx, "end", "POST", path+"/end", id+"-end", endBody{By: "agent", AgentID: agent}, nil) == nil)
		return
	}
	// msg sends a message; with read, conv takes the answer (the state
	// after a message that reopens a chat).
	msg := func(key, author, text string, read bool) bool {
		body := messageBody{Author: author, Text: text}
		if author == "agent" {
			body.AgentID = agent
		}
		var out any
		if read {
			out = &conv
		}
		return r.call(ctx, "message", "POST", path+"/messages", id+key, body, out) == nil
	}
	if !msg("-m1", "agent", "Hi, how can I help?", false) || !msg("-m2", "visitor", "Where is my parcel?", false) {
		return
	}
	if !chat { // messaging, email
		body := releaseBody{ConversationID: id, TicketStatus: "pending"}
		r.finish(w, id, r.call(ctx, "release", "POST", "/v1/agents/"+agent+"/release", id+"-rel", body, nil) == nil)
		return
	}
	if r.call(ctx, "leave", "POST", path+"/leave", id+"-leave", agentIDBody{AgentID: agent}, nil) != nil {
		return
	}
	// The visitor writes again: the same chat is back in the queue.
	reopened := time.Now()
	if !msg("-m3", "visitor", "Sorry, one more thing", true) {
		return
	}
	if conv, ok = r.awaitOffer(ctx, conv, reopened); !ok || !r.accept(ctx, conv, id+"-acc2") {
		return
	}
	r.finish(w, id, r.call(ctx, "end", "POST", path+"/end", id+"-end", endBody{By: "visitor"}, nil) == nil)
}

// finish records a conversation whose end was sent: acked when the cluster
// answered (it then counts as completed).
func (r *run) finish(w int, id string, acked bool) {
	r.ended[w] = append(r.ended[w], endedAck{id: id, at: time.Now(), acked: acked})
	if acked {
		r.done.Add(1)
	}
}

// verify reads back every conversation the cluster acknowledged and the
// state machine's invariant check. A conversation the run ended may be gone
// once the cluster's retention.ended has passed since (give or take
// pruneSlack); before that it must be there, ended.
func (r *run) verify(ctx context.Context) *Verification {
	v := &Verification{}
	retention, err := r.retention(ctx)
	if err != nil {
		v.Invariants = "check failed: reading the policy: " + err.Error()
		return v
	}
	ended := map[string]endedAck{}
	var ids []string
	for w := range r.created {
		ids = append(ids, r.created[w]...)
		for _, e := range r.ended[w] {
			ended[e.id] = e
		}
	}
	var mu sync.Mutex
	next := atomic.Int64{}
	var wg sync.WaitGroup
	for range min(32, len(ids)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(ids) {
					return
				}
				var conv conversation
				err := r.c.do(ctx, "GET", "/v1/conversations/"+ids[i], "", nil, &conv, nil)
				end, endSent := ended[ids[i]]
				mu.Lock()
				v.Checked++
				switch {
				case err != nil && endSent && isNotFound(err) && time.Since(end.at) > retention-pruneSlack:
					v.Pruned++
				case err != nil:
					v.Missing = append(v.Missing, fmt.Sprintf("%s: %v", ids[i], err))
				case end.acked && conv.State != "ended":
					v.Missing = append(v.Missing, fmt.Sprintf("%s: acknowledged end, but state is %s", ids[i], conv.State))
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	sort.Strings(v.Missing)
	var inv struct {
		OK         bool     `json:"ok"`
		Violations []string `json:"violations"`
	}
	switch err := r.c.do(ctx, "GET", "/v1/debug/invariants", "", nil, &inv, nil); {
	case err != nil:
		v.Invariants = "check failed: " + err.Error()
	case inv.OK:
		v.Invariants = "ok"
	default:
		v.Invariants = "broken: " + strings.Join(inv.Violations, "; ")
	}
	return v
}

// pruneSlack is the uncertainty of the tool's end times against the
// cluster's clock: a conversation ended within it of retention.ended ago
// may or may not be pruned.
const pruneSlack = 5 * time.Second

// retention reads the cluster's retention.ended.
func (r *run) retention(ctx context.Context) (time.Duration, error) {
	var pol struct {
		Retention struct {
			Ended string `json:"ended"`
		} `json:"retention"`
	}
	if err := r.c.do(ctx, "GET", "/v1/policy", "", nil, &pol, nil); err != nil {
		return 0, err
	}
	return time.ParseDuration(pol.Retention.Ended)
}

// WriteSummary prints the report for a person.
func (rep *Report) WriteSummary(w io.Writer) {
	fmt.Fprintf(w, "workload %s, %d clients, %d agents, %.1fs against %s\n",
		rep.Workload, rep.Concurrency, rep.Agents, rep.DurationSeconds, strings.Join(rep.Targets, ", "))
	fmt.Fprintf(w, "%-18s %9s %10s %8s %8s %8s %8s %8s  %s\n", "operation", "count", "per sec", "p50 ms", "p90", "p99", "p99.9", "max", "errors")
	kinds := make([]string, 0, len(rep.Ops))
	for k := range rep.Ops {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	for _, k := range kinds {
		o := rep.Ops[k]
		var errs []string
		for class, n := range o.Errors {
			errs = append(errs, fmt.Sprintf("%s ×%d", class, n))
		}
		for class, n := range o.Retries {
			errs = append(errs, fmt.Sprintf("retried %s ×%d", class, n))
		}
		slices.Sort(errs)
		l := o.LatencyMS
		fmt.Fprintf(w, "%-18s %9d %10.0f %8.2f %8.2f %8.2f %8.2f %8.2f  %s\n", k, o.Count, o.Throughput, l.P50, l.P90, l.P99, l.P999, l.Max, strings.Join(errs, ", "))
	}
	l := rep.TimeToOfferMS
	fmt.Fprintf(w, "time to offer (ms): p50 %.2f  p90 %.2f  p99 %.2f  max %.2f\n", l.P50, l.P90, l.P99, l.Max)
	fmt.Fprintf(w, "conversations completed: %d (%.0f/s)\n", rep.Completed, rep.CompletedPerSec)
	if o := rep.OpenLoop; o != nil {
		l := o.StartLagMS
		fmt.Fprintf(w, "open loop at %.0f/s: %d of %d arrivals started; start lag (ms) p50 %.2f  p99 %.2f  max %.2f",
			o.Rate, o.Started, o.Scheduled, l.P50, l.P99, l.Max)
		if o.Started < o.Scheduled {
			fmt.Fprint(w, "  (the cluster did not keep up)")
		}
		fmt.Fprintln(w)
	}
	if rep.Resources != nil {
		rep.Resources.writeSummary(w)
	}
	if lp := rep.LongPolls; lp != nil {
		fmt.Fprintf(w, "long-polls: %d readers, %d requests, %d events read, errors %v\n", lp.Clients, lp.Requests, lp.Events, lp.Errors)
	}
	if rep.Memory != nil && len(rep.Memory.Seconds) >= 3 {
		rep.Memory.writeSummary(w)
	}
	if v := rep.Verify; v != nil {
		fmt.Fprintf(w, "verify: %d conversations checked, %d pruned after they ended, %d missing, invariants %s\n",
			v.Checked, v.Pruned, len(v.Missing), v.Invariants)
		for i, m := range v.Missing {
			if i == 20 {
				fmt.Fprintf(w, "  ... and %d more\n", len(v.Missing)-20)
				break
			}
			fmt.Fprintf(w, "  MISSING %s\n", m)
		}
	}
}

// WriteJSON writes the report as indented JSON.
func (rep *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}
