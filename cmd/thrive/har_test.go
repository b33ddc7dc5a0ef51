package main

import (
	"bufio"
	"context"
	"fmt"
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
	"github.com/thrive-loadtest/thrive/traces"
	"github.com/thrive-loadtest/thrive/traces/tracetest"
)

// TestImportChromiumHARsOfTheDemo: six browser contexts of a headless
// Chromium, two per profile and all at once, each visit the demo
// backend's page that plays a session of its profile (login, browsing,
// chat over a WebSocket, imports polled to their end), recording its
// traffic as DevTools does; each context's HAR is saved to a file, and
// thrive import makes one trace of them. The trace holds what the
// backend counted (its /metrics): a session per login, an exchange per
// request answered, a WebSocket per upgrade, a frame per message each
// way. Then the trace replays as 100 users against a fresh backend with
// no failure.
func TestImportChromiumHARsOfTheDemo(t *testing.T) {
	backend := serveInBackground(t, "--latency-scale", "0", "--rate-limit", "0")
	dir := t.TempDir()
	var visits []string
	for i, profile := range []string{"browse", "chat", "import", "browse", "chat", "import"} {
		visits = append(visits, fmt.Sprintf("%s/visit?profile=%s&u=visitor%d&scale=50", backend, profile, i))
	}
	hars := recordHARs(t, dir, visits)
	counted := demoMetrics(t, backend)
	trace := filepath.Join(dir, "visits.thrv")
	code, stdout, errOut := thrive(t, append(append([]string{"import"}, hars...), "--out", trace, "--keep-secrets")...)
	if code != exitOK {
		t.Fatalf("import: exit %d\n%s\n%s", code, stdout, errOut)
	}
	got := traceCounts(tracetest.ReadFile(t, trace))
	want := traceFigures{sessions: int(counted["demo_logins_total"]), exchanges: int(counted["http_requests_total"]),
		sockets: int(counted[`http_requests_total{code="101"}`]), sent: int(counted[`websocket_messages_total{direction="received"}`]),
		received: int(counted[`websocket_messages_total{direction="sent"}`])}
	if got != want || want.sessions != len(visits) || want.sockets == 0 {
		t.Errorf("the trace holds %+v; the backend counted %+v for %d visits\n%s", got, want, len(visits), stdout)
	}
	t.Logf("the trace holds %+v", got)
	fresh := serveInBackground(t, "--latency-scale", "0", "--rate-limit", "0")
	code, stdout, errOut = thrive(t, "replay", trace, "--target", fresh, "--users", "100", "--run-time", "3s", "--scale-time", "-q")
	if code != exitOK || !strings.Contains(stdout, "failures 0 (0.00%)") || strings.Contains(stdout, "requests 0,") {
		t.Fatalf("replaying the imported trace as 100 users: exit %d\n%s\n%s", code, stdout, errOut)
	}
}

// recordHARs opens each of urls in a browser context of its own of one
// Chromium, all at once, recording them; waits until each page's root
// says "done"; and saves each page's HAR in dir, returning their paths.
func recordHARs(t *testing.T, dir string, urls []string) []string {
	t.Helper()
	browser := apptest.StartBrowser(t)
	pages := make([]*apptest.Page, len(urls))
	for i, u := range urls {
		pages[i] = browser.Record(u)
	}
	var paths []string
	for i, p := range pages {
		if text, err := p.WaitText("root", 90*time.Second); err != nil || text != "done" {
			t.Fatalf("%s: the page said %q (%v)", urls[i], text, err)
		}
		har, err := p.HAR(30 * time.Second)
		if err != nil {
			t.Fatalf("%s: %v", urls[i], err)
		}
		path := filepath.Join(dir, fmt.Sprintf("context%d.har", i))
		if err := os.WriteFile(path, har, 0o600); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, path)
	}
	return paths
}

// metricRE is a line of the Prometheus text format: a name, labels, a
// value.
var metricRE = regexp.MustCompile(`^([a-z_]+)(?:\{(.*)\})? (\S+)$`)

// demoMetrics scrapes the demo backend's /metrics and returns each
// counter's sum, by its name alone and by its name with each of its
// labels (name{label="value"}).
func demoMetrics(t *testing.T, base string) map[string]float64 {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, base+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sums := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		m := metricRE.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		v, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			t.Fatalf("metrics: %q: %v", sc.Text(), err)
		}
		sums[m[1]] += v
		for label := range strings.SplitSeq(m[2], ",") {
			if label != "" {
				sums[m[1]+"{"+label+"}"] += v
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return sums
}

// traceFigures are what a trace holds: sessions, exchanges, WebSocket
// connections, and data frames the clients sent and received.
type traceFigures struct {
	sessions, exchanges, sockets, sent, received int
}

// traceCounts counts what sessions hold.
func traceCounts(sessions []*traces.Session) traceFigures {
	f := traceFigures{sessions: len(sessions)}
	for _, s := range sessions {
		f.exchanges += len(s.Exchanges)
		for _, ex := range s.Exchanges {
			if ex.WebSocket == nil {
				continue
			}
			f.sockets++
			for _, fr := range ex.WebSocket.Frames {
				if fr.Opcode != traces.OpText && fr.Opcode != traces.OpBinary {
					continue
				}
				if fr.FromClient {
					f.sent++
				} else {
					f.received++
				}
			}
		}
	}
	return f
}

// TestImportChromiumAndPacketsOfDjangoAdmin: four contexts of a headless
// Chromium visit a Django-style admin directly (log in, add, change and
// delete posts, log out), recording HARs, while tcpdump records the same
// visits on loopback (again when the kernel dropped packets). The HARs
// and the packet capture are each imported: each trace has a session per
// context, with one login each, and every request the admin counted.
// Each replays as 12 users with a users file: every user logs in, no
// request fails, and the admin refuses nothing (its own counts).
func TestImportChromiumAndPacketsOfDjangoAdmin(t *testing.T) {
	requireTcpdump(t)
	const contexts, users = 4, 12
	dir := t.TempDir()
	pcap := filepath.Join(dir, "admin.pcap")
	var app *apptest.DjangoAdmin
	var hars []string
	for attempt := 1; ; attempt++ {
		app = apptest.NewDjangoAdmin(t)
		stop := startTcpdump(t, port(app.URL), pcap)
		var urls []string
		for i := range contexts {
			urls = append(urls, fmt.Sprintf("%s/admin/?u=user%d", app.URL, i))
		}
		hars = recordHARs(t, dir, urls)
		dropped := stop()
		if dropped == "" {
			break
		}
		if attempt == 3 {
			t.Fatalf("the kernel dropped packets in each of 3 recordings: %s", dropped)
		}
		t.Logf("recording %d: the kernel dropped packets (%s): again", attempt, dropped)
	}
	requests := int(app.Counts.Get("requests"))
	if n := app.Counts.Get("sessions"); n != contexts {
		t.Fatalf("the admin counted %d logins of %d contexts: %s", n, contexts, app.Counts.String())
	}
	usersFile := filepath.Join(dir, "users.csv")
	if err := os.WriteFile(usersFile, []byte("username,password\nu{{user.index}},pw-u{{user.index}}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		files []string
	}{{"HAR", hars}, {"pcap", []string{pcap, "--port", port(app.URL)}}} {
		t.Run(tc.name, func(t *testing.T) {
			trace := filepath.Join(dir, tc.name+".thrv")
			code, stdout, errOut := thrive(t, append(append([]string{"import"}, tc.files...), "--out", trace, "--keep-secrets")...)
			if code != exitOK {
				t.Fatalf("import: exit %d\n%s\n%s", code, stdout, errOut)
			}
			sessions := tracetest.ReadFile(t, trace)
			checkAdminVisits(t, sessions, contexts, requests)
			app.Counts.Reset()
			code, stdout, errOut = thrive(t, "replay", trace, "--target", app.URL, "--users", fmt.Sprint(users), "--users-file", usersFile,
				"--run-time", "4s", "--scale-time", "-q")
			if code != exitOK || !strings.Contains(stdout, "failures 0 (0.00%)") || strings.Contains(stdout, "requests 0,") {
				t.Errorf("replaying the %s trace as %d users: exit %d\n%s\n%s", tc.name, users, code, stdout, errOut)
			}
			checkAdminReplay(t, app, users)
		})
	}
}

// port returns the port of a URL of the form http://host:port.
func port(base string) string { return base[strings.LastIndex(base, ":")+1:] }

// checkAdminVisits holds the sessions of a trace to the admin's visits: a
// session per context, each with one login and one logout, and requests
// exchanges in all, each answered. (The admin's pages move on once loaded:
// a navigation that cut off a request would leave it in a HAR unanswered,
// with no word of whether the server saw it.)
func checkAdminVisits(t *testing.T, sessions []*traces.Session, contexts, requests int) {
	t.Helper()
	exchanges := 0
	for _, s := range sessions {
		logins, logouts := 0, 0
		for _, ex := range s.Exchanges {
			exchanges++
			if ex.Status == 0 {
				t.Errorf("session %s: unanswered %s %s (%s)", s.ID, ex.Method, ex.URL, ex.Error)
			}
			switch {
			case ex.Method == http.MethodPost && strings.Contains(ex.URL, "/admin/login/"):
				logins++
			case ex.Method == http.MethodPost && strings.Contains(ex.URL, "/admin/logout/"):
				logouts++
			}
		}
		if logins != 1 || logouts != 1 {
			t.Errorf("session %s: %d logins, %d logouts in %d exchanges", s.ID, logins, logouts, len(s.Exchanges))
		}
	}
	if len(sessions) != contexts || exchanges != requests {
		t.Errorf("%d sessions, %d exchanges; %d contexts, the admin counted %d requests", len(sessions), exchanges, contexts, requests)
	}
}

// checkAdminReplay checks the admin's counts of a replay as users users:
// each logged in (u0, u1, ...), and nothing refused.
func checkAdminReplay(t *testing.T, app *apptest.DjangoAdmin, users int) {
	t.Helper()
	who := app.Users()
	for i := range users {
		if !slices.Contains(who, fmt.Sprintf("u%d", i)) {
			t.Errorf("u%d never logged in; the admin saw %v", i, who)
			break
		}
	}
	for _, refusal := range []string{"403", "login refused", "404 post", "405"} {
		if app.Counts.Get(refusal) > 0 {
			t.Errorf("the admin counted %s", app.Counts.String())
			break
		}
	}
}
