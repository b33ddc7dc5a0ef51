package apptest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
)

// Shop is a GraphQL shop in today's common style: every call a POST
// /graphql with operationName and variables; answers compressed with br or
// gzip as the client accepts; a connect.sid session cookie with an
// Angular-style double-submit XSRF-TOKEN cookie echoed in X-XSRF-TOKEN;
// small auto-increment ids for cart items and orders, which only their
// session may read (others get a GraphQL error with a 200); a JSON-RPC
// endpoint; and a long-polling feed that hands back a cursor. Passwords are
// "pw-" + the user name. Counts: "sessions", "graphql errors", "rpc
// errors", "400" (a cursor not this session's), "403" (XSRF), "polls",
// "br", "gzip", and "graphql <Operation>" for each operation served.
type Shop struct {
	URL    string
	Counts Counts
	// FailCheckout, when set, makes every Nth checkout answer an error.
	FailCheckout int
	// Poll is how long the feed holds a poll before it answers.
	Poll time.Duration

	mu        sync.Mutex
	tokens    []string          // API tokens the logins gave, which a trace must not hold
	sessions  map[string]string // connect.sid → user
	cart      map[int]string    // cart item → sid
	orders    map[int]string    // order → sid
	cursors   map[string]string // cursor → sid
	nextItem  int
	nextOrder int
	checkouts int
}

// Tokens returns the API tokens the logins gave so far.
func (s *Shop) Tokens() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.tokens...)
}

// NewShop starts a Shop on loopback until the test ends.
func NewShop(tb testing.TB) *Shop {
	s := &Shop{sessions: map[string]string{}, cart: map[int]string{}, orders: map[int]string{}, cursors: map[string]string{},
		nextItem: 40, nextOrder: 500, Poll: 300 * time.Millisecond}
	srv := httptest.NewServer(s)
	tb.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// write answers body, compressed as the client accepts.
func (s *Shop) write(w http.ResponseWriter, r *http.Request, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	ae := r.Header.Get("Accept-Encoding")
	var b bytes.Buffer
	var zw io.WriteCloser
	var coding string
	switch {
	case strings.Contains(ae, "br"):
		zw, coding = brotli.NewWriter(&b), "br"
	case strings.Contains(ae, "gzip"):
		zw, coding = gzip.NewWriter(&b), "gzip"
	}
	if zw != nil {
		_, _ = zw.Write([]byte(body))
		_ = zw.Close()
		w.Header().Set("Content-Encoding", coding)
		s.Counts.Add(coding, 1)
	} else {
		b.WriteString(body)
	}
	w.Header().Set("Content-Length", strconv.Itoa(b.Len()))
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

func (s *Shop) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	xsrf, _ := r.Cookie("XSRF-TOKEN")
	if r.Method == http.MethodPost && (xsrf == nil || r.Header.Get("X-XSRF-TOKEN") != xsrf.Value) {
		s.Counts.Add("403", 1)
		http.Error(w, "bad xsrf token", http.StatusForbidden)
		return
	}
	switch r.URL.Path {
	case "/":
		if xsrf == nil {
			http.SetCookie(w, &http.Cookie{Name: "XSRF-TOKEN", Value: token(16), Path: "/"})
		}
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, `<!doctype html><html><body><div id="root"></div><script src="/shop.js"></script></body></html>`)
	case "/shop.js":
		w.Header().Set("Content-Type", "text/javascript")
		fmt.Fprint(w, shopScript)
	case "/graphql":
		s.graphql(w, r)
	case "/rpc":
		s.rpc(w, r)
	case "/api/feed":
		s.feed(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (s *Shop) sid(r *http.Request) string {
	c, err := r.Cookie("connect.sid")
	if err != nil {
		return ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sessions[c.Value] == "" {
		return ""
	}
	return c.Value
}

func (s *Shop) graphql(w http.ResponseWriter, r *http.Request) {
	var in struct {
		OperationName string         `json:"operationName"`
		Variables     map[string]any `json:"variables"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		s.write(w, r, http.StatusBadRequest, `{"errors":[{"message":"bad request"}]}`)
		return
	}
	s.Counts.Add("graphql "+in.OperationName, 1)
	fail := func(msg string) {
		s.Counts.Add("graphql errors", 1)
		s.write(w, r, http.StatusOK, fmt.Sprintf(`{"data":null,"errors":[{"message":%q,"path":[%q]}]}`, msg, in.OperationName))
	}
	num := func(k string) int {
		f, _ := in.Variables[k].(float64)
		return int(f)
	}
	if in.OperationName == "Login" {
		user, _ := in.Variables["username"].(string)
		if pw, _ := in.Variables["password"].(string); user == "" || pw != "pw-"+user {
			fail("bad credentials")
			return
		}
		sid, api := "s%3A"+token(16), token(24)
		s.mu.Lock()
		s.sessions[sid] = user
		s.tokens = append(s.tokens, api)
		s.mu.Unlock()
		s.Counts.Add("sessions", 1)
		http.SetCookie(w, &http.Cookie{Name: "connect.sid", Value: sid, Path: "/", HttpOnly: true})
		s.write(w, r, http.StatusOK, fmt.Sprintf(`{"data":{"login":{"user":{"name":%q},"apiToken":%q}}}`, user, api))
		return
	}
	sid := s.sid(r)
	if sid == "" {
		fail("not logged in")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch in.OperationName {
	case "Products":
		s.write(w, r, http.StatusOK, `{"data":{"products":[{"id":1,"name":"mug"},{"id":2,"name":"tee"},{"id":3,"name":"cap"}]}}`)
	case "AddToCart":
		s.nextItem++
		s.cart[s.nextItem] = sid
		s.write(w, r, http.StatusOK, fmt.Sprintf(`{"data":{"addToCart":{"cartItem":{"id":%d,"productId":%d,"quantity":1}}}}`, s.nextItem, num("productId")))
	case "CartItem":
		if s.cart[num("id")] != sid {
			fail("no such cart item")
			return
		}
		s.write(w, r, http.StatusOK, fmt.Sprintf(`{"data":{"cartItem":{"id":%d,"quantity":1}}}`, num("id")))
	case "Checkout":
		s.checkouts++
		if s.cart[num("cartItemId")] != sid || s.FailCheckout > 0 && s.checkouts%s.FailCheckout == 0 {
			fail("checkout failed")
			return
		}
		s.nextOrder++
		s.orders[s.nextOrder] = sid
		s.write(w, r, http.StatusOK, fmt.Sprintf(`{"data":{"checkout":{"order":{"id":%d,"total":1200}}}}`, s.nextOrder))
	case "Order":
		if s.orders[num("id")] != sid {
			fail("no such order")
			return
		}
		s.write(w, r, http.StatusOK, fmt.Sprintf(`{"data":{"order":{"id":%d,"status":"paid"}}}`, num("id")))
	default:
		fail("unknown operation")
	}
}

func (s *Shop) rpc(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Method string         `json:"method"`
		Params map[string]any `json:"params"`
		ID     any            `json:"id"`
	}
	_ = json.NewDecoder(r.Body).Decode(&in)
	id, _ := json.Marshal(in.ID)
	sid := s.sid(r)
	order, _ := in.Params["orderId"].(float64)
	s.mu.Lock()
	ok := sid != "" && in.Method == "getOrderStatus" && s.orders[int(order)] == sid
	s.mu.Unlock()
	if !ok {
		s.Counts.Add("rpc errors", 1)
		s.write(w, r, http.StatusOK, fmt.Sprintf(`{"jsonrpc":"2.0","error":{"code":-32602,"message":"unknown order"},"id":%s}`, id))
		return
	}
	s.write(w, r, http.StatusOK, fmt.Sprintf(`{"jsonrpc":"2.0","result":{"status":"shipped"},"id":%s}`, id))
}

// feed is a long poll: it holds the request for Poll, then answers the
// events and the cursor of the next poll, which must come from this
// session.
func (s *Shop) feed(w http.ResponseWriter, r *http.Request) {
	sid := s.sid(r)
	cur := r.URL.Query().Get("cursor")
	s.mu.Lock()
	bad := sid == "" || cur != "" && s.cursors[cur] != sid
	s.mu.Unlock()
	if bad {
		s.Counts.Add("400", 1)
		http.Error(w, "bad cursor", http.StatusBadRequest)
		return
	}
	select {
	case <-time.After(s.Poll):
	case <-r.Context().Done():
		return
	}
	next := token(10)
	s.mu.Lock()
	s.cursors[next] = sid
	s.mu.Unlock()
	s.Counts.Add("polls", 1)
	s.write(w, r, http.StatusOK, fmt.Sprintf(`{"events":[{"type":"price","product":2}],"cursor":%q}`, next))
}

// shopScript is the shop's page script as a browser runs it (?u=NAME): the
// same calls as ShopClient, and the page says "done" or what went wrong.
const shopScript = `(async () => {
  const u = new URLSearchParams(location.search).get("u") || "anon";
  const xsrf = () => document.cookie.split("; ").find(c => c.startsWith("XSRF-TOKEN=")).split("=")[1];
  const call = async (path, body) => {
    const r = await fetch(path, {method: "POST", headers: {"Content-Type": "application/json", "X-XSRF-TOKEN": xsrf()}, body: JSON.stringify(body)});
    return r.json();
  };
  const gql = (op, variables) => call("/graphql", {operationName: op, query: "query " + op + " { x }", variables});
  await gql("Login", {username: u, password: "pw-" + u});
  await gql("Products", {});
  const item = (await gql("AddToCart", {productId: 3})).data.addToCart.cartItem.id;
  await gql("CartItem", {id: item});
  const order = (await gql("Checkout", {cartItemId: item})).data.checkout.order.id;
  const o = await gql("Order", {id: order});
  const rpc = await call("/rpc", {jsonrpc: "2.0", method: "getOrderStatus", params: {orderId: order}, id: 1});
  let cursor = "";
  for (let i = 0; i < 2; i++) {
    const f = await (await fetch("/api/feed" + (cursor ? "?cursor=" + cursor : ""))).json();
    cursor = f.cursor;
  }
  document.getElementById("root").textContent = (o.errors || rpc.error) ? "errors" : "done";
})().catch(e => { document.getElementById("root").textContent = "error " + e; });
`

// ShopClient is a user of a Shop, with its own connections and cookies:
// it loads the page, logs in, lists products, adds one to the cart, reads
// the cart item, checks out, reads the order, asks its status over
// JSON-RPC and polls the feed twice.
func ShopClient(tb testing.TB, base, user string) {
	tb.Helper()
	jar, _ := cookiejar.New(nil)
	tr := &http.Transport{} // asks for gzip itself, and decodes it
	defer tr.CloseIdleConnections()
	c := &http.Client{Jar: jar, Transport: tr}
	Do(tb, c, http.MethodGet, base+"/", "")
	u, _ := url.Parse(base)
	var xsrf string
	for _, ck := range jar.Cookies(u) {
		if ck.Name == "XSRF-TOKEN" {
			xsrf = ck.Value
		}
	}
	call := func(path string, body any) map[string]any {
		b, _ := json.Marshal(body)
		a := Do(tb, c, http.MethodPost, base+path, string(b), "Content-Type", "application/json", "X-XSRF-TOKEN", xsrf)
		var out map[string]any
		if err := json.Unmarshal(a.Body, &out); err != nil {
			tb.Fatalf("%s: %d %s", path, a.Status, a.Body)
		}
		return out
	}
	gql := func(op string, vars map[string]any) map[string]any {
		out := call("/graphql", map[string]any{"operationName": op, "query": "query " + op + " { x }", "variables": vars})
		if out["errors"] != nil {
			tb.Fatalf("%s: %v", op, out["errors"])
		}
		d, _ := out["data"].(map[string]any)
		return d
	}
	dig := func(m map[string]any, keys ...string) any {
		var v any = m
		for _, k := range keys {
			mm, _ := v.(map[string]any)
			v = mm[k]
		}
		return v
	}
	gql("Login", map[string]any{"username": user, "password": "pw-" + user})
	gql("Products", map[string]any{})
	item := dig(gql("AddToCart", map[string]any{"productId": 3}), "addToCart", "cartItem", "id")
	gql("CartItem", map[string]any{"id": item})
	order := dig(gql("Checkout", map[string]any{"cartItemId": item}), "checkout", "order", "id")
	gql("Order", map[string]any{"id": order})
	if out := call("/rpc", map[string]any{"jsonrpc": "2.0", "method": "getOrderStatus", "params": map[string]any{"orderId": order}, "id": 1}); out["error"] != nil {
		tb.Fatalf("rpc: %v", out["error"])
	}
	cursor := ""
	for range 2 {
		q := ""
		if cursor != "" {
			q = "?cursor=" + cursor
		}
		var f struct{ Cursor string }
		if err := json.Unmarshal(Do(tb, c, http.MethodGet, base+"/api/feed"+q, "").Body, &f); err != nil {
			tb.Fatal(err)
		}
		cursor = f.Cursor
	}
}
