package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/omnirouter/omnirouter/internal/testutil"
)

// The supervisor page (/ui/) driven in a real headless Chromium against real
// omnirouter processes. Without a Chromium binary these tests skip, unless
// OMNIROUTER_BROWSER_TEST=required (CI sets it), when they fail. Screenshots
// go to the test's artifact directory: run with
// `-artifacts -outputdir DIR` to keep them.

const browserTestEnv = "OMNIROUTER_BROWSER_TEST"

// chromium finds a Chromium or Chrome binary on PATH, or skips (fails when
// the browser test is required).
func chromium(t *testing.T) string {
	t.Helper()
	names := []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"}
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	if os.Getenv(browserTestEnv) == "required" {
		t.Fatalf("%s=required but none of %v is on PATH (on Debian: apt-get install chromium)", browserTestEnv, names)
	}
	t.Skipf("browser test skipped: none of %v is on PATH (on Debian: apt-get install chromium; set %s=required to make this a failure)", names, browserTestEnv)
	return ""
}

// browser is one headless Chromium tab. It records every console error,
// uncaught exception and browser-log error but the network's (a 401 or a
// 503 the page handles is not an error of the page).
type browser struct {
	t   *testing.T
	ctx context.Context

	mu   sync.Mutex
	errs []string
}

func newBrowser(t *testing.T, execPath string) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(execPath), chromedp.WindowSize(1280, 800))
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium's sandbox refuses to run as root
	}
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	b := &browser{t: t}
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithListener(b.listen))
	t.Cleanup(func() { cancel(); acancel() })
	b.ctx = ctx
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("starting %s: %v", execPath, err)
	}
	return b
}

func (b *browser) listen(ev any) {
	var msg string
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		if ev.Type != runtime.ConsoleAPICalledTypeError {
			return
		}
		var parts []string
		for _, a := range ev.Args {
			if a.Description != "" {
				parts = append(parts, a.Description)
			} else {
				parts = append(parts, string(a.Value))
			}
		}
		msg = "console.error: " + strings.Join(parts, " ")
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		msg = "exception: " + d.Text
		if d.Exception != nil {
			msg += " " + d.Exception.Description
		}
	case *log.EventEntryAdded:
		if ev.Entry.Level != log.EntryLevelError || ev.Entry.Source == log.EntrySourceNetwork {
			return
		}
		msg = fmt.Sprintf("browser log (%s): %s", ev.Entry.Source, ev.Entry.Text)
	default:
		return
	}
	b.mu.Lock()
	b.errs = append(b.errs, msg)
	b.mu.Unlock()
}

// consoleErrors returns and forgets the errors recorded so far.
func (b *browser) consoleErrors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	errs := b.errs
	b.errs = nil
	return errs
}

// noConsoleErrors fails the test on any error the page logged.
func (b *browser) noConsoleErrors() {
	b.t.Helper()
	if errs := b.consoleErrors(); len(errs) > 0 {
		b.t.Fatalf("the page logged errors:\n%s", strings.Join(errs, "\n"))
	}
}

func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// text is the trimmed text of the first element sel matches, or "<absent>".
func (b *browser) text(sel string) (string, error) {
	q, _ := json.Marshal(sel)
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(
		`(() => { const e = document.querySelector(%s); return e ? e.textContent.trim().replace(/\s+/g, " ") : "<absent>"; })()`, q)))
}

// waitText polls until sel's text satisfies ok; it fails at once on a
// console error.
func (b *browser) waitText(what, sel string, ok func(string) bool) {
	b.t.Helper()
	testutil.Until(b.t, 30*time.Second, what, func() error {
		b.noConsoleErrors()
		got, err := b.text(sel)
		if err != nil {
			return err
		}
		if !ok(got) {
			return fmt.Errorf("%s: %q", sel, got)
		}
		return nil
	})
}

func (b *browser) waitIs(what, sel, want string) {
	b.t.Helper()
	b.waitText(what, sel, func(s string) bool { return s == want })
}

func (b *browser) waitHas(what, sel string, want ...string) {
	b.t.Helper()
	b.waitText(what, sel, func(s string) bool {
		for _, w := range want {
			if !strings.Contains(s, w) {
				return false
			}
		}
		return true
	})
}

// screenshot writes the page as PNG to the test's artifact directory.
func (b *browser) screenshot(name string, full bool) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	shot := chromedp.CaptureScreenshot()
	if full {
		shot = chromedp.FullScreenshot(100)
	}
	png, err := chromedp.Run(ctx, shot)
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(b.t.ArtifactDir(), name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s", path)
}

// api calls a node with a token, retrying 503s and connection errors (an
// election) until it answers want.
func apiCall(t *testing.T, token, method, url string, body any, want int) map[string]any {
	t.Helper()
	var m map[string]any
	testutil.Until(t, 30*time.Second, method+" "+url, func() error {
		code, got, err := requestAs(token, method, url, body)
		if err != nil || code != want {
			return fmt.Errorf("%d %v %v", code, got, err)
		}
		m = got
		return nil
	})
	return m
}

// TestBrowserLiveView opens the page on a follower of a three-node cluster
// with an auth file and checks, in a real Chromium, that it shows what the
// API says as it changes: agents and conversations created through the API
// with the right counts, an accepted offer, an agent's load, the leader
// killed (the page goes on showing new events and the new leader), a waiting
// conversation's explain and transcript; an agent's token reads the floor
// too. Any console error or uncaught exception fails it.
func TestBrowserLiveView(t *testing.T) {
	exe := chromium(t)
	const opToken, a1Token = "op-ui-token-0123456789", "a1-ui-token-0123456789"
	authFile := filepath.Join(t.TempDir(), "auth.json")
	if err := os.WriteFile(authFile, []byte(`{"tokens":[
		{"token":"`+opToken+`","role":"operator","name":"supervisor"},
		{"token":"`+a1Token+`","role":"agent","agent_id":"a1"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	procs := startThree(t, "--auth-file", authFile)
	leader := leaderOf(t, procs, opToken)
	var page *proc // the page's node: a follower, so that it outlives the leader
	for _, p := range procs {
		if p != leader {
			page = p
			break
		}
	}
	b := newBrowser(t, exe)

	// The console check itself works: an error logged is seen.
	b.do("console probe", chromedp.Navigate("about:blank"), chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Evaluate[any](`console.error("probe")`)(ctx, tg)
		return err
	}))
	testutil.Until(t, 10*time.Second, "the console probe recorded", func() error {
		if errs := b.consoleErrors(); len(errs) != 1 || !strings.Contains(errs[0], "probe") {
			return fmt.Errorf("recorded %q", errs)
		}
		return nil
	})

	// /ui redirects to /ui/, which asks for a token; a wrong one is refused.
	b.do("open the page", chromedp.EmulateViewport(1280, 800), chromedp.Navigate(page.url()+"/ui"))
	b.waitIs("the token form", "#login-h", "Connect to this node")
	b.do("enter a wrong token", chromedp.SendKeys(chromedp.CSS("#token"), "not-a-token"), chromedp.Click(chromedp.CSS("#connect")))
	b.waitHas("the wrong token refused", "#login-error", "refused", "401")
	b.do("enter the operator token", chromedp.SendKeys(chromedp.CSS("#token"), opToken), chromedp.Click(chromedp.CSS("#connect")))
	b.waitIs("live", "#status", "Live")
	b.waitIs("the leader shown", "#cluster-facts [data-field=leader]", leader.id)
	for _, p := range procs {
		b.waitHas(p.id+" listed", fmt.Sprintf(`#cluster-table tr[data-node=%q]`, p.id), p.id, "voter", "yes")
	}
	b.waitHas("this node named", "#node", "Node "+page.id, "follower")

	// Two agents with one chat slot each, a1 online and a2 offline; three
	// chats: c1 is offered to a1, c2 and c3 wait.
	base := leader.url()
	apiCall(t, opToken, "PUT", base+"/v1/agents/a1", map[string]any{"name": "Ana", "capacity": map[string]int{"chat": 1, "email": 5}}, 200)
	apiCall(t, opToken, "PUT", base+"/v1/agents/a2", map[string]any{"name": "Ben", "capacity": map[string]int{"chat": 1}}, 200)
	apiCall(t, a1Token, "PUT", base+"/v1/agents/a1/status", map[string]string{"status": "online"}, 200)
	for _, id := range []string{"c1", "c2", "c3"} {
		apiCall(t, opToken, "POST", base+"/v1/conversations", map[string]any{"id": id, "channel": "chat", "message": "hello from " + id}, 201)
	}
	chat := `#queue-table tr[data-key="chat/"] `
	b.waitIs("2 waiting on chat", chat+"[data-field=waiting]", "2")
	b.waitIs("1 offered on chat", chat+"[data-field=offered]", "1")
	b.waitIs("0 assigned on chat", chat+"[data-field=assigned]", "0")
	b.waitIs("1 agent online on chat", chat+"[data-field=online]", "1")
	b.waitText("a longest wait", chat+"[data-field=longest-wait]", func(s string) bool { return strings.HasSuffix(s, "s") })
	b.waitIs("c2 first in the queue", `#waiting-table tr[data-id="c2"] td`, "1")
	b.waitIs("c3 second in the queue", `#waiting-table tr[data-id="c3"] td`, "2")
	b.waitIs("a1 full on chat", `#agents-table tr[data-agent="a1"] td[data-channel=chat]`, "1 / 1")
	b.waitIs("a1's email", `#agents-table tr[data-agent="a1"] td[data-channel=email]`, "0 / 5")
	b.waitIs("a1 online", `#agents-table tr[data-agent="a1"] [data-field=status]`, "online")
	b.waitHas("a1 holds c1", `#agents-table tr[data-agent="a1"] td.ids`, "c1")
	b.waitIs("a2 offline", `#agents-table tr[data-agent="a2"] [data-field=status]`, "offline")
	b.waitIs("a2 empty", `#agents-table tr[data-agent="a2"] td[data-channel=chat]`, "0 / 1")
	b.waitHas("the events listed", "#event-list", "conversation.offered", "c1")

	// a1 accepts c1: offered becomes assigned. a2 comes online and is
	// offered c2: its load goes from 0 to 1 and one chat is left waiting.
	apiCall(t, a1Token, "POST", base+"/v1/conversations/c1/accept", map[string]string{"agent_id": "a1"}, 200)
	b.waitIs("1 assigned on chat", chat+"[data-field=assigned]", "1")
	b.waitIs("0 offered on chat", chat+"[data-field=offered]", "0")
	apiCall(t, opToken, "PUT", base+"/v1/agents/a2/status", map[string]string{"status": "online"}, 200)
	b.waitIs("a2 loaded", `#agents-table tr[data-agent="a2"] td[data-channel=chat]`, "1 / 1")
	b.waitIs("1 waiting on chat", chat+"[data-field=waiting]", "1")
	b.waitIs("2 agents online on chat", chat+"[data-field=online]", "2")
	b.waitIs("c3 alone in the queue", `#waiting-table tbody tr:only-child td`, "1")
	b.noConsoleErrors()

	// The leader dies. The page's node stays: it names the new leader, the
	// killed node falls behind, and an event after the failover shows.
	leader.kill()
	var survivors []*proc
	for _, p := range procs {
		if p != leader {
			survivors = append(survivors, p)
		}
	}
	newLeader := leaderOf(t, survivors, opToken)
	b.waitIs("the new leader shown", "#cluster-facts [data-field=leader]", newLeader.id)
	b.waitIs("the killed node behind", fmt.Sprintf(`#cluster-table tr[data-node=%q] [data-field=caught-up]`, leader.id), "no")
	// A keyboard user on c3's button keeps the focus when the table changes.
	b.do("focus c3", chromedp.Focus(chromedp.CSS(`#waiting-table button[data-conversation="c3"]`)))
	apiCall(t, opToken, "POST", newLeader.url()+"/v1/conversations", map[string]any{"id": "c4", "channel": "chat", "message": "hello after the failover"}, 201)
	b.waitIs("2 waiting after the failover", chat+"[data-field=waiting]", "2")
	b.waitIs("c4 queued after c3", `#waiting-table tr[data-id="c4"] td`, "2")
	b.waitIs("c3's button still focused", "#waiting-table button:focus", "c3")
	b.waitHas("c4's event", `#event-list li:first-child`, "conversation.queued", "c4")
	b.waitIs("live after the failover", "#status", "Live")

	// A waiting conversation, chosen in the queue: its facts, why it waits
	// and its transcript.
	b.do("open c3", chromedp.Click(chromedp.CSS(`#waiting-table button[data-conversation="c3"]`)))
	b.waitIs("c3's heading", "#conversation-h", "Conversation c3")
	b.waitIs("c3 queued", "#conversation-facts [data-field=state]", "queued")
	b.waitHas("c3's transcript", "#transcript", "visitor", "hello from c3")
	b.waitIs("why c3 waits", "#explain [data-field=summary]",
		"Queued, position 1 of 2 in the chat queue; 0 of 2 agents with chat capacity eligible.")
	b.waitIs("both agents full", "#explain li[data-cause=no_capacity]",
		"no_capacity — 2 agents with no spare capacity (a1, a2): a1 1/1, a2 1/1")
	b.screenshot("live-view-desktop.png", false)
	b.screenshot("live-view-desktop-full.png", true)

	// The same page on a phone.
	b.do("phone viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulatePortrait))
	b.waitIs("still live on a phone", "#status", "Live")
	b.screenshot("live-view-phone.png", true)
	b.do("desktop viewport", chromedp.EmulateViewport(1280, 800))

	// An agent's token reads the floor as well (every role reads).
	b.do("change the token", chromedp.Click(chromedp.CSS("#change-token")))
	b.waitIs("the token form again", "#login-h", "Connect to this node")
	b.do("enter a1's token", chromedp.SendKeys(chromedp.CSS("#token"), a1Token), chromedp.Click(chromedp.CSS("#connect")))
	b.waitIs("live as a1", "#status", "Live")
	b.waitIs("a1 seen by a1", `#agents-table tr[data-agent="a1"] td[data-channel=chat]`, "1 / 1")
	b.waitIs("the queue seen by a1", chat+"[data-field=waiting]", "2")
	b.noConsoleErrors()
}

// TestBrowserLiveViewWithoutAuthFile: a node without an auth file serves
// loopback only, and the page works there with an empty token. What the page
// shows is bounded (events, waiting rows, agents, messages) however much the
// API answers; when its node goes away the page says it is stale, and it
// comes back by itself when the node does.
func TestBrowserLiveViewWithoutAuthFile(t *testing.T) {
	exe := chromium(t)
	bin := binary(t)
	addr := freePort(t)
	p := startProc(t, bin, "serve", "--node-id", "solo", "--http-addr", addr, "--raft-addr", freePort(t),
		"--data-dir", t.TempDir(), "--log-level", "warn")
	p.id, p.httpAddr = "solo", addr
	waitReady(t, p)
	b := newBrowser(t, exe)
	b.do("open the page", chromedp.Navigate(p.url()+"/ui/"))
	b.waitIs("the token form", "#login-h", "Connect to this node")
	b.do("connect without a token", chromedp.Click(chromedp.CSS("#connect")))
	b.waitIs("live", "#status", "Live")
	b.waitIs("the leader shown", "#cluster-facts [data-field=leader]", "solo")

	// A backup of the floor with one chat waiting, restored further down.
	apiCall(t, "", "POST", p.url()+"/v1/conversations", map[string]any{"id": "before-backup", "channel": "chat", "message": "hi"}, 201)
	backup := httpBody(t, "GET", p.url()+"/v1/cluster/snapshot", "", nil, 200)

	// More than every bound of the page: 205 waiting emails (200 rows with
	// the chat), 205+ events (30 listed), 502 agents (500 rows), 102
	// messages (100).
	const emails, agents, messages = 205, 502, 101
	parallel(t, emails, func(i int) error {
		return expect(201)(requestAs("", "POST", p.url()+"/v1/conversations", map[string]any{"id": fmt.Sprintf("e%03d", i), "channel": "email", "subject": "Invoice", "message": "hi"}))
	})
	parallel(t, agents, func(i int) error {
		return expect(200)(requestAs("", "PUT", p.url()+fmt.Sprintf("/v1/agents/a%03d", i), map[string]any{"name": fmt.Sprint("Agent ", i), "capacity": map[string]int{"chat": 1}}))
	})
	for i := range messages {
		apiCall(t, "", "POST", p.url()+"/v1/conversations/e000/messages", map[string]any{"author": "visitor", "text": fmt.Sprint("message ", i)}, 200)
	}
	b.waitIs("every email counted", `#queue-table tr[data-key="email/"] [data-field=waiting]`, fmt.Sprint(emails))
	b.waitText("200 waiting rows", `#waiting-table tbody tr:nth-child(200) td`, func(s string) bool { return s != "<absent>" })
	b.waitIs("no 201st row", `#waiting-table tbody tr:nth-child(201)`, "<absent>")
	b.waitHas("the waiting rows said to be the first", "#waiting-more", "first 200")
	b.waitIs("500 agent rows", `#agents-table tbody tr:nth-child(500) th`, "Agent 499 a499")
	b.waitIs("no 501st agent row", `#agents-table tbody tr:nth-child(501)`, "<absent>")
	b.waitHas("the agents said to be cut", "#agents-more", "500 of 502")
	b.waitHas("the last message's event", "#event-list li:first-child", "conversation.message", "e000")
	b.waitIs("30 events listed", "#event-list li:nth-child(30) .type", "conversation.message")
	b.waitIs("no 31st event", "#event-list li:nth-child(31)", "<absent>")
	b.do("open e000", chromedp.Click(chromedp.CSS(`#waiting-table button[data-conversation="e000"]`)))
	b.waitHas("the last 100 messages", "#transcript-more", "last 100 of 102")
	b.waitHas("the newest message last", "#transcript li:last-child", "message 100")
	b.waitIs("100 messages", "#transcript li:nth-child(100) .text", "message 100")

	// The backup restored (it emits no event): the page shows the restored
	// floor by its periodic re-read.
	httpBody(t, "POST", p.url()+"/v1/cluster/restore", "application/octet-stream", backup, 200)
	b.waitIs("the emails gone", `#queue-table tr[data-key="email/"]`, "<absent>")
	b.waitIs("the chat back", `#queue-table tr[data-key="chat/"] [data-field=waiting]`, "1")
	b.waitIs("the agents gone", "#agents-table tbody", "No agents yet")

	// The node goes away: stale at once. It comes back: live again, from
	// the same cursor.
	p.kill()
	b.waitHas("stale while the node is down", "#status", "Stale", "cannot be reached")
	b.waitText("marked stale", "#status[data-state=stale]", func(s string) bool { return s != "<absent>" })
	p = p.restart(t)
	waitReady(t, p)
	b.waitIs("live again", "#status", "Live")
	apiCall(t, "", "POST", p.url()+"/v1/conversations", map[string]any{"id": "after-restart", "channel": "chat", "message": "hi"}, 201)
	b.waitHas("an event after the restart", "#event-list li:first-child", "conversation.queued", "after-restart")
	b.noConsoleErrors()
}

// httpBody sends a request with a raw body (none when contentType is "")
// and returns the answer's body, failing unless the status is want.
func httpBody(t *testing.T, method, url, contentType string, body []byte, want int) []byte {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != want {
		t.Fatalf("%s %s: %d %v, want %d: %.300s", method, url, resp.StatusCode, err, want, b)
	}
	return b
}

// parallel runs f(0..n-1) on a few goroutines and fails on the first
// error.
func parallel(t *testing.T, n int, f func(i int) error) {
	t.Helper()
	var wg sync.WaitGroup
	next := make(chan int)
	errs := make(chan error, n)
	for range 8 {
		wg.Go(func() {
			for i := range next {
				if err := f(i); err != nil {
					errs <- err
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
}

// expect turns a request's answer into an error unless its status is want.
func expect(want int) func(int, map[string]any, error) error {
	return func(code int, m map[string]any, err error) error {
		if err != nil || code != want {
			return fmt.Errorf("status %d, want %d: %v %v", code, want, m, err)
		}
		return nil
	}
}
