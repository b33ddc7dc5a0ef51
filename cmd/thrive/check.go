package main

import (
	"encoding/json"
	"fmt"
	"os"

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
	replay.WriteUnfilled(cmd.ErrOrStderr(), lib.Unfilled(f.usersRows))
	rep, err := eng.Check(cmd.Context(), picked, scale)
	if err != nil {
		return err
	}
	if rep.Requests > 0 && rep.TransportErrors == rep.Requests {
		return fmt.Errorf("check: no request to %s got an answer: is it running, and on that port?", f.target)
	}
	rep.WriteText(out, f.target)
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
