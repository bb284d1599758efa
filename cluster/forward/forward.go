// Package forward carries writes from a follower to the raft leader, and
// owns both ends of that protocol: the follower's Forwarder and the
// leader's Server.
//
// A follower keeps one stream to the leader: an HTTP request upgraded to
// this protocol, so that it passes the same port, TLS, client certificate
// and cluster secret checks as every other node-to-node call. The
// forwarder writes each command on it as soon as it takes it (gathering
// for up to Linger while earlier commands await their results); the leader
// queues every command for its batcher as it reads it and writes each
// result back, tagged, when its entry commits. Commands from every node
// meet in the leader's queue, so each log entry carries what all of them
// sent while the previous entry committed.
//
// Frames, both ways: a uvarint length, then that many bytes. Follower to
// leader: a uvarint tag, then the encoded command (as bytes). Leader to
// follower: the tag, then a status byte (OK, RETRY, AMBIGUOUS, ERROR) and
// either the result or a message.
//
// Failures: a node that is not leader answers the upgrade RETRY (HTTP 200)
// and, on a stream it accepted while it led, RETRY for each later command:
// nothing was queued. A stream that breaks makes every command written on
// it and not answered ErrAmbiguous (the leader may have committed it); a
// command taken but not yet written gets ErrRetry. The follower closes a
// stream whose write does not return within StallTimeout, or whose
// commands get no answer for Config.AnswerTimeout (a paused leader, or one
// that stopped reading while raft still lists it), so that the next leader
// can be reached; and it retires a stream when the leader changes, closing
// it once its commands are answered.
package forward

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/omnirouter/omnirouter/internal/wire"
)

// Path is the leader's stream endpoint; the node mounts Server there.
const Path = "/internal/cluster/proposestream"

const (
	protocol = "omnirouter-forward/1"
	// MaxFrame bounds one frame (a restore carries a whole state).
	MaxFrame = 1 << 30
	// MaxBatch is the most commands the forwarder writes at once.
	MaxBatch = 256
	// Linger is how long commands gather before a write while others are
	// in flight. The leader takes them only when its previous entry commits
	// (~2 ms apart under load), so the wait rarely delays a command, and
	// fewer writes cost both nodes less (200 µs cut node CPU per command
	// ~4% against none, 500 µs no more: create at 64 clients, two
	// alternating rounds each).
	Linger = 200 * time.Microsecond
	// DialTimeout bounds opening a stream.
	DialTimeout = 2 * time.Second
	// StallTimeout closes a stream whose write has not returned in this
	// long (the leader does not read: paused or gone).
	StallTimeout = 2 * time.Second
	watchEvery   = 250 * time.Millisecond
)

// Result statuses on the stream.
const (
	stOK        byte = 0
	stRetry     byte = 1 // nothing happened: not the leader, no leader; try again
	stAmbiguous byte = 2 // may or may not have committed
	stError     byte = 3 // refused
)

var (
	// ErrRetry: the command was not applied and may be sent again (to
	// whichever node leads by then).
	ErrRetry = errors.New("not applied; retry")
	// ErrAmbiguous: the command may or may not have committed (its answer
	// was lost); a retry with the same idempotency key is safe.
	ErrAmbiguous = errors.New("write may or may not have committed")
	// ErrClosed: the forwarder or server is shut down.
	ErrClosed = errors.New("forward: closed")
)

// Refused is the leader's explicit refusal of a command (it could not
// decode it, say): nothing was applied, and sending it again will not help.
type Refused struct{ Message string }

func (r *Refused) Error() string { return "leader refused: " + r.Message }

// Result is a committed command's answer, as the leader's Server writes
// it on a stream.
type Result interface {
	AppendTo(e *wire.Encoder)
}

// AppendOK writes the status of an answer that follows.
func AppendOK(e *wire.Encoder) { e.Byte(stOK) }

// AppendStatus writes the status byte matching err (ErrRetry: RETRY,
// ErrAmbiguous: AMBIGUOUS, anything else: ERROR) and its message. The
// node's other internal endpoints answer with the same statuses.
func AppendStatus(e *wire.Encoder, err error) {
	switch {
	case errors.Is(err, ErrRetry):
		e.Byte(stRetry)
	case errors.Is(err, ErrAmbiguous):
		e.Byte(stAmbiguous)
	default:
		e.Byte(stError)
	}
	e.String(err.Error())
}

// ReadStatus reads a status byte and, for anything but OK, its message as
// an error: ErrRetry, ErrAmbiguous or *Refused.
func ReadStatus(d *wire.Decoder) error {
	switch st := d.Byte(); st {
	case stOK:
		return nil
	case stRetry:
		return fmt.Errorf("%w (leader: %s)", ErrRetry, d.String())
	case stAmbiguous:
		return fmt.Errorf("%w (leader: %s)", ErrAmbiguous, d.String())
	case stError:
		return &Refused{Message: d.String()}
	default:
		d.Fail("bad result status %d", st)
		return d.Err()
	}
}

// appendFrame appends one frame carrying payload to buf.
func appendFrame(buf, payload []byte) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(payload)))
	return append(buf, payload...)
}

// readFrame reads one frame's payload.
func readFrame(br *bufio.Reader) ([]byte, error) {
	size, err := binary.ReadUvarint(br)
	if err != nil {
		return nil, err
	}
	if size > MaxFrame {
		return nil, fmt.Errorf("frame of %d bytes", size)
	}
	frame := make([]byte, size)
	if _, err := io.ReadFull(br, frame); err != nil {
		return nil, err
	}
	return frame, nil
}
