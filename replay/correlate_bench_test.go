//go:build !race

package replay

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/thrive-loadtest/thrive/traces"
)

// BenchmarkCorrelation plays a browse-like session of 8 requests whose
// first answer (a 1 KB JSON document, as every answer here) gives an id
// that 3 later requests send in their paths, with and without correlation.
// The difference per request is what correlation costs: finding the value
// in the live answer, and writing the requests that carry it.
//
//	go test -run XXX -bench Correlation -cpu 1 -count 3 ./replay/
func BenchmarkCorrelation(b *testing.B) {
	for _, coding := range []string{"", "gzip"} {
		benchmarkCorrelation(b, coding)
	}
}

// benchmarkCorrelation is BenchmarkCorrelation with answers encoded by
// coding (none when empty): a gzip answer is decoded only when a value must
// be taken from it.
func benchmarkCorrelation(b *testing.B, coding string) {
	// The live server gives another id than the recording had, so every
	// request that sends it is rewritten.
	const id, live = "proj-7f3a9c21e4b8", "proj-live-5d2e9a"
	doc := `{"id":"` + id + `","title":"Video summary agent","description":"` + strings.Repeat("word ", 180) + `","stars":1234}`
	liveDoc := []byte(strings.Replace(doc, id, live, 1))
	encode := func(body string) []byte {
		out, err := traces.Encode([]byte(body), []string{coding})
		if err != nil || coding == "" {
			return []byte(body)
		}
		return out
	}
	head := "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
	var respHeader []traces.Header
	if coding != "" {
		liveDoc = encode(string(liveDoc))
		head += "Content-Encoding: " + coding + "\r\n"
		respHeader = []traces.Header{{Name: "Content-Encoding", Value: coding}}
	}
	answer := fmt.Sprintf("%sContent-Length: %d\r\n\r\n%s", head, len(liveDoc), liveDoc)
	srv := staticServerAnswering(b, []byte(answer))
	var exs []traces.Exchange
	for i, url := range []string{"/api/projects/new/", "/api/tools/", "/api/projects/" + id + "/", "/api/search/?q=x",
		"/api/projects/" + id + "/stars/", "/api/tools/", "/api/projects/" + id + "/", "/api/projects/"} {
		body := doc
		if i > 0 { // only the first answer gave the id
			body = strings.Replace(doc, id, "proj-000000000000", 1)
		}
		exs = append(exs, traces.Exchange{Offset: time.Duration(i) * time.Millisecond, Method: "GET", URL: url, Status: 200,
			RespHeader: respHeader, RespBody: traces.Body{Data: encode(body)}})
	}
	s := &traces.Session{ID: "a", Profile: "browse", Exchanges: exs}
	for _, tc := range []struct {
		name string
		opts []Option
	}{
		{"plain", []Option{WithoutCorrelation(), WithPacing(Think)}},
		{"correlated", []Option{WithPacing(Think)}},
	} {
		name := tc.name
		if coding != "" {
			name += "-" + coding
		}
		b.Run(name, func(b *testing.B) {
			lib := FromSessions([]*traces.Session{s})
			if tc.name == "correlated" && len(lib.scripts[0].vars) != 1 {
				b.Fatalf("%d variables, want the id", len(lib.scripts[0].vars))
			}
			e, err := New(srv, lib, tc.opts...)
			if err != nil {
				b.Fatal(err)
			}
			sink := &countSink{}
			u := &user{e: e, profile: "browse", sink: sink, hard: context.Background(), scale: 0, timer: time.NewTimer(time.Hour)}
			defer u.conns.closeAll(e)
			stop := time.Now().Add(time.Hour)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				u.play(context.Background(), stop, 0, time.Now())
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(8*b.N), "ns/request")
		})
	}
}

// BenchmarkLoadPages is what preparing a session of server-rendered pages
// costs at load: 20 pages of 20 rows, each with a link and an edit and a
// delete form of its own token, each page followed by the submission of
// one of its forms. Forms, links and submissions are all read.
//
//	go test -run XXX -bench LoadPages -benchmem ./replay/
func BenchmarkLoadPages(b *testing.B) {
	s := &traces.Session{}
	for p := range 20 {
		var page strings.Builder
		page.WriteString("<html><body>")
		for r := range 20 {
			id := 100*p + r
			fmt.Fprintf(&page, `<a href="/items/%d">item</a><form action="/items/%d" method="post"><input type="hidden" name="_method" value="patch">`+
				`<input type="hidden" name="token" value="tok-%d-edit"></form><form action="/items/%d" method="post">`+
				`<input type="hidden" name="_method" value="delete"><input type="hidden" name="token" value="tok-%d-del"></form>`, id, id, id, id, id)
		}
		page.WriteString("</body></html>")
		id := 100*p + 7
		s.Exchanges = append(s.Exchanges,
			traces.Exchange{Method: "GET", URL: fmt.Sprintf("/items?page=%d", p), Status: 200, RespBody: traces.Body{Data: []byte(page.String())}},
			traces.Exchange{Method: "POST", URL: fmt.Sprintf("/items/%d", id), Status: 303,
				ReqBody: traces.Body{Data: []byte(fmt.Sprintf("_method=delete&token=tok-%d-del", id))}})
	}
	b.ReportAllocs()
	for b.Loop() {
		if lib := FromSessions([]*traces.Session{s}); len(lib.scripts[0].vars) == 0 {
			b.Fatal("no variable found")
		}
	}
}
