package replay_test

import (
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/thrive-loadtest/thrive/internal/apptest"
	"github.com/thrive-loadtest/thrive/replay"
	"github.com/thrive-loadtest/thrive/traces"
)

// These tests make apps refuse in the forms they refuse in (a form shown
// again, a redirect to the login page, a subscription rejected or a
// socket disconnected inside a 101) and hold thrive's failures to the
// refusals the app counted from its own side: none missed, none invented.
// Every third replayed user has a wrong password, so that its visit is
// refused at its login and at whatever it does after.

// wrongThird is a users file in which every third user's password is
// wrong.
func wrongThird(t *testing.T, column, value string) *replay.Users {
	t.Helper()
	good := value + ",pw-u{{user.index}}"
	u, err := replay.LoadUsers(strings.NewReader(column + ",password\n" + good + "\n" + good + "\n" + value + ",wrong-password\n"))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// refusalsCounted replays visits as users users with every third
// password wrong, and holds thrive's failures to the refusals the app
// counted: the sum of the counts named refusals, less the redirects to
// the login page that the recording had too (a visit that begins logged
// out is sent there once), which the app counts as loginRedirects.
func refusalsCounted(t *testing.T, a appVisits, visits []*traces.Session, users int, loginRedirects string) {
	t.Helper()
	// The visits end before their logout, as most visits do: a logout
	// without a login is sent to the login page as the recorded one was,
	// the same answer, though the app counts it a refusal.
	for _, s := range visits {
		for i := len(s.Exchanges) - 1; i > 0; i-- {
			if ex := &s.Exchanges[i]; ex.Method == "POST" && (strings.Contains(ex.URL, "logout") || strings.Contains(string(ex.ReqBody.Data), "_method=delete")) {
				s.Exchanges = s.Exchanges[:i]
				break
			}
		}
	}
	a.counts.Reset()
	longest := 4 * time.Second
	for _, s := range visits {
		longest = max(longest, 2*s.End())
	}
	// The endpoints whose recorded answer was a redirect to the login page.
	toLogin := map[string]bool{}
	for _, s := range visits {
		for _, ex := range s.Exchanges {
			for _, h := range ex.RespHeader {
				if ex.Status/100 == 3 && strings.EqualFold(h.Name, "Location") && (strings.Contains(h.Value, "/session/new") || strings.Contains(strings.ToLower(h.Value), "/login") || strings.Contains(h.Value, "/log_in")) {
					toLogin[traces.Template(ex.Method, ex.URL)] = true
				}
			}
		}
	}
	_, sink := run(t, a.url, visits, users, longest, replay.WithUsers(wrongThird(t, a.column, a.value)))
	asRecorded := 0
	failed := map[string]int{}
	total := 0
	for _, s := range sink.samples {
		if s.Failed() {
			failed[s.Endpoint+": "+string(s.Err)+" "+strconv.Itoa(s.Status)]++
			total++
		} else if toLogin[s.Endpoint] && s.Status == 302 {
			// Both apps send to the login page with a 302, and after a
			// logout with a 303 or a page.
			asRecorded++
		}
	}
	var refused int64
	for _, r := range a.refusals {
		refused += a.counts.Get(r)
	}
	if a.counts.Get(loginRedirects) < int64(asRecorded) {
		t.Errorf("%d redirects to the login page as recorded, the app counted %d", asRecorded, a.counts.Get(loginRedirects))
	}
	refused -= int64(asRecorded)
	if refused == 0 {
		t.Fatalf("the app refused nothing: %s", a.counts.String())
	}
	t.Logf("thrive counted %d failures, the app %d refusals: %v", total, refused, failed)
	if testing.Verbose() {
		all := map[string]int{}
		for _, s := range sink.samples {
			all[s.Endpoint+" "+strconv.Itoa(s.Status)+" "+string(s.Err)]++
		}
		t.Logf("all: %v", all)
	}
	if int64(total) != refused {
		t.Errorf("thrive counted %d failures, the app %d refusals (%d redirects to the login page as recorded): %s", total, refused, asRecorded, a.counts.String())
		for _, k := range slices.Sorted(maps.Keys(failed)) {
			t.Logf("%5d %s", failed[k], k)
		}
		logVisits(t, visits)
	}
}

// logVisits logs what each recorded visit holds, for a failure that came
// of one recording: its requests, and the frames its client sent.
func logVisits(t *testing.T, visits []*traces.Session) {
	t.Helper()
	for _, s := range visits {
		t.Logf("visit %s (%s):", s.ID, s.Evidence)
		for _, ex := range s.Exchanges {
			t.Logf("  %8v %s %s %d", ex.Offset.Round(time.Millisecond), ex.Method, ex.URL, ex.Status)
			if ex.WebSocket == nil {
				continue
			}
			for _, f := range ex.WebSocket.Frames {
				if f.FromClient {
					t.Logf("  %8v   > %.200s", f.Offset.Round(time.Millisecond), f.Payload.Data)
				}
			}
		}
	}
}

// checkOf checks sessions against target with users, and returns the
// report.
func checkOf(t *testing.T, target string, sessions []*traces.Session, users *replay.Users) *replay.CheckReport {
	t.Helper()
	lib := replay.FromSessions(sessions, replay.ForCheck())
	e, err := replay.New(target, lib, replay.WithUsers(users))
	if err != nil {
		t.Fatal(err)
	}
	which, err := lib.CheckSessions(0, nil)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := e.Check(t.Context(), which, 0)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// TestCheckNamesTheCause: --check on a Django admin visit says, for each
// way it is made to fail, what failed and why: a wrong password is a
// login refused with the users file's values (not a value to correlate),
// and the pages after it failed because it did; a session cut after its
// login began without the cookie the login set. As recorded, it finds
// nothing.
func TestCheckNamesTheCause(t *testing.T) {
	app := apptest.NewDjangoAdmin(t)
	sessions, _ := apptest.Record(t, app.URL, func(base string) { apptest.DjangoAdminClient(t, base, "user0") })
	if len(sessions) != 1 {
		t.Fatalf("recorded %d sessions", len(sessions))
	}
	users := func(password string) *replay.Users {
		u, err := replay.LoadUsers(strings.NewReader("username,password\nu{{user.index}}," + password + "\n"))
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	show := func(rep *replay.CheckReport) string {
		var b strings.Builder
		for _, d := range rep.Divergences {
			b.WriteString(d.Endpoint + " [" + d.Kind + "] " + d.What + " | cause: " + d.Cause + " | after: " + d.After + "\n")
		}
		return b.String()
	}
	t.Run("as recorded", func(t *testing.T) {
		if rep := checkOf(t, app.URL, sessions, users("pw-u{{user.index}}")); len(rep.Divergences) > 0 {
			t.Errorf("divergences against the app as recorded:\n%s", show(rep))
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		rep := checkOf(t, app.URL, sessions, users("wrong"))
		text := show(rep)
		login := false
		for _, d := range rep.Divergences {
			switch {
			case strings.HasPrefix(d.Endpoint, "POST /admin/login/"):
				login = true
				if !strings.Contains(d.What, "form refused") || !strings.Contains(d.Cause, "users file's username, password") {
					t.Errorf("the login: %s | %s", d.What, d.Cause)
				}
			case d.Regression && d.After == "":
				t.Errorf("%s failed for a cause of its own: %s", d.Endpoint, d.Cause)
			}
			if strings.Contains(d.Fix, "correlation rule") {
				t.Errorf("%s: a rule suggested: %s", d.Endpoint, d.Fix)
			}
		}
		if !login {
			t.Errorf("no divergence at the login:\n%s", text)
		}
		t.Logf("\n%s", text)
	})
	t.Run("session cut after its login", func(t *testing.T) {
		s := *sessions[0]
		for i, ex := range s.Exchanges {
			if ex.Method == "POST" && strings.HasPrefix(ex.URL, "/admin/login/") {
				s.Exchanges = slices.Clone(s.Exchanges[i+1:])
				break
			}
		}
		base := s.Exchanges[0].Offset
		for i := range s.Exchanges {
			s.Exchanges[i].Offset -= base
		}
		rep := checkOf(t, app.URL, []*traces.Session{&s}, users("pw-u{{user.index}}"))
		text := show(rep)
		if len(rep.Divergences) == 0 || !strings.Contains(rep.Divergences[0].What, "redirect: login") ||
			!strings.Contains(rep.Divergences[0].Cause, "the session began in the middle of a visit") {
			t.Errorf("the cut session's first divergence does not name the cut:\n%s", text)
		}
		t.Logf("\n%s", text)
	})
}

// TestRefusals: apps in the conventions of seven frameworks, each refusing
// in its own forms, recorded by three Chromium contexts and replayed as
// 12 users (refusalsCounted): thrive's failures equal the refusals each
// app counted.
func TestRefusals(t *testing.T) {
	for _, tc := range []struct {
		name string
		app  func(t *testing.T) appVisits
	}{
		// The admin shows the login form again (200) where the recorded
		// login was a 302, and sends every page of a visit that did not
		// log in to its login page.
		{"Django admin", func(t *testing.T) appVisits {
			app := apptest.NewDjangoAdmin(t)
			return appVisits{url: app.URL, start: func(u string) string { return "/admin/?u=" + u }, counts: &app.Counts,
				each: map[string]int{"POST /admin/login/": 1, "POST /admin/logout/": 1}, column: "username", value: "u{{user.index}}",
				refusals: []string{"login refused", "login redirects", "403", "404 post"}}
		}},
		// A Rails app whose login answers 422, whose pages redirect to
		// it, and whose cable disconnects a connection without a user
		// ({"type":"disconnect"} inside the 101).
		{"Rails ActionCable", func(t *testing.T) appVisits {
			app := apptest.NewCable(t)
			return appVisits{url: app.URL, start: func(u string) string { return "/docs?u=" + u }, counts: &app.Counts,
				each: map[string]int{"POST /session": 2}, column: "email_address", value: "u{{user.index}}@example.test",
				refusals: []string{"login refused", "login redirects", "422 csrf", "404 foreign", "404 missing", "rejected subscriptions", "stale version",
					"cable unauthorized", "cable unknown subscription", "cable bad command", "invalid session cookie", "400 params"}}
		}},
		// Laravel sends a refused login back to its form with a 302 (the
		// recorded one went on to the dashboard); its API answers 401.
		{"Laravel", func(t *testing.T) appVisits {
			app := apptest.NewLaravel(t)
			return appVisits{url: app.URL, start: func(u string) string { return "/login?u=" + u }, counts: &app.Counts,
				each: map[string]int{"POST /login": 1, "POST /logout": 1}, column: "email", value: "u{{user.index}}@example.test",
				refusals: []string{"login refused", "login redirects", "419", "403", "401", "404", "405", "invalid"}}
		}},
		// ASP.NET Core Identity shows a refused login's page again with a
		// 200, and sends the pages of a visit not logged in to its login.
		{"ASP.NET Core", func(t *testing.T) appVisits {
			app := apptest.NewAspNet(t)
			return appVisits{url: app.URL, start: func(u string) string { return "/Todos?u=" + u }, counts: &app.Counts,
				each:   map[string]int{"POST /Identity/Account/Login": 1, "POST /Identity/Account/Logout": 1},
				column: "Input.Email", value: "u{{user.index}}@example.test",
				refusals: []string{"login refused", "login redirects", "antiforgery refused", "ticket refused", "concurrency refused", "404 foreign",
					"404 missing", "404 mismatch", "401 anonymous", "invalid"}}
		}},
		// Phoenix LiveView behind phx.gen.auth: a socket without a session
		// is refused at its join (phx_reply with status error).
		{"Phoenix LiveView", func(t *testing.T) appVisits {
			app := apptest.NewLiveView(t)
			return appVisits{url: app.URL, start: func(u string) string { return "/todos?u=" + u }, counts: &app.Counts,
				each: map[string]int{"POST /users/log_in": 1, "POST /users/log_out": 1}, column: "email", value: "u{{user.index}}@example.test",
				refusals: []string{"login refused", "login redirects", "csrf refused", "ws refused", "ws no session", "join refused", "foreign todo",
					"missing todo", "bad event", "unmatched topic", "bad message", "todo invalid", "logout without session", "404"}}
		}},
		// Express with express-session and Socket.IO: a connect refused
		// (44{…}), events refused in their acknowledgements.
		{"Express Socket.IO", func(t *testing.T) appVisits {
			app := apptest.NewSocketIO(t)
			return appVisits{url: app.URL, start: func(u string) string { return "/chat?u=" + u }, counts: &app.Counts,
				each: map[string]int{"POST /login": 1, "POST /logout": 1}, column: "username", value: "u{{user.index}}",
				refusals: apptest.SocketIORefusals}
		}},
		// Spring Boot with Spring Security and STOMP over WebSocket: a
		// refused login goes to /login?error, a STOMP frame refused is an
		// ERROR frame (not JSON) and the socket closes.
		{"Spring STOMP", func(t *testing.T) appVisits {
			app := apptest.NewSpringBoard(t)
			return appVisits{url: app.URL, start: func(u string) string { return "/boards?u=" + u }, counts: &app.Counts,
				each: map[string]int{"POST /login": 1, "POST /logout": 1, "POST /boards": 1}, column: "username", value: "u{{user.index}}",
				refusals: springRefusals}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := tc.app(t)
			visits, _ := recordVisits(t, a.url, 3, 0, a.start)
			checkVisitsOf(t, visits, 3, a.each)
			if t.Failed() {
				return
			}
			refusalsCounted(t, a, visits, 12, "login redirects")
			// --check, with the third user's password wrong, names the
			// cause: a login refused with the users file's values, and
			// what failed after it, after it.
			rep := checkOf(t, a.url, visits, wrongThird(t, a.column, a.value))
			named := false
			for _, d := range rep.Divergences {
				switch {
				case strings.Contains(d.Cause, "users file's"):
					named = true
				case d.Regression && d.After == "" && d.Kind != "skipped" && (d.Cause == "" || strings.HasPrefix(d.Cause, "the first difference")):
					t.Errorf("--check: %s [%s] %s: no cause but %q", d.Endpoint, d.Kind, d.What, d.Cause)
				}
			}
			if !named {
				t.Errorf("--check did not name the refused login: %+v", rep.Divergences)
			}
		})
	}
}
