package apptest

import (
	"encoding/json"
	"errors"
	"fmt"
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

// signalrRefusals are the names of every refusal count ("hub " is all the
// hub's).
var signalrRefusals = []string{"login refused", "antiforgery refused", "ticket refused", "invalid", "401", "400", "404", "405", "409", //nolint:gochecknoglobals // constant
	"500", "negotiate refused", "unknown connection", "transport refused", "user changed", "handshake refused", "hub ", "client timeouts"}

// signalrWant checks the counts of a whole visit by each of users.
func signalrWant(t *testing.T, a *SignalR, users ...string) {
	t.Helper()
	n := int64(len(users))
	want := map[string]int64{"sessions": n, "logouts": n, "login redirects": n, "lists created": n, "lists deleted": n,
		"negotiations": n, "connections": n, "handshakes": n, "invocations": 5 * n, "lists joined": n, "tasks added": 3 * n,
		"tasks completed": n, "close messages": n}
	for _, r := range signalrRefusals {
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

func TestSignalRClients(t *testing.T) {
	a := NewSignalR(t)
	SignalRClient(t, a.URL, "alice")
	SignalRClient(t, a.URL, "bob")
	signalrWant(t, a, "alice", "bob")
}

func TestSignalRClientsAtOnce(t *testing.T) {
	a := NewSignalR(t)
	users := []string{"ann", "ben", "cat"}
	t.Run("visits", func(t *testing.T) {
		for _, u := range users {
			t.Run(u, func(t *testing.T) {
				t.Parallel()
				SignalRClient(t, a.URL, u)
			})
		}
	})
	signalrWant(t, a, users...)
	// The three visits' lists and tasks came from two counters shared
	// by all: lists 1 to 3, tasks 1 to 9.
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.lastList != 3 || a.lastTask != 9 || len(a.lists) != 0 || len(a.tasks) != 0 || len(a.pending) != 0 {
		t.Errorf("lists to %d, tasks to %d; %d lists, %d tasks, %d connections left", a.lastList, a.lastTask, len(a.lists), len(a.tasks), len(a.pending))
	}
}

// signalrSignedIn is user signed in, with a list of their own and its page
// shown.
func signalrSignedIn(t *testing.T, base, user string) (*signalrUser, string) {
	t.Helper()
	u := &signalrUser{newAspNetBrowser(t, base)}
	return u, u.signIn(user)
}

// signalrHubFrame is one WebSocket message's text, or the error that came
// instead.
func signalrHubFrame(h *signalrHubConn) (string, error) {
	_, raw, err := h.read()
	return string(raw), err
}

// signalrAddTask adds a task to a list and returns its id, reading the
// frame its completion comes in.
func signalrAddTask(t *testing.T, h *signalrHubConn, list, title string) int {
	t.Helper()
	c := h.invoke("AddTask", mustAtoi(t, list), title)
	var dto signalrTaskDto
	if c.Error != "" || json.Unmarshal(c.Result, &dto) != nil {
		t.Fatalf("AddTask: %+v", c)
	}
	return dto.ID
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestSignalRIdentity checks the Identity and antiforgery conventions on
// the way of a visit: the login redirect, the cookies, the tokens, the
// logout.
func TestSignalRIdentity(t *testing.T) {
	a := NewSignalR(t)
	u := &signalrUser{newAspNetBrowser(t, a.URL)}
	ans := u.do(http.MethodGet, "/Lists?u=zoe", "", http.StatusFound)
	if got := ans.Header.Get("Location"); got != a.URL+"/Identity/Account/Login?ReturnUrl=%2FLists%3Fu%3Dzoe" || ans.Header.Get("Server") != "Kestrel" {
		t.Errorf("anonymous: Location %q, Server %q", got, ans.Header.Get("Server"))
	}
	u.get(ans.Header.Get("Location"))
	af := regexp.MustCompile(`^\.AspNetCore\.Antiforgery\.[A-Za-z0-9_-]{11}=CfDJ8[A-Za-z0-9_-]+; path=/; samesite=strict; httponly$`)
	base, _ := url.Parse(a.URL)
	var names []string
	for _, k := range u.jar.Cookies(base) {
		names = append(names, k.Name)
	}
	if len(names) != 1 || !strings.HasPrefix(names[0], ".AspNetCore.Antiforgery.") {
		t.Errorf("cookies after the login page: %q", names)
	}
	if got := ans.Header.Values("Set-Cookie"); len(got) != 0 {
		t.Errorf("the anonymous redirect set %q", got)
	}
	login := u.do(http.MethodGet, ans.Header.Get("Location"), "", http.StatusOK)
	if got := strings.Join(login.Header.Values("Set-Cookie"), "\n"); !strings.Contains(got, "Identity.External=; expires="+aspnetEpoch) {
		t.Errorf("the login page's cookies: %q", got)
	}
	for _, k := range login.Header.Values("Set-Cookie") {
		if strings.HasPrefix(k, ".AspNetCore.Antiforgery.") && !af.MatchString(k) {
			t.Errorf("the antiforgery cookie: %q", k)
		}
	}
	f := u.form("id", "account")
	if tok := f.values.Get(aspnetAFField); !strings.HasPrefix(tok, "CfDJ8") || f.action != "/Identity/Account/Login?ReturnUrl=%2FLists%3Fu%3Dzoe" ||
		!slices.Equal(f.values["Input.RememberMe"], []string{"false"}) {
		t.Errorf("the login form: %q %v", f.action, f.values)
	}
	ans = u.do(http.MethodPost, f.action, url.Values{"Input.Email": {"zoe@example.test"}, "Input.Password": {"pw-zoe"}, "Input.RememberMe": {"false"},
		aspnetAFField: {f.values.Get(aspnetAFField)}}.Encode(), http.StatusFound, "Content-Type", "application/x-www-form-urlencoded")
	cookie := regexp.MustCompile(`^\.AspNetCore\.Identity\.Application=CfDJ8[A-Za-z0-9_-]{200,}; path=/; samesite=lax; httponly$`)
	if got := ans.Header.Values("Set-Cookie"); ans.Header.Get("Location") != "/Lists?u=zoe" || len(got) != 1 || !cookie.MatchString(got[0]) {
		t.Errorf("login: Location %q, Set-Cookie %q", ans.Header.Get("Location"), got)
	}
	u.get("/Lists?u=zoe")
	if !strings.Contains(u.page, `Hello zoe@example.test!`) || !strings.Contains(u.page, `<p id="no-lists">`) {
		t.Errorf("the lists page: %.800s", u.page)
	}
	// The token of the login page was made for no one: refused once
	// signed in.
	ans = u.do(http.MethodPost, "/Lists/Create", url.Values{"List.Name": {"x"}, aspnetAFField: {f.values.Get(aspnetAFField)}}.Encode(),
		http.StatusBadRequest, "Content-Type", "application/x-www-form-urlencoded")
	if len(ans.Body) != 0 || a.Counts.Get("antiforgery refused") != 1 {
		t.Errorf("a token from before the login: %q (%s)", ans.Body, &a.Counts)
	}
	loc := u.submit(u.form("id", "create-list"), url.Values{"List.Name": {"x"}}, http.StatusFound)
	u.get(loc)
	loc = u.submit(u.form("id", "delete-list"), nil, http.StatusFound)
	ans = u.do(http.MethodGet, loc, "", http.StatusOK)
	if !strings.Contains(string(ans.Body), `List &#x27;x&#x27; deleted.`) || !strings.Contains(strings.Join(ans.Header.Values("Set-Cookie"), "\n"),
		aspnetTempCookie+"=; expires="+aspnetEpoch) {
		t.Errorf("the status after the delete: %q", ans.Header.Values("Set-Cookie"))
	}
	u.page, u.where = string(ans.Body), loc
	ans = u.do(http.MethodPost, u.form("id", "logoutForm").action, "__RequestVerificationToken="+url.QueryEscape(u.form("id", "logoutForm").values.Get(aspnetAFField)),
		http.StatusFound, "Content-Type", "application/x-www-form-urlencoded")
	if ans.Header.Get("Location") != "/Identity/Account/Login" || !strings.Contains(strings.Join(ans.Header.Values("Set-Cookie"), "\n"), aspnetAppCookie+"=; expires="+aspnetEpoch) {
		t.Errorf("logout: %q %q", ans.Header.Get("Location"), ans.Header.Values("Set-Cookie"))
	}
	// Identity UI authorizes its Logout page: anonymous, it is a login
	// redirect.
	if ans := u.do(http.MethodPost, "/Identity/Account/Logout?returnUrl=%2F", "", http.StatusFound); !strings.Contains(ans.Header.Get("Location"), "ReturnUrl=%2FIdentity%2FAccount%2FLogout%3FreturnUrl%3D%252F") {
		t.Errorf("an anonymous logout: %q", ans.Header.Get("Location"))
	}
}

// TestSignalRRefusals checks each refusal's answer and count, made by a raw
// request or message.
func TestSignalRRefusals(t *testing.T) {
	a := NewSignalR(t)
	alice, aliceList := signalrSignedIn(t, a.URL, "alice")
	bob, bobList := signalrSignedIn(t, a.URL, "bob")
	bobHub := bob.connect()
	if c := bobHub.invoke("JoinList", mustAtoi(t, bobList)); c.Error != "" {
		t.Fatal(c.Error)
	}
	bobTask := signalrAddTask(t, bobHub, bobList, "Bob's")
	anon := &signalrUser{newAspNetBrowser(t, a.URL)}
	anon.get("/Identity/Account/Login")
	aliceToken := alice.form("id", "delete-list").values.Get(aspnetAFField)
	form := func(kv ...string) string {
		v := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v.Encode()
	}
	ctype := []string{"Content-Type", "application/x-www-form-urlencoded"}
	upgrade := []string{"Upgrade", "websocket", "Connection", "Upgrade", "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version", "13"}
	cases := []struct {
		name         string
		who          *signalrUser
		method, path string
		body         string
		header       []string
		status       int
		count        string // the count that goes up by one
		want         string // the body, exactly (or the Location)
		ctype        string // the Content-Type, exactly
	}{
		{"a wrong password", anon, "POST", "/Identity/Account/Login", form("Input.Email", "eve@example.test", "Input.Password", "pw-bob", "Input.RememberMe", "false",
			aspnetAFField, anon.form("id", "account").values.Get(aspnetAFField)), ctype, 200, "login refused", "", aspnetHTMLType},
		{"no antiforgery token", alice, "POST", "/Lists/Create", form("List.Name", "x"), ctype, 400, "antiforgery refused", "", ""},
		{"bob's token", alice, "POST", "/Lists/Create", form("List.Name", "x", aspnetAFField, bob.form("id", "delete-list").values.Get(aspnetAFField)), ctype, 400, "antiforgery refused", "", ""},
		{"a blank name", alice, "POST", "/Lists/Create", form("List.Name", " ", aspnetAFField, aliceToken), ctype, 200, "invalid", "", aspnetHTMLType},
		{"another user's list", alice, "GET", "/Lists/Details/" + bobList, "", nil, 404, "404 foreign", "", ""},
		{"deleting another user's list", alice, "POST", "/Lists/Delete/" + bobList, form(aspnetAFField, aliceToken), ctype, 404, "404 foreign", "", ""},
		{"a missing list", alice, "GET", "/Lists/Details/99", "", nil, 404, "404 missing", "", ""},
		{"an id that is not an int", alice, "GET", "/Lists/Details/x", "", nil, 404, "404 route", "", ""},
		{"an anonymous page", anon, "GET", "/Lists/Details/" + aliceList, "", nil, 302, "login redirects", a.URL + "/Identity/Account/Login?ReturnUrl=%2FLists%2FDetails%2F" + aliceList, ""},
		{"a cookie that does not decrypt", &signalrUser{newAspNetBrowser(t, a.URL)}, "GET", "/Lists", "", []string{"Cookie", aspnetAppCookie + "=CfDJ8AAAA"}, 302, "ticket refused",
			a.URL + "/Identity/Account/Login?ReturnUrl=%2FLists", ""},
		{"a ReturnUrl off the site", anon, "POST", "/Identity/Account/Login?ReturnUrl=http%3A%2F%2Fevil.example%2F", form("Input.Email", "eve@example.test", "Input.Password", "pw-eve",
			"Input.RememberMe", "false", aspnetAFField, anon.form("id", "account").values.Get(aspnetAFField)), ctype, 500, "500 not local", "", ""},
		{"an anonymous negotiate", anon, "POST", "/hubs/tasks/negotiate?negotiateVersion=1", "", []string{"X-Requested-With", "XMLHttpRequest"}, 401, "401", "", ""},
		{"an anonymous WebSocket", anon, "GET", "/hubs/tasks?id=x", "", upgrade, 401, "401", "", ""},
		{"a GET of negotiate", alice, "GET", "/hubs/tasks/negotiate?negotiateVersion=1", "", nil, 405, "405 method", "", "text/plain"},
		{"a negotiateVersion that is not a number", alice, "POST", "/hubs/tasks/negotiate?negotiateVersion=one", "", nil, 200, "negotiate refused",
			`{"error":"The client requested a non-integer protocol version."}`, "application/json"},
		{"an unknown connection token", alice, "GET", "/hubs/tasks?id=AAAAAAAAAAAAAAAAAAAAAA", "", upgrade, 404, "unknown connection", "No Connection with that ID", ""},
		{"long polling without an id", alice, "GET", "/hubs/tasks", "", nil, 400, "400 connection id", "Connection ID required", "text/plain"},
		{"long polling with an unknown id", alice, "GET", "/hubs/tasks?id=x", "", nil, 404, "unknown connection", "No Connection with that ID", "text/plain"},
		{"long polling with a negotiated id", alice, "GET", "/hubs/tasks?id=" + alice.negotiate(), "", nil, 404, "transport refused",
			"LongPolling transport not supported by this end point type", "text/plain"},
		{"a DELETE", alice, "DELETE", "/hubs/tasks?id=" + alice.negotiate(), "", nil, 400, "transport refused", "Cannot terminate this connection using the DELETE endpoint.", "text/plain"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tb := tc.who.tb
			tc.who.tb = t
			defer func() { tc.who.tb = tb }()
			before := a.Counts.Get(tc.count)
			ans := tc.who.do(tc.method, tc.path, tc.body, tc.status, tc.header...)
			if got := a.Counts.Get(tc.count); got != before+1 {
				t.Errorf("count %q went from %d to %d (%s)", tc.count, before, got, &a.Counts)
			}
			if got := ans.Header.Get("Content-Type"); got != tc.ctype {
				t.Errorf("Content-Type %q, want %q", got, tc.ctype)
			}
			switch {
			case tc.status == 302:
				if got := ans.Header.Get("Location"); got != tc.want {
					t.Errorf("Location %q, want %q", got, tc.want)
				}
			case tc.status == 200 && tc.want == "":
			default:
				if string(ans.Body) != tc.want {
					t.Errorf("body %q, want %q", ans.Body, tc.want)
				}
			}
		})
	}
	if ans := anon.do(http.MethodPost, "/Identity/Account/Login", form("Input.Email", "eve@example.test", "Input.Password", "pw-bob", "Input.RememberMe", "false",
		aspnetAFField, anon.form("id", "account").values.Get(aspnetAFField)), http.StatusOK, ctype...); !strings.Contains(string(ans.Body),
		`<div class="text-danger validation-summary-errors" data-valmsg-summary="true" role="alert"><ul><li>Invalid login attempt.</li></ul></div>`) {
		t.Errorf("a refused login: %.2000s", ans.Body)
	}

	// The hub: a HubException or a binding failure is a completion with an
	// error, and the connection goes on.
	alice.tb = t
	h := alice.connect()
	hubCases := []struct {
		name, send, count, want string
	}{
		{"JoinList of bob's list", `{"arguments":[` + bobList + `],"invocationId":"0","target":"JoinList","type":1}`, "hub foreign",
			`{"type":3,"invocationId":"0","error":"An unexpected error occurred invoking 'JoinList' on the server. HubException: No such list"}`},
		{"AddTask to bob's list", `{"arguments":[` + bobList + `,"x"],"invocationId":"1","target":"AddTask","type":1}`, "hub foreign",
			`{"type":3,"invocationId":"1","error":"An unexpected error occurred invoking 'AddTask' on the server. HubException: No such list"}`},
		{"CompleteTask of bob's task", fmt.Sprintf(`{"arguments":[%d],"invocationId":"2","target":"CompleteTask","type":1}`, bobTask), "hub foreign",
			`{"type":3,"invocationId":"2","error":"An unexpected error occurred invoking 'CompleteTask' on the server. HubException: No such task"}`},
		{"CompleteTask of a missing task", `{"arguments":[99],"invocationId":"3","target":"CompleteTask","type":1}`, "hub missing",
			`{"type":3,"invocationId":"3","error":"An unexpected error occurred invoking 'CompleteTask' on the server. HubException: No such task"}`},
		{"JoinList of a missing list", `{"type":1,"invocationId":"4","target":"JoinList","arguments":[99]}`, "hub missing",
			`{"type":3,"invocationId":"4","error":"An unexpected error occurred invoking 'JoinList' on the server. HubException: No such list"}`},
		{"a blank title", `{"arguments":[` + aliceList + `," "],"invocationId":"5","target":"AddTask","type":1}`, "hub invalid",
			`{"type":3,"invocationId":"5","error":"An unexpected error occurred invoking 'AddTask' on the server. HubException: A task needs a title."}`},
		{"an unknown method", `{"arguments":[],"invocationId":"6","target":"DeleteEverything","type":1}`, "hub unknown method",
			`{"type":3,"invocationId":"6","error":"Failed to invoke 'DeleteEverything' due to an error on the server. HubException: Method does not exist."}`},
		{"too few arguments", `{"arguments":[` + aliceList + `],"invocationId":"7","target":"AddTask","type":1}`, "hub bad invocation",
			`{"type":3,"invocationId":"7","error":"Failed to invoke 'AddTask' due to an error on the server."}`},
		{"a string for an int", `{"arguments":["` + aliceList + `"],"invocationId":"8","target":"JoinList","type":1}`, "hub bad invocation",
			`{"type":3,"invocationId":"8","error":"Failed to invoke 'JoinList' due to an error on the server."}`},
		{"a streaming invocation", `{"arguments":[` + aliceList + `],"invocationId":"9","target":"JoinList","type":4}`, "hub bad invocation",
			`{"type":3,"invocationId":"9","error":"The client attempted to invoke the non-streaming 'JoinList' method with a streaming invocation."}`},
		{"the method name in lower case", `{"arguments":[` + aliceList + `],"invocationId":"10","target":"joinlist","type":1}`, "lists joined",
			`{"type":3,"invocationId":"10","result":null}`},
	}
	for _, tc := range hubCases {
		t.Run(tc.name, func(t *testing.T) {
			h.tb = t
			before := a.Counts.Get(tc.count)
			h.send(tc.send)
			if got, err := signalrHubFrame(h); err != nil || got != tc.want+"\x1e" {
				t.Errorf("answer %q, %v; want %q", got, err, tc.want+"\x1e")
			}
			if got := a.Counts.Get(tc.count); got != before+1 {
				t.Errorf("count %q went from %d to %d (%s)", tc.count, before, got, &a.Counts)
			}
		})
	}
	// Without an invocationId, no completion, not even for an error: the
	// next frame is the next invocation's.
	h.tb = t
	h.send(`{"arguments":[],"target":"DeleteEverything","type":1}`)
	h.send(`{"arguments":[99],"target":"JoinList","type":1}`)
	h.send(`{"arguments":[` + aliceList + `],"invocationId":"11","target":"JoinList","type":1}`)
	if got, err := signalrHubFrame(h); got != `{"type":3,"invocationId":"11","result":null}`+"\x1e" || err != nil {
		t.Errorf("after two calls without an invocationId: %q, %v", got, err)
	}
	if a.Counts.Get("hub unknown method") != 2 || a.Counts.Get("hub missing") != 3 {
		t.Errorf("counts %s", &a.Counts)
	}

	// A message that does not parse ends the connection: a close message
	// with an error, then the WebSocket's close.
	badCases := []struct{ name, send string }{
		{"not JSON", `{"type":1,`},
		{"no type", `{"arguments":[1],"invocationId":"0","target":"JoinList"}`},
		{"no arguments", `{"invocationId":"0","target":"JoinList","type":1}`},
		{"a target that is not a string", `{"arguments":[1],"invocationId":"0","target":7,"type":1}`},
		{"an empty message", ``},
	}
	for _, tc := range badCases {
		t.Run(tc.name, func(t *testing.T) {
			alice.tb = t
			h := alice.connect()
			before := a.Counts.Get("hub bad message")
			h.send(tc.send)
			if got, err := signalrHubFrame(h); err != nil || got != `{"type":7,"error":"Connection closed with an error."}`+"\x1e" {
				t.Errorf("answer %q, %v", got, err)
			}
			if _, err := signalrHubFrame(h); !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
				t.Errorf("after the close message: %v", err)
			}
			if got := a.Counts.Get("hub bad message"); got != before+1 {
				t.Errorf("count went from %d to %d", before, got)
			}
		})
	}

	// A handshake refused: its error, then the close.
	handshakes := []struct{ name, send, want string }{
		{"another protocol", `{"protocol":"messagepack","version":1}`, `{"error":"The protocol 'messagepack' is not supported."}`},
		{"a later version", `{"protocol":"json","version":3}`, `{"error":"The server does not support version 3 of the 'json' protocol."}`},
		{"not JSON", `protocol=json`, `{"error":"An unexpected error occurred during connection handshake."}`},
		{"no version", `{"protocol":"json"}`, `{"error":"An unexpected error occurred during connection handshake."}`},
	}
	for _, tc := range handshakes {
		t.Run(tc.name, func(t *testing.T) {
			alice.tb = t
			h, status, _, err := alice.dialHub(alice.negotiate())
			if err != nil {
				t.Fatalf("%v (%d)", err, status)
			}
			before := a.Counts.Get("handshake refused")
			h.send(tc.send)
			if got, err := signalrHubFrame(h); err != nil || got != tc.want+"\x1e" {
				t.Errorf("answer %q, %v; want %q", got, err, tc.want+"\x1e")
			}
			if _, err := signalrHubFrame(h); !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
				t.Errorf("after the handshake's error: %v", err)
			}
			if got := a.Counts.Get("handshake refused"); got != before+1 {
				t.Errorf("count went from %d to %d", before, got)
			}
		})
	}
}

// TestSignalRFrames checks the frames the hub sends: a broadcast and its
// completion in one WebSocket message for the caller, the broadcast alone
// for the group's other connections, the JSON as SignalR writes it, and
// messages read across and within frames.
func TestSignalRFrames(t *testing.T) {
	a := NewSignalR(t)
	u, list := signalrSignedIn(t, a.URL, "alice")
	h1, h2 := u.connect(), u.connect() // two tabs on the list
	for _, h := range []*signalrHubConn{h1, h2} {
		if c := h.invoke("JoinList", mustAtoi(t, list)); c.Error != "" || string(c.Result) != "null" {
			t.Fatalf("JoinList: %+v", c)
		}
	}
	h1.send(`{"arguments":[` + list + `,"<b> & \"q\" é\n"],"invocationId":"1","target":"AddTask","type":1}`)
	task := `{"id":1,"listId":` + list + `,"title":"<b> & \"q\" é\n","done":false}`
	added := `{"type":1,"target":"TaskAdded","arguments":[` + task + `]}` + "\x1e"
	if got, err := signalrHubFrame(h1); err != nil || got != added+`{"type":3,"invocationId":"1","result":`+task+"}\x1e" {
		t.Errorf("the caller's frame: %q, %v", got, err)
	}
	if got, err := signalrHubFrame(h2); err != nil || got != added {
		t.Errorf("the other tab's frame: %q, %v", got, err)
	}
	h2.send(`{"arguments":[1],"invocationId":"1","target":"CompleteTask","type":1}`)
	completed := `{"type":1,"target":"TaskCompleted","arguments":[{"id":1,"listId":` + list + `}]}` + "\x1e"
	if got, err := signalrHubFrame(h2); err != nil || got != completed+`{"type":3,"invocationId":"1","result":true}`+"\x1e" {
		t.Errorf("the caller's frame: %q, %v", got, err)
	}
	if got, err := signalrHubFrame(h1); err != nil || got != completed {
		t.Errorf("the other tab's frame: %q, %v", got, err)
	}
	// Without an invocationId, the caller gets the broadcast alone.
	h1.send(`{"arguments":[` + list + `,"quiet"],"target":"AddTask","type":1}`)
	for _, h := range []*signalrHubConn{h1, h2} {
		if got, err := signalrHubFrame(h); err != nil || !strings.HasPrefix(got, `{"type":1,"target":"TaskAdded","arguments":[{"id":2,`) || strings.Count(got, "\x1e") != 1 {
			t.Errorf("a call without an invocationId: %q, %v", got, err)
		}
	}
	// Two messages in one frame, and one split across two frames: each
	// answered in order, each answer a frame of its own.
	if err := h1.ws.WriteMessage(websocket.TextMessage, []byte(`{"type":6}`+"\x1e"+`{"arguments":[`+list+`],"invocationId":"2","target":"JoinList","type":1}`+"\x1e"+`{"arguments":[`+list+`,"split"],"invo`)); err != nil {
		t.Fatal(err)
	}
	if got, err := signalrHubFrame(h1); err != nil || got != `{"type":3,"invocationId":"2","result":null}`+"\x1e" {
		t.Errorf("the first of a frame's messages: %q, %v", got, err)
	}
	if err := h1.ws.WriteMessage(websocket.TextMessage, []byte(`cationId":"3","target":"AddTask","type":1}`+"\x1e")); err != nil {
		t.Fatal(err)
	}
	recs, raw := h1.frame()
	if len(recs) != 2 || recs[0].Target != "TaskAdded" || recs[1].Type != 3 || recs[1].InvocationID != "3" {
		t.Errorf("the split message's answer: %q", raw)
	}
	if got, err := signalrHubFrame(h2); err != nil || !strings.Contains(got, `"title":"split"`) {
		t.Errorf("the other tab: %q, %v", got, err)
	}
	if a.Counts.Get("tasks added") != 3 || a.Counts.Get("tasks completed") != 1 || a.Counts.Get("lists joined") != 3 {
		t.Errorf("counts %s", &a.Counts)
	}
}

// TestSignalRConnections checks negotiate's answer, the connection
// tokens' lifetimes and the hub's timers.
func TestSignalRConnections(t *testing.T) {
	a := NewSignalR(t)
	u, _ := signalrSignedIn(t, a.URL, "alice")
	transports := `"availableTransports":\[\{"transport":"WebSockets","transferFormats":\["Text","Binary"\]\},\{"transport":"ServerSentEvents","transferFormats":\["Text"\]\},` +
		`\{"transport":"LongPolling","transferFormats":\["Text","Binary"\]\}\]\}$`
	ans := u.do(http.MethodPost, "/hubs/tasks/negotiate?negotiateVersion=1", "", http.StatusOK, "X-Requested-With", "XMLHttpRequest")
	if !regexp.MustCompile(`^\{"negotiateVersion":1,"connectionId":"[A-Za-z0-9_-]{22}","connectionToken":"[A-Za-z0-9_-]{22}",` + transports).Match(ans.Body) {
		t.Errorf("negotiate: %s", ans.Body)
	}
	// Version 0: no token; the id is the token.
	ans = u.do(http.MethodPost, "/hubs/tasks/negotiate", "", http.StatusOK)
	m := regexp.MustCompile(`^\{"negotiateVersion":0,"connectionId":"([A-Za-z0-9_-]{22})",` + transports).FindSubmatch(ans.Body)
	if m == nil {
		t.Fatalf("negotiate without a version: %s", ans.Body)
	}
	h, status, header, err := u.dialHub(string(m[1]))
	if err != nil {
		t.Fatalf("the id as the token: %v (%d)", err, status)
	}
	if header.Get("Sec-WebSocket-Protocol") != "" || header.Get("Sec-WebSocket-Extensions") != "" || header.Get("Server") != "Kestrel" {
		t.Errorf("the upgrade's answer: %v", header)
	}
	// A token in use is a 409; once its connection ended, a 404.
	if _, status, _, err := u.dialHub(string(m[1])); err == nil || status != http.StatusConflict {
		t.Errorf("a second WebSocket for a token: %v, %d", err, status)
	}
	h.send(`{"protocol":"json","version":1}`)
	h.frame()
	h.close()
	if _, status, _, err := u.dialHub(string(m[1])); err == nil || status != http.StatusNotFound {
		t.Errorf("a token whose connection ended: %v, %d", err, status)
	}
	// No id at all: a connection without negotiate (skipNegotiation).
	h, status, _, err = u.dialHub("")
	if err != nil {
		t.Fatalf("without negotiate: %v (%d)", err, status)
	}
	h.send(`{"protocol":"JSON","version":2}`)
	if got, err := signalrHubFrame(h); got != "{}\x1e" || err != nil {
		t.Errorf("a handshake of version 2: %q, %v", got, err)
	}
	h.close()
	// Another user's cookie with alice's token: SignalR only logs it.
	bob, _ := signalrSignedIn(t, a.URL, "bob")
	if h, status, _, err := bob.dialHub(u.negotiate()); err != nil {
		t.Errorf("bob with alice's token: %v (%d)", err, status)
	} else {
		h.stop()
	}
	if a.Counts.Get("user changed") != 1 || a.Counts.Get("409 connection active") != 1 || a.Counts.Get("unknown connection") != 1 {
		t.Errorf("counts %s", &a.Counts)
	}

	// The timers, shortened: a token unused past the DisconnectTimeout; a
	// ping when the server sent nothing for the KeepAliveInterval; no
	// handshake within the HandshakeTimeout; nothing from the client for
	// the ClientTimeoutInterval.
	a.mu.Lock()
	a.disconnectTimeout = time.Nanosecond
	a.mu.Unlock()
	if _, status, _, err := u.dialHub(u.negotiate()); err == nil || status != http.StatusNotFound {
		t.Errorf("a token past the DisconnectTimeout: %v, %d", err, status)
	}
	a.mu.Lock()
	a.disconnectTimeout, a.keepAlive = 15*time.Second, 100*time.Millisecond
	a.mu.Unlock()
	h = u.connect()
	for range 2 {
		if got, err := signalrHubFrame(h); got != signalrPing || err != nil {
			t.Errorf("the keep-alive: %q, %v", got, err)
		}
	}
	h.close()
	a.mu.Lock()
	a.keepAlive, a.handshakeTimeout = 15*time.Second, 200*time.Millisecond
	a.mu.Unlock()
	h, _, _, err = u.dialHub(u.negotiate())
	if err != nil {
		t.Fatal(err)
	}
	if got, err := signalrHubFrame(h); got != `{"error":"Handshake was canceled."}`+"\x1e" || err != nil {
		t.Errorf("no handshake: %q, %v", got, err)
	}
	a.mu.Lock()
	a.handshakeTimeout, a.clientTimeout = 15*time.Second, 300*time.Millisecond
	a.mu.Unlock()
	h = u.connect()
	if got, err := signalrHubFrame(h); got != `{"type":7,"error":"Connection closed with an error.","allowReconnect":true}`+"\x1e" || err != nil {
		t.Errorf("a silent client: %q, %v", got, err)
	}
	var ce *websocket.CloseError
	if _, err := signalrHubFrame(h); !errors.As(err, &ce) || ce.Code != websocket.CloseNormalClosure {
		t.Errorf("after the client timeout: %v", err)
	}
	if a.Counts.Get("client timeouts") != 1 || a.Counts.Get("handshake refused") != 1 {
		t.Errorf("counts %s", &a.Counts)
	}
}

func TestSignalRBrowser(t *testing.T) {
	b := StartBrowser(t) // skips without Chromium
	a := NewSignalR(t)
	users := []string{"alice", "bob"}
	var pages []*Page
	for _, u := range users { // two browser contexts at once
		pages = append(pages, b.Open(a.URL+"/Lists?u="+u))
	}
	for i, p := range pages {
		if text, err := p.WaitText("root", time.Minute); err != nil || text != "done" {
			t.Fatalf("%s: %q, %v (%s)", users[i], text, err, &a.Counts)
		}
	}
	signalrWant(t, a, users...)
}
