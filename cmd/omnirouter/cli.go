package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
)

// runClient runs one of the CLI subcommands against a node's API.
func runClient(cmd string, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := clientFlags(fs)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := c.setup(); err != nil {
		return err
	}
	args = fs.Args()
	want := func(n int, form string) error {
		if len(args) != n {
			return fmt.Errorf("usage: omnirouter %s", form)
		}
		return nil
	}
	show := func(b []byte, err error) error {
		if err != nil {
			return err
		}
		return printJSON(stdout, b)
	}
	switch cmd {
	case "status":
		if err := want(0, "status"); err != nil {
			return err
		}
		return show(c.json("GET", "/v1/cluster", nil))
	case "agents":
		if err := want(0, "agents"); err != nil {
			return err
		}
		return show(c.json("GET", "/v1/agents", nil))
	case "queue":
		if err := want(0, "queue"); err != nil {
			return err
		}
		return show(c.json("GET", "/v1/queue", nil))
	case "conversation":
		if err := want(1, "conversation <id>"); err != nil {
			return err
		}
		return show(c.json("GET", "/v1/conversations/"+url.PathEscape(args[0]), nil))
	case "policy":
		return policyCommand(c, args, show)
	case "cluster":
		switch {
		case len(args) == 4 && args[0] == "join":
			return show(c.json("POST", "/v1/cluster/join", map[string]string{"id": args[1], "raft_addr": args[2], "http_addr": args[3]}))
		case len(args) == 2 && args[0] == "remove":
			return show(c.json("DELETE", "/v1/cluster/nodes/"+url.PathEscape(args[1]), nil))
		}
		return fmt.Errorf("usage: omnirouter cluster join <id> <raft-addr> <http-addr> | cluster remove <id>")
	case "snapshot":
		return snapshotCommand(c, args, stdout, show)
	}
	return fmt.Errorf("unknown command %q", cmd)
}

func policyCommand(c *client, args []string, show func([]byte, error) error) error {
	switch {
	case len(args) == 1 && args[0] == "get":
		return show(c.json("GET", "/v1/policy", nil))
	case len(args) >= 2 && args[0] == "set":
		body, err := policyPatch(args[1:])
		if err != nil {
			return err
		}
		return show(c.do("PUT", "/v1/policy", bytes.NewReader(body), "application/json"))
	}
	return fmt.Errorf("usage: omnirouter policy get | policy set <json | key=value ...>")
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

func snapshotCommand(c *client, args []string, stdout io.Writer, show func([]byte, error) error) error {
	switch {
	case len(args) == 2 && args[0] == "save":
		b, err := c.do("GET", "/v1/cluster/snapshot", nil, "")
		if err != nil {
			return err
		}
		tmp := args[1] + ".tmp"
		if err := os.WriteFile(tmp, b, 0o600); err != nil {
			return err
		}
		if err := os.Rename(tmp, args[1]); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "saved %d bytes to %s\n", len(b), args[1])
		return nil
	case len(args) == 2 && args[0] == "restore":
		f, err := os.Open(args[1])
		if err != nil {
			return err
		}
		defer f.Close()
		return show(c.do("POST", "/v1/cluster/restore", f, "application/octet-stream"))
	}
	return fmt.Errorf("usage: omnirouter snapshot save <file> | snapshot restore <file>")
}
