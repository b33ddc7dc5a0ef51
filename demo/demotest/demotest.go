// Package demotest runs the demo backend on a loopback port for the length of
// a test, for the tests of the packages that load it.
package demotest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/thrive-loadtest/thrive/demo"
)

// Serve starts a demo backend configured by opts on 127.0.0.1 and returns
// its base URL; it stops when the test ends.
func Serve(tb testing.TB, opts ...demo.Option) string {
	tb.Helper()
	srv, err := demo.New(opts...)
	if err != nil {
		tb.Fatal(err)
	}
	ln, err := demo.Listen(context.Background(), "127.0.0.1:0", false)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := srv.Serve(ctx, ln, time.Second); err != nil {
			tb.Errorf("demo backend: %v", err)
		}
	})
	tb.Cleanup(func() { cancel(); wg.Wait() })
	return "http://" + ln.Addr().String()
}
