package report

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// runOf records n requests to each of two endpoints with log-normal
// latencies around 20 ms, GET /slow's multiplied by slow.
func runOf(seed uint64, n int, slow float64, label string) *Result {
	start := time.Unix(1_800_000_000, 0)
	r := NewRecorder(start)
	rng := rand.New(rand.NewPCG(seed, 7))
	for range n {
		for _, ep := range []string{"GET /fast", "GET /slow"} {
			f := math.Exp(rng.NormFloat64() * 0.4)
			if ep == "GET /slow" {
				f *= slow
			}
			r.Observe(&Sample{Kind: HTTP, Profile: "browse", Endpoint: ep, Status: 200, Intended: start, Sent: start,
				Done: time.Duration(float64(20*time.Millisecond) * f)})
		}
	}
	return r.Result("http://t", label, start.Add(time.Minute), RunParams{Trace: "t", Users: 10, RunTime: "1m0s"})
}

func TestMannWhitney(t *testing.T) {
	h := func(vals ...int64) *hdrhistogram.Histogram {
		x := newHist()
		for _, v := range vals {
			_ = x.RecordValue(v)
		}
		return x
	}
	// Identical samples: no evidence at all.
	if p := MannWhitney(h(1, 2, 3, 4, 5, 6, 7, 8), h(1, 2, 3, 4, 5, 6, 7, 8)); p < 0.9 {
		t.Errorf("identical: p %.3g", p)
	}
	// Fully separated groups of 8: U = 0; the normal approximation with
	// continuity correction gives p ≈ 0.0009 (the exact test 0.00016).
	a, b := h(1, 2, 3, 4, 5, 6, 7, 8), h(11, 12, 13, 14, 15, 16, 17, 18)
	if p := MannWhitney(a, b); p > 0.002 || p < 0.0003 {
		t.Errorf("separated: p %.3g", p)
	}
	if MannWhitney(a, b) != MannWhitney(b, a) {
		t.Error("not symmetric")
	}
}

func TestCompare(t *testing.T) {
	base := runOf(1, 2000, 1, "v1")
	for _, tc := range []struct {
		name    string
		cand    *Result
		noise   *Result
		verdict string
		slow    string // GET /slow's verdict
	}{
		{"same build", runOf(3, 2000, 1, "v1"), nil, NoChange, NoChange},
		{"30% slower", runOf(3, 2000, 1.3, "v2"), nil, Regression, Regression},
		{"5% slower, within the allowed 10%", runOf(3, 2000, 1.05, "v2"), nil, NoChange, NoChange},
		{"30% faster", runOf(3, 2000, 1/1.3, "v2"), nil, Improvement, Improvement},
		{"too few requests", runOf(3, 5, 2, "v2"), nil, NoChange, TooFew},
	} {
		c, err := Compare(base, tc.cand, tc.noise, 0.1)
		if err != nil {
			t.Fatal(err)
		}
		var slow Change
		for _, e := range c.Endpoints {
			if e.Name == "GET /slow" {
				slow = e
			}
		}
		if slow.Verdict != tc.slow || (tc.verdict != NoChange && c.Verdict != tc.verdict) {
			t.Errorf("%s: verdict %s, GET /slow %s (p95 %+.1f%%, p %.3g); want %s, %s", tc.name, c.Verdict, slow.Verdict, 100*slow.P95Change, slow.PValue, tc.verdict, tc.slow)
		}
	}
	// A noisy baseline: a second baseline run 25% off its first makes a 20%
	// slowdown no regression.
	noisy := runOf(4, 2000, 1.25, "v1 noisy")
	c, err := Compare(base, runOf(3, 2000, 1.2, "v2"), noisy, 0.1)
	if err != nil {
		t.Fatal(err)
	}
	if c.Verdict == Regression {
		t.Errorf("a change inside the baseline's own noise was flagged: %+v", c.Endpoints)
	}
	// Different runs warn; markdown and JSON render.
	other := runOf(3, 2000, 1.3, "v2")
	other.Params.Users = 20
	c, err = Compare(base, other, nil, 0.1)
	if err != nil {
		t.Fatal(err)
	}
	var md, txt bytes.Buffer
	c.WriteText(&md, true)
	c.WriteText(&txt, false)
	if !strings.Contains(md.String(), "| endpoint | profile |") || !strings.Contains(md.String(), "differ in users") ||
		!strings.Contains(txt.String(), "verdict: REGRESSION") {
		t.Fatalf("markdown\n%s\ntext\n%s", md.String(), txt.String())
	}
	if _, err := json.Marshal(c); err != nil {
		t.Fatal(err)
	}
}
