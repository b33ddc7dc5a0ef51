package report

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
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
	parts[1].NoteChange(UsersChange{AtS: 5.5, Users: 7, SpawnRate: 1})
	got, err := Merge(parts)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range got.Series {
		if want := []UsersChange{{5.5, 7, 1}}; (s.Offset == 5) != reflect.DeepEqual(s.Changes, want) {
			t.Errorf("second %d of the merge: changes %+v; want %+v in second 5 only", s.Offset, s.Changes, want)
		}
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

// shardSet makes the results of the n shards of one run, one minute from
// 10:00 UTC with 100 users; names names each result, shard 0 a.json, shard
// 1 b.json and on.
func shardSet(n int) (rs []*Result, names func([]*Result) []string) {
	start := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	rs = make([]*Result, n)
	name := map[*Result]string{}
	for i := range n {
		rs[i] = &Result{Version: FormatVersion, Target: "http://t", Start: start, End: start.Add(time.Minute), Requests: 10,
			Params: RunParams{Trace: "t.thrv", Library: "10 sessions, 40 exchanges", Seed: 1, Pacing: "recorded", Scale: 1,
				RunTime: "1m0s", Users: 100, Mix: "browse 100%", Shard: fmt.Sprintf("%d/%d", i, n)}}
		name[rs[i]] = string(rune('a'+i)) + ".json"
	}
	return rs, func(rs []*Result) []string {
		out := make([]string, len(rs))
		for i, r := range rs {
			out[i] = name[r]
		}
		return out
	}
}

// TestMergeRefuses merges sets that are not every shard of one run: each
// is refused with a *Mismatch whose message names what is missing or
// differs and in which files, and --partial merges it all the same,
// saying so in the merged params.
func TestMergeRefuses(t *testing.T) {
	at := func(clock string) time.Time {
		c, err := time.Parse(time.DateTime, clock)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	for _, tc := range []struct {
		name   string
		shards int
		change func(rs []*Result) []*Result
		want   string
	}{
		{"one shard of two", 2, func(rs []*Result) []*Result { return rs[:1] },
			"shard 1/2 is missing: the files given are shard 0/2 (a.json)"},
		{"shards missing among eight", 8, func(rs []*Result) []*Result { return append(rs[:5:5], rs[6]) },
			"shards 5/8 and 7/8 are missing: the files given are shards 0/8 to 4/8 and 6/8"},
		{"one shard of eight", 8, func(rs []*Result) []*Result { return rs[3:4] },
			"shards 0/8 to 2/8 and 4/8 to 7/8 are missing: the files given are shard 3/8 (d.json)"},
		{"a shard twice", 2, func(rs []*Result) []*Result { rs[1].Params.Shard = "0/2"; return rs },
			"a.json and b.json are both shard 0/2; shard 1/2 is missing: the files given are shard 0/2 (a.json and b.json)"},
		{"different shard counts", 2, func(rs []*Result) []*Result { rs[1].Params.Shard = "1/3"; return rs },
			"the shards ran with different shard counts: 2 in a.json, 3 in b.json"},
		{"a whole run among shards", 2, func(rs []*Result) []*Result { rs[1].Params.Shard = ""; return rs },
			"b.json is a whole run, not a shard: there is nothing to merge it with; shard 1/2 is missing: the files given are shard 0/2 (a.json)"},
		{"a merge among shards", 2, func(rs []*Result) []*Result { rs[1].Params.Shard = "2 of 2 merged"; return rs },
			"b.json is a merge of shards (2 of 2 merged), not a shard: merge the shards themselves; shard 1/2 is missing: the files given are shard 0/2 (a.json)"},
		{"a shard out of range", 2, func(rs []*Result) []*Result { rs[1].Params.Shard = "2/2"; return rs },
			`b.json: shard "2/2": want i/n with 0 <= i < n; shard 1/2 is missing: the files given are shard 0/2 (a.json)`},
		{"an interrupted shard", 2, func(rs []*Result) []*Result {
			rs[1].Interrupted, rs[1].Params.RanFor, rs[1].Params.StoppedBy, rs[1].End = true, "12s", "SIGTERM", rs[1].Start.Add(12*time.Second)
			return rs
		}, "b.json was interrupted by SIGTERM after 12s of 1m0s"},
		{"different users", 2, func(rs []*Result) []*Result { rs[1].Params.Users = 200; return rs },
			"the shards ran with different user counts: 100 in a.json, 200 in b.json"},
		{"one of eight with other users", 8, func(rs []*Result) []*Result { rs[3].Params.Users = 200; return rs },
			"the shards ran with different user counts: 200 in d.json, 100 in the 7 other files"},
		{"different run times", 2, func(rs []*Result) []*Result { rs[0].Params.RunTime = "30s"; return rs },
			"the shards ran with different run times: 30s in a.json, 1m0s in b.json"},
		{"different time scales", 2, func(rs []*Result) []*Result { rs[1].Params.Scale = 0.5; return rs },
			"the shards ran with different time scales: 1 in a.json, 0.5 in b.json"},
		{"different seeds", 2, func(rs []*Result) []*Result { rs[1].Params.Seed = 2; return rs },
			"the shards ran with different seeds: 1 in a.json, 2 in b.json"},
		{"different pacing", 2, func(rs []*Result) []*Result { rs[1].Params.Pacing = "think"; return rs },
			"the shards ran with different pacings: recorded in a.json, think in b.json"},
		{"different profiles", 2, func(rs []*Result) []*Result { rs[1].Params.Mix = "browse 50%, chat 50%"; return rs },
			`the shards ran with different profile mixes: "browse 100%" in a.json, "browse 50%, chat 50%" in b.json`},
		{"different trace files", 2, func(rs []*Result) []*Result { rs[1].Params.Trace = "u.thrv"; return rs },
			"the shards replayed different trace files: t.thrv in a.json, u.thrv in b.json"},
		{"different traces", 2, func(rs []*Result) []*Result { rs[1].Params.Library = "12 sessions, 50 exchanges"; return rs },
			`the shards replayed different traces: "10 sessions, 40 exchanges" in a.json, "12 sessions, 50 exchanges" in b.json`},
		{"different targets", 2, func(rs []*Result) []*Result { rs[1].Target = "http://u"; return rs },
			"the shards ran against different targets: http://t in a.json, http://u in b.json"},
		{"different labels", 2, func(rs []*Result) []*Result { rs[1].Label = "v2"; return rs },
			`the shards ran with different labels: "" in a.json, v2 in b.json`},
		{"runs that do not overlap", 2, func(rs []*Result) []*Result {
			rs[1].Start, rs[1].End = at("2026-11-02 10:05:00"), at("2026-11-02 10:06:00")
			return rs
		}, "the shards ran at different times: a.json 10:00:00–10:01:00 and b.json 10:05:00–10:06:00 (UTC) do not overlap"},
		{"runs of different days", 2, func(rs []*Result) []*Result {
			rs[0].Start, rs[0].End = at("2026-11-03 10:00:00"), at("2026-11-03 10:01:00")
			return rs
		}, "the shards ran at different times: b.json 2026-11-02 10:00:00–2026-11-02 10:01:00 and a.json 2026-11-03 10:00:00–2026-11-03 10:01:00 (UTC) do not overlap"},
		{"starts too far apart", 2, func(rs []*Result) []*Result {
			rs[1].Start, rs[1].End = at("2026-11-02 10:00:40"), at("2026-11-02 10:01:40")
			return rs
		}, "the shards ran at different times: a.json started at 10:00:00, b.json at 10:00:40 (UTC), 40s apart: the shards of one run start within 6s (a tenth of the longest, at least 5s; give them one start time)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs, nameOf := shardSet(tc.shards)
			rs = tc.change(rs)
			names := nameOf(rs)
			_, err := Merger{Names: names}.Merge(rs)
			mm, ok := errors.AsType[*Mismatch](err)
			if !ok || err.Error() != tc.want {
				t.Fatalf("got %v (a Mismatch: %v)\nwant %s", err, ok, tc.want)
			}
			m, err := Merger{Names: names, Partial: true}.Merge(rs)
			if err != nil {
				t.Fatalf("partial: %v", err)
			}
			if want := strings.Join(mm.Problems, "; "); m.Params.Partial != want ||
				m.PartialNote() != "partial merge: "+want+"; the figures are those of these files only" {
				t.Errorf("partial merge: params.partial %q, note %q; want %q", m.Params.Partial, m.PartialNote(), want)
			}
			if want := fmt.Sprintf("%d of %d merged", len(rs), tc.shards); tc.name != "different shard counts" && m.Params.Shard != want {
				t.Errorf("partial merge: shard %q, want %q", m.Params.Shard, want)
			}
			if m.Requests != 10*int64(len(rs)) {
				t.Errorf("partial merge: %d requests, want %d", m.Requests, 10*len(rs))
			}
			if want := slices.ContainsFunc(rs, func(r *Result) bool { return r.Interrupted }); m.Interrupted != want {
				t.Errorf("partial merge: interrupted %v, want %v", m.Interrupted, want)
			}
		})
	}
}

// TestMergeAccepts merges sets that are every shard of one run: shards
// started by hand a little apart, and a whole run alone.
func TestMergeAccepts(t *testing.T) {
	for _, tc := range []struct {
		name   string
		shards int
		change func(rs []*Result) []*Result
		want   string
	}{
		{"one start", 4, func(rs []*Result) []*Result { return rs }, "4 of 4 merged"},
		{"given in any order", 3, func(rs []*Result) []*Result { return []*Result{rs[2], rs[0], rs[1]} }, "3 of 3 merged"},
		{"ends apart", 2, func(rs []*Result) []*Result { rs[1].End = rs[1].End.Add(20 * time.Second); return rs }, "2 of 2 merged"},
		{"starts 6 s apart in a minute", 2, func(rs []*Result) []*Result {
			rs[1].Start, rs[1].End = rs[1].Start.Add(6*time.Second), rs[1].End.Add(6*time.Second)
			return rs
		}, "2 of 2 merged"},
		{"starts 5 s apart in 10 s", 3, func(rs []*Result) []*Result {
			for i, r := range rs {
				r.Start = r.Start.Add(time.Duration(i) * 2500 * time.Millisecond)
				r.End = r.Start.Add(10 * time.Second)
			}
			return rs
		}, "3 of 3 merged"},
		{"a whole run alone", 1, func(rs []*Result) []*Result { rs[0].Params.Shard = ""; return rs }, "1 of 1 merged"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs, nameOf := shardSet(tc.shards)
			rs = tc.change(rs)
			names := nameOf(rs)
			m, err := Merger{Names: names}.Merge(rs)
			if err != nil {
				t.Fatal(err)
			}
			if m.Params.Shard != tc.want || m.Params.Partial != "" || m.Requests != 10*int64(len(rs)) {
				t.Fatalf("shard %q, partial %q, %d requests; want %q, none, %d", m.Params.Shard, m.Params.Partial, m.Requests, tc.want, 10*len(rs))
			}
		})
	}
}
