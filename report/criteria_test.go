package report

import (
	"math"
	"strings"
	"testing"
	"time"
)

// knownResult records a known distribution: 1,000 requests to GET /a in
// the browse profile taking 1, 2, … 1,000 ms, of which every 100th fails
// with a 503, and 10 to GET /b in the chat profile taking 5 s, answered 429.
func knownResult() *Result {
	start := time.Unix(1_800_000_000, 0)
	r := NewRecorder(start)
	for i := 1; i <= 1000; i++ {
		s := Sample{Kind: HTTP, Profile: "browse", Endpoint: "GET /a", Status: 200, Intended: start, Sent: start, Done: time.Duration(i) * time.Millisecond}
		if i%100 == 0 {
			s.Status = 503
		}
		r.Observe(&s)
	}
	for range 10 {
		r.Observe(&Sample{Kind: HTTP, Profile: "chat", Endpoint: "GET /b", Status: 429, Intended: start, Sent: start, Done: 5 * time.Second})
	}
	return r.Result("http://t", "", start.Add(10*time.Second), RunParams{})
}

func TestPercentilesOfAKnownDistribution(t *testing.T) {
	res := knownResult()
	var a EndpointStats
	for _, e := range res.Endpoints {
		if e.Name == "GET /a" {
			a = e
		}
	}
	// HDR histograms at 3 significant digits: within 0.1%.
	for _, tc := range []struct {
		got, want float64
	}{{a.Latency.P50Ms, 500}, {a.Latency.P90Ms, 900}, {a.Latency.P95Ms, 950}, {a.Latency.P99Ms, 990}, {a.Latency.MaxMs, 1000}} {
		if math.Abs(tc.got-tc.want) > tc.want/1000 {
			t.Errorf("quantile %.1f ms, want %.0f ms", tc.got, tc.want)
		}
	}
}

func TestCriteria(t *testing.T) {
	res := knownResult()
	for _, tc := range []struct {
		expr   string
		pass   bool
		actual string
	}{
		{"p95<1s", true, ""},    // all 1,010: p95 is 960 ms
		{"p99 < 1s", false, ""}, // the 5 s answers of GET /b
		{"GET /a:p99<=991ms", true, ""},
		{"GET /a:max<1000", false, "1.00 s"},
		{"browse:p50<501", true, ""},
		{"error_rate<1%", true, "0.99% (10 of 1010)"}, // the 503s; 429s are counted apart
		{"GET /a:error_rate<=0.01", true, ""},
		{"status_429>0", true, "10"},
		{"status_5xx==10", true, "10"},
		{"chat:requests>=10", true, "10"},
		{"rps>100", true, "101.0/s"},
		{"GET /nope:p95<1s", false, "no such endpoint or profile in the run"},
	} {
		c, err := ParseCriterion(tc.expr)
		if err != nil {
			t.Fatalf("%s: %v", tc.expr, err)
		}
		v := c.Check(res)
		if v.Pass != tc.pass || (tc.actual != "" && v.Actual != tc.actual) {
			t.Errorf("%s: pass %v (%s), want %v %s", tc.expr, v.Pass, v.Actual, tc.pass, tc.actual)
		}
	}
	for _, tc := range []struct{ name, in, want string }{
		{"no operator", "p95", "want [SCOPE:]METRIC OP VALUE"},
		{"no value", "p95<", "want an operator (<, <=, >, >=, ==) and a value"},
		{"unknown metric", "latency<1s", `unknown metric "latency"`},
		{"latency not a duration", "p95<fast", `value "fast": want a duration such as 1s or 250ms`},
		{"share not a number", "error_rate<a%", `value "a%": want a share such as 1% or 0.01`},
		{"count not a number", "requests>many", `value "many": want a number`},
		{"unknown status", "status_999>0", `unknown metric "status_999"`},
		{"no metric", "<1s", "want [SCOPE:]METRIC OP VALUE"},
		{"unknown operator", "p95~1s", "want [SCOPE:]METRIC OP VALUE"},
	} {
		// The error quotes the criterion, and says what is wrong with it.
		if _, err := ParseCriterion(tc.in); err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.in) {
			t.Errorf("%s: ParseCriterion(%q) = %v, want an error quoting it and saying %q", tc.name, tc.in, err, tc.want)
		}
	}
}

// TestFailedJudgesStatusesAgainstTheRecording: what counts as a failure.
func TestFailedJudgesStatusesAgainstTheRecording(t *testing.T) {
	for _, tc := range []struct {
		name       string
		s          Sample
		fail, asRe bool
	}{
		{"200", Sample{Kind: HTTP, Status: 200, Expected: 200}, false, false},
		{"404 recorded as 404", Sample{Kind: HTTP, Status: 404, Expected: 404}, false, true},
		{"404 recorded as 403", Sample{Kind: HTTP, Status: 404, Expected: 403}, false, true},
		{"404 recorded as 200", Sample{Kind: HTTP, Status: 404, Expected: 200}, true, false},
		{"404 strict", Sample{Kind: HTTP, Status: 404}, true, false},
		{"500 recorded as 500", Sample{Kind: HTTP, Status: 500, Expected: 500}, true, false},
		{"429", Sample{Kind: HTTP, Status: 429, Expected: 200}, false, false},
		{"transport error", Sample{Kind: HTTP, Err: ErrReset, Expected: 404}, true, false},
		{"websocket switched", Sample{Kind: WSConnect, Status: 101, Expected: 101}, false, false},
		{"websocket answered 200", Sample{Kind: WSConnect, Status: 200, Expected: 101}, true, false},
		{"websocket answered 302", Sample{Kind: WSConnect, Status: 302, Expected: 101}, true, false},
		{"websocket shed", Sample{Kind: WSConnect, Status: 429, Expected: 101}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.s.Failed(); got != tc.fail {
				t.Errorf("Failed() = %v, want %v", got, tc.fail)
			}
			if got := tc.s.AsRecorded(); got != tc.asRe {
				t.Errorf("AsRecorded() = %v, want %v", got, tc.asRe)
			}
		})
	}
}

// TestCriterionScopedByOperation: an operation's name scopes a criterion
// to the endpoint that carries it, as its whole name does.
func TestCriterionScopedByOperation(t *testing.T) {
	start := time.Now()
	r := NewRecorder(start)
	for i, ep := range []string{"POST /graphql Checkout", "POST /graphql Product", "POST /graphql Product"} {
		r.Observe(&Sample{Kind: HTTP, Endpoint: ep, Status: 200, Expected: 200, Intended: start, Sent: start, Done: time.Duration(100*(i+1)) * time.Millisecond})
	}
	res := r.Result("http://x", "", start.Add(time.Second), RunParams{})
	for _, tc := range []struct {
		criterion string
		requests  string
	}{{"Checkout:requests>0", "1"}, {"POST /graphql Product:requests>0", "2"}, {"Order:requests>0", "no such endpoint or profile in the run"}} {
		c, err := ParseCriterion(tc.criterion)
		if err != nil {
			t.Fatal(err)
		}
		if v := c.Check(res); v.Actual != tc.requests {
			t.Errorf("%s: %s, want %s", tc.criterion, v.Actual, tc.requests)
		}
	}
}

// TestLongPollsKeepTheirWaitApart: a long poll's wait does not make the
// run's p95; scoped to its kind, it is there.
func TestLongPollsKeepTheirWaitApart(t *testing.T) {
	start := time.Now()
	r := NewRecorder(start)
	for range 10 {
		r.Observe(&Sample{Kind: HTTP, Endpoint: "GET /api/items", Status: 200, Intended: start, Sent: start, Done: 5 * time.Millisecond})
		r.Observe(&Sample{Kind: LongPoll, Endpoint: "GET /api/feed", Status: 200, Intended: start, Sent: start, Done: 25 * time.Second})
	}
	res := r.Result("http://x", "", start.Add(time.Second), RunParams{})
	for _, tc := range []struct{ criterion, actual string }{
		{"p95<1s", "5.0 ms"}, {"long-poll:p95>20s", "25.00 s"}, {"error_rate<1%", "0.00% (0 of 20)"},
	} {
		c, err := ParseCriterion(tc.criterion)
		if err != nil {
			t.Fatal(err)
		}
		if v := c.Check(res); v.Actual != tc.actual || !v.Pass {
			t.Errorf("%s: %s (pass %v), want %s", tc.criterion, v.Actual, v.Pass, tc.actual)
		}
	}
}

// TestParsePromCriterion: a prom criterion's query is everything before
// its last comparison, whatever colons, comparisons and label matchers
// the query holds itself.
func TestParsePromCriterion(t *testing.T) {
	for _, tc := range []struct {
		name, in, query, agg, op string
		value                    float64
	}{
		{"quantile", "prom:histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket[1m]))) < 0.1",
			"histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket[1m])))", "", "<", 0.1},
		{"max", "prom:max:websocket_connections<=1000", "websocket_connections", "max", "<=", 1000},
		{"avg", "prom: avg: sum(rate(http_requests_total{code!~\"2..\"}[1m])) >= 0", `sum(rate(http_requests_total{code!~"2.."}[1m]))`, "avg", ">=", 0},
		{"recording rule and subquery", "prom:max_over_time(job:requests:rate1m[5m:30s]) > 2", "max_over_time(job:requests:rate1m[5m:30s])", "", ">", 2},
		{"a comparison in the query", "prom:(up == bool 1) == 1", "(up == bool 1)", "", "==", 1},
		{"negative", "prom:deriv(queue_depth[1m]) > -0.5", "deriv(queue_depth[1m])", "", ">", -0.5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseCriterion(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if c.Metric != PromMetric || c.Query != tc.query || c.Aggregate != tc.agg || c.Op != tc.op || c.Value != tc.value {
				t.Errorf("got metric %q query %q aggregate %q op %q value %g, want prom %q %q %q %g", c.Metric, c.Query, c.Aggregate, c.Op, c.Value, tc.query, tc.agg, tc.op, tc.value)
			}
		})
	}
	for _, tc := range []struct{ name, in, want string }{
		{"no comparison", "prom:up", "want prom:[avg:|max:]QUERY OP NUMBER"},
		{"no query", "prom:max: < 1", "want prom:[avg:|max:]QUERY OP NUMBER"},
		{"not a number", "prom:up < one", `value "one": want a number`},
	} {
		if _, err := ParseCriterion(tc.in); err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.in) {
			t.Errorf("%s: ParseCriterion(%q) = %v, want an error quoting it and saying %q", tc.name, tc.in, err, tc.want)
		}
	}
	// A Result alone cannot check it: a failure that says so, not a pass.
	c, _ := ParseCriterion("prom:up > 0")
	if v := c.Check(knownResult()); v.Pass || v.Error == "" {
		t.Errorf("prom criterion checked without a Prometheus: %+v, want an error", v)
	}
}
