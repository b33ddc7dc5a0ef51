package apptest

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // Tornado's Etag is a SHA-1 of the body
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"maps"
	"math/big"
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

	"github.com/gorilla/websocket"
)

// Jupyter is a backend that answers, on the wire, as Jupyter Server 2
// (Tornado 6) with JupyterLab 4 in front of it does, set up as a team
// server: one shared root directory that every user lists, each file
// belonging to the user who made it, and a login form that asks for a user
// name and a password. The conventions, read in jupyter_server
// (base/handlers.py, auth/identity.py, auth/login.py, auth/logout.py,
// services/contents/, services/sessions/, services/kernels/websocket.py and
// connection/channels.py), tornado/web.py, jupyter_client/session.py and
// jupyterlab_server/handlers.py:
//
//   - Pages: GET / is a 302 to /lab (RedirectWithParams); GET /lab is
//     @web.authenticated: anonymous, it is a 302 to
//     /login?next=%2Flab%3Fu%3DNAME (Tornado's urlencode of request.uri).
//     GET /login renders login.html: a form posted to
//     /login?next=<url_escape(next)> with Tornado's xsrf_form_html (a hidden
//     _xsrf) and, as a team IdentityProvider's process_login_form reads them,
//     fields username and password. A refused login renders the form again
//     with 401 and "Invalid credentials"; an accepted one sets the login
//     cookie and answers 302 to next as _redirect_safe allows it (a path on
//     the server, else /). GET /logout clears the cookie (expires a year
//     ago, Path=/) and renders logout.html, 200.
//   - The login cookie is named username-<Host with non-alphanumerics as
//     "-">, e.g. username-127-0-0-1-8888, and is Tornado's set_secure_cookie
//     v2 value: 2|1:0|10:<ts>|<n>:<name>|<n>:<base64 of the user JSON>|<hex
//     HMAC-SHA256>, written by Python's http.cookies, so quoted
//     ("2|1:0|..."), HttpOnly, Path=/; good for 31 days, kept nowhere on the
//     server (a logged-out cookie replayed is still good, as in Jupyter).
//   - _xsrf is Tornado's v2 XSRF token, 2|<mask hex>|<masked token hex>|<ts>,
//     set as a cookie (Path=/, expires in 30 days to a logged-in user) by
//     any rendered page of a request that had none, with a fresh mask in
//     every form. Every POST, PUT, PATCH and DELETE (the login form too) must
//     carry the same raw token as the _xsrf argument or in X-XSRFToken or
//     X-CSRFToken, else 403 ("'_xsrf' argument missing from POST", "... has
//     invalid format", "XSRF cookie does not match POST argument"). Before
//     that, and on every API request, an Origin that is not Host is a 404
//     (check_origin).
//   - API errors are Jupyter's APIHandler JSON, {"message": ..., "reason":
//     null}, written as Python's json.dumps writes (", " and ": "); an API
//     request without a login is 403 {"message": "Forbidden", ...}. Page and
//     kernel WebSocket errors are HTML error pages (a WebSocket from another
//     Origin: 403 "Cross origin websockets not allowed"). GET answers with
//     200 have Tornado's Etag (a quoted SHA-1 of the body) and If-None-Match
//     gets 304. As a team server, it has allow_remote_access: any Host.
//   - Contents: GET /api/contents/?type=directory&content=1 lists every
//     user's files, sorted by name, as content=0 models (name, path,
//     last_modified, created, content, format, mimetype, size, writable,
//     hash, hash_algorithm, type; times as isoformat with Z; writable only
//     for the owner). POST /api/contents/ {"type":"notebook"} makes the next
//     free Untitled.ipynb, Untitled1.ipynb, ... of the shared directory
//     (increment_filename), 201 with a Location. PATCH {"path": new} renames
//     (409 "File already exists: new"), DELETE is 204, PUT saves. Another
//     user's file is 403 "Permission denied: path" (as perm_to_403), a
//     missing one 404.
//   - Sessions: POST /api/sessions {"path", "type", "name", "kernel":
//     {"name": "python3"}} is 201 with the session model (uuid id, path,
//     name, type, kernel {id (uuid), name, last_activity, execution_state,
//     connections}, notebook {path, name}) and a Location; a path that has a
//     session gets it again. The path must be the user's own existing file.
//     DELETE /api/sessions/<id> is 204 and shuts the kernel down. An unknown
//     id is 404 "Session not found: session_id='...'"; an unknown kernel,
//     404 "Kernel does not exist: <id>". Another user's session or kernel is
//     403 (the Authorizer's refusal).
//   - The kernel WebSocket GET /api/kernels/<id>/channels?session_id=<the
//     client's uuid> speaks the legacy JSON protocol only (as with
//     ZMQChannelsWebsocketConnection.kernel_ws_protocol = "": no
//     subprotocol is chosen). Its session key is kernel_id:session_id; a
//     second connection with the same key makes the server close the older
//     one (_register_session, "Replacing stale connection"). Right after the
//     upgrade the nudge's iopub idle status comes (its parent is the
//     server's kernel_info_request, with the client's session). Messages
//     are protocol 5 dicts (header, msg_id, msg_type, parent_header,
//     metadata, content, buffers, channel); the kernel's headers carry its
//     own session (jupyter_client new_id()) and msg_ids <session>_<pid>_<n>;
//     each reply's parent_header is the request's header. A
//     kernel_info_request gets busy, kernel_info_reply, idle; an
//     execute_request busy, execute_input, execute_result (or error),
//     execute_reply, idle. The kernel evaluates integer sums, differences
//     and products of small integers ("1+1" → "2"); anything else is a
//     NameError.
//
// Users are made on demand: NAME logs in with password "pw-" + NAME.
//
// Counts, from the server's side: "sessions" (logins), "login refused"
// (401), "login redirects" (anonymous page requests sent to /login), "403
// xsrf", "403 anonymous" (API or kernel WebSocket requests without a
// login), "404 origin" (API or form requests whose Origin is not Host),
// "403 origin" (such WebSockets), "login cookie invalid" (a login cookie
// whose signature, name or age is bad; it is cleared), "notebooks created",
// "files created", "renames", "409 rename", "foreign file" (403 for another
// user's file), "404 file", "files saved", "files deleted", "kernels
// started", "501 kernel" (an unknown kernel name), "404 session", "404
// kernel", "foreign kernel" (403 for another user's session or kernel),
// "kernels deleted", "kernel infos answered", "executions answered",
// "execution errors", "session_id clash" (a WebSocket whose client
// session_id is open already on that kernel, whose older connection the
// server then closes, or open on another kernel, or used before by another
// user), "session_id mismatch" (a message whose header.session is not the
// connection's session_id), "msg_id reused" (a client msg_id seen before),
// "bad message" (not a JSON message with a header, or no such channel),
// "400 bad request" (bad JSON, missing fields, a GET that is not a
// WebSocket upgrade), "405 method", "404 route", "logouts". All but
// "sessions", the created, renamed, saved, started, deleted and answered
// counts and "logouts" are refusals; Refusals sums them but for "login
// redirects", which every visit has once.
type Jupyter struct {
	URL    string
	Counts Counts
	// ExecDelay is how long each execution runs before its result (a
	// slower kernel than the one recorded). An execution whose kernel is
	// shut down meanwhile counts "executions killed".
	ExecDelay time.Duration

	mu       sync.Mutex
	secret   []byte // the cookie_secret
	users    map[string]bool
	files    map[string]*jupFile // by name: one shared directory
	rootMod  time.Time
	sessions map[string]*jupSession
	kernels  map[string]*jupKernel
	open     map[string]*jupConn // kernel_id:session_id → its connection
	clients  map[string]string   // client session ids ever used → the first user
	msgIDs   map[string]bool     // client msg_ids seen
	storeID  int
}

type (
	jupFile struct {
		owner            string
		typ              string // notebook or file
		content          json.RawMessage
		text             string
		size             int
		created, updated time.Time
	}
	jupSession struct {
		id, path, name, typ, kernel, owner string
	}
	jupKernel struct {
		id, name, owner string
		session         string // the kernel's own jupyter_client session
		pid, count      int    // its process id and the messages it sent
		execCount       int
		state           string
		lastActivity    time.Time
		conns           int
	}
	jupConn struct {
		ws      *websocket.Conn
		wmu     sync.Mutex
		kernel  *jupKernel
		session string // the client's session_id
		user    string
	}
)

// jupRefusals are the counts of refusals and faults; Refusals sums them.
var jupRefusals = []string{ //nolint:gochecknoglobals // constant table
	"login refused", "403 xsrf", "403 anonymous", "404 origin", "403 origin", "login cookie invalid",
	"409 rename", "foreign file", "404 file", "501 kernel", "404 session", "404 kernel", "foreign kernel", "execution errors",
	"session_id clash", "session_id mismatch", "msg_id reused", "bad message", "400 bad request", "405 method", "404 route",
}

const (
	jupServer     = "TornadoServer/6.4.1"
	jupOSUser     = "jovyan" // the server's (and so the kernels') OS user
	jupCSP        = "frame-ancestors 'self'; report-uri /api/security/csp-report"
	jupCookieDays = 31
	jupNewNB      = "{\n \"cells\": [],\n \"metadata\": {},\n \"nbformat\": 4,\n \"nbformat_minor\": 5\n}\n"
)

// NewJupyter starts a Jupyter on loopback until the test ends.
func NewJupyter(tb testing.TB) *Jupyter {
	a := &Jupyter{secret: jupRandom(32), users: map[string]bool{}, files: map[string]*jupFile{}, rootMod: jupNow(),
		sessions: map[string]*jupSession{}, kernels: map[string]*jupKernel{}, open: map[string]*jupConn{},
		clients: map[string]string{}, msgIDs: map[string]bool{}}
	srv := httptest.NewServer(a)
	tb.Cleanup(func() {
		a.mu.Lock()
		for _, c := range a.open {
			c.ws.Close()
		}
		a.mu.Unlock()
		srv.Close()
	})
	a.URL = srv.URL
	return a
}

// Users returns the names of the users who logged in, sorted.
func (a *Jupyter) Users() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Sorted(maps.Keys(a.users))
}

// Refusals returns the sum of the counts of refusals and faults, but for
// "login redirects".
func (a *Jupyter) Refusals() int64 {
	var n int64
	for _, k := range jupRefusals {
		n += a.Counts.Get(k)
	}
	return n
}

func jupRandom(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// jupNow is a UTC time to the microsecond, as Python's datetime has it.
func jupNow() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// jupUUID is str(uuid.uuid4()).
func jupUUID() string {
	b := jupRandom(16)
	b[6], b[8] = b[6]&0x0f|0x40, b[8]&0x3f|0x80
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// jupNewID is jupyter_client's new_id(): 4 and 12 random bytes in hex.
func jupNewID() string {
	b := hex.EncodeToString(jupRandom(16))
	return b[:8] + "-" + b[8:]
}

// jupISO is datetime.isoformat() with "Z" for UTC: microseconds unless 0.
func jupISO(t time.Time) string {
	if t.Nanosecond() == 0 {
		return t.UTC().Format("2006-01-02T15:04:05Z")
	}
	return t.UTC().Format("2006-01-02T15:04:05.000000Z")
}

// jupDumps is Python's json.dumps: ", " and ": " between items, non-ASCII
// escaped, nothing else. Struct fields keep the order of Python's dicts.
func jupDumps(v any) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	var b strings.Builder
	in, esc := false, false
	for _, r := range strings.TrimSuffix(buf.String(), "\n") {
		switch {
		case in && esc:
			esc = false
		case in && r == '\\':
			esc = true
		case in && r == '"':
			in = false
		case in && r >= 0x80:
			if r > 0xffff {
				r -= 0x10000
				fmt.Fprintf(&b, `\u%04x\u%04x`, 0xd800+(r>>10), 0xdc00+(r&0x3ff))
			} else {
				fmt.Fprintf(&b, `\u%04x`, r)
			}
			continue
		case in:
		case r == '"':
			in = true
		case r == ',' || r == ':':
			b.WriteRune(r)
			b.WriteByte(' ')
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// jupQuote is urllib's quote of one path segment.
func jupQuote(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("_.-~", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// jupURLEscape is jupyter_server.utils.url_escape: each segment quoted.
func jupURLEscape(p string) string {
	parts := strings.Split(p, "/")
	for i := range parts {
		parts[i] = jupQuote(parts[i])
	}
	return strings.Join(parts, "/")
}

// jupCookieName is IdentityProvider.get_cookie_name: username-{Host}.
func jupCookieName(host string) string {
	return regexp.MustCompile(`[^A-Za-z0-9]`).ReplaceAllString("username-"+host, "-")
}

// jupField is a v2 signed value's length-prefixed field.
func jupField(s string) string { return strconv.Itoa(len(s)) + ":" + s }

// sign is Tornado's create_signed_value, version 2, key version 0.
func (a *Jupyter) sign(name, value string, now time.Time) string {
	to := "2|" + jupField("0") + "|" + jupField(strconv.FormatInt(now.Unix(), 10)) + "|" + jupField(name) + "|" +
		jupField(base64.StdEncoding.EncodeToString([]byte(value))) + "|"
	m := hmac.New(sha256.New, a.secret)
	m.Write([]byte(to))
	return to + hex.EncodeToString(m.Sum(nil))
}

// unsign is Tornado's decode_signed_value for a v2 value, 31 days at most.
func (a *Jupyter) unsign(name, v string, now time.Time) ([]byte, bool) {
	rest, ok := strings.CutPrefix(v, "2|")
	if !ok {
		return nil, false
	}
	var f [4]string
	for i := range f {
		n, after, ok := strings.Cut(rest, ":")
		k, err := strconv.Atoi(n)
		if !ok || err != nil || k < 0 || k >= len(after) || after[k] != '|' {
			return nil, false
		}
		f[i], rest = after[:k], after[k+1:]
	}
	m := hmac.New(sha256.New, a.secret)
	m.Write([]byte(v[:len(v)-len(rest)]))
	ts, err := strconv.ParseInt(f[1], 10, 64)
	if !hmac.Equal([]byte(rest), []byte(hex.EncodeToString(m.Sum(nil)))) || f[2] != name || err != nil ||
		ts < now.Unix()-jupCookieDays*86400 {
		return nil, false
	}
	b, err := base64.StdEncoding.DecodeString(f[3])
	return b, err == nil
}

// jupUserCookie is IdentityProvider.user_to_cookie's JSON.
type jupUserCookie struct {
	Username    string  `json:"username"`
	Name        string  `json:"name"`
	DisplayName string  `json:"display_name"`
	Initials    *string `json:"initials"`
	Color       *string `json:"color"`
	AvatarURL   *string `json:"avatar_url"`
}

// jupMask is Tornado's _websocket_mask: data XORed with a 4-byte mask.
func jupMask(mask, data []byte) []byte {
	out := make([]byte, len(data))
	for i := range data {
		out[i] = data[i] ^ mask[i%4]
	}
	return out
}

// jupDecodeXSRF is _decode_xsrf_token: the raw token of a cookie or an
// argument, v2 (masked) or v1 (hex, else the bytes), nil if malformed.
func jupDecodeXSRF(s string) (version int, token []byte, ts int64) {
	if m := regexp.MustCompile(`^([1-9][0-9]*)\|`).FindStringSubmatch(s); m != nil {
		p := strings.Split(s, "|")
		if m[1] != "2" || len(p) != 4 {
			return 0, nil, 0
		}
		mask, err1 := hex.DecodeString(p[1])
		masked, err2 := hex.DecodeString(p[2])
		t, err3 := strconv.ParseInt(p[3], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil || len(mask) != 4 {
			return 0, nil, 0
		}
		return 2, jupMask(mask, masked), t
	}
	if b, err := hex.DecodeString(s); err == nil {
		return 1, b, time.Now().Unix()
	}
	return 1, []byte(s), time.Now().Unix()
}

// jupCall is one request on its way through the app.
type jupCall struct {
	a      *Jupyter
	w      http.ResponseWriter
	r      *http.Request
	api    bool   // an APIHandler: JSON errors
	user   string // the logged-in user, or ""
	cookie string // the login cookie's name

	xsrfRead    bool
	xsrfVersion int
	xsrfRaw     []byte
	xsrfTS      int64
	xsrfOut     string
}

var (
	jupSessionRE = regexp.MustCompile(`^/api/sessions/(\w+-\w+-\w+-\w+-\w+)$`)
	jupKernelRE  = regexp.MustCompile(`^/api/kernels/(\w+-\w+-\w+-\w+-\w+)(/channels)?$`)
)

func (a *Jupyter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c := &jupCall{a: a, w: w, r: r, cookie: jupCookieName(r.Host)}
	p := r.URL.Path
	if m := jupKernelRE.FindStringSubmatch(p); m != nil && m[2] != "" {
		c.channels(m[1]) // locks for its checks only
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case p == "/favicon.ico":
		c.send(http.StatusOK, "image/x-icon", nil)
	case p == "/":
		c.redirect("/lab" + jupQuery(r))
	case p == "/login":
		c.login()
	case p == "/logout":
		c.logout()
	case p == "/lab/":
		c.send(http.StatusMovedPermanently, "", nil, "Location", "/lab"+jupQuery(r)) // @web.removeslash
	case p == "/lab":
		c.lab()
	case p == "/api/contents" || strings.HasPrefix(p, "/api/contents/"):
		c.contents(strings.Trim(strings.TrimPrefix(p, "/api/contents"), "/"))
	case p == "/api/sessions":
		c.sessionRoot()
	case jupSessionRE.MatchString(p):
		c.session(jupSessionRE.FindStringSubmatch(p)[1])
	case p == "/api/kernels":
		c.kernelRoot()
	case jupKernelRE.MatchString(p):
		c.kernel(jupKernelRE.FindStringSubmatch(p)[1])
	default: // Template404
		c.auth()
		c.fail(http.StatusNotFound, "404 route", "")
	}
}

func jupQuery(r *http.Request) string {
	if r.URL.RawQuery == "" {
		return ""
	}
	return "?" + r.URL.RawQuery
}

// send writes an answer as Tornado's finish does: default headers, an Etag
// on a GET's 200 (304 if it matches If-None-Match), and no Content-Type on
// a 204 or 304; headers are name, value pairs.
func (c *jupCall) send(status int, ctype string, body []byte, headers ...string) {
	h := c.w.Header()
	h.Set("Server", jupServer)
	h.Set("Content-Type", "text/html; charset=UTF-8")
	if ctype != "" {
		h.Set("Content-Type", ctype)
	}
	h.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", jupCSP+map[bool]string{true: "; default-src 'none'"}[c.api])
	for i := 0; i+1 < len(headers); i += 2 {
		h.Set(headers[i], headers[i+1])
	}
	if status == http.StatusOK && (c.r.Method == http.MethodGet || c.r.Method == http.MethodHead) {
		etag := fmt.Sprintf(`"%x"`, sha1.Sum(body)) //nolint:gosec // as Tornado
		h.Set("Etag", etag)
		if inm := c.r.Header.Get("If-None-Match"); inm == "*" || slices.ContainsFunc(strings.Split(inm, ","), func(s string) bool {
			return strings.TrimPrefix(strings.TrimSpace(s), "W/") == etag
		}) {
			status, body = http.StatusNotModified, nil
		}
	}
	if status == http.StatusNoContent || status == http.StatusNotModified {
		h.Del("Content-Type")
	}
	c.w.WriteHeader(status)
	if c.r.Method != http.MethodHead {
		_, _ = c.w.Write(body)
	}
}

// json answers a model as json.dumps writes it.
func (c *jupCall) json(status int, v any, headers ...string) {
	c.send(status, "application/json", []byte(jupDumps(v)), headers...)
}

func (c *jupCall) redirect(to string) { c.send(http.StatusFound, "", nil, "Location", to) }

// fail answers an HTTPError: APIHandler's JSON, else error.html; count is
// counted.
func (c *jupCall) fail(status int, count, message string) {
	c.a.Counts.Add(count, 1)
	text := http.StatusText(status)
	if c.api {
		c.json(status, struct {
			Message string  `json:"message"`
			Reason  *string `json:"reason"`
		}{Message: map[bool]string{true: text, false: message}[message == ""]})
		return
	}
	detail := ""
	if message != "" {
		detail = "\n<p>The error was:</p>\n<div class=\"traceback-wrapper\"><pre class=\"traceback\">" + html.EscapeString(message) + "</pre></div>"
	}
	c.page(status, "Jupyter Server", fmt.Sprintf("<div class=\"error\">\n<h1>%d : %s</h1>%s\n</div>\n<div id=\"root\">error: %d %s (%s %s)</div>",
		status, text, detail, status, html.EscapeString(cmpOr(message, text)), c.r.Method, html.EscapeString(c.r.URL.Path)), "")
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// auth is IdentityProvider.get_user from the login cookie; a bad cookie is
// cleared.
func (c *jupCall) auth() {
	ck, err := c.r.Cookie(c.cookie)
	if err != nil {
		return
	}
	var u jupUserCookie
	if v, ok := c.a.unsign(c.cookie, ck.Value, time.Now()); ok && json.Unmarshal(v, &u) == nil && u.Username != "" {
		c.user = u.Username
		return
	}
	c.a.Counts.Add("login cookie invalid", 1)
	c.clearLogin()
}

func (c *jupCall) clearLogin() {
	c.w.Header().Add("Set-Cookie", c.cookie+`=""; expires=`+time.Now().UTC().AddDate(-1, 0, 0).Format(http.TimeFormat)+"; Path=/")
}

// originOK is check_origin: no Origin, or one whose host is Host.
func (c *jupCall) originOK() bool {
	o := c.r.Header.Get("Origin")
	if o == "" || c.r.Host == "" {
		return true
	}
	u, err := url.Parse(strings.ToLower(o))
	return err == nil && u.Host == c.r.Host
}

// rawXSRF is _get_raw_xsrf_token: the cookie's token, or a new one.
func (c *jupCall) rawXSRF() []byte {
	if !c.xsrfRead {
		c.xsrfRead = true
		if ck, err := c.r.Cookie("_xsrf"); err == nil && ck.Value != "" {
			c.xsrfVersion, c.xsrfRaw, c.xsrfTS = jupDecodeXSRF(ck.Value)
		}
		if c.xsrfRaw == nil {
			c.xsrfVersion, c.xsrfRaw, c.xsrfTS = 0, jupRandom(16), time.Now().Unix()
		}
	}
	return c.xsrfRaw
}

// xsrfToken is RequestHandler.xsrf_token: the raw token masked afresh,
// and the _xsrf cookie if the request had none.
func (c *jupCall) xsrfToken() string {
	if c.xsrfOut == "" {
		raw, mask := c.rawXSRF(), jupRandom(4)
		c.xsrfOut = "2|" + hex.EncodeToString(mask) + "|" + hex.EncodeToString(jupMask(mask, raw)) + "|" + strconv.FormatInt(c.xsrfTS, 10)
		if c.xsrfVersion == 0 {
			expires := ""
			if c.user != "" {
				expires = "; expires=" + time.Now().UTC().AddDate(0, 0, 30).Format(http.TimeFormat)
			}
			c.w.Header().Add("Set-Cookie", "_xsrf="+c.xsrfOut+expires+"; Path=/")
		}
	}
	return c.xsrfOut
}

// xsrf is JupyterHandler.check_xsrf_cookie for a method that changes
// things: check_origin (404), then Tornado's check (403).
func (c *jupCall) xsrf() bool {
	if m := c.r.Method; m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions {
		return true
	}
	if !c.originOK() {
		c.fail(http.StatusNotFound, "404 origin", "")
		return false
	}
	in := c.r.Header.Get("X-Xsrftoken")
	if ct := c.r.Header.Get("Content-Type"); strings.HasPrefix(ct, "application/x-www-form-urlencoded") || strings.HasPrefix(ct, "multipart/form-data") {
		in = cmpOr(c.r.FormValue("_xsrf"), in)
	} else {
		in = cmpOr(c.r.URL.Query().Get("_xsrf"), in)
	}
	in = cmpOr(in, c.r.Header.Get("X-Csrftoken"))
	msg := ""
	if in == "" {
		msg = "'_xsrf' argument missing from POST"
	} else if _, tok, _ := jupDecodeXSRF(in); tok == nil {
		msg = "'_xsrf' argument has invalid format"
	} else if !hmac.Equal(tok, c.rawXSRF()) {
		msg = "XSRF cookie does not match POST argument"
	}
	if msg != "" {
		c.fail(http.StatusForbidden, "403 xsrf", msg)
		return false
	}
	return true
}

// prepare is JupyterHandler.prepare and APIHandler.prepare for an API
// request: the user, XSRF, a login, the Origin.
func (c *jupCall) prepare() bool {
	c.api = true
	c.auth()
	switch {
	case !c.xsrf():
	case c.user == "":
		c.fail(http.StatusForbidden, "403 anonymous", "")
	case !c.originOK():
		c.fail(http.StatusNotFound, "404 origin", "")
	default:
		return true
	}
	return false
}

// body is get_json_body: nil and a 400 for bad JSON.
func (c *jupCall) body(v any) bool {
	var raw bytes.Buffer
	_, _ = raw.ReadFrom(c.r.Body)
	b := bytes.TrimSpace(raw.Bytes())
	if len(b) == 0 {
		c.fail(http.StatusBadRequest, "400 bad request", "JSON body missing")
		return false
	}
	if json.Unmarshal(b, v) != nil {
		c.fail(http.StatusBadRequest, "400 bad request", "Invalid JSON in body of request")
		return false
	}
	return true
}

// page renders page.html around site, with script.
func (c *jupCall) page(status int, title, site, script string) {
	c.xsrfToken() // template_namespace has xsrf_token
	if script != "" {
		script = "\n<script>" + script + "</script>"
	}
	c.send(status, "text/html; charset=UTF-8", []byte(fmt.Sprintf(`<!DOCTYPE HTML>
<html>
<head>
    <meta charset="utf-8">
    <title>%s</title>
    <meta http-equiv="X-UA-Compatible" content="IE=edge" />
    <meta name="viewport" content="width=device-width, initial-scale=1.0">
</head>
<body class="" dir="ltr">
  <noscript><div id='noscript'>Jupyter Server requires JavaScript.<br>Please enable it to proceed. </div></noscript>
  <div id="header" role="navigation" aria-label="Top Menu">
    <div id="header-container" class="container">
      <div id="jupyter_server" class="nav navbar-brand"><a href="/lab" title='dashboard'>Jupyter Server</a></div>
    </div>
    <div class="header-bar"></div>
  </div>
  <div id="site">
%s
  </div>%s
</body>
</html>
`, html.EscapeString(title), site, script)))
}

// login is LoginFormHandler: the form, or a login.
func (c *jupCall) login() {
	c.auth()
	if !c.xsrf() {
		return
	}
	next := c.r.FormValue("next")
	switch c.r.Method {
	case http.MethodGet, http.MethodHead:
		if c.user != "" {
			c.redirectSafe(next)
			return
		}
		c.loginForm(http.StatusOK, "")
	case http.MethodPost:
		name, pw := c.r.PostFormValue("username"), c.r.PostFormValue("password")
		if name == "" || strings.TrimSpace(name) != name || pw != "pw-"+name {
			c.a.Counts.Add("login refused", 1)
			c.loginForm(http.StatusUnauthorized, "Invalid credentials")
			return
		}
		c.a.users[name], c.user = true, name
		v, _ := json.Marshal(jupUserCookie{Username: name, Name: name, DisplayName: name})
		c.w.Header().Add("Set-Cookie", c.cookie+`="`+c.a.sign(c.cookie, jupDumps(json.RawMessage(v)), time.Now())+`"; HttpOnly; Path=/`)
		c.a.Counts.Add("sessions", 1)
		c.redirectSafe(next)
	default:
		c.fail(http.StatusMethodNotAllowed, "405 method", "")
	}
}

// redirectSafe is _redirect_safe: a path on this server, else /.
func (c *jupCall) redirectSafe(next string) {
	next = strings.ReplaceAll(cmpOr(next, "/"), `\`, "%5C")
	if strings.Contains(next, ":") || strings.HasPrefix(next, "//") || !strings.HasPrefix(next, "/") {
		next = "/"
	}
	c.redirect(next)
}

func (c *jupCall) loginForm(status int, errMsg string) {
	next := url.QueryEscape(cmpOr(c.r.FormValue("next"), "/"))
	msg := ""
	if errMsg != "" {
		msg = "\n<div class=\"row\">\n<div class=\"message error\">\n" + html.EscapeString(errMsg) + "\n</div>\n</div>"
	}
	c.page(status, "Jupyter Server", fmt.Sprintf(`<div id="jupyter-main-app" class="container">
<div class="row"><div class="navbar col-sm-8"><div class="navbar-inner"><div class="container"><div class="center-nav">
<form action="/login?next=%s" method="post" class="navbar-form pull-left">
<input type="hidden" name="_xsrf" value="%s"/>
<label for="username_input"><strong>Username:</strong></label>
<input type="text" name="username" id="username_input" class="form-control">
<label for="password_input"><strong>Password:</strong></label>
<input type="password" name="password" id="password_input" class="form-control">
<button type="submit" class="btn btn-default" id="login_submit">Log in</button>
</form>
</div></div></div></div></div>%s
</div>
<div id="root"></div>`, html.EscapeString(next), html.EscapeString(c.xsrfToken()), msg), jupLoginJS)
}

// logout is LogoutHandler: the cookie cleared, and logout.html.
func (c *jupCall) logout() {
	c.auth()
	if c.r.Method != http.MethodGet && c.r.Method != http.MethodHead {
		c.fail(http.StatusMethodNotAllowed, "405 method", "")
		return
	}
	c.clearLogin()
	if c.user != "" {
		c.a.Counts.Add("logouts", 1)
	}
	c.page(http.StatusOK, "Jupyter Server", `<div id="jupyter-main-app" class="container">
<div class="message info">
Successfully logged out.
</div>
Proceed to the <a href="/login">login page</a>.
<div />
</div>
<div id="root"></div>`, jupLogoutJS)
}

// lab is JupyterLab's LabHandler: index.html with its page config.
func (c *jupCall) lab() {
	c.auth()
	if !c.xsrf() {
		return
	}
	if c.user == "" {
		if c.r.Method == http.MethodGet || c.r.Method == http.MethodHead {
			c.a.Counts.Add("login redirects", 1)
			c.redirect("/login?" + url.Values{"next": {c.r.URL.RequestURI()}}.Encode())
			return
		}
		c.fail(http.StatusForbidden, "403 anonymous", "")
		return
	}
	if c.r.Method != http.MethodGet && c.r.Method != http.MethodHead {
		c.fail(http.StatusMethodNotAllowed, "405 method", "")
		return
	}
	c.xsrfToken()
	c.a.storeID++
	config := jupDumps(struct {
		AppName       string   `json:"appName"`
		AppNamespace  string   `json:"appNamespace"`
		AppVersion    string   `json:"appVersion"`
		BaseURL       string   `json:"baseUrl"`
		FullStaticURL string   `json:"fullStaticUrl"`
		IgnorePlugins []string `json:"ignorePlugins"`
		Mode          string   `json:"mode"`
		PreferredPath string   `json:"preferredPath"`
		ServerRoot    string   `json:"serverRoot"`
		StoreID       int      `json:"store_id"`
		Token         string   `json:"token"`
		TreePath      string   `json:"treePath"`
		Workspace     string   `json:"workspace"`
		WsURL         string   `json:"wsUrl"`
	}{"JupyterLab", "lab", "4.2.5", "/", "/static/lab", []string{}, "multiple-document", "/", "/home/jovyan/shared", c.a.storeID - 1, "", "", "default", ""})
	body := fmt.Sprintf(`<!doctype html><html lang="en"><head><title>JupyterLab</title><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<script id="jupyter-config-data" type="application/json">%s</script>
</head><body>
<main><h1>JupyterLab</h1><p>Signed in as <span id="user">%s</span>.</p>
<label for="new-name">Rename notebook to</label> <input id="new-name" type="text" value="">
<ul id="files"></ul><pre id="output"></pre></main>
<div id="root"></div>
<script>%s</script>
</body></html>
`, strings.ReplaceAll(config, "</", `<\/`), html.EscapeString(c.user), jupLabJS)
	c.send(http.StatusOK, "text/html; charset=UTF-8", []byte(body))
}

// jupModel is a contents model, in the order _base_model makes it.
type jupModel struct {
	Name          string  `json:"name"`
	Path          string  `json:"path"`
	LastModified  string  `json:"last_modified"`
	Created       string  `json:"created"`
	Content       any     `json:"content"`
	Format        *string `json:"format"`
	Mimetype      *string `json:"mimetype"`
	Size          *int    `json:"size"`
	Writable      bool    `json:"writable"`
	Hash          *string `json:"hash"`
	HashAlgorithm *string `json:"hash_algorithm"`
	Type          string  `json:"type"`
}

func jupStr(s string) *string { return &s }

// model is a file's model for user, with its content or not.
func (a *Jupyter) model(name, user string, content bool) jupModel {
	f := a.files[name]
	size := f.size
	m := jupModel{Name: name, Path: name, LastModified: jupISO(f.updated), Created: jupISO(f.created), Size: &size,
		Writable: f.owner == user, Type: f.typ}
	if content {
		if f.typ == "notebook" {
			m.Content, m.Format = f.content, jupStr("json")
		} else {
			m.Content, m.Format, m.Mimetype = f.text, jupStr("text"), jupStr("text/plain")
		}
	}
	return m
}

// own finds a file of the user's: false after a 404 or 403.
func (c *jupCall) own(name string) (*jupFile, bool) {
	f := c.a.files[name]
	switch {
	case f == nil:
		c.fail(http.StatusNotFound, "404 file", fmt.Sprintf("file or directory %s does not exist", jupRepr(name)))
	case f.owner != c.user:
		c.fail(http.StatusForbidden, "foreign file", "Permission denied: "+name)
	default:
		return f, true
	}
	return nil, false
}

// jupRepr is Python's repr of a plain string.
func jupRepr(s string) string {
	if strings.Contains(s, "'") && !strings.Contains(s, `"`) {
		return `"` + s + `"`
	}
	return "'" + strings.ReplaceAll(s, "'", `\'`) + "'"
}

func (c *jupCall) finishModel(status int, m jupModel, location bool) {
	h := []string{"Last-Modified", c.a.files[m.Path].updated.Format(http.TimeFormat)}
	if location {
		h = append(h, "Location", "/api/contents/"+jupURLEscape(m.Path))
	}
	c.json(status, m, h...)
}

// contents is ContentsHandler.
func (c *jupCall) contents(path string) {
	if !c.prepare() {
		return
	}
	switch c.r.Method {
	case http.MethodGet, http.MethodHead:
		c.contentsGet(path)
	case http.MethodPost:
		c.contentsNew(path)
	case http.MethodPatch:
		c.contentsRename(path)
	case http.MethodPut:
		c.contentsSave(path)
	case http.MethodDelete:
		if _, ok := c.own(path); ok {
			delete(c.a.files, path)
			c.a.rootMod = jupNow()
			c.a.Counts.Add("files deleted", 1)
			c.send(http.StatusNoContent, "", nil)
		}
	default:
		c.fail(http.StatusMethodNotAllowed, "405 method", "")
	}
}

func (c *jupCall) contentsGet(path string) {
	q := c.r.URL.Query()
	typ, content := q.Get("type"), cmpOr(q.Get("content"), "1")
	switch {
	case q.Has("format") && q.Get("format") != "text" && q.Get("format") != "base64":
		c.fail(http.StatusBadRequest, "400 bad request", fmt.Sprintf("Format %s is invalid", jupRepr(q.Get("format"))))
	case content != "0" && content != "1":
		c.fail(http.StatusBadRequest, "400 bad request", fmt.Sprintf("Content %s is invalid", jupRepr(content)))
	case path == "":
		if typ != "" && typ != "directory" {
			c.fail(http.StatusBadRequest, "400 bad request", " is not a directory")
			return
		}
		dir := jupModel{LastModified: jupISO(c.a.rootMod), Created: jupISO(c.a.rootMod), Writable: true, Type: "directory"}
		if content == "1" {
			list := []jupModel{}
			for _, name := range slices.Sorted(maps.Keys(c.a.files)) {
				list = append(list, c.a.model(name, c.user, false))
			}
			dir.Content, dir.Format = list, jupStr("json")
		}
		c.json(http.StatusOK, dir, "Last-Modified", c.a.rootMod.Format(http.TimeFormat))
	default:
		if _, ok := c.own(path); ok {
			if typ == "directory" {
				c.fail(http.StatusBadRequest, "400 bad request", path+" is not a directory")
				return
			}
			c.finishModel(http.StatusOK, c.a.model(path, c.user, content == "1"), false)
		}
	}
}

// next is increment_filename: base, base1, base2, ... before the suffix.
func (a *Jupyter) next(base, suffix string) string {
	for i := 0; ; i++ {
		name := base + map[bool]string{true: strconv.Itoa(i)}[i > 0] + suffix
		if a.files[name] == nil {
			return name
		}
	}
}

// contentsNew is POST: a new untitled notebook or file.
func (c *jupCall) contentsNew(path string) {
	if path != "" {
		if c.a.files[path] != nil {
			c.fail(http.StatusBadRequest, "400 bad request", "Cannot POST to files, use PUT instead.")
		} else {
			c.fail(http.StatusNotFound, "404 file", "No such directory: "+path)
		}
		return
	}
	var m struct {
		Type     string `json:"type"`
		Ext      string `json:"ext"`
		CopyFrom string `json:"copy_from"`
	}
	if c.r.ContentLength != 0 && !c.body(&m) {
		return
	}
	now, f := jupNow(), &jupFile{owner: c.user}
	name := ""
	switch {
	case m.CopyFrom != "":
		c.fail(http.StatusBadRequest, "400 bad request", "copying is not supported by this server")
		return
	case m.Type == "notebook" || m.Type == "" && m.Ext == ".ipynb":
		name, f.typ, f.content, f.size = c.a.next("Untitled", ".ipynb"), "notebook", json.RawMessage(jupNewNB), len(jupNewNB)
		c.a.Counts.Add("notebooks created", 1)
	case m.Type == "directory":
		c.fail(http.StatusBadRequest, "400 bad request", "Cannot create directories in this shared directory")
		return
	default:
		name, f.typ = c.a.next("untitled", m.Ext), "file"
		c.a.Counts.Add("files created", 1)
	}
	f.created, f.updated, c.a.rootMod = now, now, now
	c.a.files[name] = f
	c.finishModel(http.StatusCreated, c.a.model(name, c.user, false), true)
}

// contentsRename is PATCH {"path": new}: ContentsManager.update.
func (c *jupCall) contentsRename(path string) {
	var m struct {
		Path *string `json:"path"`
	}
	if !c.body(&m) {
		return
	}
	f := c.a.files[path]
	to := path
	if m.Path != nil {
		to = strings.Trim(*m.Path, "/")
	}
	switch {
	case strings.HasPrefix(path, ".") || strings.HasPrefix(to, "."):
		c.fail(http.StatusBadRequest, "400 bad request", fmt.Sprintf("Cannot rename file or directory %s", jupRepr(path)))
	case f == nil:
		c.fail(http.StatusNotFound, "404 file", "File or directory does not exist: "+path)
	case f.owner != c.user:
		c.fail(http.StatusForbidden, "foreign file", "Permission denied: "+path)
	case to == path:
		c.finishModel(http.StatusOK, c.a.model(path, c.user, false), true)
	case c.a.files[to] != nil:
		c.fail(http.StatusConflict, "409 rename", "File already exists: "+to)
	case to == "" || strings.Contains(to, "/"):
		c.fail(http.StatusNotFound, "404 file", "File or directory does not exist: "+path)
	default:
		delete(c.a.files, path)
		c.a.files[to], c.a.rootMod = f, jupNow()
		for _, s := range c.a.sessions { // the session follows, as JupyterLab's PATCH of it would
			if s.path == path {
				s.path = to
			}
		}
		c.a.Counts.Add("renames", 1)
		c.finishModel(http.StatusOK, c.a.model(to, c.user, false), true)
	}
}

// contentsSave is PUT: save a notebook or text file.
func (c *jupCall) contentsSave(path string) {
	var m struct {
		Type    string          `json:"type"`
		Format  string          `json:"format"`
		Content json.RawMessage `json:"content"`
	}
	if !c.body(&m) {
		return
	}
	f, status := c.a.files[path], http.StatusOK
	switch {
	case path == "" || strings.Contains(path, "/") || strings.HasPrefix(path, "."):
		c.fail(http.StatusBadRequest, "400 bad request", fmt.Sprintf("Cannot create file or directory %s", jupRepr(path)))
		return
	case f != nil && f.owner != c.user:
		c.fail(http.StatusForbidden, "foreign file", "Permission denied: "+path)
		return
	case m.Type != "notebook" && m.Type != "file":
		c.fail(http.StatusBadRequest, "400 bad request", "No file type provided")
		return
	case len(m.Content) == 0 || string(m.Content) == "null":
		c.fail(http.StatusBadRequest, "400 bad request", "No file content provided")
		return
	case f == nil:
		now := jupNow()
		f, status = &jupFile{owner: c.user, created: now}, http.StatusCreated
		c.a.files[path], c.a.rootMod = f, now
	}
	f.typ, f.updated = m.Type, jupNow()
	if m.Type == "notebook" {
		var nb any
		if json.Unmarshal(m.Content, &nb) != nil {
			c.fail(http.StatusBadRequest, "400 bad request", "Unreadable Notebook")
			return
		}
		out, _ := json.MarshalIndent(nb, "", " ")
		f.content, f.size = m.Content, len(out)+1
	} else if json.Unmarshal(m.Content, &f.text) != nil {
		c.fail(http.StatusBadRequest, "400 bad request", "No file content provided")
		return
	} else {
		f.size = len(f.text)
	}
	c.a.Counts.Add("files saved", 1)
	c.finishModel(status, c.a.model(path, c.user, false), true)
}

// jupKernelModel is MappingKernelManager.kernel_model.
type jupKernelModel struct {
	ID             string `json:"id"`
	Name           string `json:"name"`
	LastActivity   string `json:"last_activity"`
	ExecutionState string `json:"execution_state"`
	Connections    int    `json:"connections"`
}

func (k *jupKernel) model() jupKernelModel {
	return jupKernelModel{k.id, k.name, jupISO(k.lastActivity), k.state, k.conns}
}

// jupSessionModel is SessionManager.row_to_model.
type jupSessionModel struct {
	ID       string         `json:"id"`
	Path     string         `json:"path"`
	Name     string         `json:"name"`
	Type     string         `json:"type"`
	Kernel   jupKernelModel `json:"kernel"`
	Notebook *struct {
		Path string `json:"path"`
		Name string `json:"name"`
	} `json:"notebook,omitempty"`
}

func (a *Jupyter) sessionModel(s *jupSession) jupSessionModel {
	m := jupSessionModel{ID: s.id, Path: s.path, Name: s.name, Type: s.typ, Kernel: a.kernels[s.kernel].model()}
	if s.typ == "notebook" {
		m.Notebook = &struct {
			Path string `json:"path"`
			Name string `json:"name"`
		}{s.path, s.name}
	}
	return m
}

// startKernel starts a kernel of name for the user: nil after a 501.
func (c *jupCall) startKernel(name string) *jupKernel {
	if name = cmpOr(name, "python3"); name != "python3" {
		c.a.Counts.Add("501 kernel", 1)
		c.json(http.StatusNotImplemented, struct {
			Message      string `json:"message"`
			ShortMessage string `json:"short_message"`
		}{fmt.Sprintf("The '%s' kernel is not available. Please pick another suitable kernel instead, or install that kernel.", name), name + " not found"})
		return nil
	}
	n, _ := rand.Int(rand.Reader, big.NewInt(60000))
	k := &jupKernel{id: jupUUID(), name: name, owner: c.user, session: jupNewID(), pid: 1000 + int(n.Int64()), state: "starting", lastActivity: jupNow()}
	c.a.kernels[k.id] = k
	c.a.Counts.Add("kernels started", 1)
	return k
}

// sessionRoot is SessionRootHandler: the user's sessions, or a new one.
func (c *jupCall) sessionRoot() {
	if !c.prepare() {
		return
	}
	switch c.r.Method {
	case http.MethodGet, http.MethodHead:
		list := []jupSessionModel{}
		for _, id := range slices.Sorted(maps.Keys(c.a.sessions)) {
			if s := c.a.sessions[id]; s.owner == c.user {
				list = append(list, c.a.sessionModel(s))
			}
		}
		c.json(http.StatusOK, list)
	case http.MethodPost:
		var m struct {
			Path   *string `json:"path"`
			Type   *string `json:"type"`
			Name   string  `json:"name"`
			Kernel struct {
				ID   string `json:"id"`
				Name string `json:"name"`
			} `json:"kernel"`
		}
		if !c.body(&m) {
			return
		}
		switch {
		case m.Path == nil:
			c.fail(http.StatusBadRequest, "400 bad request", "Missing field in JSON data: path")
			return
		case m.Type == nil:
			c.fail(http.StatusBadRequest, "400 bad request", "Missing field in JSON data: type")
			return
		}
		if _, ok := c.own(*m.Path); !ok {
			return
		}
		for _, s := range c.a.sessions {
			if s.path == *m.Path {
				c.json(http.StatusCreated, c.a.sessionModel(s), "Location", "/api/sessions/"+s.id)
				return
			}
		}
		k := c.a.kernels[m.Kernel.ID]
		switch {
		case k != nil && k.owner != c.user:
			c.fail(http.StatusForbidden, "foreign kernel", fmt.Sprintf("User %s is not authorized to execute on resource: kernels.", c.user))
			return
		case k == nil:
			if k = c.startKernel(m.Kernel.Name); k == nil {
				return
			}
		}
		s := &jupSession{id: jupUUID(), path: *m.Path, name: m.Name, typ: *m.Type, kernel: k.id, owner: c.user}
		c.a.sessions[s.id] = s
		c.json(http.StatusCreated, c.a.sessionModel(s), "Location", "/api/sessions/"+s.id)
	default:
		c.fail(http.StatusMethodNotAllowed, "405 method", "")
	}
}

// session is SessionHandler.
func (c *jupCall) session(id string) {
	if !c.prepare() {
		return
	}
	s := c.a.sessions[id]
	switch {
	case s == nil:
		c.fail(http.StatusNotFound, "404 session", fmt.Sprintf("Session not found: session_id=%s", jupRepr(id)))
		return
	case s.owner != c.user:
		c.fail(http.StatusForbidden, "foreign kernel", fmt.Sprintf("User %s is not authorized to read on resource: sessions.", c.user))
		return
	}
	switch c.r.Method {
	case http.MethodGet, http.MethodHead:
		c.json(http.StatusOK, c.a.sessionModel(s))
	case http.MethodPatch:
		var m struct {
			Path *string `json:"path"`
			Name *string `json:"name"`
			Type *string `json:"type"`
		}
		if !c.body(&m) {
			return
		}
		if m.Path != nil {
			if _, ok := c.own(*m.Path); !ok {
				return
			}
			s.path = *m.Path
		}
		if m.Name != nil {
			s.name = *m.Name
		}
		if m.Type != nil {
			s.typ = *m.Type
		}
		c.json(http.StatusOK, c.a.sessionModel(s))
	case http.MethodDelete:
		c.a.shutdown(s.kernel)
		c.send(http.StatusNoContent, "", nil)
	default:
		c.fail(http.StatusMethodNotAllowed, "405 method", "")
	}
}

// shutdown shuts a kernel down: its sessions go, its connections close.
func (a *Jupyter) shutdown(id string) {
	delete(a.kernels, id)
	for sid, s := range a.sessions {
		if s.kernel == id {
			delete(a.sessions, sid)
		}
	}
	for key, conn := range a.open {
		if conn.kernel.id == id {
			delete(a.open, key)
			conn.close()
		}
	}
	a.Counts.Add("kernels deleted", 1)
}

// kernelRoot is MainKernelHandler: the user's kernels, or a new one.
func (c *jupCall) kernelRoot() {
	if !c.prepare() {
		return
	}
	switch c.r.Method {
	case http.MethodGet, http.MethodHead:
		list := []jupKernelModel{}
		for _, id := range slices.Sorted(maps.Keys(c.a.kernels)) {
			if k := c.a.kernels[id]; k.owner == c.user {
				list = append(list, k.model())
			}
		}
		c.json(http.StatusOK, list)
	case http.MethodPost:
		var m struct {
			Name string `json:"name"`
		}
		if c.r.ContentLength != 0 && !c.body(&m) {
			return
		}
		if k := c.startKernel(m.Name); k != nil {
			c.json(http.StatusCreated, k.model(), "Location", "/api/kernels/"+k.id)
		}
	default:
		c.fail(http.StatusMethodNotAllowed, "405 method", "")
	}
}

// findKernel is the kernel of id if it is the user's: false after a 404
// or 403.
func (c *jupCall) findKernel(id string) (*jupKernel, bool) {
	k := c.a.kernels[id]
	switch {
	case k == nil:
		c.fail(http.StatusNotFound, "404 kernel", "Kernel does not exist: "+id)
	case k.owner != c.user:
		c.fail(http.StatusForbidden, "foreign kernel", "")
	default:
		return k, true
	}
	return nil, false
}

// kernel is KernelHandler.
func (c *jupCall) kernel(id string) {
	if !c.prepare() {
		return
	}
	k, ok := c.findKernel(id)
	if !ok {
		return
	}
	switch c.r.Method {
	case http.MethodGet, http.MethodHead:
		c.json(http.StatusOK, k.model())
	case http.MethodDelete:
		c.a.shutdown(id)
		c.send(http.StatusNoContent, "", nil)
	default:
		c.fail(http.StatusMethodNotAllowed, "405 method", "")
	}
}

// jupUpgrader never picks a subprotocol: the legacy JSON protocol.
var jupUpgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }} //nolint:gochecknoglobals // stateless

// channels is KernelWebsocketHandler: checked under the lock, then a
// connection served without it.
func (c *jupCall) channels(id string) {
	a := c.a
	a.mu.Lock()
	c.auth()
	k, ok := (*jupKernel)(nil), false
	session := c.r.URL.Query().Get("session_id")
	switch {
	case c.r.Method != http.MethodGet:
		c.fail(http.StatusMethodNotAllowed, "405 method", "")
	case c.user == "":
		c.fail(http.StatusForbidden, "403 anonymous", "")
	default:
		k, ok = c.findKernel(id)
	}
	if ok {
		switch {
		case !strings.EqualFold(c.r.Header.Get("Upgrade"), "websocket"):
			c.fail(http.StatusBadRequest, "400 bad request", `Can "Upgrade" only to "WebSocket".`)
			ok = false
		case !websocket.IsWebSocketUpgrade(c.r):
			c.fail(http.StatusBadRequest, "400 bad request", `"Connection" must be "Upgrade".`)
			ok = false
		case !c.originOK():
			a.Counts.Add("403 origin", 1)
			c.w.Header().Set("Server", jupServer)
			c.w.Header().Set("Content-Type", "text/html; charset=UTF-8")
			c.w.WriteHeader(http.StatusForbidden)
			_, _ = c.w.Write([]byte("Cross origin websockets not allowed"))
			ok = false
		}
	}
	if !ok {
		a.mu.Unlock()
		return
	}
	a.mu.Unlock()
	ws, err := jupUpgrader.Upgrade(c.w, c.r, http.Header{"Server": {jupServer}})
	if err != nil {
		return // gorilla answered
	}
	conn := &jupConn{ws: ws, kernel: k, session: session, user: c.user}
	a.mu.Lock()
	if a.kernels[id] != k { // shut down meanwhile
		a.mu.Unlock()
		ws.Close()
		return
	}
	key, clash := id+":"+session, false
	if stale := a.open[key]; stale != nil { // _register_session: "Replacing stale connection"
		delete(a.open, key)
		stale.close()
		clash = true
	} else if session != "" {
		first, used := a.clients[session]
		clash = used && first != c.user || slices.ContainsFunc(slices.Collect(maps.Values(a.open)), func(o *jupConn) bool { return o.session == session })
	}
	if clash {
		a.Counts.Add("session_id clash", 1)
	}
	if _, used := a.clients[session]; !used && session != "" {
		a.clients[session] = c.user
	}
	a.open[key] = conn
	k.conns++
	k.state, k.lastActivity = "idle", jupNow()
	a.mu.Unlock()
	conn.serve(a, key)
}

// close is the server's close of a stale connection: a close frame with
// no status, as Tornado's close() sends.
func (conn *jupConn) close() {
	conn.wmu.Lock()
	defer conn.wmu.Unlock()
	_ = conn.ws.WriteControl(websocket.CloseMessage, []byte{}, time.Now().Add(time.Second))
	conn.ws.Close()
}

// jupHeader is a message header as msg_header makes it.
type jupHeader struct {
	MsgID    string `json:"msg_id"`
	MsgType  string `json:"msg_type"`
	Username string `json:"username"`
	Session  string `json:"session"`
	Date     string `json:"date"`
	Version  string `json:"version"`
}

// jupMsg is a message as Session.deserialize gives it and the server
// writes it, with its channel.
type jupMsg struct {
	Header       jupHeader       `json:"header"`
	MsgID        string          `json:"msg_id"`
	MsgType      string          `json:"msg_type"`
	ParentHeader json.RawMessage `json:"parent_header"`
	Metadata     any             `json:"metadata"`
	Content      any             `json:"content"`
	Buffers      []any           `json:"buffers"`
	Channel      string          `json:"channel"`
}

// jupIn is a client's message.
type jupIn struct {
	Header struct {
		MsgID   string `json:"msg_id"`
		MsgType string `json:"msg_type"`
		Session string `json:"session"`
	} `json:"header"`
	Content struct {
		Code   string `json:"code"`
		Silent bool   `json:"silent"`
	} `json:"content"`
	Channel *string `json:"channel"`
}

var jupDateRE = regexp.MustCompile(`("date"\s*:\s*")([^"]+)(")`)

// jupParent is the request's header as the kernel sends it back: its date
// parsed and written again as isoformat.
func jupParent(raw json.RawMessage) json.RawMessage {
	return jupDateRE.ReplaceAllFunc(raw, func(m []byte) []byte {
		p := jupDateRE.FindSubmatch(m)
		t, err := time.Parse(time.RFC3339Nano, string(p[2]))
		if err != nil {
			return m
		}
		return []byte(string(p[1]) + jupISO(t.Truncate(time.Microsecond)) + string(p[3]))
	})
}

// send writes a kernel message on channel.
func (conn *jupConn) send(a *Jupyter, channel, msgType string, parent json.RawMessage, metadata, content any) {
	k := conn.kernel
	a.mu.Lock()
	id := fmt.Sprintf("%s_%d_%d", k.session, k.pid, k.count)
	k.count++
	a.mu.Unlock()
	m := jupMsg{Header: jupHeader{id, msgType, jupOSUser, k.session, jupISO(jupNow()), "5.3"}, MsgID: id, MsgType: msgType,
		ParentHeader: parent, Metadata: metadata, Content: content, Buffers: []any{}, Channel: channel}
	if metadata == nil {
		m.Metadata = struct{}{}
	}
	conn.wmu.Lock()
	defer conn.wmu.Unlock()
	_ = conn.ws.WriteMessage(websocket.TextMessage, []byte(jupDumps(m)))
}

type jupStatus struct {
	ExecutionState string `json:"execution_state"`
}

// jupKernelInfo is ipykernel's kernel_info_reply content.
const jupKernelInfo = `{"status":"ok","protocol_version":"5.3","implementation":"ipython","implementation_version":"8.26.0",` +
	`"language_info":{"name":"python","version":"3.12.4","mimetype":"text/x-python","codemirror_mode":{"name":"ipython","version":3},` +
	`"pygments_lexer":"ipython3","nbconvert_exporter":"python","file_extension":".py"},` +
	`"banner":"Python 3.12.4 | packaged by conda-forge | (main, Jun 17 2024, 10:23:07) [GCC 12.3.0]\nType 'copyright', 'credits' or 'license' for more information\nIPython 8.26.0 -- An enhanced Interactive Python. Type '?' for help.\n",` +
	`"help_links":[{"text":"Python Reference","url":"https://docs.python.org/3.12"},{"text":"IPython Reference","url":"https://ipython.org/documentation.html"}],"debugger":true}`

var jupSumRE = regexp.MustCompile(`^\s*(-?\d{1,9})\s*(?:([-+*])\s*(-?\d{1,9})\s*)?$`)

// jupEval is the kernel's Python: small integer sums, differences and
// products.
func jupEval(code string) (string, bool) {
	m := jupSumRE.FindStringSubmatch(code)
	if m == nil {
		return "", false
	}
	x, _ := strconv.ParseInt(m[1], 10, 64)
	if m[2] != "" {
		y, _ := strconv.ParseInt(m[3], 10, 64)
		switch m[2] {
		case "+":
			x += y
		case "-":
			x -= y
		default:
			x *= y
		}
	}
	return strconv.FormatInt(x, 10), true
}

// serve reads the client's messages and answers as the kernel would,
// until the connection ends.
func (conn *jupConn) serve(a *Jupyter, key string) {
	defer func() {
		a.mu.Lock()
		if a.open[key] == conn {
			delete(a.open, key)
		}
		conn.kernel.conns--
		a.mu.Unlock()
		conn.ws.Close()
	}()
	// The nudge's kernel_info_request, sent with the client's session: its
	// idle status comes through once iopub is subscribed.
	nudge, _ := json.Marshal(jupHeader{fmt.Sprintf("%s_%d_%d", conn.session, conn.kernel.pid+1, 0), "kernel_info_request", jupOSUser,
		conn.session, jupISO(jupNow()), "5.4"})
	conn.send(a, "iopub", "status", nudge, nil, jupStatus{"idle"})
	for {
		mt, data, err := conn.ws.ReadMessage()
		if err != nil {
			return
		}
		var in jupIn
		var raw struct {
			Header json.RawMessage `json:"header"`
		}
		if mt != websocket.TextMessage || json.Unmarshal(data, &in) != nil || json.Unmarshal(data, &raw) != nil || in.Header.MsgType == "" {
			a.Counts.Add("bad message", 1)
			continue
		}
		channel := "shell"
		if in.Channel != nil {
			channel = *in.Channel
		}
		if !slices.Contains([]string{"shell", "control", "stdin"}, channel) {
			a.Counts.Add("bad message", 1)
			continue
		}
		a.mu.Lock()
		if in.Header.Session != conn.session {
			a.Counts.Add("session_id mismatch", 1)
		}
		if a.msgIDs[in.Header.MsgID] {
			a.Counts.Add("msg_id reused", 1)
		}
		a.msgIDs[in.Header.MsgID] = true
		conn.kernel.lastActivity = jupNow()
		a.mu.Unlock()
		conn.answer(a, channel, &in, jupParent(raw.Header))
	}
}

// answer is the kernel's dispatch of one request.
func (conn *jupConn) answer(a *Jupyter, channel string, in *jupIn, parent json.RawMessage) {
	k := conn.kernel
	busy := func(state string) {
		a.mu.Lock()
		k.state = state
		a.mu.Unlock()
		conn.send(a, "iopub", "status", parent, nil, jupStatus{state})
	}
	switch in.Header.MsgType {
	case "kernel_info_request":
		busy("busy")
		conn.send(a, channel, "kernel_info_reply", parent, nil, json.RawMessage(jupKernelInfo))
		busy("idle")
		a.Counts.Add("kernel infos answered", 1)
	case "comm_info_request":
		busy("busy")
		conn.send(a, channel, "comm_info_reply", parent, nil, struct {
			Status string   `json:"status"`
			Comms  struct{} `json:"comms"`
		}{Status: "ok"})
		busy("idle")
	case "execute_request":
		busy("busy")
		a.mu.Lock()
		if !in.Content.Silent {
			k.execCount++
		}
		n := k.execCount
		a.mu.Unlock()
		started := jupISO(jupNow())
		conn.send(a, "iopub", "execute_input", parent, nil, struct {
			Code           string `json:"code"`
			ExecutionCount int    `json:"execution_count"`
		}{in.Content.Code, n})
		if a.ExecDelay > 0 {
			time.Sleep(a.ExecDelay) // the kernel computing
			a.mu.Lock()
			_, alive := a.kernels[k.id]
			a.mu.Unlock()
			if !alive {
				a.Counts.Add("executions killed", 1)
				return
			}
		}
		type meta struct {
			Started         string `json:"started"`
			DependenciesMet bool   `json:"dependencies_met"`
			Engine          string `json:"engine"`
			Status          string `json:"status"`
		}
		// Counted before the reply goes out: whoever reads the reply may
		// read the counts next.
		if v, ok := jupEval(in.Content.Code); ok {
			a.Counts.Add("executions answered", 1)
			conn.send(a, "iopub", "execute_result", parent, nil, struct {
				Data           map[string]string `json:"data"`
				Metadata       struct{}          `json:"metadata"`
				ExecutionCount int               `json:"execution_count"`
			}{Data: map[string]string{"text/plain": v}, ExecutionCount: n})
			conn.send(a, channel, "execute_reply", parent, meta{started, true, k.session, "ok"}, struct {
				Status          string   `json:"status"`
				ExecutionCount  int      `json:"execution_count"`
				UserExpressions struct{} `json:"user_expressions"`
				Payload         []any    `json:"payload"`
			}{Status: "ok", ExecutionCount: n, Payload: []any{}})
		} else {
			a.Counts.Add("execution errors", 1)
			tb := []string{"\x1b[0;31m---------------------------------------------------------------------------\x1b[0m",
				"\x1b[0;31mNameError\x1b[0m: this kernel only adds small integers"}
			type errContent struct {
				Status         string   `json:"status,omitempty"`
				ExecutionCount int      `json:"execution_count,omitempty"`
				Ename          string   `json:"ename"`
				Evalue         string   `json:"evalue"`
				Traceback      []string `json:"traceback"`
			}
			conn.send(a, "iopub", "error", parent, nil, errContent{Ename: "NameError", Evalue: "this kernel only adds small integers", Traceback: tb})
			conn.send(a, channel, "execute_reply", parent, meta{started, true, k.session, "error"},
				errContent{"error", n, "NameError", "this kernel only adds small integers", tb})
		}
		busy("idle")
	default: // ipykernel logs "Unknown message type" and answers nothing
		a.Counts.Add("bad message", 1)
	}
}

// jupLoginJS is the login page's script: it logs in as the u of the
// next URL (/lab?u=NAME) with the form; a refused login shows the error.
const jupLoginJS = `(() => {
  const S = sessionStorage, root = document.getElementById("root");
  const fail = m => { root.textContent = "error: " + m; };
  const msg = document.querySelector(".message.error");
  if (msg) return fail("login: " + msg.textContent.trim());
  const next = new URLSearchParams(location.search).get("next") || "";
  const u = new URLSearchParams(next.split("?")[1] || "").get("u") || S.getItem("jup.u");
  if (!u) return fail("no user in " + location.search);
  if (S.getItem("jup.step") === "login") return fail("the login page again");
  S.setItem("jup.u", u);
  S.setItem("jup.step", "login");
  setTimeout(() => {
    const f = document.querySelector('form[action^="/login"]');
    f.querySelector('[name="username"]').value = u;
    f.querySelector('[name="password"]').value = "pw-" + u;
    f.submit();
  }, 100 + Math.random() * 100);
})();`

// jupLogoutJS is the logout page's: done, if the lab page got there.
const jupLogoutJS = `(() => {
  const step = sessionStorage.getItem("jup.step"), info = document.querySelector(".message.info");
  document.getElementById("root").textContent = step === "logout" && info && info.textContent.trim() === "Successfully logged out." ?
    "done" : "error: logout page at step " + step;
})();`

// jupLabJS is the lab page's script, doing what JupyterLab's services do:
// list the directory, make a notebook, list again, rename it to the name
// typed in, start a session, talk to its kernel over the channels
// WebSocket (kernel_info and two executions, each awaited to its idle
// status), delete the session and then the notebook (its path read from
// the listing), and go to /logout. Requests carry X-XSRFToken from the
// _xsrf cookie, and GETs ServerConnection's cache buster.
const jupLabJS = `(async () => {
  const S = sessionStorage, root = document.getElementById("root"), out = document.getElementById("output");
  const fail = m => { root.textContent = "error: " + m; };
  const check = (ok, m) => { if (!ok) throw new Error(m); };
  const config = JSON.parse(document.getElementById("jupyter-config-data").textContent);
  const base = config.baseUrl, wsBase = config.wsUrl || (location.protocol === "https:" ? "wss://" : "ws://") + location.host + base;
  const u = new URLSearchParams(location.search).get("u") || S.getItem("jup.u");
  const pause = () => new Promise(r => setTimeout(r, 100 + Math.random() * 100));
  const uuid = () => crypto.randomUUID ? crypto.randomUUID() : "10000000-1000-4000-8000-100000000000".replace(/[018]/g,
    c => (c ^ crypto.getRandomValues(new Uint8Array(1))[0] & 15 >> c / 4).toString(16));
  const cookie = n => { const c = document.cookie.split("; ").find(c => c.startsWith(n + "=")); return c ? decodeURIComponent(c.slice(n.length + 1)) : ""; };
  const enc = p => p.split("/").map(encodeURIComponent).join("/");
  const api = async (method, path, body, want) => {
    let url = base + path;
    if (method === "GET") url += (/\?/.test(url) ? "&" : "?") + new Date().getTime();
    const headers = { "X-XSRFToken": cookie("_xsrf") };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const r = await fetch(url, { method, headers, cache: "no-store", credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body) });
    if (r.status !== want) throw new Error(method + " /" + path + ": " + r.status + " " + (await r.text()).slice(0, 200));
    return r.status === 204 ? null : r.json();
  };
  const list = async () => {
    const dir = await api("GET", "api/contents/?type=directory&content=1", undefined, 200);
    document.getElementById("files").replaceChildren(...dir.content.map(f => Object.assign(document.createElement("li"), { textContent: f.name })));
    return dir.content;
  };
  const kernel = kid => new Promise((resolve, reject) => {
    const session = uuid(), pending = new Map();
    const ws = new WebSocket(wsBase + "api/kernels/" + encodeURIComponent(kid) + "/channels?session_id=" + encodeURIComponent(session));
    let finished = false;
    const request = (msg_type, content) => new Promise((ok, no) => {
      const header = { msg_id: uuid(), msg_type, username: "", session, date: new Date().toISOString(), version: "5.2" };
      pending.set(header.msg_id, { type: msg_type.replace("_request", "_reply"), ok, no, reply: null, idle: false, result: null });
      ws.send(JSON.stringify({ header, parent_header: {}, metadata: {}, content, channel: "shell", buffers: [] }));
    });
    ws.onmessage = e => {
      const m = JSON.parse(e.data), p = pending.get(m.parent_header && m.parent_header.msg_id);
      if (!p) return;
      if (m.channel === "iopub" && m.msg_type === "status" && m.content.execution_state === "idle") p.idle = true;
      else if (m.channel === "iopub" && m.msg_type === "execute_result") p.result = m.content.data["text/plain"];
      else if (m.channel === "shell" && m.msg_type === p.type) p.reply = m;
      if (p.idle && p.reply) { pending.delete(m.parent_header.msg_id); p.ok(p); }
    };
    ws.onclose = e => { if (!finished) reject(new Error("the kernel channel closed: " + e.code)); };
    ws.onerror = () => { if (!finished) reject(new Error("the kernel channel failed")); };
    ws.onopen = async () => {
      try {
        const info = await request("kernel_info_request", {});
        check(info.reply.content.status === "ok" && info.reply.content.language_info.name === "python", "kernel_info_reply " + JSON.stringify(info.reply.content));
        for (const [code, want] of [["1+1", "2"], ["20+22", "42"]]) {
          await pause();
          const x = await request("execute_request", { code, silent: false, store_history: true, user_expressions: {}, allow_stdin: false, stop_on_error: true });
          check(x.reply.content.status === "ok" && x.result === want, code + " gave " + x.result + " (" + x.reply.content.status + ")");
          out.textContent += code + " = " + x.result + "\n";
        }
        finished = true;
        ws.close();
        resolve();
      } catch (e) { finished = true; ws.close(); reject(e); }
    };
  });
  try {
    check(u, "no user in " + location.search);
    check(S.getItem("jup.step") === "login", "the lab page at step " + S.getItem("jup.step"));
    S.setItem("jup.step", "lab");
    await list();
    await pause();
    const nb = await api("POST", "api/contents/", { type: "notebook" }, 201);
    check(/^Untitled\d*\.ipynb$/.test(nb.name) && nb.type === "notebook", "created " + JSON.stringify(nb));
    await pause();
    check((await list()).some(f => f.name === nb.name), nb.name + " is not listed");
    await pause();
    const input = document.getElementById("new-name");
    input.value = "report-" + u + ".ipynb"; // typed by the user
    const renamed = await api("PATCH", "api/contents/" + enc(nb.path), { path: input.value }, 200);
    check(renamed.name === input.value, "renamed to " + renamed.name);
    await pause();
    const sess = await api("POST", "api/sessions", { path: renamed.path, type: "notebook", name: "", kernel: { name: "python3" } }, 201);
    check(sess.id && sess.kernel && sess.kernel.id, "session " + JSON.stringify(sess));
    await pause();
    await kernel(sess.kernel.id);
    await pause();
    await api("DELETE", "api/sessions/" + encodeURIComponent(sess.id), undefined, 204);
    await pause();
    const entry = (await list()).find(f => f.name === input.value);
    check(entry, input.value + " is not listed");
    await api("DELETE", "api/contents/" + enc(entry.path), undefined, 204);
    await pause();
    S.setItem("jup.step", "logout");
    location.href = base + "logout";
  } catch (e) { fail(e.message); }
})();`

// JupyterClient is a person visiting a Jupyter with JupyterLab, done with
// net/http and a WebSocket: the visit of the pages' scripts, from an
// anonymous GET /lab?u=USER sent to log in. It fails tb on any answer but
// the one Jupyter gives.
func JupyterClient(tb testing.TB, base, user string) {
	tb.Helper()
	newJupUser(tb, base).visit(user)
}

// jupUser is a browser context of JupyterClient.
type jupUser struct {
	tb   testing.TB
	c    *http.Client
	base string
	page string // the last page
}

func newJupUser(tb testing.TB, base string) *jupUser {
	jar, _ := cookiejar.New(nil)
	tr := &http.Transport{}
	tb.Cleanup(tr.CloseIdleConnections)
	return &jupUser{tb: tb, base: base, c: &http.Client{Jar: jar, Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// do sends a request to path under base and fails the test unless the
// status is want.
func (u *jupUser) do(method, path, body string, want int, header ...string) Answer {
	u.tb.Helper()
	ans := Do(u.tb, u.c, method, u.base+path, body, header...)
	if ans.Status != want {
		u.tb.Fatalf("%s %s: %d, want %d: %.300s", method, path, ans.Status, want, ans.Body)
	}
	return ans
}

// cookie is the value the jar holds for name.
func (u *jupUser) cookie(name string) string {
	p, _ := url.Parse(u.base + "/")
	for _, c := range u.c.Jar.Cookies(p) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// api sends an API request as JupyterLab's ServerConnection does, and
// decodes the answer into v unless nil.
func (u *jupUser) api(method, path string, body any, want int, v any) Answer {
	u.tb.Helper()
	b, h := "", []string{"X-XSRFToken", u.cookie("_xsrf")}
	if method == http.MethodGet {
		path += map[bool]string{true: "&", false: "?"}[strings.Contains(path, "?")] + strconv.FormatInt(time.Now().UnixMilli(), 10)
	}
	if body != nil {
		j, _ := json.Marshal(body)
		b, h = string(j), append(h, "Content-Type", "application/json")
	}
	ans := u.do(method, path, b, want, h...)
	if v != nil && json.Unmarshal(ans.Body, v) != nil {
		u.tb.Fatalf("%s %s: %.300s", method, path, ans.Body)
	}
	return ans
}

type jupListed struct {
	Name, Path, Type string
	Writable         bool
}

func (u *jupUser) list() []jupListed {
	u.tb.Helper()
	var dir struct{ Content []jupListed }
	u.api(http.MethodGet, "/api/contents/?type=directory&content=1", nil, http.StatusOK, &dir)
	return dir.Content
}

var (
	jupFormRE  = regexp.MustCompile(`<form action="([^"]+)" method="post"`)
	jupXSRFRE  = regexp.MustCompile(`<input type="hidden" name="_xsrf" value="([^"]+)"/>`)
	jupConfRE  = regexp.MustCompile(`<script id="jupyter-config-data" type="application/json">(.*?)</script>`)
	jupUntitle = regexp.MustCompile(`^Untitled\d*\.ipynb$`)
)

// login does the anonymous start and the login form.
func (u *jupUser) login(user string) {
	u.tb.Helper()
	start := "/lab?u=" + url.QueryEscape(user)
	loc := u.do(http.MethodGet, start, "", http.StatusFound).Header.Get("Location")
	if want := "/login?next=" + url.QueryEscape(start); loc != want {
		u.tb.Fatalf("anonymous %s sent to %q, want %q", start, loc, want)
	}
	u.page = string(u.do(http.MethodGet, loc, "", http.StatusOK).Body)
	f, x := jupFormRE.FindStringSubmatch(u.page), jupXSRFRE.FindStringSubmatch(u.page)
	if f == nil || x == nil {
		u.tb.Fatalf("login page: %.500s", u.page)
	}
	form := url.Values{"_xsrf": {html.UnescapeString(x[1])}, "username": {user}, "password": {"pw-" + user}}
	ans := u.do(http.MethodPost, html.UnescapeString(f[1]), form.Encode(), http.StatusFound, "Content-Type", "application/x-www-form-urlencoded", "Origin", u.base)
	if loc := ans.Header.Get("Location"); loc != start {
		u.tb.Fatalf("logged in, sent to %q", loc)
	}
	u.page = string(u.do(http.MethodGet, start, "", http.StatusOK).Body)
	if !jupConfRE.MatchString(u.page) {
		u.tb.Fatalf("lab page: %.500s", u.page)
	}
}

func (u *jupUser) visit(user string) {
	u.tb.Helper()
	must := func(ok bool, format string, args ...any) {
		if u.tb.Helper(); !ok {
			u.tb.Fatalf(format, args...)
		}
	}
	u.login(user)
	u.list()
	var nb jupListed
	ans := u.api(http.MethodPost, "/api/contents/", map[string]string{"type": "notebook"}, http.StatusCreated, &nb)
	must(jupUntitle.MatchString(nb.Name) && nb.Type == "notebook" && ans.Header.Get("Location") == "/api/contents/"+nb.Name, "created %+v at %q", nb, ans.Header.Get("Location"))
	must(slices.ContainsFunc(u.list(), func(f jupListed) bool { return f.Name == nb.Name }), "%s is not listed", nb.Name)
	name := "report-" + user + ".ipynb"
	var renamed jupListed
	u.api(http.MethodPatch, "/api/contents/"+jupURLEscape(nb.Path), map[string]string{"path": name}, http.StatusOK, &renamed)
	must(renamed.Name == name && renamed.Path == name, "renamed to %+v", renamed)
	var sess struct {
		ID     string
		Kernel struct{ ID string }
	}
	u.api(http.MethodPost, "/api/sessions", map[string]any{"path": renamed.Path, "type": "notebook", "name": "", "kernel": map[string]string{"name": "python3"}},
		http.StatusCreated, &sess)
	must(sess.ID != "" && sess.Kernel.ID != "", "session %+v", sess)
	k := u.channels(sess.Kernel.ID, jupUUID())
	k.request("kernel_info_request", map[string]any{}, "")
	k.request("execute_request", jupExecute("1+1"), "2")
	k.request("execute_request", jupExecute("20+22"), "42")
	k.close()
	u.api(http.MethodDelete, "/api/sessions/"+sess.ID, nil, http.StatusNoContent, nil)
	listed := u.list()
	i := slices.IndexFunc(listed, func(f jupListed) bool { return f.Name == name })
	must(i >= 0, "%s is not listed", name)
	u.api(http.MethodDelete, "/api/contents/"+jupURLEscape(listed[i].Path), nil, http.StatusNoContent, nil)
	u.page = string(u.do(http.MethodGet, "/logout", "", http.StatusOK).Body)
	must(strings.Contains(u.page, "Successfully logged out.") && u.cookie(jupCookieName(strings.TrimPrefix(u.base, "http://"))) == "", "logout: %.300s", u.page)
}

func jupExecute(code string) map[string]any {
	return map[string]any{"code": code, "silent": false, "store_history": true, "user_expressions": map[string]any{}, "allow_stdin": false, "stop_on_error": true}
}

// jupChannel is a kernel channel as JupyterLab's KernelConnection uses it.
type jupChannel struct {
	tb      testing.TB
	ws      *websocket.Conn
	session string
}

// dial opens a kernel channel; the answer if the upgrade is refused.
func (u *jupUser) dial(kernel, session string) (*websocket.Conn, *http.Response, error) {
	d := websocket.Dialer{Jar: u.c.Jar, HandshakeTimeout: 10 * time.Second}
	return d.Dial("ws"+strings.TrimPrefix(u.base, "http")+"/api/kernels/"+kernel+"/channels?session_id="+url.QueryEscape(session),
		http.Header{"Origin": {u.base}})
}

func (u *jupUser) channels(kernel, session string) *jupChannel {
	u.tb.Helper()
	ws, resp, err := u.dial(kernel, session)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		u.tb.Fatalf("kernel %s channels: %v (%d)", kernel, err, status)
	}
	resp.Body.Close()
	u.tb.Cleanup(func() { ws.Close() })
	return &jupChannel{tb: u.tb, ws: ws, session: session}
}

// jupGot is a message as the client reads it.
type jupGot struct {
	MsgType      string `json:"msg_type"`
	ParentHeader struct {
		MsgID string `json:"msg_id"`
	} `json:"parent_header"`
	Content struct {
		Status         string            `json:"status"`
		ExecutionState string            `json:"execution_state"`
		Data           map[string]string `json:"data"`
		ExecutionCount int               `json:"execution_count"`
	} `json:"content"`
	Channel string `json:"channel"`
}

// request sends a shell request and reads until its reply and its idle
// status; an execute_request's result must be want.
func (k *jupChannel) request(msgType string, content any, want string) {
	k.tb.Helper()
	id := jupUUID()
	msg := map[string]any{"header": map[string]string{"msg_id": id, "msg_type": msgType, "username": "", "session": k.session,
		"date": time.Now().UTC().Format("2006-01-02T15:04:05.000Z"), "version": "5.2"}, "parent_header": map[string]any{},
		"metadata": map[string]any{}, "content": content, "channel": "shell", "buffers": []any{}}
	if err := k.ws.WriteJSON(msg); err != nil {
		k.tb.Fatalf("%s: %v", msgType, err)
	}
	_ = k.ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	reply, idle, result := false, false, ""
	for !reply || !idle {
		var m jupGot
		if err := k.ws.ReadJSON(&m); err != nil {
			k.tb.Fatalf("%s: waiting for the answer: %v", msgType, err)
		}
		if m.ParentHeader.MsgID != id {
			continue
		}
		switch {
		case m.Channel == "iopub" && m.MsgType == "status" && m.Content.ExecutionState == "idle":
			idle = true
		case m.Channel == "iopub" && m.MsgType == "execute_result":
			result = m.Content.Data["text/plain"]
		case m.Channel == "shell" && m.MsgType == strings.TrimSuffix(msgType, "_request")+"_reply":
			if reply = true; m.Content.Status != "ok" {
				k.tb.Fatalf("%s: %s", msgType, m.Content.Status)
			}
		}
	}
	if result != want {
		k.tb.Fatalf("%s: result %q, want %q", msgType, result, want)
	}
}

func (k *jupChannel) close() {
	_ = k.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	k.ws.Close()
}
