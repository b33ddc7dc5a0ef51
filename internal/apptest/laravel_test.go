package apptest

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// laravelWant checks counts of app by name.
func laravelWant(t *testing.T, app *Laravel, want map[string]int64) {
	t.Helper()
	for name, n := range want {
		if got := app.Counts.Get(name); got != n {
			t.Errorf("%s = %d, want %d (%s)", name, got, n, app.Counts.String())
		}
	}
}

func TestLaravelClients(t *testing.T) {
	app := NewLaravel(t)
	users := []string{"bob", "alice"}
	t.Run("visits", func(t *testing.T) {
		for _, u := range users {
			t.Run(u, func(t *testing.T) {
				t.Parallel()
				LaravelClient(t, app.URL, u)
			})
		}
	})
	if got := app.Users(); !slices.Equal(got, []string{"alice", "bob"}) {
		t.Errorf("Users() = %v", got)
	}
	// Nine pages a visit: the first loads 7 files (favicon, CSS, its two
	// fonts and background, JS, logo); the next 8 revalidate favicon,
	// background and logo, the immutable build being in the cache.
	laravelWant(t, app, map[string]int64{"sessions": 2, "projects created": 2, "projects updated": 2, "projects deleted": 2,
		"logouts": 2, "notifications": 2, "419": 0, "403": 0, "login redirects": 0, "login refused": 0,
		"assets": 2 * (7 + 8*3), "favicon": 2 * 9, "assets /build/assets/figtree-600.woff2": 2})
}

// laravelSID decrypts a laravel_session cookie value as the app does.
func laravelSID(t *testing.T, app *Laravel, v string) string {
	t.Helper()
	r := &http.Request{Header: http.Header{"Cookie": {"laravel_session=" + v}}}
	sid, ok := app.cookie(r, "laravel_session")
	if !ok {
		t.Fatalf("%s does not decrypt", v)
	}
	return sid
}

func TestLaravelCookies(t *testing.T) {
	app := NewLaravel(t)
	u := newLaravelUser(t, app.URL)
	defer u.tr.CloseIdleConnections()
	u.visit("erin")
	// 15 answers of the web group: 9 pages, 5 form posts and the
	// notifications; the assets set no cookie.
	if len(u.issued) != 15 {
		t.Fatalf("%d laravel_session cookies, want 15", len(u.issued))
	}
	values, sids := map[string]bool{}, map[string]bool{}
	for _, v := range u.issued {
		values[v] = true
		sids[laravelSID(t, app, v)] = true
	}
	if len(values) != len(u.issued) {
		t.Errorf("%d distinct cookie values of %d", len(values), len(u.issued))
	}
	if len(sids) != 3 { // the guest's, the login's, the logout's
		t.Errorf("%d session ids, want 3", len(sids))
	}

	a := Do(t, nil, http.MethodGet, app.URL+"/login", "")
	set := a.Header.Values("Set-Cookie")
	if len(set) != 2 || !strings.HasPrefix(set[0], "XSRF-TOKEN=") || !strings.HasPrefix(set[1], "laravel_session=") ||
		!strings.HasSuffix(set[0], "; Max-Age=7200; path=/; samesite=lax") || !strings.HasSuffix(set[1], "; Max-Age=7200; path=/; httponly; samesite=lax") {
		t.Errorf("Set-Cookie: %q", set)
	}
	v, _ := url.QueryUnescape(strings.TrimPrefix(strings.Split(set[1], ";")[0], "laravel_session="))
	j, _ := base64.StdEncoding.DecodeString(v)
	var p map[string]string
	if err := json.Unmarshal(j, &p); err != nil || len(p["iv"]) != 24 || len(p["mac"]) != 64 || p["value"] == "" || p["tag"] != "" {
		t.Errorf("laravel_session is %s (%v)", j, err)
	}
	for _, path := range []string{"/build/assets/" + app.css, "/favicon.ico", "/robots.txt", "/images/bg.png"} {
		a := Do(t, nil, http.MethodGet, app.URL+path, "")
		immutable := strings.HasPrefix(path, "/build/")
		if a.Status != http.StatusOK || a.Header.Get("Set-Cookie") != "" || (a.Header.Get("Cache-Control") != "") != immutable {
			t.Errorf("%s: %d %v", path, a.Status, a.Header)
		}
	}
}

// laravelTamper changes the ciphertext of an encrypted cookie value,
// leaving its MAC as it was.
func laravelTamper(t *testing.T, v string) string {
	t.Helper()
	raw, _ := url.QueryUnescape(v)
	j, _ := base64.StdEncoding.DecodeString(raw)
	var p laravelPayload
	if err := json.Unmarshal(j, &p); err != nil {
		t.Fatal(err)
	}
	b, _ := base64.StdEncoding.DecodeString(p.Value)
	b[0] ^= 1
	p.Value = base64.StdEncoding.EncodeToString(b)
	j, _ = json.Marshal(p)
	return url.QueryEscape(base64.StdEncoding.EncodeToString(j))
}

func TestLaravelCSRF(t *testing.T) {
	app := NewLaravel(t)
	form := "application/x-www-form-urlencoded"
	cases := []struct {
		name string
		send func(t *testing.T, u *laravelUser, token, xsrf string) Answer
		want int
	}{
		{"_token", func(t *testing.T, u *laravelUser, token, _ string) Answer {
			return u.do(http.MethodPost, "/projects", "name=a&_token="+token, "Content-Type", form)
		}, http.StatusFound},
		{"X-CSRF-TOKEN of the meta tag", func(t *testing.T, u *laravelUser, token, _ string) Answer {
			return u.do(http.MethodPost, "/projects", "name=a", "Content-Type", form, "X-CSRF-TOKEN", token)
		}, http.StatusFound},
		{"X-XSRF-TOKEN of the cookie", func(t *testing.T, u *laravelUser, _, xsrf string) Answer {
			return u.do(http.MethodPost, "/projects", "name=a", "Content-Type", form, "X-XSRF-TOKEN", xsrf)
		}, http.StatusFound},
		{"wrong _token", func(t *testing.T, u *laravelUser, token, _ string) Answer {
			return u.do(http.MethodPost, "/projects", "name=a&_token="+strings.Repeat("wrong", 8), "Content-Type", form)
		}, 419},
		{"no token", func(t *testing.T, u *laravelUser, _, _ string) Answer {
			return u.do(http.MethodPost, "/projects", "name=a", "Content-Type", form)
		}, 419},
		{"tampered X-XSRF-TOKEN", func(t *testing.T, u *laravelUser, _, xsrf string) Answer {
			v, _ := url.QueryUnescape(laravelTamper(t, url.QueryEscape(xsrf)))
			return u.do(http.MethodPost, "/projects", "name=a", "Content-Type", form, "X-XSRF-TOKEN", v)
		}, 419},
		{"tampered laravel_session", func(t *testing.T, u *laravelUser, token, _ string) Answer {
			for _, c := range u.c.Jar.Cookies(u.base) {
				if c.Name == "laravel_session" {
					u.c.Jar.SetCookies(u.base, []*http.Cookie{{Name: c.Name, Value: laravelTamper(t, c.Value), Path: "/"}})
				}
			}
			return u.do(http.MethodPost, "/projects", "name=a&_token="+token, "Content-Type", form)
		}, 419},
		{"_method DELETE without a token", func(t *testing.T, u *laravelUser, _, _ string) Answer {
			return u.do(http.MethodPost, "/projects/1", "_method=DELETE", "Content-Type", form)
		}, 419},
	}
	var refused int64
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u := newLaravelUser(t, app.URL)
			defer u.tr.CloseIdleConnections()
			u.login("fay")
			token := u.token()
			a := tc.send(t, u, token, u.cookie("XSRF-TOKEN"))
			if a.Status != tc.want {
				t.Fatalf("%d, want %d: %.200s", a.Status, tc.want, a.Body)
			}
			if tc.want == 419 {
				refused++
				// Thrown by ValidateCsrfToken: the session cookie, no XSRF-TOKEN.
				set := a.Header.Values("Set-Cookie")
				if len(set) != 1 || !strings.HasPrefix(set[0], "laravel_session=") || !strings.Contains(string(a.Body), "419 | Page Expired") {
					t.Errorf("419 with %q: %s", set, a.Body)
				}
			}
		})
	}
	laravelWant(t, app, map[string]int64{"419": refused, "projects created": int64(len(cases)) - refused})
}

func TestLaravelForbidden(t *testing.T) {
	app := NewLaravel(t)
	alice := newLaravelUser(t, app.URL)
	defer alice.tr.CloseIdleConnections()
	alice.login("alice")
	show := alice.create("secret")
	bob := newLaravelUser(t, app.URL)
	defer bob.tr.CloseIdleConnections()
	bob.login("bob")
	bobToken := bob.token()
	form := []string{"Content-Type", "application/x-www-form-urlencoded"}
	for _, tc := range []struct{ method, path, body string }{
		{http.MethodGet, show, ""},
		{http.MethodGet, show + "/edit", ""},
		{http.MethodPost, show, "_method=PUT&name=mine&_token=" + bobToken},
		{http.MethodPost, show, "_method=DELETE&_token=" + bobToken},
	} {
		if a := bob.do(tc.method, tc.path, tc.body, form...); a.Status != http.StatusForbidden {
			t.Errorf("bob %s %s %s: %d", tc.method, tc.path, tc.body, a.Status)
		}
	}
	if a := alice.open(show); !strings.Contains(string(a.Body), "secret") {
		t.Errorf("alice's project: %s", a.Body)
	}

	// A guest is sent to log in, and after it to the page it asked for.
	guest := newLaravelUser(t, app.URL)
	defer guest.tr.CloseIdleConnections()
	if a := guest.do(http.MethodGet, show, ""); a.Status != http.StatusFound || a.Header.Get("Location") != app.URL+"/login" {
		t.Errorf("guest: %d to %q", a.Status, a.Header.Get("Location"))
	}
	if a := guest.do(http.MethodGet, "/api/notifications", "", "Accept", "application/json"); a.Status != http.StatusUnauthorized {
		t.Errorf("guest's notifications: %d", a.Status)
	}
	guest.open("/login")
	guest.submit("/login", url.Values{"email": {"alice@example.test"}, "password": {"nope"}}, "/login")
	if !strings.Contains(string(guest.page), "These credentials do not match our records.") || !strings.Contains(string(guest.page), `value="alice@example.test"`) {
		t.Errorf("refused login page: %s", guest.page)
	}
	guest.submit("/login", url.Values{"email": {"alice@example.test"}, "password": {"pw-alice"}}, show)
	laravelWant(t, app, map[string]int64{"403": 4, "login redirects": 1, "login refused": 1, "401": 1, "sessions": 3})
}

func TestLaravelBrowser(t *testing.T) {
	Chromium(t)
	app := NewLaravel(t)
	b := StartBrowser(t)
	users := []string{"carol", "dave"}
	pages := make([]*Page, len(users))
	for i, u := range users {
		pages[i] = b.Open(app.URL + "/login?u=" + u)
	}
	var wg sync.WaitGroup
	got := make([]string, len(users))
	errs := make([]error, len(users))
	for i, p := range pages {
		wg.Go(func() { got[i], errs[i] = p.WaitText("root", 60*time.Second) })
	}
	wg.Wait()
	for i := range users {
		if errs[i] != nil || got[i] != "done" {
			t.Errorf("%s: %q %v (%s)", users[i], got[i], errs[i], app.Counts.String())
		}
	}
	if got := app.Users(); !slices.Equal(got, users) {
		t.Errorf("Users() = %v", got)
	}
	// The build is immutable: one fetch a context. The logo is on every
	// page, revalidated each time; Chromium may skip a favicon when the
	// next page comes quickly.
	laravelWant(t, app, map[string]int64{"sessions": 2, "projects created": 2, "projects updated": 2, "projects deleted": 2,
		"logouts": 2, "notifications": 2, "419": 0, "403": 0, "login redirects": 0, "login refused": 0,
		"assets /build/assets/" + app.css: 2, "assets /build/assets/" + app.js: 2, "assets /images/logo.svg": 2 * 9})
	if n := app.Counts.Get("favicon"); n < 2 {
		t.Errorf("favicon = %d (%s)", n, app.Counts.String())
	}
}
