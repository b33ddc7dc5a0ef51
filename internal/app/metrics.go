package app

import (
	"context"
	"fmt"
	"time"

	"github.com/thrive-loadtest/thrive/internal/hint"
	"github.com/thrive-loadtest/thrive/replay"
	"github.com/thrive-loadtest/thrive/report"
	"github.com/thrive-loadtest/thrive/report/live"
	"github.com/thrive-loadtest/thrive/report/prom"
)

const (
	promHint = "give the Prometheus that scrapes the backend with --prometheus http://HOST:9090"
	// promTimeout bounds each question to Prometheus.
	promTimeout = 30 * time.Second
	// promWait bounds the wait, at the end of a run, until Prometheus has
	// scraped every target past it (its scrape interval, 15 s by
	// default, and more).
	promWait = time.Minute
)

// checkProm makes sure, before the run, that its prom criteria have a
// Prometheus to ask: a SetupError else.
func (f *Finish) checkProm() error {
	if f.Prometheus != "" {
		_, err := prom.New(f.Prometheus, promTimeout)
		return setup(err)
	}
	for _, c := range f.Criteria {
		if c.Metric == report.PromMetric {
			return &SetupError{hint.With(fmt.Errorf("criterion %q asks Prometheus, and there is none to ask", c.Text), promHint)}
		}
	}
	return nil
}

// checkPromCriteria evaluates the prom criteria of res over its time
// range, once Prometheus has scraped every target past its end (or
// promWait has passed, said on Warn), in place of the verdicts
// report.CheckAll gave them.
func (f *Finish) checkPromCriteria(res *report.Result) {
	if f.Prometheus == "" {
		return
	}
	var at []int
	for i, c := range f.Criteria {
		if c.Metric == report.PromMetric {
			at = append(at, i)
		}
	}
	if len(at) == 0 {
		return
	}
	c, err := prom.New(f.Prometheus, promTimeout)
	if err != nil {
		for _, i := range at {
			res.Criteria[i] = report.Verdict{Criterion: f.Criteria[i].Text, Error: err.Error(), Actual: "error: " + err.Error()}
		}
		return
	}
	// What the backend did until the run's end is in Prometheus once each
	// target has been scraped past it: the range ends at that scrape. Past
	// now, not res.End: requests in flight at the run's end were recorded
	// after it, and a scrape begun between missed them (26 of 199 on a
	// loaded machine).
	ctx, cancel := context.WithTimeout(context.Background(), promWait)
	past := time.Now()
	if res.End.After(past) {
		past = res.End
	}
	scraped, err := c.WaitScraped(ctx, past, 250*time.Millisecond)
	cancel()
	end := res.End
	if err != nil {
		writeWarning(f.Warn, fmt.Sprintf("%v: the prom criteria are judged on what it has", err), "")
	} else {
		end = scraped
	}
	for _, i := range at {
		ctx, cancel := context.WithTimeout(context.Background(), promTimeout)
		res.Criteria[i] = c.Check(ctx, f.Criteria[i], res.Start, end)
		cancel()
	}
}

// startMetrics serves the run's metrics on r.Metrics (live.Exporter),
// unless it is "" or an Exporter reads the run already (a ladder's phase);
// stop stops them.
func (r *Replay) startMetrics(ctx context.Context) (stop func(), err error) {
	if r.Metrics == "" || r.Exporter != nil {
		return func() {}, nil
	}
	x := live.New()
	srv, err := x.Serve(ctx, r.Metrics)
	if err != nil {
		return nil, setup(err)
	}
	fmt.Fprintf(r.Out, "metrics of the run at http://%s/metrics\n", srv.Addr)
	r.Exporter = x
	return func() {
		r.Exporter = nil
		if err := srv.Close(); err != nil {
			writeWarning(r.Warn, err.Error(), "")
		}
	}, nil
}

// watchMetrics has the exporter, if any, read the run of eng recording
// into rec, which starts at start.
func (r *Replay) watchMetrics(eng *replay.Engine, rec *report.Recorder, start time.Time) {
	if r.Exporter == nil {
		return
	}
	shard := "0/1"
	if r.Plan.Shards > 0 {
		shard = fmt.Sprintf("%d/%d", r.Plan.Shard, r.Plan.Shards)
	}
	r.Exporter.Watch(live.Source{Recorder: rec, Run: start.UTC().Format(time.RFC3339Nano), Shard: shard, Figures: func() live.Figures {
		st, ws := eng.Status(), eng.WebSocketStats()
		return live.Figures{Users: st.Users, Sockets: st.Sockets, FramesSent: ws.FramesSent, FramesReceived: ws.FramesReceived}
	}})
}
