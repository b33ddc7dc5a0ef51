package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/thrive-loadtest/thrive/replay"
	"github.com/thrive-loadtest/thrive/report"
)

func readResult(t *testing.T, path string) *report.Result {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var res report.Result
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return &res
}

func TestReplayAgainstDemo(t *testing.T) {
	backend := serveInBackground(t, "--latency-scale", "0", "--rate-limit", "0")
	trace := filepath.Join(t.TempDir(), "d.thrv")
	if code, _, errOut := thrive(t, "demo", "--sessions", "20", "--time-scale", "1000", "--out", trace, "--users", "5", "--run-time", "1s"); code != exitOK {
		t.Fatalf("demo: %s", errOut)
	}
	out := filepath.Join(t.TempDir(), "r.json")
	code, stdout, errOut := thrive(t, "replay", trace, "--target", backend, "--users", "20", "--run-time", "1s", "--scale-time", "--out", out, "--label", "build-7")
	if code != exitOK {
		t.Fatalf("exit %d: %s\n%s", code, errOut, stdout)
	}
	if !strings.Contains(stdout, "time scale") || !strings.Contains(stdout, "GET /api/projects/") {
		t.Fatalf("output:\n%s", stdout)
	}
	res := readResult(t, out)
	if res.Requests == 0 || res.Label != "build-7" || res.Params.Users != 20 || len(res.Endpoints) == 0 {
		t.Fatalf("result %+v", res)
	}
	var sum int64
	for _, e := range res.Endpoints {
		sum += e.Requests
		if len(e.Hist) == 0 {
			t.Fatalf("endpoint %s has no histogram", e.Name)
		}
	}
	if sum != res.Requests {
		t.Fatalf("endpoints add up to %d of %d requests", sum, res.Requests)
	}

	// Criteria: all passing exits 0; one failing exits 3, and the result
	// file keeps the verdicts.
	code, stdout, errOut = thrive(t, "replay", trace, "--target", backend, "--users", "5", "--run-time", "1s", "--scale-time",
		"--threshold", "error_rate<50%", "--threshold", "GET /api/projects/:requests>0")
	if code != exitOK || !strings.Contains(stdout, "verdict: PASS (2 criteria)") {
		t.Fatalf("passing criteria: exit %d: %s\n%s", code, errOut, stdout)
	}
	code, stdout, errOut = thrive(t, "replay", trace, "--target", backend, "--users", "5", "--run-time", "1s", "--scale-time",
		"--threshold", "p95<1h", "--threshold", "requests>100000000", "--out", out)
	if code != exitCriteria || !strings.Contains(stdout, "verdict: FAIL (1 of 2 criteria failed)") || !strings.Contains(errOut, "1 of 2 criteria failed") {
		t.Fatalf("failing criteria: exit %d: %s\n%s", code, errOut, stdout)
	}
	if res := readResult(t, out); len(res.Criteria) != 2 || !res.Criteria[0].Pass || res.Criteria[1].Pass {
		t.Fatalf("criteria in the result: %+v", res.Criteria)
	}
	if code, _, errOut := thrive(t, "replay", trace, "--target", backend, "--threshold", "p95 under 1s"); code != exitUsage || !strings.Contains(errOut, "--threshold") {
		t.Fatalf("a bad criterion: exit %d: %s", code, errOut)
	}

	// --baseline compares at the end (on this noisy machine the verdict may
	// go either way; the comparison must be there).
	code, stdout, errOut = thrive(t, "replay", trace, "--target", backend, "--users", "5", "--run-time", "1s", "--scale-time", "--baseline", out)
	if (code != exitOK && code != exitCriteria) || !strings.Contains(stdout, "compared with "+out) || !strings.Contains(stdout, "Mann-Whitney") {
		t.Fatalf("--baseline: exit %d: %s\n%s", code, errOut, stdout)
	}

	// Endpoint patterns name what the templates would leave apart.
	code, stdout, errOut = thrive(t, "replay", trace, "--target", backend, "--users", "3", "--run-time", "1s", "--scale-time",
		"--profiles", "import", "--endpoint", "POST /api/import/{kind}/")
	if code != exitOK || !strings.Contains(stdout, "POST /api/import/{kind}/") || strings.Contains(stdout, "POST /api/import/github/") {
		t.Fatalf("--endpoint: exit %d: %s\n%s", code, errOut, stdout)
	}

	// The reports are made from the result file.
	prefix := filepath.Join(t.TempDir(), "run")
	code, stdout, errOut = thrive(t, "report", out, "--csv", prefix, "--html", prefix+".html")
	if code != exitOK || !strings.Contains(stdout, "verdict: FAIL (1 of 2 criteria failed)") || !strings.Contains(stdout, "GET /api/projects/") {
		t.Fatalf("report: exit %d: %s\n%s", code, errOut, stdout)
	}
	for _, suffix := range []string{"_stats.csv", "_stats_history.csv", "_failures.csv", "_exceptions.csv", ".html"} {
		b, err := os.ReadFile(prefix + suffix)
		if err != nil || !strings.Contains(string(b), ",") {
			t.Fatalf("%s: %v %q", suffix, err, b)
		}
	}
}

func TestReplayTargetDown(t *testing.T) {
	trace := filepath.Join(t.TempDir(), "s.thrv")
	if code, _, _ := thrive(t, "traces", "sample", "--sessions", "5", "--out", trace); code != exitOK {
		t.Fatal("sample failed")
	}
	ln, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + ln.Addr().String()
	ln.Close()
	out := filepath.Join(t.TempDir(), "r.json")
	code, stdout, errOut := thrive(t, "replay", trace, "--target", down, "--users", "3", "--run-time", "300ms", "--scale-time=0.001", "--out", out)
	if code != exitError || !strings.Contains(errOut, "refused every connection") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	if !strings.Contains(stdout, "failures") {
		t.Fatalf("no report printed:\n%s", stdout)
	}
	if res := readResult(t, out); res.Requests == 0 || res.Failures != res.Requests {
		t.Fatalf("result %d requests, %d failures", res.Requests, res.Failures)
	}
}

// TestReplaySIGTERMWritesResults stops a long run with SIGTERM once the
// target has seen requests, and finds the results written.
func TestReplaySIGTERMWritesResults(t *testing.T) {
	var once sync.Once
	seen := make(chan struct{})
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() { close(seen) })
		_, _ = io.WriteString(w, "{}")
	}))
	defer backend.Close()
	trace := filepath.Join(t.TempDir(), "s.thrv")
	if code, _, _ := thrive(t, "traces", "sample", "--sessions", "5", "--out", trace); code != exitOK {
		t.Fatal("sample failed")
	}
	out := filepath.Join(t.TempDir(), "r.json")
	cmd, stdout := thriveProcess(t, "replay", trace, "--target", backend.URL, "--users", "5", "--run-time", "10m", "--scale-time=0.01", "--out", out, "--stop-timeout", "2s")
	select {
	case <-seen:
	case <-time.After(30 * time.Second):
		t.Fatal("no request reached the target")
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	text, _ := io.ReadAll(stdout)
	err := cmd.Wait()
	if !strings.Contains(string(text), "results written to") {
		t.Fatalf("output:\n%s", text)
	}
	// A run SIGTERM stopped exits 143, as shells report it, and its result
	// says it was cut short and when.
	if ee, ok := errors.AsType[*exec.ExitError](err); !ok || ee.ExitCode() != 143 {
		t.Fatalf("exit %v, want 143", err)
	}
	res := readResult(t, out)
	if res.Requests == 0 || !res.Interrupted || res.Params.StoppedBy != "SIGTERM" || res.Params.RanFor == "" {
		t.Fatalf("result: %d requests, interrupted %v, params %v", res.Requests, res.Interrupted, res.Params)
	}
	if ran := res.End.Sub(res.Start); ran > 5*time.Minute {
		t.Fatalf("the result says the run lasted %v of its 10m", ran)
	}
}

// TestReplayTwoSignalsCutAtOnce: a second signal cuts what is in flight at
// once instead of waiting out the stop timeout (a target that hangs).
func TestReplayTwoSignalsCutAtOnce(t *testing.T) {
	var once sync.Once
	seen := make(chan struct{})
	hang := make(chan struct{})
	backend := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		once.Do(func() { close(seen) })
		<-hang // never answers while the test runs
	}))
	defer backend.Close()
	defer close(hang) // before the server's Close, which waits for its handlers
	trace := filepath.Join(t.TempDir(), "s.thrv")
	if code, _, _ := thrive(t, "traces", "sample", "--sessions", "5", "--out", trace); code != exitOK {
		t.Fatal("sample failed")
	}
	out := filepath.Join(t.TempDir(), "r.json")
	cmd, stdout, stderrPipe := thriveProcessPiped(t, true, "replay", trace, "--target", backend.URL, "--users", "3",
		"--run-time", "10m", "--out", out, "--stop-timeout", "10m")
	select {
	case <-seen:
	case <-time.After(30 * time.Second):
		t.Fatal("no request reached the target")
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	// Two signals sent at once are one to the kernel: the second goes
	// once thrive says it took the first.
	stderr := bufio.NewScanner(stderrPipe)
	for stderr.Scan() && !strings.Contains(stderr.Text(), "interrupted by SIGINT: stopping") {
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	drained := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, stderrPipe); close(drained) }()
	text, _ := io.ReadAll(stdout) // returns when the process ends: not after its 10m stop timeout
	<-drained
	err := cmd.Wait()
	if ee, ok := errors.AsType[*exec.ExitError](err); !ok || ee.ExitCode() != 130 {
		t.Fatalf("exit %v, want 130\n%s", err, text)
	}
	if res := readResult(t, out); !res.Interrupted || res.Params.StoppedBy != "SIGINT" {
		t.Fatalf("result: interrupted %v, params %v", res.Interrupted, res.Params)
	}
}

func TestReplayBadFlags(t *testing.T) {
	trace := filepath.Join(t.TempDir(), "s.thrv")
	emptyCSV := filepath.Join(t.TempDir(), "users.csv")
	if err := os.WriteFile(emptyCSV, []byte("username,password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := thrive(t, "traces", "sample", "--sessions", "3", "--out", trace); code != exitOK {
		t.Fatal("sample failed")
	}
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"replay", trace}, "no target: the trace does not say where it was recorded going\nhint: give one with --target"},
		{[]string{"replay", trace, "--target", "http://127.0.0.1:1", "--mix", "chat"}, "--mix"},
		{[]string{"replay", trace, "--target", "http://127.0.0.1:1", "--stages", "10:1m", "--users", "5"}, "--stages replaces"},
		{[]string{"replay", trace, "--target", "http://127.0.0.1:1", "--shard", "3/3"}, "--shard"},
		{[]string{"replay", trace, "--target", "http://127.0.0.1:1", "--pacing", "fast"}, "--pacing"},
		{[]string{"replay", trace, "--target", "http://127.0.0.1:1", "--profiles", "admin"}, `profile "admin"`},
		{[]string{"replay", trace, "--target", "http://127.0.0.1:1", "--scale-time=-1"}, "--scale-time"},
		{[]string{"replay", trace, "--target", "http://127.0.0.1:1", "--users-file", trace + ".missing.csv"}, "--users-file"},
		{[]string{"replay", trace, "--target", "http://127.0.0.1:1", "--users-file", emptyCSV}, "no user rows"},
		// Absurd sizes are refused before anything is allocated.
		{[]string{"replay", trace, "--target", "http://127.0.0.1:1", "--users", "1000000000000"}, "want 1 to 10000000"},
		{[]string{"replay", trace, "--target", "http://127.0.0.1:1", "--stages", "1000000000000:1s"}, "want 0 to 10000000"},
		{[]string{"replay", trace, "--target", "http://127.0.0.1:1", "--users", "9000000", "--run-time", "1s"}, "this machine has"},
		{[]string{"replay", trace, "--target", "http://127.0.0.1:1", "--scale-time=1e12"}, "time scale 1e+12 makes the longest session"},
		// Outputs are checked before the first request.
		{[]string{"replay", trace, "--target", "http://127.0.0.1:1", "--out", "/nonexistent/dir/r.json"}, "--out /nonexistent/dir/r.json: cannot be written"},
		{[]string{"replay", trace, "--target", "http://127.0.0.1:1", "--html", t.TempDir()}, "it is a directory"},
		{[]string{"replay", trace, "--target", "http://127.0.0.1:1", "--csv", "/nonexistent/dir/run"}, "--csv"},
		{[]string{"replay", trace, "--target", "http://127.0.0.1:1", "--baseline", "/nonexistent/base.json"}, "--baseline"},
	} {
		code, _, errOut := thrive(t, tc.args...)
		if code != exitUsage || !strings.Contains(errOut, tc.msg) {
			t.Errorf("%v: exit %d, %q", tc.args[2:], code, errOut)
		}
	}
}

// TestLadder rehearses the testing ladder's first two phases at a hundredth
// of their length: against a backend that rate-limits hard, phase 1 sees
// its 429s and both pass; against one that never does, phase 1 fails and
// the ladder stops there with exit code 3.
func TestLadder(t *testing.T) {
	trace := filepath.Join(t.TempDir(), "l.thrv")
	if code, _, errOut := thrive(t, "demo", "--sessions", "20", "--time-scale", "1000", "--out", trace, "--users", "5", "--run-time", "1s"); code != exitOK {
		t.Fatalf("demo: %s", errOut)
	}
	limited := serveInBackground(t, "--latency-scale", "0", "--rate-limit", "1", "--burst", "1")
	code, stdout, errOut := thrive(t, "replay", trace, "--target", limited, "--ladder", "--ladder-time", "0.01", "--max-users", "1000", "--scale-time")
	if code != exitOK || !strings.Contains(stdout, "verdict: PASS (2 phases)") || strings.Contains(stdout, "ladder phase 2") {
		t.Fatalf("rate-limited backend: exit %d: %s\n%s", code, errOut, stdout)
	}
	open := serveInBackground(t, "--latency-scale", "0", "--rate-limit", "0")
	code, stdout, errOut = thrive(t, "replay", trace, "--target", open, "--ladder", "--ladder-time", "0.01", "--max-users", "10000", "--scale-time")
	if code != exitCriteria || !strings.Contains(errOut, "ladder phase 1 failed") || strings.Contains(stdout, "ladder phase 2") ||
		!strings.Contains(stdout, "status_429>0 ✗") {
		t.Fatalf("open backend: exit %d: %s\n%s", code, errOut, stdout)
	}
}

// TestSmallRefusals: what issue 15 found accepted or misreported, each
// refused as bad usage with a message that says what.
func TestSmallRefusals(t *testing.T) {
	trace := filepath.Join(t.TempDir(), "s.thrv")
	if code, _, _ := thrive(t, "traces", "sample", "--sessions", "5", "--out", trace); code != exitOK {
		t.Fatal("sample failed")
	}
	past := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"replay", "a", "b", "c"}, "accepts between 0 and 2 arg(s)"},
		{[]string{"replay", t.TempDir(), "--target", "http://127.0.0.1:1"}, "is a directory, not a trace file"},
		{[]string{"replay", trace, "--target", "http://127.0.0.1:99999"}, "port 99999: want 1 to 65535"},
		{[]string{"replay", trace, "--target", "http://127.0.0.1:1", "--threshold", "error_rate<-1%"}, "want a number of 0 or more"},
		{[]string{"replay", trace, "--target", "http://127.0.0.1:1", "--threshold", "rps>=NaN"}, "want a number of 0 or more"},
		{[]string{"replay", trace, "--target", "http://127.0.0.1:1", "--threshold", "error_rate<150%"}, "past 100%"},
		{[]string{"replay", trace, "--target", "http://127.0.0.1:1", "--start-at", past, "--run-time", "1m"}, "before now: nothing would be sent"},
		{[]string{"replay", trace, "--target", "http://127.0.0.1:1", "--source-ips", "192.0.2.10"}, "not an address of this machine"},
	} {
		code, _, errOut := thrive(t, tc.args...)
		if code != exitUsage || !strings.Contains(errOut, tc.msg) {
			t.Errorf("%v: exit %d, %q", tc.args, code, errOut)
		}
	}
	// A whole run merged with itself would count every request twice.
	res := filepath.Join(t.TempDir(), "r.json")
	backend := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer backend.Close()
	if code, _, errOut := thrive(t, "replay", trace, "--target", backend.URL, "--users", "1", "--run-time", "200ms", "--out", res); code != exitOK {
		t.Fatalf("replay: %s", errOut)
	}
	if code, _, errOut := thrive(t, "merge", res, res, "--out", res+".all"); code == exitOK || !strings.Contains(errOut, "a whole run, not a shard") {
		t.Errorf("merge of a run with itself: exit %d, %q", code, errOut)
	}
	// Transport errors are listed by kind, not as a Go map.
	if err := replay.Unreachable(&report.Result{Requests: 45, Failures: 45, Endpoints: []report.EndpointStats{{Errors: map[report.ErrorKind]int64{"tls": 40, "timeout": 5}}}}, "https://x"); err == nil ||
		err.Error() != "no request to https://x got an answer (timeout 5, tls 40)" {
		t.Errorf("unreachable: %v", err)
	}
}

// TestReplayHeaders: -H adds a header to every request and replaces a
// recorded one of its name, as the server sees them; a line without a
// colon is bad usage.
func TestReplayHeaders(t *testing.T) {
	trace := filepath.Join(t.TempDir(), "h.thrv")
	if code, _, errOut := thrive(t, "traces", "sample", "--sessions", "5", "--out", trace); code != exitOK {
		t.Fatal(errOut)
	}
	var mu sync.Mutex
	seen := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.Header.Get("X-Load")+" "+r.Header.Get("User-Agent")]++
		mu.Unlock()
	}))
	defer srv.Close()
	code, _, errOut := thrive(t, "replay", trace, "--target", srv.URL, "--profiles", "browse", "--users", "2", "--run-time", "300ms", "--scale-time",
		"-H", "X-Load: on", "--header", "User-Agent:thrive-test", "-q")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 1 || seen["on thrive-test"] == 0 {
		t.Errorf("the server saw %v, want every request with X-Load: on and User-Agent: thrive-test", seen)
	}
	if code, _, errOut := thrive(t, "replay", trace, "--target", srv.URL, "-H", "X-Load on"); code != exitUsage || !strings.Contains(errOut, `header "X-Load on": want 'Name: value'`) {
		t.Errorf("a header without a colon: exit %d, %q", code, errOut)
	}
}
