package report

import (
	"testing"
	"time"
)

func TestRecorderCountsAndQuantiles(t *testing.T) {
	start := time.Unix(1000, 0)
	r := NewRecorder(start)
	for i := range 100 {
		s := Sample{Kind: HTTP, Profile: "browse", Endpoint: "GET /x", Status: 200,
			Intended: start.Add(time.Duration(i) * 10 * time.Millisecond), Done: time.Duration(i+1) * time.Millisecond}
		s.Sent = s.Intended.Add(2 * time.Millisecond) // 2 ms late
		if i%10 == 0 {
			s.Status = 503
		}
		r.Observe(&s)
	}
	r.Observe(&Sample{Kind: HTTP, Profile: "browse", Endpoint: "GET /x", Err: ErrRefused, Intended: start, Sent: start})
	res := r.Result("http://t", "b1", start.Add(time.Second), RunParams{})
	if res.Requests != 101 || res.Failures != 11 || len(res.Endpoints) != 1 {
		t.Fatalf("requests %d failures %d endpoints %d", res.Requests, res.Failures, len(res.Endpoints))
	}
	e := res.Endpoints[0]
	if e.StatusCodes["200"] != 90 || e.StatusCodes["503"] != 10 || e.Errors["connect refused"] != 1 {
		t.Fatalf("status %v errors %v", e.StatusCodes, e.Errors)
	}
	// Service latency: 1..100 ms (and the refused one at the floor); from
	// the intended time: 2 ms more.
	if p := e.ServiceLatency.P50Ms; p < 49 || p > 51 {
		t.Fatalf("service p50 %v ms", p)
	}
	if p := e.Latency.P50Ms; p < 51 || p > 53 {
		t.Fatalf("corrected p50 %v ms", p)
	}
	if res.Lag.P50Ms < 1.99 || res.Lag.P50Ms > 2.01 {
		t.Fatalf("lag p50 %v ms", res.Lag.P50Ms)
	}
}
