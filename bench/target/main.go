// Command target is the fast static HTTP server the replay benchmarks load:
// fasthttp answering every request with the same 1 KB JSON body, optionally
// after a fixed delay; GET /count tells how many it has answered.
//
//	go run ./bench/target -listen 127.0.0.1:18100 -delay 0
package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:18100", "address to listen on")
	delay := flag.Duration("delay", 0, "wait this long before answering")
	flag.Parse()
	body := []byte(`{"id":7,"title":"Video summary agent","description":"` + strings.Repeat("word ", 180) + `"}`)
	var answered atomic.Int64
	h := func(ctx *fasthttp.RequestCtx) {
		// GET /count says how many requests were answered, at once.
		if string(ctx.Path()) == "/count" {
			ctx.SetBodyString(strconv.FormatInt(answered.Load(), 10))
			return
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
