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
	"time"

	"github.com/thrive-loadtest/thrive/replay"
	"github.com/thrive-loadtest/thrive/report"
	"github.com/thrive-loadtest/thrive/report/live"
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
		if ctx.Err() == nil {
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
// start, on the live page, if any: called with a nil result, the figures
// so far (Recorder.Peek, the criteria judged on them) if a page is open;
// with the run's result, its end, with the result's files to download.
// Each call costs copies of the recorder's histograms, never a request's
// work.
func (r *Replay) pageFrames(eng *replay.Engine, rec *report.Recorder, start time.Time, params report.RunParams, runTime time.Duration) func(res *report.Result, runErr error) {
	w := r.page
	if w == nil {
		return func(*report.Result, error) {}
	}
	return func(res *report.Result, runErr error) {
		if res == nil && !w.Watched() {
			return
		}
		f := live.Frame{Title: fmt.Sprintf("%s against %s", filepath.Base(r.Trace), r.Target), RunTime: runTime.Seconds()}
		st := eng.Status()
		f.Users, f.Sockets = st.Users, st.Sockets
		if res == nil {
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
