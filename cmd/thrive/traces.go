package main

import (
	"fmt"

	"github.com/spf13/cobra"
	"github.com/thrive-loadtest/thrive/internal/app"
	"github.com/thrive-loadtest/thrive/internal/statusline"
	"github.com/thrive-loadtest/thrive/replay"
	"github.com/thrive-loadtest/thrive/traces"
	"github.com/thrive-loadtest/thrive/traces/synth"
)

func newTracesCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "traces",
		Short: "Look into trace files: inspect, cat, filter, sample",
	}
	cmd.AddCommand(newInspectCmd(), newCatCmd(), newFilterCmd(), newSampleCmd(), newCorrelationsCmd(), newRepairCmd())
	return cmd
}

// tracesApp is the commands that read a trace whole, their progress shown
// on stderr when it is a terminal.
func tracesApp(cmd *cobra.Command) *app.Traces {
	return &app.Traces{Out: cmd.OutOrStdout(), Status: statusline.Terminal(cmd.ErrOrStderr())}
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
			return tracesApp(cmd).Cat(args[0])
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
			return tracesApp(cmd).Inspect(args[0], top, asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object instead of text")
	cmd.Flags().IntVar(&top, "top", 10, "how many endpoints to list")
	return cmd
}

func newFilterCmd() *cobra.Command {
	var flt traces.Filter
	var out, from, to string
	cmd := &cobra.Command{
		Use:   "filter FILE --out NEW [--profile NAME]... [--from T] [--to T]",
		Short: "Write the sessions of a trace that match profiles and a time window to a new trace",
		Long: `Write to a new trace the sessions whose profile is one of --profile (all profiles when
none is given) and whose start lies in [--from, --to). A bound is an RFC 3339 time or an
offset from the start of the trace's first session, such as 10m.`,
		Example: "  thrive traces filter capture.thrv --profile chat --out chat.thrv\n" +
			"  thrive traces filter capture.thrv --from 10m --to 20m --out busy.thrv",
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usageError("--out is required")
			}
			var err error
			if flt.From, err = traces.ParseBound(from); err != nil {
				return usageError("--from %v", err)
			}
			if flt.To, err = traces.ParseBound(to); err != nil {
				return usageError("--to %v", err)
			}
			return tracesApp(cmd).Filter(args[0], out, flt)
		},
	}
	cmd.Flags().StringSliceVar(&flt.Profiles, "profile", nil, "keep sessions of these profiles (repeat or separate with commas)")
	cmd.Flags().StringVar(&from, "from", "", "keep sessions that start at or after this time or offset")
	cmd.Flags().StringVar(&to, "to", "", "keep sessions that start before this time or offset")
	cmd.Flags().StringVarP(&out, "out", "o", "", "the trace file to write")
	return cmd
}

func newSampleCmd() *cobra.Command {
	var n int
	var seed uint64
	var out string
	cmd := &cobra.Command{
		Use:   "sample --out FILE",
		Short: "Write a synthetic trace of browse, chat and import sessions (for trying thrive out)",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return usageError("--out is required")
			}
			if n < 0 {
				return usageError("--sessions %d: want 0 or more", n)
			}
			size, err := synth.WriteFile(out, n, seed)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %d sessions to %s (%s)\n", n, out, traces.FormatBytes(size))
			return nil
		},
	}
	cmd.Flags().IntVarP(&n, "sessions", "n", 100, "how many sessions")
	cmd.Flags().Uint64Var(&seed, "seed", 1, "the same seed writes the same sessions")
	cmd.Flags().StringVarP(&out, "out", "o", "", "the trace file to write")
	return cmd
}

func newCorrelationsCmd() *cobra.Command {
	var load []replay.LoadOption
	cmd := &cobra.Command{
		Use:   "correlations FILE",
		Short: "List the server-made values that replay carries over (where each comes from, where it goes)",
		Long: `List the correlations replay finds in a trace: values an answer gave (a JSON field, a
header, a part of a URL, a form's field, a link, a WebSocket reply, or any token of its text,
found again by the text before it) that later requests of the same session send back, and
where each sends it (a path segment, a query parameter, a header, a form field, a JSON path,
a WebSocket message). UUIDs the client made are listed too: each user makes its own. At
replay each user takes the live value from the same place in its own answer. Cookies are
not listed: each user's cookie jar carries them. --correlation-rules adds rules by hand or
disables found ones (see the README).`,
		Example: "  thrive traces correlations capture.thrv\n  thrive traces correlations capture.thrv --correlation-rules rules.yaml",
		Args:    usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			return tracesApp(cmd).Correlations(args[0], load...)
		},
	}
	rulesFlag(cmd, &load)
	return cmd
}

// rulesFlag declares --correlation-rules, whose file is read into a load
// option.
func rulesFlag(cmd *cobra.Command, load *[]replay.LoadOption) {
	parsedFlag(cmd.Flags(), load, "correlation-rules", "YAML `file` of correlation rules to add or disable (see thrive traces correlations)", func(path string) (replay.LoadOption, error) {
		rs, err := replay.LoadCorrelationRulesFile(path)
		return replay.WithCorrelationRules(rs), err
	})
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
			return tracesApp(cmd).Repair(args[0])
		},
	}
}
