package report

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Comparing two builds. The question "is the candidate slower?" is asked of
// whole latency distributions, endpoint by endpoint, with the Mann-Whitney U
// test: it makes no assumption about the shape of the distributions (latency
// is skewed and often multi-modal, so a t-test's normality does not hold), it
// works on ranks, so a few huge outliers do not swamp it, and it can be
// computed straight from the histograms' bucket counts (equal buckets are
// ties), exactly, without the samples. With thousands of requests it finds
// even tiny shifts significant, so a change is flagged only when it is
// significant (p < 0.01) and its p95 moved by more than the allowed share
// (--max-regression, 10% by default), and, given a second baseline run, by
// more than the baseline's own run-to-run change.

// Change is one endpoint's (or the whole run's) comparison.
type Change struct {
	Name       string  `json:"name"`
	Profile    string  `json:"profile,omitempty"`
	BaseCount  int64   `json:"base_requests"`
	CandCount  int64   `json:"candidate_requests"`
	Base       Latency `json:"base_ms"`
	Cand       Latency `json:"candidate_ms"`
	P50Change  float64 `json:"p50_change"` // fractions: 0.12 is 12% slower
	P95Change  float64 `json:"p95_change"`
	P99Change  float64 `json:"p99_change"`
	BaseErrors float64 `json:"base_error_rate"`
	CandErrors float64 `json:"candidate_error_rate"`
	PValue     float64 `json:"p_value"`
	Noise      float64 `json:"noise,omitempty"` // the baseline's own p95 change, with --noise
	Verdict    string  `json:"verdict"`         // regression, improvement, no change, too few
}

// Comparison is the comparison of two results.
type Comparison struct {
	Verdict    string   `json:"verdict"`
	MaxRegress float64  `json:"max_regression"`
	Alpha      float64  `json:"alpha"`
	Warnings   []string `json:"warnings,omitempty"`
	Overall    Change   `json:"overall"`
	Endpoints  []Change `json:"endpoints"`
	BaseLabel  string   `json:"base_label,omitempty"`
	CandLabel  string   `json:"candidate_label,omitempty"`
	// Behaviour lists what the candidate answered differently (see
	// compareAnswers); AnswerTests is how many tests that took, Ignored
	// the paths left out.
	Behaviour   []Difference `json:"behaviour"`
	StatusTests int          `json:"status_tests"`
	AnswerTests int          `json:"answer_tests"`
	Ignored     []string     `json:"ignored,omitempty"`
	minRequests int64
}

// Verdicts.
const (
	Regression  = "regression"
	Improvement = "improvement"
	NoChange    = "no change"
	TooFew      = "too few requests"
)

// Compare compares candidate with base: latency and what they answered.
// maxRegression is the largest p95 slow-down that is not a regression (0.1
// for 10%); noise, when not nil, is a second run of the baseline; ignore
// lists JSON paths ($.updated_at) whose changes, and their sub-paths',
// are not reported.
func Compare(base, cand, noise *Result, maxRegression float64, ignore ...string) (*Comparison, error) {
	c := &Comparison{MaxRegress: maxRegression, Alpha: 0.01, BaseLabel: base.Label, CandLabel: cand.Label, minRequests: 20, Ignored: ignore,
		Behaviour: []Difference{}}
	for _, d := range base.Params.differences(&cand.Params, "trace", "users", "run_time", "scale", "pacing", "mix") {
		c.Warnings = append(c.Warnings, fmt.Sprintf("the runs differ in %s: %q and %q; the comparison may not be like for like", d[0], d[1], d[2]))
	}
	bh, err := endpointHists(base)
	if err != nil {
		return nil, fmt.Errorf("base: %w", err)
	}
	ch, err := endpointHists(cand)
	if err != nil {
		return nil, fmt.Errorf("candidate: %w", err)
	}
	var nh map[string]*epHist
	if noise != nil {
		if nh, err = endpointHists(noise); err != nil {
			return nil, fmt.Errorf("noise: %w", err)
		}
	}
	c.Verdict = NoChange
	keys := make([]string, 0, len(bh))
	for k := range bh {
		if ch[k] != nil {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	// One latency test per endpoint: each at alpha over their number
	// (Bonferroni), so that many endpoints do not make a false alarm
	// likely; the whole run's at alpha.
	each := c.Alpha / float64(max(len(keys), 1))
	for _, k := range keys {
		ch := c.change(bh[k], ch[k], nh[k], each)
		c.Endpoints = append(c.Endpoints, ch)
		switch {
		case ch.Verdict == Regression:
			c.Verdict = Regression
		case ch.Verdict == Improvement && c.Verdict == NoChange:
			c.Verdict = Improvement
		}
	}
	var only []string
	for k := range ch {
		if bh[k] == nil {
			only = append(only, k)
		}
	}
	slices.Sort(only) // the same words, in the same order, every time
	for _, k := range only {
		c.Warnings = append(c.Warnings, "only the candidate has "+k)
	}
	all := func(m map[string]*epHist) *epHist {
		if m == nil {
			return nil
		}
		a := &epHist{name: "all requests", h: newHist()}
		for _, e := range m {
			a.h.Merge(e.h)
			a.requests += e.requests
			a.failures += e.failures
		}
		return a
	}
	c.Overall = c.change(all(bh), all(ch), all(nh), c.Alpha)
	if c.Overall.Verdict == Regression {
		c.Verdict = Regression
	}
	if err := c.compareAnswers(base, cand, noise, ignore); err != nil {
		return nil, err
	}
	return c, nil
}

type epHist struct {
	name, profile      string
	requests, failures int64
	h                  *hdrhistogram.Histogram
}

func endpointHists(r *Result) (map[string]*epHist, error) {
	out := map[string]*epHist{}
	for _, e := range r.Endpoints {
		k := e.Name + " [" + e.Profile + "]"
		h := newHist()
		if err := mergeInto(h, e.Hist, e.Name); err != nil {
			return nil, err
		}
		out[k] = &epHist{name: e.Name, profile: e.Profile, requests: e.Requests, failures: e.Failures, h: h}
	}
	return out, nil
}

func rel(a, b float64) float64 {
	if a <= 0 {
		return 0
	}
	return (b - a) / a
}

func (c *Comparison) change(b, k, n *epHist, alpha float64) Change {
	ch := Change{Name: b.name, Profile: b.profile, BaseCount: b.requests, CandCount: k.requests,
		Base: latencyOf(b.h), Cand: latencyOf(k.h),
		BaseErrors: float64(b.failures) / float64(max(b.requests, 1)), CandErrors: float64(k.failures) / float64(max(k.requests, 1))}
	ch.P50Change, ch.P95Change, ch.P99Change = rel(ch.Base.P50Ms, ch.Cand.P50Ms), rel(ch.Base.P95Ms, ch.Cand.P95Ms), rel(ch.Base.P99Ms, ch.Cand.P99Ms)
	if n != nil {
		ch.Noise = math.Abs(rel(ch.Base.P95Ms, latencyOf(n.h).P95Ms))
	}
	if b.h.TotalCount() < c.minRequests || k.h.TotalCount() < c.minRequests {
		ch.Verdict, ch.PValue = TooFew, 1
		return ch
	}
	ch.PValue = MannWhitney(b.h, k.h)
	allowed := max(c.MaxRegress, ch.Noise)
	switch {
	case ch.PValue < alpha && ch.P95Change > allowed:
		ch.Verdict = Regression
	case ch.PValue < alpha && ch.P95Change < -allowed:
		ch.Verdict = Improvement
	default:
		ch.Verdict = NoChange
	}
	return ch
}

// MannWhitney returns the two-sided p-value of the Mann-Whitney U test of
// two histograms, taking values in one bucket as ties, with the normal
// approximation and its tie correction (fit for the hundreds or more of
// requests a load test has).
func MannWhitney(a, b *hdrhistogram.Histogram) float64 {
	type bucket struct {
		v      int64
		na, nb int64
	}
	counts := map[int64]*bucket{}
	for _, x := range []struct {
		h     *hdrhistogram.Histogram
		first bool
	}{{a, true}, {b, false}} {
		for _, bar := range x.h.Distribution() {
			if bar.Count == 0 {
				continue
			}
			k := bar.From // the same bucket in both: they share their layout
			bk := counts[k]
			if bk == nil {
				bk = &bucket{v: k}
				counts[k] = bk
			}
			if x.first {
				bk.na += bar.Count
			} else {
				bk.nb += bar.Count
			}
		}
	}
	bs := make([]*bucket, 0, len(counts))
	for _, bk := range counts {
		bs = append(bs, bk)
	}
	slices.SortFunc(bs, func(x, y *bucket) int { return int(min(max(x.v-y.v, -1), 1)) })
	n1, n2 := float64(a.TotalCount()), float64(b.TotalCount())
	if n1 == 0 || n2 == 0 {
		return 1
	}
	// Rank sum of a, ties at their mean rank.
	var rank, ra, ties float64
	for _, bk := range bs {
		t := float64(bk.na + bk.nb)
		mean := rank + (t+1)/2
		ra += float64(bk.na) * mean
		rank += t
		ties += t*t*t - t
	}
	u := ra - n1*(n1+1)/2
	mu := n1 * n2 / 2
	n := n1 + n2
	sigma := math.Sqrt(n1 * n2 / 12 * ((n + 1) - ties/(n*(n-1))))
	if sigma == 0 {
		return 1
	}
	z := (math.Abs(u-mu) - 0.5) / sigma
	return math.Erfc(max(z, 0) / math.Sqrt2)
}

func pct(f float64) string { return fmt.Sprintf("%+.1f%%", 100*f) }

// WriteText writes the comparison as a terminal table; markdown makes it
// a table to paste in a pull request. The answers' differences follow the
// latency's table, in a table of their own.
func (c *Comparison) WriteText(w io.Writer, markdown bool) {
	head := []string{"endpoint", "profile", "requests", "p50", "p95", "p99", "Δp95", "errors", "p", "verdict"}
	rows := [][]string{}
	for _, ch := range append([]Change{c.Overall}, c.Endpoints...) {
		rows = append(rows, []string{ch.Name, ch.Profile, fmt.Sprintf("%d → %d", ch.BaseCount, ch.CandCount),
			fmt.Sprintf("%s → %s", fmtMillis(ch.Base.P50Ms), fmtMillis(ch.Cand.P50Ms)),
			fmt.Sprintf("%s → %s", fmtMillis(ch.Base.P95Ms), fmtMillis(ch.Cand.P95Ms)),
			fmt.Sprintf("%s → %s", fmtMillis(ch.Base.P99Ms), fmtMillis(ch.Cand.P99Ms)),
			pct(ch.P95Change), fmt.Sprintf("%.2f%% → %.2f%%", 100*ch.BaseErrors, 100*ch.CandErrors),
			fmt.Sprintf("%.3g", ch.PValue), ch.Verdict})
	}
	title := fmt.Sprintf("verdict: %s (a significant p95 change beyond %s, Mann-Whitney U, p < %g, over the number of endpoints for each; a field gone from answers or more failures, significantly)",
		strings.ToUpper(c.Verdict), pct(c.MaxRegress), c.Alpha)
	tests := fmt.Sprintf("%d tests of statuses (each p < %g/%d) and %d of answers (each p < %g/%d)",
		c.StatusTests, c.Alpha, max(c.StatusTests, 1), c.AnswerTests, c.Alpha, max(c.AnswerTests, 1))
	answers := fmt.Sprintf("answers: %d difference(s) in %s", len(c.Behaviour), tests)
	if len(c.Behaviour) == 0 {
		answers = "answers: no difference in " + tests
	}
	if len(c.Ignored) > 0 {
		answers += "; ignored: " + strings.Join(c.Ignored, ", ")
	}
	bhead := []string{"endpoint", "profile", "what", "detail", "base", "candidate", "p", "verdict"}
	var brows [][]string
	for _, d := range c.Behaviour {
		name := d.Name
		if d.Kind != "http" {
			name = d.Kind + " " + d.Name
		}
		brows = append(brows, []string{name, d.Profile, d.What, d.Detail, d.Base, d.Cand, fmt.Sprintf("%.3g", d.PValue), d.Verdict})
	}
	if markdown {
		fmt.Fprintf(w, "**thrive compare**: %s\n\n", title)
		writeMarkdownTable(w, head, rows)
		fmt.Fprintf(w, "\n**%s**\n", answers)
		if len(brows) > 0 {
			fmt.Fprintln(w)
			writeMarkdownTable(w, bhead, brows)
		}
		for _, warn := range c.Warnings {
			fmt.Fprintf(w, "\n> warning: %s\n", warn)
		}
		return
	}
	writeColumns(w, head, rows)
	fmt.Fprintln(w, answers)
	if len(brows) > 0 {
		writeColumns(w, bhead, brows)
	}
	for _, warn := range c.Warnings {
		fmt.Fprintf(w, "warning: %s\n", warn)
	}
	fmt.Fprintln(w, title)
}

// writeMarkdownTable writes rows under head as a markdown table.
func writeMarkdownTable(w io.Writer, head []string, rows [][]string) {
	fmt.Fprintln(w, "| "+strings.Join(head, " | ")+" |")
	fmt.Fprintln(w, "|"+strings.Repeat(" --- |", len(head)))
	for _, r := range rows {
		cells := make([]string, len(r))
		for i, c := range r {
			cells[i] = strings.ReplaceAll(c, "|", `\|`)
		}
		fmt.Fprintln(w, "| "+strings.Join(cells, " | ")+" |")
	}
}

// writeColumns writes rows under head in aligned columns.
func writeColumns(w io.Writer, head []string, rows [][]string) {
	widths := make([]int, len(head))
	for i, h := range head {
		widths[i] = len([]rune(h))
	}
	for _, r := range rows {
		for i, cell := range r {
			widths[i] = max(widths[i], len([]rune(cell)))
		}
	}
	line := func(cells []string) {
		var b strings.Builder
		for i, cell := range cells {
			fmt.Fprintf(&b, "%-*s  ", widths[i], cell)
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
	line(head)
	for _, r := range rows {
		line(r)
	}
}
