package replay_test

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/thrive-loadtest/thrive/traces"
)

// TestStaleKeepAlive: servers close idle kept-alive connections (gunicorn
// after 2 s without saying so, Node after 5 s announcing Keep-Alive:
// timeout=5). Users that wait longer between requests, a login POST among
// them, lose none: a connection the server announced it would close is
// closed first, and a request that found its connection closed before
// any byte of the answer came is sent again on a new one, as browsers do,
// counted apart and not failed. The server counts every request once.
func TestStaleKeepAlive(t *testing.T) {
	for _, tc := range []struct {
		name      string
		announce  bool
		retried   func(n int64) bool
		retriedIs string
	}{
		{"closed unannounced", false, func(n int64) bool { return n > 0 }, "some"},
		{"Keep-Alive timeout", true, func(n int64) bool { return n == 0 }, "none"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			const idle = 2 * time.Second
			var got atomic.Int64
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got.Add(1)
				if tc.announce {
					w.Header().Set("Keep-Alive", "timeout=2")
				}
				_, _ = w.Write([]byte("ok"))
			}))
			srv.Config.IdleTimeout = idle
			srv.Start()
			defer srv.Close()
			gap := idle + 300*time.Millisecond
			s := &traces.Session{ID: "s", Profile: "browse", Exchanges: []traces.Exchange{
				{Method: "GET", URL: "/login", Status: 200, Duration: time.Millisecond},
				{Method: "POST", URL: "/login", Status: 200, Offset: gap, Duration: time.Millisecond,
					ReqHeader: []traces.Header{{Name: "Content-Type", Value: "application/x-www-form-urlencoded"}},
					ReqBody:   traces.Body{Data: []byte("username=a&password=b")}},
				{Method: "GET", URL: "/home", Status: 200, Offset: 2 * gap, Duration: time.Millisecond},
			}}
			const users = 10
			e, sink := run(t, srv.URL, []*traces.Session{s}, users, 2*gap+time.Second)
			sent := 0
			for _, smp := range sink.samples {
				sent++
				if smp.Failed() {
					t.Errorf("%s: %s", smp.Endpoint, smp.Err)
				}
			}
			if sent < 3*users || int64(sent) != got.Load() {
				t.Errorf("%d requests sent, the server counted %d", sent, got.Load())
			}
			if n := e.RetriedStale(); !tc.retried(n) {
				t.Errorf("%d requests retried on a new connection, want %s", n, tc.retriedIs)
			}
		})
	}
}
