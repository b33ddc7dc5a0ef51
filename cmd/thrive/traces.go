package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"
	"github.com/thrive-loadtest/thrive/capture"
	"github.com/thrive-loadtest/thrive/traces"
)

func newTracesCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "traces",
		Short: "Look into trace files: inspect, cat, filter, sample",
	}
	cmd.AddCommand(newInspectCmd(), newCatCmd(), newFilterCmd(), newSampleCmd(), newCorrelationsCmd(), newRepairCmd())
	return cmd
}

func newCatCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "cat FILE",
		Short: "Print each session as one JSON object per line (JSON Lines)",
		Long: `Print each session as one JSON object per line, so jq and other tools work on any
trace. Times are in milliseconds, headers are [name, value] pairs in order, bodies are
text when they are UTF-8 and base64 (body_base64) otherwise.`,
		Example: `  thrive traces cat capture.thrv | jq -r '.exchanges[] | "\(.status) \(.method) \(.url)"'`,
		Args:    usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := traces.Open(args[0])
			if err != nil {
				return err
			}
			defer t.Close()
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetEscapeHTML(false)
			for s, err := range t.Sessions() {
				if err != nil {
					return err
				}
				if err := enc.Encode(s); err != nil {
					return err
				}
			}
			return nil
		},
	}
}

func newInspectCmd() *cobra.Command {
	var asJSON bool
	var top int
	cmd := &cobra.Command{
		Use:   "inspect FILE",
		Short: "Summarize a trace: span, sessions per profile, exchanges, WebSockets, bytes, top endpoints",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			in, damage := traces.InspectFile(args[0], top)
			if in == nil {
				return damage
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(in); err != nil {
					return err
				}
			} else if err := in.WriteText(out); err != nil {
				return err
			}
			return damage
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object instead of text")
	cmd.Flags().IntVar(&top, "top", 10, "how many endpoints to list")
	return cmd
}

func newRepairCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "repair FILE",
		Short: "Fold in the sessions a killed capture kept in FILE.journal",
		Long: `A capture keeps the finished exchanges of sessions still open in FILE.journal, every
second, and removes it when it stops cleanly. After a kill -9 the journal is left: repair folds
the sessions it holds that never reached the trace into the trace (rewritten whole, with its end
record) and removes the journal. A capture refuses to start over a journal left behind.`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			rep, err := capture.Repair(args[0])
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if rep.Damage != nil {
				fmt.Fprintf(out, "%s was read as far as it goes: %v\n", args[0], rep.Damage)
			}
			fmt.Fprintf(out, "%s: %d sessions kept, %d sessions (%d exchanges) recovered from the journal, which is removed\n",
				args[0], rep.Kept, rep.Recovered, rep.Exchanges)
			return nil
		},
	}
}
