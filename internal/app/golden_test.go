package app

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/thrive-loadtest/thrive/internal/golden"
	"github.com/thrive-loadtest/thrive/replay"
	"github.com/thrive-loadtest/thrive/report"
)

// TestGoldenCheckReport holds the text of --check to its layout: a
// regression of its own with its cause and fix, one that follows an
// earlier failure, a divergence that is no regression, and the
// correlation rules with values found and missing (each that missed
// named), and the requests that got no answer; fixes that change a
// setting name its flags.
func TestGoldenCheckReport(t *testing.T) {
	rep := &replay.CheckReport{Sessions: 3, Requests: 41, Regressions: 5, TransportErrors: 1,
		Divergences: []replay.Divergence{
			{Endpoint: "POST /accounts/login/", Kind: "status", What: "status 200 where 302 was recorded", Count: 1, Of: 3, Regression: true,
				Cause: "the login was refused with the users file's values (user 3)", Fix: "check users.csv's password for user 3"},
			{Endpoint: "GET /projects/{id}/", Kind: "status", What: "redirect: login", Count: 4, Of: 9, Regression: true,
				After: "POST /accounts/login/", Cause: "an earlier request of the session failed first: POST /accounts/login/"},
			{Endpoint: "GET /api/items", Kind: "shape", What: "JSON field $.items[].owner missing", Count: 2, Of: 12},
			{Endpoint: "GET /api/feed", Kind: "status", What: "status 429 where 200 was recorded", Count: 3, Of: 7,
				Cause: "the target shed load", Fix: "play the sessions at their recorded pace", Settings: []replay.Setting{{Name: replay.SetScale, Value: "1"}}},
			{Endpoint: "GET /dashboard", Kind: "status", What: "redirect: login", Count: 1, Of: 1,
				Cause: "a cookie no answer set", Fix: "record whole visits", Settings: []replay.Setting{{Name: replay.SetIdle}, {Name: replay.SetUsersFile, Value: "users.csv"}}},
		},
		Correlations: []replay.CorrelationStat{
			{Rule: "GET /accounts/login/ form POST /accounts/login/ #1 csrfmiddlewaretoken", Found: 3},
			{Rule: "POST /api/jobs $.job.id", Found: 5, Missing: 1},
		},
	}
	var b bytes.Buffer
	writeCheck(&b, rep, "http://127.0.0.1:8000")
	golden.Check(t, "./internal/app", b.Bytes())
}

// TestGoldenFinish holds what the end of a run prints to its layout: the
// summary, then the notes of the run (correlation misses, here), the hints
// its figures call for in the flags' words (4xx as recorded, replies ended
// by a silence), the criteria and the files; the lag's warning and hint go
// to the other writer.
func TestGoldenFinish(t *testing.T) {
	start := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	res := &report.Result{Start: start, End: start.Add(time.Minute), Requests: 120, Failures: 2, AsRecorded: 3,
		Lag: report.Latency{P50Ms: 1, P99Ms: 40, MaxMs: 90},
		Endpoints: []report.EndpointStats{
			{Kind: "GET", Name: "/api/items", Profile: "browse", Requests: 100, Failures: 2, StatusCodes: map[string]int64{"200": 95, "404": 3, "500": 2},
				AsRecorded: map[string]int64{"404": 3}, Latency: report.Latency{P50Ms: 12, P95Ms: 40, P99Ms: 80, MaxMs: 120}},
			{Kind: "WS", Name: "/ws/chat/", Profile: "chat", Requests: 20, StatusCodes: map[string]int64{"101": 20}, EndedBySilence: 4,
				Latency: report.Latency{P50Ms: 200, P95Ms: 900, P99Ms: 1000, MaxMs: 1100}},
		}}
	p95, err := report.ParseCriterion("error_rate<5%")
	if err != nil {
		t.Fatal(err)
	}
	var out, warn bytes.Buffer
	f := Finish{Criteria: []report.Criterion{p95}, Out: &out, Warn: &warn}
	err = f.Result(res, nil, func(w io.Writer) {
		writeCorrelationMisses(w, []replay.CorrelationStat{{Rule: "POST /api/jobs $.job.id", Found: 5, Missing: 1}})
	})
	if err != nil {
		t.Fatalf("criteria that hold: %v", err)
	}
	out.WriteString("-- warnings --\n")
	out.Write(warn.Bytes())
	golden.Check(t, "./internal/app", out.Bytes())
}
