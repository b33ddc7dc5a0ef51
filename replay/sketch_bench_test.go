//go:build !race

package replay

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/thrive-loadtest/thrive/report"
	"github.com/thrive-loadtest/thrive/traces"
)

// BenchmarkSketch is the cost of sketching what the target answers
// (report.AnswerStats): one request sent and its answer read and
// recorded by a Recorder, with the sketch and WithoutSketch, for a small
// JSON answer and a list of 20 objects (2.6 KB). The server on loopback
// runs in the same process: its work is part of each figure, as a real
// target's would be more.
func BenchmarkSketch(b *testing.B) {
	var list strings.Builder
	list.WriteString(`{"count": 20, "next": null, "results": [`)
	for i := range 20 {
		if i > 0 {
			list.WriteString(", ")
		}
		fmt.Fprintf(&list, `{"id": %d, "name": "project %d", "owner": {"id": 7, "email": "u7@example.com"}, "tags": ["a", "b"], "active": true}`, i, i)
	}
	list.WriteString("]}")
	for _, body := range []string{`{"ok":true}`, list.String()} {
		answer := fmt.Appendf(nil, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		target := staticServerAnswering(b, answer)
		lib := FromSessions([]*traces.Session{{ID: "a", Profile: "browse", Exchanges: []traces.Exchange{{
			Method: "GET", URL: "/api/projects/?page=2", Status: 200,
			ReqHeader: []traces.Header{{Name: "Accept", Value: "application/json"}},
		}}}})
		for _, sketch := range []bool{false, true} {
			b.Run(fmt.Sprintf("body=%dB/sketch=%v", len(body), sketch), func(b *testing.B) {
				var opts []Option
				if !sketch {
					opts = append(opts, WithoutSketch())
				}
				e, err := New(target, lib, opts...)
				if err != nil {
					b.Fatal(err)
				}
				rec := report.NewRecorder(time.Now())
				u := &user{e: e, profile: "browse", sink: rec, hard: context.Background(), scale: 1}
				st, raw := &lib.scripts[0].steps[0], e.raw[0][0]
				u.send(st, raw, time.Now(), nil, nil, false, nil, 0) // dial, warm the pools
				b.ReportAllocs()
				for b.Loop() {
					u.send(st, raw, time.Now(), nil, nil, false, nil, 0)
				}
				b.StopTimer()
				u.conns.closeAll(e)
				res := rec.Result(target, "", time.Now(), report.RunParams{})
				if got := res.Endpoints[0].Answers != nil; got != sketch {
					b.Fatalf("sketch %v: answers sketched %v", sketch, got)
				}
			})
		}
	}
}
