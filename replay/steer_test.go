package replay

import (
	"context"
	"errors"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/thrive-loadtest/thrive/scheduler"
	"github.com/thrive-loadtest/thrive/traces"
)

// TestSteerInVirtualTime changes running plans as the live page does.
// The server sees each user's ten requests a second only while the plan
// has the user; the users counted and the connections held follow the
// changes, and the changes are kept.
func TestSteerInVirtualTime(t *testing.T) {
	type span struct{ start, stop time.Duration }
	ms := time.Millisecond
	s := time.Second
	type change struct {
		at    time.Duration
		users int
		rate  float64
	}
	for _, tc := range []struct {
		name    string
		users   int
		changes []change
		// counts are the users that play at a time; played, when each
		// user plays.
		counts map[time.Duration]int64
		played [][]span
	}{
		{
			name: "up, down at once, up again", users: 2,
			changes: []change{{3 * s, 6, 2}, {5950 * ms, 1, 0}, {7 * s, 3, 0}},
			counts:  map[time.Duration]int64{2900 * ms: 2, 3600 * ms: 3, 5100 * ms: 6, 6050 * ms: 1, 7050 * ms: 3},
			played: [][]span{{{0, 10 * s}}, {{0, 5950 * ms}, {7 * s, 10 * s}}, {{3500 * ms, 5950 * ms}, {7 * s, 10 * s}},
				{{4 * s, 5950 * ms}}, {{4500 * ms, 5950 * ms}}, {{5 * s, 5950 * ms}}},
		},
		{
			// A fall at a user a second, turned back half way: the users
			// still playing play on, those that stopped come back. (The
			// last user stops as the fall begins, as the first starts
			// a second into a rise.)
			name: "down slowly, then back", users: 4,
			changes: []change{{2050 * ms, 0, 1}, {3550 * ms, 4, 0}},
			counts:  map[time.Duration]int64{2100 * ms: 3, 3100 * ms: 2, 3600 * ms: 4, 9 * s: 4},
			played:  [][]span{{{0, 10 * s}}, {{0, 10 * s}}, {{0, 3050 * ms}, {3550 * ms, 10 * s}}, {{0, 2050 * ms}, {3550 * ms, 10 * s}}},
		},
	} {
		synctest.Test(t, func(t *testing.T) {
			offsets := make([]time.Duration, 10)
			for i := range offsets {
				offsets[i] = time.Duration(i) * 100 * ms
			}
			lib := FromSessions([]*traces.Session{session("a", "browse", offsets...)})
			srv := &pipeServer{}
			steer := NewSteer()
			if err := steer.Set(5, 1); !errors.Is(err, ErrNotPlaying) {
				t.Errorf("a change before the run: %v", err)
			}
			e, err := New("http://backend.test", lib, WithDial(srv.dial), WithSteer(steer))
			if err != nil {
				t.Fatal(err)
			}
			plan, err := scheduler.New(lib.Sessions(), scheduler.Config{Users: tc.users, RunTime: 10 * s})
			if err != nil {
				t.Fatal(err)
			}
			sink := &collect{}
			start := time.Now()
			done := make(chan error, 1)
			go func() { done <- e.Run(context.Background(), plan, start, sink) }()
			var when []time.Duration
			for _, c := range tc.changes {
				when = append(when, c.at)
			}
			for d := range tc.counts {
				when = append(when, d)
			}
			slices.Sort(when)
			for _, d := range when {
				time.Sleep(time.Until(start.Add(d)))
				synctest.Wait()
				for _, c := range tc.changes {
					if c.at == d {
						if err := steer.Set(c.users, c.rate); err != nil {
							t.Fatal(err)
						}
					}
				}
				if want, ok := tc.counts[d]; ok {
					srv.mu.Lock()
					open := srv.open
					srv.mu.Unlock()
					if got := e.Status().Users; got != want || open > int(want) {
						t.Errorf("%s: at %v, %d users, %d connections open; want %d users", tc.name, d, got, open, want)
					}
				}
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if err := steer.Set(3, 0); !errors.Is(err, ErrNotPlaying) {
				t.Errorf("a change after the run: %v", err)
			}
			got := steer.Changes()
			for i, c := range tc.changes {
				if i >= len(got) || got[i] != (Change{c.at, c.users, c.rate}) {
					t.Errorf("%s: changes kept %+v", tc.name, got)
					break
				}
			}

			// What the server saw, second by second: each user sends at
			// 0, 100, ... 900 ms into a session and begins the next once
			// the last answer came (at once: the server takes no time),
			// while the plan has it.
			want, seen := make([]int, 10), make([]int, 10)
			for _, ivs := range tc.played {
				for _, iv := range ivs {
					for s0 := iv.start; s0 < iv.stop; s0 += 900 * ms {
						for _, o := range offsets {
							if s0+o < iv.stop {
								want[(s0+o)/s]++
							}
						}
					}
				}
			}
			srv.mu.Lock()
			for _, a := range srv.arrived {
				seen[a.Sub(start)/s]++
			}
			srv.mu.Unlock()
			if !slices.Equal(seen, want) {
				t.Errorf("%s: the server saw %v requests second by second, want %v", tc.name, seen, want)
			}
			if len(sink.samples) != len(srv.arrived) {
				t.Errorf("%s: %d samples for %d requests", tc.name, len(sink.samples), len(srv.arrived))
			}
		})
	}
}
