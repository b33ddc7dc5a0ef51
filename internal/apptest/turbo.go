package apptest

import (
	"cmp"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/md5"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"maps"
	"math"
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

// Turbo is a backend that answers, on the wire, as a Rails 7 app with
// Hotwire's Turbo does: a kanban of boards and cards, signed in to as with
// Rails' authentication generator (GET /session/new, POST /session, DELETE
// /session by a _method=delete form). The session is an encrypted cookie,
// _kanban_session (AES-256-GCM, data--iv--tag, URL-escaped, HttpOnly), sent
// again with a fresh IV in every answer of a request that read the session,
// as Rails' cookie store does; signing in and out resets it. Any cookie it
// gave stays good: nothing is kept on the server.
//
// With per_form_csrf_tokens, every form carries its own authenticity_token,
// derived from the session's CSRF secret, the form's action path and method
// (the _method one for PATCH and DELETE), masked afresh each time and good
// only for that path and method; the csrf-token meta tag's is good for any,
// also as X-CSRF-Token. A bad token or a foreign Origin is a 422
// InvalidAuthenticityToken, without Set-Cookie as any exception raised.
//
// Boards have small auto-increment ids and to_param slugs: POST /boards
// answers 303 to /boards/14-sprint-planning, whose script fetches
// /api/boards/14/cards (parseInt of the slug). Each card row has two forms
// to /boards/14/cards/7, an edit form (_method=patch) and a button_to delete
// form (_method=delete). Card forms answer 303 back to the board, with a
// flash notice. The board list shows one board a page, newest first, and
// <a rel="next" href="/boards?after=CURSOR">, a cursor MessageVerifier
// signed bound to the user. Boards are their creator's. Emails are
// NAME@example.test, passwords "pw-" + NAME. Every page carries a script
// that makes a browser do what TurboClient does, from /session/new?u=NAME.
//
// Counts: "sessions" (sign-ins), "login refused" (a 422 re-render), "login
// redirects" (anonymous requests sent to sign in), "boards created", "cards
// created", "cards updated", "cards deleted", "logouts", "422 csrf", "422
// invalid" (a blank name or title), "400 cursor" (another user's or a forged
// one), "404 foreign" (another user's board), "404 missing", "404 route".
type Turbo struct {
	URL    string
	Counts Counts

	mu                            sync.Mutex
	aead                          cipher.AEAD    // the encrypted cookie jar's
	verifier                      []byte         // the cursor's MessageVerifier key
	users                         map[string]int // who signed in → user id
	names                         map[int]string
	boards                        map[int]*turboBoard
	cards                         map[int]*turboCard
	lastUser, lastBoard, lastCard int
}

type (
	turboBoard struct {
		owner int
		name  string
	}
	turboCard struct {
		board            int
		title            string
		created, updated time.Time
	}
)

const (
	turboSecretKeyBase = "4f1c9e0b7d3a2c58e6f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c"
	turboCookie        = "_kanban_session"
	turboPageSize      = 1
	turboTokenLen      = 32 // AUTHENTICITY_TOKEN_LENGTH
)

// NewTurbo starts a Turbo on loopback until the test ends.
// turboHost is request.host as Rails reads it: the last X-Forwarded-Host
// a proxy in front added, else Host.
func turboHost(r *http.Request) string {
	if f := r.Header.Get("X-Forwarded-Host"); f != "" {
		parts := strings.Split(f, ",")
		return strings.TrimSpace(parts[len(parts)-1])
	}
	return r.Host
}

func NewTurbo(tb testing.TB) *Turbo {
	a := &Turbo{users: map[string]int{}, names: map[int]string{}, boards: map[int]*turboBoard{}, cards: map[int]*turboCard{}}
	// Rails.application.key_generator: PBKDF2 of secret_key_base, 1000
	// rounds, SHA256 as config.load_defaults 7.0 has it.
	block, _ := aes.NewCipher(turboKey("authenticated encrypted cookie", 32))
	a.aead, _ = cipher.NewGCM(block)
	a.verifier = turboKey("boards_cursor", 64)
	srv := httptest.NewServer(a)
	tb.Cleanup(srv.Close)
	a.URL = srv.URL
	return a
}

func turboKey(salt string, n int) []byte {
	k, _ := pbkdf2.Key(sha256.New, turboSecretKeyBase, []byte(salt), 1000, n)
	return k
}

// Users returns the names of the users who signed in, sorted.
func (a *Turbo) Users() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Sorted(maps.Keys(a.users))
}

func turboRandom(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func turboUUID() string {
	b := turboRandom(16)
	b[6], b[8] = b[6]&0x0f|0x40, b[8]&0x3f|0x80
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// turboEsc is ERB's html_escape.
func turboEsc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&#39;").Replace(s)
}

// turboSession is the session hash as the cookie store keeps it.
type turboSession struct {
	SessionID string      `json:"session_id"`
	CSRF      string      `json:"_csrf_token,omitempty"` // urlsafe base64 of 32 random bytes
	ReturnTo  string      `json:"return_to_after_authenticating,omitempty"`
	UserID    int         `json:"user_id,omitempty"`
	Flash     *turboFlash `json:"flash,omitempty"`
}

type turboFlash struct {
	Discard []string          `json:"discard"`
	Flashes map[string]string `json:"flashes"`
}

// turboMeta is Rails' message envelope, with a purpose and no expiry.
type turboMeta struct {
	Rails struct {
		Message string          `json:"message,omitempty"` // encrypted cookies: base64 of the serialized value
		Data    json.RawMessage `json:"data,omitempty"`    // MessageVerifier: the value
		Exp     *string         `json:"exp"`
		Pur     string          `json:"pur"`
	} `json:"_rails"`
}

// seal is the encrypted cookie jar's encrypt_and_sign: the envelope,
// encrypted, as base64 data, IV and auth tag joined by "--", escaped as
// Rack escapes cookie values.
func (a *Turbo) seal(s *turboSession) string {
	inner, _ := json.Marshal(s)
	var m turboMeta
	m.Rails.Message, m.Rails.Pur = base64.StdEncoding.EncodeToString(inner), "cookie."+turboCookie
	env, _ := json.Marshal(m)
	iv := turboRandom(12)
	out := a.aead.Seal(nil, iv, env, nil)
	n, b := len(out)-16, base64.StdEncoding.EncodeToString
	return url.QueryEscape(b(out[:n]) + "--" + b(iv) + "--" + b(out[n:]))
}

// open decrypts a cookie value; nil if it does not decrypt, as Rails then
// starts an empty session.
func (a *Turbo) open(v string) *turboSession {
	v, _ = url.QueryUnescape(v)
	var raw [3][]byte
	parts, s, m := strings.Split(v, "--"), &turboSession{}, turboMeta{}
	for i := range min(len(parts), 3) {
		raw[i], _ = base64.StdEncoding.DecodeString(parts[i])
	}
	if len(parts) != 3 || len(raw[1]) != 12 || len(raw[2]) != 16 {
		return nil
	}
	env, err := a.aead.Open(nil, raw[1], append(raw[0], raw[2]...), nil)
	if err != nil || json.Unmarshal(env, &m) != nil || m.Rails.Pur != "cookie."+turboCookie {
		return nil
	}
	if inner, err := base64.StdEncoding.DecodeString(m.Rails.Message); err != nil || json.Unmarshal(inner, s) != nil {
		return nil
	}
	return s
}

type turboCursor struct {
	UserID int `json:"user_id"`
	After  int `json:"after"`
}

// cursor is Rails.application.message_verifier(:boards_cursor).generate:
// base64 of the envelope, "--" and its HMAC-SHA256 in hex.
func (a *Turbo) cursor(user, after int) string {
	var m turboMeta
	m.Rails.Data, _ = json.Marshal(turboCursor{user, after})
	m.Rails.Pur = "boards_cursor"
	env, _ := json.Marshal(m)
	data := base64.StdEncoding.EncodeToString(env)
	return data + "--" + turboHexMAC(a.verifier, data)
}

func turboHexMAC(key []byte, data string) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(data))
	return hex.EncodeToString(mac.Sum(nil))
}

func (a *Turbo) uncursor(v string) (c turboCursor, ok bool) {
	var m turboMeta
	data, sig, _ := strings.Cut(v, "--")
	env, err := base64.StdEncoding.DecodeString(data)
	ok = hmac.Equal([]byte(sig), []byte(turboHexMAC(a.verifier, data))) && err == nil &&
		json.Unmarshal(env, &m) == nil && m.Rails.Pur == "boards_cursor" && json.Unmarshal(m.Rails.Data, &c) == nil
	return c, ok
}

// turboParam is to_param :name: the id, "-" and the parameterized name cut
// to 20 characters at a "-".
func turboParam(id int, name string) string {
	p := strings.Trim(regexp.MustCompile(`[^a-z0-9]+`).ReplaceAllString(strings.ToLower(name), "-"), "-")
	if len(p) > 20 {
		p = p[:cmp.Or(strings.LastIndex(p[:21], "-")+1, 21)-1]
	}
	return strings.TrimSuffix(strconv.Itoa(id)+"-"+p, "-")
}

// turboCall is one request on its way through the app.
type turboCall struct {
	a      *Turbo
	w      http.ResponseWriter
	r      *http.Request
	method string // after Rack::MethodOverride
	action string // controller#action
	start  time.Time
	sess   *turboSession // once read
	uid    int           // the signed-in user's id and name
	user   string
}

// turboRoutes is config/routes.rb: root, resource :session, resources
// :boards with resources :cards, and the API's cards.
var turboRoutes = map[string]string{ //nolint:gochecknoglobals // constant table
	"GET /": "boards#index", "GET /session/new": "sessions#new", "POST /session": "sessions#create",
	"DELETE /session": "sessions#destroy", "GET /boards": "boards#index", "POST /boards": "boards#create",
	"GET /boards/:id": "boards#show", "POST /boards/:id/cards": "cards#create", "PATCH /boards/:id/cards/:id": "cards#update",
	"PUT /boards/:id/cards/:id": "cards#update", "DELETE /boards/:id/cards/:id": "cards#destroy", "GET /api/boards/:id/cards": "api/cards#index",
}

var turboActions = map[string]func(*turboCall, []int){ //nolint:gochecknoglobals // constant table
	"sessions#new": (*turboCall).signIn, "sessions#create": (*turboCall).signIn, "sessions#destroy": (*turboCall).signOut,
	"boards#index": (*turboCall).boardList, "boards#create": (*turboCall).boardCreate, "boards#show": (*turboCall).boardShow,
	"cards#create": (*turboCall).cardChange, "cards#update": (*turboCall).cardChange, "cards#destroy": (*turboCall).cardChange,
	"api/cards#index": (*turboCall).apiCards,
}

// turboRoute recognizes a path: its controller#action and the ids in it,
// read as to_i reads "14-sprint-planning".
func turboRoute(method, path string) (string, []int) {
	segs, ids := strings.Split(path, "/"), []int(nil)
	for i := 2; i < len(segs); i++ {
		if (segs[i-1] == "boards" || segs[i-1] == "cards") && segs[i] != "" && !strings.Contains(segs[i], ".") {
			n, _ := strconv.Atoi(segs[i][:len(segs[i])-len(strings.TrimLeft(segs[i], "0123456789"))])
			ids, segs[i] = append(ids, n), ":id"
		}
	}
	if method == http.MethodHead {
		method = http.MethodGet
	}
	return turboRoutes[method+" "+strings.Join(segs, "/")], ids
}

func (a *Turbo) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/favicon.ico" { // public/favicon.ico, empty, served before the app
		w.Header().Set("Content-Type", "image/vnd.microsoft.icon")
		http.ServeContent(w, r, "favicon.ico", time.Time{}, strings.NewReader(""))
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	c := &turboCall{a: a, w: w, r: r, method: r.Method, start: time.Now()}
	if m := strings.ToUpper(cmp.Or(r.PostFormValue("_method"), r.Header.Get("X-HTTP-Method-Override"))); r.Method == http.MethodPost &&
		slices.Contains([]string{"PUT", "PATCH", "DELETE", "OPTIONS", "LINK", "UNLINK"}, m) { // Rack::MethodOverride
		c.method = m
	}
	action, ids := turboRoute(c.method, cmp.Or(strings.TrimSuffix(r.URL.Path, "/"), "/"))
	if c.action = action; action == "" {
		c.fail(http.StatusNotFound, "route", true)
		return
	}
	c.session() // every action reads it, to authenticate
	if reason := c.forgery(); reason != "" {
		c.fail(http.StatusUnprocessableEntity, "csrf", true, "ActionController::InvalidAuthenticityToken: "+reason)
		return
	}
	if c.uid == 0 && (action == "sessions#destroy" || !strings.HasPrefix(action, "sessions#")) {
		c.sess.ReturnTo = "http://" + turboHost(r) + r.URL.RequestURI() // request_authentication
		c.a.Counts.Add("login redirects", 1)
		c.redirect(http.StatusFound, "/session/new")
		return
	}
	turboActions[action](c, ids)
}

// session reads the session from its cookie, or starts one.
func (c *turboCall) session() *turboSession {
	if c.sess == nil {
		if ck, err := c.r.Cookie(turboCookie); err == nil {
			c.sess = c.a.open(ck.Value)
		}
		if c.sess == nil {
			c.reset()
		}
		if c.uid = c.sess.UserID; c.uid != 0 {
			c.user = c.a.names[c.uid]
		}
	}
	return c.sess
}

// reset is reset_session: a new session id, and no CSRF secret yet.
func (c *turboCall) reset() {
	c.sess, c.uid, c.user = &turboSession{SessionID: hex.EncodeToString(turboRandom(16))}, 0, ""
}

// secret is real_csrf_token: the session's, made on first use.
func (c *turboCall) secret() []byte {
	if s := c.session(); s.CSRF == "" {
		s.CSRF = base64.RawURLEncoding.EncodeToString(turboRandom(turboTokenLen))
	}
	b, _ := base64.RawURLEncoding.DecodeString(c.sess.CSRF)
	return b
}

// raw is csrf_token_hmac: the global token with no action, else the
// per-form token of the action's path and the method.
func (c *turboCall) raw(action, method string) []byte {
	id := "!real_csrf_token"
	if action != "" {
		id = strings.TrimSuffix(action, "/") + "#" + strings.ToLower(method)
	}
	m := hmac.New(sha256.New, c.secret())
	m.Write([]byte(id))
	return m.Sum(nil)
}

// token is masked_authenticity_token: a one-time pad, and the raw token
// XORed with it.
func (c *turboCall) token(action, method string) string {
	pad, raw := turboRandom(turboTokenLen), c.raw(action, method)
	for i := range raw {
		raw[i] ^= pad[i]
	}
	return base64.RawURLEncoding.EncodeToString(append(pad, raw...))
}

// valid is valid_authenticity_token?: the secret unmasked, or masked the
// global token, the secret or the per-form token of this path and method.
func (c *turboCall) valid(t string) bool {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(t, "="))
	switch {
	case err != nil || t == "":
	case len(b) == turboTokenLen:
		return hmac.Equal(b, c.secret())
	case len(b) == 2*turboTokenLen:
		for i := range turboTokenLen {
			b[turboTokenLen+i] ^= b[i]
		}
		b = b[turboTokenLen:]
		return hmac.Equal(b, c.raw("", "")) || hmac.Equal(b, c.secret()) || hmac.Equal(b, c.raw(c.r.URL.Path, c.method))
	}
	return false
}

// forgery is verify_authenticity_token: why the request is refused, or "".
func (c *turboCall) forgery() string {
	base := "http://" + turboHost(c.r)
	switch o := c.r.Header.Get("Origin"); {
	case c.method == http.MethodGet || c.method == http.MethodHead:
	case o != "" && o != base:
		return fmt.Sprintf("HTTP Origin header (%s) didn't match request.base_url (%s)", o, base)
	case !c.valid(c.r.FormValue("authenticity_token")) && !c.valid(c.r.Header.Get("X-CSRF-Token")):
		return "Can't verify CSRF token authenticity."
	}
	return ""
}

// send answers as Rails' middleware does: its default headers, the session
// cookie if the session was read, a weak ETag for a 200 to a GET (and a 304
// to a matching If-None-Match), no-cache otherwise.
func (c *turboCall) send(status int, ctype, body string) {
	h := c.w.Header()
	for _, kv := range [][2]string{{"X-Frame-Options", "SAMEORIGIN"}, {"X-XSS-Protection", "0"}, {"X-Content-Type-Options", "nosniff"},
		{"X-Download-Options", "noopen"}, {"X-Permitted-Cross-Domain-Policies", "none"}, {"Referrer-Policy", "strict-origin-when-cross-origin"},
		{"Content-Type", ctype}, {"Vary", "Accept"}, {"X-Request-Id", cmp.Or(c.r.Header.Get("X-Request-Id"), turboUUID())},
		{"X-Runtime", fmt.Sprintf("%.6f", time.Since(c.start).Seconds())}, {"Cache-Control", "no-cache"}} {
		h.Set(kv[0], kv[1])
	}
	if c.sess != nil {
		h.Set("Set-Cookie", turboCookie+"="+c.a.seal(c.sess)+"; path=/; HttpOnly; SameSite=Lax")
	}
	if status == http.StatusOK && c.method == http.MethodGet {
		etag := fmt.Sprintf(`W/"%x"`, md5.Sum([]byte(body)))
		h.Set("ETag", etag)
		h.Set("Cache-Control", "max-age=0, private, must-revalidate")
		if c.r.Header.Get("If-None-Match") == etag {
			h.Del("Content-Type")
			status, body = http.StatusNotModified, ""
		}
	}
	c.w.WriteHeader(status)
	_, _ = io.WriteString(c.w, body)
}

// redirect is redirect_to: an absolute Location, and Rails' little body.
func (c *turboCall) redirect(status int, to string) {
	if strings.HasPrefix(to, "/") {
		to = "http://" + turboHost(c.r) + to
	}
	c.w.Header().Set("Location", to)
	c.send(status, "text/html; charset=utf-8", `<html><body>You are being <a href="`+turboEsc(to)+`">redirected</a>.</body></html>`)
}

// notice sets flash[:notice] for the next request.
func (c *turboCall) notice(msg string) {
	c.session().Flash = &turboFlash{Discard: []string{}, Flashes: map[string]string{"notice": msg}}
}

// fail answers public/4xx.html, or to a JSON request the JSON that
// ActionDispatch::PublicExceptions gives. An exception raised leaves the
// session uncommitted: no Set-Cookie.
func (c *turboCall) fail(status int, what string, raised bool, detail ...string) {
	c.a.Counts.Add(fmt.Sprint(status, " ", what), 1)
	if raised {
		c.sess = nil
	}
	if strings.HasPrefix(c.r.Header.Get("Accept"), "application/json") {
		c.send(status, "application/json; charset=utf-8", fmt.Sprintf(`{"status":%d,"error":%q}`, status, http.StatusText(status)))
		return
	}
	title := map[int]string{404: "The page you were looking for doesn't exist", 422: "The change you wanted was rejected", 400: "The request was bad"}[status]
	d := turboEsc(strings.Join(detail, " "))
	c.send(status, "text/html; charset=UTF-8", fmt.Sprintf(`<!DOCTYPE html>
<html><head><title>%s (%d)</title><meta name="viewport" content="width=device-width,initial-scale=1"></head>
<body><div class="dialog"><div><h1>%[1]s.</h1></div><p>%[3]s</p></div>
<div id="root">error: %[2]d %[4]s %[5]s %[3]s</div></body></html>
`, title, status, d, what, turboEsc(c.method+" "+c.r.URL.RequestURI())))
}

// formWith is form_with's markup: the _method of a form that is not a
// POST, and the form's own token.
func (c *turboCall) formWith(action, method, inner string) string {
	mt := ""
	if method != "post" {
		mt = `<input type="hidden" name="_method" value="` + method + `" autocomplete="off" />`
	}
	return fmt.Sprintf(`<form action="%s" accept-charset="UTF-8" method="post">%s<input type="hidden" name="authenticity_token" value="%s" autocomplete="off" />%s</form>`,
		turboEsc(action), mt, c.token(action, method), inner)
}

// buttonTo is button_to with a method: a form of its own.
func (c *turboCall) buttonTo(label, action, method string) string {
	return fmt.Sprintf(`<form class="button_to" method="post" action="%s"><input type="hidden" name="_method" value="%s" autocomplete="off" /><button type="submit">%s</button><input type="hidden" name="authenticity_token" value="%s" autocomplete="off" /></form>`,
		turboEsc(action), method, turboEsc(label), c.token(action, method))
}

// turboFields is a text field and a submit button of form_with.
func turboFields(model, field, value, submit string) string {
	if value != "" {
		value = ` value="` + turboEsc(value) + `"`
	}
	return fmt.Sprintf(`<label for="%[1]s_%[2]s">%[5]s</label> <input type="text"%[3]s name="%[1]s[%[2]s]" id="%[1]s_%[2]s" /> <input type="submit" name="commit" value="%[4]s" data-disable-with="%[4]s" />`,
		model, field, value, submit, strings.ToUpper(field[:1])+field[1:])
}

// render renders a view in the application layout, which shows the flash
// (and so uses it up) and, to a signed-in user, the sign-out button.
func (c *turboCall) render(status int, title, alert, main string) {
	notice, nav := "", ""
	if f := c.session().Flash; f != nil {
		notice, alert, c.sess.Flash = f.Flashes["notice"], cmp.Or(alert, f.Flashes["alert"]), nil
	}
	if c.uid != 0 {
		nav = `    <nav><a href="/boards">Boards</a> ` + turboEsc(c.user) + "@example.test " + c.buttonTo("Sign out", "/session", "delete") + "</nav>\n"
	}
	c.send(status, "text/html; charset=utf-8", fmt.Sprintf(`<!DOCTYPE html>
<html>
  <head><title>%s | Kanban</title><meta name="viewport" content="width=device-width,initial-scale=1">
    <meta name="csrf-param" content="authenticity_token" />
<meta name="csrf-token" content="%s" /></head>
  <body>
%s    <p style="color: green" id="notice">%s</p><p style="color: red" id="alert">%s</p>
    <main>
%s
    </main>
    <div id="root"></div><script>%s</script>
  </body>
</html>
`, turboEsc(title), c.token("", ""), nav, turboEsc(notice), turboEsc(alert), main, turboVisitJS))
}

// signIn is SessionsController#new, and #create: a refused sign-in renders
// the form again with a 422; an accepted one resets the session and answers
// 303 to where signing in was asked for, else the boards.
func (c *turboCall) signIn(_ []int) {
	email, status, alert := "", http.StatusOK, ""
	if c.action == "sessions#create" {
		email = strings.ToLower(strings.TrimSpace(c.r.PostFormValue("email_address")))
		if name, ok := strings.CutSuffix(email, "@example.test"); ok && name != "" && c.r.PostFormValue("password") == "pw-"+name {
			back := c.sess.ReturnTo
			if c.reset(); c.a.users[name] == 0 {
				c.a.lastUser++
				c.a.users[name], c.a.names[c.a.lastUser] = c.a.lastUser, name
			}
			c.uid, c.user, c.sess.UserID = c.a.users[name], name, c.a.users[name]
			c.a.Counts.Add("sessions", 1)
			c.redirect(http.StatusSeeOther, cmp.Or(back, "/boards"))
			return
		}
		c.a.Counts.Add("login refused", 1)
		status, alert = http.StatusUnprocessableEntity, "Try another email address or password."
	}
	c.render(status, "Sign in", alert, "<h1>Sign in</h1>\n"+c.formWith("/session", "post",
		`<input required="required" autofocus="autofocus" autocomplete="username" placeholder="Enter your email address" type="email"`+map[bool]string{true: ` value="` + turboEsc(email) + `"`}[email != ""]+` name="email_address" id="email_address" /><br>
<input required="required" autocomplete="current-password" placeholder="Enter your password" maxlength="72" type="password" name="password" id="password" /><br>
<input type="submit" name="commit" value="Sign in" data-disable-with="Sign in" />`))
}

func (c *turboCall) signOut(_ []int) {
	c.reset()
	c.a.Counts.Add("logouts", 1)
	c.redirect(http.StatusSeeOther, "/session/new")
}

// boardList is BoardsController#index: a page of the user's boards, newest
// first, after the board the signed cursor names.
func (c *turboCall) boardList(_ []int) {
	after := math.MaxInt
	if q := c.r.URL.Query(); q.Has("after") {
		cur, ok := c.a.uncursor(q.Get("after"))
		if !ok || cur.UserID != c.uid { // rescue_from InvalidSignature, and a check of the user
			c.fail(http.StatusBadRequest, "cursor", false, "Invalid cursor")
			return
		}
		after = cur.After
	}
	var ids []int
	for _, id := range slices.Backward(slices.Sorted(maps.Keys(c.a.boards))) {
		if c.a.boards[id].owner == c.uid && id < after {
			ids = append(ids, id)
		}
	}
	var b strings.Builder
	b.WriteString("<h1>Boards</h1>\n<div id=\"boards\">\n")
	for _, id := range ids[:min(len(ids), turboPageSize)] {
		fmt.Fprintf(&b, "<div id=\"board_%d\"><a href=\"/boards/%s\">%s</a></div>\n", id, turboParam(id, c.a.boards[id].name), turboEsc(c.a.boards[id].name))
	}
	if b.WriteString("</div>\n"); len(ids) > turboPageSize {
		fmt.Fprintf(&b, "<nav class=\"pagination\"><a rel=\"next\" href=\"/boards?after=%s\">Next page</a></nav>\n", url.QueryEscape(c.a.cursor(c.uid, ids[turboPageSize-1])))
	}
	c.render(http.StatusOK, "Boards", "", b.String()+"<h2>New board</h2>\n"+c.formWith("/boards", "post", turboFields("board", "name", "", "Create Board")))
}

func (c *turboCall) boardCreate(_ []int) {
	name := strings.TrimSpace(c.r.PostFormValue("board[name]"))
	if name == "" {
		c.a.Counts.Add("422 invalid", 1)
		c.render(http.StatusUnprocessableEntity, "New board", "Name can't be blank", "<h1>New board</h1>\n"+c.formWith("/boards", "post", turboFields("board", "name", "", "Create Board")))
		return
	}
	c.a.lastBoard++
	c.a.boards[c.a.lastBoard] = &turboBoard{owner: c.uid, name: name}
	c.a.Counts.Add("boards created", 1)
	c.notice("Board was successfully created.")
	c.redirect(http.StatusSeeOther, "/boards/"+turboParam(c.a.lastBoard, name))
}

// find is Current.user.boards.find(ids[0]), and board.cards.find(ids[1])
// if there is one: false after a 404.
func (c *turboCall) find(ids []int) (*turboBoard, *turboCard, bool) {
	b, k, what := c.a.boards[ids[0]], (*turboCard)(nil), ""
	if len(ids) > 1 {
		k = c.a.cards[ids[1]]
	}
	switch {
	case b != nil && b.owner != c.uid:
		what = "foreign"
	case b == nil || len(ids) > 1 && (k == nil || k.board != ids[0]):
		what = "missing"
	default:
		return b, k, true
	}
	c.fail(http.StatusNotFound, what, true, "ActiveRecord::RecordNotFound")
	return nil, nil, false
}

// cardIDs lists a board's cards, oldest first.
func (c *turboCall) cardIDs(board int) []int {
	var ids []int
	for _, id := range slices.Sorted(maps.Keys(c.a.cards)) {
		if c.a.cards[id].board == board {
			ids = append(ids, id)
		}
	}
	return ids
}

// boardShow renders boards/show: a row of two forms for each card, the new
// card form, and the script that fetches the cards.
func (c *turboCall) boardShow(ids []int) {
	if b, _, ok := c.find(ids[:1]); ok {
		c.showBoard(http.StatusOK, ids[0], b, "")
	}
}

func (c *turboCall) showBoard(status, id int, b *turboBoard, alert string) {
	var s strings.Builder
	fmt.Fprintf(&s, "<h1>%s</h1>\n<p><a href=\"/boards\">Back to boards</a> · <span id=\"api-count\"></span> cards</p>\n<ul id=\"cards\">\n", turboEsc(b.name))
	for _, cid := range c.cardIDs(id) {
		path := fmt.Sprintf("/boards/%d/cards/%d", id, cid)
		fmt.Fprintf(&s, "<li id=\"card_%d\">\n%s\n%s\n</li>\n", cid, c.formWith(path, "patch", turboFields("card", "title", c.a.cards[cid].title, "Update Card")),
			c.buttonTo("Delete", path, "delete"))
	}
	s.WriteString("</ul>\n<h2>New card</h2>\n" + c.formWith(fmt.Sprintf("/boards/%d/cards", id), "post", turboFields("card", "title", "", "Create Card")))
	c.render(status, b.name, alert, s.String()+"\n<script>"+turboCardsJS+"</script>")
}

// cardChange is CardsController#create, #update and #destroy: 303 back to
// the board, or the board again with a 422 for a blank title.
func (c *turboCall) cardChange(ids []int) {
	b, card, ok := c.find(ids)
	if !ok {
		return
	}
	title, now := strings.TrimSpace(c.r.PostFormValue("card[title]")), time.Now().UTC()
	verb := map[string]string{"cards#create": "created", "cards#update": "updated", "cards#destroy": "destroyed"}[c.action]
	switch {
	case verb == "destroyed":
		delete(c.a.cards, ids[1])
	case title == "":
		c.a.Counts.Add("422 invalid", 1)
		c.showBoard(http.StatusUnprocessableEntity, ids[0], b, "Title can't be blank")
		return
	case card == nil:
		c.a.lastCard++
		c.a.cards[c.a.lastCard] = &turboCard{board: ids[0], title: title, created: now, updated: now}
	default:
		card.title, card.updated = title, now
	}
	c.a.Counts.Add("cards "+cmp.Or(map[string]string{"destroyed": "deleted"}[verb], verb), 1)
	c.notice("Card was successfully " + verb + ".")
	c.redirect(http.StatusSeeOther, "/boards/"+turboParam(ids[0], b.name))
}

// apiCards is Api::CardsController#index, rendered by jbuilder.
func (c *turboCall) apiCards(ids []int) {
	if _, _, ok := c.find(ids); !ok {
		return
	}
	var b strings.Builder
	const t = "2006-01-02T15:04:05.000Z"
	for i, id := range c.cardIDs(ids[0]) {
		k := c.a.cards[id]
		title, _ := json.Marshal(k.title)
		fmt.Fprintf(&b, `%s{"id":%d,"title":%s,"board_id":%d,"created_at":"%s","updated_at":"%s","url":"http://%s/boards/%d/cards/%d.json"}`,
			map[bool]string{true: ","}[i > 0], id, title, ids[0], k.created.Format(t), k.updated.Format(t), turboHost(c.r), ids[0], id)
	}
	c.send(http.StatusOK, "application/json; charset=utf-8", "["+b.String()+"]")
}

// turboCardsJS is the board page's own script: it fetches the board's
// cards, with the id that parseInt reads from the slug.
const turboCardsJS = `
  window.cardsLoaded = fetch("/api/boards/" + parseInt(location.pathname.split("/")[2], 10) + "/cards", {
    headers: { Accept: "application/json", "X-CSRF-Token": document.querySelector('meta[name="csrf-token"]').content }
  }).then(r => { if (!r.ok) throw new Error("GET cards: " + r.status); return r.json(); })
    .then(cards => { document.getElementById("api-count").textContent = cards.length; return cards; });
  window.cardsLoaded.catch(() => {});
`

// turboVisitJS moves a browser's visit on like a person, one step a page:
// sign in as the u of /session/new?u=NAME, create a board, three cards on
// it, edit the first card and delete the second with their own forms, two
// more boards, follow the list's rel=next twice, sign out; the sign-in page
// then says "done". A page acts only as the step it expects (a reloaded
// one does nothing), after 20 to 80 ms, and shows anything unexpected as
// "error: ...".
const turboVisitJS = `(() => {
  const S = sessionStorage, q = s => document.querySelector(s), all = s => [...document.querySelectorAll(s)];
  const root = document.getElementById("root"), fail = m => { root.textContent = "error: " + m; };
  const p = location.pathname, qs = new URLSearchParams(location.search), notice = q("#notice").textContent;
  const kind = p === "/session/new" ? "signin" : p === "/boards" ? (qs.has("after") ? "next" : "boards") : /^\/boards\/\d+-[a-z0-9-]+$/.test(p) ? "board" : p;
  const steps = "signin boards board board board board board board boards board boards board boards next next signin".split(" ");
  const n = +(S.getItem("visit.step") || 0), check = (ok, m) => { if (!ok) throw new Error(m + " at step " + n); };
  const submit = (f, fields) => {
    check(f, "no form");
    for (const [k, v] of Object.entries(fields || {})) f.querySelector('[name="' + k + '"]').value = v;
    f.requestSubmit();
  };
  const cards = async k => { // the rows on the page, and those the page's script fetched
    check(all("#cards > li").length === k, "not " + k + " cards on the page");
    const got = await window.cardsLoaded;
    check(got.length === k, got.length + " cards from the API, not " + k);
    return all("#cards > li");
  };
  const newBoard = name => submit(q('form[action="/boards"]'), { "board[name]": name });
  const newCard = (k, title) => cards(k).then(() => submit(q('form[action="' + p.replace(/-.*/, "") + '/cards"]'), { "card[title]": title }));
  const back = k => cards(k).then(() => q('main a[href="/boards"]').click());
  const next = name => { check(all("#boards a").map(a => a.textContent).join() === name, "not just " + name + " listed"); return q('a[rel="next"]'); };
  const said = t => check(notice === t, "notice " + JSON.stringify(notice));
  const acts = [() => {
    const u = qs.get("u") || S.getItem("visit.u");
    check(u, "no user in " + location.search);
    S.setItem("visit.u", u);
    submit(q('form[action="/session"]:not(.button_to)'), { email_address: u + "@example.test", password: "pw-" + u });
  }, () => { check(!q('a[rel="next"]'), "a next page"); newBoard("Sprint planning"); },
  () => { said("Board was successfully created."); return newCard(0, "First card"); }, () => newCard(1, "Second card"), () => newCard(2, "Third card"),
  async () => { const li = await cards(3); submit(li[0].querySelector("form:not(.button_to)"), { "card[title]": "First card, edited" }); },
  async () => {
    const li = await cards(3);
    said("Card was successfully updated.");
    check(li[0].querySelector('[name="card[title]"]').value === "First card, edited", "the first card was not edited");
    submit(li[1].querySelector("form.button_to"));
  }, () => { said("Card was successfully destroyed."); return back(2); }, () => newBoard("Retro"), () => back(0), () => newBoard("Roadmap"), () => back(0),
  () => next("Roadmap").click(), () => next("Retro").click(),
  () => { check(!next("Sprint planning"), "a page after the last"); submit(q('form.button_to[action="/session"]')); },
  () => { root.textContent = "done"; }];
  if (q("#alert").textContent) return fail(q("#alert").textContent);
  if (kind !== steps[n]) return n > 0 && kind === steps[n - 1] || fail("page " + kind + " at step " + n);
  S.setItem("visit.step", n + 1);
  setTimeout(async () => { try { await acts[n](); } catch (e) { fail(e.message); } }, 20 + Math.random() * 60);
})();`

// TurboClient is a person visiting a Turbo with a browser whose pages run
// Turbo Drive, done with net/http: the visit of the pages' script, from an
// anonymous GET /boards sent to sign in. Each form is submitted as Turbo
// submits it (a fetch: Accept with Turbo Streams first, X-Turbo-Request-Id,
// Origin) with its own authenticity_token, found on the page by the form's
// action and method; a 303 is followed with the same headers, as fetch
// follows it; each board page's script fetches its cards. It fails tb on
// any status but the one Rails answers.
func TurboClient(tb testing.TB, base, user string) {
	tb.Helper()
	newTurboUser(tb, base).visit(user)
}

// turboUser is a browser context of TurboClient: a cookie jar and
// connections of its own, and the last page.
type turboUser struct {
	tb          testing.TB
	c           *http.Client
	base        string
	page, where string // the last page, and its path and query
	api         []struct {
		ID    int    `json:"id"`
		Title string `json:"title"`
	} // the cards the last board page fetched
}

const (
	turboNavigate = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8" // the browser's own
	turboDrive    = "text/html, application/xhtml+xml"                                                      // Turbo Drive's visits
	turboStreams  = "text/vnd.turbo-stream.html, text/html, application/xhtml+xml"                          // its form submissions
)

var (
	turboFormRE  = regexp.MustCompile(`(?s)<form ([^>]*)>(.*?)</form>`)
	turboFieldRE = regexp.MustCompile(`\b(action|name="_method" value|name="authenticity_token" value)="([^"]*)"`)
	turboMetaRE  = regexp.MustCompile(`<meta name="csrf-token" content="([^"]+)"`)
	turboNextRE  = regexp.MustCompile(`<a rel="next" href="([^"]+)"`)
	turboCardRE  = regexp.MustCompile(`<li id="card_(\d+)">`)
	turboBoardRE = regexp.MustCompile(`^/boards/(\d+)(?:-[a-z0-9-]+)?$`)
)

func newTurboUser(tb testing.TB, base string) *turboUser {
	jar, _ := cookiejar.New(nil)
	tr := &http.Transport{}
	tb.Cleanup(tr.CloseIdleConnections)
	return &turboUser{tb: tb, base: base, c: &http.Client{Jar: jar, Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// do sends a request to path (absolute, or under base) and fails the test
// unless the status is want.
func (u *turboUser) do(method, path, body string, want int, header ...string) Answer {
	u.tb.Helper()
	if strings.HasPrefix(path, "/") {
		path = u.base + path
	}
	ans := Do(u.tb, u.c, method, path, body, header...)
	if ans.Status != want {
		u.tb.Fatalf("%s %s: %d, want %d: %.300s", method, path, ans.Status, want, ans.Body)
	}
	return ans
}

// get fetches a page and keeps it: by the browser itself if id is "", else
// by Turbo with that request id.
func (u *turboUser) get(path, accept, id string) {
	u.tb.Helper()
	h := []string{"Accept", accept}
	if id != "" {
		h = append(h, "X-Turbo-Request-Id", id)
	}
	u.show(path, u.do(http.MethodGet, path, "", http.StatusOK, h...))
}

// show keeps a page and runs its script: a board's page fetches its cards.
func (u *turboUser) show(path string, ans Answer) {
	u.tb.Helper()
	p, _ := url.Parse(path)
	u.page, u.where = string(ans.Body), p.RequestURI()
	if m, meta := turboBoardRE.FindStringSubmatch(p.Path), turboMetaRE.FindStringSubmatch(u.page); m != nil && meta != nil {
		a := u.do(http.MethodGet, "/api/boards/"+m[1]+"/cards", "", http.StatusOK, "Accept", "application/json", "X-CSRF-Token", meta[1])
		if u.api = nil; json.Unmarshal(a.Body, &u.api) != nil {
			u.tb.Fatalf("cards of board %s: %.300s", m[1], a.Body)
		}
	}
}

// token is the authenticity_token of the last page's form for method and
// action.
func (u *turboUser) token(method, action string) string {
	u.tb.Helper()
	for _, f := range turboFormRE.FindAllString(u.page, -1) {
		got := map[string]string{} // action, _method and authenticity_token
		for _, m := range turboFieldRE.FindAllStringSubmatch(f, -1) {
			got[strings.TrimSuffix(strings.TrimPrefix(m[1], `name="`), `" value`)] = html.UnescapeString(m[2])
		}
		if got["action"] == action && cmp.Or(got["_method"], "post") == method && got["authenticity_token"] != "" {
			return got["authenticity_token"]
		}
	}
	u.tb.Fatalf("%s has no form to %s %s", u.where, method, action)
	return ""
}

// submit submits the last page's form for method and action with fields as
// Turbo does, follows a 303 as fetch does and keeps the page it leads to
// (else the answer), and returns the Location.
func (u *turboUser) submit(method, action string, fields url.Values, want int) string {
	u.tb.Helper()
	if fields == nil {
		fields = url.Values{}
	}
	if method != "post" {
		fields.Set("_method", method)
	}
	fields.Set("authenticity_token", u.token(method, action))
	id := turboUUID()
	ans := u.do(http.MethodPost, action, fields.Encode(), want, "Accept", turboStreams, "X-Turbo-Request-Id", id, "Origin", u.base,
		"Content-Type", "application/x-www-form-urlencoded;charset=UTF-8")
	if loc := ans.Header.Get("Location"); want == http.StatusSeeOther {
		u.get(loc, turboStreams, id)
		return loc
	}
	u.show(action, ans)
	return ""
}

// newBoard creates a board with the list's form and returns its path
// without the slug, as the card forms have it.
func (u *turboUser) newBoard(name string) string {
	u.tb.Helper()
	loc := u.submit("post", "/boards", url.Values{"board[name]": {name}, "commit": {"Create Board"}}, http.StatusSeeOther)
	m := turboBoardRE.FindStringSubmatch(strings.TrimPrefix(loc, u.base))
	if m == nil || !strings.Contains(loc, "-") {
		u.tb.Fatalf("board %q created at %q", name, loc)
	}
	return "/boards/" + m[1]
}

func (u *turboUser) signIn(user string) {
	u.tb.Helper()
	if loc := u.submit("post", "/session", url.Values{"email_address": {user + "@example.test"}, "password": {"pw-" + user}, "commit": {"Sign in"}},
		http.StatusSeeOther); loc != u.base+"/boards" {
		u.tb.Fatalf("signed in, sent to %q", loc)
	}
}

func (u *turboUser) visit(user string) {
	u.tb.Helper()
	must := func(ok bool, format string, args ...any) {
		if u.tb.Helper(); !ok {
			u.tb.Fatalf(format, args...)
		}
	}
	loc := u.do(http.MethodGet, "/boards", "", http.StatusFound, "Accept", turboNavigate).Header.Get("Location")
	must(loc == u.base+"/session/new", "anonymous /boards sent to %q", loc)
	u.get("/session/new", turboNavigate, "")
	u.signIn(user)
	board := u.newBoard("Sprint planning")
	for i, title := range []string{"First card", "Second card", "Third card"} {
		u.submit("post", board+"/cards", url.Values{"card[title]": {title}, "commit": {"Create Card"}}, http.StatusSeeOther)
		must(len(u.api) == i+1, "after %d cards, the API has %v", i+1, u.api)
	}
	ids := turboCardRE.FindAllStringSubmatch(u.page, -1)
	must(len(ids) == 3, "board %s shows %d cards", board, len(ids))
	u.submit("patch", board+"/cards/"+ids[0][1], url.Values{"card[title]": {"First card, edited"}, "commit": {"Update Card"}}, http.StatusSeeOther)
	u.submit("delete", board+"/cards/"+ids[1][1], nil, http.StatusSeeOther)
	must(len(u.api) == 2 && u.api[0].Title == "First card, edited" && u.api[1].Title == "Third card", "cards left: %v", u.api)
	for _, name := range []string{"Retro", "Roadmap", ""} {
		if u.get("/boards", turboDrive, turboUUID()); name != "" {
			u.newBoard(name)
		}
	}
	for range 2 {
		m := turboNextRE.FindStringSubmatch(u.page)
		must(m != nil, "%s has no next page", u.where)
		u.get(html.UnescapeString(m[1]), turboDrive, turboUUID())
	}
	must(!turboNextRE.MatchString(u.page) && strings.Contains(u.page, ">Sprint planning</a>"), "the last page of boards: %.500s", u.page)
	loc = u.submit("delete", "/session", nil, http.StatusSeeOther)
	must(loc == u.base+"/session/new", "signed out, sent to %q", loc)
}
