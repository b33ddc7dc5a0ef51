package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/thrive-loadtest/thrive/replay"
	"github.com/thrive-loadtest/thrive/report"
	"github.com/thrive-loadtest/thrive/scheduler"
)

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
	var rows []report.LadderPhase
	var runErr error
	for i, p := range scheduler.Ladder() {
		if f.maxUsers > 0 && p.Users > f.maxUsers {
			break
		}
		criteria, err := parseCriteria(p.Criteria)
		if err != nil {
			return err // the built-in criteria parse
		}
		criteria = append(criteria, extra...)
		cfg := p.Config(base, f.ladderTime)
		fmt.Fprintf(out, "\n== ladder phase %d: %d users, spawning %g/s, %s\n", i, p.Users, p.SpawnRate, cfg.RunTime)
		outPath := ""
		if f.out != "" {
			outPath = strings.TrimSuffix(f.out, ".json") + fmt.Sprintf(".phase%d.json", i)
		}
		res, err := runOnce(cmd, path, f, lib, cfg, opts, criteria, outPath)
		if res == nil {
			return err
		}
		r := report.LadderPhase{N: i, Users: p.Users, SpawnRate: p.SpawnRate, RunTime: cfg.RunTime, Result: res,
			Passed: err == nil && report.FailedCount(res.Criteria) == 0}
		rows = append(rows, r)
		if err != nil || !r.Passed {
			runErr = err
			break
		}
		if cmd.Context().Err() != nil {
			break
		}
	}
	if len(rows) == 0 {
		return usageError("--max-users %d: the ladder's first phase has %d users", f.maxUsers, scheduler.Ladder()[0].Users)
	}
	report.WriteLadder(out, rows)
	last := rows[len(rows)-1]
	if i, ok := errors.AsType[interrupt](runErr); ok {
		return &exitErr{code: i.code(), err: fmt.Errorf("%w during phase %d: the results so far are written", i, last.N)}
	}
	if runErr != nil {
		return runErr
	}
	if !last.Passed {
		return &exitErr{code: exitCriteria, err: fmt.Errorf("ladder phase %d failed its criteria", last.N)}
	}
	fmt.Fprintf(out, "verdict: PASS (%d phases)\n", len(rows))
	return nil
}
