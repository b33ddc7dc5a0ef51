package scheduler

import (
	"fmt"
	"slices"
	"time"
)

// Phase is a rung of the testing ladder a team climbs: how many users,
// started how fast, for how long, and the success criteria the phase must
// meet (in the syntax of thrive's --threshold, which report parses).
type Phase struct {
	Users     int
	SpawnRate float64 // users started a second
	RunTime   time.Duration
	Criteria  []string
}

// Ladder returns the testing ladder: 100 users, 1,000 (whose rate limit
// must be seen to work: some 429s), 10,000 twice (the second run tells a
// warm system from a cold one), then 100,000.
func Ladder() []Phase {
	tenK := []string{"error_rate<1%", "p95<3s", "ws-connect:error_rate<1%"}
	return []Phase{
		{Users: 100, SpawnRate: 10, RunTime: 2 * time.Minute, Criteria: []string{"error_rate<1%", "p95<1s"}},
		{Users: 1000, SpawnRate: 50, RunTime: 5 * time.Minute, Criteria: []string{"error_rate<1%", "p95<2s", "status_429>0"}},
		{Users: 10_000, SpawnRate: 200, RunTime: 10 * time.Minute, Criteria: tenK},
		{Users: 10_000, SpawnRate: 200, RunTime: 10 * time.Minute, Criteria: tenK},
		{Users: 100_000, SpawnRate: 1000, RunTime: 15 * time.Minute, Criteria: []string{"error_rate<1%", "p95<5s"}},
	}
}

// Config returns base made into the phase's plan: its users, spawn rate
// and run time (multiplied by timeScale, a second at least), no stages.
func (p Phase) Config(base Config, timeScale float64) Config {
	c := base
	c.Users, c.SpawnRate, c.Stages = p.Users, p.SpawnRate, nil
	c.RunTime = max(time.Duration(float64(p.RunTime)*timeScale), time.Second)
	return c
}

// LadderUpTo returns the ladder's phases of at most maxUsers users (all
// for 0), and an error when that leaves none.
func LadderUpTo(maxUsers int) ([]Phase, error) {
	all := Ladder()
	if maxUsers <= 0 {
		return all, nil
	}
	phases := slices.DeleteFunc(slices.Clone(all), func(p Phase) bool { return p.Users > maxUsers })
	if len(phases) == 0 {
		return nil, fmt.Errorf("the ladder's first phase has %d users, more than %d", all[0].Users, maxUsers)
	}
	return phases, nil
}
