package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/thrive-loadtest/thrive/replay"
	"github.com/thrive-loadtest/thrive/report"
	"github.com/thrive-loadtest/thrive/scheduler"
	"github.com/thrive-loadtest/thrive/traces"
)

type replayFlags struct {
	target        string
	maps          []string
	users         int
	spawnRate     float64
	runTime       time.Duration
	stages        string
	mix           string
	profiles      []string
	seed          uint64
	scaleTime     string
	pacing        string
	shard         string
	sharedPool    bool
	recordedCk    bool
	noCorr        bool
	usersFile     string
	rulesFile     string
	thresholds    []string
	csvPrefix     string
	htmlPath      string
	ladder        bool
	endpoints     []string
	baseline      string
	compare       compareFlags
	maxUsers      int
	ladderTime    float64
	headers       []string
	timeout       time.Duration
	stopTimeout   time.Duration
	replyIdle     time.Duration
	strict        bool
	check         bool
	checkSessions int
	usersRows     *replay.Users // loaded from usersFile by options
	sourceIPs     string
	out           string
	label         string
	insecure      bool
	startAt       string
	quiet         bool
	cpuProfile    string
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
	fl.StringVar(&f.target, "target", "", "the backend's URL: its scheme and host replace the recorded main ones (default: where the trace was recorded going)")
	fl.StringArrayVar(&f.maps, "map", nil, "send the requests recorded to HOST to URL instead: HOST=URL (repeatable; HOST as recorded: api.example.com, host:port or https://host:port)")
	fl.IntVarP(&f.users, "users", "u", 10, "concurrent users")
	fl.Float64VarP(&f.spawnRate, "spawn-rate", "r", 0, "users started a second (0: all at once)")
	fl.DurationVarP(&f.runTime, "run-time", "t", time.Minute, "how long the run lasts")
	fl.StringVar(&f.stages, "stages", "", "ramp instead of --users/--run-time: USERS:DURATION,... (100:2m,1000:5m,0:1m)")
	fl.StringVar(&f.mix, "mix", "", "profile weights, such as chat=30,browse=60,import=10 (default: as recorded)")
	fl.StringSliceVar(&f.profiles, "profiles", nil, "run only these profiles")
	fl.Uint64Var(&f.seed, "seed", 1, "the same seed picks the same sessions")
	fl.StringVar(&f.scaleTime, "scale-time", "1", "multiply recorded gaps by this (0.5: twice as fast); alone: fit the longest session into the run time")
	fl.Lookup("scale-time").NoOptDefVal = "auto"
	fl.StringVar(&f.pacing, "pacing", "recorded", "recorded: send at recorded offsets; think: wait the recorded think gap after each answer")
	fl.StringVar(&f.shard, "shard", "", "run shard i of n (i/n): the users k with k mod n = i")
	fl.BoolVar(&f.sharedPool, "shared-pool", false, "share one connection pool among users instead of one each")
	fl.BoolVar(&f.recordedCk, "recorded-cookies", false, "send the recorded cookies and CSRF headers instead of each user's own cookie jar")
	fl.BoolVar(&f.noCorr, "no-correlation", false, "send server-made values (ids, tokens, CSRF echoes) as recorded instead of the live ones")
	fl.StringArrayVar(&f.thresholds, "threshold", nil, "a success criterion, [SCOPE:]METRIC OP VALUE: 'p95<1s', 'error_rate<1%', 'GET /api/projects/{id}/:p99<500ms', 'status_429>0' (repeatable; failing ones exit 3)")
	fl.StringVar(&f.csvPrefix, "csv", "", "also write Locust's CSV files: PREFIX_stats.csv, PREFIX_stats_history.csv, PREFIX_failures.csv, PREFIX_exceptions.csv")
	fl.StringArrayVar(&f.endpoints, "endpoint", nil, "name endpoints with a pattern before the automatic templates: 'POST /api/import/{kind}/' (repeatable)")
	fl.StringVar(&f.baseline, "baseline", "", "compare the run with this result file at the end (see thrive compare); a regression exits 3")
	fl.BoolVar(&f.ladder, "ladder", false, "run the testing ladder: 100, 1,000, 10,000 (twice) and 100,000 users, each phase with its criteria, stopping after the first that fails")
	fl.IntVar(&f.maxUsers, "max-users", 0, "with --ladder, run only the phases of at most this many users")
	fl.Float64Var(&f.ladderTime, "ladder-time", 1, "with --ladder, multiply every phase's duration by this (0.01 for a short rehearsal)")
	fl.StringVar(&f.htmlPath, "html", "", "also write a self-contained HTML report to this file (thrive report renders one later from --out)")
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
	fl.StringVarP(&f.out, "out", "o", "", "write the results as JSON to this file")
	fl.StringVar(&f.label, "label", "", "the build under test, stored with the results")
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

// route decides where the load goes (Library.Routes), sets f.target to the
// main target and returns the options for the others. A run whose load
// goes beyond loopback to hosts that came from the trace rather than a
// flag says so first of all.
func (f *replayFlags) route(out io.Writer, lib *replay.Library) ([]replay.Option, error) {
	r, err := lib.Routes(f.target, f.maps)
	if errors.Is(err, replay.ErrNoTarget) {
		return nil, usageError("--target is required: the trace does not say where it was recorded going, such as --target http://127.0.0.1:8000")
	}
	if err != nil {
		return nil, usageError("--map: %v", err)
	}
	if remote := r.Remote(); len(remote) > 0 {
		fmt.Fprintf(out, "the load goes beyond this machine, to hosts taken from the trace rather than from a flag: %s (--target and --map send it elsewhere)\n", strings.Join(remote, ", "))
	}
	f.target = r.Target
	if len(r.Origins) > 0 {
		dests := []string{r.Target}
		for _, o := range r.Origins {
			if o[0] == o[1] {
				dests = append(dests, o[1])
			} else {
				dests = append(dests, o[0]+" → "+o[1])
			}
		}
		fmt.Fprintf(out, "the load goes to %s\n", strings.Join(dests, ", "))
	}
	return r.Options(), nil
}

func (f *replayFlags) config(cmd *cobra.Command) (scheduler.Config, error) {
	c := scheduler.Config{Seed: f.seed, Profiles: f.profiles}
	if f.stages != "" {
		if cmd.Flags().Changed("users") || cmd.Flags().Changed("run-time") || cmd.Flags().Changed("spawn-rate") {
			return c, usageError("--stages replaces --users, --spawn-rate and --run-time")
		}
		st, err := scheduler.ParseStages(f.stages)
		if err != nil {
			return c, usageError("--stages: %v", err)
		}
		c.Stages = st
	} else {
		c.Users, c.SpawnRate, c.RunTime = f.users, f.spawnRate, f.runTime
	}
	if f.mix != "" {
		m, err := scheduler.ParseMix(f.mix)
		if err != nil {
			return c, usageError("--mix: %v", err)
		}
		c.Mix = m
	}
	switch f.scaleTime {
	case "auto":
		c.AutoScale = true
	default:
		v, err := strconv.ParseFloat(f.scaleTime, 64)
		if err != nil || v <= 0 {
			return c, usageError("--scale-time %q: want a positive factor, or the flag alone", f.scaleTime)
		}
		c.Scale = v
	}
	if f.shard != "" {
		i, n, ok := strings.Cut(f.shard, "/")
		si, err1 := strconv.Atoi(i)
		sn, err2 := strconv.Atoi(n)
		if !ok || err1 != nil || err2 != nil || sn < 1 || si < 0 || si >= sn {
			return c, usageError("--shard %q: want i/n with 0 <= i < n", f.shard)
		}
		c.Shard, c.Shards = si, sn
	}
	if err := c.Validate(); err != nil {
		return c, usageError("%v", err)
	}
	return c, nil
}

func (f *replayFlags) options() ([]replay.Option, error) {
	p, err := replay.ParsePacing(f.pacing)
	if err != nil {
		return nil, usageError("--pacing: %v", err)
	}
	opts := []replay.Option{replay.WithPacing(p), replay.WithTimeout(f.timeout), replay.WithStopTimeout(f.stopTimeout)}
	if f.recordedCk {
		opts = append(opts, replay.WithRecordedCookies())
	}
	if f.replyIdle > 0 {
		opts = append(opts, replay.WithReplyIdle(f.replyIdle))
	}
	if f.strict {
		opts = append(opts, replay.WithStrictStatus())
	}
	if f.noCorr {
		opts = append(opts, replay.WithoutCorrelation())
	}
	if f.usersFile != "" {
		uf, err := os.Open(f.usersFile)
		if err != nil {
			return nil, usageError("--users-file: %v", err)
		}
		users, err := replay.LoadUsers(uf)
		uf.Close()
		if err != nil {
			return nil, usageError("--users-file %s: %v", f.usersFile, err)
		}
		opts = append(opts, replay.WithUsers(users))
		f.usersRows = users
	}
	if f.sharedPool {
		opts = append(opts, replay.WithSharedPool())
	}
	if f.insecure {
		opts = append(opts, replay.WithInsecureTLS())
	}
	for _, h := range f.headers {
		name, value, ok := strings.Cut(h, ":")
		if !ok {
			return nil, usageError("--header %q: want 'Name: value'", h)
		}
		opts = append(opts, replay.WithHeader(strings.TrimSpace(name), strings.TrimSpace(value)))
	}
	if f.sourceIPs != "" {
		ips, err := replay.ParseIPRange(f.sourceIPs)
		if err != nil {
			return nil, usageError("--source-ips: %v", err)
		}
		for _, ip := range ips {
			// A connection can only leave from an address of this machine.
			ln, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", net.JoinHostPort(ip.String(), "0"))
			if err != nil {
				return nil, usageError("--source-ips: %s is not an address of this machine: %v", ip, err)
			}
			ln.Close()
		}
		opts = append(opts, replay.WithSourceIPs(ips))
	}
	return opts, nil
}

func runReplay(cmd *cobra.Command, path string, f *replayFlags) error {
	if f.check {
		return runCheck(cmd, path, f)
	}
	cfg, err := f.config(cmd)
	if err != nil {
		return err
	}
	opts, err := f.options()
	if err != nil {
		return err
	}
	opts = append(opts, replay.WithAbort(abortOf(cmd.Context())))
	if err := f.checkOutputs(); err != nil {
		return err
	}
	criteria, err := parseCriteria(f.thresholds)
	if err != nil {
		return err
	}
	var naming []replay.LoadOption
	if len(f.endpoints) > 0 {
		namer, err := traces.NewNamer(f.endpoints)
		if err != nil {
			return usageError("--endpoint: %v", err)
		}
		naming = append(naming, replay.WithEndpointNames(namer))
	}
	lib, err := loadLibrary(cmd.ErrOrStderr(), path, f.rulesFile, naming...)
	if err != nil {
		return err
	}
	routes, err := f.route(cmd.OutOrStdout(), lib)
	if err != nil {
		return err
	}
	opts = append(opts, routes...)
	if f.ladder {
		return runLadder(cmd, path, f, lib, cfg, opts, criteria)
	}
	res, runErr := runOnce(cmd, path, f, lib, cfg, opts, criteria, f.out)
	if res == nil {
		return runErr
	}
	if i, ok := errors.AsType[interrupt](runErr); ok {
		return &exitErr{code: i.code(), err: fmt.Errorf("%w after %s of %s: the results of that part are written", i, res.Params.RanFor, res.Params.RunTime)}
	}
	if err := replay.Unreachable(res, f.target); err != nil {
		return err
	}
	if f.baseline != "" && runErr == nil {
		base, err := readResultFile(f.baseline)
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

// checkOutputs makes sure, before the first request, that every file the
// run will write can be written and the baseline read: a bad path must not
// cost a whole run.
func (f *replayFlags) checkOutputs() error {
	outs := []struct{ flag, path string }{{"--out", f.out}, {"--html", f.htmlPath}}
	if f.csvPrefix != "" {
		outs = append(outs, struct{ flag, path string }{"--csv", f.csvPrefix + "_stats.csv"})
	}
	for _, o := range outs {
		if o.path == "" {
			continue
		}
		if err := writable(o.path); err != nil {
			return usageError("%s %s: cannot be written: %v", o.flag, o.path, err)
		}
	}
	if f.baseline != "" {
		if _, err := readResultFile(f.baseline); err != nil {
			return usageError("--baseline: %v", err)
		}
	}
	return nil
}

// writable reports why a file at path could not be written, without
// writing it: its directory must take a new file, and it must not be a
// directory.
func writable(path string) error {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return errors.New("it is a directory")
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".thrive-check-*")
	if err != nil {
		return err
	}
	name := tmp.Name()
	tmp.Close()
	return os.Remove(name)
}

// loadLibrary reads the trace at path with load, and the correlation rules
// of rulesFile if set; a trace read only in part (damaged, or its writer
// killed) is warned of on warn and replayed as far as it was read.
func loadLibrary(warn io.Writer, path, rulesFile string, opts ...replay.LoadOption) (*replay.Library, error) {
	rules, err := loadRules(rulesFile)
	if err != nil {
		return nil, err
	}
	t, err := openTrace(path)
	if err != nil {
		return nil, err
	}
	lib, err := replay.Load(t.Reader(), append(opts, replay.WithCorrelationRules(rules))...)
	t.Close()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := lib.Damage(); err != nil {
		fmt.Fprintf(warn, "warning: %s: %v; replaying the %s read\n", path, err, lib)
	}
	return lib, nil
}

// runOnce plays one plan made of cfg, prints its summary and criteria, and
// writes its result file (outPath) and reports. It returns the result, nil
// when the run could not start, and the run's own error.
func runOnce(cmd *cobra.Command, path string, f *replayFlags, lib *replay.Library, cfg scheduler.Config, opts []replay.Option,
	criteria []report.Criterion, outPath string) (*report.Result, error) {
	out := cmd.OutOrStdout()
	plan, err := scheduler.New(lib.Sessions(), cfg)
	if err != nil {
		return nil, usageError("%v", err)
	}
	eng, err := replay.New(f.target, lib, opts...)
	if err != nil {
		return nil, usageError("%v", err)
	}
	start := time.Now().Add(100 * time.Millisecond)
	if f.startAt != "" && !f.ladder {
		if start, err = time.Parse(time.RFC3339Nano, f.startAt); err != nil {
			return nil, usageError("--start-at %q: want an RFC 3339 time", f.startAt)
		}
		if end := start.Add(plan.Duration()); end.Before(time.Now()) {
			return nil, usageError("--start-at %s: the run (%v) would have ended at %s, before now: nothing would be sent",
				f.startAt, plan.Duration(), end.Format(time.RFC3339))
		}
	}
	names, shares := plan.Profiles()
	mix := make([]string, len(names))
	for i, n := range names {
		mix[i] = fmt.Sprintf("%s %.0f%%", n, 100*shares[i])
	}
	fmt.Fprintf(out, "replaying %s (%s) against %s: %d users (%d in this process), %s, time scale %.4g, pacing %s, mix %s\n",
		path, lib, f.target, plan.TotalUsers(), len(plan.Users()), plan.Duration(), plan.Scale(), f.pacing, strings.Join(mix, ", "))
	warn, err := replay.CheckResources(len(plan.Users()), f.sharedPool)
	if err != nil {
		return nil, usageError("%v", err)
	}
	if warn != "" {
		fmt.Fprintln(cmd.ErrOrStderr(), warn)
	}
	unfilled := lib.Unfilled(f.usersRows)
	replay.WriteUnfilled(cmd.ErrOrStderr(), unfilled)

	rec := report.NewRecorder(start)
	var wg sync.WaitGroup
	statusDone := make(chan struct{})
	if tty, ok := cmd.ErrOrStderr().(*os.File); ok && !f.quiet && isTerminal(tty) {
		wg.Go(func() { replayStatus(tty, eng, rec, statusDone) })
	}
	stopProfile, err := startCPUProfile(f.cpuProfile)
	if err != nil {
		return nil, err
	}
	defer stopProfile()
	params := report.RunParams{
		Trace: path, Users: plan.TotalUsers(), RunTime: plan.Duration().String(), Scale: plan.Scale(), Pacing: f.pacing,
		Seed: f.seed, Shard: f.shard, Mix: strings.Join(mix, ", "), Library: lib.String(),
	}
	res, runErr := eng.Play(cmd.Context(), plan, start, rec, f.label, params)
	close(statusDone)
	wg.Wait()
	if i, wasStopped := interrupted(cmd.Context()); wasStopped {
		res.Params.RanFor = res.End.Sub(start).Round(time.Millisecond).String()
		res.Params.StoppedBy = i.name()
		res.Interrupted = true
		runErr = i // not the engine's "context canceled"
	}
	verdicts, _ := report.CheckAll(criteria, res)
	res.Criteria = verdicts
	report.WriteSummary(out, res)
	replay.WriteCorrelationMisses(out, eng.Correlations())
	if n := eng.UnfilledFailures(); n > 0 {
		names := make([]string, len(unfilled))
		for i, s := range unfilled {
			names[i] = s.Name
		}
		fmt.Fprintf(out, "%d failed requests carried a redacted value that nothing filled (%s): give it with --users-file, or record with --keep-secrets\n",
			n, strings.Join(names, ", "))
	}
	report.WriteCriteria(out, verdicts)
	if outPath != "" {
		if err := writeResult(outPath, res); err != nil {
			return res, err
		}
		fmt.Fprintf(out, "results written to %s\n", outPath)
	}
	if err := writeReports(out, res, f.csvPrefix, f.htmlPath); err != nil {
		return res, err
	}
	if w := res.LagWarning(); w != "" {
		fmt.Fprintln(cmd.ErrOrStderr(), w)
	}
	return res, runErr
}

func writeResult(path string, res *report.Result) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := res.WriteJSON(f); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

func replayStatus(w io.Writer, eng *replay.Engine, rec *report.Recorder, done <-chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var last int64
	for {
		select {
		case <-done:
			fmt.Fprint(w, "\r\033[K")
			return
		case <-t.C:
			st, tot := eng.Status(), rec.Totals()
			fmt.Fprintf(w, "\r\033[Kusers %d · %d req/s · p95 %s · errors %d · lag p99 %s",
				st.Users, tot.Requests-last, tot.P95.Round(time.Millisecond), tot.Failures, tot.LagP99.Round(100*time.Microsecond))
			last = tot.Requests
		}
	}
}
