package replay

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/thrive-loadtest/thrive/report"
	"github.com/thrive-loadtest/thrive/scheduler"
	"github.com/thrive-loadtest/thrive/traces"
)

// pipeServer answers HTTP/1.1 requests on in-memory connections, after a
// fixed service time, and notes when each request arrived. It lives in the
// synctest bubble, so its time is the bubble's virtual time.
type pipeServer struct {
	service time.Duration
	mu      sync.Mutex
	arrived []time.Time
	paths   []string
	open    int // connections open now
}

func (s *pipeServer) dial(string) (net.Conn, error) {
	client, server := net.Pipe()
	go s.serve(server)
	return client, nil
}

func (s *pipeServer) serve(c net.Conn) {
	s.mu.Lock()
	s.open++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.open--
		s.mu.Unlock()
	}()
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		s.mu.Lock()
		s.arrived = append(s.arrived, time.Now())
		s.paths = append(s.paths, req.URL.Path)
		s.mu.Unlock()
		req.Body.Close()
		time.Sleep(s.service)
		if _, err := c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")); err != nil {
			return
		}
	}
}

// idle lets virtual time pass until fasthttp's idle-connection cleaners,
// which outlive a run by design, have seen their pools empty and ended.
func idle(*Engine) { time.Sleep(10 * time.Minute) }

// runVirtual plays the users cfg plans over lib against srv, inside the
// caller's synctest bubble, and returns the engine and what it reported.
func runVirtual(t *testing.T, srv *pipeServer, lib *Library, cfg scheduler.Config, opts ...Option) (*Engine, *collect) {
	t.Helper()
	e, err := New("http://backend.test", lib, append([]Option{WithDial(srv.dial)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := scheduler.New(lib.Sessions(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	sink := &collect{}
	if err := e.Run(context.Background(), plan, time.Now(), sink); err != nil {
		t.Fatal(err)
	}
	return e, sink
}

// playOnce plays the library's first session as user k of e, to its end,
// with the given users-file values, and returns what it reported.
func playOnce(e *Engine, k int, vals []string) *collect {
	sink := &collect{}
	u := &user{e: e, k: k, profile: "browse", sink: sink, hard: context.Background(), scale: 1, timer: time.NewTimer(time.Hour), vals: vals}
	u.lastWait.Store(int64(time.Hour))
	u.play(context.Background(), time.Now().Add(time.Hour), 0, time.Now())
	u.conns.closeAll(e)
	return sink
}

// collect is a Sink that keeps copies of every sample.
type collect struct {
	mu      sync.Mutex
	samples []report.Sample
}

func (c *collect) Observe(s *report.Sample) {
	c.mu.Lock()
	c.samples = append(c.samples, *s)
	c.mu.Unlock()
}

func session(id, profile string, offsets ...time.Duration) *traces.Session {
	s := &traces.Session{ID: id, Profile: profile}
	for i, o := range offsets {
		think := time.Duration(0)
		if i > 0 {
			think = o - offsets[i-1] - 10*time.Millisecond // each recorded answer took 10 ms
		}
		s.Exchanges = append(s.Exchanges, traces.Exchange{Offset: o, Think: think, Duration: 10 * time.Millisecond, Method: "GET", URL: "/" + profile, Status: 200})
	}
	return s
}

// TestPacingInVirtualTime plays a session whose requests were recorded 0,
// 100 and 300 ms into it: in virtual time, every request goes out exactly
// when the pacing says, and the lag is zero.
func TestPacingInVirtualTime(t *testing.T) {
	for _, tc := range []struct {
		name   string
		pacing Pacing
		scale  float64
		// Offsets of arrivals from the session's start.
		want []time.Duration
	}{
		{"recorded", Recorded, 1, []time.Duration{0, 100 * time.Millisecond, 300 * time.Millisecond}},
		{"recorded twice as fast", Recorded, 0.5, []time.Duration{0, 50 * time.Millisecond, 150 * time.Millisecond}},
		// Think: each answer takes 25 ms here, then the recorded think
		// gap (90 and 190 ms) follows.
		{"think", Think, 1, []time.Duration{0, 25*time.Millisecond + 90*time.Millisecond, 2*25*time.Millisecond + 90*time.Millisecond + 190*time.Millisecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := &pipeServer{service: 25 * time.Millisecond}
				lib := FromSessions([]*traces.Session{session("a", "browse", 0, 100*time.Millisecond, 300*time.Millisecond)})
				// One user for long enough to play the session once.
				start := time.Now()
				e, sink := runVirtual(t, srv, lib, scheduler.Config{Users: 1, RunTime: 350 * time.Millisecond, Scale: tc.scale}, WithPacing(tc.pacing), WithStopTimeout(time.Second))
				idle(e)
				if len(srv.arrived) < len(tc.want) {
					t.Fatalf("%d requests arrived, want at least %d", len(srv.arrived), len(tc.want))
				}
				for i, w := range tc.want {
					if got := srv.arrived[i].Sub(start); got != w {
						t.Errorf("request %d arrived at %v, want %v", i, got, w)
					}
				}
				for _, s := range sink.samples {
					if s.Lag() != 0 || s.Done != 25*time.Millisecond || s.Status != 200 || s.Err != "" {
						t.Errorf("sample %+v: want no lag, 25 ms, 200", s)
					}
				}
			})
		})
	}
}

// TestShardsRunTheSameUsers runs a plan whole and as three shards, in
// virtual time: together the shards send exactly the requests of the whole.
func TestShardsRunTheSameUsers(t *testing.T) {
	lib := FromSessions([]*traces.Session{
		session("b1", "browse", 0, 70*time.Millisecond, 130*time.Millisecond),
		session("b2", "browse", 0, 20*time.Millisecond),
		session("c1", "chat", 0, 40*time.Millisecond, 90*time.Millisecond, 170*time.Millisecond),
		session("i1", "import", 0, 300*time.Millisecond),
	})
	count := func(shard, shards int) map[string]int {
		out := map[string]int{}
		synctest.Test(t, func(t *testing.T) {
			srv := &pipeServer{service: 5 * time.Millisecond}
			e, _ := runVirtual(t, srv, lib, scheduler.Config{Users: 30, SpawnRate: 100, RunTime: time.Second, Seed: 4, Shard: shard, Shards: shards}, WithStopTimeout(time.Second))
			idle(e)
			srv.mu.Lock()
			defer srv.mu.Unlock()
			for _, p := range srv.paths {
				out[p]++
			}
		})
		return out
	}
	whole := count(0, 1)
	sum := map[string]int{}
	for i := range 3 {
		for p, n := range count(i, 3) {
			sum[p] += n
		}
	}
	if len(whole) == 0 || whole["/browse"] == 0 || whole["/chat"] == 0 {
		t.Fatalf("whole run %v", whole)
	}
	for p, n := range whole {
		if sum[p] != n {
			t.Fatalf("shards sent %v, the whole run %v", sum, whole)
		}
	}
}

// TestMixOverManyUsers gives 200 users the recorded 60/30/10 mix of
// one-request sessions: in virtual time every user sends at the same
// cadence, so requests split exactly as users do.
func TestMixOverManyUsers(t *testing.T) {
	var ss []*traces.Session
	for i := range 10 {
		p := "browse"
		switch {
		case i >= 9:
			p = "import"
		case i >= 6:
			p = "chat"
		}
		ss = append(ss, session("s", p, 0))
	}
	lib := FromSessions(ss)
	synctest.Test(t, func(t *testing.T) {
		srv := &pipeServer{service: 10 * time.Millisecond}
		e, sink := runVirtual(t, srv, lib, scheduler.Config{Users: 200, RunTime: time.Second}, WithPacing(Think), WithStopTimeout(time.Second))
		idle(e)
		count := map[string]int{}
		for _, s := range sink.samples {
			count[s.Profile]++
		}
		per := count["import"] / 20 // requests per user
		if per < 50 || count["browse"] != 120*per || count["chat"] != 60*per {
			t.Fatalf("requests per profile %v, want 120:60:20 users' worth", count)
		}
	})
}

// TestStopTimeoutCutsRequests runs against a server that takes an hour to
// answer: the run ends at its run time plus the stop timeout, and the
// request in flight is reported as stopped.
func TestStopTimeoutCutsRequests(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &pipeServer{service: time.Hour}
		lib := FromSessions([]*traces.Session{session("a", "browse", 0)})
		start := time.Now()
		_, sink := runVirtual(t, srv, lib, scheduler.Config{Users: 1, RunTime: 100 * time.Millisecond}, WithStopTimeout(time.Second), WithTimeout(2*time.Hour))
		if took := time.Since(start); took != 1100*time.Millisecond {
			t.Fatalf("the run took %v, want the run time and the stop timeout, 1.1 s", took)
		}
		if len(sink.samples) != 1 || sink.samples[0].Err != report.ErrStopped {
			t.Fatalf("samples %+v, want one stopped request", sink.samples)
		}
		time.Sleep(2 * time.Hour) // let the server's sleep end
	})
}

// TestLongHeadersAndBodies reads answers whose headers outgrow the pooled
// read buffer, and bodies far larger than it, over kept-alive connections.
func TestLongHeadersAndBodies(t *testing.T) {
	cookie := strings.Repeat("c", 6000)
	body := strings.Repeat("b", 100000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Set-Cookie", "big="+cookie)
		_, _ = io.WriteString(w, body)
	}))
	defer srv.Close()
	lib := FromSessions([]*traces.Session{session("a", "browse", 0, time.Millisecond, 2*time.Millisecond)})
	e, err := New(srv.URL, lib)
	if err != nil {
		t.Fatal(err)
	}
	sink := playOnce(e, 0, nil)
	if len(sink.samples) != 3 {
		t.Fatalf("%d samples", len(sink.samples))
	}
	for _, s := range sink.samples {
		if s.Err != "" || s.Status != 200 {
			t.Fatalf("sample %+v", s)
		}
	}
}

// TestRunEndsOnTime plays a session longer than the run: what is due after
// the run's end is not sent, and the run does not wait for the session
// (only for requests in flight, up to the stop timeout).
func TestRunEndsOnTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &pipeServer{service: 25 * time.Millisecond}
		lib := FromSessions([]*traces.Session{session("a", "browse", 0, 100*time.Millisecond, 190*time.Millisecond, 10*time.Second)})
		start := time.Now()
		e, sink := runVirtual(t, srv, lib, scheduler.Config{Users: 1, RunTime: 200 * time.Millisecond}, WithStopTimeout(30*time.Second))
		// The request sent at 190 ms is answered at 215 ms, after the end.
		if took := time.Since(start); took != 215*time.Millisecond {
			t.Errorf("run took %v, want 215ms", took)
		}
		idle(e)
		if len(srv.arrived) != 3 || len(sink.samples) != 3 {
			t.Fatalf("%d requests arrived, %d reported; want 3", len(srv.arrived), len(sink.samples))
		}
	})
}

// TestOverdueRequestsShareTheUsersConnections plays 20 requests due at
// once: they go out on at most the user's 6 connections, as a browser's
// would, rather than on a connection each.
func TestOverdueRequestsShareTheUsersConnections(t *testing.T) {
	var mu sync.Mutex
	addrs := map[string]bool{}
	inflight, most := 0, 0
	release := make(chan struct{})
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		addrs[r.RemoteAddr] = true
		inflight++
		most = max(most, inflight)
		full := inflight == 6
		mu.Unlock()
		if full {
			once.Do(func() { close(release) }) // six at once: the most a user may have
		}
		<-release
		mu.Lock()
		inflight--
		mu.Unlock()
	}))
	defer srv.Close()
	offsets := make([]time.Duration, 20)
	lib := FromSessions([]*traces.Session{session("a", "browse", offsets...)})
	e, err := New(srv.URL, lib)
	if err != nil {
		t.Fatal(err)
	}
	sink := playOnce(e, 0, nil)
	mu.Lock()
	defer mu.Unlock()
	if len(sink.samples) != 20 || most != 6 || len(addrs) != 6 {
		t.Fatalf("%d answers, at most %d at once on %d connections; want 20 on 6", len(sink.samples), most, len(addrs))
	}
	for _, s := range sink.samples {
		if s.Err != "" || s.Status != 200 {
			t.Fatalf("sample %+v", s)
		}
	}
}

// TestSourceIPsSpreadConnections replays 8 users with two source addresses:
// the target sees connections from both, and from no other.
func TestSourceIPsSpreadConnections(t *testing.T) {
	var mu sync.Mutex
	from := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		mu.Lock()
		from[host]++
		mu.Unlock()
	}))
	defer srv.Close()
	ips, err := ParseIPRange("127.0.0.2-127.0.0.3")
	if err != nil {
		t.Fatal(err)
	}
	lib := FromSessions([]*traces.Session{session("a", "browse", 0)})
	e, err := New(srv.URL, lib, WithSourceIPs(ips), WithPacing(Think))
	if err != nil {
		t.Fatal(err)
	}
	for k := range 8 {
		playOnce(e, k, nil)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(from) != 2 || from["127.0.0.2"] == 0 || from["127.0.0.3"] == 0 {
		t.Fatalf("connections came from %v", from)
	}
}

// TestCutSessionEndsTheInterval: a session cut by the run's end is the
// user's last; the user does not start session after session in the time
// left (which once sent thousands of first requests).
func TestCutSessionEndsTheInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &pipeServer{service: time.Millisecond}
		lib := FromSessions([]*traces.Session{session("a", "browse", 0, 2*time.Second, 4*time.Second, 6*time.Second)})
		e, _ := runVirtual(t, srv, lib, scheduler.Config{Users: 1, RunTime: 10 * time.Second})
		idle(e)
		// The whole session (0–6 s), then the next one's 6 and 8 s requests.
		if len(srv.arrived) != 6 {
			t.Fatalf("%d requests arrived, want 6", len(srv.arrived))
		}
	})
}
