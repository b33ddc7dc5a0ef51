package demo

import (
	"fmt"
	"runtime"
	"strconv"
	"time"
)

// A backend whose latency is all waiting (on a database, another service)
// is slowed by nothing else running on its machine; one that computes part
// of each answer (renders, hashes, serializes) is slowed by whatever else
// wants its cores. WithBusy makes the demo backend the second kind, so that
// a benchmark can load its cores and see its latencies drift, as a shared
// machine's do.

// WithBusy makes the backend spend share (0 to 1) of each request's modelled
// latency (its class's, slowed by WithSlow; the chat's tokens still only
// wait) computing rather than waiting: that much CPU time of its thread, so
// that other load on its cores stretches the time it takes. The rest it
// waits as before. The default, 0, only waits. demo_busy_seconds_total
// counts the CPU time spent so.
func WithBusy(share float64) Option {
	return func(c *config) error {
		if !(share >= 0 && share <= 1) {
			return fmt.Errorf("busy share %g: want a share in [0, 1]", share)
		}
		c.busy = share
		return nil
	}
}

// ParseBusy reads a share in [0, 1] into its WithBusy option.
func ParseBusy(s string) (Option, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || !(f >= 0 && f <= 1) {
		return nil, fmt.Errorf("%q: want a share in [0, 1], such as 0.3", s)
	}
	return WithBusy(f), nil
}

// spin computes until its thread has run d (on a system without a thread
// CPU clock, until d has passed): time taken from it by other threads on
// the same core is not counted, and so stretches the wall time spin takes.
// It returns what it computed, for the caller to keep, so that the work is
// not optimized away. Whatever the clock does, it stops once a hundred
// times d (at least a second) has passed.
func spin(d time.Duration) uint64 {
	if d <= 0 {
		return 0
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	end := threadCPU() + d
	deadline := time.Now().Add(max(100*d, time.Second))
	x := uint64(d)
	for threadCPU() < end && time.Now().Before(deadline) {
		for range 1024 {
			x = x*6364136223846793005 + 1442695040888963407
		}
	}
	return x
}

// wallClock returns the time since the Unix epoch, for a system without a
// thread CPU clock.
func wallClock() time.Duration { return time.Duration(time.Now().UnixNano()) }
