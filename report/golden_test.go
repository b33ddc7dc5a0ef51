package report_test

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/thrive-loadtest/thrive/internal/golden"
	"github.com/thrive-loadtest/thrive/report"
)

// Golden-file tests of the text renderers: each renders a fixed input and
// holds the output, byte for byte, to testdata/<TestName>.golden. After a
// deliberate change, rewrite the file with
//
//	go test ./report -run <TestName> -update
//

// goldenStart is when every fixed run of these tests starts.
var goldenStart = time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC) //nolint:gochecknoglobals // a fixed time, read only

// checkGolden compares got with testdata/<test name>.golden, or rewrites
// that file with -update.
func checkGolden(t *testing.T, got []byte) {
	t.Helper()
	golden.Check(t, "./report", got)
}

// endpointRun says what requests a fixed run makes to one endpoint.
type endpointRun struct {
	kind     report.Kind
	profile  string
	name     string
	n        int // requests
	baseMs   int // every latency is baseMs plus up to spreadMs, and every 50th four times that
	spreadMs int
	status   int
	// Every failEvery-th request (0: none) is answered failStatus, or
	// fails with failErr when that is set.
	failEvery  int
	failStatus int
	failErr    report.ErrorKind
}

// recordRun records the requests of eps, spread over the minute from
// goldenStart, with latencies drawn from a PCG seeded with seed (integer
// milliseconds and microseconds only, so that no platform's floating point
// can move a value into another histogram bucket).
func recordRun(seed uint64, params report.RunParams, eps ...endpointRun) *report.Result {
	rng := rand.New(rand.NewPCG(seed, 1))
	r := report.NewRecorder(goldenStart)
	for _, ep := range eps {
		step := time.Minute / time.Duration(ep.n+1)
		for i := 1; i <= ep.n; i++ {
			at := goldenStart.Add(time.Duration(i) * step)
			done := time.Duration(ep.baseMs+rng.IntN(ep.spreadMs+1))*time.Millisecond + time.Duration(rng.IntN(1000))*time.Microsecond
			if i%50 == 0 {
				done *= 4
			}
			s := report.Sample{Kind: ep.kind, Profile: ep.profile, Endpoint: ep.name, Status: ep.status, Expected: ep.status,
				Intended: at, Sent: at.Add(time.Duration(i%4) * 100 * time.Microsecond), Done: done}
			if ep.failEvery > 0 && i%ep.failEvery == 0 {
				if ep.failErr != "" {
					s.Status, s.Err = 0, ep.failErr
				} else {
					s.Status = ep.failStatus
				}
			}
			r.Observe(&s)
		}
	}
	return r.Result("https://shop.example.test", "golden", goldenStart.Add(time.Minute), params)
}

// TestGoldenSummary holds WriteSummary, the summary a replay prints, to its
// layout: endpoints busiest first (ties in their order), the totals, a
// partial merge's note, the answers as recorded, the replies ended by a
// silence, the failures by kind (more than are shown), the waits, the
// polls, the retries and the requests skipped (more reasons than are
// shown).
func TestGoldenSummary(t *testing.T) {
	res := &report.Result{
		Version: report.FormatVersion, Target: "https://shop.example.test", Label: "v1.5.0",
		Start: goldenStart, End: goldenStart.Add(time.Minute),
		Params: report.RunParams{Trace: "shop.thrv", Users: 40, RunTime: "1m0s", Pacing: "recorded", Scale: 1, Seed: 7,
			Shard:   "3 of 4 merged",
			Partial: "shard 2/4 is missing: the files given are shards 0/4 (s0.json), 1/4 (s1.json) and 3/4 (s3.json)"},
		Requests: 2480, Failures: 20, AsRecorded: 6, Skipped: 21, RetriedStale: 5,
		Polls:  report.PollStats{Loops: 12, Polls: 90, Unfinished: 1},
		Lag:    report.Latency{P50Ms: 0.21, P90Ms: 0.9, P95Ms: 1.2, P99Ms: 1.87, MaxMs: 6.4},
		Waits:  37,
		Waited: report.Latency{P50Ms: 12.3, P90Ms: 30.1, P95Ms: 38.4, P99Ms: 48.9, MaxMs: 102.6},
		Endpoints: []report.EndpointStats{
			{Kind: "http", Name: "POST /api/cart/", Profile: "checkout", Requests: 300, Failures: 9,
				StatusCodes: map[string]int64{"201": 290, "409": 4, "503": 2},
				Errors:      map[report.ErrorKind]int64{report.ErrReset: 3, report.ErrStopped: 1},
				Skipped: map[report.ErrorKind]int64{
					"skipped: depends on POST /api/login/ $.token":    3,
					"skipped: depends on GET /api/session/ csrftoken": 1,
				},
				Latency: report.Latency{P50Ms: 81.3, P90Ms: 140.2, P95Ms: 171.9, P99Ms: 402.5, MaxMs: 2210.4}},
			{Kind: "http", Name: "GET /api/products/{id}/", Profile: "browse", Requests: 1200, Failures: 8,
				StatusCodes: map[string]int64{"200": 1186, "404": 9, "500": 3},
				AsRecorded:  map[string]int64{"404": 6},
				Errors:      map[report.ErrorKind]int64{report.ErrTimeout: 2},
				Latency:     report.Latency{P50Ms: 42.5, P90Ms: 88.2, P95Ms: 120.4, P99Ms: 310.9, MaxMs: 1204.7}},
			{Kind: "ws-reply", Name: "WS /ws/notifications/", Profile: "browse", Requests: 300,
				StatusCodes: map[string]int64{"101": 300}, EndedBySilence: 4,
				Latency: report.Latency{P50Ms: 12.1, P90Ms: 20.4, P95Ms: 25, P99Ms: 61.7, MaxMs: 500.2}},
			{Kind: "ws-connect", Name: "WS /ws/notifications/", Profile: "browse", Requests: 80, Failures: 1,
				StatusCodes: map[string]int64{"101": 79, "403": 1},
				Latency:     report.Latency{P50Ms: 30.2, P90Ms: 45.5, P95Ms: 52.3, P99Ms: 70.8, MaxMs: 75.1}},
			{Kind: "long-poll", Name: "GET /api/jobs/{id}/wait", Profile: "checkout", Requests: 40, Failures: 2,
				StatusCodes: map[string]int64{"200": 38, "504": 1},
				Errors:      map[report.ErrorKind]int64{report.ErrRefused: 1},
				Latency:     report.Latency{P50Ms: 25004.1, P90Ms: 29010, P95Ms: 29500.3, P99Ms: 30001, MaxMs: 30001}},
			{Kind: "http", Name: "GET /static/{file}", Profile: "browse", Requests: 500,
				StatusCodes: map[string]int64{"200": 500},
				Latency:     report.Latency{P50Ms: 3.1, P90Ms: 5.2, P95Ms: 6, P99Ms: 9.8, MaxMs: 14.2}},
			{Kind: "http", Name: "GET /api/orders/{id}/", Profile: "checkout", Requests: 60,
				StatusCodes: map[string]int64{"200": 60},
				Skipped: map[report.ErrorKind]int64{
					"skipped: depends on POST /api/cart/ $.cart.id":      7,
					"skipped: depends on POST /api/checkout/ $.order.id": 5,
					"skipped: depends on GET /api/products/{id}/ $.sku":  3,
					"skipped: depends on POST /api/cart/ $.items[0].id":  1,
					"skipped: depends on POST /api/checkout/ $.pay_url":  1,
				},
				Latency: report.Latency{P50Ms: 55, P90Ms: 91.3, P95Ms: 104.8, P99Ms: 160.2, MaxMs: 171}},
		},
	}
	var b bytes.Buffer
	report.WriteSummary(&b, res)
	checkGolden(t, b.Bytes())
}

// criteriaRun is a fixed run for the criteria: browse and checkout
// requests, a 429, failures, and long polls.
func criteriaRun() *report.Result {
	return recordRun(11, report.RunParams{Trace: "shop.thrv", Users: 40, RunTime: "1m0s"},
		endpointRun{kind: report.HTTP, profile: "browse", name: "GET /api/products/{id}/", n: 900, baseMs: 20, spreadMs: 60, status: 200,
			failEvery: 300, failStatus: 503},
		endpointRun{kind: report.HTTP, profile: "browse", name: "GET /api/search/", n: 300, baseMs: 80, spreadMs: 200, status: 200,
			failEvery: 100, failStatus: 429},
		endpointRun{kind: report.HTTP, profile: "checkout", name: "POST /api/cart/", n: 200, baseMs: 60, spreadMs: 120, status: 201,
			failEvery: 40, failErr: report.ErrReset},
		endpointRun{kind: report.LongPoll, profile: "checkout", name: "GET /api/jobs/{id}/wait", n: 20, baseMs: 20000, spreadMs: 9000, status: 200},
	)
}

// checked parses the criteria texts and checks them on res.
func checked(t *testing.T, res *report.Result, texts ...string) report.Verdicts {
	t.Helper()
	cs := make([]report.Criterion, 0, len(texts))
	for _, s := range texts {
		c, err := report.ParseCriterion(s)
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	return report.CheckAll(cs, res)
}

// TestGoldenCriteriaFail holds WriteCriteria's table to its layout, for
// criteria of every metric and scope, some failing (one for want of its
// endpoint).
func TestGoldenCriteriaFail(t *testing.T) {
	vs := checked(t, criteriaRun(),
		"p95<300ms", "p99<200ms", "error_rate<1%", "browse:p99<=1s", "POST /api/cart/:error_rate<0.5%",
		"long-poll:max<30s", "rps>=20", "requests>=1000", "status_429==0", "status_5xx<5", "GET /api/nope/:p95<1s")
	var b bytes.Buffer
	report.WriteCriteria(&b, vs)
	checkGolden(t, b.Bytes())
}

// TestGoldenCriteriaPass holds WriteCriteria's table and its PASS verdict
// to their layout.
func TestGoldenCriteriaPass(t *testing.T) {
	vs := checked(t, criteriaRun(), "p95<1s", "checkout:p50<500ms", "error_rate<5%", "status_5xx<=3")
	var b bytes.Buffer
	report.WriteCriteria(&b, vs)
	checkGolden(t, b.Bytes())
}

// comparison compares two fixed runs: GET /api/products/{id}/ slower in
// the candidate (a regression), POST /api/cart/ faster (an improvement),
// GET /api/search/ alike, GET /api/orders/{id}/ too rare to judge, and
// three endpoints only in the candidate (warnings in the same order every
// time: they came from a map), run with more users.
func comparison(t *testing.T) *report.Comparison {
	t.Helper()
	params := report.RunParams{Trace: "shop.thrv", Users: 40, RunTime: "1m0s", Pacing: "recorded", Scale: 1}
	base := recordRun(21, params,
		endpointRun{kind: report.HTTP, profile: "browse", name: "GET /api/products/{id}/", n: 600, baseMs: 40, spreadMs: 40, status: 200,
			failEvery: 200, failStatus: 500},
		endpointRun{kind: report.HTTP, profile: "browse", name: "GET /api/search/", n: 400, baseMs: 90, spreadMs: 60, status: 200},
		endpointRun{kind: report.HTTP, profile: "checkout", name: "POST /api/cart/", n: 300, baseMs: 150, spreadMs: 100, status: 201},
		endpointRun{kind: report.HTTP, profile: "checkout", name: "GET /api/orders/{id}/", n: 12, baseMs: 30, spreadMs: 20, status: 200},
	)
	params.Users = 60
	cand := recordRun(22, params,
		endpointRun{kind: report.HTTP, profile: "browse", name: "GET /api/products/{id}/", n: 600, baseMs: 55, spreadMs: 50, status: 200,
			failEvery: 100, failStatus: 500},
		endpointRun{kind: report.HTTP, profile: "browse", name: "GET /api/search/", n: 400, baseMs: 90, spreadMs: 60, status: 200},
		endpointRun{kind: report.HTTP, profile: "checkout", name: "POST /api/cart/", n: 300, baseMs: 80, spreadMs: 60, status: 201},
		endpointRun{kind: report.HTTP, profile: "checkout", name: "GET /api/orders/{id}/", n: 12, baseMs: 90, spreadMs: 20, status: 200},
		endpointRun{kind: report.HTTP, profile: "browse", name: "GET /api/wishlist/", n: 100, baseMs: 30, spreadMs: 10, status: 200},
		endpointRun{kind: report.HTTP, profile: "browse", name: "GET /api/compare/", n: 50, baseMs: 30, spreadMs: 10, status: 200},
		endpointRun{kind: report.HTTP, profile: "checkout", name: "DELETE /api/cart/{id}/", n: 20, baseMs: 30, spreadMs: 10, status: 204},
	)
	c, err := report.Compare(base, cand, nil, 0.1)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestGoldenCompareText holds thrive compare's terminal table to its
// layout.
func TestGoldenCompareText(t *testing.T) {
	var b bytes.Buffer
	if err := comparison(t).Write(&b, "text"); err != nil {
		t.Fatal(err)
	}
	checkGolden(t, b.Bytes())
}

// TestGoldenCompareMarkdown holds thrive compare --format markdown, the
// table pasted in a pull request, to its layout.
func TestGoldenCompareMarkdown(t *testing.T) {
	var b bytes.Buffer
	if err := comparison(t).Write(&b, "markdown"); err != nil {
		t.Fatal(err)
	}
	checkGolden(t, b.Bytes())
}

// TestGoldenLadder holds the ladder's table to its layout: four phases of
// more and more users, slower and slower, the last one failing its p95
// criterion.
func TestGoldenLadder(t *testing.T) {
	phases := []report.LadderPhase{
		{Users: 10, SpawnRate: 2, RunTime: 30 * time.Second},
		{Users: 20, SpawnRate: 5, RunTime: 30 * time.Second},
		{Users: 40, SpawnRate: 10, RunTime: time.Minute},
		{Users: 80, SpawnRate: 12.5, RunTime: 90 * time.Second},
	}
	for i := range phases {
		p := &phases[i]
		p.N = i
		p.Result = recordRun(uint64(31+i), report.RunParams{Trace: "shop.thrv", Users: p.Users, RunTime: p.RunTime.String()},
			endpointRun{kind: report.HTTP, profile: "browse", name: "GET /api/products/{id}/", n: 60 * p.Users,
				baseMs: 20 << i, spreadMs: 30 << i, status: 200, failEvery: 400, failStatus: 502},
			endpointRun{kind: report.LongPoll, profile: "checkout", name: "GET /api/jobs/{id}/wait", n: p.Users, baseMs: 20000, spreadMs: 5000, status: 200},
		)
		p.Result.Criteria = checked(t, p.Result, "p95<250ms", "error_rate<1%")
		p.Passed = p.Result.Criteria.Failed() == 0
	}
	var b bytes.Buffer
	report.WriteLadder(&b, phases)
	checkGolden(t, b.Bytes())
}
