package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
)

// command is one subcommand. A CLI command (run) talks to a node's API: it
// gets the global flags, anywhere on the line, and its positional
// arguments. A command with flags of its own (own: serve, bench, version)
// gets every argument but its name.
type command struct {
	name    string // one or two words: "status", "cluster join"
	args    string // the positional arguments, for usage: "<id> <raft-addr> <http-addr>"
	summary string
	// nargs is the number of positional arguments; with more, the least
	// number (more may follow).
	nargs int
	more  bool
	// confirm, when set, makes the command destructive: it asks this
	// question first, on a terminal, unless --yes is given.
	confirm func(c *cli, args []string) string
	run     func(c *cli, args []string) error
	own     func(args []string, e *env) error
}

func (cmd *command) synopsis() string {
	s := "omnirouter " + cmd.name
	if cmd.args != "" {
		s += " " + cmd.args
	}
	return s
}

// cli is a CLI command's context: the client, the output format and the
// streams.
type cli struct {
	*client
	env    *env
	cmd    *command
	output string // "table" or "json"
	yes    bool
}

// valueFlags are the global flags that take a value (the others: -h,
// --help, --version, --yes).
var valueFlags = map[string]bool{"addr": true, "token": true, "tls-ca": true, "o": true, "output": true}

// scanWords returns the positional words of args (skipping flags and the
// values of the global flags that take one), and whether help or the
// version was asked for.
func scanWords(args []string) (words []string, help, version bool) {
	for _, i := range wordIndexes(args, &help, &version) {
		words = append(words, args[i])
	}
	return words, help, version
}

func wordIndexes(args []string, help, version *bool) []int {
	var idx []int
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			for j := i + 1; j < len(args); j++ {
				idx = append(idx, j)
			}
			break
		}
		if len(a) < 2 || a[0] != '-' {
			idx = append(idx, i)
			continue
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		switch name {
		case "h", "help":
			*help = true
		case "version":
			*version = true
		}
		if valueFlags[name] && !hasValue {
			i++ // its value
		}
	}
	return idx
}

// withoutWords is args without its first n positional words (the command's
// name), flags kept in place.
func withoutWords(args []string, n int) []string {
	var h, v bool
	drop := map[int]bool{}
	for _, i := range wordIndexes(args, &h, &v)[:n] {
		drop[i] = true
	}
	var out []string
	for i, a := range args {
		if !drop[i] {
			out = append(out, a)
		}
	}
	return out
}

// findCommand finds the command named by the first one or two words.
func findCommand(words []string) (*command, int) {
	for n := min(2, len(words)); n >= 1; n-- {
		name := strings.Join(words[:n], " ")
		for i := range commands {
			if commands[i].name == name {
				return &commands[i], n
			}
		}
	}
	return nil, 0
}

// commandsUnder lists the commands whose first word is group ("cluster").
func commandsUnder(group string) []command {
	var out []command
	for _, c := range commands {
		if first, _, two := strings.Cut(c.name, " "); two && first == group {
			out = append(out, c)
		}
	}
	return out
}

// flagSet is the command's flags: the global ones, and --yes for a
// destructive command.
func (cmd *command) flagSet(c *cli, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(cmd.name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {}
	c.client = clientFlags(fs)
	fs.StringVar(&c.output, "o", "table", "output format: table or json")
	fs.StringVar(&c.output, "output", "table", "output format: table or json")
	if cmd.confirm != nil {
		fs.BoolVar(&c.yes, "yes", false, "do not ask for confirmation")
	}
	return fs
}

// help is the command's --help text.
func (cmd *command) help() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Usage: %s [flags]\n\n%s.\n", cmd.synopsis(), upperFirst(cmd.summary))
	if cmd.confirm != nil {
		b.WriteString("It asks for confirmation on a terminal; --yes skips the question (required when standard input is not a terminal).\n")
	}
	b.WriteString("\nFlags (anywhere on the line):\n")
	fs := cmd.flagSet(&cli{}, io.Discard)
	fs.SetOutput(&b)
	fs.PrintDefaults()
	return b.String()
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// execute parses a command's arguments and runs it.
func (cmd *command) execute(args []string, e *env) error {
	if cmd.own != nil {
		return cmd.own(args, e)
	}
	c := &cli{env: e, cmd: cmd}
	fs := cmd.flagSet(c, e.stderr)
	pos, err := parseInterleaved(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(e.stdout, cmd.help())
		return errHelp
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "usage: %s [flags] (omnirouter %s --help)\n", cmd.synopsis(), cmd.name)
		return errUsage
	}
	if err := globalsFromEnv(fs); err != nil {
		return err
	}
	if c.output != "table" && c.output != "json" {
		fmt.Fprintf(e.stderr, "omnirouter %s: -o must be table or json, got %q\n", cmd.name, c.output)
		return errUsage
	}
	if !cmd.more && len(pos) != cmd.nargs || cmd.more && len(pos) < cmd.nargs {
		fmt.Fprintf(e.stderr, "usage: %s [flags] (omnirouter %s --help)\n", cmd.synopsis(), cmd.name)
		return errUsage
	}
	if err := c.client.setup(); err != nil {
		return err
	}
	if cmd.confirm != nil && !c.yes {
		if err := c.ask(cmd.confirm(c, pos)); err != nil {
			return err
		}
	}
	return cmd.run(c, pos)
}

// parseInterleaved parses flags wherever they are among the positional
// arguments, which it returns in order ("--" ends the flags).
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
}

// globalsFromEnv fills the global flags not given on the command line from
// OMNIROUTER_ADDR, OMNIROUTER_TOKEN, OMNIROUTER_TLS_CA and
// OMNIROUTER_OUTPUT.
func globalsFromEnv(fs *flag.FlagSet) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if given["o"] {
		given["output"] = true
	}
	for _, name := range []string{"addr", "token", "tls-ca", "output"} {
		if given[name] {
			continue
		}
		if v, ok := os.LookupEnv(envName(name)); ok && v != "" {
			if err := fs.Set(name, v); err != nil {
				return fmt.Errorf("%s=%q: %v", envName(name), v, err)
			}
		}
	}
	return nil
}

// ask asks a yes/no question on the terminal; anything but yes refuses.
// Without a terminal to ask on, it refuses: --yes is the answer then.
func (c *cli) ask(question string) error {
	if !c.env.isTerminal() {
		return errors.New("refusing without a confirmation: standard input is not a terminal to ask on, and nothing was changed; pass --yes to go ahead")
	}
	fmt.Fprintf(c.env.stderr, "%s [y/N] ", question)
	line, _ := bufio.NewReader(c.env.stdin).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return nil
	}
	return errors.New("not confirmed; nothing was changed")
}

// get reads path and decodes its JSON answer into v; it returns the raw
// answer too, for -o json.
func (c *cli) get(path string, v any) ([]byte, error) {
	b, err := c.json("GET", path, nil)
	if err != nil {
		return nil, err
	}
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			return nil, fmt.Errorf("GET %s: unexpected answer: %v", path, err)
		}
	}
	return b, nil
}

// show prints a read: the raw JSON with -o json, else the table.
func (c *cli) show(raw []byte, table func(w io.Writer)) error {
	if c.output == "json" {
		return printJSON(c.env.stdout, raw)
	}
	tw := tabwriter.NewWriter(c.env.stdout, 0, 0, 2, ' ', 0)
	table(tw)
	return tw.Flush()
}

// done reports a change: the API's answer with -o json, else one line.
func (c *cli) done(raw []byte, format string, args ...any) error {
	if c.output == "json" && len(raw) > 0 {
		return printJSON(c.env.stdout, raw)
	}
	_, err := fmt.Fprintf(c.env.stdout, format+"\n", args...)
	return err
}

// printJSON writes a JSON answer indented.
func printJSON(w io.Writer, b []byte) error {
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		_, err = w.Write(b)
		return err
	}
	out.WriteByte('\n')
	_, err := w.Write(out.Bytes())
	return err
}

// flatten writes a JSON object's leaves as dotted keys, sorted:
// routing.offer_timeout → 30s.
func flatten(prefix string, v any, out map[string]string) {
	switch x := v.(type) {
	case map[string]any:
		for k, vv := range x {
			key := k
			if prefix != "" {
				key = prefix + "." + k
			}
			flatten(key, vv, out)
		}
	default:
		b, _ := json.Marshal(x)
		s := string(b)
		if str, ok := x.(string); ok {
			s = str
		}
		out[prefix] = s
	}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
