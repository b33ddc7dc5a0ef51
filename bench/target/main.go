// Command target is the fast static HTTP server the replay benchmarks load:
// fasthttp answering every request with the same 1 KB JSON body, optionally
// after a fixed delay; GET /count tells how many it has answered. For
// requests to /gap/MICROSECONDS (bench/mktrace -sessions) it measures, per
// connection, how far the time since the connection's previous request is
// from the gap the path names; GET /gaps gives the distribution of that
// error and resets it.
//
//	go run ./bench/target -listen 127.0.0.1:18100 -delay 0
package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/valyala/fasthttp"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:18100", "address to listen on")
	delay := flag.Duration("delay", 0, "wait this long before answering")
	flag.Parse()
	body := []byte(`{"id":7,"title":"Video summary agent","description":"` + strings.Repeat("word ", 180) + `"}`)
	var answered atomic.Int64
	g := &gaps{last: map[uint64]time.Time{}, errs: hdrhistogram.New(1, 60e6, 3)}
	h := func(ctx *fasthttp.RequestCtx) {
		now := time.Now()
		path := string(ctx.Path())
		switch {
		case path == "/count":
			// GET /count says how many requests were answered, at once.
			ctx.SetBodyString(strconv.FormatInt(answered.Load(), 10))
			return
		case path == "/gaps":
			ctx.SetBodyString(g.report())
			return
		case strings.HasPrefix(path, "/gap/"):
			g.observe(ctx.ConnID(), now, strings.TrimPrefix(path, "/gap/"))
		}
		defer answered.Add(1)
		if *delay > 0 {
			time.Sleep(*delay)
		}
		ctx.SetContentType("application/json")
		ctx.SetBody(body)
	}
	s := &fasthttp.Server{Handler: h, Concurrency: 1 << 20, ReadBufferSize: 4096}
	if err := s.ListenAndServe(*listen); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// gaps measures how well a replay kept recorded gaps.
type gaps struct {
	mu   sync.Mutex
	last map[uint64]time.Time // connection → arrival of its previous request
	errs *hdrhistogram.Histogram
}

func (g *gaps) observe(conn uint64, now time.Time, want string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	prev, ok := g.last[conn]
	g.last[conn] = now
	us, err := strconv.ParseInt(want, 10, 64)
	if !ok || err != nil { // "first": a session's first request has no gap
		return
	}
	d := now.Sub(prev).Microseconds() - us
	if d < 0 {
		d = -d
	}
	_ = g.errs.RecordValue(d)
}

func (g *gaps) report() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	h := g.errs
	out := fmt.Sprintf(`{"count":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}`,
		h.TotalCount(), h.ValueAtQuantile(50), h.ValueAtQuantile(90), h.ValueAtQuantile(99), h.Max())
	h.Reset()
	return out
}
