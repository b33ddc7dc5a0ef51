//go:build !race

package replay

import (
	"bytes"
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/thrive-loadtest/thrive/internal/loopbacktest"
	"github.com/thrive-loadtest/thrive/report"
	"github.com/thrive-loadtest/thrive/traces"
)

// countSink counts samples and keeps nothing.
type countSink struct{ n atomic.Int64 }

func (c *countSink) Observe(*report.Sample) { c.n.Add(1) }

// staticServer answers every request on its connections with the same
// bytes, from fixed buffers, so that it allocates nothing while the test
// counts allocations.
func staticServer(t testing.TB) string {
	return staticServerAnswering(t, []byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"ok\":true}"))
}

// staticServerAnswering is a minimal server on loopback that answers every
// request with answer.
func staticServerAnswering(t testing.TB, answer []byte) string {
	t.Helper()
	return "http://" + loopbacktest.Serve(t, func(c net.Conn) {
		buf := make([]byte, 64<<10)
		have := 0
		for {
			n, err := c.Read(buf[have:])
			if err != nil {
				return
			}
			have += n
			for {
				i := bytes.Index(buf[:have], []byte("\r\n\r\n"))
				if i < 0 {
					break
				}
				if _, err := c.Write(answer); err != nil {
					return
				}
				have = copy(buf, buf[i+4:have])
			}
		}
	})
}

// TestSendAllocatesNothing holds the hot path to its promise: once pools
// are warm, sending a request and reading its answer allocates nothing.
func TestSendAllocatesNothing(t *testing.T) {
	target := staticServer(t)
	lib := FromSessions([]*traces.Session{{ID: "a", Profile: "browse", Exchanges: []traces.Exchange{{
		Method: "GET", URL: "/api/projects/7/?page=2", Status: 200,
		ReqHeader: []traces.Header{{Name: "Accept", Value: "application/json"}, {Name: "User-Agent", Value: "test"}},
	}}}})
	e, err := New(target, lib)
	if err != nil {
		t.Fatal(err)
	}
	for _, eager := range []bool{false, true} {
		sink := &countSink{}
		u := &user{e: e, profile: "browse", sink: sink, hard: context.Background(), scale: 1}
		if !eager {
			u.lastWait.Store(int64(time.Hour)) // a slow target: wait without a buffer
		}
		st, raw := &lib.scripts[0].steps[0], e.raw[0][0]
		u.send(st, raw, time.Now(), nil, nil, false) // dial, and warm the pools
		n := testing.AllocsPerRun(200, func() {
			if !eager {
				u.lastWait.Store(int64(time.Hour))
			}
			u.send(st, raw, time.Now(), nil, nil, false)
		})
		u.conns.closeAll(e)
		if sink.n.Load() != 202 {
			t.Fatalf("eager %v: %d samples, want 202", eager, sink.n.Load())
		}
		if n != 0 {
			t.Errorf("eager %v: %v allocations per request, want 0", eager, n)
		}
	}
}
