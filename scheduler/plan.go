package scheduler

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// SessionInfo is what the scheduler needs to know of a recorded session.
type SessionInfo struct {
	Profile string
	// Length is the session's span: from its start to the end of its last
	// exchange or WebSocket.
	Length time.Duration
}

// Config is a run's parameters. The zero value is not valid: a run needs
// users and a run time, or stages.
type Config struct {
	// Users is how many virtual users run at once, reached at SpawnRate.
	Users int
	// SpawnRate is how many users start a second; 0 starts them all at once.
	SpawnRate float64
	// RunTime is how long the run lasts.
	RunTime time.Duration
	// Stages, when set, shape the number of users instead of Users,
	// SpawnRate and RunTime.
	Stages []Stage
	// Mix weighs the profiles; nil means the recorded proportions.
	Mix Mix
	// Profiles, when set, limits the run to these profiles.
	Profiles []string
	// Seed makes the choice of sessions repeatable.
	Seed uint64
	// Scale multiplies every recorded gap: 0.5 plays twice as fast. 0 means
	// 1 unless AutoScale.
	Scale float64
	// AutoScale picks the Scale that fits the longest session into the run
	// time, and never more than 1.
	AutoScale bool
	// Shard and Shards select the users k with k mod Shards == Shard.
	// Shards 0 means 1.
	Shard, Shards int
}

// Plan is a run worked out in advance. It is immutable and safe for
// concurrent use.
type Plan struct {
	cfg      Config
	names    []string      // profiles that run, sorted
	shares   []float64     // their shares of users
	sessions [][]int       // for each profile, indexes of its sessions
	profile  []uint16      // profile of every user of the whole run
	scale    float64       // the time scale in force
	duration time.Duration // the run's length
	users    int           // users of the whole run (all shards)
	mine     []int         // this shard's users
	ramp     []segment     // the ramp, stages or made from Users/SpawnRate
}

// Validate reports every problem with the configuration.
func (c *Config) Validate() error {
	var errs []error
	if c.Stages != nil {
		if c.Users != 0 || c.SpawnRate != 0 || c.RunTime != 0 {
			errs = append(errs, errors.New("stages replace users, spawn rate and run time: give one or the other"))
		}
		if err := ValidateStages(c.Stages); err != nil {
			errs = append(errs, err)
		}
	} else {
		if c.Users <= 0 || c.Users > MaxUsers {
			errs = append(errs, fmt.Errorf("users %d: want 1 to %d (more run as shards of several plans)", c.Users, MaxUsers))
		}
		if c.RunTime <= 0 {
			errs = append(errs, fmt.Errorf("run time %v: want a positive duration", c.RunTime))
		}
		if c.SpawnRate < 0 || math.IsNaN(c.SpawnRate) || math.IsInf(c.SpawnRate, 0) {
			errs = append(errs, fmt.Errorf("spawn rate %g: want 0 (all at once) or more", c.SpawnRate))
		}
	}
	if c.Mix != nil {
		if err := c.Mix.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("mix: %w", err))
		}
	}
	if c.Scale < 0 || math.IsNaN(c.Scale) || math.IsInf(c.Scale, 0) {
		errs = append(errs, fmt.Errorf("time scale %g: want a positive factor", c.Scale))
	}
	if c.AutoScale && c.Scale != 0 {
		errs = append(errs, errors.New("a time scale and an automatic one: give one"))
	}
	shards := max(c.Shards, 1)
	if c.Shard < 0 || c.Shard >= shards {
		errs = append(errs, fmt.Errorf("shard %d/%d: want 0 <= shard < shards", c.Shard, shards))
	}
	return errors.Join(errs...)
}

// MaxUsers bounds the users of one plan: ten million, a hundred times the
// largest run the project aims at, and still a plan of some tens of MB.
const MaxUsers = 10_000_000

// maxScaled bounds how long the longest session may last once scaled: far
// past any run, and far from where a time.Duration overflows.
const maxScaled = 100_000 * time.Hour

// New works out the plan for sessions under cfg.
func New(sessions []SessionInfo, cfg Config) (*Plan, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("scheduler: %w", err)
	}
	byProfile := map[string][]int{}
	var longest time.Duration
	for i, s := range sessions {
		byProfile[s.Profile] = append(byProfile[s.Profile], i)
	}
	mix := cfg.Mix
	if mix == nil {
		mix = Mix{}
		for name, idx := range byProfile {
			mix[name] = float64(len(idx))
		}
	}
	if cfg.Profiles != nil {
		keep := Mix{}
		for _, name := range cfg.Profiles {
			if _, ok := mix[name]; !ok {
				return nil, fmt.Errorf("scheduler: profile %q: the trace has %v", name, Mix(countsOf(byProfile)).Names())
			}
			keep[name] = mix[name]
		}
		mix = keep
	}
	p := &Plan{cfg: cfg}
	var errs []error
	for _, name := range mix.Names() {
		if mix[name] == 0 {
			continue
		}
		idx := byProfile[name]
		if len(idx) == 0 {
			errs = append(errs, fmt.Errorf("profile %q has weight %g but no recorded session", name, mix[name]))
			continue
		}
		p.names = append(p.names, name)
		p.shares = append(p.shares, mix.Share(name))
		p.sessions = append(p.sessions, idx)
		for _, i := range idx {
			longest = max(longest, sessions[i].Length)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("scheduler: %w", err)
	}
	if len(p.names) == 0 {
		return nil, errors.New("scheduler: no sessions to play")
	}
	if len(p.names) > math.MaxUint16 {
		return nil, fmt.Errorf("scheduler: %d profiles is too many", len(p.names))
	}
	if cfg.Stages != nil {
		p.ramp = segmentsOf(cfg.Stages)
	} else {
		p.ramp = segmentsOf(rampOf(cfg.Users, cfg.SpawnRate, cfg.RunTime))
	}
	p.users = maxUsers(p.ramp)
	p.duration = totalDuration(p.ramp)
	p.scale = cfg.Scale
	switch {
	case cfg.AutoScale:
		p.scale = 1
		if longest > p.duration {
			p.scale = float64(p.duration) / float64(longest)
		}
	case p.scale == 0:
		p.scale = 1
	}
	if float64(longest)*p.scale > float64(maxScaled) {
		return nil, fmt.Errorf("scheduler: time scale %g makes the longest session (%v) last %.3g hours; want at most %v",
			p.scale, longest, float64(longest)*p.scale/float64(time.Hour), maxScaled)
	}
	p.assign()
	return p, nil
}

// assign gives the users of the ramp their profiles, and this shard its
// users.
func (p *Plan) assign() {
	p.profile = assign(p.names, p.shares, p.users)
	shards := max(p.cfg.Shards, 1)
	p.mine = nil
	for k := p.cfg.Shard; k < p.users; k += shards {
		p.mine = append(p.mine, k)
	}
}

// Retarget returns the plan p becomes when, at offset at into the run, it
// is asked to go to users at rate users a second (up or down; 0: at
// once) and to stay there to the end, as Locust's page changes a running
// test. The run keeps its length, its ramp before at, its sessions and its
// mix: a user keeps its profile, and users added take the ones the plan
// gives them, so that every prefix of users keeps the mix.
func (p *Plan) Retarget(at time.Duration, users int, rate float64) (*Plan, error) {
	switch {
	case users < 0 || users > MaxUsers:
		return nil, fmt.Errorf("scheduler: %d users: want 0 to %d", users, MaxUsers)
	case rate < 0 || math.IsNaN(rate) || math.IsInf(rate, 0):
		return nil, fmt.Errorf("scheduler: spawn rate %g: want 0 (at once) or more", rate)
	case at < 0 || at >= p.duration:
		return nil, fmt.Errorf("scheduler: a change at %v: the run lasts %v", at, p.duration)
	}
	level, ramp := levelAt(p.ramp, at)
	to, left := float64(users), p.duration-at
	switch d := time.Duration(math.Abs(to-level) / rate * float64(time.Second)); {
	case rate == 0 || to == level:
		ramp = append(ramp, segment{to, 0}, segment{to, left})
	case d >= left: // the run ends on the way
		ramp = append(ramp, segment{level + math.Copysign(rate*left.Seconds(), to-level), left})
	default:
		ramp = append(ramp, segment{to, d}, segment{to, left - d})
	}
	q := *p
	q.ramp, q.users = ramp, maxUsers(ramp)
	q.assign()
	return &q, nil
}

func countsOf(m map[string][]int) map[string]float64 {
	out := map[string]float64{}
	for k, v := range m {
		out[k] = float64(len(v))
	}
	return out
}

// rampOf makes stages of a plain run: up to users at spawnRate (at once
// when 0), then steady until runTime.
func rampOf(users int, spawnRate float64, runTime time.Duration) []Stage {
	if spawnRate == 0 {
		// A stage of no duration jumps: every user starts at 0.
		return []Stage{{Users: users, Duration: 0}, {Users: users, Duration: runTime}}
	}
	up := time.Duration(float64(users) / spawnRate * float64(time.Second))
	if up >= runTime {
		return []Stage{{Users: int(float64(runTime) / float64(time.Second) * spawnRate), Duration: runTime}}
	}
	return []Stage{{Users: users, Duration: up}, {Users: users, Duration: runTime - up}}
}

// Scale returns the time scale in force: chosen, automatic or 1.
func (p *Plan) Scale() float64 { return p.scale }

// Duration returns the run's length.
func (p *Plan) Duration() time.Duration { return p.duration }

// TotalUsers returns the users of the whole run, across shards.
func (p *Plan) TotalUsers() int { return p.users }

// Profiles returns the profiles that run, sorted, with their shares.
func (p *Plan) Profiles() (names []string, shares []float64) {
	return slices.Clone(p.names), slices.Clone(p.shares)
}

// Users returns this shard's users in increasing order.
func (p *Plan) Users() []int { return slices.Clone(p.mine) }

// User is one virtual user's part of the plan.
type User struct {
	// Index is the user's number in the whole run, across shards.
	Index int
	// Profile is the profile the user plays.
	Profile string
	// Active lists when the user runs: it starts no session outside them.
	Active []Interval
}

// User returns user k's plan.
func (p *Plan) User(k int) User {
	return User{Index: k, Profile: p.names[p.profile[k]], Active: intervals(p.ramp, k)}
}

// Session returns the index, among the sessions given to New, of the n-th
// session user k plays (n counts from 0): one of its profile's sessions,
// drawn uniformly from (seed, k, n).
func (p *Plan) Session(k, n int) int {
	idx := p.sessions[p.profile[k]]
	return idx[draw(p.cfg.Seed, uint64(k), uint64(n), len(idx))]
}

// ParseShard reads "i/n", shard i of n (0 <= i < n), into Config.Shard and
// Config.Shards.
func ParseShard(s string) (shard, shards int, err error) {
	i, n, ok := strings.Cut(s, "/")
	si, err1 := strconv.Atoi(i)
	sn, err2 := strconv.Atoi(n)
	if !ok || err1 != nil || err2 != nil || sn < 1 || si < 0 || si >= sn {
		return 0, 0, fmt.Errorf("shard %q: want i/n with 0 <= i < n", s)
	}
	return si, sn, nil
}
