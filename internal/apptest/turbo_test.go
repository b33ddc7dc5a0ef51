package apptest

import (
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// turboWant checks the counts of a whole visit by each of users; redirects
// is the number of anonymous requests sent to sign in.
func turboWant(t *testing.T, a *Turbo, redirects int64, users ...string) {
	t.Helper()
	n := int64(len(users))
	want := map[string]int64{"sessions": n, "login redirects": redirects, "boards created": 3 * n, "cards created": 3 * n,
		"cards updated": n, "cards deleted": n, "logouts": n, "login refused": 0, "422": 0, "400": 0, "404": 0}
	for name, w := range want {
		if got := a.Counts.Prefix(name); got != w {
			t.Errorf("count %q = %d, want %d (%s)", name, got, w, &a.Counts)
		}
	}
	if got := a.Users(); !slices.Equal(got, users) {
		t.Errorf("Users() = %q, want %q", got, users)
	}
}

func TestTurboClients(t *testing.T) {
	a := NewTurbo(t)
	TurboClient(t, a.URL, "alice")
	TurboClient(t, a.URL, "bob")
	turboWant(t, a, 2, "alice", "bob")
}

func TestTurboClientsAtOnce(t *testing.T) {
	a := NewTurbo(t)
	users := []string{"ann", "ben", "cat"}
	t.Run("visits", func(t *testing.T) {
		for _, u := range users {
			t.Run(u, func(t *testing.T) {
				t.Parallel()
				TurboClient(t, a.URL, u)
			})
		}
	})
	turboWant(t, a, 3, users...)
}

// TestTurboCookie checks the session cookie: Rails' encrypted format,
// written again with each answer that read the session, and reset by
// signing in.
func TestTurboCookie(t *testing.T) {
	a := NewTurbo(t)
	u := newTurboUser(t, a.URL)
	cookieRE := regexp.MustCompile(`^_kanban_session=([A-Za-z0-9%]+--[A-Za-z0-9%]+--[A-Za-z0-9%]+); path=/; HttpOnly; SameSite=Lax$`)
	read := func(what string, ans Answer) *turboSession {
		t.Helper()
		m := cookieRE.FindStringSubmatch(ans.Header.Get("Set-Cookie"))
		if m == nil || len(ans.Header.Values("Set-Cookie")) != 1 {
			t.Fatalf("%s: Set-Cookie %q", what, ans.Header.Values("Set-Cookie"))
		}
		s := a.open(m[1])
		if s == nil {
			t.Fatalf("%s: the cookie %q does not decrypt", what, m[1])
		}
		return s
	}
	first := u.do(http.MethodGet, "/session/new", "", http.StatusOK)
	second := u.do(http.MethodGet, "/session/new", "", http.StatusOK)
	s1, s2 := read("sign-in page", first), read("sign-in page again", second)
	if first.Header.Get("Set-Cookie") == second.Header.Get("Set-Cookie") || *s1 != *s2 || s1.CSRF == "" || s1.UserID != 0 {
		t.Errorf("sessions %+v and %+v: want the same session in two cookies", s1, s2)
	}
	u.page = string(second.Body)
	ans := u.do(http.MethodPost, "/session", url.Values{"email_address": {"zoe@example.test"}, "password": {"pw-zoe"},
		"authenticity_token": {u.token("post", "/session")}}.Encode(), http.StatusSeeOther, "Content-Type", "application/x-www-form-urlencoded")
	if s := read("sign-in", ans); s.UserID == 0 || s.SessionID == s1.SessionID || s.CSRF != "" {
		t.Errorf("signed in: session %+v, was %+v", s, s1)
	}
	if loc := ans.Header.Get("Location"); loc != a.URL+"/boards" {
		t.Errorf("signed in, sent to %q", loc)
	}
	if ans := u.do(http.MethodGet, "/nowhere", "", http.StatusNotFound); ans.Header.Get("Set-Cookie") != "" {
		t.Errorf("a 404 sets %q", ans.Header.Get("Set-Cookie"))
	}
}

func TestTurboRefusals(t *testing.T) {
	a := NewTurbo(t)
	alice, bob, anon := newTurboUser(t, a.URL), newTurboUser(t, a.URL), newTurboUser(t, a.URL)
	alice.get("/session/new", turboNavigate, "")
	alice.signIn("alice")
	board := alice.newBoard("Alice's")
	for _, title := range []string{"One", "Two"} {
		alice.submit("post", board+"/cards", url.Values{"card[title]": {title}}, http.StatusSeeOther)
	}
	cards := turboCardRE.FindAllStringSubmatch(alice.page, -1)
	card := board + "/cards/" + cards[0][1]
	boardPage := alice.where
	for _, name := range []string{"Two", "Three"} {
		alice.get("/boards", turboDrive, "")
		alice.newBoard(name)
	}
	alice.get("/boards", turboDrive, "")
	next := turboNextRE.FindStringSubmatch(alice.page)[1]
	alice.get(boardPage, turboDrive, "")
	editToken, deleteToken := alice.token("patch", card), alice.token("delete", card)
	meta := turboMetaRE.FindStringSubmatch(alice.page)[1]
	bob.get("/session/new", turboNavigate, "")
	bob.signIn("bob")
	bob.get("/boards", turboDrive, "")
	bobMeta := turboMetaRE.FindStringSubmatch(bob.page)[1]
	anon.get("/session/new", turboNavigate, "")

	form := func(kv ...string) string {
		v := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v.Encode()
	}
	ctype := []string{"Content-Type", "application/x-www-form-urlencoded"}
	cases := []struct {
		name       string
		who        *turboUser
		method     string
		path, body string
		header     []string
		status     int
		count, has string // the count that goes up by one; what the body or Location has
	}{
		{"edit token on the delete form", alice, "POST", card, form("_method", "delete", "authenticity_token", editToken), ctype, 422, "422 csrf", "InvalidAuthenticityToken"},
		{"delete token on the edit form", alice, "POST", card, form("_method", "patch", "authenticity_token", deleteToken, "card[title]", "x"), ctype, 422, "422 csrf", "InvalidAuthenticityToken"},
		{"edit token on another card", alice, "POST", board + "/cards/" + cards[1][1], form("_method", "patch", "authenticity_token", editToken, "card[title]", "x"), ctype, 422, "422 csrf", "Can&#39;t verify CSRF token"},
		{"alice's token used by bob", bob, "POST", "/boards", form("authenticity_token", meta, "board[name]", "x"), ctype, 422, "422 csrf", "InvalidAuthenticityToken"},
		{"no token", alice, "POST", "/boards", form("board[name]", "x"), ctype, 422, "422 csrf", "InvalidAuthenticityToken"},
		{"another origin", alice, "POST", card, form("_method", "delete", "authenticity_token", deleteToken), append([]string{"Origin", "http://evil.example"}, ctype...), 422, "422 csrf", "HTTP Origin header"},
		{"the meta token in X-CSRF-Token", alice, "POST", card, form("_method", "patch", "card[title]", "One, by script"), append([]string{"X-CSRF-Token", meta}, ctype...), 303, "cards updated", board + "-alice-s"},
		{"another user's board", bob, "GET", boardPage, "", nil, 404, "404 foreign", "doesn't exist"},
		{"another user's cards", bob, "GET", "/api" + board + "/cards", "", []string{"Accept", "application/json"}, 404, "404 foreign", `{"status":404,"error":"Not Found"}`},
		{"another user's card", bob, "POST", card, form("_method", "delete"), append([]string{"X-CSRF-Token", bobMeta}, ctype...), 404, "404 foreign", "doesn't exist"},
		{"another user's cursor", bob, "GET", next, "", nil, 400, "400 cursor", "Invalid cursor"},
		{"a forged cursor", alice, "GET", strings.Replace(next, "--", "--0", 1), "", nil, 400, "400 cursor", "Invalid cursor"},
		{"wrong password", anon, "POST", "/session", form("authenticity_token", anon.token("post", "/session"), "email_address", "eve@example.test", "password", "pw-bob"), ctype, 422, "login refused", "Try another email address or password."},
		{"anonymous board", anon, "GET", boardPage, "", nil, 302, "login redirects", a.URL + "/session/new"},
		{"blank title", alice, "POST", board + "/cards", form("authenticity_token", meta, "card[title]", " "), ctype, 422, "422 invalid", "Title can&#39;t be blank"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.who.tb = t
			before := a.Counts.Get(tc.count)
			ans := tc.who.do(tc.method, tc.path, tc.body, tc.status, tc.header...)
			if got := a.Counts.Get(tc.count); got != before+1 {
				t.Errorf("count %q went from %d to %d", tc.count, before, got)
			}
			if got := ans.Header.Get("Location") + string(ans.Body); !strings.Contains(got, tc.has) {
				t.Errorf("answer %.300q does not have %q", got, tc.has)
			}
			if raised := tc.status == 422 && tc.count == "422 csrf" || tc.status == 404; raised != (ans.Header.Get("Set-Cookie") == "") {
				t.Errorf("Set-Cookie %q", ans.Header.Get("Set-Cookie"))
			}
		})
	}
	alice.tb = t
	alice.get(boardPage, turboDrive, "")
	if got := len(alice.api); got != 2 || alice.api[0].Title != "One, by script" {
		t.Errorf("alice's cards: %v", alice.api)
	}
	// The delete form's own token still deletes.
	alice.submit("delete", card, nil, http.StatusSeeOther)
	if a.Counts.Get("cards deleted") != 1 || len(alice.api) != 1 {
		t.Errorf("delete with its own token: %v (%s)", alice.api, &a.Counts)
	}
}

func TestTurboParam(t *testing.T) {
	for name, want := range map[string]string{"Sprint planning": "14-sprint-planning", "  Q3: Roadmap & Goals! ": "14-q3-roadmap-goals",
		"A very long board name indeed": "14-a-very-long-board", "Abcdefghijklmnopqrstuvwxyz": "14-abcdefghijklmnopqrst", "!!!": "14"} {
		if got := turboParam(14, name); got != want {
			t.Errorf("to_param of %q = %q, want %q", name, got, want)
		}
	}
}

func TestTurboBrowser(t *testing.T) {
	b := StartBrowser(t) // skips without Chromium
	a := NewTurbo(t)
	users := []string{"alice", "bob"}
	var pages []*Page
	for _, u := range users { // two browser contexts at once
		pages = append(pages, b.Open(a.URL+"/session/new?u="+u))
	}
	for i, p := range pages {
		if text, err := p.WaitText("root", time.Minute); err != nil || text != "done" {
			t.Fatalf("%s: %q, %v (%s)", users[i], text, err, &a.Counts)
		}
	}
	turboWant(t, a, 0, users...)
}
