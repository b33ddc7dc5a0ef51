package report

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// TestMergeIsExact records the same samples once whole and once split over
// four shards: the merged result has the whole run's counts and exactly
// its percentiles.
func TestMergeIsExact(t *testing.T) {
	start := time.Unix(1_800_000_000, 0)
	whole := NewRecorder(start)
	shards := []*Recorder{NewRecorder(start), NewRecorder(start), NewRecorder(start), NewRecorder(start)}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 20_000 {
		at := start.Add(time.Duration(rng.Int64N(int64(20 * time.Second))))
		s := Sample{Kind: HTTP, Profile: []string{"browse", "chat"}[i%2], Endpoint: []string{"GET /a", "GET /b", "POST /c"}[i%3],
			Status: []int{200, 200, 200, 503}[i%4], Intended: at, Sent: at.Add(time.Duration(rng.IntN(3000)) * time.Microsecond),
			FirstByte: time.Millisecond, Done: time.Duration(rng.ExpFloat64() * float64(40*time.Millisecond))}
		whole.Observe(&s)
		shards[i%4].Observe(&s)
	}
	params := func(shard string) RunParams {
		return RunParams{Trace: "t.thrv", Library: "10 sessions", Seed: 1, Pacing: "recorded", Scale: 1, Shard: shard, Users: 40}
	}
	want := whole.Result("http://t", "", start.Add(21*time.Second), params(""))
	var parts []*Result
	for i, r := range shards {
		parts = append(parts, r.Result("http://t", "", start.Add(21*time.Second), params(string(rune('0'+i))+"/4")))
	}
	got, err := Merge(parts)
	if err != nil {
		t.Fatal(err)
	}
	if got.Requests != want.Requests || got.Failures != want.Failures || len(got.Endpoints) != len(want.Endpoints) || got.Lag != want.Lag {
		t.Fatalf("merged %d requests, %d failures, %d endpoints, lag %+v; whole %d, %d, %d, %+v",
			got.Requests, got.Failures, len(got.Endpoints), got.Lag, want.Requests, want.Failures, len(want.Endpoints), want.Lag)
	}
	for i := range want.Endpoints {
		g, w := got.Endpoints[i], want.Endpoints[i]
		if g.Name != w.Name || g.Profile != w.Profile || g.Requests != w.Requests || g.Latency != w.Latency ||
			g.ServiceLatency != w.ServiceLatency || g.StatusCodes["503"] != w.StatusCodes["503"] {
			t.Errorf("%s %s: merged %+v, whole %+v", w.Name, w.Profile, g.Latency, w.Latency)
		}
	}
	if len(got.Series) != len(want.Series) {
		t.Fatalf("%d seconds merged, %d whole", len(got.Series), len(want.Series))
	}
	for i := range want.Series {
		if g, w := got.Series[i], want.Series[i]; g.Offset != w.Offset || g.Requests != w.Requests {
			t.Fatalf("second %d: merged %+v, whole %+v", w.Offset, g, w)
		}
	}

	// Results of other runs are refused, saying why.
	for _, tc := range []struct {
		change func(*Result)
		want   string
	}{
		{func(r *Result) { r.Params.Seed = 2 }, "seed"},
		{func(r *Result) { r.Params.Trace = "other.thrv" }, "trace"},
		{func(r *Result) { r.Params.Shard = "1/3" }, "shard counts"},
		{func(r *Result) { r.Params.Shard = "0/4" }, "both shard 0/4"},
		{func(r *Result) { r.Target = "http://u" }, "ran against"},
	} {
		bad := *parts[1]
		tc.change(&bad)
		if _, err := Merge([]*Result{parts[0], &bad}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("want an error about %s, got %v", tc.want, err)
		}
	}
}
