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

// A segment is a stage of the ramp as the plan keeps it: its level may be
// a fraction of a user, where a change cut a stage short.
type segment struct {
	users float64
	dur   time.Duration
}

// segmentsOf returns stages as segments.
func segmentsOf(stages []Stage) []segment {
	out := make([]segment, len(stages))
	for i, st := range stages {
		out[i] = segment{float64(st.Users), st.Duration}
	}
	return out
}

// intervals returns when user k is active under the ramp: from the moment
// the level first covers k+1 users until it falls below that again. A ramp
// that rises, falls and rises again gives user k more than one interval.
func intervals(ramp []segment, k int) []Interval {
	var out []Interval
	var t time.Duration
	prev := 0.0
	need := float64(k + 1)
	var open *Interval
	for _, st := range ramp {
		from, to := prev, st.users
		// The level is from + (to-from)*x/d at offset x into the stage; a
		// stage of no duration is a jump.
		at := func(level float64) time.Duration {
			return t + time.Duration(math.Round((level-from)*float64(st.dur)/(to-from)))
		}
		if open == nil && from < need && to >= need {
			out = append(out, Interval{Start: at(need)})
			open = &out[len(out)-1]
		}
		if open != nil && to < need {
			open.Stop = at(need) // the level falls below k+1 users
			open = nil
		}
		t += st.dur
		prev = st.users
	}
	if open != nil {
		open.Stop = t
	}
	return out
}

// levelAt returns the ramp's level at offset at, and the segments before
// at, the one at cut there: what a change keeps of the ramp.
func levelAt(ramp []segment, at time.Duration) (float64, []segment) {
	var t time.Duration
	prev := 0.0
	for i, st := range ramp {
		if t+st.dur <= at {
			t += st.dur
			prev = st.users
			continue
		}
		x := at - t // into this stage, short of its end
		level := prev + (st.users-prev)*float64(x)/float64(st.dur)
		kept := slices.Clone(ramp[:i])
		if x > 0 {
			kept = append(kept, segment{level, x})
		}
		return level, kept
	}
	return prev, slices.Clone(ramp)
}

// maxUsers returns the most users the ramp has at once: those its highest
// level covers whole.
func maxUsers(ramp []segment) int {
	m := 0.0
	for _, st := range ramp {
		m = max(m, st.users)
	}
	return int(math.Floor(m + 1e-9))
}

func totalDuration(ramp []segment) time.Duration {
	var d time.Duration
	for _, st := range ramp {
		d += st.dur
	}
	return d
}
