package replay_test

import (
	"slices"
	"testing"
	"time"

	"github.com/thrive-loadtest/thrive/internal/apptest"
)

// These tests replay apps in the conventions of frameworks this project's
// issues did not describe, each written by someone who never saw the
// replayer, from the framework's own source and documentation; each app
// counts from its own side what it refused. Seven Chromium contexts are
// recorded at once through the capture, then replayed as 30 users with a
// users file (visitThenReplay).

// TestActionCableInChromium: Rails documents edited live over ActionCable:
// the doc's id travels in a JSON string inside the subscription's JSON
// (identifier), the edits carry the version the last broadcast gave, the
// cable is authorized by the encrypted session cookie. Replayed: no
// rejected subscription, no stale version, no foreign doc.
func TestActionCableInChromium(t *testing.T) {
	t.Parallel() // a browser of its own, an app of its own: overlaps the others' waits
	app := apptest.NewCable(t)
	visitThenReplay(t, appVisits{url: app.URL, start: func(u string) string { return "/docs?u=" + u },
		each: map[string]int{"POST /session": 2}, column: "email_address", value: "u{{user.index}}@example.test",
		counts: &app.Counts, users: app.Users,
		refusals: []string{"login refused", "422 csrf", "404 foreign", "404 missing", "rejected subscriptions", "stale version",
			"cable unauthorized", "cable unknown subscription", "cable bad command", "invalid session cookie", "400 params"}})
}

// TestAspNetInChromium: ASP.NET Core Razor Pages with Identity: chunked
// identity cookies, antiforgery tokens bound to the cookie token and the
// user (one per render, in every form and in a script variable that a
// fetch sends as a header), named page handlers (?handler=Delete), a
// RowVersion concurrency token. Replayed: no antiforgery refusal, no stale
// RowVersion, no foreign todo.
func TestAspNetInChromium(t *testing.T) {
	t.Parallel() // a browser of its own, an app of its own: overlaps the others' waits
	app := apptest.NewAspNet(t)
	visitThenReplay(t, appVisits{url: app.URL, start: func(u string) string { return "/Todos?u=" + u },
		each:   map[string]int{"POST /Identity/Account/Login": 1, "POST /Identity/Account/Logout": 1},
		column: "Input.Email", value: "u{{user.index}}@example.test", counts: &app.Counts, users: app.Users,
		refusals: []string{"login refused", "antiforgery refused", "ticket refused", "concurrency refused", "404 foreign",
			"404 missing", "404 mismatch", "401 anonymous", "invalid"}})
}

// TestUploadsInChromium: Rails Active Storage direct uploads to an
// S3-style store (a JSON blob answered with a signed id and a presigned
// PUT URL, the form then naming the signed id), downloads through a
// redirect to a presigned GET, and a multipart CSV import. Replayed: no
// presigned URL refused, no signed id refused, no malformed multipart.
func TestUploadsInChromium(t *testing.T) {
	t.Parallel() // a browser of its own, an app of its own: overlaps the others' waits
	app := apptest.NewUploads(t)
	visitThenReplay(t, appVisits{url: app.URL, start: func(u string) string { return "/uploads?u=" + u },
		each: map[string]int{"POST /session": 2}, column: "email_address", value: "u{{user.index}}@example.test",
		counts: &app.Counts, users: app.Users,
		refusals: []string{"login refused", "422 csrf", "403 presigned", "400 bad digest", "404 no such key", "bad signed_id",
			"multipart refused", "400 params", "422 invalid", "404 foreign", "404 missing", "bad session cookie"}})
}

// TestJupyterInChromium: a Jupyter Server shared by a team: one directory
// listing for all (other users' notebooks shift every index), notebooks
// renamed to a name the user types, kernel channels opened with a session
// id the page makes (crypto.randomUUID) and messages whose ids the page
// makes too, the notebook deleted by the path the listing gives. Replayed
// with the typed name templated in the users file (a path column): no
// session id shared by two users, no rename collision, no other user's
// file touched.
func TestJupyterInChromium(t *testing.T) {
	t.Parallel() // a browser of its own, an app of its own: overlaps the others' waits
	app := apptest.NewJupyter(t)
	visitThenReplay(t, appVisits{url: app.URL, start: func(u string) string { return "/lab?u=" + u },
		each:   map[string]int{"POST /login": 1, "GET /logout": 1},
		column: "username,path", value: "u{{user.index}},report-u{{user.index}}.ipynb", counts: &app.Counts, users: app.Users,
		refusals: []string{"login refused", "403 xsrf", "403 anonymous", "409 rename", "foreign file", "404 file", "404 session",
			"404 kernel", "foreign kernel", "session_id clash", "session_id mismatch", "msg_id reused", "login cookie invalid", "bad message",
			"execution errors"}})
}

// TestSocketIOInChromium: an Express chat with express-session and a
// Socket.IO 4 server: the Engine.IO handshake gives its sid in a prefixed
// JSON body (0{"sid":…}), which the next polls and the WebSocket upgrade
// send in their queries; the room is a UUID a server event gives, message
// ids come in acknowledgements (43N[{"id":…}]) and the edits send them
// back. Replayed: no unknown sid, no foreign room or message.
func TestSocketIOInChromium(t *testing.T) {
	t.Parallel() // a browser of its own, an app of its own: overlaps the others' waits
	app := apptest.NewSocketIO(t)
	visitThenReplay(t, appVisits{url: app.URL, start: func(u string) string { return "/chat?u=" + u },
		each: map[string]int{"POST /login": 1, "POST /logout": 1}, column: "username", value: "u{{user.index}}",
		counts: &app.Counts, users: app.Users, refusals: slices.DeleteFunc(slices.Clone(apptest.SocketIORefusals), func(r string) bool { return r == "login redirects" })})
}

// TestLiveViewInChromium: a Phoenix LiveView behind phx.gen.auth: signed
// session tokens in the dead render's data-phx-session and data-phx-static
// attributes, sent back in the socket's phx_join (an array protocol,
// [join_ref, ref, topic, event, payload]); todo ids that come only in the
// join's and events' rendered diffs and that click events send back.
// Replayed: no join refused, no foreign or missing todo.
func TestLiveViewInChromium(t *testing.T) {
	t.Parallel() // a browser of its own, an app of its own: overlaps the others' waits
	app := apptest.NewLiveView(t)
	visitThenReplay(t, appVisits{url: app.URL, start: func(u string) string { return "/todos?u=" + u },
		each:   map[string]int{"POST /users/log_in": 1, "POST /users/log_out": 1},
		column: "email", value: "u{{user.index}}@example.test", counts: &app.Counts, users: app.Users,
		refusals: []string{"login refused", "csrf refused", "ws refused", "ws no session", "join refused", "foreign todo", "missing todo",
			"bad event", "unmatched topic", "bad message", "todo invalid", "logout without session", "404"}})
}

// TestJupyterSlowKernelInChromium: the Jupyter visits replayed against a
// kernel that takes 400 ms per execution, far slower than recorded: each
// reply is awaited until its idle status (a nested field), the page's
// save and kernel shutdown wait for the conversation they followed, so no
// execution is killed by its own user's shutdown, nothing is refused,
// and no reply ends by a silence.
func TestJupyterSlowKernelInChromium(t *testing.T) {
	t.Parallel() // a browser of its own, an app of its own: overlaps the others' waits
	app := apptest.NewJupyter(t)
	const contexts, users = 3, 10
	visits, _ := recordVisits(t, app.URL, contexts, 0, func(u string) string { return "/lab?u=" + u })
	checkVisitsOf(t, visits, contexts, map[string]int{"POST /login": 1, "GET /logout": 1})
	if t.Failed() {
		return
	}
	app.ExecDelay = 400 * time.Millisecond
	app.Counts.Reset()
	sink := replayVisits(t, app.URL, visits, users, "username,path", "u{{user.index}},report-u{{user.index}}.ipynb")
	if n := app.Counts.Get("executions killed"); n > 0 || app.Counts.Get("executions answered") == 0 {
		t.Errorf("the kernel counted %s", app.Counts.String())
	}
	for _, r := range []string{"login refused", "403 xsrf", "403 anonymous", "409 rename", "foreign file", "404 file", "404 session",
		"404 kernel", "foreign kernel", "session_id clash", "session_id mismatch", "msg_id reused", "bad message", "execution errors"} {
		if app.Counts.Get(r) > 0 {
			t.Errorf("the app counted %s", app.Counts.String())
			break
		}
	}
	failures(t, sink)
}
