package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/thrive-loadtest/thrive/report"
)

func newReportCmd() *cobra.Command {
	var csvPrefix string
	cmd := &cobra.Command{
		Use:   "report RESULT.json [--csv PREFIX]",
		Short: "Print a result file's summary, and write its reports",
		Long: `Print the summary of a result file (thrive replay --out) with its criteria, and write
its reports: --csv PREFIX writes Locust's four CSV files (PREFIX_stats.csv,
PREFIX_stats_history.csv, PREFIX_failures.csv, PREFIX_exceptions.csv).`,
		Example: "  thrive report result.json --csv run1",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			res, err := report.ReadResult(f)
			f.Close()
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			out := cmd.OutOrStdout()
			printResult(out, res)
			passed := true
			for _, v := range res.Criteria {
				passed = passed && v.Pass
			}
			printCriteria(out, res.Criteria, passed)
			if csvPrefix != "" {
				if err := report.WriteLocustCSV(csvPrefix, res); err != nil {
					return err
				}
				fmt.Fprintf(out, "Locust CSV files written to %s_*.csv\n", csvPrefix)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&csvPrefix, "csv", "", "write Locust's CSV files with this prefix")
	return cmd
}
