package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/thrive-loadtest/thrive/internal/statusline"
	"github.com/thrive-loadtest/thrive/replay"
	"github.com/thrive-loadtest/thrive/report"
	"github.com/thrive-loadtest/thrive/scheduler"
	"github.com/thrive-loadtest/thrive/traces"
)

// replayFlags are replay's flags: those that are a Run's, a plan's or a
// file's name in place, the rest to be parsed into them.
type replayFlags struct {
	run        replay.Run // Target, Label, Files; Plan's Users, SpawnRate, RunTime, Profiles, Seed
	maps       []string
	stages     string
	mix        string
	scaleTime  string
	pacing     string
	shard      string
	startAt    string
	thresholds []string
	endpoints  []string
	rulesFile  string
	usersFile  string
	headers    []string
	sourceIPs  string
	baseline   string
	compare    compareFlags
	// Engine options that are flags alone.
	sharedPool, recordedCk, noCorr, strict, insecure bool
	timeout, stopTimeout, replyIdle                  time.Duration
	ladder                                           bool
	maxUsers                                         int
	ladderTime                                       float64
	check                                            bool
	checkSessions                                    int
	quiet                                            bool
	cpuProfile                                       string
}

func newReplayCmd() *cobra.Command {
	f := replayFlags{}
	cmd := &cobra.Command{
		Use:   "replay [FILE] [--target URL] [--users N] [--run-time D] [flags]",
		Short: "Replay recorded sessions as many concurrent users",
		Long: `Replay the sessions of a trace as N concurrent virtual users against a target. Each user
plays a recorded session of its profile (the recorded mix, or --mix), keeping the session's
timing, then another, until the run ends. Latency is measured from when each request was
due, and the generator's lateness (schedule lag) is measured too.

FILE defaults to capture.thrv, what thrive capture writes. The load goes where the trace
was recorded going: a reverse proxy's target, or for a forward proxy's trace each request's
own scheme and host; --target replaces the main one (the reverse proxy's target, or the
host with the most requests), --map HOST=URL sends another recorded host elsewhere.`,
		Example: "  thrive replay --users=10000 --scale-time   # capture.thrv, where it was recorded going\n" +
			"  thrive replay capture.thrv --target http://127.0.0.1:8000 --users 1000 --spawn-rate 50 --run-time 5m\n" +
			"  thrive replay capture.thrv --target https://staging.app.test --map api.app.test=https://staging-api.app.test\n" +
			"  thrive replay capture.thrv --target http://127.0.0.1:8000 --users 100 --run-time 1m --scale-time\n" +
			"  thrive replay capture.thrv --target http://127.0.0.1:8000 --stages 100:2m,1000:5m,0:1m --mix chat=30,browse=60,import=10",
		Args: usageArgs(cobra.RangeArgs(0, 2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := traceArg(cmd.ErrOrStderr(), args, &f)
			if err != nil {
				return err
			}
			return runReplay(cmd, path, &f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.run.Target, "target", "", "the backend's URL: its scheme and host replace the recorded main ones (default: where the trace was recorded going)")
	fl.StringArrayVar(&f.maps, "map", nil, "send the requests recorded to HOST to URL instead: HOST=URL (repeatable; HOST as recorded: api.example.com, host:port or https://host:port)")
	fl.IntVarP(&f.run.Plan.Users, "users", "u", 10, "concurrent users")
	fl.Float64VarP(&f.run.Plan.SpawnRate, "spawn-rate", "r", 0, "users started a second (0: all at once)")
	fl.DurationVarP(&f.run.Plan.RunTime, "run-time", "t", time.Minute, "how long the run lasts")
	fl.StringVar(&f.stages, "stages", "", "ramp instead of --users/--run-time: USERS:DURATION,... (100:2m,1000:5m,0:1m)")
	fl.StringVar(&f.mix, "mix", "", "profile weights, such as chat=30,browse=60,import=10 (default: as recorded)")
	fl.StringSliceVar(&f.run.Plan.Profiles, "profiles", nil, "run only these profiles")
	fl.Uint64Var(&f.run.Plan.Seed, "seed", 1, "the same seed picks the same sessions")
	fl.StringVar(&f.scaleTime, "scale-time", "1", "multiply recorded gaps by this (0.5: twice as fast); alone: fit the longest session into the run time")
	fl.Lookup("scale-time").NoOptDefVal = "auto"
	fl.StringVar(&f.pacing, "pacing", "recorded", "recorded: send at recorded offsets; think: wait the recorded think gap after each answer")
	fl.StringVar(&f.shard, "shard", "", "run shard i of n (i/n): the users k with k mod n = i")
	fl.BoolVar(&f.sharedPool, "shared-pool", false, "share one connection pool among users instead of one each")
	fl.BoolVar(&f.recordedCk, "recorded-cookies", false, "send the recorded cookies and CSRF headers instead of each user's own cookie jar")
	fl.BoolVar(&f.noCorr, "no-correlation", false, "send server-made values (ids, tokens, CSRF echoes) as recorded instead of the live ones")
	fl.StringArrayVar(&f.thresholds, "threshold", nil, "a success criterion, [SCOPE:]METRIC OP VALUE: 'p95<1s', 'error_rate<1%', 'GET /api/projects/{id}/:p99<500ms', 'status_429>0' (repeatable; failing ones exit 3)")
	fl.StringVar(&f.run.Files.CSVPrefix, "csv", "", "also write Locust's CSV files: PREFIX_stats.csv, PREFIX_stats_history.csv, PREFIX_failures.csv, PREFIX_exceptions.csv")
	fl.StringArrayVar(&f.endpoints, "endpoint", nil, "name endpoints with a pattern before the automatic templates: 'POST /api/import/{kind}/' (repeatable)")
	fl.StringVar(&f.baseline, "baseline", "", "compare the run with this result file at the end (see thrive compare); a regression exits 3")
	fl.BoolVar(&f.ladder, "ladder", false, "run the testing ladder: 100, 1,000, 10,000 (twice) and 100,000 users, each phase with its criteria, stopping after the first that fails")
	fl.IntVar(&f.maxUsers, "max-users", 0, "with --ladder, run only the phases of at most this many users")
	fl.Float64Var(&f.ladderTime, "ladder-time", 1, "with --ladder, multiply every phase's duration by this (0.01 for a short rehearsal)")
	fl.StringVar(&f.run.Files.HTML, "html", "", "also write a self-contained HTML report to this file (thrive report renders one later from --out)")
	fl.StringVar(&f.rulesFile, "correlation-rules", "", "YAML file of correlation rules to add or disable (see thrive traces correlations)")
	fl.StringVar(&f.usersFile, "users-file", "", "CSV of per-user values (header: column names); columns fill redaction placeholders and fields of their name, one row per user, round robin")
	fl.StringArrayVarP(&f.headers, "header", "H", nil, "add or replace a header on every request: 'Name: value'")
	fl.DurationVar(&f.timeout, "timeout", 30*time.Second, "timeout of each request")
	fl.DurationVar(&f.stopTimeout, "stop-timeout", 30*time.Second, "at the end or on Ctrl-C, time requests in flight get to finish")
	fl.DurationVar(&f.replyIdle, "reply-idle", 0, "a streamed WebSocket reply that has begun is over after this long without a frame (default: 10x the longest gap between its recorded frames, 1s to 10s)")
	fl.BoolVar(&f.check, "check", false, "pre-flight: play each recorded session once as one user, hold every answer against its recording (status, JSON shape, WebSocket replies, correlations) and print the divergences with their likely cause and fix; exit 1 if a request that succeeded when recorded fails now")
	fl.IntVar(&f.checkSessions, "sessions", 0, "with --check, play only the first N sessions of each profile (0: all)")
	fl.BoolVar(&f.strict, "strict-status", false, "count every status of 400 or more as a failure, as Locust does, even where the recording had the same (by default a 4xx recorded as a 4xx is counted 'as recorded')")
	fl.StringVar(&f.sourceIPs, "source-ips", "", "spread connections over these local addresses: 127.0.0.2-127.0.0.9")
	fl.StringVarP(&f.run.Files.JSON, "out", "o", "", "write the results as JSON to this file")
	fl.StringVar(&f.run.Label, "label", "", "the build under test, stored with the results")
	fl.BoolVar(&f.insecure, "insecure", false, "do not verify the certificate of an https target")
	fl.StringVar(&f.startAt, "start-at", "", "start at this RFC 3339 time (shards of one run share it)")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "no status line")
	fl.StringVar(&f.cpuProfile, "cpuprofile", "", "write a CPU profile of the run to this file (for thrive's developers)")
	_ = fl.MarkHidden("cpuprofile")
	return cmd
}

// defaultTrace is the trace replay takes when given none: what thrive
// capture writes by default.
const defaultTrace = "capture.thrv"

// traceArg returns the trace of replay's arguments. pflag takes
// "--scale-time 0.5" as the bare flag and an argument: a positive number
// that is not a file is the factor, put back where it belongs. Without a
// file, capture.thrv, said on warn.
func traceArg(warn io.Writer, args []string, f *replayFlags) (string, error) {
	var files []string
	for _, a := range args {
		if v, err := strconv.ParseFloat(a, 64); err == nil && v > 0 && f.scaleTime == "auto" {
			if _, serr := os.Stat(a); serr != nil {
				f.scaleTime = a
				continue
			}
		}
		files = append(files, a)
	}
	switch len(files) {
	case 1:
		return files[0], nil
	case 0:
		if _, err := os.Stat(defaultTrace); err != nil {
			return "", usageError("no trace given, and no %s here: record one with thrive capture --listen :9000 (a proxy to point browsers and apps at) or thrive capture --target URL (in front of a backend), or name a trace file", defaultTrace)
		}
		fmt.Fprintf(warn, "replaying %s (the capture's default output; name a trace file to take another)\n", defaultTrace)
		return defaultTrace, nil
	}
	return "", usageError("one trace file, please: got %q", files)
}

// route decides where the load goes (Library.Routes), and says so. A run
// whose load goes beyond loopback to hosts that came from the trace rather
// than a flag says so first of all.
func (f *replayFlags) route(out io.Writer, lib *replay.Library) error {
	r, err := lib.Routes(f.run.Target, f.maps)
	if errors.Is(err, replay.ErrNoTarget) {
		return usageError("--target is required: the trace does not say where it was recorded going, such as --target http://127.0.0.1:8000")
	}
	if err != nil {
		return usageError("--map: %v", err)
	}
	if remote := r.Remote(); len(remote) > 0 {
		fmt.Fprintf(out, "the load goes beyond this machine, to hosts taken from the trace rather than from a flag: %s (--target and --map send it elsewhere)\n", strings.Join(remote, ", "))
	}
	if len(r.Origins) > 0 {
		fmt.Fprintf(out, "the load goes to %s\n", r)
	}
	f.run.Target = r.Target
	f.run.Options = append(f.run.Options, r.Options()...)
	return nil
}

// plan completes the run's plan with the flags that need parsing.
func (f *replayFlags) plan(cmd *cobra.Command) error {
	c := &f.run.Plan
	if f.stages != "" {
		if cmd.Flags().Changed("users") || cmd.Flags().Changed("run-time") || cmd.Flags().Changed("spawn-rate") {
			return usageError("--stages replaces --users, --spawn-rate and --run-time")
		}
		st, err := scheduler.ParseStages(f.stages)
		if err != nil {
			return usageError("--stages: %v", err)
		}
		c.Stages, c.Users, c.SpawnRate, c.RunTime = st, 0, 0, 0
	}
	if f.mix != "" {
		m, err := scheduler.ParseMix(f.mix)
		if err != nil {
			return usageError("--mix: %v", err)
		}
		c.Mix = m
	}
	if f.scaleTime == "auto" {
		c.AutoScale = true
	} else if v, err := strconv.ParseFloat(f.scaleTime, 64); err == nil && v > 0 {
		c.Scale = v
	} else {
		return usageError("--scale-time %q: want a positive factor, or the flag alone", f.scaleTime)
	}
	if f.shard != "" {
		var err error
		if c.Shard, c.Shards, err = scheduler.ParseShard(f.shard); err != nil {
			return usageError("--%v", err)
		}
	}
	if err := c.Validate(); err != nil {
		return usageError("%v", err)
	}
	if f.startAt != "" && !f.ladder {
		t, err := time.Parse(time.RFC3339Nano, f.startAt)
		if err != nil {
			return usageError("--start-at %q: want an RFC 3339 time", f.startAt)
		}
		f.run.StartAt = t
	}
	return nil
}

// options adds the engine's options of the flags to the run's.
func (f *replayFlags) options(ctx context.Context) error {
	p, err := replay.ParsePacing(f.pacing)
	if err != nil {
		return usageError("--pacing: %v", err)
	}
	opts := []replay.Option{replay.WithPacing(p), replay.WithTimeout(f.timeout), replay.WithStopTimeout(f.stopTimeout), replay.WithAbort(abortOf(ctx))}
	for _, o := range []struct {
		set bool
		opt replay.Option
	}{
		{f.recordedCk, replay.WithRecordedCookies()}, {f.replyIdle > 0, replay.WithReplyIdle(f.replyIdle)}, {f.strict, replay.WithStrictStatus()},
		{f.noCorr, replay.WithoutCorrelation()}, {f.sharedPool, replay.WithSharedPool()}, {f.insecure, replay.WithInsecureTLS()},
	} {
		if o.set {
			opts = append(opts, o.opt)
		}
	}
	if f.usersFile != "" {
		uf, err := os.Open(f.usersFile)
		if err != nil {
			return usageError("--users-file: %v", err)
		}
		users, err := replay.LoadUsers(uf)
		uf.Close()
		if err != nil {
			return usageError("--users-file %s: %v", f.usersFile, err)
		}
		opts = append(opts, replay.WithUsers(users))
	}
	for _, h := range f.headers {
		name, value, ok := strings.Cut(h, ":")
		if !ok {
			return usageError("--header %q: want 'Name: value'", h)
		}
		opts = append(opts, replay.WithHeader(strings.TrimSpace(name), strings.TrimSpace(value)))
	}
	if f.sourceIPs != "" {
		ips, err := replay.ParseIPRange(f.sourceIPs)
		if err != nil {
			return usageError("--source-ips: %v", err)
		}
		opts = append(opts, replay.WithSourceIPs(ips))
	}
	f.run.Options = append(f.run.Options, opts...)
	return nil
}

func runReplay(cmd *cobra.Command, path string, f *replayFlags) error {
	f.run.Trace, f.run.Out, f.run.Warn = path, cmd.OutOrStdout(), cmd.ErrOrStderr()
	if !f.quiet {
		f.run.Status = statusline.Terminal(cmd.ErrOrStderr())
	}
	if f.check {
		return runCheck(cmd, f)
	}
	if err := f.plan(cmd); err != nil {
		return err
	}
	if err := f.options(cmd.Context()); err != nil {
		return err
	}
	if err := f.checkOutputs(); err != nil {
		return err
	}
	var err error
	if f.run.Criteria, err = parseCriteria(f.thresholds); err != nil {
		return err
	}
	naming := []replay.LoadOption{}
	if len(f.endpoints) > 0 {
		namer, err := traces.NewNamer(f.endpoints)
		if err != nil {
			return usageError("--endpoint: %v", err)
		}
		naming = append(naming, replay.WithEndpointNames(namer))
	}
	if f.run.Library, err = loadLibrary(cmd.ErrOrStderr(), path, f.rulesFile, naming...); err != nil {
		return err
	}
	if err := f.route(cmd.OutOrStdout(), f.run.Library); err != nil {
		return err
	}
	stopProfile, err := startCPUProfile(f.cpuProfile)
	if err != nil {
		return err
	}
	defer stopProfile()
	if f.ladder {
		return runLadder(cmd, f)
	}
	res, runErr := f.run.Play(cmd.Context())
	if res == nil {
		return runErr
	}
	if i, ok := errors.AsType[interrupt](runErr); ok {
		return &exitErr{code: i.code(), err: fmt.Errorf("%w after %s of %s: the results of that part are written", i, res.Params.RanFor, res.Params.RunTime)}
	}
	if err := replay.Unreachable(res, f.run.Target); err != nil {
		return err
	}
	if f.baseline != "" && runErr == nil {
		base, err := report.ReadFile(f.baseline)
		if err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "\ncompared with %s:\n", f.baseline)
		if f.compare.maxRegression == "" {
			f.compare = compareFlags{maxRegression: "10%", format: "text"}
		}
		if err := runCompare(cmd.OutOrStdout(), base, res, &f.compare); err != nil {
			return err
		}
	}
	if n := report.FailedCount(res.Criteria); runErr == nil && n > 0 {
		return &exitErr{code: exitCriteria, err: fmt.Errorf("%d of %d criteria failed", n, len(res.Criteria))}
	}
	return runErr
}

// runLadder runs the ladder's phases (Run.Ladder), those of at most
// --max-users users, and gives the ladder's verdict.
func runLadder(cmd *cobra.Command, f *replayFlags) error {
	if f.stages != "" {
		return usageError("--ladder sets users and times itself: leave out --stages")
	}
	if f.ladderTime <= 0 {
		return usageError("--ladder-time %g: want a positive factor", f.ladderTime)
	}
	phases := scheduler.Ladder()
	if f.maxUsers > 0 {
		phases = slices.DeleteFunc(phases, func(p scheduler.Phase) bool { return p.Users > f.maxUsers })
	}
	if len(phases) == 0 {
		return usageError("--max-users %d: the ladder's first phase has %d users", f.maxUsers, scheduler.Ladder()[0].Users)
	}
	rows, err := f.run.Ladder(cmd.Context(), phases, f.ladderTime)
	if len(rows) == 0 {
		return err
	}
	last := rows[len(rows)-1]
	if i, ok := errors.AsType[interrupt](err); ok {
		return &exitErr{code: i.code(), err: fmt.Errorf("%w during phase %d: the results so far are written", i, last.N)}
	}
	if err != nil {
		return err
	}
	if !last.Passed {
		return &exitErr{code: exitCriteria, err: fmt.Errorf("ladder phase %d failed its criteria", last.N)}
	}
	fmt.Fprintf(cmd.OutOrStdout(), "verdict: PASS (%d phases)\n", len(rows))
	return nil
}

// runCheck is replay --check (Run.Check).
func runCheck(cmd *cobra.Command, f *replayFlags) error {
	if err := f.options(cmd.Context()); err != nil {
		return err
	}
	scale := 0.0 // a session in at most 2 s
	if cmd.Flags().Changed("scale-time") && f.scaleTime != "auto" {
		if _, err := fmt.Sscan(f.scaleTime, &scale); err != nil || scale <= 0 {
			return usageError("--scale-time %q: want a positive factor", f.scaleTime)
		}
	}
	var err error
	if f.run.Library, err = loadLibrary(cmd.ErrOrStderr(), f.run.Trace, f.rulesFile, replay.ForCheck()); err != nil {
		return err
	}
	if err := f.route(cmd.OutOrStdout(), f.run.Library); err != nil {
		return err
	}
	rep, err := f.run.Check(cmd.Context(), f.checkSessions, scale)
	if err != nil {
		return err
	}
	if rep.Regressions > 0 {
		return fmt.Errorf("check: %d requests that succeeded when recorded fail now", rep.Regressions)
	}
	return nil
}

// checkOutputs makes sure, before the first request, that every file the
// run will write can be written and the baseline read.
func (f *replayFlags) checkOutputs() error {
	fs := f.run.Files
	for _, o := range [][2]string{{"--out", fs.JSON}, {"--html", fs.HTML}, {"--csv", fs.CSVPrefix}} {
		path := o[1]
		if o[0] == "--csv" && path != "" {
			path += "_stats.csv"
		}
		if path == "" {
			continue
		}
		if err := report.Writable(path); err != nil {
			return usageError("%s %s: cannot be written: %v", o[0], path, err)
		}
	}
	if f.baseline != "" {
		if _, err := report.ReadFile(f.baseline); err != nil {
			return usageError("--baseline: %v", err)
		}
	}
	return nil
}

// loadLibrary reads the trace at path with opts, and the correlation rules
// of rulesFile if set; a trace read only in part (damaged, or its writer
// killed) is warned of on warn and replayed as far as it was read.
func loadLibrary(warn io.Writer, path, rulesFile string, opts ...replay.LoadOption) (*replay.Library, error) {
	rules, err := loadRules(rulesFile)
	if err != nil {
		return nil, err
	}
	lib, err := replay.LoadFile(path, append(opts, replay.WithCorrelationRules(rules))...)
	if err != nil {
		return nil, err
	}
	if err := lib.Damage(); err != nil {
		fmt.Fprintf(warn, "warning: %s: %v; replaying the %s read\n", path, err, lib)
	}
	return lib, nil
}
