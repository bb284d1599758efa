package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"

	"github.com/omnirouter/omnirouter/api"
)

// Webhook subscriptions on the command line: list with their delivery
// status, add, remove, pause and resume.

func cmdWebhooksList(c *cli, _ []string) error {
	var v struct {
		Webhooks []api.WebhookView `json:"webhooks"`
	}
	raw, err := c.get("/v1/webhooks", &v)
	if err != nil {
		return err
	}
	return c.show(raw, func(w io.Writer) {
		fmt.Fprintln(w, "WEBHOOK\tSTATE\tCURSOR\tLAG\tSKIPPED\tLAST SUCCESS\tLAST ERROR\tEVENTS\tURL")
		for _, h := range v.Webhooks {
			lastErr := "-"
			if h.LastError != nil {
				lastErr = *h.LastError
				if h.LastErrorAt != nil {
					lastErr += " at " + *h.LastErrorAt
				}
			}
			fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%d\t%s\t%s\t%s\t%s\n", h.ID, h.State, h.Cursor, h.Lag, h.Skipped,
				deref(h.LastSuccessAt), lastErr, list(h.Events), h.URL)
		}
	})
}

// webhookSecretEnv holds the secret of `webhooks add` when secret= is not
// given (a secret on the command line is visible to other users of the
// machine).
const webhookSecretEnv = "OMNIROUTER_WEBHOOK_SECRET"

// cmdWebhooksAdd subscribes a URL: add <url> [events=t1,t2|*] [id=] [secret=].
// Without a secret (secret= or OMNIROUTER_WEBHOOK_SECRET) one is made and
// printed, the only time it is shown.
func cmdWebhooksAdd(c *cli, args []string) error {
	body := map[string]any{"url": args[0], "events": []string{"*"}}
	for _, a := range args[1:] {
		k, v, ok := strings.Cut(a, "=")
		switch {
		case !ok:
			return fmt.Errorf("%q is not key=value (events=, id=, secret=)", a)
		case k == "events":
			body["events"] = strings.Split(v, ",")
		case k == "id" || k == "secret":
			body[k] = v
		default:
			return fmt.Errorf("unknown argument %q (events=, id=, secret=)", k)
		}
	}
	made := ""
	if _, ok := body["secret"]; !ok {
		if s := os.Getenv(webhookSecretEnv); s != "" {
			body["secret"] = s
		} else {
			var b [24]byte
			if _, err := rand.Read(b[:]); err != nil {
				return err
			}
			made = "whsec_" + hex.EncodeToString(b[:])
			body["secret"] = made
		}
	}
	raw, err := c.json("POST", "/v1/webhooks", body)
	if err != nil {
		return err
	}
	var v api.WebhookView
	_ = json.Unmarshal(raw, &v)
	if c.output == "json" {
		if made != "" {
			var m map[string]any
			if json.Unmarshal(raw, &m) == nil {
				m["secret"] = made
				raw, _ = json.Marshal(m)
			}
		}
		return printJSON(c.env.stdout, raw)
	}
	msg := fmt.Sprintf("webhook %s delivers %s to %s from event %d on", v.ID, list(v.Events), v.URL, v.Cursor+1)
	if made != "" {
		msg += fmt.Sprintf("\nits signing secret (shown only now): %s", made)
	}
	return c.done(nil, "%s", msg)
}

func cmdWebhooksRemove(c *cli, args []string) error {
	if _, err := c.do("DELETE", "/v1/webhooks/"+url.PathEscape(args[0]), nil, ""); err != nil {
		return err
	}
	return c.done(nil, "webhook %s removed", args[0])
}

func cmdWebhooksPause(c *cli, args []string) error  { return setWebhookPaused(c, args[0], true) }
func cmdWebhooksResume(c *cli, args []string) error { return setWebhookPaused(c, args[0], false) }

func setWebhookPaused(c *cli, id string, paused bool) error {
	raw, err := c.json("PUT", "/v1/webhooks/"+url.PathEscape(id), map[string]bool{"paused": paused})
	if err != nil {
		return err
	}
	var v api.WebhookView
	_ = json.Unmarshal(raw, &v)
	if paused {
		return c.done(raw, "webhook %s paused at event %d", id, v.Cursor)
	}
	return c.done(raw, "webhook %s %s: delivering from event %d (%d behind)", id, v.State, v.Cursor+1, v.Lag)
}
