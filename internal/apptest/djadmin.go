package apptest

import (
	"bytes"
	"cmp"
	"compress/zlib"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"maps"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// DjangoAdmin is a backend that answers, on the wire, as the Django admin
// does (contrib.admin, auth, sessions and messages with Django 5's default
// settings) for one model, blog posts. A csrftoken cookie holds a secret
// that every form carries masked afresh in csrfmiddlewaretoken; the login
// gives a sessionid cookie and rotates the CSRF secret; posts have small
// auto-increment integer ids and belong to whoever added them; success
// messages travel in a signed messages cookie that the next page shows and
// deletes. Every page carries a script that makes a browser do the visit
// DjangoAdminClient does, from /admin/?u=NAME. Passwords are "pw-" + the
// user name. One departure: a post that is not the user's is a 404, where
// Django's admin redirects to its index with a warning message.
//
// Counts: "requests" (every request it answered, static files and the
// favicon among them), "sessions" (logins), "login refused", "login redirects"
// (anonymous requests sent to the login page), "posts created", "posts
// changed", "posts deleted", "messages shown", "logouts", "403" with "403
// csrf", "404" with "404 post" (a post that is not the user's) or "404
// PATH", "404 favicon" (not in "404"), "405".
type DjangoAdmin struct {
	URL    string
	Counts Counts

	mu       sync.Mutex
	sessions map[string]string // session key → user name
	users    map[string]bool   // who logged in
	posts    map[int]*adminPost
	last     int       // the last post id given
	modified time.Time // the static files' Last-Modified
}

type adminPost struct{ owner, title, body string }

// ForgetUsers forgets who logged in (Users), as Counts.Reset forgets
// the counts: a replay after another is judged by its own logins.
func (d *DjangoAdmin) ForgetUsers() {
	d.mu.Lock()
	defer d.mu.Unlock()
	clear(d.users)
}

// NewDjangoAdmin starts a DjangoAdmin on loopback until the test ends,
// served by serve when given (NewWholeAnswerServer), else by
// httptest.NewServer.
func NewDjangoAdmin(tb testing.TB, serve ...func(testing.TB, http.Handler) *httptest.Server) *DjangoAdmin {
	d := &DjangoAdmin{sessions: map[string]string{}, users: map[string]bool{}, posts: map[int]*adminPost{},
		modified: time.Now().UTC().Truncate(time.Second)}
	if len(serve) > 0 {
		d.URL = serve[0](tb, d).URL
		return d
	}
	srv := httptest.NewServer(d)
	tb.Cleanup(srv.Close)
	d.URL = srv.URL
	return d
}

// Users returns the names of the users who logged in, sorted.
func (d *DjangoAdmin) Users() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Sorted(maps.Keys(d.users))
}

const (
	adminCSRFChars  = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789" // CSRF_ALLOWED_CHARS
	adminSecretKey  = "django-insecure-apptest-djadmin-0123456789"                     // SECRET_KEY
	adminCSRFAge    = 31449600                                                         // CSRF_COOKIE_AGE, 52 weeks, in seconds
	adminSessionAge = 1209600                                                          // SESSION_COOKIE_AGE, two weeks, in seconds
	// adminDeleted follows a cookie's name to delete it, as delete_cookie
	// does with the samesite that sessions and messages give it.
	adminDeleted = `=""; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/; SameSite=Lax`
	adminList    = "/admin/blog/post/"
	adminAdd     = "/admin/blog/post/add/"
)

// adminRandom is get_random_string: n characters of chars, each equally
// likely (bytes past the last whole multiple of len(chars) are dropped).
func adminRandom(n int, chars string) string {
	out, buf := make([]byte, 0, n), make([]byte, 2*n)
	for len(out) < n {
		_, _ = rand.Read(buf)
		for _, b := range buf {
			if int(b) < 256/len(chars)*len(chars) && len(out) < n {
				out = append(out, chars[int(b)%len(chars)])
			}
		}
	}
	return string(out)
}

// adminShift shifts each character of s by sign times the index of mask's
// in CSRF_ALLOWED_CHARS: _mask_cipher_secret with a fresh random mask (so
// every rendered token differs) and 1, _unmask_cipher_token with -1.
func adminShift(s, mask string, sign int) string {
	out := make([]byte, 32)
	for i := range out {
		out[i] = adminCSRFChars[(strings.IndexByte(adminCSRFChars, s[i])+sign*strings.IndexByte(adminCSRFChars, mask[i])+62)%62]
	}
	return string(out)
}

func adminUnmask(token string) string { return adminShift(token[32:], token[:32], -1) }

// adminFormat is _check_token_format: what is wrong with a secret or a
// token, or "".
func adminFormat(t string) string {
	if len(t) != 32 && len(t) != 64 {
		return "has incorrect length"
	}
	if strings.Trim(t, adminCSRFChars) != "" {
		return "has invalid characters"
	}
	return ""
}

type adminMessage struct {
	level int    // 25 is SUCCESS
	text  string // HTML if safe
	safe  bool   // SafeData (format_html): shown unescaped
}

// adminSign encodes msgs as CookieStorage does with its cookie signer:
// MessageEncoder's compact, ASCII-only JSON, zlib-compressed when that
// saves more than a byte (then marked by a leading "."), URL-safe base64
// without padding, ":" and the HMAC. The signer has no timestamp: the same
// messages make the same cookie, whoever gets them.
func adminSign(msgs []adminMessage) string {
	list := make([][]any, len(msgs))
	for i, m := range msgs {
		list[i] = []any{"__json_message", map[bool]int{true: 1}[m.safe], m.level, m.text, ""}
	}
	var js bytes.Buffer
	enc := json.NewEncoder(&js)
	enc.SetEscapeHTML(false) // json.dumps leaves <, > and & alone, but escapes all that is not ASCII
	_ = enc.Encode(list)
	var data []byte
	for _, r := range strings.TrimSpace(js.String()) {
		if r < utf8.RuneSelf {
			data = append(data, byte(r))
			continue
		}
		for _, u := range utf16.Encode([]rune{r}) {
			data = fmt.Appendf(data, `\u%04x`, u)
		}
	}
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	_, _ = zw.Write(data)
	_ = zw.Close()
	v := base64.RawURLEncoding.EncodeToString(data)
	if z.Len() < len(data)-1 {
		v = "." + base64.RawURLEncoding.EncodeToString(z.Bytes())
	}
	return v + ":" + adminMAC(v)
}

// adminMAC is Signer.signature: salted_hmac(salt + "signer", v,
// b"django.http.cookies" + SECRET_KEY), keyed by the SHA-256 of both.
func adminMAC(v string) string {
	key := sha256.Sum256([]byte("django.contrib.messages" + "signer" + "django.http.cookies" + adminSecretKey))
	m := hmac.New(sha256.New, key[:])
	m.Write([]byte(v))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// adminUnsign decodes a messages cookie; a bad signature or payload reads
// as no messages, as in CookieStorage._decode.
func adminUnsign(v string) []adminMessage {
	i := strings.LastIndexByte(v, ':')
	if i < 0 || !hmac.Equal([]byte(v[i+1:]), []byte(adminMAC(v[:i]))) {
		return nil
	}
	data, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(v[:i], "."))
	if err == nil && v[0] == '.' {
		var zr io.ReadCloser
		if zr, err = zlib.NewReader(bytes.NewReader(data)); err == nil {
			data, err = io.ReadAll(zr)
		}
	}
	var raw [][]any
	if err != nil || json.Unmarshal(data, &raw) != nil {
		return nil
	}
	var out []adminMessage
	for _, m := range raw {
		if len(m) >= 4 && m[0] == "__json_message" {
			safe, _ := m[1].(float64)
			level, _ := m[2].(float64)
			text, _ := m[3].(string)
			out = append(out, adminMessage{int(level), text, safe == 1})
		}
	}
	return out
}

// adminCall is one request on its way through Django's middleware: what
// process_request found in its cookies, and what process_response will set.
type adminCall struct {
	w         http.ResponseWriter
	r         *http.Request
	cookie    string // the csrftoken cookie's secret, if well formed
	bad       string // else what is wrong with it
	secret    string // META["CSRF_COOKIE"]: the secret tokens are made from
	renew     bool   // CSRF_COOKIE_NEEDS_UPDATE: send csrftoken again
	sid, user string // the session the sessionid cookie names, if any
	stale     bool   // a sessionid cookie naming no session
	accessed  bool   // a view read the session, so a stale cookie goes
	newSID    string // a session key to give (a login)
	flushed   bool   // a logout
	hadMsgs   bool   // the messages cookie held messages
	loaded    []adminMessage
	queued    []adminMessage
	used      bool // messages were iterated, that is shown
}

func (d *DjangoAdmin) begin(w http.ResponseWriter, r *http.Request) *adminCall {
	c := &adminCall{w: w, r: r}
	if ck, err := r.Cookie("csrftoken"); err == nil {
		if c.bad = adminFormat(ck.Value); c.bad != "" {
			c.secret, c.renew = adminRandom(32, adminCSRFChars), true
		} else if c.cookie, c.secret = ck.Value, ck.Value; len(ck.Value) == 64 { // masked, as Django 3 stored it
			c.cookie, c.secret = adminUnmask(ck.Value), adminUnmask(ck.Value)
		}
	}
	if ck, err := r.Cookie("sessionid"); err == nil {
		d.mu.Lock()
		c.user = d.sessions[ck.Value]
		d.mu.Unlock()
		if c.stale = c.user == ""; !c.stale {
			c.sid = ck.Value
		}
	}
	if ck, err := r.Cookie("messages"); err == nil {
		c.loaded = adminUnsign(ck.Value)
		c.hadMsgs = len(c.loaded) > 0
	}
	return c
}

// token is {% csrf_token %}: the secret, masked afresh. Each use has
// process_response send the csrftoken cookie again, to renew its expiry,
// even to a request that had it.
func (c *adminCall) token() string {
	if c.secret == "" {
		c.secret = adminRandom(32, adminCSRFChars)
	}
	c.renew = true
	mask := adminRandom(32, adminCSRFChars)
	return mask + adminShift(c.secret, mask, 1)
}

// csrfReason is CsrfViewMiddleware.process_view for an unsafe method: why
// the request is refused, or "". Over plain HTTP, with no Origin, Django
// checks no Referer.
func (c *adminCall) csrfReason() string {
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
	if bad := adminFormat(sent); bad != "" {
		return "CSRF token from " + from + " " + bad + "."
	}
	if len(sent) == 64 {
		sent = adminUnmask(sent)
	}
	if !hmac.Equal([]byte(sent), []byte(c.cookie)) {
		return "CSRF token from " + from + " incorrect."
	}
	return ""
}

// send answers after the middleware's process_response, which sets the
// cookies in this order: csrftoken (by the csrf_protect around admin
// views), messages, sessionid.
func (d *DjangoAdmin) send(c *adminCall, status int, body string) {
	h := c.w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	if c.renew || c.accessed {
		h.Set("Vary", "Cookie")
	}
	if c.renew {
		h.Add("Set-Cookie", fmt.Sprintf("csrftoken=%s; expires=%s; Max-Age=%d; Path=/; SameSite=Lax", c.secret, adminExpires(adminCSRFAge), adminCSRFAge))
	}
	// BaseStorage.update: once shown, only messages added later are kept;
	// else added ones join the cookie's. FallbackStorage deletes the
	// cookie only if it held messages.
	keep := c.queued
	if !c.used && len(c.queued) > 0 {
		keep = slices.Concat(c.loaded, c.queued)
	}
	if len(keep) > 0 {
		h.Add("Set-Cookie", "messages="+adminSign(keep)+"; HttpOnly; Path=/; SameSite=Lax")
	} else if c.used && c.hadMsgs {
		h.Add("Set-Cookie", "messages"+adminDeleted)
	}
	if c.newSID != "" {
		h.Add("Set-Cookie", fmt.Sprintf("sessionid=%s; expires=%s; HttpOnly; Max-Age=%d; Path=/; SameSite=Lax", c.newSID, adminExpires(adminSessionAge), adminSessionAge))
	} else if c.flushed || c.stale && c.accessed {
		h.Add("Set-Cookie", "sessionid"+adminDeleted)
	}
	c.w.WriteHeader(status)
	_, _ = io.WriteString(c.w, body)
}

func adminExpires(age int) string {
	return time.Now().Add(time.Duration(age) * time.Second).UTC().Format(http.TimeFormat)
}

func (d *DjangoAdmin) redirect(c *adminCall, status int, to string) {
	c.w.Header().Set("Location", to)
	d.send(c, status, "")
}

// fail answers one of Django's error pages, with a root element that tells
// a browser's visit what went wrong.
func (d *DjangoAdmin) fail(c *adminCall, status int, what, title, content string) {
	if what != "favicon" {
		d.Counts.Add(fmt.Sprint(status), 1)
	}
	d.Counts.Add(fmt.Sprint(status, " ", what), 1)
	d.send(c, status, fmt.Sprintf("<!DOCTYPE html>\n<html lang=\"en\"><head><title>%s</title></head>\n<body>%s\n<div id=\"root\">error: %s (%s) %s</div></body></html>\n",
		title, content, title, adminEsc(what), adminEsc(c.r.URL.Path)))
}

func (d *DjangoAdmin) notFound(c *adminCall, what string) {
	d.fail(c, http.StatusNotFound, what, "Not Found", "<h1>Not Found</h1><p>The requested resource was not found on this server.</p>")
}

// adminRoute names the admin's view of a path under /admin/, with the
// post id for the views of one post; "" is the catch-all view.
func adminRoute(p string) (view string, id int) {
	switch p {
	case "/admin/", "/admin/blog/":
		return "index", 0
	case "/admin/login/", "/admin/logout/":
		return p[7 : len(p)-1], 0
	case adminList:
		return "list", 0
	case adminAdd:
		return "change", 0
	}
	if _, err := fmt.Sscanf(strings.TrimPrefix(p, adminList), "%d/%s", &id, &view); err == nil && (view == "change/" || view == "delete/") {
		return view[:len(view)-1], id
	}
	return "", 0
}

func (d *DjangoAdmin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d.Counts.Add("requests", 1)
	h, p := w.Header(), r.URL.Path
	h.Set("Server", "WSGIServer/0.2 CPython/3.12.8")
	if strings.HasPrefix(p, "/static/") { // runserver serves them before any middleware
		d.static(w, r)
		return
	}
	for _, kv := range [][2]string{{"X-Frame-Options", "DENY"}, {"X-Content-Type-Options", "nosniff"}, {"Referrer-Policy", "same-origin"},
		{"Cross-Origin-Opener-Policy", "same-origin"}} { // SecurityMiddleware and XFrameOptionsMiddleware
		h.Set(kv[0], kv[1])
	}
	c := d.begin(w, r)
	if !strings.HasPrefix(p, "/admin/") {
		d.notFound(c, map[bool]string{true: "favicon", false: p}[p == "/favicon.ico"])
		return
	}
	if !slices.Contains([]string{http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace}, r.Method) {
		if reason := c.csrfReason(); reason != "" {
			d.fail(c, http.StatusForbidden, "csrf", "403 Forbidden", `<div id="summary"><h1>Forbidden <span>(403)</span></h1><p>CSRF verification failed. Request aborted.</p></div>
<div id="info"><h2>Help</h2><p>Reason given for failure:</p><pre>`+adminEsc(reason)+"</pre></div>")
			return
		}
	}
	// The admin's views are never_cache, and read the session.
	h.Set("Expires", time.Now().UTC().Format(http.TimeFormat))
	h.Set("Cache-Control", "max-age=0, no-cache, no-store, must-revalidate, private")
	c.accessed = true
	view, id := adminRoute(p)
	views := map[string]func(*adminCall, int){"index": d.index, "logout": d.logout, "list": d.list, "change": d.change, "delete": d.remove}
	switch {
	case view == "login":
		d.login(c)
	case c.user == "" && view == "logout": // admin_view sends it to the index
		d.redirect(c, http.StatusFound, "/admin/")
	case c.user == "": // admin_view, around the catch-all view too
		d.Counts.Add("login redirects", 1)
		next := strings.NewReplacer("%2F", "/", "+", "%20").Replace(url.QueryEscape(r.URL.RequestURI())) // quote(next, safe="/")
		d.redirect(c, http.StatusFound, "/admin/login/?next="+next)
	case views[view] != nil:
		views[view](c, id)
	default:
		d.notFound(c, p)
	}
}

// adminEsc is Django's escape.
func adminEsc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&#x27;").Replace(s)
}

// page renders admin/base.html around content: the user tools with the
// logout form if someone is logged in, and the messages, which it shows
// and so consumes.
func (d *DjangoAdmin) page(c *adminCall, title, bodyClass, style, crumbs, content string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `<!DOCTYPE html>
<html lang="en-us" dir="ltr"><head><title>%s | Django site admin</title>
<link rel="stylesheet" href="/static/admin/css/base.css"><link rel="stylesheet" href="/static/admin/css/dark_mode.css"><script src="/static/admin/js/theme.js"></script>
<link rel="stylesheet" href="/static/admin/css/nav_sidebar.css"><script src="/static/admin/js/nav_sidebar.js" defer></script>%s
<meta name="viewport" content="width=device-width, initial-scale=1.0"><link rel="stylesheet" href="/static/admin/css/responsive.css"><meta name="robots" content="NONE,NOARCHIVE"></head>
<body class="%s" data-admin-utc-offset="0"><a href="#content-start" class="skip-to-content-link">Skip to main content</a>
<div id="container"><header id="header"><div id="branding"><div id="site-name"><a href="/admin/">Django administration</a></div></div>
`, adminEsc(title), style, bodyClass)
	if c.user != "" {
		fmt.Fprintf(&b, `<div id="user-tools">Welcome, <strong>%s</strong>. <a href="/">View site</a> / <form id="logout-form" method="post" action="/admin/logout/"><input type="hidden" name="csrfmiddlewaretoken" value="%s"><button type="submit">Log out</button></form></div>
`, adminEsc(c.user), c.token())
	}
	if crumbs != "" {
		crumbs = `<nav aria-label="Breadcrumbs"><div class="breadcrumbs"><a href="/admin/">Home</a>` + crumbs + "</div></nav>\n"
	}
	b.WriteString("</header>\n" + crumbs + `<div class="main" id="main"><main id="content-start" class="content" tabindex="-1">` + "\n")
	if all := slices.Concat(c.loaded, c.queued); len(all) > 0 {
		c.used, c.loaded, c.queued = true, all, nil
		d.Counts.Add("messages shown", int64(len(all)))
		b.WriteString(`<ul class="messagelist">`)
		for _, m := range all {
			if !m.safe {
				m.text = adminEsc(m.text)
			}
			fmt.Fprintf(&b, "<li class=%q>%s</li>\n", map[int]string{10: "debug", 20: "info", 25: "success", 30: "warning", 40: "error"}[m.level], m.text)
		}
		b.WriteString("</ul>\n")
	}
	b.WriteString(content + "</main></div>\n<footer id=\"footer\"></footer></div>\n<div id=\"root\"></div>\n<script>" + adminVisitJS + "</script>\n</body></html>\n")
	return b.String()
}

func (d *DjangoAdmin) index(c *adminCall, _ int) {
	d.send(c, http.StatusOK, d.page(c, "Site administration", "dashboard", "", "", adminIndex))
}

const adminIndex = `<div id="content" class="colMS"><h1>Site administration</h1>
<div id="content-main"><div class="app-blog module"><table><caption><a href="/admin/blog/" class="section" title="Models in the Blog application">Blog</a></caption>
<tr class="model-post"><th scope="row"><a href="/admin/blog/post/">Posts</a></th><td><a href="/admin/blog/post/add/" class="addlink">Add</a></td><td><a href="/admin/blog/post/" class="changelink">Change</a></td></tr>
</table></div></div>
<div id="content-related"><div class="module" id="recent-actions-module"><h2>Recent actions</h2><h3>My actions</h3><p>None available</p></div></div></div>
`

// login is AdminSite.login: LoginView with AdminAuthenticationForm, after
// which login() rotates the session key (cycle_key, or flush for another
// user's session) and the CSRF secret (rotate_token).
func (d *DjangoAdmin) login(c *adminCall) {
	r := c.r
	if r.Method == http.MethodGet && c.user != "" {
		d.redirect(c, http.StatusFound, "/admin/")
		return
	}
	// LoginView's next comes from the POST, else the query; the form's
	// default, when the request names none, is the admin's index.
	next, named := r.PostFormValue("next"), r.PostForm.Has("next")
	if !named {
		next, named = r.URL.Query().Get("next"), r.URL.Query().Has("next")
	}
	if u, err := url.Parse(next); err != nil || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || u.Host != "" || strings.ContainsAny(next, "\\\r\n\t") {
		next = "" // url_has_allowed_host_and_scheme, for the paths this admin links
	}
	user, pw := r.PostFormValue("username"), r.PostFormValue("password")
	if r.Method != http.MethodPost || user == "" || pw != "pw-"+user {
		note := ""
		if r.Method == http.MethodPost {
			d.Counts.Add("login refused", 1)
			note = `<p class="errornote">Please enter the correct username and password for a staff account. Note that both fields may be case-sensitive.</p>` + "\n"
		}
		if !named {
			next = "/admin/"
		}
		c.user = "" // the login page has no user tools
		d.send(c, http.StatusOK, d.page(c, "Log in", "login", `<link rel="stylesheet" href="/static/admin/css/login.css">`, "", fmt.Sprintf(`<div id="content" class="colM"><div id="content-main">
%s<form action="%s" method="post" id="login-form"><input type="hidden" name="csrfmiddlewaretoken" value="%s">
<div class="form-row"><label class="required" for="id_username">Username:</label> <input type="text" name="username" autofocus autocapitalize="none" autocomplete="username" maxlength="150" required id="id_username"%s></div>
<div class="form-row"><label class="required" for="id_password">Password:</label> <input type="password" name="password" autocomplete="current-password" required id="id_password"><input type="hidden" name="next" value="%s"></div>
<div class="submit-row"><input type="submit" value="Log in"></div></form></div></div>
`, note, adminEsc(r.URL.RequestURI()), c.token(), map[bool]string{true: ` value="` + adminEsc(user) + `"`}[user != ""], adminEsc(next))))
		return
	}
	d.mu.Lock()
	if c.newSID = c.sid; c.user != user { // the same user keeps the session key
		delete(d.sessions, c.sid)
		c.newSID = adminRandom(32, "abcdefghijklmnopqrstuvwxyz0123456789")
	}
	d.sessions[c.newSID] = user
	d.users[user] = true
	d.mu.Unlock()
	c.user, c.sid, c.stale = user, c.newSID, false
	c.secret, c.renew = adminRandom(32, adminCSRFChars), true
	d.Counts.Add("sessions", 1)
	d.redirect(c, http.StatusFound, cmp.Or(next, "/accounts/profile/")) // LOGIN_REDIRECT_URL
}

// logout is LogoutView, which takes only POST since Django 5.0 and
// renders registration/logged_out.html when no next page is set.
func (d *DjangoAdmin) logout(c *adminCall, _ int) {
	if c.r.Method != http.MethodPost {
		c.w.Header().Set("Allow", "POST, OPTIONS")
		d.Counts.Add("405", 1)
		d.send(c, http.StatusMethodNotAllowed, "")
		return
	}
	d.mu.Lock()
	delete(d.sessions, c.sid)
	d.mu.Unlock()
	c.flushed, c.user = true, ""
	d.Counts.Add("logouts", 1)
	d.send(c, http.StatusOK, d.page(c, "Logged out", "", "", " ", `<div id="content" class="colM"><h1>Logged out</h1>
<p>Thanks for spending some quality time with the web site today.</p><p><a href="/admin/">Log in again</a></p></div>
`))
}

// list is the changelist of the user's posts (get_queryset keeps only
// theirs), newest first as the default ordering by -pk has it.
func (d *DjangoAdmin) list(c *adminCall, _ int) {
	var rows strings.Builder
	n := 0
	d.mu.Lock()
	for _, id := range slices.Backward(slices.Sorted(maps.Keys(d.posts))) {
		if p := d.posts[id]; p.owner == c.user {
			n++
			fmt.Fprintf(&rows, "<tr><th class=\"field-__str__\"><a href=\"%s%d/change/\">%s</a></th></tr>\n", adminList, id, adminEsc(p.title))
		}
	}
	d.mu.Unlock()
	table := ""
	if n > 0 {
		table = `<div class="results"><table id="result_list"><thead><tr><th scope="col" class="column-__str__"><div class="text"><span>Post</span></div></th></tr></thead>
<tbody>` + rows.String() + "</tbody></table></div>\n"
	}
	d.send(c, http.StatusOK, d.page(c, "Select post to change", "app-blog model-post change-list",
		`<link rel="stylesheet" href="/static/admin/css/changelists.css">`, ` › <a href="/admin/blog/">Blog</a> › Posts`,
		fmt.Sprintf(`<div id="content" class="flex"><h1>Select post to change</h1><div id="content-main">
<ul class="object-tools"><li><a href="/admin/blog/post/add/" class="addlink">Add post</a></li></ul>
<div class="module" id="changelist"><div class="changelist-form-container">
%s<p class="paginator">%d post%s</p></div></div></div></div>
`, table, n, map[bool]string{true: "s"}[n != 1])))
}

// change is changeform_view: the add form if id is 0, else the change form
// of a post of the user's. A valid POST is saved and answered as
// response_add and response_change do: a success message linking the post,
// and a redirect to the page the button pressed asks for.
func (d *DjangoAdmin) change(c *adminCall, id int) {
	r := c.r
	var post adminPost
	d.mu.Lock()
	if p := d.posts[id]; p != nil && p.owner == c.user {
		post = *p
	}
	d.mu.Unlock()
	if id != 0 && post.owner == "" {
		d.notFound(c, "post")
		return
	}
	note := ""
	if r.Method == http.MethodPost {
		// CharField strips; both fields are required.
		post.title, post.body = strings.TrimSpace(r.PostFormValue("title")), strings.TrimSpace(r.PostFormValue("body"))
		if post.title != "" && post.body != "" && utf8.RuneCountInString(post.title) <= 200 {
			d.save(c, id, post)
			return
		}
		note = `<p class="errornote">Please correct the error below.</p>` + "\n"
	}
	title, crumb, del := "Add post", "Add post", ""
	if id != 0 {
		title, crumb = "Change post", adminEsc(post.title)
		del = fmt.Sprintf(`<a href="%s%d/delete/" class="deletelink">Delete</a>`, adminList, id)
	}
	d.send(c, http.StatusOK, d.page(c, title, "app-blog model-post change-form", `<link rel="stylesheet" href="/static/admin/css/forms.css">`,
		` › <a href="/admin/blog/">Blog</a> › <a href="/admin/blog/post/">Posts</a> › `+crumb, fmt.Sprintf(`<div id="content" class="colM"><h1>%s</h1>
<div id="content-main"><form method="post" id="post_form" novalidate><input type="hidden" name="csrfmiddlewaretoken" value="%s"><div>
%s<fieldset class="module aligned ">
<div class="form-row field-title"><label class="required" for="id_title">Title:</label> <input type="text" name="title" class="vTextField" maxlength="200" required id="id_title" value="%s"></div>
<div class="form-row field-body"><label class="required" for="id_body">Body:</label> <textarea name="body" cols="40" rows="10" class="vLargeTextField" required id="id_body">
%s</textarea></div></fieldset>
<div class="submit-row"><input type="submit" value="Save" class="default" name="_save"><input type="submit" value="Save and add another" name="_addanother"><input type="submit" value="Save and continue editing" name="_continue">%s</div>
</div></form></div></div>
`, title, c.token(), note, adminEsc(post.title), adminEsc(post.body), del)))
}

func (d *DjangoAdmin) save(c *adminCall, id int, post adminPost) {
	verb, count := "changed", "posts changed"
	d.mu.Lock()
	if p := d.posts[id]; id == 0 {
		d.last++
		id, verb, count = d.last, "added", "posts created"
		d.posts[id] = &adminPost{c.user, post.title, post.body}
	} else if p != nil && p.owner == c.user {
		p.title, p.body = post.title, post.body
	} else {
		id = 0 // deleted meanwhile
	}
	d.mu.Unlock()
	if id == 0 {
		d.notFound(c, "post")
		return
	}
	d.Counts.Add(count, 1)
	obj := fmt.Sprintf("%s%d/change/", adminList, id)
	msg, to := fmt.Sprintf(`The post “<a href="%s">%s</a>” was %s successfully.`, obj, adminEsc(post.title), verb), adminList
	switch {
	case c.r.PostForm.Has("_continue"):
		msg, to = msg+" You may edit it again below.", obj
	case c.r.PostForm.Has("_addanother"):
		msg, to = msg+" You may add another post below.", adminAdd
	}
	c.queued = append(c.queued, adminMessage{25, msg, true})
	d.redirect(c, http.StatusFound, to)
}

// remove is delete_view: the confirmation page, and the deletion when a
// POST with a body confirms it.
func (d *DjangoAdmin) remove(c *adminCall, id int) {
	r := c.r
	d.mu.Lock()
	p, title := d.posts[id], ""
	ok := p != nil && p.owner == c.user
	if ok {
		title = p.title
	}
	confirmed := ok && r.Method == http.MethodPost && len(r.PostForm) > 0
	if confirmed {
		delete(d.posts, id)
	}
	d.mu.Unlock()
	switch {
	case !ok:
		d.notFound(c, "post")
	case confirmed:
		d.Counts.Add("posts deleted", 1)
		// Not format_html: plain text, escaped when shown.
		c.queued = append(c.queued, adminMessage{25, "The post “" + title + "” was deleted successfully.", false})
		d.redirect(c, http.StatusFound, adminList)
	default:
		obj, title := fmt.Sprintf("%s%d/change/", adminList, id), adminEsc(title)
		d.send(c, http.StatusOK, d.page(c, "Are you sure?", "app-blog model-post delete-confirmation", "",
			` › <a href="/admin/blog/">Blog</a> › <a href="/admin/blog/post/">Posts</a> › <a href="`+obj+`">`+title+`</a> › Delete`,
			fmt.Sprintf(`<div id="content" class="colM"><h1>Are you sure?</h1>
<p>Are you sure you want to delete the post “%s”? All of the following related items will be deleted:</p>
<h2>Summary</h2><ul><li>Posts: 1</li></ul><h2>Objects</h2><ul id="deleted-objects"><li>Post: <a href="%s">%s</a></li></ul>
<form method="post"><input type="hidden" name="csrfmiddlewaretoken" value="%s"><div><input type="hidden" name="post" value="yes">
<input type="submit" value="Yes, I’m sure"> <a href="#" class="button cancel-link">No, take me back</a></div></form></div>
`, title, obj, title, c.token())))
	}
}

// static is runserver's static files view: Last-Modified, and 304 to
// If-Modified-Since.
func (d *DjangoAdmin) static(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/static/admin/")
	body, ctype := "/* "+name+" */\n", "text/css"
	switch name {
	case "css/base.css":
		body = adminBaseCSS
	case "css/dark_mode.css", "css/nav_sidebar.css", "css/responsive.css", "css/login.css", "css/forms.css", "css/changelists.css":
	case "js/theme.js", "js/nav_sidebar.js":
		body, ctype = "'use strict';\n{\n    // "+name+"\n}\n", "text/javascript"
	case "img/icon-addlink.svg", "img/icon-changelink.svg", "img/icon-deletelink.svg", "img/icon-yes.svg":
		body, ctype = `<svg width="13" height="13" viewBox="0 0 1792 1792" xmlns="http://www.w3.org/2000/svg"><path fill="#70bf2b" d="M1344 960v-128h-384v-384h-128v384h-384v128h384v384h128v-384z"/></svg>`, "image/svg+xml"
	default:
		d.notFound(d.begin(w, r), r.URL.Path)
		return
	}
	w.Header().Set("Content-Type", ctype)
	http.ServeContent(w, r, name, d.modified, strings.NewReader(body))
}

// adminBaseCSS pulls images with url(), as Django's base.css does: a
// browser fetches those its page uses.
const adminBaseCSS = `/* DJANGO Admin styles */
body { margin: 0; padding: 0; font-size: 0.875rem; font-family: system-ui, sans-serif; color: #333; background: #fff; }
.addlink { padding-left: 16px; background: url(../img/icon-addlink.svg) 0 1px no-repeat; }
.changelink { padding-left: 16px; background: url(../img/icon-changelink.svg) 0 1px no-repeat; }
.deletelink { padding-left: 16px; background: url(../img/icon-deletelink.svg) 0 1px no-repeat; }
ul.messagelist li.success { background: #dfd url(../img/icon-yes.svg) 40px 12px no-repeat; }
`

// adminVisitJS moves a browser's visit on like a person, one step per
// page: log in as the u of the next URL, go to the changelist, add two
// posts (the second with "Save and continue editing"), change the second,
// delete the first, log out; the logged-out page says "done". A page acts
// only as the step it expects (a reloaded one does nothing), 20 to 80 ms
// after it has loaded (its style sheets' images too, which a navigation
// would cut off, leaving the server to have seen them or not), and shows
// anything unexpected as "error: ...".
const adminVisitJS = `(() => {
  const S = sessionStorage, q = s => document.querySelector(s), root = document.getElementById("root");
  const fail = m => { root.textContent = "error: " + m; }, cls = document.body.classList, path = location.pathname;
  const kind = cls.contains("login") ? "login" : cls.contains("dashboard") ? "index" : cls.contains("change-list") ? "list"
    : cls.contains("delete-confirmation") ? "delete" : cls.contains("change-form") ? (path.endsWith("/add/") ? "add" : "change")
    : path === "/admin/logout/" ? "out" : "other";
  const steps = ["login", "index", "list", "add", "list", "add", "change", "list", "change", "delete", "list", "out"];
  const n = +(S.getItem("visit.step") || 0), said = (q(".messagelist") || {}).textContent || "";
  const expect = t => { if (!said.includes(t)) throw new Error("no message \"" + t + "\" at step " + n); };
  const fill = t => { q("#id_title").value = t; q("#id_body").value = "Some text."; };
  const acts = [() => {
    const u = new URL(new URLSearchParams(location.search).get("next") || "/", location.href).searchParams.get("u") || S.getItem("visit.u");
    if (!u) throw new Error("no user in " + location.search);
    S.setItem("visit.u", u);
    q("#id_username").value = u; q("#id_password").value = "pw-" + u; q("#login-form").submit();
  }, () => q('a[href="/admin/blog/post/"]').click(), () => q("a.addlink").click(),
  () => { fill("First post"); q("#post_form").submit(); },
  () => { expect("was added successfully."); q("a.addlink").click(); },
  () => { fill("Second post"); q("#post_form").requestSubmit(q('[name="_continue"]')); },
  () => { expect("You may edit it again below."); q("#id_title").value = "Second post, edited"; q("#post_form").submit(); },
  () => { expect("was changed successfully."); [...document.querySelectorAll("#result_list a")].find(a => a.textContent === "First post").click(); },
  () => q("a.deletelink").click(), () => q('input[name="post"]').form.submit(), () => {
    expect("was deleted successfully.");
    if (document.querySelectorAll("#result_list tbody tr").length !== 1) throw new Error("not one post left");
    q("#logout-form").requestSubmit();
  }, () => { root.textContent = "done"; }];
  if (q(".errornote")) return fail(q(".errornote").textContent.trim());
  if (kind !== steps[n]) return n > 0 && kind === steps[n - 1] || fail("page " + kind + " " + path + " at step " + n);
  S.setItem("visit.step", n + 1);
  const act = () => setTimeout(() => { try { acts[n](); } catch (e) { fail(e.message); } }, 20 + Math.random() * 60);
  if (document.readyState === "complete") act(); else addEventListener("load", act);
})();
`

// DjangoAdminClient is a person visiting a DjangoAdmin with a browser, done
// with net/http: the visit of the pages' script, each static file fetched
// once (as a cache would) and the favicon, each redirect followed
// separately. It fails tb on any status but the one Django answers.
func DjangoAdminClient(tb testing.TB, base, user string) {
	tb.Helper()
	newAdminUser(tb, base).visit(user)
}

// adminUser is a browser context of DjangoAdminClient: a cookie jar and
// connections of its own.
type adminUser struct {
	tb                testing.TB
	c                 *http.Client
	base              string
	token             string            // the masked CSRF token of the last form read
	messages          string            // the messages cookie the last answer set
	set               map[string]string // the messages cookie each action's answer set
	seen              map[string]bool   // static files fetched
	tokenRE, staticRE *regexp.Regexp
}

func newAdminUser(tb testing.TB, base string) *adminUser {
	jar, _ := cookiejar.New(nil)
	tr := &http.Transport{}
	tb.Cleanup(tr.CloseIdleConnections)
	return &adminUser{tb: tb, base: base, set: map[string]string{}, seen: map[string]bool{},
		c:        &http.Client{Jar: jar, Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		tokenRE:  regexp.MustCompile(`name="csrfmiddlewaretoken" value="([A-Za-z0-9]+)"`),
		staticRE: regexp.MustCompile(`(?:href="|src="|url\(\.\.)(/[a-z/_.-]+\.(?:css|js|svg))`)}
}

// do sends a request, a form if form is not nil (with the last token read
// unless it has one), and fails the test unless the status is want. It
// fetches the page's static files, keeps its last form token and the
// messages cookie set, and returns the Location and the body.
func (a *adminUser) do(method, path string, form url.Values, want int, header ...string) (string, string) {
	a.tb.Helper()
	body := ""
	if form != nil {
		if !form.Has("csrfmiddlewaretoken") {
			form.Set("csrfmiddlewaretoken", a.token)
		}
		body, header = form.Encode(), append(header, "Content-Type", "application/x-www-form-urlencoded")
	}
	ans := Do(a.tb, a.c, method, a.base+path, body, header...)
	if ans.Status != want {
		a.tb.Fatalf("%s %s: %d, want %d: %.300s", method, path, ans.Status, want, ans.Body)
	}
	page := string(ans.Body)
	links := a.staticRE.FindAllStringSubmatch(page, -1)
	if strings.HasPrefix(page, "<!DOCTYPE html>") {
		links = append(links, []string{"", "/favicon.ico"}) // as a browser asks for it
	}
	for _, m := range links {
		p, want := m[1], http.StatusOK
		if strings.HasPrefix(p, "/img/") { // url(../img/...) in a style sheet
			p = "/static/admin" + p
		}
		if p == "/favicon.ico" {
			want = http.StatusNotFound
		}
		if !a.seen[p] {
			a.seen[p] = true
			a.do(http.MethodGet, p, nil, want)
		}
	}
	if m := a.tokenRE.FindAllStringSubmatch(page, -1); m != nil { // after the fetches above, which read pages of their own
		a.token = m[len(m)-1][1]
	}
	a.messages = ""
	for _, ck := range ans.Header.Values("Set-Cookie") {
		if strings.HasPrefix(ck, "messages=") {
			a.messages = ck
		}
	}
	return ans.Header.Get("Location"), page
}

func (a *adminUser) expect(what, got, want string) {
	a.tb.Helper()
	if !strings.Contains(got, want) {
		a.tb.Fatalf("%s: %.300q does not have %q", what, got, want)
	}
}

// login logs user in at the login page at path, as its form does, and
// returns where the answer sends it.
func (a *adminUser) login(path, user string) string {
	a.tb.Helper()
	_, page := a.do(http.MethodGet, path, nil, http.StatusOK)
	m := regexp.MustCompile(`<form action="([^"]*)"(?s:.*)name="next" value="([^"]*)"`).FindStringSubmatch(page)
	if m == nil {
		a.tb.Fatalf("login page %s has no form", path)
	}
	loc, _ := a.do(http.MethodPost, html.UnescapeString(m[1]), url.Values{"username": {user}, "password": {"pw-" + user}, "next": {html.UnescapeString(m[2])}}, http.StatusFound)
	return loc
}

// save submits the form at path, read last, with a title and a button,
// checks where the answer sends it and that the page there shows the
// message, and returns that page's path and body.
func (a *adminUser) save(path, title, button, action string) (string, string) {
	a.tb.Helper()
	loc, _ := a.do(http.MethodPost, path, url.Values{"title": {title}, "body": {"Some text."}, button: {"Save"}}, http.StatusFound)
	a.set[action] = a.messages
	if ok, _ := regexp.MatchString(map[bool]string{true: `^/admin/blog/post/\d+/change/$`, false: "^" + adminList + "$"}[button == "_continue"], loc); !ok {
		a.tb.Fatalf("%s %s sent to %q", action, title, loc)
	}
	_, page := a.do(http.MethodGet, loc, nil, http.StatusOK)
	a.expect(action+" "+title, page, " successfully.")
	return loc, page
}

func (a *adminUser) visit(user string) {
	a.tb.Helper()
	start := "/admin/?u=" + url.QueryEscape(user)
	loc, _ := a.do(http.MethodGet, start, nil, http.StatusFound)
	a.expect("anonymous "+start, loc, "/admin/login/?next=/admin/%3Fu%3D")
	a.expect("login", a.login(loc, user), start)
	for _, p := range []string{start, adminList, adminAdd} {
		a.do(http.MethodGet, p, nil, http.StatusOK)
	}
	a.save(adminAdd, "First post", "_save", "add")
	a.do(http.MethodGet, adminAdd, nil, http.StatusOK)
	second, _ := a.save(adminAdd, "Second post", "_continue", "continue")
	_, page := a.save(second, "Second post, edited", "_save", "change")
	first := regexp.MustCompile(`href="(/admin/blog/post/\d+/)change/">First post<`).FindStringSubmatch(page)
	if first == nil {
		a.tb.Fatalf("changelist has no First post: %.300s", page)
	}
	a.do(http.MethodGet, first[1]+"change/", nil, http.StatusOK)
	a.do(http.MethodGet, first[1]+"delete/", nil, http.StatusOK)
	loc, _ = a.do(http.MethodPost, first[1]+"delete/", url.Values{"post": {"yes"}}, http.StatusFound)
	a.set["delete"] = a.messages
	a.expect("delete", loc, adminList)
	_, page = a.do(http.MethodGet, adminList, nil, http.StatusOK)
	a.expect("changelist", page, "was deleted successfully.")
	_, page = a.do(http.MethodPost, "/admin/logout/", url.Values{}, http.StatusOK)
	a.expect("logout", page, "<h1>Logged out</h1>")
}
