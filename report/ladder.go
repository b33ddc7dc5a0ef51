package report

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// LadderPhase is one phase of a ladder run, as WriteLadder prints it.
type LadderPhase struct {
	N         int // the phase's number in the ladder, from 0
	Users     int
	SpawnRate float64
	RunTime   time.Duration
	Result    *Result
	// Passed says the phase ran to its end and met every criterion.
	Passed bool
}

// WriteLadder prints the phases run and their verdicts as a table, with
// each phase's run-wide p95 (long polls left out, as criteria leave them).
func WriteLadder(w io.Writer, phases []LadderPhase) {
	fmt.Fprintln(w, "\nladder")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "phase\tusers\tspawn/s\ttime\trequests\terror rate\tp95\tcriteria\tverdict")
	for _, p := range phases {
		p95 := "–"
		if ms, err := p.Result.RunLatency(0.95); err == nil {
			p95 = fmtMillis(ms)
		}
		verdict := "pass"
		if !p.Passed {
			verdict = "FAIL"
		}
		var texts []string
		for _, v := range p.Result.Criteria {
			mark := ""
			if !v.Pass {
				mark = " ✗"
			}
			texts = append(texts, v.Criterion+mark)
		}
		fmt.Fprintf(tw, "%d\t%d\t%g\t%s\t%d\t%.2f%%\t%s\t%s\t%s\n", p.N, p.Users, p.SpawnRate, p.RunTime, p.Result.Requests,
			100*float64(p.Result.Failures)/float64(max(p.Result.Requests, 1)), p95, strings.Join(texts, ", "), verdict)
	}
	_ = tw.Flush()
}

// RunLatency returns the run-wide latency quantile q (in [0, 1]) in
// milliseconds, long polls left out: what the criterion p95 checks.
func (r *Result) RunLatency(q float64) (float64, error) {
	var eps []EndpointStats
	for _, e := range r.Endpoints {
		if e.Kind != "long-poll" {
			eps = append(eps, e)
		}
	}
	if len(eps) == 0 {
		return 0, errors.New("no requests but long polls")
	}
	h, err := mergedLatency(eps)
	if err != nil {
		return 0, err
	}
	return float64(h.ValueAtQuantile(100*q)) / 1000, nil
}
