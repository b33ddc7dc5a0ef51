package capture

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/thrive-loadtest/thrive/capture/wire"

	"github.com/thrive-loadtest/thrive/traces"
)

// BenchmarkSessionize files exchanges with 1 KB JSON answers under their
// sessions, as the relays do (begin, then complete): what finding sessions
// by what carries the identity costs per exchange, scanning answers for
// tokens and anonymous requests for values an answer gave, against a plain
// answer.
//
//	go test -run XXX -bench Sessionize -benchmem ./capture/
func BenchmarkSessionize(b *testing.B) {
	doc := `{"id":"proj-7f3a9c21e4b8","title":"Video summary agent","description":"` + strings.Repeat("word ", 180) + `","stars":1234}`
	for _, tc := range []struct {
		name   string
		header []traces.Header
		body   string
	}{
		{"cookie, json answer", []traces.Header{{Name: "Cookie", Value: "sessionid=abcdef0123456789"}}, doc},
		{"anonymous, json answer", []traces.Header{{Name: "User-Agent", Value: "browser"}}, doc},
		{"cookie, text answer", []traces.Header{{Name: "Cookie", Value: "sessionid=abcdef0123456789"}}, strings.Repeat("word ", 200)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			sz := newSessionizer(DefaultSessionCookies(), time.Minute, time.Hour, "b")
			t0 := time.Now()
			b.ReportAllocs()
			for i := range b.N {
				r := &record{start: t0.Add(time.Duration(i)), end: t0.Add(time.Duration(i) + time.Millisecond), method: "GET",
					url: fmt.Sprintf("/api/projects/%d/", i%100), reqHeader: tc.header, status: 200, conn: uint64(1 + i%6)}
				r.respBody = wire.NewTap(1 << 20)
				r.respBody.Observe([]byte(tc.body))
				r.key = sz.requestKeyOf(r.reqHeader, r.url, "10.0.0.1")
				sz.begin(r)
				sz.complete(r)
				if i%4096 == 4095 {
					sz.sweep(t0.Add(time.Duration(i)+2*time.Hour), true)
				}
			}
		})
	}
}
