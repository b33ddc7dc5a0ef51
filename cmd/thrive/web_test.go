package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/thrive-loadtest/thrive/internal/apptest"
	"github.com/thrive-loadtest/thrive/internal/promtest"
)

// waitFor is a script that settles, with the value of expr, once cond
// holds in the page: the page polls itself, and Eval's timeout bounds
// the wait.
func waitFor(cond, expr string) string {
	return fmt.Sprintf(`new Promise(ok => { const t = () => { try { if (%s) return ok(%s); } catch (e) {} setTimeout(t, 25); }; t(); })`, cond, expr)
}

// get returns the body of url, failing the test on an error or a status
// other than 200.
func get(t *testing.T, url string) []byte {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v: %s", url, resp.Status, err, b)
	}
	return b
}

// waitServed waits, at most 30 s, until page answers 200.
func waitServed(t *testing.T, page string) {
	t.Helper()
	promtest.Until(t, 30*time.Second, "the live page", func() bool {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, page, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// TestWebInChromium: replay --web against the demo backend, watched in
// headless Chromium: the page draws its four charts and they move as the
// run goes on, its form takes the users from 20 down to 4 (the result's
// series shows it), Stop on the page ends the run with its results written,
// and the page then shows the figures the result file ends with (its
// tables, the criteria's verdict, the terminal's summary) and offers the
// run's files. With THRIVE_UPDATE_SCREENSHOT=1 it saves the page as
// docs/live-page.png, which the README shows.
func TestWebInChromium(t *testing.T) {
	browser := apptest.StartBrowser(t)
	backend := serveInBackground(t, "--rate-limit", "0")
	dir := t.TempDir()
	trace, out := filepath.Join(dir, "d.thrv"), filepath.Join(dir, "r.json")
	if code, _, errOut := thrive(t, "demo", "--sessions", "20", "--time-scale", "1000", "--out", trace, "--users", "5", "--run-time", "1s"); code != exitOK {
		t.Fatalf("demo: %s", errOut)
	}
	addr := promtest.FreeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"replay", trace, "--target", backend, "--users", "20", "--spawn-rate", "10", "--run-time", "2m",
			"--scale-time", "0.2", "--web", addr, "--out", out, "--threshold", "p95<10s", "--quiet"}, strings.NewReader(""), &stdout, &stderr)
	}()
	ended := false
	defer func() {
		if !ended {
			cancel()
			<-done
		}
	}()
	page := "http://" + addr + "/"
	waitServed(t, page)
	p := browser.Open(page)

	// The charts draw, each a line of two points or more, then move.
	const paths = `[...document.querySelectorAll(".chart path.series")].map(e => e.getAttribute("d"))`
	var first []string
	if err := p.Eval(waitFor(`document.querySelectorAll(".chart svg").length === 4 && `+paths+`.filter(d => d.includes("L")).length >= 6`, paths), &first, 30*time.Second); err != nil {
		t.Fatalf("the charts did not draw: %v", err)
	}
	var moved []string
	if err := p.Eval(waitFor(paths+`[0] !== `+fmt.Sprintf("%q", first[0]), paths), &moved, 10*time.Second); err != nil {
		t.Fatalf("the requests chart did not move from %q: %v", first[0], err)
	}
	if os.Getenv("THRIVE_UPDATE_SCREENSHOT") != "" {
		// A few more seconds of the run make a picture worth showing.
		if err := p.Eval(waitFor(`document.querySelector(".chart path.series").getAttribute("d").split("L").length > 12`, "true"), nil, 30*time.Second); err != nil {
			t.Fatal(err)
		}
		png, err := p.Screenshot(1280, 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join("..", "..", "docs", "live-page.png"), png, 0o644); err != nil { //nolint:gosec // a picture for the README
			t.Fatal(err)
		}
	}

	// The form changes the users, as Locust's does: down to 4 at once.
	var said string
	if err := p.Eval(waitFor(`!document.getElementById("runform").hidden && document.getElementById("f-submit").textContent === "Change users"`,
		`(() => { document.getElementById("f-users").value = "4"; document.getElementById("f-rate").value = "0";
		document.getElementById("f-submit").click(); return true; })()`), nil, 10*time.Second); err != nil {
		t.Fatalf("no form to change the users: %v", err)
	}
	if err := p.Eval(waitFor(`document.body.dataset.said`, `document.body.dataset.said`), &said, 10*time.Second); err != nil || said != "asked for 4 users at 0/s" {
		t.Fatalf("the change: %q %v", said, err)
	}
	var at int
	if err := p.Eval(waitFor(`/users 4 ·/.test(document.getElementById("progress").textContent)`, `Number(document.body.dataset.frames)`), &at, 30*time.Second); err != nil {
		t.Fatalf("the page never showed 4 users: %v", err)
	}
	// A few seconds of 4 users before the Stop, whose own second sees
	// users stop.
	if err := p.Eval(waitFor(fmt.Sprintf(`Number(document.body.dataset.frames) >= %d`, at+3), "true"), nil, 30*time.Second); err != nil {
		t.Fatal(err)
	}

	// Stop ends the run, as Ctrl-C does: its results are written.
	if err := p.Eval(`document.getElementById("stop").click()`, nil, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	var shown struct {
		State     string     `json:"state"`
		Requests  string     `json:"requests"`
		Endpoints [][]string `json:"endpoints"`
		Verdict   string     `json:"verdict"`
		Criteria  [][]string `json:"criteria"`
		Summary   string     `json:"summary"`
		Files     []string   `json:"files"`
	}
	const rows = `id => [...document.querySelectorAll("#" + id + " tbody tr")].map(r => [...r.cells].map(c => c.textContent))`
	if err := p.Eval(waitFor(`document.body.dataset.done === "true"`, `(rows => ({state: document.getElementById("state").textContent,
		requests: document.querySelector("#cards .card b").textContent, endpoints: rows("endpoints"), criteria: rows("criteria"),
		verdict: document.getElementById("verdict").textContent, summary: document.getElementById("summary").textContent,
		files: [...document.querySelectorAll("#files a")].map(a => a.getAttribute("href"))}))(`+rows+`)`), &shown, 60*time.Second); err != nil {
		t.Fatalf("the page did not show the run's end: %v", err)
	}
	res := readResult(t, out)
	if !res.Interrupted || res.Params.StoppedBy != "stopped from the live page" {
		t.Errorf("result: interrupted %v by %q, want stopped from the live page", res.Interrupted, res.Params.StoppedBy)
	}
	// The change is in the series, and from the second after it the run
	// had 4 users.
	changed, checked := int64(-1), 0
	for i, s := range res.Series {
		if i == len(res.Series)-1 {
			break // the Stop's second: users stop in it
		}
		if len(s.Changes) > 0 {
			if changed >= 0 || len(s.Changes) != 1 || s.Changes[0].Users != 4 || s.Changes[0].SpawnRate != 0 || int64(s.Changes[0].AtS) != s.Offset {
				t.Errorf("changes in second %d: %+v", s.Offset, s.Changes)
			}
			changed = s.Offset
		} else if changed >= 0 && s.Offset > changed+1 {
			checked++
			if s.Users != 4 {
				t.Errorf("second %d, after the change: %d users", s.Offset, s.Users)
			}
		}
	}
	if changed < 0 || checked == 0 {
		t.Errorf("no change in the series, or no whole second after it: %+v", res.Series)
	}
	if shown.State != "stopped: stopped from the live page" {
		t.Errorf("state %q", shown.State)
	}
	if want := fmt.Sprintf("%d", res.Requests); strings.ReplaceAll(shown.Requests, ",", "") != want {
		t.Errorf("the page shows %s requests, the result file %s", shown.Requests, want)
	}
	if len(shown.Endpoints) != len(res.Endpoints) {
		t.Errorf("%d rows of endpoints, the result file has %d", len(shown.Endpoints), len(res.Endpoints))
	}
	for _, e := range res.Endpoints {
		found := false
		for _, r := range shown.Endpoints {
			num := func(i int) string { return strings.ReplaceAll(r[i], ",", "") } // 1,445.9
			found = found || (r[0] == e.Kind && r[1] == e.Name && r[2] == e.Profile && num(3) == fmt.Sprint(e.Requests) &&
				num(8) == fmt.Sprintf("%.1f", e.Latency.P95Ms))
		}
		if !found {
			t.Errorf("no row of %s %s %s: %d requests, p95 %.1f ms in %q", e.Kind, e.Name, e.Profile, e.Requests, e.Latency.P95Ms, shown.Endpoints)
		}
	}
	if len(shown.Criteria) != 1 || shown.Criteria[0][0] != "p95<10s" || shown.Criteria[0][2] != "pass" || shown.Verdict != "verdict: PASS" || !res.Criteria[0].Pass {
		t.Errorf("criteria %q, verdict %q; in the result %+v", shown.Criteria, shown.Verdict, res.Criteria)
	}
	for _, want := range []string{"files/r.json", "files/report.html", "files/locust_stats.csv", "files/locust_stats_history.csv"} {
		found := false
		for _, f := range shown.Files {
			found = found || f == want
		}
		if !found {
			t.Errorf("no link to %s in %q", want, shown.Files)
		}
	}
	written, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if got := get(t, page+"files/r.json"); !bytes.Equal(got, written) {
		t.Errorf("the page's r.json (%d bytes) is not the result file (%d bytes)", len(got), len(written))
	}
	if got := get(t, page+"files/locust_stats.csv"); !bytes.HasPrefix(got, []byte("Type,Name,Request Count")) {
		t.Errorf("locust_stats.csv: %.80q", got)
	}

	// The page stays up until Ctrl-C.
	cancel()
	code := <-done
	ended = true
	if code != exitError || !strings.Contains(stderr.String(), "stopped from the live page after") {
		t.Errorf("exit %d, want %d: %s", code, exitError, stderr.String())
	}
	if !strings.Contains(stdout.String(), shown.Summary) || !strings.Contains(shown.Summary, "requests "+fmt.Sprint(res.Requests)+",") {
		t.Errorf("the page's summary is not the terminal's:\n%s\nterminal:\n%s", shown.Summary, stdout.String())
	}
}

// TestDemoWeb: thrive demo --web shows the demo's replay on the live
// page, to its end, and the page's button then ends the process, which
// exits as the run did.
func TestDemoWeb(t *testing.T) {
	addr := promtest.FreeAddr(t)
	trace := filepath.Join(t.TempDir(), "d.thrv")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"demo", "--sessions", "10", "--time-scale", "1000", "--out", trace, "--users", "5", "--run-time", "2s", "--web", addr},
			strings.NewReader(""), &stdout, &stderr)
	}()
	var events *http.Response
	promtest.Until(t, 60*time.Second, "the live page's events", func() bool {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/events", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		t.Cleanup(func() { resp.Body.Close() })
		events = resp
		return true
	})
	sc := bufio.NewScanner(events.Body)
	sc.Buffer(nil, 1<<24)
	var last struct {
		Done    bool   `json:"done"`
		Title   string `json:"title"`
		Summary string `json:"summary"`
	}
	frames := 0
	for !last.Done && sc.Scan() {
		if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			frames++
			if err := json.Unmarshal([]byte(data), &last); err != nil {
				t.Fatal(err)
			}
		}
	}
	if !last.Done || !strings.Contains(last.Summary, "WS /ws/chat/") || !strings.HasPrefix(last.Title, "d.thrv against http://127.0.0.1:") {
		t.Fatalf("after %d frames: %+v (%v)", frames, last, sc.Err())
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/stop", nil)
	req.Header.Set("X-Thrive-Control", "1") // as the page's script does
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	select {
	case code := <-done:
		if code != exitOK || !strings.Contains(stdout.String(), "the live page stays up at http://"+addr+"/ until Ctrl-C") {
			t.Errorf("exit %d: %s\n%s", code, stderr.String(), stdout.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the page's button did not end thrive demo")
	}
}

// TestWebWaitInChromium: replay --web --wait opens the page first, its
// form filled from the flags, sends nothing until Start, refuses a form
// that makes no run and saying why, then plays the run the form gives.
func TestWebWaitInChromium(t *testing.T) {
	browser := apptest.StartBrowser(t)
	backend := serveInBackground(t, "--rate-limit", "0")
	dir := t.TempDir()
	trace, out := filepath.Join(dir, "d.thrv"), filepath.Join(dir, "r.json")
	if code, _, errOut := thrive(t, "demo", "--sessions", "20", "--time-scale", "1000", "--out", trace, "--users", "5", "--run-time", "1s"); code != exitOK {
		t.Fatalf("demo: %s", errOut)
	}
	addr := promtest.FreeAddr(t)
	var stdout, stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(context.Background(), []string{"replay", trace, "--target", backend, "--users", "7", "--spawn-rate", "3", "--run-time", "2m",
			"--scale-time", "0.2", "--web", addr, "--wait", "--web-linger", "1ms", "--out", out, "--quiet"}, strings.NewReader(""), &stdout, &stderr)
	}()
	page := "http://" + addr + "/"
	waitServed(t, page)
	p := browser.Open(page)
	var form []string
	const values = `["f-users", "f-rate", "f-runtime", "f-mix", "f-submit"].map(id => document.getElementById(id).value || document.getElementById(id).textContent)`
	if err := p.Eval(waitFor(`document.body.dataset.waiting === "true"`, values), &form, 30*time.Second); err != nil {
		t.Fatalf("the page did not wait for Start: %v", err)
	}
	if want := []string{"7", "3", "2m0s", "", "Start"}; !slices.Equal(form, want) {
		t.Errorf("the form shows %q, want %q from the flags", form, want)
	}
	submit := func(users, rate, runTime, mix string) string {
		t.Helper()
		var said string
		script := fmt.Sprintf(`(() => { delete document.body.dataset.said; const set = (id, v) => document.getElementById(id).value = v;
			set("f-users", %q); set("f-rate", %q); set("f-runtime", %q); set("f-mix", %q); document.getElementById("f-submit").click();
			return %s; })()`, users, rate, runTime, mix, waitFor(`document.body.dataset.said`, `document.body.dataset.said`))
		if err := p.Eval(script, &said, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		return said
	}
	if said := submit("4", "0", "soon", ""); said != `refused: run time "soon": want a duration such as 90s or 5m` {
		t.Errorf("a form of no run time: %q", said)
	}
	if said := submit("4", "0", "2s", "browse=1,nosuch=1"); !strings.HasPrefix(said, "refused: ") || !strings.Contains(said, `"nosuch"`) {
		t.Errorf("a form of a profile not recorded: %q", said)
	}
	if _, err := os.Stat(out); err == nil {
		t.Fatal("a result before the start")
	}
	if said := submit("4", "0", "2s", ""); said != "starting…" {
		t.Errorf("start: %q", said)
	}
	select {
	case code := <-done:
		if code != exitOK {
			t.Fatalf("exit %d: %s", code, stderr.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the run did not end")
	}
	res := readResult(t, out)
	if res.Params.Users != 4 || res.Params.RunTime != "2s" || res.Requests == 0 || !strings.Contains(stdout.String(), "waiting for Start on the live page") {
		t.Errorf("the run played %d users for %s, %d requests:\n%s", res.Params.Users, res.Params.RunTime, res.Requests, stdout.String())
	}
}
