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

// adminWant checks the counts of a whole visit by each of users.
func adminWant(t *testing.T, d *DjangoAdmin, users ...string) {
	t.Helper()
	n := int64(len(users))
	want := map[string]int64{"sessions": n, "login redirects": n, "posts created": 2 * n, "posts changed": n,
		"posts deleted": n, "messages shown": 4 * n, "logouts": n, "login refused": 0, "403": 0, "404": 0, "405": 0}
	for name, w := range want {
		if got := d.Counts.Get(name); got != w {
			t.Errorf("count %q = %d, want %d (%s)", name, got, w, &d.Counts)
		}
	}
	if got := d.Users(); !slices.Equal(got, users) {
		t.Errorf("Users() = %q, want %q", got, users)
	}
}

func TestDjangoAdminClients(t *testing.T) {
	d := NewDjangoAdmin(t)
	alice, bob := newAdminUser(t, d.URL), newAdminUser(t, d.URL)
	alice.visit("alice") // what DjangoAdminClient does, with the cookies it was given kept
	bob.visit("bob")
	adminWant(t, d, "alice", "bob")
	if got := d.Counts.Get("404 favicon"); got != 2 {
		t.Errorf("404 favicon = %d, want 2", got)
	}
	cookie := regexp.MustCompile(`^messages=[-_A-Za-z0-9.]+:[-_A-Za-z0-9]{43}; HttpOnly; Path=/; SameSite=Lax$`)
	for _, action := range []string{"add", "continue", "change", "delete"} {
		a, b := alice.set[action], bob.set[action]
		if !cookie.MatchString(a) || !cookie.MatchString(b) {
			t.Errorf("%s: messages cookies %q and %q", action, a, b)
		}
		// The same message makes the same cookie for anyone; the messages
		// of adding and changing link the post, whose id differs.
		if same := a == b; same != (action == "delete") {
			t.Errorf("%s: alice's cookie %q, bob's %q: same = %v", action, a, b, same)
		}
	}
	v := strings.TrimPrefix(strings.Split(alice.set["delete"], ";")[0], "messages=")
	if got := adminUnsign(v); len(got) != 1 || got[0] != (adminMessage{25, "The post “First post” was deleted successfully.", false}) {
		t.Errorf("delete message = %+v", got)
	}
	if adminUnsign(v[:len(v)-1]+"A") != nil {
		t.Error("a messages cookie with a bad signature was read")
	}
}

func TestDjangoAdminClientsAtOnce(t *testing.T) {
	d := NewDjangoAdmin(t)
	users := []string{"ann", "ben", "cat"}
	t.Run("visits", func(t *testing.T) {
		for _, u := range users {
			t.Run(u, func(t *testing.T) {
				t.Parallel()
				DjangoAdminClient(t, d.URL, u)
			})
		}
	})
	adminWant(t, d, users...)
}

// TestDjangoAdminCookies checks the Set-Cookie lines against Django's.
func TestDjangoAdminCookies(t *testing.T) {
	d := NewDjangoAdmin(t)
	a := newAdminUser(t, d.URL)
	raw := func(method, path string, form url.Values) Answer {
		if form == nil {
			return Do(t, a.c, method, d.URL+path, "")
		}
		form.Set("csrfmiddlewaretoken", a.token)
		return Do(t, a.c, method, d.URL+path, form.Encode(), "Content-Type", "application/x-www-form-urlencoded")
	}
	date := `\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT`
	csrfRE := regexp.MustCompile(`^csrftoken=([A-Za-z0-9]{32}); expires=` + date + `; Max-Age=31449600; Path=/; SameSite=Lax$`)
	sessionRE := regexp.MustCompile(`^sessionid=[a-z0-9]{32}; expires=` + date + `; HttpOnly; Max-Age=1209600; Path=/; SameSite=Lax$`)
	setCookies := func(ans Answer) map[string]string {
		m := map[string]string{}
		for _, v := range ans.Header.Values("Set-Cookie") {
			m[v[:strings.IndexByte(v, '=')]] = v
		}
		return m
	}
	var secrets, tokens []string
	for range 2 { // each render masks the secret afresh, and sends the cookie again
		ans := raw(http.MethodGet, "/admin/login/", nil)
		set := setCookies(ans)
		m := csrfRE.FindStringSubmatch(set["csrftoken"])
		tok := a.tokenRE.FindStringSubmatch(string(ans.Body))
		if m == nil || tok == nil || len(set) != 1 {
			t.Fatalf("login page: Set-Cookie %q, token %q", set, tok)
		}
		a.token = tok[1]
		secrets, tokens = append(secrets, m[1]), append(tokens, tok[1])
		if got := adminUnmask(tok[1]); got != m[1] {
			t.Errorf("token %s unmasks to %s, not the cookie's %s", tok[1], got, m[1])
		}
	}
	if secrets[0] != secrets[1] || tokens[0] == tokens[1] {
		t.Errorf("secrets %q, tokens %q: want one secret, two tokens", secrets, tokens)
	}
	ans := raw(http.MethodPost, "/admin/login/?next=/admin/blog/post/", url.Values{"username": {"zoe"}, "password": {"pw-zoe"}, "next": {"/admin/blog/post/"}})
	set := setCookies(ans)
	if m := csrfRE.FindStringSubmatch(set["csrftoken"]); ans.Status != http.StatusFound || ans.Header.Get("Location") != adminList ||
		m == nil || m[1] == secrets[0] || !sessionRE.MatchString(set["sessionid"]) {
		t.Fatalf("login: %d to %q, Set-Cookie %q: want 302 to the changelist, a new csrftoken and a sessionid", ans.Status, ans.Header.Get("Location"), set)
	}
	a.do(http.MethodGet, adminAdd, nil, http.StatusOK)
	ans = raw(http.MethodPost, adminAdd, url.Values{"title": {"Hi"}, "body": {"There."}})
	if set = setCookies(ans); !strings.HasPrefix(set["messages"], "messages=") || set["sessionid"] != "" {
		t.Errorf("add: Set-Cookie %q", set)
	}
	deleted := `=""; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/; SameSite=Lax`
	if set = setCookies(raw(http.MethodGet, adminList, nil)); set["messages"] != "messages"+deleted {
		t.Errorf("the page showing the message: Set-Cookie %q", set)
	}
	if set = setCookies(raw(http.MethodGet, adminList, nil)); set["messages"] != "" {
		t.Errorf("the next page: Set-Cookie %q", set)
	}
	ans = raw(http.MethodPost, "/admin/logout/", url.Values{})
	if set = setCookies(ans); ans.Status != http.StatusOK || set["sessionid"] != "sessionid"+deleted {
		t.Errorf("logout: %d, Set-Cookie %q", ans.Status, set)
	}
}

func TestDjangoAdminRefusals(t *testing.T) {
	d := NewDjangoAdmin(t)
	alice, bob, anon := newAdminUser(t, d.URL), newAdminUser(t, d.URL), newAdminUser(t, d.URL)
	alice.login("/admin/login/", "alice")
	alice.do(http.MethodGet, adminAdd, nil, http.StatusOK)
	post, _ := alice.save(adminAdd, "Alice's", "_continue", "add")
	bob.login("/admin/login/", "bob")
	bob.do(http.MethodGet, adminAdd, nil, http.StatusOK)
	anon.do(http.MethodGet, "/admin/login/", nil, http.StatusOK)
	form := func(kv ...string) url.Values {
		v := url.Values{"title": {"Bob's"}, "body": {"Mine now."}}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}
	cases := []struct {
		name       string
		who        *adminUser
		method     string
		path       string
		form       url.Values
		header     []string
		status     int
		count, has string // the count that goes up by one; what the body or Location has
	}{
		{"another user's token", bob, http.MethodPost, adminAdd, form("csrfmiddlewaretoken", alice.token), nil, 403, "403 csrf", "CSRF token from POST incorrect."},
		{"no token", bob, http.MethodPost, adminAdd, form("csrfmiddlewaretoken", ""), nil, 403, "403 csrf", "CSRF token missing."},
		{"short token", bob, http.MethodPost, adminAdd, form("csrfmiddlewaretoken", "abc"), nil, 403, "403 csrf", "CSRF token from POST has incorrect length."},
		{"another origin", bob, http.MethodPost, adminAdd, form(), []string{"Origin", "http://evil.example"}, 403, "403 csrf", "Origin checking failed"},
		{"another user's post", bob, http.MethodPost, post, form(), nil, 404, "404 post", "Not Found"},
		{"another user's delete", bob, http.MethodPost, strings.Replace(post, "change", "delete", 1), form("post", "yes"), nil, 404, "404 post", "Not Found"},
		{"anonymous post", anon, http.MethodPost, adminAdd, form(), nil, 302, "login redirects", "/admin/login/?next=/admin/blog/post/add/"},
		{"wrong password", anon, http.MethodPost, "/admin/login/", url.Values{"username": {"eve"}, "password": {"pw-bob"}}, nil, 200, "login refused", `class="errornote"`},
		{"logout by GET", bob, http.MethodGet, "/admin/logout/", nil, nil, 405, "405", ""},
		{"favicon", bob, http.MethodGet, "/favicon.ico", nil, nil, 404, "404 favicon", "Not Found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.who.tb = t
			before := d.Counts.Get(tc.count)
			loc, body := tc.who.do(tc.method, tc.path, tc.form, tc.status, tc.header...)
			if got := d.Counts.Get(tc.count); got != before+1 {
				t.Errorf("count %q went from %d to %d", tc.count, before, got)
			}
			if !strings.Contains(loc+body, tc.has) {
				t.Errorf("answer %q %.300q does not have %q", loc, body, tc.has)
			}
		})
	}
	if got := d.Counts.Get("403"); got != 4 {
		t.Errorf("403 = %d, want 4", got)
	}
	alice.tb = t
	if _, page := alice.do(http.MethodGet, post, nil, http.StatusOK); !strings.Contains(page, `value="Alice&#x27;s"`) {
		t.Errorf("alice's post changed: %.500s", page)
	}
}

func TestDjangoAdminBrowser(t *testing.T) {
	b := StartBrowser(t) // skips without Chromium
	d := NewDjangoAdmin(t)
	users := []string{"alice", "bob"}
	var pages []*Page
	for _, u := range users { // two browser contexts at once
		pages = append(pages, b.Open(d.URL+"/admin/?u="+u))
	}
	for i, p := range pages {
		if text, err := p.WaitText("root", time.Minute); err != nil || text != "done" {
			t.Fatalf("%s: %q, %v (%s)", users[i], text, err, &d.Counts)
		}
	}
	adminWant(t, d, users...)
}
