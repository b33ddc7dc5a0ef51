package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/thrive-loadtest/thrive/report"
)

type compareFlags struct {
	noise         string
	maxRegression string
	format        string
}

func newCompareCmd() *cobra.Command {
	f := compareFlags{}
	cmd := &cobra.Command{
		Use:   "compare BASE.json CANDIDATE.json [--noise BASE2.json] [--max-regression 10%] [--format text|markdown|json]",
		Short: "Tell whether a new build regressed, from two result files",
		Long: `Compare two runs of the same traffic, endpoint by endpoint: counts, p50/p95/p99 of both and
their change, error rates, and whether the change is significant (Mann-Whitney U on the
latency histograms, p < 0.01). The verdict is a regression when a significant change slows
p95 by more than --max-regression (10%), an improvement when it speeds it up as much, else
no change; a regression exits 3, for CI. With --noise, a second run of the baseline, a change
no larger than the baseline's own run-to-run change is not flagged. Runs of different traces,
users or run times are compared with a warning that says what differs.`,
		Example: "  thrive compare base.json candidate.json --format markdown >> $GITHUB_STEP_SUMMARY",
		Args:    usageArgs(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			base, err := report.ReadFile(args[0])
			if err != nil {
				return err
			}
			cand, err := report.ReadFile(args[1])
			if err != nil {
				return err
			}
			return runCompare(cmd.OutOrStdout(), base, cand, &f)
		},
	}
	addCompareFlags(cmd, &f)
	return cmd
}

func addCompareFlags(cmd *cobra.Command, f *compareFlags) {
	cmd.Flags().StringVar(&f.noise, "noise", "", "a second run of the baseline: changes within its own run-to-run change are not flagged")
	cmd.Flags().StringVar(&f.maxRegression, "max-regression", "10%", "the largest significant p95 slow-down that is not a regression")
	cmd.Flags().StringVar(&f.format, "format", "text", "text, markdown (for a pull request) or json")
}

// parseCriteria reads --threshold values.
func parseCriteria(texts []string) ([]report.Criterion, error) {
	var cs []report.Criterion
	for _, th := range texts {
		c, err := report.ParseCriterion(th)
		if err != nil {
			return nil, usageError("--threshold: %v", err)
		}
		cs = append(cs, c)
	}
	return cs, nil
}

// runCompare compares and prints; a regression is an exitCriteria error.
func runCompare(w io.Writer, base, cand *report.Result, f *compareFlags) error {
	limit, err := strconv.ParseFloat(strings.TrimSuffix(f.maxRegression, "%"), 64)
	if err != nil || limit < 0 {
		return usageError("--max-regression %q: want a percentage such as 10%%", f.maxRegression)
	}
	if strings.HasSuffix(f.maxRegression, "%") {
		limit /= 100
	}
	var noise *report.Result
	if f.noise != "" {
		if noise, err = report.ReadFile(f.noise); err != nil {
			return err
		}
	}
	c, err := report.Compare(base, cand, noise, limit)
	if err != nil {
		return err
	}
	switch f.format {
	case "text":
		c.WriteText(w, false)
	case "markdown":
		c.WriteText(w, true)
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(c); err != nil {
			return err
		}
	default:
		return usageError("--format %q: want text, markdown or json", f.format)
	}
	if c.Verdict == report.Regression {
		return &exitErr{code: exitCriteria, err: fmt.Errorf("the candidate regressed (p95 slower by more than %s, significantly)", f.maxRegression)}
	}
	return nil
}
