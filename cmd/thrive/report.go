package main

import (
	"fmt"

	"github.com/spf13/cobra"
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
	var out, csvPrefix, htmlPath string
	var thresholds []string
	cmd := &cobra.Command{
		Use:   "merge SHARD.json... --out ALL.json",
		Short: "Combine the result files of shards exactly",
		Long: `Combine the result files of the shards of one run (thrive replay --shard i/n): histograms are
added bucket by bucket, so merged percentiles are those of all the samples together; counts
add up; the per-second series are aligned by time. Files of different traces, seeds, targets
or shard counts, or the same shard twice, are refused with a message that says which.`,
		Example: "  thrive merge shard-*.json --out all.json --threshold 'p95<1s' --html all.html",
		Args:    usageArgs(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usageError("--out is required")
			}
			criteria, err := parseCriteria(thresholds)
			if err != nil {
				return err
			}
			var rs []*report.Result
			for _, path := range args {
				r, err := report.ReadFile(path)
				if err != nil {
					return err
				}
				rs = append(rs, r)
			}
			m, err := report.Merge(rs)
			if err != nil {
				return err
			}
			verdicts, passed := report.CheckAll(criteria, m)
			m.Criteria = verdicts
			w := cmd.OutOrStdout()
			report.WriteSummary(w, m)
			report.WriteCriteria(w, verdicts)
			if err := m.WriteFile(out); err != nil {
				return err
			}
			fmt.Fprintf(w, "merged %d results into %s\n", len(rs), out)
			if err := (report.Files{CSVPrefix: csvPrefix, HTML: htmlPath}).Write(w, m); err != nil {
				return err
			}
			if !passed {
				return &exitErr{code: exitCriteria, err: fmt.Errorf("%d of %d criteria failed", report.FailedCount(verdicts), len(verdicts))}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "out", "o", "", "the merged result file to write")
	cmd.Flags().StringArrayVar(&thresholds, "threshold", nil, "a success criterion on the merged result (repeatable; see thrive replay)")
	cmd.Flags().StringVar(&csvPrefix, "csv", "", "also write Locust's CSV files with this prefix")
	cmd.Flags().StringVar(&htmlPath, "html", "", "also write the HTML report to this file")
	return cmd
}
