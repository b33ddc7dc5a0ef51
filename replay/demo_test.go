package replay_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/thrive-loadtest/thrive/capture"
	"github.com/thrive-loadtest/thrive/demo"
	"github.com/thrive-loadtest/thrive/demo/demotest"
	"github.com/thrive-loadtest/thrive/replay"
	"github.com/thrive-loadtest/thrive/report"
	"github.com/thrive-loadtest/thrive/scheduler"
	"github.com/thrive-loadtest/thrive/traces"
	"github.com/thrive-loadtest/thrive/traces/tracetest"
)

// record plays the demo driver through a capture in front of backend and
// returns the sessions the capture wrote, with their secrets kept.
func record(t *testing.T, backend string, sessions int) []*traces.Session {
	t.Helper()
	path := filepath.Join(t.TempDir(), "demo.thrv")
	sink := &capture.FileSink{Path: path}
	cp, err := capture.New(backend, sink, capture.WithKeepSecrets())
	if err != nil {
		t.Fatal(err)
	}
	if err := cp.Open(); err != nil {
		t.Fatal(err)
	}
	ln, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cp.Run(ctx, ln) }()
	d := demo.Driver{Base: "http://" + ln.Addr().String(), Sessions: sessions, Concurrency: 8, TimeScale: 1e6, Seed: 11}
	if _, err := d.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return tracetest.ReadFile(t, path)
}

type collect struct {
	mu      sync.Mutex
	samples []report.Sample
}

func (c *collect) Observe(s *report.Sample) {
	c.mu.Lock()
	c.samples = append(c.samples, *s)
	c.mu.Unlock()
}

// TestWebSocketReplay records chat sessions from the demo driver and replays
// them against the same backend: every socket connects and every message
// gets its whole streamed reply.
func TestWebSocketReplay(t *testing.T) {
	backend := demotest.Serve(t, demo.WithLatencyScale(0.02), demo.WithRateLimit(0, 1))
	sessions := record(t, backend, 20)
	lib := replay.FromSessions(sessions)
	e, err := replay.New(backend, lib, replay.WithStopTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	plan, err := scheduler.New(lib.Sessions(), scheduler.Config{Users: 6, RunTime: 300 * time.Millisecond, Profiles: []string{"chat"}, Scale: 0.01})
	if err != nil {
		t.Fatal(err)
	}
	sink := &collect{}
	if err := e.Run(context.Background(), plan, time.Now(), sink); err != nil {
		t.Fatal(err)
	}
	var connects, replies int
	for _, s := range sink.samples {
		switch s.Kind {
		case report.WSConnect:
			connects++
			if s.Status != 101 || s.Err != "" {
				t.Errorf("connect: status %d, error %q", s.Status, s.Err)
			}
		case report.WSReply:
			replies++
			if s.Err != "" || s.FirstByte <= 0 || s.Done < s.FirstByte {
				t.Errorf("reply: error %q, first frame %v, last %v", s.Err, s.FirstByte, s.Done)
			}
		}
	}
	if connects < 6 || replies < connects {
		t.Fatalf("%d connects and %d replies from 6 chat users", connects, replies)
	}
	// Each message gets a streamed reply of several frames.
	ws := e.WebSocketStats()
	if ws.Connections != int64(connects) || ws.FramesSent < int64(replies) || ws.FramesReceived <= ws.FramesSent {
		t.Fatalf("websocket figures %+v for %d connects and %d replies", ws, connects, replies)
	}
}

// TestEachUserIsItsOwnUser replays a trace the capture recorded from the
// demo driver as many users, against the demo backend behind a counter of
// sessions: every user logs in to a session of its own, no request is
// refused for its CSRF token and no import job is unknown, and the
// WebSockets connect. Without correlation the CSRF headers keep their
// recorded tokens and are refused, and import jobs, whose ids are made from
// the session that started them, are not found.
func TestEachUserIsItsOwnUser(t *testing.T) {
	srv, err := demo.New(demo.WithLatencyScale(0.01), demo.WithRateLimit(0, 1))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	created := map[string]bool{} // sessions the backend's logins made
	used := map[string]bool{}    // sessions requests presented
	counting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, err := r.Cookie(demo.SessionCookie); err == nil {
			mu.Lock()
			used[c.Value] = true
			mu.Unlock()
		}
		srv.ServeHTTP(w, r)
		for _, line := range w.Header()["Set-Cookie"] {
			if c, err := http.ParseSetCookie(line); err == nil && c.Name == demo.SessionCookie && c.Value != "" {
				mu.Lock()
				created[c.Value] = true
				mu.Unlock()
			}
		}
	}))
	defer counting.Close()
	recorded := record(t, counting.URL, 30)
	const users = 1000
	for _, tc := range []struct {
		name string
		opts []replay.Option
	}{
		{"correlated", nil},
		{"not correlated", []replay.Option{replay.WithoutCorrelation()}},
	} {
		mu.Lock()
		clear(created)
		clear(used)
		mu.Unlock()
		lib := replay.FromSessions(recorded)
		e, err := replay.New(counting.URL, lib, append(tc.opts, replay.WithStopTimeout(10*time.Second))...)
		if err != nil {
			t.Fatal(err)
		}
		// Every user plays at least its first session whole: the longest
		// session fits in the run, with room for a loaded machine (a
		// write waits for the request it followed).
		plan, err := scheduler.New(lib.Sessions(), scheduler.Config{Users: users, RunTime: 3 * time.Second, AutoScale: true, Seed: 3})
		if err != nil {
			t.Fatal(err)
		}
		sink := &collect{}
		if err := e.Run(context.Background(), plan, time.Now(), sink); err != nil {
			t.Fatal(err)
		}
		status := map[string]int{}
		for _, s := range sink.samples {
			status[fmt.Sprintf("%s %d", s.Endpoint, s.Status)]++
		}
		// Every user logs in to a session of its own, and every session a
		// request presents is one the backend made for a user of this run.
		mu.Lock()
		distinct := len(created)
		foreign := 0
		for sid := range used {
			if !created[sid] {
				foreign++
			}
		}
		mu.Unlock()
		csrf := status["POST /api/chat/ 403"] + status["POST /api/import/github/ 403"] + status["POST /api/import/youtube/ 403"]
		jobs404 := status["GET /api/import/jobs/{id}/ 404"] + status["GET /api/projects/{id}/ 404"]
		switch tc.name {
		case "correlated":
			if distinct < users || foreign != 0 || csrf != 0 || jobs404 != 0 || status["WS /ws/chat/ 403"] != 0 {
				t.Errorf("%s: %d sessions made for %d users, %d presented that this run did not make; %d CSRF refusals, %d unknown jobs or projects; statuses %v",
					tc.name, distinct, users, foreign, csrf, jobs404, status)
			}
			for _, c := range e.Correlations() {
				if c.Missing != 0 {
					t.Errorf("rule %s: %d values not found live", c.Rule, c.Missing)
				}
			}
		default:
			if jobs404 == 0 || csrf == 0 {
				t.Errorf("%s: %d CSRF refusals and %d unknown jobs, want both; statuses %v", tc.name, csrf, jobs404, status)
			}
		}
	}
}

// TestSocketsEndWithTheRun plays a session whose second message went out
// after the answer of a request begun beside the socket, in a run that
// ends before that request is due: the message, which would wait for the
// answer, is not sent, and the run ends with its run time rather than when
// the wait runs out (the request timeout, 30 s: a chat run of the demo took
// 32 s of 2). A stop timeout of a minute is the margin: no machine
// takes it.
func TestSocketsEndWithTheRun(t *testing.T) {
	var mu sync.Mutex
	got := map[string]int{}
	up := websocket.Upgrader{}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got[r.URL.Path]++
		mu.Unlock()
		if r.URL.Path != "/ws" {
			return
		}
		conn, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer conn.Close()
		for {
			_, p, err := conn.ReadMessage()
			if err != nil {
				return
			}
			mu.Lock()
			got["message "+string(p)]++
			mu.Unlock()
			if conn.WriteMessage(websocket.TextMessage, append([]byte("re:"), p...)) != nil {
				return
			}
		}
	}))
	defer ts.Close()
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	text := func(b string) traces.Body { return traces.Body{Data: []byte(b), Size: int64(len(b))} }
	s := &traces.Session{ID: "chat", Profile: "chat", Exchanges: []traces.Exchange{
		{Offset: 0, Duration: ms(700), Method: "GET", URL: "/ws", Status: 101, WebSocket: &traces.WebSocket{Frames: []traces.Frame{
			{Offset: ms(10), FromClient: true, Opcode: traces.OpText, Payload: text("a")},
			{Offset: ms(11), Opcode: traces.OpText, Payload: text("re:a")},
			{Offset: ms(600), FromClient: true, Opcode: traces.OpText, Payload: text("b")},
			{Offset: ms(601), Opcode: traces.OpText, Payload: text("re:b")},
		}, Close: traces.Close{Offset: ms(700), Code: 1000}}},
		{Offset: ms(300), Duration: ms(5), Method: "GET", URL: "/api/x", Status: 200},
	}}
	lib := replay.FromSessions([]*traces.Session{s})
	e, err := replay.New(ts.URL, lib, replay.WithStopTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	plan, err := scheduler.New(lib.Sessions(), scheduler.Config{Users: 1, RunTime: 200 * time.Millisecond, Scale: 1})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := e.Run(context.Background(), plan, start, &collect{}); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took >= 20*time.Second {
		t.Errorf("a run of 200 ms ended after %v: its socket waited for a request the run's end left unsent", took.Round(time.Second))
	}
	mu.Lock()
	defer mu.Unlock()
	if got["/ws"] != 1 || got["message a"] != 1 || got["message b"] != 0 || got["/api/x"] != 0 {
		t.Errorf("the server saw %v, want the socket and its first message only", got)
	}
}

// TestSocketRefusalAfterTheRun: a message sent just before the run's end,
// which awaited no reply in the recording, is refused by the server a
// moment after the end (a STOMP ERROR): the socket is still read for a
// while once the run has ended, and the refusal is a failure, as the
// server counted it.
func TestSocketRefusalAfterTheRun(t *testing.T) {
	var refused atomic.Int64
	up := websocket.Upgrader{}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer conn.Close()
		if _, _, err := conn.ReadMessage(); err != nil {
			return
		}
		time.Sleep(400 * time.Millisecond) // the server's own pace: it refuses after the run's end
		refused.Add(1)
		_ = conn.WriteMessage(websocket.TextMessage, []byte("ERROR\nmessage:no such destination\n\n\x00"))
	}))
	defer ts.Close()
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	s := &traces.Session{ID: "stomp", Profile: "chat", Exchanges: []traces.Exchange{
		{Offset: 0, Duration: ms(900), Method: "GET", URL: "/ws", Status: 101, WebSocket: &traces.WebSocket{Frames: []traces.Frame{
			{Offset: ms(10), FromClient: true, Opcode: traces.OpText, Payload: traces.Body{Data: []byte("SEND\ndestination:/app/x\n\n\x00")}},
		}, Close: traces.Close{Offset: ms(900), Code: 1000}}},
	}}
	lib := replay.FromSessions([]*traces.Session{s})
	e, err := replay.New(ts.URL, lib, replay.WithStopTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	plan, err := scheduler.New(lib.Sessions(), scheduler.Config{Users: 1, RunTime: 300 * time.Millisecond, Scale: 1})
	if err != nil {
		t.Fatal(err)
	}
	sink := &collect{}
	if err := e.Run(context.Background(), plan, time.Now(), sink); err != nil {
		t.Fatal(err)
	}
	failed := 0
	for _, smp := range sink.samples {
		if smp.Failed() {
			failed++
		}
	}
	if n := refused.Load(); n != 1 || failed != 1 {
		t.Errorf("the server refused %d messages, thrive counted %d failures", n, failed)
	}
}
