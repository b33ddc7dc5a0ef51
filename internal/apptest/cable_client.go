package apptest

import (
	"cmp"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// cableVisitJS moves a browser's visit on like a person, one step a page:
// sign in as the u of the start URL /docs?u=NAME (which the sign-in page
// has in data-return-to), then twice: the new-document form, and on the
// document's page fetch its JSON, open the cable as @rails/actioncable's
// consumer does, subscribe to DocChannel with the page's data-doc-id, make
// two edits each awaiting its broadcast, rename it by PATCH, unsubscribe and
// go back to the list; then sign out, and the sign-in page says "done". A
// page acts only as the step it expects (a reloaded one does nothing), and
// shows anything unexpected as "error: ...".
const cableVisitJS = `(() => {
  const S = sessionStorage, q = s => document.querySelector(s), all = s => [...document.querySelectorAll(s)];
  const root = document.getElementById("root"), fail = m => { root.textContent = "error: " + m; };
  const p = location.pathname, qs = new URLSearchParams(location.search), notice = q("#notice").textContent;
  const kind = p === "/session/new" ? "signin" : p === "/docs" ? "docs" : p === "/docs/new" ? "new" : /^\/docs\/\d+$/.test(p) ? "doc" : p;
  const steps = "signin docs new doc docs new doc docs signin".split(" ");
  const n = +(S.getItem("cable.step") || 0), check = (ok, m) => { if (!ok) throw new Error(m + " at step " + n); };
  const sleep = ms => new Promise(ok => setTimeout(ok, ms)), show = JSON.stringify;
  const titles = ["Meeting notes", "Design doc"], renamed = t => t + " (renamed)";
  const listed = k => { const a = all("#docs a"); check(a.length === k, a.length + " documents listed, not " + k); return a.map(a => a.textContent); };
  const submit = (f, fields) => {
    check(f, "no form");
    for (const [k, v] of Object.entries(fields || {})) f.querySelector('[name="' + k + '"]').value = v;
    f.querySelector('[type="submit"]').click();
  };
  // The consumer's connection: createWebSocketURL, the sub-protocols, and
  // the frames in order (pings aside).
  const connect = path => {
    const a = document.createElement("a");
    a.href = path;
    a.href = a.href;
    a.protocol = a.protocol.replace("http", "ws");
    const ws = new WebSocket(a.href, ["actioncable-v1-json", "actioncable-unsupported"]), got = [], waiting = [];
    let end = "";
    const pump = () => { while (waiting.length && (got.length || end)) { const w = waiting.shift(); got.length ? w[0](got.shift()) : w[1](new Error(end)); } };
    ws.onmessage = e => { const m = JSON.parse(e.data); if (m.type !== "ping") got.push(m); pump(); };
    ws.onclose = e => { end = "the cable closed (" + e.code + ")"; pump(); };
    return { ws, send: m => ws.send(JSON.stringify(m)),
      next: () => new Promise((ok, no) => { waiting.push([ok, no]); pump(); setTimeout(() => no(new Error("nothing on the cable in 5 s")), 5000); }) };
  };
  const work = async i => {
    check(notice === "Doc was successfully created.", "notice " + show(notice));
    const id = parseInt(q("#doc").dataset.docId, 10), headers = { Accept: "application/json", "X-CSRF-Token": q('meta[name="csrf-token"]').content };
    let r = await fetch("/docs/" + id + ".json", { headers });
    check(r.ok, "GET /docs/" + id + ".json: " + r.status);
    let doc = await r.json();
    check(doc.id === id && doc.title === titles[i] && doc.version === 1, "the document's JSON " + show(doc));
    const cable = connect(q('meta[name="action-cable-url"]').content), identifier = JSON.stringify({ channel: "DocChannel", doc_id: id });
    let m = await cable.next();
    check(m.type === "welcome" && cable.ws.protocol === "actioncable-v1-json", "not welcomed: " + show(m) + " " + cable.ws.protocol);
    cable.send({ command: "subscribe", identifier });
    m = await cable.next();
    check(m.identifier === identifier && m.type === "confirm_subscription", "not subscribed: " + show(m));
    let version = doc.version;
    for (const line of ["First line.", "Second line."]) {
      await sleep(100);
      const body = q("#body").textContent + line + "\n";
      cable.send({ command: "message", identifier, data: JSON.stringify({ body, version, action: "edit" }) });
      m = await cable.next();
      check(m.identifier === identifier && m.message && m.message.op === "edited" && m.message.version === version + 1 && m.message.body === body, "edit: " + show(m));
      version = m.message.version;
      q("#body").textContent = m.message.body;
      q("#version").textContent = version;
    }
    await sleep(100);
    r = await fetch("/docs/" + id, { method: "PATCH", headers: { ...headers, "Content-Type": "application/json" }, body: JSON.stringify({ doc: { title: renamed(titles[i]) } }) });
    check(r.ok, "PATCH /docs/" + id + ": " + r.status);
    doc = await r.json();
    check(doc.title === renamed(titles[i]) && doc.version === version, "renamed: " + show(doc));
    cable.send({ command: "unsubscribe", identifier });
    cable.ws.close();
    await sleep(100);
    q('main a[href="/docs"]').click();
  };
  const acts = [() => {
    const back = q("main").dataset.returnTo, u = qs.get("u") || back && new URL(back, location.href).searchParams.get("u") || S.getItem("cable.u");
    check(u, "no user in " + location.search + " nor " + back);
    S.setItem("cable.u", u);
    submit(q('form[action="/session"]:not(.button_to)'), { email_address: u + "@example.test", password: "pw-" + u });
  }, () => { listed(0); q('a[href="/docs/new"]').click(); },
  () => submit(q('form[action="/docs"]'), { "doc[title]": titles[0] }), () => work(0),
  () => { check(listed(1).join() === renamed(titles[0]), "listed " + listed(1)); q('a[href="/docs/new"]').click(); },
  () => submit(q('form[action="/docs"]'), { "doc[title]": titles[1] }), () => work(1),
  () => { check(listed(2).join() === titles.map(renamed).join(), "listed " + listed(2)); submit(q('form.button_to[action="/session"]')); },
  () => { root.textContent = "done"; }];
  if (q("#alert").textContent) return fail(q("#alert").textContent);
  if (kind !== steps[n]) return n > 0 && kind === steps[n - 1] || fail("page " + kind + " at step " + n);
  S.setItem("cable.step", n + 1);
  setTimeout(async () => { try { await acts[n](); } catch (e) { fail(e.message); } }, 100 + Math.random() * 100);
})();`

// CableClient is a person visiting a Cable with a browser, done with
// net/http and gorilla/websocket: the visit of the pages' script, from an
// anonymous GET /docs?u=USER sent to sign in. Forms are posted with their
// own authenticity_token and an Origin as a browser posts them; each
// document's page has its script fetch the JSON, open the cable with the
// session cookie, subscribe, edit twice, rename by PATCH with the meta
// tag's X-CSRF-Token, and unsubscribe. It fails tb on any answer but the one
// the app should give.
func CableClient(tb testing.TB, base, user string) {
	tb.Helper()
	newCableUser(tb, base).visit(user)
}

// cableUser is a browser context of CableClient: a cookie jar and
// connections of its own, and the last page.
type cableUser struct {
	tb          testing.TB
	c           *http.Client
	base        string
	page, where string
}

const cableNavigate = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"

var (
	cableFormRE  = regexp.MustCompile(`(?s)<form ([^>]*)>(.*?)</form>`)
	cableFieldRE = regexp.MustCompile(`\b(action|name="_method" value|name="authenticity_token" value)="([^"]*)"`)
	cableMetaRE  = regexp.MustCompile(`<meta name="csrf-token" content="([^"]+)"`)
	cableDocRE   = regexp.MustCompile(`<div id="doc" data-doc-id="(\d+)"`)
	cableListRE  = regexp.MustCompile(`<div id="doc_\d+"><a href="/docs/\d+">([^<]*)</a>`)
)

func newCableUser(tb testing.TB, base string) *cableUser {
	jar, _ := cookiejar.New(nil)
	tr := &http.Transport{}
	tb.Cleanup(tr.CloseIdleConnections)
	return &cableUser{tb: tb, base: base, c: &http.Client{Jar: jar, Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// do sends a request to path (under base) and fails the test unless the
// status is want.
func (u *cableUser) do(method, path, body string, want int, header ...string) Answer {
	u.tb.Helper()
	ans := Do(u.tb, u.c, method, u.base+path, body, header...)
	if ans.Status != want {
		u.tb.Fatalf("%s %s: %d, want %d: %.300s", method, path, ans.Status, want, ans.Body)
	}
	return ans
}

// get navigates to a page and keeps it.
func (u *cableUser) get(path string) {
	u.tb.Helper()
	u.page, u.where = string(u.do(http.MethodGet, path, "", http.StatusOK, "Accept", cableNavigate).Body), path
}

// token is the authenticity_token of the last page's form for method and
// action.
func (u *cableUser) token(method, action string) string {
	u.tb.Helper()
	for _, f := range cableFormRE.FindAllString(u.page, -1) {
		got := map[string]string{}
		for _, m := range cableFieldRE.FindAllStringSubmatch(f, -1) {
			got[strings.TrimSuffix(strings.TrimPrefix(m[1], `name="`), `" value`)] = html.UnescapeString(m[2])
		}
		if got["action"] == action && cmp.Or(got["_method"], "post") == method && got["authenticity_token"] != "" {
			return got["authenticity_token"]
		}
	}
	u.tb.Fatalf("%s has no form to %s %s", u.where, method, action)
	return ""
}

// meta is the last page's csrf-token.
func (u *cableUser) meta() string {
	u.tb.Helper()
	m := cableMetaRE.FindStringSubmatch(u.page)
	if m == nil {
		u.tb.Fatalf("%s has no csrf-token", u.where)
	}
	return html.UnescapeString(m[1])
}

// submit posts the last page's form for method and action with fields as
// a browser does, and returns the Location of its answer.
func (u *cableUser) submit(method, action string, fields url.Values, want int) string {
	u.tb.Helper()
	if fields == nil {
		fields = url.Values{}
	}
	if method != "post" {
		fields.Set("_method", method)
	}
	fields.Set("authenticity_token", u.token(method, action))
	ans := u.do(http.MethodPost, action, fields.Encode(), want, "Accept", cableNavigate, "Origin", u.base,
		"Content-Type", "application/x-www-form-urlencoded")
	return strings.TrimPrefix(ans.Header.Get("Location"), u.base)
}

func (u *cableUser) signIn(user, want string) {
	u.tb.Helper()
	if loc := u.submit("post", "/session", url.Values{"email_address": {user + "@example.test"}, "password": {"pw-" + user}, "commit": {"Sign in"}},
		http.StatusFound); loc != want {
		u.tb.Fatalf("signed in, sent to %q, want %q", loc, want)
	}
	u.get(want)
}

// newDoc creates a document with the new-document form and shows its
// page; it returns the document's id.
func (u *cableUser) newDoc(title string) int {
	u.tb.Helper()
	u.get("/docs/new")
	loc := u.submit("post", "/docs", url.Values{"doc[title]": {title}, "commit": {"Create Doc"}}, http.StatusFound)
	id, err := strconv.Atoi(strings.TrimPrefix(loc, "/docs/"))
	if err != nil || !strings.HasPrefix(loc, "/docs/") {
		u.tb.Fatalf("document %q created at %q", title, loc)
	}
	u.get(loc)
	if m := cableDocRE.FindStringSubmatch(u.page); m == nil || m[1] != strconv.Itoa(id) {
		u.tb.Fatalf("%s: no data-doc-id %d", loc, id)
	}
	return id
}

// cableDocJSON is what GET /docs/ID.json and PATCH /docs/ID answer.
type cableDocJSON struct {
	ID      int    `json:"id"`
	Title   string `json:"title"`
	Body    string `json:"body"`
	Version int    `json:"version"`
}

// fetch is the page's fetch() with the meta tag's token: the JSON it
// answers.
func (u *cableUser) fetch(method, path, body string, want int) cableDocJSON {
	u.tb.Helper()
	h := []string{"Accept", "application/json", "X-CSRF-Token", u.meta()}
	if body != "" {
		h = append(h, "Content-Type", "application/json", "Origin", u.base)
	}
	ans := u.do(method, path, body, want, h...)
	var d cableDocJSON
	if err := json.Unmarshal(ans.Body, &d); err != nil {
		u.tb.Fatalf("%s %s: %v: %.300s", method, path, err, ans.Body)
	}
	return d
}

// cableSocket is the page's cable: frames in order, pings aside.
type cableSocket struct {
	tb   testing.TB
	ws   *websocket.Conn
	in   chan cableFrame // closed at the connection's end
	done chan struct{}
	err  error // why the reading ended, once in is closed
}

// cableFrame is any frame the server sends.
type cableFrame struct {
	Type       string          `json:"type"`
	Identifier string          `json:"identifier"`
	Message    json.RawMessage `json:"message"`
	Reason     string          `json:"reason"`
	Reconnect  *bool           `json:"reconnect"`
	Raw        string          `json:"-"`
}

// dial opens the cable with the jar's cookies, the page's Origin and the
// consumer's sub-protocols.
func (u *cableUser) dial(header ...string) *cableSocket {
	u.tb.Helper()
	d := websocket.Dialer{Jar: u.c.Jar, Subprotocols: []string{cableProtocol, "actioncable-unsupported"}, HandshakeTimeout: 5 * time.Second}
	h := http.Header{"Origin": {u.base}}
	for i := 0; i+1 < len(header); i += 2 {
		h.Set(header[i], header[i+1])
	}
	ws, resp, err := d.Dial("ws"+strings.TrimPrefix(u.base, "http")+"/cable", h)
	if err != nil {
		u.tb.Fatalf("cable: %v", err)
	}
	resp.Body.Close()
	if p := ws.Subprotocol(); p != cableProtocol {
		u.tb.Fatalf("cable sub-protocol %q", p)
	}
	s := &cableSocket{tb: u.tb, ws: ws, in: make(chan cableFrame, 64), done: make(chan struct{})}
	u.tb.Cleanup(s.close)
	go func() {
		defer close(s.in)
		for {
			_, b, err := ws.ReadMessage()
			if err != nil {
				s.err = err
				return
			}
			f := cableFrame{Raw: string(b)}
			if json.Unmarshal(b, &f) != nil || f.Type != "ping" {
				select {
				case s.in <- f:
				case <-s.done:
					return
				}
			}
		}
	}()
	return s
}

// next is the next frame but pings; it fails the test after 5 s or at the
// end of the connection.
func (s *cableSocket) next() cableFrame {
	s.tb.Helper()
	select {
	case f, ok := <-s.in:
		if !ok {
			s.tb.Fatal("the cable closed")
		}
		return f
	case <-time.After(5 * time.Second):
		s.tb.Fatal("nothing on the cable in 5 s")
	}
	return cableFrame{}
}

// expect fails the test unless the next frame is want.
func (s *cableSocket) expect(want string) {
	s.tb.Helper()
	if f := s.next(); f.Raw != want {
		s.tb.Fatalf("cable: %s, want %s", f.Raw, want)
	}
}

func (s *cableSocket) send(v any) {
	s.tb.Helper()
	if err := s.ws.WriteJSON(v); err != nil {
		s.tb.Fatalf("cable: %v", err)
	}
}

// close closes the connection as a browser does: a close frame, and the
// server's answer awaited (so the server has read all that came before).
func (s *cableSocket) close() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	for deadline := time.After(2 * time.Second); ; {
		select {
		case _, ok := <-s.in:
			if ok {
				continue
			}
		case <-deadline:
		}
		break
	}
	close(s.done)
	s.ws.Close()
}

// cableCommand is what the consumer sends.
type cableCommand struct {
	Command    string `json:"command"`
	Identifier string `json:"identifier"`
	Data       string `json:"data,omitempty"`
}

// cableIdentifier is JSON.stringify({channel: "DocChannel", doc_id: id}).
func cableIdentifier(id int) string {
	return fmt.Sprintf(`{"channel":"DocChannel","doc_id":%d}`, id)
}

// cableEdit is subscription.perform("edit", {body, version}).
func cableEdit(id, version int, body string) cableCommand {
	data, _ := json.Marshal(struct {
		Body    string `json:"body"`
		Version int    `json:"version"`
		Action  string `json:"action"`
	}{body, version, "edit"})
	return cableCommand{"message", cableIdentifier(id), string(data)}
}

// edited is the broadcast of an edit to version with body.
func cableEdited(id, version int, body string) string {
	return string(cableEncode(cableMessage{cableIdentifier(id), struct {
		Op      string `json:"op"`
		Version int    `json:"version"`
		Body    string `json:"body"`
	}{"edited", version, body}}))
}

// work is a document page's script.
func (u *cableUser) work(id int, title string) {
	u.tb.Helper()
	path := "/docs/" + strconv.Itoa(id)
	d := u.fetch(http.MethodGet, path+".json", "", http.StatusOK)
	if d.ID != id || d.Title != title || d.Version != 1 {
		u.tb.Fatalf("%s.json: %+v", path, d)
	}
	s := u.dial()
	s.expect(`{"type":"welcome"}`)
	ident := cableIdentifier(id)
	s.send(cableCommand{Command: "subscribe", Identifier: ident})
	s.expect(string(cableEncode(cableTyped{ident, "confirm_subscription"})))
	body := ""
	for _, line := range []string{"First line.", "Second line."} {
		body += line + "\n"
		s.send(cableEdit(id, d.Version, body))
		d.Version++
		s.expect(cableEdited(id, d.Version, body))
	}
	r := u.fetch(http.MethodPatch, path, fmt.Sprintf(`{"doc":{"title":%q}}`, title+" (renamed)"), http.StatusOK)
	if r.Title != title+" (renamed)" || r.Version != d.Version || r.Body != body {
		u.tb.Fatalf("PATCH %s: %+v", path, r)
	}
	s.send(cableCommand{Command: "unsubscribe", Identifier: ident})
	s.close()
}

func (u *cableUser) visit(user string) {
	u.tb.Helper()
	start := "/docs?u=" + url.QueryEscape(user)
	if loc := u.do(http.MethodGet, start, "", http.StatusFound, "Accept", cableNavigate).Header.Get("Location"); loc != u.base+"/session/new" {
		u.tb.Fatalf("anonymous %s sent to %q", start, loc)
	}
	u.get("/session/new")
	if !strings.Contains(u.page, `data-return-to="`+html.EscapeString(u.base+start)+`"`) {
		u.tb.Fatalf("the sign-in page does not return to %s", start)
	}
	u.signIn(user, start)
	var titles []string
	for _, title := range []string{"Meeting notes", "Design doc"} {
		if got := cableListRE.FindAllStringSubmatch(u.page, -1); len(got) != len(titles) {
			u.tb.Fatalf("%s lists %d documents, want %d", u.where, len(got), len(titles))
		}
		u.work(u.newDoc(title), title)
		u.get("/docs")
		titles = append(titles, title+" (renamed)")
	}
	var got []string
	for _, m := range cableListRE.FindAllStringSubmatch(u.page, -1) {
		got = append(got, html.UnescapeString(m[1]))
	}
	if !slices.Equal(got, titles) {
		u.tb.Fatalf("documents listed: %q, want %q", got, titles)
	}
	if loc := u.submit("delete", "/session", nil, http.StatusSeeOther); loc != "/session/new" {
		u.tb.Fatalf("signed out, sent to %q", loc)
	}
	u.get("/session/new")
}
