package apptest

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"maps"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// OIDC is an OpenID Connect provider in the manner of Keycloak (IdPURL)
// and a confidential client web app that logs its users in with it, as a
// server-side app using an OIDC library does (AppURL): two origins. The
// app's /login keeps a state, a nonce and a PKCE verifier in its pre-login
// session (cookie app_session) and sends the browser to the IdP's
// /authorize, whose login form carries the request in hidden fields, bound
// to an auth session (cookie AUTH_SESSION_ID) and a tab_id in the form's
// action; its POST /login (password "pw-" + user) sends the browser back
// to the app's /callback with a one-time code (60 s, bound to the client,
// redirect_uri, code_challenge and nonce), which the app redeems at the
// IdP's /token itself (HTTP Basic client credentials, S256 verifier). The
// app checks the id_token (HS256 with the client secret, nonce, at_hash),
// rotates its session and keeps notes with small ids behind a per-session
// CSRF token; its logout goes through the IdP's end_session endpoint. A
// live IdP session (cookie KEYCLOAK_IDENTITY) answers /authorize at once.
// Every HTML page carries a script that makes a browser walk the visit of
// OIDCClient from the app's /login?u=NAME.
//
// Counts, both servers in one: "app logins", "idp logins", "idp sso",
// "idp login refused", "idp form mismatch" (hidden fields not those of the
// auth session), "authorize refused", "state mismatch", "login failed"
// (callback refused after the state check), "code reused", "code
// expired", "code invalid", "pkce failed", "client refused", "csrf
// failed", "login redirects", "404 foreign" (another user's note),
// "notes created", "logouts" (app), "idp logouts", and each status of 400
// and more answered by either server, "400" counting the token endpoint's
// answers to the app too; "404 favicon" is not in "404".
type OIDC struct {
	AppURL, IdPURL string
	Counts         Counts

	appMu    sync.Mutex
	sessions map[string]*oidcSession // app_session → session
	notes    map[int]*oidcNote
	lastNote int
	users    map[string]bool

	idpMu sync.Mutex
	auth  map[string]map[string]url.Values // AUTH_SESSION_ID → tab_id → authorize request
	sso   map[string]string                // KEYCLOAK_IDENTITY → IdP session id
	live  map[string]oidcLive              // IdP session id → who, since when
	codes map[string]*oidcCode

	hc *http.Client // the app's, to the IdP
}

type oidcSession struct {
	user, sub, csrf, idToken string                 // set when made, never changed
	pending                  map[string]oidcPending // state → what its callback checks
}

type oidcPending struct{ nonce, verifier string }

type oidcNote struct{ owner, title, body string }

type oidcLive struct {
	user string
	at   time.Time
}

type oidcCode struct {
	req       url.Values // client_id, redirect_uri, code_challenge, nonce, scope
	user, sid string
	auth, exp time.Time
	used      bool
}

type oidcTokens struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	IDToken     string `json:"id_token"`
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

const (
	oidcClientID = "webapp"
	oidcSecret   = "webapp-secret-7f3a9c2e41d8b605" // the client's secret, and its id_token key
	oidcIdPKey   = "idp-access-token-key-93b1c7e2"  // signs access tokens
	oidcCodeLife = 60 * time.Second
)

// oidcCarried are the authorize request's parameters that the IdP's login
// form carries in hidden fields.
var oidcCarried = []string{ //nolint:gochecknoglobals // constant table
	"response_type", "client_id", "redirect_uri", "scope", "state", "nonce", "code_challenge", "code_challenge_method", "login_hint"}

// NewOIDC starts the app and the IdP on loopback until the test ends.
func NewOIDC(tb testing.TB) *OIDC {
	o := &OIDC{sessions: map[string]*oidcSession{}, notes: map[int]*oidcNote{}, users: map[string]bool{},
		auth: map[string]map[string]url.Values{}, sso: map[string]string{}, live: map[string]oidcLive{}, codes: map[string]*oidcCode{}}
	app := httptest.NewUnstartedServer(http.HandlerFunc(o.app))
	idp := httptest.NewUnstartedServer(http.HandlerFunc(o.idp))
	// Both URLs are known before either server serves.
	o.AppURL, o.IdPURL = "http://"+app.Listener.Addr().String(), "http://"+idp.Listener.Addr().String()
	tr := &http.Transport{}
	o.hc = &http.Client{Transport: tr, Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	app.Start()
	idp.Start()
	tb.Cleanup(func() { app.Close(); idp.Close(); tr.CloseIdleConnections() })
	return o
}

// Users returns the names of the users who logged in to the app, sorted.
func (o *OIDC) Users() []string {
	o.appMu.Lock()
	defer o.appMu.Unlock()
	return slices.Sorted(maps.Keys(o.users))
}

// oidcRandom is n random bytes in unpadded base64url.
func oidcRandom(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// oidcUUID formats 16 bytes as a UUID, random ones (version 4) if b is nil.
func oidcUUID(b []byte) string {
	if b == nil {
		b = make([]byte, 16)
		_, _ = rand.Read(b)
		b[6], b[8] = b[6]&0x0f|0x40, b[8]&0x3f|0x80
	}
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func oidcS256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// oidcEsc escapes a query value as encodeURIComponent does spaces: %20.
func oidcEsc(s string) string { return strings.ReplaceAll(url.QueryEscape(s), "+", "%20") }

func oidcMAC(key, s string) []byte {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(s))
	return m.Sum(nil)
}

// oidcJWT signs claims with key, HS256.
func oidcJWT(key string, claims map[string]any) string {
	p, _ := json.Marshal(claims)
	s := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + base64.RawURLEncoding.EncodeToString(p)
	return s + "." + base64.RawURLEncoding.EncodeToString(oidcMAC(key, s))
}

// oidcClaims returns the claims of a JWT signed HS256 with key, or nil.
func oidcClaims(key, tok string) map[string]any {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || !hmac.Equal(sig, oidcMAC(key, parts[0]+"."+parts[1])) {
		return nil
	}
	var claims map[string]any
	if p, err := base64.RawURLEncoding.DecodeString(parts[1]); err != nil || json.Unmarshal(p, &claims) != nil {
		return nil
	}
	return claims // the MAC held: the header is the one oidcJWT writes
}

func oidcRedirect(w http.ResponseWriter, status int, to string) {
	w.Header().Set("Location", to)
	w.WriteHeader(status)
}

// oidcJSON answers v in JSON, not to be cached.
func oidcJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// count counts status, and what if set.
func (o *OIDC) count(status int, what string) {
	o.Counts.Add(strconv.Itoa(status), 1)
	if what != "" {
		o.Counts.Add(what, 1)
	}
}

// fail answers an error page of the IdP or of the app, whose root says
// what went wrong, and counts.
func (o *OIDC) fail(w http.ResponseWriter, idp bool, status int, what, msg string) {
	o.count(status, what)
	if idp {
		o.idpPage(w, status, "error", "Sign in to thrive", "error: "+msg, `<h1 id="kc-page-title">We are sorry...</h1>
<p id="kc-error-message" class="instruction">`+html.EscapeString(msg)+"</p>")
		return
	}
	o.appPage(w, nil, status, "error", http.StatusText(status), "error: "+msg, "<h1>"+http.StatusText(status)+"</h1>\n<p>"+html.EscapeString(msg)+"</p>")
}

// ---- The IdP ----

func (o *OIDC) idp(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	for _, kv := range [][2]string{{"X-Frame-Options", "SAMEORIGIN"}, {"X-Content-Type-Options", "nosniff"}, {"Referrer-Policy", "no-referrer"},
		{"Content-Security-Policy", "frame-src 'self'; frame-ancestors 'self'; object-src 'none';"}} {
		h.Set(kv[0], kv[1])
	}
	route := r.Method + " " + r.URL.Path
	switch route {
	case "GET /authorize":
		o.authorize(w, r)
	case "POST /login":
		o.idpLogin(w, r)
	case "POST /token":
		o.token(w, r)
	case "GET /logout":
		o.endSession(w, r)
	case "GET /favicon.ico":
		o.Counts.Add("404 favicon", 1)
		http.NotFound(w, r)
	default:
		if slices.Contains([]string{"/authorize", "/login", "/token", "/logout"}, r.URL.Path) {
			o.fail(w, true, http.StatusMethodNotAllowed, "", "Method not allowed: "+route)
			return
		}
		o.fail(w, true, http.StatusNotFound, "404 "+r.URL.Path, "Page not found")
	}
}

func (o *OIDC) idpPage(w http.ResponseWriter, status int, kind, title, root, body string) {
	h := w.Header()
	h.Set("Content-Type", "text/html;charset=utf-8")
	h.Set("Cache-Control", "no-store, must-revalidate, max-age=0")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<!DOCTYPE html>
<html class="login-pf" lang="en"><head><meta charset="utf-8"><meta name="robots" content="noindex, nofollow"><title>%s</title></head>
<body id="keycloak-bg" class="" data-page="%s"><div class="login-pf-page"><div id="kc-header" class="login-pf-page-header"><div id="kc-header-wrapper">THRIVE</div></div>
<div class="card-pf">%s</div></div>
<div id="root">%s</div>
<script>%s</script>
</body></html>
`, html.EscapeString(title), kind, body, html.EscapeString(root), oidcIdPJS)
}

// ssoUser returns who the browser's live IdP session is of, if any.
func (o *OIDC) ssoUser(r *http.Request) (string, oidcLive) {
	o.idpMu.Lock()
	defer o.idpMu.Unlock()
	if ck, err := r.Cookie("KEYCLOAK_IDENTITY"); err == nil {
		return o.sso[ck.Value], o.live[o.sso[ck.Value]]
	}
	return "", oidcLive{}
}

// authorize checks the client and its redirect_uri (errors about those are
// shown, not redirected), then the rest (errors redirected to the client),
// and answers with a code if the browser has a live IdP session, else with
// the login form.
func (o *OIDC) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	switch {
	case q.Get("client_id") != oidcClientID:
		o.fail(w, true, http.StatusBadRequest, "authorize refused", "Client not found.")
		return
	case q.Get("redirect_uri") != o.AppURL+"/callback":
		o.fail(w, true, http.StatusBadRequest, "authorize refused", "Invalid parameter: redirect_uri")
		return
	}
	bad, desc := "invalid_request", ""
	switch ch := q.Get("code_challenge"); {
	case q.Get("response_type") != "code":
		bad, desc = "unsupported_response_type", "Client is not allowed to initiate browser login with given response_type."
	case !slices.Contains(strings.Fields(q.Get("scope")), "openid"):
		bad, desc = "invalid_scope", "Invalid scopes: "+q.Get("scope")
	case q.Get("code_challenge_method") != "S256":
		desc = "Missing parameter: code_challenge_method"
	case len(ch) != 43 || strings.Trim(ch, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "":
		desc = "Invalid parameter: code_challenge"
	}
	if desc != "" {
		o.Counts.Add("authorize refused", 1)
		if bad += "&error_description=" + oidcEsc(desc); q.Has("state") {
			bad += "&state=" + oidcEsc(q.Get("state"))
		}
		oidcRedirect(w, http.StatusFound, q.Get("redirect_uri")+"?error="+bad)
		return
	}
	req := url.Values{}
	for _, k := range oidcCarried {
		if q.Has(k) {
			req.Set(k, q.Get(k))
		}
	}
	if sid, l := o.ssoUser(r); l.user != "" && q.Get("prompt") != "login" {
		o.Counts.Add("idp sso", 1)
		o.toClient(w, req, sid, l)
		return
	}
	ck, _ := r.Cookie("AUTH_SESSION_ID")
	tab := oidcRandom(8)
	o.idpMu.Lock()
	if ck == nil || o.auth[ck.Value] == nil {
		ck = &http.Cookie{Name: "AUTH_SESSION_ID", Value: oidcUUID(nil) + ".idp-0", Path: "/", HttpOnly: true}
		o.auth[ck.Value] = map[string]url.Values{}
		http.SetCookie(w, ck)
	}
	o.auth[ck.Value][tab] = req
	o.idpMu.Unlock()
	o.loginForm(w, tab, req, req.Get("login_hint"), "")
}

func (o *OIDC) loginForm(w http.ResponseWriter, tab string, req url.Values, username, failure string) {
	var b strings.Builder
	b.WriteString(`<header class="login-pf-header"><h1 id="kc-page-title">Sign in to your account</h1></header>` + "\n")
	if failure != "" {
		fmt.Fprintf(&b, `<div class="alert-error"><span id="input-error" class="kc-feedback-text">%s</span></div>`+"\n", html.EscapeString(failure))
	}
	fmt.Fprintf(&b, `<form id="kc-form-login" action="%s" method="post">`+"\n",
		html.EscapeString("/login?client_id="+oidcEsc(req.Get("client_id"))+"&tab_id="+tab))
	for _, k := range oidcCarried {
		if req.Has(k) {
			fmt.Fprintf(&b, `<input type="hidden" name="%s" value="%s">`+"\n", k, html.EscapeString(req.Get(k)))
		}
	}
	fmt.Fprintf(&b, `<div class="form-group"><label for="username" class="pf-c-form__label">Username or email</label><input tabindex="1" id="username" class="pf-c-form-control" name="username" value="%s" type="text" autofocus autocomplete="off"></div>
<div class="form-group"><label for="password" class="pf-c-form__label">Password</label><input tabindex="2" id="password" class="pf-c-form-control" name="password" type="password" autocomplete="off"></div>
<div id="kc-form-buttons" class="form-group"><input type="hidden" id="id-hidden-input" name="credentialId"><input tabindex="4" class="pf-c-button pf-m-primary" name="login" id="kc-login" type="submit" value="Sign In"></div>
</form>`, html.EscapeString(username))
	o.idpPage(w, http.StatusOK, "login", "Sign in to thrive", "", b.String())
}

// idpLogin takes the login form: the auth session its cookie names, the
// request its tab_id names there, which the hidden fields must repeat.
func (o *OIDC) idpLogin(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	tab := r.URL.Query().Get("tab_id")
	ck, _ := r.Cookie("AUTH_SESSION_ID")
	var req url.Values
	found := false
	o.idpMu.Lock()
	if ck != nil {
		var tabs map[string]url.Values
		tabs, found = o.auth[ck.Value]
		req = tabs[tab]
	}
	o.idpMu.Unlock()
	switch {
	case !found:
		o.fail(w, true, http.StatusBadRequest, "", "Cookie not found. Please make sure cookies are enabled in your browser.")
		return
	case req == nil:
		o.fail(w, true, http.StatusBadRequest, "", "Your login attempt timed out. Login will start from the beginning.")
		return
	}
	for _, k := range oidcCarried {
		if r.PostForm.Get(k) != req.Get(k) {
			o.fail(w, true, http.StatusBadRequest, "idp form mismatch", "Invalid parameter: "+k)
			return
		}
	}
	user, pw := r.PostForm.Get("username"), r.PostForm.Get("password")
	if user == "" || subtle.ConstantTimeCompare([]byte(pw), []byte("pw-"+user)) != 1 {
		o.Counts.Add("idp login refused", 1)
		o.loginForm(w, tab, req, user, "Invalid username or password.")
		return
	}
	sid, identity, now := oidcUUID(nil), oidcRandom(32), time.Now()
	o.idpMu.Lock()
	_, still := o.auth[ck.Value][tab] // not taken by a form sent twice
	if still {
		delete(o.auth[ck.Value], tab)
		o.sso[identity] = sid
		o.live[sid] = oidcLive{user, now}
	}
	o.idpMu.Unlock()
	if !still {
		o.fail(w, true, http.StatusBadRequest, "", "Your login attempt timed out. Login will start from the beginning.")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: "KEYCLOAK_IDENTITY", Value: identity, Path: "/", HttpOnly: true})
	o.Counts.Add("idp logins", 1)
	o.toClient(w, req, sid, oidcLive{user, now})
}

// toClient gives a code for req and sends the browser back to the client.
func (o *OIDC) toClient(w http.ResponseWriter, req url.Values, sid string, l oidcLive) {
	code := oidcRandom(32)
	o.idpMu.Lock()
	o.codes[code] = &oidcCode{req: req, user: l.user, sid: sid, auth: l.at, exp: time.Now().Add(oidcCodeLife)}
	o.idpMu.Unlock()
	to := req.Get("redirect_uri") + "?code=" + code
	if req.Has("state") {
		to += "&state=" + oidcEsc(req.Get("state"))
	}
	oidcRedirect(w, http.StatusFound, to+"&session_state="+sid+"&iss="+oidcEsc(o.IdPURL))
}

func (o *OIDC) tokenError(w http.ResponseWriter, status int, what, code, desc string) {
	o.count(status, what)
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="thrive"`)
	}
	oidcJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

// token is the token endpoint for the authorization_code grant. A code is
// spent by its first presentation, whatever follows.
func (o *OIDC) token(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	id, secret, ok := r.BasicAuth()
	id, err1 := url.QueryUnescape(id) // RFC 6749 2.3.1: form-encoded, then Basic
	secret, err2 := url.QueryUnescape(secret)
	if !ok || err1 != nil || err2 != nil || id != oidcClientID || subtle.ConstantTimeCompare([]byte(secret), []byte(oidcSecret)) != 1 {
		o.tokenError(w, http.StatusUnauthorized, "client refused", "invalid_client", "Invalid client or Invalid client credentials")
		return
	}
	if r.PostForm.Get("grant_type") != "authorization_code" {
		o.tokenError(w, http.StatusBadRequest, "", "unsupported_grant_type", "Unsupported grant_type")
		return
	}
	o.idpMu.Lock()
	c := o.codes[r.PostForm.Get("code")]
	var used bool
	var live oidcLive
	if c != nil {
		used, c.used = c.used, true
		live = o.live[c.sid]
	}
	o.idpMu.Unlock()
	v, what, desc := r.PostForm.Get("code_verifier"), "code invalid", ""
	switch {
	case c == nil:
		desc = "Code not valid"
	case used:
		what, desc = "code reused", "Code not valid"
	case time.Now().After(c.exp):
		what, desc = "code expired", "Code not valid"
	case c.req.Get("client_id") != id:
		desc = "Auth error"
	case r.PostForm.Get("redirect_uri") != c.req.Get("redirect_uri"):
		desc = "Incorrect redirect_uri"
	case live.user == "":
		desc = "Session not active"
	case v == "":
		what, desc = "pkce failed", "PKCE code verifier not specified"
	case len(v) < 43 || len(v) > 128 || strings.Trim(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~") != "":
		what, desc = "pkce failed", "PKCE verification failed: Invalid code verifier"
	case subtle.ConstantTimeCompare([]byte(oidcS256(v)), []byte(c.req.Get("code_challenge"))) != 1:
		what, desc = "pkce failed", "PKCE verification failed: Code mismatch"
	default:
		o.issue(w, c)
		return
	}
	o.tokenError(w, http.StatusBadRequest, what, "invalid_grant", desc)
}

func (o *OIDC) issue(w http.ResponseWriter, c *oidcCode) {
	now := time.Now().Unix()
	sub := sha256.Sum256([]byte("sub " + c.user))
	scope := c.req.Get("scope")
	common := func(typ string) map[string]any {
		return map[string]any{"exp": now + 300, "iat": now, "auth_time": c.auth.Unix(), "jti": oidcUUID(nil), "iss": o.IdPURL,
			"sub": oidcUUID(sub[:16]), "typ": typ, "azp": oidcClientID, "sid": c.sid, "preferred_username": c.user}
	}
	at := common("Bearer")
	at["aud"], at["scope"] = "account", scope
	access := oidcJWT(oidcIdPKey, at)
	ah := sha256.Sum256([]byte(access))
	it := common("ID")
	it["aud"], it["at_hash"] = oidcClientID, base64.RawURLEncoding.EncodeToString(ah[:16])
	if c.req.Has("nonce") {
		it["nonce"] = c.req.Get("nonce")
	}
	oidcJSON(w, http.StatusOK, map[string]any{"access_token": access, "expires_in": 300, "refresh_expires_in": 0, "token_type": "Bearer",
		"id_token": oidcJWT(oidcSecret, it), "not-before-policy": 0, "session_state": c.sid, "scope": scope})
}

// endSession is RP-initiated logout with an id_token_hint: it ends the IdP
// session the hint names and sends the browser to the registered
// post_logout_redirect_uri.
func (o *OIDC) endSession(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	claims := oidcClaims(oidcSecret, q.Get("id_token_hint"))
	post := q.Get("post_logout_redirect_uri")
	switch {
	case !q.Has("id_token_hint"):
		o.fail(w, true, http.StatusBadRequest, "", "Missing parameters: id_token_hint")
		return
	case claims == nil || claims["iss"] != o.IdPURL || claims["aud"] != oidcClientID:
		o.fail(w, true, http.StatusBadRequest, "", "Invalid parameter: id_token_hint")
		return
	case post != o.AppURL+"/": // this IdP has no logged-out page of its own
		o.fail(w, true, http.StatusBadRequest, "", "Invalid redirect uri")
		return
	}
	sid, _ := claims["sid"].(string)
	o.idpMu.Lock()
	_, was := o.live[sid]
	delete(o.live, sid)
	maps.DeleteFunc(o.sso, func(_, s string) bool { return s == sid })
	o.idpMu.Unlock()
	if was {
		o.Counts.Add("idp logouts", 1)
	}
	http.SetCookie(w, &http.Cookie{Name: "KEYCLOAK_IDENTITY", Path: "/", MaxAge: -1, HttpOnly: true})
	if q.Has("state") {
		post += "?state=" + oidcEsc(q.Get("state"))
	}
	oidcRedirect(w, http.StatusFound, post)
}

// ---- The app ----

// oidcRoutes are the app's routes and their methods; those under
// /notes/ are "/notes/{id}".
var oidcRoutes = map[string]string{ //nolint:gochecknoglobals // constant table
	"/": "GET", "/login": "GET", "/callback": "GET", "/home": "GET", "/api/me": "GET",
	"/notes": "GET POST", "/notes/{id}": "GET", "/logout": "POST"}

func (o *OIDC) app(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	var sid string
	var s *oidcSession
	if ck, err := r.Cookie("app_session"); err == nil {
		o.appMu.Lock()
		if s = o.sessions[ck.Value]; s != nil {
			sid = ck.Value
		}
		o.appMu.Unlock()
	}
	p, route := r.URL.Path, r.URL.Path
	if strings.HasPrefix(p, "/notes/") {
		route = "/notes/{id}"
	}
	methods, known := oidcRoutes[route]
	switch {
	case p == "/favicon.ico":
		o.Counts.Add("404 favicon", 1)
		http.NotFound(w, r)
	case !known:
		o.fail(w, false, http.StatusNotFound, "404 "+p, "Not found: "+p)
	case !slices.Contains(strings.Fields(methods), r.Method):
		w.Header().Set("Allow", strings.ReplaceAll(methods, " ", ", "))
		o.fail(w, false, http.StatusMethodNotAllowed, "", "Method not allowed: "+r.Method+" "+p)
	case route == "/":
		o.appPage(w, s, http.StatusOK, "public", "Welcome", "", `<h1>Thrive notes</h1>
<p>Notes that follow you. <a id="login" href="/login">Log in</a> to see yours.</p>`)
	case route == "/login":
		o.startLogin(w, r, s)
	case route == "/callback":
		o.callback(w, r, sid, s)
	case s == nil || s.user == "":
		o.Counts.Add("login redirects", 1)
		oidcRedirect(w, http.StatusFound, "/login")
	case r.Method == http.MethodPost && subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf_token")), []byte(s.csrf)) != 1:
		o.fail(w, false, http.StatusForbidden, "csrf failed", "CSRF token missing or incorrect.")
	case route == "/logout":
		o.appMu.Lock()
		delete(o.sessions, sid)
		o.appMu.Unlock()
		http.SetCookie(w, &http.Cookie{Name: "app_session", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode})
		o.Counts.Add("logouts", 1)
		oidcRedirect(w, http.StatusFound, o.IdPURL+"/logout?id_token_hint="+s.idToken+"&post_logout_redirect_uri="+oidcEsc(o.AppURL+"/"))
	default:
		o.signedIn(w, r, s, route)
	}
}

// signedIn answers the pages of a logged-in user.
func (o *OIDC) signedIn(w http.ResponseWriter, r *http.Request, s *oidcSession, route string) {
	switch {
	case route == "/home":
		o.appPage(w, s, http.StatusOK, "home", "Home", "", `<h1>Welcome, <span id="name">`+html.EscapeString(s.user)+`</span></h1>
<p>You are signed in with the identity provider. <a href="/notes">Your notes</a></p>`)
	case route == "/api/me":
		n := 0
		o.appMu.Lock()
		for _, nt := range o.notes {
			if nt.owner == s.user {
				n++
			}
		}
		o.appMu.Unlock()
		oidcJSON(w, http.StatusOK, map[string]any{"user": s.user, "sub": s.sub, "notes": n})
	case route == "/notes" && r.Method == http.MethodPost:
		title, body := strings.TrimSpace(r.PostFormValue("title")), strings.TrimSpace(r.PostFormValue("body"))
		if title == "" || len(title) > 200 {
			o.fail(w, false, http.StatusBadRequest, "", "A note needs a title of at most 200 characters.")
			return
		}
		o.appMu.Lock()
		o.lastNote++
		id := o.lastNote
		o.notes[id] = &oidcNote{s.user, title, body}
		o.appMu.Unlock()
		o.Counts.Add("notes created", 1)
		oidcRedirect(w, http.StatusSeeOther, "/notes/"+strconv.Itoa(id))
	case route == "/notes":
		var b strings.Builder
		o.appMu.Lock()
		for _, id := range slices.Sorted(maps.Keys(o.notes)) {
			if nt := o.notes[id]; nt.owner == s.user {
				fmt.Fprintf(&b, "<li><a href=\"/notes/%d\">%s</a></li>\n", id, html.EscapeString(nt.title))
			}
		}
		o.appMu.Unlock()
		o.appPage(w, s, http.StatusOK, "notes", "Your notes", "", `<h1>Your notes</h1>
<ul id="notes">
`+b.String()+`</ul>
<form id="new-note" method="post" action="/notes"><input type="hidden" name="csrf_token" value="`+s.csrf+`">
<label for="title">Title</label> <input id="title" name="title" maxlength="200" required>
<label for="body">Text</label> <textarea id="body" name="body"></textarea>
<button type="submit">Add note</button></form>`)
	default: // /notes/{id}
		id, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/notes/"))
		o.appMu.Lock()
		nt := o.notes[id]
		o.appMu.Unlock()
		switch {
		case err != nil || nt == nil:
			o.fail(w, false, http.StatusNotFound, "404 /notes/{id}", "No such note.")
		case nt.owner != s.user:
			o.fail(w, false, http.StatusNotFound, "404 foreign", "No such note.")
		default:
			o.appPage(w, s, http.StatusOK, "note", nt.title, "", `<h1 id="note-title">`+html.EscapeString(nt.title)+`</h1>
<p id="note-body">`+html.EscapeString(nt.body)+`</p>
<p><a id="back" href="/notes">All notes</a></p>`)
		}
	}
}

func (o *OIDC) appPage(w http.ResponseWriter, s *oidcSession, status int, kind, title, root, body string) {
	nav := `<a href="/">Thrive notes</a> · <a id="login" href="/login">Log in</a>`
	if s != nil && s.user != "" {
		nav = `<a href="/">Thrive notes</a> · <a href="/home">Home</a> · <a id="notes-link" href="/notes">Notes</a> · Signed in as <strong id="user">` +
			html.EscapeString(s.user) + `</strong> <form id="logout-form" method="post" action="/logout"><input type="hidden" name="csrf_token" value="` +
			s.csrf + `"><button type="submit">Log out</button></form>`
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>%s · Thrive notes</title></head>
<body data-page="%s"><nav>%s</nav>
<main>%s</main>
<div id="root">%s</div>
<script>%s</script>
</body></html>
`, html.EscapeString(title), kind, nav, body, html.EscapeString(root), oidcAppJS)
}

// startLogin keeps a state, a nonce and a PKCE verifier in the session
// (made if there is none) and sends the browser to the IdP.
func (o *OIDC) startLogin(w http.ResponseWriter, r *http.Request, s *oidcSession) {
	state, nonce, verifier := oidcRandom(32), oidcRandom(32), oidcRandom(32)
	o.appMu.Lock()
	if s == nil {
		sid := oidcRandom(32)
		s = &oidcSession{pending: map[string]oidcPending{}}
		o.sessions[sid] = s
		http.SetCookie(w, &http.Cookie{Name: "app_session", Value: sid, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
	}
	s.pending[state] = oidcPending{nonce, verifier}
	o.appMu.Unlock()
	to := o.IdPURL + "/authorize?response_type=code&client_id=" + oidcClientID + "&redirect_uri=" + oidcEsc(o.AppURL+"/callback") +
		"&scope=openid%20profile&state=" + state + "&nonce=" + nonce + "&code_challenge=" + oidcS256(verifier) + "&code_challenge_method=S256"
	if u := r.URL.Query().Get("u"); u != "" {
		to += "&login_hint=" + oidcEsc(u)
	}
	oidcRedirect(w, http.StatusFound, to)
}

// callback takes the IdP's answer: the state must be one this session
// started (it is spent whatever follows), the code is redeemed at the
// token endpoint and the id_token checked; then the session is rotated.
func (o *OIDC) callback(w http.ResponseWriter, r *http.Request, sid string, s *oidcSession) {
	q := r.URL.Query()
	state := q.Get("state")
	var pend oidcPending
	ok := false
	o.appMu.Lock()
	if s != nil && state != "" {
		pend, ok = s.pending[state]
		delete(s.pending, state)
	}
	o.appMu.Unlock()
	if !ok {
		o.fail(w, false, http.StatusBadRequest, "state mismatch", "Login failed: mismatching state, CSRF warning. State not equal in request and response.")
		return
	}
	var claims map[string]any
	var tok oidcTokens
	var err error
	switch {
	case q.Get("error") != "":
		err = errors.New("the identity provider answered " + q.Get("error") + ": " + q.Get("error_description"))
	case q.Has("iss") && q.Get("iss") != o.IdPURL: // RFC 9207
		err = errors.New("the issuer is not the identity provider")
	default:
		if tok, err = o.redeem(r, q.Get("code"), pend.verifier); err == nil {
			claims, err = o.checkIDToken(tok, pend.nonce)
		}
	}
	if err != nil {
		o.fail(w, false, http.StatusBadRequest, "login failed", "Login failed: "+err.Error())
		return
	}
	user, _ := claims["preferred_username"].(string)
	sub, _ := claims["sub"].(string)
	ns, nid := &oidcSession{user: user, sub: sub, csrf: oidcRandom(32), idToken: tok.IDToken, pending: map[string]oidcPending{}}, oidcRandom(32)
	o.appMu.Lock()
	maps.Copy(ns.pending, s.pending) // cycle_key: the session's data, under a new key
	delete(o.sessions, sid)
	o.sessions[nid] = ns
	o.users[user] = true
	o.appMu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: "app_session", Value: nid, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
	o.Counts.Add("app logins", 1)
	oidcRedirect(w, http.StatusFound, "/home")
}

// redeem exchanges code at the IdP's token endpoint, from this server.
func (o *OIDC) redeem(r *http.Request, code, verifier string) (oidcTokens, error) {
	var tok oidcTokens
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {o.AppURL + "/callback"}, "code_verifier": {verifier}}
	req, _ := http.NewRequestWithContext(r.Context(), http.MethodPost, o.IdPURL+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(url.QueryEscape(oidcClientID), url.QueryEscape(oidcSecret))
	resp, err := o.hc.Do(req)
	if err != nil {
		return tok, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil {
		return tok, fmt.Errorf("token endpoint: %d: %w", resp.StatusCode, err)
	}
	if resp.StatusCode != http.StatusOK || tok.Error != "" || tok.IDToken == "" || !strings.EqualFold(tok.TokenType, "Bearer") {
		return tok, fmt.Errorf("token endpoint: %d %s (%s)", resp.StatusCode, tok.Error, tok.Description)
	}
	return tok, nil
}

// checkIDToken checks the id_token's signature, issuer, audience, expiry,
// nonce and at_hash, and returns its claims.
func (o *OIDC) checkIDToken(tok oidcTokens, nonce string) (map[string]any, error) {
	c := oidcClaims(oidcSecret, tok.IDToken)
	ah := sha256.Sum256([]byte(tok.AccessToken))
	exp, _ := c["exp"].(float64)
	user, _ := c["preferred_username"].(string)
	switch {
	case c == nil:
		return nil, errors.New("the id_token's signature is not valid")
	case c["iss"] != o.IdPURL || c["aud"] != oidcClientID:
		return nil, fmt.Errorf("the id_token is from %v for %v", c["iss"], c["aud"])
	case int64(exp) < time.Now().Unix():
		return nil, errors.New("the id_token has expired")
	case c["nonce"] != nonce:
		return nil, errors.New("the id_token's nonce is not the one sent")
	case c["at_hash"] != base64.RawURLEncoding.EncodeToString(ah[:16]):
		return nil, errors.New("the id_token's at_hash does not match the access token")
	case user == "":
		return nil, errors.New("the id_token names no user")
	}
	return c, nil
}

// oidcIdPJS fills the IdP's login form as the login_hint it carries, with
// password "pw-" + it, and submits it, once per authorize request.
const oidcIdPJS = `(() => {
  const q = s => document.querySelector(s), root = document.getElementById("root"), fail = m => { root.textContent = "error: " + m; };
  if (document.body.dataset.page !== "login") return;
  if (q("#input-error")) return fail(q("#input-error").textContent.trim());
  const form = q("#kc-form-login"), f = n => (form.elements.namedItem(n) || {}).value, hint = f("login_hint"), key = "visit.login." + f("state");
  if (!hint) return fail("no login_hint on the login page");
  if (sessionStorage.getItem(key)) return;
  sessionStorage.setItem(key, "sent");
  setTimeout(() => { try { q("#username").value = hint; q("#password").value = "pw-" + hint; form.submit(); } catch (e) { fail(e.message); } },
    20 + Math.random() * 60);
})();
`

// oidcAppJS moves a browser's visit of the app on, one step per page:
// from home (which checks /api/me) to the notes, two notes added, the
// second opened from the list, logout; the public page after it says
// "done". A page acts only as the step it expects, after 20 to 80 ms.
const oidcAppJS = `(() => {
  const S = sessionStorage, q = s => document.querySelector(s), root = document.getElementById("root");
  const fail = m => { root.textContent = "error: " + m; }, kind = document.body.dataset.page;
  const steps = ["home", "notes", "note", "notes", "note", "notes", "note", "public"];
  const n = +(S.getItem("visit.step") || 0), links = () => [...document.querySelectorAll("#notes a")];
  const count = k => { const b = +(S.getItem("visit.base") || 0); if (links().length !== b + k) throw new Error(links().length + " notes at step " + n + ", want " + (b + k)); };
  const add = t => { q("#title").value = t; q("#body").value = "Written at step " + n + "."; q("#new-note").submit(); };
  const is = t => { const h = (q("#note-title") || {}).textContent; if (h !== t) throw new Error("note " + JSON.stringify(h) + " at step " + n + ", want " + t); };
  const acts = [async () => {
    const me = await (await fetch("/api/me")).json();
    if (me.user !== q("#user").textContent) throw new Error("/api/me says " + me.user);
    q("#notes-link").click();
  }, () => { S.setItem("visit.base", links().length); add("First note"); }, () => { is("First note"); q("#back").click(); },
  () => { count(1); add("Second note"); }, () => { is("Second note"); q("#back").click(); },
  () => { count(2); const a = links().find(a => a.textContent === "Second note"); if (!a) throw new Error("no Second note"); a.click(); },
  () => { is("Second note"); q("#logout-form").submit(); }, () => { root.textContent = "done"; }];
  if (kind === "error") return;
  if (kind !== steps[n]) return n > 0 && kind === steps[n - 1] || fail("page " + kind + " " + location.pathname + " at step " + n);
  S.setItem("visit.step", n + 1);
  setTimeout(async () => { try { await acts[n](); } catch (e) { fail(e.message); } }, 20 + Math.random() * 60);
})();
`

// OIDCClient is a person visiting the app of an OIDC at base (its AppURL)
// with a browser, done with net/http: the visit of the pages' scripts,
// from base/login?u=user through the IdP and back, two notes, logout
// through the IdP, each redirect followed separately. It fails tb on any
// status but the expected one.
func OIDCClient(tb testing.TB, base, user string) {
	tb.Helper()
	newOIDCUser(tb, base).visit(user)
}

// oidcUser is a browser context of OIDCClient: a cookie jar and
// connections of its own.
type oidcUser struct {
	tb   testing.TB
	c    *http.Client
	base string
	csrf string // the csrf_token of the last page that had one
	page string // the last body read
}

var (
	oidcCSRFRE   = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)
	oidcActionRE = regexp.MustCompile(`<form id="kc-form-login" action="([^"]*)"`)
	oidcHiddenRE = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)
)

func newOIDCUser(tb testing.TB, base string) *oidcUser {
	jar, _ := cookiejar.New(nil)
	tr := &http.Transport{}
	tb.Cleanup(tr.CloseIdleConnections)
	return &oidcUser{tb: tb, base: base, c: &http.Client{Jar: jar, Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// do sends a request to target (a path of the app, or a URL), a form if
// form is not nil, and fails the test unless the status is want. It
// returns the Location, made absolute, and the body.
func (u *oidcUser) do(method, target string, form url.Values, want int) (string, string) {
	u.tb.Helper()
	if strings.HasPrefix(target, "/") {
		target = u.base + target
	}
	body, header := "", []string(nil)
	if form != nil {
		body, header = form.Encode(), []string{"Content-Type", "application/x-www-form-urlencoded"}
	}
	ans := Do(u.tb, u.c, method, target, body, header...)
	if ans.Status != want {
		u.tb.Fatalf("%s %s: %d, want %d: %.400s", method, target, ans.Status, want, ans.Body)
	}
	loc := ans.Header.Get("Location")
	if from, err := url.Parse(target); err == nil && loc != "" {
		if to, err := from.Parse(loc); err == nil {
			loc = to.String()
		}
	}
	u.page = string(ans.Body)
	if m := oidcCSRFRE.FindStringSubmatch(u.page); m != nil {
		u.csrf = m[1]
	}
	return loc, u.page
}

// start asks the app to log user in and returns the IdP's authorize URL it
// sends the browser to.
func (u *oidcUser) start(user string) string {
	u.tb.Helper()
	loc, _ := u.do(http.MethodGet, "/login?u="+url.QueryEscape(user), nil, http.StatusFound)
	q, _ := url.ParseQuery(loc[strings.IndexByte(loc, '?')+1:])
	if !strings.Contains(loc, "/authorize?") || len(q.Get("state")) < 32 || q.Get("nonce") == "" || q.Get("code_challenge_method") != "S256" ||
		q.Get("redirect_uri") != u.base+"/callback" || q.Get("login_hint") != user {
		u.tb.Fatalf("/login sent to %q", loc)
	}
	return loc
}

// signIn gets the IdP's login form at authorize, posts it with its hidden
// fields, user and password, and returns the answer's Location; the
// answer's status must be want.
func (u *oidcUser) signIn(authorize, user, password string, want int) string {
	u.tb.Helper()
	_, page := u.do(http.MethodGet, authorize, nil, http.StatusOK)
	m := oidcActionRE.FindStringSubmatch(page)
	if m == nil {
		u.tb.Fatalf("%s: no login form: %.400s", authorize, page)
	}
	form := url.Values{"username": {user}, "password": {password}, "credentialId": {""}}
	for _, h := range oidcHiddenRE.FindAllStringSubmatch(page, -1) {
		form.Set(h[1], html.UnescapeString(h[2]))
	}
	action, _ := url.Parse(authorize)
	if action, err := action.Parse(html.UnescapeString(m[1])); err == nil {
		loc, _ := u.do(http.MethodPost, action.String(), form, want)
		return loc
	}
	u.tb.Fatalf("%s: login form action %q", authorize, m[1])
	return ""
}

// login logs user in to the app, through the IdP, up to the app's /home.
// It returns the callback URL the IdP sent to.
func (u *oidcUser) login(user string) string {
	u.tb.Helper()
	cb := u.signIn(u.start(user), user, "pw-"+user, http.StatusFound)
	if !strings.HasPrefix(cb, u.base+"/callback?code=") {
		u.tb.Fatalf("the IdP sent to %q", cb)
	}
	if loc, _ := u.do(http.MethodGet, cb, nil, http.StatusFound); loc != u.base+"/home" {
		u.tb.Fatalf("the callback sent to %q", loc)
	}
	return cb
}

// add adds a note from the notes page read last and returns its path.
func (u *oidcUser) add(title string) string {
	u.tb.Helper()
	loc, _ := u.do(http.MethodPost, "/notes", url.Values{"csrf_token": {u.csrf}, "title": {title}, "body": {"Some text."}}, http.StatusSeeOther)
	path := strings.TrimPrefix(loc, u.base)
	if ok, _ := regexp.MatchString(`^/notes/\d+$`, path); !ok {
		u.tb.Fatalf("adding %q sent to %q", title, loc)
	}
	if _, page := u.do(http.MethodGet, path, nil, http.StatusOK); !strings.Contains(page, ">"+html.EscapeString(title)+"<") {
		u.tb.Fatalf("%s does not show %q", path, title)
	}
	return path
}

func (u *oidcUser) visit(user string) {
	u.tb.Helper()
	u.login(user)
	u.do(http.MethodGet, "/home", nil, http.StatusOK)
	var me struct{ User string }
	if _, body := u.do(http.MethodGet, "/api/me", nil, http.StatusOK); json.Unmarshal([]byte(body), &me) != nil || me.User != user {
		u.tb.Fatalf("/api/me: %s", body)
	}
	u.do(http.MethodGet, "/notes", nil, http.StatusOK)
	u.add("First note")
	u.do(http.MethodGet, "/notes", nil, http.StatusOK)
	second := u.add("Second note")
	if _, page := u.do(http.MethodGet, "/notes", nil, http.StatusOK); !strings.Contains(page, `<a href="`+second+`">Second note</a>`) {
		u.tb.Fatalf("the notes page has no link to %s", second)
	}
	u.do(http.MethodGet, second, nil, http.StatusOK)
	u.logout()
}

// logout logs out of the app and, through it, of the IdP.
func (u *oidcUser) logout() {
	u.tb.Helper()
	loc, _ := u.do(http.MethodPost, "/logout", url.Values{"csrf_token": {u.csrf}}, http.StatusFound)
	if !strings.Contains(loc, "/logout?id_token_hint=") || strings.HasPrefix(loc, u.base) {
		u.tb.Fatalf("logout sent to %q", loc)
	}
	if loc, _ = u.do(http.MethodGet, loc, nil, http.StatusFound); loc != u.base+"/" {
		u.tb.Fatalf("the IdP's logout sent to %q", loc)
	}
	if _, page := u.do(http.MethodGet, "/", nil, http.StatusOK); !strings.Contains(page, `data-page="public"`) || strings.Contains(page, `id="logout-form"`) {
		u.tb.Fatalf("the page after logout: %.400s", page)
	}
}
