package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"github.com/thrive-loadtest/thrive/internal/app"
	"github.com/thrive-loadtest/thrive/internal/interrupt"
	"github.com/thrive-loadtest/thrive/internal/statusline"
	"github.com/thrive-loadtest/thrive/replay"
	"github.com/thrive-loadtest/thrive/report"
	"github.com/thrive-loadtest/thrive/scheduler"
	"github.com/thrive-loadtest/thrive/traces"
)

// replayFlags are replay's flags: most are the Run's fields and options
// in place; these are parsed once all are read.
type replayFlags struct {
	run                     app.Replay
	namer                   traces.Namer
	scaleTime, cpuProfile   string
	load                    []replay.LoadOption
	ladder, check, quiet    bool
	maxUsers, checkSessions int
	ladderTime              float64
	timeout, stopTO         time.Duration
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
	fl, opts, plan := cmd.Flags(), &f.run.Options, &f.run.Plan
	fl.StringVar(&f.run.Target, "target", "", "the backend's URL: its scheme and host replace the recorded main ones (default: where the trace was recorded going)")
	fl.StringArrayVar(&f.run.Maps, "map", nil, "send the requests recorded to HOST to URL instead: HOST=URL (repeatable; HOST as recorded: api.example.com, host:port or https://host:port)")
	fl.IntVarP(&plan.Users, "users", "u", 10, "concurrent users")
	fl.Float64VarP(&plan.SpawnRate, "spawn-rate", "r", 0, "users started a second (0: all at once)")
	fl.DurationVarP(&plan.RunTime, "run-time", "t", time.Minute, "how long the run lasts")
	valueFlag(fl, &plan.Stages, "stages", "ramp instead of --users/--run-time: `USERS:DURATION,...` (100:2m,1000:5m,0:1m)", scheduler.ParseStages)
	valueFlag(fl, &plan.Mix, "mix", "profile `weights`, such as chat=30,browse=60,import=10 (default: as recorded)", scheduler.ParseMix)
	fl.StringSliceVar(&plan.Profiles, "profiles", nil, "run only these profiles")
	fl.Uint64Var(&plan.Seed, "seed", 1, "the same seed picks the same sessions")
	fl.StringVar(&f.scaleTime, "scale-time", "1", "multiply recorded gaps by this (0.5: twice as fast); alone: fit the longest session into the run time")
	fl.Lookup("scale-time").NoOptDefVal = "auto"
	parsedFlag(fl, opts, "pacing", "`recorded|think`: send at recorded offsets (the default), or wait the recorded think gap after each answer", func(s string) (replay.Option, error) {
		p, err := replay.ParsePacing(s)
		return replay.WithPacing(p), err
	})
	fl.Func("shard", "run shard i of n (`i/n`): the users k with k mod n = i", func(s string) (err error) {
		plan.Shard, plan.Shards, err = scheduler.ParseShard(s)
		return err
	})
	optionFlag(fl, opts, "shared-pool", "share one connection pool among users instead of one each", replay.WithSharedPool())
	optionFlag(fl, opts, "recorded-cookies", "send the recorded cookies and CSRF headers instead of each user's own cookie jar", replay.WithRecordedCookies())
	optionFlag(fl, opts, "no-correlation", "send server-made values (ids, tokens, CSRF echoes) as recorded instead of the live ones", replay.WithoutCorrelation())
	parsedFlag(fl, &f.run.Criteria, "threshold", "a success `criterion`, [SCOPE:]METRIC OP VALUE: 'p95<1s', 'error_rate<1%', 'GET /api/projects/{id}/:p99<500ms', 'status_429>0', or on the backend's metrics prom:[avg:|max:]QUERY OP NUMBER with --prometheus (repeatable; failing ones exit 3)", report.ParseCriterion)
	fl.StringVar(&f.run.Files.CSVPrefix, "csv", "", "also write Locust's CSV files: PREFIX_stats.csv, PREFIX_stats_history.csv, PREFIX_failures.csv, PREFIX_exceptions.csv")
	fl.Func("endpoint", "name endpoints with a `pattern` before the automatic templates: 'POST /api/import/{kind}/' (repeatable)", f.namer.Add)
	fl.StringVar(&f.run.Baseline, "baseline", "", "compare the run with this result file at the end (see thrive compare); a regression exits 3")
	fl.BoolVar(&f.ladder, "ladder", false, "run the testing ladder: 100, 1,000, 10,000 (twice) and 100,000 users, each phase with its criteria, stopping after the first that fails")
	fl.IntVar(&f.maxUsers, "max-users", 0, "with --ladder, run only the phases of at most this many users")
	fl.Float64Var(&f.ladderTime, "ladder-time", 1, "with --ladder, multiply every phase's duration by this (0.01 for a short rehearsal)")
	fl.StringVar(&f.run.Files.HTML, "html", "", "also write a self-contained HTML report to this file (thrive report renders one later from --out)")
	rulesFlag(cmd, &f.load)
	parsedFlag(fl, opts, "users-file", "CSV `file` of per-user values (header: column names); columns fill redaction placeholders and fields of their name, one row per user, round robin", func(path string) (replay.Option, error) {
		users, err := replay.LoadUsersFile(path)
		return replay.WithUsers(users), err
	})
	fl.FuncP("header", "H", "add or replace a `header` on every request: 'Name: value' (repeatable)", func(h string) error {
		o, err := replay.ParseHeader(h)
		if err == nil {
			*opts = append(*opts, o)
		}
		return err
	})
	fl.DurationVar(&f.timeout, "timeout", 30*time.Second, "timeout of each request")
	fl.DurationVar(&f.stopTO, "stop-timeout", 30*time.Second, "at the end or on Ctrl-C, time requests in flight get to finish")
	parsedFlag(fl, opts, "reply-idle", "a streamed WebSocket reply that has begun is over after this `duration` without a frame (default: 10x the longest gap between its recorded frames, 1s to 10s)", func(s string) (replay.Option, error) {
		d, err := time.ParseDuration(s)
		return replay.WithReplyIdle(d), err
	})
	fl.BoolVar(&f.check, "check", false, "pre-flight: play each recorded session once as one user, hold every answer against its recording (status, JSON shape, WebSocket replies, correlations) and print the divergences with their likely cause and fix; exit 1 if a request that succeeded when recorded fails now")
	fl.IntVar(&f.checkSessions, "sessions", 0, "with --check, play only the first N sessions of each profile (0: all)")
	optionFlag(fl, opts, "strict-status", "count every status of 400 or more as a failure, as Locust does, even where the recording had the same (by default a 4xx recorded as a 4xx is counted 'as recorded')", replay.WithStrictStatus())
	parsedFlag(fl, opts, "source-ips", "spread connections over these local `addresses`: 127.0.0.2-127.0.0.9", replay.WithSourceIPRange)
	fl.StringVarP(&f.run.Files.JSON, "out", "o", "", "write the results as JSON to this file")
	fl.StringVar(&f.run.Label, "label", "", "the build under test, stored with the results")
	optionFlag(fl, opts, "insecure", "do not verify the certificate of an https target", replay.WithInsecureTLS())
	fl.StringVar(&f.run.Candidate, "candidate", "", "play the same users at the same moments against this `URL` too (a new build), side by side, and compare it with --target at the end")
	fl.StringVar(&f.run.Control, "control", "", "with --candidate, also against this `URL`, a second instance of --target: the comparison's noise")
	optionFlag(fl, opts, "no-answer-sketch", "do not sketch what the target answers (JSON fields, headers, sizes, frames per reply) in the result file, which compare uses to find changed answers", replay.WithoutSketch())
	valueFlag(fl, &f.run.StartAt, "start-at", "start at this RFC 3339 `time` (shards of one run share it)", func(s string) (time.Time, error) { return time.Parse(time.RFC3339Nano, s) })
	fl.StringVar(&f.run.Metrics, "metrics-listen", "", "serve the run's Prometheus metrics (thrive_*, labelled with run and shard) at http://`host:port`/metrics while it plays")
	fl.StringVar(&f.run.Web, "web", "", "serve a live page of the run at http://`host:port`/: charts, tables, criteria, a Stop button; after the run it offers the result files until Ctrl-C")
	fl.DurationVar(&f.run.WebLinger, "web-linger", 0, "with --web, keep the page up this long after the run, not until Ctrl-C")
	fl.BoolVar(&f.run.Wait, "wait", false, "with --web, open the page first and start the run when its Start is pressed, with the users, spawn rate, run time and mix of its form (filled from the flags)")
	fl.StringVar(&f.run.Prometheus, "prometheus", "", "the `URL` of the Prometheus that prom: criteria ask, such as http://127.0.0.1:9090")
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

// plan completes the run's plan with --scale-time, and checks it.
func (f *replayFlags) plan(cmd *cobra.Command) error {
	c := &f.run.Plan
	if c.Stages != nil {
		if cmd.Flags().Changed("users") || cmd.Flags().Changed("run-time") || cmd.Flags().Changed("spawn-rate") {
			return usageError("--stages replaces --users, --spawn-rate and --run-time")
		}
		c.Users, c.SpawnRate, c.RunTime = 0, 0, 0
	}
	var err error
	if c.Scale, err = f.scale(); err != nil {
		return err
	}
	c.AutoScale = c.Scale == 0
	if err := c.Validate(); err != nil {
		return usageError("%v", err)
	}
	return nil
}

func runReplay(cmd *cobra.Command, path string, f *replayFlags) error {
	f.run.Trace, f.run.Out, f.run.Warn = path, cmd.OutOrStdout(), cmd.ErrOrStderr()
	f.run.Options = append(f.run.Options, replay.WithTimeout(f.timeout), replay.WithStopTimeout(f.stopTO), replay.WithAbort(interrupt.Abort(cmd.Context())))
	if !f.quiet {
		f.run.Status = statusline.Terminal(cmd.ErrOrStderr())
	}
	if f.check {
		return runCheck(cmd, f)
	}
	if err := f.plan(cmd); err != nil {
		return err
	}
	if err := f.checkOutputs(); err != nil {
		return err
	}
	if err := f.run.Prepare(append(f.load, replay.WithEndpointNames(&f.namer))...); err != nil {
		return err
	}
	stopProfile, err := app.StartCPUProfile(f.cpuProfile)
	if err != nil {
		return err
	}
	defer stopProfile()
	if f.ladder {
		phases, err := scheduler.LadderUpTo(f.maxUsers)
		if err != nil {
			return usageError("--max-users: %v", err)
		}
		return f.run.Ladder(cmd.Context(), phases, f.ladderTime)
	}
	_, err = f.run.Play(cmd.Context())
	return err
}

// scale reads --scale-time: a positive factor, or 0 for the flag alone
// (fit the longest session into the run time).
func (f *replayFlags) scale() (float64, error) {
	if f.scaleTime == "auto" {
		return 0, nil
	}
	if v, err := strconv.ParseFloat(f.scaleTime, 64); err == nil && v > 0 {
		return v, nil
	}
	return 0, usageError("--scale-time %q: want a positive factor, or the flag alone", f.scaleTime)
}

// runCheck is replay --check (Replay.Check): gaps as recorded times
// --scale-time when it is given a factor, else a session in at most 2 s.
func runCheck(cmd *cobra.Command, f *replayFlags) error {
	scale, err := f.scale()
	if err != nil {
		return err
	}
	if !cmd.Flags().Changed("scale-time") {
		scale = 0 // the default factor, 1, is not the check's
	}
	if err := f.run.Prepare(append(f.load, replay.ForCheck())...); err != nil {
		return err
	}
	_, err = f.run.Check(cmd.Context(), f.checkSessions, scale)
	return err
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
	if f.run.Baseline != "" {
		if _, err := report.ReadFile(f.run.Baseline); err != nil {
			return usageError("--baseline: %v", err)
		}
	}
	return nil
}
