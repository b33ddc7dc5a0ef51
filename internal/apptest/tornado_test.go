package apptest

import (
	"encoding/base64"
	"encoding/json"
	"html"
	"maps"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func wantTornadoCounts(t *testing.T, app *Tornado, want map[string]int64) {
	t.Helper()
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if got := app.Counts.Get(k); got != want[k] {
			t.Errorf("count %q = %d, want %d (%s)", k, got, want[k], &app.Counts)
		}
	}
}

var tornadoHiddenRE = regexp.MustCompile(`name="_xsrf" value="([^"]+)"`)

// tornadoLogin logs user in through the form with a cookie jar of its own
// and returns the client and the _xsrf cookie's value.
func tornadoLogin(t *testing.T, app *Tornado, user string) (*http.Client, string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	m := tornadoHiddenRE.FindSubmatch(Do(t, c, http.MethodGet, app.URL+"/login?next=%2Ftree", "").Body)
	form := url.Values{"_xsrf": {html.UnescapeString(string(m[1]))}, "username": {user}, "password": {"pw-" + user}}
	if a := Do(t, c, http.MethodPost, app.URL+"/login?next=%2Ftree", form.Encode(), "Content-Type", "application/x-www-form-urlencoded"); a.Status != http.StatusOK {
		t.Fatalf("login %s: %d %s", user, a.Status, a.Body)
	}
	u, _ := url.Parse(app.URL)
	for _, ck := range jar.Cookies(u) {
		if ck.Name == "_xsrf" {
			return c, ck.Value
		}
	}
	t.Fatalf("login %s: no _xsrf cookie", user)
	return nil, ""
}

func TestTornadoClients(t *testing.T) {
	app := NewTornado(t)
	t.Run("visits", func(t *testing.T) {
		for _, u := range []string{"alice", "bob"} {
			t.Run(u, func(t *testing.T) {
				t.Parallel()
				TornadoClient(t, app.URL, u)
			})
		}
	})
	wantTornadoCounts(t, app, map[string]int64{"sessions": 2, "notebooks created": 2, "kernels started": 2, "kernels deleted": 2,
		"logouts": 2, "403": 0, "403 xsrf": 0, "404": 0, "404 foreign": 0, "login refused": 0, "login redirects": 0})
	if got := app.Users(); !slices.Equal(got, []string{"alice", "bob"}) {
		t.Errorf("Users() = %q", got)
	}
}

// TestTornadoLoginCookie reads the raw Set-Cookie of logins: Tornado's
// signed value, which Python quotes for its base64 "=".
func TestTornadoLoginCookie(t *testing.T) {
	app := NewTornado(t)
	raw := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	loginRE := regexp.MustCompile(`^` + regexp.QuoteMeta(app.CookieName()) + `="(2\|1:0\|10:\d{10}\|(\d+):([^|]*)\|(\d+):([A-Za-z0-9+/=]*)\|[0-9a-f]{64})"` +
		`; expires=\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT; HttpOnly; Path=/$`)
	for _, user := range []string{"al", "bob", "carol", "dave", "erin", "frank-the-tester"} {
		t.Run(user, func(t *testing.T) {
			a := Do(t, raw, http.MethodGet, app.URL+"/login?next=%2Ftree", "")
			sc := a.Header.Get("Set-Cookie")
			if !regexp.MustCompile(`^_xsrf=2\|[0-9a-f]{8}\|[0-9a-f]{32}\|\d+; Path=/$`).MatchString(sc) {
				t.Fatalf("login page Set-Cookie %q", sc)
			}
			xsrf := strings.TrimSuffix(strings.TrimPrefix(sc, "_xsrf="), "; Path=/")
			m := tornadoHiddenRE.FindSubmatch(a.Body)
			form := url.Values{"_xsrf": {html.UnescapeString(string(m[1]))}, "username": {user}, "password": {"pw-" + user}}
			a = Do(t, raw, http.MethodPost, app.URL+"/login?next=%2Ftree", form.Encode(),
				"Content-Type", "application/x-www-form-urlencoded", "Cookie", "_xsrf="+xsrf)
			if a.Status != http.StatusFound || a.Header.Get("Location") != "/tree" {
				t.Fatalf("login: %d to %q", a.Status, a.Header.Get("Location"))
			}
			scs := a.Header.Values("Set-Cookie")
			if len(scs) != 1 {
				t.Fatalf("login Set-Cookie: %q", scs)
			}
			m2 := loginRE.FindStringSubmatch(scs[0])
			if m2 == nil {
				t.Fatalf("login Set-Cookie %q does not match %s", scs[0], loginRE)
			}
			value, payload := m2[1], m2[5]
			if m2[2] != strconv.Itoa(len(m2[3])) || m2[3] != app.CookieName() || m2[4] != strconv.Itoa(len(payload)) {
				t.Errorf("fields of %q: name %s:%s, value length %s for %d", value, m2[2], m2[3], m2[4], len(payload))
			}
			if !strings.Contains(value, "|") || !strings.HasSuffix(payload, "=") {
				t.Errorf("value %q: want | and a base64 = that Python quotes", value)
			}
			js, err := base64.StdEncoding.DecodeString(payload)
			var id struct{ Username string }
			if err != nil || json.Unmarshal(js, &id) != nil || id.Username != user {
				t.Errorf("payload %q: %s, %v", payload, js, err)
			}
		})
	}
}

// TestTornadoXSRFMasking renders the login form twice with one _xsrf
// cookie: the hidden values differ and decode to the cookie's token.
func TestTornadoXSRFMasking(t *testing.T) {
	app := NewTornado(t)
	cookie := "2|0a0b0c0d|" + strings.Repeat("5a", 16) + "|1733450000"
	want, _, _ := tornadoDecodeXSRF(cookie)
	var seen []string
	for range 2 {
		a := Do(t, nil, http.MethodGet, app.URL+"/login", "", "Cookie", "_xsrf="+cookie)
		if sc := a.Header.Values("Set-Cookie"); len(sc) != 0 {
			t.Errorf("the _xsrf cookie set again: %q", sc)
		}
		v := html.UnescapeString(string(tornadoHiddenRE.FindSubmatch(a.Body)[1]))
		if got, ts, ok := tornadoDecodeXSRF(v); !ok || string(got) != string(want) || ts != 1733450000 {
			t.Errorf("hidden %q decodes to %x at %d, want %x", v, got, ts, want)
		}
		seen = append(seen, v)
	}
	if seen[0] == seen[1] {
		t.Errorf("the same masked token twice: %q", seen[0])
	}
}

func TestTornadoRefusals(t *testing.T) {
	app := NewTornado(t)
	alice := app.CookieName() + "=" + tornadoQuote(app.signed(app.CookieName(), tornadoCookiePayload("alice"), time.Now().Unix()))
	xsrf := "2|01020304|" + strings.Repeat("ab", 16) + "|1733450000"
	other := "2|01020304|" + strings.Repeat("cd", 16) + "|1733450000"
	form := func(extra ...string) string {
		v := url.Values{"username": {"alice"}, "password": {"pw-alice"}}
		for i := 0; i+1 < len(extra); i += 2 {
			v.Set(extra[i], extra[i+1])
		}
		return v.Encode()
	}
	formCT := []string{"Content-Type", "application/x-www-form-urlencoded"}
	for _, tc := range []struct {
		name, method, path, body string
		headers                  []string
		status                   int
		body2                    string // in the answer
	}{
		{"form without _xsrf", http.MethodPost, "/login", form(), append(formCT, "Cookie", "_xsrf="+xsrf), 403,
			"&#39;_xsrf&#39; argument missing from POST"},
		{"form _xsrf of another cookie", http.MethodPost, "/login", form("_xsrf", other), append(formCT, "Cookie", "_xsrf="+xsrf), 403,
			"XSRF cookie does not match POST argument"},
		{"form without a cookie", http.MethodPost, "/login", form("_xsrf", xsrf), formCT, 403, "XSRF cookie does not match POST argument"},
		{"wrong password", http.MethodPost, "/login", form("_xsrf", xsrf, "password", "pw-bob"), append(formCT, "Cookie", "_xsrf="+xsrf), 401,
			`<div id="root" class="error">error: Invalid credentials</div>`},
		{"API without X-XSRFToken", http.MethodPost, "/api/contents", `{"type":"notebook"}`, []string{"Cookie", alice + "; _xsrf=" + xsrf}, 403,
			`{"message": "'_xsrf' argument missing from POST", "reason": null}`},
		{"API without login", http.MethodGet, "/api/contents", "", nil, 403, `{"message": "Forbidden", "reason": null}`},
		{"API of a missing notebook", http.MethodGet, "/api/contents/x.ipynb", "", []string{"Cookie", alice}, 404,
			`{"message": "No such file or directory: x.ipynb", "reason": null}`},
		{"favicon", http.MethodGet, "/favicon.ico", "", nil, 404, "404 : Not Found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := Do(t, nil, tc.method, app.URL+tc.path, tc.body, tc.headers...)
			if a.Status != tc.status || !strings.Contains(string(a.Body), tc.body2) {
				t.Errorf("%d %s, want %d with %s", a.Status, a.Body, tc.status, tc.body2)
			}
		})
	}
	raw := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if a := Do(t, raw, http.MethodGet, app.URL+"/tree", ""); a.Status != http.StatusFound || a.Header.Get("Location") != "/login?next=%2Ftree" {
		t.Errorf("/tree without login: %d to %q", a.Status, a.Header.Get("Location"))
	}
	wantTornadoCounts(t, app, map[string]int64{"403": 5, "403 xsrf": 4, "401": 0, "login refused": 1, "404": 1, "404 foreign": 0,
		"404 favicon": 1, "login redirects": 1, "sessions": 0, "notebooks created": 0})
}

// TestTornadoCookieForms sends the login cookie quoted, bare, unsigned and
// tampered with.
func TestTornadoCookieForms(t *testing.T) {
	app := NewTornado(t)
	name := app.CookieName()
	good := app.signed(name, tornadoCookiePayload("alice"), time.Now().Unix())
	bob := app.signed(name, tornadoCookiePayload("bob"), time.Now().Unix())
	cut := func(v string) []string { return strings.Split(v, "|") }
	swapped := strings.Join(append(cut(good)[:4:4], cut(bob)[4], cut(good)[5]), "|")
	flipped := good[:len(good)-1] + map[bool]string{true: "1", false: "0"}[good[len(good)-1] == '0']
	clearRE := regexp.MustCompile(`^` + regexp.QuoteMeta(name) + `=""; expires=(\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT); Path=/$`)
	for _, tc := range []struct {
		name, cookie string
		status       int
	}{
		{"quoted", `"` + good + `"`, 200},
		{"bare", good, 200},
		{"unsigned", "alice", 403},
		{"signature flipped", flipped, 403},
		{"payload of bob", swapped, 403},
		{"signed for another name", app.signed("username-other", tornadoCookiePayload("alice"), time.Now().Unix()), 403},
		{"older than 31 days", app.signed(name, tornadoCookiePayload("alice"), time.Now().Add(-32*24*time.Hour).Unix()), 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := Do(t, nil, http.MethodGet, app.URL+"/api/contents?type=directory", "", "Cookie", name+"="+tc.cookie)
			if a.Status != tc.status {
				t.Fatalf("%d %s, want %d", a.Status, a.Body, tc.status)
			}
			// Jupyter clears a login cookie it cannot read.
			if sc := a.Header.Get("Set-Cookie"); (tc.status == 403) != clearRE.MatchString(sc) {
				t.Errorf("Set-Cookie %q", sc)
			}
		})
	}
	if !strings.Contains(good, "=") || tornadoQuote(good) != `"`+good+`"` || tornadoUnquote(tornadoQuote(good)) != good {
		t.Errorf("quoting %q: %s", good, tornadoQuote(good))
	}
}

// TestTornadoOwnership has alice and bob each see their own notebooks,
// sessions and kernels only.
func TestTornadoOwnership(t *testing.T) {
	app := NewTornado(t)
	ac, ax := tornadoLogin(t, app, "alice")
	bc, bx := tornadoLogin(t, app, "bob")
	call := func(c *http.Client, xsrf, method, path, body string, status int, into any) Answer {
		t.Helper()
		a := Do(t, c, method, app.URL+path, body, "X-XSRFToken", xsrf, "Content-Type", "application/json")
		if a.Status != status {
			t.Fatalf("%s %s: %d %s, want %d", method, path, a.Status, a.Body, status)
		}
		if into != nil {
			if err := json.Unmarshal(a.Body, into); err != nil {
				t.Fatal(err)
			}
		}
		return a
	}
	a := call(ac, ax, http.MethodPost, "/api/contents", `{"type":"notebook"}`, 201, nil)
	if !strings.HasPrefix(string(a.Body), `{"name": "Untitled.ipynb", "path": "Untitled.ipynb", "last_modified": "`) ||
		!strings.HasSuffix(string(a.Body), `"content": null, "format": null, "mimetype": null, "size": 72, "writable": true, "hash": null, "hash_algorithm": null, "type": "notebook"}`) ||
		a.Header.Get("Location") != "/api/contents/Untitled.ipynb" {
		t.Errorf("created: %s at %q", a.Body, a.Header.Get("Location"))
	}
	call(ac, ax, http.MethodPatch, "/api/contents/Untitled.ipynb", `{"path":"alice notes.ipynb"}`, 200, nil)
	var next struct{ Name string }
	call(ac, ax, http.MethodPost, "/api/contents", `{"type":"notebook"}`, 201, &next)
	if next.Name != "Untitled1.ipynb" { // numbers go on, though Untitled.ipynb is free again
		t.Errorf("second notebook %q", next.Name)
	}
	var s struct {
		ID     string
		Kernel struct {
			ID             string
			ExecutionState string `json:"execution_state"`
		}
	}
	call(ac, ax, http.MethodPost, "/api/sessions", `{"path":"alice notes.ipynb","type":"notebook","kernel":{"name":"python3"}}`, 201, &s)
	uuidRE := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	if !uuidRE.MatchString(s.ID) || !uuidRE.MatchString(s.Kernel.ID) || s.Kernel.ExecutionState != "starting" {
		t.Errorf("session %+v", s)
	}
	var bobs struct{ Name string }
	call(bc, bx, http.MethodPost, "/api/contents", `{"type":"notebook"}`, 201, &bobs)
	for _, tc := range []struct {
		c    *http.Client
		x    string
		want []string
	}{{ac, ax, []string{"Untitled1.ipynb", "alice notes.ipynb"}}, {bc, bx, []string{"Untitled.ipynb"}}} {
		var dir struct{ Content []struct{ Name string } }
		call(tc.c, tc.x, http.MethodGet, "/api/contents?type=directory", "", 200, &dir)
		var got []string
		for _, f := range dir.Content {
			got = append(got, f.Name)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("listing %q, want %q", got, tc.want)
		}
	}
	for _, r := range [][2]string{{http.MethodGet, "/api/contents/alice%20notes.ipynb"}, {http.MethodDelete, "/api/contents/alice%20notes.ipynb"},
		{http.MethodGet, "/api/sessions/" + s.ID}, {http.MethodDelete, "/api/sessions/" + s.ID}, {http.MethodGet, "/api/kernels/" + s.Kernel.ID}} {
		call(bc, bx, r[0], r[1], "", 404, nil)
	}
	call(ac, ax, http.MethodGet, "/api/sessions/"+s.ID, "", 200, &s)
	if s.Kernel.ExecutionState != "idle" {
		t.Errorf("kernel %s after a read: %s", s.Kernel.ID, s.Kernel.ExecutionState)
	}
	wantTornadoCounts(t, app, map[string]int64{"404 foreign": 5, "404": 5, "notebooks created": 3, "kernels started": 1, "sessions": 2})
}

func TestTornadoLogout(t *testing.T) {
	app := NewTornado(t)
	c, _ := tornadoLogin(t, app, "alice")
	a := Do(t, c, http.MethodGet, app.URL+"/logout", "")
	m := regexp.MustCompile(`^` + regexp.QuoteMeta(app.CookieName()) + `=""; expires=(.*); Path=/$`).FindStringSubmatch(a.Header.Get("Set-Cookie"))
	if m == nil || !strings.Contains(string(a.Body), `<div id="root">done</div>`) {
		t.Fatalf("logout: %q %s", a.Header.Values("Set-Cookie"), a.Body)
	}
	if exp, err := time.Parse(http.TimeFormat, m[1]); err != nil || !exp.Before(time.Now()) {
		t.Errorf("expires %q: %v", m[1], err)
	}
	if a := Do(t, c, http.MethodGet, app.URL+"/api/me", ""); a.Status != http.StatusForbidden {
		t.Errorf("after logout: %d %s", a.Status, a.Body)
	}
	wantTornadoCounts(t, app, map[string]int64{"logouts": 1, "403": 1})
}

func TestTornadoStatic(t *testing.T) {
	app := NewTornado(t)
	v := app.static["/static/style.css"].version
	a := Do(t, nil, http.MethodGet, app.URL+"/static/style.css?v="+v, "")
	if a.Status != 200 || a.Header.Get("Content-Type") != "text/css" || a.Header.Get("Cache-Control") != "max-age=315360000" ||
		a.Header.Get("Etag") != `"`+v+`"` {
		t.Errorf("versioned: %d %v", a.Status, a.Header)
	}
	if a := Do(t, nil, http.MethodGet, app.URL+"/static/style.css", "", "If-None-Match", `"`+v+`"`); a.Status != http.StatusNotModified ||
		len(a.Body) != 0 || a.Header.Get("Cache-Control") != "no-cache" {
		t.Errorf("revalidated: %d %v %q", a.Status, a.Header, a.Body)
	}
}

// TestTornadoBrowser has two browser contexts visit at once, logging in
// through the form's own script.
func TestTornadoBrowser(t *testing.T) {
	Chromium(t)
	app := NewTornado(t)
	b := StartBrowser(t)
	users := []string{"alice", "bob"}
	var pages []*Page
	for _, u := range users {
		pages = append(pages, b.Open(app.URL+"/login?u="+u+"&next=/tree"))
	}
	for i, p := range pages {
		if got, err := p.WaitText("root", 60*time.Second); err != nil || got != "done" {
			t.Errorf("%s: %q, %v (%s)", users[i], got, err, &app.Counts)
		}
	}
	wantTornadoCounts(t, app, map[string]int64{"sessions": 2, "notebooks created": 2, "kernels started": 2, "kernels deleted": 2,
		"logouts": 2, "403": 0, "403 xsrf": 0, "404 foreign": 0, "login refused": 0})
	if got := app.Users(); !slices.Equal(got, users) {
		t.Errorf("Users() = %q", got)
	}
}
