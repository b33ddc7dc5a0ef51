package capture_test

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/thrive-loadtest/thrive/traces"
)

// The tests here hold the policy of exchange.go, what is recorded and
// answered when a backend or a client fails an exchange, to both relays:
// each runs on the goroutine relay and on the event loops (relayModes),
// with a backend on loopback that misbehaves on purpose (serveRaw).

// records returns the exchanges of sessions as "URL status error", in the
// order of the trace.
func records(sessions []*traces.Session) []string {
	var got []string
	for _, s := range sessions {
		for _, ex := range s.Exchanges {
			got = append(got, fmt.Sprintf("%s %d %s", ex.URL, ex.Status, ex.Error))
		}
	}
	return got
}

// TestBackendClosesBeforeAnswering: a backend that reads a request and
// closes its connection before any byte of an answer did not answer; on
// both relays the client gets the 502 saying so, and the trace records it
// in the same words.
func TestBackendClosesBeforeAnswering(t *testing.T) {
	const why = "connection closed without an answer"
	for _, mode := range relayModes() {
		t.Run(mode.name, func(t *testing.T) {
			origin := serveRaw(t, func(c net.Conn) { _, _ = http1Head(bufio.NewReader(c)) })
			p := startProxy(t, "http://"+origin, mode.opts...)
			rc := dialRaw(t, p.URL)
			_ = rc.c.SetReadDeadline(time.Now().Add(20 * time.Second)) // a bound should the relay stall
			rc.send("GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
			if a, body := rc.response("GET"); a.StatusCode != 502 || !strings.Contains(body, why) {
				t.Errorf("answered %d %q; want a 502 saying %s", a.StatusCode, body, why)
			}
			if got, want := records(p.stop()), "/a 502 backend: "+why; len(got) != 1 || got[0] != want {
				t.Errorf("recorded %q, want %q", got, want)
			}
		})
	}
}
