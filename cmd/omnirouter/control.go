package main

import (
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/omnirouter/omnirouter/api"
)

// Routing control and insight on the command line: statistics,
// conversation lists, transfers.

func cmdStats(c *cli, _ []string) error {
	var v api.StatsView
	raw, err := c.get("/v1/stats", &v)
	if err != nil {
		return err
	}
	return c.show(raw, func(w io.Writer) {
		fmt.Fprintf(w, "at %s\n\n", deref(v.At))
		fmt.Fprintln(w, "CHANNEL\tGROUP\tWAITING\tLONGEST WAIT\tOFFERED\tASSIGNED\tWRAP-UP\tCAPACITY\tONLINE\tAWAY\tTRANSFERS ONLY\tOFFLINE")
		for _, r := range v.Channels {
			fmt.Fprintf(w, "%s\t%s\t%d\t%.0fs\t%d\t%d\t%d\t%d/%d\t%d\t%d\t%d\t%d\n", r.Channel, orDash(r.Group), r.Waiting,
				r.LongestWaitSeconds, r.Offered, r.Assigned, r.WrapUp, r.CapacityUsed, r.CapacityTotal,
				r.Agents.Online, r.Agents.Away, r.Agents.TransfersOnly, r.Agents.Offline)
		}
		fmt.Fprintln(w, "\nWINDOW\tCHANNEL\tGROUP\tCREATED\tASSIGNED\tMISSED\tWAIT P50\tWAIT P90\tSERVICE LEVEL\tENDED")
		for _, r := range v.Windows {
			sl := "-"
			if r.ServiceLevel != nil {
				sl = fmt.Sprintf("%.0f%%", 100**r.ServiceLevel)
			}
			var ended []string
			for reason, n := range r.Ended {
				ended = append(ended, fmt.Sprintf("%s=%d", reason, n))
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\t%d\t%.0fs\t%.0fs\t%s\t%s\n", r.Window, r.Channel, orDash(r.Group), r.Created,
				r.Assigned, r.Missed, r.WaitP50Seconds, r.WaitP90Seconds, sl, list(sortedStrings(ended)))
		}
	})
}

func sortedStrings(ss []string) []string {
	out := append([]string(nil), ss...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// cmdConversations lists conversations: key=value filters (state=,
// channel=, agent_id=, group=, limit=, after=).
func cmdConversations(c *cli, args []string) error {
	q := url.Values{}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		switch {
		case !ok:
			return fmt.Errorf("%q is not key=value (state=, channel=, agent_id=, group=, limit=, after=)", a)
		case k == "state" || k == "channel" || k == "agent_id" || k == "group" || k == "limit" || k == "after":
			q.Set(k, v)
		default:
			return fmt.Errorf("unknown filter %q (state, channel, agent_id, group, limit, after)", k)
		}
	}
	var v struct {
		Conversations []conversationView `json:"conversations"`
		Next          string             `json:"next"`
	}
	raw, err := c.get("/v1/conversations?"+q.Encode(), &v)
	if err != nil {
		return err
	}
	return c.show(raw, func(w io.Writer) {
		fmt.Fprintln(w, "CONVERSATION\tCHANNEL\tSTATE\tAGENT\tGROUP\tPRIORITY\tQUEUED AT")
		for _, cv := range v.Conversations {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", cv.ID, cv.Channel, cv.State, orDash(cv.AgentID), orDash(cv.Group), cv.Priority, deref(cv.QueuedAt))
		}
		if v.Next != "" {
			fmt.Fprintf(w, "\nmore: omnirouter conversations %s after=%s\n", strings.Join(args, " "), v.Next)
		}
	})
}

// cmdTransfer hands a conversation from its holder to an agent or a group:
// transfer <id> <holder> agent:<id> | group:<name> [note...].
func cmdTransfer(c *cli, args []string) error {
	body := map[string]string{"agent_id": args[1]}
	kind, target, ok := strings.Cut(args[2], ":")
	switch {
	case ok && kind == "agent":
		body["to_agent"] = target
	case ok && kind == "group":
		body["to_group"] = target
	default:
		return fmt.Errorf("the target is agent:<id> or group:<name>, not %q", args[2])
	}
	if len(args) > 3 {
		body["note"] = strings.Join(args[3:], " ")
	}
	raw, err := c.json("POST", "/v1/conversations/"+url.PathEscape(args[0])+"/transfer", body)
	if err != nil {
		return err
	}
	return c.done(raw, "%s transferred from %s to %s", args[0], args[1], args[2])
}
