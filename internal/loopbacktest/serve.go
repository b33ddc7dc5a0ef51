// Package loopbacktest serves raw TCP on loopback for tests and
// benchmarks that need a server they write byte by byte.
package loopbacktest

import (
	"context"
	"net"
	"testing"
)

// Serve listens on loopback until the test ends and serves each connection
// with serve on a goroutine of its own, closing it when serve returns. It
// returns the address, host:port.
func Serve(tb testing.TB, serve func(net.Conn)) string {
	tb.Helper()
	ln, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				serve(c)
			}()
		}
	}()
	return ln.Addr().String()
}
