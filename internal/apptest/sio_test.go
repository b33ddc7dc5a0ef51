package apptest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// sioWant checks the counts of whole visits by users; redirects is the
// number of anonymous requests sent to log in; more are other counts
// expected, by name.
func sioWant(t *testing.T, a *SocketIO, redirects int64, more map[string]int64, users ...string) {
	t.Helper()
	n := int64(len(users))
	want := map[string]int64{"sessions": n, "login redirects": redirects, "logouts": n, "handshakes": n, "upgrades": n,
		"connections": n, "joins": n, "messages answered": 3 * n, "edits": n}
	for _, name := range SocketIORefusals {
		if _, ok := want[name]; !ok {
			want[name] = 0
		}
	}
	for name, w := range more {
		want[name] = w
	}
	for name, w := range want {
		if got := a.Counts.Get(name); got != w {
			t.Errorf("count %q = %d, want %d (%s)", name, got, w, &a.Counts)
		}
	}
	if got := a.Users(); !slices.Equal(got, users) {
		t.Errorf("Users() = %q, want %q", got, users)
	}
}

func TestSocketIOClients(t *testing.T) {
	a := NewSocketIO(t)
	SocketIOClient(t, a.URL, "alice")
	SocketIOClient(t, a.URL, "bob")
	sioWant(t, a, 2, nil, "alice", "bob")
	a.mu.Lock()
	defer a.mu.Unlock()
	// The sessions left are those of the login pages after logout.
	if len(a.engines) != 0 || len(a.members) != 0 || len(a.store) != 2 || a.lastMsg != 6 {
		t.Errorf("left: %d engines, %d rooms, %d sessions; %d messages", len(a.engines), len(a.members), len(a.store), a.lastMsg)
	}
}

func TestSocketIOClientsAtOnce(t *testing.T) {
	a := NewSocketIO(t)
	users := []string{"ann", "ben", "cat"}
	t.Run("visits", func(t *testing.T) {
		for _, u := range users {
			t.Run(u, func(t *testing.T) {
				t.Parallel()
				SocketIOClient(t, a.URL, u)
			})
		}
	})
	sioWant(t, a, 3, nil, users...)
}

// TestSocketIOCookie checks connect.sid: signed as cookie-signature signs,
// set only for a new session that was modified, a new id at login, and
// cleared at logout.
func TestSocketIOCookie(t *testing.T) {
	a := NewSocketIO(t)
	u := newSioUser(t, a.URL)
	cookieRE := regexp.MustCompile(`^connect\.sid=s%3A([A-Za-z0-9_-]{32})\.([A-Za-z0-9%]+); Path=/; HttpOnly$`)
	read := func(what string, ans Answer) string {
		t.Helper()
		m := cookieRE.FindStringSubmatch(ans.Header.Get("Set-Cookie"))
		if m == nil || len(ans.Header.Values("Set-Cookie")) != 1 {
			t.Fatalf("%s: Set-Cookie %q", what, ans.Header.Values("Set-Cookie"))
		}
		sig, _ := url.QueryUnescape(m[2])
		if sioSign(m[1]) != m[1]+"."+sig || strings.HasSuffix(sig, "=") || len(sig) != 43 {
			t.Fatalf("%s: %q is not the signature of %q", what, sig, m[1])
		}
		return m[1]
	}
	first := u.do(http.MethodGet, "/login", "", http.StatusOK)
	id := read("login page", first)
	if h := first.Header; h.Get("X-Powered-By") != "Express" || !strings.HasPrefix(h.Get("ETag"), `W/"`) || h.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Errorf("login page headers %v", h)
	}
	if ans := u.do(http.MethodGet, "/login", "", http.StatusOK); ans.Header.Get("Set-Cookie") != "" {
		t.Errorf("a known session set %q", ans.Header.Get("Set-Cookie"))
	}
	u.page = string(first.Body)
	ans := u.form("/login", url.Values{"_csrf": {u.token()}, "username": {"zoe"}, "password": {"pw-zoe"}}, http.StatusFound)
	if id2 := read("login", ans); id2 == id {
		t.Errorf("the session id did not change at login")
	}
	if got := string(ans.Body); got != "<p>Found. Redirecting to /chat</p>" || ans.Header.Get("Vary") != "Accept" {
		t.Errorf("login redirect body %q, Vary %q", got, ans.Header.Get("Vary"))
	}
	u.get("/chat")
	ans = u.form("/logout", url.Values{"_csrf": {u.token()}}, http.StatusFound)
	if got := ans.Header.Get("Set-Cookie"); got != "connect.sid=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT" {
		t.Errorf("logout Set-Cookie %q", got)
	}
	// Without Accept, res.format picks text.
	if ans := Do(t, u.c, http.MethodGet, a.URL+"/chat", ""); ans.Status != 302 || string(ans.Body) != "Found. Redirecting to /login" {
		t.Errorf("anonymous /chat: %d %q", ans.Status, ans.Body)
	}
	ans = u.do(http.MethodGet, "/nowhere", "", http.StatusNotFound)
	if !strings.Contains(string(ans.Body), "<pre>Cannot GET /nowhere</pre>") || ans.Header.Get("Content-Security-Policy") != "default-src 'none'" {
		t.Errorf("404: %q %v", ans.Body, ans.Header)
	}
	if a.Counts.Get("404 route") != 1 || a.Counts.Get("login redirects") != 1 {
		t.Errorf("counts %s", &a.Counts)
	}
}

// TestSocketIOCSRF replays tokens: csurf's tokens are good only with the
// secret of the session that made them.
func TestSocketIOCSRF(t *testing.T) {
	a := NewSocketIO(t)
	alice, bob := newSioUser(t, a.URL), newSioUser(t, a.URL)
	alice.get("/login")
	loginToken := alice.token()
	alice.form("/login", url.Values{"_csrf": {loginToken}, "username": {"alice"}, "password": {"pw-alice"}}, http.StatusFound)
	alice.get("/chat")
	chatToken := alice.token()
	bob.login("bob")
	form := func(kv ...string) string {
		v := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v.Encode()
	}
	ctype := []string{"Content-Type", "application/x-www-form-urlencoded"}
	cases := []struct {
		name   string
		who    *sioUser
		path   string
		body   string
		header []string
		status int
		count  string
		has    string
	}{
		{"the login page's token after login", alice, "/login", form("_csrf", loginToken, "username", "alice", "password", "pw-alice"), ctype, 403, "403 csrf", "form tampered with"},
		{"alice's token used by bob", bob, "/logout", form("_csrf", chatToken), ctype, 403, "403 csrf", "form tampered with"},
		{"no token", alice, "/logout", "", ctype, 403, "403 csrf", "form tampered with"},
		{"a forged token", alice, "/logout", form("_csrf", "abcdefgh-"+strings.Repeat("x", 27)), ctype, 403, "403 csrf", "form tampered with"},
		{"a wrong password", bob, "/login", form("_csrf", bob.token(), "username", "bob", "password", "pw-alice"), ctype, 200, "login refused", "Invalid username or password."},
		{"the token in X-CSRF-Token", alice, "/logout", "", append([]string{"X-CSRF-Token", chatToken}, ctype...), 302, "logouts", "Redirecting to /login"},
		{"the chat token replayed after logout", alice, "/logout", form("_csrf", chatToken), ctype, 403, "403 csrf", "form tampered with"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.who.tb = t
			before := a.Counts.Get(tc.count)
			ans := tc.who.do(http.MethodPost, tc.path, tc.body, tc.status, tc.header...)
			if got := a.Counts.Get(tc.count); got != before+1 {
				t.Errorf("count %q went from %d to %d", tc.count, before, got)
			}
			if !strings.Contains(string(ans.Body), tc.has) {
				t.Errorf("answer %.300q does not have %q", ans.Body, tc.has)
			}
		})
	}
	if got := a.Counts.Get("sessions"); got != 2 {
		t.Errorf("sessions = %d (%s)", got, &a.Counts)
	}
}

// TestSocketIOForeign touches another user's room and message.
func TestSocketIOForeign(t *testing.T) {
	a := NewSocketIO(t)
	alice, bob := newSioUser(t, a.URL), newSioUser(t, a.URL)
	alice.login("alice")
	bob.login("bob")
	ka, kb := alice.connect(), bob.connect()
	if ka.hello.Room == kb.hello.Room || ka.hello.User != "alice" || kb.hello.User != "bob" {
		t.Fatalf("welcomes %+v and %+v", ka.hello, kb.hello)
	}
	ka.ack("join", ka.hello.Room)
	msg := ka.ack("message", map[string]string{"room": ka.hello.Room, "text": "alice's"})
	ka.event("message", nil)
	cases := []struct {
		name  string
		event string
		arg   any
		count string
		err   string
	}{
		{"message before join", "message", map[string]string{"room": kb.hello.Room, "text": "hi"}, "not joined", "forbidden"},
		{"join another user's room", "join", ka.hello.Room, "foreign room", "forbidden"},
		{"write to another user's room", "message", map[string]string{"room": ka.hello.Room, "text": "hi"}, "foreign room", "forbidden"},
		{"join a room that does not exist", "join", sioUUID(), "missing room", "not found"},
		{"edit another user's message", "edit", map[string]any{"id": msg.ID, "text": "bob's now"}, "foreign message", "forbidden"},
		{"edit a message that does not exist", "edit", map[string]any{"id": msg.ID + 100, "text": "x"}, "missing message", "not found"},
		{"a message to no room", "message", map[string]string{"text": "hi"}, "missing room", "not found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			kb.u.tb = t
			before := a.Counts.Get(tc.count)
			if v := kb.ack(tc.event, tc.arg); v.Error != tc.err {
				t.Errorf("ack %+v, want error %q", v, tc.err)
			}
			if got := a.Counts.Get(tc.count); got != before+1 {
				t.Errorf("count %q went from %d to %d", tc.count, before, got)
			}
		})
	}
	bob.tb = t
	kb.ack("join", kb.hello.Room)
	if v := kb.ack("message", map[string]string{"room": kb.hello.Room, "text": " "}); v.Error != "invalid" || a.Counts.Get("invalid message") != 1 {
		t.Errorf("blank message: %+v (%s)", v, &a.Counts)
	}
	kb.sendEngine(`42["shout","x"]`)
	kb.ack("join", kb.hello.Room) // after the unknown event
	if a.Counts.Get("unknown event") != 1 {
		t.Errorf("unknown event not counted: %s", &a.Counts)
	}
	// Alice's message is hers still, and nobody but her room saw it.
	a.mu.Lock()
	text := a.messages[msg.ID].Text
	a.mu.Unlock()
	if text != "alice's" || len(kb.events) != 0 {
		t.Errorf("alice's message %q; bob got %d events", text, len(kb.events))
	}
}

// TestSocketIOEngine checks Engine.IO's and Socket.IO's refusals.
func TestSocketIOEngine(t *testing.T) {
	a := NewSocketIO(t)
	anon := newSioUser(t, a.URL)
	check := func(what, count string, before int64) {
		t.Helper()
		if got := a.Counts.Get(count); got != before+1 {
			t.Errorf("%s: count %q went from %d to %d (%s)", what, count, before, got, &a.Counts)
		}
	}

	// An unknown sid, polling and WebSocket.
	n := a.Counts.Get("unknown sid")
	ans := anon.do(http.MethodGet, "/socket.io/?EIO=4&transport=polling&sid=AAAAAAAAAAAAAAAAAAAA&t=x", "", http.StatusBadRequest)
	if string(ans.Body) != `{"code":1,"message":"Session ID unknown"}` || ans.Header.Get("Content-Type") != "application/json" {
		t.Errorf("unknown sid: %q %v", ans.Body, ans.Header)
	}
	check("unknown sid", "unknown sid", n)
	n = a.Counts.Get("unknown sid")
	_, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(a.URL, "http")+"/socket.io/?EIO=4&transport=websocket&sid=AAAAAAAAAAAAAAAAAAAA", nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("WebSocket with an unknown sid: %v %v", err, resp)
	}
	if b, _ := io.ReadAll(resp.Body); string(b) != "Session ID unknown" {
		t.Errorf("WebSocket with an unknown sid: %q", b)
	}
	resp.Body.Close()
	check("unknown sid upgrade", "unknown sid", n)

	// Other bad requests.
	for _, tc := range []struct{ method, query, body string }{
		{"GET", "EIO=4&transport=carrier-pigeon", `{"code":0,"message":"Transport unknown"}`},
		{"POST", "EIO=4&transport=polling", `{"code":2,"message":"Bad handshake method"}`},
		{"GET", "EIO=3&transport=polling", `{"code":5,"message":"Unsupported protocol version"}`},
		{"GET", "EIO=4&transport=websocket", `{"code":3,"message":"Bad request"}`},
	} {
		n := a.Counts.Get("bad request")
		if ans := anon.do(tc.method, "/socket.io/?"+tc.query, "", http.StatusBadRequest); string(ans.Body) != tc.body {
			t.Errorf("%s %s: %q", tc.method, tc.query, ans.Body)
		}
		check(tc.query, "bad request", n)
	}

	// An anonymous connection is refused.
	n = a.Counts.Get("connect refused")
	k := anon.handshake()
	if k.open.PingInterval != 25000 || k.open.PingTimeout != 20000 || k.open.MaxPayload != 1000000 || !slices.Equal(k.open.Upgrades, []string{"websocket"}) {
		t.Errorf("open packet %+v", k.open)
	}
	k.post("40")
	if _, body, err := k.pollOnce(); err != nil || body != `44{"message":"unauthorized"}` {
		t.Errorf("anonymous CONNECT answered %q, %v", body, err)
	}
	check("anonymous CONNECT", "connect refused", n)
	// ... and an event without a socket closes the session.
	n = a.Counts.Get("bad packet")
	k.post(`42["join","x"]`)
	if _, body, _ := k.pollOnce(); body != "6"+sioSep+"1" { // a noop, and the orderly close
		t.Errorf("after an event without a socket: %q", body)
	}
	check("event without a socket", "bad packet", n)

	// Another namespace; a packet that does not parse.
	k = anon.handshake()
	n = a.Counts.Get("invalid namespace")
	k.post("40/admin,")
	if _, body, _ := k.pollOnce(); body != `44/admin,{"message":"Invalid namespace"}` {
		t.Errorf("CONNECT to /admin answered %q", body)
	}
	check("namespace", "invalid namespace", n)
	n = a.Counts.Get("bad packet")
	k.post("9")
	check("packet type 9", "bad packet", n)
	if ans := anon.do(http.MethodGet, k.path(), "", http.StatusBadRequest); !strings.Contains(string(ans.Body), `"code":1`) {
		t.Errorf("after a parse error: %q", ans.Body)
	}

	// A logged-in user, upgraded: polling again is a bad request.
	alice := newSioUser(t, a.URL)
	alice.login("alice")
	k = alice.connect()
	k.ack("join", k.hello.Room) // a round trip on the WebSocket: upgraded
	n = a.Counts.Get("bad request")
	if ans := alice.do(http.MethodGet, k.path(), "", http.StatusBadRequest); string(ans.Body) != `{"code":3,"message":"Bad request"}` {
		t.Errorf("polling after the upgrade: %q", ans.Body)
	}
	check("polling after the upgrade", "bad request", n)

	// A cookie signed with another secret, and one of a session gone.
	n = a.Counts.Get("bad cookie")
	ans = anon.do(http.MethodGet, "/chat?u=x", "", http.StatusFound, "Cookie", "connect.sid="+url.QueryEscape("s:"+strings.Repeat("a", 32)+".forged"))
	check("forged cookie", "bad cookie", n)
	if ans.Header.Get("Set-Cookie") == "" {
		t.Errorf("no new session for a forged cookie")
	}
	stale := newSioUser(t, a.URL)
	stale.login("stale")
	cookies := stale.jar.Cookies(&url.URL{Scheme: "http", Host: strings.TrimPrefix(a.URL, "http://"), Path: "/"})
	stale.logout()
	n = a.Counts.Get("unknown session")
	anon.do(http.MethodGet, "/chat", "", http.StatusFound, "Cookie", cookies[0].String())
	check("session gone", "unknown session", n)

	// The stale cookie's handshake cannot connect.
	n = a.Counts.Get("connect refused")
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, a.URL+"/socket.io/?EIO=4&transport=polling&t=x", nil)
	req.Header.Set("Cookie", cookies[0].String())
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var open sioOpen
	_ = json.Unmarshal(b[1:], &open)
	k = &sioConn{u: anon, open: open}
	k.post("40")
	if _, body, _ := k.pollOnce(); body != `44{"message":"unauthorized"}` {
		t.Errorf("stale session's CONNECT answered %q", body)
	}
	check("stale session's CONNECT", "connect refused", n)
}

// TestSocketIOLogoutDisconnects: a socket still open at logout is
// disconnected, and an event after that closes the connection.
func TestSocketIOLogoutDisconnects(t *testing.T) {
	a := NewSocketIO(t)
	u := newSioUser(t, a.URL)
	u.login("dan")
	k := u.connect()
	k.ack("join", k.hello.Room)
	u.logout()
	if p := k.sio(); p != "1" {
		t.Fatalf("after logout: %q", p)
	}
	k.closing.Store(true)
	n := a.Counts.Get("bad packet")
	k.sendEngine(`42["join","x"]`)
	select {
	case <-k.readDone:
	case <-time.After(2 * time.Second):
		t.Fatal("the connection stayed open")
	}
	if a.Counts.Get("bad packet") != n+1 {
		t.Errorf("counts %s", &a.Counts)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.engines) != 0 || len(a.members) != 0 {
		t.Errorf("%d engines, %d rooms left", len(a.engines), len(a.members))
	}
}

// TestSocketIOPing: the server pings; a pong keeps the session, none
// closes it.
func TestSocketIOPing(t *testing.T) {
	a := NewSocketIO(t)
	a.SetPing(100*time.Millisecond, 150*time.Millisecond)
	u := newSioUser(t, a.URL)
	u.login("eve")
	k := u.handshake()
	if k.open.PingInterval != 100 || k.open.PingTimeout != 150 {
		t.Fatalf("open %+v", k.open)
	}
	k.post("40")
	for i := range 3 {
		var got []string
		for !slices.Contains(got, "2") {
			_, body, err := k.pollOnce()
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, strings.Split(body, sioSep)...)
		}
		if i < 2 {
			k.post("3")
		}
	}
	time.Sleep(300 * time.Millisecond)
	if status, body, _ := k.pollOnce(); status != http.StatusBadRequest {
		t.Errorf("after no pong: %d %q", status, body)
	}
	if a.Counts.Get("ping timeout") != 1 || a.Counts.Get("connections") != 1 {
		t.Errorf("counts %s", &a.Counts)
	}
}

func TestSocketIODecode(t *testing.T) {
	for s, want := range map[string]string{
		`0`: "0 / -1 ", `0{"token":"x"}`: `0 / -1 {"token":"x"}`, `0/admin,`: "0 /admin -1 ", `2["message",1]`: `2 / -1 ["message",1]`,
		`212["edit",{}]`: `2 / 12 ["edit",{}]`, `2/chat,3["a"]`: `2 /chat 3 ["a"]`, `3[]`: "3 / -1 []", `1`: "1 / -1 ",
		`0"x"`: "error", `2{}`: "error", `2["disconnect"]`: "error", `2[]`: "error", `1[]`: "error", `2[oops`: "error",
		`7`: "error", ``: "error", `51-["a",{"_placeholder":true,"num":0}]`: "error", `4"nope"`: `4 / -1 "nope"`,
	} {
		p, err := sioDecode(s)
		got := "error"
		if err == nil {
			got = fmt.Sprintf("%d %s %d %s", p.typ, p.nsp, p.id, p.data)
		}
		if got != want {
			t.Errorf("sioDecode(%q) = %q, want %q", s, got, want)
		}
	}
}

func TestSocketIOBrowser(t *testing.T) {
	b := StartBrowser(t) // skips without Chromium
	a := NewSocketIO(t)
	users := []string{"alice", "bob"}
	var pages []*Page
	for _, u := range users { // two browser contexts at once
		pages = append(pages, b.Open(a.URL+"/chat?u="+u))
	}
	for i, p := range pages {
		if text, err := p.WaitText("root", time.Minute); err != nil || text != "done" {
			t.Fatalf("%s: %q, %v (%s)", users[i], text, err, &a.Counts)
		}
	}
	sioWant(t, a, 2, nil, users...)
}
