package apptest

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// cableRefusals are the counts of refusals, all zero after good visits.
var cableRefusals = []string{"login refused", "422", "400", "404", "406", "invalid session cookie", "cable unauthorized", //nolint:gochecknoglobals // constant table
	"rejected subscriptions", "stale version", "cable unknown subscription", "cable duplicate subscription", "cable bad command", "cable dropped"}

// cableWant checks the counts of a whole visit by each of users; redirects
// is the number of anonymous requests sent to sign in.
func cableWant(t *testing.T, a *Cable, redirects int64, users ...string) {
	t.Helper()
	n := int64(len(users))
	want := map[string]int64{"sessions": n, "login redirects": redirects, "docs created": 2 * n, "subscriptions": 2 * n,
		"unsubscriptions": 2 * n, "edits": 4 * n, "renames": 2 * n, "logouts": n}
	for _, r := range cableRefusals {
		want[r] = 0
	}
	for name, w := range want {
		if got := a.Counts.Prefix(name); got != w {
			t.Errorf("count %q = %d, want %d (%s)", name, got, w, &a.Counts)
		}
	}
	if got := a.Users(); !slices.Equal(got, users) {
		t.Errorf("Users() = %q, want %q", got, users)
	}
}

func TestCableClients(t *testing.T) {
	a := NewCable(t)
	CableClient(t, a.URL, "alice")
	CableClient(t, a.URL, "bob")
	cableWant(t, a, 2, "alice", "bob")
	a.mu.Lock()
	defer a.mu.Unlock()
	if ids := slices.Sorted(maps.Keys(a.docs)); !slices.Equal(ids, []int{1, 2, 3, 4}) || a.docs[3].owner != a.users["bob"] {
		t.Errorf("document ids %v", ids)
	}
}

func TestCableClientsAtOnce(t *testing.T) {
	a := NewCable(t)
	users := []string{"ann", "ben", "cat"}
	t.Run("visits", func(t *testing.T) {
		for _, u := range users {
			t.Run(u, func(t *testing.T) {
				t.Parallel()
				CableClient(t, a.URL, u)
			})
		}
	})
	cableWant(t, a, 3, users...)
}

// TestCableCookie checks the session cookie: Rails' encrypted format,
// written again with each answer that read the session, reset by signing
// in and out.
func TestCableCookie(t *testing.T) {
	a := NewCable(t)
	u := newCableUser(t, a.URL)
	cookieRE := regexp.MustCompile(`^_docs_session=([A-Za-z0-9%]+--[A-Za-z0-9%]+--[A-Za-z0-9%]+); path=/; HttpOnly; SameSite=Lax$`)
	read := func(what string, ans Answer) *cableSession {
		t.Helper()
		m := cookieRE.FindStringSubmatch(ans.Header.Get("Set-Cookie"))
		if m == nil || len(ans.Header.Values("Set-Cookie")) != 1 {
			t.Fatalf("%s: Set-Cookie %q", what, ans.Header.Values("Set-Cookie"))
		}
		v, _ := url.QueryUnescape(m[1])
		if parts := strings.Split(v, "--"); len(parts) != 3 || len(parts[1]) != 16 || len(parts[2]) != 24 {
			t.Fatalf("%s: not data--iv--tag: %q", what, v)
		}
		s := a.open(m[1])
		if s == nil {
			t.Fatalf("%s: the cookie %q does not decrypt", what, m[1])
		}
		return s
	}
	first := u.do(http.MethodGet, "/docs?u=zoe", "", http.StatusFound)
	s1 := read("anonymous", first)
	if s1.ReturnTo != a.URL+"/docs?u=zoe" || s1.UserID != 0 {
		t.Errorf("anonymous session %+v", s1)
	}
	second := u.do(http.MethodGet, "/session/new", "", http.StatusOK)
	s2 := read("sign-in page", second)
	if first.Header.Get("Set-Cookie") == second.Header.Get("Set-Cookie") || s2.SessionID != s1.SessionID || s2.CSRF == "" {
		t.Errorf("sessions %+v and %+v: want the same session in two cookies", s1, s2)
	}
	u.page = string(second.Body)
	ans := u.do(http.MethodPost, "/session", url.Values{"email_address": {"zoe@example.test"}, "password": {"pw-zoe"},
		"authenticity_token": {u.token("post", "/session")}}.Encode(), http.StatusFound, "Content-Type", "application/x-www-form-urlencoded")
	if s := read("sign-in", ans); s.UserID == 0 || s.SessionID == s1.SessionID || s.CSRF != "" || s.ReturnTo != "" {
		t.Errorf("signed in: session %+v, was %+v", s, s1)
	}
	if loc := ans.Header.Get("Location"); loc != a.URL+"/docs?u=zoe" {
		t.Errorf("signed in, sent to %q", loc)
	}
	if ans := u.do(http.MethodGet, "/nowhere", "", http.StatusNotFound); ans.Header.Get("Set-Cookie") != "" {
		t.Errorf("a 404 sets %q", ans.Header.Get("Set-Cookie"))
	}
	u.get("/docs") // masked afresh each render
	before := u.token("delete", "/session")
	u.get("/docs")
	if after := u.token("delete", "/session"); after == before || len(after) != 86 {
		t.Errorf("sign-out tokens %q and %q: want two masked tokens of 64 bytes", before, after)
	}
}

// cableForm is a form body of name, value pairs.
func cableForm(kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v.Encode()
}

func TestCableRefusals(t *testing.T) {
	a := NewCable(t)
	alice, bob, anon := newCableUser(t, a.URL), newCableUser(t, a.URL), newCableUser(t, a.URL)
	alice.get("/session/new")
	signInToken := alice.token("post", "/session")
	alice.signIn("alice", "/docs")
	doc := alice.newDoc("Alice's")
	docPage, meta := alice.page, alice.meta()
	alice.get("/docs/new")
	newToken := alice.token("post", "/docs")
	bob.get("/session/new")
	bob.signIn("bob", "/docs")
	bob.get("/docs/new")
	bobOld := bob.token("post", "/docs")
	if loc := bob.submit("delete", "/session", nil, http.StatusSeeOther); loc != "/session/new" {
		t.Fatalf("signed out to %q", loc)
	}
	bob.get("/session/new")
	bob.signIn("bob", "/docs")
	bobMeta := bob.meta()
	anon.get("/session/new")

	ctype := []string{"Content-Type", "application/x-www-form-urlencoded"}
	jsonType := []string{"Content-Type", "application/json", "Accept", "application/json"}
	path := "/docs/" + strconv.Itoa(doc)
	cases := []struct {
		name       string
		who        *cableUser
		method     string
		path, body string
		header     []string
		status     int
		count, has string // the count that goes up by one; what the body or Location has
	}{
		{"a sign-in token replayed after signing in", alice, "POST", "/session", cableForm("authenticity_token", signInToken, "email_address", "alice@example.test", "password", "pw-alice"), ctype, 422, "422 csrf", "InvalidAuthenticityToken"},
		{"a token from before signing out and in", bob, "POST", "/docs", cableForm("authenticity_token", bobOld, "doc[title]", "x"), ctype, 422, "422 csrf", "Can&#39;t verify CSRF token"},
		{"the new-document token on the sign-out form", alice, "POST", "/session", cableForm("_method", "delete", "authenticity_token", newToken), ctype, 422, "422 csrf", "InvalidAuthenticityToken"},
		{"alice's token used by bob", bob, "POST", "/docs", cableForm("authenticity_token", meta, "doc[title]", "x"), ctype, 422, "422 csrf", "InvalidAuthenticityToken"},
		{"no token", alice, "POST", "/docs", cableForm("doc[title]", "x"), ctype, 422, "422 csrf", "InvalidAuthenticityToken"},
		{"PATCH without X-CSRF-Token", alice, "PATCH", path, `{"doc":{"title":"x"}}`, jsonType, 422, "422 csrf", `{"status":422,"error":"Unprocessable Entity"}`},
		{"PATCH from another origin", alice, "PATCH", path, `{"doc":{"title":"x"}}`, append([]string{"X-CSRF-Token", meta, "Origin", "http://evil.example"}, jsonType...), 422, "422 csrf", `"status":422`},
		{"the meta token in X-CSRF-Token", alice, "PATCH", path, `{"doc":{"title":"Renamed"}}`, append([]string{"X-CSRF-Token", meta}, jsonType...), 200, "renames", `"title":"Renamed"`},
		{"PATCH with the title wrapped", alice, "PATCH", path, `{"title":"Renamed"}`, append([]string{"X-CSRF-Token", meta}, jsonType...), 200, "renames", `"title":"Renamed"`},
		{"PATCH without doc", alice, "PATCH", path, `{"name":"x"}`, append([]string{"X-CSRF-Token", meta}, jsonType...), 400, "400 params", `"status":400`},
		{"PATCH with a blank title", alice, "PATCH", path, `{"doc":{"title":" "}}`, append([]string{"X-CSRF-Token", meta}, jsonType...), 422, "422 invalid", `{"title":["can't be blank"]}`},
		{"another user's document", bob, "GET", path, "", nil, 404, "404 foreign", "doesn't exist"},
		{"another user's JSON", bob, "GET", path + ".json", "", nil, 404, "404 foreign", `{"status":404,"error":"Not Found"}`},
		{"another user's rename", bob, "PATCH", path, `{"doc":{"title":"x"}}`, append([]string{"X-CSRF-Token", bobMeta}, jsonType...), 404, "404 foreign", `"status":404`},
		{"a missing document", alice, "GET", "/docs/999", "", nil, 404, "404 missing", "RecordNotFound"},
		{"no route", alice, "DELETE", path, "", nil, 404, "404 route", "error: 404"},
		{"wrong password", anon, "POST", "/session", cableForm("authenticity_token", anon.token("post", "/session"), "email_address", "eve@example.test", "password", "pw-bob"), ctype, 422, "login refused", "Try another email address or password."},
		{"anonymous document", anon, "GET", path + ".json", "", nil, 302, "login redirects", a.URL + "/session/new"},
		{"a blank title", alice, "POST", "/docs", cableForm("authenticity_token", meta, "doc[title]", " "), ctype, 422, "422 invalid", "Title can&#39;t be blank"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.who.tb = t
			before := a.Counts.Get(tc.count)
			ans := tc.who.do(tc.method, tc.path, tc.body, tc.status, tc.header...)
			if got := a.Counts.Get(tc.count); got != before+1 {
				t.Errorf("count %q went from %d to %d", tc.count, before, got)
			}
			if got := ans.Header.Get("Location") + string(ans.Body); !strings.Contains(got, tc.has) {
				t.Errorf("answer %.300q does not have %q", got, tc.has)
			}
			if raised := tc.count == "422 csrf" || tc.status == 404 || tc.status == 400; raised != (ans.Header.Get("Set-Cookie") == "") {
				t.Errorf("Set-Cookie %q", ans.Header.Get("Set-Cookie"))
			}
		})
	}
	t.Run("a wrong session cookie", func(t *testing.T) {
		u := newCableUser(t, a.URL)
		before := a.Counts.Get("login redirects")
		u.do(http.MethodGet, "/docs", "", http.StatusFound, "Cookie", "_docs_session="+strings.Replace(cableCookieOf(t, alice), "--", "--A", 1))
		if a.Counts.Get("invalid session cookie") != 1 || a.Counts.Get("login redirects") != before+1 {
			t.Errorf("counts %s", &a.Counts)
		}
	})
	alice.tb = t
	if !strings.Contains(docPage, `data-doc-id="`+strconv.Itoa(doc)+`"`) {
		t.Errorf("document page: %.500s", docPage)
	}
	if d := alice.fetch(http.MethodGet, path+".json", "", http.StatusOK); d.Title != "Renamed" {
		t.Errorf("alice's document %+v", d)
	}
}

// cableCookieOf is the session cookie a user's jar holds.
func cableCookieOf(t *testing.T, u *cableUser) string {
	t.Helper()
	base, _ := url.Parse(u.base)
	for _, c := range u.c.Jar.Cookies(base) {
		if c.Name == cableCookie {
			return c.Value
		}
	}
	t.Fatal("no session cookie")
	return ""
}

// closed waits for the end of the cable and returns its close code.
func (s *cableSocket) closed() int {
	s.tb.Helper()
	select {
	case f, ok := <-s.in:
		if ok {
			s.tb.Fatalf("cable: %s, want its end", f.Raw)
		}
	case <-time.After(5 * time.Second):
		s.tb.Fatal("the cable did not close in 5 s")
	}
	var ce *websocket.CloseError
	if !errors.As(s.err, &ce) {
		s.tb.Fatalf("the cable ended with %v", s.err)
	}
	return ce.Code
}

func TestCableChannel(t *testing.T) {
	a := NewCable(t)
	alice, bob := newCableUser(t, a.URL), newCableUser(t, a.URL)
	alice.get("/session/new")
	alice.signIn("alice", "/docs")
	doc := alice.newDoc("Shared")
	bob.get("/session/new")
	bob.signIn("bob", "/docs")
	bobDoc := bob.newDoc("Bob's")
	count := func(t *testing.T, name string, want int64) {
		t.Helper()
		for deadline := time.Now().Add(2 * time.Second); a.Counts.Get(name) != want && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
		if got := a.Counts.Get(name); got != want {
			t.Errorf("count %q = %d, want %d (%s)", name, got, want, &a.Counts)
		}
	}
	unauthorized := `{"type":"disconnect","reason":"unauthorized","reconnect":false}`

	t.Run("no session cookie", func(t *testing.T) {
		s := newCableUser(t, a.URL).dial()
		s.expect(unauthorized)
		if code := s.closed(); code != websocket.CloseNormalClosure {
			t.Errorf("close code %d", code)
		}
		count(t, "cable unauthorized", 1)
	})
	t.Run("a wrong session cookie", func(t *testing.T) {
		s := newCableUser(t, a.URL).dial("Cookie", "_docs_session="+strings.Replace(cableCookieOf(t, alice), "--", "--A", 1))
		s.expect(unauthorized)
		s.closed()
		count(t, "cable unauthorized", 2)
		count(t, "invalid session cookie", 1)
	})
	t.Run("a signed-out session", func(t *testing.T) {
		u := newCableUser(t, a.URL)
		u.get("/session/new")
		u.signIn("carl", "/docs")
		u.submit("delete", "/session", nil, http.StatusSeeOther)
		s := u.dial()
		s.expect(unauthorized)
		s.closed()
		count(t, "cable unauthorized", 3)
	})
	t.Run("not an upgrade, another origin", func(t *testing.T) {
		if ans := alice.do(http.MethodGet, "/cable", "", http.StatusNotFound); string(ans.Body) != "Page not found" {
			t.Errorf("GET /cable: %q", ans.Body)
		}
		d := websocket.Dialer{Jar: alice.c.Jar, Subprotocols: []string{cableProtocol}}
		_, resp, err := d.Dial("ws"+strings.TrimPrefix(a.URL, "http")+"/cable", http.Header{"Origin": {"http://evil.example"}})
		if resp != nil {
			resp.Body.Close()
		}
		if err == nil || resp == nil || resp.StatusCode != http.StatusNotFound {
			t.Errorf("a foreign origin: %v, %v", resp, err)
		}
		count(t, "404 cable", 2)
	})

	s, other := alice.dial(), alice.dial() // two tabs of alice's
	s.expect(`{"type":"welcome"}`)
	other.expect(`{"type":"welcome"}`)
	ident := cableIdentifier(doc)
	for name, tc := range map[string]struct {
		identifier string
		count      string
		want       string
	}{
		"another user's document": {cableIdentifier(bobDoc), "rejected subscriptions", fmt.Sprintf(`{"identifier":"{\"channel\":\"DocChannel\",\"doc_id\":%d}","type":"reject_subscription"}`, bobDoc)},
		"a missing document":      {`{"channel":"DocChannel","doc_id":99}`, "rejected subscriptions", `{"identifier":"{\"channel\":\"DocChannel\",\"doc_id\":99}","type":"reject_subscription"}`},
		"a string id":             {fmt.Sprintf(`{"channel":"DocChannel","doc_id":"%d"}`, doc), "subscriptions", fmt.Sprintf(`{"identifier":"{\"channel\":\"DocChannel\",\"doc_id\":\"%d\"}","type":"confirm_subscription"}`, doc)},
		"the document":            {ident, "subscriptions", fmt.Sprintf(`{"identifier":"{\"channel\":\"DocChannel\",\"doc_id\":%d}","type":"confirm_subscription"}`, doc)},
	} {
		t.Run(name, func(t *testing.T) {
			s.tb = t
			before := a.Counts.Get(tc.count)
			s.send(cableCommand{Command: "subscribe", Identifier: tc.identifier})
			s.expect(tc.want)
			count(t, tc.count, before+1)
		})
	}
	s.tb = t
	other.send(cableCommand{Command: "subscribe", Identifier: ident})
	other.expect(string(cableEncode(cableTyped{ident, "confirm_subscription"})))

	t.Run("an edit broadcast to both tabs", func(t *testing.T) {
		s.tb, other.tb = t, t
		s.send(cableEdit(doc, 1, "<b>Hello</b> & bye"))
		want := fmt.Sprintf(`{"identifier":"{\"channel\":\"DocChannel\",\"doc_id\":%d}","message":{"op":"edited","version":2,"body":"\u003cb\u003eHello\u003c/b\u003e \u0026 bye"}}`, doc)
		other.expect(want)
		// The tab's other subscription, by a string id, has it too.
		got := []string{s.next().Raw, s.next().Raw}
		slices.Sort(got)
		if byString := strings.Replace(want, `\"doc_id\":`+strconv.Itoa(doc), `\"doc_id\":\"`+strconv.Itoa(doc)+`\"`, 1); !slices.Equal(got, []string{want, byString}) {
			t.Errorf("got %q, want %s and %s", got, want, byString)
		}
	})
	t.Run("a stale version", func(t *testing.T) {
		other.tb = t
		other.send(cableEdit(doc, 1, "late"))
		other.expect(fmt.Sprintf(`{"identifier":%q,"message":{"op":"conflict","version":2}}`, ident))
		count(t, "stale version", 1)
	})
	t.Run("command errors", func(t *testing.T) {
		other.tb = t
		for _, tc := range []struct {
			msg   any
			count string
		}{
			{cableCommand{Command: "message", Identifier: cableIdentifier(bobDoc), Data: `{"action":"edit","body":"x","version":1}`}, "cable unknown subscription"},
			{cableCommand{Command: "unsubscribe", Identifier: `{"channel":"DocChannel","doc_id":99}`}, "cable unknown subscription"},
			{cableCommand{Command: "message", Identifier: "not json", Data: `{"action":"edit"}`}, "cable unknown subscription"},
			{cableCommand{Command: "subscribe", Identifier: ident}, "cable duplicate subscription"},
			{cableCommand{Command: "subscribe", Identifier: `{"channel":"NoChannel"}`}, "cable bad command"},
			{cableCommand{Command: "message", Identifier: ident, Data: `{"action":"destroy"}`}, "cable bad command"},
			{cableCommand{Command: "message", Identifier: ident, Data: `not json`}, "cable bad command"},
			{cableCommand{Command: "shout", Identifier: ident}, "cable bad command"},
			{map[string]any{"command": "subscribe", "identifier": map[string]any{"channel": "DocChannel"}}, "cable bad command"},
		} {
			before := a.Counts.Get(tc.count)
			if err := other.ws.WriteJSON(tc.msg); err != nil {
				t.Fatal(err)
			}
			b, _ := json.Marshal(tc.msg)
			count(t, tc.count, before+1)
			if t.Failed() {
				t.Fatalf("after %s", b)
			}
		}
		// Nothing was answered, and the connection still works.
		other.send(cableEdit(doc, 2, "again"))
		other.expect(cableEdited(doc, 3, "again"))
	})
	t.Run("unsubscribed", func(t *testing.T) {
		other.tb = t
		other.send(cableCommand{Command: "unsubscribe", Identifier: ident})
		count(t, "unsubscriptions", 1)
		other.send(cableEdit(doc, 3, "gone"))
		count(t, "cable unknown subscription", 4)
	})
}

func TestCablePing(t *testing.T) {
	t.Parallel()
	a := NewCable(t)
	u := newCableUser(t, a.URL)
	u.get("/session/new")
	u.signIn("pat", "/docs")
	d := websocket.Dialer{Jar: u.c.Jar, Subprotocols: []string{cableProtocol, "actioncable-unsupported"}}
	ws, resp, err := d.Dial("ws"+strings.TrimPrefix(a.URL, "http")+"/cable", http.Header{"Origin": {a.URL}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	defer ws.Close()
	if resp.Header.Get("Sec-WebSocket-Protocol") != cableProtocol || resp.Header.Get("Set-Cookie") != "" {
		t.Errorf("handshake headers %v", resp.Header)
	}
	_ = ws.SetReadDeadline(time.Now().Add(4 * time.Second))
	for _, want := range []string{"welcome", "ping"} {
		var f struct {
			Type    string `json:"type"`
			Message *int64 `json:"message"`
		}
		if err := ws.ReadJSON(&f); err != nil || f.Type != want {
			t.Fatalf("%+v, %v; want a %s", f, err, want)
		}
		if now := time.Now().Unix(); want == "ping" && (f.Message == nil || *f.Message < now-1 || *f.Message > now) {
			t.Errorf("ping message %v at %d", f.Message, now)
		}
	}
}

func TestCableBrowser(t *testing.T) {
	b := StartBrowser(t) // skips without Chromium
	a := NewCable(t)
	users := []string{"alice", "bob"}
	var pages []*Page
	for _, u := range users { // two browser contexts at once
		pages = append(pages, b.Open(a.URL+"/docs?u="+u))
	}
	for i, p := range pages {
		if text, err := p.WaitText("root", time.Minute); err != nil || text != "done" {
			t.Fatalf("%s: %q, %v (%s)", users[i], text, err, &a.Counts)
		}
	}
	cableWant(t, a, 2, users...)
}
