package replay_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/thrive-loadtest/thrive/internal/loopbacktest"
	"github.com/thrive-loadtest/thrive/replay"
	"github.com/thrive-loadtest/thrive/report"
	"github.com/thrive-loadtest/thrive/scheduler"
	"github.com/thrive-loadtest/thrive/traces"
)

// garbageServer answers every request on a loopback socket with answer,
// then closes the connection.
func garbageServer(t *testing.T, answer string) string {
	t.Helper()
	return "http://" + loopbacktest.Serve(t, func(c net.Conn) {
		buf := make([]byte, 4096)
		if _, err := c.Read(buf); err != nil {
			return
		}
		_, _ = c.Write([]byte(answer))
	})
}

// TestUnreadableAnswers: a target that answers what HTTP/1.1 cannot read
// (HTTP/0.9 text, TLS, a header block past the buffer, a length that is no
// number) has its answers named by what was wrong, not "other", and a run
// in which every answer was so says so, not that nothing answered.
func TestUnreadableAnswers(t *testing.T) {
	s := &traces.Session{ID: "g", Profile: "browse", Exchanges: []traces.Exchange{
		{Method: "GET", URL: "/", Status: 200, Duration: time.Millisecond},
	}}
	for _, tc := range []struct {
		name, answer string
		want         report.ErrorKind
		says         string
	}{
		{"HTTP/0.9", "hello world\n", "answer: not HTTP", "is it an HTTP server"},
		{"TLS", "\x16\x03\x01\x00\x02\x02\x46", "answer: TLS", "https://"},
		{"headers too large", "HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("a", 70000) + "\r\n\r\n", "answer: headers too large", "is it an HTTP server"},
		{"bad length", "HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nab", "answer: bad length", "is it an HTTP server"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target := garbageServer(t, tc.answer)
			lib := replay.FromSessions([]*traces.Session{s})
			e, err := replay.New(target, lib, replay.WithStopTimeout(5*time.Second), replay.WithTimeout(2*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			plan, err := scheduler.New(lib.Sessions(), scheduler.Config{Users: 2, RunTime: 300 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			res, err := e.Play(context.Background(), plan, time.Now(), nil, "", report.RunParams{})
			if err != nil {
				t.Fatal(err)
			}
			for _, ep := range res.Endpoints {
				for k := range ep.Errors {
					if k != tc.want {
						t.Errorf("%s: error %q, want %q", ep.Name, k, tc.want)
					}
				}
			}
			err = replay.Unreachable(res, target)
			if err == nil || !strings.Contains(err.Error(), target+" answered every request with what HTTP/1.1 cannot read ("+string(tc.want)) ||
				!strings.Contains(err.Error(), tc.says) {
				t.Errorf("the run's error: %v", err)
			}
		})
	}
}
