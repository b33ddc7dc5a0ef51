package apptest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/gorilla/websocket"
)

// SPA is a single-page app's backend with no cookies at all: a JSON login
// answers a bearer token; lists are paged with opaque cursors that belong
// to the token they were given to; a WebSocket is opened with a one-time
// ticket asked for with the token, since browsers cannot put headers on a
// WebSocket. Passwords are "pw-" + the user name. Counts: "sessions"
// (logins), "400" (a cursor of another token), "401", "403" (a ticket
// unknown or used), "pages", "ws messages".
type SPA struct {
	URL    string
	Counts Counts

	mu      sync.Mutex
	tokens  map[string]string // token → user
	cursors map[string]string // cursor → the token it was given to
	tickets map[string]bool   // ticket → unused
}

// NewSPA starts an SPA on loopback until the test ends.
func NewSPA(tb testing.TB) *SPA {
	a := &SPA{tokens: map[string]string{}, cursors: map[string]string{}, tickets: map[string]bool{}}
	srv := httptest.NewServer(a)
	tb.Cleanup(srv.Close)
	a.URL = srv.URL
	return a
}

func (a *SPA) fail(w http.ResponseWriter, status int) {
	a.Counts.Add(strconv.Itoa(status), 1)
	http.Error(w, http.StatusText(status), status)
}

func (a *SPA) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/":
		fmt.Fprint(w, `<!doctype html><html><head><script src="/app.js"></script></head><body><div id="root"></div></body></html>`)
		return
	case "/app.js":
		w.Header().Set("Content-Type", "text/javascript")
		fmt.Fprint(w, spaScript)
		return
	case "/favicon.ico":
		http.NotFound(w, r)
		return
	case "/api/login":
		var in struct{ Username, Password string }
		if json.NewDecoder(r.Body).Decode(&in) != nil || in.Username == "" || in.Password != "pw-"+in.Username {
			a.fail(w, http.StatusBadRequest)
			return
		}
		tok := token(20)
		a.mu.Lock()
		a.tokens[tok] = in.Username
		a.mu.Unlock()
		a.Counts.Add("sessions", 1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":%q,"token_type":"bearer","expires_in":3600,"user":{"id":%d,"name":%q}}`, tok, len(in.Username), in.Username)
		return
	case "/ws":
		a.socket(w, r)
		return
	}
	tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.tokens[tok] == "" {
		a.fail(w, http.StatusUnauthorized)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	switch r.URL.Path {
	case "/api/items":
		page := 0
		if c := r.URL.Query().Get("cursor"); c != "" {
			if a.cursors[c] != tok {
				a.fail(w, http.StatusBadRequest)
				return
			}
			page, _ = strconv.Atoi(c[len(c)-1:])
		}
		next := token(12) + strconv.Itoa(page+1)
		a.cursors[next] = tok
		a.Counts.Add("pages", 1)
		fmt.Fprintf(w, `{"items":[{"id":%d},{"id":%d}],"next_cursor":%q}`, 2*page+1, 2*page+2, next)
	case "/api/ws-ticket":
		t := token(16)
		a.tickets[t] = true
		fmt.Fprintf(w, `{"ticket":%q}`, t)
	default:
		a.fail(w, http.StatusNotFound)
	}
}

func (a *SPA) socket(w http.ResponseWriter, r *http.Request) {
	t := r.URL.Query().Get("ticket")
	a.mu.Lock()
	ok := a.tickets[t]
	delete(a.tickets, t)
	a.mu.Unlock()
	if !ok {
		a.fail(w, http.StatusForbidden)
		return
	}
	conn, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer conn.Close()
	for {
		_, p, err := conn.ReadMessage()
		if err != nil {
			return
		}
		a.Counts.Add("ws messages", 1)
		if conn.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, `{"type":"ack","len":%d}`, len(p))) != nil {
			return
		}
	}
}

// spaScript is the app itself, as a browser runs it: the user (?u=NAME)
// logs in, reads two pages, takes a ticket, says two things on the socket,
// and the page says "done" or what went wrong.
const spaScript = `(async () => {
  const root = () => document.getElementById("root");
  const u = new URLSearchParams(location.search).get("u") || "anon";
  const json = {"Content-Type": "application/json"};
  const login = await (await fetch("/api/login", {method: "POST", headers: json, body: JSON.stringify({username: u, password: "pw-" + u})})).json();
  const auth = {headers: {Authorization: "Bearer " + login.access_token}};
  const page = await (await fetch("/api/items", auth)).json();
  const next = await fetch("/api/items?cursor=" + encodeURIComponent(page.next_cursor), auth);
  const ticket = await (await fetch("/api/ws-ticket", {method: "POST", headers: {Authorization: "Bearer " + login.access_token}})).json();
  const ws = new WebSocket("ws://" + location.host + "/ws?ticket=" + ticket.ticket);
  await new Promise((ok, fail) => { ws.onopen = ok; ws.onerror = fail; });
  for (let i = 0; i < 2; i++) {
    const answered = new Promise(ok => { ws.onmessage = ok; });
    ws.send(JSON.stringify({type: "msg", n: i}));
    await answered;
  }
  ws.close();
  root().textContent = "done " + next.status;
})().catch(e => { document.getElementById("root").textContent = "error " + e; });
`

// SPAClient is a browser context using an SPA: it loads the page and its
// script, logs in, reads two pages of items, takes a ticket and talks on
// the WebSocket.
func SPAClient(tb testing.TB, base, user string) {
	tb.Helper()
	tr := &http.Transport{} // connections of its own, as a browser context has
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	Do(tb, c, http.MethodGet, base+"/", "")
	Do(tb, c, http.MethodGet, base+"/app.js", "")
	var login struct {
		AccessToken string `json:"access_token"`
	}
	a := Do(tb, c, http.MethodPost, base+"/api/login", fmt.Sprintf(`{"username":%q,"password":%q}`, user, "pw-"+user), "Content-Type", "application/json")
	if json.Unmarshal(a.Body, &login) != nil || login.AccessToken == "" {
		tb.Fatalf("login: %d %s", a.Status, a.Body)
	}
	auth := []string{"Authorization", "Bearer " + login.AccessToken}
	var page struct {
		Next string `json:"next_cursor"`
	}
	_ = json.Unmarshal(Do(tb, c, http.MethodGet, base+"/api/items", "", auth...).Body, &page)
	if a := Do(tb, c, http.MethodGet, base+"/api/items?cursor="+page.Next, "", auth...); a.Status != http.StatusOK {
		tb.Fatalf("page 2: %d", a.Status)
	}
	var ticket struct{ Ticket string }
	_ = json.Unmarshal(Do(tb, c, http.MethodPost, base+"/api/ws-ticket", "", auth...).Body, &ticket)
	ws, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+"/ws?ticket="+ticket.Ticket, nil)
	if err != nil {
		tb.Fatalf("ws: %v", err)
	}
	resp.Body.Close()
	for i := range 2 {
		_ = ws.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, `{"type":"msg","n":%d}`, i))
		if _, _, err := ws.ReadMessage(); err != nil {
			tb.Fatalf("ws: %v", err)
		}
	}
	_ = ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
	for {
		if _, _, err := ws.ReadMessage(); err != nil {
			break
		}
	}
	ws.Close()
}
