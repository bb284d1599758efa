package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/omnirouter/omnirouter/api"
)

// cmdExplain says why a conversation waits: its place in the queue and,
// per cause, the agents kept from it.
func cmdExplain(c *cli, args []string) error {
	var v api.ExplanationView
	raw, err := c.get("/v1/conversations/"+url.PathEscape(args[0])+"/explain", &v)
	if err != nil {
		return err
	}
	return c.show(raw, func(w io.Writer) {
		fmt.Fprintf(w, "%s\t%s, %s\n", v.ID, v.Channel, v.State)
		if v.AgentID != nil {
			fmt.Fprintf(w, "agent\t%s\n", *v.AgentID)
		}
		if v.Position != nil {
			fmt.Fprintf(w, "position\t%d of %d waiting on %s\n", *v.Position, v.QueueLength, v.Channel)
			fmt.Fprintf(w, "agents\t%d with %s capacity, %d eligible\n", v.AgentsConsidered, v.Channel, v.EligibleAgents)
		}
		if v.NextChangeAt != nil {
			fmt.Fprintf(w, "next change\t%s\n", *v.NextChangeAt)
		}
		if len(v.Causes) == 0 {
			return
		}
		fmt.Fprintln(w, "\nCAUSE\tAGENTS\tFIRST\tDETAIL")
		for _, cause := range v.Causes {
			fmt.Fprintf(w, "%s\t%d\t%s\t%s\n", cause.Cause, cause.Count, list(cause.Agents), orDash(cause.Detail))
		}
	})
}

// cmdPolicyPreview asks what a policy change would do now, changing
// nothing: the arguments of policy set.
func cmdPolicyPreview(c *cli, args []string) error {
	body, err := policyPatch(args)
	if err != nil {
		return err
	}
	raw, err := c.do("POST", "/v1/policy/preview", bytes.NewReader(body), "application/json")
	if err != nil {
		return err
	}
	var v api.PreviewView
	if err := json.Unmarshal(raw, &v); err != nil {
		return fmt.Errorf("reading the preview: %w", err)
	}
	return c.show(raw, func(w io.Writer) {
		t := v.Totals
		fmt.Fprintf(w, "would offer %d, withdraw %d, start counting %d, stop counting %d; %d agents' load would change (nothing was changed)\n",
			t.Offers, t.Withdrawn, t.Counted, t.Uncounted, t.Agents)
		holdings := func(title string, hs []api.HoldingView, total int) {
			if len(hs) == 0 {
				return
			}
			fmt.Fprintf(w, "\n%s\tAGENT\tSTATE\n", title)
			for _, h := range hs {
				fmt.Fprintf(w, "%s\t%s\t%s\n", h.ConversationID, h.AgentID, h.State)
			}
			more(w, len(hs), total)
		}
		holdings("OFFER", v.Offers, t.Offers)
		holdings("WITHDRAW", v.Withdrawn, t.Withdrawn)
		if len(v.Counted) > 0 {
			fmt.Fprintf(w, "\nstart counting\t%s\n", strings.Join(v.Counted, " "))
			more(w, len(v.Counted), t.Counted)
		}
		if len(v.Uncounted) > 0 {
			fmt.Fprintf(w, "\nstop counting\t%s\n", strings.Join(v.Uncounted, " "))
			more(w, len(v.Uncounted), t.Uncounted)
		}
		if len(v.Agents) > 0 {
			fmt.Fprintln(w, "\nAGENT\tLOAD")
			for _, a := range v.Agents {
				fmt.Fprintf(w, "%s\t%s\n", a.ID, loadChange(a))
			}
			more(w, len(v.Agents), t.Agents)
		}
	})
}

func more(w io.Writer, shown, total int) {
	if total > shown {
		fmt.Fprintf(w, "… and %d more\n", total-shown)
	}
}

// loadChange names the channels whose load would change: chat 1→2 of 3.
func loadChange(a api.LoadChangeView) string {
	var out []string
	for _, ch := range []struct {
		name                    string
		before, after, capacity int
	}{
		{"chat", a.LoadBefore.Chat, a.LoadAfter.Chat, a.Capacity.Chat},
		{"messaging", a.LoadBefore.Messaging, a.LoadAfter.Messaging, a.Capacity.Messaging},
		{"email", a.LoadBefore.Email, a.LoadAfter.Email, a.Capacity.Email},
		{"voice", a.LoadBefore.Voice, a.LoadAfter.Voice, a.Capacity.Voice},
	} {
		if ch.before != ch.after {
			out = append(out, fmt.Sprintf("%s %d→%d of %d", ch.name, ch.before, ch.after, ch.capacity))
		}
	}
	return strings.Join(out, ", ")
}
