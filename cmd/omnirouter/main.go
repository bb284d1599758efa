// Command omnirouter is the omnirouter binary: `omnirouter serve` runs one
// node of the cluster (the HTTP API of package api over the raft node of
// package cluster); the other subcommands are a CLI that talks to any
// node's HTTP API (commands.go lists them).
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/mattn/go-isatty"
)

func main() {
	os.Exit(runWith(os.Args[1:], &env{
		stdin:  os.Stdin,
		stdout: os.Stdout,
		stderr: os.Stderr,
		isTerminal: func() bool {
			return isatty.IsTerminal(os.Stdin.Fd()) || isatty.IsCygwinTerminal(os.Stdin.Fd())
		},
	}))
}

// env is what a command line runs against: the standard streams, and
// whether standard input is a terminal (someone who can answer a question).
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	isTerminal     func() bool
}

// run runs a command line with nothing on standard input (tests).
func run(args []string, stdout, stderr io.Writer) int {
	return runWith(args, &env{stdin: strings.NewReader(""), stdout: stdout, stderr: stderr, isTerminal: func() bool { return false }})
}

// Exit statuses: 0 success (and --help), 1 a failure, 2 a command line
// error.
var (
	// errHelp: help was asked for and printed.
	errHelp = errors.New("help")
	// errUsage: a command line error whose message was already printed.
	errUsage = errors.New("usage")
)

// runWith executes one command line and returns the exit status.
func runWith(args []string, e *env) int {
	words, help, version := scanWords(args)
	if version && len(words) == 0 {
		cmd, _ := findCommand([]string{"version"})
		return exitCode(cmd, cmd.execute(args, e), e)
	}
	if len(words) == 0 {
		if help {
			fmt.Fprint(e.stdout, usage())
			return 0
		}
		fmt.Fprint(e.stderr, usage())
		return 2
	}
	if words[0] == "help" {
		if cmd, _ := findCommand(words[1:]); cmd != nil {
			_ = cmd.execute([]string{"--help"}, e)
		} else {
			fmt.Fprint(e.stdout, usage())
		}
		return 0
	}
	cmd, n := findCommand(words)
	if cmd == nil {
		if group := commandsUnder(words[0]); len(group) > 0 {
			out, code := e.stderr, 2
			if help {
				out, code = e.stdout, 0
			}
			fmt.Fprintf(out, "Usage:\n%s\nomnirouter %s <command> --help says more.\n", listCommands(group), words[0])
			return code
		}
		fmt.Fprintf(e.stderr, "omnirouter: unknown command %q\n\n%s", strings.Join(words, " "), usage())
		return 2
	}
	return exitCode(cmd, cmd.execute(withoutWords(args, n), e), e)
}

// exitCode reports err and returns the exit status it means.
func exitCode(cmd *command, err error, e *env) int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	}
	fmt.Fprintf(e.stderr, "omnirouter %s: %v\n", cmd.name, err)
	return 1
}

// usage is the whole command list.
func usage() string {
	var b strings.Builder
	b.WriteString("omnirouter — omnichannel routing and capacity, replicated with raft.\n\nUsage:\n")
	b.WriteString(listCommands(commands))
	b.WriteString(`
Every command answers --help. The CLI commands talk to any node's HTTP API;
their flags may go anywhere on the line:
  --addr URL     a node's HTTP address (default http://127.0.0.1:8080, or OMNIROUTER_ADDR)
  --token T      a bearer token of the auth file (or OMNIROUTER_TOKEN)
  --tls-ca FILE  PEM CA certificate(s) of a node that serves https (or OMNIROUTER_TLS_CA)
  -o FORMAT      table (default) or json (or OMNIROUTER_OUTPUT)
`)
	return b.String()
}

// listCommands lists cmds, one per line, with their summaries aligned.
func listCommands(cmds []command) string {
	width := 0
	for _, c := range cmds {
		width = max(width, len(c.synopsis()))
	}
	var b strings.Builder
	for _, c := range cmds {
		fmt.Fprintf(&b, "  %-*s  %s\n", width, c.synopsis(), c.summary)
	}
	return b.String()
}
