package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// envName is the environment variable of a flag: --node-id → OMNIROUTER_NODE_ID.
func envName(flagName string) string {
	return "OMNIROUTER_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parseFlags parses args, then fills every flag not given on the command
// line from its OMNIROUTER_* environment variable. Command-line flags win.
// -h or --help prints fs.Usage to fs's output and returns errHelp.
func parseFlags(fs *flag.FlagSet, args []string) error {
	return parseFlagsHelp(fs, args, fs.Output())
}

// parseFlagsHelp is parseFlags printing the help to help.
func parseFlagsHelp(fs *flag.FlagSet, args []string, help io.Writer) error {
	if err := parseArgs(fs, args, help); err != nil {
		return err
	}
	return flagsFromEnv(fs)
}

// parseArgs parses args: -h or --help prints fs.Usage to help (errHelp); a
// bad flag gets its error line and a pointer to --help (errUsage).
func parseArgs(fs *flag.FlagSet, args []string, help io.Writer) error {
	usage := fs.Usage
	fs.Usage = func() {}
	err := fs.Parse(args)
	fs.Usage = usage
	if errors.Is(err, flag.ErrHelp) {
		out := fs.Output()
		fs.SetOutput(help)
		usage()
		fs.SetOutput(out)
		return errHelp
	}
	if err != nil {
		fmt.Fprintf(fs.Output(), "omnirouter %s --help lists the flags\n", fs.Name())
		return errUsage
	}
	return nil
}

// flagsFromEnv fills every flag not given on the command line from its
// OMNIROUTER_* environment variable.
func flagsFromEnv(fs *flag.FlagSet) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] || err != nil {
			return
		}
		if v, ok := os.LookupEnv(envName(f.Name)); ok {
			if e := f.Value.Set(v); e != nil {
				err = fmt.Errorf("%s=%q: %v", envName(f.Name), v, e)
			}
		}
	})
	return err
}

// listFlag is a comma-separated list flag that may also be repeated.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}
