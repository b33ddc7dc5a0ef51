package report

import "testing"

// BenchmarkCountsDiffer: what telling one endpoint's statuses apart costs
// compare (once per endpoint, not per request): a typical status map each
// way countsDiffer can go.
func BenchmarkCountsDiffer(b *testing.B) {
	for _, bc := range []struct {
		name       string
		base, cand map[string]int64
	}{
		{"chi-square", map[string]int64{"200": 98000, "201": 1200, "304": 500, "404": 250, "500": 40},
			map[string]int64{"200": 97500, "201": 1300, "304": 520, "404": 600, "500": 80}},
		{"merged", map[string]int64{"200": 98000, "201": 1200, "304": 500, "404": 250, "500": 2, "502": 1, "503": 3},
			map[string]int64{"200": 97500, "201": 1300, "304": 520, "404": 600, "500": 4, "503": 1}},
		{"fisher", map[string]int64{"200": 1_000_000, "500": 1}, map[string]int64{"200": 1_000_000, "500": 9}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if p, _ := countsDiffer(bc.base, bc.cand); p < 0 || p > 1 {
					b.Fatal(p)
				}
			}
		})
	}
}
