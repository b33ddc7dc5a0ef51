package capture_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/thrive-loadtest/thrive/capture"
	"github.com/thrive-loadtest/thrive/internal/loopbacktest"
)

// BenchmarkRelay measures one keep-alive client's round trips to a raw
// 1 KB JSON backend on loopback, direct and through the capture with
// recording on (its goroutine relay, and its event loops); the difference is what the proxy adds, and allocs/op
// counts the whole process (client, proxy, writer and backend).
//
// In one process the event loops compare badly (about 58 µs against 27):
// client and backend are goroutines here, each hop between them and a loop
// thread wakes a sleeping thread, while the goroutine relay's hops stay
// with the Go scheduler's spinning threads. With client and backend in
// processes of their own, as in use and in bench/capture.sh, the loops add
// less than the goroutine relay.
//
//	go test -run XXX -bench Relay -benchmem ./capture/
func BenchmarkRelay(b *testing.B) {
	addr := rawBackend(b, bytes.Repeat([]byte("x"), 1000))
	b.Run("direct", func(b *testing.B) { roundTrips(b, addr) })
	// A relay that only copies bytes both ways, one backend connection per
	// client as the capture has: the floor for a proxy written in Go.
	b.Run("copy", func(b *testing.B) { roundTrips(b, copyRelay(b, addr)) })
	for _, mode := range []struct {
		name string
		opts []capture.Option
	}{{"capture", nil}, {"capture-loop", []capture.Option{capture.WithEventLoop()}}} {
		b.Run(mode.name, func(b *testing.B) {
			p := startProxy(b, "http://"+addr, mode.opts...)
			roundTrips(b, strings.TrimPrefix(p.URL, "http://"))
			b.StopTimer()
			if got := len(p.stop()); got == 0 {
				b.Fatal("the capture recorded no session")
			}
		})
	}
}

func roundTrips(b *testing.B, addr string) {
	c, err := (&net.Dialer{}).DialContext(context.Background(), "tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	reqs := make([][]byte, 100)
	for i := range reqs {
		reqs[i] = fmt.Appendf(nil, "GET /api/projects/7/ HTTP/1.1\r\nHost: %s\r\nUser-Agent: bench\r\nCookie: sessionid=user%d\r\nAccept: application/json\r\n\r\n", addr, i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := c.Write(reqs[i%len(reqs)]); err != nil {
			b.Fatal(err)
		}
		if err := readAnswer(br); err != nil {
			b.Fatal(err)
		}
	}
}

func copyRelay(tb testing.TB, target string) string {
	return loopbacktest.Serve(tb, func(c net.Conn) {
		bc, err := (&net.Dialer{}).DialContext(context.Background(), "tcp", target)
		if err != nil {
			return
		}
		defer bc.Close()
		go func() { _, _ = io.Copy(c, bc); c.Close() }()
		_, _ = io.Copy(bc, c)
	})
}

// readAnswer reads one response with a Content-Length body and drops it.
func readAnswer(br *bufio.Reader) error {
	length := -1
	for first := true; ; first = false {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if first {
			if !bytes.HasPrefix(line, []byte("HTTP/1.1 200 ")) {
				return fmt.Errorf("status line %q", line)
			}
			continue
		}
		if len(line) <= 2 {
			break
		}
		if name, value, ok := bytes.Cut(line, []byte(":")); ok && strings.EqualFold(string(name), "Content-Length") {
			length, err = strconv.Atoi(string(bytes.TrimSpace(value)))
			if err != nil {
				return err
			}
		}
	}
	if length < 0 {
		return fmt.Errorf("no Content-Length")
	}
	_, err := br.Discard(length)
	return err
}

// rawBackend answers every request on a connection with body, as a minimal
// keep-alive HTTP/1.1 server.
func rawBackend(tb testing.TB, body []byte) string {
	answer := fmt.Appendf(nil, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	return loopbacktest.Serve(tb, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			for {
				line, err := br.ReadSlice('\n')
				if err != nil {
					return
				}
				if len(line) <= 2 {
					break
				}
			}
			if _, err := c.Write(answer); err != nil {
				return
			}
		}
	})
}
