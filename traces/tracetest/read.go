package tracetest

import (
	"errors"
	"io"
	"os"
	"testing"

	"github.com/thrive-loadtest/thrive/traces"
)

// ReadFile returns every session of the trace at path, failing the test on
// any error.
func ReadFile(tb testing.TB, path string) []*traces.Session {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	r, err := traces.NewReader(f)
	if err != nil {
		tb.Fatal(err)
	}
	defer r.Close()
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
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	r, err := traces.NewReader(f)
	if err != nil {
		tb.Fatal(err)
	}
	defer r.Close()
	return r.Meta()
}
