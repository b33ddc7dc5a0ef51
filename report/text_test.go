package report_test

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thrive-loadtest/thrive/internal/golden"
	"github.com/thrive-loadtest/thrive/report"
)

// fixedResult is a result made from known samples at fixed times.
func fixedResult() *report.Result {
	start := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	r := report.NewRecorder(start)
	for i := 1; i <= 200; i++ {
		at := start.Add(time.Duration(i) * 50 * time.Millisecond)
		s := report.Sample{Kind: report.HTTP, Profile: "browse", Endpoint: "GET /api/projects/{id}/", Status: 200,
			Intended: at, Sent: at.Add(time.Duration(i%3) * time.Millisecond), Done: time.Duration(i) * time.Millisecond}
		if i%50 == 0 {
			s.Status = 500
		}
		r.Observe(&s)
	}
	for i := 1; i <= 40; i++ {
		at := start.Add(time.Duration(i) * 200 * time.Millisecond)
		r.Observe(&report.Sample{Kind: report.WSReply, Profile: "chat", Endpoint: "WS /ws/chat/", Status: 101,
			Intended: at, Sent: at, FirstByte: 40 * time.Millisecond, Done: time.Duration(400+i) * time.Millisecond})
	}
	r.Observe(&report.Sample{Kind: report.HTTP, Profile: "import", Endpoint: "POST /api/import/{kind}/", Err: report.ErrRefused,
		Intended: start, Sent: start})
	for i := range 4 {
		// A favicon missing when recorded and missing now; the last one
		// was recorded as found.
		s := report.Sample{Kind: report.HTTP, Profile: "browse", Endpoint: "GET /favicon.ico", Status: 404, Expected: 404,
			Intended: start, Sent: start, Done: time.Millisecond}
		if i == 3 {
			s.Expected = 200
		}
		r.Observe(&s)
	}
	r.Observe(&report.Sample{Kind: report.WSReply, Profile: "chat", Endpoint: "WS /ws/chat/", Status: 101, Silent: true,
		Intended: start, Sent: start, FirstByte: 40 * time.Millisecond, Done: 900 * time.Millisecond})
	return r.Result("http://127.0.0.1:8000", "golden", start.Add(10*time.Second), report.RunParams{Users: 20})
}

// TestSummaryGolden holds the end-of-run table to its layout. Run with
// -update to rewrite testdata/summary.golden after a deliberate change.
func TestSummaryGolden(t *testing.T) {
	res := fixedResult()
	cs := []string{"p95<300ms", "error_rate<1%", "GET /api/projects/{id}/:p99<=200ms", "status_5xx==0"}
	var criteria []report.Criterion
	for _, c := range cs {
		cr, err := report.ParseCriterion(c)
		if err != nil {
			t.Fatal(err)
		}
		criteria = append(criteria, cr)
	}
	vs := report.CheckAll(criteria, res)
	var b bytes.Buffer
	report.WriteSummary(&b, res)
	report.WriteCriteria(&b, vs)
	if n := strings.Count(b.String(), "  FAIL\n"); vs.Failed() != n || (vs.Err() == nil) != (n == 0) {
		t.Fatalf("%d verdicts failed, Err %v; the table shows %d", vs.Failed(), vs.Err(), n)
	}
	golden.CheckFile(t, "./report", filepath.Join("testdata", "summary.golden"), b.Bytes())
}
