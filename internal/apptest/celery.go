package apptest

import (
	"bytes"
	"cmp"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"maps"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

// CeleryImports is a backend that answers, on the wire, as a Django 5 +
// Django REST Framework project whose CSV imports run as Celery tasks does,
// with DEBUG off, JSON the only renderer and Django's default settings
// otherwise. The conventions, read from django/middleware/csrf.py,
// django/contrib/auth/views.py (LoginView, LogoutView, redirect_to_login),
// rest_framework/authentication.py (SessionAuthentication.enforce_csrf),
// rest_framework/views.py (exception_handler), rest_framework/fields.py
// (FileField's messages), rest_framework/pagination.py and Celery's
// trace.py and task docs (update_state with a PROGRESS meta):
//
//   - csrftoken cookie (not HttpOnly, SameSite=Lax, Max-Age=31449600, as
//     Python's http.cookies writes it) holding the 32-character secret, sent
//     again by every answer that rendered {% csrf_token %} (get_token) and
//     rotated by the login (rotate_token). Forms carry the secret masked
//     afresh (64 characters, CSRF_ALLOWED_CHARS) in csrfmiddlewaretoken;
//     scripts send the cookie's value in X-CSRFToken as Django's docs show
//     (getCookie). An Origin header must be http:// + Host (no
//     USE_X_FORWARDED_HOST). Refusals give Django's reasons: the HTML "CSRF
//     verification failed" 403 page for Django views, {"detail":"CSRF
//     Failed: <reason>"} 403 for DRF views (checked only for authenticated
//     users, as SessionAuthentication does).
//   - sessionid cookie (32 characters a-z0-9, HttpOnly, Max-Age=1209600),
//     given by the login (cycle_key), removed by the logout and by any
//     answer to a request that names no session, as SessionMiddleware does
//     (sessionid=""; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0).
//   - login_required: GET /imports/?u=NAME logged out is a 302 to
//     /accounts/login/?next=/imports/%3Fu%3DNAME (quote(full path,
//     safe="/")). GET /accounts/login/ renders the form (csrfmiddlewaretoken,
//     username, password, next); POST /accounts/login/ answers 302 to next
//     (LOGIN_REDIRECT_URL /imports/ if next is not safe), or a 200 re-render
//     with "Please enter a correct username and password...". POST
//     /accounts/logout/ (Django 5: POST only, GET is a 405) renders
//     registration/logged_out.html with 200 (no LOGOUT_REDIRECT_URL).
//   - DRF: compact JSON, {"detail": "..."} errors, 403 "Authentication
//     credentials were not provided." for anonymous API calls (session
//     authentication gives no WWW-Authenticate, so not 401), 404 "No Import
//     matches the given query." (get_object_or_404 through DRF 3.15's
//     exception handler), 405 'Method "GET" not allowed.', serializer errors
//     as {"file": ["..."]}, PageNumberPagination's
//     {"count","next","previous","results"} and decimals as strings.
//   - Celery: task ids are UUID4 strings; AsyncResult states PENDING,
//     STARTED (meta {"pid","hostname"}, track_started), PROGRESS (meta
//     {"current","total"} from update_state), SUCCESS (the task's return
//     value) and FAILURE (the exception as the JSON result backend stores
//     it: exc_type, exc_message, exc_module).
//
// The API:
//
//	POST /api/imports/  multipart/form-data, a "file" field holding a CSV
//	  with the header name,email,amount and 1 to 1000 rows
//	  → 202 Location: /api/imports/tasks/<task_id>/
//	    {"task_id":"<uuid4>","state":"PENDING","status_url":"/api/imports/tasks/<task_id>/"}
//	GET /api/imports/tasks/<task_id>/ → 200 {"task_id","state","info","result"}:
//	    PENDING  "info":null, "result":null
//	    STARTED  "info":{"pid":5124,"hostname":"celery@worker-1"}, "result":null
//	    PROGRESS "info":{"current":3,"total":10}, "result":null
//	    SUCCESS  "info":{"current":10,"total":10}, "result":{"import_id":17,"rows":10}
//	    FAILURE  "info":{"exc_type":"ValueError","exc_message":["line 4: ..."],"exc_module":"builtins"}, "result":null
//	GET /api/imports/<import_id>/rows/ → 200 {"count":10,"next":null,"previous":null,
//	    "results":[{"id":101,"line":1,"name":"...","email":"...","amount":"12.50"},...]}
//	    (100 a page, ?page=N), or 409 {"detail":"Import 17 is not ready (PROGRESS)."}
//	    while its task has not succeeded.
//
// The import id (a small integer shared by all users) is taken when the
// import is posted but given only in the SUCCESS answer. A task runs for a
// random 0.4–1.6 s times Slowdown (as it was when the import was posted) and
// its state moves with the clock: PENDING for the first 15% of that, STARTED
// to 25%, then PROGRESS with current counting the rows done, then SUCCESS;
// a row whose amount is not a decimal makes it FAILURE when reached.
//
// Users are made on demand: NAME logs in with the password "pw-" + NAME.
// Imports and tasks are their poster's. GET /imports/?u=NAME serves a page
// whose script makes a browser do what CeleryImportsClient does: two
// imports (post, poll every 250 ms until SUCCESS, fetch the rows), then
// the logout form, whose logged-out page sets #root to "done".
//
// Counts of work: "sessions" (logins), "imports" (202s), "polls" (200s of
// the task endpoint), "rows served" (200s of the rows endpoint), "logouts".
// Counts of refusals: "login refused" (the form re-rendered), "login
// redirects" (anonymous page requests sent to log in), "403 csrf", "403 not
// authenticated" (anonymous API calls), "unknown sessions" (a sessionid
// cookie naming no session), "404 foreign" (another user's task or import),
// "404 missing" (no such task or import, or no such rows page), "404 route",
// "405 method", "409 not ready" (rows of an import whose task has not
// succeeded), "400 invalid csv" (a refused upload of any shape), "415 media
// type", "tasks failed" (a task that ended in FAILURE). Besides, "append
// slash" counts CommonMiddleware's 301s to a path with its slash.
type CeleryImports struct {
	URL    string
	Counts Counts
	// Slowdown multiplies the run time of the tasks posted from now on: 1
	// unless set (values ≤ 0 count as 1).
	Slowdown float64

	mu       sync.Mutex
	sessions map[string]string // session key → user name
	users    map[string]bool
	imports  map[int]*celeryImport
	tasks    map[string]*celeryImport
	lastImp  int
	lastRow  int
}

type celeryImport struct {
	id      int
	owner   string
	task    string
	file    string
	rows    []celeryRow
	bad     int    // the index of the first row whose amount is not a decimal, or -1
	badWhy  string // the task's exception message for it
	posted  time.Time
	runs    time.Duration
	pid     int
	counted bool // its FAILURE was counted
}

type celeryRow struct {
	ID     int    `json:"id"`
	Line   int    `json:"line"`
	Name   string `json:"name"`
	Email  string `json:"email"`
	Amount string `json:"amount"`
}

const (
	celeryCSRFChars   = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	celerySessChars   = "abcdefghijklmnopqrstuvwxyz0123456789" // VALID_KEY_CHARS
	celeryCSRFAge     = 31449600                               // CSRF_COOKIE_AGE
	celerySessionAge  = 1209600                                // SESSION_COOKIE_AGE
	celeryPageSize    = 100
	celeryMaxRows     = 1000
	celeryWorker      = "celery@worker-1"
	celeryLoginURL    = "/accounts/login/"
	celeryLoginTarget = "/imports/" // LOGIN_REDIRECT_URL
)

var (
	celeryTaskRE   = regexp.MustCompile(`^/api/imports/tasks/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})/$`)
	celeryRowsRE   = regexp.MustCompile(`^/api/imports/([0-9]+)/rows/$`)
	celeryUserRE   = regexp.MustCompile(`^[\w.@+-]{1,150}$`) // UnicodeUsernameValidator, ASCII here
	celeryEmailRE  = regexp.MustCompile(`^[^@\s,]+@[^@\s,]+\.[^@\s,]+$`)
	celeryAmountRE = regexp.MustCompile(`^-?[0-9]{1,8}(\.[0-9]{1,2})?$`)
)

// NewCeleryImports starts a CeleryImports on loopback until the test ends.
func NewCeleryImports(tb testing.TB) *CeleryImports {
	a := &CeleryImports{Slowdown: 1, sessions: map[string]string{}, users: map[string]bool{},
		imports: map[int]*celeryImport{}, tasks: map[string]*celeryImport{}}
	srv := httptest.NewServer(a)
	tb.Cleanup(srv.Close)
	a.URL = srv.URL
	return a
}

// Users returns the names of the users who logged in, sorted.
func (a *CeleryImports) Users() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Sorted(maps.Keys(a.users))
}

func celeryRandom(n int, chars string) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = chars[int(b[i])%len(chars)]
	}
	return string(b)
}

// celeryUUID4 is str(uuid.uuid4()), as Celery names its tasks.
func celeryUUID4() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6], b[8] = b[6]&0x0f|0x40, b[8]&0x3f|0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// celeryShift adds (sign 1) or takes away (sign -1) mask from s, character
// by character in CSRF_ALLOWED_CHARS: _mask_cipher_secret and
// _unmask_cipher_token.
func celeryShift(s, mask string, sign int) string {
	out := make([]byte, len(s))
	for i := range out {
		x, y := strings.IndexByte(celeryCSRFChars, s[i]), strings.IndexByte(celeryCSRFChars, mask[i])
		out[i] = celeryCSRFChars[((x+sign*y)%62+62)%62]
	}
	return string(out)
}

// celeryFormat is _check_token_format: "" or why a token is malformed.
func celeryFormat(t string) string {
	if len(t) != 32 && len(t) != 64 {
		return "has incorrect length"
	}
	if strings.Trim(t, celeryCSRFChars) != "" {
		return "has invalid characters"
	}
	return ""
}

func celeryUnmask(t string) string {
	if len(t) == 64 {
		return celeryShift(t[32:], t[:32], -1)
	}
	return t
}

// celeryEsc is Django's escape filter.
func celeryEsc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&#x27;").Replace(s)
}

// celeryQuote is Python's urllib.parse.quote(s, safe="/").
func celeryQuote(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("_.-~/", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func celeryExpires(age int) string {
	return time.Now().Add(time.Duration(age) * time.Second).UTC().Format(http.TimeFormat)
}

// celeryCall is one request on its way through Django's middleware: what
// process_request found, and what process_response will set.
type celeryCall struct {
	w        http.ResponseWriter
	r        *http.Request
	cookie   string // the csrftoken cookie's secret, if well formed
	bad      string // else what is wrong with it
	secret   string // META["CSRF_COOKIE"]
	renew    bool   // CSRF_COOKIE_NEEDS_UPDATE
	sid      string // the session named by the sessionid cookie, if any
	user     string // its user
	stale    bool   // a sessionid cookie naming no session
	accessed bool   // the view read the session (request.user)
	newSID   string // a login's session key
	flushed  bool   // a logout
	noCache  bool   // never_cache
	allow    string // an Allow header
}

func (a *CeleryImports) begin(w http.ResponseWriter, r *http.Request) *celeryCall {
	c := &celeryCall{w: w, r: r}
	if ck, err := r.Cookie("csrftoken"); err == nil {
		if c.bad = celeryFormat(ck.Value); c.bad != "" {
			c.secret, c.renew = celeryRandom(32, celeryCSRFChars), true
		} else {
			c.cookie = celeryUnmask(ck.Value)
			c.secret = c.cookie
		}
	}
	if ck, err := r.Cookie("sessionid"); err == nil {
		a.mu.Lock()
		c.user = a.sessions[ck.Value]
		a.mu.Unlock()
		if c.stale = c.user == ""; !c.stale {
			c.sid = ck.Value
		} else {
			a.Counts.Add("unknown sessions", 1)
		}
	}
	return c
}

// token is {% csrf_token %} (get_token): the secret masked afresh; the
// cookie is sent again to renew its expiry.
func (c *celeryCall) token() string {
	if c.secret == "" {
		c.secret = celeryRandom(32, celeryCSRFChars)
	}
	c.renew = true
	mask := celeryRandom(32, celeryCSRFChars)
	return mask + celeryShift(c.secret, mask, 1)
}

// csrfReason is CsrfViewMiddleware.process_view for an unsafe method over
// plain HTTP (so no Referer check): why the request is refused, or "".
func (c *celeryCall) csrfReason() string {
	r := c.r
	if o := r.Header.Values("Origin"); len(o) > 0 && o[0] != "http://"+r.Host {
		return "Origin checking failed - " + o[0] + " does not match any trusted origins."
	}
	if c.bad != "" {
		return "CSRF cookie " + c.bad + "."
	}
	if c.cookie == "" {
		return "CSRF cookie not set."
	}
	sent, from := "", "POST"
	if r.Method == http.MethodPost {
		sent = r.PostFormValue("csrfmiddlewaretoken")
	}
	if sent == "" {
		from = "the 'X-Csrftoken' HTTP header"
		if len(r.Header.Values("X-CSRFToken")) == 0 {
			return "CSRF token missing."
		}
		sent = r.Header.Get("X-CSRFToken")
	}
	if bad := celeryFormat(sent); bad != "" {
		return "CSRF token from " + from + " " + bad + "."
	}
	if subtle.ConstantTimeCompare([]byte(celeryUnmask(sent)), []byte(c.cookie)) != 1 {
		return "CSRF token from " + from + " incorrect."
	}
	return ""
}

// send answers after process_response: SecurityMiddleware's and
// XFrameOptionsMiddleware's headers, then the csrftoken cookie, then the
// sessionid one.
func (c *celeryCall) send(status int, ctype string, body []byte) {
	h := c.w.Header()
	if ctype != "" {
		h.Set("Content-Type", ctype)
	}
	if c.allow != "" {
		h.Set("Allow", c.allow)
	}
	if c.noCache {
		h.Set("Expires", time.Now().UTC().Format(http.TimeFormat))
		h.Set("Cache-Control", "max-age=0, no-cache, no-store, must-revalidate, private")
	}
	if c.renew || c.accessed || c.stale {
		h.Set("Vary", "Cookie")
	}
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	if c.renew {
		h.Add("Set-Cookie", fmt.Sprintf("csrftoken=%s; expires=%s; Max-Age=%d; Path=/; SameSite=Lax", c.secret, celeryExpires(celeryCSRFAge), celeryCSRFAge))
	}
	switch {
	case c.newSID != "":
		h.Add("Set-Cookie", fmt.Sprintf("sessionid=%s; expires=%s; HttpOnly; Max-Age=%d; Path=/; SameSite=Lax", c.newSID, celeryExpires(celerySessionAge), celerySessionAge))
	case c.flushed || c.stale && c.accessed:
		h.Add("Set-Cookie", `sessionid=""; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/; SameSite=Lax`)
	}
	c.w.WriteHeader(status)
	_, _ = c.w.Write(body)
}

func (c *celeryCall) html(status int, page string) {
	c.send(status, "text/html; charset=utf-8", []byte(page))
}

// redirect is HttpResponseRedirect / HttpResponsePermanentRedirect.
func (c *celeryCall) redirect(status int, to string) {
	c.w.Header().Set("Location", to)
	c.send(status, "text/html; charset=utf-8", nil)
}

// celeryJSON is DRF's JSONRenderer: compact, UTF-8, no HTML escaping.
func celeryJSON(v any) []byte {
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	_ = e.Encode(v)
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

func (c *celeryCall) json(status int, v any) {
	c.send(status, "application/json", celeryJSON(v))
}

type celeryDetail struct {
	Detail string `json:"detail"`
}

// refuse counts a refusal and answers it the DRF way.
func (a *CeleryImports) refuse(c *celeryCall, count string, status int, v any) {
	a.Counts.Add(count, 1)
	if s, ok := v.(string); ok {
		v = celeryDetail{s}
	}
	c.json(status, v)
}

func (a *CeleryImports) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c := a.begin(w, r)
	p := r.URL.Path
	// CommonMiddleware's APPEND_SLASH, before any view.
	if !strings.HasSuffix(p, "/") && a.route(p+"/") != "" {
		a.Counts.Add("append slash", 1)
		to := p + "/"
		if r.URL.RawQuery != "" {
			to += "?" + r.URL.RawQuery
		}
		c.redirect(http.StatusMovedPermanently, to)
		return
	}
	switch a.route(p) {
	case "login":
		a.login(c)
	case "logout":
		a.logout(c)
	case "page":
		a.page(c)
	case "create":
		a.api(c, "POST, OPTIONS", a.create)
	case "task":
		a.api(c, "GET, HEAD, OPTIONS", a.task)
	case "rows":
		a.api(c, "GET, HEAD, OPTIONS", a.rows)
	default:
		a.Counts.Add("404 route", 1)
		c.html(http.StatusNotFound, celeryNotFound)
	}
}

func (a *CeleryImports) route(p string) string {
	switch {
	case p == celeryLoginURL:
		return "login"
	case p == "/accounts/logout/":
		return "logout"
	case p == "/imports/":
		return "page"
	case p == "/api/imports/":
		return "create"
	case celeryTaskRE.MatchString(p):
		return "task"
	case celeryRowsRE.MatchString(p):
		return "rows"
	}
	return ""
}

func celerySafe(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions || m == "TRACE"
}

// csrfProtect is the middleware's process_view for a Django (non-DRF)
// view; false when it answered a 403.
func (a *CeleryImports) csrfProtect(c *celeryCall) bool {
	if celerySafe(c.r.Method) {
		return true
	}
	if reason := c.csrfReason(); reason != "" {
		a.Counts.Add("403 csrf", 1)
		c.html(http.StatusForbidden, celeryCSRFPage)
		return false
	}
	return true
}

// notAllowed is View.http_method_not_allowed: a 405 with no body.
func (a *CeleryImports) notAllowed(c *celeryCall, allow string) {
	a.Counts.Add("405 method", 1)
	c.allow = allow
	c.send(http.StatusMethodNotAllowed, "text/html; charset=utf-8", nil)
}

// nextURL is LoginView.get_redirect_url: next from POST, else GET, if
// url_has_allowed_host_and_scheme, else "".
func celeryNextURL(r *http.Request) string {
	next := r.URL.Query().Get("next")
	if r.Method == http.MethodPost {
		if _, ok := r.PostForm["next"]; ok {
			next = r.PostForm.Get("next")
		}
	}
	if strings.HasPrefix(next, "/") && !strings.HasPrefix(next, "//") && !strings.HasPrefix(next, `/\`) {
		return next
	}
	if u, err := url.Parse(next); err == nil && (u.Scheme == "http" || u.Scheme == "") && u.Host == r.Host && next != "" {
		return next
	}
	return ""
}

func (a *CeleryImports) login(c *celeryCall) {
	c.noCache = true
	if !a.csrfProtect(c) {
		return
	}
	r := c.r
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		c.html(http.StatusOK, celeryLoginPage(c.token(), celeryNextURL(r), "", ""))
		return
	case http.MethodPost, http.MethodPut:
	default:
		a.notAllowed(c, "GET, POST, PUT, HEAD, OPTIONS")
		return
	}
	_ = r.ParseForm()
	user, pw := r.PostForm.Get("username"), r.PostForm.Get("password")
	next := celeryNextURL(r)
	var errs string
	switch {
	case user == "" || pw == "":
		errs = `<ul class="errorlist"><li>This field is required.</li></ul>`
	case !celeryUserRE.MatchString(user) || pw != "pw-"+user:
		errs = `<ul class="errorlist nonfield"><li>Please enter a correct username and password. Note that both fields may be case-sensitive.</li></ul>`
	}
	if errs != "" {
		a.Counts.Add("login refused", 1)
		c.html(http.StatusOK, celeryLoginPage(c.token(), next, user, errs))
		return
	}
	// auth.login: a new session key (cycle_key, or flush for another
	// user's session), then rotate_token.
	c.accessed = true
	c.newSID = celeryRandom(32, celerySessChars)
	c.secret, c.renew = celeryRandom(32, celeryCSRFChars), true
	a.mu.Lock()
	if c.sid != "" {
		delete(a.sessions, c.sid)
	}
	a.sessions[c.newSID] = user
	a.users[user] = true
	a.mu.Unlock()
	a.Counts.Add("sessions", 1)
	c.redirect(http.StatusFound, cmp.Or(next, celeryLoginTarget))
}

func (a *CeleryImports) logout(c *celeryCall) {
	c.noCache = true
	if !a.csrfProtect(c) {
		return
	}
	if c.r.Method != http.MethodPost {
		a.notAllowed(c, "POST, OPTIONS")
		return
	}
	c.accessed = true
	who := c.user
	if c.sid != "" {
		a.mu.Lock()
		delete(a.sessions, c.sid)
		a.mu.Unlock()
		c.flushed = true
		a.Counts.Add("logouts", 1)
	}
	c.html(http.StatusOK, celeryLoggedOutPage(who))
}

// page is the imports page, a login_required TemplateView.
func (a *CeleryImports) page(c *celeryCall) {
	if !a.csrfProtect(c) {
		return
	}
	c.accessed = true
	r := c.r
	if c.user == "" {
		a.Counts.Add("login redirects", 1)
		full := r.URL.Path
		if r.URL.RawQuery != "" {
			full += "?" + r.URL.RawQuery
		}
		c.redirect(http.StatusFound, celeryLoginURL+"?next="+celeryQuote(full))
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		a.notAllowed(c, "GET, HEAD, OPTIONS")
		return
	}
	a.mu.Lock()
	var done, total int
	for _, im := range a.imports {
		if im.owner == c.user {
			total++
			if st, _ := im.at(time.Now()); st == "SUCCESS" {
				done++
			}
		}
	}
	a.mu.Unlock()
	c.html(http.StatusOK, celeryImportsPage(c.user, c.token(), done, total))
}

// api is APIView.dispatch with SessionAuthentication and IsAuthenticated:
// authentication (and so CSRF for a logged-in user's unsafe method), then
// permission, then the method's handler or a 405.
func (a *CeleryImports) api(c *celeryCall, allow string, h func(*celeryCall)) {
	c.accessed = true
	c.allow = allow
	r := c.r
	if c.user != "" && !celerySafe(r.Method) {
		if reason := c.csrfReason(); reason != "" {
			a.refuse(c, "403 csrf", http.StatusForbidden, "CSRF Failed: "+reason)
			return
		}
	}
	if c.user == "" {
		a.refuse(c, "403 not authenticated", http.StatusForbidden, "Authentication credentials were not provided.")
		return
	}
	m := r.Method
	if m == http.MethodHead {
		m = http.MethodGet
	}
	if m == http.MethodOptions {
		name := "Import Detail"
		if strings.HasPrefix(allow, "POST") {
			name = "Import Create"
		}
		c.json(http.StatusOK, map[string]any{"name": name, "description": "",
			"renders": []string{"application/json"}, "parses": []string{"application/json", "application/x-www-form-urlencoded", "multipart/form-data"}})
		return
	}
	if !strings.Contains(allow, m+",") {
		a.refuse(c, "405 method", http.StatusMethodNotAllowed, fmt.Sprintf("Method %q not allowed.", r.Method))
		return
	}
	h(c)
}

type celeryAccepted struct {
	TaskID    string `json:"task_id"`
	State     string `json:"state"`
	StatusURL string `json:"status_url"`
}

type celeryFileErr struct {
	File []string `json:"file"`
}

// create is the upload view: the serializer checks the file and its rows'
// shape; the task (import_csv.delay) reads the amounts.
func (a *CeleryImports) create(c *celeryCall) {
	r := c.r
	ct := r.Header.Get("Content-Type")
	media, _, _ := strings.Cut(ct, ";")
	media = strings.TrimSpace(strings.ToLower(media))
	invalid := func(msg string) {
		a.refuse(c, "400 invalid csv", http.StatusBadRequest, celeryFileErr{[]string{msg}})
	}
	var name string
	var data []byte
	switch media {
	case "multipart/form-data":
		if err := r.ParseMultipartForm(8 << 20); err != nil {
			a.refuse(c, "400 invalid csv", http.StatusBadRequest, "Multipart form parse error - "+err.Error())
			return
		}
		fhs := r.MultipartForm.File["file"]
		if len(fhs) == 0 {
			if _, ok := r.MultipartForm.Value["file"]; ok {
				invalid("The submitted data was not a file. Check the encoding type on the form.")
			} else {
				invalid("No file was submitted.")
			}
			return
		}
		f, err := fhs[0].Open()
		if err != nil {
			invalid("The submitted data was not a file. Check the encoding type on the form.")
			return
		}
		var b bytes.Buffer
		_, _ = b.ReadFrom(f)
		f.Close()
		name, data = fhs[0].Filename, b.Bytes()
	case "application/json":
		var v map[string]any
		if err := json.NewDecoder(r.Body).Decode(&v); err != nil {
			a.refuse(c, "400 invalid csv", http.StatusBadRequest, "JSON parse error - "+err.Error())
			return
		}
		if _, ok := v["file"]; ok {
			invalid("The submitted data was not a file. Check the encoding type on the form.")
		} else {
			invalid("No file was submitted.")
		}
		return
	case "application/x-www-form-urlencoded":
		if r.PostForm.Has("file") {
			invalid("The submitted data was not a file. Check the encoding type on the form.")
		} else {
			invalid("No file was submitted.")
		}
		return
	default:
		a.refuse(c, "415 media type", http.StatusUnsupportedMediaType, fmt.Sprintf("Unsupported media type %q in request.", ct))
		return
	}
	switch {
	case name == "":
		invalid("No filename could be determined.")
		return
	case len(data) == 0:
		invalid("The submitted file is empty.")
		return
	}
	rows, bad, why, msg := celeryParse(data)
	if msg != "" {
		invalid(msg)
		return
	}
	runs := 0.4 + 1.2*mrand.Float64()
	a.mu.Lock()
	slow := a.Slowdown
	if slow <= 0 {
		slow = 1
	}
	a.lastImp++
	im := &celeryImport{id: a.lastImp, owner: c.user, task: celeryUUID4(), file: name, rows: rows, bad: bad, badWhy: why,
		posted: time.Now(), runs: time.Duration(runs * slow * float64(time.Second)), pid: 5123 + mrand.IntN(4)}
	for i := range im.rows {
		a.lastRow++
		im.rows[i].ID = a.lastRow
	}
	a.imports[im.id] = im
	a.tasks[im.task] = im
	a.mu.Unlock()
	a.Counts.Add("imports", 1)
	status := "/api/imports/tasks/" + im.task + "/"
	c.w.Header().Set("Location", status)
	c.json(http.StatusAccepted, celeryAccepted{im.task, "PENDING", status})
}

// celeryParse reads a CSV upload: the rows, the index of the first row
// whose amount the task will refuse (-1 if none) and why, or the
// serializer's message.
func celeryParse(data []byte) (rows []celeryRow, bad int, why, msg string) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	text := string(data)
	if !strings.Contains(text, "\n") && !strings.Contains(text, "\r") {
		text += "\n"
	}
	if !utf8.ValidString(text) {
		return nil, -1, "", "The file is not UTF-8 text."
	}
	lines := strings.Split(strings.ReplaceAll(strings.TrimRight(text, "\r\n"), "\r\n", "\n"), "\n")
	if h := strings.Split(strings.ToLower(strings.ReplaceAll(lines[0], " ", "")), ","); !slices.Equal(h, []string{"name", "email", "amount"}) {
		return nil, -1, "", "Expected the header row name,email,amount."
	}
	lines = lines[1:]
	switch {
	case len(lines) == 0:
		return nil, -1, "", "The file has no rows."
	case len(lines) > celeryMaxRows:
		return nil, -1, "", fmt.Sprintf("Ensure the file has at most %d rows (it has %d).", celeryMaxRows, len(lines))
	}
	bad = -1
	for i, l := range lines {
		f := strings.Split(l, ",")
		if len(f) != 3 {
			return nil, -1, "", fmt.Sprintf("Line %d: expected 3 fields, got %d.", i+2, len(f))
		}
		for j := range f {
			f[j] = strings.TrimSpace(f[j])
		}
		switch {
		case f[0] == "" || len(f[0]) > 100:
			return nil, -1, "", fmt.Sprintf("Line %d: the name must have 1 to 100 characters.", i+2)
		case !celeryEmailRE.MatchString(f[1]):
			return nil, -1, "", fmt.Sprintf("Line %d: enter a valid email address.", i+2)
		}
		amount := f[2]
		if celeryAmountRE.MatchString(amount) {
			whole, frac, _ := strings.Cut(amount, ".")
			amount = whole + "." + (frac + "00")[:2]
		} else if bad < 0 {
			bad, why = i, fmt.Sprintf("line %d: %q is not a valid amount", i+2, f[2])
		}
		rows = append(rows, celeryRow{Line: i + 1, Name: f[0], Email: f[1], Amount: amount})
	}
	return rows, bad, why, ""
}

// at is the task's state at now, and the rows it has done.
func (im *celeryImport) at(now time.Time) (state string, done int) {
	t := float64(now.Sub(im.posted)) / float64(im.runs)
	total := len(im.rows)
	switch {
	case t < 0.15:
		return "PENDING", 0
	case t < 0.25:
		return "STARTED", 0
	}
	done = min(int((t-0.25)/0.75*float64(total)), total)
	if im.bad >= 0 && (done > im.bad || t >= 1) {
		return "FAILURE", im.bad
	}
	if t >= 1 {
		return "SUCCESS", total
	}
	return "PROGRESS", min(done, total-1)
}

type (
	celeryPoll struct {
		TaskID string        `json:"task_id"`
		State  string        `json:"state"`
		Info   any           `json:"info"`
		Result *celeryResult `json:"result"`
	}
	celeryResult struct {
		ImportID int `json:"import_id"`
		Rows     int `json:"rows"`
	}
	celeryStarted struct {
		PID      int    `json:"pid"`
		Hostname string `json:"hostname"`
	}
	celeryProgress struct {
		Current int `json:"current"`
		Total   int `json:"total"`
	}
	celeryExc struct {
		ExcType    string   `json:"exc_type"`
		ExcMessage []string `json:"exc_message"`
		ExcModule  string   `json:"exc_module"`
	}
)

// lookup is get_object_or_404(Import, ..., owner=request.user), telling
// apart, for the counts only, a foreign object from a missing one.
func (a *CeleryImports) lookup(c *celeryCall, im *celeryImport) bool {
	switch {
	case im == nil:
		a.refuse(c, "404 missing", http.StatusNotFound, "No Import matches the given query.")
	case im.owner != c.user:
		a.refuse(c, "404 foreign", http.StatusNotFound, "No Import matches the given query.")
	default:
		return true
	}
	return false
}

// task is the polling view over AsyncResult(task_id).
func (a *CeleryImports) task(c *celeryCall) {
	id := celeryTaskRE.FindStringSubmatch(c.r.URL.Path)[1]
	a.mu.Lock()
	im := a.tasks[id]
	var ans celeryPoll
	failedNow := false
	if im != nil && im.owner == c.user {
		st, done := im.at(time.Now())
		ans = celeryPoll{TaskID: id, State: st}
		switch st {
		case "STARTED":
			ans.Info = celeryStarted{im.pid, celeryWorker}
		case "PROGRESS":
			ans.Info = celeryProgress{done, len(im.rows)}
		case "SUCCESS":
			ans.Info = celeryProgress{done, len(im.rows)}
			ans.Result = &celeryResult{im.id, len(im.rows)}
		case "FAILURE":
			ans.Info = celeryExc{"ValueError", []string{im.badWhy}, "builtins"}
			failedNow, im.counted = !im.counted, true
		}
	}
	a.mu.Unlock()
	if !a.lookup(c, im) {
		return
	}
	if failedNow {
		a.Counts.Add("tasks failed", 1)
	}
	a.Counts.Add("polls", 1)
	c.json(http.StatusOK, ans)
}

type celeryPage struct {
	Count    int         `json:"count"`
	Next     *string     `json:"next"`
	Previous *string     `json:"previous"`
	Results  []celeryRow `json:"results"`
}

// rows is a ListAPIView of an import's rows, PageNumberPagination.
func (a *CeleryImports) rows(c *celeryCall) {
	id, err := strconv.Atoi(celeryRowsRE.FindStringSubmatch(c.r.URL.Path)[1])
	a.mu.Lock()
	im := a.imports[id]
	if err != nil {
		im = nil
	}
	var st string
	var rows []celeryRow
	if im != nil {
		st, _ = im.at(time.Now())
		rows = im.rows
	}
	a.mu.Unlock()
	if !a.lookup(c, im) {
		return
	}
	if st != "SUCCESS" {
		a.refuse(c, "409 not ready", http.StatusConflict, fmt.Sprintf("Import %d is not ready (%s).", id, st))
		return
	}
	q := c.r.URL.Query()
	page := 1
	if v := q.Get("page"); v != "" {
		page, err = strconv.Atoi(v)
		if v == "last" {
			page, err = (len(rows)+celeryPageSize-1)/celeryPageSize, nil
		}
		if err != nil || page < 1 || (page-1)*celeryPageSize >= len(rows) {
			a.refuse(c, "404 missing", http.StatusNotFound, "Invalid page.")
			return
		}
	}
	ans := celeryPage{Count: len(rows), Results: rows[(page-1)*celeryPageSize : min(page*celeryPageSize, len(rows))]}
	link := func(n int) *string {
		u := *c.r.URL
		u.Scheme, u.Host = "http", c.r.Host
		v := u.Query()
		if n == 1 {
			v.Del("page")
		} else {
			v.Set("page", strconv.Itoa(n))
		}
		u.RawQuery = v.Encode()
		s := u.String()
		return &s
	}
	if page*celeryPageSize < len(rows) {
		ans.Next = link(page + 1)
	}
	if page > 1 {
		ans.Previous = link(page - 1)
	}
	a.Counts.Add("rows served", 1)
	c.json(http.StatusOK, ans)
}

// CeleryRefusals are the counts of CeleryImports that say something went
// wrong.
func CeleryRefusals() []string {
	return []string{"login refused", "login redirects", "403 csrf", "403 not authenticated", "unknown sessions",
		"404 foreign", "404 missing", "404 route", "405 method", "409 not ready", "400 invalid csv", "415 media type", "tasks failed"}
}
