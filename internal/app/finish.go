package app

import (
	"errors"
	"fmt"
	"io"

	"github.com/thrive-loadtest/thrive/internal/hint"
	"github.com/thrive-loadtest/thrive/report"
)

// Finish is what is done with a result once its run, or the merge of its
// shards, is over: its criteria checked, its summary printed with hints,
// its files written, and it compared with a baseline. Replay, the ladder's
// phases, merge and the demo all end so.
type Finish struct {
	Criteria []report.Criterion
	// Prometheus, when not "", is the URL of the Prometheus that the
	// prom criteria ask (over the run's time range).
	Prometheus string
	// Files are written when the run is over.
	Files report.Files
	// Baseline, when set, is a result file the run is compared with at
	// the end (report.Compare, a p95 more than 10% slower a regression).
	Baseline string
	// Out takes the summary and the criteria, Warn the warnings.
	Out, Warn io.Writer
}

// Result checks res's criteria, prints its summary, then what notes
// writes (nil: nothing), the hints the figures call for, and the criteria;
// writes the files and warns of a generator that was the bottleneck. It
// returns, first that applies: a file that could not be written, runErr
// (what stopped or spoiled the run), a regression against the baseline,
// or the failed criteria (a report.Failure).
func (f *Finish) Result(res *report.Result, runErr error, notes func(io.Writer)) error {
	res.Criteria = report.CheckAll(f.Criteria, res)
	f.checkPromCriteria(res)
	report.WriteSummary(f.Out, res)
	if notes != nil {
		notes(f.Out)
	}
	for _, h := range resultHints(res) {
		writeHint(f.Out, h)
	}
	report.WriteCriteria(f.Out, res.Criteria)
	if err := f.Files.Write(f.Out, res); err != nil {
		return err
	}
	if w := res.LagWarning(); w != "" {
		writeWarning(f.Warn, w, lagHint)
	}
	if runErr != nil {
		return runErr
	}
	if f.Baseline != "" {
		if err := f.compare(res); err != nil {
			return err
		}
	}
	return res.Criteria.Err()
}

// compare prints how res compares with the baseline, and returns the
// regression it finds.
func (f *Finish) compare(res *report.Result) error {
	base, err := report.ReadFile(f.Baseline)
	if err != nil {
		return err
	}
	fmt.Fprintf(f.Out, "\ncompared with %s:\n", f.Baseline)
	c, err := report.Compare(base, res, nil, 0.1)
	if err != nil {
		return err
	}
	c.WriteText(f.Out, false)
	return c.Failed()
}

// Merge combines the result files of a run's shards (report.Merger) into
// Files.JSON and finishes the merged result. A set that is not the shards
// of one whole run is a SetupError saying what is missing or differs.
func (f *Finish) Merge(m *report.Merger, paths []string) error {
	res, err := m.MergeFiles(paths)
	if mm, ok := errors.AsType[*report.Mismatch](err); ok {
		return &SetupError{hint.With(fmt.Errorf("not the shards of one whole run: %w", mm), partialHint)}
	}
	if err != nil {
		return err
	}
	f.Baseline = ""
	fmt.Fprintf(f.Out, "merged %d results\n", len(paths))
	return f.Result(res, nil, nil)
}
