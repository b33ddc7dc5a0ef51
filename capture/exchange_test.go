package capture_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
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

// resetOnClose makes the close of c, a TCP connection, a reset, as a peer
// that drops a connection sends.
func resetOnClose(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
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

// TestRetryOnlyAClosedIdleConnection: a bodiless request that went out on
// a reused backend connection goes again, once, on a fresh one when the
// backend closed or reset that connection before any byte of an answer,
// the race of a keep-alive connection closed while idle; on both relays,
// not when the backend had begun an answer (part of a head, then the
// close) or sent what is not one: the client gets that backend's 502.
func TestRetryOnlyAClosedIdleConnection(t *testing.T) {
	for _, tc := range []struct {
		name   string
		second func(c net.Conn) // what the first connection does with the second request
		answer string           // what the client gets for the second request
		record string           // how it is recorded
	}{
		{"closed", func(net.Conn) {}, "200 fresh", "/2 200 "},
		{"reset", resetOnClose, "200 fresh", "/2 200 "},
		{"closed in the head", func(c net.Conn) { _, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Le") },
			"502 thrive capture: the backend did not answer: connection closed\n", "/2 502 backend: connection closed"},
		{"not an answer", func(c net.Conn) { _, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nforged") },
			`502 thrive capture: the backend did not answer: bad Content-Length "+5"` + "\n", `/2 502 backend: bad Content-Length "+5"`},
	} {
		for _, mode := range relayModes() {
			t.Run(tc.name+"/"+mode.name, func(t *testing.T) {
				var conns atomic.Int32
				origin := serveRaw(t, func(c net.Conn) {
					first := conns.Add(1) == 1
					br := bufio.NewReader(c)
					for i := 1; ; i++ {
						if _, err := http1Head(br); err != nil {
							return
						}
						answer := "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfresh"
						switch {
						case first && i == 2:
							tc.second(c)
							return
						case first:
							answer = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nold"
						}
						if _, err := io.WriteString(c, answer); err != nil {
							return
						}
					}
				})
				p := startProxy(t, "http://"+origin, mode.opts...)
				rc := dialRaw(t, p.URL)
				_ = rc.c.SetReadDeadline(time.Now().Add(20 * time.Second)) // a bound should the relay stall
				rc.send("GET /1 HTTP/1.1\r\nHost: x\r\n\r\n")
				if a, body := rc.response("GET"); a.StatusCode != 200 || body != "old" {
					t.Fatalf("the first request: %d %q", a.StatusCode, body)
				}
				rc.send("GET /2 HTTP/1.1\r\nHost: x\r\n\r\n")
				if a, body := rc.response("GET"); fmt.Sprint(a.StatusCode, " ", body) != tc.answer {
					t.Errorf("the second request: %d %q, want %q", a.StatusCode, body, tc.answer)
				}
				if got := records(p.stop()); len(got) != 2 || got[1] != tc.record {
					t.Errorf("recorded %q, want %q second", got, tc.record)
				}
			})
		}
	}
}

// TestMalformedBodyRecordedWithItsSize: a backend whose answer goes wrong
// after its head (a bad chunk line after a chunk of 5 bytes) is recorded on
// both relays as "backend: <what> after 5 bytes of the answer", with the 5
// bytes, and both connections close: the client has the head already, and
// no 502 can follow it.
func TestMalformedBodyRecordedWithItsSize(t *testing.T) {
	for _, mode := range relayModes() {
		t.Run(mode.name, func(t *testing.T) {
			origin, ended := answerOnce(t, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nZZZ\r\n")
			p := startProxy(t, "http://"+origin, mode.opts...)
			rc := dialRaw(t, p.URL)
			_ = rc.c.SetReadDeadline(time.Now().Add(20 * time.Second)) // a bound should the relay stall
			rc.send("GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
			if got, err := io.ReadAll(rc.br); err != nil || !strings.HasPrefix(string(got), "HTTP/1.1 200 OK\r\n") {
				t.Errorf("the client got %q (%v); want the head, then the close", got, err)
			}
			if err := <-ended; !errors.Is(err, io.EOF) {
				t.Errorf("the backend's connection ended with %v; want the relay to close it", err)
			}
			sessions := p.stop()
			got := records(sessions)
			if len(got) != 1 || !strings.HasPrefix(got[0], "/a 200 backend: ") || !strings.HasSuffix(got[0], " after 5 bytes of the answer") {
				t.Fatalf(`recorded %q, want "/a 200 backend: <what> after 5 bytes of the answer"`, got)
			}
			if body := sessions[0].Exchanges[0].RespBody.Data; string(body) != "hello" {
				t.Errorf("recorded the body %q", body)
			}
		})
	}
}

// onLoops reports whether mode is the event loops', which pass an answer's
// head on as soon as they have it; the goroutine relay sends a head with
// the first bytes of its body.
func (m relayMode) onLoops() bool { return len(m.opts) > 0 }

// TestClientGoneBeforeAnswerBody: a client that resets its connection
// before any byte of an answer's body could reach it (a 204, a
// Content-Length of 0, an empty chunked body whose head it may have read)
// is recorded on both relays as gone before the answer, whichever relay
// notices first and however it notices: the event loops at once, the
// goroutine relay when the answer's write fails.
func TestClientGoneBeforeAnswerBody(t *testing.T) {
	for _, tc := range []struct {
		name          string
		before, after string // what the backend sends before the client leaves, and after
	}{
		{"204", "", "HTTP/1.1 204 No Content\r\n\r\n"},
		{"Content-Length 0", "", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"},
		{"empty chunked body", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "0\r\n\r\n"},
	} {
		for _, mode := range relayModes() {
			t.Run(tc.name+"/"+mode.name, func(t *testing.T) {
				asked, left := make(chan struct{}, 1), make(chan struct{})
				origin := serveRaw(t, func(c net.Conn) {
					br := bufio.NewReader(c)
					if _, err := http1Head(br); err != nil {
						return
					}
					_, _ = io.WriteString(c, tc.before)
					asked <- struct{}{}
					<-left
					_, _ = io.WriteString(c, tc.after)
					_ = c.SetReadDeadline(time.Now().Add(20 * time.Second)) // a bound should the relay keep it open
					_, _ = br.ReadByte()
				})
				p := startProxy(t, "http://"+origin, mode.opts...)
				rc := dialRaw(t, p.URL)
				_ = rc.c.SetReadDeadline(time.Now().Add(20 * time.Second)) // a bound should the relay stall
				rc.send("GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
				select {
				case <-asked:
				case <-time.After(20 * time.Second):
					t.Fatal("the request did not reach the backend")
				}
				if tc.before != "" && mode.onLoops() {
					if line, err := rc.br.ReadString('\n'); err != nil || line != "HTTP/1.1 200 OK\r\n" {
						t.Fatalf("the client got %q (%v) of the head", line, err)
					}
				}
				resetOnClose(rc.c)
				_ = rc.c.Close()
				close(left)
				if got := records(p.stop()); len(got) != 1 || !strings.HasSuffix(got[0], " client went away before the answer") {
					t.Errorf(`recorded %q, want "/a <status> client went away before the answer"`, got)
				}
			})
		}
	}
}

// TestSwitchWithoutUpgradeCloses: a 101 to a request that asked for no
// upgrade is not a WebSocket. On both relays it is recorded with its
// error and no socket, nothing of it reaches the client, and both
// connections close.
func TestSwitchWithoutUpgradeCloses(t *testing.T) {
	for _, mode := range relayModes() {
		t.Run(mode.name, func(t *testing.T) {
			origin, ended := answerOnce(t, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
			p := startProxy(t, "http://"+origin, mode.opts...)
			rc := dialRaw(t, p.URL)
			_ = rc.c.SetReadDeadline(time.Now().Add(20 * time.Second)) // a bound should the relay stall
			rc.send("GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
			if got, err := io.ReadAll(rc.br); err != nil || len(got) != 0 {
				t.Errorf("the client got %q (%v); want the close alone", got, err)
			}
			if err := <-ended; !errors.Is(err, io.EOF) {
				t.Errorf("the backend's connection ended with %v; want the relay to close it", err)
			}
			sessions := p.stop()
			want := "/a 101 backend: 101 Switching Protocols to a request that asked for no upgrade"
			if got := records(sessions); len(got) != 1 || got[0] != want {
				t.Fatalf("recorded %q, want %q", got, want)
			}
			if sessions[0].Exchanges[0].WebSocket != nil {
				t.Error("recorded a WebSocket")
			}
		})
	}
}

// answerOnce serves a backend that reads one request head, writes answer,
// then waits for the relay to close the connection; ended says how the
// connection ended: io.EOF when the relay closed it, sending nothing more.
func answerOnce(t *testing.T, answer string) (origin string, ended <-chan error) {
	t.Helper()
	done := make(chan error, 1)
	origin = serveRaw(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		_, err := http1Head(br)
		if err == nil {
			_, _ = io.WriteString(c, answer)
			_ = c.SetReadDeadline(time.Now().Add(20 * time.Second)) // a bound should the relay keep it open
			_, err = br.ReadByte()
		}
		done <- err
	})
	return origin, done
}
