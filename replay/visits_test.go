package replay_test

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/thrive-loadtest/thrive/internal/apptest"
	"github.com/thrive-loadtest/thrive/replay"
	"github.com/thrive-loadtest/thrive/traces"
)

// These tests record real browsers (headless Chromium, one browser context
// per visitor, all from one address and User-Agent, as users behind one NAT
// are) through the capture, against apps in the styles of frameworks this
// project did not write, and hold the sessions the capture cut to the
// visits the browsers made: one session per context, with all its
// requests. Then they replay the trace as many users and ask the app who
// logged in and what it refused.

// visitor is a browser context's user: user<i>, whose visit starts at
// start(user).
type visitor func(user string) string

// recordVisits opens n browser contexts of one Chromium through a capture
// of target, context i at i×gap (0: all at once), each at start("user<i>"),
// and waits until every page's #root says "done". It returns the sessions
// and the strays.
func recordVisits(t *testing.T, target string, n int, gap time.Duration, start visitor) (visits, strays []*traces.Session) {
	t.Helper()
	browser := apptest.StartBrowser(t)
	sessions, _ := apptest.Record(t, target, func(base string) {
		pages := make([]*apptest.Page, n)
		t0 := time.Now()
		for i := range pages {
			time.Sleep(time.Until(t0.Add(time.Duration(i) * gap))) // the start pattern, not a synchronisation
			pages[i] = browser.Open(base + start(fmt.Sprintf("user%d", i)))
		}
		for i, p := range pages {
			if text, err := p.WaitText("root", 2*time.Minute); err != nil || text != "done" {
				// Where it got stuck: a page that navigates again and
				// again never lets the wait read it.
				var where string
				where2 := p.Eval(`location.href + " | " + document.title + " | " + (document.body ? document.body.innerText.slice(0, 300) : "")`, &where, 5*time.Second)
				t.Errorf("browser context %d: the page said %q (%v); it is at %s (%v)", i, text, err, where, where2)
			}
		}
	})
	for _, s := range sessions {
		if s.Strays {
			strays = append(strays, s)
		} else {
			visits = append(visits, s)
		}
	}
	return visits, strays
}

var userRE = regexp.MustCompile(`user(\d+)`)

// checkVisits holds the sessions to the n visits the browsers made: one
// session per context, whose requests all name that context's user (in
// its URLs and form bodies) and none other, with one login (a request
// matching login) and one logout, all of one profile (the visits were
// alike). It logs every session when it fails.
func checkVisits(t *testing.T, visits []*traces.Session, n int, login, logout string) {
	t.Helper()
	checkVisitsOf(t, visits, n, map[string]int{login: 1, logout: 1})
}

// checkVisitsOf is checkVisits with the requests each session must hold,
// and how many of each ("METHOD path").
func checkVisitsOf(t *testing.T, visits []*traces.Session, n int, each map[string]int) {
	t.Helper()
	bad := len(visits) != n
	if bad {
		t.Errorf("%d sessions of %d browser contexts", len(visits), n)
	}
	for _, s := range visits {
		if s.Profile != visits[0].Profile {
			t.Errorf("session %s is %q, %s is %q", s.ID, s.Profile, visits[0].ID, visits[0].Profile)
			bad = true
		}
	}
	seen := map[string]bool{}
	for _, s := range visits {
		users := map[string]bool{}
		held := map[string]int{}
		for _, ex := range s.Exchanges {
			text := ex.URL + " " + string(ex.ReqBody.Data)
			if u, err := url.QueryUnescape(text); err == nil {
				text = u
			}
			for _, m := range userRE.FindAllStringSubmatch(text, -1) {
				users[m[1]] = true
			}
			held[ex.Method+" "+strings.SplitN(ex.URL, "?", 2)[0]]++
		}
		ok := len(users) == 1
		for req, want := range each {
			ok = ok && held[req] == want
		}
		if !ok {
			t.Errorf("session %s (%s): users %v, requests %v, want %v", s.ID, s.Evidence, slices.Sorted(mapsKeys(users)), held, each)
			bad = true
		}
		for u := range users {
			if seen[u] {
				t.Errorf("user%s is in two sessions", u)
				bad = true
			}
			seen[u] = true
		}
	}
	if bad {
		for _, s := range visits {
			t.Logf("%s (%s, %s): %v", s.ID, s.Profile, s.Evidence, endpointsOf(s))
		}
	}
}

func mapsKeys(m map[string]bool) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// replayVisits replays the visits as users users with a users file whose
// column (the login form's field) is value with {{user.index}} in it, the
// password pw-u{{user.index}}, for twice the longest visit (at least 4 s),
// and returns what failed.
func replayVisits(t *testing.T, target string, visits []*traces.Session, users int, column, value string, opts ...replay.Option) *collect {
	t.Helper()
	// More columns may follow the column's name and value: ",path", ",report-u{{user.index}}.ipynb".
	head, row, _ := strings.Cut(column, ",")
	vals, more, _ := strings.Cut(value, ",")
	if row != "" {
		head, vals = head+",password,"+row, vals+",pw-u{{user.index}},"+more
	} else {
		head, vals = head+",password", vals+",pw-u{{user.index}}"
	}
	u, err := replay.LoadUsers(strings.NewReader(head + "\n" + vals + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	longest := 4 * time.Second
	for _, s := range visits {
		longest = max(longest, 2*s.End())
	}
	// A reply ends at a frame of its recorded last one's shape; the
	// silence that also ends one is set past what a loaded machine (two
	// cores, Chromium, 30 users, -race) may pause for, so that a reply
	// ended by a silence means its end frame never came.
	_, sink := run(t, target, visits, users, longest, append([]replay.Option{replay.WithUsers(u), replay.WithReplyIdle(5 * time.Second)}, opts...)...)
	return sink
}

// loggedIn checks that the app counted every one of users replayed users
// (u0, u1, ...) as logged in.
func loggedIn(t *testing.T, who []string, users int) {
	t.Helper()
	for i := range users {
		if !slices.Contains(who, fmt.Sprintf("u%d", i)) && !slices.Contains(who, fmt.Sprintf("u%d@example.test", i)) {
			t.Errorf("u%d never logged in; the app saw %d users: %v", i, len(who), who)
			return
		}
	}
}

// TestDjangoAdminInChromium: seven contexts at once, and seven staggered,
// each logging in to a Django-style admin (a CSRF cookie set by the login
// page, a messages cookie set by every change and consumed by the next
// page, posts changed and deleted through the links of the list, a logout
// that deletes the session cookie): one session per context. Replayed as
// 30 users, the admin counts 30 users logged in and refuses nothing: no
// CSRF failure, no redirect to the login page but the one each visit
// began with, no foreign post.
func TestDjangoAdminInChromium(t *testing.T) {
	t.Parallel() // a browser of its own, an app of its own: overlaps the others' waits
	for _, tc := range []struct {
		name string
		gap  time.Duration
	}{{"at once", 0}, {"staggered", 150 * time.Millisecond}} {
		t.Run(tc.name, func(t *testing.T) {
			app := apptest.NewDjangoAdmin(t)
			const contexts = 7
			visits, strays := recordVisits(t, app.URL, contexts, tc.gap, func(u string) string { return "/admin/?u=" + u })
			checkVisits(t, visits, contexts, "POST /admin/login/", "POST /admin/logout/")
			t.Logf("strays: %d sessions", len(strays))
			if t.Failed() {
				return
			}
			app.Counts.Reset()
			const users = 30
			sink := replayVisits(t, app.URL, visits, users, "username", "u{{user.index}}")
			c := &app.Counts
			loggedIn(t, app.Users(), users)
			// Each visit begins at /admin/ logged out, as recorded: one
			// redirect to the login page per visit begun, no more.
			if c.Get("403") > 0 || c.Get("login redirects") > c.Get("sessions")+users || c.Get("login refused") > 0 || c.Prefix("404 post") > 0 {
				t.Errorf("the admin counted %s", c.String())
			}
			failures(t, sink)
		})
	}
}

// TestVirtualUserSecondVisit: a virtual user plays a recorded visit that
// ends without a logout, again and again, each time as a fresh browser:
// its second visit loads the login page logged out and logs in as its
// first did (with cookies kept, the
// admin would answer the login page with a redirect and refuse the login
// form's stale token). Counted by the admin: as many logins as visits
// begun, and no refusal.
func TestVirtualUserSecondVisit(t *testing.T) {
	app := apptest.NewDjangoAdmin(t)
	sessions, _ := apptest.Record(t, app.URL, func(base string) { apptest.DjangoAdminClient(t, base, "user0") })
	if len(sessions) != 1 {
		t.Fatalf("recorded %d sessions of one visit", len(sessions))
	}
	// Most visitors leave without logging out: the visit ends before it.
	s := sessions[0]
	for i, ex := range s.Exchanges {
		if ex.Method == "POST" && strings.HasPrefix(ex.URL, "/admin/logout/") {
			s.Exchanges = s.Exchanges[:i]
			break
		}
	}
	app.Counts.Reset()
	const users = 3
	u, err := replay.LoadUsers(strings.NewReader("username,password\nu{{user.index}},pw-u{{user.index}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	// Long enough for three visits each.
	_, sink := run(t, app.URL, sessions, users, 3*sessions[0].End()+time.Second, replay.WithUsers(u))
	c := &app.Counts
	begun := 0
	for _, s := range sink.samples {
		if strings.HasPrefix(s.Endpoint, "POST /admin/login/") {
			begun++
		}
	}
	if begun < 2*users || c.Get("sessions") != int64(begun) || c.Get("403") > 0 || c.Get("login redirects") > int64(begun+users) || c.Get("login refused") > 0 {
		t.Errorf("%d logins sent; the admin counted %s", begun, c.String())
	}
	failures(t, sink)
}

// TestTornadoInChromium: seven contexts at once logging in to a
// Tornado/Jupyter-style server, whose login cookie is signed and quoted
// ("2|1:0|…") and whose API wants an _xsrf header: one session per
// context, no form of a login cookie left in the trace, and no cookie the
// trace holds gets past the server's login. Replayed as 30 users: 30
// logged in, no refusal.
func TestTornadoInChromium(t *testing.T) {
	t.Parallel() // a browser of its own, an app of its own: overlaps the others' waits
	app := apptest.NewTornado(t)
	const contexts = 7
	start := func(u string) string { return "/login?u=" + u + "&next=/tree" }
	t.Run("staggered", func(t *testing.T) {
		visits, _ := recordVisits(t, app.URL, contexts, 150*time.Millisecond, start)
		checkVisits(t, visits, contexts, "POST /login", "GET /logout")
	})
	visits, strays := recordVisits(t, app.URL, contexts, 0, start)
	checkVisits(t, visits, contexts, "POST /login", "GET /logout")
	t.Logf("strays: %d sessions", len(strays))
	for _, s := range visits {
		for _, ex := range s.Exchanges {
			for _, h := range append(slices.Clone(ex.ReqHeader), ex.RespHeader...) {
				if !strings.EqualFold(h.Name, "Cookie") && !strings.EqualFold(h.Name, "Set-Cookie") || !strings.Contains(h.Value, app.CookieName()) {
					continue
				}
				if strings.Contains(h.Value, "2|1:") {
					t.Errorf("session %s keeps a login cookie: %s: %s", s.ID, h.Name, h.Value)
				}
				if ex.Method == "GET" && strings.EqualFold(h.Name, "Cookie") {
					// What the trace holds must not log anyone in.
					a := apptest.Do(t, &http.Client{}, "GET", app.URL+"/api/contents?type=directory", "", "Cookie", h.Value)
					if a.Status != 403 {
						t.Errorf("the trace's cookie %q got %d from the API", h.Value, a.Status)
					}
				}
			}
		}
		if strings.Contains(s.Client, "2|1:") {
			t.Errorf("session %s is keyed by a login cookie: %s", s.ID, s.Client)
		}
	}
	if t.Failed() {
		return
	}
	app.Counts.Reset()
	const users = 30
	sink := replayVisits(t, app.URL, visits, users, "username", "u{{user.index}}")
	loggedIn(t, app.Users(), users)
	if c := &app.Counts; c.Get("403") > 0 || c.Get("login redirects") > 0 || c.Get("login refused") > 0 || c.Get("404 foreign") > 0 {
		t.Errorf("the server counted %s", c.String())
	}
	failures(t, sink)
}

// TestLaravelInChromium: seven contexts at once on a Laravel-style app
// whose cookies are encrypted afresh in every answer (so no value is ever
// sent twice), whose pages load fonts, images, style sheets and scripts on
// other connections, and whose project page has two forms (edit and
// delete, each with its own _method): one session per context, its
// sub-resources in it, none a profile of its own. Replayed as 30 users:
// 30 logged in, no 419, no 403.
func TestLaravelInChromium(t *testing.T) {
	t.Parallel() // a browser of its own, an app of its own: overlaps the others' waits
	app := apptest.NewLaravel(t)
	start := func(u string) string { return "/login?u=" + u }
	t.Run("staggered", func(t *testing.T) {
		visits, _ := recordVisits(t, app.URL, 7, 150*time.Millisecond, start)
		checkVisits(t, visits, 7, "POST /login", "POST /logout")
	})
	visitThenReplay(t, appVisits{url: app.URL, start: start, each: map[string]int{"POST /login": 1, "POST /logout": 1},
		column: "email", value: "u{{user.index}}@example.test", counts: &app.Counts, users: app.Users,
		refusals: []string{"419", "403", "login redirects", "login refused"}})
}

// appVisits is an app whose visits visitThenReplay records and replays:
// where a visit starts, the requests each must hold, the users file's
// column and value, and the app's counts that are refusals.
type appVisits struct {
	url      string
	start    visitor
	each     map[string]int
	column   string
	value    string
	counts   *apptest.Counts
	users    func() []string
	refusals []string
}

// visitThenReplay records seven browser contexts of a at once through the
// capture, checks one session per context (checkVisitsOf), and replays
// them as 30 users with a users file: every user logs in, the app counts
// none of its refusals, and no request fails.
func visitThenReplay(t *testing.T, a appVisits) {
	t.Helper()
	const contexts, users = 7, 30
	visits, strays := recordVisits(t, a.url, contexts, 0, a.start)
	checkVisitsOf(t, visits, contexts, a.each)
	for _, s := range strays {
		t.Logf("strays %s: %v", s.ID, endpointsOf(s))
	}
	if t.Failed() {
		return
	}
	a.counts.Reset()
	defer func() {
		if t.Failed() {
			for _, r := range replay.FromSessions(visits).Rules() {
				t.Logf("correlation: %d sessions, %s, %s, sent back by %v", r.Count, r.Source, r.Why, r.Targets)
			}
		}
	}()
	sink := replayVisits(t, a.url, visits, users, a.column, a.value)
	loggedIn(t, a.users(), users)
	for _, r := range a.refusals {
		if a.counts.Get(r) > 0 {
			t.Errorf("the app counted %s", a.counts.String())
			break
		}
	}
	failures(t, sink)
}

// TestTurboInChromium: a Rails app with Hotwire conventions (per-form
// CSRF tokens, an edit and a delete form per card, each with its own
// token and _method; boards created by a 303 to a slug whose id a script
// sends alone; a list paged by signed cursors in rel=next links), seven
// contexts at once: one session per context; 30 replayed users log in and
// the app refuses nothing: no wrong form token, no foreign board, no
// foreign cursor.
func TestTurboInChromium(t *testing.T) {
	t.Parallel() // a browser of its own, an app of its own: overlaps the others' waits
	app := apptest.NewTurbo(t)
	visitThenReplay(t, appVisits{url: app.URL, start: func(u string) string { return "/session/new?u=" + u },
		each: map[string]int{"POST /session": 2}, column: "email_address", value: "u{{user.index}}@example.test",
		counts: &app.Counts, users: app.Users, refusals: []string{"422 csrf", "404 foreign", "400 cursor", "login refused", "login redirects"}})
}

// TestFormsetInChromium: a Django admin whose change page edits and
// deletes tasks through an inline formset (each row's id in a hidden
// input) and whose task list deletes in bulk through checkboxes valued
// with ids, ids shared by all users so that theirs interleave; seven
// contexts at once: one session per context; 30 replayed users log in and
// no row or checkbox names another user's task.
func TestFormsetInChromium(t *testing.T) {
	t.Parallel() // a browser of its own, an app of its own: overlaps the others' waits
	app := apptest.NewFormset(t)
	visitThenReplay(t, appVisits{url: app.URL, start: func(u string) string { return "/admin/?u=" + u },
		each: map[string]int{"POST /admin/login/": 1, "POST /admin/logout/": 1}, column: "username", value: "u{{user.index}}",
		counts: &app.Counts, users: app.Users,
		refusals: []string{"formset invalid", "bulk refused", "foreign task touched", "403 csrf", "login refused"}})
}
