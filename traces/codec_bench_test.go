package traces_test

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/thrive-loadtest/thrive/traces"
	"github.com/thrive-loadtest/thrive/traces/synth"
)

// benchCorpus is the realistic synthetic corpus the benchmarks share: 2,000
// sessions of the 60/30/10 browse/chat/import mix.
type benchCorpus struct {
	sessions  []*traces.Session
	exchanges int // HTTP exchanges
	frames    int // WebSocket frames
	raw       []byte
	gzipped   int
	file      []byte
}

func newBenchCorpus(b *testing.B) *benchCorpus {
	b.Helper()
	c := &benchCorpus{sessions: synth.New(42).Sessions(2000)}
	for _, s := range c.sessions {
		c.raw = synth.AppendRaw(c.raw, s)
		c.exchanges += len(s.Exchanges)
		for i := range s.Exchanges {
			if ws := s.Exchanges[i].WebSocket; ws != nil {
				c.frames += len(ws.Frames)
			}
		}
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	if _, err := zw.Write(c.raw); err != nil {
		b.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		b.Fatal(err)
	}
	c.gzipped = gz.Len()
	c.file = write(b, c.sessions)
	return c
}

func (c *benchCorpus) report(b *testing.B) {
	b.ReportMetric(float64(c.exchanges)*float64(b.N)/b.Elapsed().Seconds(), "exchanges/s")
	b.ReportMetric(float64(c.frames)*float64(b.N)/b.Elapsed().Seconds(), "frames/s")
	b.ReportMetric(100*float64(len(c.file))/float64(len(c.raw)), "%raw")
	b.ReportMetric(100*float64(len(c.file))/float64(c.gzipped), "%gzip")
}

// BenchmarkWrite encodes and compresses the corpus. MB/s counts the raw
// HTTP/1.1 bytes the sessions stand for; exchanges/s counts HTTP exchanges and
// frames/s WebSocket frames, over the same time; %raw and %gzip give the trace's size against the raw
// bytes and against the same bytes gzipped.
func BenchmarkWrite(b *testing.B) {
	c := newBenchCorpus(b)
	b.SetBytes(int64(len(c.raw)))
	b.ReportAllocs()
	for b.Loop() {
		w, err := traces.NewWriter(io.Discard, traces.Meta{})
		if err != nil {
			b.Fatal(err)
		}
		for _, s := range c.sessions {
			if err := w.Write(s); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
	c.report(b)
}

// BenchmarkRead decodes the corpus into one reused Session, as a streaming
// consumer such as `thrive traces inspect` does.
func BenchmarkRead(b *testing.B) {
	c := newBenchCorpus(b)
	b.SetBytes(int64(len(c.raw)))
	b.ReportAllocs()
	var s traces.Session
	for b.Loop() {
		r, err := traces.NewReader(bytes.NewReader(c.file))
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for {
			err := r.Next(&s)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != len(c.sessions) {
			b.Fatalf("read %d sessions, want %d", n, len(c.sessions))
		}
	}
	c.report(b)
}

// BenchmarkReadKeep decodes the corpus into a new Session each time, as the
// replay loader does when it keeps every session.
func BenchmarkReadKeep(b *testing.B) {
	c := newBenchCorpus(b)
	b.SetBytes(int64(len(c.raw)))
	b.ReportAllocs()
	for b.Loop() {
		r, err := traces.NewReader(bytes.NewReader(c.file))
		if err != nil {
			b.Fatal(err)
		}
		for {
			s := new(traces.Session)
			err := r.Next(s)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	c.report(b)
}

// BenchmarkWriteLong encodes one long session, as a capture writes a
// client's visit of hours: in parts of 1,000 exchanges and whole, 20,000
// exchanges of a GET and a 1 KB JSON answer.
func BenchmarkWriteLong(b *testing.B) {
	body := []byte(`{"id":7,"title":"` + strings.Repeat("word ", 200) + `"}`)
	ex := traces.Exchange{Method: "GET", URL: "/api/projects/7/", Host: "app.test", Status: 200,
		ReqHeader:  []traces.Header{{Name: "User-Agent", Value: "bench"}, {Name: "Accept", Value: "application/json"}},
		RespHeader: []traces.Header{{Name: "Content-Type", Value: "application/json"}},
		RespBody:   traces.Body{Data: body}}
	s := &traces.Session{ID: "long", Profile: "browse", Client: "cookie:1", Exchanges: make([]traces.Exchange, 20000)}
	for i := range s.Exchanges {
		s.Exchanges[i] = ex
		s.Exchanges[i].Offset = time.Duration(i) * time.Millisecond
	}
	b.SetBytes(int64(len(s.Exchanges) * len(body)))
	b.ReportAllocs()
	for b.Loop() {
		w, err := traces.NewWriter(io.Discard, traces.Meta{})
		if err != nil {
			b.Fatal(err)
		}
		part := *s
		for i := 0; i < len(s.Exchanges); i += 1000 {
			part.Exchanges = s.Exchanges[i : i+1000]
			if err := w.WritePart(&part); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Write(s); err != nil {
			b.Fatal(err)
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
