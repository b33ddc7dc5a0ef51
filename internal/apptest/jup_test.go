package apptest

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// jupWant checks the counts of a whole visit by each of users, and that
// nothing was left behind.
func jupWant(t *testing.T, a *Jupyter, users ...string) {
	t.Helper()
	n := int64(len(users))
	want := map[string]int64{"sessions": n, "login redirects": n, "notebooks created": n, "renames": n, "kernels started": n,
		"kernel infos answered": n, "executions answered": 2 * n, "kernels deleted": n, "files deleted": n, "logouts": n}
	for name, w := range want {
		if got := a.Counts.Get(name); got != w {
			t.Errorf("count %q = %d, want %d (%s)", name, got, w, &a.Counts)
		}
	}
	if r := a.Refusals(); r != 0 {
		t.Errorf("%d refusals (%s)", r, &a.Counts)
	}
	if got := a.Users(); !slices.Equal(got, users) {
		t.Errorf("Users() = %q, want %q", got, users)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.files)+len(a.sessions)+len(a.kernels) != 0 {
		t.Errorf("left behind: %d files, %d sessions, %d kernels", len(a.files), len(a.sessions), len(a.kernels))
	}
}

func TestJupyterClients(t *testing.T) {
	a := NewJupyter(t)
	JupyterClient(t, a.URL, "alice")
	JupyterClient(t, a.URL, "bob")
	jupWant(t, a, "alice", "bob")
}

func TestJupyterClientsAtOnce(t *testing.T) {
	a := NewJupyter(t)
	users := []string{"ann", "ben", "cat"}
	t.Run("visits", func(t *testing.T) {
		for _, u := range users {
			t.Run(u, func(t *testing.T) {
				t.Parallel()
				JupyterClient(t, a.URL, u)
			})
		}
	})
	jupWant(t, a, users...)
}

// TestJupyterCookies checks the wire formats: Tornado's _xsrf and signed
// login cookie, the redirects, and the API's error JSON.
func TestJupyterCookies(t *testing.T) {
	a := NewJupyter(t)
	u := newJupUser(t, a.URL)
	ans := u.do(http.MethodGet, "/lab?u=zoe", "", http.StatusFound)
	if loc := ans.Header.Get("Location"); loc != "/login?next=%2Flab%3Fu%3Dzoe" {
		t.Errorf("anonymous /lab sent to %q", loc)
	}
	ans = u.do(http.MethodGet, "/api/contents/?type=directory&content=1", "", http.StatusForbidden)
	if string(ans.Body) != `{"message": "Forbidden", "reason": null}` || ans.Header.Get("Content-Type") != "application/json" {
		t.Errorf("anonymous API: %q %q", ans.Header.Get("Content-Type"), ans.Body)
	}
	first := u.do(http.MethodGet, "/login?next=%2Flab%3Fu%3Dzoe", "", http.StatusOK)
	xsrfRE := regexp.MustCompile(`^_xsrf=(2\|[0-9a-f]{8}\|[0-9a-f]{32}\|\d{10}); Path=/$`)
	m := xsrfRE.FindStringSubmatch(first.Header.Get("Set-Cookie"))
	if m == nil {
		t.Fatalf("login page: Set-Cookie %q", first.Header.Values("Set-Cookie"))
	}
	second := u.do(http.MethodGet, "/login?next=%2Flab%3Fu%3Dzoe", "", http.StatusOK)
	if sc := second.Header.Get("Set-Cookie"); sc != "" {
		t.Errorf("second login page sets %q", sc)
	}
	t1, t2 := jupXSRFRE.FindStringSubmatch(string(first.Body))[1], jupXSRFRE.FindStringSubmatch(string(second.Body))[1]
	_, raw0, _ := jupDecodeXSRF(m[1])
	_, raw1, _ := jupDecodeXSRF(t1)
	_, raw2, _ := jupDecodeXSRF(t2)
	if t1 == t2 || string(raw0) != string(raw1) || string(raw1) != string(raw2) || len(raw0) != 16 {
		t.Errorf("form tokens %q and %q of cookie %q: want fresh masks of one token", t1, t2, m[1])
	}
	if action := jupFormRE.FindStringSubmatch(string(first.Body))[1]; action != "/login?next=%2Flab%3Fu%3Dzoe" {
		t.Errorf("form action %q", action)
	}
	ans = u.do(http.MethodPost, "/login?next=%2Flab%3Fu%3Dzoe", url.Values{"_xsrf": {t2}, "username": {"zoe"}, "password": {"pw-zoe"}}.Encode(),
		http.StatusFound, "Content-Type", "application/x-www-form-urlencoded")
	name := jupCookieName(strings.TrimPrefix(a.URL, "http://"))
	loginRE := regexp.MustCompile(`^` + name + `="(2\|1:0\|10:\d{10}\|\d+:` + name + `\|\d+:[A-Za-z0-9+/=]+\|[0-9a-f]{64})"; HttpOnly; Path=/$`)
	lm := loginRE.FindStringSubmatch(ans.Header.Get("Set-Cookie"))
	if lm == nil || ans.Header.Get("Location") != "/lab?u=zoe" || !strings.HasPrefix(name, "username-127-0-0-1-") {
		t.Fatalf("login: %q to %q", ans.Header.Values("Set-Cookie"), ans.Header.Get("Location"))
	}
	v, ok := a.unsign(name, lm[1], time.Now())
	if want := `{"username": "zoe", "name": "zoe", "display_name": "zoe", "initials": null, "color": null, "avatar_url": null}`; !ok || string(v) != want {
		t.Errorf("login cookie holds %q, %v", v, ok)
	}
	fields := strings.Split(lm[1], "|")
	if b, _ := base64.StdEncoding.DecodeString(strings.SplitN(fields[4], ":", 2)[1]); string(b) != string(v) {
		t.Errorf("value field %q", fields[4])
	}
	if _, ok := a.unsign("username-other", lm[1], time.Now()); ok {
		t.Error("the cookie is good under another name")
	}
	if _, ok := a.unsign(name, lm[1], time.Now().Add(32*24*time.Hour)); ok {
		t.Error("the cookie is good after 32 days")
	}
	if _, ok := a.unsign(name, strings.Replace(lm[1], "|1:0|", "|1:1|", 1), time.Now()); ok {
		t.Error("a tampered cookie is good")
	}
	// The logged-in user's listing: a model as Jupyter writes it.
	var created jupListed
	u.api(http.MethodPost, "/api/contents/", map[string]string{"type": "notebook"}, http.StatusCreated, &created)
	ans = u.api(http.MethodGet, "/api/contents/?type=directory&content=1", nil, http.StatusOK, nil)
	modelRE := regexp.MustCompile(`^\{"name": "", "path": "", "last_modified": "[0-9T:.-]+Z", "created": "[0-9T:.-]+Z", "content": \[` +
		`\{"name": "Untitled.ipynb", "path": "Untitled.ipynb", "last_modified": "[0-9T:.-]+Z", "created": "[0-9T:.-]+Z", "content": null, "format": null, ` +
		`"mimetype": null, "size": 72, "writable": true, "hash": null, "hash_algorithm": null, "type": "notebook"\}\], "format": "json", "mimetype": null, ` +
		`"size": null, "writable": true, "hash": null, "hash_algorithm": null, "type": "directory"\}$`)
	if !modelRE.Match(ans.Body) || ans.Header.Get("Etag") == "" {
		t.Errorf("listing %s (Etag %q)", ans.Body, ans.Header.Get("Etag"))
	}
	if again := u.do(http.MethodGet, "/api/contents/?type=directory&content=1&1", "", http.StatusNotModified, "If-None-Match", ans.Header.Get("Etag")); len(again.Body) != 0 {
		t.Errorf("304 with a body %q", again.Body)
	}
	cookie := u.cookie(name)
	ans = u.do(http.MethodGet, "/logout", "", http.StatusOK)
	if sc := ans.Header.Get("Set-Cookie"); !regexp.MustCompile(`^` + name + `=""; expires=\w{3}, \d\d \w{3} \d{4} [\d:]{8} GMT; Path=/$`).MatchString(sc) {
		t.Errorf("logout: Set-Cookie %q", sc)
	}
	// Nothing is kept on the server: the old cookie still works.
	u.do(http.MethodGet, "/lab", "", http.StatusOK, "Cookie", name+`="`+cookie+`"`)
}

// jupRefusal is one request that must be refused.
type jupRefusal struct {
	name       string
	who        *jupUser
	method     string
	path, body string
	header     []string
	status     int
	count, has string // the count that goes up by one; what the body or Location has
}

func TestJupyterRefusals(t *testing.T) {
	a := NewJupyter(t)
	alice, bob, anon := newJupUser(t, a.URL), newJupUser(t, a.URL), newJupUser(t, a.URL)
	alice.login("alice")
	bob.login("bob")
	anon.page = string(anon.do(http.MethodGet, "/login", "", http.StatusOK).Body)
	var nb, bobs, nb2 jupListed
	alice.api(http.MethodPost, "/api/contents/", map[string]string{"type": "notebook"}, http.StatusCreated, &nb)
	bob.api(http.MethodPost, "/api/contents/", map[string]string{"type": "notebook"}, http.StatusCreated, &bobs)
	alice.api(http.MethodPost, "/api/contents/", map[string]string{"type": "notebook"}, http.StatusCreated, &nb2)
	if nb.Name != "Untitled.ipynb" || bobs.Name != "Untitled1.ipynb" || nb2.Name != "Untitled2.ipynb" {
		t.Fatalf("created %q, %q and %q", nb.Name, bobs.Name, nb2.Name)
	}
	var sess struct {
		ID     string
		Kernel struct{ ID string }
	}
	alice.api(http.MethodPost, "/api/sessions", map[string]any{"path": nb.Path, "type": "notebook", "name": "", "kernel": map[string]string{"name": "python3"}},
		http.StatusCreated, &sess)

	ax, bx := alice.cookie("_xsrf"), bob.cookie("_xsrf")
	js := func(xsrf string) []string { return []string{"X-XSRFToken", xsrf, "Content-Type", "application/json"} }
	form := url.Values{"_xsrf": {jupXSRFRE.FindStringSubmatch(anon.page)[1]}, "username": {"eve"}, "password": {"pw-bob"}}.Encode()
	cases := []jupRefusal{
		{"bob's xsrf token with alice's cookies", alice, "PATCH", "/api/contents/" + nb.Path, `{"path":"x.ipynb"}`, js(bx), 403, "403 xsrf", "XSRF cookie does not match POST argument"},
		{"no xsrf token", alice, "DELETE", "/api/contents/" + nb.Path, "", nil, 403, "403 xsrf", "'_xsrf' argument missing from POST"},
		{"a malformed xsrf token", alice, "POST", "/api/contents/", `{"type":"notebook"}`, js("2|zz|00|1"), 403, "403 xsrf", "'_xsrf' argument has invalid format"},
		{"another origin", alice, "POST", "/api/contents/", `{"type":"notebook"}`, append(js(ax), "Origin", "http://evil.example"), 404, "404 origin", `"Not Found"`},
		{"bob renames alice's notebook", bob, "PATCH", "/api/contents/" + nb.Path, `{"path":"mine.ipynb"}`, js(bx), 403, "foreign file", "Permission denied: Untitled.ipynb"},
		{"bob deletes alice's notebook", bob, "DELETE", "/api/contents/" + nb.Path, "", js(bx), 403, "foreign file", "Permission denied"},
		{"bob reads alice's notebook", bob, "GET", "/api/contents/" + nb.Path, "", js(bx), 403, "foreign file", "Permission denied"},
		{"bob starts a session on alice's notebook", bob, "POST", "/api/sessions", `{"path":"Untitled.ipynb","type":"notebook","name":"","kernel":{"name":"python3"}}`, js(bx), 403, "foreign file", "Permission denied"},
		{"a missing notebook", alice, "DELETE", "/api/contents/nothing.ipynb", "", js(ax), 404, "404 file", "does not exist"},
		{"a rename onto bob's name", alice, "PATCH", "/api/contents/" + nb.Path, `{"path":"Untitled1.ipynb"}`, js(ax), 409, "409 rename", "File already exists: Untitled1.ipynb"},
		{"bob deletes alice's session", bob, "DELETE", "/api/sessions/" + sess.ID, "", js(bx), 403, "foreign kernel", "not authorized"},
		{"bob reads alice's kernel", bob, "GET", "/api/kernels/" + sess.Kernel.ID, "", nil, 403, "foreign kernel", "Forbidden"},
		{"a wrong session id", alice, "DELETE", "/api/sessions/" + jupUUID(), "", js(ax), 404, "404 session", "Session not found: session_id="},
		{"a wrong kernel id", alice, "DELETE", "/api/kernels/" + jupUUID(), "", js(ax), 404, "404 kernel", "Kernel does not exist"},
		{"a path with a session already", alice, "POST", "/api/sessions", `{"path":"Untitled.ipynb","type":"notebook","name":"","kernel":{"name":"julia"}}`, js(ax), 201, "", sess.ID},
		{"an unknown kernel name", alice, "POST", "/api/sessions", `{"path":"Untitled2.ipynb","type":"notebook","name":"","kernel":{"name":"julia"}}`, js(ax), 501, "501 kernel", `"short_message": "julia not found"`},
		{"a session without a path", alice, "POST", "/api/sessions", `{"type":"notebook"}`, js(ax), 400, "400 bad request", "Missing field in JSON data: path"},
		{"bad JSON", alice, "POST", "/api/sessions", `{"path":`, js(ax), 400, "400 bad request", "Invalid JSON in body of request"},
		{"anonymous API", anon, "GET", "/api/contents/?type=directory&content=1", "", nil, 403, "403 anonymous", `{"message": "Forbidden", "reason": null}`},
		{"anonymous lab", anon, "GET", "/lab?u=eve", "", nil, 302, "login redirects", "/login?next=%2Flab%3Fu%3Deve"},
		{"wrong password", anon, "POST", "/login?next=%2Flab", form, []string{"Content-Type", "application/x-www-form-urlencoded"}, 401, "login refused", "Invalid credentials"},
		{"a login form without its token", anon, "POST", "/login", "username=eve&password=pw-eve", []string{"Content-Type", "application/x-www-form-urlencoded"}, 403, "403 xsrf", "argument missing"},
		{"no such route", alice, "GET", "/tree", "", nil, 404, "404 route", "404 : Not Found"},
	}
	jupRun(t, a, cases)

	// The listing is shared: bob sees alice's notebook, not writable.
	listed := bob.list()
	if len(listed) != 3 || listed[0].Name != "Untitled.ipynb" || listed[0].Writable || !listed[1].Writable || listed[2].Writable {
		t.Errorf("bob's listing %+v", listed)
	}
	// Deleting alice's notebook frees its name for the next one.
	alice.api(http.MethodDelete, "/api/contents/"+nb.Path, nil, http.StatusNoContent, nil)
	var next jupListed
	bob.api(http.MethodPost, "/api/contents/", map[string]string{"type": "notebook"}, http.StatusCreated, &next)
	if next.Name != "Untitled.ipynb" {
		t.Errorf("the next notebook is %q", next.Name)
	}
}

func jupRun(t *testing.T, a *Jupyter, cases []jupRefusal) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.who.tb = t
			before := a.Counts.Get(tc.count)
			ans := tc.who.do(tc.method, tc.path, tc.body, tc.status, tc.header...)
			if got := a.Counts.Get(tc.count); tc.count != "" && got != before+1 {
				t.Errorf("count %q went from %d to %d", tc.count, before, got)
			}
			if got := ans.Header.Get("Location") + string(ans.Body); !strings.Contains(got, tc.has) {
				t.Errorf("answer %.300q does not have %q", got, tc.has)
			}
		})
	}
}

// TestJupyterKernelChannels checks the kernel WebSocket's refusals and its
// session_id clashes.
func TestJupyterKernelChannels(t *testing.T) {
	a := NewJupyter(t)
	alice, bob, anon := newJupUser(t, a.URL), newJupUser(t, a.URL), newJupUser(t, a.URL)
	alice.login("alice")
	bob.login("bob")
	kernelOf := func(u *jupUser) string {
		var nb jupListed
		u.api(http.MethodPost, "/api/contents/", map[string]string{"type": "notebook"}, http.StatusCreated, &nb)
		var sess struct{ Kernel struct{ ID string } }
		u.api(http.MethodPost, "/api/sessions", map[string]any{"path": nb.Path, "type": "notebook", "name": "", "kernel": map[string]string{"name": "python3"}},
			http.StatusCreated, &sess)
		return sess.Kernel.ID
	}
	ak, bk := kernelOf(alice), kernelOf(bob)
	refused := func(who *jupUser, kernel string, status int, count string, header ...string) {
		t.Helper()
		before := a.Counts.Get(count)
		d := websocket.Dialer{Jar: who.c.Jar}
		h := http.Header{"Origin": {a.URL}}
		for i := 0; i+1 < len(header); i += 2 {
			h.Set(header[i], header[i+1])
		}
		ws, resp, err := d.Dial("ws"+strings.TrimPrefix(a.URL, "http")+"/api/kernels/"+kernel+"/channels?session_id="+jupUUID(), h)
		if resp != nil {
			resp.Body.Close()
		}
		if err == nil {
			ws.Close()
			t.Fatalf("%s: a connection", count)
		}
		if resp == nil || resp.StatusCode != status || a.Counts.Get(count) != before+1 {
			t.Errorf("%s: %v %v (%s)", count, resp, err, &a.Counts)
		}
	}
	refused(bob, ak, http.StatusForbidden, "foreign kernel")
	refused(alice, jupUUID(), http.StatusNotFound, "404 kernel")
	refused(anon, ak, http.StatusForbidden, "403 anonymous")
	refused(alice, ak, http.StatusForbidden, "403 origin", "Origin", "http://evil.example")

	// Two tabs with one session id: the server closes the older.
	session := jupUUID()
	first := alice.channels(ak, session)
	first.request("kernel_info_request", map[string]any{}, "")
	second := alice.channels(ak, session)
	_ = first.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	var ce *websocket.CloseError
	for {
		if _, _, err := first.ws.ReadMessage(); err != nil {
			if !errors.As(err, &ce) || ce.Code != websocket.CloseNoStatusReceived {
				t.Errorf("the older connection ended with %v", err)
			}
			break
		}
	}
	second.request("execute_request", jupExecute("2*21"), "42")
	if got := a.Counts.Get("session_id clash"); got != 1 {
		t.Errorf("session_id clash = %d after a second tab", got)
	}
	// Bob with alice's session id on his own kernel: allowed, but counted.
	third := bob.channels(bk, session)
	third.request("execute_request", jupExecute("1+1"), "2")
	if got := a.Counts.Get("session_id clash"); got != 2 {
		t.Errorf("session_id clash = %d after another user", got)
	}
	// A message that is not of the connection's session, a reused msg_id,
	// and code the kernel cannot run.
	msg := func(id, session, code string) map[string]any {
		return map[string]any{"header": map[string]string{"msg_id": id, "msg_type": "execute_request", "username": "", "session": session,
			"date": "2026-01-02T03:04:05.678Z", "version": "5.2"}, "parent_header": map[string]any{}, "metadata": map[string]any{},
			"content": jupExecute(code), "channel": "shell", "buffers": []any{}}
	}
	id := jupUUID()
	for _, m := range []map[string]any{msg(id, jupUUID(), "1+2"), msg(id, session, "import os")} {
		if err := third.ws.WriteJSON(m); err != nil {
			t.Fatal(err)
		}
	}
	_ = third.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	var replies []string
	for len(replies) < 2 {
		var m struct {
			MsgType      string          `json:"msg_type"`
			ParentHeader json.RawMessage `json:"parent_header"`
			Content      struct{ Status string }
		}
		if err := third.ws.ReadJSON(&m); err != nil {
			t.Fatal(err)
		}
		if m.MsgType == "execute_reply" {
			replies = append(replies, m.Content.Status)
			if !strings.Contains(string(m.ParentHeader), `"date": "2026-01-02T03:04:05.678000Z"`) {
				t.Errorf("parent header %s", m.ParentHeader)
			}
		}
	}
	if !slices.Equal(replies, []string{"ok", "error"}) {
		t.Errorf("replies %q", replies)
	}
	for name, want := range map[string]int64{"session_id mismatch": 1, "msg_id reused": 1, "execution errors": 1} {
		if got := a.Counts.Get(name); got != want {
			t.Errorf("count %q = %d, want %d", name, got, want)
		}
	}
	// Deleting the kernel closes its channel.
	bob.api(http.MethodDelete, "/api/kernels/"+bk, nil, http.StatusNoContent, nil)
	for {
		if _, _, err := third.ws.ReadMessage(); err != nil { // the last statuses, then the close
			if !errors.As(err, &ce) {
				t.Errorf("the channel of a deleted kernel: %v", err)
			}
			break
		}
	}
}

// TestJupyterRawFrames checks a frame as the server writes it: Python's
// json.dumps of the deserialized message, with its channel.
func TestJupyterRawFrames(t *testing.T) {
	a := NewJupyter(t)
	u := newJupUser(t, a.URL)
	u.login("kim")
	var kernel struct{ ID string }
	u.api(http.MethodPost, "/api/kernels", map[string]string{"name": "python3"}, http.StatusCreated, &kernel)
	session := jupUUID()
	ws, resp, err := u.dial(kernel.ID, session)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	defer ws.Close()
	if resp.Header.Get("Sec-Websocket-Protocol") != "" {
		t.Errorf("subprotocol %q", resp.Header.Get("Sec-Websocket-Protocol"))
	}
	_, frame, err := ws.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	frameRE := regexp.MustCompile(`^\{"header": \{"msg_id": "[0-9a-f]{8}-[0-9a-f]{24}_\d+_0", "msg_type": "status", "username": "jovyan", "session": "[0-9a-f]{8}-[0-9a-f]{24}", ` +
		`"date": "[0-9T:.-]+Z", "version": "5.3"\}, "msg_id": "[^"]+", "msg_type": "status", "parent_header": \{"msg_id": "` + session + `_\d+_0", ` +
		`"msg_type": "kernel_info_request", "username": "jovyan", "session": "` + session + `", "date": "[0-9T:.-]+Z", "version": "5.4"\}, ` +
		`"metadata": \{\}, "content": \{"execution_state": "idle"\}, "buffers": \[\], "channel": "iopub"\}$`)
	if !frameRE.Match(frame) {
		t.Errorf("first frame %s", frame)
	}
}

func TestJupyterBrowser(t *testing.T) {
	b := StartBrowser(t) // skips without Chromium
	a := NewJupyter(t)
	users := []string{"alice", "bob"}
	var pages []*Page
	for _, u := range users { // two browser contexts at once
		pages = append(pages, b.Open(a.URL+"/lab?u="+u))
	}
	for i, p := range pages {
		if text, err := p.WaitText("root", time.Minute); err != nil || text != "done" {
			t.Fatalf("%s: %q, %v (%s)", users[i], text, err, &a.Counts)
		}
	}
	jupWant(t, a, users...)
}
