package replay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"syscall"
	"time"

	"github.com/thrive-loadtest/thrive/internal/statusline"
	"github.com/thrive-loadtest/thrive/report"
	"github.com/thrive-loadtest/thrive/scheduler"
	"github.com/thrive-loadtest/thrive/traces"
	"golang.org/x/sys/unix"
)

// A Run is one load test as thrive replay runs it: a plan of a library's
// sessions played against a target, its criteria checked, and what it
// found printed and written. Play plays it once, Ladder climbs the testing
// ladder with it, Check plays each session once against its recording.
type Run struct {
	// Trace is the trace's path, as the output and the result name it.
	Trace   string
	Library *Library
	// Target and Options make the engine (New). Prepare sets Library and
	// Target and adds the routes' options: Maps send the load of other
	// recorded hosts elsewhere (Library.Routes).
	Target  string
	Maps    []string
	Options []Option
	// Plan makes the plan (scheduler.New).
	Plan     scheduler.Config
	Criteria []report.Criterion
	// Label names the build under test in the result.
	Label string
	// StartAt is when the first users start (the shards of one run share
	// it); zero: 100 ms from now.
	StartAt time.Time
	// Files are written when the run is over.
	Files report.Files
	// Baseline, when set, is a result file the run is compared with at
	// the end (report.Compare, a p95 more than 10% slower a regression).
	Baseline string
	// Out takes the summary and the criteria, Warn the warnings; Status,
	// when not nil, a status line redrawn every second (a terminal).
	Out, Warn, Status io.Writer
}

// A SetupError says why a run could not start: its plan, its options or
// the machine make no run of it. Nothing was sent.
type SetupError struct{ Err error }

func (e *SetupError) Error() string { return e.Err.Error() }
func (e *SetupError) Unwrap() error { return e.Err }

// Prepare loads the library of Trace with opts, warns on Warn of a trace
// read only in part (replayed as far as it was read), and routes the load
// (Library.Routes of Target and Maps), saying on Out where it goes. A
// route that cannot be taken is a SetupError.
func (r *Run) Prepare(opts ...LoadOption) error {
	lib, err := LoadFile(r.Trace, opts...)
	if err != nil {
		return err
	}
	if err := lib.Damage(); err != nil {
		fmt.Fprintf(r.Warn, "warning: %s: %v; replaying the %s read\n", r.Trace, err, lib)
	}
	routes, err := lib.Routes(r.Target, r.Maps)
	if err != nil {
		return &SetupError{err}
	}
	routes.WriteText(r.Out)
	r.Library, r.Target, r.Options = lib, routes.Target, append(r.Options, routes.Options()...)
	return nil
}

// LoadFile reads the trace file at path into a library (Load), its path named
// in a read error. A trace read only in part (damaged, or its writer
// killed) is a library of what was read, with its Damage.
func LoadFile(path string, opts ...LoadOption) (*Library, error) {
	t, err := traces.Open(path)
	if err != nil {
		return nil, err
	}
	defer t.Close()
	lib, err := Load(t.Reader(), opts...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return lib, nil
}

// Play plays the run once, then prints its summary, correlation misses and
// criteria, writes its files and compares it with its baseline. It
// returns a nil result and a SetupError when the run could not start.
// Else it returns the result and, first that applies: the cause of a
// cancelled context (the result is marked interrupted, with how long it
// ran and by what), a file that could not be written, a target that
// answered nothing (Unreachable), or a report.Failure: a regression
// against the baseline, criteria that failed.
func (r *Run) Play(ctx context.Context) (*report.Result, error) {
	plan, err := scheduler.New(r.Library.Sessions(), r.Plan)
	if err != nil {
		return nil, &SetupError{err}
	}
	eng, err := New(r.Target, r.Library, r.Options...)
	if err != nil {
		return nil, &SetupError{err}
	}
	start := r.StartAt
	if start.IsZero() {
		start = time.Now().Add(100 * time.Millisecond)
	} else if end := start.Add(plan.Duration()); end.Before(time.Now()) {
		return nil, &SetupError{fmt.Errorf("start at %s: the run (%v) would have ended at %s, before now: nothing would be sent",
			start.Format(time.RFC3339), plan.Duration(), end.Format(time.RFC3339))}
	}
	names, shares := plan.Profiles()
	mix := make([]string, len(names))
	for i, n := range names {
		mix[i] = fmt.Sprintf("%s %.0f%%", n, 100*shares[i])
	}
	params := report.RunParams{
		Trace: r.Trace, Users: plan.TotalUsers(), RunTime: plan.Duration().String(), Scale: plan.Scale(), Pacing: eng.cfg.pacing.String(),
		Seed: r.Plan.Seed, Mix: strings.Join(mix, ", "), Library: r.Library.String(),
	}
	if r.Plan.Shards > 0 {
		params.Shard = fmt.Sprintf("%d/%d", r.Plan.Shard, r.Plan.Shards)
	}
	fmt.Fprintf(r.Out, "replaying %s (%s) against %s: %d users (%d in this process), %s, time scale %.4g, pacing %s, mix %s\n",
		r.Trace, r.Library, r.Target, plan.TotalUsers(), len(plan.Users()), plan.Duration(), plan.Scale(), params.Pacing, params.Mix)
	warn, err := CheckResources(len(plan.Users()), r.Library.BytesPerUser(), eng.cfg.sharedPool)
	if err != nil {
		return nil, &SetupError{err}
	}
	if warn != "" {
		fmt.Fprintln(r.Warn, warn)
	}
	unfilled := r.Library.Unfilled(eng.cfg.users)
	WriteUnfilled(r.Warn, unfilled)

	rec := report.NewRecorder(start)
	var last int64
	stopStatus := statusline.Start(r.Status, func() string {
		st, tot := eng.Status(), rec.Totals()
		defer func() { last = tot.Requests }()
		return fmt.Sprintf("users %d · %d req/s · p95 %s · errors %d · lag p99 %s",
			st.Users, tot.Requests-last, tot.P95.Round(time.Millisecond), tot.Failures, tot.LagP99.Round(100*time.Microsecond))
	})
	res, runErr := eng.Play(ctx, plan, start, rec, r.Label, params)
	stopStatus()
	if ctx.Err() != nil {
		res.Params.RanFor = res.End.Sub(start).Round(time.Millisecond).String()
		res.Params.StoppedBy = stopName(context.Cause(ctx))
		res.Interrupted = true
		// Not the engine's "context canceled".
		runErr = fmt.Errorf("%w after %s of %s: the results of that part are written", context.Cause(ctx), res.Params.RanFor, res.Params.RunTime)
	}
	res.Criteria = report.CheckAll(r.Criteria, res)
	report.WriteSummary(r.Out, res)
	WriteCorrelationMisses(r.Out, eng.Correlations())
	if n := eng.UnfilledFailures(); n > 0 {
		names := make([]string, len(unfilled))
		for i, s := range unfilled {
			names[i] = s.Name
		}
		fmt.Fprintf(r.Out, "%d failed requests carried a redacted value that nothing filled (%s): give it with --users-file, or record with --keep-secrets\n",
			n, strings.Join(names, ", "))
	}
	report.WriteCriteria(r.Out, res.Criteria)
	if err := r.Files.Write(r.Out, res); err != nil {
		return res, err
	}
	if w := res.LagWarning(); w != "" {
		fmt.Fprintln(r.Warn, w)
	}
	if runErr == nil {
		runErr = Unreachable(res, r.Target)
	}
	if runErr == nil && r.Baseline != "" {
		runErr = r.compare(res)
	}
	if runErr == nil {
		runErr = res.Criteria.Err()
	}
	return res, runErr
}

// compare prints how res compares with the baseline, and returns the
// regression it finds.
func (r *Run) compare(res *report.Result) error {
	base, err := report.ReadFile(r.Baseline)
	if err != nil {
		return err
	}
	fmt.Fprintf(r.Out, "\ncompared with %s:\n", r.Baseline)
	c, err := report.Compare(base, res, nil, 0.1)
	if err != nil {
		return err
	}
	c.WriteText(r.Out, false)
	return c.Failed()
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
func (r *Run) Ladder(ctx context.Context, phases []scheduler.Phase, timeScale float64) error {
	switch {
	case r.Plan.Stages != nil:
		return &SetupError{errors.New("the ladder sets users and times itself: leave out the stages")}
	case timeScale <= 0:
		return &SetupError{fmt.Errorf("ladder time %g: want a positive factor", timeScale)}
	case len(phases) == 0:
		return &SetupError{errors.New("no ladder phases to run")}
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
// divergences on Out and writes the report as JSON to Files.JSON; a
// request that succeeded when recorded and fails now is an error. The
// library must be loaded ForCheck.
func (r *Run) Check(ctx context.Context, perProfile int, scale float64) (*CheckReport, error) {
	picked, err := r.Library.CheckSessions(perProfile, r.Plan.Profiles)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r.Trace, err)
	}
	eng, err := New(r.Target, r.Library, r.Options...)
	if err != nil {
		return nil, &SetupError{err}
	}
	WriteUnfilled(r.Warn, r.Library.Unfilled(eng.cfg.users))
	rep, err := eng.Check(ctx, picked, scale)
	if err != nil {
		return nil, err
	}
	if rep.Requests > 0 && rep.TransportErrors == rep.Requests {
		return nil, fmt.Errorf("check: no request to %s got an answer: is it running, and on that port?", r.Target)
	}
	rep.WriteText(r.Out, r.Target)
	if r.Files.JSON != "" {
		if err := rep.writeFile(r.Files.JSON); err != nil {
			return rep, err
		}
		fmt.Fprintf(r.Out, "check written to %s\n", r.Files.JSON)
	}
	if rep.Regressions > 0 {
		return rep, fmt.Errorf("check: %d requests that succeeded when recorded fail now", rep.Regressions)
	}
	return rep, nil
}
