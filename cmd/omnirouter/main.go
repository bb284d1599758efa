// Command omnirouter is the omnirouter binary: `omnirouter serve` runs one
// node of the cluster (the HTTP API of package api over the raft node of
// package cluster); the other subcommands are a small CLI that talks to any
// node's HTTP API.
package main

import (
	"fmt"
	"io"
	"os"
)

const usage = `omnirouter — omnichannel routing and capacity, replicated with raft.

Usage:
  omnirouter serve [flags]                      run a node (omnirouter serve -h for flags)
  omnirouter status                             cluster members, leader, term, indexes
  omnirouter agents                             agents with status, capacity and load
  omnirouter queue                              the queue in routing order
  omnirouter conversation <id>                  one conversation with its transcript
  omnirouter policy get
  omnirouter policy set <json | key=value ...>  e.g. routing.offer_timeout=45s
  omnirouter cluster join <id> <raft-addr> <http-addr>
  omnirouter cluster remove <id>
  omnirouter snapshot save <file>               back up the whole state
  omnirouter snapshot restore <file>            replace the whole state with a backup
  omnirouter bench --targets <addrs> [--duration 30s] [--concurrency 64] [--agents 500]
                   [--workload lifecycle|create|mixed] [--rate N] [--json out.json]
                                                load a running cluster, report, verify

Client flags (before the arguments; or OMNIROUTER_ADDR, OMNIROUTER_TOKEN,
OMNIROUTER_TLS_CA):
  --addr    any node's HTTP address (default http://127.0.0.1:8080; https://… with TLS)
  --token   a bearer token of the auth file
  --tls-ca  PEM CA certificate(s) that signed the node's certificate (default: system roots)
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one command line and returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, rest := args[0], args[1:]
	var err error
	switch cmd {
	case "serve":
		err = serve(rest, stderr)
	case "bench":
		err = bench(rest, stdout, stderr)
	case "status", "agents", "queue", "conversation", "policy", "cluster", "snapshot":
		err = runClient(cmd, rest, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "omnirouter: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	if err != nil {
		if err == errUsage {
			return 2
		}
		fmt.Fprintf(stderr, "omnirouter %s: %v\n", cmd, err)
		return 1
	}
	return 0
}
