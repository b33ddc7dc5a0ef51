package importer

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thrive-loadtest/thrive/traces"
)

// FuzzReadGor reads any bytes as a GoReplay file, from the files GoReplay
// wrote in testdata/gor and small records on: it never panics, an error
// names the file, the books balance (every request and every response
// read is in an exchange or counted left out), and every exchange has a
// method and a time to first byte within its duration.
//
//	go test -run XXX -fuzz FuzzReadGor -fuzzminimizetime 2s ./capture/importer/
func FuzzReadGor(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "gor", "*"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no testdata: %v", err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	rec := func(header, data string) string { return header + "\n" + data + gorSeparator }
	for _, small := range []string{
		rec("1 ab 1000 -1", "GET / HTTP/1.1\r\nHost: x\r\n\r\n") + rec("2 ab 3000 20", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"),
		rec("2 ab 3000", "HTTP/1.1 101 Switching Protocols\r\n\r\n\x81\x02hi") + rec("1 ab 1000", "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"),
		rec("3 ab 3000 1", "HTTP/1.1 200 OK\r\n\r\n") + rec("1 ab 1000 0", "HEAD / HTTP/1.1\r\n\r\n") + rec("1 ab 2000 0", "POST / HTTP/1.1\r\nContent-Length: 1\r\n\r\nx"),
	} {
		f.Add([]byte(small))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var out []traces.Exchange
		g := GorReader{Wait: time.Millisecond, Add: func(_ time.Time, _, _ string, ex *traces.Exchange) { out = append(out, *ex) }}
		_, err := g.Read(bytes.NewReader(data), "fuzz.gor")
		if err != nil && !strings.HasPrefix(err.Error(), "fuzz.gor: ") {
			t.Fatalf("error %q does not name the file", err)
		}
		st := g.End()
		paired := st.Exchanges + st.Incomplete + st.NotHTTP
		if st.Records != st.Requests+st.Responses+st.Replayed || st.Requests != paired+st.Unanswered || st.Responses != paired+st.Unasked {
			t.Fatalf("stats %+v do not balance", st)
		}
		if len(out) != st.Exchanges+st.Incomplete {
			t.Fatalf("%d exchanges, stats %+v", len(out), st)
		}
		for _, ex := range out {
			if ex.Method == "" || ex.TTFB < 0 || ex.TTFB > ex.Duration {
				t.Fatalf("exchange %s %s: TTFB %v, duration %v", ex.Method, ex.URL, ex.TTFB, ex.Duration)
			}
		}
	})
}
