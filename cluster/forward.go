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

	"github.com/omnirouter/omnirouter/internal/httpbody"
	"github.com/omnirouter/omnirouter/internal/wire"
	"github.com/omnirouter/omnirouter/routing"
)

// The internal endpoints, served by Node.Handler under /internal/cluster/.
// Bodies are compact binary: a request starts with the protocol version its
// body is written in; a response (always HTTP 200 when the handler ran)
// starts with a status byte.
//
// Versions: 1 is the original protocol (one command per propose request).
// 2 adds proposebatch (N commands in one request, N outcomes in order).
// Every endpoint accepts versions minForwardVersion..forwardVersion, so
// followers of the previous release keep working against a new leader. The
// endpoints whose body did not change (propose, readindex, join, remove)
// are still sent as version 1, so a new node talks to an old one during a
// rolling upgrade; a follower whose leader does not know proposebatch (HTTP
// 404: nothing ran) falls back to one propose request per command.
const (
	PathPrefix       = "/internal/cluster/"
	pathPropose      = PathPrefix + "propose"
	pathProposeBatch = PathPrefix + "proposebatch"
	pathReadIndex    = PathPrefix + "readindex"
	pathJoin         = PathPrefix + "join"
	pathRemove       = PathPrefix + "remove"
	pathInfo         = PathPrefix + "info"

	forwardVersion    byte = 2       // current protocol: proposebatch
	forwardVersion1   byte = 1       // bodies unchanged since version 1
	minForwardVersion byte = 1       // oldest version still served
	maxBody                = 1 << 30 // a restore carries a whole state
	contentType            = "application/x-omnirouter-cluster"
)

// response statuses
const (
	stOK        byte = 0
	stRetry     byte = 1 // not the leader, no leader: nothing happened, try again
	stAmbiguous byte = 2 // may or may not have committed
	stError     byte = 3 // refused
)

// result error kinds in a propose response
const (
	resNoErr byte = iota
	resBadBackup
	resOtherErr
)

// Handler serves the internal endpoints peers use to forward writes, ask for
// a read index, join and remove nodes. The API layer mounts it on its HTTP
// server so that every path under PathPrefix ("/internal/cluster/") reaches
// it unchanged.
func (n *Node) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+pathPropose, n.servePropose)
	mux.HandleFunc("POST "+pathProposeBatch, n.serveProposeBatch)
	mux.HandleFunc("POST "+pathProposeStream, n.serveProposeStream)
	mux.HandleFunc("POST "+pathReadIndex, n.serveReadIndex)
	mux.HandleFunc("POST "+pathJoin, n.serveJoin)
	mux.HandleFunc("POST "+pathRemove, n.serveRemove)
	mux.HandleFunc("GET "+pathInfo, n.serveInfo)
	return mux
}

func readRequest(w http.ResponseWriter, r *http.Request) (*wire.Decoder, bool) {
	return readRequestMin(w, r, minForwardVersion)
}

// readRequestMin reads a request body written in protocol version min or
// newer (up to forwardVersion).
func readRequestMin(w http.ResponseWriter, r *http.Request, min byte) (*wire.Decoder, bool) {
	body, err := httpbody.Read(w, r, maxBody)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return nil, false
	}
	d := wire.NewDecoder(body)
	if v := d.Byte(); d.Err() != nil || v < min || v > forwardVersion {
		http.Error(w, fmt.Sprintf("unsupported forwarding protocol version %d", v), http.StatusBadRequest)
		return nil, false
	}
	return d, true
}

func writeResponse(w http.ResponseWriter, enc *wire.Encoder) {
	w.Header().Set("Content-Type", contentType)
	// Not chunked: a batch's answers are often over net/http's 2 KB
	// chunking threshold, and a sized body goes out in fewer writes.
	w.Header().Set("Content-Length", strconv.Itoa(len(enc.Buf)))
	w.WriteHeader(http.StatusOK)
	w.Write(enc.Buf)
}

// writeErr answers with the status matching err.
func writeErr(w http.ResponseWriter, err error) {
	var enc wire.Encoder
	appendStatusErr(&enc, err)
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

// serveCtx bounds a forwarded request on the serving side.
func (n *Node) serveCtx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), n.cfg.ApplyTimeout)
}

// decodeForwarded decodes one command a follower forwarded: batch entries
// are only ever made by the leader's batcher.
func decodeForwarded(b []byte) (entry, error) {
	e, err := decodeEntry(b)
	if err == nil && e.typ == typeBatch {
		err = errors.New("cluster: batches are not forwarded")
	}
	return e, err
}

func (n *Node) servePropose(w http.ResponseWriter, r *http.Request) {
	d, ok := readRequest(w, r)
	if !ok {
		return
	}
	e, err := decodeForwarded(d.Bytes())
	if err != nil {
		writeErr(w, err)
		return
	}
	ctx, cancel := n.serveCtx(r)
	defer cancel()
	res, idx, err := n.proposeLocal(ctx, e)
	if err != nil {
		writeErr(w, err)
		return
	}
	var enc wire.Encoder
	enc.Byte(stOK)
	appendApplied(&enc, n.id, idx, &res)
	writeResponse(w, &enc)
}

// appendApplied writes a committed command's answer (after its OK status).
func appendApplied(enc *wire.Encoder, served string, idx uint64, res *applyResult) {
	enc.String(served)
	enc.Uvarint(idx)
	routing.EncodeOutcome(enc, res.out)
	switch {
	case res.err == nil:
		enc.Byte(resNoErr)
	case errors.Is(res.err, ErrBadBackup):
		enc.Byte(resBadBackup)
		enc.String(res.err.Error())
	default:
		enc.Byte(resOtherErr)
		enc.String(res.err.Error())
	}
}

// readApplied reads what appendApplied wrote; check d.Err() afterwards.
func readApplied(d *wire.Decoder) (applyResult, string, uint64) {
	served := d.String()
	idx := d.Uvarint()
	res := applyResult{out: routing.DecodeOutcome(d)}
	switch d.Byte() {
	case resNoErr:
	case resBadBackup:
		res.err = fmt.Errorf("%w: %s", ErrBadBackup, d.String())
	default:
		res.err = errors.New(d.String())
	}
	return res, served, idx
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
	enc.Byte(stOK)
	enc.Uvarint(idx)
	writeResponse(w, &enc)
}

// call posts body to a peer's endpoint and returns the decoder positioned
// after an OK status. A connection that was never made is retryable; any
// other transport failure is reported with sent=true (the peer may have acted).
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
	// A batch answer is ~0.5 KB per command: sized from Content-Length.
	rb, err := httpbody.ReadSized(io.LimitReader(resp.Body, maxBody), resp.ContentLength, maxBody)
	if err != nil {
		return nil, true, err
	}
	if resp.StatusCode == http.StatusNotFound {
		// No handler for the path (a peer of an older release): nothing ran.
		return nil, false, errNotFound{fmt.Errorf("cluster: %s: HTTP 404: %s", url, bytes.TrimSpace(rb))}
	}
	if resp.StatusCode != http.StatusOK {
		return nil, true, fmt.Errorf("cluster: %s: HTTP %d: %s", url, resp.StatusCode, bytes.TrimSpace(rb))
	}
	// The answer's strings (outcomes) live as long as the request they
	// answer: one copy serves them all.
	d = wire.NewSharedDecoder(rb)
	switch st := d.Byte(); st {
	case stOK:
		return d, true, nil
	case stRetry:
		return nil, false, retryable(fmt.Errorf("peer: %s", d.String()))
	case stAmbiguous:
		return nil, true, ambiguous(fmt.Errorf("leader: %s", d.String()))
	case stError:
		return nil, true, refusal{fmt.Errorf("cluster: peer refused: %s", d.String())}
	default:
		return nil, true, fmt.Errorf("cluster: %s: bad response status %d", url, st)
	}
}

// forwardBody is a version 1 request carrying payload.
func forwardBody(payload []byte) []byte {
	enc := wire.Encoder{Buf: make([]byte, 0, len(payload)+8)}
	enc.Byte(forwardVersion1)
	enc.Bytes(payload)
	return enc.Buf
}

// forwardPropose sends e to the leader at addr. A response that never came
// back is ambiguous.
func (n *Node) forwardPropose(ctx context.Context, addr string, e *entry) (applyResult, string, uint64, error) {
	d, sent, err := n.call(ctx, addr+pathPropose, forwardBody(encodeEntry(e)))
	if err != nil {
		if sent && !errors.Is(err, ErrAmbiguous) && !isRefusal(err) {
			err = ambiguous(err) // the leader may have applied it
		}
		return applyResult{}, "", 0, err
	}
	res, served, idx := readApplied(d)
	if err := d.Err(); err != nil {
		return applyResult{}, "", 0, ambiguous(fmt.Errorf("undecodable answer from leader: %w", err))
	}
	return res, served, idx, nil
}

// refusal is a peer's explicit "no" (nothing was applied).
type refusal struct{ error }

func isRefusal(err error) bool {
	var r refusal
	return errors.As(err, &r)
}

// errNotFound: the peer has no handler for the path (HTTP 404).
type errNotFound struct{ error }

func isNotFound(err error) bool {
	var nf errNotFound
	return errors.As(err, &nf)
}

// readIndexFromLeader asks the leader for a read index.
func (n *Node) readIndexFromLeader(ctx context.Context, addr string) (uint64, error) {
	d, _, err := n.call(ctx, addr+pathReadIndex, forwardBody(nil))
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
