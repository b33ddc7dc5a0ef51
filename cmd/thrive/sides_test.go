package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/thrive-loadtest/thrive/internal/apptest"
	"github.com/thrive-loadtest/thrive/report"
)

// counter returns the sum of a demo backend's counter over the series
// whose labels contain labels ("" for all).
func counter(t *testing.T, base, metric, labels string) int64 {
	t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), "GET", base+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var n int64
	for _, m := range regexp.MustCompile(`(?m)^`+metric+`(?:\{(.*)\})? (\d+)$`).FindAllStringSubmatch(string(b), -1) {
		if strings.Contains(m[1], labels) {
			v, _ := strconv.ParseInt(m[2], 10, 64)
			n += v
		}
	}
	return n
}

// TestSideBySide replays the demo's sessions side by side against the
// demo backend, a changed build of it (a field dropped, chat replies of
// half the tokens) and a second instance of the first: every side gets
// the run's users, the result file holds each, and the comparison at the
// end finds the build's two changes and nothing else, as does thrive
// compare of the file. The changed build's own counters say what it
// changed.
func TestSideBySide(t *testing.T) {
	base := serveInBackground(t, "--rate-limit", "0")
	cand := serveInBackground(t, "--rate-limit", "0", "--drop-field", "$.results[].stars", "--tokens-scale", "0.5")
	control := serveInBackground(t, "--rate-limit", "0")
	dir := t.TempDir()
	trace, out := filepath.Join(dir, "d.thrv"), filepath.Join(dir, "r.json")
	if code, _, errOut := thrive(t, "demo", "--sessions", "30", "--time-scale", "1000", "--out", trace, "--users", "5", "--run-time", "1s"); code != exitOK {
		t.Fatalf("demo: %s", errOut)
	}
	code, stdout, stderr := thrive(t, "replay", trace, "--target", base, "--candidate", cand, "--control", control,
		"--users", "20", "--run-time", "4s", "--scale-time", "0.2", "--out", out, "--quiet")
	// (A loaded machine may add a latency regression: what is held is
	// the answers' differences, below.)
	if code != exitCriteria || !strings.Contains(stderr, "GET /api/projects/ browse: field gone $.results[].stars") {
		t.Fatalf("exit %d: %s\n%s", code, stderr, stdout)
	}
	res := readResult(t, out)
	if res.Candidate == nil || res.Control == nil || res.Candidate.Target != cand || res.Control.Target != control {
		t.Fatalf("sides: %+v %+v", res.Candidate, res.Control)
	}
	for _, r := range []*report.Result{res, res.Candidate, res.Control} {
		if r.Requests < 200 || r.Failures > 0 || r.Params.Users != 20 {
			t.Errorf("%s: %d requests, %d failed, %d users", r.Target, r.Requests, r.Failures, r.Params.Users)
		}
	}
	// Each difference the comparison lists, and no other.
	rows := regexp.MustCompile(`(?m)^(ws-reply WS /ws/chat/|GET /api/[a-z/{}]*)\s+\S+\s+(field gone|field new|field type|header gone|header new|size|frames|status)\s+(\S+)`).FindAllStringSubmatch(stdout, -1)
	var found []string
	for _, m := range rows {
		found = append(found, m[2]+" "+m[3])
	}
	want := map[string]bool{"field gone $.results[].stars": true, "frames median": false, "size median": false}
	for _, f := range found {
		matched := false
		for w := range want {
			if strings.HasPrefix(f, w) {
				want[w], matched = true, true
			}
		}
		if !matched && !strings.HasPrefix(f, "field gone $.results[].stars") {
			t.Errorf("a difference the build did not make: %s", f)
		}
	}
	for w, ok := range want {
		if !ok {
			t.Errorf("not found: %s (found %q)\n%s", w, found, stdout)
		}
	}
	// The changed build halved every reply the candidate's users got.
	var replies int64
	for _, e := range res.Candidate.Endpoints {
		if e.Kind == "ws-reply" && e.Answers != nil {
			replies += e.Answers.Answers
		}
	}
	if changed := counter(t, cand, "demo_build_changes_total", `change="tokens-scale"`); changed != replies || replies == 0 {
		t.Errorf("the build halved %d replies; the candidate's sketch has %d", changed, replies)
	}
	if counter(t, cand, "demo_build_changes_total", `change="drop-field"`) == 0 || counter(t, base, "demo_build_changes_total", "") != 0 {
		t.Errorf("the builds' changes: candidate %d, base %d", counter(t, cand, "demo_build_changes_total", `change="drop-field"`), counter(t, base, "demo_build_changes_total", ""))
	}
	// thrive compare of the file says the same.
	code, again, _ := thrive(t, "compare", out)
	if code != exitCriteria || !strings.Contains(again, "field gone  $.results[].stars") {
		t.Errorf("compare of the file: exit %d\n%s", code, again)
	}
}

// TestDemoCompare: thrive demo --compare replays the demo's sessions
// against the demo backend and a changed build of it side by side, and
// its comparison finds the build's changes: the field gone, the chat's
// shorter replies; it exits 3.
func TestDemoCompare(t *testing.T) {
	trace := filepath.Join(t.TempDir(), "d.thrv")
	code, stdout, stderr := thrive(t, "demo", "--compare", "--sessions", "20", "--time-scale", "1000", "--out", trace, "--users", "20", "--run-time", "4s")
	if code != exitCriteria || !strings.Contains(stdout, "a changed build of the backend on http://127.0.0.1:") ||
		!regexp.MustCompile(`GET /api/projects/\s+browse\s+field gone\s+\$\.results\[\]\.stars`).MatchString(stdout) ||
		!regexp.MustCompile(`ws-reply WS /ws/chat/\s+chat\s+frames\s+median -`).MatchString(stdout) {
		t.Errorf("exit %d: %s\n%s", code, stderr, stdout)
	}
}

// TestSideBySideOfFrameworkApps: visits of apps in the conventions of a
// framework, recorded by Chromium through the capture, replayed side by
// side (each user an account of its own) against the app and a new build of
// it that the framework's users make:
//
//   - Rails (cookie store, per-form CSRF tokens, Action Cable): a jbuilder
//     partial without json.url. The comparison lists $.url gone from both
//     endpoints that answer a document's JSON; the build's count of answers
//     it wrote without url is the candidate's count of those answers.
//
//   - Spring Boot (Spring Security's session and CSRF, STOMP over a
//     WebSocket): Jackson's SNAKE_CASE, so that the cards' broadcast
//     events say board_id. The comparison lists $.boardId gone from the
//     socket's replies and $.board_id new; no STOMP message of the
//     candidate's waits for the boardId that no longer comes.
//
// Nothing else is listed, and the build as it was made none of the change.
func TestSideBySideOfFrameworkApps(t *testing.T) {
	type diffs map[string]bool // "ENDPOINT WHAT DETAIL": must be listed (true), may be (false)
	for _, tc := range []struct {
		name          string
		apps          func(t *testing.T) (base, cand string, made func() (base, cand int64))
		start, column string
		value         string // the users file's value of column; its password is "pw-" + it
		want          diffs
		// answers, when set, is the endpoints whose candidate answers the
		// build counted one by one.
		answers []string
	}{
		{"Rails", func(t *testing.T) (string, string, func() (int64, int64)) {
			base, cand := apptest.NewCable(t), apptest.NewCableBuild(t, apptest.CableChange{NoURL: true})
			return base.URL, cand.URL, func() (int64, int64) {
				return base.Counts.Get("build: url dropped"), cand.Counts.Get("build: url dropped")
			}
		}, "/docs?u=", "email_address", "u{{user.index}}@example.test",
			diffs{"GET /docs/{id}.json field gone $.url": true, "PATCH /docs/{id} field gone $.url": true,
				"GET /docs/{id}.json size median": false, "PATCH /docs/{id} size median": false},
			[]string{"GET /docs/{id}.json", "PATCH /docs/{id}"}},
		{"Spring", func(t *testing.T) (string, string, func() (int64, int64)) {
			base, cand := apptest.NewSpringBoard(t), apptest.NewSpringBoardBuild(t, apptest.SpringChange{SnakeCase: true})
			return base.URL, cand.URL, func() (int64, int64) {
				return base.Counts.Get("build: snake case"), cand.Counts.Get("build: snake case")
			}
		}, "/boards?u=", "username", "u{{user.index}}",
			diffs{"ws-reply WS /ws field gone $.boardId": true, "ws-reply WS /ws field new $.board_id": true, "ws-reply WS /ws size median": false},
			nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			base, cand, made := tc.apps(t)
			browser := apptest.StartBrowser(t)
			_, trace := apptest.Record(t, base, func(u string) {
				var pages []*apptest.Page
				for i := range 3 {
					pages = append(pages, browser.Open(u+tc.start+"user"+strconv.Itoa(i)))
				}
				for i, p := range pages {
					if text, err := p.WaitText("root", 60*time.Second); err != nil || text != "done" {
						t.Fatalf("browser context %d: the page said %q (%v)", i, text, err)
					}
				}
			})
			if b, c := made(); b != 0 || c != 0 {
				t.Fatalf("the recording reached a build change: base %d, candidate %d", b, c)
			}
			dir := t.TempDir()
			out, users := filepath.Join(dir, "r.json"), filepath.Join(dir, "users.csv")
			// Each user signs in as an account of its own (passwords are
			// redacted in the trace).
			csv := tc.column + ",password\n" + tc.value + ",pw-" + strings.TrimSuffix(tc.value, "@example.test") + "\n"
			if err := os.WriteFile(users, []byte(csv), 0o600); err != nil {
				t.Fatal(err)
			}
			code, stdout, stderr := thrive(t, "replay", trace, "--target", base, "--candidate", cand, "--users-file", users,
				"--users", "6", "--run-time", "8s", "--out", out, "--quiet")
			if code != exitCriteria {
				t.Fatalf("exit %d: %s\n%s", code, stderr, stdout)
			}
			res := readResult(t, out)
			if res.Failures > 0 || res.Candidate.Failures > 0 {
				t.Errorf("failures: base %d, candidate %d\n%s", res.Failures, res.Candidate.Failures, stdout)
			}
			// Both sides play one schedule: a side whose users stall (a
			// message waiting for a value its build no longer gives) gets
			// through fewer requests.
			if res.Candidate.Requests < res.Requests*9/10 {
				t.Errorf("requests: base %d, candidate %d", res.Requests, res.Candidate.Requests)
			}
			found := map[string]bool{}
			for _, d := range regexp.MustCompile(`(?m)^((?:ws-\S+ )?[A-Z]+ \S+)\s+\S+\s+(field gone|field new|field type|header gone|header new|size|frames|status)\s+(\S+)`).FindAllStringSubmatch(stdout, -1) {
				k := d[1] + " " + d[2] + " " + d[3]
				if _, ok := tc.want[k]; !ok {
					t.Errorf("a difference the build did not make: %s", d[0])
				}
				found[k] = true
			}
			for k, must := range tc.want {
				if must && !found[k] {
					t.Errorf("not found: %s\n%s", k, stdout)
				}
			}
			b, c := made()
			if b != 0 || c == 0 {
				t.Errorf("the build as it was made the change %d times, the new build %d", b, c)
			}
			if tc.answers != nil {
				var answers int64
				for _, e := range res.Candidate.Endpoints {
					if slices.Contains(tc.answers, e.Name) && e.Answers != nil {
						answers += e.Answers.Answers
					}
				}
				if c != answers {
					t.Errorf("the new build made the change in %d answers, the candidate's sketch has %d", c, answers)
				}
			}
		})
	}
}
