package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/thrive-loadtest/thrive/demo"
)

// serveInBackground runs `thrive demo serve` in-process until the test ends
// and returns its base URL.
func serveInBackground(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), executableKey{}, thriveBin()))
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	var errOut strings.Builder
	go func() {
		done <- run(ctx, append([]string{"demo", "serve", "--listen", "127.0.0.1:0"}, args...), strings.NewReader(""), pw, &errOut)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		cancel()
		t.Fatalf("no listening line: %v (stderr %q)", err, errOut.String())
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	m := regexp.MustCompile(`listening on (http://\S+)`).FindStringSubmatch(line)
	if m == nil {
		cancel()
		t.Fatalf("first line %q", line)
	}
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != exitOK {
			t.Errorf("demo serve exited %d: %s", code, errOut.String())
		}
	})
	return m[1]
}

// TestDemoServeProcessesShareSessions runs three backend processes on one
// port and uses one session over many connections, whichever process each
// lands on.
func TestDemoServeProcessesShareSessions(t *testing.T) {
	base := serveInBackground(t, "--processes", "3", "--latency-scale", "0", "--rate-limit", "0")
	jar, _ := cookiejar.New(nil)
	// No keep-alive: every request is a new connection, which the kernel
	// may give to any of the processes.
	hc := &http.Client{Jar: jar, Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	do := func(method, path, body string) (int, string, string) {
		t.Helper()
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, _ := http.NewRequestWithContext(context.Background(), method, base+path, rd)
		u, _ := url.Parse(base)
		for _, c := range jar.Cookies(u) {
			if c.Name == demo.CSRFCookie {
				req.Header.Set(demo.CSRFHeader, c.Value)
			}
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("X-Demo-Process"), string(b)
	}
	if code, _, body := do("POST", "/api/auth/login/", fmt.Sprintf(`{"username":"ann","password":%q}`, demo.Password("ann"))); code != 200 {
		t.Fatalf("login: %d %s", code, body)
	}
	seen := map[string]bool{}
	for i := range 30 {
		code, proc, body := do("POST", "/api/import/github/", `{"url":"https://github.com/ann/x"}`)
		if code != 202 {
			t.Fatalf("import %d: %d %s (process %s)", i, code, body, proc)
		}
		seen[proc] = true
		var s struct {
			JobID uint64 `json:"job_id"`
		}
		if err := json.Unmarshal([]byte(body), &s); err != nil {
			t.Fatal(err)
		}
		code, proc, body = do("GET", fmt.Sprintf("/api/import/jobs/%d/", s.JobID), "")
		if code != 200 || !strings.Contains(body, `"status":"done"`) {
			t.Fatalf("job %d: %d %s (process %s)", i, code, body, proc)
		}
		seen[proc] = true
	}
	if len(seen) < 2 {
		t.Fatalf("60 connections all went to processes %v; want them spread over 3", seen)
	}
}

func TestDemoRunsEndToEnd(t *testing.T) {
	trace := filepath.Join(t.TempDir(), "demo.thrv")
	code, out, errOut := thrive(t, "demo", "--sessions", "12", "--time-scale", "1000", "--out", trace, "--users", "10", "--run-time", "1s")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	html := strings.TrimSuffix(trace, ".thrv") + "-report.html"
	for _, want := range []string{"sessions  12", "failures 0", "POST /api/auth/login/", "recorded 12 sessions", "by proxy",
		"replaying the trace as 10 users", "failures 0 (0.00%)", "ws-reply", "HTML report written to " + html} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if b, err := os.ReadFile(html); err != nil || !strings.Contains(string(b), "ws-reply") {
		t.Fatalf("the HTML report: %v", err)
	}
}

func TestDemoDriveJSON(t *testing.T) {
	base := serveInBackground(t, "--latency-scale", "0")
	code, out, errOut := thrive(t, "demo", "drive", "--base", base, "--sessions", "5", "--time-scale", "1000", "--json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var st demo.DriveStats
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if st.Sessions != 5 || st.Failures != 0 || st.Endpoints["POST /api/auth/login/"] != 5 {
		t.Fatalf("%+v", st)
	}
}

func TestDemoServeRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"demo", "serve", "--latency", "list"},
		{"demo", "serve", "--latency", "nope=1ms"},
		{"demo", "serve", "--fail-ratio", "2"},
		{"demo", "serve", "--processes", "0"},
		{"demo", "drive", "--base", "nowhere"},
	} {
		if code, _, errOut := thrive(t, args...); code != exitUsage {
			t.Errorf("%v: exit %d (%s), want %d", args, code, errOut, exitUsage)
		}
	}
}

// TestDemoServeBuildChanges serves a changed build from the command line
// and finds its changes in the answers and the backend's own counts.
func TestDemoServeBuildChanges(t *testing.T) {
	base := serveInBackground(t, "--latency-scale", "0", "--rate-limit", "0",
		"--drop-field", "$.results[].stars", "--rename-field", "$.count=total",
		"--fail-ratio", "GET /api/tools/=1", "--slow", "GET /api/search/=1.2", "--tokens-scale", "0.5", "--seed", "3")
	get := func(path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(context.Background(), "GET", base+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/api/projects/"); code != 200 || strings.Contains(body, `"stars"`) || !strings.Contains(body, `"total":500,`) {
		t.Fatalf("projects: %d %.300s", code, body)
	}
	if code, _ := get("/api/tools/"); code != 500 {
		t.Fatalf("tools: %d, want 500", code)
	}
	_, m := get("/metrics")
	for _, want := range []string{
		`demo_build_changes_total{change="drop-field",detail="$.results[].stars"} 1`,
		`demo_build_changes_total{change="rename-field",detail="$.count=total"} 1`,
		`demo_build_changes_total{change="fail-ratio",detail="GET /api/tools/"} 1`,
		`demo_build_changes_total{change="slow",detail="GET /api/search/"} 0`,
		`demo_build_changes_total{change="tokens-scale",detail="0.5"} 0`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestDemoServeRejectsBadBuildChanges(t *testing.T) {
	for _, tc := range []struct{ flag, value, says string }{
		{"--drop-field", "results.stars", "does not begin with $"},
		{"--drop-field", "$.results[0].stars", "not an index"},
		{"--rename-field", "$.count", "want PATH=NEWNAME"},
		{"--fail-ratio", "GET /api/nope/=0.1", "is not served; endpoints (METHOD /path/pattern/): POST /api/auth/login/"},
		{"--fail-ratio", "GET /api/tools/=1.5", "R a share in [0, 1]"},
		{"--slow", "GET /api/tools/=0", "F above 0"},
		{"--slow", "GET /visit=2", "has no modelled latency"},
		{"--tokens-scale", "0", "want a factor above 0"},
	} {
		t.Run(tc.flag+" "+tc.value, func(t *testing.T) {
			code, _, errOut := thrive(t, "demo", "serve", "--listen", "127.0.0.1:0", tc.flag, tc.value)
			if code != exitUsage || !strings.Contains(errOut, fmt.Sprintf("invalid argument %q for %q flag", tc.value, tc.flag)) || !strings.Contains(errOut, tc.says) {
				t.Fatalf("exit %d: %s; want %d naming %s %q and saying %q", code, errOut, exitUsage, tc.flag, tc.value, tc.says)
			}
		})
	}
}
