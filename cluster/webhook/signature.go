package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"strconv"
	"strings"
)

// The headers of every delivery.
const (
	// HeaderEventID is the event's id: a receiver that has seen it before
	// is looking at a duplicate.
	HeaderEventID = "Omnirouter-Event-Id"
	// HeaderEventType is the event's type.
	HeaderEventType = "Omnirouter-Event-Type"
	// HeaderTimestamp is when this attempt was signed, in unix seconds.
	HeaderTimestamp = "Omnirouter-Timestamp"
	// HeaderSignature is "v1=" and the hex HMAC-SHA256, keyed by the
	// subscription's secret, of the timestamp, a dot and the body.
	HeaderSignature = "Omnirouter-Signature"
	// HeaderNode names the node that sent the delivery (the leader).
	HeaderNode = "Omnirouter-Node"
	// HeaderTerm is the raft term in which that node led: deliveries of a
	// later term come from a later leader.
	HeaderTerm = "Omnirouter-Term"
)

// signatureScheme prefixes the signature's hex digest.
const signatureScheme = "v1="

// Sign returns the Omnirouter-Signature value of a delivery: "v1=" then
// the lowercase hex HMAC-SHA256, keyed by secret, of the timestamp (unix
// seconds, in decimal), a dot, and the body.
func Sign(secret string, timestamp int64, body []byte) string {
	return string(newSigner(secret).append(nil, timestamp, body))
}

// signer signs one subscription's deliveries, reusing its HMAC state.
type signer struct {
	mac hash.Hash
	buf []byte
}

func newSigner(secret string) *signer { return &signer{mac: hmac.New(sha256.New, []byte(secret))} }

// append appends the signature of a delivery to dst.
func (s *signer) append(dst []byte, timestamp int64, body []byte) []byte {
	s.mac.Reset()
	s.buf = strconv.AppendInt(s.buf[:0], timestamp, 10)
	s.buf = append(s.buf, '.')
	s.mac.Write(s.buf)
	s.mac.Write(body)
	s.buf = s.mac.Sum(s.buf[:0])
	dst = append(dst, signatureScheme...)
	return hex.AppendEncode(dst, s.buf)
}

func mac(secret, timestamp string, body []byte) []byte {
	h := hmac.New(sha256.New, []byte(secret))
	h.Write([]byte(timestamp))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Verify reports whether signature (the Omnirouter-Signature header) is
// secret's signature of timestamp (the Omnirouter-Timestamp header, as
// received) and body (the request body, byte for byte). It compares in
// constant time. A receiver should also refuse a timestamp too far from
// its own clock, so that a recorded delivery cannot be replayed later.
func Verify(secret, timestamp string, body []byte, signature string) bool {
	digest, ok := strings.CutPrefix(strings.TrimSpace(signature), signatureScheme)
	if !ok {
		return false
	}
	got, err := hex.DecodeString(digest)
	if err != nil {
		return false
	}
	return hmac.Equal(got, mac(secret, timestamp, body))
}
