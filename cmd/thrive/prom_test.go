package main

import (
	"context"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thrive-loadtest/thrive/internal/promtest"
	"github.com/thrive-loadtest/thrive/report/prom"
)

// value returns the single value of an instant query at now; false when
// it returned no series.
func value(t *testing.T, c *prom.Client, query string) (float64, bool) {
	t.Helper()
	ss, err := c.Query(context.Background(), query, time.Now())
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	if len(ss) == 0 || len(ss[0].Points) == 0 {
		return 0, false
	}
	if len(ss) > 1 {
		t.Fatalf("%s: %d series, want one", query, len(ss))
	}
	return ss[0].Points[0].V, true
}

// TestPrometheusCriteria: a replay against the demo backend, with a real
// Prometheus scraping the backend and thrive's own exporter every second,
// judges its prom: criteria by what Prometheus holds over the run: one
// that holds, one that fails, one whose query returns nothing and one
// whose query is not PromQL (errors, never passes); the exit code and the
// result file say so. What Prometheus scraped from the exporter adds up
// to the result file's counts.
func TestPrometheusCriteria(t *testing.T) {
	backend := serveInBackground(t, "--latency-scale", "0", "--rate-limit", "0")
	trace := filepath.Join(t.TempDir(), "d.thrv")
	if code, _, errOut := thrive(t, "demo", "--sessions", "20", "--time-scale", "1000", "--out", trace, "--users", "5", "--run-time", "1s"); code != exitOK {
		t.Fatalf("demo: %s", errOut)
	}
	u, err := url.Parse(backend)
	if err != nil {
		t.Fatal(err)
	}
	metrics := promtest.FreeAddr(t)
	c, base := promtest.Start(t, map[string]string{"demo": u.Host, "thrive": metrics})
	// The backend is scraped before the run starts, so that rates over
	// the run have a sample before it.
	promtest.Until(t, 30*time.Second, "a scrape of the demo backend", func() bool {
		v, ok := value(t, c, `up{job="demo"}`)
		return ok && v == 1
	})

	out := filepath.Join(t.TempDir(), "r.json")
	criteria := []string{
		"prom:histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket[1m]))) < 5",
		"prom:max:sum(thrive_requests_total) < 1",
		"prom:sum(thrive_no_such_metric) < 1",
		"prom:avg:sum(rate(http_requests_total[1m]) < 1",
	}
	args := []string{"replay", trace, "--target", backend, "--users", "5", "--run-time", "3s", "--scale-time",
		"--metrics-listen", metrics, "--prometheus", base, "--out", out, "--quiet"}
	for _, cr := range criteria {
		args = append(args, "--threshold", cr)
	}
	code, stdout, errOut := thrive(t, args...)
	if code != exitCriteria || !strings.Contains(stdout, "verdict: FAIL (3 of 4 criteria failed)") || !strings.Contains(stdout, "FAIL (error)") {
		t.Fatalf("exit %d, want %d: %s\n%s", code, exitCriteria, errOut, stdout)
	}
	res := readResult(t, out)
	if len(res.Criteria) != len(criteria) {
		t.Fatalf("criteria in the result: %+v", res.Criteria)
	}
	for i, tc := range []struct {
		name  string
		pass  bool
		error string
	}{
		{"holds", true, ""},
		{"fails", false, ""},
		{"returns nothing", false, "the query returned nothing"},
		{"not PromQL", false, "bad_data"},
	} {
		v := res.Criteria[i]
		if v.Criterion != criteria[i] || v.Pass != tc.pass || (tc.error == "") != (v.Error == "") || !strings.Contains(v.Error, tc.error) {
			t.Errorf("%s: %+v, want pass %v and an error saying %q", tc.name, v, tc.pass, tc.error)
		}
	}
	if v := res.Criteria[1]; v.Value < 1 || float64(res.Requests) < v.Value {
		t.Errorf("the most requests Prometheus saw thrive count: %g, of the run's %d", v.Value, res.Requests)
	}

	// thrive waited for a scrape of its exporter past the run's end: the
	// counters Prometheus keeps are the result file's.
	for _, tc := range []struct {
		query string
		want  int64
	}{
		{`sum(max_over_time(thrive_requests_total[1m]))`, res.Requests},
		{`sum(max_over_time(thrive_failures_total[1m]))`, res.Failures},
		{`sum(max_over_time(thrive_websocket_frames_total{direction="sent"}[1m]))`, res.WebSocket.FramesSent},
		{`sum(max_over_time(thrive_request_duration_seconds_count[1m]))`, res.Requests},
		{`count(count by (run, shard) (max_over_time(thrive_requests_total[1m])))`, 1},
	} {
		if v, ok := value(t, c, tc.query); !ok || v != float64(tc.want) {
			t.Errorf("%s = %g (%v), want %d", tc.query, v, ok, tc.want)
		}
	}
	if res.Requests == 0 || res.WebSocket.FramesSent == 0 {
		t.Errorf("a run of %d requests and %d frames sent: want both", res.Requests, res.WebSocket.FramesSent)
	}
	checkDashboard(t, c)

	// A ladder's phases take prom: criteria too, each over its own run.
	code, stdout, errOut = thrive(t, "replay", trace, "--target", backend, "--ladder", "--ladder-time", "0.02", "--max-users", "100", "--scale-time",
		"--metrics-listen", metrics, "--prometheus", base, "--out", out, "--quiet", "--threshold", criteria[1])
	if code != exitCriteria || !strings.Contains(errOut, "ladder phase 0 failed") || !strings.Contains(stdout, criteria[1]+" ✗") {
		t.Fatalf("ladder: exit %d, want %d: %s\n%s", code, exitCriteria, errOut, stdout)
	}
	phase := readResult(t, strings.TrimSuffix(out, ".json")+".phase0.json")
	if v := phase.Criteria[len(phase.Criteria)-1]; v.Criterion != criteria[1] || v.Pass || v.Error != "" || v.Value < 1 || v.Value > float64(phase.Requests) {
		t.Errorf("the phase's prom criterion: %+v, of a phase of %d requests", v, phase.Requests)
	}
}

// checkDashboard holds deploy/grafana/thrive.json to what Prometheus has
// after a run: every query of it is PromQL, and every panel draws
// something (its metric names are those thrive and the demo backend
// export).
func checkDashboard(t *testing.T, c *prom.Client) {
	b, err := os.ReadFile(filepath.Join("..", "..", "deploy", "grafana", "thrive.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Type, Title string
			Targets     []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("thrive.json: %v", err)
	}
	vars := strings.NewReplacer("$__rate_interval", "1m", "$run", ".*", "$shard", ".*")
	panels := 0
	for _, p := range dash.Panels {
		if p.Type == "row" {
			continue
		}
		panels++
		drawn := false
		for _, tg := range p.Targets {
			ss, err := c.Query(context.Background(), vars.Replace(tg.Expr), time.Now())
			if err != nil {
				t.Errorf("panel %q: %s: %v", p.Title, tg.Expr, err)
			}
			drawn = drawn || len(ss) > 0
		}
		if !drawn {
			t.Errorf("panel %q: none of its queries returns anything after a run", p.Title)
		}
	}
	if panels < 8 {
		t.Errorf("thrive.json: %d panels", panels)
	}
}
