package apptest

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/thrive-loadtest/thrive/capture"
)

// CrossSite is an app and its API on two HTTPS hosts, as a browser meets
// them on the web: the app (https://localhost:PORT) serves a page and its
// script; the API (https://127.0.0.2:PORT, another origin, so every call
// is a CORS request with a preflight) answers a JSON login with a bearer
// token, items with small auto-increment ids, and a wss:// chat that
// streams replies of 1 to 12 chunks, the last {"done":true}. Both have
// certificates of a test CA of their own (CAFile, for SSL_CERT_FILE), as
// real sites have certificates of public CAs. Passwords are "pw-" + the
// user name. Counts: "logins", "items", "item", "preflights", "messages
// answered", "401", "404 PATH", "400".
type CrossSite struct {
	AppURL, APIURL string
	// CAFile is the PEM file of the CA that signed both certificates.
	CAFile string
	Counts Counts

	mu     sync.Mutex
	tokens map[string]string // token → user
}

// NewCrossSite starts both hosts until the test ends.
func NewCrossSite(tb testing.TB) *CrossSite {
	tb.Helper()
	ca, _, err := capture.NewCA(time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	a := &CrossSite{tokens: map[string]string{}, CAFile: filepath.Join(tb.TempDir(), "origins-ca.pem")}
	if err := os.WriteFile(a.CAFile, ca.PEM(), 0o600); err != nil {
		tb.Fatal(err)
	}
	a.APIURL = ServeTLS(tb, ca, "127.0.0.2:0", "127.0.0.2", http.HandlerFunc(a.api))
	a.AppURL = ServeTLS(tb, ca, "127.0.0.1:0", "localhost", http.HandlerFunc(a.app))
	return a
}

func (a *CrossSite) fail(w http.ResponseWriter, status int, what string) {
	a.Counts.Add(strings.TrimSpace(strconv.Itoa(status)+" "+what), 1)
	http.Error(w, http.StatusText(status), status)
}

func (a *CrossSite) app(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/":
		fmt.Fprint(w, `<!doctype html><html><head><script src="/app.js"></script></head><body><div id="done"></div></body></html>`)
	case "/app.js":
		w.Header().Set("Content-Type", "text/javascript")
		fmt.Fprint(w, strings.ReplaceAll(crossSiteScript, "API_URL", a.APIURL))
	default:
		a.fail(w, http.StatusNotFound, r.URL.Path) // the favicon
	}
}

func (a *CrossSite) api(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Access-Control-Allow-Origin", a.AppURL)
	if r.Header.Get("Origin") != "" && r.Header.Get("Origin") != a.AppURL {
		a.fail(w, http.StatusForbidden, "origin "+r.Header.Get("Origin"))
		return
	}
	if r.Method == http.MethodOptions {
		a.Counts.Add("preflights", 1)
		w.Header().Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
		w.Header().Set("Access-Control-Allow-Methods", "GET, POST")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if r.URL.Path == "/api/login" {
		var in struct{ Username, Password string }
		if json.NewDecoder(r.Body).Decode(&in) != nil || in.Username == "" || in.Password != "pw-"+in.Username {
			a.fail(w, http.StatusBadRequest, "")
			return
		}
		tok := token(24)
		a.mu.Lock()
		a.tokens[tok] = in.Username
		a.mu.Unlock()
		a.Counts.Add("logins", 1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"token":%q,"user":%q}`, tok, in.Username)
		return
	}
	tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	if r.URL.Path == "/chat" {
		tok = r.URL.Query().Get("token")
	}
	a.mu.Lock()
	user := a.tokens[tok]
	a.mu.Unlock()
	if user == "" {
		a.fail(w, http.StatusUnauthorized, "")
		return
	}
	switch {
	case r.URL.Path == "/chat":
		a.chat(w, r)
	case r.URL.Path == "/api/items":
		a.Counts.Add("items", 1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `[{"id":3,"name":"kettle"},{"id":7,"name":"lamp"},{"id":12,"name":"chair"}]`)
	case strings.HasPrefix(r.URL.Path, "/api/items/"):
		id, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/api/items/"))
		if err != nil || id != 3 && id != 7 && id != 12 {
			a.fail(w, http.StatusNotFound, "/api/items/{id}")
			return
		}
		a.Counts.Add("item", 1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":%d,"stock":%d}`, id, rand.IntN(50))
	default:
		a.fail(w, http.StatusNotFound, r.URL.Path)
	}
}

// chat answers each message with a stream of 1 to 12 chunks and a last
// frame that says done.
func (a *CrossSite) chat(w http.ResponseWriter, r *http.Request) {
	up := websocket.Upgrader{CheckOrigin: func(r *http.Request) bool { return r.Header.Get("Origin") == a.AppURL }}
	conn, err := up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer conn.Close()
	for {
		if _, _, err := conn.ReadMessage(); err != nil {
			return
		}
		for i := range 1 + rand.IntN(12) {
			if conn.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, `{"delta":"w%d "}`, i)) != nil {
				return
			}
		}
		if conn.WriteMessage(websocket.TextMessage, []byte(`{"done":true}`)) != nil {
			return
		}
		a.Counts.Add("messages answered", 1)
	}
}

// crossSiteScript is the app as a browser runs it: a user of its own logs
// in to the API, lists the items, opens one, asks the chat two things and
// waits for each reply to end, and the page says "ok" or what went wrong.
const crossSiteScript = `(async () => {
  const api = "API_URL";
  const u = "u" + Math.floor(Math.random() * 1e6);
  const login = await (await fetch(api + "/api/login", {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify({username: u, password: "pw-" + u})})).json();
  const auth = {headers: {Authorization: "Bearer " + login.token}};
  const items = await (await fetch(api + "/api/items", auth)).json();
  const item = await fetch(api + "/api/items/" + items[1].id, auth);
  if (item.status !== 200) throw new Error("item " + item.status);
  const ws = new WebSocket(api.replace("https:", "wss:") + "/chat?token=" + login.token);
  await new Promise((ok, fail) => { ws.onopen = ok; ws.onerror = fail; });
  for (const q of ["hello", "tell me more"]) {
    await new Promise(ok => { ws.onmessage = e => { if (JSON.parse(e.data).done) ok(); }; ws.send(q); });
  }
  ws.close();
  document.getElementById("done").textContent = "ok";
})().catch(e => { document.getElementById("done").textContent = "error " + e; });
`

// ServeTLS serves h over TLS on addr (a loopback host:0) until the test
// ends, with a certificate for host signed by ca, and returns its URL,
// https://host:port.
func ServeTLS(tb testing.TB, ca *capture.CA, addr, host string, h http.Handler) string {
	tb.Helper()
	leaf, err := ca.Leaf(host)
	if err != nil {
		tb.Fatal(err)
	}
	ln, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener.Close()
	srv.Listener = ln
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{*leaf}}
	srv.StartTLS()
	tb.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return "https://" + net.JoinHostPort(host, port)
}
