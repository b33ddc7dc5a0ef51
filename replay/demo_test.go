package replay_test

import (
	"context"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

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
	sink.Meta = cp.Meta()
	if err := sink.Open(); err != nil {
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
}
