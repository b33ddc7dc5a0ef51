package report

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkPeek: what a live page costs a run each second: a peek at a
// recorder of 30 endpoints and 10 minutes of seconds, and the page's
// figures made of it (ViewJSON).
func BenchmarkPeek(b *testing.B) {
	start := time.Unix(1_800_000_000, 0)
	rec := NewRecorder(start)
	for i := range 60_000 {
		at := start.Add(time.Duration(i) * 10 * time.Millisecond)
		rec.Observe(&Sample{Kind: HTTP, Profile: "browse", Endpoint: fmt.Sprintf("GET /e%d", i%30), Status: 200, Expected: 200,
			Intended: at, Sent: at, Done: time.Duration(1+i%500) * time.Millisecond})
	}
	now := start.Add(10 * time.Minute)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ViewJSON(rec.Peek(now)); err != nil {
			b.Fatal(err)
		}
	}
}
