package replay_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/thrive-loadtest/thrive/internal/apptest"
	"github.com/thrive-loadtest/thrive/replay"
	"github.com/thrive-loadtest/thrive/report"
	"github.com/thrive-loadtest/thrive/traces"
)

// usersFile makes a users file of one templated row: every user logs in as
// u<index> with the password the apps accept for it.
func usersFile(t *testing.T) *replay.Users { return usersFileOf(t, "username") }

// usersFileOf is usersFile with the user name in a column of that name.
func usersFileOf(t *testing.T, name string) *replay.Users {
	t.Helper()
	u, err := replay.LoadUsers(strings.NewReader(name + ",password\nu{{user.index}},pw-u{{user.index}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// failures fails t for each sample that failed, at most a few.
func failures(t *testing.T, sink *collect) {
	t.Helper()
	n := 0
	skipped := map[string]int{}
	silent := map[string]int{}
	for _, s := range sink.samples {
		if s.Silent {
			silent[s.Endpoint]++
		}
		if s.Kind == report.Skipped {
			skipped[s.Endpoint+": "+string(s.Err)]++
		}
		if s.Failed() {
			if n < 5 {
				t.Errorf("%s %s: status %d, error %q", kind(s.Kind), s.Endpoint, s.Status, s.Err)
			}
			n++
		}
	}
	if n > 0 {
		t.Errorf("%d of %d requests failed", n, len(sink.samples))
	}
	// A request is skipped when a value it needs did not come: here,
	// where nothing failed, that is a value correlation lost.
	for why, k := range skipped {
		t.Errorf("%d skipped: %s", k, why)
	}
	// A reply the recording saw end ends with a frame of its last one's
	// shape, not after a silence.
	for ep, k := range silent {
		t.Errorf("%s: %d replies ended by a silence", ep, k)
	}
}

// TestDjangoStyleApp records three browser-like users of an app with a
// CSRF cookie, a form login, imports that make projects with small
// auto-increment ids and a missing favicon, with the capture's default
// redaction, and replays them as 50 users with a users file: the app counts
// a session per user, no 403, and no project read that is not the
// reader's; the favicon's 404s are as recorded.
func TestDjangoStyleApp(t *testing.T) {
	app := apptest.NewDjango(t)
	sessions, _ := apptest.Record(t, app.URL, func(base string) {
		for _, u := range []string{"alice", "bob", "carol"} {
			apptest.DjangoClient(t, base, u)
		}
	})
	if len(sessions) != 3 {
		t.Fatalf("recorded %d sessions, want 3", len(sessions))
	}
	app.Counts.Reset()
	const users = 50
	_, sink := run(t, app.URL, sessions, users, 2*time.Second, replay.WithUsers(usersFile(t)))
	c := &app.Counts
	if c.Get("sessions") < users || c.Get("403") > 0 || c.Get("404") > 0 || c.Get("project reads") < 2*users {
		t.Errorf("the app counted %s", c.String())
	}
	if c.Get("404 favicon") < users {
		t.Errorf("the app served %d favicons", c.Get("404 favicon"))
	}
	failures(t, sink)
	asRecorded := 0
	for _, s := range sink.samples {
		if s.AsRecorded() {
			asRecorded++
		}
	}
	if int64(asRecorded) != c.Get("404 favicon") {
		t.Errorf("%d answers as recorded, the app served %d missing favicons", asRecorded, c.Get("404 favicon"))
	}
}

// recordAtOnce records n clients of target at once through the capture,
// client i as user "user<i>", and checks that the trace holds a session
// for each.
func recordAtOnce(t *testing.T, target string, n int, client func(base, user string)) []*traces.Session {
	t.Helper()
	sessions, _ := apptest.Record(t, target, func(base string) {
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { client(base, fmt.Sprintf("user%d", i)) })
		}
		wg.Wait()
	})
	if len(sessions) != n {
		for _, s := range sessions {
			t.Logf("%s (%s): %v", s.ID, s.Client, endpointsOf(s))
		}
		t.Fatalf("recorded %d sessions of %d clients", len(sessions), n)
	}
	return sessions
}

// endpointsOf lists a session's requests as "METHOD path" without query.
func endpointsOf(s *traces.Session) []string {
	var out []string
	for _, ex := range s.Exchanges {
		p, _, _ := strings.Cut(ex.URL, "?")
		out = append(out, ex.Method+" "+p)
	}
	return out
}

// TestSinglePageApp records seven browser contexts at once using a
// cookie-less single-page app (a JSON login answering a bearer token,
// cursor-paged lists, a WebSocket opened with a one-time ticket): the trace
// holds one session per context, each with its page load, login, pages and
// socket. Replayed as 50 users with a users file, the app counts a login
// per user, and no 401, no foreign cursor and no refused ticket.
func TestSinglePageApp(t *testing.T) {
	app := apptest.NewSPA(t)
	const contexts = 7
	sessions := recordAtOnce(t, app.URL, contexts, func(base, user string) { apptest.SPAClient(t, base, user) })
	want := "GET / GET /app.js POST /api/login GET /api/items GET /api/items POST /api/ws-ticket GET /ws"
	for _, s := range sessions {
		if got := strings.Join(endpointsOf(s), " "); got != want {
			t.Errorf("session %s (%s): %s", s.ID, s.Client, got)
		}
		if k := traces.KeyKind(s.Client); k != "token" {
			t.Errorf("session %s keyed by %s (%s), want its token", s.ID, k, s.Client)
		}
	}
	replaySPA(t, app, sessions)
}

// recordBrowsers records n browser contexts of one headless Chromium, open
// at once, each loading target's page as user<i> through the capture and
// running its script until the page's #root says done.
func recordBrowsers(t *testing.T, target string, n int, done string) []*traces.Session {
	t.Helper()
	browser := apptest.StartBrowser(t)
	sessions, _ := apptest.Record(t, target, func(base string) {
		pages := make([]*apptest.Page, n)
		for i := range pages {
			pages[i] = browser.Open(fmt.Sprintf("%s/?u=user%d", base, i))
		}
		for i, p := range pages {
			if text, err := p.WaitText("root", 30*time.Second); err != nil || text != done {
				t.Errorf("browser context %d: the page said %q (%v)", i, text, err)
			}
		}
	})
	return sessions
}

// replaySPA replays sessions of app as 50 users with a users file: the app
// counts a login per user, and no 401, foreign cursor or refused ticket.
func replaySPA(t *testing.T, app *apptest.SPA, sessions []*traces.Session) {
	t.Helper()
	app.Counts.Reset()
	const users = 50
	_, sink := run(t, app.URL, sessions, users, 2*time.Second, replay.WithUsers(usersFile(t)))
	c := &app.Counts
	if c.Get("sessions") < users || c.Get("400") > 0 || c.Get("401") > 0 || c.Get("403") > 0 || c.Get("ws messages") < 2*users {
		t.Errorf("the app counted %s", c.String())
	}
	failures(t, sink)
}

// TestExpressStyleApp records browsers of an app with a session cookie of
// its own name (sid), access tokens that live two seconds and refresh tokens
// that rotate on every use, with the capture's default redaction (which
// replaces every token with a placeholder): one session per browser, and
// 50 replayed users make a session each, renew their own tokens and never
// present an expired or used one, counted by the app.
func TestExpressStyleApp(t *testing.T) {
	// Tokens live two seconds, renewed at half-life: a replayed user late
	// by less than a second still presents a live one. (With one second,
	// a user half a second late under -race on a loaded CI machine did
	// not: 4 of 1,036 reads expired.)
	const life = 2 * time.Second
	app := apptest.NewExpress(t, life)
	const browsers = 3
	sessions := recordAtOnce(t, app.URL, browsers, func(base, user string) {
		apptest.ExpressClient(t, base, user, life, 50*time.Millisecond, 3*time.Second)
	})
	for _, s := range sessions {
		if !strings.HasPrefix(s.Client, "cookie:sid=") {
			t.Errorf("session %s keyed by %s, want its sid cookie", s.ID, s.Client)
		}
	}
	refreshes := app.Counts.Get("refreshes")
	app.Counts.Reset()
	const users = 50
	_, sink := run(t, app.URL, sessions, users, 3*time.Second, replay.WithUsers(usersFile(t)))
	c := &app.Counts
	if c.Get("sessions") < users || c.Prefix("401") > 0 || c.Get("403") > 0 || c.Get("refreshes") < refreshes/browsers*users/2 {
		t.Errorf("the app counted %s", c.String())
	}
	failures(t, sink)
}

// TestRailsStyleApp records browsers of an app with a cookie-store session
// of its own name whose value changes at login and with each flash, an
// authenticity token in a meta tag and a hidden field, and a create
// answered by a 302 to /projects/<small id>: one session per browser, and
// 50 replayed users log in, create and view their own projects with no
// 422, 403 or 404, counted by the app.
func TestRailsStyleApp(t *testing.T) {
	app := apptest.NewRails(t)
	const browsers = 3
	sessions := recordAtOnce(t, app.URL, browsers, func(base, user string) { apptest.RailsClient(t, base, user) })
	app.Counts.Reset()
	const users = 50
	e, sink := run(t, app.URL, sessions, users, 1500*time.Millisecond, replay.WithUsers(usersFileOf(t, "user[name]")))
	c := &app.Counts
	if c.Get("sessions") < users || c.Get("422") > 0 || c.Get("403") > 0 || c.Get("404") > 0 || c.Get("views") < 2*users {
		t.Errorf("the app counted %s; correlations %+v", c.String(), e.Correlations())
	}
	failures(t, sink)
}

// TestSinglePageAppInChromium records three real browser contexts (headless
// Chromium over the DevTools protocol, contexts open at once) running the single-page app's
// own script through the capture: each logs in, pages, takes a ticket and
// talks on the socket. The trace holds one session per browser, keyed by
// its token, with the WebSocket in it; replayed as 50 users, the app counts
// a login per user and no 401, foreign cursor or refused ticket.
func TestSinglePageAppInChromium(t *testing.T) {
	app := apptest.NewSPA(t)
	const contexts = 3
	sessions := recordBrowsers(t, app.URL, contexts, "done 200")
	for _, s := range sessions {
		t.Logf("%s (%s): %v", s.ID, s.Client, endpointsOf(s))
	}
	if len(sessions) != contexts {
		t.Fatalf("recorded %d sessions of %d contexts", len(sessions), contexts)
	}
	for _, s := range sessions {
		eps := strings.Join(endpointsOf(s), " ")
		if traces.KeyKind(s.Client) != "token" || !strings.Contains(eps, "POST /api/login") || !strings.Contains(eps, "GET /ws") {
			t.Errorf("session %s (%s): %s", s.ID, s.Client, eps)
		}
	}
	replaySPA(t, app, sessions)
}

// TestGraphQLShop records three users of a GraphQL shop whose answers are
// gzip-compressed (connect.sid and a double-submit XSRF header, small ids
// for cart items and orders, a JSON-RPC call, a long-polling feed with a
// cursor) with the default redaction: no token the logins answered inside
// a gzip body is left in the trace; 30 replayed users cause no GraphQL or
// JSON-RPC error, no 400 and no 403 (the shop's counts), and the requests
// are named by operation. Made to fail every third checkout, the shop's
// errors are exactly thrive's failures.
func TestGraphQLShop(t *testing.T) {
	shop := apptest.NewShop(t)
	sessions := recordAtOnce(t, shop.URL, 3, func(base, user string) { apptest.ShopClient(t, base, user) })
	if shop.Counts.Get("gzip") == 0 {
		t.Fatalf("nothing was compressed: %s", shop.Counts.String())
	}
	for _, s := range sessions {
		for i := range s.Exchanges {
			for _, f := range []func() ([]byte, bool){s.Exchanges[i].RequestContent, s.Exchanges[i].ResponseContent} {
				body, _ := f()
				for _, tok := range shop.Tokens() {
					if strings.Contains(string(body), tok) {
						t.Errorf("session %s keeps the token %s in %s %s", s.ID, tok, s.Exchanges[i].Method, s.Exchanges[i].URL)
					}
				}
			}
		}
	}
	names := map[string]bool{}
	for _, r := range replay.FromSessions(sessions).Rules() {
		names[r.Source] = true
	}
	for _, want := range []string{"POST /graphql AddToCart $.data.addToCart.cartItem.id", "POST /graphql Checkout $.data.checkout.order.id", "GET /api/feed $.cursor"} {
		if !names[want] {
			t.Errorf("no correlation %q among %v", want, names)
		}
	}

	for _, tc := range []struct {
		name string
		fail int
	}{{"as recorded", 0}, {"every third checkout fails", 3}} {
		t.Run(tc.name, func(t *testing.T) {
			shop.Counts.Reset()
			shop.FailCheckout = tc.fail
			const users = 30
			// Long enough for every user to log in: the sessions keep
			// their recorded gaps, which a loaded machine stretches.
			runFor := 1500 * time.Millisecond
			for _, s := range sessions {
				runFor = max(runFor, 2*s.End()+time.Second)
			}
			_, sink := run(t, shop.URL, sessions, users, runFor, replay.WithUsers(usersFile(t)))
			c := &shop.Counts
			if c.Get("sessions") < users || c.Get("400") > 0 || c.Get("403") > 0 || c.Get("graphql Checkout") < users {
				t.Errorf("the shop counted %s in %v", c.String(), runFor)
			}
			var failed int64
			ops := map[string]int{}
			for _, s := range sink.samples {
				ops[s.Endpoint]++
				if s.Failed() {
					failed++
					if !strings.HasPrefix(string(s.Err), "graphql: ") && !strings.HasPrefix(string(s.Err), "json-rpc: ") {
						t.Errorf("%s failed: status %d %q", s.Endpoint, s.Status, s.Err)
					}
				}
			}
			if ops["POST /graphql Checkout"] == 0 || ops["POST /rpc getOrderStatus"] == 0 {
				t.Errorf("requests not named by operation: %v", ops)
			}
			for _, s := range sink.samples {
				if (s.Kind == report.LongPoll) != (s.Endpoint == "GET /api/feed") {
					t.Fatalf("%s %s: a long poll is the feed's, and only the feed's", kind(s.Kind), s.Endpoint)
				}
			}
			// A failed checkout makes the order that follows an error too
			// (no order to read, nor to ask the status of): thrive counts
			// every error the shop sent.
			if sent := c.Get("graphql errors") + c.Get("rpc errors"); failed != sent {
				t.Errorf("thrive counted %d failures, the shop sent %d errors (%s)", failed, sent, c.String())
			}
			if tc.fail == 0 && failed > 0 {
				t.Errorf("%d failures against the shop as recorded", failed)
			}
			if tc.fail > 0 && failed == 0 {
				t.Error("the shop failed checkouts and thrive saw none")
			}
		})
	}
}

// TestGraphQLShopInChromium records two real browser contexts (Chromium,
// which asks for br first) running the shop's own page script: the answers
// are brotli-compressed, every cursor and id is still found, and 30
// replayed users cause no error the recording did not have.
func TestGraphQLShopInChromium(t *testing.T) {
	shop := apptest.NewShop(t)
	const contexts = 2
	sessions := recordBrowsers(t, shop.URL, contexts, "done")
	if len(sessions) != contexts || shop.Counts.Get("br") == 0 {
		for _, s := range sessions {
			for _, ex := range s.Exchanges {
				t.Logf("session %s (%s): %s %s %d %v +%v", s.ID, s.Client, ex.Method, ex.URL, ex.Status, s.Start.Add(ex.Offset).Format("15:04:05.000"), ex.Duration)
			}
		}
		t.Fatalf("%d sessions of %d contexts; the shop counted %s", len(sessions), contexts, shop.Counts.String())
	}
	shop.Counts.Reset()
	const users = 30
	_, sink := run(t, shop.URL, sessions, users, 1500*time.Millisecond, replay.WithUsers(usersFile(t)))
	c := &shop.Counts
	if c.Get("sessions") < users || c.Get("graphql errors") > 0 || c.Get("rpc errors") > 0 || c.Get("400") > 0 || c.Get("403") > 0 {
		t.Errorf("the shop counted %s", c.String())
	}
	failures(t, sink)
}
