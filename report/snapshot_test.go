package report

import (
	"reflect"
	"testing"
	"time"
)

// TestPeekChangesNothing: a recorder peeked at while requests still end
// in its open seconds ends with the result of one never peeked at, and a
// peek shows the whole seconds before its time with their latencies.
func TestPeekChangesNothing(t *testing.T) {
	start := time.Unix(1_800_000_000, 0)
	peeked, plain := NewRecorder(start), NewRecorder(start)
	observe := func(at time.Duration, ms int) {
		for _, r := range []*Recorder{peeked, plain} {
			r.Observe(&Sample{Kind: HTTP, Profile: "browse", Endpoint: "GET /a", Status: 200, Expected: 200,
				Intended: start.Add(at), Sent: start.Add(at), Done: time.Duration(ms) * time.Millisecond})
		}
	}
	for i := range 30 {
		observe(time.Duration(i)*100*time.Millisecond, 10+i) // seconds 0, 1 and 2
	}
	p := peeked.Peek(start.Add(2500 * time.Millisecond))
	if p.Requests != 30 || len(p.Endpoints) != 1 || p.Endpoints[0].Requests != 30 {
		t.Fatalf("peek: %d requests, endpoints %+v", p.Requests, p.Endpoints)
	}
	if len(p.Series) != 2 || p.Series[0].Requests != 10 || p.Series[1].Requests != 10 || p.Series[1].Latency.MaxMs == 0 {
		t.Fatalf("peek's series: %+v, want seconds 0 and 1 of 10 requests each, with latencies", p.Series)
	}
	// Requests that end in the seconds the peek saw open.
	observe(1500*time.Millisecond, 5)
	observe(2900*time.Millisecond, 7)
	end := start.Add(4 * time.Second)
	got, want := peeked.Result("t", "", end, RunParams{}), plain.Result("t", "", end, RunParams{})
	if !reflect.DeepEqual(got.Series, want.Series) || got.Requests != want.Requests {
		t.Errorf("after a peek the series is\n%+v\nwithout one\n%+v", got.Series, want.Series)
	}
}
