package scheduler

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Stage is a step of a ramp: over Duration, the number of users goes in a
// straight line from the previous stage's Users (0 before the first) to this
// one's.
type Stage struct {
	Users    int
	Duration time.Duration
}

// ParseStages reads "100:2m,1000:5m,0:1m": users and duration of each stage.
func ParseStages(s string) ([]Stage, error) {
	var out []Stage
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		u, d, ok := strings.Cut(part, ":")
		if !ok {
			return nil, fmt.Errorf("stages %q: want USERS:DURATION pairs, such as 100:2m,1000:5m", s)
		}
		users, err := strconv.Atoi(strings.TrimSpace(u))
		if err != nil {
			return nil, fmt.Errorf("stages %q: users %q: want a whole number", s, u)
		}
		dur, err := time.ParseDuration(strings.TrimSpace(d))
		if err != nil {
			return nil, fmt.Errorf("stages %q: duration %q: want a duration such as 2m or 90s", s, d)
		}
		out = append(out, Stage{Users: users, Duration: dur})
	}
	return out, ValidateStages(out)
}

// ValidateStages reports every problem with stages.
func ValidateStages(stages []Stage) error {
	var errs []error
	if len(stages) == 0 {
		errs = append(errs, errors.New("no stages"))
	}
	for i, st := range stages {
		if st.Users < 0 || st.Users > MaxUsers {
			errs = append(errs, fmt.Errorf("stage %d: %d users: want 0 to %d", i+1, st.Users, MaxUsers))
		}
		if st.Duration <= 0 {
			errs = append(errs, fmt.Errorf("stage %d: duration %v is not positive", i+1, st.Duration))
		}
	}
	return errors.Join(errs...)
}

// Interval is a span of the run, as offsets from its start: [Start, Stop).
type Interval struct {
	Start, Stop time.Duration
}

// intervals returns when user k is active under the ramp: from the moment
// the level first covers k+1 users until it falls below that again. A ramp
// that rises, falls and rises again gives user k more than one interval.
func intervals(stages []Stage, k int) []Interval {
	var out []Interval
	var t time.Duration
	prev := 0
	need := float64(k + 1)
	var open *Interval
	for _, st := range stages {
		from, to := float64(prev), float64(st.Users)
		// The level is from + (to-from)*x/d at offset x into the stage; a
		// stage of no duration is a jump.
		at := func(level float64) time.Duration {
			return t + time.Duration(math.Round((level-from)*float64(st.Duration)/(to-from)))
		}
		if open == nil && from < need && to >= need {
			out = append(out, Interval{Start: at(need)})
			open = &out[len(out)-1]
		}
		if open != nil && to < need {
			open.Stop = at(need) // the level falls below k+1 users
			open = nil
		}
		t += st.Duration
		prev = st.Users
	}
	if open != nil {
		open.Stop = t
	}
	return out
}

// maxUsers returns the highest level of the ramp.
func maxUsers(stages []Stage) int {
	m := 0
	for _, st := range stages {
		m = max(m, st.Users)
	}
	return m
}

func totalDuration(stages []Stage) time.Duration {
	var d time.Duration
	for _, st := range stages {
		d += st.Duration
	}
	return d
}
