package prom

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/thrive-loadtest/thrive/report"
)

// maxSteps bounds how many steps a criterion's query is evaluated at over
// a run: past it the step grows (Prometheus refuses past 11,000 points).
const maxSteps = 500

// Step returns the step at which a query is evaluated from start to end:
// a second, or longer so that there are at most maxSteps.
func Step(start, end time.Time) time.Duration {
	step := time.Second
	if d := end.Sub(start); d/maxSteps > step {
		step = (d/maxSteps + time.Second - 1).Truncate(time.Second)
	}
	return step
}

// Check evaluates the prom criterion c over the run's time range, from
// start to end: its query at every Step back from end (so that the last
// step is end itself), judged as c.Aggregate says. A query that fails or
// returns no number is a failed verdict whose Error says why.
func (c *Client) Check(ctx context.Context, crit report.Criterion, start, end time.Time) report.Verdict {
	if crit.Metric != report.PromMetric {
		return failed(crit, fmt.Errorf("criterion %q is not on a Prometheus query", crit.Text))
	}
	step := Step(start, end)
	first := end.Add(-end.Sub(start) / step * step)
	ss, err := c.QueryRange(ctx, crit.Query, first, end, step)
	if err != nil {
		return failed(crit, err)
	}
	return Judge(crit, ss)
}

// failed is the verdict of a criterion that could not be evaluated.
func failed(crit report.Criterion, err error) report.Verdict {
	return report.Verdict{Criterion: crit.Text, Error: err.Error(), Actual: "error: " + err.Error()}
}

// Judge judges crit by what its query returned: every value (every step
// of every series) must hold, or their average or largest (Aggregate avg,
// max). NaN values (nothing divided by nothing: no requests in a window)
// are left out; nothing left is an error (ErrNoData).
func Judge(crit report.Criterion, ss []Series) report.Verdict {
	var vals []Point
	nan := 0
	for _, s := range ss {
		for _, p := range s.Points {
			if math.IsNaN(p.V) {
				nan++
				continue
			}
			vals = append(vals, p)
		}
	}
	if len(vals) == 0 {
		if nan > 0 {
			return failed(crit, fmt.Errorf("%w but NaN (%d values: nothing in the windows to divide?)", ErrNoData, nan))
		}
		return failed(crit, fmt.Errorf("%w over the run's time range", ErrNoData))
	}
	of := fmt.Sprintf("%d steps", len(vals))
	if len(ss) > 1 {
		of = fmt.Sprintf("%d values of %d series", len(vals), len(ss))
	}
	v := report.Verdict{Criterion: crit.Text}
	switch crit.Aggregate {
	case "avg", "max":
		sum, top := 0.0, math.Inf(-1)
		for _, p := range vals {
			sum += p.V
			top = max(top, p.V)
		}
		v.Value = top
		if crit.Aggregate == "avg" {
			v.Value = sum / float64(len(vals))
		}
		v.Pass = crit.Holds(v.Value)
		v.Actual = fmt.Sprintf("%s %s of %s", crit.Aggregate, num(v.Value), of)
		return v
	case "":
	default:
		return failed(crit, errors.New("unknown aggregate "+strconv.Quote(crit.Aggregate)))
	}
	// Every value must hold: the verdict shows the worst, or the first
	// that fails and how many do.
	worst, fails := vals[0], 0
	var first *Point
	for i, p := range vals {
		if !crit.Holds(p.V) {
			fails++
			if first == nil {
				first = &vals[i]
			}
		}
		if (crit.Op == "<" || crit.Op == "<=") && p.V > worst.V || (crit.Op == ">" || crit.Op == ">=") && p.V < worst.V {
			worst = p
		}
	}
	if first != nil {
		if crit.Op != "==" {
			first = &worst
		}
		v.Value = first.V
		v.Actual = fmt.Sprintf("%s at %s: %d of %s fail", num(first.V), first.T.UTC().Format("15:04:05"), fails, of)
		return v
	}
	v.Value, v.Pass = worst.V, true
	v.Actual = fmt.Sprintf("worst %s of %s", num(worst.V), of)
	return v
}

func num(v float64) string { return strconv.FormatFloat(v, 'g', 4, 64) }
