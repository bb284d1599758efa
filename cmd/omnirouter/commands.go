package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/omnirouter/omnirouter/api"
)

// commands are the subcommands, in the order `omnirouter --help` lists
// them. A new one is an entry here and its function.
var commands []command

func init() {
	commands = []command{
		{name: "serve", args: "[flags]", summary: "run a node (omnirouter serve --help lists the flags)", own: serveCommand},
		{name: "status", summary: "cluster members (suffrage, caught up), leader, term and indexes", run: cmdStatus},
		{name: "agents", summary: "agents with status, load and capacity", run: cmdAgents},
		{name: "queue", summary: "the queue in routing order", run: cmdQueue},
		{name: "conversation", args: "<id>", nargs: 1, summary: "one conversation with its transcript", run: cmdConversation},
		{name: "conversations", args: "[state=] [channel=] [agent_id=] [group=] [limit=] [after=]", more: true,
			summary: "conversations by id, filtered, a page at a time", run: cmdConversations},
		{name: "explain", args: "<id>", nargs: 1, summary: "why a conversation waits: its place in the queue and what keeps each agent from it", run: cmdExplain},
		{name: "transfer", args: "<id> <holder> agent:<id>|group:<name> [note ...]", nargs: 3, more: true,
			summary: "hand a conversation from the agent that holds it to another agent or a group", run: cmdTransfer},
		{name: "stats", summary: "waiting, offered, assigned, capacity and agents per channel and group; 5m, 30m and 24h windows", run: cmdStats},
		{name: "policy get", summary: "the routing policy, as key=value lines", run: cmdPolicyGet},
		{name: "policy set", args: "<json | key=value ...>", nargs: 1, more: true, summary: "change policy fields, e.g. routing.offer_timeout=45s", run: cmdPolicySet},
		{name: "policy preview", args: "<json | key=value ...>", nargs: 1, more: true,
			summary: "what a policy change would do now (offers, counting, loads), changing nothing", run: cmdPolicyPreview},
		{name: "webhooks list", summary: "webhook subscriptions: state, cursor, lag, skipped events, last success and error", run: cmdWebhooksList},
		{name: "webhooks add", args: "<url> [events=type,...|*] [id=] [secret=]", nargs: 1, more: true,
			summary: "subscribe a URL to events (all by default); without secret= (or OMNIROUTER_WEBHOOK_SECRET) a secret is made and shown once", run: cmdWebhooksAdd},
		{name: "webhooks rm", args: "<id>", nargs: 1, summary: "delete a webhook subscription",
			confirm: func(c *cli, args []string) string {
				return fmt.Sprintf("Delete webhook %s (through %s)? Events not yet delivered to it are not delivered.", args[0], c.addr)
			}, run: cmdWebhooksRemove},
		{name: "webhooks pause", args: "<id>", nargs: 1, summary: "stop delivering to a webhook; it keeps its cursor", run: cmdWebhooksPause},
		{name: "webhooks resume", args: "<id>", nargs: 1, summary: "deliver again to a paused or failing webhook, from its cursor", run: cmdWebhooksResume},
		{name: "cluster join", args: "<id> <raft-addr> <http-addr>", nargs: 3,
			summary: "add a node: it joins as a nonvoter and becomes a voter once it has caught up", run: cmdClusterJoin},
		{name: "cluster remove", args: "<id>", nargs: 1, summary: "take a node out of the cluster",
			confirm: func(c *cli, args []string) string {
				return fmt.Sprintf("Remove node %s from the cluster (through %s)? It stops voting and serving writes until it is joined again.", args[0], c.addr)
			}, run: cmdClusterRemove},
		{name: "snapshot save", args: "<file>", nargs: 1, summary: "back up the whole state to a file", run: cmdSnapshotSave},
		{name: "snapshot restore", args: "<file>", nargs: 1, summary: "replace the whole state, on every node, with a backup",
			confirm: func(c *cli, args []string) string {
				return fmt.Sprintf("Replace the whole state of the cluster at %s with the backup %s? Everything written since the backup is lost.", c.addr, args[0])
			}, run: cmdSnapshotRestore},
		{name: "bench", args: "--targets <addrs> [flags]", summary: "load a running cluster, report, verify (omnirouter bench --help)", own: benchCommand},
		{name: "simulate", args: "<scenario.json> [flags]", summary: "play a day of a support floor through the routing, offline: service level, staffing (simulate --help)", own: simulateCommand},
		{name: "version", summary: "the version, commit and Go version of this binary", own: versionCommand},
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func cmdStatus(c *cli, _ []string) error {
	var v api.ClusterView
	raw, err := c.get("/v1/cluster", &v)
	if err != nil {
		return err
	}
	return c.show(raw, func(w io.Writer) {
		leader := v.Leader
		if leader == "" {
			leader = "none"
		}
		fmt.Fprintf(w, "answered by %s (%s); leader %s, term %d, commit index %d, applied index %d\n\n",
			v.ID, v.State, leader, v.Term, v.CommitIndex, v.AppliedIndex)
		fmt.Fprintln(w, "NODE\tSUFFRAGE\tCAUGHT UP\tLEADER\tRAFT ADDRESS\tHTTP ADDRESS")
		for _, n := range v.Nodes {
			mark := ""
			if n.Leader {
				mark = "*"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", n.ID, n.Suffrage, yesNo(n.CaughtUp), mark, n.RaftAddr, n.HTTPAddr)
		}
	})
}

func cmdAgents(c *cli, _ []string) error {
	var v struct {
		Agents []api.AgentView `json:"agents"`
	}
	raw, err := c.get("/v1/agents", &v)
	if err != nil {
		return err
	}
	return c.show(raw, func(w io.Writer) {
		fmt.Fprintln(w, "AGENT\tNAME\tSTATUS\tCHAT\tMESSAGING\tEMAIL\tVOICE\tSKILLS\tGROUPS\tCONVERSATIONS")
		for _, a := range v.Agents {
			fmt.Fprintf(w, "%s\t%s\t%s\t%d/%d\t%d/%d\t%d/%d\t%d/%d\t%s\t%s\t%s\n", a.ID, a.Name, a.Status,
				a.Load.Chat, a.Capacity.Chat, a.Load.Messaging, a.Capacity.Messaging,
				a.Load.Email, a.Capacity.Email, a.Load.Voice, a.Capacity.Voice,
				list(a.Skills), list(a.Groups), list(a.Conversations))
		}
	})
}

func list(ss []string) string {
	if len(ss) == 0 {
		return "-"
	}
	return strings.Join(ss, ",")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func cmdQueue(c *cli, _ []string) error {
	var v api.QueueView
	raw, err := c.get("/v1/queue", &v)
	if err != nil {
		return err
	}
	return c.show(raw, func(w io.Writer) {
		if v.Waiting > len(v.Items) {
			fmt.Fprintf(w, "the first %d of %d waiting\n\n", len(v.Items), v.Waiting)
		}
		fmt.Fprintln(w, "POSITION\tCONVERSATION\tCHANNEL\tPRIORITY\tGROUP\tWAITING\tQUEUED AT")
		for _, q := range v.Items {
			at := ""
			if q.QueuedAt != nil {
				at = *q.QueuedAt
			}
			fmt.Fprintf(w, "%d\t%s\t%s\t%d\t%s\t%.0fs\t%s\n", q.Position, q.ID, q.Channel, q.Priority, orDash(q.Group), q.WaitSeconds, at)
		}
	})
}

// conversationView is the part of GET /v1/conversations/{id} the table
// shows.
type conversationView struct {
	ID          string  `json:"id"`
	Channel     string  `json:"channel"`
	Client      *string `json:"client"`
	Subject     string  `json:"subject"`
	State       string  `json:"state"`
	Activity    string  `json:"activity"`
	AgentID     string  `json:"agent_id"`
	Priority    int     `json:"priority"`
	Group       string  `json:"group"`
	Missed      bool    `json:"missed"`
	EndedReason string  `json:"ended_reason"`
	QueuedAt    *string `json:"queued_at"`
	EndedAt     *string `json:"ended_at"`
	Ticket      *struct {
		ID     string `json:"id"`
		Status string `json:"status"`
		Via    string `json:"via"`
	} `json:"ticket"`
	Transcript []struct {
		Author  string  `json:"author"`
		AgentID string  `json:"agent_id"`
		Text    string  `json:"text"`
		At      *string `json:"at"`
	} `json:"transcript"`
}

func deref(s *string) string {
	if s == nil {
		return "-"
	}
	return *s
}

func cmdConversation(c *cli, args []string) error {
	var v conversationView
	raw, err := c.get("/v1/conversations/"+url.PathEscape(args[0]), &v)
	if err != nil {
		return err
	}
	return c.show(raw, func(w io.Writer) {
		channel := v.Channel
		if v.Client != nil {
			channel += " (" + *v.Client + ")"
		}
		fmt.Fprintf(w, "id\t%s\nchannel\t%s\n", v.ID, channel)
		if v.Subject != "" {
			fmt.Fprintf(w, "subject\t%s\n", v.Subject)
		}
		fmt.Fprintf(w, "state\t%s\nactivity\t%s\nagent\t%s\npriority\t%d\ngroup\t%s\nqueued at\t%s\n",
			v.State, v.Activity, orDash(v.AgentID), v.Priority, orDash(v.Group), deref(v.QueuedAt))
		if v.EndedAt != nil {
			fmt.Fprintf(w, "ended at\t%s (%s)\nmissed\t%s\n", *v.EndedAt, v.EndedReason, yesNo(v.Missed))
		}
		if v.Ticket != nil {
			fmt.Fprintf(w, "ticket\t%s %s (via %s)\n", v.Ticket.ID, v.Ticket.Status, v.Ticket.Via)
		}
		plural := "s"
		if len(v.Transcript) == 1 {
			plural = ""
		}
		fmt.Fprintf(w, "transcript\t%d message%s\n", len(v.Transcript), plural)
		for _, m := range v.Transcript {
			who := m.Author
			if m.AgentID != "" {
				who += " " + m.AgentID
			}
			fmt.Fprintf(w, "  %s\t%s: %s\n", deref(m.At), who, m.Text)
		}
	})
}

func cmdPolicyGet(c *cli, _ []string) error {
	var v map[string]any
	raw, err := c.get("/v1/policy", &v)
	if err != nil {
		return err
	}
	return c.show(raw, func(w io.Writer) {
		flat := map[string]string{}
		flatten("", v, flat)
		for _, k := range sortedKeys(flat) {
			fmt.Fprintf(w, "%s\t%s\n", k, flat[k])
		}
	})
}

func cmdPolicySet(c *cli, args []string) error {
	body, err := policyPatch(args)
	if err != nil {
		return err
	}
	raw, err := c.do("PUT", "/v1/policy", bytes.NewReader(body), "application/json")
	if err != nil {
		return err
	}
	var patch map[string]any
	_ = json.Unmarshal(body, &patch)
	flat := map[string]string{}
	flatten("", patch, flat)
	var changed []string
	for _, k := range sortedKeys(flat) {
		changed = append(changed, k+"="+flat[k])
	}
	return c.done(raw, "policy updated: %s", strings.Join(changed, " "))
}

// policyPatch builds a PUT /v1/policy body from either one JSON object or
// dotted key=value pairs: routing.offer_timeout=45s chat.agent_can_end_chat=false.
// "true" and "false" are booleans; everything else is a string.
func policyPatch(args []string) ([]byte, error) {
	if len(args) == 1 && strings.HasPrefix(strings.TrimSpace(args[0]), "{") {
		if !json.Valid([]byte(args[0])) {
			return nil, fmt.Errorf("invalid JSON: %s", args[0])
		}
		return []byte(args[0]), nil
	}
	root := map[string]any{}
	for _, kv := range args {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%q is not key=value (e.g. routing.offer_timeout=45s)", kv)
		}
		parts := strings.Split(k, ".")
		m := root
		for _, p := range parts[:len(parts)-1] {
			next, ok := m[p].(map[string]any)
			if !ok {
				next = map[string]any{}
				m[p] = next
			}
			m = next
		}
		var val any = v
		if b, err := strconv.ParseBool(v); err == nil && (v == "true" || v == "false") {
			val = b
		}
		m[parts[len(parts)-1]] = val
	}
	return json.Marshal(root)
}

func cmdClusterJoin(c *cli, args []string) error {
	id := args[0]
	raw, err := c.json("POST", "/v1/cluster/join", map[string]string{"id": id, "raft_addr": args[1], "http_addr": args[2]})
	if err != nil {
		return err
	}
	var v api.ClusterView
	_ = json.Unmarshal(raw, &v)
	for _, n := range v.Nodes {
		if n.ID == id && n.Suffrage == "voter" {
			return c.done(raw, "%s is a voter at %s", id, n.RaftAddr)
		}
	}
	return c.done(raw, "%s joined as a nonvoter at %s; it becomes a voter once it has caught up (omnirouter status)", id, args[1])
}

func cmdClusterRemove(c *cli, args []string) error {
	raw, err := c.do("DELETE", "/v1/cluster/nodes/"+url.PathEscape(args[0]), nil, "")
	if err != nil {
		return err
	}
	return c.done(raw, "removed %s from the cluster", args[0])
}

func cmdSnapshotSave(c *cli, args []string) error {
	b, err := c.do("GET", "/v1/cluster/snapshot", nil, "")
	if err != nil {
		return err
	}
	tmp := args[0] + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, args[0]); err != nil {
		return err
	}
	if c.output == "json" {
		return printJSON(c.env.stdout, fmt.Appendf(nil, `{"file":%q,"bytes":%d}`, args[0], len(b)))
	}
	return c.done(nil, "saved %d bytes to %s", len(b), args[0])
}

func cmdSnapshotRestore(c *cli, args []string) error {
	f, err := os.Open(args[0])
	if err != nil {
		return err
	}
	defer f.Close()
	raw, err := c.do("POST", "/v1/cluster/restore", f, "application/octet-stream")
	if err != nil {
		return err
	}
	return c.done(raw, "restored the whole state from %s on every node", args[0])
}
