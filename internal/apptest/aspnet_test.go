package apptest

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// aspnetWant checks the counts of whole visits by each of users; redirects
// is the number of anonymous requests sent to log in.
func aspnetWant(t *testing.T, a *AspNet, users ...string) {
	t.Helper()
	n := int64(len(users))
	want := map[string]int64{"sessions": n, "login redirects": n, "logouts": n, "todos created": 2 * n, "todos saved": n,
		"todos toggled": n, "todos deleted": n, "login refused": 0, "antiforgery refused": 0, "ticket refused": 0,
		"concurrency refused": 0, "invalid": 0, "401": 0, "404": 0, "500": 0}
	for name, w := range want {
		if got := a.Counts.Prefix(name); got != w {
			t.Errorf("count %q = %d, want %d (%s)", name, got, w, &a.Counts)
		}
	}
	if got := a.Users(); !slices.Equal(got, users) {
		t.Errorf("Users() = %q, want %q", got, users)
	}
	if len(a.reasons) > 0 {
		t.Errorf("antiforgery refused: %q", a.reasons)
	}
}

func TestAspNetClients(t *testing.T) {
	a := NewAspNet(t)
	AspNetClient(t, a.URL, "alice")
	AspNetClient(t, a.URL, "bob")
	aspnetWant(t, a, "alice", "bob")
	if len(a.todos) != 2 || a.lastTodo != 4 {
		t.Errorf("todos left %d, last id %d", len(a.todos), a.lastTodo)
	}
}

func TestAspNetClientsAtOnce(t *testing.T) {
	a := NewAspNet(t)
	users := []string{"ann", "ben", "cat"}
	t.Run("visits", func(t *testing.T) {
		for _, u := range users {
			t.Run(u, func(t *testing.T) {
				t.Parallel()
				AspNetClient(t, a.URL, u)
			})
		}
	})
	aspnetWant(t, a, users...)
}

// aspnetCookies returns the Set-Cookie lines of an answer.
func aspnetCookies(ans Answer) []string { return ans.Header.Values("Set-Cookie") }

// TestAspNetCookies checks the cookies and tokens as ASP.NET Core writes
// them: the antiforgery cookie and per-render request tokens, the chunked
// identity cookie, TempData shown once, and logging out.
func TestAspNetCookies(t *testing.T) {
	a := NewAspNet(t)
	u := newAspNetBrowser(t, a.URL)
	afRE := regexp.MustCompile(`^(\.AspNetCore\.Antiforgery\.[A-Za-z0-9_-]{11})=(CfDJ8[A-Za-z0-9_-]{150,})$`)
	first := u.do(http.MethodGet, aspnetLoginPath+"?ReturnUrl=%2FTodos", "", http.StatusOK)
	sc := aspnetCookies(first)
	if len(sc) != 2 || !strings.HasSuffix(sc[1], "; path=/; samesite=strict; httponly") ||
		sc[0] != "Identity.External=; expires=Thu, 01 Jan 1970 00:00:00 GMT; path=/; samesite=lax; httponly" {
		t.Fatalf("login page Set-Cookie %q", sc)
	}
	m := afRE.FindStringSubmatch(strings.TrimSuffix(sc[1], "; path=/; samesite=strict; httponly"))
	if m == nil || m[1] != a.AntiforgeryCookie() {
		t.Fatalf("antiforgery cookie %q", sc[1])
	}
	for k, v := range map[string]string{"X-Frame-Options": "SAMEORIGIN", "Cache-Control": "no-cache, no-store", "Pragma": "no-cache",
		"Content-Type": "text/html; charset=utf-8", "Server": "Kestrel"} {
		if got := first.Header.Get(k); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
	u.page, u.where = string(first.Body), aspnetLoginPath+"?ReturnUrl=%2FTodos"
	anonToken := u.form("id", "account").values.Get(aspnetAFField)
	u.get(u.where)
	if tok := u.form("id", "account").values.Get(aspnetAFField); tok == anonToken || !strings.HasPrefix(tok, "CfDJ8") {
		t.Errorf("the same token twice, or not CfDJ8: %q", tok)
	}
	ct, ok := a.decodeToken(m[2])
	rt, ok2 := a.decodeToken(anonToken)
	if !ok || !ok2 || !ct.cookie || rt.cookie || string(ct.sec) != string(rt.sec) || rt.claimUID != nil || rt.username != "" {
		t.Errorf("tokens %+v %+v", ct, rt)
	}

	// Logging in: chunks-2, C1, C2, with an expires for Remember me.
	ans := u.do(http.MethodPost, u.where, url.Values{"Input.Email": {"zoe@example.test"}, "Input.Password": {"pw-zoe"}, "Input.RememberMe": {"true", "false"},
		aspnetAFField: {u.form("id", "account").values.Get(aspnetAFField)}}.Encode(), http.StatusFound, "Content-Type", "application/x-www-form-urlencoded")
	sc = aspnetCookies(ans)
	idRE := regexp.MustCompile(`^\.AspNetCore\.Identity\.Application(|C1|C2)=([A-Za-z0-9_-]+); expires=\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT; path=/; samesite=lax; httponly$`)
	if ans.Header.Get("Location") != "/Todos" || len(sc) != 3 {
		t.Fatalf("login: %q, %q", ans.Header.Get("Location"), sc)
	}
	for i, c := range sc {
		m := idRE.FindStringSubmatch(c)
		switch {
		case m == nil || m[1] != []string{"", "C1", "C2"}[i]:
			t.Errorf("identity cookie %d: %q", i, c)
		case i == 0 && m[2] != "chunks-2", i == 1 && !strings.HasPrefix(m[2], "CfDJ8"), len(c) > 4050:
			t.Errorf("identity cookie %d: %.100q (%d)", i, c, len(c))
		}
	}
	u.get("/Todos")
	tok := u.form("id", "logoutForm").values.Get(aspnetAFField)
	if rt, _ := a.decodeToken(tok); rt.claimUID == nil || string(rt.sec) != string(ct.sec) {
		t.Errorf("a logged-in token %+v", rt)
	}
	if c := aspnetCookies(Do(t, u.c, http.MethodGet, a.URL+"/Todos", "")); len(c) != 1 || !strings.HasPrefix(c[0], aspnetTempCookie+"=; expires=Thu, 01 Jan 1970") {
		t.Errorf("list Set-Cookie %q", c)
	}

	// TempData: set by the create, shown once, deleted.
	u.get("/Todos/Create")
	ans = u.do(http.MethodPost, "/Todos/Create", url.Values{"Todo.Title": {"Tea & <cake>"}, aspnetAFField: {u.mainForm().values.Get(aspnetAFField)}}.Encode(),
		http.StatusFound, "Content-Type", "application/x-www-form-urlencoded")
	if c := aspnetCookies(ans); len(c) != 1 || !regexp.MustCompile(`^\.AspNetCore\.Mvc\.CookieTempDataProvider=CfDJ8[A-Za-z0-9_-]+; path=/; samesite=lax; httponly$`).MatchString(c[0]) {
		t.Errorf("create Set-Cookie %q", c)
	}
	u.get("/Todos")
	if u.status() != "Todo 'Tea & <cake>' saved." || !strings.Contains(u.page, "Tea &amp; &lt;cake&gt;") {
		t.Errorf("status %q", u.status())
	}
	u.get("/Todos")
	if u.status() != "" {
		t.Errorf("status shown twice: %q", u.status())
	}

	// Logging out deletes the cookie and its chunks.
	ans = u.do(http.MethodPost, "/Identity/Account/Logout?returnUrl=%2F", url.Values{aspnetAFField: {u.form("id", "logoutForm").values.Get(aspnetAFField)}}.Encode(),
		http.StatusFound, "Content-Type", "application/x-www-form-urlencoded")
	want := []string{".AspNetCore.Identity.Application=", ".AspNetCore.Identity.ApplicationC1=", ".AspNetCore.Identity.ApplicationC2=", "Identity.External=", "Identity.TwoFactorUserId="}
	sc = aspnetCookies(ans)
	for i, c := range sc {
		if i >= len(want) || c != want[i]+"; expires=Thu, 01 Jan 1970 00:00:00 GMT; path=/; samesite=lax; httponly" {
			t.Errorf("logout Set-Cookie %d: %q", i, c)
		}
	}
	if len(sc) != len(want) || ans.Header.Get("Location") != "/" {
		t.Errorf("logout: %q, %q", ans.Header.Get("Location"), sc)
	}
	if loc := u.do(http.MethodGet, "/Todos", "", http.StatusFound).Header.Get("Location"); loc != a.URL+"/Identity/Account/Login?ReturnUrl=%2FTodos" {
		t.Errorf("after logout, sent to %q", loc)
	}
}

// aspnetFlip changes the character of s at i to another base64url one.
func aspnetFlip(s string, i int) string {
	c := byte('A')
	if s[i] == 'A' {
		c = 'B'
	}
	return s[:i] + string(c) + s[i+1:]
}

func TestAspNetRefusals(t *testing.T) {
	a := NewAspNet(t)
	alice, bob := newAspNetBrowser(t, a.URL), newAspNetBrowser(t, a.URL)
	alice.get(aspnetLoginPath)
	stale := alice.form("id", "account").values.Get(aspnetAFField) // made before login
	alice.login("alice", "pw-alice", http.StatusFound)
	for _, title := range []string{"One", "Two"} {
		alice.get("/Todos/Create")
		alice.submit(alice.mainForm(), url.Values{"Todo.Title": {title}}, http.StatusFound)
	}
	alice.get("/Todos")
	rows := alice.rows()
	one, two := rows[0].id, rows[1].id
	oldToken := alice.form("id", "logoutForm").values.Get(aspnetAFField)
	alice.get("/Todos/Edit/" + one)
	edit := alice.mainForm()
	alice.get("/Todos")
	script := aspnetConstRE.FindStringSubmatch(alice.page)[1]
	bob.get(aspnetLoginPath)
	bob.login("bob", "pw-bob", http.StatusFound)
	bob.get("/Todos")
	bobToken := bob.form("id", "logoutForm").values.Get(aspnetAFField)
	anon := newAspNetBrowser(t, a.URL)
	anon.get(aspnetLoginPath)
	anonToken := anon.form("id", "account").values.Get(aspnetAFField)

	var aliceCookie []string
	for _, c := range alice.jar.Cookies(&url.URL{Scheme: "http", Host: strings.TrimPrefix(a.URL, "http://")}) {
		aliceCookie = append(aliceCookie, c.String())
	}
	jarCookie := strings.Join(aliceCookie, "; ")
	noChunk := regexp.MustCompile(`\.AspNetCore\.Identity\.ApplicationC2=[^;]*(; )?`).ReplaceAllString(jarCookie, "")
	at := strings.Index(jarCookie, aspnetAppCookie+"C1=") + len(aspnetAppCookie+"C1=") + 40
	forged := aspnetFlip(jarCookie, at)
	stranger := newAspNetBrowser(t, a.URL)

	form := func(kv ...string) string {
		v := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Add(kv[i], kv[i+1])
		}
		return v.Encode()
	}
	ctype := []string{"Content-Type", "application/x-www-form-urlencoded"}
	cases := []struct {
		name       string
		who        *aspnetBrowser
		method     string
		path, body string
		header     []string
		status     int
		count, has string // the count that goes up by one; what the body or Location has
	}{
		{"a token made before login", alice, "POST", "/Todos/Create", form("Todo.Title", "x", aspnetAFField, stale), ctype, 400, "antiforgery refused", ""},
		{"bob's token with alice's cookies", alice, "POST", "/Todos/Create", form("Todo.Title", "x", aspnetAFField, bobToken), ctype, 400, "antiforgery refused", ""},
		{"no token", alice, "POST", "/Todos?id=" + one + "&handler=Delete", "", ctype, 400, "antiforgery refused", ""},
		{"a forged token", alice, "POST", "/Todos?handler=Toggle&id=" + two, "", []string{aspnetAFHeader, aspnetFlip(script, 60)}, 400, "antiforgery refused", ""},
		{"a wrong header before a right field", alice, "POST", "/Todos/Create", form("Todo.Title", "x", aspnetAFField, oldToken), append([]string{aspnetAFHeader, bobToken}, ctype...), 400, "antiforgery refused", ""},
		{"an anonymous token with no cookie", stranger, "POST", aspnetLoginPath, form("Input.Email", "x@example.test", "Input.Password", "pw-x", aspnetAFField, anonToken), ctype, 400, "antiforgery refused", ""},
		{"the cookie token as the request token", alice, "POST", "/Todos/Create", form("Todo.Title", "x", aspnetAFField,
			strings.TrimPrefix(regexp.MustCompile(`\.AspNetCore\.Antiforgery\.[^=]+=[^;]+`).FindString(jarCookie), a.AntiforgeryCookie()+"=")), ctype, 400, "antiforgery refused", ""},
		{"an older page's token of the same user", alice, "POST", "/Todos/Create", form("Todo.Title", "Three", aspnetAFField, oldToken), ctype, 302, "todos created", "/Todos"},
		{"bob edits alice's todo", bob, "GET", "/Todos/Edit/" + one, "", nil, 404, "404 foreign", ""},
		{"bob deletes alice's todo", bob, "POST", "/Todos?id=" + one + "&handler=Delete", form(aspnetAFField, bobToken), ctype, 404, "404 foreign", ""},
		{"bob toggles alice's todo", bob, "POST", "/Todos?handler=Toggle&id=" + two, "", []string{aspnetAFHeader, bobToken}, 404, "404 foreign", ""},
		{"a todo that never was", alice, "GET", "/Todos/Edit/999", "", nil, 404, "404 missing", ""},
		{"an edit route that is not an int", alice, "GET", "/Todos/Edit/x", "", nil, 404, "404 route", ""},
		{"another Todo.Id", alice, "POST", "/Todos/Edit/" + one, form("Todo.Id", two, "Todo.Title", "x", "Todo.RowVersion", edit.values.Get("Todo.RowVersion"), aspnetAFField, oldToken), ctype, 404, "404 mismatch", ""},
		{"the edit", alice, "POST", "/Todos/Edit/" + one, form("Todo.Id", one, "Todo.Title", "One, edited", "Todo.RowVersion", edit.values.Get("Todo.RowVersion"), "Todo.Done", "false", aspnetAFField, oldToken), ctype, 302, "todos saved", "/Todos"},
		{"the same RowVersion again", alice, "POST", "/Todos/Edit/" + one, form("Todo.Id", one, "Todo.Title", "One, again", "Todo.RowVersion", edit.values.Get("Todo.RowVersion"), aspnetAFField, oldToken), ctype, 409, "concurrency refused", "modified by another user"},
		{"a blank title", alice, "POST", "/Todos/Create", form("Todo.Title", " ", aspnetAFField, oldToken), ctype, 200, "invalid", "The Title field is required."},
		{"a wrong password", anon, "POST", aspnetLoginPath, form("Input.Email", "eve@example.test", "Input.Password", "pw-bob", "Input.RememberMe", "false", aspnetAFField, anonToken), ctype, 200, "login refused", "Invalid login attempt."},
		{"a ReturnUrl elsewhere", anon, "POST", aspnetLoginPath + "?ReturnUrl=http%3A%2F%2Fevil.example%2F", form("Input.Email", "eve@example.test", "Input.Password", "pw-eve", "Input.RememberMe", "false", aspnetAFField, anonToken), ctype, 500, "500 not local", ""},
		{"a forged identity cookie", stranger, "GET", "/Todos", "", []string{"Cookie", forged}, 302, "ticket refused", "/Identity/Account/Login?ReturnUrl=%2FTodos"},
		{"a missing chunk", stranger, "GET", "/Todos", "", []string{"Cookie", noChunk}, 302, "ticket refused", "/Identity/Account/Login?ReturnUrl=%2FTodos"},
		{"alice's whole cookie", stranger, "GET", "/Todos", "", []string{"Cookie", jarCookie}, 200, "", "One, edited"},
		{"an anonymous toggle", stranger, "POST", "/Todos?handler=Toggle&id=" + two, "", nil, 302, "login redirects", "ReturnUrl=%2FTodos%3Fhandler%3DToggle%26id%3D" + two},
		{"an anonymous XHR", stranger, "POST", "/Todos?handler=Toggle&id=" + two, "", []string{"X-Requested-With", "XMLHttpRequest"}, 401, "401 anonymous", "ReturnUrl="},
		{"a page that is not there", stranger, "GET", "/Todos/Delete/1", "", nil, 404, "404 route", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.who.tb = t
			before, reasons := a.Counts.Get(tc.count), len(a.reasons)
			ans := tc.who.do(tc.method, tc.path, tc.body, tc.status, tc.header...)
			if got := a.Counts.Get(tc.count); tc.count != "" && got != before+1 {
				t.Errorf("count %q went from %d to %d (%s)", tc.count, before, got, &a.Counts)
			}
			if body := ans.Header.Get("Location") + string(ans.Body); !strings.Contains(body, tc.has) || tc.status >= 400 && tc.status != 409 && len(ans.Body) != 0 {
				t.Errorf("answer %.300q does not have %q", body, tc.has)
			}
			if tc.count == "antiforgery refused" {
				t.Logf("refused: %s", a.reasons[reasons])
			}
		})
	}
	alice.tb = t
	alice.get("/Todos")
	if rows := alice.rows(); len(rows) != 3 || rows[0].title != "One, edited" || rows[1].done {
		t.Errorf("alice's todos: %v", rows)
	}
	if bob.tb = t; a.Counts.Get("todos deleted")+a.Counts.Get("todos toggled") != 0 {
		t.Errorf("refused changes were made: %s", &a.Counts)
	}
	// The toggle with the page's token still works.
	ans := alice.do(http.MethodPost, "/Todos?handler=Toggle&id="+two, "", http.StatusOK, aspnetAFHeader, script)
	var got struct {
		ID   int  `json:"id"`
		Done bool `json:"done"`
	}
	if json.Unmarshal(ans.Body, &got) != nil || !got.Done || ans.Header.Get("Content-Type") != "application/json; charset=utf-8" {
		t.Errorf("toggle: %s %q", ans.Body, ans.Header.Get("Content-Type"))
	}
}

func TestAspNetBrowser(t *testing.T) {
	b := StartBrowser(t) // skips without Chromium
	a := NewAspNet(t)
	users := []string{"alice", "bob"}
	var pages []*Page
	for _, u := range users { // two browser contexts at once
		pages = append(pages, b.Open(a.URL+"/Todos?u="+u))
	}
	for i, p := range pages {
		if text, err := p.WaitText("root", time.Minute); err != nil || text != "done" {
			t.Fatalf("%s: %q, %v (%s) %q", users[i], text, err, &a.Counts, a.reasons)
		}
	}
	aspnetWant(t, a, users...)
}
