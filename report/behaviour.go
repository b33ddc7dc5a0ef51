package report

import (
	"fmt"
	"iter"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Comparing what two builds answered. A build regresses when it answers
// differently as much as when it is slower: a field gone from a JSON
// answer, a status that became 500 for some of an endpoint's requests, a
// chat reply that streams half the tokens, a list ten times as long. Each
// run sketches its answers (AnswerStats); compare holds the sketches of
// the same endpoint against each other, each difference with a test fit
// for what it counts: shares of answers that had a field or a header (two
// proportions: Fisher's exact test for small counts, chi-square else),
// the mix of statuses or of a field's value types (chi-square, or Fisher
// on the category that moved most when counts are small), and sizes and
// frames per reply (Mann-Whitney U on their histograms). With hundreds of
// fields tested at once some would pass p < 0.01 by chance: a difference
// is reported only when its p-value is below 0.01 divided by the number
// of tests of its family made (Bonferroni; statuses, one per endpoint,
// are one family, the answers' fields, headers, sizes and frames another) and it moved by at least a point of share
// (or a quarter of its median, for sizes and frames). Given a second run
// of the base (--noise), a difference the base shows against itself too
// (a field that comes and goes on its own, a status that wanders) is not
// reported.

// A Difference is a change in what an endpoint answered.
type Difference struct {
	Kind    string `json:"kind"` // http, ws-reply
	Name    string `json:"name"`
	Profile string `json:"profile,omitempty"`
	// What changed: "status", "field gone", "field new", "field type",
	// "header gone", "header new", "size", "frames".
	What string `json:"what"`
	// Detail names it: the field's path, the header, the statuses.
	Detail string `json:"detail"`
	// Base and Cand say how each run had it: "100% of 2,130 answers".
	Base string `json:"base"`
	Cand string `json:"candidate"`
	// Share is how far it moved: the change of share (0.02 is two points)
	// or of the median (0.5 is half again as large).
	Share   float64 `json:"share"`
	PValue  float64 `json:"p_value"`
	Test    string  `json:"test"`
	Verdict string  `json:"verdict"` // regression or change
}

// Change is the verdict of a difference that is no regression.
const Changed = "change"

// Thresholds of a difference worth reporting.
const (
	minShare  = 0.01 // a point of share of answers
	minMedian = 0.25 // a quarter of the median size or frames
)

// answerTest is a difference found, before the correction for the
// number of tests made.
type answerTest struct {
	d    Difference
	key  string // the same difference in another pair of runs
	gone bool   // a field gone: its sub-paths are not listed too
}

// compareAnswers finds what the candidate answered differently from the
// base, endpoint by endpoint, leaving out paths under ignore and, with a
// second run of the base, what the base does on its own.
func (c *Comparison) compareAnswers(base, cand, noise *Result, ignore []string) error {
	found, tests, err := answerDiffs(base, cand, ignore)
	if err != nil {
		return err
	}
	wanders := map[string]bool{}
	if noise != nil {
		nf, _, err := answerDiffs(base, noise, ignore)
		if err != nil {
			return fmt.Errorf("noise: %w", err)
		}
		for _, t := range nf {
			if t.d.PValue < c.Alpha {
				wanders[t.key] = true
			}
		}
	}
	// Two families of tests, each corrected for its own number: one of
	// statuses per endpoint, and one of everything the answers had.
	alpha := func(t answerTest) float64 {
		if t.d.What == "status" {
			return c.Alpha / float64(max(tests.status, 1))
		}
		return c.Alpha / float64(max(tests.shape, 1))
	}
	gone := map[string][]string{} // endpoint → the fields gone from its answers
	for _, t := range found {
		ep := t.d.Kind + " " + t.d.Name + " [" + t.d.Profile + "]"
		if t.d.PValue >= alpha(t) || wanders[t.key] || under(t.d.Detail, gone[ep]) && strings.HasPrefix(t.d.What, "field") {
			continue
		}
		if t.gone {
			gone[ep] = append(gone[ep], t.d.Detail)
		}
		c.Behaviour = append(c.Behaviour, t.d)
		if t.d.Verdict == Regression {
			c.Verdict = Regression
		}
	}
	c.StatusTests, c.AnswerTests = tests.status, tests.shape
	return nil
}

// testCounts counts the tests of each family made.
type testCounts struct{ status, shape int }

// under reports whether path is one of paths or lies under one.
func under(path string, paths []string) bool {
	for _, p := range paths {
		if path == p || strings.HasPrefix(path, p+".") || strings.HasPrefix(path, p+"[") {
			return true
		}
	}
	return false
}

// answerDiffs returns the differences between the answers of a and b
// with their p-values, uncorrected, in the order of the endpoints and
// paths, and how many tests it made.
func answerDiffs(a, b *Result, ignore []string) ([]answerTest, testCounts, error) {
	bs := map[string]*EndpointStats{}
	for i := range b.Endpoints {
		e := &b.Endpoints[i]
		bs[e.Kind+" "+e.Name+" ["+e.Profile+"]"] = e
	}
	var out []answerTest
	var tests testCounts
	for i := range a.Endpoints {
		ea := &a.Endpoints[i]
		key := ea.Kind + " " + ea.Name + " [" + ea.Profile + "]"
		eb := bs[key]
		if eb == nil {
			continue
		}
		diff := func(what, detail, base, cand string, share, p float64, test, verdict string) {
			// The same difference in a noise run: a path or header that
			// comes and goes, a type, a status mix, a size that moves.
			same := key + " " + strings.TrimSuffix(strings.TrimSuffix(what, " gone"), " new")
			if what != "size" && what != "frames" && what != "status" {
				same += " " + detail
			}
			out = append(out, answerTest{key: same, gone: what == "field gone", d: Difference{Kind: ea.Kind, Name: ea.Name, Profile: ea.Profile,
				What: what, Detail: detail, Base: base, Cand: cand, Share: share, PValue: p, Test: test, Verdict: verdict}})
		}
		if ea.Kind == "http" || ea.Kind == "long-poll" {
			tests.status++
			if d, ok := statusDiff(ea, eb); ok {
				diff("status", d.Detail, d.Base, d.Cand, d.Share, d.PValue, d.Test, d.Verdict)
			}
		}
		sa, sb := ea.Answers, eb.Answers
		if sa == nil || sb == nil || sa.Answers == 0 || sb.Answers == 0 {
			continue
		}
		n, err := shapeDiffs(sa, sb, ignore, diff)
		if err != nil {
			return nil, testCounts{}, fmt.Errorf("%s: %w", key, err)
		}
		tests.shape += n
	}
	return out, tests, nil
}

// statusDiff compares the outcomes of two runs' requests of an endpoint:
// statuses and transport errors. More of them failing (5xx, errors) is a
// regression; another mix (200 to 304, to 404) is a change.
func statusDiff(a, b *EndpointStats) (Difference, bool) {
	ma, mb := outcomes(a), outcomes(b)
	na, nb := sum(ma), sum(mb)
	if na == 0 || nb == 0 {
		return Difference{}, false
	}
	d := Difference{What: "status", Base: mix(ma, na), Cand: mix(mb, nb)}
	fa, fb := bad(ma), bad(mb)
	if grew := float64(fb)/float64(nb) - float64(fa)/float64(na); grew >= minShare/2 {
		d.Detail, d.Share, d.PValue, d.Test, d.Verdict = "5xx and errors", grew, proportionsDiffer(fa, na, fb, nb), "two proportions", Regression
		return d, true
	}
	moved, most := mostMoved(ma, na, mb, nb)
	if math.Abs(most) < minShare {
		return Difference{}, false
	}
	d.Detail = moved
	d.Share, d.Verdict = most, Changed
	d.PValue, d.Test = countsDiffer(ma, mb)
	return d, true
}

// mostMoved returns the category whose share moved most from ma (of na)
// to mb (of nb), and by how much (a share, signed).
func mostMoved(ma map[string]int64, na int64, mb map[string]int64, nb int64) (key string, by float64) {
	for _, k := range slices.Sorted(keysOf(ma, mb)) {
		if m := float64(mb[k])/float64(nb) - float64(ma[k])/float64(na); math.Abs(m) > math.Abs(by) {
			key, by = k, m
		}
	}
	return key, by
}

// outcomes counts an endpoint's requests by status ("200") and by error
// ("error: timeout").
func outcomes(e *EndpointStats) map[string]int64 {
	m := map[string]int64{}
	for code, n := range e.StatusCodes {
		m[code] += n
	}
	for kind, n := range e.Errors {
		m["error: "+string(kind)] += n
	}
	return m
}

// bad counts the outcomes that are the server's failure: 5xx and errors.
func bad(m map[string]int64) int64 {
	var n int64
	for k, c := range m {
		if strings.HasPrefix(k, "5") || strings.HasPrefix(k, "error: ") {
			n += c
		}
	}
	return n
}

func sum(m map[string]int64) int64 {
	var n int64
	for _, c := range m {
		n += c
	}
	return n
}

// keysOf yields the keys of ms, each once.
func keysOf[V any](ms ...map[string]V) iter.Seq[string] {
	return func(yield func(string) bool) {
		seen := map[string]bool{}
		for _, m := range ms {
			for k := range m {
				if !seen[k] {
					seen[k] = true
					if !yield(k) {
						return
					}
				}
			}
		}
	}
}

// mix writes a distribution of outcomes, the largest first: "200 97.9%,
// 500 2.1% of 1,204".
func mix(m map[string]int64, n int64) string {
	keys := slices.Sorted(keysOf(m))
	slices.SortStableFunc(keys, func(x, y string) int { return int(min(max(m[y]-m[x], -1), 1)) })
	var parts []string
	for i, k := range keys {
		if i == 4 {
			parts = append(parts, "…")
			break
		}
		parts = append(parts, fmt.Sprintf("%s %s", k, percent(float64(m[k])/float64(n))))
	}
	return strings.Join(parts, ", ") + " of " + thousands(n)
}

// percent writes a share as a percentage, to a tenth of a point.
func percent(f float64) string { return strconv.FormatFloat(100*f, 'f', 1, 64) + "%" }

// thousands writes n with thousands separated: 12,345.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// shapeDiffs compares two sketches of an endpoint's answers: fields,
// their types, headers, sizes and frames. It returns how many tests it
// made.
func shapeDiffs(a, b *AnswerStats, ignore []string, diff func(what, detail, base, cand string, share, p float64, test, verdict string)) (int, error) {
	tests := 0
	share := func(n, of int64) string {
		return fmt.Sprintf("%s of %s answers", percent(float64(n)/float64(max(of, 1))), thousands(of))
	}
	// presence lists a field or header that xa of na answers had in one
	// run and xb of nb in the other, when its share moved a point or more:
	// gone (with the verdict given) or new (a change).
	presence := func(what, detail string, xa, na, xb, nb int64, gone string) {
		ra, rb := float64(xa)/float64(na), float64(xb)/float64(nb)
		switch {
		case ra-rb >= minShare:
			diff(what+" gone", detail, share(xa, na), share(xb, nb), rb-ra, proportionsDiffer(xa, na, xb, nb), "two proportions", gone)
		case rb-ra >= minShare:
			diff(what+" new", detail, share(xa, na), share(xb, nb), rb-ra, proportionsDiffer(xa, na, xb, nb), "two proportions", Changed)
		}
	}
	if a.JSON > 0 && b.JSON > 0 {
		fa, fb := map[string]*FieldStats{}, map[string]*FieldStats{}
		for i := range a.Fields {
			fa[a.Fields[i].Path] = &a.Fields[i]
		}
		for i := range b.Fields {
			fb[b.Fields[i].Path] = &b.Fields[i]
		}
		for _, path := range slices.Sorted(keysOf(fa, fb)) {
			if under(path, ignore) {
				continue
			}
			var xa, xb int64
			if f := fa[path]; f != nil {
				xa = f.Answers
			}
			if f := fb[path]; f != nil {
				xb = f.Answers
			}
			tests++
			presence("field", path, xa, a.JSON, xb, b.JSON, Regression)
			if fa[path] == nil || fb[path] == nil || xa == 0 || xb == 0 {
				continue
			}
			ta, tb := fa[path].Types, fb[path].Types
			tests++
			if _, by := mostMoved(ta, xa, tb, xb); math.Abs(by) >= minShare {
				p, test := countsDiffer(ta, tb)
				diff("field type", path, typeMix(ta, xa), typeMix(tb, xb), by, p, test, Changed)
			}
		}
	}
	for _, h := range slices.Sorted(keysOf(a.Headers, b.Headers)) {
		tests++
		presence("header", h, a.Headers[h], a.Answers, b.Headers[h], b.Answers, Changed)
	}
	for _, x := range []struct {
		what   string
		ha, hb []byte
		qa, qb Counts
		unit   string
	}{{"size", a.SizeHist, b.SizeHist, a.Size, b.Size, "B"}, {"frames", a.FramesHist, b.FramesHist, a.Frames, b.Frames, " frames"}} {
		if len(x.ha) == 0 || len(x.hb) == 0 {
			continue
		}
		tests++
		moved := rel(float64(x.qa.P50), float64(x.qb.P50))
		if math.Abs(moved) < minMedian {
			continue
		}
		da, err := hdrhistogram.Decode(x.ha)
		if err != nil {
			return 0, fmt.Errorf("%s histogram: %w", x.what, err)
		}
		db, err := hdrhistogram.Decode(x.hb)
		if err != nil {
			return 0, fmt.Errorf("%s histogram: %w", x.what, err)
		}
		q := func(c Counts) string { return fmt.Sprintf("p50 %d%s, p90 %d%s", c.P50, x.unit, c.P90, x.unit) }
		diff(x.what, "median "+signedPct(moved), q(x.qa), q(x.qb), moved, MannWhitney(da, db), "Mann-Whitney U", Changed)
	}
	return tests, nil
}

// typeMix writes the types a field's values had: "number 100%", "string
// 60%, null 40%".
func typeMix(m map[string]int64, n int64) string {
	keys := slices.Sorted(keysOf(m))
	slices.SortStableFunc(keys, func(x, y string) int { return int(min(max(m[y]-m[x], -1), 1)) })
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+" "+percent(float64(m[k])/float64(n)))
	}
	return strings.Join(parts, ", ")
}

func signedPct(f float64) string { return fmt.Sprintf("%+.0f%%", 100*f) }
