package app_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/thrive-loadtest/thrive/internal/app"
	"github.com/thrive-loadtest/thrive/internal/promtest"
	"github.com/thrive-loadtest/thrive/report/live"
	"github.com/thrive-loadtest/thrive/scheduler"
)

// scrapeCounts scrapes the exporter at addr as Prometheus does and
// returns thrive_requests_total by "endpoint profile code", the sum of
// the latency histograms' counts, and each series' run and shard.
func scrapeCounts(t *testing.T, addr string) (requests map[string]float64, latencyCount uint64, runs map[[2]string]bool) {
	t.Helper()
	requests, runs = map[string]float64{}, map[[2]string]bool{}
	mfs := promtest.Scrape(t, addr)
	for _, m := range mfs["thrive_requests_total"].GetMetric() {
		l := promtest.Labels(m)
		requests[l["endpoint"]+" "+l["profile"]+" "+l["code"]] += m.GetCounter().GetValue()
		runs[[2]string{l["run"], l["shard"]}] = true
	}
	for _, m := range mfs["thrive_request_duration_seconds"].GetMetric() {
		latencyCount += m.GetHistogram().GetSampleCount()
	}
	return requests, latencyCount, runs
}

// TestExporterCountsTheRun scrapes a run's exporter while it plays and
// once it is over: counts only grow, and at the end they are the result
// file's, endpoint by endpoint and status by status.
func TestExporterCountsTheRun(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Has("page") {
			w.WriteHeader(http.StatusTeapot)
		}
	}))
	defer srv.Close()
	x := live.New()
	metrics, err := x.Serve(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := metrics.Close(); err != nil {
			t.Error(err)
		}
	}()
	r := app.Replay{
		Trace: sampleTrace(t, 20), Target: srv.URL, Exporter: x,
		Plan:   scheduler.Config{Users: 4, RunTime: 2 * time.Second, AutoScale: true, Seed: 1, Profiles: []string{"browse"}},
		Finish: app.Finish{Out: &bytes.Buffer{}, Warn: &bytes.Buffer{}},
	}
	var during []float64 // Watch is called from the status line's goroutine, Play waits for it
	r.Watch = func(app.Snapshot) {
		reqs, _, _ := scrapeCounts(t, metrics.Addr)
		sum := 0.0
		for _, n := range reqs {
			sum += n
		}
		during = append(during, sum)
	}
	if err := r.Prepare(); err != nil {
		t.Fatal(err)
	}
	res, err := r.Play(context.Background())
	if res == nil {
		t.Fatalf("no result: %v", err)
	}
	want := map[string]float64{}
	for _, e := range res.Endpoints {
		for code, n := range e.StatusCodes {
			want[e.Name+" "+e.Profile+" "+code] += float64(n)
		}
		for _, n := range e.Errors {
			want[e.Name+" "+e.Profile+" error"] += float64(n)
		}
	}
	got, latencyCount, runs := scrapeCounts(t, metrics.Addr)
	if len(got) != len(want) || len(want) < 2 {
		t.Errorf("exporter: %d series %v, result: %d %v", len(got), got, len(want), want)
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%s: exporter %g, result %g", k, got[k], n)
		}
	}
	if latencyCount != uint64(res.Requests) {
		t.Errorf("latency histograms count %d, the result %d requests", latencyCount, res.Requests)
	}
	if wantRun := [2]string{res.Start.UTC().Format(time.RFC3339Nano), "0/1"}; len(runs) != 1 || !runs[wantRun] {
		t.Errorf("runs and shards %v, want %v", runs, wantRun)
	}
	if len(during) == 0 {
		t.Fatal("no scrape while the run played")
	}
	for i, n := range during {
		if n > float64(res.Requests) || i > 0 && n < during[i-1] {
			t.Errorf("requests scraped while it played %v, of %s at the end", during, strconv.FormatInt(res.Requests, 10))
		}
	}
}
