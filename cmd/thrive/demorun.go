package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
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
	out       string
	users     int
	runTime   time.Duration
	html      string
}

// runDemo is the main job, as far as it is built: the demo backend, the
// capture proxy in front of it, users played through the proxy, and the
// trace they leave.
func runDemo(cmd *cobra.Command, f *demoFlags) error {
	ctx := cmd.Context()
	out := cmd.OutOrStdout()
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
	// users' faster clock, so that their polls see them finish.
	job := time.Duration(float64(3*time.Second) / f.timeScale)
	// The trace keeps the users' passwords, so that the replayed logins
	// work without a users file; and the recorded sessions' gaps, shortened
	// by the driver's faster clock, would trip the per-session rate limit.
	srv, err := demo.New(demo.WithLatency(demo.ClassJob, demo.Latency{Median: job, P99: job}), demo.WithRateLimit(0, 1))
	if err != nil {
		return err
	}
	bln, err := demo.Listen(ctx, "127.0.0.1:0", false)
	if err != nil {
		return err
	}
	backend := "http://" + bln.Addr().String()
	sink := &capture.FileSink{Path: f.out}
	cp, err := capture.New(backend, sink, capture.WithKeepSecrets())
	if err != nil {
		bln.Close()
		return err
	}
	if err := cp.Open(); err != nil {
		bln.Close()
		return err
	}
	pln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		bln.Close()
		sink.Close()
		return err
	}
	proxy := "http://" + pln.Addr().String()

	bctx, stopBackend := context.WithCancel(context.WithoutCancel(ctx))
	pctx, stopProxy := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	var serveErr, captureErr error
	wg.Go(func() { serveErr = srv.Serve(bctx, bln, 5*time.Second) })
	proxyDone := make(chan struct{})
	go func() { defer close(proxyDone); captureErr = cp.Run(pctx, pln) }()

	fmt.Fprintf(out, "demo backend on %s, capture proxy on %s recording into %s\n", backend, proxy, f.out)
	fmt.Fprintf(out, "playing %d sessions through the proxy (waits divided by %g)\n\n", f.sessions, f.timeScale)
	d := demo.Driver{Base: proxy, Sessions: f.sessions, Concurrency: 20, TimeScale: f.timeScale, Seed: 1}
	start := time.Now()
	st, derr := d.Run(ctx)
	took := time.Since(start)
	// Stop the proxy first, so that it writes every session while the
	// backend is still there for requests in flight.
	stopProxy()
	<-proxyDone
	st.WriteText(out, took)
	cs := cp.Stats()
	fmt.Fprintf(out, "\nrecorded %d sessions, %d exchanges, %d WebSocket frames:\n", cs.Sessions, cs.Exchanges, cs.Frames)
	serr := capture.WriteSummary(out, f.out)
	var rerr error
	if derr == nil && captureErr == nil && serr == nil && ctx.Err() == nil {
		fmt.Fprintf(out, "\nreplaying the trace as %d users for %s against the backend:\n", f.users, f.runTime)
		rerr = replayDemo(ctx, cmd, f, backend)
	}
	stopBackend()
	wg.Wait()
	return errors.Join(derr, captureErr, serveErr, serr, rerr)
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
