package prom

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/thrive-loadtest/thrive/report"
)

// TestJudge: how a query's values make a verdict, with each aggregate.
func TestJudge(t *testing.T) {
	at := time.Unix(1_800_000_000, 0)
	series := func(vs ...float64) Series {
		s := Series{}
		for i, v := range vs {
			s.Points = append(s.Points, Point{T: at.Add(time.Duration(i) * time.Second), V: v})
		}
		return s
	}
	for _, tc := range []struct {
		name, criterion string
		ss              []Series
		pass            bool
		value           float64
		actual          string
	}{
		{"every step holds", "prom:q < 0.1", []Series{series(0.02, 0.05, 0.04)}, true, 0.05, "worst 0.05 of 3 steps"},
		{"one step fails", "prom:q < 0.1", []Series{series(0.02, 0.15, 0.04)}, false, 0.15, "0.15 at 08:00:01: 1 of 3 steps fail"},
		{"the worst of those that fail", "prom:q > 10", []Series{series(12, 3, 9)}, false, 3, "3 at 08:00:01: 2 of 3 steps fail"},
		{"NaN steps are left out", "prom:q < 0.1", []Series{series(math.NaN(), 0.05)}, true, 0.05, "worst 0.05 of 1 steps"},
		{"every series", "prom:q <= 2", []Series{series(1, 2), series(2, 3)}, false, 3, "3 at 08:00:01: 1 of 4 values of 2 series fail"},
		{"avg", "prom:avg:q < 0.1", []Series{series(0.02, 0.15, 0.04)}, true, 0.07, "avg 0.07 of 3 steps"},
		{"max", "prom:max:q < 0.1", []Series{series(0.02, 0.15, 0.04)}, false, 0.15, "max 0.15 of 3 steps"},
		{"equal", "prom:q == 1", []Series{series(1, 1, 0)}, false, 0, "0 at 08:00:02: 1 of 3 steps fail"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := report.ParseCriterion(tc.criterion)
			if err != nil {
				t.Fatal(err)
			}
			v := Judge(c, tc.ss)
			if v.Pass != tc.pass || math.Abs(v.Value-tc.value) > 1e-9 || v.Actual != tc.actual || v.Error != "" {
				t.Errorf("got pass %v value %g actual %q error %q, want pass %v value %g actual %q", v.Pass, v.Value, v.Actual, v.Error, tc.pass, tc.value, tc.actual)
			}
		})
	}
	for _, tc := range []struct {
		name string
		ss   []Series
		want string
	}{
		{"no series", nil, "the query returned nothing over the run's time range"},
		{"only NaN", []Series{series(math.NaN(), math.NaN())}, "the query returned nothing but NaN (2 values"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := report.ParseCriterion("prom:max:q < 1")
			v := Judge(c, tc.ss)
			if v.Pass || !strings.Contains(v.Error, tc.want) || !strings.HasPrefix(v.Actual, "error: ") {
				t.Errorf("got %+v, want a failure whose error says %q", v, tc.want)
			}
		})
	}
}

func TestStep(t *testing.T) {
	at := time.Unix(1_800_000_000, 0)
	for _, tc := range []struct {
		run, want time.Duration
	}{{5 * time.Second, time.Second}, {10 * time.Minute, 2 * time.Second}, {time.Hour, 8 * time.Second}} {
		if got := Step(at, at.Add(tc.run)); got != tc.want {
			t.Errorf("Step over %v = %v, want %v", tc.run, got, tc.want)
		}
	}
}
