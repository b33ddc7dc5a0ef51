//go:build !race

package replay

import (
	"bytes"
	"context"
	"net"
	"strconv"
	"strings"
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
		u.send(st, raw, time.Now(), nil, nil, false, nil, 0) // dial, and warm the pools
		n := testing.AllocsPerRun(200, func() {
			if !eager {
				u.lastWait.Store(int64(time.Hour))
			}
			u.send(st, raw, time.Now(), nil, nil, false, nil, 0)
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

// TestSendPathsAllocations measures every send path once pools are warm:
// the bare one (0, above), with the user's cookies (an answer that sets
// one each time), with correlation carrying a live value, with a users
// file, to a second site (a forward proxy's trace) and through the shared
// pool. Each is held to what it cost when measured (per pass of the
// steps), so that a change that adds allocations to a path fails: the
// live value an answer gives is a string of its own, and the shared pool
// is fasthttp's HostClient, which allocates in Do.
func TestSendPathsAllocations(t *testing.T) {
	cookie := staticServerAnswering(t, []byte("HTTP/1.1 200 OK\r\nSet-Cookie: sid=abc123; Path=/; HttpOnly\r\nContent-Type: application/json\r\nContent-Length: 18\r\n\r\n{\"id\":4711,\"ok\":1}"))
	other := staticServer(t)
	ex := func(url string, hs ...traces.Header) traces.Exchange {
		return traces.Exchange{Method: "GET", URL: url, Status: 200, ReqHeader: hs,
			RespHeader: []traces.Header{{Name: "Content-Type", Value: "application/json"}}, RespBody: traces.Body{Data: []byte(`{"id":1234,"ok":1}`)}}
	}
	corr := []*traces.Session{{ID: "c", Profile: "browse", Exchanges: []traces.Exchange{
		ex("/api/items/"), ex("/api/items/1234/"),
	}}}
	users, err := LoadUsers(bytes.NewReader([]byte("password\npw-1\npw-2\n")))
	if err != nil {
		t.Fatal(err)
	}
	withSecret := []*traces.Session{{ID: "u", Profile: "browse", Exchanges: []traces.Exchange{
		ex("/api/login?password={{password:0badcafe}}"),
	}}}
	twoSites := []*traces.Session{{ID: "f", Profile: "browse", Exchanges: []traces.Exchange{
		ex("http://app.test/"), ex("http://api.test/api/items/"),
	}}}
	for _, tc := range []struct {
		name   string
		target string
		ss     []*traces.Session
		step   int
		opts   []Option
		most   float64
	}{
		{"cookies", cookie, corr, 0, nil, 1}, // the live id the answer gives
		{"correlation", cookie, corr, 1, nil, 1},
		{"users file", cookie, withSecret, 0, []Option{WithUsers(users)}, 0},
		{"second site", cookie, twoSites, 1, []Option{WithOrigin("http://api.test", other)}, 0},
		{"shared pool", cookie, corr, 0, []Option{WithSharedPool()}, 5},              // fasthttp.HostClient.Do allocates 4
		{"shared pool, correlation", cookie, corr, 1, []Option{WithSharedPool()}, 9}, // 8 of them fasthttp's, for two requests
	} {
		t.Run(tc.name, func(t *testing.T) {
			lib := FromSessions(tc.ss)
			e, err := New(tc.target, lib, tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			sink := &countSink{}
			u := &user{e: e, profile: "browse", sink: sink, hard: context.Background(), scale: 1, shared: e.shared}
			if e.cfg.users != nil {
				u.vals = e.cfg.users.values(0, 1)
			}
			sc := &lib.scripts[0]
			var sv *sessionVars
			if len(sc.vars) > 0 {
				sv = newSessionVars(sc)
			}
			var fills []fill
			if e.fills != nil {
				fills = e.fills[0][tc.step]
			}
			send := func() {
				for i := 0; i <= tc.step; i++ {
					u.send(&sc.steps[i], e.raw[0][i], time.Now(), sv, fills, false, nil, 0)
				}
			}
			send()
			n := testing.AllocsPerRun(100, send)
			u.closeConns()
			t.Logf("%s: %v allocations per pass", tc.name, n)
			if n > tc.most {
				t.Errorf("%s: %v allocations per pass, want %v at most", tc.name, n, tc.most)
			}
		})
	}
}

// TestJSONAtAllocates only the value it returns, whatever the document's
// size.
func TestJSONAtAllocates(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"items":[`)
	for i := range 200 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"id":` + strconv.Itoa(i) + `,"name":"project number ` + strconv.Itoa(i) + `","tags":["a","b"]}`)
	}
	b.WriteString(`],"next":"/api/items/?page=2"}`)
	doc, path := []byte(b.String()), []any{"items", 150, "id"}
	if v, ok := jsonAt(doc, path); v != "150" || !ok {
		t.Fatalf("%q %v", v, ok)
	}
	if n := testing.AllocsPerRun(50, func() { jsonAt(doc, path) }); n > 1 {
		t.Errorf("%v allocations for a %d-byte answer, want 1 (the value)", n, len(doc))
	}
}

// TestJarSetsAgainForNothing: a cookie set again with the value it has (a
// session cookie every answer repeats) costs no allocation.
func TestJarSetsAgainForNothing(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	var j jar
	again := []byte("b=2; Max-Age=30")
	j.set(again, now, 0)
	if n := testing.AllocsPerRun(100, func() { j.set(again, now, 0) }); n != 0 {
		t.Errorf("a cookie set again with its value: %v allocations", n)
	}
}
