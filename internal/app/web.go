package app

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/thrive-loadtest/thrive/replay"
	"github.com/thrive-loadtest/thrive/report"
	"github.com/thrive-loadtest/thrive/report/live"
	"github.com/thrive-loadtest/thrive/scheduler"
)

// ErrStoppedFromPage is the cause of a run stopped by the live page's
// Stop: as Ctrl-C, its results so far are written.
var ErrStoppedFromPage = errors.New("stopped from the live page")

// startWeb serves the run's live page on r.Web (live.Web), unless it is
// "" or a page shows the run already (a ladder's phase). It returns the
// context the run plays in: the page's Stop cancels it. stop keeps the
// page up after the run, for its downloads, until ctx is done, the page's
// Stop is pressed again or WebLinger has passed (0: no limit), then stops
// serving it.
func (r *Replay) startWeb(ctx context.Context) (runCtx context.Context, stop func(), err error) {
	if r.Web == "" || r.page != nil {
		return ctx, func() {}, nil
	}
	runCtx, cancel := context.WithCancelCause(ctx)
	w := live.NewWeb(func() { cancel(ErrStoppedFromPage) })
	srv, err := w.Serve(ctx, r.Web)
	if err != nil {
		cancel(nil)
		return nil, nil, setup(err)
	}
	dir, err := os.MkdirTemp("", "thrive-web-*")
	if err != nil {
		cancel(nil)
		return nil, nil, errors.Join(setup(err), srv.Close())
	}
	url := "http://" + srv.Addr + "/"
	fmt.Fprintf(r.Out, "live page of the run at %s\n", url)
	if host, _, _ := net.SplitHostPort(srv.Addr); !isLoopback(host) {
		writeWarning(r.Warn, fmt.Sprintf("the live page listens on %s, beyond loopback: anyone who reaches it sees the run and can stop it", srv.Addr),
			"serve it on 127.0.0.1 and reach it through an SSH tunnel (ssh -L 8089:127.0.0.1:8089 HOST)")
	}
	r.page, r.pageDir = w, dir
	return runCtx, func() {
		if ctx.Err() == nil && w.Ended() {
			r.linger(ctx, w, url)
		}
		r.page = nil
		cancel(nil)
		if err := errors.Join(srv.Close(), os.RemoveAll(dir)); err != nil {
			writeWarning(r.Warn, err.Error(), "")
		}
	}, nil
}

// linger keeps the page of a run that is over up until ctx is done, the
// page's Stop is pressed or WebLinger has passed.
func (r *Replay) linger(ctx context.Context, w *live.Web, url string) {
	var timeout <-chan time.Time
	if r.WebLinger > 0 {
		t := time.NewTimer(r.WebLinger)
		defer t.Stop()
		timeout = t.C
		fmt.Fprintf(r.Out, "the live page stays up at %s for %s (Ctrl-C ends it sooner)\n", url, r.WebLinger)
	} else {
		fmt.Fprintf(r.Out, "the live page stays up at %s until Ctrl-C\n", url)
	}
	select {
	case <-ctx.Done():
	case <-w.Quit():
	case <-timeout:
	}
}

// pageFrames returns what shows the run of eng, recording into rec from
// start, on the live page, if any, with the form of its users now (nil:
// none to change): called with a nil result, the figures
// so far (Recorder.Peek, the criteria judged on them) if a page is open;
// with the run's result, its end, with the result's files to download.
// Each call costs copies of the recorder's histograms, never a request's
// work.
func (r *Replay) pageFrames(eng *replay.Engine, rec *report.Recorder, start time.Time, params report.RunParams, runTime time.Duration, form func() *live.Form) func(res *report.Result, runErr error) {
	w := r.page
	if w == nil {
		return func(*report.Result, error) {}
	}
	return func(res *report.Result, runErr error) {
		if res == nil && !w.Watched() {
			return
		}
		f := live.Frame{Title: r.title(), RunTime: runTime.Seconds()}
		st := eng.Status()
		f.Users, f.Sockets = st.Users, st.Sockets
		if res == nil {
			f.Form = form()
			res = rec.Peek(time.Now())
			res.Target, res.Label, res.Params, res.WebSocket = r.Target, r.Label, params, eng.WebSocketStats()
			res.Criteria = report.CheckAll(r.Criteria, res)
		} else {
			f.Done, f.StoppedBy, f.Files = true, res.Params.StoppedBy, r.downloads(res)
			if runErr != nil {
				f.Error = runErr.Error()
			}
		}
		f.Elapsed = max(res.End.Sub(res.Start).Seconds(), 0)
		view, err := report.ViewJSON(res)
		if err == nil {
			var b bytes.Buffer
			report.WriteSummary(&b, res)
			f.View, f.Summary = view, b.String()
			err = w.Publish(&f)
		}
		if err != nil {
			writeWarning(r.Warn, err.Error(), "")
		}
	}
}

// downloads returns the files of res the page offers: those the run
// wrote, and the others (the result file, the Locust CSVs, the HTML
// report) written for the page into its directory.
func (r *Replay) downloads(res *report.Result) []live.Download {
	have, more := r.Files, report.Files{}
	if have.JSON == "" {
		more.JSON = filepath.Join(r.pageDir, "result.json")
	}
	if have.CSVPrefix == "" {
		more.CSVPrefix = filepath.Join(r.pageDir, "locust")
	}
	if have.HTML == "" {
		more.HTML = filepath.Join(r.pageDir, "report.html")
	}
	if err := more.Write(io.Discard, res); err != nil {
		writeWarning(r.Warn, fmt.Sprintf("live page: %v", err), "")
	}
	var out []live.Download
	add := func(path string) {
		if _, err := os.Stat(path); err == nil {
			out = append(out, live.Download{Name: filepath.Base(path), Path: path})
		}
	}
	for _, fs := range []report.Files{have, more} {
		if fs.JSON != "" {
			add(fs.JSON)
		}
		if fs.CSVPrefix != "" {
			for _, s := range []string{"_stats.csv", "_stats_history.csv", "_failures.csv", "_exceptions.csv"} {
				add(fs.CSVPrefix + s)
			}
		}
		if fs.HTML != "" {
			add(fs.HTML)
		}
	}
	return out
}

// isLoopback reports whether host is a loopback address.
func isLoopback(host string) bool {
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// steerPage offers the page's change of users while the run plays, when
// steer is not nil, and returns the page's form of the users now: the
// plan's, or the last change's.
func (r *Replay) steerPage(steer *replay.Steer) func() *live.Form {
	if steer == nil || r.page == nil {
		return func() *live.Form { return nil }
	}
	r.page.OnUsers(steer.Set)
	return func() *live.Form {
		if steer.Plan() == nil {
			return nil // the run has not begun
		}
		f := &live.Form{Users: r.Plan.Users, SpawnRate: r.Plan.SpawnRate}
		if r.Plan.Stages != nil {
			f.Users = steer.Plan().TotalUsers()
		}
		if ch := steer.Changes(); len(ch) > 0 {
			f.Users, f.SpawnRate = ch[len(ch)-1].Users, ch[len(ch)-1].SpawnRate
		}
		return f
	}
}

// waitStart, when Wait is set and the page is served, shows the page's
// form of the run, filled from Plan, and waits for its Start: the form's
// values then replace Plan's, unless the run's shape is fixed (stages, a
// ladder). The error says the wait ended first (the page's Stop, Ctrl-C).
func (r *Replay) waitStart(ctx context.Context, fixed bool) error {
	if !r.Wait || r.page == nil {
		return nil
	}
	r.Wait = false // once: the phases of a ladder do not wait again
	w := r.page
	form := live.Form{Users: r.Plan.Users, SpawnRate: r.Plan.SpawnRate, RunTime: r.Plan.RunTime.String(), Mix: r.Plan.Mix.String(), Fixed: fixed}
	if r.Plan.Mix == nil {
		form.Mix = ""
	}
	started := make(chan scheduler.Config, 1)
	w.OnStart(func(f live.Form) error {
		cfg, err := r.formPlan(form, f)
		if err != nil {
			return err
		}
		select {
		case started <- cfg:
			return nil
		default:
			return errors.New("the run has started already")
		}
	})
	defer w.OnStart(nil)
	if err := w.Publish(&live.Frame{Title: r.title(), Waiting: true, Form: &form}); err != nil {
		return err
	}
	fmt.Fprintf(r.Out, "waiting for Start on the live page\n")
	select {
	case cfg := <-started:
		r.Plan = cfg
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w before the run started: nothing was sent", context.Cause(ctx))
	}
}

// formPlan returns Plan with the values of the page's form f, which was
// offered as offered: users, spawn rate, run time and mix, unless the
// run's shape is fixed. The error says which value makes no plan.
func (r *Replay) formPlan(offered, f live.Form) (scheduler.Config, error) {
	cfg := r.Plan
	if offered.Fixed {
		return cfg, nil
	}
	cfg.Users, cfg.SpawnRate = f.Users, f.SpawnRate
	d, err := time.ParseDuration(f.RunTime)
	if err != nil {
		return cfg, fmt.Errorf("run time %q: want a duration such as 90s or 5m", f.RunTime)
	}
	cfg.RunTime = d
	cfg.Mix = nil
	if strings.TrimSpace(f.Mix) != "" {
		if cfg.Mix, err = scheduler.ParseMix(f.Mix); err != nil {
			return cfg, err
		}
	}
	if err := cfg.Validate(); err != nil {
		return cfg, err
	}
	if _, err := scheduler.New(r.Library.Sessions(), cfg); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// title names the run on the page: its trace and target.
func (r *Replay) title() string {
	return fmt.Sprintf("%s against %s", filepath.Base(r.Trace), r.Target)
}
