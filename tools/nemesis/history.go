package nemesis

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/omnirouter/omnirouter/internal/pause"
)

// Status is an operation's outcome as the client saw it.
type Status string

const (
	// OK: 2xx.
	OK Status = "ok"
	// Rejected: a 4xx with an error code; the command changed nothing.
	Rejected Status = "rejected"
	// Ambiguous: the client gave up (transport errors, 503, timeouts until
	// the deadline); the command may or may not have taken effect.
	Ambiguous Status = "ambiguous"
)

// Op kinds. The conversation ones are checked by Model.
const (
	KindCreate      = "create"
	KindRead        = "read"
	KindAccept      = "accept"
	KindReject      = "reject"
	KindLeave       = "leave"
	KindEndVisitor  = "end_visitor"
	KindEndAgent    = "end_agent"
	KindRelease     = "release"
	KindMsgVisitor  = "msg_visitor"
	KindMsgAgent    = "msg_agent"
	KindPresence    = "presence"
	KindTicket      = "ticket" // PUT .../ticket; Arg is the status
	KindAssign      = "assign" // POST /v1/assignments; Conv/Agent from its answer
	KindAgentPut    = "agent_put"
	KindAgentStatus = "agent_status"
	KindAgentRead   = "agent_read" // View holds the answer
	KindPolicy      = "policy"     // PUT /v1/policy; Arg is focus_mode=true|false
)

// Op is one recorded operation. Times are nanoseconds since the history's
// start; Return is -1 when the outcome is ambiguous.
type Op struct {
	ID       int    `json:"id"`
	Client   int    `json:"client"`
	Kind     string `json:"kind"`
	Conv     string `json:"conv,omitempty"`
	Channel  string `json:"channel,omitempty"`
	Agent    string `json:"agent,omitempty"`
	Arg      string `json:"arg,omitempty"` // message text, presence event, status
	Key      string `json:"key,omitempty"`
	Call     int64  `json:"call"`
	Return   int64  `json:"return"`
	Status   Status `json:"status"`
	HTTP     int    `json:"http,omitempty"`
	Code     string `json:"code,omitempty"`
	State    string `json:"state,omitempty"`  // conversation state in the answer
	Holder   string `json:"holder,omitempty"` // its agent_id
	Ticket   string `json:"ticket,omitempty"` // its ticket's status
	Attempts int    `json:"attempts"`
	Node     string `json:"node,omitempty"` // X-Omnirouter-Node of the answer
	Err      string `json:"err,omitempty"`  // last failure when ambiguous
	// View is an agent read's answer.
	View *AgentView `json:"view,omitempty"`

	body map[string]any // decoded answer (not saved)
}

// History records operations concurrently.
type History struct {
	start time.Time
	mu    sync.Mutex
	ops   []*Op
	// ServerErrors lists answers with a 5xx other than 502/503/504: a bug.
	ServerErrors []string
}

func (h *History) serverError(s string) {
	h.mu.Lock()
	h.ServerErrors = append(h.ServerErrors, s)
	h.mu.Unlock()
}

// NewHistory starts a history now.
func NewHistory() *History { return &History{start: time.Now()} }

func (h *History) now() int64 { return int64(time.Since(h.start)) }

func (h *History) add(op *Op) {
	h.mu.Lock()
	op.ID = len(h.ops)
	h.ops = append(h.ops, op)
	h.mu.Unlock()
}

// Update changes a recorded op under the history's lock (a client
// completing what it learnt from the answer).
func (h *History) Update(op *Op, f func(op *Op)) {
	h.mu.Lock()
	f(op)
	h.mu.Unlock()
}

// decodeBody converts a decoded JSON answer into v.
func decodeBody(body map[string]any, v any) bool {
	b, err := json.Marshal(body)
	return err == nil && json.Unmarshal(b, v) == nil
}

// Ops returns a copy of the recorded operations, ordered by invocation.
func (h *History) Ops() []Op {
	h.mu.Lock()
	out := make([]Op, len(h.ops))
	for i, op := range h.ops {
		out[i] = *op
	}
	h.mu.Unlock()
	sort.SliceStable(out, func(i, j int) bool { return out[i].Call < out[j].Call })
	return out
}

// Dump is what a failed run writes: enough to replay and to inspect.
type Dump struct {
	Seed    uint64   `json:"seed"`
	Faults  []Fault  `json:"faults"`
	Ops     []Op     `json:"ops"`
	Verdict []string `json:"verdict"`
}

// WriteFile writes d as indented JSON.
func (d *Dump) WriteFile(path string) error {
	b, err := json.MarshalIndent(d, "", " ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// Client sends operations to random nodes, retrying with the same
// Idempotency-Key, and records each in a History.
type Client struct {
	ID      int
	urls    []string
	hist    *History
	http    *http.Client
	rng     *rand.Rand
	keyBase string
	seq     int

	// Deadline bounds one operation, retries included.
	Deadline time.Duration
	// Patient clients always wait until Deadline; the others give up
	// sooner now and then.
	Patient bool
}

// NewClient returns client id, choosing among urls with rng.
func NewClient(id int, urls []string, hist *History, rng *rand.Rand, keyBase string) *Client {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: time.Second}).DialContext,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     30 * time.Second,
	}
	return &Client{ID: id, urls: urls, hist: hist, rng: rng, keyBase: keyBase,
		http:     &http.Client{Transport: tr, Timeout: 3 * time.Second},
		Deadline: 12 * time.Second}
}

type apiErr struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// Do runs one operation: method path body, described by op (Kind, Conv,
// Agent, Arg filled by the caller). Mutations carry a fresh key, reused on
// every retry. It returns op, completed and recorded.
func (c *Client) Do(ctx context.Context, op *Op, method, path string, body any) *Op {
	op.Client = c.ID
	mutation := method != "GET"
	if mutation {
		c.seq++
		op.Key = fmt.Sprintf("%s-%d-%d", c.keyBase, c.ID, c.seq)
	}
	var payload []byte
	if body != nil {
		payload, _ = json.Marshal(body)
	}
	op.Call = c.hist.now()
	limit := c.Deadline
	if mutation && !c.Patient && c.rng.IntN(100) < 25 {
		// Some clients are impatient: they give up sooner and leave more
		// outcomes ambiguous, which the checker must then account for.
		limit = time.Duration(300+c.rng.IntN(1500)) * time.Millisecond
	}
	deadline := time.Now().Add(limit)
	var lastErr string
	for attempt := 1; ; attempt++ {
		op.Attempts = attempt
		url := c.urls[c.rng.IntN(len(c.urls))] + path
		actx, cancel := context.WithTimeout(ctx, min(3*time.Second, max(time.Until(deadline), 200*time.Millisecond)))
		code, node, data, err := c.once(actx, method, url, op.Key, payload)
		cancel()
		switch {
		case err != nil:
			lastErr = err.Error()
		case code >= 200 && code < 300:
			op.Return, op.Status, op.HTTP, op.Node = c.hist.now(), OK, code, node
			var m map[string]any
			_ = json.Unmarshal(data, &m)
			op.body = m
			if s, ok := m["state"].(string); ok {
				op.State = s
				op.Holder, _ = m["agent_id"].(string)
			}
			if t, ok := m["ticket"].(map[string]any); ok {
				op.Ticket, _ = t["status"].(string)
			}
			c.hist.add(op)
			return op
		case code >= 500:
			var e apiErr
			_ = json.Unmarshal(data, &e)
			lastErr = fmt.Sprintf("%d %s: %s", code, e.Error.Code, e.Error.Message)
			if code != 502 && code != 503 && code != 504 {
				c.hist.serverError(fmt.Sprintf("%s %s → %s", method, path, lastErr))
			}
		default:
			var e apiErr
			_ = json.Unmarshal(data, &e)
			op.Return, op.Status, op.HTTP, op.Code, op.Node = c.hist.now(), Rejected, code, e.Error.Code, node
			op.Err = e.Error.Message
			c.hist.add(op)
			return op
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		backoff := time.Duration(50+c.rng.IntN(100)*min(attempt, 5)) * time.Millisecond
		pause.For(ctx, backoff)
	}
	op.Return, op.Status, op.Err = -1, Ambiguous, lastErr
	if !mutation {
		op.Return = c.hist.now() // a read that never answered changed nothing
	}
	c.hist.add(op)
	return op
}

func (c *Client) once(ctx context.Context, method, url, key string, payload []byte) (int, string, []byte, error) {
	var rd io.Reader
	if payload != nil {
		rd = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, "", nil, err
	}
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var ne net.Error
		if (errors.As(err, &ne) && ne.Timeout()) || errors.Is(err, context.DeadlineExceeded) {
			return 0, "", nil, fmt.Errorf("timeout: %w", err)
		}
		return 0, "", nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, "", nil, err
	}
	return resp.StatusCode, resp.Header.Get("X-Omnirouter-Node"), data, nil
}
