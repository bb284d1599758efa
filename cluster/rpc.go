package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/hashicorp/raft"

	"github.com/omnirouter/omnirouter/cluster/forward"
	"github.com/omnirouter/omnirouter/internal/httpbody"
	"github.com/omnirouter/omnirouter/internal/wire"
	"github.com/omnirouter/omnirouter/routing"
)

// The internal endpoints, served by Node.Handler under /internal/cluster/:
// the forward stream (package forward) and small request/answer calls to
// ask for a read index, join and remove nodes, and probe a peer. A request
// body starts with rpcVersion; an answer (HTTP 200 whenever the handler
// ran) starts with forward's status byte (OK, RETRY, AMBIGUOUS, ERROR).
const (
	PathPrefix    = "/internal/cluster/"
	pathReadIndex = PathPrefix + "readindex"
	pathJoin      = PathPrefix + "join"
	pathRemove    = PathPrefix + "remove"
	pathInfo      = PathPrefix + "info"

	rpcVersion  byte = 1
	maxBody          = 1 << 30 // a restore carries a whole state
	contentType      = "application/x-omnirouter-cluster"
)

// Handler serves the internal endpoints peers use to forward writes, ask for
// a read index, join and remove nodes. The API layer mounts it on its HTTP
// server so that every path under PathPrefix ("/internal/cluster/") reaches
// it unchanged.
func (n *Node) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST "+forward.Path, n.fwdServer)
	mux.HandleFunc("POST "+pathReadIndex, n.serveReadIndex)
	mux.HandleFunc("POST "+pathJoin, n.serveJoin)
	mux.HandleFunc("POST "+pathRemove, n.serveRemove)
	mux.HandleFunc("GET "+pathInfo, n.serveInfo)
	return mux
}

// readRequest reads a request body and checks its version.
func readRequest(w http.ResponseWriter, r *http.Request) (*wire.Decoder, bool) {
	body, err := httpbody.Read(w, r, maxBody)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return nil, false
	}
	d := wire.NewDecoder(body)
	if v := d.Byte(); d.Err() != nil || v != rpcVersion {
		http.Error(w, fmt.Sprintf("unsupported internal protocol version %d", v), http.StatusBadRequest)
		return nil, false
	}
	return d, true
}

// requestBody starts a request body.
func requestBody() *wire.Encoder {
	e := &wire.Encoder{}
	e.Byte(rpcVersion)
	return e
}

func writeResponse(w http.ResponseWriter, enc *wire.Encoder) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(enc.Buf)))
	w.WriteHeader(http.StatusOK)
	w.Write(enc.Buf)
}

// writeOK answers OK with nothing after it.
func writeOK(w http.ResponseWriter) {
	var enc wire.Encoder
	forward.AppendOK(&enc)
	writeResponse(w, &enc)
}

// writeErr answers with the status matching err.
func writeErr(w http.ResponseWriter, err error) {
	var enc wire.Encoder
	forward.AppendStatus(&enc, err)
	writeResponse(w, &enc)
}

// withApplyTimeout bounds ctx by Config.ApplyTimeout unless it already has
// a deadline.
func (n *Node) withApplyTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, n.cfg.ApplyTimeout)
}

// serveCtx bounds a request on the serving side.
func (n *Node) serveCtx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), n.cfg.ApplyTimeout)
}

// appliedAnswer is a committed command's answer as the leader sends it
// back to the follower that forwarded it.
type appliedAnswer struct {
	served string
	index  uint64
	res    applyResult
}

// result error kinds in an applied answer
const (
	resNoErr byte = iota
	resBadBackup
	resOtherErr
)

func (a *appliedAnswer) AppendTo(enc *wire.Encoder) {
	enc.String(a.served)
	enc.Uvarint(a.index)
	routing.EncodeOutcome(enc, a.res.out)
	switch err := a.res.err; {
	case err == nil:
		enc.Byte(resNoErr)
	case errors.Is(err, ErrBadBackup):
		enc.Byte(resBadBackup)
		enc.String(err.Error())
	default:
		enc.Byte(resOtherErr)
		enc.String(err.Error())
	}
}

// readApplied reads what appendApplied wrote; check d.Err() afterwards.
func readApplied(d *wire.Decoder) appliedAnswer {
	a := appliedAnswer{served: d.String(), index: d.Uvarint()}
	a.res.out = routing.DecodeOutcome(d)
	switch d.Byte() {
	case resNoErr:
	case resBadBackup:
		a.res.err = fmt.Errorf("%w: %s", ErrBadBackup, d.String())
	default:
		a.res.err = errors.New(d.String())
	}
	return a
}

func (n *Node) serveReadIndex(w http.ResponseWriter, r *http.Request) {
	if _, ok := readRequest(w, r); !ok {
		return
	}
	idx, err := n.readIndexLocal()
	if err != nil {
		writeErr(w, err)
		return
	}
	var enc wire.Encoder
	forward.AppendOK(&enc)
	enc.Uvarint(idx)
	writeResponse(w, &enc)
}

// call posts body to a peer's endpoint and returns the decoder positioned
// after an OK status. A connection that was never made is retryable; any
// other transport failure is reported with sent=true (the peer may have
// acted).
func (n *Node) call(ctx context.Context, url string, body []byte) (d *wire.Decoder, sent bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, false, err
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := n.http.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return nil, false, retryable(err)
		}
		return nil, true, err
	}
	defer resp.Body.Close()
	rb, err := httpbody.ReadSized(io.LimitReader(resp.Body, maxBody), resp.ContentLength, maxBody)
	if err != nil {
		return nil, true, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, true, fmt.Errorf("cluster: %s: HTTP %d: %s", url, resp.StatusCode, bytes.TrimSpace(rb))
	}
	d = wire.NewDecoder(rb)
	if err := forward.ReadStatus(d); err != nil {
		return nil, !errors.Is(err, errRetry), err
	}
	if d.Err() != nil {
		return nil, true, fmt.Errorf("cluster: %s: bad answer: %w", url, d.Err())
	}
	return d, true, nil
}

func isRefusal(err error) bool {
	var r *forward.Refused
	return errors.As(err, &r)
}

// readIndexFromLeader asks the leader for a read index.
func (n *Node) readIndexFromLeader(ctx context.Context, addr string) (uint64, error) {
	d, _, err := n.call(ctx, addr+pathReadIndex, requestBody().Buf)
	if err != nil {
		return 0, retryable(err) // a read is safe to retry
	}
	idx := d.Uvarint()
	if err := d.Err(); err != nil {
		return 0, retryable(err)
	}
	return idx, nil
}

// readIndexLocal is the leader's half of a linearizable read: the commit
// index captured before VerifyLeader confirms that no other leader can have
// committed anything newer. A leader serves it only once its term-start
// barrier passed (before that its commit index may trail the log).
func (n *Node) readIndexLocal() (uint64, error) {
	if n.raft.State() != raft.Leader {
		return 0, retryable(raft.ErrNotLeader)
	}
	if n.readyTerm.Load() != n.raft.CurrentTerm() {
		return 0, retryable(errors.New("leader not ready yet"))
	}
	idx := n.raft.CommitIndex()
	if err := n.raft.VerifyLeader().Error(); err != nil {
		return 0, retryable(err)
	}
	return idx, nil
}

// waitApplied waits until the local state reflects index.
func (n *Node) waitApplied(ctx context.Context, index uint64) error {
	for {
		n.fsm.mu.RLock()
		applied, ch := n.fsm.applied.Load(), n.fsm.appliedCh
		n.fsm.mu.RUnlock()
		if applied >= index {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("cluster: waiting for index %d (applied %d): %w", index, applied, ctx.Err())
		case <-n.ctx.Done():
			return ErrShutdown
		case <-time.After(time.Second):
		}
	}
}
