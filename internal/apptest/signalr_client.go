package apptest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// SignalRClient is a person visiting a SignalR app with a browser, done
// with net/http and gorilla/websocket: the visit of the pages' script.
// GET /Lists?u=NAME is sent to the login page; its form is posted (as
// AspNetClient posts forms: the inputs as they are, the token at the end);
// the ReturnUrl is followed; the lists page's form makes a list; the
// list's page's script negotiates (POST /hubs/tasks/negotiate with the
// headers @microsoft/signalr sends), opens the WebSocket with the
// connectionToken and the cookie, shakes hands, invokes JoinList, AddTask
// three times (each result is the new task, each broadcast awaited) and
// CompleteTask of the first (awaited with its TaskCompleted), pings after
// 15 s of sending nothing, sends {"type":7} and closes; the delete form is
// posted; the lists page says so; the logout form is posted; the login
// page shows no one signed in. It fails tb on any answer but the one
// ASP.NET Core answers.
func SignalRClient(tb testing.TB, base, user string) {
	tb.Helper()
	(&signalrUser{newAspNetBrowser(tb, base)}).visit(user)
}

// signalrUser is a browser context of SignalRClient.
type signalrUser struct{ *aspnetBrowser }

// signalrUserAgent is what @microsoft/signalr 8 sends in a browser.
const signalrUserAgent = "Microsoft SignalR/8.0 (8.0.7; Unknown OS; Browser; Unknown Runtime Version)"

var signalrListRE = regexp.MustCompile(`<h1 id="list-name" data-list-id="(\d+)" data-hub-url="([^"]+)">`)

func (u *signalrUser) must(ok bool, format string, args ...any) {
	if u.tb.Helper(); !ok {
		u.tb.Fatalf(format, args...)
	}
}

// login signs in with the login page's form, and returns where it sent.
func (u *signalrUser) login(user string) string {
	u.tb.Helper()
	return u.submit(u.form("id", "account"), url.Values{"Input.Email": {user + "@example.test"}, "Input.Password": {"pw-" + user}}, http.StatusFound)
}

// signIn makes a list for user and shows its page; it returns the list's
// id.
func (u *signalrUser) signIn(user string) string {
	u.tb.Helper()
	start := "/Lists?u=" + url.QueryEscape(user)
	loc := u.do(http.MethodGet, start, "", http.StatusFound, "Accept", aspnetNavigate).Header.Get("Location")
	u.must(loc == u.base+aspnetLoginPath+"?ReturnUrl="+aspnetURLEncode(start), "anonymous %s sent to %q", start, loc)
	u.get(loc)
	loc = u.login(user)
	u.must(loc == start, "signed in, sent to %q", loc)
	u.get(loc)
	loc = u.submit(u.form("id", "create-list"), url.Values{"List.Name": {"Errands of " + user}}, http.StatusFound)
	id, ok := strings.CutPrefix(loc, "/Lists/Details/")
	u.must(ok && id != "", "a new list at %q", loc)
	u.get(loc)
	m := signalrListRE.FindStringSubmatch(u.page)
	u.must(m != nil && m[1] == id && m[2] == signalrHub, "the list's page has no list id or hub: %.500s", u.page)
	return id
}

func (u *signalrUser) visit(user string) {
	u.tb.Helper()
	id := u.signIn(user)
	h := u.connect()
	h.tasks(id)
	loc := u.submit(u.form("id", "delete-list"), nil, http.StatusFound)
	u.must(loc == "/Lists", "list deleted, sent to %q", loc)
	u.get(loc)
	u.must(strings.Contains(u.page, `<div id="status-message" class="alert alert-success" role="alert">List &#x27;Errands of `+aspnetHTML(user)+`&#x27; deleted.</div>`) &&
		!strings.Contains(u.page, `href="/Lists/Details/`+id+`"`), "the lists after the delete: %.1500s", u.page)
	loc = u.submit(u.form("id", "logoutForm"), nil, http.StatusFound)
	u.must(loc == signalrLogoutBack, "signed out, sent to %q", loc)
	u.get(loc)
	u.must(!strings.Contains(u.page, `id="logoutForm"`) && strings.Contains(u.page, `id="login"`), "still signed in after the logout")
}

// negotiate is the client's POST negotiate?negotiateVersion=1.
func (u *signalrUser) negotiate() (token string) {
	u.tb.Helper()
	ans := u.do(http.MethodPost, signalrHub+"/negotiate?negotiateVersion=1", "", http.StatusOK, "Content-Type", "text/plain;charset=UTF-8",
		"Accept", "*/*", "Origin", u.base, "X-Requested-With", "XMLHttpRequest", "X-SignalR-User-Agent", signalrUserAgent)
	var n struct {
		NegotiateVersion    int    `json:"negotiateVersion"`
		ConnectionID        string `json:"connectionId"`
		ConnectionToken     string `json:"connectionToken"`
		Error               string `json:"error"`
		AvailableTransports []struct {
			Transport       string   `json:"transport"`
			TransferFormats []string `json:"transferFormats"`
		} `json:"availableTransports"`
	}
	err := json.Unmarshal(ans.Body, &n)
	u.must(err == nil && n.Error == "" && n.NegotiateVersion == 1 && len(n.ConnectionID) == 22 && len(n.ConnectionToken) == 22 &&
		len(n.AvailableTransports) > 0 && n.AvailableTransports[0].Transport == "WebSockets", "negotiate: %s (%v)", ans.Body, err)
	u.must(ans.Header.Get("Content-Type") == "application/json", "negotiate's Content-Type %q", ans.Header.Get("Content-Type"))
	return n.ConnectionToken
}

// dialHub opens the hub's WebSocket for a token as the browser does: the
// cookies, the page's Origin, no sub-protocol. It returns the upgrade's
// answer's status and header (those of a refusal too).
func (u *signalrUser) dialHub(token string) (*signalrHubConn, int, http.Header, error) {
	d := websocket.Dialer{Jar: u.jar, HandshakeTimeout: 5 * time.Second}
	ws, resp, err := d.Dial("ws"+strings.TrimPrefix(u.base, "http")+signalrHub+"?id="+url.QueryEscape(token), http.Header{"Origin": {u.base}})
	status, header := 0, http.Header(nil)
	if resp != nil {
		status, header = resp.StatusCode, resp.Header
		resp.Body.Close()
	}
	if err != nil {
		return nil, status, header, err
	}
	h := &signalrHubConn{tb: u.tb, ws: ws}
	u.tb.Cleanup(h.stop)
	return h, status, header, nil
}

// connect negotiates, opens the WebSocket and shakes hands.
func (u *signalrUser) connect() *signalrHubConn {
	u.tb.Helper()
	h, status, _, err := u.dialHub(u.negotiate())
	if err != nil {
		u.tb.Fatalf("the hub's WebSocket: %v (%d)", err, status)
	}
	h.send(`{"protocol":"json","version":1}`)
	recs, raw := h.frame()
	u.must(len(recs) == 1 && string(raw) == "{}\x1e", "handshake answered %q", raw)
	return h
}

// signalrRecord is a hub message as the client reads it.
type signalrRecord struct {
	Type           int               `json:"type"`
	InvocationID   string            `json:"invocationId"`
	Target         string            `json:"target"`
	Arguments      []json.RawMessage `json:"arguments"`
	Result         json.RawMessage   `json:"result"`
	Error          string            `json:"error"`
	AllowReconnect bool              `json:"allowReconnect"`
}

// signalrTaskDto is the hub's TaskDto.
type signalrTaskDto struct {
	ID     int    `json:"id"`
	ListID int    `json:"listId"`
	Title  string `json:"title"`
	Done   bool   `json:"done"`
}

// signalrHubConn is a hub connection of the client.
type signalrHubConn struct {
	tb      testing.TB
	ws      *websocket.Conn
	wmu     sync.Mutex // one writer at a time: the visit and the keep-alive
	ping    *time.Timer
	pending []byte          // the end of a message a later frame finishes
	inbox   []signalrRecord // the server's calls and completions, until taken
	next    int
	closed  bool
}

// send writes one message and its separator in a frame, and sets the
// keep-alive's ping 15 s on, as the client's _resetKeepAliveInterval does.
func (h *signalrHubConn) send(text string) {
	h.tb.Helper()
	h.wmu.Lock()
	defer h.wmu.Unlock()
	if err := h.ws.WriteMessage(websocket.TextMessage, []byte(text+"\x1e")); err != nil {
		h.tb.Fatalf("hub %q: %v", text, err)
	}
	if h.ping != nil {
		h.ping.Stop()
	}
	if !h.closed {
		h.ping = time.AfterFunc(15*time.Second, h.keepAlive)
	}
}

// keepAlive sends the client's ping.
func (h *signalrHubConn) keepAlive() {
	h.wmu.Lock()
	defer h.wmu.Unlock()
	if !h.closed && h.ws.WriteMessage(websocket.TextMessage, []byte(signalrPing)) == nil {
		h.ping = time.AfterFunc(15*time.Second, h.keepAlive)
	}
}

// stop ends the keep-alive and the WebSocket.
func (h *signalrHubConn) stop() {
	h.wmu.Lock()
	h.closed = true
	if h.ping != nil {
		h.ping.Stop()
	}
	h.wmu.Unlock()
	h.ws.Close()
}

// frame reads one WebSocket message: the whole records it ends, and the
// message as it came.
func (h *signalrHubConn) frame() ([]signalrRecord, []byte) {
	h.tb.Helper()
	recs, raw, err := h.read()
	if err != nil {
		h.tb.Fatalf("hub: %v", err)
	}
	return recs, raw
}

func (h *signalrHubConn) read() ([]signalrRecord, []byte, error) {
	_ = h.ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, data, err := h.ws.ReadMessage()
	if err != nil {
		return nil, nil, err
	}
	h.pending = append(h.pending, data...)
	var recs []signalrRecord
	for {
		i := bytes.IndexByte(h.pending, signalrRS)
		if i < 0 {
			break
		}
		var r signalrRecord
		if err := json.Unmarshal(h.pending[:i], &r); err != nil {
			return nil, data, fmt.Errorf("a record that is not JSON: %q", h.pending[:i])
		}
		recs = append(recs, r)
		h.pending = h.pending[i+1:]
	}
	return recs, data, nil
}

// await reads until pred takes a kept record, which it returns; a close
// from the server fails the test.
func (h *signalrHubConn) await(what string, pred func(signalrRecord) bool) signalrRecord {
	h.tb.Helper()
	for {
		for i, r := range h.inbox {
			if pred(r) {
				h.inbox = append(h.inbox[:i], h.inbox[i+1:]...)
				return r
			}
		}
		recs, _ := h.frame()
		for _, r := range recs {
			switch r.Type {
			case 1, 3:
				h.inbox = append(h.inbox, r)
			case 7:
				h.tb.Fatalf("waiting for %s: the server closed: %q", what, r.Error)
			}
		}
	}
}

// invoke sends an invocation as the client's JSON.stringify writes it
// (arguments, invocationId, target, type) and returns its completion.
func (h *signalrHubConn) invoke(target string, args ...any) signalrRecord {
	h.tb.Helper()
	id := fmt.Sprint(h.next)
	h.next++
	a, _ := json.Marshal(args)
	h.send(fmt.Sprintf(`{"arguments":%s,"invocationId":"%s","target":"%s","type":1}`, a, id, target))
	return h.await("the completion of "+target, func(r signalrRecord) bool { return r.Type == 3 && r.InvocationID == id })
}

// tasks is the list page's script on the hub.
func (h *signalrHubConn) tasks(list string) {
	h.tb.Helper()
	must := func(ok bool, format string, args ...any) {
		if h.tb.Helper(); !ok {
			h.tb.Fatalf(format, args...)
		}
	}
	var listID int
	_, _ = fmt.Sscan(list, &listID)
	c := h.invoke("JoinList", listID)
	must(c.Error == "" && string(c.Result) == "null", "JoinList: %+v", c)
	var added []signalrTaskDto
	for _, title := range []string{"Buy milk", "Walk the dog", "Call mum"} {
		c := h.invoke("AddTask", listID, title)
		var t signalrTaskDto
		must(c.Error == "" && json.Unmarshal(c.Result, &t) == nil && t.Title == title && t.ListID == listID && !t.Done && t.ID > 0, "AddTask: %+v", c)
		b := h.await("TaskAdded of "+title, func(r signalrRecord) bool { return r.Type == 1 && r.Target == "TaskAdded" })
		var got signalrTaskDto
		must(len(b.Arguments) == 1 && json.Unmarshal(b.Arguments[0], &got) == nil && got == t, "TaskAdded %s, not %+v", b.Arguments, t)
		added = append(added, t)
	}
	c = h.invoke("CompleteTask", added[0].ID)
	must(c.Error == "" && string(c.Result) == "true", "CompleteTask: %+v", c)
	b := h.await("TaskCompleted", func(r signalrRecord) bool { return r.Type == 1 && r.Target == "TaskCompleted" })
	must(len(b.Arguments) == 1 && string(b.Arguments[0]) == fmt.Sprintf(`{"id":%d,"listId":%d}`, added[0].ID, listID), "TaskCompleted %s", b.Arguments)
	must(len(h.inbox) == 0, "messages left over: %+v", h.inbox)
	h.close()
}

// close is the client's stop(): {"type":7}, then the WebSocket's close
// (no status, as a browser's ws.close() sends it), the server's messages
// read until its close, and then, as a browser's close event waits for
// it, the end of the TCP connection (the server has let the connection
// go by then).
func (h *signalrHubConn) close() {
	h.tb.Helper()
	h.send(`{"type":7}`)
	h.wmu.Lock()
	h.closed = true
	h.ping.Stop()
	_ = h.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNoStatusReceived, ""), time.Now().Add(time.Second))
	h.wmu.Unlock()
	for {
		recs, _, err := h.read()
		if err != nil {
			if !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
				h.tb.Fatalf("the hub's close: %v", err)
			}
			nc := h.ws.UnderlyingConn()
			_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
			if n, err := nc.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) {
				h.tb.Fatalf("after the hub's close: %d bytes, %v", n, err)
			}
			break
		}
		for _, r := range recs {
			if r.Type != 7 || r.Error != "" {
				h.tb.Fatalf("after the close message: %+v", r)
			}
		}
	}
	h.ws.Close()
}
