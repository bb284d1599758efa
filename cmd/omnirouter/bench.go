package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/omnirouter/omnirouter/tools/loadgen"
)

// benchCommand is `omnirouter bench`.
func benchCommand(args []string, e *env) error { return bench(args, e.stdout, e.stderr) }

// bench runs the load tool: `omnirouter bench --targets a,b,c`.
func bench(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	targets := fs.String("targets", envOr("OMNIROUTER_BENCH_TARGETS", "127.0.0.1:8080"), "comma-separated HTTP addresses of the nodes to spread the load over")
	duration := fs.Duration("duration", 30*time.Second, "how long to run")
	concurrency := fs.Int("concurrency", 64, "concurrent clients")
	agents := fs.Int("agents", 500, "agents to register and set online")
	workload := fs.String("workload", loadgen.WorkloadLifecycle, "lifecycle, create, mixed, or none (no writes: only --long-polls readers and memory samples)")
	jsonOut := fs.String("json", "", "also write the report as JSON to this file")
	token := fs.String("token", os.Getenv("OMNIROUTER_TOKEN"), "operator bearer token, if the cluster has an auth file")
	skipVerify := fs.Bool("skip-verify", false, "do not read back every acknowledged conversation at the end")
	caFile := fs.String("tls-ca", os.Getenv("OMNIROUTER_TLS_CA"), "PEM CA certificate(s) of nodes that serve https")
	rate := fs.Float64("rate", 0, "open loop: start this many conversations (create: creations; mixed: work items) per second on a fixed schedule, at most --concurrency at once, each timed from when it was due; 0 runs a closed loop")
	cpuProfile := fs.String("cpuprofile", "", "write the load tool's own CPU profile to this file (to see what the tool costs the machine)")
	sampleEvery := fs.Duration("sample-every", time.Second, "read every node's memory and state (live heap, RSS, conversations, events, idempotency records, last snapshot size) this often through the run; 0: never")
	plot := fs.String("plot", "", "also chart the memory samples as SVG to this file")
	longPolls := fs.Int("long-polls", 0, "event readers that follow the event log with long-polls through the run, spread over the targets")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: omnirouter bench --targets <addrs> [flags]\n\nLoads a running cluster through its public API, reports throughput and latency per\noperation, then reads back every acknowledged conversation and checks the invariants.\n\n")
		fs.PrintDefaults()
	}
	if err := parseArgs(fs, args, stdout); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	var tlsConfig *tls.Config
	if *caFile != "" {
		pool, err := caPool(*caFile)
		if err != nil {
			return err
		}
		tlsConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := loadgen.Run(ctx, loadgen.Config{
		Targets: strings.Split(*targets, ","), Duration: *duration, Concurrency: *concurrency,
		Agents: *agents, Workload: *workload, Token: *token, Progress: stderr, SkipVerify: *skipVerify, TLS: tlsConfig,
		Rate: *rate, SampleEvery: *sampleEvery, LongPolls: *longPolls,
	})
	if rep != nil {
		rep.WriteSummary(stdout)
		if *plot != "" && rep.Memory != nil {
			if perr := writePlot(*plot, rep); perr != nil {
				return perr
			}
		}
		if *jsonOut != "" {
			f, ferr := os.Create(*jsonOut)
			if ferr != nil {
				return ferr
			}
			if werr := rep.WriteJSON(f); werr != nil {
				f.Close()
				return werr
			}
			if cerr := f.Close(); cerr != nil {
				return cerr
			}
		}
	}
	if err != nil {
		return fmt.Errorf("%w (see the report above)", err)
	}
	return nil
}

func writePlot(path string, rep *loadgen.Report) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	title := fmt.Sprintf("omnirouter bench: %s, %d clients, %s", rep.Workload, rep.Concurrency, rep.StartedAt.Format(time.RFC3339))
	if err := rep.Memory.WriteSVG(f, title); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
