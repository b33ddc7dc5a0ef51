package apptest

import (
	"bytes"
	"cmp"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"maps"
	mrand "math/rand/v2"
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

// Tornado is a backend that behaves on the wire as a Tornado application
// with Jupyter Server's login conventions: an _xsrf cookie in Tornado's
// version-2 format, masked afresh in each form's hidden _xsrf field and sent
// back by scripts in X-XSRFToken; a login form (password "pw-" + the user
// name) that sets a signed login cookie whose value Python quotes (see
// CookieName); a contents API that names new notebooks Untitled.ipynb,
// Untitled1.ipynb, ... per user; kernel sessions with uuid ids; and
// notebooks and sessions only their owner sees. Counts: "sessions"
// (logins), "login refused" (401), "403" (every 403), "403 xsrf" (those of
// the XSRF check), "404" (every 404 but the favicon's), "404 foreign"
// (another user's notebook, session or kernel), "404 favicon", "login
// redirects", "notebooks created", "kernels started", "kernels deleted",
// "logouts".
type Tornado struct {
	URL    string
	Counts Counts

	secret  []byte                   // cookie_secret, which signs the login cookie
	cookie  string                   // the login cookie's name
	static  map[string]tornadoStatic // path → file
	started time.Time

	mu        sync.Mutex
	users     map[string]bool
	notebooks map[string]map[string]*tornadoNotebook // user → path → notebook
	made      map[string]int                         // user → the next Untitled's number
	sessions  map[string]*tornadoSession             // session id → session
}

type tornadoStatic struct {
	body           []byte
	ctype, version string
}

type tornadoNotebook struct{ created, modified time.Time }

type tornadoSession struct {
	id, owner, path, name, typ, kernel, kernelName string
	started                                        time.Time
	read                                           bool // asked for since it started: idle, no longer starting
}

// NewTornado starts a Tornado on loopback until the test ends.
func NewTornado(tb testing.TB) *Tornado {
	t := &Tornado{secret: []byte(token(32)), static: map[string]tornadoStatic{}, started: time.Now(), users: map[string]bool{},
		notebooks: map[string]map[string]*tornadoNotebook{}, made: map[string]int{}, sessions: map[string]*tornadoSession{}}
	ico, _ := hex.DecodeString("0000010001000101000001002000300000001600000028000000010000000200000001002000" +
		"0000000000000000000000000000000000000000000000002b8cffff00000000") // 1×1, 32 bits
	for path, f := range map[string]tornadoStatic{
		"/static/style.css":            {body: []byte("body { font-family: sans-serif; margin: 2em; }\n.error { color: #b00; }\n"), ctype: "text/css"},
		"/static/main.js":              {body: []byte(tornadoScript), ctype: "application/javascript"},
		"/static/favicons/favicon.ico": {body: ico, ctype: "image/vnd.microsoft.icon"},
	} {
		sum := sha512.Sum512(f.body) // Tornado's static_url version
		f.version = hex.EncodeToString(sum[:])
		t.static[path] = f
	}
	srv := httptest.NewUnstartedServer(t)
	// Jupyter names the login cookie after the host and port, other than
	// alphanumerics as dashes: username-127-0-0-1-8888. Here the name is
	// the listener's, set before the first request, where Jupyter reads
	// each request's Host: it does not change behind a proxy.
	t.cookie = regexp.MustCompile("[^A-Za-z0-9]").ReplaceAllString("username-"+srv.Listener.Addr().String(), "-")
	srv.Start()
	tb.Cleanup(srv.Close)
	t.URL = srv.URL
	return t
}

// CookieName returns the name of the login cookie: username-127-0-0-1-PORT.
func (t *Tornado) CookieName() string { return t.cookie }

// Users returns the names of the users who logged in, sorted.
func (t *Tornado) Users() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Sorted(maps.Keys(t.users))
}

// tornadoReq is a request and what its answer will carry, as Tornado's
// RequestHandler keeps them.
type tornadoReq struct {
	t       *Tornado
	w       http.ResponseWriter
	r       *http.Request
	cookies map[string]string
	user    string
	out     []string // Set-Cookie values, one per name, in the order set

	raw        []byte // the raw XSRF token: the _xsrf cookie's, or new
	rawTS      int64
	fromCookie bool
	masked     string // raw, masked once for this request
}

func (t *Tornado) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rq := &tornadoReq{t: t, w: w, r: r, cookies: parseTornadoCookies(r.Header.Values("Cookie"))}
	w.Header().Set("Server", "TornadoServer/6.4.1")
	csp := "frame-ancestors 'self'; report-uri /api/security/csp-report"
	if strings.HasPrefix(r.URL.Path, "/api/") {
		csp += "; default-src 'none'"
	}
	w.Header().Set("Content-Security-Policy", csp)
	switch {
	case r.URL.Path == "/favicon.ico": // Jupyter's is under /static
		t.Counts.Add("404 favicon", 1)
		rq.writeError(http.StatusNotFound, "")
		return
	case strings.HasPrefix(r.URL.Path, "/static/"):
		rq.serveStatic()
		return
	}
	rq.user = rq.currentUser()
	// Jupyter checks the XSRF token in prepare(), once it knows the user
	// and before @authenticated: a POST with neither cookie fails on XSRF.
	if r.Method != http.MethodGet && r.Method != http.MethodHead && r.Method != http.MethodOptions {
		if msg := rq.checkXSRF(); msg != "" {
			t.Counts.Add("403 xsrf", 1)
			rq.fail(http.StatusForbidden, msg)
			return
		}
	}
	if strings.HasPrefix(r.URL.Path, "/api/") {
		t.api(rq)
	} else {
		t.pages(rq)
	}
}

// currentUser reads the signed login cookie. Jupyter clears a login cookie
// it cannot read, so that the browser stops sending it.
func (rq *tornadoReq) currentUser() string {
	v, ok := rq.cookies[rq.t.cookie]
	if !ok {
		return ""
	}
	var u struct{ Username string }
	payload, ok := rq.t.unsign(rq.t.cookie, v)
	if !ok || json.Unmarshal(payload, &u) != nil || u.Username == "" {
		rq.clearCookie(rq.t.cookie)
		return ""
	}
	return u.Username
}

// signed is Tornado's create_signed_value, version 2: "2|", fields
// "len:text|" (key version, timestamp, name, base64 value), then the hex
// HMAC-SHA256 of all before it.
func (t *Tornado) signed(name, value string, ts int64) string {
	field := func(s string) string { return strconv.Itoa(len(s)) + ":" + s + "|" }
	s := "2|" + field("0") + field(strconv.FormatInt(ts, 10)) + field(name) + field(base64.StdEncoding.EncodeToString([]byte(value)))
	mac := hmac.New(sha256.New, t.secret)
	mac.Write([]byte(s))
	return s + hex.EncodeToString(mac.Sum(nil))
}

// unsign is Tornado's decode_signed_value for version 2 (none of version 1
// is made here), with get_secure_cookie's max_age_days of 31.
func (t *Tornado) unsign(name, v string) ([]byte, bool) {
	rest, ok := strings.CutPrefix(v, "2|")
	var f [4]string // key version, timestamp, name, value
	for i := 0; ok && i < len(f); i++ {
		n, after, found := strings.Cut(rest, ":")
		k, err := strconv.Atoi(n)
		if ok = found && err == nil && k >= 0 && k < len(after) && after[k] == '|'; ok {
			f[i], rest = after[:k], after[k+1:]
		}
	}
	if !ok {
		return nil, false
	}
	mac := hmac.New(sha256.New, t.secret)
	mac.Write([]byte(v[:len(v)-len(rest)]))
	ts, err := strconv.ParseInt(f[1], 10, 64)
	if !hmac.Equal([]byte(rest), []byte(hex.EncodeToString(mac.Sum(nil)))) || f[2] != name ||
		err != nil || ts < time.Now().Add(-31*24*time.Hour).Unix() {
		return nil, false
	}
	payload, err := base64.StdEncoding.DecodeString(f[3])
	return payload, err == nil
}

// tornadoCookiePayload is the login cookie's payload: the identity as
// Python's json.dumps writes it, kept off lengths that are multiples of 3
// (with avatar_url) so that its base64 ends in "=", which Python's cookie
// quoting does not leave bare.
func tornadoCookiePayload(user string) string {
	q, _ := json.Marshal(user)
	head := fmt.Sprintf(`{"username": %s, "name": %s, "display_name": %s, "initials": null, `, q, q, q)
	if tail := `"color": null}`; (len(head)+len(tail))%3 != 0 {
		return head + tail
	}
	return head + `"avatar_url": null, "color": null}`
}

// tornadoDecodeXSRF is Tornado's _decode_xsrf_token: "2|mask|masked
// token|time" in hex, or else a version-1 token, in hex or as it is.
func tornadoDecodeXSRF(s string) (tok []byte, ts int64, ok bool) {
	if v, rest, found := strings.Cut(s, "|"); found && v != "" && v[0] != '0' && strings.Trim(v, "0123456789") == "" {
		p := strings.Split(rest, "|")
		if v != "2" || len(p) != 3 {
			return nil, 0, false
		}
		mask, err1 := hex.DecodeString(p[0])
		masked, err2 := hex.DecodeString(p[1])
		ts, err3 := strconv.ParseInt(p[2], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil || len(mask) != 4 {
			return nil, 0, false
		}
		return tornadoMask(mask, masked), ts, true
	}
	if b, err := hex.DecodeString(s); err == nil {
		return b, time.Now().Unix(), true
	}
	return []byte(s), time.Now().Unix(), true
}

// tornadoMask is Tornado's _websocket_mask, which masks XSRF tokens too.
func tornadoMask(mask, b []byte) []byte {
	out := make([]byte, len(b))
	for i := range b {
		out[i] = b[i] ^ mask[i%4]
	}
	return out
}

func (rq *tornadoReq) rawXSRF() []byte {
	if rq.raw == nil {
		if c := rq.cookies["_xsrf"]; c != "" {
			rq.raw, rq.rawTS, rq.fromCookie = tornadoDecodeXSRF(c)
		}
		if rq.raw == nil {
			rq.raw, rq.rawTS = make([]byte, 16), time.Now().Unix()
			_, _ = rand.Read(rq.raw)
		}
	}
	return rq.raw
}

// xsrfToken is Tornado's xsrf_token: masked afresh for each request, and
// set as the _xsrf cookie when the request had none, for 30 days if
// someone is logged in, else for the browser's session.
func (rq *tornadoReq) xsrfToken() string {
	if rq.masked == "" {
		raw, mask := rq.rawXSRF(), make([]byte, 4)
		_, _ = rand.Read(mask)
		rq.masked = "2|" + hex.EncodeToString(mask) + "|" + hex.EncodeToString(tornadoMask(mask, raw)) + "|" + strconv.FormatInt(rq.rawTS, 10)
		if !rq.fromCookie {
			var exp time.Time
			if rq.user != "" {
				exp = time.Now().Add(30 * 24 * time.Hour)
			}
			rq.setCookie("_xsrf", rq.masked, exp, false)
		}
	}
	return rq.masked
}

// checkXSRF is Tornado's check_xsrf_cookie: the token in the _xsrf
// argument (query or form), or else in X-XSRFToken or X-CSRFToken, must
// decode to the cookie's. It returns the refusal, or "".
func (rq *tornadoReq) checkXSRF() string {
	sent := cmp.Or(strings.TrimSpace(rq.r.FormValue("_xsrf")), rq.r.Header.Get("X-Xsrftoken"), rq.r.Header.Get("X-Csrftoken"))
	if sent == "" {
		return "'_xsrf' argument missing from POST"
	}
	tok, _, ok := tornadoDecodeXSRF(sent)
	switch {
	case !ok || len(tok) == 0:
		return "'_xsrf' argument has invalid format"
	case !hmac.Equal(tok, rq.rawXSRF()): // without a cookie, a new random token
		return "XSRF cookie does not match POST argument"
	}
	return ""
}

// parseTornadoCookies is Tornado's parse_cookie: lenient, later names
// winning, values unquoted as Python's http.cookies does, so that
// name="2|...=|..." and name=2|...=|... read the same.
func parseTornadoCookies(headers []string) map[string]string {
	out := map[string]string{}
	for _, chunk := range strings.Split(strings.Join(headers, ";"), ";") {
		k, v, ok := strings.Cut(chunk, "=")
		if !ok {
			k, v = "", chunk
		}
		if k, v = strings.TrimSpace(k), strings.TrimSpace(v); k != "" || v != "" {
			out[k] = tornadoUnquote(v)
		}
	}
	return out
}

// tornadoUnquote is Python's http.cookies _unquote: a value in double
// quotes loses them and its \ooo and \c escapes.
func tornadoUnquote(v string) string {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return v
	}
	return regexp.MustCompile(`\\(?:[0-3][0-7][0-7]|.)`).ReplaceAllStringFunc(v[1:len(v)-1], func(e string) string {
		if n, err := strconv.ParseUint(e[1:], 8, 8); err == nil && len(e) == 4 {
			return string([]byte{byte(n)})
		}
		return e[1:]
	})
}

// tornadoQuote is Python's http.cookies quoting of a cookie value: as it
// is when every byte is legal, else in double quotes with \" \\ and \ooo
// escapes. So "" becomes `""`, and a value with "=" or "/" is quoted.
func tornadoQuote(v string) string {
	legal := func(c byte) bool {
		return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~:", c) >= 0
	}
	if v != "" && strings.IndexFunc(v, func(r rune) bool { return r >= 0x80 || !legal(byte(r)) }) < 0 {
		return v
	}
	b := []byte{'"'}
	for i := range len(v) {
		switch c := v[i]; {
		case legal(c) || strings.IndexByte(" ()/<=>?@[]{}", c) >= 0:
			b = append(b, c)
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		default:
			b = fmt.Appendf(b, "\\%03o", c)
		}
	}
	return string(append(b, '"'))
}

// setCookie is Tornado's set_cookie with Path=/. A second cookie of the
// same name replaces the first; Python's Morsel writes the attributes
// sorted: expires, HttpOnly, Path.
func (rq *tornadoReq) setCookie(name, value string, expires time.Time, httpOnly bool) {
	rq.out = slices.DeleteFunc(rq.out, func(c string) bool { return strings.HasPrefix(c, name+"=") })
	c := name + "=" + tornadoQuote(value)
	if !expires.IsZero() {
		c += "; expires=" + expires.UTC().Format(http.TimeFormat)
	}
	if httpOnly {
		c += "; HttpOnly"
	}
	rq.out = append(rq.out, c+"; Path=/")
}

// clearCookie is Tornado's clear_cookie: empty, expired a year ago, and no
// Max-Age (Tornado writes max_age only when it is not 0).
func (rq *tornadoReq) clearCookie(name string) {
	rq.setCookie(name, "", time.Now().Add(-365*24*time.Hour), false)
}

// finish writes the answer as Tornado's finish does: the cookies, and for
// a GET's 200 an Etag (the sha1 of the body unless set) that a matching
// If-None-Match turns into a 304 without a body.
func (rq *tornadoReq) finish(status int, ctype string, body []byte) {
	h := rq.w.Header()
	for _, c := range rq.out {
		h.Add("Set-Cookie", c)
	}
	if status == http.StatusOK && (rq.r.Method == http.MethodGet || rq.r.Method == http.MethodHead) {
		if h.Get("Etag") == "" {
			sum := sha1.Sum(body)
			h.Set("Etag", `"`+hex.EncodeToString(sum[:])+`"`)
		}
		for _, e := range strings.Split(rq.r.Header.Get("If-None-Match"), ",") {
			if e = strings.TrimPrefix(strings.TrimSpace(e), "W/"); e == "*" || e == h.Get("Etag") {
				status, body = http.StatusNotModified, nil
				break
			}
		}
	}
	if status != http.StatusNoContent && status != http.StatusNotModified {
		h.Set("Content-Type", ctype)
		h.Set("Content-Length", strconv.Itoa(len(body)))
	}
	rq.w.WriteHeader(status)
	_, _ = rq.w.Write(body)
}

func (rq *tornadoReq) redirect(loc string) {
	rq.w.Header().Set("Location", loc)
	rq.finish(http.StatusFound, "text/html; charset=UTF-8", nil)
}

// tornadoObj is a JSON object whose keys keep their order, as Python's
// dicts do: key, value, key, value, ...
type tornadoObj []any

// MarshalJSON writes the object, keys in order.
func (o tornadoObj) MarshalJSON() ([]byte, error) {
	b := []byte{'{'}
	for i := 0; i+1 < len(o); i += 2 {
		k, _ := json.Marshal(o[i])
		v, err := json.Marshal(o[i+1])
		if err != nil {
			return nil, err
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = append(append(append(b, k...), ':'), v...)
	}
	return append(b, '}'), nil
}

// json answers v as Jupyter's json.dumps writes it: ", " and ": " between
// items.
func (rq *tornadoReq) json(status int, v any) {
	compact, _ := json.Marshal(v)
	var b []byte
	in, esc := false, false
	for _, c := range compact {
		b = append(b, c)
		switch {
		case esc:
			esc = false
		case in && c == '\\':
			esc = true
		case c == '"':
			in = !in
		case !in && (c == ':' || c == ','):
			b = append(b, ' ')
		}
	}
	rq.finish(status, "application/json", b)
}

// fail answers an error, counted by status.
func (rq *tornadoReq) fail(status int, msg string) {
	rq.t.Counts.Add(strconv.Itoa(status), 1)
	rq.writeError(status, msg)
}

// writeError is Jupyter's write_error: JSON for the API, a page otherwise.
func (rq *tornadoReq) writeError(status int, msg string) {
	text := http.StatusText(status)
	if strings.HasPrefix(rq.r.URL.Path, "/api/") {
		rq.json(status, tornadoObj{"message", cmp.Or(msg, text), "reason", nil})
		return
	}
	detail := ""
	if msg != "" {
		detail = "<p>The error was:</p>\n<pre class=\"traceback\">" + html.EscapeString(msg) + "</pre>\n"
	}
	rq.render(status, "text/html", fmt.Sprintf("%d %s", status, text), "", fmt.Sprintf("<h1>%d : %s</h1>\n%s"+
		`<div id="root" class="error">error: %d %s</div>`, status, text, detail, status, html.EscapeString(cmp.Or(msg, text))))
}

// render writes a page of Jupyter's page.html. Each page's template
// namespace takes xsrf_token, which sets the _xsrf cookie if missing.
func (rq *tornadoReq) render(status int, ctype, title, head, body string) {
	rq.xsrfToken()
	st := func(p string) string { return p + "?v=" + rq.t.static[p].version }
	rq.finish(status, ctype, fmt.Appendf(nil, `<!DOCTYPE HTML>
<html>
<head>
<meta charset="utf-8">
<title>%s</title>
<link id="favicon" rel="icon" type="image/x-icon" href="%s">
<link rel="stylesheet" href="%s" type="text/css">
%s</head>
<body>
%s
</body>
</html>
`, html.EscapeString(title), st("/static/favicons/favicon.ico"), st("/static/style.css"), head, body))
}

// serveStatic is Jupyter's FileFindHandler: a versioned URL (?v=) may be
// cached ten years, an unversioned one is revalidated.
func (rq *tornadoReq) serveStatic() {
	f, ok := rq.t.static[rq.r.URL.Path]
	if !ok {
		rq.fail(http.StatusNotFound, "")
		return
	}
	if rq.r.Method != http.MethodGet && rq.r.Method != http.MethodHead {
		rq.fail(http.StatusMethodNotAllowed, "")
		return
	}
	h := rq.w.Header()
	h.Set("Etag", `"`+f.version+`"`)
	h.Set("Last-Modified", rq.t.started.UTC().Format(http.TimeFormat))
	h.Set("Cache-Control", "no-cache")
	if rq.r.URL.Query().Has("v") {
		h.Set("Expires", time.Now().Add(10*365*24*time.Hour).UTC().Format(http.TimeFormat))
		h.Set("Cache-Control", "max-age=315360000")
	}
	rq.finish(http.StatusOK, f.ctype, f.body)
}

// tornadoSafeNext is Jupyter's _redirect_safe: a path of this server only.
func tornadoSafeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.Contains(next, `\`) {
		return "/"
	}
	return next
}

func (t *Tornado) pages(rq *tornadoReq) {
	r, html200 := rq.r, "text/html; charset=UTF-8"
	if r.Method != http.MethodGet && r.Method != http.MethodHead && (r.URL.Path != "/login" || r.Method != http.MethodPost) {
		rq.fail(http.StatusMethodNotAllowed, "")
		return
	}
	switch r.URL.Path {
	case "/login":
		if r.Method == http.MethodPost {
			t.login(rq)
		} else if rq.user != "" {
			rq.redirect(tornadoSafeNext(r.FormValue("next")))
		} else {
			rq.loginForm(http.StatusOK, "")
		}
	case "/logout":
		rq.clearCookie(t.cookie)
		t.Counts.Add("logouts", 1)
		root := "done"
		if rq.user == "" {
			root = "error: logged out without being logged in"
		}
		rq.render(http.StatusOK, html200, "Logout", "", `<div class="message info">Successfully logged out.</div>
<p><a href="/login">Proceed to the login page</a>.</p>
<div id="root">`+root+`</div>`)
	case "/tree":
		if rq.user == "" { // Tornado's @authenticated
			t.Counts.Add("login redirects", 1)
			rq.redirect("/login?" + url.Values{"next": {r.URL.RequestURI()}}.Encode())
			return
		}
		rq.render(http.StatusOK, html200, "Home", `<script src="/static/main.js?v=`+t.static["/static/main.js"].version+`"></script>
`, "<h1>Files of "+html.EscapeString(rq.user)+"</h1>\n<div id=\"root\"></div>")
	default:
		rq.fail(http.StatusNotFound, "")
	}
}

// loginForm is Jupyter's login.html, asking a username too. Opened with
// ?u=NAME, its script logs NAME in as a person would; a refused login
// says so in #root rather than trying again.
func (rq *tornadoReq) loginForm(status int, message string) {
	extra := `<script>
const u = new URLSearchParams(location.search).get("u");
if (u) {
  document.getElementById("username_input").value = u;
  document.getElementById("password_input").value = "pw-" + u;
  document.querySelector("form").submit();
}
</script>`
	if m := html.EscapeString(message); m != "" {
		extra = `<div class="message error">` + m + "</div>\n" + `<div id="root" class="error">error: ` + m + "</div>"
	}
	rq.render(status, "text/html; charset=UTF-8", "Jupyter Server", "", `<form action="/login?next=`+
		url.QueryEscape(cmp.Or(rq.r.FormValue("next"), "/"))+`" method="post">
<input type="hidden" name="_xsrf" value="`+html.EscapeString(rq.xsrfToken())+`"/>
<label for="username_input">Username:</label> <input name="username" id="username_input">
<label for="password_input">Password:</label> <input type="password" name="password" id="password_input">
<button type="submit" id="login_submit">Log in</button>
</form>
`+extra)
}

func (t *Tornado) login(rq *tornadoReq) {
	// Tornado's get_argument strips what it reads.
	name, pw := strings.TrimSpace(rq.r.FormValue("username")), strings.TrimSpace(rq.r.FormValue("password"))
	if name == "" || pw != "pw-"+name {
		t.Counts.Add("login refused", 1)
		rq.loginForm(http.StatusUnauthorized, "Invalid credentials")
		return
	}
	// set_secure_cookie: 30 days in the browser, and HttpOnly as Jupyter asks.
	rq.setCookie(t.cookie, t.signed(t.cookie, tornadoCookiePayload(name), time.Now().Unix()), time.Now().Add(30*24*time.Hour), true)
	t.mu.Lock()
	t.users[name] = true
	t.mu.Unlock()
	t.Counts.Add("sessions", 1)
	rq.redirect(tornadoSafeNext(rq.r.FormValue("next")))
}

// tornadoNotebookFile is a new notebook as nbformat writes it (indent=1):
// its length is the model's size.
const tornadoNotebookFile = "{\n \"cells\": [],\n \"metadata\": {},\n \"nbformat\": 4,\n \"nbformat_minor\": 5\n}\n"

// tornadoTime is Jupyter's isoformat of a UTC time.
func tornadoTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000Z") }

// tornadoURLQuote escapes a path for a URL, "/" left as it is, as
// Jupyter's url_escape does.
func tornadoURLQuote(p string) string { return strings.ReplaceAll(url.PathEscape(p), "%2F", "/") }

func tornadoUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6], b[8] = b[6]&0x0f|0x40, b[8]&0x3f|0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func tornadoNotebookModel(path string, nb *tornadoNotebook, content bool) tornadoObj {
	var body, format any
	if content {
		body, format = tornadoObj{"cells", []any{}, "metadata", tornadoObj{}, "nbformat", 4, "nbformat_minor", 5}, "json"
	}
	return tornadoObj{"name", path[strings.LastIndex(path, "/")+1:], "path", path, "last_modified", tornadoTime(nb.modified),
		"created", tornadoTime(nb.created), "content", body, "format", format, "mimetype", nil, "size", len(tornadoNotebookFile),
		"writable", true, "hash", nil, "hash_algorithm", nil, "type", "notebook"}
}

func (s *tornadoSession) kernelModel() tornadoObj {
	return tornadoObj{"id", s.kernel, "name", s.kernelName, "last_activity", tornadoTime(s.started),
		"execution_state", map[bool]string{false: "starting", true: "idle"}[s.read], "connections", 0}
}

func (s *tornadoSession) model() tornadoObj {
	m := tornadoObj{"id", s.id, "path", s.path, "name", s.name, "type", s.typ, "kernel", s.kernelModel()}
	if s.typ == "notebook" { // the deprecated API
		m = append(m, "notebook", tornadoObj{"path", s.path, "name", s.name})
	}
	return m
}

// api answers /api/... in JSON. Jupyter's APIHandler answers a missing
// login with a 403 where a page redirects.
func (t *Tornado) api(rq *tornadoReq) {
	if rq.user == "" {
		rq.fail(http.StatusForbidden, "")
		return
	}
	p := strings.TrimSuffix(rq.r.URL.Path, "/")
	t.mu.Lock()
	defer t.mu.Unlock()
	if p == "/api/me" {
		rq.json(http.StatusOK, tornadoObj{"identity", tornadoObj{"username", rq.user, "name", rq.user, "display_name", rq.user,
			"initials", nil, "avatar_url", nil, "color", nil}, "permissions", tornadoObj{}})
	} else if p == "/api/contents" || strings.HasPrefix(p, "/api/contents/") {
		t.contents(rq, strings.TrimPrefix(strings.TrimPrefix(p, "/api/contents"), "/"))
	} else if id, ok := strings.CutPrefix(p, "/api/sessions"); ok && (id == "" || id[0] == '/') {
		t.kernelSessions(rq, strings.TrimPrefix(id, "/"))
	} else if id, ok := strings.CutPrefix(p, "/api/kernels/"); ok && rq.r.Method == http.MethodGet {
		t.kernel(rq, id)
	} else {
		rq.fail(http.StatusNotFound, "")
	}
}

// notFound answers a 404, counted "404 foreign" too when what was asked
// for is another user's. Callers hold mu.
func (t *Tornado) notFound(rq *tornadoReq, foreign bool, msg string) {
	if foreign {
		t.Counts.Add("404 foreign", 1)
	}
	rq.fail(http.StatusNotFound, msg)
}

// contents is Jupyter's contents API over a flat directory per user.
// Callers hold mu.
func (t *Tornado) contents(rq *tornadoReq, path string) {
	mine, m := t.notebooks[rq.user], rq.r.Method
	if mine == nil {
		mine = map[string]*tornadoNotebook{}
		t.notebooks[rq.user] = mine
	}
	nb := mine[path]
	if path != "" && nb == nil && m != http.MethodPost {
		foreign := false
		for u, theirs := range t.notebooks {
			foreign = foreign || u != rq.user && theirs[path] != nil
		}
		t.notFound(rq, foreign, "No such file or directory: "+path)
		return
	}
	// Jupyter's _finish_model: Last-Modified, and Location once made or moved.
	answer := func(status int, path string, model tornadoObj, modified time.Time) {
		if m != http.MethodGet {
			rq.w.Header().Set("Location", "/api/contents/"+tornadoURLQuote(path))
		}
		rq.w.Header().Set("Last-Modified", modified.UTC().Format(http.TimeFormat))
		rq.json(status, model)
	}
	now := time.Now()
	switch {
	case m == http.MethodGet && path == "":
		list := []tornadoObj{}
		for _, p := range slices.Sorted(maps.Keys(mine)) {
			list = append(list, tornadoNotebookModel(p, mine[p], false))
		}
		answer(http.StatusOK, "", tornadoObj{"name", "", "path", "", "last_modified", tornadoTime(t.started), "created", tornadoTime(t.started),
			"content", list, "format", "json", "mimetype", nil, "size", nil, "writable", true, "hash", nil, "hash_algorithm", nil,
			"type", "directory"}, t.started)
	case m == http.MethodGet:
		answer(http.StatusOK, path, tornadoNotebookModel(path, nb, rq.r.URL.Query().Get("content") != "0"), nb.modified)
	case m == http.MethodPost && path == "":
		var in struct{ Type, Ext string }
		if json.NewDecoder(rq.r.Body).Decode(&in) != nil || in.Type != "notebook" && (in.Type != "" || in.Ext != ".ipynb") {
			rq.fail(http.StatusBadRequest, "only notebooks are made here")
			return
		}
		// Jupyter takes the first free name; here each user's numbers go
		// on, so that a replayed visit meets names it has not recorded.
		var name string
		for n := t.made[rq.user]; name == "" || mine[name] != nil; n++ {
			name = "Untitled" + strings.TrimPrefix(strconv.Itoa(n), "0") + ".ipynb" // no 0
			t.made[rq.user] = n + 1
		}
		mine[name] = &tornadoNotebook{created: now, modified: now}
		t.Counts.Add("notebooks created", 1)
		answer(http.StatusCreated, name, tornadoNotebookModel(name, mine[name], false), now)
	case m == http.MethodPatch && path != "":
		var in struct{ Path string }
		_ = json.NewDecoder(rq.r.Body).Decode(&in)
		switch to := strings.Trim(in.Path, "/"); {
		case to == "":
			rq.fail(http.StatusBadRequest, "Missing field in JSON data: path")
		case to != path && mine[to] != nil:
			rq.fail(http.StatusConflict, "File already exists: "+to)
		default:
			delete(mine, path)
			nb.modified, mine[to] = now, nb
			answer(http.StatusOK, to, tornadoNotebookModel(to, nb, false), now)
		}
	case m == http.MethodDelete && path != "":
		delete(mine, path)
		rq.finish(http.StatusNoContent, "", nil)
	default:
		rq.fail(http.StatusMethodNotAllowed, "")
	}
}

// kernelSessions is Jupyter's sessions API: a session is a kernel for a
// path. Callers hold mu.
func (t *Tornado) kernelSessions(rq *tornadoReq, id string) {
	switch m := rq.r.Method; {
	case id == "" && m == http.MethodPost:
		var in struct {
			Path, Type *string
			Name       string
			Kernel     struct{ Name string }
		}
		if err := json.NewDecoder(rq.r.Body).Decode(&in); err != nil || in.Path == nil || in.Type == nil {
			rq.fail(http.StatusBadRequest, "Missing field in JSON data: "+map[bool]string{true: "path", false: "type"}[in.Path == nil])
			return
		}
		s := &tornadoSession{id: tornadoUUID(), owner: rq.user, path: *in.Path, name: in.Name, typ: *in.Type,
			kernel: tornadoUUID(), kernelName: cmp.Or(in.Kernel.Name, "python3"), started: time.Now()}
		t.sessions[s.id] = s
		t.Counts.Add("kernels started", 1)
		rq.w.Header().Set("Location", "/api/sessions/"+s.id)
		rq.json(http.StatusCreated, s.model())
		return
	case id == "" || m != http.MethodGet && m != http.MethodDelete:
		rq.fail(http.StatusMethodNotAllowed, "")
		return
	}
	s := t.sessions[id]
	if s == nil || s.owner != rq.user {
		t.notFound(rq, s != nil, "Session not found: session_id='"+id+"'")
		return
	}
	if rq.r.Method == http.MethodGet {
		s.read = true
		rq.json(http.StatusOK, s.model())
		return
	}
	delete(t.sessions, id) // and its kernel shut down
	t.Counts.Add("kernels deleted", 1)
	rq.finish(http.StatusNoContent, "", nil)
}

// kernel is Jupyter's GET /api/kernels/<id>. Callers hold mu.
func (t *Tornado) kernel(rq *tornadoReq, id string) {
	for _, s := range t.sessions {
		if s.kernel == id && s.owner == rq.user {
			s.read = true
			rq.json(http.StatusOK, s.kernelModel())
			return
		} else if s.kernel == id {
			t.notFound(rq, true, "Kernel does not exist: "+id)
			return
		}
	}
	t.notFound(rq, false, "Kernel does not exist: "+id)
}

// tornadoScript is /static/main.js, which /tree runs. With the _xsrf
// cookie in X-XSRFToken on every call, as JupyterLab's ServerConnection
// sends it, it lists the files, makes a notebook, renames it, starts a
// kernel session, reads it and its kernel, ends the session, deletes the
// notebook and logs out; or says in #root what went wrong.
const tornadoScript = `(async () => {
  const xsrf = (document.cookie.match(/(?:^|; )_xsrf=([^;]*)/) || [])[1] || "";
  const think = () => new Promise(ok => setTimeout(ok, 20 + Math.random() * 60));
  const call = async (method, path, want, body) => {
    await think();
    const headers = {"X-XSRFToken": xsrf};
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const r = await fetch(path, {method, headers, body: body === undefined ? undefined : JSON.stringify(body)});
    if (r.status !== want) throw new Error(method + " " + path + ": " + r.status + " " + (await r.text()));
    return r.status === 204 ? null : r.json();
  };
  const enc = p => p.split("/").map(encodeURIComponent).join("/");
  const me = await call("GET", "/api/me", 200);
  if (!me.identity.username) throw new Error("/api/me: no username");
  const dir = await call("GET", "/api/contents?type=directory", 200);
  if (dir.type !== "directory") throw new Error("/api/contents: a " + dir.type);
  const nb = await call("POST", "/api/contents", 201, {type: "notebook"});
  const renamed = await call("PATCH", "/api/contents/" + enc(nb.path), 200, {path: "Report " + nb.name});
  const s = await call("POST", "/api/sessions", 201, {path: renamed.path, name: "", type: "notebook", kernel: {name: "python3"}});
  const again = await call("GET", "/api/sessions/" + s.id, 200);
  if (again.kernel.id !== s.kernel.id) throw new Error("session " + s.id + " has kernel " + again.kernel.id);
  await call("GET", "/api/kernels/" + s.kernel.id, 200);
  await call("DELETE", "/api/sessions/" + s.id, 204);
  await call("DELETE", "/api/contents/" + enc(renamed.path), 204);
  location.href = "/logout";
})().catch(e => { document.getElementById("root").textContent = "error: " + e.message; });
`

// TornadoClient is a browser context visiting a Tornado as the login
// page's and main.js's scripts do, with the same think times, over
// connections and a cookie jar of its own. It fails tb on any unexpected
// status.
func TornadoClient(tb testing.TB, base, user string) {
	tb.Helper()
	jar, _ := cookiejar.New(nil)
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	c := &http.Client{Jar: jar, Transport: tr}
	want := func(a Answer, status int, what string) Answer {
		tb.Helper()
		if a.Status != status {
			tb.Fatalf("tornado %s: %s: %d, want %d: %s", user, what, a.Status, status, a.Body)
		}
		return a
	}
	assets := func(page []byte) {
		tb.Helper()
		for _, m := range regexp.MustCompile(`(?:href|src)="(/static/[^"]+)"`).FindAllSubmatch(page, -1) {
			want(Do(tb, c, http.MethodGet, base+string(m[1]), ""), http.StatusOK, string(m[1]))
		}
	}
	a := want(Do(tb, c, http.MethodGet, base+"/login?u="+url.QueryEscape(user)+"&next=/tree", ""), http.StatusOK, "login page")
	assets(a.Body)
	m := regexp.MustCompile(`name="_xsrf" value="([^"]+)"`).FindSubmatch(a.Body)
	if m == nil {
		tb.Fatalf("tornado %s: no _xsrf field in the login page: %s", user, a.Body)
	}
	form := url.Values{"_xsrf": {html.UnescapeString(string(m[1]))}, "username": {user}, "password": {"pw-" + user}}
	a = want(Do(tb, c, http.MethodPost, base+"/login?next=%2Ftree", form.Encode(),
		"Content-Type", "application/x-www-form-urlencoded"), http.StatusOK, "login, then /tree")
	assets(a.Body)
	u, _ := url.Parse(base)
	var xsrf string
	for _, ck := range jar.Cookies(u) {
		if ck.Name == "_xsrf" {
			xsrf = ck.Value
		}
	}
	call := func(method, path string, status int, body, into any) {
		tb.Helper()
		time.Sleep(time.Duration(20+mrand.IntN(61)) * time.Millisecond)
		h := []string{"X-XSRFToken", xsrf}
		var js []byte
		if body != nil {
			js, _ = json.Marshal(body)
			h = append(h, "Content-Type", "application/json")
		}
		a := want(Do(tb, c, method, base+path, string(js), h...), status, method+" "+path)
		if into != nil {
			if err := json.Unmarshal(a.Body, into); err != nil {
				tb.Fatalf("tornado %s: %s %s: %v: %s", user, method, path, err, a.Body)
			}
		}
	}
	var me struct{ Identity struct{ Username string } }
	call(http.MethodGet, "/api/me", http.StatusOK, nil, &me)
	if me.Identity.Username != user {
		tb.Fatalf("tornado %s: /api/me says %q", user, me.Identity.Username)
	}
	call(http.MethodGet, "/api/contents?type=directory", http.StatusOK, nil, nil)
	var nb, renamed struct{ Name, Path string }
	call(http.MethodPost, "/api/contents", http.StatusCreated, map[string]string{"type": "notebook"}, &nb)
	call(http.MethodPatch, "/api/contents/"+tornadoURLQuote(nb.Path), http.StatusOK, map[string]string{"path": "Report " + nb.Name}, &renamed)
	var s, again struct {
		ID     string
		Kernel struct{ ID string }
	}
	call(http.MethodPost, "/api/sessions", http.StatusCreated, map[string]any{"path": renamed.Path, "name": "", "type": "notebook",
		"kernel": map[string]string{"name": "python3"}}, &s)
	call(http.MethodGet, "/api/sessions/"+s.ID, http.StatusOK, nil, &again)
	if again.Kernel.ID != s.Kernel.ID {
		tb.Fatalf("tornado %s: session %s has kernel %s, then %s", user, s.ID, s.Kernel.ID, again.Kernel.ID)
	}
	call(http.MethodGet, "/api/kernels/"+s.Kernel.ID, http.StatusOK, nil, nil)
	call(http.MethodDelete, "/api/sessions/"+s.ID, http.StatusNoContent, nil, nil)
	call(http.MethodDelete, "/api/contents/"+tornadoURLQuote(renamed.Path), http.StatusNoContent, nil, nil)
	a = want(Do(tb, c, http.MethodGet, base+"/logout", ""), http.StatusOK, "logout")
	if !bytes.Contains(a.Body, []byte(`<div id="root">done</div>`)) {
		tb.Fatalf("tornado %s: logout: %s", user, a.Body)
	}
}
