package report

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// build is how a made-up build answers GET /api/items/{id}/.
type build struct {
	seed      uint64
	dropPrice float64 // share of answers without $.price
	newField  bool    // answers carry $.discount
	idString  bool    // $.id is a string
	fail      float64 // share of 500s
	long      int     // times as many tags
	promo     float64 // share of answers with $.promo, which comes and goes on its own
	also      string  // another endpoint that answers the same, if any
}

// answersOf records 2,000 requests of b, as a run's recorder would.
func answersOf(t *testing.T, b build) *Result {
	t.Helper()
	start := time.Unix(1_800_000_000, 0)
	rec := NewRecorder(start)
	rng := rand.New(rand.NewPCG(b.seed, 7))
	var a Answer
	for i := range 2000 {
		a.Reset()
		var doc strings.Builder
		id := fmt.Sprint(i)
		if b.idString {
			id = `"` + id + `"`
		}
		fmt.Fprintf(&doc, `{"id": %s, "name": "item"`, id)
		if rng.Float64() >= b.dropPrice {
			doc.WriteString(`, "price": 9.5`)
		}
		if b.newField {
			doc.WriteString(`, "discount": 0.1`)
		}
		if rng.Float64() < b.promo {
			doc.WriteString(`, "promo": "x"`)
		}
		doc.WriteString(`, "tags": [`)
		for j := range 3 * max(b.long, 1) {
			if j > 0 {
				doc.WriteString(",")
			}
			doc.WriteString(`"tag"`)
		}
		doc.WriteString("]}")
		a.Size = int64(doc.Len())
		a.ReadJSON([]byte(doc.String()))
		a.Header("content-type", []byte("application/json"))
		status := 200
		if rng.Float64() < b.fail {
			status = 500
		}
		at := start.Add(time.Duration(i) * time.Millisecond)
		done := time.Duration(20+rng.IntN(10)) * time.Millisecond
		rec.Observe(&Sample{Kind: HTTP, Profile: "browse", Endpoint: "GET /api/items/{id}/", Status: status, Expected: 200,
			Intended: at, Sent: at, Done: done, Answer: &a})
		if b.also != "" {
			rec.Observe(&Sample{Kind: HTTP, Profile: "browse", Endpoint: b.also, Status: status, Expected: 200,
				Intended: at, Sent: at, Done: done, Answer: &a})
		}
	}
	return rec.Result("http://t", "", start.Add(3*time.Second), RunParams{Users: 10})
}

// TestCompareAnswers: each change a build makes to its answers is found,
// with its verdict, and nothing else; the same build with another seed
// shows no difference; --ignore and a noise run silence what they should.
func TestCompareAnswers(t *testing.T) {
	base := answersOf(t, build{seed: 1, promo: 0.5})
	for _, tc := range []struct {
		name   string
		cand   build
		ignore []string
		noise  *build
		want   []string // what, detail, verdict of each difference
	}{
		{"the same build", build{seed: 2, promo: 0.5}, nil, nil, nil},
		{"a field gone from 30%", build{seed: 2, promo: 0.5, dropPrice: 0.3}, nil, nil, []string{"field gone $.price regression"}},
		{"a field gone, ignored", build{seed: 2, promo: 0.5, dropPrice: 0.3}, []string{"$.price"}, nil, nil},
		{"a new field", build{seed: 2, promo: 0.5, newField: true}, nil, nil, []string{"field new $.discount change"}},
		{"a type changed", build{seed: 2, promo: 0.5, idString: true}, nil, nil, []string{"field type $.id change"}},
		{"500 for 3%", build{seed: 2, promo: 0.5, fail: 0.03}, nil, nil, []string{"status 5xx and errors regression"}},
		{"a list ten times as long", build{seed: 2, promo: 0.5, long: 10}, nil, nil, []string{"size median +", "change"}},
		{"a field that comes and goes", build{seed: 2, promo: 0.3}, nil, nil, []string{"field gone $.promo regression"}},
		{"a field that comes and goes, with noise", build{seed: 2, promo: 0.3}, nil, &build{seed: 3, promo: 0.7}, nil},
	} {
		var noise *Result
		if tc.noise != nil {
			noise = answersOf(t, *tc.noise)
		}
		c, err := Compare(base, answersOf(t, tc.cand), noise, 0.1, tc.ignore...)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, d := range c.Behaviour {
			got = append(got, d.What+" "+d.Detail+" "+d.Verdict)
		}
		ok := len(got) == len(tc.want) || len(tc.want) == 2 && len(got) == 1
		for i := range min(len(got), len(tc.want)) {
			ok = ok && strings.HasPrefix(got[i], tc.want[i]) && strings.HasSuffix(got[i], tc.want[len(tc.want)-1])
		}
		if !ok {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
		regressed := strings.Contains(strings.Join(tc.want, " "), "regression")
		if (c.Failed() != nil) != regressed {
			t.Errorf("%s: failed %v, want a regression %v", tc.name, c.Failed(), regressed)
		}
	}
}

// TestCompareAnswersFieldGoneTwice: a field gone from two endpoints'
// answers (a serializer both use) is listed for each: a field gone hides
// its own sub-paths, within its endpoint only.
func TestCompareAnswersFieldGoneTwice(t *testing.T) {
	const also = "PATCH /api/items/{id}/"
	c, err := Compare(answersOf(t, build{seed: 1, also: also}), answersOf(t, build{seed: 2, dropPrice: 0.3, also: also}), nil, 0.1)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range c.Behaviour {
		got = append(got, d.Name+" "+d.What+" "+d.Detail+" "+d.Verdict)
	}
	want := []string{"GET /api/items/{id}/ field gone $.price regression", also + " field gone $.price regression"}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("%q, want %q", got, want)
	}
}

// TestCompareAnswersFalseAlarms: the same build against itself, 50 times
// with other seeds, its answers' fields coming and going at random and
// 1% of its requests failing: at most one comparison in 50 reports a
// regression (the bound: false alarms at most 2%).
func TestCompareAnswersFalseAlarms(t *testing.T) {
	base := answersOf(t, build{seed: 1, promo: 0.5, dropPrice: 0.2, fail: 0.01})
	alarms := 0
	for seed := range uint64(50) {
		c, err := Compare(base, answersOf(t, build{seed: 100 + seed, promo: 0.5, dropPrice: 0.2, fail: 0.01}), nil, 0.1)
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Behaviour) > 0 {
			alarms++
			t.Logf("seed %d: %+v", 100+seed, c.Behaviour)
		}
	}
	if alarms > 1 {
		t.Errorf("%d of 50 comparisons of a build with itself found a difference", alarms)
	}
}
