package apptest

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// oidcWant checks the counts of a whole visit by each of users, and that
// nothing was refused.
func oidcWant(t *testing.T, o *OIDC, users ...string) {
	t.Helper()
	n := int64(len(users))
	want := map[string]int64{"app logins": n, "idp logins": n, "notes created": 2 * n, "logouts": n, "idp logouts": n,
		"idp sso": 0, "idp login refused": 0, "idp form mismatch": 0, "authorize refused": 0, "state mismatch": 0, "login failed": 0,
		"code reused": 0, "code expired": 0, "code invalid": 0, "pkce failed": 0, "client refused": 0, "csrf failed": 0,
		"login redirects": 0, "404 foreign": 0, "400": 0, "401": 0, "403": 0, "404": 0, "405": 0}
	for name, w := range want {
		if got := o.Counts.Get(name); got != w {
			t.Errorf("count %q = %d, want %d (%s)", name, got, w, &o.Counts)
		}
	}
	if got := o.Users(); !slices.Equal(got, users) {
		t.Errorf("Users() = %q, want %q", got, users)
	}
}

// oidcCounts checks that each count named went up by the number after it
// since before.
func oidcCounts(t *testing.T, o *OIDC, before map[string]int64, kv ...any) {
	t.Helper()
	for i := 0; i+1 < len(kv); i += 2 {
		name, _ := kv[i].(string)
		n, _ := kv[i+1].(int)
		d := int64(n)
		if got := o.Counts.Get(name); got != before[name]+d {
			t.Errorf("count %q = %d, want %d (%s)", name, got, before[name]+d, &o.Counts)
		}
	}
}

func oidcSnapshot(o *OIDC, names ...string) map[string]int64 {
	m := map[string]int64{}
	for _, n := range names {
		m[n] = o.Counts.Get(n)
	}
	return m
}

func TestOIDCClients(t *testing.T) {
	o := NewOIDC(t)
	OIDCClient(t, o.AppURL, "bob")
	OIDCClient(t, o.AppURL, "alice")
	oidcWant(t, o, "alice", "bob")
}

func TestOIDCClientsAtOnce(t *testing.T) {
	o := NewOIDC(t)
	users := []string{"ann", "ben", "cat", "dan"}
	t.Run("visits", func(t *testing.T) {
		for _, u := range users {
			t.Run(u, func(t *testing.T) {
				t.Parallel()
				OIDCClient(t, o.AppURL, u)
			})
		}
	})
	oidcWant(t, o, users...)
}

// TestOIDCWire checks the parameters and cookies of the flow as they go by.
func TestOIDCWire(t *testing.T) {
	o := NewOIDC(t)
	u := newOIDCUser(t, o.AppURL)
	ans := Do(t, u.c, http.MethodGet, o.AppURL+"/login?u=zoe", "")
	loc, _ := url.Parse(ans.Header.Get("Location"))
	q := loc.Query()
	if ans.Status != http.StatusFound || !strings.HasPrefix(loc.String(), o.IdPURL+"/authorize?response_type=code&client_id=webapp&redirect_uri=") ||
		!strings.Contains(loc.RawQuery, "&scope=openid%20profile&") || len(q.Get("state")) < 32 || len(q.Get("nonce")) < 32 ||
		len(q.Get("code_challenge")) != 43 || q.Get("login_hint") != "zoe" {
		t.Fatalf("/login: %d to %s", ans.Status, loc)
	}
	if ck := ans.Header.Get("Set-Cookie"); !strings.HasPrefix(ck, "app_session=") || !strings.Contains(ck, "HttpOnly") {
		t.Errorf("/login set %q", ck)
	}
	ans = Do(t, u.c, http.MethodGet, loc.String(), "")
	page := string(ans.Body)
	for _, h := range []string{`name="state" value="` + q.Get("state") + `"`, `name="nonce" value="` + q.Get("nonce") + `"`,
		`name="code_challenge" value="` + q.Get("code_challenge") + `"`, `id="username" class="pf-c-form-control" name="username" value="zoe"`, `<div id="root">`} {
		if !strings.Contains(page, h) {
			t.Errorf("the login form has no %s", h)
		}
	}
	if ck := ans.Header.Get("Set-Cookie"); !strings.HasPrefix(ck, "AUTH_SESSION_ID=") || !strings.Contains(ck, "HttpOnly") {
		t.Errorf("/authorize set %q", ck)
	}
	first := ""
	for _, c := range u.c.Jar.Cookies(loc) {
		if c.Name == "app_session" {
			first = c.Value
		}
	}
	cb := u.signIn(loc.String(), "zoe", "pw-zoe", http.StatusFound)
	c, _ := url.Parse(cb)
	if cq := c.Query(); cq.Get("state") != q.Get("state") || len(cq.Get("code")) < 32 || cq.Get("session_state") == "" || cq.Get("iss") != o.IdPURL {
		t.Errorf("the IdP sent to %s", cb)
	}
	ans = Do(t, u.c, http.MethodGet, cb, "")
	if ck := ans.Header.Get("Set-Cookie"); ans.Status != http.StatusFound || !strings.HasPrefix(ck, "app_session=") || strings.HasPrefix(ck, "app_session="+first+";") {
		t.Errorf("callback: %d, Set-Cookie %q: want a new app_session", ans.Status, ck)
	}
	var me struct {
		User, Sub string
		Notes     int
	}
	if _, body := u.do(http.MethodGet, "/api/me", nil, http.StatusOK); json.Unmarshal([]byte(body), &me) != nil || me.User != "zoe" || len(me.Sub) != 36 {
		t.Errorf("/api/me: %s", body)
	}
	// The old pre-login session is gone: it is anonymous now.
	anon := newOIDCUser(t, o.AppURL)
	anon.c.Jar.SetCookies(loc, []*http.Cookie{{Name: "app_session", Value: first}})
	if l, _ := anon.do(http.MethodGet, "/home", nil, http.StatusFound); l != o.AppURL+"/login" {
		t.Errorf("the pre-login session sent /home to %q", l)
	}
}

// TestOIDCCallbackReplayed replays callbacks: the same one again, and a
// spent code with the state of a new flow.
func TestOIDCCallbackReplayed(t *testing.T) {
	o := NewOIDC(t)
	alice := newOIDCUser(t, o.AppURL)
	cb := alice.login("alice")
	before := oidcSnapshot(o, "state mismatch", "code reused", "login failed", "400", "app logins")
	// Its state was spent, and the session rotated.
	if _, page := alice.do(http.MethodGet, cb, nil, http.StatusBadRequest); !strings.Contains(page, `<div id="root">error: Login failed: mismatching state`) {
		t.Errorf("replayed callback: %.400s", page)
	}
	oidcCounts(t, o, before, "state mismatch", 1, "code reused", 0, "400", 1)
	// bob's flow, with alice's spent code: the app sends it to the IdP,
	// which refuses it.
	bob := newOIDCUser(t, o.AppURL)
	cb2 := bob.signIn(bob.start("bob"), "bob", "pw-bob", http.StatusFound)
	u, _ := url.Parse(cb2)
	spent, _ := url.Parse(cb)
	q := u.Query()
	q.Set("code", spent.Query().Get("code"))
	u.RawQuery = q.Encode()
	if _, page := bob.do(http.MethodGet, u.String(), nil, http.StatusBadRequest); !strings.Contains(page, "invalid_grant") {
		t.Errorf("callback with a spent code: %.400s", page)
	}
	// The app spent its state: bob's own callback is refused too.
	bob.do(http.MethodGet, cb2, nil, http.StatusBadRequest)
	oidcCounts(t, o, before, "state mismatch", 2, "code reused", 1, "login failed", 1, "400", 4, "app logins", 0)
	if got := o.Users(); !slices.Equal(got, []string{"alice"}) {
		t.Errorf("Users() = %q", got)
	}
}

// TestOIDCStateMismatch sends a callback whose state the session did not
// start, then the right one, which still works: the code was not spent.
func TestOIDCStateMismatch(t *testing.T) {
	o := NewOIDC(t)
	u := newOIDCUser(t, o.AppURL)
	cb := u.signIn(u.start("carol"), "carol", "pw-carol", http.StatusFound)
	bad, _ := url.Parse(cb)
	q := bad.Query()
	q.Set("state", strings.Repeat("A", 43))
	bad.RawQuery = q.Encode()
	u.do(http.MethodGet, bad.String(), nil, http.StatusBadRequest)
	// Another browser with the right URL: no session, no state.
	newOIDCUser(t, o.AppURL).do(http.MethodGet, cb, nil, http.StatusBadRequest)
	oidcCounts(t, o, nil, "state mismatch", 2, "app logins", 0, "code reused", 0)
	if loc, _ := u.do(http.MethodGet, cb, nil, http.StatusFound); loc != o.AppURL+"/home" {
		t.Errorf("callback sent to %q", loc)
	}
	oidcCounts(t, o, nil, "state mismatch", 2, "app logins", 1, "400", 2)
}

// TestOIDCToken talks to the IdP's token endpoint as the app does, with
// codes got for a PKCE pair of the test's own.
func TestOIDCToken(t *testing.T) {
	o := NewOIDC(t)
	u := newOIDCUser(t, o.AppURL)
	verifier := oidcRandom(48)
	authorize := func(nonce string) string {
		return o.IdPURL + "/authorize?" + url.Values{"response_type": {"code"}, "client_id": {"webapp"}, "redirect_uri": {o.AppURL + "/callback"},
			"scope": {"openid profile"}, "state": {oidcRandom(32)}, "nonce": {nonce}, "code_challenge": {oidcS256(verifier)},
			"code_challenge_method": {"S256"}, "login_hint": {"dave"}}.Encode()
	}
	codeOf := func(loc string) string {
		l, _ := url.Parse(loc)
		return l.Query().Get("code")
	}
	token := func(code, verifier, secret, redirect string, want int) map[string]any {
		t.Helper()
		form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect}, "code_verifier": {verifier}}
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, o.IdPURL+"/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("webapp", secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || resp.StatusCode != want || resp.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("token: %d %v, want %d, Cache-Control %q: %v", resp.StatusCode, m, want, resp.Header.Get("Cache-Control"), err)
		}
		return m
	}
	cb := o.AppURL + "/callback"
	code := codeOf(u.signIn(authorize("n1"), "dave", "pw-dave", http.StatusFound))
	token(code, verifier, "wrong-secret", cb, http.StatusUnauthorized) // leaves the code alone
	if m := token(code, verifier[:47]+"x", oidcSecret, cb, http.StatusBadRequest); m["error"] != "invalid_grant" {
		t.Errorf("wrong verifier: %v", m)
	}
	token(code, verifier, oidcSecret, cb, http.StatusBadRequest) // spent by the try before
	oidcCounts(t, o, nil, "client refused", 1, "pkce failed", 1, "code reused", 1, "401", 1, "400", 2)

	// The IdP session lives: the next authorize answers with a code at once.
	loc, _ := u.do(http.MethodGet, authorize("n2"), nil, http.StatusFound)
	m := token(codeOf(loc), verifier, oidcSecret, cb, http.StatusOK)
	idToken, _ := m["id_token"].(string)
	access, _ := m["access_token"].(string)
	claims := oidcClaims(oidcSecret, idToken)
	if m["token_type"] != "Bearer" || claims == nil || claims["nonce"] != "n2" || claims["aud"] != "webapp" || claims["preferred_username"] != "dave" {
		t.Errorf("tokens %v, id_token claims %v", m, claims)
	}
	if _, err := o.checkIDToken(oidcTokens{AccessToken: access, IDToken: idToken}, "n2"); err != nil {
		t.Errorf("the app refuses the id_token: %v", err)
	}
	token(codeOf(loc), verifier, oidcSecret, cb, http.StatusBadRequest)
	loc, _ = u.do(http.MethodGet, authorize("n3"), nil, http.StatusFound)
	token(codeOf(loc), verifier, oidcSecret, o.AppURL+"/elsewhere", http.StatusBadRequest)
	loc, _ = u.do(http.MethodGet, authorize("n4"), nil, http.StatusFound)
	o.idpMu.Lock()
	o.codes[codeOf(loc)].exp = time.Now().Add(-time.Second)
	o.idpMu.Unlock()
	token(codeOf(loc), verifier, oidcSecret, cb, http.StatusBadRequest)
	token("no-such-code", verifier, oidcSecret, cb, http.StatusBadRequest)
	oidcCounts(t, o, nil, "idp sso", 3, "idp logins", 1, "code reused", 2, "code invalid", 2, "code expired", 1, "pkce failed", 1, "400", 6)
}

func TestOIDCRefusals(t *testing.T) {
	o := NewOIDC(t)
	alice, bob, anon := newOIDCUser(t, o.AppURL), newOIDCUser(t, o.AppURL), newOIDCUser(t, o.AppURL)
	alice.login("alice")
	alice.do(http.MethodGet, "/notes", nil, http.StatusOK)
	note := alice.add("Alice's")
	bob.login("bob")
	bob.do(http.MethodGet, "/notes", nil, http.StatusOK)
	eve := newOIDCUser(t, o.AppURL)
	authorize := eve.start("eve")
	// A wrong password: the form again, with the same request.
	if loc := eve.signIn(authorize, "eve", "pw-bob", http.StatusOK); loc != "" || !strings.Contains(eve.page, `<span id="input-error" class="kc-feedback-text">Invalid username or password.</span>`) ||
		!strings.Contains(eve.page, `name="username" value="eve"`) {
		t.Errorf("wrong password: %q %.600s", loc, eve.page)
	}
	oidcCounts(t, o, nil, "idp login refused", 1, "idp logins", 2, "400", 0)
	badRedirect := strings.Replace(authorize, url.QueryEscape(o.AppURL+"/callback"), url.QueryEscape(o.AppURL+"/evil"), 1)
	noPKCE := strings.Replace(authorize, "&code_challenge_method=S256", "", 1)
	cases := []struct {
		name        string
		who         *oidcUser
		method, url string
		form        url.Values
		status      int
		count, has  string // the count that goes up by one; what the body or Location has
	}{
		{"another user's csrf token", bob, http.MethodPost, "/notes", url.Values{"title": {"x"}, "csrf_token": {alice.csrf}}, 403, "csrf failed", "error: CSRF token"},
		{"no csrf token", bob, http.MethodPost, "/logout", url.Values{}, 403, "csrf failed", "error: CSRF token"},
		{"another user's note", bob, http.MethodGet, note, nil, 404, "404 foreign", `<div id="root">error: No such note.</div>`},
		{"no such note", bob, http.MethodGet, "/notes/999", nil, 404, "404 /notes/{id}", "No such note."},
		{"anonymous notes", anon, http.MethodGet, "/notes", nil, 302, "login redirects", o.AppURL + "/login"},
		{"anonymous post", anon, http.MethodPost, "/notes", url.Values{"title": {"x"}}, 302, "login redirects", o.AppURL + "/login"},
		{"logout by GET", bob, http.MethodGet, "/logout", nil, 405, "405", "Method not allowed"},
		{"unregistered redirect_uri", anon, http.MethodGet, badRedirect, nil, 400, "authorize refused", "Invalid parameter: redirect_uri"},
		{"no code_challenge_method", anon, http.MethodGet, noPKCE, nil, 302, "authorize refused", "error=invalid_request"},
		{"IdP logout without hint", anon, http.MethodGet, o.IdPURL + "/logout?post_logout_redirect_uri=" + url.QueryEscape(o.AppURL+"/"), nil, 400, "400", "id_token_hint"},
		{"login form without its auth session", anon, http.MethodPost, o.IdPURL + "/login?client_id=webapp&tab_id=x", url.Values{"username": {"x"}}, 400, "400", "Cookie not found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.who.tb = t
			before := o.Counts.Get(tc.count)
			loc, body := tc.who.do(tc.method, tc.url, tc.form, tc.status)
			if got := o.Counts.Get(tc.count); got != before+1 {
				t.Errorf("count %q went from %d to %d", tc.count, before, got)
			}
			if !strings.Contains(loc+body, tc.has) {
				t.Errorf("answer %q %.400q does not have %q", loc, body, tc.has)
			}
		})
	}
	if got := o.Counts.Get("403"); got != 2 {
		t.Errorf("403 = %d, want 2", got)
	}
	// alice's session and note are as they were.
	alice.tb = t
	if _, page := alice.do(http.MethodGet, note, nil, http.StatusOK); !strings.Contains(page, "Alice&#39;s") {
		t.Errorf("alice's note: %.400s", page)
	}
}

func TestOIDCBrowser(t *testing.T) {
	b := StartBrowser(t) // skips without Chromium
	o := NewOIDC(t)
	users := []string{"alice", "bob"}
	var pages []*Page
	for _, u := range users { // two browser contexts at once
		pages = append(pages, b.Open(o.AppURL+"/login?u="+u))
	}
	for i, p := range pages {
		if text, err := p.WaitText("root", time.Minute); err != nil || text != "done" {
			t.Fatalf("%s: %q, %v (%s)", users[i], text, err, &o.Counts)
		}
	}
	oidcWant(t, o, users...)
}
