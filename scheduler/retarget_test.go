package scheduler

import (
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestRetarget: a change keeps the ramp before it, moves the users to the
// new level at the rate asked (up or down, at once with 0) and holds them
// there to the end; users keep their profiles, and users added follow the
// mix.
func TestRetarget(t *testing.T) {
	s := time.Second
	p, err := New(sessions(map[string]int{"browse": 6, "chat": 3, "import": 1}), Config{Users: 10, SpawnRate: 1, RunTime: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ms := func(x float64) time.Duration { return time.Duration(math.Round(x * float64(time.Second))) }
	for _, tc := range []struct {
		name      string
		at        time.Duration
		users     int
		rate      float64
		total     int
		intervals map[int][]Interval
	}{
		{"up at 2/s once all run", 20 * s, 20, 2, 20, map[int][]Interval{
			0: {{1 * s, 60 * s}}, 9: {{10 * s, 60 * s}}, 10: {{ms(20.5), 60 * s}}, 19: {{25 * s, 60 * s}}}},
		{"down at 2/s: the last started stops first", 30 * s, 4, 2, 10, map[int][]Interval{
			3: {{4 * s, 60 * s}}, 4: {{5 * s, ms(32.5)}}, 9: {{10 * s, 30 * s}}}},
		{"at once while the ramp climbs", ms(4.5), 10, 0, 10, map[int][]Interval{
			3: {{4 * s, 60 * s}}, 4: {{ms(4.5), 60 * s}}, 9: {{ms(4.5), 60 * s}}}},
		{"a slow rate the run ends before", 50 * s, 100, 1, 20, map[int][]Interval{
			10: {{51 * s, 60 * s}}, 19: {{60 * s, 60 * s}}}},
		{"to none at once", 30 * s, 0, 0, 10, map[int][]Interval{0: {{1 * s, 30 * s}}}},
	} {
		q, err := p.Retarget(tc.at, tc.users, tc.rate)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if q.TotalUsers() != tc.total || q.Duration() != p.Duration() || len(q.Users()) != tc.total {
			t.Errorf("%s: %d users (%d here) for %v", tc.name, q.TotalUsers(), len(q.Users()), q.Duration())
		}
		for k, want := range tc.intervals {
			if got := q.User(k).Active; !reflect.DeepEqual(got, want) {
				t.Errorf("%s: user %d active %v, want %v", tc.name, k, got, want)
			}
		}
		for k := range min(p.TotalUsers(), q.TotalUsers()) {
			if p.User(k).Profile != q.User(k).Profile {
				t.Errorf("%s: user %d changed profile", tc.name, k)
			}
		}
		// Users added keep every prefix on the mix, as a plan of as many
		// users from the start would.
		fresh, err := New(sessions(map[string]int{"browse": 6, "chat": 3, "import": 1}), Config{Users: max(q.TotalUsers(), 1), RunTime: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		for k := range q.TotalUsers() {
			if q.User(k).Profile != fresh.User(k).Profile {
				t.Errorf("%s: user %d plays %s, a plan of %d users gives it %s", tc.name, k, q.User(k).Profile, q.TotalUsers(), fresh.User(k).Profile)
			}
		}
	}

	// Changes follow each other: down, then up again, gives the users
	// that stopped a second interval.
	q, err := p.Retarget(30*s, 5, 0)
	if err == nil {
		q, err = q.Retarget(40*s, 10, 1)
	}
	if err != nil {
		t.Fatal(err)
	}
	if got, want := q.User(7).Active, []Interval{{8 * s, 30 * s}, {43 * s, 60 * s}}; !reflect.DeepEqual(got, want) {
		t.Errorf("down then up: user 7 active %v, want %v", got, want)
	}

	// A plan of shards gives each shard its part of the users added.
	sh, err := New(sessions(map[string]int{"browse": 1}), Config{Users: 4, RunTime: time.Minute, Shard: 1, Shards: 2})
	if err == nil {
		sh, err = sh.Retarget(s, 9, 0)
	}
	if err != nil {
		t.Fatal(err)
	}
	if got := sh.Users(); !reflect.DeepEqual(got, []int{1, 3, 5, 7}) {
		t.Errorf("shard 1/2 of 9 users: %v", got)
	}

	for _, tc := range []struct {
		at    time.Duration
		users int
		rate  float64
		want  string
	}{
		{time.Minute, 5, 1, "a change at 1m0s: the run lasts 1m0s"},
		{-s, 5, 1, "a change at -1s"},
		{s, -1, 1, "-1 users: want 0 to 10000000"},
		{s, 5, math.NaN(), "spawn rate NaN"},
		{s, 5, -1, "spawn rate -1"},
	} {
		if _, err := p.Retarget(tc.at, tc.users, tc.rate); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Retarget(%v, %d, %g) = %v, want an error saying %q", tc.at, tc.users, tc.rate, err, tc.want)
		}
	}
}
