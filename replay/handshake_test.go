package replay_test

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/thrive-loadtest/thrive/report"
	"github.com/thrive-loadtest/thrive/traces"
)

// TestFailedHandshake: a WebSocket handshake refused (404) or answered by
// a 101 whose Sec-WebSocket-Accept does not answer the key is a failed
// connect, and the session that failed so keeps its recorded length before
// its user begins the next: the server counts no more handshakes than the
// users' recorded sessions make, not thousands a second.
func TestFailedHandshake(t *testing.T) {
	for _, tc := range []struct {
		name string
		want report.ErrorKind
		h    func(w http.ResponseWriter)
	}{
		{"404", "", func(w http.ResponseWriter) { http.NotFound(w, nil) }},
		{"wrong accept", "bad handshake", func(w http.ResponseWriter) {
			hj, ok := w.(http.Hijacker)
			if !ok {
				return
			}
			conn, buf, err := hj.Hijack()
			if err != nil {
				return
			}
			defer conn.Close()
			_, _ = buf.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: bm90IHRoZSBhbnN3ZXI=\r\n\r\n")
			_ = buf.Flush()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var handshakes atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				handshakes.Add(1)
				tc.h(w)
			}))
			defer srv.Close()
			ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
			s := &traces.Session{ID: "ws", Profile: "chat", Exchanges: []traces.Exchange{{
				Duration: ms(500), Method: "GET", URL: "/ws", Status: 101, WebSocket: &traces.WebSocket{
					Frames: []traces.Frame{
						{Offset: ms(50), FromClient: true, Opcode: traces.OpText, Payload: traces.Body{Data: []byte("hi"), Size: 2}},
						{Offset: ms(51), Opcode: traces.OpText, Payload: traces.Body{Data: []byte("hello"), Size: 5}},
					},
					Close: traces.Close{Offset: ms(500), Code: 1000},
				}}}}
			const users, runTime = 2, 2 * time.Second
			_, sink := run(t, srv.URL, []*traces.Session{s}, users, runTime)
			// Each user begins a session every 500 ms at most.
			if n := handshakes.Load(); n == 0 || n > users*(int64(runTime/ms(500))+1) {
				t.Errorf("the server counted %d handshakes from %d users in %v", n, users, runTime)
			}
			for _, smp := range sink.samples {
				if smp.Kind == report.WSConnect && (!smp.Failed() || smp.Err != tc.want) {
					t.Fatalf("a connect: status %d, error %q, failed %v", smp.Status, smp.Err, smp.Failed())
				}
			}
		})
	}
}
