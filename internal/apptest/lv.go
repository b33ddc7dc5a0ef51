package apptest

import (
	"cmp"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"maps"
	"math"
	"net"
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

// LiveView is a backend that answers, on the wire, as a Phoenix 1.7 app
// with LiveView 1.0 (1.0.17) and `mix phx.gen.auth Accounts User users
// --no-live` does: a todo list at /todos, a LiveView, behind the generated
// log-in. What it follows, and where from (read in phoenix v1.7.14,
// phoenix_live_view v1.0.17, plug and plug_crypto main):
//
//   - The session is Plug.Session's cookie store, signed, not encrypted:
//     cookie _app_key, path=/; HttpOnly; SameSite=Lax, written only in
//     answers that changed the session. Its value is what
//     Plug.Crypto.MessageVerifier.sign makes since plug_crypto 1.0:
//     "SFMyNTY" (base64url of "HS256"), ".", base64url of the payload, ".",
//     base64url of the HMAC-SHA256 of the first two parts (the older
//     "<base64>--<signature>" form is Plug before 1.7; Phoenix 1.7 never
//     writes it). The payload is :erlang.term_to_binary of the session map,
//     in Erlang's external term format, the key derived from
//     secret_key_base and the signing salt by KeyGenerator (PBKDF2-SHA256,
//     1000 rounds, 32 bytes). A cookie that does not verify is an empty
//     session, as Plug does.
//   - CSRF is Plug.CSRFProtection: the session keeps "_csrf_token",
//     base64url of 18 random bytes (24 characters); a page carries it
//     masked (base64url of it XOR a fresh 24-character mask, then the
//     mask: 56 characters), the same masked token everywhere in one
//     answer, a new one in each: the <meta name="csrf-token">, each form's
//     hidden _csrf_token and the data-csrf of a data-method link. A POST
//     (DELETE by Plug.MethodOverride's _method) without a good _csrf_token
//     field or x-csrf-token header is Plug.CSRFProtection.
//     InvalidCSRFTokenError: 403, "Forbidden", counted "csrf refused".
//   - phx.gen.auth: GET /users/log_in (the controller form: user[email],
//     user[password], user[remember_me], _csrf_token), POST /users/log_in
//     (a good one renews the session, puts user_token, 32 random bytes, and
//     live_socket_id "users_sessions:<base64url token>" in it, flashes
//     "Welcome back!" and answers 302 to user_return_to, else /; a bad one
//     renders the form again, 200, "Invalid email or password"), DELETE
//     /users/log_out (a form POST with _method=delete, as phoenix_html's
//     data-method link makes it: deletes the token, disconnects the
//     user's LiveView sockets, renews the session, flashes "Logged out
//     successfully." and answers 302 to /). An anonymous GET /todos
//     flashes "You must log in to access this page.", keeps
//     user_return_to (the path and query) and answers 302 to
//     /users/log_in. Redirects are Phoenix's: a relative Location and "You
//     are being redirected" body. Emails are NAME@example.test, passwords
//     "pw-" + NAME; users are made at their first log-in. One thing the
//     generator does not do: the log-in form's email is prefilled from the
//     u of user_return_to (a login hint), so that a browser sent from
//     /todos?u=NAME knows who it is.
//   - The LiveView's dead render is <div id="phx-..." data-phx-main
//     data-phx-session="..." data-phx-static="..."> as
//     Phoenix.LiveView.Static makes it: both Phoenix.Token.sign with the
//     LiveView signing salt ({6, data}, signed_at in ms, max_age 86400,
//     checked with 2 weeks), data-phx-session holding id, view, root_view,
//     router, live_session_name, parent_pid, root_pid and session,
//     data-phx-static the id, the flash and the assign_new keys.
//   - The LiveView socket is Phoenix.Socket at /live/websocket with the
//     V2 JSON serializer (vsn=2.0.x, else 403) and check_origin: :conn
//     (another Origin host is a 403; both counted "ws refused"); its
//     session is read from the cookie only if the _csrf_token query
//     parameter matches the session's (else it has none: counted "ws no
//     session"). Frames are [join_ref, ref, topic, event, payload]: a
//     heartbeat on "phoenix" is answered ok; phx_join on lv:<id> is
//     mounted as LiveView's channel does: a session token that does not
//     verify, is for another id, or a socket without a session is
//     {"reason":"stale"}, a url that is not this LiveView's route is
//     {"reason":"unauthorized"}, a session whose user_token is gone is
//     {"redirect":{"to":"/users/log_in",...}} (on_mount
//     :ensure_authenticated) — all "join refused". Here
//     the live_session also signs the user's id into data-phx-session
//     (session: {UserAuth, :live_session, []}) and on_mount refuses, as
//     unauthorized, a socket of another user: a render's tokens are good
//     only for its user. A good join answers {"rendered": ...,
//     "liveview_version": "1.0.17"}, a rendered tree of statics ("s") and
//     dynamics with a comprehension ("d") of the todos (each row has the
//     id in id="todo-<id>" and in phx-value-id="<id>"), and each event
//     answers {"diff": ...} with what changed, as change tracking does.
//     Events: form "save" (value "todo%5Btitle%5D=..."), click "toggle"
//     and "delete" (value {"id": "<id>"}). Todos have small
//     auto-increment ids shared by all users; one that is another user's
//     (or missing) raises in the LiveView as get_todo! does, which crashes
//     its channel: the client gets phx_error on the topic, and later pushes
//     to that topic get {"reason":"unmatched topic"}. Phoenix's idle
//     timeout closes a socket silent for 60 s.
//
// Counts: "sessions" (log-ins), "login refused" (a wrong email or password,
// or no user params), "login redirects" (anonymous requests sent to log
// in), "csrf refused" (403), "ws refused" (a socket refused at its
// upgrade), "ws no session" (a socket whose session could not be read:
// no or a bad cookie or _csrf_token), "joins", "join refused", "todos
// created", "todos toggled", "todos deleted", "todo invalid" (a blank
// title, shown as an error), "foreign todo" (another user's), "missing
// todo", "bad event" (an event the LiveView has no clause for, or of a bad
// shape: its channel crashes), "unmatched topic" (a push to a topic not
// joined), "bad message" (a frame that is not a V2 message: the socket
// closes), "logouts", "logout without session", "login while logged in"
// (a log-in post sent to / instead), "404". All but "sessions", "joins",
// "todos ...", "logouts" are refusals.
type LiveView struct {
	URL    string
	Counts Counts

	mu                 sync.Mutex
	sessKey, viewKey   []byte // Plug.Session's signing key; LiveView's token key
	flashKey           []byte
	users              map[string]int // who logged in → user id
	emails             map[int]string
	tokens             map[string]int // users_tokens: session token → user id
	todos              map[int]*lvTodo
	sockets            map[string]map[*lvConn]bool // live_socket_id → open sockets
	lastUser, lastTodo int
}

type lvTodo struct {
	owner int
	title string
	done  bool
}

const (
	lvSecretKeyBase = "Zk3mQ9vT2xLp8rWc5nHb1yJd7sFg4aKe6uNq0oRi9tVw3zXc2bMn5lPo8kJh1gFdXyZ0"
	lvSessionSalt   = "Hc9Xq2Lm"     // endpoint session_options signing_salt
	lvViewSalt      = "7rTz1KpWv3Qa" // config :live_view, signing_salt
	lvCookie        = "_app_key"     // session_options key
	lvVersion       = "1.0.17"       // phoenix_live_view
	lvTokenVsn      = 6              // Phoenix.LiveView.Static's @token_vsn
	lvMaxAge        = 1_209_600      // @max_session_age, seconds
	lvViewModule    = "Elixir.AppWeb.TodoLive.Index"
	lvRouter        = "Elixir.AppWeb.Router"
	lvLiveSession   = "require_authenticated_user"
	lvIdleTimeout   = 60 * time.Second // Phoenix.Transports.WebSocket's timeout
	lvMustLogIn     = "You must log in to access this page."
	lvTokenChars    = 24 // Plug.CSRFProtection's @encoded_token_size
	lvMaskedChars   = 32 // @double_encoded_token_size
	lvPageTitle     = "Listing Todos"
	lvSessionPrefix = "users_sessions:"
)

// NewLiveView starts a LiveView on loopback until the test ends.
func NewLiveView(tb testing.TB) *LiveView {
	a := &LiveView{users: map[string]int{}, emails: map[int]string{}, tokens: map[string]int{}, todos: map[int]*lvTodo{},
		sockets: map[string]map[*lvConn]bool{}}
	a.sessKey, a.viewKey, a.flashKey = lvKey(lvSessionSalt), lvKey(lvViewSalt), lvKey("flash:"+lvViewSalt)
	srv := httptest.NewServer(a)
	tb.Cleanup(srv.Close)
	a.URL = srv.URL
	return a
}

// lvKey is Plug.Crypto.KeyGenerator.generate(secret_key_base, salt).
func lvKey(salt string) []byte {
	k, _ := pbkdf2.Key(sha256.New, lvSecretKeyBase, []byte(salt), 1000, 32)
	return k
}

// Users returns the names of the users who logged in, sorted.
func (a *LiveView) Users() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Sorted(maps.Keys(a.users))
}

func lvRandom(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// lvEsc is Phoenix.HTML's html_escape.
func lvEsc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&#39;").Replace(s)
}

// --- Erlang's external term format, the part sessions and tokens use ---

type (
	lvAtom  string // an atom; nil, true and false are Go's nil, true, false
	lvTuple []any
)

// lvETF is :erlang.term_to_binary of v as OTP 26 writes it: binaries
// (Go strings), UTF-8 small atoms, integers, tuples, lists ([]any) and
// maps (map[any]any, keys in term order).
func lvETF(v any) []byte { return lvETFAppend([]byte{131}, v) }

func lvETFAppend(b []byte, v any) []byte {
	switch v := v.(type) {
	case nil:
		return lvETFAppend(b, lvAtom("nil"))
	case bool:
		return lvETFAppend(b, lvAtom(strconv.FormatBool(v)))
	case lvAtom:
		return append(append(b, 119, byte(len(v))), v...) // SMALL_ATOM_UTF8_EXT
	case string:
		return append(binary.BigEndian.AppendUint32(append(b, 109), uint32(len(v))), v...) // BINARY_EXT
	case int:
		return lvETFAppend(b, int64(v))
	case int64:
		switch {
		case v >= 0 && v <= 255:
			return append(b, 97, byte(v)) // SMALL_INTEGER_EXT
		case v >= math.MinInt32 && v <= math.MaxInt32:
			return binary.BigEndian.AppendUint32(append(b, 98), uint32(int32(v))) // INTEGER_EXT
		}
		sign, m := byte(0), uint64(v)
		if v < 0 {
			sign, m = 1, uint64(-v)
		}
		var digits []byte
		for ; m > 0; m >>= 8 {
			digits = append(digits, byte(m))
		}
		return append(append(b, 110, byte(len(digits)), sign), digits...) // SMALL_BIG_EXT
	case lvTuple:
		b = append(b, 104, byte(len(v))) // SMALL_TUPLE_EXT
		for _, e := range v {
			b = lvETFAppend(b, e)
		}
		return b
	case []any:
		if len(v) == 0 {
			return append(b, 106) // NIL_EXT
		}
		b = binary.BigEndian.AppendUint32(append(b, 108), uint32(len(v))) // LIST_EXT
		for _, e := range v {
			b = lvETFAppend(b, e)
		}
		return append(b, 106)
	case map[any]any:
		b = binary.BigEndian.AppendUint32(append(b, 116), uint32(len(v))) // MAP_EXT
		for _, k := range slices.SortedFunc(maps.Keys(v), lvTermCompare) {
			b = lvETFAppend(lvETFAppend(b, k), v[k])
		}
		return b
	}
	panic(fmt.Sprintf("lvETF: %T", v))
}

// lvTermCompare is Erlang's term order for map keys: number < atom <
// tuple < map < list < binary.
func lvTermCompare(x, y any) int {
	rank := func(v any) int {
		switch v.(type) {
		case int64, int:
			return 1
		case lvAtom, nil, bool:
			return 2
		case lvTuple:
			return 6
		case map[any]any:
			return 7
		case []any:
			return 9
		}
		return 10
	}
	if r := cmp.Compare(rank(x), rank(y)); r != 0 {
		return r
	}
	if i, ok := x.(int64); ok {
		j, _ := y.(int64)
		return cmp.Compare(i, j)
	}
	return strings.Compare(fmt.Sprint(x), fmt.Sprint(y))
}

var errLvETF = errors.New("not a term")

// lvUnETF is Plug.Crypto.non_executable_binary_to_term: the terms lvETF
// writes, latin-1 atoms, strings and large tuples; no funs, pids or floats.
func lvUnETF(b []byte) (any, error) {
	if len(b) == 0 || b[0] != 131 {
		return nil, errLvETF
	}
	r := &lvETFReader{b: b[1:]}
	v := r.term(0)
	if r.bad || len(r.b) != 0 {
		return nil, errLvETF
	}
	return v, nil
}

type lvETFReader struct {
	b   []byte
	bad bool
}

func (r *lvETFReader) take(n int) []byte {
	if r.bad || n < 0 || n > len(r.b) {
		r.bad = true
		return make([]byte, max(n, 0))
	}
	p := r.b[:n]
	r.b = r.b[n:]
	return p
}

func (r *lvETFReader) u32() int { return int(binary.BigEndian.Uint32(r.take(4))) }

func (r *lvETFReader) term(depth int) any {
	if depth > 32 {
		r.bad = true
		return nil
	}
	tag := r.take(1)[0]
	switch tag {
	case 97:
		return int64(r.take(1)[0])
	case 98:
		return int64(int32(binary.BigEndian.Uint32(r.take(4))))
	case 110, 111:
		n := int(r.take(1)[0])
		if tag == 111 {
			n = r.u32()
		}
		sign, digits := r.take(1)[0], r.take(n)
		var m uint64
		for i := len(digits) - 1; i >= 0; i-- {
			if m > math.MaxInt64>>8 {
				r.bad = true
				return nil
			}
			m = m<<8 | uint64(digits[i])
		}
		if sign == 1 {
			return -int64(m)
		}
		return int64(m)
	case 100, 118, 115, 119: // atoms
		n := 0
		if tag == 100 || tag == 118 {
			n = int(binary.BigEndian.Uint16(r.take(2)))
		} else {
			n = int(r.take(1)[0])
		}
		switch a := string(r.take(n)); a {
		case "nil":
			return nil
		case "true", "false":
			return a == "true"
		default:
			return lvAtom(a)
		}
	case 109:
		return string(r.take(r.u32()))
	case 104, 105:
		n := int(r.take(1)[0])
		if tag == 105 {
			n = r.u32()
		}
		if n > len(r.b) {
			r.bad = true
			return nil
		}
		t := make(lvTuple, 0, n)
		for range n {
			t = append(t, r.term(depth+1))
		}
		return t
	case 106:
		return []any{}
	case 107:
		s := r.take(int(binary.BigEndian.Uint16(r.take(2))))
		l := make([]any, len(s))
		for i, c := range s {
			l[i] = int64(c)
		}
		return l
	case 108:
		n := r.u32()
		if n > len(r.b) {
			r.bad = true
			return nil
		}
		l := make([]any, 0, n)
		for range n {
			l = append(l, r.term(depth+1))
		}
		if tail := r.term(depth + 1); !r.bad {
			if t, ok := tail.([]any); !ok || len(t) != 0 { // an improper list
				r.bad = true
			}
		}
		return l
	case 116:
		n := r.u32()
		if n > len(r.b) {
			r.bad = true
			return nil
		}
		m := make(map[any]any, n)
		for range n {
			k := r.term(depth + 1)
			switch k.(type) {
			case string, lvAtom, int64, nil, bool:
			default:
				r.bad = true
				return nil
			}
			m[k] = r.term(depth + 1)
		}
		return m
	}
	r.bad = true
	return nil
}

// --- Plug.Crypto ---

const lvProtected = "SFMyNTY" // base64url("HS256"), MessageVerifier's header

var lvB64 = base64.RawURLEncoding //nolint:gochecknoglobals // constant

// lvSign is Plug.Crypto.MessageVerifier.sign(payload, key).
func lvSign(key, payload []byte) string {
	plain := lvProtected + "." + lvB64.EncodeToString(payload)
	m := hmac.New(sha256.New, key)
	m.Write([]byte(plain))
	return plain + "." + lvB64.EncodeToString(m.Sum(nil))
}

// lvVerify is MessageVerifier.verify: the payload, or false.
func lvVerify(key []byte, signed string) ([]byte, bool) {
	parts := strings.Split(signed, ".")
	if len(parts) != 3 || parts[0] != lvProtected {
		return nil, false
	}
	payload, err1 := lvB64.DecodeString(parts[1])
	sig, err2 := lvB64.DecodeString(parts[2])
	m := hmac.New(sha256.New, key)
	m.Write([]byte(parts[0] + "." + parts[1]))
	return payload, err1 == nil && err2 == nil && hmac.Equal(sig, m.Sum(nil))
}

// lvToken is Phoenix.Token.sign: {data, signed_at_ms, 86400}, signed.
func lvToken(key []byte, data any) string {
	return lvSign(key, lvETF(lvTuple{data, time.Now().UnixMilli(), int64(86400)}))
}

// lvUntoken is Phoenix.Token.verify with max_age: the data, or false for
// a token that does not verify or has expired.
func lvUntoken(key []byte, token string, maxAge int64) (any, bool) {
	payload, ok := lvVerify(key, token)
	if !ok {
		return nil, false
	}
	t, err := lvUnETF(payload)
	tup, _ := t.(lvTuple)
	if err != nil || len(tup) != 3 {
		return nil, false
	}
	signed, ok := tup[1].(int64)
	return tup[0], ok && signed+maxAge*1000 >= time.Now().UnixMilli()
}

// --- Plug.CSRFProtection ---

func lvCSRFSecret() string { return base64.URLEncoding.EncodeToString(lvRandom(18)) }

func lvXor(a, b []byte) []byte {
	out := make([]byte, len(a))
	for i := range a {
		out[i] = a[i] ^ b[i]
	}
	return out
}

// lvMask masks the session's token with a fresh mask.
func lvMask(state string) string {
	mask := lvCSRFSecret()
	return base64.URLEncoding.EncodeToString(lvXor([]byte(state), []byte(mask))) + mask
}

// lvValidCSRF is valid_state_and_csrf_token?.
func lvValidCSRF(state, token string) bool {
	if len(state) != lvTokenChars || len(token) != lvMaskedChars+lvTokenChars {
		return false
	}
	user, err := base64.URLEncoding.DecodeString(token[:lvMaskedChars])
	return err == nil && len(user) == lvTokenChars &&
		subtle.ConstantTimeCompare(lvXor([]byte(state), user), []byte(token[lvMaskedChars:])) == 1
}

// --- the session ---

// lvSession is the session map as the cookie keeps it.
type lvSession struct {
	CSRF, UserToken, LiveSocketID, ReturnTo string
	Flash                                   map[string]string // phoenix_flash
}

func (s *lvSession) term() map[any]any {
	m := map[any]any{}
	for k, v := range map[string]string{"_csrf_token": s.CSRF, "user_token": s.UserToken, "live_socket_id": s.LiveSocketID, "user_return_to": s.ReturnTo} {
		if v != "" {
			m[k] = v
		}
	}
	if len(s.Flash) > 0 {
		f := map[any]any{}
		for k, v := range s.Flash {
			f[k] = v
		}
		m["phoenix_flash"] = f
	}
	return m
}

// seal is the cookie store's put.
func (a *LiveView) seal(s *lvSession) string { return lvSign(a.sessKey, lvETF(s.term())) }

// open is the cookie store's get: nil if the cookie does not verify.
func (a *LiveView) open(v string) *lvSession {
	payload, ok := lvVerify(a.sessKey, v)
	if !ok {
		return nil
	}
	t, err := lvUnETF(payload)
	m, _ := t.(map[any]any)
	if err != nil || m == nil {
		return &lvSession{} // could not decode: an empty session
	}
	str := func(k string) string { s, _ := m[k].(string); return s }
	s := &lvSession{CSRF: str("_csrf_token"), UserToken: str("user_token"), LiveSocketID: str("live_socket_id"), ReturnTo: str("user_return_to")}
	if f, ok := m["phoenix_flash"].(map[any]any); ok {
		s.Flash = map[string]string{}
		for k, v := range f {
			ks, _ := k.(string)
			vs, _ := v.(string)
			s.Flash[ks] = vs
		}
	}
	return s
}

// --- HTTP ---

// lvCall is one request on its way through the endpoint and router.
type lvCall struct {
	a      *LiveView
	w      http.ResponseWriter
	r      *http.Request
	method string // after Plug.MethodOverride
	sess   *lvSession
	dirty  bool              // the session was written to
	flash  map[string]string // conn.assigns.flash
	had    bool              // the session had a flash
	masked string            // this answer's masked CSRF token
	uid    int               // current_user
}

var lvRoutes = map[string]func(*lvCall){ //nolint:gochecknoglobals // constant table
	"GET /": (*lvCall).home, "GET /users/log_in": (*lvCall).logInPage, "POST /users/log_in": (*lvCall).logIn,
	"DELETE /users/log_out": (*lvCall).logOut, "GET /todos": (*lvCall).todosPage,
}

func (a *LiveView) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/live/websocket":
		a.websocket(w, r)
		return
	case "/favicon.ico": // Plug.Static, before the router
		w.Header().Set("Content-Type", "image/x-icon")
		w.Header().Set("Cache-Control", "public, max-age=31536000")
		w.WriteHeader(http.StatusOK)
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	c := &lvCall{a: a, w: w, r: r, method: r.Method}
	if c.method == http.MethodHead {
		c.method = http.MethodGet
	}
	if r.Method == http.MethodPost { // Plug.Parsers, Plug.MethodOverride
		_ = r.ParseForm()
		if m := strings.ToUpper(r.PostForm.Get("_method")); m == "DELETE" || m == "PUT" || m == "PATCH" {
			c.method = m
		}
	}
	action := lvRoutes[c.method+" "+r.URL.Path]
	if action == nil { // Phoenix.Router.NoRouteError, rendered by ErrorHTML
		a.Counts.Add("404", 1)
		c.send(http.StatusNotFound, "Not Found")
		return
	}
	// The :browser pipeline: fetch_session, fetch_live_flash,
	// protect_from_forgery, put_secure_browser_headers, fetch_current_user.
	if ck, err := r.Cookie(lvCookie); err == nil {
		c.sess = a.open(ck.Value)
	}
	if c.sess == nil {
		c.sess = &lvSession{}
	}
	c.flash, c.had = maps.Clone(c.sess.Flash), c.sess.Flash != nil
	if c.flash == nil {
		c.flash = map[string]string{}
	}
	if c.method != http.MethodGet && !lvValidCSRF(c.sess.CSRF, r.PostForm.Get("_csrf_token")) && !lvValidCSRF(c.sess.CSRF, r.Header.Get("X-Csrf-Token")) {
		a.Counts.Add("csrf refused", 1)
		c.sess, c.dirty = nil, false // raised: nothing of the session is written
		c.send(http.StatusForbidden, "Forbidden")
		return
	}
	c.uid = a.tokens[c.sess.UserToken]
	action(c)
}

// csrf is get_csrf_token: the session's token, made on first use, masked
// once per answer.
func (c *lvCall) csrf() string {
	if c.masked == "" {
		if len(c.sess.CSRF) != lvTokenChars {
			c.sess.CSRF, c.dirty = lvCSRFSecret(), true
		}
		c.masked = lvMask(c.sess.CSRF)
	}
	return c.masked
}

// renew is renew_session: delete_csrf_token, configure_session(renew:
// true), clear_session.
func (c *lvCall) renew() {
	c.sess, c.masked, c.dirty = &lvSession{}, "", true
}

// send answers as the endpoint does: the secure browser headers,
// x-request-id, and the session cookie if the session was written (with
// the flash kept for a redirect and dropped otherwise, as fetch_flash's
// before_send does).
func (c *lvCall) send(status int, body string) {
	h := c.w.Header()
	for _, kv := range [][2]string{{"Cache-Control", "max-age=0, private, must-revalidate"}, {"Content-Type", "text/html; charset=utf-8"},
		{"Referrer-Policy", "strict-origin-when-cross-origin"}, {"X-Content-Type-Options", "nosniff"}, {"X-Download-Options", "noopen"},
		{"X-Frame-Options", "SAMEORIGIN"}, {"X-Permitted-Cross-Domain-Policies", "none"}, {"X-Request-Id", lvB64.EncodeToString(lvRandom(15))}} {
		h.Set(kv[0], kv[1])
	}
	if c.sess != nil {
		switch {
		case len(c.flash) > 0 && status >= 300 && status <= 308:
			c.sess.Flash, c.dirty = c.flash, true
		case c.had || len(c.flash) > 0:
			c.sess.Flash, c.dirty = nil, true
		}
		if c.dirty {
			h.Add("Set-Cookie", lvCookie+"="+c.a.seal(c.sess)+"; path=/; HttpOnly; SameSite=Lax")
		}
	}
	c.w.WriteHeader(status)
	if c.r.Method != http.MethodHead {
		_, _ = io.WriteString(c.w, body)
	}
}

// redirect is Phoenix.Controller.redirect(to: path).
func (c *lvCall) redirect(to string) {
	c.w.Header().Set("Location", to)
	c.send(http.StatusFound, `<html><body>You are being <a href="`+lvEsc(to)+`">redirected</a>.</body></html>`)
}

// lvFlashHTML is core_components' flash_group.
func lvFlashHTML(flash map[string]string) string {
	var b strings.Builder
	for _, kind := range []string{"info", "error"} {
		if msg := flash[kind]; msg != "" {
			fmt.Fprintf(&b, `<div id="flash-%s" phx-click="lv:clear-flash" phx-value-key="%[1]s" role="alert" class="fixed top-2 right-2 mr-2 w-80 sm:w-96 z-50 rounded-lg p-3 ring-1"><p class="mt-2 text-sm leading-5">%s</p></div>`, kind, lvEsc(msg))
		}
	}
	return b.String()
}

// page renders the root layout around body.
func (c *lvCall) page(status int, title, body string) {
	token, nav := c.csrf(), `      <li><a href="/users/log_in" class="text-[0.8125rem] leading-6 text-zinc-900 font-semibold hover:text-zinc-700">Log in</a></li>`+"\n"
	if c.uid != 0 {
		nav = fmt.Sprintf(`      <li class="text-[0.8125rem] leading-6 text-zinc-900">%s</li>
      <li><a href="/users/log_out" data-method="delete" data-csrf="%s" data-to="/users/log_out" class="text-[0.8125rem] leading-6 text-zinc-900 font-semibold hover:text-zinc-700">Log out</a></li>
`, lvEsc(c.a.emails[c.uid]), token)
	}
	c.send(status, fmt.Sprintf(`<!DOCTYPE html>
<html lang="en" class="[scrollbar-gutter:stable]">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <meta name="csrf-token" content="%s">
    <title data-suffix=" · Phoenix Framework">%s · Phoenix Framework</title>
  </head>
  <body class="bg-white">
    <ul class="relative z-10 flex items-center gap-4 px-4 sm:px-6 lg:px-8 justify-end">
%s    </ul>
%s
    <div id="root"></div>
    <script>%s</script>
  </body>
</html>
`, token, lvEsc(title), nav, body, lvVisitJS))
}

// appLayout is app.html.heex around a controller's view.
func (c *lvCall) appLayout(inner string) string {
	return `<header class="px-4 sm:px-6 lg:px-8"><p class="text-sm font-semibold">Todos</p></header>
<main class="px-4 py-20 sm:px-6 lg:px-8">
  <div class="mx-auto max-w-2xl">
    <div id="flash-group">` + lvFlashHTML(c.flash) + `</div>
` + inner + `
  </div>
</main>`
}

func (c *lvCall) home() {
	c.page(http.StatusOK, "Home", c.appLayout(`    <h1 class="text-lg font-semibold">Todos</h1>
    <p><a href="/todos">Your todos</a></p>`))
}

// logInPage is UserSessionController.new behind
// :redirect_if_user_is_authenticated.
func (c *lvCall) logInPage() {
	if c.uid != 0 {
		c.redirect("/")
		return
	}
	c.logInForm("", "")
}

func (c *lvCall) logInForm(email, errMsg string) {
	if email == "" { // the login hint: the u of where logging in was asked for
		u, _ := url.Parse(c.sess.ReturnTo)
		if name := cmp.Or(c.r.URL.Query().Get("u"), u.Query().Get("u")); name != "" {
			email = name + "@example.test"
		}
	}
	if errMsg != "" {
		errMsg = `      <p class="mt-3 flex gap-3 text-sm leading-6 text-rose-600">` + lvEsc(errMsg) + "</p>\n"
	}
	token := c.csrf()
	c.page(http.StatusOK, "Log in", c.appLayout(fmt.Sprintf(`    <div class="mx-auto max-w-sm">
      <header class="text-center"><h1 class="text-lg font-semibold leading-8 text-zinc-800">Log in to account</h1></header>
      <form action="/users/log_in" method="post">
        <input name="_csrf_token" type="hidden" hidden value="%s">
        <div class="mt-10 space-y-8 bg-white">
%s          <div><label for="user_email" class="block text-sm font-semibold leading-6 text-zinc-800">Email</label>
          <input type="email" name="user[email]" id="user_email" value="%s" class="mt-2 block w-full rounded-lg" required></div>
          <div><label for="user_password" class="block text-sm font-semibold leading-6 text-zinc-800">Password</label>
          <input type="password" name="user[password]" id="user_password" value="" class="mt-2 block w-full rounded-lg" required></div>
          <div class="mt-2 flex items-center justify-between gap-6">
            <label class="flex items-center gap-4 text-sm leading-6 text-zinc-600"><input type="hidden" name="user[remember_me]" value="false"><input type="checkbox" id="user_remember_me" name="user[remember_me]" value="true" class="rounded border-zinc-300"> Keep me logged in</label>
          </div>
          <div class="mt-2 flex items-center justify-between gap-6">
            <button class="w-full rounded-lg bg-zinc-900 py-2 px-3 text-sm font-semibold text-white" phx-disable-with="Logging in...">Log in <span aria-hidden="true">→</span></button>
          </div>
        </div>
      </form>
    </div>`, token, errMsg, lvEsc(email))))
}

// logIn is UserSessionController.create.
func (c *lvCall) logIn() {
	if c.uid != 0 { // :redirect_if_user_is_authenticated
		c.a.Counts.Add("login while logged in", 1)
		c.redirect("/")
		return
	}
	f := c.r.PostForm
	if !f.Has("user[email]") || !f.Has("user[password]") { // Phoenix.ActionClauseError
		c.a.Counts.Add("login refused", 1)
		c.send(http.StatusBadRequest, "Bad Request")
		return
	}
	email := f.Get("user[email]")
	name, ok := strings.CutSuffix(strings.ToLower(email), "@example.test")
	if !ok || name == "" || f.Get("user[password]") != "pw-"+name {
		c.a.Counts.Add("login refused", 1)
		c.logInForm(email, "Invalid email or password")
		return
	}
	a := c.a
	if a.users[name] == 0 {
		a.lastUser++
		a.users[name], a.emails[a.lastUser] = a.lastUser, name+"@example.test"
	}
	token := string(lvRandom(32)) // UserToken.build_session_token
	a.tokens[token] = a.users[name]
	back := c.sess.ReturnTo
	c.flash["info"] = "Welcome back!"
	c.renew()
	c.sess.UserToken, c.sess.LiveSocketID = token, lvSessionPrefix+base64.URLEncoding.EncodeToString([]byte(token))
	a.Counts.Add("sessions", 1)
	c.redirect(cmp.Or(back, "/"))
}

// logOut is UserSessionController.delete and UserAuth.log_out_user.
func (c *lvCall) logOut() {
	a := c.a
	if c.uid != 0 {
		a.Counts.Add("logouts", 1)
	} else {
		a.Counts.Add("logout without session", 1)
	}
	delete(a.tokens, c.sess.UserToken)
	for conn := range a.sockets[c.sess.LiveSocketID] { // Endpoint.broadcast(live_socket_id, "disconnect", %{})
		go conn.disconnect()
	}
	c.flash["info"] = "Logged out successfully."
	c.renew()
	c.redirect("/")
}

// todosPage is `live "/todos", TodoLive.Index, :index` in the
// :require_authenticated_user live_session: its dead render.
func (c *lvCall) todosPage() {
	a := c.a
	if c.uid == 0 { // require_authenticated_user
		c.flash["error"] = lvMustLogIn
		c.sess.ReturnTo, c.dirty = c.r.URL.RequestURI(), true
		a.Counts.Add("login redirects", 1)
		c.redirect("/users/log_in")
		return
	}
	id := "phx-" + lvB64.EncodeToString(lvRandom(12)) // Utils.random_id
	flash := map[any]any{}
	for k, v := range c.flash {
		flash[k] = v
	}
	session := a.viewToken(map[any]any{lvAtom("id"): id, lvAtom("view"): lvAtom(lvViewModule), lvAtom("root_view"): lvAtom(lvViewModule),
		lvAtom("router"): lvAtom(lvRouter), lvAtom("live_session_name"): lvAtom(lvLiveSession), lvAtom("parent_pid"): nil,
		lvAtom("root_pid"): nil, lvAtom("session"): map[any]any{"user_id": int64(c.uid)}})
	static := a.viewToken(map[any]any{lvAtom("id"): id, lvAtom("flash"): flash, lvAtom("assign_new"): []any{lvAtom("current_user")}})
	v := &lvView{uid: c.uid, flash: maps.Clone(c.flash)}
	c.page(http.StatusOK, lvPageTitle, fmt.Sprintf(`<div id="%s" data-phx-main data-phx-session="%s" data-phx-static="%s">%s</div>`,
		id, session, static, lvHTML(a.rendered(v))))
}

// viewToken is Phoenix.LiveView.Static.sign_token.
func (a *LiveView) viewToken(data map[any]any) string {
	return lvToken(a.viewKey, lvTuple{int64(lvTokenVsn), data})
}

// unviewToken is Static.verify_token: the data of a token of this
// version, or false.
func (a *LiveView) unviewToken(token string) (map[any]any, bool) {
	t, ok := lvUntoken(a.viewKey, token, lvMaxAge)
	tup, _ := t.(lvTuple)
	if !ok || len(tup) != 2 || tup[0] != int64(lvTokenVsn) {
		return nil, false
	}
	m, ok := tup[1].(map[any]any)
	return m, ok
}

// --- the LiveView ---

// lvView is a mounted TodoLive.Index: its assigns, and what its client
// was last sent (for change tracking).
type lvView struct {
	joinRef  json.RawMessage
	uid      int
	flash    map[string]string
	err      string
	last     [5]string
	lastRows string
	compSent bool // the comprehension's statics were sent
}

// The template's statics: the app layout, the form, the counts and the
// list; and the comprehension's, one <li> a todo.
var (
	lvStatics = []string{ //nolint:gochecknoglobals // constant
		"<header class=\"px-4 sm:px-6 lg:px-8\"><p class=\"text-sm font-semibold\">Todos</p></header>\n<main class=\"px-4 py-20 sm:px-6 lg:px-8\">\n  <div class=\"mx-auto max-w-2xl\">\n    <div id=\"flash-group\">",
		"</div>\n    <h1 class=\"text-lg font-semibold leading-8 text-zinc-800\">Listing Todos</h1>\n    <p id=\"who\">",
		"</p>\n    <form id=\"todo-form\" phx-submit=\"save\">\n      <input type=\"text\" name=\"todo[title]\" id=\"todo_title\" placeholder=\"What needs to be done?\" autocomplete=\"off\">\n      <button type=\"submit\" phx-disable-with=\"Saving...\">Save Todo</button>\n      <p id=\"todo-error\" class=\"text-sm text-rose-600\">",
		"</p>\n    </form>\n    <p id=\"todo-count\"><span>",
		"</span> todos, <span>",
		"</span> done</p>\n    <ul id=\"todos\">",
		"\n    </ul>\n  </div>\n</main>",
	}
	lvRowStatics = []string{ //nolint:gochecknoglobals // constant
		"\n      <li id=\"todo-", "\" class=\"", "\">\n        <span class=\"title\">",
		"</span>\n        <button type=\"button\" phx-click=\"toggle\"", ">",
		"</button>\n        <button type=\"button\" phx-click=\"delete\"", ">Delete</button>\n      </li>",
	}
)

// dynamics are the view's dynamic parts now: the flash, the email, the
// error, the counts; and the rows of the comprehension.
func (a *LiveView) dynamics(v *lvView) ([5]string, [][]string) {
	rows, done := [][]string{}, 0
	for _, id := range slices.Sorted(maps.Keys(a.todos)) {
		t := a.todos[id]
		if t.owner != v.uid {
			continue
		}
		class, label, attr := "open", "Done", fmt.Sprintf(` phx-value-id="%d"`, id)
		if t.done {
			class, label = "done", "Undo"
			done++
		}
		rows = append(rows, []string{strconv.Itoa(id), class, lvEsc(t.title), attr, label, attr})
	}
	return [5]string{lvFlashHTML(v.flash), lvEsc(a.emails[v.uid]), lvEsc(v.err), strconv.Itoa(len(rows)), strconv.Itoa(done)}, rows
}

// rendered is the whole rendered tree, as a mount sends it.
func (a *LiveView) rendered(v *lvView) map[string]any {
	d, rows := a.dynamics(v)
	r := map[string]any{"s": lvStatics, "t": lvPageTitle}
	for i, s := range d {
		r[strconv.Itoa(i)] = s
	}
	r["5"] = "" // an empty comprehension not rendered yet
	if len(rows) > 0 {
		r["5"], v.compSent = map[string]any{"d": rows, "s": lvRowStatics}, true
	}
	key, _ := json.Marshal(rows)
	v.last, v.lastRows = d, string(key)
	return r
}

// diff is what changed since the client was last sent the view.
func (a *LiveView) diff(v *lvView) map[string]any {
	d, rows := a.dynamics(v)
	out := map[string]any{}
	for i := range d {
		if d[i] != v.last[i] {
			out[strconv.Itoa(i)] = d[i]
		}
	}
	if key, _ := json.Marshal(rows); string(key) != v.lastRows {
		switch {
		case v.compSent:
			out["5"] = map[string]any{"d": rows}
		case len(rows) > 0:
			out["5"], v.compSent = map[string]any{"d": rows, "s": lvRowStatics}, true
		}
		v.lastRows = string(key)
	}
	v.last = d
	return out
}

// lvHTML renders a rendered tree (as sent, or decoded from JSON) to HTML,
// as LiveView's client does.
func lvHTML(r any) string {
	statics := func(s any) []string {
		switch s := s.(type) {
		case []string:
			return s
		case []any:
			out := make([]string, len(s))
			for i, e := range s {
				out[i], _ = e.(string)
			}
			return out
		}
		return nil
	}
	var b strings.Builder
	switch r := r.(type) {
	case string:
		return r
	case map[string]any:
		s := statics(r["s"])
		if d, ok := r["d"]; ok {
			var rows [][]any
			switch d := d.(type) {
			case [][]string:
				for _, row := range d {
					rows = append(rows, lvAnys(row))
				}
			case []any:
				for _, row := range d {
					rr, _ := row.([]any)
					rows = append(rows, rr)
				}
			}
			for _, row := range rows {
				for i, st := range s {
					b.WriteString(st)
					if i < len(row) && i < len(s)-1 {
						b.WriteString(lvHTML(row[i]))
					}
				}
			}
			return b.String()
		}
		for i, st := range s {
			b.WriteString(st)
			if i < len(s)-1 {
				b.WriteString(lvHTML(r[strconv.Itoa(i)]))
			}
		}
	}
	return b.String()
}

func lvAnys(s []string) []any {
	out := make([]any, len(s))
	for i, e := range s {
		out[i] = e
	}
	return out
}

// lvMerge merges a diff into a rendered tree, as LiveView's client does:
// a part with statics replaces, others merge, the rest replace.
func lvMerge(into, diff map[string]any) {
	for k, v := range diff {
		nv, ok1 := v.(map[string]any)
		ov, ok2 := into[k].(map[string]any)
		if _, hasS := nv["s"]; ok1 && ok2 && !hasS {
			lvMerge(ov, nv)
		} else {
			into[k] = v
		}
	}
}

// --- the socket ---

var lvUpgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }} //nolint:gochecknoglobals // checked by hand first

var lvVsnRE = regexp.MustCompile(`^2\.0\.\d+$`)

// lvConn is a Phoenix.Socket: its session (nil if it could not be read),
// the host it was asked for, and its channels by topic.
type lvConn struct {
	a     *LiveView
	ws    *websocket.Conn
	wmu   sync.Mutex
	sess  *lvSession
	host  string
	views map[string]*lvView
}

// lvHost is the request's host without its port, or the last
// X-Forwarded-Host a proxy in front added.
func lvHost(r *http.Request) string {
	h := r.Host
	if f := r.Header.Get("X-Forwarded-Host"); f != "" {
		parts := strings.Split(f, ",")
		h = strings.TrimSpace(parts[len(parts)-1])
	}
	if host, _, err := net.SplitHostPort(h); err == nil {
		return host
	}
	return h
}

func (a *LiveView) websocket(w http.ResponseWriter, r *http.Request) {
	refuse := func(status int) {
		a.Counts.Add("ws refused", 1)
		w.WriteHeader(status)
	}
	q := r.URL.Query()
	origin, err := url.Parse(r.Header.Get("Origin"))
	switch {
	case r.Method != http.MethodGet:
		refuse(http.StatusBadRequest)
		return
	case r.Header.Get("Origin") != "" && (err != nil || origin.Hostname() != lvHost(r)): // check_origin: :conn
		refuse(http.StatusForbidden)
		return
	case !lvVsnRE.MatchString(cmp.Or(q.Get("vsn"), "1.0.0")): // V2.JSONSerializer, "~> 2.0.0"
		refuse(http.StatusForbidden)
		return
	case !websocket.IsWebSocketUpgrade(r):
		refuse(http.StatusBadRequest)
		return
	}
	// Transport.connect_session: the cookie's session, if the socket's
	// _csrf_token is good for it.
	var sess *lvSession
	if ck, err := r.Cookie(lvCookie); err == nil && q.Has("_csrf_token") {
		if s := a.open(ck.Value); s != nil && lvValidCSRF(s.CSRF, q.Get("_csrf_token")) {
			sess = s
		}
	}
	if sess == nil {
		a.Counts.Add("ws no session", 1)
	}
	ws, err := lvUpgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	c := &lvConn{a: a, ws: ws, sess: sess, host: lvHost(r), views: map[string]*lvView{}}
	a.mu.Lock()
	if sess != nil && sess.LiveSocketID != "" {
		if a.sockets[sess.LiveSocketID] == nil {
			a.sockets[sess.LiveSocketID] = map[*lvConn]bool{}
		}
		a.sockets[sess.LiveSocketID][c] = true
	}
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		if sess != nil {
			delete(a.sockets[sess.LiveSocketID], c)
			if len(a.sockets[sess.LiveSocketID]) == 0 {
				delete(a.sockets, sess.LiveSocketID)
			}
		}
		a.mu.Unlock()
		_ = ws.Close()
	}()
	for {
		_ = ws.SetReadDeadline(time.Now().Add(lvIdleTimeout))
		typ, data, err := ws.ReadMessage()
		if err != nil {
			return
		}
		a.mu.Lock()
		out, ok := c.handle(typ, data)
		a.mu.Unlock()
		c.wmu.Lock()
		for _, f := range out {
			_ = ws.WriteMessage(websocket.TextMessage, f)
		}
		c.wmu.Unlock()
		if !ok { // the socket process crashed
			_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseInternalServerErr, ""), time.Now().Add(time.Second))
			return
		}
	}
}

// disconnect is the socket's answer to a "disconnect" broadcast.
func (c *lvConn) disconnect() {
	_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	_ = c.ws.Close()
}

// lvFrame encodes a V2 message as Jason does (no HTML escaping).
func lvFrame(joinRef, ref json.RawMessage, topic, event string, payload any) []byte {
	var b strings.Builder
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	if joinRef == nil {
		joinRef = json.RawMessage("null")
	}
	if ref == nil {
		ref = json.RawMessage("null")
	}
	_ = e.Encode([]any{joinRef, ref, topic, event, payload})
	return []byte(strings.TrimSuffix(b.String(), "\n"))
}

func lvReply(joinRef, ref json.RawMessage, topic, status string, response any) []byte {
	return lvFrame(joinRef, ref, topic, "phx_reply", map[string]any{"status": status, "response": response})
}

// handle is the socket's handle_in for one frame: the frames to send,
// and false if the socket is to close.
func (c *lvConn) handle(typ int, data []byte) ([][]byte, bool) {
	a := c.a
	var raw []json.RawMessage
	var topic, event string
	var payload map[string]any
	if typ != websocket.TextMessage || json.Unmarshal(data, &raw) != nil || len(raw) < 5 ||
		json.Unmarshal(raw[2], &topic) != nil || json.Unmarshal(raw[3], &event) != nil || json.Unmarshal(raw[4], &payload) != nil || payload == nil {
		a.Counts.Add("bad message", 1)
		return nil, false
	}
	joinRef, ref := raw[0], raw[1]
	v := c.views[topic]
	switch {
	case topic == "phoenix" && event == "heartbeat":
		return [][]byte{lvReply(nil, ref, topic, "ok", map[string]any{})}, true
	case v != nil && event == "phx_join": // a duplicate join closes the channel first
		delete(c.views, topic)
		return append([][]byte{lvFrame(v.joinRef, v.joinRef, topic, "phx_close", map[string]any{})}, c.join(topic, joinRef, ref, payload)), true
	case v != nil && event == "phx_leave":
		delete(c.views, topic)
		return [][]byte{lvFrame(v.joinRef, v.joinRef, topic, "phx_close", map[string]any{}), lvReply(joinRef, ref, topic, "ok", map[string]any{})}, true
	case v != nil && event == "event":
		return c.event(v, topic, ref, payload), true
	case v != nil: // no handle_info clause: the channel crashes
		return c.crash(v, topic, "bad event"), true
	case event == "phx_join" && strings.HasPrefix(topic, "lv:"):
		return [][]byte{c.join(topic, joinRef, ref, payload)}, true
	case event == "phx_leave":
		return [][]byte{lvReply(joinRef, ref, topic, "ok", map[string]any{})}, true
	}
	a.Counts.Add("unmatched topic", 1)
	return [][]byte{lvReply(nil, ref, topic, "error", map[string]any{"reason": "unmatched topic"})}, true
}

// crash ends a channel as a raise in the LiveView does: phx_error.
func (c *lvConn) crash(v *lvView, topic, count string) [][]byte {
	c.a.Counts.Add(count, 1)
	delete(c.views, topic)
	return [][]byte{lvFrame(v.joinRef, v.joinRef, topic, "phx_error", map[string]any{})}
}

// join is Phoenix.LiveView.Channel's mount.
func (c *lvConn) join(topic string, joinRef, ref json.RawMessage, p map[string]any) []byte {
	a := c.a
	refuse := func(response map[string]any) []byte {
		a.Counts.Add("join refused", 1)
		return lvReply(joinRef, ref, topic, "error", response)
	}
	stale, unauthorized := map[string]any{"reason": "stale"}, map[string]any{"reason": "unauthorized"}
	token, _ := p["session"].(string)
	data, ok := a.unviewToken(token)
	id, _ := data[lvAtom("id")].(string)
	if !ok || topic != "lv:"+id { // Session.verify_session
		return refuse(stale)
	}
	var flash map[any]any
	switch st := p["static"].(type) {
	case nil:
	case string:
		s, ok := a.unviewToken(st)
		if !ok || s[lvAtom("id")] != id {
			return refuse(stale)
		}
		flash, _ = s[lvAtom("flash")].(map[any]any)
	default:
		return refuse(stale)
	}
	if c.sess == nil { // "LiveView session was misconfigured or the user token is outdated"
		return refuse(stale)
	}
	u, err := url.Parse(fmt.Sprint(p["url"]))
	if _, redirect := p["redirect"]; redirect || err != nil || u.Path != "/todos" || u.Hostname() != c.host ||
		data[lvAtom("view")] != lvAtom(lvViewModule) || data[lvAtom("live_session_name")] != lvAtom(lvLiveSession) { // authorize_session
		return refuse(unauthorized)
	}
	uid := a.tokens[c.sess.UserToken]
	if uid == 0 { // on_mount :ensure_authenticated
		return refuse(map[string]any{"redirect": map[string]any{"to": "/users/log_in",
			"flash": lvToken(a.flashKey, map[any]any{"error": lvMustLogIn})}})
	}
	if s, _ := data[lvAtom("session")].(map[any]any); s["user_id"] != int64(uid) {
		return refuse(unauthorized)
	}
	v := &lvView{joinRef: joinRef, uid: uid, flash: map[string]string{}}
	if params, _ := p["params"].(map[string]any); params["_mounts"] == float64(0) { // the dead render's flash, on a first mount
		for k, val := range flash {
			ks, _ := k.(string)
			v.flash[ks], _ = val.(string)
		}
	}
	c.views[topic] = v
	a.Counts.Add("joins", 1)
	return lvReply(joinRef, ref, topic, "ok", map[string]any{"rendered": a.rendered(v), "liveview_version": lvVersion})
}

// event is TodoLive.Index.handle_event.
func (c *lvConn) event(v *lvView, topic string, ref json.RawMessage, p map[string]any) [][]byte {
	a := c.a
	typ, _ := p["type"].(string)
	name, _ := p["event"].(string)
	_, hasValue := p["value"]
	if typ == "" || name == "" || !hasValue { // %{"value" => _, "event" => _, "type" => _} = payload
		return c.crash(v, topic, "bad event")
	}
	switch name {
	case "save":
		s, ok := p["value"].(string)
		form, err := url.ParseQuery(s)
		if typ != "form" || !ok || err != nil || !form.Has("todo[title]") {
			return c.crash(v, topic, "bad event")
		}
		if title := strings.TrimSpace(form.Get("todo[title]")); title == "" {
			v.err = "can't be blank"
			a.Counts.Add("todo invalid", 1)
		} else {
			a.lastTodo++
			a.todos[a.lastTodo], v.err = &lvTodo{owner: v.uid, title: title}, ""
			a.Counts.Add("todos created", 1)
		}
	case "toggle", "delete":
		val, _ := p["value"].(map[string]any)
		var id int
		switch raw := val["id"].(type) {
		case string:
			n, err := strconv.Atoi(raw)
			if err != nil {
				return c.crash(v, topic, "bad event") // Ecto.Query.CastError
			}
			id = n
		case float64:
			id = int(raw)
		default:
			return c.crash(v, topic, "bad event")
		}
		t := a.todos[id]
		switch { // Todos.get_todo!(current_user, id)
		case t == nil:
			return c.crash(v, topic, "missing todo")
		case t.owner != v.uid:
			return c.crash(v, topic, "foreign todo")
		case name == "toggle":
			t.done = !t.done
			a.Counts.Add("todos toggled", 1)
		default:
			delete(a.todos, id)
			a.Counts.Add("todos deleted", 1)
		}
	case "lv:clear-flash":
		val, _ := p["value"].(map[string]any)
		key, _ := val["key"].(string)
		delete(v.flash, key)
	default: // no handle_event clause
		return c.crash(v, topic, "bad event")
	}
	response := map[string]any{}
	if d := a.diff(v); len(d) > 0 {
		response["diff"] = d
	}
	return [][]byte{lvReply(v.joinRef, ref, topic, "ok", response)}
}

// lvVisitJS is every page's script: phoenix_html's data-method links, a
// small LiveView client (what phoenix.js and phoenix_live_view.js do for
// this page: the socket, the join, phx-submit and phx-click, the rendered
// tree and its diffs) and the visit, one step a page, kept in
// sessionStorage: on the log-in page (where /todos?u=NAME was sent) log in
// as the hinted NAME; on /todos join, create three todos, toggle the
// first, delete the second, each after the reply to the one before, and
// log out with the layout's link; on / say "done". A page acts only as the
// step it expects, and shows anything unexpected as "error: ...".
const lvVisitJS = `(() => {
  window.addEventListener("click", e => {
    if (e.defaultPrevented) return;
    for (let el = e.target; el && el.getAttribute; el = el.parentNode) {
      if (!el.getAttribute("data-method") || !el.getAttribute("data-to")) continue;
      e.preventDefault();
      const form = document.createElement("form"), hidden = (name, value) => {
        const i = document.createElement("input");
        i.type = "hidden"; i.name = name; i.value = value;
        return i;
      };
      form.method = el.getAttribute("data-method") === "get" ? "get" : "post";
      form.action = el.getAttribute("data-to");
      form.style.display = "none";
      form.appendChild(hidden("_csrf_token", el.getAttribute("data-csrf")));
      form.appendChild(hidden("_method", el.getAttribute("data-method")));
      document.body.appendChild(form);
      const submit = document.createElement("input");
      submit.type = "submit";
      form.appendChild(submit);
      submit.click();
      return;
    }
  }, false);

  const main = document.querySelector("[data-phx-main]");
  const lv = main && (() => {
    const csrf = document.querySelector('meta[name="csrf-token"]').content, topic = "lv:" + main.id;
    const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host +
      "/live/websocket?_csrf_token=" + encodeURIComponent(csrf) + "&vsn=2.0.0");
    const pending = new Map(), errors = [];
    let ref = 0, joinRef = null, rendered = null;
    const push = (t, event, payload) => {
      const r = String(++ref);
      if (event === "phx_join") joinRef = r;
      ws.send(JSON.stringify([t === "phoenix" ? null : joinRef, r, t, event, payload]));
      return new Promise((resolve, reject) => {
        pending.set(r, { resolve, reject });
        setTimeout(() => { if (pending.delete(r)) reject(new Error(event + " got no reply")); }, 10000);
      });
    };
    const isObj = v => v !== null && typeof v === "object" && !Array.isArray(v);
    const merge = (t, d) => {
      for (const k in d) { if (isObj(d[k]) && isObj(t[k]) && !("s" in d[k])) merge(t[k], d[k]); else t[k] = d[k]; }
    };
    const html = r => {
      if (!isObj(r)) return r == null ? "" : String(r);
      if ("d" in r) return r.d.map(row => r.s.map((s, i) => s + (i < r.s.length - 1 ? html(row[i]) : "")).join("")).join("");
      return r.s.map((s, i) => s + (i < r.s.length - 1 ? html(r[i]) : "")).join("");
    };
    const show = () => { main.innerHTML = html(rendered); };
    const opened = new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = () => reject(new Error("the socket failed")); });
    ws.onmessage = e => {
      const [, r, t, event, payload] = JSON.parse(e.data);
      if (event === "phx_reply" && pending.has(r)) { const p = pending.get(r); pending.delete(r); p.resolve(payload); }
      else if (event === "diff" && t === topic) { merge(rendered, payload); show(); }
      else if (event === "phx_error" || event === "phx_close") errors.push(event);
    };
    ws.onclose = () => { for (const p of pending.values()) p.reject(new Error("the socket closed")); pending.clear(); };
    setInterval(() => { if (ws.readyState === 1) push("phoenix", "heartbeat", {}).catch(() => {}); }, 30000);
    const ok = async p => { const m = await p; if (m.status !== "ok") throw new Error(JSON.stringify(m.response)); return m.response; };
    const self = { errors, last: null };
    const event = payload => {
      self.last = ok(push(topic, "event", payload)).then(resp => { if (resp.diff) { merge(rendered, resp.diff); show(); } return resp; });
    };
    main.addEventListener("submit", e => {
      const f = e.target.closest("form[phx-submit]");
      if (!f) return;
      e.preventDefault();
      event({ type: "form", event: f.getAttribute("phx-submit"), value: new URLSearchParams(new FormData(f)).toString(), meta: {} });
    });
    main.addEventListener("click", e => {
      const el = e.target.closest("[phx-click]");
      if (!el) return;
      const value = {};
      for (const at of el.attributes) if (at.name.startsWith("phx-value-")) value[at.name.slice(10)] = at.value;
      if (el.value !== undefined) value.value = el.value;
      event({ type: "click", event: el.getAttribute("phx-click"), value });
    });
    self.join = async () => {
      await opened;
      const resp = await ok(push(topic, "phx_join", { url: location.href, params: { _csrf_token: csrf, _mounts: 0, _mount_attempts: 0 },
        session: main.getAttribute("data-phx-session"), static: main.getAttribute("data-phx-static"), flash: null, sticky: false }));
      rendered = resp.rendered;
      show();
      return resp;
    };
    return self;
  })();

  const S = sessionStorage, q = s => document.querySelector(s), all = s => [...document.querySelectorAll(s)];
  const root = document.getElementById("root"), fail = m => { root.textContent = "error: " + m; };
  const pause = () => new Promise(r => setTimeout(r, 100 + Math.random() * 100));
  const check = (ok, m) => { if (!ok) throw new Error(m); };
  const flash = k => { const f = q("#flash-" + k); return f ? f.textContent.trim() : ""; };
  const p = location.pathname, step = S.getItem("lv.step") || "start";
  const visit = async () => {
    if (p === "/users/log_in" && step === "start") {
      const f = q('form[action="/users/log_in"]');
      check(f, "no log-in form");
      check(flash("error") === "You must log in to access this page.", "flash " + JSON.stringify(flash("error")));
      const email = f.elements["user[email]"].value, name = email.replace(/@example\.test$/, "");
      check(name && name !== email, "no login hint: " + JSON.stringify(email));
      S.setItem("lv.user", name);
      S.setItem("lv.step", "login");
      await pause();
      f.elements["user[password]"].value = "pw-" + name;
      f.requestSubmit();
    } else if (p === "/todos" && step === "login") {
      S.setItem("lv.step", "todos");
      check(flash("info") === "Welcome back!", "flash " + JSON.stringify(flash("info")));
      const joined = await lv.join();
      check(joined.liveview_version && flash("info") === "Welcome back!", "the mounted view has no flash");
      check(all("#todos > li").length === 0, "todos before any was made");
      const titles = ["Buy milk", "Walk the dog", "Write the report"];
      for (const [i, title] of titles.entries()) {
        await pause();
        q("#todo_title").value = title;
        q("#todo-form").requestSubmit();
        check((await lv.last).diff, "save answered no diff");
        const li = all("#todos > li");
        check(li.length === i + 1 && li[i].querySelector(".title").textContent === title, "todo " + title + " not shown");
      }
      const ids = all("#todos > li").map(li => li.id.replace("todo-", ""));
      await pause();
      q("#todo-" + ids[0] + ' button[phx-click="toggle"]').click();
      await lv.last;
      check(q("#todo-" + ids[0]).className === "done", "todo " + ids[0] + " not done");
      await pause();
      q("#todo-" + ids[1] + ' button[phx-click="delete"]').click();
      await lv.last;
      check(!q("#todo-" + ids[1]) && all("#todos > li").length === 2, "todo " + ids[1] + " not deleted");
      check(q("#todo-count").textContent === "2 todos, 1 done", "count " + q("#todo-count").textContent);
      check(lv.errors.length === 0, "channel " + lv.errors.join());
      await pause();
      S.setItem("lv.step", "logout");
      q('a[data-method="delete"][data-to="/users/log_out"]').click();
    } else if (p === "/" && step === "logout") {
      S.setItem("lv.step", "done");
      check(flash("info") === "Logged out successfully.", "flash " + JSON.stringify(flash("info")));
      check(q('a[href="/users/log_in"]') && !q("a[data-method]"), "still logged in");
      root.textContent = "done";
    } else if (!(p === "/todos" && step === "todos") && step !== "done") {
      const alert = q(".text-rose-600");
      fail("page " + p + " at step " + step + (alert ? ": " + alert.textContent : ""));
    }
  };
  setTimeout(() => visit().catch(e => fail(e.message)), 20);
})();`

// LiveViewClient is a person visiting a LiveView with a browser, done
// with net/http and a WebSocket: the visit of the pages' script, from an
// anonymous GET /todos?u=USER sent to log in. Forms are posted with their
// own _csrf_token; the socket is dialed with the page's meta token and the
// session cookie, the view joined with the page's data-phx-session and
// data-phx-static, and every reply's diff merged into the rendered tree,
// from which the todos' ids are read. It fails tb on any answer but the
// one Phoenix gives.
func LiveViewClient(tb testing.TB, base, user string) {
	tb.Helper()
	newLVUser(tb, base).visit(user)
}

// lvUser is a browser context of LiveViewClient: a cookie jar, and the
// last page.
type lvUser struct {
	tb   testing.TB
	c    *http.Client
	jar  *cookiejar.Jar
	base string
	page string
}

const lvNavigate = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"

var (
	lvMetaRE   = regexp.MustCompile(`<meta name="csrf-token" content="([^"]+)">`)
	lvFormRE   = regexp.MustCompile(`<form action="/users/log_in" method="post">\s*<input name="_csrf_token" type="hidden" hidden value="([^"]+)">`)
	lvEmailRE  = regexp.MustCompile(`name="user\[email\]" id="user_email" value="([^"]*)"`)
	lvMainRE   = regexp.MustCompile(`<div id="(phx-[A-Za-z0-9_-]+)" data-phx-main data-phx-session="([^"]+)" data-phx-static="([^"]+)">`)
	lvLogoutRE = regexp.MustCompile(`<a href="/users/log_out" data-method="delete" data-csrf="([^"]+)" data-to="/users/log_out"`)
	lvFlashRE  = regexp.MustCompile(`<div id="flash-(info|error)"[^>]*><p[^>]*>([^<]*)</p>`)
	lvRowRE    = regexp.MustCompile(`<li id="todo-(\d+)" class="(open|done)">\s*<span class="title">([^<]*)</span>`)
	lvCountRE  = regexp.MustCompile(`<p id="todo-count"><span>(\d+)</span> todos, <span>(\d+)</span> done</p>`)
)

func newLVUser(tb testing.TB, base string) *lvUser {
	jar, _ := cookiejar.New(nil)
	tr := &http.Transport{}
	tb.Cleanup(tr.CloseIdleConnections)
	return &lvUser{tb: tb, base: base, jar: jar, c: &http.Client{Jar: jar, Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (u *lvUser) must(ok bool, format string, args ...any) {
	if u.tb.Helper(); !ok {
		u.tb.Fatalf(format, args...)
	}
}

// do sends a request to a path under base and fails the test unless the
// status is want.
func (u *lvUser) do(method, path, body string, want int, header ...string) Answer {
	u.tb.Helper()
	ans := Do(u.tb, u.c, method, u.base+path, body, header...)
	u.must(ans.Status == want, "%s %s: %d, want %d: %.300s", method, path, ans.Status, want, ans.Body)
	return ans
}

// get navigates to a page and keeps it.
func (u *lvUser) get(path string) {
	u.tb.Helper()
	u.page = string(u.do(http.MethodGet, path, "", http.StatusOK, "Accept", lvNavigate).Body)
}

// post submits a form as the browser does.
func (u *lvUser) post(path string, form url.Values, want int) Answer {
	u.tb.Helper()
	return u.do(http.MethodPost, path, form.Encode(), want, "Accept", lvNavigate, "Origin", u.base, "Content-Type", "application/x-www-form-urlencoded")
}

func (u *lvUser) flash(kind string) string {
	for _, m := range lvFlashRE.FindAllStringSubmatch(u.page, -1) {
		if m[1] == kind {
			return html.UnescapeString(m[2])
		}
	}
	return ""
}

// cookie is the session cookie's value in the jar.
func (u *lvUser) cookie() string {
	base, _ := url.Parse(u.base)
	for _, c := range u.jar.Cookies(base) {
		if c.Name == lvCookie {
			return c.Value
		}
	}
	return ""
}

func (u *lvUser) setCookie(v string) {
	base, _ := url.Parse(u.base)
	u.jar.SetCookies(base, []*http.Cookie{{Name: lvCookie, Value: v, Path: "/"}})
}

// logIn posts the log-in page's form and checks where it leads.
func (u *lvUser) logIn(user, back string) {
	u.tb.Helper()
	m := lvFormRE.FindStringSubmatch(u.page)
	u.must(m != nil, "no log-in form: %.500s", u.page)
	loc := u.post("/users/log_in", url.Values{"_csrf_token": {m[1]}, "user[email]": {user + "@example.test"}, "user[password]": {"pw-" + user},
		"user[remember_me]": {"false"}}, http.StatusFound).Header.Get("Location")
	u.must(loc == back, "logged in, sent to %q, want %q", loc, back)
}

// lvPage is what a LiveView page carries for its script.
type lvPage struct{ id, session, static, csrf, logout string }

func (u *lvUser) livePage() lvPage {
	u.tb.Helper()
	m, meta, out := lvMainRE.FindStringSubmatch(u.page), lvMetaRE.FindStringSubmatch(u.page), lvLogoutRE.FindStringSubmatch(u.page)
	u.must(m != nil && meta != nil && out != nil, "not a LiveView page: %.800s", u.page)
	return lvPage{id: m[1], session: m[2], static: m[3], csrf: meta[1], logout: out[1]}
}

// lvSock is a Phoenix socket client: its refs, the join_ref of its view
// and the view's rendered tree.
type lvSock struct {
	tb       testing.TB
	ws       *websocket.Conn
	ref      int
	joinRef  string
	topic    string
	rendered map[string]any
}

// lvMsg is a V2 message as read, and a reply's status and response.
type lvMsg struct {
	JoinRef, Ref *string
	Topic, Event string
	Status       string
	Response     map[string]any
}

// dial opens a socket with the cookie jar and query; header may add or
// change headers (Origin is the base's). It returns the handshake's status.
func (u *lvUser) dial(query string, header http.Header) (*websocket.Conn, int, error) {
	h := http.Header{"Origin": {u.base}}
	for k, v := range header {
		h[k] = v
	}
	d := websocket.Dialer{Jar: u.jar, HandshakeTimeout: 10 * time.Second}
	ws, resp, err := d.Dial("ws"+strings.TrimPrefix(u.base, "http")+"/live/websocket?"+query, h)
	status := 0
	if resp != nil {
		status = resp.StatusCode
		resp.Body.Close()
	}
	if ws != nil {
		u.tb.Cleanup(func() { _ = ws.Close() })
	}
	return ws, status, err
}

// socket dials as LiveSocket does: the meta tag's token, vsn 2.0.0.
func (u *lvUser) socket(csrf string) *lvSock {
	u.tb.Helper()
	ws, _, err := u.dial(url.Values{"_csrf_token": {csrf}}.Encode()+"&vsn=2.0.0", nil)
	u.must(err == nil, "dial: %v", err)
	return &lvSock{tb: u.tb, ws: ws}
}

func (s *lvSock) push(topic, event string, payload any) string {
	s.tb.Helper()
	s.ref++
	ref := strconv.Itoa(s.ref)
	if event == "phx_join" {
		s.joinRef, s.topic = ref, topic
	}
	var joinRef any
	if topic != "phoenix" {
		joinRef = s.joinRef
	}
	b, _ := json.Marshal([]any{joinRef, ref, topic, event, payload})
	if err := s.ws.WriteMessage(websocket.TextMessage, b); err != nil {
		s.tb.Fatalf("push %s: %v", event, err)
	}
	return ref
}

// read reads one message, or fails the test.
func (s *lvSock) read() lvMsg {
	s.tb.Helper()
	_ = s.ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, b, err := s.ws.ReadMessage()
	if err != nil {
		s.tb.Fatalf("read: %v", err)
	}
	var raw []json.RawMessage
	var m lvMsg
	if json.Unmarshal(b, &raw) != nil || len(raw) != 5 || json.Unmarshal(raw[0], &m.JoinRef) != nil || json.Unmarshal(raw[1], &m.Ref) != nil ||
		json.Unmarshal(raw[2], &m.Topic) != nil || json.Unmarshal(raw[3], &m.Event) != nil {
		s.tb.Fatalf("not a V2 message: %s", b)
	}
	if m.Event == "phx_reply" {
		var p struct {
			Status   string         `json:"status"`
			Response map[string]any `json:"response"`
		}
		if json.Unmarshal(raw[4], &p) != nil || p.Status == "" {
			s.tb.Fatalf("not a reply: %s", b)
		}
		m.Status, m.Response = p.Status, p.Response
	}
	return m
}

// call pushes and returns the reply to it, or the phx_error or phx_close
// of its topic that came first.
func (s *lvSock) call(topic, event string, payload any) lvMsg {
	s.tb.Helper()
	ref := s.push(topic, event, payload)
	for {
		m := s.read()
		if m.Event == "phx_reply" && m.Ref != nil && *m.Ref == ref || (m.Event == "phx_error" || m.Event == "phx_close") && m.Topic == topic {
			return m
		}
	}
}

// join joins the page's view as LiveView's client does on a first mount.
func (s *lvSock) join(pageURL string, p lvPage) lvMsg {
	s.tb.Helper()
	m := s.call("lv:"+p.id, "phx_join", map[string]any{"url": pageURL, "params": map[string]any{"_csrf_token": p.csrf, "_mounts": 0, "_mount_attempts": 0},
		"session": p.session, "static": p.static, "flash": nil, "sticky": false})
	if r, ok := m.Response["rendered"].(map[string]any); ok && m.Status == "ok" {
		s.rendered = r
	}
	return m
}

// event pushes an event to the joined view and merges the reply's diff.
func (s *lvSock) event(typ, name string, value any) lvMsg {
	s.tb.Helper()
	payload := map[string]any{"type": typ, "event": name, "value": value}
	if typ == "form" {
		payload["meta"] = map[string]any{}
	}
	m := s.call(s.topic, "event", payload)
	if d, ok := m.Response["diff"].(map[string]any); ok && m.Status == "ok" && s.rendered != nil {
		lvMerge(s.rendered, d)
	}
	return m
}

// todo is one row of the rendered view.
type lvRow struct{ id, class, title string }

func (s *lvSock) rows() []lvRow {
	var out []lvRow
	for _, m := range lvRowRE.FindAllStringSubmatch(lvHTML(s.rendered), -1) {
		out = append(out, lvRow{m[1], m[2], html.UnescapeString(m[3])})
	}
	return out
}

// leave closes the socket as a browser leaving the page does.
func (s *lvSock) leave() {
	_ = s.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, ""), time.Now().Add(time.Second))
	_ = s.ws.Close()
}

func (u *lvUser) visit(user string) {
	u.tb.Helper()
	start := "/todos?u=" + url.QueryEscape(user)
	loc := u.do(http.MethodGet, start, "", http.StatusFound, "Accept", lvNavigate).Header.Get("Location")
	u.must(loc == "/users/log_in", "anonymous %s sent to %q", start, loc)
	u.get(loc)
	u.must(u.flash("error") == lvMustLogIn, "log-in page flash %q", u.flash("error"))
	hint := lvEmailRE.FindStringSubmatch(u.page)
	u.must(hint != nil && html.UnescapeString(hint[1]) == user+"@example.test", "log-in hint %q", hint)
	u.logIn(user, start)
	u.get(start)
	u.must(u.flash("info") == "Welcome back!", "todos page flash %q", u.flash("info"))
	p := u.livePage()
	s := u.socket(p.csrf)
	m := s.join(u.base+start, p)
	u.must(m.Status == "ok" && s.rendered != nil && m.Response["liveview_version"] == lvVersion, "join: %+v", m)
	u.must(len(s.rows()) == 0 && strings.Contains(lvHTML(s.rendered), "Welcome back!"), "joined view: %s", lvHTML(s.rendered))
	titles := []string{"Buy milk", "Walk the dog", "Write the report"}
	for i, title := range titles {
		m := s.event("form", "save", "todo%5Btitle%5D="+url.QueryEscape(title))
		rows := s.rows()
		u.must(m.Status == "ok" && m.Response["diff"] != nil && len(rows) == i+1 && rows[i].title == title, "save %q: %+v, rows %v", title, m, rows)
	}
	rows := s.rows()
	m = s.event("click", "toggle", map[string]any{"id": rows[0].id, "value": ""})
	u.must(m.Status == "ok" && s.rows()[0].class == "done", "toggle %s: %+v, rows %v", rows[0].id, m, s.rows())
	m = s.event("click", "delete", map[string]any{"id": rows[1].id, "value": ""})
	left := s.rows()
	u.must(m.Status == "ok" && len(left) == 2 && left[0].id == rows[0].id && left[1].id == rows[2].id, "delete %s: %+v, rows %v", rows[1].id, m, left)
	count := lvCountRE.FindStringSubmatch(lvHTML(s.rendered))
	u.must(count != nil && count[1] == "2" && count[2] == "1", "counts %v", count)
	s.leave()
	loc = u.post("/users/log_out", url.Values{"_csrf_token": {p.logout}, "_method": {"delete"}}, http.StatusFound).Header.Get("Location")
	u.must(loc == "/", "logged out, sent to %q", loc)
	u.get("/")
	u.must(u.flash("info") == "Logged out successfully." && !lvLogoutRE.MatchString(u.page), "home after log-out: flash %q", u.flash("info"))
}
