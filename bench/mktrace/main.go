// Command mktrace writes the traces the replay benchmarks play: one session
// of n GET requests to one path, with a fixed gap between them; or, with
// -sessions, that many sessions whose gaps are drawn between -gap and
// -gap-max and written into each request's path (/gap/MICROSECONDS, the
// first /gap/first), so that bench/target -gaps can tell how well a replay
// kept them.
//
//	go run ./bench/mktrace -out /tmp/flat.thrv -requests 1000 -gap 0
//	go run ./bench/mktrace -out /tmp/gaps.thrv -sessions 100 -requests 20 -gap 500ms -gap-max 1500ms
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"time"

	"github.com/thrive-loadtest/thrive/traces"
)

func main() {
	out := flag.String("out", "flat.thrv", "the trace to write")
	n := flag.Int("requests", 1000, "requests in the session")
	gap := flag.Duration("gap", 0, "think gap between requests")
	path := flag.String("path", "/api/projects/7/", "the request path")
	sessions := flag.Int("sessions", 0, "write this many sessions with random gaps named in their paths")
	gapMax := flag.Duration("gap-max", 0, "with -sessions, the longest gap")
	same := flag.Bool("same-path", false, "with -sessions, send every request to -path instead of naming its gap")
	flag.Parse()
	var err error
	if *sessions > 0 {
		p := ""
		if *same {
			p = *path
		}
		err = writeGaps(*out, *sessions, *n, *gap, *gapMax, p)
	} else {
		err = write(*out, *n, *gap, *path)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// writeGaps writes sessions of n requests with random gaps between lo and
// hi, to /gap/... paths, or all to path when it is set.
func writeGaps(out string, sessions, n int, lo, hi time.Duration, path string) error {
	if hi < lo {
		return fmt.Errorf("-gap-max %v below -gap %v", hi, lo)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var all []*traces.Session
	for k := range sessions {
		s := &traces.Session{ID: fmt.Sprintf("gaps-%d", k), Profile: "browse", Start: time.Now()}
		var at time.Duration
		for i := range n {
			p, gap := "/gap/first", time.Duration(0)
			if i > 0 {
				gap = lo + time.Duration(rng.Int64N(int64(hi-lo)+1))
				gap = gap.Truncate(time.Microsecond)
				p = fmt.Sprintf("/gap/%d", gap.Microseconds())
			}
			if path != "" {
				p = path
			}
			at += gap
			s.Exchanges = append(s.Exchanges, traces.Exchange{
				Offset: at, Think: gap, Method: "GET", URL: p, Status: 200,
				ReqHeader: []traces.Header{{Name: "Accept", Value: "application/json"}},
			})
		}
		all = append(all, s)
	}
	return writeSessions(out, all...)
}

func write(out string, n int, gap time.Duration, path string) error {
	s := &traces.Session{ID: "flat", Profile: "browse", Start: time.Now()}
	for i := range n {
		s.Exchanges = append(s.Exchanges, traces.Exchange{
			Offset: time.Duration(i) * gap, Think: gap, Method: "GET", URL: path, Status: 200,
			ReqHeader: []traces.Header{{Name: "Accept", Value: "application/json"}},
		})
	}
	return writeSessions(out, s)
}

func writeSessions(out string, sessions ...*traces.Session) error {
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	w, err := traces.NewWriter(f, traces.Meta{Source: "bench"})
	if err != nil {
		return err
	}
	for _, s := range sessions {
		if err := w.Write(s); err != nil {
			return err
		}
	}
	if err := w.Close(); err != nil {
		return err
	}
	return f.Close()
}
