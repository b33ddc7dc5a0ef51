package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/thrive-loadtest/thrive/capture"
	"github.com/thrive-loadtest/thrive/demo"
	"github.com/thrive-loadtest/thrive/replay"
	"github.com/thrive-loadtest/thrive/report"
	"github.com/thrive-loadtest/thrive/scheduler"
)

// A Tour is thrive's main job on a built-in default, as thrive demo runs
// it: the demo backend on a loopback port, the capture proxy in front of
// it, user sessions driven through the proxy into a trace, and the trace
// replayed as many users against the backend, with its report.
//
// It holds the decisions that make the demo hold together: the backend's
// import jobs keep pace with the driver's faster clock and its rate limit
// is off (the recorded gaps, shortened, would trip it); the trace keeps
// the users' passwords so that the replayed logins work without a users
// file; the proxy stops before the backend, so that it writes every
// session while the backend still answers what is in flight.
type Tour struct {
	// Sessions are driven through the proxy, their waits divided by
	// TimeScale.
	Sessions  int
	TimeScale float64
	// Trace is the trace written: a new file in the temporary directory
	// when empty. HTML is the report: next to the trace, ending
	// -report.html, when empty.
	Trace, HTML string
	// Users replay the trace for RunTime, whole sessions fitted into it.
	Users   int
	RunTime time.Duration
	// Web, when not "", is where the replay's live page is served, as
	// Replay.Web, and WebLinger how long it stays up after.
	Web       string
	WebLinger time.Duration
	// Compare, when set, also runs a changed build of the backend
	// (changedBuild) and replays the trace against both side by side
	// (Replay.Candidate), ending with their comparison.
	Compare bool
	// Out takes what the tour says, Warn the replay's warnings.
	Out, Warn io.Writer
}

// Validate reports what makes no tour.
func (t *Tour) Validate() error {
	if t.TimeScale <= 0 || t.Sessions < 0 {
		return fmt.Errorf("time scale %g and sessions %d: want a positive scale and 0 or more sessions", t.TimeScale, t.Sessions)
	}
	return nil
}

// Run runs the tour until the replay's end, or until ctx ends.
func (t *Tour) Run(ctx context.Context) (err error) {
	if err := t.Validate(); err != nil {
		return err
	}
	if t.Trace == "" {
		tf, err := os.CreateTemp("", "thrive-demo-*.thrv")
		if err != nil {
			return err
		}
		t.Trace = tf.Name()
		tf.Close()
	}
	// Imports take 3 s of the backend's time: in step with the driver's
	// clock, so that the users' polls see them finish.
	job := time.Duration(float64(3*time.Second) / t.TimeScale)
	opts := []demo.Option{demo.WithLatency(demo.ClassJob, demo.Latency{Median: job, P99: job}), demo.WithRateLimit(0, 1)}
	srv, err := demo.New(opts...)
	if err != nil {
		return err
	}
	candidate := ""
	if t.Compare {
		stop, url, err := t.changedBuild(ctx, opts)
		if err != nil {
			return err
		}
		defer func() { err = errors.Join(err, stop()) }()
		candidate = url
	}
	bln, err := demo.Listen(ctx, "127.0.0.1:0", false)
	if err != nil {
		return err
	}
	backend := "http://" + bln.Addr().String()
	sink := &capture.FileSink{Path: t.Trace}
	cp, err := capture.New(backend, sink, capture.WithKeepSecrets())
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
		sink.Close()
		return err
	}
	proxy := "http://" + pln.Addr().String()
	stopBackend := background(ctx, func(ctx context.Context) error { return srv.Serve(ctx, bln, 5*time.Second) })
	stopProxy := background(ctx, func(ctx context.Context) error { return cp.Run(ctx, pln) })

	fmt.Fprintf(t.Out, "demo backend on %s, capture proxy on %s recording into %s\n", backend, proxy, t.Trace)
	fmt.Fprintf(t.Out, "playing %d sessions through the proxy (waits divided by %g)\n\n", t.Sessions, t.TimeScale)
	d := demo.Driver{Base: proxy, Sessions: t.Sessions, Concurrency: 20, TimeScale: t.TimeScale, Seed: 1}
	start := time.Now()
	st, derr := d.Run(ctx)
	took := time.Since(start)
	captureErr := stopProxy()
	st.WriteText(t.Out, took)
	cs := cp.Stats()
	fmt.Fprintf(t.Out, "\nrecorded %d sessions, %d exchanges, %d WebSocket frames:\n", cs.Sessions, cs.Exchanges, cs.Frames)
	serr := WriteSummary(t.Out, t.Trace)
	var rerr error
	if derr == nil && captureErr == nil && serr == nil && ctx.Err() == nil {
		fmt.Fprintf(t.Out, "\nreplaying the trace as %d users for %s against the backend:\n", t.Users, t.RunTime)
		rerr = t.replay(ctx, backend, candidate)
	}
	return errors.Join(derr, captureErr, stopBackend(), serr, rerr)
}

// replay replays the trace against the backend with whole sessions fitted
// into the run time.
func (t *Tour) replay(ctx context.Context, backend, candidate string) error {
	lib, err := replay.LoadFile(t.Trace)
	if err != nil {
		return err
	}
	if t.HTML == "" {
		t.HTML = strings.TrimSuffix(t.Trace, ".thrv") + "-report.html"
	}
	run := Replay{
		Trace: t.Trace, Library: lib, Target: backend, Options: []replay.Option{replay.WithStopTimeout(5 * time.Second)},
		Plan:  scheduler.Config{Users: t.Users, SpawnRate: float64(t.Users), RunTime: t.RunTime, AutoScale: true, Seed: 1},
		Label: "demo", Web: t.Web, WebLinger: t.WebLinger, Candidate: candidate,
		Finish: Finish{Files: report.Files{HTML: t.HTML}, Out: t.Out, Warn: t.Warn},
	}
	_, err = run.Play(ctx)
	return err
}

// changedBuild serves, on a loopback port, the demo backend made with opts
// and changed as a new build might be: a field gone from its lists, its
// search half again as slow, its chat's replies half as long. It returns
// what stops it and its URL.
func (t *Tour) changedBuild(ctx context.Context, opts []demo.Option) (stop func() error, url string, err error) {
	const field, slow = "$.results[].stars", "GET /api/search/"
	srv, err := demo.New(append(slices.Clip(opts), demo.WithDropField(field), demo.WithSlow(slow, 1.5), demo.WithTokensScale(0.5))...)
	if err != nil {
		return nil, "", err
	}
	ln, err := demo.Listen(ctx, "127.0.0.1:0", false)
	if err != nil {
		return nil, "", err
	}
	url = "http://" + ln.Addr().String()
	fmt.Fprintf(t.Out, "a changed build of the backend on %s: %s gone, %s 1.5x as slow, chat replies of half the tokens\n", url, field, slow)
	return background(ctx, func(ctx context.Context) error { return srv.Serve(ctx, ln, 5*time.Second) }), url, nil
}

// background runs run in a goroutine with a context of its own, which the
// returned stop cancels before it waits for run's error.
func background(ctx context.Context, run func(context.Context) error) (stop func() error) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	return func() error { cancel(); return <-done }
}
