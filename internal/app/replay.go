package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/thrive-loadtest/thrive/internal/statusline"
	"github.com/thrive-loadtest/thrive/replay"
	"github.com/thrive-loadtest/thrive/report"
	"github.com/thrive-loadtest/thrive/report/live"
	"github.com/thrive-loadtest/thrive/scheduler"
	"golang.org/x/sys/unix"
)

// A Replay is one load test as thrive replay runs it: a plan of a
// library's sessions played against a target, its criteria checked, and
// what it found printed and written. Play plays it once, Ladder climbs the
// testing ladder with it, Check plays each session once against its
// recording.
type Replay struct {
	// Trace is the trace's path, as the output and the result name it.
	Trace   string
	Library *replay.Library
	// Target and Options make the engine (replay.New). Prepare sets
	// Library and Target and adds the routes' options: Maps send the load
	// of other recorded hosts elsewhere (Library.Routes).
	Target  string
	Maps    []string
	Options []replay.Option
	// Candidate and Control, when not "", are targets the same users play
	// at the same moments, each as users of their own, side by side with
	// Target: the candidate build, and a second instance of the base as
	// the noise. The result holds each side (report.Result.Candidate,
	// Control), and the run ends with their comparison.
	Candidate, Control string
	// common are the Options before the routes of Target were added.
	common []replay.Option
	// Plan makes the plan (scheduler.New).
	Plan scheduler.Config
	// Label names the build under test in the result.
	Label string
	// StartAt is when the first users start (the shards of one run share
	// it); zero: 100 ms from now.
	StartAt time.Time
	// Finish is what is done with the result: its criteria, files and
	// baseline, and where the summary goes.
	Finish
	// Status, when not nil, takes a status line redrawn every second (a
	// terminal).
	Status io.Writer
	// Watch, when not nil, is given the run's progress every second while
	// it plays, as the status line is: another face of the run (a live
	// page, an exporter) reads the same snapshots.
	Watch func(Snapshot)
	// Metrics, when not "", is the address (host:port) where the run's
	// Prometheus metrics are served while it plays (report/live).
	Metrics string
	// Exporter, when not nil, is given the run to read (Exporter.Watch)
	// and keeps it after the run; its owner serves it. Play sets it while
	// it serves Metrics.
	Exporter *live.Exporter
	// Web, when not "", is the address (host:port) where the run's live
	// page is served (live.Web): its figures every second, a Stop that
	// works as Ctrl-C, and at the end its files to download. After the
	// run the page stays up until ctx is done, its Stop is pressed again
	// or WebLinger has passed (0: no limit).
	Web       string
	WebLinger time.Duration
	// Wait, with Web, shows the page first, its form of the run filled
	// from Plan, and starts the run when the page's Start is pressed,
	// with the form's users, spawn rate, run time and mix.
	Wait bool
	// page shows the run while Web is served, its files written to
	// pageDir for it.
	page    *live.Web
	pageDir string

	phase string // the ladder's phase being played ("phase 2 · 3 of 5"), for the status line
}

// A SetupError says why a run could not start: its plan, its options or
// the machine make no run of it. Nothing was sent.
type SetupError struct{ Err error }

func (e *SetupError) Error() string { return e.Err.Error() }
func (e *SetupError) Unwrap() error { return e.Err }

// setup makes err, if not nil, a SetupError with the hints it has.
func setup(err error) error {
	if err == nil {
		return nil
	}
	return &SetupError{Hint(err)}
}

// Prepare loads the library of Trace with opts, warns of a trace read
// only in part (replayed as far as it was read), and routes the load
// (Library.Routes of Target and Maps), saying where it goes. A route that
// cannot be taken is a SetupError.
func (r *Replay) Prepare(opts ...replay.LoadOption) error {
	lib, err := replay.LoadFile(r.Trace, opts...)
	if err != nil {
		return err
	}
	if err := lib.Damage(); err != nil {
		fmt.Fprintf(r.Warn, "warning: %s: %v; replaying the %s read\n", r.Trace, err, lib)
	}
	routes, err := lib.Routes(r.Target, r.Maps)
	if err != nil {
		return setup(err)
	}
	writeRoutes(r.Out, routes)
	r.common = slices.Clip(r.Options)
	r.Library, r.Target, r.Options = lib, routes.Target, append(r.Options, routes.Options()...)
	return nil
}

// Play plays the run once, then finishes it (Finish.Result): its
// summary, correlation misses, criteria, files and baseline. It returns a
// nil result and a SetupError when the run could not start. Else it
// returns the result and, first that applies: the cause of a cancelled
// context (the result is marked interrupted, with how long it ran and by
// what), a file that could not be written, a target that answered nothing
// (replay.Unreachable), or a report.Failure: a regression against the
// baseline, criteria that failed.
func (r *Replay) Play(ctx context.Context) (*report.Result, error) {
	if r.Wait && r.Web == "" {
		return nil, setup(errors.New("--wait waits for the Start of the live page: give --web host:port too"))
	}
	ctx, stopWeb, err := r.startWeb(ctx)
	if err != nil {
		return nil, err
	}
	defer stopWeb()
	if err := r.waitStart(ctx, r.Plan.Stages != nil || r.phase != ""); err != nil {
		return nil, err
	}
	plan, err := scheduler.New(r.Library.Sessions(), r.Plan)
	if err != nil {
		return nil, setup(err)
	}
	if err := r.checkProm(); err != nil {
		return nil, err
	}
	sides, err := r.sides()
	if err != nil {
		return nil, err
	}
	opts := r.Options
	var steer *replay.Steer
	if r.page != nil && r.phase == "" && len(sides) == 0 {
		// The page may change the users while the run plays, but not
		// those of a ladder's phase, which the ladder sets.
		steer = replay.NewSteer()
		opts = append(slices.Clip(opts), replay.WithSteer(steer))
	}
	eng, err := replay.New(r.Target, r.Library, opts...)
	if err != nil {
		return nil, setup(err)
	}
	start := r.StartAt
	if start.IsZero() {
		start = time.Now().Add(100 * time.Millisecond)
	} else if end := start.Add(plan.Duration()); end.Before(time.Now()) {
		return nil, setup(fmt.Errorf("start at %s: the run (%v) would have ended at %s, before now: nothing would be sent",
			start.Format(time.RFC3339), plan.Duration(), end.Format(time.RFC3339)))
	}
	names, shares := plan.Profiles()
	mix := make([]string, len(names))
	for i, n := range names {
		mix[i] = fmt.Sprintf("%s %.0f%%", n, 100*shares[i])
	}
	params := report.RunParams{
		Trace: r.Trace, Users: plan.TotalUsers(), RunTime: plan.Duration().String(), Scale: plan.Scale(), Pacing: eng.Pacing().String(),
		Seed: r.Plan.Seed, Mix: strings.Join(mix, ", "), Library: r.Library.String(),
	}
	if r.Plan.Shards > 0 {
		params.Shard = fmt.Sprintf("%d/%d", r.Plan.Shard, r.Plan.Shards)
	}
	fmt.Fprintf(r.Out, "replaying %s (%s) against %s: %d users (%d in this process), %s, time scale %.4g, pacing %s, mix %s\n",
		r.Trace, r.Library, r.Target, plan.TotalUsers(), len(plan.Users()), plan.Duration(), plan.Scale(), params.Pacing, params.Mix)
	warn, err := eng.CheckResources(len(plan.Users()) * (1 + len(sides)))
	if err != nil {
		return nil, setup(err)
	}
	if warn != nil {
		writeWarning(r.Warn, warn.String(), filesHint)
	}
	unfilled := eng.Unfilled()
	writeUnfilled(r.Warn, unfilled)
	stopMetrics, err := r.startMetrics(ctx)
	if err != nil {
		return nil, err
	}
	defer stopMetrics()

	rec := report.NewRecorder(start)
	r.watchMetrics(eng, rec, start)
	frame := r.pageFrames(eng, rec, start, params, plan.Duration(), r.steerPage(steer))
	stopStatus := r.watch(eng, rec, start, plan.Duration(), func() { frame(nil, nil) })
	played := r.playSides(ctx, sides, plan, start, params)
	res, runErr := eng.Play(ctx, plan, start, rec, r.Label, params)
	res.Candidate, res.Control = played()
	stopStatus()
	if steer != nil {
		r.page.OnUsers(nil)
	}
	if ctx.Err() != nil {
		res.Params.RanFor = res.End.Sub(start).Round(time.Millisecond).String()
		res.Params.StoppedBy = stopName(context.Cause(ctx))
		res.Interrupted = true
		// Not the engine's "context canceled".
		runErr = fmt.Errorf("%w after %s of %s: the results of that part are written", context.Cause(ctx), res.Params.RanFor, res.Params.RunTime)
	}
	if runErr == nil {
		runErr = replay.Unreachable(res, r.Target)
	}
	err = r.Result(res, Hint(runErr), func(w io.Writer) {
		writeSides(w, res)
		writeCorrelationMisses(w, eng.Correlations())
		if n := eng.UnfilledFailures(); n > 0 {
			names := make([]string, len(unfilled))
			for i, s := range unfilled {
				names[i] = s.Name
			}
			fmt.Fprintf(w, "%d failed requests carried a redacted value that nothing filled (%s)\n", n, strings.Join(names, ", "))
			writeHint(w, unfilledHint)
		}
	})
	if err == nil {
		err = r.compareSides(res)
	}
	frame(res, err)
	return res, err
}

// A Snapshot is a run's progress at one moment: what the status line
// prints every second, and what any other face of the run (a live page,
// an exporter) reads.
type Snapshot struct {
	At    time.Time
	Users int64
	// Requests and Failures so far; P95 of the answers so far.
	Requests, Failures int64
	P95                time.Duration
	// LagP99 is the 99th percentile of how late requests went out.
	LagP99 time.Duration
	// Elapsed is the time since the run started (0 before it starts);
	// Remaining is the time to the plan's end (0 once it is past), and
	// RemainingKnown says whether the run has a known end at all.
	Elapsed, Remaining time.Duration
	RemainingKnown     bool
	// Phase, in a ladder, is the phase being played: "phase 2 · 3 of 5"; "" else.
	Phase string
}

// StatusLine writes s as the status line does, its rate of requests since
// last, then the time elapsed and remaining (when the end is known) and
// the ladder's phase (when there is one).
func (s Snapshot) StatusLine(last Snapshot) string {
	rate := 0.0
	if d := s.At.Sub(last.At); !last.At.IsZero() && d > 0 {
		rate = float64(s.Requests-last.Requests) / d.Seconds()
	}
	line := fmt.Sprintf("users %d · %.0f req/s · p95 %s · errors %d · lag p99 %s · elapsed %s",
		s.Users, rate, s.P95.Round(time.Millisecond), s.Failures, s.LagP99.Round(100*time.Microsecond), statusline.Clock(s.Elapsed))
	if s.RemainingKnown {
		line += " · remaining " + statusline.Clock(s.Remaining)
	}
	if s.Phase != "" {
		line += " · " + s.Phase
	}
	return line
}

// times sets s's elapsed and remaining time at s.At of a run from start
// that lasts length (0 or less: an end not known).
func (s *Snapshot) times(start time.Time, length time.Duration) {
	s.Elapsed = max(s.At.Sub(start), 0)
	if s.RemainingKnown = length > 0; s.RemainingKnown {
		s.Remaining = max(start.Add(length).Sub(s.At), 0)
	}
}

// watch gives, every second until the returned stop, the progress of
// eng recording into rec, a run from start that lasts length, to the
// status line and to Watch, and calls tick.
func (r *Replay) watch(eng *replay.Engine, rec *report.Recorder, start time.Time, length time.Duration, tick func()) (stop func()) {
	w := r.Status
	if w == nil && (r.Watch != nil || r.page != nil) {
		w = io.Discard // no line to draw, but snapshots to take
	}
	var last Snapshot
	return statusline.Start(w, func() string {
		tot := rec.Totals()
		s := Snapshot{At: time.Now(), Users: eng.Status().Users, Requests: tot.Requests, Failures: tot.Failures, P95: tot.P95, LagP99: tot.LagP99, Phase: r.phase}
		s.times(start, length)
		if r.Watch != nil {
			r.Watch(s)
		}
		tick()
		defer func() { last = s }()
		return s.StatusLine(last)
	})
}

// stopName names what stopped a run early: the signal of a cause that
// carries one (SIGINT), else the cause.
func stopName(cause error) string {
	if s, ok := errors.AsType[interface {
		error
		Signal() syscall.Signal
	}](cause); ok {
		return unix.SignalName(s.Signal())
	}
	return cause.Error()
}

// Ladder climbs the testing ladder: each of phases is a Play of its own,
// its plan made of the run's (Phase.Config, with timeScale), its criteria
// the phase's and the run's, its result file that of Files.JSON with
// .phaseN.json for .json. It stops after the first phase that fails, or
// when ctx is done, and prints the table of the phases played and the
// verdict. The error is a SetupError when the first phase could not start,
// a report.Failure naming the phase that failed, or the error that stopped
// the phase's run.
func (r *Replay) Ladder(ctx context.Context, phases []scheduler.Phase, timeScale float64) error {
	switch {
	case r.Plan.Stages != nil:
		return &SetupError{errors.New("the ladder sets users and times itself: leave out the stages")}
	case timeScale <= 0:
		return &SetupError{fmt.Errorf("ladder time %g: want a positive factor", timeScale)}
	case len(phases) == 0:
		return &SetupError{errors.New("no ladder phases to run")}
	}
	if err := r.checkProm(); err != nil {
		return err
	}
	stopMetrics, err := r.startMetrics(ctx)
	if err != nil {
		return err
	}
	defer stopMetrics()
	ctx, stopWeb, err := r.startWeb(ctx)
	if err != nil {
		return err
	}
	defer stopWeb()
	if err := r.waitStart(ctx, true); err != nil {
		return err
	}
	var rows []report.LadderPhase
	var runErr error
	for i, p := range phases {
		phase := *r
		phase.Plan = p.Config(r.Plan, timeScale)
		phase.Criteria = nil
		for _, text := range p.Criteria {
			c, err := report.ParseCriterion(text)
			if err != nil {
				return err // the built-in criteria parse
			}
			phase.Criteria = append(phase.Criteria, c)
		}
		phase.Criteria = append(phase.Criteria, r.Criteria...)
		phase.StartAt, phase.Baseline = time.Time{}, ""
		phase.phase = fmt.Sprintf("phase %d · %d of %d", i, i+1, len(phases)) // numbered as the header and the table are
		if r.Files.JSON != "" {
			phase.Files.JSON = strings.TrimSuffix(r.Files.JSON, ".json") + fmt.Sprintf(".phase%d.json", i)
		}
		fmt.Fprintf(r.Out, "\n== ladder phase %d: %d users, spawning %g/s, %s\n", i, p.Users, p.SpawnRate, phase.Plan.RunTime)
		res, err := phase.Play(ctx)
		if res == nil {
			return err
		}
		rows = append(rows, report.LadderPhase{N: i, Users: p.Users, SpawnRate: p.SpawnRate, RunTime: phase.Plan.RunTime, Result: res, Passed: err == nil})
		switch _, failed := errors.AsType[*report.Failure](err); {
		case ctx.Err() != nil:
			runErr = fmt.Errorf("%w during phase %d: the results so far are written", context.Cause(ctx), i)
		case failed:
			runErr = &report.Failure{What: fmt.Sprintf("ladder phase %d failed its criteria", i)}
		default:
			runErr = err
		}
		if runErr != nil {
			break
		}
	}
	report.WriteLadder(r.Out, rows)
	if runErr == nil {
		fmt.Fprintf(r.Out, "verdict: PASS (%d phases)\n", len(rows))
	}
	return runErr
}

// Check is the pre-flight: the first perProfile sessions of each profile
// of the plan (Plan.Profiles; perProfile 0: all) played once each as one
// user, with recorded gaps multiplied by scale (0: a session in at most
// 2 s), every answer held against its recording. It prints the
// divergences and writes the report as JSON to Files.JSON; a request that
// succeeded when recorded and fails now is an error. The library must be
// loaded ForCheck.
func (r *Replay) Check(ctx context.Context, perProfile int, scale float64) (*replay.CheckReport, error) {
	picked, err := r.Library.CheckSessions(perProfile, r.Plan.Profiles)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r.Trace, err)
	}
	eng, err := replay.New(r.Target, r.Library, r.Options...)
	if err != nil {
		return nil, setup(err)
	}
	writeUnfilled(r.Warn, eng.Unfilled())
	rep, err := eng.Check(ctx, picked, scale)
	if err != nil {
		return nil, err
	}
	if rep.Requests > 0 && rep.TransportErrors == rep.Requests {
		return nil, fmt.Errorf("check: no request to %s got an answer: is it running, and on that port?", r.Target)
	}
	writeCheck(r.Out, rep, r.Target)
	if r.Files.JSON != "" {
		if err := rep.WriteFile(r.Files.JSON); err != nil {
			return rep, err
		}
		fmt.Fprintf(r.Out, "check written to %s\n", r.Files.JSON)
	}
	if rep.Regressions > 0 {
		return rep, fmt.Errorf("check: %d requests that succeeded when recorded fail now", rep.Regressions)
	}
	return rep, nil
}
