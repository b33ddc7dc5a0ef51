//go:build linux

package demo_test

import (
	"math"
	"syscall"
	"testing"
	"time"

	"github.com/thrive-loadtest/thrive/demo"
)

// cpuTime returns the CPU time the process has used.
func cpuTime(t *testing.T) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestBusy: with a busy share, each answer computes that share of its
// modelled latency: the backend counts it, and the process did use at
// least that much CPU time (spin does not wait it out).
func TestBusy(t *testing.T) {
	const n = 20
	const tools = 10 * time.Millisecond
	opts := []demo.Option{
		demo.WithRateLimit(0, 1), demo.WithLatencyScale(1), demo.WithLatency(demo.ClassLogin, demo.Latency{}),
		demo.WithLatency(demo.ClassTools, demo.Latency{Median: tools, P99: tools}),
	}
	play := func(base string) time.Duration {
		c := newClient(t, base)
		c.login("ann")
		was := cpuTime(t)
		for range n {
			if code, _, body := c.do("GET", "/api/tools/", "", ""); code != 200 {
				t.Fatalf("GET /api/tools/: %d %s", code, body)
			}
		}
		return cpuTime(t) - was
	}
	idle := start(t, opts...)
	play(idle)
	if v, _ := metric(t, scrape(t, idle), "demo_busy_seconds_total"); v != 0 {
		t.Fatalf("a backend that only waits counts %v s busy", v)
	}
	const share = 0.75
	busy := start(t, append(opts, demo.WithBusy(share))...)
	used := play(busy)
	want := n * share * tools.Seconds()
	if v, _ := metric(t, scrape(t, busy), "demo_busy_seconds_total"); math.Abs(v-want) > 1e-9 {
		t.Errorf("the backend counts %v s busy, want %d answers × %v × %v = %v s", v, n, share, tools, want)
	}
	if used.Seconds() < want {
		t.Errorf("the process used %v of CPU for %v s of busy answers", used, want)
	}
}

func TestBusyIsAShare(t *testing.T) {
	for _, s := range []string{"-0.1", "1.5", "NaN", "half"} {
		if _, err := demo.ParseBusy(s); err == nil {
			t.Errorf("ParseBusy(%q) took it", s)
		}
	}
	if _, err := demo.New(demo.WithBusy(2)); err == nil {
		t.Error("New took a busy share of 2")
	}
	opt, err := demo.ParseBusy("0.3")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := demo.New(opt); err != nil {
		t.Fatal(err)
	}
}
