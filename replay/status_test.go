package replay_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/thrive-loadtest/thrive/internal/apptest"
	"github.com/thrive-loadtest/thrive/replay"
	"github.com/thrive-loadtest/thrive/report"
	"github.com/thrive-loadtest/thrive/traces"
)

// TestStatusesAsRecorded records a page whose favicon and one link answer
// 404, and replays it against the server after a release that broke a page
// that worked and the chat's WebSocket: the 404s the recording had count as
// recorded, not as failures; the page that now answers 404 and the socket
// that answers 200 instead of switching protocols are failures. With
// WithStrictStatus every 404 is a failure.
func TestStatusesAsRecorded(t *testing.T) {
	var broken atomic.Bool
	var mu sync.Mutex
	served := map[string]map[int]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		status := http.StatusOK
		switch {
		case r.URL.Path == "/favicon.ico", r.URL.Path == "/old-link":
			status = http.StatusNotFound
		case r.URL.Path == "/pricing" && broken.Load():
			status = http.StatusNotFound
		case r.URL.Path == "/ws" && !broken.Load():
			up := new(websocket.Upgrader)
			if c, err := up.Upgrade(w, r, nil); err == nil {
				c.Close()
			}
			status = http.StatusSwitchingProtocols
		}
		mu.Lock()
		if served[r.URL.Path] == nil {
			served[r.URL.Path] = map[int]int{}
		}
		served[r.URL.Path][status]++
		mu.Unlock()
		if status != http.StatusSwitchingProtocols {
			w.WriteHeader(status)
		}
	}))
	defer srv.Close()
	sessions, _ := apptest.Record(t, srv.URL, func(base string) {
		for _, p := range []string{"/", "/favicon.ico", "/pricing", "/old-link"} {
			apptest.Do(t, nil, http.MethodGet, base+p, "")
		}
		c, resp, err := websocket.DefaultDialer.Dial("ws"+base[4:]+"/ws", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		c.Close()
	})
	broken.Store(true)
	for _, tc := range []struct {
		name string
		opts []replay.Option
		// failures and as recorded, by endpoint
		want map[string][2]int64
	}{
		{"as recorded", nil, map[string][2]int64{
			"GET /": {0, 0}, "GET /favicon.ico": {0, 1}, "GET /old-link": {0, 1}, "GET /pricing": {1, 0}, "WS /ws": {1, 0}}},
		{"strict", []replay.Option{replay.WithStrictStatus()}, map[string][2]int64{
			"GET /": {0, 0}, "GET /favicon.ico": {1, 0}, "GET /old-link": {1, 0}, "GET /pricing": {1, 0}, "WS /ws": {1, 0}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mu.Lock()
			clear(served)
			mu.Unlock()
			_, sink := run(t, srv.URL, sessions, 1, time.Second, tc.opts...)
			rec := report.NewRecorder(time.Now())
			for i := range sink.samples {
				rec.Observe(&sink.samples[i])
			}
			res := rec.Result(srv.URL, "", time.Now(), report.RunParams{})
			mu.Lock()
			defer mu.Unlock()
			if served["/favicon.ico"][404] == 0 {
				t.Fatalf("the server served no favicon: %v", served)
			}
			for _, e := range res.Endpoints {
				w, ok := tc.want[e.Name]
				if !ok {
					t.Errorf("unexpected endpoint %s", e.Name)
					continue
				}
				n := int64(0) // what the server answered on that path
				for _, c := range served[e.Name[strings.IndexByte(e.Name, ' ')+1:]] {
					n += int64(c)
				}
				if e.Requests != n || e.Failures != w[0]*n || e.AsRecordedCount() != w[1]*n {
					t.Errorf("%s: %d failures and %d as recorded of %d, want %d and %d of the %d the server answered",
						e.Name, e.Failures, e.AsRecordedCount(), e.Requests, w[0]*n, w[1]*n, n)
				}
			}
		})
	}
}

// TestTargetClosesIdleConnections replays sessions whose requests (a POST
// with a body among them) come 500 ms apart against a target that closes
// connections idle for 200 ms: every request is answered, none is counted
// as the target's failure.
func TestTargetClosesIdleConnections(t *testing.T) {
	var served atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		served.Add(1)
	}))
	srv.Config.IdleTimeout = 200 * time.Millisecond
	srv.Start()
	defer srv.Close()
	ms := time.Millisecond
	s := &traces.Session{ID: "idle", Profile: "browse", Exchanges: []traces.Exchange{
		{Offset: 0, Method: "GET", URL: "/a", Status: 200},
		{Offset: 500 * ms, Method: "POST", URL: "/b", Status: 200, ReqHeader: []traces.Header{{Name: "Content-Type", Value: "text/plain"}},
			ReqBody: traces.Body{Data: []byte("hello")}},
		{Offset: 1000 * ms, Method: "GET", URL: "/c", Status: 200},
	}}
	_, sink := run(t, srv.URL, []*traces.Session{s}, 5, 1200*ms)
	failures(t, sink)
	if n := served.Load(); n < 15 || int(n) != len(sink.samples) {
		t.Fatalf("the target served %d requests, thrive reported %d", n, len(sink.samples))
	}
}
