package scheduler

import (
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseMix(t *testing.T) {
	m, err := ParseMix("chat=30, browse=60,import=10")
	if err != nil {
		t.Fatal(err)
	}
	if m.Share("browse") != 0.6 || m.Share("chat") != 0.3 || m.String() != "browse=60,chat=30,import=10" {
		t.Fatalf("%v", m)
	}
	for _, tc := range []struct{ name, in, want string }{
		{"no weight", "chat", "want PROFILE=WEIGHT pairs"},
		{"weight not a number", "chat=x", `weight of chat "x": want a number`},
		{"negative weight", "chat=-1", "weight -1 is not a finite number of 0 or more"},
		{"all weights zero", "chat=0", "no profile has a weight above 0"},
		{"profile twice", "a=1,a=2", "a given twice"},
		{"NaN weight", "a=NaN", "weight NaN is not a finite number"},
	} {
		if _, err := ParseMix(tc.in); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: ParseMix(%q) = %v, want an error saying %q", tc.name, tc.in, err, tc.want)
		}
	}
}

func TestAssignKeepsEveryPrefixOnTheMix(t *testing.T) {
	shares := []float64{0.3, 0.6, 0.1}
	got := assign([]string{"browse", "chat", "import"}, shares, 10000)
	counts := make([]float64, 3)
	for k, p := range got {
		counts[p]++
		for i, s := range shares {
			if d := math.Abs(counts[i] - s*float64(k+1)); d >= 1 {
				t.Fatalf("after %d users, profile %d has %v, %v off its share", k+1, i, counts[i], d)
			}
		}
	}
	if counts[0] != 3000 || counts[1] != 6000 || counts[2] != 1000 {
		t.Fatalf("counts %v", counts)
	}
}

func TestParseStages(t *testing.T) {
	st, err := ParseStages("100:2m, 1000:5m,0:30s")
	if err != nil {
		t.Fatal(err)
	}
	want := []Stage{{100, 2 * time.Minute}, {1000, 5 * time.Minute}, {0, 30 * time.Second}}
	if !reflect.DeepEqual(st, want) {
		t.Fatalf("%v", st)
	}
	for _, tc := range []struct{ name, in, want string }{
		{"empty", "", "no stages"},
		{"no duration", "100", "want USERS:DURATION pairs"},
		{"users not a number", "x:2m", `users "x": want a whole number`},
		{"duration not a duration", "100:x", `duration "x": want a duration`},
		{"negative users", "-1:1m", "-1 users: want 0 to 10000000"},
		{"zero duration", "10:0s", "duration 0s is not positive"},
	} {
		if _, err := ParseStages(tc.in); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: ParseStages(%q) = %v, want an error saying %q", tc.name, tc.in, err, tc.want)
		}
	}
}

func TestIntervals(t *testing.T) {
	s := time.Second
	ramp := []Stage{{10, 10 * s}, {10, 10 * s}, {0, 10 * s}, {5, 5 * s}}
	for _, tc := range []struct {
		k    int
		want []Interval
	}{
		// Up one user a second; down one a second from 20 s; up again.
		{0, []Interval{{1 * s, 29 * s}, {31 * s, 35 * s}}},
		{4, []Interval{{5 * s, 25 * s}, {35 * s, 35 * s}}},
		{9, []Interval{{10 * s, 20 * s}}},
		{10, nil},
	} {
		if got := intervals(segmentsOf(ramp), tc.k); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("user %d: %v, want %v", tc.k, got, tc.want)
		}
	}
}

func sessions(counts map[string]int) []SessionInfo {
	var out []SessionInfo
	for _, name := range Mix(countsFloat(counts)).Names() {
		for i := range counts[name] {
			out = append(out, SessionInfo{Profile: name, Length: time.Duration(i+1) * time.Minute})
		}
	}
	return out
}

func countsFloat(m map[string]int) map[string]float64 {
	out := map[string]float64{}
	for k, v := range m {
		out[k] = float64(v)
	}
	return out
}

func TestPlanRecordedMixAndSpawn(t *testing.T) {
	ss := sessions(map[string]int{"browse": 6, "chat": 3, "import": 1})
	p, err := New(ss, Config{Users: 100, SpawnRate: 10, RunTime: time.Minute, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, k := range p.Users() {
		u := p.User(k)
		count[u.Profile]++
		want := []Interval{{time.Duration(k+1) * 100 * time.Millisecond, time.Minute}}
		if !reflect.DeepEqual(u.Active, want) {
			t.Fatalf("user %d active %v, want %v", k, u.Active, want)
		}
		for n := range 5 {
			if got := ss[p.Session(k, n)].Profile; got != u.Profile {
				t.Fatalf("user %d of %s plays a %s session", k, u.Profile, got)
			}
		}
	}
	if count["browse"] != 60 || count["chat"] != 30 || count["import"] != 10 {
		t.Fatalf("mix %v", count)
	}
	if p.Scale() != 1 || p.Duration() != time.Minute {
		t.Fatalf("scale %v duration %v", p.Scale(), p.Duration())
	}
}

func TestPlanAllAtOnce(t *testing.T) {
	p, err := New(sessions(map[string]int{"a": 1}), Config{Users: 3, RunTime: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range p.Users() {
		if a := p.User(k).Active; len(a) != 1 || a[0].Start != 0 || a[0].Stop != time.Minute {
			t.Fatalf("user %d: %v", k, a)
		}
	}
}

func TestPlanMixProfilesAndErrors(t *testing.T) {
	ss := sessions(map[string]int{"browse": 6, "chat": 3, "import": 1})
	p, err := New(ss, Config{Users: 10, RunTime: time.Minute, Mix: Mix{"chat": 1, "import": 1, "browse": 0}})
	if err != nil {
		t.Fatal(err)
	}
	if names, _ := p.Profiles(); !reflect.DeepEqual(names, []string{"chat", "import"}) {
		t.Fatalf("profiles %v", names)
	}
	p, err = New(ss, Config{Users: 10, RunTime: time.Minute, Profiles: []string{"import"}})
	if err != nil {
		t.Fatal(err)
	}
	if names, shares := p.Profiles(); !reflect.DeepEqual(names, []string{"import"}) || shares[0] != 1 {
		t.Fatalf("profiles %v %v", names, shares)
	}
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"unknown profile", Config{Users: 1, RunTime: time.Minute, Profiles: []string{"admin"}}, `profile "admin": the trace has [browse chat import]`},
		{"mix without traces", Config{Users: 1, RunTime: time.Minute, Mix: Mix{"admin": 1}}, `profile "admin" has weight 1 but no recorded session`},
		{"no users", Config{RunTime: time.Minute}, "users 0: want 1 to 10000000"},
		{"no run time", Config{Users: 1}, "run time 0s: want a positive duration"},
		{"stages and users", Config{Users: 1, Stages: []Stage{{1, time.Second}}}, "stages replace users, spawn rate and run time"},
		{"bad shard", Config{Users: 1, RunTime: time.Minute, Shard: 2, Shards: 2}, "shard 2/2: want 0 <= shard < shards"},
		{"scale and auto", Config{Users: 1, RunTime: time.Minute, Scale: 2, AutoScale: true}, "a time scale and an automatic one"},
		{"negative scale", Config{Users: 1, RunTime: time.Minute, Scale: -1}, "time scale -1: want a positive factor"},
	} {
		if _, err := New(ss, tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: New = %v, want an error saying %q", tc.name, err, tc.want)
		}
	}
}

func TestShardsPartitionUsersExactly(t *testing.T) {
	ss := sessions(map[string]int{"browse": 60, "chat": 30, "import": 10})
	cfg := Config{Users: 1000, SpawnRate: 50, RunTime: time.Minute, Seed: 9}
	whole, err := New(ss, cfg)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]int{}
	for i := range 7 {
		c := cfg
		c.Shard, c.Shards = i, 7
		part, err := New(ss, c)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range part.Users() {
			seen[k]++
			if k%7 != i {
				t.Fatalf("shard %d has user %d", i, k)
			}
			if !reflect.DeepEqual(part.User(k), whole.User(k)) {
				t.Fatalf("user %d differs in shard %d", k, i)
			}
			for n := range 3 {
				if part.Session(k, n) != whole.Session(k, n) {
					t.Fatalf("user %d session %d differs in shard %d", k, n, i)
				}
			}
		}
	}
	if len(seen) != 1000 {
		t.Fatalf("shards cover %d users, want 1000", len(seen))
	}
	for k, n := range seen {
		if n != 1 {
			t.Fatalf("user %d in %d shards", k, n)
		}
	}
}

func TestSessionsAreSeededAndUniform(t *testing.T) {
	ss := sessions(map[string]int{"browse": 10})
	a, _ := New(ss, Config{Users: 1, RunTime: time.Minute, Seed: 1})
	b, _ := New(ss, Config{Users: 1, RunTime: time.Minute, Seed: 1})
	c, _ := New(ss, Config{Users: 1, RunTime: time.Minute, Seed: 2})
	counts := make([]int, 10)
	differ := 0
	const n = 100000
	for i := range n {
		x := a.Session(0, i)
		if x != b.Session(0, i) {
			t.Fatal("same seed, different sessions")
		}
		if x != c.Session(0, i) {
			differ++
		}
		counts[x]++
	}
	if differ < n/2 {
		t.Fatalf("seeds 1 and 2 agree on %d of %d draws", n-differ, n)
	}
	// Chi-square with 9 degrees of freedom: 27.9 is its 0.999 quantile.
	chi := 0.0
	for _, c := range counts {
		d := float64(c) - n/10
		chi += d * d / (n / 10)
	}
	if chi > 27.9 {
		t.Fatalf("draws %v are not uniform (chi² %.1f)", counts, chi)
	}
}

func TestAutoScale(t *testing.T) {
	ss := sessions(map[string]int{"a": 10}) // the longest lasts 10 minutes
	for _, tc := range []struct {
		run  time.Duration
		want float64
	}{
		{time.Minute, 0.1},
		{20 * time.Minute, 1},
	} {
		p, err := New(ss, Config{Users: 1, RunTime: tc.run, AutoScale: true})
		if err != nil {
			t.Fatal(err)
		}
		if p.Scale() != tc.want {
			t.Errorf("run %v: scale %v, want %v", tc.run, p.Scale(), tc.want)
		}
	}
}

// TestLadderPhaseConfig: a phase sets users, spawn rate and a scaled run
// time of a second at least, and clears stages.
func TestLadderPhaseConfig(t *testing.T) {
	base := Config{Seed: 7, Stages: []Stage{{Users: 5, Duration: time.Minute}}, Scale: 0.5}
	ph := Ladder()[1]
	for _, tc := range []struct {
		scale float64
		want  time.Duration
	}{{1, 5 * time.Minute}, {0.01, 3 * time.Second}, {0.0001, time.Second}} {
		c := ph.Config(base, tc.scale)
		if c.Users != 1000 || c.SpawnRate != 50 || c.RunTime != tc.want || c.Stages != nil || c.Seed != 7 || c.Scale != 0.5 {
			t.Errorf("scale %g: %+v", tc.scale, c)
		}
		if err := c.Validate(); err != nil {
			t.Errorf("scale %g: %v", tc.scale, err)
		}
	}
}

func TestParseShard(t *testing.T) {
	if i, n, err := ParseShard("2/4"); err != nil || i != 2 || n != 4 {
		t.Fatalf("2/4: %d/%d, %v", i, n, err)
	}
	for _, tc := range []struct{ name, in string }{
		{"no slash", "2"}, {"index past count", "3/3"}, {"negative", "-1/2"}, {"no shards", "0/0"}, {"not numbers", "a/b"},
	} {
		if _, _, err := ParseShard(tc.in); err == nil || !strings.Contains(err.Error(), "want i/n with 0 <= i < n") {
			t.Errorf("%s: ParseShard(%q) = %v", tc.name, tc.in, err)
		}
	}
}

func TestLadderUpTo(t *testing.T) {
	all, err := LadderUpTo(0)
	if err != nil || len(all) != len(Ladder()) {
		t.Fatalf("all: %d phases, %v", len(all), err)
	}
	some, err := LadderUpTo(1000)
	if err != nil || len(some) != 2 || some[1].Users != 1000 {
		t.Fatalf("up to 1,000: %+v, %v", some, err)
	}
	if _, err := LadderUpTo(99); err == nil || !strings.Contains(err.Error(), "first phase has 100 users, more than 99") {
		t.Errorf("up to 99: %v", err)
	}
	if len(Ladder()) != 5 {
		t.Error("LadderUpTo changed the ladder")
	}
}
