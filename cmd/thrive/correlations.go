package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/thrive-loadtest/thrive/replay"
)

func newCorrelationsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "correlations FILE",
		Short: "List the server-made values that replay carries over (where each comes from, where it goes)",
		Long: `List the correlations replay finds in a trace: values an answer gave (a JSON field, a
Location header) that later requests of the same session send back (in the path, query,
headers, body or a WebSocket message). At replay each user takes the live value from the
same place in its own answer. Cookies are not listed: each user's cookie jar carries them.`,
		Example: "  thrive traces correlations capture.thrv",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := openTrace(args[0])
			if err != nil {
				return err
			}
			lib, err := replay.Load(t.r)
			t.Close()
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			printRules(cmd.OutOrStdout(), lib.Rules())
			return nil
		},
	}
}

// printRules writes one line per rule: sessions, source, targets.
func printRules(w io.Writer, rules []replay.Rule) {
	if len(rules) == 0 {
		fmt.Fprintln(w, "no correlations: no later request sends a value an answer gave")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "sessions\tvalue from\tsent back by")
	for _, r := range rules {
		targets := make([]string, 0, len(r.Targets))
		for t, n := range r.Targets {
			targets = append(targets, fmt.Sprintf("%s (%d)", t, n))
		}
		slices.Sort(targets)
		fmt.Fprintf(tw, "%d\t%s\t%s\n", r.Count, r.Source, strings.Join(targets, ", "))
	}
	_ = tw.Flush()
}

// printCorrelationMisses reports the rules whose value some live answer
// did not have.
func printCorrelationMisses(w io.Writer, stats []replay.CorrelationStat) {
	for _, s := range stats {
		if s.Missing > 0 {
			fmt.Fprintf(w, "correlation: %s was not in %d of %d live answers (those requests went out with the recorded value)\n",
				s.Rule, s.Missing, s.Missing+s.Found)
		}
	}
}
