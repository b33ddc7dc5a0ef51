package apptest

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/thrive-loadtest/thrive/capture/importer"
)

// harPNG is a body no text can hold: a PNG's signature and some bytes
// that are not UTF-8.
const harPNG = "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe\x00\x01"

// harPageHTML is a page whose script follows a redirect (that sets a
// cookie), posts a form, loads a binary body, and talks over a WebSocket
// in text and binary before closing it, then says "done".
const harPageHTML = `<!doctype html><html><head><link rel="icon" href="data:,"></head><body><div id="root"></div><script>
(async () => {
  const root = document.getElementById("root");
  try {
    const hop = await (await fetch("/old?x=1")).json();
    await fetch("/form", {method: "POST", headers: {"Content-Type": "application/x-www-form-urlencoded"}, body: "a=1&b=two+words"});
    await (await fetch("/img.png")).arrayBuffer();
    const ws = new WebSocket("ws://" + location.host + "/ws");
    ws.binaryType = "arraybuffer";
    const got = [];
    await new Promise((ok, fail) => {
      ws.onopen = () => { ws.send("hello " + hop.n); ws.send(new Uint8Array([0, 255, 1])); };
      ws.onmessage = m => { got.push(m.data); if (got.length === 2) ws.close(1000, "bye"); };
      ws.onclose = ok; ws.onerror = fail;
    });
    root.textContent = "done";
  } catch (e) { root.textContent = "error: " + e; }
})();
</script></body></html>`

// harServer serves harPageHTML and what its script asks for, counting
// each request by "METHOD path".
type harServer struct {
	mu     sync.Mutex
	counts map[string]int
}

func (s *harServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.counts[r.Method+" "+r.URL.Path]++
	s.mu.Unlock()
	switch r.URL.Path {
	case "/page":
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, harPageHTML)
	case "/old":
		http.Redirect(w, r, "/new", http.StatusFound)
	case "/new":
		http.SetCookie(w, &http.Cookie{Name: "hop", Value: "42", Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"n":42}`)
	case "/form":
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "text/plain")
		_, _ = fmt.Fprintf(w, "got %s", body)
	case "/img.png":
		w.Header().Set("Content-Type", "image/png")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = io.WriteString(w, harPNG)
	case "/ws":
		echo(w, r)
	default:
		http.NotFound(w, r)
	}
}

// echo sends back each message of a WebSocket until it closes.
func echo(w http.ResponseWriter, r *http.Request) {
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	conn, err := up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer conn.Close()
	for {
		kind, data, err := conn.ReadMessage()
		if err != nil {
			return
		}
		if err := conn.WriteMessage(kind, data); err != nil {
			return
		}
	}
}

// TestPageHAR: a page Chromium recorded, saved as DevTools saves it: an
// entry per request and per redirect hop in order, with the server's
// count of each; the redirect's status and Location; the cookie it set,
// sent on by the next request; a form's body and fields; a binary body in
// base64; the WebSocket's four messages in order, text as it is and
// binary in base64, timed within the socket's life; one page.
func TestPageHAR(t *testing.T) {
	srv := &harServer{counts: map[string]int{}}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	b := StartBrowser(t)
	p := b.Record(ts.URL + "/page")
	raw, doc := pageHAR(t, p, 30*time.Second)
	var got []string
	by := map[string]*harEntry{}
	for i := range doc.Log.Entries {
		e := &doc.Log.Entries[i]
		key := e.Request.Method + " " + strings.TrimPrefix(strings.TrimPrefix(e.Request.URL, ts.URL), "ws"+strings.TrimPrefix(ts.URL, "http"))
		got = append(got, fmt.Sprintf("%s %d %s", key, e.Response.Status, e.ResourceType))
		by[key] = e
	}
	want := []string{"GET /page 200 document", "GET /old?x=1 302 fetch", "GET /new 200 fetch", "POST /form 200 fetch", "GET /img.png 200 fetch", "GET /ws 101 websocket"}
	if !slices.Equal(got, want) {
		t.Fatalf("entries:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	srv.mu.Lock()
	counted := fmt.Sprint(srv.counts)
	srv.mu.Unlock()
	if counted != "map[GET /img.png:1 GET /new:1 GET /old:1 GET /page:1 GET /ws:1 POST /form:1]" {
		t.Errorf("the server counted %s", counted)
	}
	checkHAREntries(t, &doc, by)
	checkHARSocket(t, by["GET /ws"])
	seen, st, err := importer.ReadHAR(bytes.NewReader(raw), "page.har")
	if err != nil || st.Imported != 6 || st.NoBody != 0 || len(seen) != 6 || seen[5].WebSocket == nil || len(seen[5].WebSocket.Frames) != 4 {
		t.Errorf("the importer read %d exchanges (%+v), %v", len(seen), st, err)
	}
}

// checkHAREntries checks the HTTP entries of TestPageHAR's HAR.
func checkHAREntries(t *testing.T, doc *harFile, by map[string]*harEntry) {
	t.Helper()
	if len(doc.Log.Pages) != 1 || doc.Log.Pages[0].ID != "page_1" || !strings.HasSuffix(doc.Log.Pages[0].Title, "/page") || doc.Log.Pages[0].PageTimings.OnLoad <= 0 {
		t.Errorf("pages: %+v", doc.Log.Pages)
	}
	for key, e := range by {
		tm := e.Timings
		if e.Pageref != "page_1" || e.Time < 0 || tm.Wait < 0 || tm.Receive < 0 || tm.Send < 0 || tm.Blocked < -1 || tm.Connect < -1 || tm.DNS < -1 {
			t.Errorf("%s: pageref %q, time %v, timings %+v", key, e.Pageref, e.Time, tm)
		}
		if _, err := time.Parse(time.RFC3339Nano, e.StartedDateTime); err != nil || e.Response.Error != nil || e.ServerIPAddress != "127.0.0.1" && e.ResourceType != "websocket" {
			t.Errorf("%s: startedDateTime %q (%v), _error %v, serverIPAddress %q", key, e.StartedDateTime, err, e.Response.Error, e.ServerIPAddress)
		}
		if e.Request.HTTPVersion != "HTTP/1.1" || e.Response.HTTPVersion != "HTTP/1.1" || e.Connection == "" && e.ResourceType != "websocket" {
			t.Errorf("%s: versions %q %q, connection %q", key, e.Request.HTTPVersion, e.Response.HTTPVersion, e.Connection)
		}
	}
	if e := by["GET /old?x=1"]; e.Response.RedirectURL != "/new" || len(e.Request.QueryString) != 1 || e.Request.QueryString[0] != (harNV{"x", "1"}) || e.Response.Content.Text != "" {
		t.Errorf("the redirect: redirectURL %q, queryString %v, content %+v", e.Response.RedirectURL, e.Request.QueryString, e.Response.Content)
	}
	if e := by["GET /new"]; len(e.Response.Cookies) != 1 || e.Response.Cookies[0].Name != "hop" || !e.Response.Cookies[0].HTTPOnly ||
		e.Response.Cookies[0].SameSite != "Lax" || e.Response.Content.Text != `{"n":42}` || e.Response.Content.MimeType != "application/json" {
		t.Errorf("the redirect's end: cookies %+v, content %+v", e.Response.Cookies, e.Response.Content)
	}
	if e := by["POST /form"]; e.Request.PostData == nil || e.Request.PostData.Text != "a=1&b=two+words" || e.Request.BodySize != 15 ||
		!slices.Equal(e.Request.PostData.Params, []harNV{{"a", "1"}, {"b", "two words"}}) || e.Response.Content.Text != "got a=1&b=two+words" ||
		len(e.Request.Cookies) != 1 || e.Request.Cookies[0] != (harCookie{Name: "hop", Value: "42"}) {
		t.Errorf("the form: postData %+v, cookies %+v, content %+v", e.Request.PostData, e.Request.Cookies, e.Response.Content)
	}
	e := by["GET /img.png"]
	body, err := base64.StdEncoding.DecodeString(e.Response.Content.Text)
	if err != nil || e.Response.Content.Encoding != "base64" || string(body) != harPNG || e.Response.Content.Size != len(harPNG) {
		t.Errorf("the image: content %+v (%v)", e.Response.Content, err)
	}
}

// checkHARSocket checks the WebSocket entry of TestPageHAR's HAR.
func checkHARSocket(t *testing.T, e *harEntry) {
	t.Helper()
	if e.Messages == nil {
		t.Fatal("the socket has no _webSocketMessages")
	}
	var got []string
	for _, m := range *e.Messages {
		got = append(got, fmt.Sprintf("%s %d %s", m.Type, m.Opcode, m.Data))
	}
	want := []string{"receive 1 hello 42", "receive 2 AP8B", "send 1 hello 42", "send 2 AP8B"}
	sorted := slices.Sorted(slices.Values(got))
	if !slices.Equal(sorted, want) || !slices.IsSortedFunc(*e.Messages, func(a, b wsMessage) int { return cmp.Compare(a.Time, b.Time) }) {
		t.Errorf("messages %q, want %q in order of time", got, want)
	}
	start, err := time.Parse(time.RFC3339Nano, e.StartedDateTime)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range *e.Messages {
		at := time.UnixMicro(int64(m.Time * 1e6))
		if at.Before(start.Add(-time.Millisecond)) || at.After(start.Add(time.Duration(e.Time*float64(time.Millisecond))+time.Millisecond)) {
			t.Errorf("message %s at %v, outside the socket's life from %v for %v ms", m.Data, at, start, e.Time)
		}
	}
	if e.Request.Headers == nil || cdpHeaders(e.Request.Headers).get("Cookie") != "hop=42" || e.Response.Status != 101 {
		t.Errorf("the handshake: request headers %v, status %d", e.Request.Headers, e.Response.Status)
	}
}

// harChainPages is how many pages TestPageHARKeepsBodiesOfPagesLeft goes
// through.
const harChainPages = 12

// harChain serves pages /chain/1 to /chain/harChainPages, each with a
// token of its own and the same cacheable script, which moves on to the
// next page as soon as the page has loaded; the last says "done".
func harChain(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/chain.js" {
		w.Header().Set("Content-Type", "text/javascript")
		w.Header().Set("Cache-Control", "max-age=600")
		_, _ = io.WriteString(w, harChainJS)
		return
	}
	var k int
	if _, err := fmt.Sscanf(r.URL.Path, "/chain/%d", &k); err != nil || k < 1 || k > harChainPages {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = fmt.Fprintf(w, `<!doctype html><html><head><link rel="icon" href="data:,"><script src="/chain.js"></script></head>
<body data-page="%d" data-last="%d"><input name="token" value="token-%d"><div id="root"></div></body></html>`, k, harChainPages, k)
}

// harChainJS is the script of harChain's pages.
const harChainJS = `addEventListener("load", () => {
  const k = +document.body.dataset.page;
  if (k < +document.body.dataset.last) location.href = "/chain/" + (k + 1);
  else document.getElementById("root").textContent = "done";
});`

// TestPageHARKeepsBodiesOfPagesLeft: pages that move on as soon as they
// have loaded keep their bodies in the HAR, which DevTools would have lost
// (the browser drops a document's resources as the page leaves it): each
// page its own token, and each load of the script, from the network or a
// cache, its text.
func TestPageHARKeepsBodiesOfPagesLeft(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(harChain))
	defer ts.Close()
	b := StartBrowser(t)
	p := b.Record(ts.URL + "/chain/1")
	_, doc := pageHAR(t, p, 60*time.Second)
	pages, scripts := 0, map[string]int{}
	for _, e := range doc.Log.Entries {
		path := strings.TrimPrefix(e.Request.URL, ts.URL)
		switch c := e.Response.Content; {
		case path == "/chain.js":
			scripts[e.FromCache]++
			if c.Text != harChainJS || c.Encoding != "" {
				t.Errorf("%s (from cache %q): content %+v", path, e.FromCache, c)
			}
		case strings.HasPrefix(path, "/chain/"):
			pages++
			if want := fmt.Sprintf(`value="token-%s"`, strings.TrimPrefix(path, "/chain/")); !strings.Contains(c.Text, want) || c.Encoding != "" {
				t.Errorf("%s: content %+v, want it to hold %s", path, c, want)
			}
		default:
			t.Errorf("entry %s %s", e.Request.Method, e.Request.URL)
		}
	}
	if pages != harChainPages || len(doc.Log.Pages) != harChainPages || scripts[""]+scripts["memory"]+scripts["disk"] != harChainPages {
		t.Errorf("%d page entries, %d pages, the script loaded %v (by cache), want %d each", pages, len(doc.Log.Pages), scripts, harChainPages)
	}
	t.Logf("the script loaded %v (by cache)", scripts)
}

// pageHAR waits up to wait for p's #root to say done, and returns the HAR
// of p, raw and decoded.
func pageHAR(t *testing.T, p *Page, wait time.Duration) ([]byte, harFile) {
	t.Helper()
	if text, err := p.WaitText("root", wait); err != nil || text != "done" {
		t.Fatalf("the page said %q (%v)", text, err)
	}
	raw, err := p.HAR(30 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var doc harFile
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	return raw, doc
}
