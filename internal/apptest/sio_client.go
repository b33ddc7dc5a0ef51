package apptest

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// SocketIOClient is a person visiting a SocketIO with a browser, done with
// net/http and gorilla/websocket: GET /chat?u=NAME (302 to the login
// page), the login form posted with its _csrf, the chat page, then the
// page's Socket.IO client as socket.io-client does it (the polling
// handshake; the CONNECT by POST, polls, the WebSocket probe and upgrade
// with the held poll released by a noop), join, three messages (each
// acked and broadcast back), an edit of the first, the socket's DISCONNECT
// and the WebSocket closed, and the logout form. It fails tb on any
// unexpected answer.
func SocketIOClient(tb testing.TB, base, user string) {
	tb.Helper()
	u := newSioUser(tb, base)
	u.login(user)
	k := u.connect()
	k.chat(user)
	k.leave()
	u.logout()
}

// sioUser is a browser context: a cookie jar, connections of its own and
// the last page.
type sioUser struct {
	tb   testing.TB
	c    *http.Client
	jar  http.CookieJar
	base string
	page string
}

const sioNavigate = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"

var sioTokenRE = regexp.MustCompile(`<input type="hidden" name="_csrf" value="([^"]+)">`)

func newSioUser(tb testing.TB, base string) *sioUser {
	jar, _ := cookiejar.New(nil)
	tr := &http.Transport{}
	tb.Cleanup(tr.CloseIdleConnections)
	return &sioUser{tb: tb, base: base, jar: jar, c: &http.Client{Jar: jar, Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// do sends a request to path under base and fails the test unless the
// status is want.
func (u *sioUser) do(method, path, body string, want int, header ...string) Answer {
	u.tb.Helper()
	ans := Do(u.tb, u.c, method, u.base+path, body, header...)
	if ans.Status != want {
		u.tb.Fatalf("%s %s: %d, want %d: %.300s", method, path, ans.Status, want, ans.Body)
	}
	return ans
}

// get navigates to a page and keeps it.
func (u *sioUser) get(path string) {
	u.tb.Helper()
	u.page = string(u.do(http.MethodGet, path, "", http.StatusOK, "Accept", sioNavigate).Body)
}

// form posts a form as the browser does.
func (u *sioUser) form(path string, v url.Values, want int) Answer {
	u.tb.Helper()
	return u.do(http.MethodPost, path, v.Encode(), want, "Content-Type", "application/x-www-form-urlencoded", "Accept", sioNavigate, "Origin", u.base)
}

// token is the last page's _csrf.
func (u *sioUser) token() string {
	u.tb.Helper()
	m := sioTokenRE.FindStringSubmatch(u.page)
	if m == nil {
		u.tb.Fatalf("no _csrf on the page: %.300s", u.page)
	}
	return m[1]
}

func (u *sioUser) login(name string) {
	u.tb.Helper()
	q := "?u=" + url.QueryEscape(name)
	if loc := u.do(http.MethodGet, "/chat"+q, "", http.StatusFound, "Accept", sioNavigate).Header.Get("Location"); loc != "/login"+q {
		u.tb.Fatalf("anonymous /chat sent to %q", loc)
	}
	u.get("/login" + q)
	ans := u.form("/login", url.Values{"_csrf": {u.token()}, "username": {name}, "password": {"pw-" + name}}, http.StatusFound)
	if loc := ans.Header.Get("Location"); loc != "/chat" {
		u.tb.Fatalf("logged in, sent to %q: %.300s", loc, ans.Body)
	}
	u.get("/chat")
}

func (u *sioUser) logout() {
	u.tb.Helper()
	if loc := u.form("/logout", url.Values{"_csrf": {u.token()}}, http.StatusFound).Header.Get("Location"); loc != "/login" {
		u.tb.Fatalf("logged out, sent to %q", loc)
	}
	u.get("/login")
}

// sioRandomString is engine.io-client's cache buster: the time in base
// 36 but its first 3 digits, and 3 random base-36 digits.
func sioRandomString() string {
	b := []byte(strconv.FormatInt(time.Now().UnixMilli(), 36)[3:])
	for range 3 {
		n, _ := rand.Int(rand.Reader, big.NewInt(36))
		b = strconv.AppendInt(b, n.Int64(), 36)
	}
	return string(b)
}

// sioOpen is the handshake's open packet.
type sioOpen struct {
	Sid          string   `json:"sid"`
	Upgrades     []string `json:"upgrades"`
	PingInterval int      `json:"pingInterval"`
	PingTimeout  int      `json:"pingTimeout"`
	MaxPayload   int      `json:"maxPayload"`
}

// sioConn is the page's Socket.IO client: an Engine.IO session, polled by
// a goroutine until the upgrade, then read from the WebSocket by another.
type sioConn struct {
	u        *sioUser
	open     sioOpen
	in       chan string // Engine.IO packets, in order
	errc     chan error
	ws       *websocket.Conn
	upgraded bool
	pausing  atomic.Bool
	closing  atomic.Bool
	pollDone chan struct{}
	readDone chan struct{}
	nextAck  int
	events   [][]json.RawMessage // events not looked at yet
	hello    struct {
		User string `json:"user"`
		Room string `json:"room"`
	}
}

// path is a polling request's, with its cache buster.
func (k *sioConn) path() string {
	return "/socket.io/?EIO=4&transport=polling&sid=" + url.QueryEscape(k.open.Sid) + "&t=" + sioRandomString()
}

// handshake opens an Engine.IO session by polling.
func (u *sioUser) handshake() *sioConn {
	u.tb.Helper()
	ans := u.do(http.MethodGet, "/socket.io/?EIO=4&transport=polling&t="+sioRandomString(), "", http.StatusOK, "Accept", "*/*")
	k := &sioConn{u: u, in: make(chan string, 1024), errc: make(chan error, 4)}
	first, _, _ := strings.Cut(string(ans.Body), sioSep)
	if !strings.HasPrefix(first, "0") || json.Unmarshal([]byte(first[1:]), &k.open) != nil || len(k.open.Sid) != 20 {
		u.tb.Fatalf("handshake: %q", ans.Body)
	}
	return k
}

// post sends a payload by POST.
func (k *sioConn) post(payload string) {
	k.u.tb.Helper()
	if ans := k.u.do(http.MethodPost, k.path(), payload, http.StatusOK, "Content-Type", "text/plain;charset=UTF-8", "Accept", "*/*"); string(ans.Body) != "ok" {
		k.u.tb.Fatalf("POST %q: %q", payload, ans.Body)
	}
}

// pollOnce is one GET, from any goroutine.
func (k *sioConn) pollOnce() (int, string, error) {
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, k.u.base+k.path(), nil)
	req.Header.Set("Accept", "*/*")
	resp, err := k.u.c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// startPolling polls until the transport pauses, or the server closes.
func (k *sioConn) startPolling() {
	k.pollDone = make(chan struct{})
	go func() {
		defer close(k.pollDone)
		for !k.pausing.Load() {
			status, body, err := k.pollOnce()
			if err == nil && status != http.StatusOK {
				err = fmt.Errorf("poll: %d %q", status, body)
			}
			if err != nil {
				k.errc <- err
				return
			}
			for _, p := range strings.Split(body, sioSep) {
				if k.in <- p; p == "1" {
					return
				}
			}
		}
	}()
}

// upgrade probes the WebSocket, pauses the polling and upgrades.
func (k *sioConn) upgrade() {
	tb := k.u.tb
	tb.Helper()
	d := websocket.Dialer{Jar: k.u.jar, HandshakeTimeout: 5 * time.Second}
	ws, resp, err := d.Dial("ws"+strings.TrimPrefix(k.u.base, "http")+"/socket.io/?EIO=4&transport=websocket&sid="+url.QueryEscape(k.open.Sid),
		http.Header{"Origin": {k.u.base}})
	if err != nil {
		tb.Fatalf("WebSocket: %v (%v)", err, resp)
	}
	resp.Body.Close()
	k.ws = ws
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	if err := ws.WriteMessage(websocket.TextMessage, []byte("2probe")); err != nil {
		tb.Fatal(err)
	}
	if _, b, err := ws.ReadMessage(); err != nil || string(b) != "3probe" {
		tb.Fatalf("probe answered %q, %v", b, err)
	}
	k.pausing.Store(true)
	select {
	case <-k.pollDone:
	case <-time.After(5 * time.Second):
		tb.Fatal("the held poll was not answered in the upgrade")
	}
	if err := ws.WriteMessage(websocket.TextMessage, []byte("5")); err != nil {
		tb.Fatal(err)
	}
	_ = ws.SetReadDeadline(time.Time{})
	k.upgraded, k.readDone = true, make(chan struct{})
	go func() {
		defer close(k.readDone)
		for {
			_, b, err := ws.ReadMessage()
			if err != nil {
				if !k.closing.Load() {
					k.errc <- err
				}
				return
			}
			k.in <- string(b)
		}
	}()
}

// sendEngine sends an Engine.IO packet on the transport of the moment.
func (k *sioConn) sendEngine(p string) {
	k.u.tb.Helper()
	if !k.upgraded {
		k.post(p)
		return
	}
	if err := k.ws.WriteMessage(websocket.TextMessage, []byte(p)); err != nil {
		k.u.tb.Fatalf("send %q: %v", p, err)
	}
}

// next is the next Engine.IO packet but pings, which it answers.
func (k *sioConn) next() string {
	k.u.tb.Helper()
	for {
		select {
		case p := <-k.in:
			if p == "2" {
				k.sendEngine("3")
				continue
			}
			return p
		case err := <-k.errc:
			k.u.tb.Fatalf("Engine.IO: %v", err)
		case <-time.After(5 * time.Second):
			k.u.tb.Fatal("nothing from the server in 5 s")
		}
	}
}

// sio is the next Socket.IO packet.
func (k *sioConn) sio() string {
	k.u.tb.Helper()
	for {
		switch p := k.next(); {
		case p == "6":
		case strings.HasPrefix(p, "4"):
			return p[1:]
		default:
			k.u.tb.Fatalf("Engine.IO packet %q", p)
		}
	}
}

// keep keeps an event for later, and fails on anything else.
func (k *sioConn) keep(p string) {
	k.u.tb.Helper()
	var ev []json.RawMessage
	if !strings.HasPrefix(p, "2[") || json.Unmarshal([]byte(p[1:]), &ev) != nil {
		k.u.tb.Fatalf("Socket.IO packet %q", p)
	}
	k.events = append(k.events, ev)
}

// emit emits an event with an ack and returns the ack's first argument.
func (k *sioConn) emit(event string, arg any) json.RawMessage {
	k.u.tb.Helper()
	id := strconv.Itoa(k.nextAck)
	k.nextAck++
	k.sendEngine("42" + id + sioJSON([]any{event, arg}))
	for {
		p := k.sio()
		if rest, ok := strings.CutPrefix(p, "3"+id+"["); ok {
			var args []json.RawMessage
			if json.Unmarshal([]byte("["+rest), &args) != nil || len(args) == 0 {
				k.u.tb.Fatalf("ack %q", p)
			}
			return args[0]
		}
		k.keep(p)
	}
}

// event waits for an event of name whose argument match accepts.
func (k *sioConn) event(name string, match func(json.RawMessage) bool) json.RawMessage {
	k.u.tb.Helper()
	for {
		for i, ev := range k.events {
			var n string
			if json.Unmarshal(ev[0], &n) == nil && n == name && len(ev) > 1 && (match == nil || match(ev[1])) {
				k.events = slices.Delete(k.events, i, i+1)
				return ev[1]
			}
		}
		k.keep(k.sio())
	}
}

// connect opens the Engine.IO session and connects the socket as the
// page does: the handshake, then the CONNECT by POST, the polling, the
// upgrade; the CONNECT's answer and the welcome.
func (u *sioUser) connect() *sioConn {
	u.tb.Helper()
	k := u.handshake()
	k.post("40")
	k.startPolling()
	k.upgrade()
	var ok struct {
		Sid string `json:"sid"`
	}
	if p := k.sio(); !strings.HasPrefix(p, "0{") || json.Unmarshal([]byte(p[1:]), &ok) != nil || len(ok.Sid) != 20 {
		u.tb.Fatalf("CONNECT answered %q", p)
	}
	if err := json.Unmarshal(k.event("welcome", nil), &k.hello); err != nil || k.hello.Room == "" {
		u.tb.Fatalf("welcome %+v: %v", k.hello, err)
	}
	return k
}

// sioAck is what the chat's acks carry.
type sioAck struct {
	sioMessage
	Error    string       `json:"error"`
	Messages []sioMessage `json:"messages"`
}

func (k *sioConn) ack(event string, arg any) sioAck {
	k.u.tb.Helper()
	var v sioAck
	if raw := k.emit(event, arg); json.Unmarshal(raw, &v) != nil {
		k.u.tb.Fatalf("%s acked %s", event, raw)
	}
	return v
}

// chat joins the user's room, sends three messages and edits the first.
func (k *sioConn) chat(user string) {
	tb := k.u.tb
	tb.Helper()
	if k.hello.User != user {
		tb.Fatalf("welcome to %q, not %q", k.hello.User, user)
	}
	room := k.hello.Room
	if v := k.ack("join", room); v.Error != "" || v.Room != room {
		tb.Fatalf("join %s: %+v", room, v)
	}
	var ids []int
	for i := 1; i <= 3; i++ {
		text := fmt.Sprintf("message %d from %s", i, user)
		v := k.ack("message", map[string]string{"room": room, "text": text})
		if v.Error != "" || v.ID == 0 {
			tb.Fatalf("message %d: %+v", i, v)
		}
		var m sioMessage
		_ = json.Unmarshal(k.event("message", func(raw json.RawMessage) bool {
			return json.Unmarshal(raw, &m) == nil && m.ID == v.ID
		}), &m)
		if m.Text != text || m.User != user || m.Room != room {
			tb.Fatalf("message %d came back as %+v", i, m)
		}
		ids = append(ids, v.ID)
	}
	text := fmt.Sprintf("message 1 from %s (edited)", user)
	if v := k.ack("edit", map[string]any{"id": ids[0], "text": text}); v.Error != "" || v.ID != ids[0] || v.Text != text {
		tb.Fatalf("edit: %+v", v)
	}
	k.event("edited", func(raw json.RawMessage) bool {
		var m sioMessage
		return json.Unmarshal(raw, &m) == nil && m.ID == ids[0] && m.Text == text
	})
}

// leave disconnects the socket and closes the WebSocket, as the page does.
func (k *sioConn) leave() {
	k.u.tb.Helper()
	k.sendEngine("41")
	k.closing.Store(true)
	_ = k.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNoStatusReceived, ""), time.Now().Add(time.Second))
	select {
	case <-k.readDone:
		// The server answers the close frame as it reads it, then ends
		// the engine, then closes the connection: a browser's socket is
		// gone once the server has closed it, and so is the engine.
		nc := k.ws.NetConn()
		_ = nc.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, _ = io.Copy(io.Discard, nc)
	case <-time.After(2 * time.Second):
	}
	k.ws.Close()
}
