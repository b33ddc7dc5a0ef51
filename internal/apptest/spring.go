package apptest

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
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

// SpringBoard is a backend that answers, on the wire, as a Spring Boot 3
// application (embedded Tomcat 10.1, Spring Framework 6.2, Spring Security
// 6.5, Thymeleaf 3.1) does: kanban boards whose cards are added and moved
// over STOMP on a WebSocket (spring-messaging's simple broker). What it
// follows, and where from (the sources of spring-framework v6.2.19,
// spring-security 6.5.9, spring-boot and thymeleaf-spring6):
//
//   - Tomcat's session: a JSESSIONID cookie of 32 upper-case hex digits,
//     "JSESSIONID=…; Path=/; HttpOnly", set when a session is first needed;
//     a cookie naming no live session is ignored (and counted). Relative
//     redirects are left relative (useRelativeRedirects). Spring Security's
//     default headers on every answer (HeaderWriterFilter: nosniff,
//     X-XSS-Protection 0, no-cache, X-Frame-Options DENY).
//   - StrictHttpFirewall: a path with ";", "//", "\", "%2F", "%25", "." or
//     ".." segments is a 400 (HttpStatusRequestRejectedHandler).
//   - CsrfFilter with HttpSessionCsrfTokenRepository (the raw token a
//     random UUID, kept in the session, made when first needed: deferred)
//     and XorCsrfTokenRequestAttributeHandler: each render masks it afresh
//     (random bytes as long as the token, then token XOR those bytes,
//     base64url), once per request; a POST must carry a masked form of the
//     session's token in the X-CSRF-TOKEN header or the _csrf parameter,
//     else AccessDeniedHandlerImpl's 403. Thymeleaf's th:action writes
//     <input type="hidden" name="_csrf" value="…"/> right after <form …>;
//     pages carry <meta name="_csrf"> and <meta name="_csrf_header">.
//   - formLogin with a Thymeleaf login page (the "Securing a Web
//     Application" guide's): POST /login with username (trimmed), password
//     and _csrf; success changes the session id (session fixation
//     protection, ChangeSessionIdAuthenticationStrategy), drops the CSRF
//     token (CsrfAuthenticationStrategy) and answers 302 to the saved
//     request, else to /; failure 302 to /login?error. The login page shows
//     the saved request (${session.SPRING_SECURITY_SAVED_REQUEST}), which is
//     how its script learns whom to sign in as.
//   - An anonymous request to anything but /login and /favicon.ico: a GET
//     of a page is saved in the session (HttpSessionRequestCache, with the
//     "continue" parameter of Spring Security 6 appended to its redirect
//     URL) and LoginUrlAuthenticationEntryPoint answers 302 to the absolute
//     http://host/login.
//   - logout: POST /logout with _csrf invalidates the session, clears
//     JSESSIONID (deleteCookies: "JSESSIONID=; Max-Age=0; Expires=Thu, 01
//     Jan 1970 00:00:10 GMT; Path=/") and answers 302 to /login?logout.
//   - Spring MVC: validation errors (@NotBlank name) render the form again
//     with 200 and th:errors' "must not be blank"; success redirects (PRG).
//     Errors are Spring Boot's: the Whitelabel Error Page for an Accept with
//     text/html, else {"timestamp","status","error","path"} JSON
//     (server.error.include-message=never); another user's or a missing
//     board is a ResponseStatusException 404; a non-numeric id a 400; an
//     unmapped path a 404, a mapped one with the wrong method a 405.
//   - The WebSocket endpoint /ws (registry.addEndpoint("/ws"), no SockJS):
//     authenticated by the session (Spring Security; anonymous → 302 to
//     /login); OriginHandshakeInterceptor's same-origin check (403);
//     AbstractHandshakeHandler's checks and messages (400s, 426); the
//     sub-protocol the first of the client's list among v10.stomp,
//     v11.stomp, v12.stomp; CsrfTokenHandshakeInterceptor copies the
//     session's raw CSRF token into the WebSocket session; permessage-deflate
//     as Tomcat offers it. The WebSocket session id is a random UUID.
//   - STOMP as StompSubProtocolHandler, StompDecoder and StompEncoder do it:
//     frames decoded strictly (unknown command, header without a colon,
//     bad escape, body on a frame that takes none, missing NUL after
//     content-length: an ERROR); XorCsrfChannelInterceptor wants a masked
//     token in CONNECT's X-CSRF-TOKEN; CONNECTED has version (the best of
//     accept-version), heart-beat:0,0 (the simple broker has no scheduler)
//     and user-name; MESSAGE frames have destination, content-type,
//     subscription, message-id (session id "-" a counter shared by all) and
//     content-length; the simple broker answers DISCONNECT with a RECEIPT if
//     it asked for one, else ERROR "Session closed."; any exception on the
//     inbound channel (a failed check of an interceptor) is an ERROR frame
//     with a message header, an empty body and content-length:0, and the
//     session closed with 1002 (PROTOCOL_ERROR). The simple broker sends no
//     RECEIPT for other frames: this app does it, as the known recipe of an
//     ExecutorChannelInterceptor on clientInboundChannel, after the
//     @MessageMapping handler handled a frame without an exception.
//   - Message security (@EnableWebSocketSecurity): nullDestMatcher()
//     authenticated; SUBSCRIBE to /topic/boards.{id} and SEND or SUBSCRIBE
//     to /app/boards/{id}/** only by the board's owner (an
//     AuthorizationManager on the id); anything else denyAll. A denial is an
//     AccessDeniedException on the inbound channel, so an ERROR and a close.
//     (An exception inside a @MessageMapping method with no
//     @MessageExceptionHandler sends nothing at all: Spring only logs it.
//     So a card that is not on the board, or a body that does not convert
//     or validate, gets no broadcast and no RECEIPT.)
//   - @MessageMapping("/boards/{boardId}/cards") and
//     ("/boards/{boardId}/cards/{cardId}/move") with @SendTo
//     "/topic/boards.{boardId}": Jackson JSON {"event","id","boardId",
//     "title","column","position"}; cards and boards have small
//     auto-increment ids shared by all users.
//
// Users are made on demand: NAME signs in with the password "pw-" + NAME.
// The visit starts at GET /boards?u=NAME.
//
// Counts, work: "sessions" (sign-ins), "boards created", "cards added",
// "cards moved", "boards deleted", "receipts" (RECEIPT frames sent),
// "logouts" (of a signed-in session), "login redirects" (anonymous requests
// sent to /login; one a visit). Refusals: "login refused" (302 to
// /login?error), "unknown session" (a JSESSIONID naming no live session; not counted for the icon, served to anyone),
// "403 csrf", "403 origin" (a WebSocket handshake from another origin), "404
// foreign" (another user's board), "404 missing", "404 route", "405 method",
// "400 bad request" (a non-numeric id), "400 firewall", "400 handshake" (a
// malformed upgrade of /ws: a 400, 405 or 426), "form invalid" (a blank board name, re-rendered),
// "stomp csrf" (CONNECT without a good token), "stomp foreign" (a SEND or
// SUBSCRIBE to another user's board), "stomp missing" (to a board that is
// not there, or a move of a card not on the board), "stomp denied" (a
// destination no rule allows), "stomp bad frame" (undecodable, before
// CONNECT, a second CONNECT, an unsupported version, over the size
// limits), "stomp invalid" (a body
// the controller cannot read), "stomp dropped" (a frame Spring logs and
// ignores: SUBSCRIBE without id or destination, SEND without destination or
// to an unmapped /app destination).
type SpringBoard struct {
	URL    string
	Counts Counts

	tb                  testing.TB // logs each refused move, for a test that fails
	change              SpringChange
	mu                  sync.Mutex
	sessions            map[string]*springSession // by JSESSIONID
	users               map[string]bool
	boards              map[int]*springBoardRow
	cards               map[int]*springCard
	lastBoard, lastCard int
	conns               map[*springConn]bool
	messageID           int64 // StompHeaderAccessor's messageIdCounter
	upgrader            websocket.Upgrader
	closed              bool
	wg                  sync.WaitGroup
}

type (
	springSession struct {
		user  string // the authenticated user, "" if anonymous
		csrf  string // HttpSessionCsrfTokenRepository's token, "" until needed
		saved string // SPRING_SECURITY_SAVED_REQUEST's redirect URL
	}
	springBoardRow struct{ owner, name string }
	springCard     struct {
		board         int
		title, column string
		position      int
	}
)

const (
	springCookie      = "JSESSIONID"
	springCSRFHeader  = "X-CSRF-TOKEN"
	springCSRFParam   = "_csrf"
	springHTML        = "text/html;charset=UTF-8"
	springClearCookie = springCookie + "=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:10 GMT; Path=/"
)

// springSecurityHeaders are HeaderWriterFilter's defaults over plain HTTP.
var springSecurityHeaders = [][2]string{ //nolint:gochecknoglobals // constant table
	{"X-Content-Type-Options", "nosniff"}, {"X-XSS-Protection", "0"},
	{"Cache-Control", "no-cache, no-store, max-age=0, must-revalidate"}, {"Pragma", "no-cache"},
	{"Expires", "0"}, {"X-Frame-Options", "DENY"},
}

// SpringChange is what a new build of a SpringBoard does otherwise,
// counted as it applies ("build: ..."), so that a comparison of the builds
// can be held to find exactly it.
type SpringChange struct {
	// SnakeCase is spring.jackson.property-naming-strategy=SNAKE_CASE:
	// the card events broadcast over STOMP name boardId board_id. Counted
	// "build: snake case", one per event encoded.
	SnakeCase bool
}

// NewSpringBoard starts a SpringBoard on loopback until the test ends.
func NewSpringBoard(tb testing.TB) *SpringBoard { return NewSpringBoardBuild(tb, SpringChange{}) }

// NewSpringBoardBuild starts a SpringBoard that makes change (a new build
// of it) on loopback until the test ends.
func NewSpringBoardBuild(tb testing.TB, change SpringChange) *SpringBoard {
	a := &SpringBoard{tb: tb, change: change, sessions: map[string]*springSession{}, users: map[string]bool{}, boards: map[int]*springBoardRow{},
		cards: map[int]*springCard{}, conns: map[*springConn]bool{}}
	// The Origin is checked before, as OriginHandshakeInterceptor does;
	// Tomcat offers permessage-deflate.
	a.upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }, EnableCompression: true,
		HandshakeTimeout: 10 * time.Second}
	srv := httptest.NewServer(a)
	tb.Cleanup(func() {
		srv.Close()
		a.mu.Lock() // hijacked connections outlive srv.Close: end them
		a.closed = true
		for x := range a.conns {
			x.ws.Close()
		}
		a.mu.Unlock()
		a.wg.Wait()
	})
	a.URL = srv.URL
	return a
}

// Users returns the names of the users who signed in, sorted.
func (a *SpringBoard) Users() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Sorted(maps.Keys(a.users))
}

func springRandom(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// springUUID is UUID.randomUUID().toString().
func springUUID() string {
	b := springRandom(16)
	b[6], b[8] = b[6]&0x0f|0x40, b[8]&0x3f|0x80
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// springMask is XorCsrfTokenRequestAttributeHandler's createXoredCsrfToken.
func springMask(token string) string {
	random := springRandom(len(token))
	out := make([]byte, 2*len(token))
	copy(out, random)
	for i := range len(token) {
		out[len(token)+i] = token[i] ^ random[i]
	}
	return base64.URLEncoding.EncodeToString(out)
}

// springUnmask is XorCsrfTokenUtils.getTokenValue: the token a masked value
// stands for, or "" (null) if it is not base64url of twice its length.
func springUnmask(masked, token string) string {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(masked, "="))
	if err != nil || len(b) != 2*len(token) || len(token) == 0 {
		return ""
	}
	out := make([]byte, len(token))
	for i := range out {
		out[i] = b[i] ^ b[len(token)+i]
	}
	return string(out)
}

// springEsc is Thymeleaf's th:text and attribute escaping.
func springEsc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&#39;").Replace(s)
}

// springCall is one request on its way through the filter chain.
type springCall struct {
	a      *SpringBoard
	w      http.ResponseWriter
	r      *http.Request
	sid    string // the session's id, "" if none
	sess   *springSession
	masked string // this request's masked CSRF token, once rendered
	after  func() // run once the lock is let go: the WebSocket
}

func (a *SpringBoard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	c := &springCall{a: a, w: w, r: r}
	c.serve()
	a.mu.Unlock()
	if c.after != nil {
		c.after()
	}
}

func (c *springCall) serve() {
	for _, h := range springSecurityHeaders {
		c.w.Header().Set(h[0], h[1])
	}
	stale := c.loadSession()
	if springRejected(c.r) { // StrictHttpFirewall, before any filter
		c.fail(http.StatusBadRequest, "400 firewall")
		return
	}
	path, get := c.r.URL.Path, c.r.Method == http.MethodGet || c.r.Method == http.MethodHead
	if path == "/favicon.ico" && get { // static/favicon.ico, permitted
		c.w.Header().Set("Content-Type", "image/x-icon")
		c.w.Header().Set("Content-Length", strconv.Itoa(len(springFavicon)))
		c.w.WriteHeader(http.StatusOK)
		_, _ = c.w.Write(springFavicon)
		return
	}
	// A refusal only where the session was needed: a browser fetches the
	// icon with the cookie it had when it began, which a login begun
	// before may have changed (changeSessionId) by the time it arrives.
	if stale {
		c.a.Counts.Add("unknown session", 1)
	}
	switch c.r.Method { // CsrfFilter's DefaultRequiresCsrfMatcher
	case http.MethodGet, http.MethodHead, http.MethodTrace, http.MethodOptions:
	default:
		if !c.csrfOK() {
			c.fail(http.StatusForbidden, "403 csrf")
			return
		}
	}
	switch {
	case c.r.Method == http.MethodPost && path == "/logout": // LogoutFilter
		c.logout()
		return
	case c.r.Method == http.MethodPost && path == "/login": // UsernamePasswordAuthenticationFilter
		c.login()
		return
	}
	if c.sess != nil && c.sess.saved != "" && get && c.r.URL.Query().Has("continue") && // RequestCacheAwareFilter
		c.sess.saved == "http://"+springHost(c.r)+c.r.URL.RequestURI() {
		c.sess.saved = ""
	}
	if path != "/login" && c.user() == "" { // AuthorizationFilter: anyRequest().authenticated()
		c.toLogin()
		return
	}
	c.route()
}

// springRejected is what StrictHttpFirewall refuses in a request's path.
func springRejected(r *http.Request) bool {
	raw := r.URL.EscapedPath()
	low := strings.ToLower(raw)
	if strings.ContainsAny(raw, ";\\") || strings.Contains(raw, "//") || strings.Contains(low, "%2f") ||
		strings.Contains(low, "%25") || strings.Contains(low, "%3b") || strings.Contains(low, "%5c") || strings.Contains(low, "%2e") {
		return true
	}
	for _, seg := range strings.Split(r.URL.Path, "/") {
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}

// springHost is the host and port of request.getServerName and
// getServerPort as a URL has them: no port when it is 80.
func springHost(r *http.Request) string {
	return strings.TrimSuffix(r.Host, ":80")
}

func (c *springCall) user() string {
	if c.sess == nil {
		return ""
	}
	return c.sess.user
}

// loadSession finds the session of the first JSESSIONID cookie that names a
// live one, as Tomcat does, and says whether a cookie named one no longer
// live.
func (c *springCall) loadSession() (stale bool) {
	for _, k := range c.r.Cookies() {
		if k.Name != springCookie {
			continue
		}
		if s := c.a.sessions[k.Value]; s != nil {
			c.sid, c.sess = k.Value, s
			return
		}
		stale = true
	}
	return stale
}

// session is request.getSession(): the session, made if there is none.
func (c *springCall) session() *springSession {
	if c.sess == nil {
		c.sess = &springSession{}
		c.newID()
	}
	return c.sess
}

// newID gives the session a new id (a new session, or changeSessionId) and
// sends it in a cookie.
func (c *springCall) newID() {
	if c.sid != "" {
		delete(c.a.sessions, c.sid)
	}
	c.sid = strings.ToUpper(hex.EncodeToString(springRandom(16)))
	c.a.sessions[c.sid] = c.sess
	c.w.Header().Add("Set-Cookie", springCookie+"="+c.sid+"; Path=/; HttpOnly")
}

// csrfToken is the deferred token's get(): the session's, else a new one
// saved in the session; and whether it was made now.
func (c *springCall) csrfToken() (string, bool) {
	if c.sess != nil && c.sess.csrf != "" {
		return c.sess.csrf, false
	}
	c.session().csrf = springUUID()
	return c.sess.csrf, true
}

// token is ${_csrf.token}: the masked token, the same all through one
// request (CachedCsrfTokenSupplier).
func (c *springCall) token() string {
	if c.masked == "" {
		raw, _ := c.csrfToken()
		c.masked = springMask(raw)
	}
	return c.masked
}

// csrfOK is CsrfFilter's check: the header, else the parameter (query
// first, as getParameter reads it), unmasked, against the session's token.
func (c *springCall) csrfOK() bool {
	raw, _ := c.csrfToken()
	actual, ok := "", false
	if v := c.r.Header.Values(springCSRFHeader); len(v) > 0 {
		actual, ok = v[0], true
	} else if v := c.r.URL.Query()[springCSRFParam]; len(v) > 0 {
		actual, ok = v[0], true
	} else if v := c.postForm()[springCSRFParam]; len(v) > 0 {
		actual, ok = v[0], true
	}
	got := springUnmask(actual, raw)
	return ok && subtle.ConstantTimeCompare([]byte(got), []byte(raw)) == 1
}

func (c *springCall) postForm() url.Values {
	ct, _, _ := mime.ParseMediaType(c.r.Header.Get("Content-Type"))
	if ct == "multipart/form-data" {
		_ = c.r.ParseMultipartForm(1 << 20)
	} else {
		_ = c.r.ParseForm()
	}
	return c.r.PostForm
}

// param is request.getParameter.
func (c *springCall) param(name string) (string, bool) {
	if v := c.r.URL.Query()[name]; len(v) > 0 {
		return v[0], true
	}
	if v := c.postForm()[name]; len(v) > 0 {
		return v[0], true
	}
	return "", false
}

func (c *springCall) redirect(loc string) {
	c.w.Header().Set("Location", loc)
	c.w.Header().Set("Content-Length", "0")
	c.w.WriteHeader(http.StatusFound)
}

// toLogin is ExceptionTranslationFilter's sendStartAuthentication: save the
// request if HttpSessionRequestCache's matcher takes it, and send to the
// login page.
func (c *springCall) toLogin() {
	if c.r.Method == http.MethodGet && springSavable(c.r) {
		q := "continue" // DefaultSavedRequest's createQueryString
		if c.r.URL.RawQuery != "" {
			q = strings.TrimPrefix(springKeepOrder(c.r.URL.RawQuery, "continue")+"&continue", "&")
		}
		c.session().saved = "http://" + springHost(c.r) + c.r.URL.EscapedPath() + "?" + q
	}
	c.a.Counts.Add("login redirects", 1)
	c.redirect("http://" + springHost(c.r) + "/login")
}

// springKeepOrder is a query string without the parameter name, the rest
// as it came.
func springKeepOrder(q, name string) string {
	var kept []string
	for _, p := range strings.Split(q, "&") {
		if k, _, _ := strings.Cut(p, "="); k != name && p != "" {
			kept = append(kept, p)
		}
	}
	return strings.Join(kept, "&")
}

// springSavable is RequestCacheConfigurer's default matcher: not the
// favicon, not X-Requested-With XMLHttpRequest, and an Accept (*/* aside)
// for none of application/json, multipart/form-data, text/event-stream.
func springSavable(r *http.Request) bool {
	if strings.HasPrefix(r.URL.Path, "/favicon.") || r.Header.Get("X-Requested-With") == "XMLHttpRequest" {
		return false
	}
	for _, part := range strings.Split(strings.Join(r.Header.Values("Accept"), ","), ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil || mt == "*/*" {
			continue
		}
		t, s, _ := strings.Cut(mt, "/")
		for _, no := range []string{"application/json", "multipart/form-data", "text/event-stream"} {
			nt, ns, _ := strings.Cut(no, "/")
			if (t == nt || t == "*") && (s == ns || s == "*") {
				return false
			}
		}
	}
	return true
}

// login is the authentication filter with its success and failure handlers.
func (c *springCall) login() {
	name, _ := c.param("username")
	name = strings.TrimSpace(name)
	pw, _ := c.param("password")
	if name == "" || pw != "pw-"+name {
		c.a.Counts.Add("login refused", 1)
		c.redirect("/login?error")
		return
	}
	s := c.session()
	c.newID()   // ChangeSessionIdAuthenticationStrategy
	s.csrf = "" // CsrfAuthenticationStrategy
	s.user = name
	c.a.users[name] = true
	c.a.Counts.Add("sessions", 1)
	if s.saved != "" { // SavedRequestAwareAuthenticationSuccessHandler
		c.redirect(s.saved)
		return
	}
	c.redirect("/")
}

func (c *springCall) logout() {
	if c.user() != "" {
		c.a.Counts.Add("logouts", 1)
	}
	if c.sess != nil {
		delete(c.a.sessions, c.sid)
		c.sess, c.sid = nil, ""
	}
	c.w.Header().Add("Set-Cookie", springClearCookie)
	c.redirect("/login?logout")
}

// route is the DispatcherServlet's handler mappings.
func (c *springCall) route() {
	path, m := c.r.URL.Path, c.r.Method
	if m == http.MethodHead {
		m = http.MethodGet
	}
	segs := strings.Split(strings.TrimPrefix(path, "/"), "/")
	allow := ""
	switch {
	case path == "/":
		if allow = "GET"; m == http.MethodGet {
			c.redirect("/boards")
			return
		}
	case path == "/login":
		if allow = "GET"; m == http.MethodGet {
			c.loginPage()
			return
		}
	case path == "/ws":
		if allow = "GET"; m == http.MethodGet {
			c.handshake()
			return
		}
	case path == "/boards":
		switch allow = "GET,POST"; m {
		case http.MethodGet:
			c.boardList("", false)
			return
		case http.MethodPost:
			c.boardCreate()
			return
		}
	case len(segs) == 2 && segs[0] == "boards" || len(segs) == 3 && segs[0] == "boards" && segs[2] == "delete":
		allow = map[int]string{2: "GET", 3: "POST"}[len(segs)]
		if allow != m {
			break
		}
		id, err := strconv.ParseInt(segs[1], 10, 64)
		if err != nil { // MethodArgumentTypeMismatchException
			c.fail(http.StatusBadRequest, "400 bad request")
			return
		}
		b := c.find(id)
		if b == nil {
			return
		}
		if len(segs) == 2 {
			c.boardPage(int(id), b)
		} else {
			c.boardDelete(int(id))
		}
		return
	default:
		c.fail(http.StatusNotFound, "404 route")
		return
	}
	c.w.Header().Set("Allow", allow)
	c.fail(http.StatusMethodNotAllowed, "405 method")
}

// find is boards.findById(id).filter(owned).orElseThrow(404).
func (c *springCall) find(id int64) *springBoardRow {
	b := c.a.boards[int(id)]
	switch {
	case id < 1 || id > 1<<31 || b == nil:
		c.fail(http.StatusNotFound, "404 missing")
	case b.owner != c.user():
		c.fail(http.StatusNotFound, "404 foreign")
	default:
		return b
	}
	return nil
}

func (c *springCall) boardCreate() {
	name, _ := c.param("name")
	if strings.TrimSpace(name) == "" { // @NotBlank
		c.a.Counts.Add("form invalid", 1)
		c.boardList(name, true)
		return
	}
	c.a.lastBoard++
	c.a.boards[c.a.lastBoard] = &springBoardRow{owner: c.user(), name: name}
	c.a.Counts.Add("boards created", 1)
	c.redirect("/boards/" + strconv.Itoa(c.a.lastBoard))
}

func (c *springCall) boardDelete(id int) {
	delete(c.a.boards, id)
	for cid, k := range c.a.cards {
		if k.board == id {
			delete(c.a.cards, cid)
		}
	}
	c.a.Counts.Add("boards deleted", 1)
	c.redirect("/boards")
}

// contentLanguage is what Tomcat writes for the locale DispatcherServlet
// sets: AcceptHeaderLocaleResolver's, else the JVM's.
func (c *springCall) contentLanguage() string {
	l := strings.TrimSpace(strings.Split(strings.Split(c.r.Header.Get("Accept-Language"), ",")[0], ";")[0])
	if l == "" || l == "*" {
		return "en-US"
	}
	return l
}

func (c *springCall) send(status int, ctype, body string) {
	h := c.w.Header()
	h.Set("Content-Type", ctype)
	if ctype == springHTML {
		h.Set("Content-Language", c.contentLanguage())
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	c.w.WriteHeader(status)
	_, _ = c.w.Write([]byte(body))
}

// fail counts a refusal and answers as Spring Boot's BasicErrorController
// does after sendError.
func (c *springCall) fail(status int, count string) {
	if count != "" {
		c.a.Counts.Add(count, 1)
	}
	path, _, _ := strings.Cut(c.r.RequestURI, "?")
	now, reason := time.Now().UTC(), http.StatusText(status)
	if springWantsHTML(c.r) {
		c.send(status, springHTML, "<html><body><h1>Whitelabel Error Page</h1><p>This application has no explicit mapping for /error, so you are seeing this as a fallback.</p><div id='created'>"+
			now.Format("Mon Jan 02 15:04:05 MST 2006")+"</div><div>There was an unexpected error (type="+springEsc(reason)+", status="+strconv.Itoa(status)+").</div></body></html>")
		return
	}
	p, _ := json.Marshal(path)
	c.send(status, "application/json", fmt.Sprintf(`{"timestamp":"%s","status":%d,"error":"%s","path":%s}`,
		now.Format("2006-01-02T15:04:05.000-07:00"), status, reason, p))
}

// springWantsHTML is whether BasicErrorController's errorHtml (produces
// text/html) is chosen: the Accept names text/html.
func springWantsHTML(r *http.Request) bool {
	for _, part := range strings.Split(strings.Join(r.Header.Values("Accept"), ","), ",") {
		if mt, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && (mt == "text/html" || mt == "text/*") {
			return true
		}
	}
	return false
}

// springFavicon is static/favicon.ico: a 1×1 icon.
var springFavicon = func() []byte { //nolint:gochecknoglobals // constant
	b, _ := base64.StdEncoding.DecodeString("AAABAAEAAQEAAAEAIAAwAAAAFgAAACgAAAABAAAAAgAAAAEAIAAAAAAABAAAAAAAAAAAAAAAAAAAAAAAAAAAAHb/AAAAAA==")
	return b
}()
