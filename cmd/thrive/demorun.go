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
	"github.com/thrive-loadtest/thrive/capture"
	"github.com/thrive-loadtest/thrive/demo"
	"github.com/thrive-loadtest/thrive/replay"
	"github.com/thrive-loadtest/thrive/report"
	"github.com/thrive-loadtest/thrive/scheduler"
)

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
