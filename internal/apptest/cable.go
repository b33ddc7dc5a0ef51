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
	"io"
	"maps"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Cable is a backend that answers, on the wire, as a Rails 7 app whose
// documents are edited live over Action Cable does.
//
// The HTTP side follows Rails 7 defaults (actionpack's RequestForgeryProtection,
// ActionDispatch's cookie jar and the authentication generator's
// SessionsController): the session is the encrypted cookie store's
// _docs_session (AES-256-GCM with a PBKDF2 key from secret_key_base, salt
// "authenticated encrypted cookie"; the value is the envelope
// {"_rails":{"message":...,"exp":null,"pur":"cookie._docs_session"}} as
// base64 data--iv--tag, URL-escaped; "path=/; HttpOnly; SameSite=Lax"),
// written again with a fresh IV by every answer that read the session, and
// reset (a new session id, no CSRF secret) by signing in and out; nothing is
// kept on the server, so any cookie it gave stays good. With
// per_form_csrf_tokens, each form carries an authenticity_token for its own
// action path and method, masked afresh each render (a 32-byte pad and the
// HMAC-SHA256 of the session's secret XORed with it, urlsafe base64); the
// csrf-token meta tag's global token is good for any request, also as
// X-CSRF-Token. A bad token, or an Origin that is not the request's base URL,
// is a 422 InvalidAuthenticityToken without Set-Cookie, as any exception.
//
// Routes: GET /session/new, POST /session (email_address NAME@example.test
// and password pw-NAME; 302 to where sign-in was asked for, else /docs; a
// 422 re-render when refused), DELETE /session (a button_to form with
// _method=delete; 303 to /session/new). Anonymous requests get 302 to
// /session/new and the session keeps the URL asked for
// (return_to_after_authenticating); the sign-in page shows it in
// data-return-to, a departure so that its script can read the user of the
// start URL /docs?u=NAME. GET /docs lists the user's documents, GET
// /docs/new has the new-document form, POST /docs (doc[title]) answers 302
// to /docs/ID (ids are small integers shared by all users), GET /docs/ID and
// GET /docs/ID.json (jbuilder's scaffold JSON: id, title, body, version,
// created_at, updated_at, url) show one, PATCH /docs/ID with JSON
// {"doc":{"title":...}} (or {"title":...}, as wrap_parameters wraps it) and
// X-CSRF-Token renames it (200 and the JSON). A document starts at version 1;
// only edits over the cable move it on. Another user's document is a 404
// (Current.user.docs.find). Every page carries a script that makes a browser
// do what CableClient does, from /docs?u=NAME; its cable is written by hand
// as @rails/actioncable's consumer behaves (createWebSocketURL of the
// action-cable-url meta tag, both sub-protocols, subscribe after welcome,
// perform as {"command":"message","data":JSON.stringify({...,action})}).
//
// GET /cable is Action Cable's server (actioncable's Connection::Base,
// Subscriptions, Channel::Base and INTERNAL): a request that is not a
// WebSocket upgrade, or whose Origin is not http:// and its Host, is a 404
// "Page not found"; the sub-protocol chosen is actioncable-v1-json. The
// connection is identified_by :current_user, read from the session cookie;
// without a user it sends {"type":"disconnect","reason":"unauthorized",
// "reconnect":false} and closes (1000). Otherwise it sends {"type":"welcome"}
// and, from a timer shared by all connections, {"type":"ping","message":<unix
// time>} every 3 s. Commands are {"command":"subscribe"|"unsubscribe"|
// "message","identifier":<JSON string>,"data":<JSON string>}. Subscribing to
// {"channel":"DocChannel","doc_id":ID} answers {"identifier":...,"type":
// "confirm_subscription"}, or "reject_subscription" when the document is
// not the user's or does not exist; a second subscribe with the same
// identifier is ignored. The action edit ({"body":...,"version":N}) with the
// document's current version stores the body and broadcasts to every
// subscriber of the document {"identifier":...,"message":{"op":"edited",
// "version":N+1,"body":...}}; a stale version is answered to the sender
// alone with {"op":"conflict","version":current}. Errors in commands are
// logged by Rails and answer nothing; they are counted here.
//
// Counts: "sessions" (sign-ins), "login refused", "login redirects"
// (anonymous requests sent to sign in), "docs created", "renames",
// "subscriptions" (confirmed), "unsubscriptions", "edits", "logouts"; the
// refusals "422 csrf", "422 invalid" (a blank title), "400 params" (no doc
// in PATCH), "404 foreign" (another user's document), "404 missing", "404
// route", "404 cable" (not an upgrade, or a foreign Origin), "invalid
// session cookie" (one that does not decrypt), "cable unauthorized",
// "rejected subscriptions", "stale version", "cable unknown subscription"
// (a message or unsubscribe for a subscription the connection does not
// hold), "cable duplicate subscription", "cable bad command" (not JSON, an
// unknown command, channel or action, a bad identifier or data), "406
// format" (GET /docs.json), "cable dropped" (a frame a connection too slow
// to read lost).
type Cable struct {
	URL    string
	Counts Counts

	tb                testing.TB // logs each refusal, for a test that fails
	change            CableChange
	mu                sync.Mutex
	aead              cipher.AEAD
	users             map[string]int // who signed in → user id
	names             map[int]string
	docs              map[int]*cableDoc
	lastUser, lastDoc int
	conns             map[*cableConn]bool        // welcomed connections, pinged
	streams           map[int]map[*cableSub]bool // doc id → its subscribers
	wg                sync.WaitGroup             // the cable connections' handlers
	stop              chan struct{}              // closed at the end
	upgrader          websocket.Upgrader
}

type cableDoc struct {
	owner            int
	title, body      string
	version          int
	created, updated time.Time
}

const (
	cableSecretKeyBase = "9b2e4c7a1d0f83e6c5b4a39281706f5e4d3c2b1a0f9e8d7c6b5a49382716f5e4d3c2b1a09f8e7d6c5b4a3928170f6e5d4c3b2a19087f6e5d4c3b2a1908f7e6d"
	cableCookie        = "_docs_session"
	cableTokenLen      = 32 // AUTHENTICITY_TOKEN_LENGTH
	cableBeat          = 3 * time.Second
	cableProtocol      = "actioncable-v1-json"
)

// CableChange is what a new build of a Cable does otherwise, each counted
// as it applies ("build: ..."), so that a comparison of the builds can be
// held to find exactly it.
type CableChange struct {
	// NoURL is a jbuilder partial without json.url: every document's JSON
	// (GET /docs/ID.json, PATCH /docs/ID) lacks url. Counted "build: url
	// dropped", one per answer.
	NoURL bool
}

// NewCable starts a Cable on loopback until the test ends.
func NewCable(tb testing.TB) *Cable { return NewCableBuild(tb, CableChange{}) }

// NewCableBuild starts a Cable that makes change (a new build of it) on
// loopback until the test ends.
func NewCableBuild(tb testing.TB, change CableChange) *Cable {
	a := &Cable{tb: tb, change: change, users: map[string]int{}, names: map[int]string{}, docs: map[int]*cableDoc{},
		conns: map[*cableConn]bool{}, streams: map[int]map[*cableSub]bool{}, stop: make(chan struct{})}
	// Rails.application.key_generator: PBKDF2-SHA256 of secret_key_base,
	// 1000 rounds, as config.load_defaults 7.0 has it.
	key, _ := pbkdf2.Key(sha256.New, cableSecretKeyBase, []byte("authenticated encrypted cookie"), 1000, 32)
	block, _ := aes.NewCipher(key)
	a.aead, _ = cipher.NewGCM(block)
	// ActionCable::INTERNAL[:protocols]; the Origin is checked as
	// allow_request_origin? does, before the upgrade.
	a.upgrader = websocket.Upgrader{Subprotocols: []string{cableProtocol, "actioncable-unsupported"},
		CheckOrigin: func(*http.Request) bool { return true }}
	srv := httptest.NewServer(a)
	beat := make(chan struct{})
	go a.heartbeat(beat)
	tb.Cleanup(func() {
		srv.Close()
		close(a.stop) // hijacked connections outlive srv.Close: end them
		<-beat
		a.wg.Wait()
	})
	a.URL = srv.URL
	return a
}

// Users returns the names of the users who signed in, sorted.
func (a *Cable) Users() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Sorted(maps.Keys(a.users))
}

func cableRandom(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// cableEsc is ERB's html_escape.
func cableEsc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&#39;").Replace(s)
}

// cableSession is the session hash as the cookie store keeps it.
type cableSession struct {
	SessionID string      `json:"session_id"`
	CSRF      string      `json:"_csrf_token,omitempty"` // urlsafe base64 of 32 random bytes
	ReturnTo  string      `json:"return_to_after_authenticating,omitempty"`
	UserID    int         `json:"user_id,omitempty"`
	Flash     *cableFlash `json:"flash,omitempty"`
}

type cableFlash struct {
	Discard []string          `json:"discard"`
	Flashes map[string]string `json:"flashes"`
}

type cableEnvelope struct {
	Rails struct {
		Message string  `json:"message"`
		Exp     *string `json:"exp"`
		Pur     string  `json:"pur"`
	} `json:"_rails"`
}

// seal is the encrypted cookie jar's encrypt_and_sign.
func (a *Cable) seal(s *cableSession) string {
	inner, _ := json.Marshal(s)
	var m cableEnvelope
	m.Rails.Message, m.Rails.Pur = base64.StdEncoding.EncodeToString(inner), "cookie."+cableCookie
	env, _ := json.Marshal(m)
	iv := cableRandom(12)
	out := a.aead.Seal(nil, iv, env, nil)
	n, b := len(out)-16, base64.StdEncoding.EncodeToString
	return url.QueryEscape(b(out[:n]) + "--" + b(iv) + "--" + b(out[n:]))
}

// open decrypts a cookie value: nil if it does not, as Rails then starts
// an empty session.
func (a *Cable) open(v string) *cableSession {
	v, _ = url.QueryUnescape(v)
	parts, s, m := strings.Split(v, "--"), &cableSession{}, cableEnvelope{}
	if len(parts) != 3 {
		return nil
	}
	var raw [3][]byte
	for i := range raw {
		raw[i], _ = base64.StdEncoding.DecodeString(parts[i])
	}
	if len(raw[1]) != 12 || len(raw[2]) != 16 {
		return nil
	}
	env, err := a.aead.Open(nil, raw[1], append(raw[0], raw[2]...), nil)
	if err != nil || json.Unmarshal(env, &m) != nil || m.Rails.Pur != "cookie."+cableCookie {
		return nil
	}
	if inner, err := base64.StdEncoding.DecodeString(m.Rails.Message); err != nil || json.Unmarshal(inner, s) != nil {
		return nil
	}
	return s
}

// cookieUser is the user id of the request's session cookie, 0 if none;
// it counts a cookie that does not decrypt.
func (a *Cable) cookieUser(r *http.Request) (*cableSession, int) {
	ck, err := r.Cookie(cableCookie)
	if err != nil {
		return nil, 0
	}
	s := a.open(ck.Value)
	if s == nil {
		a.Counts.Add("invalid session cookie", 1)
		return nil, 0
	}
	return s, s.UserID
}

// cableHost is request.host_with_port: the last X-Forwarded-Host a proxy
// added, else Host.
func cableHost(r *http.Request) string {
	if f := r.Header.Get("X-Forwarded-Host"); f != "" {
		parts := strings.Split(f, ",")
		return strings.TrimSpace(parts[len(parts)-1])
	}
	return r.Host
}

// cableCall is one HTTP request on its way through the app.
type cableCall struct {
	a      *Cable
	w      http.ResponseWriter
	r      *http.Request
	method string // after Rack::MethodOverride
	action string // controller#action
	format string // "html" or "json"
	start  time.Time
	sess   *cableSession
	uid    int
	user   string
}

// cableRoutes is config/routes.rb: root "docs#index", resource :session,
// resources :docs, only: %i[index new create show update].
var cableRoutes = map[string]string{ //nolint:gochecknoglobals // constant table
	"GET /": "docs#index", "GET /session/new": "sessions#new", "POST /session": "sessions#create",
	"DELETE /session": "sessions#destroy", "GET /docs": "docs#index", "GET /docs/new": "docs#new", "POST /docs": "docs#create",
	"GET /docs/:id": "docs#show", "PATCH /docs/:id": "docs#update", "PUT /docs/:id": "docs#update",
}

// cableRoute recognizes a path: its action, the :id as find reads it
// (to_i) and the (.:format).
func cableRoute(method, path string) (action string, id int, format string) {
	if method == http.MethodHead {
		method = http.MethodGet
	}
	path = cmp.Or(strings.TrimSuffix(path, "/"), "/")
	segs := strings.Split(path, "/")
	last := segs[len(segs)-1]
	if base, ext, ok := strings.Cut(last, "."); ok {
		if ext != "json" && ext != "html" || base == "" {
			return "", 0, ""
		}
		segs[len(segs)-1], format = base, ext
	}
	if len(segs) == 3 && segs[1] == "docs" && segs[2] != "new" {
		id, _ = strconv.Atoi(segs[2][:len(segs[2])-len(strings.TrimLeft(segs[2], "0123456789"))])
		segs[2] = ":id"
	}
	return cableRoutes[method+" "+strings.Join(segs, "/")], id, format
}

func (a *Cable) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/favicon.ico": // public/favicon.ico, served before the app
		w.Header().Set("Content-Type", "image/vnd.microsoft.icon")
		http.ServeContent(w, r, "favicon.ico", time.Time{}, strings.NewReader(""))
		return
	case "/cable": // mount ActionCable.server => "/cable"
		a.wg.Add(1)
		defer a.wg.Done()
		a.serveCable(w, r)
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	c := &cableCall{a: a, w: w, r: r, method: r.Method, start: time.Now()}
	if m := strings.ToUpper(r.PostFormValue("_method")); r.Method == http.MethodPost &&
		slices.Contains([]string{"PUT", "PATCH", "DELETE"}, m) { // Rack::MethodOverride
		c.method = m
	}
	action, id, format := cableRoute(c.method, r.URL.Path)
	c.format = cmp.Or(format, map[bool]string{true: "json", false: "html"}[strings.HasPrefix(r.Header.Get("Accept"), "application/json")])
	if c.action = action; action == "" {
		c.fail(http.StatusNotFound, "route", true)
		return
	}
	c.session()
	if reason := c.forgery(); reason != "" {
		c.fail(http.StatusUnprocessableEntity, "csrf", true, "ActionController::InvalidAuthenticityToken: "+reason)
		return
	}
	if c.uid == 0 && (action == "sessions#destroy" || !strings.HasPrefix(action, "sessions#")) {
		c.sess.ReturnTo = "http://" + cableHost(r) + r.URL.RequestURI() // request_authentication
		a.Counts.Add("login redirects", 1)
		c.redirect(http.StatusFound, "/session/new")
		return
	}
	switch action {
	case "sessions#new", "sessions#create":
		c.signIn()
	case "sessions#destroy":
		c.reset()
		a.Counts.Add("logouts", 1)
		c.redirect(http.StatusSeeOther, "/session/new")
	case "docs#index":
		c.index()
	case "docs#new":
		c.newDoc(http.StatusOK, "")
	case "docs#create":
		c.create()
	case "docs#show":
		if d := c.find(id); d != nil {
			c.show(id, d)
		}
	case "docs#update":
		if d := c.find(id); d != nil {
			c.update(id, d)
		}
	}
}

// session reads the session from its cookie, or starts one.
func (c *cableCall) session() *cableSession {
	if c.sess == nil {
		if c.sess, c.uid = c.a.cookieUser(c.r); c.sess == nil {
			c.reset()
		}
		c.user = c.a.names[c.uid]
	}
	return c.sess
}

// reset is reset_session: a new session id, no CSRF secret yet.
func (c *cableCall) reset() {
	c.sess, c.uid, c.user = &cableSession{SessionID: hex.EncodeToString(cableRandom(16))}, 0, ""
}

// secret is real_csrf_token: the session's, made on first use.
func (c *cableCall) secret() []byte {
	if s := c.session(); s.CSRF == "" {
		s.CSRF = base64.RawURLEncoding.EncodeToString(cableRandom(cableTokenLen))
	}
	b, _ := base64.RawURLEncoding.DecodeString(c.sess.CSRF)
	return b
}

// raw is csrf_token_hmac: of "!real_csrf_token" for the global token, else
// of the form's action path and method.
func (c *cableCall) raw(action, method string) []byte {
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
func (c *cableCall) token(action, method string) string {
	pad, raw := cableRandom(cableTokenLen), c.raw(action, method)
	for i := range raw {
		raw[i] ^= pad[i]
	}
	return base64.RawURLEncoding.EncodeToString(append(pad, raw...))
}

// valid is valid_authenticity_token?.
func (c *cableCall) valid(t string) bool {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(t, "="))
	switch {
	case err != nil || t == "":
	case len(b) == cableTokenLen:
		return hmac.Equal(b, c.secret())
	case len(b) == 2*cableTokenLen:
		for i := range cableTokenLen {
			b[cableTokenLen+i] ^= b[i]
		}
		b = b[cableTokenLen:]
		return hmac.Equal(b, c.raw("", "")) || hmac.Equal(b, c.secret()) || hmac.Equal(b, c.raw(c.r.URL.Path, c.method))
	}
	return false
}

// forgery is verify_authenticity_token: why the request is refused, or "".
func (c *cableCall) forgery() string {
	base := "http://" + cableHost(c.r)
	switch o := c.r.Header.Get("Origin"); {
	case c.method == http.MethodGet || c.method == http.MethodHead:
	case o != "" && o != base:
		return fmt.Sprintf("HTTP Origin header (%s) didn't match request.base_url (%s)", o, base)
	case !c.valid(c.r.PostFormValue("authenticity_token")) && !c.valid(c.r.Header.Get("X-CSRF-Token")):
		return "Can't verify CSRF token authenticity."
	}
	return ""
}

// send answers with Rails' default headers, the session cookie if the
// session was read, and a weak ETag for a 200 to a GET.
func (c *cableCall) send(status int, ctype, body string) {
	h := c.w.Header()
	for _, kv := range [][2]string{{"X-Frame-Options", "SAMEORIGIN"}, {"X-XSS-Protection", "0"}, {"X-Content-Type-Options", "nosniff"},
		{"X-Download-Options", "noopen"}, {"X-Permitted-Cross-Domain-Policies", "none"}, {"Referrer-Policy", "strict-origin-when-cross-origin"},
		{"Content-Type", ctype}, {"Vary", "Accept"}, {"X-Request-Id", hex.EncodeToString(cableRandom(16))},
		{"X-Runtime", fmt.Sprintf("%.6f", time.Since(c.start).Seconds())}, {"Cache-Control", "no-cache"}} {
		h.Set(kv[0], kv[1])
	}
	if c.sess != nil {
		h.Set("Set-Cookie", cableCookie+"="+c.a.seal(c.sess)+"; path=/; HttpOnly; SameSite=Lax")
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

// redirect is redirect_to: an absolute Location and Rails' little body.
func (c *cableCall) redirect(status int, to string) {
	if strings.HasPrefix(to, "/") {
		to = "http://" + cableHost(c.r) + to
	}
	c.w.Header().Set("Location", to)
	c.send(status, "text/html; charset=utf-8", `<html><body>You are being <a href="`+cableEsc(to)+`">redirected</a>.</body></html>`)
}

// fail answers public/4xx.html, or the JSON of PublicExceptions to a JSON
// request, and counts the refusal. A raised exception leaves the session
// uncommitted: no Set-Cookie.
func (c *cableCall) fail(status int, what string, raised bool, detail ...string) {
	c.a.Counts.Add(fmt.Sprint(status, " ", what), 1)
	if raised {
		c.sess = nil
	}
	if c.format == "json" {
		c.send(status, "application/json; charset=utf-8", fmt.Sprintf(`{"status":%d,"error":%q}`, status, http.StatusText(status)))
		return
	}
	title := map[int]string{400: "The request was bad", 404: "The page you were looking for doesn't exist", 422: "The change you wanted was rejected"}[status]
	d := cableEsc(strings.Join(detail, " "))
	c.send(status, "text/html; charset=UTF-8", fmt.Sprintf(`<!DOCTYPE html>
<html><head><title>%s (%d)</title><meta name="viewport" content="width=device-width,initial-scale=1"></head>
<body><div class="dialog"><div><h1>%[1]s.</h1></div><p>%[3]s</p></div>
<div id="root">error: %[2]d %[4]s %[5]s %[3]s</div></body></html>
`, title, status, d, what, cableEsc(c.method+" "+c.r.URL.RequestURI())))
}

// form is form_with's markup with the form's own token.
func (c *cableCall) form(action, inner string) string {
	return fmt.Sprintf(`<form action="%s" accept-charset="UTF-8" method="post"><input type="hidden" name="authenticity_token" value="%s" autocomplete="off" />%s</form>`,
		cableEsc(action), c.token(action, "post"), inner)
}

// buttonTo is button_to with a method: a form of its own.
func (c *cableCall) buttonTo(label, action, method string) string {
	return fmt.Sprintf(`<form class="button_to" method="post" action="%s"><input type="hidden" name="_method" value="%s" autocomplete="off" /><button type="submit">%s</button><input type="hidden" name="authenticity_token" value="%s" autocomplete="off" /></form>`,
		cableEsc(action), method, cableEsc(label), c.token(action, method))
}

// render renders a view in the application layout, which shows the flash
// (using it up) and, to a signed-in user, the sign-out button.
func (c *cableCall) render(status int, title, alert, main string) {
	notice, nav := "", ""
	if f := c.session().Flash; f != nil {
		notice, alert, c.sess.Flash = f.Flashes["notice"], cmp.Or(alert, f.Flashes["alert"]), nil
	}
	if c.uid != 0 {
		nav = `    <nav><a href="/docs">Documents</a> ` + cableEsc(c.user) + "@example.test " + c.buttonTo("Sign out", "/session", "delete") + "</nav>\n"
	}
	c.send(status, "text/html; charset=utf-8", fmt.Sprintf(`<!DOCTYPE html>
<html>
  <head><title>%s | Docs</title><meta name="viewport" content="width=device-width,initial-scale=1">
    <meta name="csrf-param" content="authenticity_token" />
<meta name="csrf-token" content="%s" />
    <meta name="action-cable-url" content="/cable" /></head>
  <body>
%s    <p style="color: green" id="notice">%s</p><p style="color: red" id="alert">%s</p>
%s
    <div id="root"></div><script>%s</script>
  </body>
</html>
`, cableEsc(title), c.token("", ""), nav, cableEsc(notice), cableEsc(alert), main, cableVisitJS))
}

func (c *cableCall) notice(msg string) {
	c.session().Flash = &cableFlash{Discard: []string{}, Flashes: map[string]string{"notice": msg}}
}

// signIn is SessionsController#new and #create.
func (c *cableCall) signIn() {
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
			c.redirect(http.StatusFound, cmp.Or(back, "/docs"))
			return
		}
		c.a.Counts.Add("login refused", 1)
		c.a.tb.Logf("cable app: login of %q refused", email)
		status, alert = http.StatusUnprocessableEntity, "Try another email address or password."
	}
	back := ""
	if c.sess.ReturnTo != "" {
		back = ` data-return-to="` + cableEsc(c.sess.ReturnTo) + `"`
	}
	value := ""
	if email != "" {
		value = ` value="` + cableEsc(email) + `"`
	}
	c.render(status, "Sign in", alert, `    <main`+back+`>
<h1>Sign in</h1>
`+c.form("/session", `<input required="required" autofocus="autofocus" autocomplete="username" placeholder="Enter your email address" type="email"`+value+` name="email_address" id="email_address" /><br>
<input required="required" autocomplete="current-password" placeholder="Enter your password" maxlength="72" type="password" name="password" id="password" /><br>
<input type="submit" name="commit" value="Sign in" data-disable-with="Sign in" />`)+"\n    </main>")
}

// index is DocsController#index: the user's documents, oldest first.
func (c *cableCall) index() {
	if c.format != "html" {
		c.fail(http.StatusNotAcceptable, "format", true, "ActionController::UnknownFormat")
		return
	}
	var b strings.Builder
	b.WriteString("    <main>\n<h1>Documents</h1>\n<div id=\"docs\">\n")
	for _, id := range slices.Sorted(maps.Keys(c.a.docs)) {
		if d := c.a.docs[id]; d.owner == c.uid {
			fmt.Fprintf(&b, "<div id=\"doc_%d\"><a href=\"/docs/%[1]d\">%s</a> · version %d</div>\n", id, cableEsc(d.title), d.version)
		}
	}
	b.WriteString("</div>\n<a href=\"/docs/new\">New document</a>\n    </main>")
	c.render(http.StatusOK, "Documents", "", b.String())
}

// newDoc renders docs/new, with a 422 and an alert after a blank title.
func (c *cableCall) newDoc(status int, alert string) {
	c.render(status, "New document", alert, "    <main>\n<h1>New document</h1>\n"+c.form("/docs",
		`<label for="doc_title">Title</label> <input type="text" name="doc[title]" id="doc_title" /> <input type="submit" name="commit" value="Create Doc" data-disable-with="Create Doc" />`)+
		"\n<a href=\"/docs\">Back to documents</a>\n    </main>")
}

// create is DocsController#create: 302 to the new document.
func (c *cableCall) create() {
	title := strings.TrimSpace(c.r.PostFormValue("doc[title]"))
	if title == "" {
		c.a.Counts.Add("422 invalid", 1)
		c.newDoc(http.StatusUnprocessableEntity, "Title can't be blank")
		return
	}
	now := time.Now().UTC()
	c.a.lastDoc++
	c.a.docs[c.a.lastDoc] = &cableDoc{owner: c.uid, title: title, version: 1, created: now, updated: now}
	c.a.Counts.Add("docs created", 1)
	c.notice("Doc was successfully created.")
	c.redirect(http.StatusFound, "/docs/"+strconv.Itoa(c.a.lastDoc))
}

// find is Current.user.docs.find(params[:id]): nil after a 404.
func (c *cableCall) find(id int) *cableDoc {
	d := c.a.docs[id]
	switch {
	case d == nil:
		c.fail(http.StatusNotFound, "missing", true, "ActiveRecord::RecordNotFound")
	case d.owner != c.uid:
		c.fail(http.StatusNotFound, "foreign", true, "ActiveRecord::RecordNotFound")
	default:
		return d
	}
	return nil
}

// json is docs/_doc.json.jbuilder (without json.url in a build whose
// change is NoURL).
func (c *cableCall) json(id int, d *cableDoc) string {
	const t = "2006-01-02T15:04:05.000Z"
	url := fmt.Sprintf("http://%s/docs/%d.json", cableHost(c.r), id)
	if c.a.change.NoURL {
		url = ""
		c.a.Counts.Add("build: url dropped", 1)
	}
	b, _ := json.Marshal(struct {
		ID        int    `json:"id"`
		Title     string `json:"title"`
		Body      string `json:"body"`
		Version   int    `json:"version"`
		CreatedAt string `json:"created_at"`
		UpdatedAt string `json:"updated_at"`
		URL       string `json:"url,omitempty"`
	}{id, d.title, d.body, d.version, d.created.Format(t), d.updated.Format(t), url})
	return string(b)
}

// show is DocsController#show, as HTML or JSON.
func (c *cableCall) show(id int, d *cableDoc) {
	if c.format == "json" {
		c.send(http.StatusOK, "application/json; charset=utf-8", c.json(id, d))
		return
	}
	c.render(http.StatusOK, d.title, "", fmt.Sprintf(`    <main>
<h1 id="title">%s</h1>
<div id="doc" data-doc-id="%d" data-version="%d"><pre id="body">%s</pre></div>
<p>Version <span id="version">%[3]d</span></p>
<a href="/docs">Back to documents</a>
    </main>`, cableEsc(d.title), id, d.version, cableEsc(d.body)))
}

// update is DocsController#update with doc_params (require(:doc)
// .permit(:title)), from JSON or a form.
func (c *cableCall) update(id int, d *cableDoc) {
	type fields struct {
		Title *string `json:"title"`
	}
	var p struct {
		Doc *fields `json:"doc"`
		fields
	}
	title, ok := "", false
	if ct, _, _ := mime.ParseMediaType(c.r.Header.Get("Content-Type")); ct == "application/json" {
		body, _ := io.ReadAll(io.LimitReader(c.r.Body, 1<<20))
		if err := json.Unmarshal(body, &p); err != nil {
			c.fail(http.StatusBadRequest, "params", true, "ActionDispatch::Http::Parameters::ParseError")
			return
		}
		if p.Doc == nil && p.Title != nil { // wrap_parameters: the Doc attributes at the top
			p.Doc = &p.fields
		}
		if ok = p.Doc != nil && p.Doc.Title != nil; ok {
			title = *p.Doc.Title
		}
	} else {
		title, ok = c.r.PostFormValue("doc[title]"), c.r.PostForm.Has("doc[title]")
	}
	if !ok {
		c.fail(http.StatusBadRequest, "params", true, "ActionController::ParameterMissing: param is missing or the value is empty: doc")
		return
	}
	if title = strings.TrimSpace(title); title == "" {
		c.a.Counts.Add("422 invalid", 1)
		if c.format == "json" {
			c.send(http.StatusUnprocessableEntity, "application/json; charset=utf-8", `{"title":["can't be blank"]}`)
		} else {
			c.show(id, d)
		}
		return
	}
	d.title, d.updated = title, time.Now().UTC()
	c.a.Counts.Add("renames", 1)
	if c.format == "json" {
		c.w.Header().Set("Location", fmt.Sprintf("http://%s/docs/%d", cableHost(c.r), id))
		c.send(http.StatusOK, "application/json; charset=utf-8", c.json(id, d))
		return
	}
	c.notice("Doc was successfully updated.")
	c.redirect(http.StatusFound, "/docs/"+strconv.Itoa(id))
}
