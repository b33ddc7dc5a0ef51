package main

import (
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/thrive-loadtest/thrive/replay"
	"github.com/thrive-loadtest/thrive/report"
	"github.com/thrive-loadtest/thrive/scheduler"
)

// phase is a rung of the testing ladder the team climbs.
type phase struct {
	users     int
	spawnRate float64
	runTime   time.Duration
	criteria  []string
}

// ladderPhases are the team's ladder: each phase's users, spawn rate,
// duration and default criteria.
func ladderPhases() []phase {
	tenK := []string{"error_rate<1%", "p95<3s", "ws-connect:error_rate<1%"}
	return []phase{
		{100, 10, 2 * time.Minute, []string{"error_rate<1%", "p95<1s"}},
		{1000, 50, 5 * time.Minute, []string{"error_rate<1%", "p95<2s", "status_429>0"}},
		{10_000, 200, 10 * time.Minute, tenK},
		{10_000, 200, 10 * time.Minute, tenK},
		{100_000, 1000, 15 * time.Minute, []string{"error_rate<1%", "p95<5s"}},
	}
}

// runLadder runs the ladder's phases in turn, each a run of its own with its
// criteria and those of --threshold, and stops after the first phase that
// fails. It prints a table of the phases and their verdicts.
func runLadder(cmd *cobra.Command, path string, f *replayFlags, lib *replay.Library, base scheduler.Config, opts []replay.Option,
	extra []report.Criterion) error {
	if f.stages != "" {
		return usageError("--ladder sets users and times itself: leave out --stages")
	}
	if f.ladderTime <= 0 {
		return usageError("--ladder-time %g: want a positive factor", f.ladderTime)
	}
	out := cmd.OutOrStdout()
	type row struct {
		n       int
		p       phase
		runTime time.Duration
		res     *report.Result
		passed  bool
	}
	var rows []row
	var runErr error
	for i, p := range ladderPhases() {
		if f.maxUsers > 0 && p.users > f.maxUsers {
			break
		}
		var criteria []report.Criterion
		for _, text := range p.criteria {
			c, err := report.ParseCriterion(text)
			if err != nil {
				return err // the built-in criteria parse
			}
			criteria = append(criteria, c)
		}
		criteria = append(criteria, extra...)
		cfg := base
		cfg.Users, cfg.SpawnRate, cfg.Stages = p.users, p.spawnRate, nil
		cfg.RunTime = max(time.Duration(float64(p.runTime)*f.ladderTime), time.Second)
		fmt.Fprintf(out, "\n== ladder phase %d: %d users, spawning %g/s, %s\n", i, p.users, p.spawnRate, cfg.RunTime)
		outPath := ""
		if f.out != "" {
			outPath = strings.TrimSuffix(f.out, ".json") + fmt.Sprintf(".phase%d.json", i)
		}
		res, err := runOnce(cmd, path, f, lib, cfg, opts, criteria, outPath)
		if res == nil {
			return err
		}
		r := row{n: i, p: p, runTime: cfg.RunTime, res: res, passed: err == nil && report.FailedCount(res.Criteria) == 0}
		rows = append(rows, r)
		if err != nil || !r.passed {
			runErr = err
			break
		}
		if cmd.Context().Err() != nil {
			break
		}
	}
	fmt.Fprintln(out, "\nladder")
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "phase\tusers\tspawn/s\ttime\trequests\terror rate\tp95\tcriteria\tverdict")
	failed := false
	for _, r := range rows {
		p95 := "–"
		if c, err := report.ParseCriterion("p95<1s"); err == nil {
			p95 = c.Check(r.res).Actual
		}
		verdict := "pass"
		if !r.passed {
			verdict, failed = "FAIL", true
		}
		var texts []string
		for _, v := range r.res.Criteria {
			mark := ""
			if !v.Pass {
				mark = " ✗"
			}
			texts = append(texts, v.Criterion+mark)
		}
		fmt.Fprintf(tw, "%d\t%d\t%g\t%s\t%d\t%.2f%%\t%s\t%s\t%s\n", r.n, r.p.users, r.p.spawnRate, r.runTime, r.res.Requests,
			100*float64(r.res.Failures)/float64(max(r.res.Requests, 1)), p95, strings.Join(texts, ", "), verdict)
	}
	_ = tw.Flush()
	if i, ok := errors.AsType[interrupt](runErr); ok {
		return &exitErr{code: i.code(), err: fmt.Errorf("%w during phase %d: the results so far are written", i, rows[len(rows)-1].n)}
	}
	if runErr != nil {
		return runErr
	}
	if failed {
		return &exitErr{code: exitCriteria, err: fmt.Errorf("ladder phase %d failed its criteria", rows[len(rows)-1].n)}
	}
	fmt.Fprintf(out, "verdict: PASS (%d phases)\n", len(rows))
	return nil
}
