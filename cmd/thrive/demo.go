package main

import (
	"context"
	"errors"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/thrive-loadtest/thrive/demo"
	"github.com/thrive-loadtest/thrive/internal/app"
)

func newDemoCmd() *cobra.Command {
	var t app.Tour
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the sample backend, record real sessions through the capture proxy, replay them as many users",
		Long: `Start the demo backend on a loopback port and the capture proxy in front of it, play real
user sessions (browse, chat and import, 60/30/10) through the proxy, print what the users
did and what the trace holds, then replay the trace as --users users for --run-time against
the backend, print the latency report and write it as HTML (--html, by default next to the
trace). Each replayed user logs in to a session of its own; the trace keeps the recorded
passwords so that the logins replay without a users file.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := t.Validate(); err != nil {
				return usageError("%v", err)
			}
			t.Out, t.Warn = cmd.OutOrStdout(), cmd.ErrOrStderr()
			return t.Run(cmd.Context())
		},
	}
	cmd.Flags().IntVar(&t.Sessions, "sessions", 60, "how many user sessions to play")
	cmd.Flags().Float64Var(&t.TimeScale, "time-scale", 50, "divide the users' waits by this")
	cmd.Flags().StringVarP(&t.Trace, "out", "o", "", "the trace to write (default: a new file in the temporary directory)")
	cmd.Flags().IntVarP(&t.Users, "users", "u", 300, "users to replay the trace as")
	cmd.Flags().DurationVarP(&t.RunTime, "run-time", "t", 30*time.Second, "how long the replay lasts")
	cmd.Flags().StringVar(&t.HTML, "html", "", "the HTML report to write (default: next to the trace, ending -report.html)")
	cmd.Flags().StringVar(&t.Web, "web", "", "show the replay live on a page served at http://`host:port`/ (as replay --web), up until Ctrl-C")
	cmd.Flags().BoolVar(&t.Compare, "compare", false, "also serve a changed build of the backend and replay against both side by side (replay --candidate), ending with their comparison")
	cmd.AddCommand(newDemoServeCmd(), newDemoDriveCmd())
	return cmd
}

func newDemoServeCmd() *cobra.Command {
	var opts []demo.Option
	var faults demo.Faults
	var rate, scale float64
	var burst int
	var seed uint64
	p := demo.Processes{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the demo backend",
		Long: `Run the demo backend: Django-like login with sessionid and csrftoken cookies, a project
catalogue, a chat agent over WebSocket (/ws/chat/) and POST /api/chat/, GitHub and YouTube
imports visible only to their creator, per-session rate limiting, injectable faults, and
Prometheus metrics on /metrics. Users log in with any name and the password "pw-NAME".

Latency classes for --latency: ` + strings.Join(demo.Classes(), ", ") + `.
Build changes (--drop-field, --rename-field, --fail-ratio ENDPOINT=R, --slow, --tokens-scale) make
it a changed build, each counted in demo_build_changes_total. Endpoints, as they name them:
` + strings.Join(demo.Endpoints(), ", ") + `.`,
		Example: "  thrive demo serve --listen 127.0.0.1:8000\n" +
			"  thrive demo serve --latency-scale 2 --fail-ratio 0.01 --latency search=100ms:1s\n" +
			"  thrive demo serve --drop-field '$.results[].stars' --fail-ratio 'GET /api/tools/=0.1' --slow 'GET /api/search/=1.2'\n" +
			"  thrive demo serve --processes 4   # four processes on one port (SO_REUSEPORT)",
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if p.N < 1 {
				return usageError("--processes %d: want 1 or more", p.N)
			}
			secret, epoch, err := demo.SharedKeys()
			if err != nil {
				return err
			}
			srv, err := demo.New(append(opts, demo.WithRateLimit(rate, burst), demo.WithLatencyScale(scale), demo.WithFaults(faults), demo.WithSeed(seed),
				demo.WithSecret(secret), demo.WithProcess(p.Index, p.N, epoch))...)
			if err != nil {
				return usageError("%v", err)
			}
			if p.Exe, err = executable(ctx); err != nil {
				return err
			}
			// The others are given this one's command line, then their
			// address and index, which override its own.
			args, _ := ctx.Value(argsKey{}).([]string)
			p.Args = func(addr string, i int) []string {
				return slices.Concat(args, []string{"--listen", addr, "--process-index", strconv.Itoa(i)})
			}
			p.Out, p.Warn = cmd.OutOrStdout(), cmd.ErrOrStderr()
			return p.Serve(ctx, srv, secret, epoch)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&p.Listen, "listen", "127.0.0.1:8000", "address to listen on")
	fl.Float64Var(&rate, "rate-limit", 20, "requests per second per session; 0 for none")
	fl.IntVar(&burst, "burst", 0, "burst of the rate limit (default: the rate, at least 1)")
	fl.Float64Var(&scale, "latency-scale", 1, "multiply every delay (2 is a build twice as slow)")
	parsedFlag(fl, &opts, "latency", "latency of a class: CLASS=MEDIAN[:P99] (repeatable)", demo.ParseClassLatency)
	parsedFlag(fl, &opts, "fail-ratio", "answer 500 or 503 to a share `R|ENDPOINT=R` of all requests (exact), or 500 to a share of one endpoint's (random, from --seed; repeatable)", faults.ParseFailRatio)
	parsedFlag(fl, &opts, "drop-field", "JSON answers lose the field at this `path`, such as $.results[].stars (repeatable)", demo.ParseDropField)
	parsedFlag(fl, &opts, "rename-field", "JSON answers rename a field: `PATH=NEWNAME`, such as $.owner.username=login (repeatable)", demo.ParseRenameField)
	parsedFlag(fl, &opts, "slow", "multiply an endpoint's modelled latency: `ENDPOINT=F`, such as 'GET /api/tools/=1.2' (repeatable)", demo.ParseSlow)
	parsedFlag(fl, &opts, "busy", "spend a `SHARE` (0 to 1) of each modelled latency computing, not waiting: other load on the cores slows it", demo.ParseBusy)
	parsedFlag(fl, &opts, "tokens-scale", "the chat's WebSocket replies stream `F` times as many tokens (rounded, at least 1)", demo.ParseTokensScale)
	fl.Uint64Var(&seed, "seed", 1, "seed of the random draws of --fail-ratio ENDPOINT=R")
	fl.Float64Var(&faults.ResetRatio, "reset-ratio", 0, "share of requests whose connection is reset")
	fl.Float64Var(&faults.SlowRatio, "slow-ratio", 0, "share of requests delayed by --slow-time")
	fl.DurationVar(&faults.Slow, "slow-time", 5*time.Second, "delay of slow requests")
	fl.IntVar(&p.N, "processes", 1, "server processes sharing the port (SO_REUSEPORT)")
	fl.IntVar(&p.Index, "process-index", 0, "this process's index (set by the first process for the others)")
	fl.DurationVar(&p.Grace, "grace", 5*time.Second, "time requests in flight get to finish on shutdown")
	_ = fl.MarkHidden("process-index")
	return cmd
}

// executableKey names, in a context, the thrive binary to start more
// processes of; argsKey the command line it was given (run's args).
type executableKey struct{}
type argsKey struct{}

// executable returns the thrive binary a command starts more processes of:
// the running one, unless the context names another (the tests run
// commands in-process, and name the binary they built).
func executable(ctx context.Context) (string, error) {
	if p, ok := ctx.Value(executableKey{}).(string); ok {
		return p, nil
	}
	return os.Executable()
}

func newDemoDriveCmd() *cobra.Command {
	d := demo.Driver{}
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "drive --base URL",
		Short: "Play user sessions (browse, chat, import: 60/30/10) against a backend or a capture proxy",
		Example: "  thrive demo drive --base http://127.0.0.1:8000 --sessions 100 --time-scale 20\n" +
			"  thrive demo drive --base http://127.0.0.1:9000 --sessions 50   # through a capture proxy",
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := d.Validate(); err != nil {
				return usageError("%v", err)
			}
			start := time.Now()
			st, err := d.Run(cmd.Context())
			if asJSON {
				return errors.Join(err, app.WriteJSON(cmd.OutOrStdout(), &st))
			}
			st.WriteText(cmd.OutOrStdout(), time.Since(start))
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&d.Base, "base", "", "the backend's URL, or a capture proxy's")
	fl.IntVar(&d.Sessions, "sessions", 20, "how many user sessions to play")
	fl.IntVar(&d.Concurrency, "concurrency", 10, "sessions at a time")
	fl.Float64Var(&d.TimeScale, "time-scale", 1, "divide the users' waits by this (100: a hundred times faster)")
	fl.Uint64Var(&d.Seed, "seed", 1, "the same seed plays the same choices")
	fl.DurationVar(&d.Timeout, "timeout", 30*time.Second, "timeout of each request")
	fl.StringVar(&d.UserPrefix, "user-prefix", "user", "users log in as PREFIX0, PREFIX1, ...")
	fl.BoolVar(&asJSON, "json", false, "print the figures as JSON")
	return cmd
}
