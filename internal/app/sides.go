package app

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/thrive-loadtest/thrive/replay"
	"github.com/thrive-loadtest/thrive/report"
	"github.com/thrive-loadtest/thrive/scheduler"
)

// A side is a target played side by side with the run's own: the
// candidate build, or the control (a second instance of the base).
type side struct {
	name, target string
	eng          *replay.Engine
}

// sides makes the engines of Candidate and Control, each with the options
// of the run and the routes of its own target. A target that cannot be
// routed is a SetupError.
func (r *Replay) sides() ([]side, error) {
	var out []side
	for _, s := range []struct{ name, target string }{{"candidate", r.Candidate}, {"control", r.Control}} {
		if s.target == "" {
			continue
		}
		if r.Library == nil {
			return nil, setup(fmt.Errorf("--%s: no library loaded", s.name))
		}
		routes, err := r.Library.Routes(s.target, r.Maps)
		if err != nil {
			return nil, setup(fmt.Errorf("--%s: %w", s.name, err))
		}
		eng, err := replay.New(routes.Target, r.Library, append(slices.Clip(r.common), routes.Options()...)...)
		if err != nil {
			return nil, setup(fmt.Errorf("--%s: %w", s.name, err))
		}
		fmt.Fprintf(r.Out, "side by side, the %s: %s\n", s.name, routes.Target)
		out = append(out, side{s.name, routes.Target, eng})
	}
	if r.Control != "" && r.Candidate == "" {
		return nil, setup(fmt.Errorf("--control %s: a control is the noise of a comparison with a --candidate: give one", r.Control))
	}
	return out, nil
}

// playSides plays plan from start against each side, as the run's own
// users play it against Target, and returns what waits for them to end
// and gives the candidate's and the control's results (nil for a side not
// played).
func (r *Replay) playSides(ctx context.Context, sides []side, plan *scheduler.Plan, start time.Time, params report.RunParams) func() (cand, control *report.Result) {
	results := make([]*report.Result, len(sides))
	var wg sync.WaitGroup
	for i, s := range sides {
		wg.Go(func() {
			// Its error is its result's: a cancelled run is the run's.
			results[i], _ = s.eng.Play(ctx, plan, start, nil, r.Label, params)
		})
	}
	return func() (cand, control *report.Result) {
		wg.Wait()
		for i, s := range sides {
			if ctx.Err() != nil {
				results[i].Interrupted = true
			}
			if s.name == "candidate" {
				cand = results[i]
			} else {
				control = results[i]
			}
		}
		return cand, control
	}
}

// writeSides writes the summary of each side of res played beside it.
func writeSides(w io.Writer, res *report.Result) {
	for _, s := range []struct {
		name string
		r    *report.Result
	}{{"candidate", res.Candidate}, {"control", res.Control}} {
		if s.r != nil {
			fmt.Fprintf(w, "\nside by side, the %s (%s):\n", s.name, s.r.Target)
			report.WriteSummary(w, s.r)
		}
	}
}

// compareSides prints how the candidate played beside res compares with
// it (report.Compare, the control as the noise), and returns the
// regression it finds; nil when no candidate played.
func (r *Replay) compareSides(res *report.Result) error {
	if res.Candidate == nil {
		return nil
	}
	base := *res
	base.Candidate, base.Control = nil, nil
	c, err := report.Compare(&base, res.Candidate, res.Control, 0.1)
	if err != nil {
		return err
	}
	fmt.Fprintf(r.Out, "\nthe candidate (%s) beside the base (%s):\n", res.Candidate.Target, res.Target)
	c.WriteText(r.Out, false)
	return c.Failed()
}
