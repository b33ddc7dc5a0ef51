package replay

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/thrive-loadtest/thrive/scheduler"
)

// A Steer changes the users of a run while it plays, as Locust's page
// does: Set retargets the run's plan from now on
// (scheduler.Plan.Retarget), and the engine that plays it (WithSteer)
// starts the users added and stops those taken away at the spawn rate
// asked, leaving the others as they were. It is safe for concurrent use.
type Steer struct {
	state atomic.Pointer[steerState] // nil until the run begins

	mu      sync.Mutex
	start   time.Time
	over    bool
	live    map[int]*liveEnd // users in an active interval: its end, which a change moves
	changes []Change
}

// A Change is a change of users asked of a run while it played.
type Change struct {
	At        time.Duration // into the run
	Users     int
	SpawnRate float64
}

// liveEnd is where a user's active interval ends: its timer ends the
// user's context then.
type liveEnd struct {
	t   *time.Timer
	end time.Duration // into the run
}

// steerState is a plan in force and the channel closed when another
// replaces it (nil for a plan that never changes).
type steerState struct {
	plan    *scheduler.Plan
	changed chan struct{}
}

// NewSteer returns a Steer for a run yet to begin.
func NewSteer() *Steer { return &Steer{} }

// ErrNotPlaying says a change came when no run was playing: before it
// began or after its end.
var ErrNotPlaying = errors.New("the run is not playing")

// Set asks the run to go to users at rate users a second (0: at once)
// from now on and to stay there to its end. The error says when the run
// is not playing or the change makes no plan.
func (s *Steer) Set(users int, rate float64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.state.Load()
	if old == nil || s.over {
		return ErrNotPlaying
	}
	at := max(time.Since(s.start), 0)
	p, err := old.plan.Retarget(at, users, rate)
	if err != nil {
		return fmt.Errorf("change to %d users at %g/s: %w", users, rate, err)
	}
	s.state.Store(&steerState{plan: p, changed: make(chan struct{})})
	close(old.changed)
	// Users playing now end where the new plan says: a user taken away
	// stops, its session cut, once the level falls below it.
	for k, l := range s.live {
		l.end = at
		for _, iv := range p.User(k).Active {
			if iv.Start <= at && at < iv.Stop {
				l.end = iv.Stop
			}
		}
		l.t.Reset(time.Until(s.start.Add(l.end)))
	}
	s.changes = append(s.changes, Change{At: at, Users: users, SpawnRate: rate})
	return nil
}

// Plan returns the plan in force, nil before the run begins.
func (s *Steer) Plan() *scheduler.Plan {
	if st := s.state.Load(); st != nil {
		return st.plan
	}
	return nil
}

// Changes returns the changes asked of the run so far.
func (s *Steer) Changes() []Change {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Change(nil), s.changes...)
}

// begin makes plan, from start, the run's plan.
func (s *Steer) begin(plan *scheduler.Plan, start time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.start, s.over, s.live = start, false, map[int]*liveEnd{}
	s.state.Store(&steerState{plan: plan, changed: make(chan struct{})})
}

// end says the run is over: no change is taken any more.
func (s *Steer) end() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.over = true
}

// enter gives user k, who read st and plays its interval that ends at
// stop (into the run), a context within soft that ends then or where a
// change moves the end, and a release to call when it stops playing,
// which returns where the interval ended. It reports false when a change
// came since st: the user reads the plan again.
func (s *Steer) enter(soft context.Context, k int, st *steerState, stop time.Duration) (context.Context, func() time.Duration, bool) {
	ctx, cancel := context.WithCancel(soft)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state.Load() != st {
		cancel()
		return nil, nil, false
	}
	l := &liveEnd{t: time.AfterFunc(time.Until(s.start.Add(stop)), cancel), end: stop}
	s.live[k] = l
	return ctx, func() time.Duration {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.live, k)
		l.t.Stop()
		cancel()
		return l.end
	}, true
}
