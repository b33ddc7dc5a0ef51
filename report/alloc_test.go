//go:build !race

package report

import (
	"testing"
	"time"
)

func TestObserveAllocatesNothing(t *testing.T) {
	start := time.Now()
	r := NewRecorder(start)
	s := Sample{Kind: HTTP, Profile: "browse", Endpoint: "GET /x", Status: 200, Intended: start, Sent: start, Done: time.Millisecond}
	r.Observe(&s) // the endpoint and the second, once
	if n := testing.AllocsPerRun(1000, func() { r.Observe(&s) }); n != 0 {
		t.Fatalf("%v allocations per sample", n)
	}
}
