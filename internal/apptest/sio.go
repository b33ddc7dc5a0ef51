package apptest

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"maps"
	"math/big"
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

// SocketIO is a backend that answers, on the wire, as an Express 4 chat app
// with express-session, csurf and a Socket.IO 4 server (Engine.IO protocol
// 4, Socket.IO protocol 5) does.
//
// Express side (expressjs/express 4.x lib/response.js, pillarjs/finalhandler
// 1.3): every answer has X-Powered-By: Express; res.send gives a weak ETag
// W/"<hex length>-<base64 SHA-1, 27 chars>" (and a 304 to a matching
// If-None-Match); res.redirect answers 302 with Location as given, Vary:
// Accept and "Found. Redirecting to /x" (text) or "<p>Found. Redirecting to
// /x</p>" (html) as the Accept header asks; an unknown route is
// finalhandler's "Cannot GET /x" page (404, Content-Security-Policy
// default-src 'none'). Routes match case-insensitively, a trailing slash
// allowed.
//
// Sessions are express-session's (expressjs/session index.js) with the
// MemoryStore, resave and saveUninitialized false: the cookie connect.sid
// is "s:" + the id (uid-safe, 24 bytes in base64url) + "." + its
// cookie-signature (HMAC-SHA256 of the id, base64 without "=" padding),
// URI-encoded (so s%3A...), Path=/; HttpOnly; it is sent only when a new
// session was modified. A cookie with a bad signature, or whose session is
// not in the store, starts a new session. Login regenerates the session
// (new id, old one destroyed); logout destroys it, clears the cookie
// (Expires=Thu, 01 Jan 1970 00:00:00 GMT, as res.clearCookie) and
// disconnects the session's sockets as the Socket.IO express-session
// example does (io.to(session id).disconnectSockets()).
//
// CSRF is csurf with the session (expressjs/csurf, pillarjs/csrf): the
// secret (uid-safe, 18 bytes) lives in req.session.csrfSecret, made on any
// request that has none (so even an anonymous GET sets the cookie); a
// token is an 8-char base62 salt, "-", and the base64url SHA-1 of
// salt-secret; it is read from the body's _csrf, the query's _csrf, then
// the CSRF-Token, XSRF-Token, X-CSRF-Token, X-XSRF-Token headers; any
// method but GET, HEAD and OPTIONS without a good one is a 403 answered by
// the csurf README's handler ("form tampered with").
//
// Pages: GET /login is a form (_csrf hidden, username, password); POST
// /login with password "pw-" + username answers 302 /chat, else the form
// again with 200 and "Invalid username or password.". GET /chat?u=NAME,
// anonymous, answers 302 /login?u=NAME (the query kept); logged in, it is
// the chat page with the logout form (_csrf) and the inline client. POST
// /logout answers 302 /login.
//
// Socket.IO is mounted at /socket.io/ before Express (socketio/socket.io
// packages/engine.io, socket.io, socket.io-parser), with
// io.engine.use(sessionMiddleware): the handshake GET
// /socket.io/?EIO=4&transport=polling&t=... answers
// 0{"sid":<base64id: 12 random bytes and a 3-byte counter, 20 url-safe
// chars>,"upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,
// "maxPayload":1000000} (text/plain; charset=UTF-8, cache-control:
// no-store), and remembers the session the handshake's cookie named. A poll
// is held until there is something to send; payloads join packets with
// \x1e; a POST answers "ok" (text/html). An unknown sid answers 400
// {"code":1,"message":"Session ID unknown"}, and a WebSocket upgrade with
// one gets engine.io's abortUpgrade: a bare "HTTP/1.1 400 Bad Request" with
// the text "Session ID unknown". Other Engine.IO refusals are 400 with code
// 0 (unknown transport), 2 (bad handshake method), 3 (a poll on an
// upgraded session, a WebSocket handshake without upgrade) or 5 (EIO not
// 4); a poll or POST overlapping another, or a binary POST, is a bare 400
// that closes the session. The upgrade: WebSocket ?EIO=4&transport=websocket
// &sid=..., 2probe → 3probe, a noop (6) every 100 ms to a held poll, then
// 5. The server pings (2) every pingInterval and closes the session without
// a pong (3) within pingTimeout; a ping from the client is an error.
// Socket.IO: 40 (optionally with an auth object) is answered 40{"sid":...}
// to a logged-in session, else 44{"message":"unauthorized"} (the io.use
// middleware's error); another namespace gets 44/ns,{"message":"Invalid
// namespace"}; a packet that does not parse, or comes in the wrong state,
// closes the connection.
//
// The chat: on connection the server emits welcome {user, room}, room being
// the user's own room id (a UUID made at the user's first login). The
// client emits join(room, ack) → ack {room, messages}; message({room,
// text}, ack) → ack {id} (small auto-increment ids shared by all) and a
// broadcast message {id, room, user, text, createdAt} to the room;
// edit({id, text}, ack) → ack with the message and a broadcast edited.
// Refusals are acks {"error":"forbidden"} (another user's room or message)
// or {"error":"not found"}.
//
// Counts: "sessions" (logins), "login refused", "login redirects"
// (anonymous GET /chat), "logouts", "403 csrf", "bad cookie" (connect.sid
// not signed right), "unknown session" (a signed connect.sid whose session
// is not in the store), "404 route", "413 body"; Engine.IO: "handshakes",
// "upgrades", "unknown sid", "bad request" (any other Engine.IO refusal),
// "ping timeout", "bad packet" (a packet that does not parse or comes in
// the wrong state, a binary one, a client ping); Socket.IO: "connections",
// "connect refused" (44 unauthorized), "invalid namespace", "joins",
// "foreign room" (joining or writing to another user's room), "missing
// room", "not joined" (a message to one's own room before joining it),
// "messages answered", "invalid message" (blank text or bad arguments),
// "edits", "foreign message" (editing another user's message), "missing
// message", "unknown event". All but sessions, logouts, handshakes,
// upgrades, connections, joins, messages answered and edits are refusals
// (SocketIORefusals).
type SocketIO struct {
	URL    string
	Counts Counts

	tb       testing.TB // logs each bad packet, for a test that fails
	mu       sync.Mutex
	upgrader websocket.Upgrader
	store    map[string]string // express-session's MemoryStore: id → JSON
	users    map[string]string // who logged in → their room
	rooms    map[string]string // room → its owner
	messages map[int]*sioMessage
	lastMsg  int
	engines  map[string]*sioEngine        // Engine.IO sessions by sid
	members  map[string]map[*sioSock]bool // Socket.IO rooms
	seqs     [2]int32                     // base64id's counters: engine.io's, socket.io's
	ping     [2]time.Duration             // pingInterval, pingTimeout
	conns    map[*sioWS]bool              // WebSockets whose reader runs
	wg       sync.WaitGroup               // their readers and writers
	closed   bool
}

// SocketIORefusals are the counts of SocketIO that are refusals.
var SocketIORefusals = []string{ //nolint:gochecknoglobals // constant list
	"login refused", "login redirects", "403 csrf", "bad cookie", "unknown session", "404 route", "413 body",
	"unknown sid", "bad request", "ping timeout", "bad packet", "connect refused", "invalid namespace",
	"foreign room", "missing room", "not joined", "invalid message", "foreign message", "missing message", "unknown event",
}

type sioMessage struct {
	ID        int    `json:"id"`
	Room      string `json:"room"`
	User      string `json:"user"`
	Text      string `json:"text"`
	CreatedAt string `json:"createdAt"`
	Edited    bool   `json:"edited,omitempty"`
}

const (
	sioSecret         = "keyboard cat" // express-session's README secret
	sioCookie         = "connect.sid"
	sioSep            = "\x1e"
	sioMaxPayload     = 1000000
	sioUpgradeTimeout = 10 * time.Second
	sioConnectTimeout = 45 * time.Second
	sioCloseTimeout   = 30 * time.Second
)

// NewSocketIO starts a SocketIO on loopback until the test ends.
func NewSocketIO(tb testing.TB) *SocketIO {
	a := &SocketIO{tb: tb, store: map[string]string{}, users: map[string]string{}, rooms: map[string]string{},
		messages: map[int]*sioMessage{}, engines: map[string]*sioEngine{}, members: map[string]map[*sioSock]bool{}, conns: map[*sioWS]bool{},
		ping: [2]time.Duration{25 * time.Second, 20 * time.Second}}
	a.seqs = [2]int32{-1, -1} // (undefined + 1) | 0 is 0
	// ws as engine.io uses it: no origin check, no compression, maxPayload.
	a.upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	srv := httptest.NewServer(a)
	tb.Cleanup(srv.Close)
	tb.Cleanup(func() { // before srv.Close: held polls answered, WebSockets closed
		a.mu.Lock()
		a.closed = true
		for _, e := range a.engines {
			a.onClose(e, "server shutting down")
		}
		for x := range a.conns {
			x.conn.Close()
		}
		a.mu.Unlock()
		a.wg.Wait()
	})
	a.URL = srv.URL
	return a
}

// SetPing sets the pingInterval and pingTimeout of Engine.IO sessions
// opened from now on (25 s and 20 s at start).
func (a *SocketIO) SetPing(interval, timeout time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.ping = [2]time.Duration{interval, timeout}
}

// Users returns the names of the users who logged in, sorted.
func (a *SocketIO) Users() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Sorted(maps.Keys(a.users))
}

func sioRandom(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// sioUID is uid-safe's sync(n): n random bytes in base64url.
func sioUID(n int) string { return base64.RawURLEncoding.EncodeToString(sioRandom(n)) }

// base64id is engine.io's (and socket.io's) id: 12 random bytes, the low 3
// bytes of a counter, base64 with / and + made _ and -.
func (a *SocketIO) base64id(which int) string {
	a.seqs[which]++
	b := make([]byte, 15)
	binary.BigEndian.PutUint32(b[11:], uint32(a.seqs[which]))
	copy(b, sioRandom(12))
	return strings.NewReplacer("/", "_", "+", "-").Replace(base64.StdEncoding.EncodeToString(b))
}

func sioUUID() string {
	b := sioRandom(16)
	b[6], b[8] = b[6]&0x0f|0x40, b[8]&0x3f|0x80
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// sioJSON is JSON.stringify: no HTML escaping.
func sioJSON(v any) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return strings.TrimSuffix(b.String(), "\n")
}

// sioSign is cookie-signature's sign.
func sioSign(val string) string {
	m := hmac.New(sha256.New, []byte(sioSecret))
	m.Write([]byte(val))
	return val + "." + strings.TrimRight(base64.StdEncoding.EncodeToString(m.Sum(nil)), "=")
}

// sioUnsign is cookie-signature's unsign.
func sioUnsign(input string) (string, bool) {
	i := strings.LastIndex(input, ".")
	if i < 0 {
		return "", false
	}
	return input[:i], hmac.Equal([]byte(sioSign(input[:i])), []byte(input))
}

// sioCookieValue is the cookie module's parse of the Cookie header, for
// one name: the first one, unquoted and URI-decoded.
func sioCookieValue(r *http.Request, name string) (string, bool) {
	for _, line := range r.Header.Values("Cookie") {
		for _, part := range strings.Split(line, ";") {
			k, v, ok := strings.Cut(part, "=")
			if !ok || strings.TrimSpace(k) != name {
				continue
			}
			v = strings.TrimSpace(v)
			if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			if d, err := url.PathUnescape(v); err == nil {
				v = d
			}
			return v, true
		}
	}
	return "", false
}

// sioSession is req.session as the MemoryStore keeps it.
type sioSession struct {
	Cookie struct {
		OriginalMaxAge *int    `json:"originalMaxAge"`
		Expires        *string `json:"expires"`
		HTTPOnly       bool    `json:"httpOnly"`
		Path           string  `json:"path"`
	} `json:"cookie"`
	CSRFSecret string `json:"csrfSecret,omitempty"`
	User       string `json:"user,omitempty"`
}

// sioSess is express-session at work on one request.
type sioSess struct {
	cookieID   string // the id the cookie carried, signed right
	id, origID string // req.sessionID, and the one it began with
	orig       string // the session's JSON as loaded or made
	found      bool   // loaded from the store
	data       *sioSession
}

// session is express-session's middleware: the session the cookie names,
// else a new one.
func (a *SocketIO) session(r *http.Request) *sioSess {
	s := &sioSess{}
	if raw, ok := sioCookieValue(r, sioCookie); ok && raw != "" {
		if v, signed := strings.CutPrefix(raw, "s:"); !signed {
			a.Counts.Add("bad cookie", 1)
		} else if id, ok := sioUnsign(v); !ok {
			a.Counts.Add("bad cookie", 1)
		} else {
			s.cookieID = id
		}
	}
	if js, ok := a.store[s.cookieID]; ok && s.cookieID != "" {
		s.id, s.origID, s.orig, s.found, s.data = s.cookieID, s.cookieID, js, true, &sioSession{}
		_ = json.Unmarshal([]byte(js), s.data)
		return s
	}
	if s.cookieID != "" {
		a.Counts.Add("unknown session", 1)
	}
	s.generate()
	s.origID, s.orig = s.id, sioJSON(s.data)
	return s
}

func (s *sioSess) generate() {
	s.id, s.data = sioUID(24), &sioSession{}
	s.data.Cookie.HTTPOnly, s.data.Cookie.Path = true, "/"
}

func (s *sioSess) modified() bool {
	return s.data != nil && (s.origID != s.id || s.orig != sioJSON(s.data))
}

// commit is what express-session does as the answer starts: Set-Cookie
// for a new session that was modified, and a save of any modified one.
func (a *SocketIO) commit(w http.ResponseWriter, s *sioSess) {
	if !s.modified() {
		return
	}
	if s.cookieID != s.id {
		w.Header().Add("Set-Cookie", sioCookie+"="+url.QueryEscape("s:"+sioSign(s.id))+"; Path=/; HttpOnly")
	}
	a.store[s.id] = sioJSON(s.data)
}

// csrf tokens (pillarjs/csrf).
const sioBase62 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

func sioSalt() string {
	b := make([]byte, 8)
	for i := range b {
		n, _ := rand.Int(rand.Reader, big.NewInt(int64(len(sioBase62))))
		b[i] = sioBase62[n.Int64()]
	}
	return string(b)
}

func sioTokenize(secret, salt string) string {
	sum := sha1.Sum([]byte(salt + "-" + secret))
	return salt + "-" + base64.RawURLEncoding.EncodeToString(sum[:])
}

func sioVerify(secret, token string) bool {
	i := strings.Index(token, "-")
	return secret != "" && i >= 0 && hmac.Equal([]byte(token), []byte(sioTokenize(secret, token[:i])))
}

// sioCall is one request through the Express app.
type sioCall struct {
	a     *SocketIO
	w     http.ResponseWriter
	r     *http.Request
	s     *sioSess
	token string
}

func (a *SocketIO) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.RequestURI, "/socket.io/") { // attached to the HTTP server before Express
		a.serveEngine(w, r)
		return
	}
	if r.Method == http.MethodPost && strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		r.Body = http.MaxBytesReader(w, r.Body, 100<<10) // express.urlencoded's limit
		var tooLarge *http.MaxBytesError
		if err := r.ParseForm(); errors.As(err, &tooLarge) {
			a.mu.Lock()
			defer a.mu.Unlock()
			a.Counts.Add("413 body", 1)
			w.Header().Set("X-Powered-By", "Express")
			c := &sioCall{a: a, w: w, r: r, s: &sioSess{}}
			c.finalPage(http.StatusRequestEntityTooLarge, "Payload Too Large")
			return
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	w.Header().Set("X-Powered-By", "Express")
	c := &sioCall{a: a, w: w, r: r, s: a.session(r)}
	// csurf
	if c.s.data.CSRFSecret == "" {
		c.s.data.CSRFSecret = sioUID(18)
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead && r.Method != http.MethodOptions && !sioVerify(c.s.data.CSRFSecret, c.csrfValue()) {
		a.Counts.Add("403 csrf", 1)
		c.send(http.StatusForbidden, "text/html; charset=utf-8", "form tampered with")
		return
	}
	path := strings.ToLower(r.URL.Path)
	if len(path) > 1 {
		path = strings.TrimSuffix(path, "/")
	}
	allow := map[string]string{"/login": "GET,HEAD,POST", "/chat": "GET,HEAD", "/logout": "POST"}[path]
	method := r.Method
	if method == http.MethodHead {
		method = http.MethodGet
	}
	switch {
	case method == http.MethodGet && path == "/login":
		c.loginPage()
	case method == http.MethodPost && path == "/login":
		c.login()
	case method == http.MethodGet && path == "/chat":
		c.chat()
	case method == http.MethodPost && path == "/logout":
		c.logout()
	case method == http.MethodOptions && allow != "": // the router's automatic OPTIONS
		w.Header().Set("Allow", allow)
		c.send(http.StatusOK, "text/html; charset=utf-8", allow)
	default:
		if r.URL.Path != "/favicon.ico" { // the browser's own, not the app's
			a.Counts.Add("404 route", 1)
		}
		c.finalPage(http.StatusNotFound, "Cannot "+r.Method+" "+r.URL.EscapedPath())
	}
}

// csrfValue is csurf's defaultValue.
func (c *sioCall) csrfValue() string {
	if v := c.r.PostForm.Get("_csrf"); v != "" {
		return v
	}
	if v := c.r.URL.Query().Get("_csrf"); v != "" {
		return v
	}
	for _, h := range []string{"Csrf-Token", "Xsrf-Token", "X-Csrf-Token", "X-Xsrf-Token"} {
		if v := c.r.Header.Get(h); v != "" {
			return v
		}
	}
	return ""
}

// csrfToken is req.csrfToken(): one token a request, made with the
// session's secret (a new one if the session has none).
func (c *sioCall) csrfToken() string {
	if c.token == "" {
		if c.s.data.CSRFSecret == "" {
			c.s.data.CSRFSecret = sioUID(18)
		}
		c.token = sioTokenize(c.s.data.CSRFSecret, sioSalt())
	}
	return c.token
}

func sioETag(body string) string {
	sum := sha1.Sum([]byte(body))
	return fmt.Sprintf(`W/"%x-%s"`, len(body), base64.StdEncoding.EncodeToString(sum[:])[:27])
}

// send is res.send of a string: the ETag, and a 304 when it is fresh.
func (c *sioCall) send(status int, ctype, body string) {
	h := c.w.Header()
	h.Set("Content-Type", ctype)
	etag := sioETag(body)
	h.Set("ETag", etag)
	if (c.r.Method == http.MethodGet || c.r.Method == http.MethodHead) && status/100 == 2 && sioFresh(c.r, etag) {
		status, body = http.StatusNotModified, ""
		h.Del("Content-Type")
	} else {
		h.Set("Content-Length", strconv.Itoa(len(body)))
	}
	c.a.commit(c.w, c.s)
	c.w.WriteHeader(status)
	_, _ = io.WriteString(c.w, body)
}

// sioFresh is the fresh module's test for If-None-Match.
func sioFresh(r *http.Request, etag string) bool {
	inm := r.Header.Get("If-None-Match")
	if inm == "" || strings.Contains(r.Header.Get("Cache-Control"), "no-cache") {
		return false
	}
	if strings.TrimSpace(inm) == "*" {
		return true
	}
	for _, t := range strings.Split(inm, ",") {
		t = strings.TrimSpace(t)
		if t == etag || "W/"+t == etag || t == strings.TrimPrefix(etag, "W/") {
			return true
		}
	}
	return false
}

// redirect is res.redirect: a 302, its body as res.format chooses.
func (c *sioCall) redirect(to string) {
	h := c.w.Header()
	h.Set("Location", to)
	h.Set("Vary", "Accept")
	body := ""
	switch sioNegotiate(c.r.Header.Get("Accept"), "text/plain", "text/html") {
	case "text/plain":
		h.Set("Content-Type", "text/plain; charset=utf-8")
		body = "Found. Redirecting to " + to
	case "text/html":
		h.Set("Content-Type", "text/html; charset=utf-8")
		body = "<p>Found. Redirecting to " + html.EscapeString(to) + "</p>"
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	c.a.commit(c.w, c.s)
	c.w.WriteHeader(http.StatusFound)
	_, _ = io.WriteString(c.w, body)
}

// sioNegotiate is the negotiator module's choice among types for an
// Accept header: the best quality, then specificity, then the order of
// Accept, then the order given; "" if none is acceptable.
func sioNegotiate(accept string, types ...string) string {
	if strings.TrimSpace(accept) == "" {
		return types[0]
	}
	type pri struct {
		q    float64
		s, o int
	}
	best, found := pri{}, ""
	for i, typ := range types {
		t, sub, _ := strings.Cut(typ, "/")
		p, ok := pri{o: -1}, false
		for o, part := range strings.Split(accept, ",") {
			fields := strings.Split(part, ";")
			at, asub, _ := strings.Cut(strings.ToLower(strings.TrimSpace(fields[0])), "/")
			q, params := 1.0, 0
			for _, f := range fields[1:] {
				if k, v, _ := strings.Cut(strings.TrimSpace(f), "="); k == "q" {
					q, _ = strconv.ParseFloat(v, 64)
				} else {
					params++
				}
			}
			s := 0
			switch {
			case params > 0:
				continue
			case at == t:
				s |= 4
			case at != "*":
				continue
			}
			switch {
			case asub == sub:
				s |= 2
			case asub != "*":
				continue
			}
			if !ok || s > p.s || s == p.s && q > p.q || s == p.s && q == p.q && o > p.o {
				p, ok = pri{q, s, o}, true
			}
		}
		if ok && p.q > 0 && (found == "" || p.q > best.q || p.q == best.q && (p.s > best.s || p.s == best.s && p.o < best.o)) {
			best, found = p, types[i]
		}
	}
	return found
}

// finalPage is finalhandler's answer (NODE_ENV=production).
func (c *sioCall) finalPage(status int, msg string) {
	body := "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Error</title>\n</head>\n<body>\n<pre>" +
		html.EscapeString(msg) + "</pre>\n</body>\n</html>\n"
	h := c.w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if c.s.data != nil {
		c.a.commit(c.w, c.s)
	}
	c.w.WriteHeader(status)
	_, _ = io.WriteString(c.w, body)
}

// page renders a view in the layout.
func (c *sioCall) page(status int, title, main, script string) {
	c.send(status, "text/html; charset=utf-8", `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>`+html.EscapeString(title)+` · Chat</title>
<link rel="icon" href="data:,">
</head>
<body>
`+main+`
<div id="root"></div>
<script>`+script+`</script>
</body>
</html>
`)
}

func (c *sioCall) loginForm(status int, username, errMsg string) {
	e := ""
	if errMsg != "" {
		e = `<p class="error" id="error">` + html.EscapeString(errMsg) + "</p>\n"
	}
	c.page(status, "Log in", `<h1>Log in</h1>
`+e+`<form method="post" action="/login" id="login">
<input type="hidden" name="_csrf" value="`+c.csrfToken()+`">
<label>Username <input type="text" name="username" value="`+html.EscapeString(username)+`" autocomplete="username" required></label>
<label>Password <input type="password" name="password" autocomplete="current-password" required></label>
<button type="submit">Log in</button>
</form>`, sioLoginJS)
}

func (c *sioCall) loginPage() {
	if c.s.data.User != "" {
		c.redirect("/chat")
		return
	}
	c.loginForm(http.StatusOK, "", "")
}

func (c *sioCall) login() {
	name, pw := strings.TrimSpace(c.r.PostForm.Get("username")), c.r.PostForm.Get("password")
	if name == "" || pw != "pw-"+name {
		c.a.Counts.Add("login refused", 1)
		c.loginForm(http.StatusOK, name, "Invalid username or password.")
		return
	}
	// req.session.regenerate: the old session destroyed, a new one made
	delete(c.a.store, c.s.id)
	c.s.generate()
	c.s.data.User = name
	if c.a.users[name] == "" {
		room := sioUUID()
		c.a.users[name], c.a.rooms[room] = room, name
	}
	c.a.Counts.Add("sessions", 1)
	c.redirect("/chat")
}

func (c *sioCall) chat() {
	if c.s.data.User == "" {
		c.a.Counts.Add("login redirects", 1)
		to := "/login"
		if c.r.URL.RawQuery != "" {
			to += "?" + c.r.URL.RawQuery
		}
		c.redirect(to)
		return
	}
	c.page(http.StatusOK, "Chat", `<h1>Chat</h1>
<p>Logged in as <b id="user">`+html.EscapeString(c.s.data.User)+`</b> <span id="status">connecting</span></p>
<ul id="messages"></ul>
<form method="post" action="/logout" id="logout">
<input type="hidden" name="_csrf" value="`+c.csrfToken()+`">
<button type="submit">Log out</button>
</form>`, sioChatJS)
}

func (c *sioCall) logout() {
	if c.s.data.User != "" {
		c.a.Counts.Add("logouts", 1)
	}
	id := c.s.id
	delete(c.a.store, id) // req.session.destroy
	c.s.data = nil
	// res.clearCookie, and io.to(session id).disconnectSockets()
	c.w.Header().Add("Set-Cookie", sioCookie+"=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT")
	for k := range c.a.members[id] {
		c.a.emit(k.e, "1")
		c.a.sockClose(k)
	}
	c.redirect("/login")
}
