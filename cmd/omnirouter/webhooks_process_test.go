package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/omnirouter/omnirouter/cluster/webhook"
	"github.com/omnirouter/omnirouter/internal/testutil"
)

// TestProcessWebhooksCLI: a real node delivers to a receiver subscribed
// with the CLI, signed with the secret the CLI made; pause, resume, list
// and remove work on it; the node's metrics count the deliveries.
func TestProcessWebhooksCLI(t *testing.T) {
	bin := binary(t)
	addr := freePort(t)
	p := startProc(t, bin, "serve", "--node-id", "solo", "--http-addr", addr, "--raft-addr", freePort(t),
		"--data-dir", filepath.Join(t.TempDir(), "data"), "--log-level", "warn")
	p.id, p.httpAddr = "solo", addr
	waitReady(t, p)
	t.Setenv("OMNIROUTER_ADDR", p.url())

	var mu sync.Mutex
	var got []string // event ids, verified
	var secret string
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if !webhook.Verify(secret, r.Header.Get("Omnirouter-Timestamp"), body, r.Header.Get("Omnirouter-Signature")) {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		if r.Header.Get("Omnirouter-Node") != "solo" {
			http.Error(w, "unknown node", http.StatusBadRequest)
			return
		}
		got = append(got, r.Header.Get("Omnirouter-Event-Type")+"#"+r.Header.Get("Omnirouter-Event-Id"))
		w.WriteHeader(http.StatusNoContent)
	}))
	defer rcv.Close()
	received := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), got...)
	}

	out := runOK(t, "webhooks", "add", rcv.URL+"/in", "events=conversation.queued,conversation.ended", "id=crm")
	m := regexp.MustCompile(`secret \(shown only now\): (whsec_[0-9a-f]+)`).FindStringSubmatch(out)
	if m == nil || !strings.Contains(out, "webhook crm") {
		t.Fatalf("webhooks add:\n%s", out)
	}
	mu.Lock()
	secret = m[1]
	mu.Unlock()
	if code, out := runCLI(t, "webhooks", "add", "ftp://nowhere", "secret=x"); code != 1 || !strings.Contains(out, "invalid_url") {
		t.Fatalf("a bad URL: exit %d: %s", code, out)
	}

	create := func(id string) {
		t.Helper()
		if code, m, err := request("POST", p.url()+"/v1/conversations", map[string]any{"id": id, "channel": "chat"}); code != 201 {
			t.Fatalf("create %s: %d %v %v", id, code, m, err)
		}
	}
	create("c1")
	testutil.Until(t, 10*time.Second, "a delivery", func() error {
		if len(received()) != 1 || !strings.HasPrefix(received()[0], "conversation.queued#") {
			return fmt.Errorf("received %v", received())
		}
		return nil
	})
	if out := runOK(t, "webhooks", "pause", "crm"); !strings.Contains(out, "paused") {
		t.Fatalf("pause: %s", out)
	}
	create("c2")
	create("c3")
	// The delivery made before the pause is committed within a second.
	testutil.Until(t, 10*time.Second, "the paused subscription 2 events behind", func() error {
		if out := runOK(t, "webhooks", "list"); !regexp.MustCompile(`crm\s+paused\s+\d+\s+2\s+0\s+20`).MatchString(out) {
			_, ev, _ := request("GET", p.url()+"/v1/events", nil)
			return fmt.Errorf("list:\n%s\nreceived %v\nevents %v", out, received(), ev)
		}
		return nil
	})
	if out := runOK(t, "webhooks", "resume", "crm"); !strings.Contains(out, "active") {
		t.Fatalf("resume: %s", out)
	}
	testutil.Until(t, 10*time.Second, "the deliveries held while paused", func() error {
		if len(received()) != 3 {
			return fmt.Errorf("received %v", received())
		}
		return nil
	})
	var list struct {
		Webhooks []struct {
			ID, State string
			Lag       int
			Cursor    int
		} `json:"webhooks"`
	}
	testutil.Until(t, 10*time.Second, "the cursor committed", func() error {
		if err := json.Unmarshal([]byte(runOK(t, "webhooks", "list", "-o", "json")), &list); err != nil {
			return err
		}
		if len(list.Webhooks) != 1 || list.Webhooks[0].Lag != 0 || list.Webhooks[0].State != "active" {
			return fmt.Errorf("%+v", list.Webhooks)
		}
		return nil
	})
	resp, err := httpc.Get(p.url() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`omnirouter_webhook_deliveries_total{webhook="crm"} 3`, `omnirouter_webhook_lag_events{webhook="crm"} 0`,
		`omnirouter_webhook_delivery_duration_seconds_count{webhook="crm"} 3`, `omnirouter_webhooks{state="active"} 1`} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if code, out := runCLI(t, "webhooks", "rm", "crm"); code == 0 || !strings.Contains(out, "--yes") {
		t.Fatalf("rm without a confirmation: exit %d: %s", code, out)
	}
	runOK(t, "webhooks", "rm", "crm", "--yes")
	if out := runOK(t, "webhooks", "list"); strings.Contains(out, "crm") {
		t.Fatalf("list after rm:\n%s", out)
	}
}
