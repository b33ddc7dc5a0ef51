package tracetest

import (
	"errors"
	"io"
	"os"
	"testing"

	"github.com/thrive-loadtest/thrive/traces"
)

// open returns a Reader over the trace at path; both close when the test
// ends.
func open(tb testing.TB, path string) *traces.Reader {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { f.Close() })
	r, err := traces.NewReader(f)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { r.Close() })
	return r
}

// ReadFile returns every session of the trace at path, failing the test on
// any error.
func ReadFile(tb testing.TB, path string) []*traces.Session {
	tb.Helper()
	r := open(tb, path)
	var out []*traces.Session
	for {
		s := new(traces.Session)
		err := r.Next(s)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			tb.Fatalf("%s: %v", path, err)
		}
		out = append(out, s)
	}
}

// ReadMeta returns the header of the trace at path.
func ReadMeta(tb testing.TB, path string) traces.Meta {
	tb.Helper()
	return open(tb, path).Meta()
}
