package apptest

import (
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// SpringBoardClient is a person visiting a SpringBoard with a browser, done
// with net/http and gorilla/websocket: the visit of the pages' script.
// GET /boards?u=NAME is sent to /login; the login form is posted with the
// page's _csrf; the saved request is followed; a board is created with the
// list's form; the board page's script opens /ws with the session cookie,
// CONNECTs with the meta tag's masked token, SUBSCRIBEs, SENDs three cards
// and moves the first (each with a receipt, waited for with its
// broadcast), DISCONNECTs with a receipt and closes; the board's delete
// form is posted; the list's logout form is posted; the login page says it
// logged out. It fails tb on any answer but the one Spring answers.
func SpringBoardClient(tb testing.TB, base, user string) {
	tb.Helper()
	newSpringUser(tb, base).visit(user)
}

// springUser is a browser context of SpringBoardClient: a cookie jar and
// connections of its own, and the last page.
type springUser struct {
	tb          testing.TB
	c           *http.Client
	jar         http.CookieJar
	base        string
	page, where string
}

const springNavigate = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8"

var (
	springFormRE     = regexp.MustCompile(`(?s)<form id="([^"]*)" action="([^"]*)" method="post"><input type="hidden" name="_csrf" value="([^"]*)"/>`)
	springMetaRE     = regexp.MustCompile(`<meta name="_csrf" content="([^"]+)"/>\s*<meta name="_csrf_header" content="([^"]+)"/>`)
	springContinueRE = regexp.MustCompile(`<p id="continue">Sign in to continue to <a href="([^"]+)">`)
	springBoardRE    = regexp.MustCompile(`<a href="/boards/(\d+)">`)
)

func newSpringUser(tb testing.TB, base string) *springUser {
	jar, _ := cookiejar.New(nil)
	tr := &http.Transport{}
	tb.Cleanup(tr.CloseIdleConnections)
	return &springUser{tb: tb, base: base, jar: jar, c: &http.Client{Jar: jar, Transport: tr, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// do sends a request (path absolute, or under base) and fails the test
// unless the status is want.
func (u *springUser) do(method, path, body string, want int, header ...string) Answer {
	u.tb.Helper()
	if strings.HasPrefix(path, "/") {
		path = u.base + path
	}
	ans := Do(u.tb, u.c, method, path, body, header...)
	if ans.Status != want {
		u.tb.Fatalf("%s %s: %d, want %d: %.300s", method, path, ans.Status, want, ans.Body)
	}
	return ans
}

// get navigates to a page and keeps it.
func (u *springUser) get(path string) {
	u.tb.Helper()
	ans := u.do(http.MethodGet, path, "", http.StatusOK, "Accept", springNavigate)
	if ct := ans.Header.Get("Content-Type"); ct != springHTML {
		u.tb.Fatalf("GET %s: Content-Type %q", path, ct)
	}
	u.page, u.where = string(ans.Body), path
}

// token is the _csrf of the last page's form with that id.
func (u *springUser) token(form string) (action, token string) {
	u.tb.Helper()
	for _, m := range springFormRE.FindAllStringSubmatch(u.page, -1) {
		if m[1] == form {
			return html.UnescapeString(m[2]), html.UnescapeString(m[3])
		}
	}
	u.tb.Fatalf("%s has no form %q: %.500s", u.where, form, u.page)
	return "", ""
}

// submit posts the last page's form with that id as a browser does, with
// fields and its _csrf, wants a 302 and returns the Location resolved.
func (u *springUser) submit(form string, fields url.Values) string {
	u.tb.Helper()
	action, token := u.token(form)
	if fields == nil {
		fields = url.Values{}
	}
	fields.Set("_csrf", token)
	ans := u.do(http.MethodPost, action, springOrder(fields, "_csrf"), http.StatusFound, "Accept", springNavigate,
		"Content-Type", "application/x-www-form-urlencoded", "Origin", u.base)
	return u.resolve(ans.Header.Get("Location"))
}

// springOrder encodes a form with the field first, as the hidden input
// comes first in the form.
func springOrder(v url.Values, first string) string {
	head := url.Values{first: v[first]}.Encode()
	rest := url.Values{}
	for k, vs := range v {
		if k != first {
			rest[k] = vs
		}
	}
	if len(rest) == 0 {
		return head
	}
	return head + "&" + rest.Encode()
}

func (u *springUser) resolve(loc string) string {
	b, _ := url.Parse(u.base)
	l, err := b.Parse(loc)
	if err != nil {
		u.tb.Fatalf("Location %q: %v", loc, err)
	}
	return l.String()
}

func (u *springUser) session() string {
	b, _ := url.Parse(u.base)
	for _, k := range u.jar.Cookies(b) {
		if k.Name == springCookie {
			return k.Value
		}
	}
	return ""
}

func (u *springUser) must(ok bool, format string, args ...any) {
	if u.tb.Helper(); !ok {
		u.tb.Fatalf(format, args...)
	}
}

// login signs in with the login page's form, and returns where it sent.
func (u *springUser) login(user string) string {
	u.tb.Helper()
	before := u.session()
	loc := u.submit("login", url.Values{"username": {user}, "password": {"pw-" + user}})
	u.must(u.session() != "" && u.session() != before, "the session id %q was kept at login", before)
	return loc
}

func (u *springUser) visit(user string) {
	u.tb.Helper()
	start := "/boards?u=" + url.QueryEscape(user)
	loc := u.do(http.MethodGet, start, "", http.StatusFound, "Accept", springNavigate).Header.Get("Location")
	u.must(loc == u.base+"/login", "anonymous %s sent to %q", start, loc)
	u.get(loc)
	m := springContinueRE.FindStringSubmatch(u.page)
	u.must(m != nil, "the login page shows no saved request: %.500s", u.page)
	saved, err := url.Parse(html.UnescapeString(m[1]))
	u.must(err == nil && saved.Query().Get("u") == user, "the saved request %q", m[1])
	loc = u.login(user)
	u.must(loc == u.base+start+"&continue", "signed in, sent to %q", loc)
	u.get(loc)
	loc = u.submit("new-board", url.Values{"name": {"Sprint of " + user}})
	id := strings.TrimPrefix(loc, u.base+"/boards/")
	u.must(id != loc && id != "" && !strings.Contains(id, "/"), "a new board at %q", loc)
	u.get("/boards/" + id)
	u.cards(id)
	loc = u.submit("delete-board", nil)
	u.must(loc == u.base+"/boards", "board deleted, sent to %q", loc)
	u.get("/boards")
	for _, b := range springBoardRE.FindAllStringSubmatch(u.page, -1) {
		u.must(b[1] != id, "board %s is still listed", id)
	}
	loc = u.submit("logout", nil)
	u.must(loc == u.base+"/login?logout" && u.session() == "", "logged out, sent to %q with session %q", loc, u.session())
	u.get("/login?logout")
	u.must(strings.Contains(u.page, "You have been logged out."), "the login page after logout: %.500s", u.page)
}

// springStomp is a STOMP client on a WebSocket, reading one frame a
// message as Spring sends them.
type springStomp struct {
	tb    testing.TB
	ws    *websocket.Conn
	inbox []springFrame
}

// dialStomp opens /ws as the board page's script does: the session cookie,
// the page's Origin, the sub-protocols stompjs offers.
// It returns the handshake's answer's header.
func (u *springUser) dialStomp() (*springStomp, http.Header, error) {
	d := websocket.Dialer{Jar: u.jar, HandshakeTimeout: 5 * time.Second, Subprotocols: []string{"v12.stomp", "v11.stomp", "v10.stomp"}}
	ws, resp, err := d.Dial("ws"+strings.TrimPrefix(u.base, "http")+"/ws", http.Header{"Origin": {u.base}})
	var h http.Header
	if resp != nil {
		h = resp.Header
		resp.Body.Close()
	}
	if err != nil {
		return nil, h, fmt.Errorf("%w (%v)", err, resp)
	}
	u.tb.Cleanup(func() { ws.Close() })
	return &springStomp{tb: u.tb, ws: ws}, h, nil
}

// send writes a frame as stompjs does: headers in order, content-length
// for a body.
func (s *springStomp) send(cmd string, body string, hdr ...string) {
	s.tb.Helper()
	var b strings.Builder
	b.WriteString(cmd + "\n")
	for i := 0; i+1 < len(hdr); i += 2 {
		b.WriteString(hdr[i] + ":" + hdr[i+1] + "\n")
	}
	if body != "" {
		fmt.Fprintf(&b, "content-length:%d\n", len(body))
	}
	s.raw(b.String() + "\n" + body + "\x00")
}

func (s *springStomp) raw(text string) {
	s.tb.Helper()
	if err := s.ws.WriteMessage(websocket.TextMessage, []byte(text)); err != nil {
		s.tb.Fatalf("STOMP %q: %v", text, err)
	}
}

// read reads the next frame off the WebSocket.
func (s *springStomp) read() (springFrame, error) {
	_ = s.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, data, err := s.ws.ReadMessage()
	if err != nil {
		return springFrame{}, err
	}
	frames, rest, err := springDecode(data)
	if err != nil || len(frames) != 1 || len(rest) != 0 {
		return springFrame{}, fmt.Errorf("not one frame (%w): %q", err, data)
	}
	return frames[0], nil
}

// expect returns the first frame that pred takes, keeping the others; an
// ERROR fails the test.
func (s *springStomp) expect(what string, pred func(springFrame) bool) springFrame {
	s.tb.Helper()
	for {
		for i, f := range s.inbox {
			if pred(f) {
				s.inbox = append(s.inbox[:i], s.inbox[i+1:]...)
				return f
			}
		}
		f, err := s.read()
		if err != nil {
			s.tb.Fatalf("waiting for %s: %v", what, err)
		}
		if f.cmd == "ERROR" {
			m, _ := f.get("message")
			s.tb.Fatalf("waiting for %s: ERROR %q", what, m)
		}
		s.inbox = append(s.inbox, f)
	}
}

func (s *springStomp) receipt(id string) {
	s.tb.Helper()
	s.expect("RECEIPT "+id, func(f springFrame) bool { r, _ := f.get("receipt-id"); return f.cmd == "RECEIPT" && r == id })
}

// broadcast waits for the MESSAGE of sub whose card event pred takes.
func (s *springStomp) broadcast(what, sub string, pred func(springEvent) bool) springEvent {
	s.tb.Helper()
	var ev springEvent
	s.expect(what, func(f springFrame) bool {
		got, _ := f.get("subscription")
		ev = springEvent{}
		return f.cmd == "MESSAGE" && got == sub && json.Unmarshal(f.body, &ev) == nil && pred(ev)
	})
	return ev
}

// close ends the WebSocket as a browser's ws.close() does, and waits for
// the server's close.
func (s *springStomp) close() {
	_ = s.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNoStatusReceived, ""), time.Now().Add(time.Second))
	for {
		if _, err := s.read(); err != nil {
			break
		}
	}
	s.ws.Close()
}

// cards is the board page's script.
func (u *springUser) cards(board string) {
	u.tb.Helper()
	meta := springMetaRE.FindStringSubmatch(u.page)
	u.must(meta != nil, "the board page has no _csrf meta tags")
	s, h, err := u.dialStomp()
	if err != nil {
		u.tb.Fatalf("/ws: %v", err)
	}
	u.must(h.Get("Sec-WebSocket-Protocol") == "v12.stomp", "sub-protocol %q", h.Get("Sec-WebSocket-Protocol"))
	s.send("CONNECT", "", "accept-version", "1.2,1.1,1.0", "heart-beat", "10000,10000", meta[2], html.UnescapeString(meta[1]))
	hello := s.expect("CONNECTED", func(f springFrame) bool { return f.cmd == "CONNECTED" })
	v, _ := hello.get("version")
	u.must(v == "1.2", "CONNECTED %v", hello.hdr)
	s.send("SUBSCRIBE", "", "id", "sub-0", "destination", "/topic/boards."+board)
	n := 0
	var first springEvent
	for i, title := range []string{"Write the spec", "Review the spec", "Ship it"} {
		n++
		r := fmt.Sprintf("receipt-%d", n)
		body, _ := json.Marshal(map[string]string{"title": title})
		s.send("SEND", string(body), "destination", "/app/boards/"+board+"/cards", "content-type", "application/json", "receipt", r)
		s.receipt(r)
		ev := s.broadcast("the broadcast of "+title, "sub-0", func(e springEvent) bool { return e.Event == "added" && e.Title == title })
		u.must(fmt.Sprint(ev.BoardID) == board && ev.Column == "todo" && ev.Position == i && ev.ID > 0, "card %q broadcast as %+v", title, ev)
		if i == 0 {
			first = ev
		}
	}
	n++
	r := fmt.Sprintf("receipt-%d", n)
	s.send("SEND", `{"column":"doing"}`, "destination", fmt.Sprintf("/app/boards/%s/cards/%d/move", board, first.ID), "content-type", "application/json", "receipt", r)
	s.receipt(r)
	s.broadcast("the broadcast of the move", "sub-0", func(e springEvent) bool { return e.Event == "moved" && e.ID == first.ID && e.Column == "doing" })
	n++
	r = fmt.Sprintf("receipt-%d", n)
	s.send("DISCONNECT", "", "receipt", r)
	s.receipt(r)
	u.must(len(s.inbox) == 0, "frames left over: %v", s.inbox)
	s.close()
}
