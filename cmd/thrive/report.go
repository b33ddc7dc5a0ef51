package main

import (
	"errors"

	"github.com/spf13/cobra"
	"github.com/thrive-loadtest/thrive/internal/app"
	"github.com/thrive-loadtest/thrive/report"
)

func newReportCmd() *cobra.Command {
	var csvPrefix, htmlPath string
	cmd := &cobra.Command{
		Use:   "report RESULT.json [--csv PREFIX] [--html FILE]",
		Short: "Print a result file's summary, and write its reports",
		Long: `Print the summary of a result file (thrive replay --out) with its criteria, and write
its reports: --csv PREFIX writes Locust's four CSV files (PREFIX_stats.csv,
PREFIX_stats_history.csv, PREFIX_failures.csv, PREFIX_exceptions.csv); --html FILE a
self-contained HTML report (charts over time, the latency distribution, the tables and the
criteria) that opens offline.`,
		Example: "  thrive report result.json --csv run1 --html run1.html",
		Args:    usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := report.ReadFile(args[0])
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			report.WriteSummary(out, res)
			report.WriteCriteria(out, res.Criteria)
			return report.Files{CSVPrefix: csvPrefix, HTML: htmlPath}.Write(out, res)
		},
	}
	cmd.Flags().StringVar(&csvPrefix, "csv", "", "write Locust's CSV files with this prefix")
	cmd.Flags().StringVar(&htmlPath, "html", "", "write a self-contained HTML report to this file")
	return cmd
}

func newMergeCmd() *cobra.Command {
	var out string
	var f app.Finish
	var merger report.Merger
	cmd := &cobra.Command{
		Use:   "merge SHARD.json... --out ALL.json [--partial]",
		Short: "Combine the result files of shards exactly",
		Long: `Combine the result files of the shards of one run (thrive replay --shard i/n): histograms are
added bucket by bucket, so merged percentiles are those of all the samples together; counts
add up; the per-second series are aligned by time. A set that is not every shard of one run
is refused (exit 2) with a message that says what is missing or differs, in which files: a
shard missing, given twice or interrupted, a whole run among shards, or shards that ran
with a different target, trace, seed, --users, --run-time, --scale-time, --pacing, profile
mix, label or shard count, or at different times (runs that do not overlap, or starts
further apart than a tenth of the run and 5 s). --partial merges such a set on purpose:
the merged result's params.partial, and the summary, say what was missing or differed.`,
		Example: "  thrive merge shard-*.json --out all.json --threshold 'p95<1s' --html all.html",
		Args:    usageArgs(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usageError("--out is required")
			}
			f.Files.JSON, f.Out, f.Warn = out, cmd.OutOrStdout(), cmd.ErrOrStderr()
			return f.Merge(&merger, args)
		},
	}
	cmd.Flags().StringVarP(&out, "out", "o", "", "the merged result file to write")
	cmd.Flags().BoolVar(&merger.Partial, "partial", false, "merge shards that are not every shard of one run (missing, twice, or of different runs), saying so in the merged result")
	parsedFlag(cmd.Flags(), &f.Criteria, "threshold", "a success `criterion` on the merged result (repeatable; see thrive replay)", report.ParseCriterion)
	cmd.Flags().StringVar(&f.Files.CSVPrefix, "csv", "", "also write Locust's CSV files with this prefix")
	cmd.Flags().StringVar(&f.Files.HTML, "html", "", "also write the HTML report to this file")
	cmd.Flags().StringVar(&f.Prometheus, "prometheus", "", "the `URL` of the Prometheus that prom: criteria ask, over the merged run's time range")
	return cmd
}

func newCompareCmd() *cobra.Command {
	var noise string
	var ignore []string
	maxRegression, format := 0.1, "text"
	cmd := &cobra.Command{
		Use:   "compare BASE.json [CANDIDATE.json] [--noise BASE2.json] [--max-regression 10%] [--ignore PATH] [--format text|markdown|json]",
		Short: "Tell whether a new build regressed, from two result files",
		Long: `Compare two runs of the same traffic, endpoint by endpoint: counts, p50/p95/p99 of both and
their change, error rates, and whether the change is significant (Mann-Whitney U on the
latency histograms, p < 0.01). The verdict is a regression when a significant change slows
p95 by more than --max-regression (10%), an improvement when it speeds it up as much, else
no change; a regression exits 3, for CI. With --noise, a second run of the baseline, a change
no larger than the baseline's own run-to-run change is not flagged. Runs of different traces,
users or run times are compared with a warning that says what differs.

Then what the builds answered, from the sketches the runs kept: statuses, JSON fields gone,
new or of another type, headers, body sizes and WebSocket frames per reply, each with a test
fit for it. A field gone from 1% of answers or more, or more 5xx and errors, significantly,
is a regression; the rest are changes. --ignore silences a path and those under it; --noise
also silences what the baseline does on its own. Given one file, a side-by-side run (replay
--candidate, --control), it compares its candidate with its base, its control as the noise.`,
		Example: "  thrive compare base.json candidate.json --format markdown >> $GITHUB_STEP_SUMMARY",
		Args:    usageArgs(cobra.RangeArgs(1, 2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := report.CompareSides(args[0], maxRegression, ignore...)
			if len(args) == 2 {
				c, err = report.CompareFiles(args[0], args[1], noise, maxRegression, ignore...)
			}
			if err != nil {
				return err
			}
			if err := c.Write(cmd.OutOrStdout(), format); err != nil {
				return err
			}
			return c.Failed()
		},
	}
	cmd.Flags().StringVar(&noise, "noise", "", "a second run of the baseline: changes within its own run-to-run change are not flagged")
	cmd.Flags().StringArrayVar(&ignore, "ignore", nil, "a JSON `path` ($.updated_at, $.items[].etag) whose changes, and those under it, are not reported (repeatable)")
	valueFlag(cmd.Flags(), &maxRegression, "max-regression", "the largest significant p95 slow-down that is not a regression, a `share` (default 10%)", report.ParseShare)
	cmd.Flags().Func("format", "`text|markdown|json`: markdown for a pull request (default text)", func(s string) error {
		if format = s; s != "text" && s != "markdown" && s != "json" {
			return errors.New("want text, markdown or json")
		}
		return nil
	})
	return cmd
}
