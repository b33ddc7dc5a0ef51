package apptest

import (
	"bytes"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// lvRefusals are the counts that go up only when something was refused.
var lvRefusals = []string{"login refused", "csrf refused", "ws refused", "ws no session", "join refused", "foreign todo", //nolint:gochecknoglobals // constant
	"missing todo", "bad event", "bad message", "unmatched topic", "todo invalid", "logout without session", "login while logged in", "404"}

// lvWant checks the counts of a whole visit by each of users.
func lvWant(t *testing.T, a *LiveView, users ...string) {
	t.Helper()
	n := int64(len(users))
	want := map[string]int64{"sessions": n, "login redirects": n, "joins": n, "todos created": 3 * n, "todos toggled": n, "todos deleted": n, "logouts": n}
	for _, name := range lvRefusals {
		want[name] = 0
	}
	for name, w := range want {
		if got := a.Counts.Get(name); got != w {
			t.Errorf("count %q = %d, want %d (%s)", name, got, w, &a.Counts)
		}
	}
	if got := a.Users(); !slices.Equal(got, users) {
		t.Errorf("Users() = %q, want %q", got, users)
	}
}

func TestLiveViewClients(t *testing.T) {
	a := NewLiveView(t)
	LiveViewClient(t, a.URL, "alice")
	LiveViewClient(t, a.URL, "bob")
	lvWant(t, a, "alice", "bob")
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.todos) != 4 || a.lastTodo != 6 {
		t.Errorf("todos %d, last id %d: want 4 left of 6", len(a.todos), a.lastTodo)
	}
}

func TestLiveViewClientsAtOnce(t *testing.T) {
	a := NewLiveView(t)
	users := []string{"ann", "ben", "cat"}
	t.Run("visits", func(t *testing.T) {
		for _, u := range users {
			t.Run(u, func(t *testing.T) {
				t.Parallel()
				LiveViewClient(t, a.URL, u)
			})
		}
	})
	lvWant(t, a, users...)
}

// TestLiveViewETF checks the external term format against what
// :erlang.term_to_binary gives on OTP 26.
func TestLiveViewETF(t *testing.T) {
	for _, tc := range []struct {
		name string
		term any
		want []byte
	}{
		{`%{"a" => "b"}`, map[any]any{"a": "b"}, []byte{131, 116, 0, 0, 0, 1, 109, 0, 0, 0, 1, 'a', 109, 0, 0, 0, 1, 'b'}},
		{"{6, nil}", lvTuple{int64(6), nil}, []byte{131, 104, 2, 97, 6, 119, 3, 'n', 'i', 'l'}},
		{"86400", int64(86400), []byte{131, 98, 0, 1, 81, 128}},
		{"-1", int64(-1), []byte{131, 98, 255, 255, 255, 255}},
		{"1_700_000_000_000", int64(1_700_000_000_000), []byte{131, 110, 6, 0, 0, 104, 229, 207, 139, 1}},
		{"[:current_user]", []any{lvAtom("current_user")}, append(append([]byte{131, 108, 0, 0, 0, 1, 119, 12}, "current_user"...), 106)},
		{"[]", []any{}, []byte{131, 106}},
		{"%{b: 1, a: 2}", map[any]any{lvAtom("b"): int64(1), lvAtom("a"): int64(2)}, []byte{131, 116, 0, 0, 0, 2, 119, 1, 'a', 97, 2, 119, 1, 'b', 97, 1}},
	} {
		got := lvETF(tc.term)
		if !bytes.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
		if back, err := lvUnETF(got); err != nil || !bytes.Equal(lvETF(back), got) {
			t.Errorf("%s: read back %#v, %v", tc.name, back, err)
		}
	}
	s := &lvSession{CSRF: lvCSRFSecret(), UserToken: string(lvRandom(32)), LiveSocketID: "users_sessions:x", ReturnTo: "/todos?u=a", Flash: map[string]string{"info": "hi"}}
	a := NewLiveView(t)
	if got := a.open(a.seal(s)); got == nil || got.CSRF != s.CSRF || got.UserToken != s.UserToken || got.ReturnTo != s.ReturnTo || got.Flash["info"] != "hi" {
		t.Errorf("session %+v read back as %+v", s, got)
	}
	for _, bad := range [][]byte{{131}, {131, 109, 0, 0, 0, 9, 'a'}, {131, 70, 0, 0, 0, 0, 0, 0, 0, 0}, {131, 108, 0, 0, 0, 1, 97, 1, 97, 2}, {130, 106}} {
		if v, err := lvUnETF(bad); err == nil {
			t.Errorf("%v read as %#v", bad, v)
		}
	}
}

// TestLiveViewCookie checks the session cookie and the tokens: Plug's
// signed format, written only when the session changed, and Plug's masked
// CSRF tokens and LiveView's signed tokens.
func TestLiveViewCookie(t *testing.T) {
	a := NewLiveView(t)
	u := newLVUser(t, a.URL)
	cookieRE := regexp.MustCompile(`^_app_key=(SFMyNTY\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}); path=/; HttpOnly; SameSite=Lax$`)
	read := func(what string, ans Answer) *lvSession {
		t.Helper()
		m := cookieRE.FindStringSubmatch(ans.Header.Get("Set-Cookie"))
		if m == nil || len(ans.Header.Values("Set-Cookie")) != 1 {
			t.Fatalf("%s: Set-Cookie %q", what, ans.Header.Values("Set-Cookie"))
		}
		s := a.open(m[1])
		if s == nil {
			t.Fatalf("%s: the cookie %q does not verify", what, m[1])
		}
		return s
	}
	ans := u.do(http.MethodGet, "/todos?u=zoe", "", http.StatusFound)
	if s := read("anonymous /todos", ans); s.ReturnTo != "/todos?u=zoe" || s.Flash["error"] != lvMustLogIn || s.CSRF != "" {
		t.Errorf("anonymous /todos: session %+v", s)
	}
	if loc := ans.Header.Get("Location"); loc != "/users/log_in" || !strings.Contains(string(ans.Body), "You are being <a href=\"/users/log_in\">redirected</a>") {
		t.Errorf("anonymous /todos: %q, %s", loc, ans.Body)
	}
	first := u.do(http.MethodGet, "/users/log_in", "", http.StatusOK)
	s := read("log-in page", first)
	if len(s.CSRF) != 24 || s.Flash != nil || s.ReturnTo == "" {
		t.Errorf("log-in page: session %+v", s)
	}
	meta := lvMetaRE.FindStringSubmatch(string(first.Body))
	if form := lvFormRE.FindStringSubmatch(string(first.Body)); meta == nil || form == nil || meta[1] != form[1] || len(meta[1]) != 56 || !lvValidCSRF(s.CSRF, meta[1]) {
		t.Errorf("log-in page tokens: meta %q, form %q", meta, form)
	}
	second := u.do(http.MethodGet, "/users/log_in", "", http.StatusOK)
	if sc := second.Header.Get("Set-Cookie"); sc != "" {
		t.Errorf("an unchanged session was written again: %q", sc)
	}
	if again := lvMetaRE.FindStringSubmatch(string(second.Body)); again == nil || again[1] == meta[1] || !lvValidCSRF(s.CSRF, again[1]) {
		t.Errorf("the second answer's token %q: want another mask of the same token as %q", again, meta[1])
	}
	u.page = string(second.Body)
	ans = u.post("/users/log_in", url.Values{"_csrf_token": {lvFormRE.FindStringSubmatch(u.page)[1]}, "user[email]": {"zoe@example.test"},
		"user[password]": {"pw-zoe"}}, http.StatusFound)
	if s := read("log-in", ans); len(s.UserToken) != 32 || s.LiveSocketID != lvSessionPrefix+base64.URLEncoding.EncodeToString([]byte(s.UserToken)) ||
		s.CSRF != "" || s.ReturnTo != "" || s.Flash["info"] != "Welcome back!" {
		t.Errorf("logged in: session %+v", s)
	}
	u.get("/todos?u=zoe")
	p := u.livePage()
	data, ok := a.unviewToken(p.session)
	if !ok || data[lvAtom("id")] != p.id || data[lvAtom("view")] != lvAtom(lvViewModule) || data[lvAtom("live_session_name")] != lvAtom(lvLiveSession) {
		t.Errorf("data-phx-session %#v", data)
	}
	static, ok := a.unviewToken(p.static)
	if flash, _ := static[lvAtom("flash")].(map[any]any); !ok || static[lvAtom("id")] != p.id || flash["info"] != "Welcome back!" {
		t.Errorf("data-phx-static %#v", static)
	}
	if _, ok := a.unviewToken(strings.Replace(p.session, ".", ".A", 1)); ok {
		t.Error("a changed token verifies")
	}
	if ans := u.do(http.MethodGet, "/nowhere", "", http.StatusNotFound); ans.Header.Get("Set-Cookie") != "" || string(ans.Body) != "Not Found" {
		t.Errorf("a 404: %q, %s", ans.Header.Get("Set-Cookie"), ans.Body)
	}
}

// lvAlice is a user logged in with a view of her own joined, for the
// refusal tests.
type lvAlice struct {
	u     *lvUser
	page  lvPage
	s     *lvSock
	url   string
	login string // the log-in form's token
}

func newLVAlice(t *testing.T, a *LiveView, name string) *lvAlice {
	t.Helper()
	u := newLVUser(t, a.URL)
	start := "/todos?u=" + name
	u.do(http.MethodGet, start, "", http.StatusFound)
	u.get("/users/log_in")
	login := lvFormRE.FindStringSubmatch(u.page)[1]
	u.logIn(name, start)
	u.get(start)
	p := u.livePage()
	s := u.socket(p.csrf)
	if m := s.join(a.URL+start, p); m.Status != "ok" {
		t.Fatalf("%s joins: %+v", name, m)
	}
	return &lvAlice{u: u, page: p, s: s, url: a.URL + start, login: login}
}

func TestLiveViewRefusals(t *testing.T) {
	a := NewLiveView(t)
	alice, bob := newLVAlice(t, a, "alice"), newLVAlice(t, a, "bob")
	alice.s.event("form", "save", "todo%5Btitle%5D=Mine")
	aliceTodo := alice.s.rows()[0].id
	aliceCookie := alice.u.cookie()
	anon := newLVUser(t, a.URL)
	anon.get("/users/log_in")
	anonForm := lvFormRE.FindStringSubmatch(anon.page)[1]

	// one checks that f makes count go up by one, and nothing else refused.
	one := func(t *testing.T, count string, f func()) {
		t.Helper()
		before := map[string]int64{}
		for _, name := range append(slices.Clone(lvRefusals), count) {
			before[name] = a.Counts.Get(name)
		}
		f()
		for name, n := range before {
			want := n + map[bool]int64{true: 1}[name == count]
			if got := a.Counts.Get(name); got != want {
				t.Errorf("count %q went from %d to %d (%s)", name, n, got, &a.Counts)
			}
		}
	}
	t.Run("http", func(t *testing.T) {
		for _, tc := range []struct {
			name       string
			who        *lvUser
			method     string
			path, body string
			status     int
			count, has string
		}{
			{"log-in without a token", anon, "POST", "/users/log_in", "user%5Bemail%5D=eve%40example.test&user%5Bpassword%5D=pw-eve", 403, "csrf refused", "Forbidden"},
			{"another session's token", bob.u, "POST", "/users/log_out", "_method=delete&_csrf_token=" + url.QueryEscape(alice.page.logout), 403, "csrf refused", "Forbidden"},
			{"a wrong password", anon, "POST", "/users/log_in", url.Values{"_csrf_token": {anonForm}, "user[email]": {"eve@example.test"}, "user[password]": {"pw-bob"}}.Encode(), 200, "login refused", "Invalid email or password"},
			{"no user params", anon, "POST", "/users/log_in", url.Values{"_csrf_token": {anonForm}, "email": {"eve@example.test"}}.Encode(), 400, "login refused", "Bad Request"},
			{"anonymous todos", anon, "GET", "/todos", "", 302, "login redirects", "redirected"},
			{"log-out without a token", alice.u, "POST", "/users/log_out", "_method=delete", 403, "csrf refused", "Forbidden"},
			{"a replayed log-in form", alice.u, "POST", "/users/log_in", url.Values{"_csrf_token": {alice.login},
				"user[email]": {"alice@example.test"}, "user[password]": {"pw-alice"}}.Encode(), 403, "csrf refused", "Forbidden"},
			{"no such route", alice.u, "GET", "/todos/1/edit", "", 404, "404", "Not Found"},
			{"logging in again", alice.u, "POST", "/users/log_in", url.Values{"_csrf_token": {alice.page.csrf}, "user[email]": {"alice@example.test"},
				"user[password]": {"pw-alice"}}.Encode(), 302, "login while logged in", "redirected"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				tc.who.tb = t
				one(t, tc.count, func() {
					h := []string{"Content-Type", "application/x-www-form-urlencoded"}
					if ans := tc.who.do(tc.method, tc.path, tc.body, tc.status, h...); !strings.Contains(string(ans.Body), tc.has) {
						t.Errorf("answer %.300q does not have %q", ans.Body, tc.has)
					}
				})
			})
		}
		t.Run("a forged cookie", func(t *testing.T) {
			eve := newLVUser(t, a.URL)
			eve.setCookie(strings.Replace(aliceCookie, ".", ".A", 1))
			one(t, "login redirects", func() { eve.do(http.MethodGet, "/todos", "", http.StatusFound) })
		})
	})

	// join joins with a page's tokens on a socket.
	join := func(s *lvSock, topic string, p lvPage, pageURL string) lvMsg {
		return s.call(topic, "phx_join", map[string]any{"url": pageURL, "params": map[string]any{"_csrf_token": p.csrf, "_mounts": 0},
			"session": p.session, "static": p.static})
	}
	refused := func(t *testing.T, m lvMsg, key, want string) {
		t.Helper()
		if got, _ := m.Response[key].(string); m.Event != "phx_reply" || m.Status != "error" || got != want {
			t.Errorf("reply %+v, want %s %q", m, key, want)
		}
	}
	t.Run("socket", func(t *testing.T) {
		for _, u := range []*lvUser{alice.u, bob.u} {
			u.tb = t
		}
		alice.s.tb, bob.s.tb = t, t
		t.Run("a changed session token", func(t *testing.T) {
			s := alice.u.socket(alice.page.csrf)
			p := alice.page
			p.session = strings.Replace(p.session, ".", ".A", 1)
			one(t, "join refused", func() { refused(t, join(s, "lv:"+p.id, p, alice.url), "reason", "stale") })
		})
		t.Run("another user's render", func(t *testing.T) {
			s := bob.u.socket(bob.page.csrf)
			p := alice.page
			p.csrf = bob.page.csrf
			one(t, "join refused", func() { refused(t, join(s, "lv:"+p.id, p, alice.url), "reason", "unauthorized") })
		})
		t.Run("another topic", func(t *testing.T) {
			s := alice.u.socket(alice.page.csrf)
			one(t, "join refused", func() { refused(t, join(s, "lv:phx-F8abcdefghijklmn", alice.page, alice.url), "reason", "stale") })
		})
		t.Run("another render's static", func(t *testing.T) {
			alice.u.get("/todos")
			p := alice.u.livePage()
			p.static = alice.page.static
			s := alice.u.socket(p.csrf)
			one(t, "join refused", func() { refused(t, join(s, "lv:"+p.id, p, alice.url), "reason", "stale") })
		})
		t.Run("another route's url", func(t *testing.T) {
			s := alice.u.socket(alice.page.csrf)
			one(t, "join refused", func() {
				refused(t, join(s, "lv:"+alice.page.id, alice.page, a.URL+"/users/log_in"), "reason", "unauthorized")
			})
		})
		t.Run("a socket without the session's token", func(t *testing.T) {
			var s *lvSock
			one(t, "ws no session", func() { s = alice.u.socket(bob.page.csrf) })
			one(t, "join refused", func() { refused(t, join(s, "lv:"+alice.page.id, alice.page, alice.url), "reason", "stale") })
		})
		t.Run("vsn 1", func(t *testing.T) {
			one(t, "ws refused", func() {
				if _, status, err := alice.u.dial("_csrf_token="+url.QueryEscape(alice.page.csrf)+"&vsn=1.0.0", nil); err == nil || status != 403 {
					t.Errorf("vsn 1.0.0: %d, %v", status, err)
				}
			})
		})
		t.Run("another origin", func(t *testing.T) {
			one(t, "ws refused", func() {
				_, status, err := alice.u.dial("_csrf_token="+url.QueryEscape(alice.page.csrf)+"&vsn=2.0.0", http.Header{"Origin": {"http://evil.example"}})
				if err == nil || status != 403 {
					t.Errorf("another origin: %d, %v", status, err)
				}
			})
		})
		t.Run("another user's todo", func(t *testing.T) {
			one(t, "foreign todo", func() {
				if m := bob.s.event("click", "toggle", map[string]any{"id": aliceTodo}); m.Event != "phx_error" || m.Topic != bob.s.topic || *m.JoinRef != bob.s.joinRef {
					t.Errorf("toggle alice's todo: %+v", m)
				}
			})
			one(t, "unmatched topic", func() {
				m := bob.s.event("click", "delete", map[string]any{"id": aliceTodo})
				refused(t, m, "reason", "unmatched topic")
				if m.JoinRef != nil {
					t.Errorf("unmatched topic's join_ref %q", *m.JoinRef)
				}
			})
			if m := join(bob.s, bob.s.topic, bob.page, bob.url); m.Status != "ok" { // rejoins as the client would
				t.Errorf("rejoin: %+v", m)
			}
			id, _ := strconv.Atoi(aliceTodo)
			a.mu.Lock()
			if todo := a.todos[id]; todo == nil || todo.owner != a.users["alice"] || todo.done {
				t.Errorf("alice's todo is %+v", todo)
			}
			a.mu.Unlock()
		})
		t.Run("a missing todo", func(t *testing.T) {
			one(t, "missing todo", func() {
				if m := bob.s.event("click", "delete", map[string]any{"id": "9999"}); m.Event != "phx_error" {
					t.Errorf("delete 9999: %+v", m)
				}
			})
			join(bob.s, bob.s.topic, bob.page, bob.url)
		})
		t.Run("an unknown event", func(t *testing.T) {
			one(t, "bad event", func() {
				if m := bob.s.event("click", "archive", map[string]any{"id": aliceTodo}); m.Event != "phx_error" {
					t.Errorf("archive: %+v", m)
				}
			})
			join(bob.s, bob.s.topic, bob.page, bob.url)
		})
		t.Run("a blank title", func(t *testing.T) {
			one(t, "todo invalid", func() {
				m := bob.s.event("form", "save", "todo%5Btitle%5D=+")
				if d, _ := m.Response["diff"].(map[string]any); m.Status != "ok" || d["2"] != "can&#39;t be blank" {
					t.Errorf("a blank title: %+v", m)
				}
			})
		})
		t.Run("heartbeat", func(t *testing.T) {
			if m := bob.s.call("phoenix", "heartbeat", map[string]any{}); m.Status != "ok" || m.JoinRef != nil || m.Topic != "phoenix" {
				t.Errorf("heartbeat: %+v", m)
			}
		})
		t.Run("a frame that is not a message", func(t *testing.T) {
			s := bob.u.socket(bob.page.csrf)
			one(t, "bad message", func() {
				_ = s.ws.WriteMessage(websocket.TextMessage, []byte(`{"topic":"phoenix"}`))
				_ = s.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
				var ce *websocket.CloseError
				if _, _, err := s.ws.ReadMessage(); !errors.As(err, &ce) || ce.Code != websocket.CloseInternalServerErr {
					t.Errorf("after a bad frame: %v", err)
				}
			})
		})
		t.Run("after logging out", func(t *testing.T) {
			one(t, "csrf refused", func() {
				alice.u.post("/users/log_out", url.Values{"_method": {"delete"}, "_csrf_token": {"x"}}, http.StatusForbidden)
			})
			alice.u.post("/users/log_out", url.Values{"_method": {"delete"}, "_csrf_token": {alice.page.logout}}, http.StatusFound)
			_ = alice.s.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
			var ce *websocket.CloseError
			if _, _, err := alice.s.ws.ReadMessage(); !errors.As(err, &ce) || ce.Code != websocket.CloseNormalClosure {
				t.Errorf("alice's socket after she logged out: %v", err)
			}
			old := newLVUser(t, a.URL)
			old.setCookie(aliceCookie)
			one(t, "login redirects", func() { old.do(http.MethodGet, "/todos", "", http.StatusFound) })
			s := old.socket(alice.page.csrf)
			one(t, "join refused", func() {
				m := join(s, "lv:"+alice.page.id, alice.page, alice.url)
				if r, _ := m.Response["redirect"].(map[string]any); m.Status != "error" || r["to"] != "/users/log_in" {
					t.Errorf("join with a logged-out session: %+v", m)
				}
			})
		})
	})
	if got := a.Counts.Get("sessions"); got != 2 {
		t.Errorf("sessions %d", got)
	}
}

func TestLiveViewBrowser(t *testing.T) {
	b := StartBrowser(t) // skips without Chromium
	a := NewLiveView(t)
	users := []string{"alice", "bob"}
	var pages []*Page
	for _, u := range users { // two browser contexts at once
		pages = append(pages, b.Open(a.URL+"/todos?u="+u))
	}
	for i, p := range pages {
		if text, err := p.WaitText("root", time.Minute); err != nil || text != "done" {
			t.Fatalf("%s: %q, %v (%s)", users[i], text, err, &a.Counts)
		}
	}
	lvWant(t, a, users...)
}
