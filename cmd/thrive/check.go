package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/thrive-loadtest/thrive/replay"
)

// runCheck is replay --check: each chosen session played once, every answer
// held against its recording, the divergences printed with their causes.
func runCheck(cmd *cobra.Command, path string, f *replayFlags) error {
	opts, err := f.options()
	if err != nil {
		return err
	}
	scale := 0.0 // a session in at most 2 s
	if cmd.Flags().Changed("scale-time") && f.scaleTime != "auto" {
		if _, err := fmt.Sscan(f.scaleTime, &scale); err != nil || scale <= 0 {
			return usageError("--scale-time %q: want a positive factor", f.scaleTime)
		}
	}
	lib, err := loadLibrary(cmd.ErrOrStderr(), path, f.rulesFile, replay.ForCheck())
	if err != nil {
		return err
	}
	routes, err := f.route(cmd.OutOrStdout(), lib)
	if err != nil {
		return err
	}
	opts = append(opts, routes...)
	picked, err := lib.CheckSessions(f.checkSessions, f.profiles)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	eng, err := replay.New(f.target, lib, opts...)
	if err != nil {
		return usageError("%v", err)
	}
	out := cmd.OutOrStdout()
	printUnfilled(cmd.ErrOrStderr(), lib.Unfilled(f.usersRows))
	rep, err := eng.Check(cmd.Context(), picked, scale)
	if err != nil {
		return err
	}
	if rep.Requests > 0 && rep.TransportErrors == rep.Requests {
		return fmt.Errorf("check: no request to %s got an answer: is it running, and on that port?", f.target)
	}
	printCheck(out, f.target, rep)
	if f.out != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(f.out, append(b, '\n'), 0o644); err != nil { //nolint:gosec // a report for the user to read
			return err
		}
		fmt.Fprintf(out, "check written to %s\n", f.out)
	}
	if rep.Regressions > 0 {
		return &exitErr{code: exitError, err: fmt.Errorf("check: %d requests that succeeded when recorded fail now", rep.Regressions)}
	}
	return nil
}

// printCheck writes a check's divergences, regressions first, each with
// its cause and fix.
func printCheck(w io.Writer, target string, rep *replay.CheckReport) {
	fmt.Fprintf(w, "check: %s played once against %s: %s, %s, %s\n", count(rep.Sessions, "session"), target,
		count(rep.Requests, "request"), count(rep.Regressions, "regression"), count(len(rep.Divergences)-regressionKinds(rep), "other divergence"))
	for _, d := range rep.Divergences {
		mark := ""
		if d.Regression {
			mark = " [regression]"
		}
		fmt.Fprintf(w, "\n%s: %s, %d of %d%s\n", d.Endpoint, d.What, d.Count, d.Of, mark)
		if d.Cause != "" {
			fmt.Fprintf(w, "  cause: %s\n", d.Cause)
		}
		if d.Fix != "" {
			fmt.Fprintf(w, "  fix:   %s\n", strings.ReplaceAll(d.Fix, "\n", "\n         "))
		}
	}
	found, missing := 0, 0
	for _, c := range rep.Correlations {
		if c.Missing > 0 {
			missing++
		} else if c.Found > 0 {
			found++
		}
	}
	fmt.Fprintf(w, "\ncorrelation: %s found the value in every live answer, %d missed some\n", count(found, "rule"), missing)
	if len(rep.Divergences) == 0 {
		fmt.Fprintln(w, "every answer is as recorded")
	}
}

func regressionKinds(rep *replay.CheckReport) int {
	n := 0
	for _, d := range rep.Divergences {
		if d.Regression {
			n++
		}
	}
	return n
}

// count writes n and noun, with an s unless n is 1.
func count(n int, noun string) string { return fmt.Sprintf("%d %s%s", n, noun, plural(n, "s")) }
