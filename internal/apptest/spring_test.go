package apptest

import (
	"errors"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// springRefusals are the count prefixes of every refusal.
var springRefusals = []string{"login refused", "unknown session", "400", "403", "404", "405", "form invalid", "stomp"} //nolint:gochecknoglobals // constant

// springWant checks the counts of a whole visit by each of users.
func springWant(t *testing.T, a *SpringBoard, users ...string) {
	t.Helper()
	n := int64(len(users))
	want := map[string]int64{"sessions": n, "login redirects": n, "boards created": n, "cards added": 3 * n, "cards moved": n,
		"boards deleted": n, "receipts": 5 * n, "logouts": n}
	for _, r := range springRefusals {
		want[r] = 0
	}
	for name, w := range want {
		if got := a.Counts.Prefix(name); got != w {
			t.Errorf("count %q = %d, want %d (%s)", name, got, w, &a.Counts)
		}
	}
	if got := a.Users(); !slices.Equal(got, users) {
		t.Errorf("Users() = %q, want %q", got, users)
	}
}

func TestSpringBoardClients(t *testing.T) {
	a := NewSpringBoard(t)
	SpringBoardClient(t, a.URL, "alice")
	SpringBoardClient(t, a.URL, "bob")
	springWant(t, a, "alice", "bob")
}

func TestSpringBoardClientsAtOnce(t *testing.T) {
	a := NewSpringBoard(t)
	users := []string{"ann", "ben", "cat"}
	t.Run("visits", func(t *testing.T) {
		for _, u := range users {
			t.Run(u, func(t *testing.T) {
				t.Parallel()
				SpringBoardClient(t, a.URL, u)
			})
		}
	})
	springWant(t, a, users...)
}

// springSignedIn signs user in, makes a board and shows its page; it
// returns the browser and the board's id, and the login page's token from
// before the login.
func springSignedIn(t *testing.T, base, user string) (u *springUser, board, stale string) {
	t.Helper()
	u = newSpringUser(t, base)
	u.do(http.MethodGet, "/boards?u="+user, "", http.StatusFound, "Accept", springNavigate)
	u.get("/login")
	_, stale = u.token("login")
	u.get(u.login(user))
	board = strings.TrimPrefix(u.submit("new-board", url.Values{"name": {user + "'s <board>"}}), base+"/boards/")
	u.get("/boards/" + board)
	return u, board, stale
}

// TestSpringBoardSession checks the session and CSRF conventions: Tomcat's
// cookie, the saved request, the masked tokens, session fixation, logout.
func TestSpringBoardSession(t *testing.T) {
	a := NewSpringBoard(t)
	u := newSpringUser(t, a.URL)
	cookieRE := regexp.MustCompile(`^JSESSIONID=[0-9A-F]{32}; Path=/; HttpOnly$`)
	ans := u.do(http.MethodGet, "/boards?u=zoe&x=1", "", http.StatusFound, "Accept", springNavigate)
	if got := ans.Header.Get("Location"); got != a.URL+"/login" || !cookieRE.MatchString(ans.Header.Get("Set-Cookie")) {
		t.Errorf("anonymous: Location %q, Set-Cookie %q", got, ans.Header.Get("Set-Cookie"))
	}
	for _, h := range springSecurityHeaders {
		if got := ans.Header.Get(h[0]); got != h[1] {
			t.Errorf("%s: %q", h[0], got)
		}
	}
	first := u.session()
	u.get("/login")
	if !strings.Contains(u.page, `<a href="`+html.EscapeString(a.URL+"/boards?u=zoe&x=1&continue")+`">`) {
		t.Errorf("the saved request is not shown: %s", u.page)
	}
	_, t1 := u.token("login")
	meta := springMetaRE.FindStringSubmatch(u.page)
	u.get("/login")
	_, t2 := u.token("login")
	if len(t1) != 96 || t1 == t2 || meta == nil || meta[1] != t1 || meta[2] != "X-CSRF-TOKEN" || u.session() != first {
		t.Errorf("tokens %q and %q (meta %q) in session %q, was %q", t1, t2, meta, u.session(), first)
	}
	raw := a.session(first).csrf
	if springUnmask(t1, raw) != raw || springUnmask(t2, raw) != raw || len(raw) != 36 {
		t.Errorf("tokens %q and %q do not unmask to %q", t1, t2, raw)
	}
	ans = u.do(http.MethodPost, "/login", url.Values{"username": {" zoe "}, "password": {"pw-zoe"}, "_csrf": {t1}}.Encode(), http.StatusFound,
		"Content-Type", "application/x-www-form-urlencoded")
	if got := ans.Header.Get("Location"); got != a.URL+"/boards?u=zoe&x=1&continue" || !cookieRE.MatchString(ans.Header.Get("Set-Cookie")) || u.session() == first {
		t.Errorf("login: Location %q, Set-Cookie %q", got, ans.Header.Get("Set-Cookie"))
	}
	if a.hasSession(first) || a.session(u.session()).csrf != "" {
		t.Error("the old session id still works, or the CSRF token was kept")
	}
	u.get(a.URL + "/boards?u=zoe&x=1&continue")
	if a.session(u.session()).saved != "" || !strings.Contains(u.page, `<strong id="who">zoe</strong>`) {
		t.Errorf("the saved request was not used up: %q", a.session(u.session()).saved)
	}
	ans = u.do(http.MethodPost, "/logout", "_csrf="+url.QueryEscape(u.tokenOf("logout")), http.StatusFound, "Content-Type", "application/x-www-form-urlencoded")
	if ans.Header.Get("Location") != "/login?logout" || ans.Header.Get("Set-Cookie") != springClearCookie || u.session() != "" {
		t.Errorf("logout: %q %q", ans.Header.Get("Location"), ans.Header.Get("Set-Cookie"))
	}
	// Without a saved request, a login is sent to /, and / to /boards.
	u.get("/login")
	if ans := u.do(http.MethodPost, "/login", "username=zoe&password=pw-zoe&_csrf="+url.QueryEscape(u.tokenOf("login")), http.StatusFound,
		"Content-Type", "application/x-www-form-urlencoded"); ans.Header.Get("Location") != "/" {
		t.Errorf("login without a saved request: %q", ans.Header.Get("Location"))
	}
	if ans := u.do(http.MethodGet, "/", "", http.StatusFound); ans.Header.Get("Location") != "/boards" {
		t.Errorf("/: %q", ans.Header.Get("Location"))
	}
	if got := a.Counts.Prefix("sessions"); got != 2 || a.Counts.Get("logouts") != 1 || a.Counts.Get("login redirects") != 1 {
		t.Errorf("counts %s", &a.Counts)
	}
}

// session is a copy of the session with that id (empty if none).
func (a *SpringBoard) session(id string) springSession {
	a.mu.Lock()
	defer a.mu.Unlock()
	if s := a.sessions[id]; s != nil {
		return *s
	}
	return springSession{}
}

func (a *SpringBoard) hasSession(id string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.sessions[id] != nil
}

func (u *springUser) tokenOf(form string) string {
	_, tok := u.token(form)
	return tok
}

// TestSpringBoardFrames checks the exact text of the frames the server
// sends.
func TestSpringBoardFrames(t *testing.T) {
	a := NewSpringBoard(t)
	u, board, _ := springSignedIn(t, a.URL, "alice")
	meta := springMetaRE.FindStringSubmatch(u.page)
	s, h, err := u.dialStomp()
	if err != nil {
		t.Fatal(err)
	}
	if p := h.Get("Sec-WebSocket-Protocol"); p != "v12.stomp" {
		t.Errorf("sub-protocol %q", p)
	}
	text := func() string {
		t.Helper()
		_ = s.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, data, err := s.ws.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	s.send("CONNECT", "", "accept-version", "1.1,1.2", "host", "localhost", "X-CSRF-TOKEN", html.UnescapeString(meta[1]))
	if got := text(); got != "CONNECTED\nversion:1.2\nheart-beat:0,0\nuser-name:alice\n\n\x00" {
		t.Errorf("CONNECTED: %q", got)
	}
	s.send("SUBSCRIBE", "", "id", "sub:0", "destination", "/topic/boards."+board, "receipt", "r:1")
	if got := text(); got != "RECEIPT\nreceipt-id:r\\c1\n\n\x00" {
		t.Errorf("RECEIPT: %q", got)
	}
	s.send("SEND", `{"title":"<b> & \"c\""}`, "destination", "/app/boards/"+board+"/cards", "content-type", "application/json")
	msgRE := regexp.MustCompile(`^MESSAGE\ndestination:/topic/boards\.` + board + `\ncontent-type:application/json\nsubscription:sub\\c0\n` +
		`message-id:[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}-0\ncontent-length:(\d+)\n\n(.*)\x00$`)
	got := text()
	m := msgRE.FindStringSubmatch(got)
	body := `{"event":"added","id":1,"boardId":` + board + `,"title":"<b> & \"c\"","column":"todo","position":0}`
	if m == nil || m[2] != body || m[1] != strconv.Itoa(len(body)) {
		t.Errorf("MESSAGE: %q", got)
	}
	s.send("SEND", `{"title":"x"}`, "destination", "/topic/boards."+board)
	if got := text(); got != "ERROR\nmessage:"+springSendFailed+"\ncontent-length:0\n\n\x00" {
		t.Errorf("ERROR: %q", got)
	}
	_, _, err = s.ws.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseProtocolError || ce.Text != "" {
		t.Errorf("after the ERROR: %v", err)
	}

	// A DISCONNECT without a receipt is answered "Session closed.".
	s, _, err = u.dialStomp()
	if err != nil {
		t.Fatal(err)
	}
	s.send("CONNECT", "", "accept-version", "1.2", "X-CSRF-TOKEN", html.UnescapeString(meta[1]))
	text()
	s.send("DISCONNECT", "")
	if got := text(); got != "ERROR\nmessage:Session closed.\ncontent-length:0\n\n\x00" {
		t.Errorf("DISCONNECT: %q", got)
	}
	if got := a.Counts.Get("stomp denied"); got != 1 || a.Counts.Get("receipts") != 1 {
		t.Errorf("counts %s", &a.Counts)
	}
}

func TestSpringBoardRefusals(t *testing.T) {
	a := NewSpringBoard(t)
	alice, aliceBoard, stale := springSignedIn(t, a.URL, "alice")
	bob, bobBoard, _ := springSignedIn(t, a.URL, "bob")
	anon := newSpringUser(t, a.URL)
	anon.get("/login")
	aliceToken := html.UnescapeString(springMetaRE.FindStringSubmatch(alice.page)[1])
	bobToken := html.UnescapeString(springMetaRE.FindStringSubmatch(bob.page)[1])
	aliceRaw := a.session(alice.session()).csrf
	form := func(kv ...string) string {
		v := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v.Encode()
	}
	ctype := []string{"Content-Type", "application/x-www-form-urlencoded"}
	htmlType := append([]string{"Accept", springNavigate}, ctype...)
	cases := []struct {
		name       string
		who        *springUser
		method     string
		path, body string
		header     []string
		status     int
		count, has string // the count that goes up by one; what the body or Location has
	}{
		{"a token from before the login", alice, "POST", "/boards", form("_csrf", stale, "name", "x"), ctype, 403, "403 csrf", `"status":403,"error":"Forbidden","path":"/boards"`},
		{"no token", alice, "POST", "/boards", form("name", "x"), htmlType, 403, "403 csrf", "There was an unexpected error (type=Forbidden, status=403)."},
		{"the raw token", alice, "POST", "/boards", form("_csrf", aliceRaw, "name", "x"), ctype, 403, "403 csrf", "Forbidden"},
		{"bob's token", alice, "POST", "/boards", form("_csrf", bobToken, "name", "x"), ctype, 403, "403 csrf", "Forbidden"},
		{"bob's token in the header", alice, "POST", "/logout", "", []string{"X-CSRF-TOKEN", bobToken}, 403, "403 csrf", "Forbidden"},
		{"the token in the header", alice, "POST", "/boards", form("name", " "), append([]string{"X-CSRF-TOKEN", aliceToken}, ctype...), 200, "form invalid", "must not be blank"},
		{"another user's board", alice, "GET", "/boards/" + bobBoard, "", []string{"Accept", springNavigate}, 404, "404 foreign", "Whitelabel Error Page"},
		{"deleting another user's board", alice, "POST", "/boards/" + bobBoard + "/delete", form("_csrf", aliceToken), ctype, 404, "404 foreign", `"status":404`},
		{"a missing board", alice, "GET", "/boards/99", "", nil, 404, "404 missing", `"error":"Not Found"`},
		{"a non-numeric id", alice, "GET", "/boards/x", "", nil, 400, "400 bad request", `"error":"Bad Request"`},
		{"a GET of the delete action", alice, "GET", "/boards/" + aliceBoard + "/delete", "", nil, 405, "405 method", "Method Not Allowed"},
		{"no such page", alice, "GET", "/cards", "", nil, 404, "404 route", `"path":"/cards"`},
		{"a path parameter", alice, "GET", "/boards;jsessionid=x", "", nil, 400, "400 firewall", `"status":400`},
		{"a wrong session id", newSpringUser(t, a.URL), "GET", "/boards", "", []string{"Cookie", "JSESSIONID=0123456789ABCDEF0123456789ABCDEF"}, 302, "unknown session", a.URL + "/login"},
		{"a wrong password", anon, "POST", "/login", form("_csrf", anon.tokenOf("login"), "username", "eve", "password", "pw-bob"), ctype, 302, "login refused", "/login?error"},
		{"an anonymous board page", anon, "GET", "/boards/" + aliceBoard, "", nil, 302, "login redirects", a.URL + "/login"},
		{"another origin's handshake", alice, "GET", "/ws", "", []string{"Origin", "http://evil.example", "Upgrade", "websocket", "Connection", "Upgrade",
			"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version", "13"}, 403, "403 origin", ""},
		{"a handshake without Upgrade", alice, "GET", "/ws", "", nil, 400, "400 handshake", `Can "Upgrade" only to "WebSocket".`},
		{"an anonymous handshake", anon, "GET", "/ws", "", []string{"Upgrade", "websocket", "Connection", "Upgrade",
			"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version", "13"}, 302, "login redirects", a.URL + "/login"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tb := tc.who.tb
			tc.who.tb = t
			defer func() { tc.who.tb = tb }()
			before := a.Counts.Get(tc.count)
			ans := tc.who.do(tc.method, tc.path, tc.body, tc.status, tc.header...)
			if got := a.Counts.Get(tc.count); got != before+1 {
				t.Errorf("count %q went from %d to %d (%s)", tc.count, before, got, &a.Counts)
			}
			if got := ans.Header.Get("Location") + string(ans.Body); !strings.Contains(got, tc.has) {
				t.Errorf("answer %.300q does not have %q", got, tc.has)
			}
		})
	}

	// STOMP: each refusal is an ERROR frame, then the close.
	connect := []string{"accept-version", "1.2,1.1,1.0", "heart-beat", "10000,10000", "X-CSRF-TOKEN", aliceToken}
	stomp := []struct {
		name    string
		connect []string // the CONNECT's headers, none if nil
		frame   string   // the frame refused
		count   string
		message string
	}{
		{"CONNECT without a token", nil, "CONNECT\naccept-version:1.2\n\n\x00", "stomp csrf", springSendFailed},
		{"CONNECT with the raw token", nil, "CONNECT\naccept-version:1.2\nX-CSRF-TOKEN:" + aliceRaw + "\n\n\x00", "stomp csrf", springSendFailed},
		{"CONNECT with a token from before the login", nil, "CONNECT\naccept-version:1.2\nX-CSRF-TOKEN:" + stale + "\n\n\x00", "stomp csrf", springSendFailed},
		{"CONNECT with bob's token", nil, "CONNECT\naccept-version:1.2\nX-CSRF-TOKEN:" + bobToken + "\n\n\x00", "stomp csrf", springSendFailed},
		{"CONNECT with the token in lower case", nil, "CONNECT\naccept-version:1.2\nx-csrf-token:" + aliceToken + "\n\n\x00", "stomp csrf", springSendFailed},
		{"SUBSCRIBE to bob's board", connect, "SUBSCRIBE\nid:sub-0\ndestination:/topic/boards." + bobBoard + "\n\n\x00", "stomp foreign", springSendFailed},
		{"SEND to bob's board", connect, "SEND\ndestination:/app/boards/" + bobBoard + "/cards\ncontent-type:application/json\nreceipt:r-1\n\n{\"title\":\"x\"}\x00", "stomp foreign", springSendFailed},
		{"SEND to a missing board", connect, "SEND\ndestination:/app/boards/99/cards\n\n{\"title\":\"x\"}\x00", "stomp missing", springSendFailed},
		{"SEND to a topic", connect, "SEND\ndestination:/topic/boards." + aliceBoard + "\n\n{}\x00", "stomp denied", springSendFailed},
		{"SUBSCRIBE to a queue", connect, "SUBSCRIBE\nid:sub-0\ndestination:/queue/x\n\n\x00", "stomp denied", springSendFailed},
		{"a frame before CONNECT", nil, "SUBSCRIBE\nid:sub-0\ndestination:/topic/boards." + aliceBoard + "\n\n\x00", "stomp bad frame", "Unknown session: "},
		{"a second CONNECT", connect, "CONNECT\naccept-version:1.2\nX-CSRF-TOKEN:" + aliceToken + "\n\n\x00", "stomp bad frame", "Session already exists"},
		{"an unknown command", connect, "FOO\n\n\x00", "stomp bad frame", "No enum constant org.springframework.messaging.simp.stomp.StompCommand.FOO"},
		{"a header without a colon", connect, "SEND\ndestination\n\n\x00", "stomp bad frame", "Illegal header: 'destination'. A header must be of the form <name>:[<value>]."},
		{"a body on SUBSCRIBE", connect, "SUBSCRIBE\nid:s\ndestination:/topic/boards." + aliceBoard + "\n\nx\x00", "stomp bad frame", "SUBSCRIBE shouldn't have a payload: length=1, headers={}"},
		{"no NUL after content-length", connect, "SEND\ndestination:/app/x\ncontent-length:1\n\nxy\x00", "stomp bad frame", "Frame must be terminated with a null octet"},
		{"a bad escape", connect, "SEND\ndestination:/app\\x\n\n\x00", "stomp bad frame", "Illegal escape sequence at index 4: /app\\x"},
	}
	outer := t
	for _, tc := range stomp {
		t.Run(tc.name, func(t *testing.T) {
			alice.tb = t
			defer func() { alice.tb = outer }()
			s, _, err := alice.dialStomp()
			if err != nil {
				t.Fatal(err)
			}
			s.tb = t
			if tc.connect != nil {
				s.send("CONNECT", "", tc.connect...)
				s.expect("CONNECTED", func(f springFrame) bool { return f.cmd == "CONNECTED" })
			}
			before := a.Counts.Get(tc.count)
			s.raw(tc.frame)
			f, err := s.read()
			if m, _ := f.get("message"); err != nil || f.cmd != "ERROR" || !strings.HasPrefix(m, tc.message) || len(f.body) != 0 {
				t.Errorf("answer %v %q, %v", f.cmd, f.hdr, err)
			}
			if _, err := s.read(); !websocket.IsCloseError(err, websocket.CloseProtocolError) {
				t.Errorf("after the ERROR: %v", err)
			}
			if got := a.Counts.Get(tc.count); got != before+1 {
				t.Errorf("count %q went from %d to %d (%s)", tc.count, before, got, &a.Counts)
			}
		})
	}

	// What a @MessageMapping method throws on is only logged: no frame, no
	// receipt, and the session goes on.
	t.Run("quiet failures", func(t *testing.T) {
		alice.tb = t
		s, _, err := alice.dialStomp()
		if err != nil {
			t.Fatal(err)
		}
		s.send("CONNECT", "", connect...)
		s.expect("CONNECTED", func(f springFrame) bool { return f.cmd == "CONNECTED" })
		for _, f := range []struct{ body, dest, count string }{
			{`{"column":"doing"}`, "/app/boards/" + aliceBoard + "/cards/99/move", "stomp missing"},
			{`{"title":" "}`, "/app/boards/" + aliceBoard + "/cards", "stomp invalid"},
			{`not json`, "/app/boards/" + aliceBoard + "/cards", "stomp invalid"},
			{`{"title":"x"}`, "/app/boards/" + aliceBoard + "/lists", "stomp dropped"},
		} {
			before := a.Counts.Get(f.count)
			s.send("SEND", f.body, "destination", f.dest, "receipt", "quiet")
			s.send("SUBSCRIBE", "", "id", "s", "destination", "/topic/boards."+aliceBoard, "receipt", "next")
			s.expect("RECEIPT next", func(g springFrame) bool { r, _ := g.get("receipt-id"); return r == "next" })
			if got := a.Counts.Get(f.count); got != before+1 {
				t.Errorf("%s: count %q went from %d to %d", f.dest, f.count, before, got)
			}
		}
		got := 0
		for _, f := range s.inbox {
			if r, _ := f.get("receipt-id"); r == "quiet" {
				got++
			}
		}
		if got != 1 { // the dropped one was handled without an exception
			t.Errorf("%d receipts for the failures: %v", got, s.inbox)
		}
	})
}

func TestSpringBoardBrowser(t *testing.T) {
	b := StartBrowser(t) // skips without Chromium
	a := NewSpringBoard(t)
	users := []string{"alice", "bob"}
	var pages []*Page
	for _, u := range users { // two browser contexts at once
		pages = append(pages, b.Open(a.URL+"/boards?u="+u))
	}
	for i, p := range pages {
		if text, err := p.WaitText("root", time.Minute); err != nil || text != "done" {
			t.Fatalf("%s: %q, %v (%s)", users[i], text, err, &a.Counts)
		}
	}
	springWant(t, a, users...)
}
