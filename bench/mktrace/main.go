// Command mktrace writes the traces the replay benchmarks play: one session
// of n GET requests to one path, with a fixed gap between them.
//
//	go run ./bench/mktrace -out /tmp/flat.thrv -requests 1000 -gap 0
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/thrive-loadtest/thrive/traces"
)

func main() {
	out := flag.String("out", "flat.thrv", "the trace to write")
	n := flag.Int("requests", 1000, "requests in the session")
	gap := flag.Duration("gap", 0, "think gap between requests")
	path := flag.String("path", "/api/projects/7/", "the request path")
	flag.Parse()
	if err := write(*out, *n, *gap, *path); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func write(out string, n int, gap time.Duration, path string) error {
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	w, err := traces.NewWriter(f, traces.Meta{Source: "bench"})
	if err != nil {
		return err
	}
	s := &traces.Session{ID: "flat", Profile: "browse", Start: time.Now()}
	for i := range n {
		s.Exchanges = append(s.Exchanges, traces.Exchange{
			Offset: time.Duration(i) * gap, Think: gap, Method: "GET", URL: path, Status: 200,
			ReqHeader: []traces.Header{{Name: "Accept", Value: "application/json"}},
		})
	}
	if err := w.Write(s); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return f.Close()
}
