package importer

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/thrive-loadtest/thrive/traces"
)

// FuzzReadHAR reads any bytes as a HAR, from the testdata files on: it
// never panics, an error names the file, the counts add up to the
// exchanges, and every exchange is whole (see checkWhole), with a method
// and its frames from its start on. The testdata files are large for
// seeds: a short -fuzzminimizetime keeps the fuzzer from spending its time
// minimizing each new input.
//
//	go test -run XXX -fuzz FuzzReadHAR -fuzzminimizetime 2s ./capture/importer/
func FuzzReadHAR(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.har"))
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
	for _, small := range []string{
		harOf(),
		harOf(socketWith(`"_webSocketMessages": [{"type": "send", "time": 1778577243.2, "opcode": 8, "data": "A+g="}, {"type": "receive", "time": 1778577243217.5, "opcode": 2, "data": "AQL/"}],`)),
		harOf(changed(`"status": 200`, `"status": -1, "_failureText": "net::ERR_ABORTED"`), changed(`"time": 20,`, `"_fromCache": "memory",`)),
		harOf(changed(`"headers": []`, `"headers": [{"name": "Content-Encoding", "value": "gzip"}, {"name": "Content-Length", "value": "3"}]`)),
	} {
		f.Add([]byte(small))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		out, st, err := ReadHAR(bytes.NewReader(data), "fuzz.har")
		if err != nil && !strings.HasPrefix(err.Error(), "fuzz.har: ") {
			t.Fatalf("error %q does not name the file", err)
		}
		if len(out) != st.Imported || st.Unanswered > st.Imported || st.NoBody > st.Imported {
			t.Fatalf("%d exchanges, stats %+v", len(out), st)
		}
		if st.Entries != st.Imported+st.FromCache+st.NotSent+st.NotHTTP {
			t.Fatalf("stats %+v do not add up", st)
		}
		checkWhole(t, out)
		for _, s := range out {
			if s.Method == "" {
				t.Fatalf("exchange without a method: %+v", s)
			}
			if ws := s.WebSocket; ws != nil && slices.ContainsFunc(ws.Frames, func(f traces.Frame) bool { return f.Offset < 0 }) {
				t.Fatalf("%s: a frame before the start", s.URL)
			}
		}
	})
}
