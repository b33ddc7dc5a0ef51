package app_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/thrive-loadtest/thrive/internal/app"
	"github.com/thrive-loadtest/thrive/internal/hint"
	"github.com/thrive-loadtest/thrive/replay"
	"github.com/thrive-loadtest/thrive/report"
	"github.com/thrive-loadtest/thrive/scheduler"
	"github.com/thrive-loadtest/thrive/traces/synth"
)

// sampleTrace writes a synthetic trace of n sessions; it names no target.
func sampleTrace(t *testing.T, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "s.thrv")
	if _, err := synth.WriteFile(path, n, 1); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestRunPlays plays a Run of the browse sessions (plain HTTP: the server
// speaks no WebSocket) against a server that counts what it is sent:
// the result counts what the server saw, the files are written, and the
// criteria decide the error.
func TestRunPlays(t *testing.T) {
	var served atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { served.Add(1) }))
	defer srv.Close()
	var out, warn bytes.Buffer
	dir := t.TempDir()
	strict, err := report.ParseCriterion("requests>1000000")
	if err != nil {
		t.Fatal(err)
	}
	r := app.Replay{
		Trace: sampleTrace(t, 20), Target: srv.URL, Plan: scheduler.Config{Users: 4, RunTime: 2 * time.Second, AutoScale: true, Seed: 1, Profiles: []string{"browse"}},
		Label:  "b1",
		Finish: app.Finish{Criteria: []report.Criterion{strict}, Files: report.Files{JSON: filepath.Join(dir, "r.json")}, Out: &out, Warn: &warn},
	}
	var snaps []app.Snapshot // Watch is called from the status line's goroutine, Play waits for it
	r.Watch = func(s app.Snapshot) { snaps = append(snaps, s) }
	if err := r.Prepare(); err != nil {
		t.Fatal(err)
	}
	res, err := r.Play(context.Background())
	if res == nil {
		t.Fatalf("no result: %v", err)
	}
	if f, ok := errors.AsType[*report.Failure](err); !ok || f.Error() != "1 of 1 criteria failed" {
		t.Errorf("error %v, want the failed criterion", err)
	}
	// The server's own count is the result's: every request answered.
	if res.Requests == 0 || res.Requests != served.Load() || res.Failures != 0 {
		t.Errorf("result: %d requests, %d failures; the server answered %d", res.Requests, res.Failures, served.Load())
	}
	if back, err := report.ReadFile(r.Files.JSON); err != nil || back.Requests != res.Requests || back.Label != "b1" {
		t.Errorf("result file: %v", err)
	}
	// The run's progress, each second: users playing, requests so far.
	if len(snaps) == 0 || snaps[0].Users == 0 || snaps[len(snaps)-1].Requests > res.Requests || snaps[0].At.IsZero() {
		t.Errorf("snapshots %+v of a run of %d requests", snaps, res.Requests)
	}
	// Elapsed and remaining time add up to the run time of 2 s until its
	// end; no phase outside a ladder.
	for _, s := range snaps {
		if !s.RemainingKnown || s.Elapsed <= 0 || s.Remaining > 0 && s.Elapsed+s.Remaining != 2*time.Second || s.Phase != "" {
			t.Errorf("snapshot %+v of a run of 2 s", s)
		}
	}
	for _, want := range []string{"replaying " + r.Trace, "verdict: FAIL (1 of 1 criteria failed)", "results written to"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

// TestRunRefuses: a run that cannot start says why, as a SetupError, and
// sends nothing.
func TestRunRefuses(t *testing.T) {
	var served atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { served.Add(1) }))
	defer srv.Close()
	trace := sampleTrace(t, 5)
	plan := scheduler.Config{Users: 2, RunTime: time.Second, Seed: 1}
	prepared := func(r app.Replay) *app.Replay {
		r.Trace, r.Target, r.Out, r.Warn = trace, srv.URL, &bytes.Buffer{}, &bytes.Buffer{}
		if err := r.Prepare(); err != nil {
			t.Fatal(err)
		}
		return &r
	}
	ctx := context.Background()
	promCriterion, err := report.ParseCriterion("prom:up > 0")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		run  func() error
		want string
		hint string
	}{
		{"no target anywhere", func() error {
			r := app.Replay{Trace: trace, Finish: app.Finish{Out: &bytes.Buffer{}, Warn: &bytes.Buffer{}}}
			return r.Prepare()
		}, "no target: the trace does not say where it was recorded going", "--target http://127.0.0.1:8000"},
		{"a host the trace lacks", func() error {
			r := app.Replay{Trace: trace, Target: srv.URL, Maps: []string{"api.test=http://127.0.0.1:1"}, Finish: app.Finish{Out: &bytes.Buffer{}, Warn: &bytes.Buffer{}}}
			return r.Prepare()
		}, "the trace has no request to api.test", ""},
		{"no users", func() error {
			_, err := prepared(app.Replay{Plan: scheduler.Config{RunTime: time.Second}}).Play(ctx)
			return err
		}, "users 0: want 1 to", ""},
		{"a start that has passed", func() error {
			_, err := prepared(app.Replay{Plan: plan, StartAt: time.Now().Add(-time.Hour)}).Play(ctx)
			return err
		}, "before now: nothing would be sent", ""},
		{"a source address not of this machine", func() error {
			_, err := prepared(app.Replay{Plan: plan, Options: []replay.Option{replay.WithSourceIPs([]net.IP{net.ParseIP("192.0.2.10")})}}).Play(ctx)
			return err
		}, "192.0.2.10 is not an address of this machine", ""},
		{"a ladder with stages", func() error {
			return prepared(app.Replay{Plan: scheduler.Config{Stages: []scheduler.Stage{{Users: 1, Duration: time.Second}}}}).Ladder(ctx, scheduler.Ladder(), 1)
		}, "the ladder sets users and times itself", ""},
		{"a ladder of no time", func() error {
			return prepared(app.Replay{Plan: plan}).Ladder(ctx, scheduler.Ladder(), 0)
		}, "ladder time 0: want a positive factor", ""},
		{"a prom criterion and no Prometheus", func() error {
			_, err := prepared(app.Replay{Plan: plan, Finish: app.Finish{Criteria: []report.Criterion{promCriterion}}}).Play(ctx)
			return err
		}, `criterion "prom:up > 0" asks Prometheus, and there is none to ask`, "--prometheus http://HOST:9090"},
		{"a ladder's prom criterion and no Prometheus", func() error {
			return prepared(app.Replay{Plan: plan, Finish: app.Finish{Criteria: []report.Criterion{promCriterion}}}).Ladder(ctx, scheduler.Ladder(), 1)
		}, `criterion "prom:up > 0" asks Prometheus`, "--prometheus"},
		{"a Prometheus that is no URL", func() error {
			_, err := prepared(app.Replay{Plan: plan, Finish: app.Finish{Prometheus: "127.0.0.1:9090"}}).Play(ctx)
			return err
		}, `prometheus URL "127.0.0.1:9090": want http://HOST:PORT`, ""},
		{"metrics on a port taken", func() error {
			_, err := prepared(app.Replay{Plan: plan, Metrics: strings.TrimPrefix(srv.URL, "http://")}).Play(ctx)
			return err
		}, "metrics: listen tcp", ""},
	} {
		err := tc.run()
		if _, setup := errors.AsType[*app.SetupError](err); !setup || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want a SetupError saying %q", tc.name, err, tc.want)
		}
		if hints := hint.Of(err); tc.hint != "" && (len(hints) != 1 || !strings.Contains(hints[0], tc.hint)) {
			t.Errorf("%s: hints %q, want one saying %q", tc.name, hints, tc.hint)
		}
	}
	if n := served.Load(); n != 0 {
		t.Errorf("runs that could not start sent %d requests", n)
	}
}

func TestLoadFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	users := write("users.csv", "username,password\nann,pw-ann\n")
	rules := write("rules.yaml", "add:\n  - from: \"GET /x/\"\n    json: \"$.id\"\n")
	if u, err := replay.LoadUsersFile(users); err != nil || u == nil {
		t.Fatalf("users file: %v", err)
	}
	if _, err := replay.LoadCorrelationRulesFile(rules); err != nil {
		t.Fatalf("rules file: %v", err)
	}
	empty, badRules := write("empty.csv", "username\n"), write("bad.yaml", "unknown: 1\n")
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"users file missing", second(replay.LoadUsersFile(filepath.Join(dir, "none.csv"))), "no such file"},
		{"users file without rows", second(replay.LoadUsersFile(empty)), empty + ": users file: no user rows"},
		{"rules file missing", second(replay.LoadCorrelationRulesFile(filepath.Join(dir, "none.yaml"))), "no such file"},
		{"rules file invalid", second(replay.LoadCorrelationRulesFile(badRules)), badRules + ": correlation rules"},
		{"trace missing", second(replay.LoadFile(filepath.Join(dir, "none.thrv"))), "no such file"},
		{"trace a directory", second(replay.LoadFile(dir)), "is a directory, not a trace file"},
		{"trace not a trace", second(replay.LoadFile(users)), users},
	} {
		if tc.err == nil || !strings.Contains(tc.err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", tc.name, tc.err, tc.want)
		}
	}
}

func second[T any](_ T, err error) error { return err }

// TestHints: the engines' typed errors get the advice of their kind, in
// the flags' words, wherever they are wrapped; others none.
func TestHints(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("phase 2: %w", &replay.PortsError{Target: "http://x"}), "--source-ips"},
		{&replay.MemoryError{Users: 9, Need: 9 << 30, PerUser: 1 << 30, Total: 4 << 30}, "--shard i/n"},
		{fmt.Errorf("routes: %w", replay.ErrMapNoHost), "give --target only"},
	} {
		if h := hint.Of(app.Hint(tc.err)); len(h) != 1 || !strings.Contains(h[0], tc.want) {
			t.Errorf("%v: hints %q, want %q", tc.err, h, tc.want)
		}
	}
	if h := hint.Of(app.Hint(errors.New("other"))); h != nil {
		t.Errorf("another error got hints %q", h)
	}
}

// TestStatusLine: a snapshot's status line, its rate from the snapshot
// before.
func TestStatusLine(t *testing.T) {
	at := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	prev := app.Snapshot{At: at, Users: 10, Requests: 100}
	s := app.Snapshot{At: at.Add(2 * time.Second), Users: 12, Requests: 700, Failures: 3, P95: 41400 * time.Microsecond, LagP99: 1230 * time.Microsecond}
	if got, want := s.StatusLine(prev), "users 12 · 300 req/s · p95 41ms · errors 3 · lag p99 1.2ms · elapsed 0s"; got != want {
		t.Errorf("status line %q, want %q", got, want)
	}
	s.Elapsed, s.Remaining, s.RemainingKnown, s.Phase = 65*time.Second, 235*time.Second, true, "phase 2 · 3 of 5"
	if got, want := s.StatusLine(prev), "users 12 · 300 req/s · p95 41ms · errors 3 · lag p99 1.2ms · elapsed 1m05s · remaining 3m55s · phase 2 · 3 of 5"; got != want {
		t.Errorf("status line %q, want %q", got, want)
	}
	if got := s.StatusLine(app.Snapshot{}); !strings.HasPrefix(got, "users 12 · 0 req/s") {
		t.Errorf("the first status line %q", got)
	}
}

// TestLadderStatus climbs a ladder of two phases of 2 s: each second's
// snapshot names its phase, n of 2, and the time left of that phase.
func TestLadderStatus(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	var out bytes.Buffer
	r := app.Replay{Trace: sampleTrace(t, 5), Target: srv.URL, Plan: scheduler.Config{Seed: 1, AutoScale: true, Profiles: []string{"browse"}},
		Finish: app.Finish{Out: &out, Warn: &out}}
	var snaps []app.Snapshot // Watch is called from the status line's goroutine, Play waits for it
	r.Watch = func(s app.Snapshot) { snaps = append(snaps, s) }
	if err := r.Prepare(); err != nil {
		t.Fatal(err)
	}
	phases := []scheduler.Phase{{Users: 1, RunTime: 2 * time.Second}, {Users: 2, RunTime: 2 * time.Second}}
	if err := r.Ladder(context.Background(), phases, 1); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	seen := map[string]bool{}
	for _, s := range snaps {
		seen[s.Phase] = true
		if !s.RemainingKnown || s.Remaining > 0 && s.Elapsed+s.Remaining != 2*time.Second {
			t.Errorf("snapshot %+v of a phase of 2 s", s)
		}
	}
	if len(seen) != 2 || !seen["phase 0 · 1 of 2"] || !seen["phase 1 · 2 of 2"] {
		t.Errorf("phases on the status line: %v", seen)
	}
}
