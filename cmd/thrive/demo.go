package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/thrive-loadtest/thrive/capture"
	"github.com/thrive-loadtest/thrive/demo"
	"github.com/thrive-loadtest/thrive/replay"
	"github.com/thrive-loadtest/thrive/report"
	"github.com/thrive-loadtest/thrive/scheduler"
)

func newDemoCmd() *cobra.Command {
	f := demoFlags{}
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
		RunE: func(cmd *cobra.Command, _ []string) error { return runDemo(cmd, &f) },
	}
	cmd.Flags().IntVar(&f.sessions, "sessions", 60, "how many user sessions to play")
	cmd.Flags().Float64Var(&f.timeScale, "time-scale", 50, "divide the users' waits by this")
	cmd.Flags().StringVarP(&f.out, "out", "o", "", "the trace to write (default: a new file in the temporary directory)")
	cmd.Flags().IntVarP(&f.users, "users", "u", 300, "users to replay the trace as")
	cmd.Flags().DurationVarP(&f.runTime, "run-time", "t", 30*time.Second, "how long the replay lasts")
	cmd.Flags().StringVar(&f.html, "html", "", "the HTML report to write (default: next to the trace, ending -report.html)")
	cmd.AddCommand(newDemoServeCmd(), newDemoDriveCmd())
	return cmd
}

type demoFlags struct {
	sessions  int
	timeScale float64
	out, html string
	users     int
	runTime   time.Duration
}

// runDemo is the main job: the demo backend, the capture proxy in front of
// it, users played through the proxy, the trace they leave, and the trace
// replayed as many users against the backend.
func runDemo(cmd *cobra.Command, f *demoFlags) error {
	ctx, out := cmd.Context(), cmd.OutOrStdout()
	if f.timeScale <= 0 || f.sessions < 0 {
		return usageError("--time-scale %g and --sessions %d: want a positive scale and 0 or more sessions", f.timeScale, f.sessions)
	}
	if f.out == "" {
		tf, err := os.CreateTemp("", "thrive-demo-*.thrv")
		if err != nil {
			return err
		}
		f.out = tf.Name()
		tf.Close()
	}
	// Imports take 3 s of the backend's time; keep that in step with the
	// users' faster clock, so that their polls see them finish. The
	// recorded sessions' gaps, shortened by that clock, would trip the
	// per-session rate limit.
	job := time.Duration(float64(3*time.Second) / f.timeScale)
	srv, err := demo.New(demo.WithLatency(demo.ClassJob, demo.Latency{Median: job, P99: job}), demo.WithRateLimit(0, 1))
	if err != nil {
		return err
	}
	bln, err := demo.Listen(ctx, "127.0.0.1:0", false)
	if err != nil {
		return err
	}
	backend := "http://" + bln.Addr().String()
	// The trace keeps the users' passwords, so that the replayed logins
	// work without a users file.
	cp, err := capture.New(backend, &capture.FileSink{Path: f.out}, capture.WithKeepSecrets())
	if err == nil {
		err = cp.Open() // the trace can be written
	}
	if err != nil {
		bln.Close()
		return err
	}
	pln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		bln.Close()
		return err
	}
	proxy := "http://" + pln.Addr().String()
	stopBackend := background(ctx, func(ctx context.Context) error { return srv.Serve(ctx, bln, 5*time.Second) })
	stopProxy := background(ctx, func(ctx context.Context) error { return cp.Run(ctx, pln) })

	fmt.Fprintf(out, "demo backend on %s, capture proxy on %s recording into %s\n", backend, proxy, f.out)
	fmt.Fprintf(out, "playing %d sessions through the proxy (waits divided by %g)\n\n", f.sessions, f.timeScale)
	d := demo.Driver{Base: proxy, Sessions: f.sessions, Concurrency: 20, TimeScale: f.timeScale, Seed: 1}
	start := time.Now()
	st, derr := d.Run(ctx)
	took := time.Since(start)
	// Stop the proxy first, so that it writes every session while the
	// backend is still there for requests in flight.
	captureErr := stopProxy()
	st.WriteText(out, took)
	cs := cp.Stats()
	fmt.Fprintf(out, "\nrecorded %d sessions, %d exchanges, %d WebSocket frames:\n", cs.Sessions, cs.Exchanges, cs.Frames)
	serr := capture.WriteSummary(out, f.out)
	var rerr error
	if derr == nil && captureErr == nil && serr == nil && ctx.Err() == nil {
		fmt.Fprintf(out, "\nreplaying the trace as %d users for %s against the backend:\n", f.users, f.runTime)
		rerr = replayDemo(ctx, cmd, f, backend)
	}
	return errors.Join(derr, captureErr, stopBackend(), serr, rerr)
}

// background runs run in a goroutine with a context of its own, which the
// returned stop cancels before it waits for run's error.
func background(ctx context.Context, run func(context.Context) error) (stop func() error) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	return func() error { cancel(); return <-done }
}

// replayDemo replays the demo's trace against its backend with the whole
// session fitted into the run time.
func replayDemo(ctx context.Context, cmd *cobra.Command, f *demoFlags, backend string) error {
	lib, err := replay.LoadFile(f.out)
	if err != nil {
		return err
	}
	if f.html == "" {
		f.html = strings.TrimSuffix(f.out, ".thrv") + "-report.html"
	}
	run := replay.Run{
		Trace: f.out, Library: lib, Target: backend, Options: []replay.Option{replay.WithStopTimeout(5 * time.Second)},
		Plan:  scheduler.Config{Users: f.users, SpawnRate: float64(f.users), RunTime: f.runTime, AutoScale: true, Seed: 1},
		Label: "demo", Files: report.Files{HTML: f.html}, Out: cmd.OutOrStdout(), Warn: cmd.ErrOrStderr(),
	}
	_, err = run.Play(ctx)
	return err
}

func newDemoServeCmd() *cobra.Command {
	var latencies []string
	var faults demo.Faults
	var rate, scale float64
	var burst int
	p := demo.Processes{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the demo backend",
		Long: `Run the demo backend: Django-like login with sessionid and csrftoken cookies, a project
catalogue, a chat agent over WebSocket (/ws/chat/) and POST /api/chat/, GitHub and YouTube
imports visible only to their creator, per-session rate limiting, injectable faults, and
Prometheus metrics on /metrics. Users log in with any name and the password "pw-NAME".

Latency classes for --latency: ` + strings.Join(demo.Classes(), ", ") + `.`,
		Example: "  thrive demo serve --listen 127.0.0.1:8000\n" +
			"  thrive demo serve --latency-scale 2 --fail-ratio 0.01 --latency search=100ms:1s\n" +
			"  thrive demo serve --processes 4   # four processes on one port (SO_REUSEPORT)",
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if p.N < 1 {
				return usageError("--processes %d: want 1 or more", p.N)
			}
			var opts []demo.Option
			for _, l := range latencies {
				o, err := demo.ParseClassLatency(l)
				if err != nil {
					return usageError("--latency %v", err)
				}
				opts = append(opts, o)
			}
			secret, epoch, err := demo.SharedKeys()
			if err != nil {
				return err
			}
			srv, err := demo.New(append(opts, demo.WithRateLimit(rate, burst), demo.WithLatencyScale(scale), demo.WithFaults(faults),
				demo.WithSecret(secret), demo.WithProcess(p.Index, p.N, epoch))...)
			if err != nil {
				return usageError("%v", err)
			}
			if p.Exe, err = executable(ctx); err != nil {
				return err
			}
			p.Args, p.Out, p.Warn = append([]string{"demo", "serve"}, serveArgs(cmd)...), cmd.OutOrStdout(), cmd.ErrOrStderr()
			return p.Serve(ctx, srv, secret, epoch)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&p.Listen, "listen", "127.0.0.1:8000", "address to listen on")
	fl.Float64Var(&rate, "rate-limit", 20, "requests per second per session; 0 for none")
	fl.IntVar(&burst, "burst", 0, "burst of the rate limit (default: the rate, at least 1)")
	fl.Float64Var(&scale, "latency-scale", 1, "multiply every delay (2 is a build twice as slow)")
	fl.StringArrayVar(&latencies, "latency", nil, "latency of a class: CLASS=MEDIAN[:P99] (repeatable)")
	fl.Float64Var(&faults.ErrorRatio, "fail-ratio", 0, "share of requests answered 500 or 503")
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
// processes of.
type executableKey struct{}

// executable returns the thrive binary a command starts more processes of:
// the running one, unless the context names another (the tests run
// commands in-process, and name the binary they built).
func executable(ctx context.Context) (string, error) {
	if p, ok := ctx.Value(executableKey{}).(string); ok {
		return p, nil
	}
	return os.Executable()
}

// serveArgs are the flags demo serve was given, for its other processes:
// all but the address and the index, which each is told.
func serveArgs(cmd *cobra.Command) []string {
	var args []string
	cmd.Flags().Visit(func(fl *pflag.Flag) {
		if fl.Name == "listen" || fl.Name == "process-index" {
			return
		}
		if sv, ok := fl.Value.(pflag.SliceValue); ok {
			for _, v := range sv.GetSlice() {
				args = append(args, "--"+fl.Name+"="+v)
			}
			return
		}
		args = append(args, "--"+fl.Name+"="+fl.Value.String())
	})
	return args
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
				return errors.Join(err, writeJSON(cmd.OutOrStdout(), &st))
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
