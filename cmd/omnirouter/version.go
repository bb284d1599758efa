package main

import (
	"encoding/json"
	"flag"
	"fmt"

	"github.com/omnirouter/omnirouter/internal/buildinfo"
)

// versionCommand is `omnirouter version` (and `omnirouter --version`): the
// version, commit and Go version of this binary, as a table or, with
// -o json, as JSON.
func versionCommand(args []string, e *env) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var output string
	fs.StringVar(&output, "o", "table", "output format: table or json")
	fs.StringVar(&output, "output", "table", "output format: table or json")
	fs.Bool("version", true, "the same as the command")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: omnirouter version [-o json]\n\nThe version, commit and Go version of this binary.\n\n")
		fs.PrintDefaults()
	}
	if err := parseArgs(fs, args, e.stdout); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	bi := buildinfo.Get()
	switch output {
	case "json":
		b, _ := json.Marshal(map[string]any{"version": bi.Version, "commit": bi.Commit, "modified": bi.Modified, "go_version": bi.GoVersion})
		return printJSON(e.stdout, b)
	case "table":
		_, err := fmt.Fprintf(e.stdout, "omnirouter %s\ncommit     %s\ngo         %s\n", bi.Version, bi.CommitLabel(), bi.GoVersion)
		return err
	}
	fmt.Fprintf(e.stderr, "omnirouter version: -o must be table or json, got %q\n", output)
	return errUsage
}
