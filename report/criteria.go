package report

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Criterion is one success criterion of a run, as written on the command
// line: [SCOPE:]METRIC OP VALUE, where
//
//   - SCOPE is an endpoint as reports name it ("GET /api/projects/{id}/"),
//     a profile ("browse") or a kind (http, ws-connect, ws-reply); the
//     whole run without one;
//   - METRIC is p50, p90, p95, p99 or max (latency from when each request
//     was due), error_rate, requests, rps, or status_CODE / status_Nxx
//     (how many answers had that status);
//   - OP is <, <=, >, >= or ==;
//   - VALUE is a duration for latencies (1s, 500ms; a bare number is ms), a
//     percentage or a fraction for error_rate (1%, 0.01), a number else.
//
// A criterion on the backend's own metrics is written
// prom:[avg:|max:]QUERY OP NUMBER: a PromQL query that a Prometheus
// evaluates over the run's time range (see Criterion.Holds). Its Metric is
// "prom"; a Result alone cannot check it.
type Criterion struct {
	Text   string
	Scope  string
	Metric string
	Op     string
	Value  float64 // ms for latencies, a fraction for error_rate
	// Query is the PromQL query of a prom criterion; Aggregate is how
	// its values are made one: "" (every value must hold), "avg" or "max".
	Query     string
	Aggregate string
}

// PromMetric is the Metric of a criterion on a Prometheus query.
const PromMetric = "prom"

// ParseCriterion reads a criterion.
func ParseCriterion(s string) (Criterion, error) {
	c := Criterion{Text: strings.TrimSpace(s)}
	if q, ok := strings.CutPrefix(c.Text, PromMetric+":"); ok {
		return parsePromCriterion(c, q)
	}
	body := c.Text
	if i := strings.LastIndex(body, ":"); i >= 0 {
		c.Scope, body = strings.TrimSpace(body[:i]), body[i+1:]
	}
	opAt := strings.IndexAny(body, "<>=")
	if opAt <= 0 {
		return c, fmt.Errorf("criterion %q: want [SCOPE:]METRIC OP VALUE, as p95<1s or error_rate<1%%", s)
	}
	c.Metric = strings.ToLower(strings.TrimSpace(body[:opAt]))
	rest := body[opAt:]
	for _, op := range []string{"<=", ">=", "==", "<", ">"} {
		if strings.HasPrefix(rest, op) {
			c.Op, rest = op, strings.TrimSpace(rest[len(op):])
			break
		}
	}
	if c.Op == "" || rest == "" {
		return c, fmt.Errorf("criterion %q: want an operator (<, <=, >, >=, ==) and a value", s)
	}
	var err error
	switch {
	case latencyMetric(c.Metric):
		c.Value, err = parseMillis(rest)
	case c.Metric == "error_rate":
		c.Value, err = parseFraction(rest)
	case c.Metric == "requests", c.Metric == "rps", statusMetric(c.Metric):
		if c.Value, err = strconv.ParseFloat(rest, 64); err != nil {
			err = errors.New("want a number")
		}
	default:
		return c, fmt.Errorf("criterion %q: unknown metric %q (p50, p90, p95, p99, max, error_rate, requests, rps, status_429, status_5xx)", s, c.Metric)
	}
	if err != nil {
		return c, fmt.Errorf("criterion %q: value %q: %w", s, rest, err)
	}
	if math.IsNaN(c.Value) || math.IsInf(c.Value, 0) || c.Value < 0 {
		return c, fmt.Errorf("criterion %q: value %q: want a number of 0 or more", s, rest)
	}
	if c.Metric == "error_rate" && c.Value > 1 {
		return c, fmt.Errorf("criterion %q: an error rate of %s is past 100%%", s, rest)
	}
	return c, nil
}

func latencyMetric(m string) bool {
	return slices.Contains([]string{"p50", "p90", "p95", "p99", "max"}, m)
}

func statusMetric(m string) bool {
	code, ok := strings.CutPrefix(m, "status_")
	if !ok || len(code) != 3 || code[0] < '1' || code[0] > '5' {
		return false
	}
	if code[1:] == "xx" {
		return true
	}
	_, err := strconv.Atoi(code)
	return err == nil
}

func parseMillis(s string) (float64, error) {
	if v, err := strconv.ParseFloat(s, 64); err == nil {
		return v, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, errors.New("want a duration such as 1s or 250ms")
	}
	return float64(d) / float64(time.Millisecond), nil
}

func parseFraction(s string) (float64, error) {
	p, percent := strings.CutSuffix(s, "%")
	v, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
	if err != nil {
		return 0, errors.New("want a share such as 1% or 0.01")
	}
	if percent {
		v /= 100
	}
	return v, nil
}

// promComparison is a prom criterion's comparison: the last operator of
// the text, and the number after it (a query may compare values itself).
var promComparison = regexp.MustCompile(`^(?s)(.+?)(<=|>=|==|<|>)\s*([^<>=\s]+)\s*$`)

// parsePromCriterion reads the rest of a prom criterion, after "prom:".
func parsePromCriterion(c Criterion, rest string) (Criterion, error) {
	c.Metric = PromMetric
	for _, agg := range []string{"avg", "max"} {
		if q, ok := strings.CutPrefix(strings.TrimSpace(rest), agg+":"); ok {
			c.Aggregate, rest = agg, q
			break
		}
	}
	m := promComparison.FindStringSubmatch(rest)
	if m == nil || strings.TrimSpace(m[1]) == "" {
		return c, fmt.Errorf("criterion %q: want prom:[avg:|max:]QUERY OP NUMBER, as prom:max:websocket_connections < 1000", c.Text)
	}
	c.Query, c.Op = strings.TrimSpace(m[1]), m[2]
	v, err := strconv.ParseFloat(m[3], 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return c, fmt.Errorf("criterion %q: value %q: want a number", c.Text, m[3])
	}
	c.Value = v
	return c, nil
}

// Holds reports whether v meets c's comparison.
func (c Criterion) Holds(v float64) bool {
	switch c.Op {
	case "<":
		return v < c.Value
	case "<=":
		return v <= c.Value
	case ">":
		return v > c.Value
	case ">=":
		return v >= c.Value
	case "==":
		return v == c.Value
	}
	return false
}

// Verdict is a criterion checked against a result.
type Verdict struct {
	Criterion string  `json:"criterion"`
	Actual    string  `json:"actual"`
	Value     float64 `json:"value"`
	Pass      bool    `json:"pass"`
	// Error, when set, says why the criterion could not be evaluated (a
	// query that failed or returned nothing): a failure, never a pass.
	Error string `json:"error,omitempty"`
}

// operation returns the operation an endpoint's name ends with (Checkout of
// POST /graphql Checkout), or "".
func operation(name string) string {
	parts := strings.SplitN(name, " ", 3)
	if len(parts) < 3 {
		return ""
	}
	return parts[2]
}

// Check evaluates c on res. A scope that names no endpoint or profile of
// the run fails, saying so; so does a prom criterion, which needs a
// Prometheus to ask.
func (c Criterion) Check(res *Result) Verdict {
	v := Verdict{Criterion: c.Text}
	if c.Metric == PromMetric {
		v.Error = "not evaluated: no Prometheus to ask"
		v.Actual = "error: " + v.Error
		return v
	}
	var eps []EndpointStats
	for _, e := range res.Endpoints {
		if c.Scope == "" && e.Kind == "long-poll" && latencyMetric(c.Metric) {
			continue // a long poll's latency is its wait, by design
		}
		if c.Scope == "" || e.Name == c.Scope || e.Profile == c.Scope || e.Kind == c.Scope || operation(e.Name) == c.Scope {
			eps = append(eps, e)
		}
	}
	if len(eps) == 0 {
		v.Actual = "no such endpoint or profile in the run"
		return v
	}
	var requests, failures int64
	for _, e := range eps {
		requests += e.Requests
		failures += e.Failures
	}
	switch {
	case latencyMetric(c.Metric):
		h, err := mergedLatency(eps)
		if err != nil {
			v.Actual = err.Error()
			return v
		}
		if c.Metric == "max" {
			v.Value = float64(h.Max()) / 1000
		} else {
			q, _ := strconv.ParseFloat(c.Metric[1:], 64)
			v.Value = float64(h.ValueAtQuantile(q)) / 1000
		}
		v.Actual = fmtMillis(v.Value)
	case c.Metric == "error_rate":
		v.Value = float64(failures) / float64(max(requests, 1))
		v.Actual = fmt.Sprintf("%.2f%% (%d of %d)", 100*v.Value, failures, requests)
	case c.Metric == "requests":
		v.Value = float64(requests)
		v.Actual = strconv.FormatInt(requests, 10)
	case c.Metric == "rps":
		v.Value = float64(requests) / max(res.End.Sub(res.Start).Seconds(), 1e-9)
		v.Actual = fmt.Sprintf("%.1f/s", v.Value)
	default:
		code := strings.TrimPrefix(c.Metric, "status_")
		var n int64
		for _, e := range eps {
			for s, k := range e.StatusCodes {
				if s == code || (strings.HasSuffix(code, "xx") && len(s) == 3 && s[0] == code[0]) {
					n += k
				}
			}
		}
		v.Value = float64(n)
		v.Actual = strconv.FormatInt(n, 10)
	}
	v.Pass = c.Holds(v.Value)
	return v
}

// mergedLatency adds up the latency histograms of endpoints, exactly.
func mergedLatency(eps []EndpointStats) (*hdrhistogram.Histogram, error) {
	all := newHist()
	for i := range eps {
		h, err := eps[i].latencyHist()
		if err != nil {
			return nil, err
		}
		all.Merge(h)
	}
	return all, nil
}

func fmtMillis(ms float64) string {
	if ms >= 1000 {
		return strconv.FormatFloat(ms/1000, 'f', 2, 64) + " s"
	}
	return strconv.FormatFloat(ms, 'f', 1, 64) + " ms"
}

// Verdicts are a run's criteria checked (CheckAll).
type Verdicts []Verdict

// CheckAll evaluates every criterion of cs on res.
func CheckAll(cs []Criterion, res *Result) Verdicts {
	out := make(Verdicts, 0, len(cs))
	for _, c := range cs {
		out = append(out, c.Check(res))
	}
	return out
}

// Failed returns how many of the verdicts failed.
func (vs Verdicts) Failed() int {
	n := 0
	for _, v := range vs {
		if !v.Pass {
			n++
		}
	}
	return n
}

// Err returns a Failure that counts the verdicts that failed, or nil when
// none did.
func (vs Verdicts) Err() error {
	if n := vs.Failed(); n > 0 {
		return &Failure{fmt.Sprintf("%d of %d criteria failed", n, len(vs))}
	}
	return nil
}
