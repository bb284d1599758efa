package webhook_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/omnirouter/omnirouter/cluster/webhook"
)

// The known vector: the same HMAC as
//
//	printf '%s' "1700000000.$body" | openssl dgst -sha256 -hmac whsec_example -hex
const (
	vectorSecret    = "whsec_example"
	vectorTimestamp = 1700000000
	vectorBody      = `{"id":42,"type":"conversation.queued","at":"2023-11-14T22:13:20.000Z","conversation_id":"c1","data":{}}`
	vectorSignature = "v1=ffa1f6082340dd005f667cdfcad2b37a88e9dd1284f1f500921782970647f1a1"
)

func TestSignKnownVector(t *testing.T) {
	if got := webhook.Sign(vectorSecret, vectorTimestamp, []byte(vectorBody)); got != vectorSignature {
		t.Fatalf("Sign = %s, want %s", got, vectorSignature)
	}
	if !webhook.Verify(vectorSecret, "1700000000", []byte(vectorBody), vectorSignature) {
		t.Fatal("Verify refuses the known vector")
	}
}

func TestVerifyRefusesAnythingElse(t *testing.T) {
	ts := "1700000000"
	cases := map[string]struct {
		secret, ts, body, sig string
	}{
		"another secret":       {"whsec_other", ts, vectorBody, vectorSignature},
		"another timestamp":    {vectorSecret, "1700000001", vectorBody, vectorSignature},
		"a changed body":       {vectorSecret, ts, strings.Replace(vectorBody, "42", "43", 1), vectorSignature},
		"no scheme":            {vectorSecret, ts, vectorBody, strings.TrimPrefix(vectorSignature, "v1=")},
		"another scheme":       {vectorSecret, ts, vectorBody, "v0=" + strings.TrimPrefix(vectorSignature, "v1=")},
		"not hex":              {vectorSecret, ts, vectorBody, "v1=zz"},
		"truncated":            {vectorSecret, ts, vectorBody, vectorSignature[:len(vectorSignature)-2]},
		"empty":                {vectorSecret, ts, vectorBody, ""},
		"uppercase hex passes": {vectorSecret, ts, vectorBody, "v1=" + strings.ToUpper(strings.TrimPrefix(vectorSignature, "v1="))},
	}
	for name, c := range cases {
		got := webhook.Verify(c.secret, c.ts, []byte(c.body), c.sig)
		if want := name == "uppercase hex passes"; got != want {
			t.Errorf("%s: Verify = %v, want %v", name, got, want)
		}
	}
}

// ExampleVerify is a receiver that checks each delivery's signature and
// timestamp before it trusts the event.
func ExampleVerify() {
	const secret = "whsec_example" // the secret given when subscribing
	receiver := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
		if err != nil {
			http.Error(w, "unreadable body", http.StatusBadRequest)
			return
		}
		ts := r.Header.Get("Omnirouter-Timestamp")
		if !webhook.Verify(secret, ts, body, r.Header.Get("Omnirouter-Signature")) {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		// Refuse a delivery signed too long ago: it may be replayed.
		sec, err := strconv.ParseInt(ts, 10, 64)
		if err != nil || time.Since(time.Unix(sec, 0)).Abs() > 5*time.Minute {
			http.Error(w, "stale timestamp", http.StatusUnauthorized)
			return
		}
		// The event id makes duplicates (a redelivery after a failover)
		// easy to drop.
		fmt.Println("event", r.Header.Get("Omnirouter-Event-Id"), r.Header.Get("Omnirouter-Event-Type"))
		w.WriteHeader(http.StatusNoContent)
	})

	// What omnirouter sends, here by hand.
	body := []byte(`{"id":7,"type":"conversation.ended","at":"2027-01-04T08:00:00.000Z","conversation_id":"c1","data":{}}`)
	now := time.Now().Unix()
	req := httptest.NewRequest("POST", "/hooks/omnirouter", strings.NewReader(string(body)))
	req.Header.Set("Omnirouter-Event-Id", "7")
	req.Header.Set("Omnirouter-Event-Type", "conversation.ended")
	req.Header.Set("Omnirouter-Timestamp", strconv.FormatInt(now, 10))
	req.Header.Set("Omnirouter-Signature", webhook.Sign(secret, now, body))
	rec := httptest.NewRecorder()
	receiver.ServeHTTP(rec, req)
	fmt.Println(rec.Code)

	// A forged one.
	req.Header.Set("Omnirouter-Signature", webhook.Sign("guessed", now, body))
	rec = httptest.NewRecorder()
	receiver.ServeHTTP(rec, req)
	fmt.Println(rec.Code)
	// Output:
	// event 7 conversation.ended
	// 204
	// 401
}
