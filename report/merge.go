package report

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/thrive-loadtest/thrive/scheduler"
)

// Merger merges the results of the shards of one run (--shard i/n). The
// zero value refuses a set that is not the complete set of shards of one
// run, and names results by their place ("result 2").
type Merger struct {
	// Names name the results in messages, as their files; a result past
	// the end of Names is named by its place.
	Names []string
	// Partial merges an incomplete or inconsistent set all the same: the
	// merged result's Params.Partial says what was missing or differed.
	Partial bool
}

// Mismatch is why results are not the complete set of shards of one
// run: each problem says what is missing or differs, and in which
// results. Merge returns it, unless the Merger is Partial.
type Mismatch struct {
	Problems []string
}

func (e *Mismatch) Error() string { return strings.Join(e.Problems, "; ") }

// startSlack is the least a run's shards may differ in their start: they
// are told one start time (--start-at) or are started by hand or by a
// Job within seconds of one another.
const startSlack = 5 * time.Second

// Merge merges rs with the zero Merger.
func Merge(rs []*Result) (*Result, error) {
	return Merger{}.Merge(rs)
}

// MergeFiles reads the result files at paths and merges them, naming each
// by its path.
func (mg Merger) MergeFiles(paths []string) (*Result, error) {
	rs := make([]*Result, len(paths))
	for i, path := range paths {
		var err error
		if rs[i], err = ReadFile(path); err != nil {
			return nil, err
		}
	}
	mg.Names = paths
	return mg.Merge(rs)
}

// Merge combines the results of the shards of one run exactly:
// histograms are added bucket by bucket, so a merged percentile is the
// percentile of all the shards' samples together; counts add up; the
// per-second series are aligned by wall-clock time. Unless mg is Partial it
// refuses, with a *Mismatch that lists every problem, a set that is not
// the complete set of shards of one run (see mismatches): shards missing
// or given twice, a whole run among shards, a shard interrupted, or
// shards of different runs (parameters, targets or times that differ).
func (mg Merger) Merge(rs []*Result) (*Result, error) {
	if len(rs) == 0 {
		return nil, errors.New("nothing to merge")
	}
	names := make([]string, len(rs))
	for i := range rs {
		names[i] = fmt.Sprintf("result %d", i+1)
		if i < len(mg.Names) && mg.Names[i] != "" {
			names[i] = mg.Names[i]
		}
	}
	for i, r := range rs {
		if r.Candidate != nil || r.Control != nil {
			return nil, fmt.Errorf("%s is a side-by-side run (it holds a candidate's result): merging those is not supported yet", names[i])
		}
	}
	problems := mismatches(rs, names)
	if len(problems) > 0 && !mg.Partial {
		return nil, &Mismatch{Problems: problems}
	}
	first := rs[0]
	m := &Result{Version: FormatVersion, Target: first.Target, Label: first.Label, Start: first.Start, End: first.End, Params: first.Params}
	_, n := shardOf(first.Params.Shard)
	m.Params.Shard = fmt.Sprintf("%d of %s merged", len(rs), n)
	m.Params.Partial = strings.Join(problems, "; ")
	for _, r := range rs {
		if r.Start.Before(m.Start) {
			m.Start = r.Start
		}
		if r.End.After(m.End) {
			m.End = r.End
		}
		if r.Interrupted && !m.Interrupted {
			// Only a partial merge gets here with an interrupted shard.
			m.Interrupted, m.Params.RanFor, m.Params.StoppedBy = true, r.Params.RanFor, r.Params.StoppedBy
		}
	}
	type acc struct {
		e                  EndpointStats
		lat, service, byte *hdrhistogram.Histogram
	}
	endpoints := map[[3]string]*acc{}
	var order [][3]string
	lag, waited := newHist(), newHist()
	seconds := map[int64]*Second{}
	secHists := map[int64]*hdrhistogram.Histogram{}
	secLags := map[int64]float64{}
	users := 0
	for _, r := range rs {
		users = max(users, r.Params.Users)
		m.Requests += r.Requests
		m.Failures += r.Failures
		m.AsRecorded += r.AsRecorded
		m.Skipped += r.Skipped
		m.RetriedStale += r.RetriedStale
		m.Polls.Loops += r.Polls.Loops
		m.Polls.Polls += r.Polls.Polls
		m.Polls.Unfinished += r.Polls.Unfinished
		m.Clamped += r.Clamped
		m.WebSocket.Connections += r.WebSocket.Connections
		m.WebSocket.FramesSent += r.WebSocket.FramesSent
		m.WebSocket.FramesReceived += r.WebSocket.FramesReceived
		if err := mergeInto(lag, r.LagHist, "lag"); err != nil {
			return nil, err
		}
		if len(r.WaitedHist) > 0 {
			if err := mergeInto(waited, r.WaitedHist, "waited"); err != nil {
				return nil, err
			}
		}
		for _, e := range r.Endpoints {
			k := [3]string{e.Kind, e.Name, e.Profile}
			a := endpoints[k]
			if a == nil {
				a = &acc{e: EndpointStats{Kind: e.Kind, Name: e.Name, Profile: e.Profile, StatusCodes: map[string]int64{}},
					lat: newHist(), service: newHist(), byte: newHist()}
				endpoints[k] = a
				order = append(order, k)
			}
			a.e.Requests += e.Requests
			a.e.Failures += e.Failures
			a.e.EndedBySilence += e.EndedBySilence
			for why, n := range e.Skipped {
				if a.e.Skipped == nil {
					a.e.Skipped = map[ErrorKind]int64{}
				}
				a.e.Skipped[why] += n
			}
			for c, n := range e.AsRecorded {
				if a.e.AsRecorded == nil {
					a.e.AsRecorded = map[string]int64{}
				}
				a.e.AsRecorded[c] += n
			}
			for c, n := range e.StatusCodes {
				a.e.StatusCodes[c] += n
			}
			var err error
			if a.e.Answers, err = mergeAnswers(a.e.Answers, e.Answers, e.Kind+" "+e.Name+" "+e.Profile); err != nil {
				return nil, err
			}
			for c, n := range e.Errors {
				if a.e.Errors == nil {
					a.e.Errors = map[ErrorKind]int64{}
				}
				a.e.Errors[c] += n
			}
			for _, h := range []struct {
				dst *hdrhistogram.Histogram
				src []byte
			}{{a.lat, e.Hist}, {a.service, e.ServiceHist}, {a.byte, e.FirstByteHist}} {
				if err := mergeInto(h.dst, h.src, e.Name); err != nil {
					return nil, err
				}
			}
		}
		// Seconds by wall-clock time from the merged start.
		shift := int64(r.Start.Sub(m.Start) / time.Second)
		for _, s := range r.Series {
			at := s.Offset + shift
			ms := seconds[at]
			if ms == nil {
				ms = &Second{Offset: at}
				seconds[at] = ms
				secHists[at] = newSecondHist()
			}
			ms.Requests += s.Requests
			ms.Failures += s.Failures
			ms.Users += s.Users
			for _, c := range s.Changes {
				c.AtS += r.Start.Sub(m.Start).Seconds()
				ms.Changes = append(ms.Changes, c)
			}
			secLags[at] = max(secLags[at], s.LagP99) // an upper bound: shards keep no per-second lag histogram
			if err := mergeInto(secHists[at], s.Hist, fmt.Sprintf("second %d", s.Offset)); err != nil {
				return nil, err
			}
		}
	}
	if users > 0 {
		m.Params.Users = users
	}
	m.Lag, m.LagHist = latencyOf(lag), encode(lag)
	if waited.TotalCount() > 0 {
		m.Waits, m.Waited, m.WaitedHist = waited.TotalCount(), latencyOf(waited), encode(waited)
	}
	slices.SortFunc(order, func(a, b [3]string) int { return strings.Compare(a[0]+a[1]+a[2], b[0]+b[1]+b[2]) })
	for _, k := range order {
		a := endpoints[k]
		a.e.Latency, a.e.Hist = latencyOf(a.lat), encode(a.lat)
		a.e.ServiceLatency, a.e.ServiceHist = latencyOf(a.service), encode(a.service)
		a.e.FirstByte, a.e.FirstByteHist = latencyOf(a.byte), encode(a.byte)
		m.Endpoints = append(m.Endpoints, a.e)
	}
	offsets := make([]int64, 0, len(seconds))
	for at := range seconds {
		offsets = append(offsets, at)
	}
	slices.Sort(offsets)
	for _, at := range offsets {
		s := seconds[at]
		if h := secHists[at]; h.TotalCount() > 0 {
			s.Latency, s.Hist = latencyOf(h), encode(h)
		}
		s.LagP99 = secLags[at]
		m.Series = append(m.Series, *s)
	}
	return m, nil
}

// PartialNote says, of a merge made on purpose of an incomplete or
// inconsistent set of shards (Merger.Partial), what was missing or
// differed; it is "" for any other result.
func (r *Result) PartialNote() string {
	if r.Params.Partial == "" {
		return ""
	}
	return "partial merge: " + r.Params.Partial + "; the figures are those of these files only"
}

// mergeInto adds the histogram enc, if any, to dst.
func mergeInto(dst *hdrhistogram.Histogram, enc []byte, what string) error {
	h, err := decodeHist(enc, what)
	if err != nil {
		return err
	}
	dst.Merge(h)
	return nil
}

// mismatches lists what keeps rs, named by names, from being the complete
// set of shards of one run, each problem naming the results it concerns:
//   - what the shards must share: the target, the trace file and what it
//     held, the seed, the users, the run time, the time scale, the
//     pacing, the profile mix and the label;
//   - the shards: one shard count, every shard of it once, no whole run
//     or merge among several results, none interrupted;
//   - the time: their runs overlap, and their starts are no further apart
//     than a tenth of the longest run, or startSlack when that is more.
func mismatches(rs []*Result, names []string) []string {
	var out []string
	param := func(name string) func(*Result) string {
		return func(r *Result) string { return r.Params.value(name) }
	}
	for _, p := range []struct {
		what string
		get  func(*Result) string
	}{
		{"ran against different targets", func(r *Result) string { return r.Target }},
		{"replayed different trace files", param("trace")},
		{"replayed different traces", param("library")},
		{"ran with different seeds", param("seed")},
		{"ran with different user counts", param("users")},
		{"ran with different run times", param("run_time")},
		{"ran with different time scales", param("scale")},
		{"ran with different pacings", param("pacing")},
		{"ran with different profile mixes", param("mix")},
		{"ran with different labels", func(r *Result) string { return r.Label }},
	} {
		if d := disagreement(names, func(i int) string { return p.get(rs[i]) }); d != "" {
			out = append(out, "the shards "+p.what+": "+d)
		}
	}
	out = append(out, shardMismatches(rs, names)...)
	for i, r := range rs {
		if r.Interrupted || r.Params.RanFor != "" {
			p := names[i] + " was interrupted"
			if r.Params.StoppedBy != "" {
				p += " by " + r.Params.StoppedBy
			}
			if r.Params.RanFor != "" {
				p += fmt.Sprintf(" after %s of %s", r.Params.RanFor, r.Params.RunTime)
			}
			out = append(out, p)
		}
	}
	if p := timeMismatch(rs, names); p != "" {
		out = append(out, p)
	}
	return out
}

// shardMismatches lists the problems of rs's shards: whole runs or merges
// among several results, shards not of the form i/n, different shard
// counts, shards given twice, and shards missing.
func shardMismatches(rs []*Result, names []string) []string {
	var out []string
	var idx, count []int
	var named []string
	for k, r := range rs {
		s := r.Params.Shard
		i, n, err := scheduler.ParseShard(s)
		if err == nil && n > scheduler.MaxUsers {
			err = fmt.Errorf("shard %q: more shards than users a run may have", s)
		}
		switch {
		case strings.HasSuffix(s, " merged"):
			if len(rs) > 1 {
				out = append(out, fmt.Sprintf("%s is a merge of shards (%s), not a shard: merge the shards themselves", names[k], s))
			}
		case s == "":
			if len(rs) > 1 {
				out = append(out, names[k]+" is a whole run, not a shard: there is nothing to merge it with")
			}
		case err != nil:
			out = append(out, fmt.Sprintf("%s: %v", names[k], err))
		default:
			idx, count, named = append(idx, i), append(count, n), append(named, names[k])
		}
	}
	if d := disagreement(named, func(k int) string { return strconv.Itoa(count[k]) }); d != "" {
		// Which shards are missing depends on which count is right.
		return append(out, "the shards ran with different shard counts: "+d)
	}
	if len(idx) == 0 {
		return out
	}
	n := count[0]
	byIndex := map[int][]string{}
	for k, i := range idx {
		byIndex[i] = append(byIndex[i], named[k])
	}
	present := slices.Sorted(maps.Keys(byIndex))
	var missing [][2]int // ranges of shards missing, first and last
	next, lost := 0, 0
	for _, i := range append(slices.Clip(present), n) {
		if i > next {
			missing, lost = append(missing, [2]int{next, i - 1}), lost+i-next
		}
		next = i + 1
		if len(byIndex[i]) > 1 {
			out = append(out, fmt.Sprintf("%s are both shard %d/%d", list(byIndex[i]), i, n))
		}
	}
	if lost > 0 {
		var given string
		if len(present) <= 4 {
			parts := make([]string, len(present))
			for k, i := range present {
				parts[k] = fmt.Sprintf("%d/%d (%s)", i, n, list(byIndex[i]))
			}
			given = list(parts)
		} else {
			var ranges [][2]int
			for _, i := range present {
				if len(ranges) > 0 && ranges[len(ranges)-1][1] == i-1 {
					ranges[len(ranges)-1][1] = i
				} else {
					ranges = append(ranges, [2]int{i, i})
				}
			}
			given = indexes(ranges, n)
		}
		out = append(out, fmt.Sprintf("%s %s %s missing: the files given are %s %s",
			plural(lost, "shard", "shards"), indexes(missing, n), plural(lost, "is", "are"),
			plural(len(present), "shard", "shards"), given))
	}
	return out
}

// timeMismatch says why rs did not run at one time, or "": every run
// must overlap every other, and their starts be at most a tenth of the
// longest run apart (startSlack at least).
func timeMismatch(rs []*Result, names []string) string {
	first, last, ends := 0, 0, 0 // the earliest start, the latest start, the earliest end
	var longest time.Duration
	for i, r := range rs {
		if r.Start.Before(rs[first].Start) {
			first = i
		}
		if r.Start.After(rs[last].Start) {
			last = i
		}
		if r.End.Before(rs[ends].End) {
			ends = i
		}
		longest = max(longest, r.End.Sub(r.Start))
	}
	if last != ends && !rs[last].Start.Before(rs[ends].End) {
		a, b := rs[ends], rs[last]
		layout := clockLayout(a.Start, a.End, b.Start, b.End)
		return fmt.Sprintf("the shards ran at different times: %s %s–%s and %s %s–%s (UTC) do not overlap", names[ends],
			a.Start.UTC().Format(layout), a.End.UTC().Format(layout), names[last], b.Start.UTC().Format(layout), b.End.UTC().Format(layout))
	}
	slack := max(startSlack, longest/10)
	if apart := rs[last].Start.Sub(rs[first].Start); apart > slack {
		a, b := rs[first].Start, rs[last].Start
		layout := clockLayout(a, b)
		return fmt.Sprintf("the shards ran at different times: %s started at %s, %s at %s (UTC), %v apart: the shards of one run start within %v "+
			"(a tenth of the longest, at least %v; give them one start time)", names[first], a.UTC().Format(layout), names[last], b.UTC().Format(layout),
			apart.Round(time.Millisecond), slack.Round(time.Millisecond), startSlack)
	}
	return ""
}

// clockLayout is the layout of times in messages: the time of day, and
// the date too when the times are not all of one day (UTC).
func clockLayout(ts ...time.Time) string {
	for _, t := range ts {
		if y, m, d := t.UTC().Date(); y != ts[0].UTC().Year() || m != ts[0].UTC().Month() || d != ts[0].UTC().Day() {
			return "2006-01-02 15:04:05.999"
		}
	}
	return "15:04:05.999"
}

// disagreement says how the values of the results named by names differ,
// as "100 in a.json, 200 in b.json", or "" when they all agree. The
// largest group, when it has more than 3 results, is said last as "in the
// n other files".
func disagreement(names []string, value func(int) string) string {
	var values []string
	in := map[string][]string{}
	for i, name := range names {
		v := value(i)
		if _, seen := in[v]; !seen {
			values = append(values, v)
		}
		in[v] = append(in[v], name)
	}
	if len(values) < 2 {
		return ""
	}
	most := slices.MaxFunc(values, func(a, b string) int { return len(in[a]) - len(in[b]) })
	var parts []string
	for _, v := range values {
		if v != most || len(in[v]) <= 3 {
			parts = append(parts, quoted(v)+" in "+list(in[v]))
		}
	}
	if len(in[most]) > 3 {
		parts = append(parts, fmt.Sprintf("%s in the %d other files", quoted(most), len(in[most])))
	}
	return strings.Join(parts, ", ")
}

// quoted quotes a value that is empty or holds a space or a comma.
func quoted(v string) string {
	if v == "" || strings.ContainsAny(v, " ,") {
		return strconv.Quote(v)
	}
	return v
}

// list joins words as "a", "a and b", "a, b and c".
func list(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " and " + words[len(words)-1]
}

// plural picks one or many by n.
func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// indexes writes ranges of shard indexes of n, each its first and last,
// as "1/8, 3/8 and 5/8 to 7/8".
func indexes(ranges [][2]int, n int) string {
	var parts []string
	for _, r := range ranges {
		switch {
		case r[1]-r[0] >= 2:
			parts = append(parts, fmt.Sprintf("%d/%d to %d/%d", r[0], n, r[1], n))
		default:
			for i := r[0]; i <= r[1]; i++ {
				parts = append(parts, fmt.Sprintf("%d/%d", i, n))
			}
		}
	}
	return list(parts)
}
