package apptest

import (
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// SignalR is a backend that answers, on the wire, as an ASP.NET Core 8
// app does with Razor Pages, ASP.NET Core Identity (the default UI, cookie
// authentication) and a SignalR hub on WebSockets with the JSON hub
// protocol: "Tasks", a user's task lists with live updates. What it
// follows, and where from (dotnet/aspnetcore's src/SignalR: the
// HttpConnectionDispatcher, HubConnectionHandler, HubConnectionContext,
// DefaultHubDispatcher, JsonHubProtocol, ErrorMessageHelper; and what
// AspNet already follows for Identity and antiforgery):
//
//   - Identity and antiforgery as AspNet does them, with a key ring of its
//     own (Data Protection payloads "CfDJ8…"): the .AspNetCore.Antiforgery.*
//     cookie and a hidden __RequestVerificationToken at the end of every
//     form (one request token a render, bound to the signed-in user), every
//     POST to a page checked (a 400 with an empty body); the
//     .AspNetCore.Identity.Application cookie holds the ticket (the default
//     claims: nameidentifier, name, email, security stamp, amr; short enough
//     for one cookie). An anonymous page is a 302 to the absolute
//     http://host/Identity/Account/Login?ReturnUrl=<UrlEncoder-escaped path
//     and query>; the login form (Input.Email, Input.Password,
//     Input.RememberMe and its hidden "false") posts to its own URL and
//     answers a 302 LocalRedirect to the ReturnUrl, or re-renders with 200
//     and the validation summary "Invalid login attempt.". The logout form
//     of the layout posts to /Identity/Account/Logout?returnUrl=
//     %2FIdentity%2FAccount%2FLogin (Identity UI authorizes its Logout
//     page) and is sent back to the login page. TempData (the
//     CookieTempDataProvider cookie) carries "List 'X' deleted." to the list
//     page.
//   - Razor Pages: /Lists (the user's lists and a form to make one),
//     POST /Lists/Create (302 to /Lists/Details/ID; a blank List.Name
//     re-renders with "The Name field is required."), /Lists/Details/{id:int}
//     (the list, its data-list-id and data-hub-url, its tasks, the delete
//     form), /Lists/Delete/{id:int} (POST: 302 to /Lists). Another user's
//     list is NotFound(): a 404 with an empty body, as is a missing one, or
//     an id that is not an int (no page matches). Routes ignore case and a
//     trailing slash. Lists and tasks have ids from two counters shared by
//     all users, both from 1, so a list and a task often share an id.
//   - The hub, MapHub<TasksHub>("/hubs/tasks") with [Authorize]: the app's
//     cookie options answer an anonymous request under /hubs with a bare
//     401 (OnRedirectToLogin, the usual recipe, instead of a 302 to the
//     login page), before the dispatcher sees it. POST
//     /hubs/tasks/negotiate?negotiateVersion=1 answers application/json
//     {"negotiateVersion":1,"connectionId","connectionToken",
//     "availableTransports":[WebSockets, ServerSentEvents, LongPolling]},
//     each id 16 random bytes in base64url (22 characters); with no
//     negotiateVersion, version 0 and no connectionToken (the id is the
//     token); a non-integer one, 200 and {"error":"The client requested a
//     non-integer protocol version."}. Another method on negotiate is a 405.
//     GET /hubs/tasks?id=TOKEN upgraded to a WebSocket (no sub-protocol, no
//     compression, any Origin): a token negotiate did not give, or whose
//     connection has ended, or that waited past the DisconnectTimeout (15
//     s) unused, is a 404 "No Connection with that ID" (no Content-Type, as
//     the WebSocket path writes it); a token whose WebSocket is still open
//     a 409; no id at all makes a connection without negotiating
//     (skipNegotiation). A request that is not an upgrade is the other
//     transports' path: no id, 400 "Connection ID required"; an unknown one,
//     404 "No Connection with that ID" (text/plain, no-cache headers). The
//     user of the WebSocket's cookie is the connection's (SignalR only logs
//     a warning if it is not the one that negotiated: counted here).
//   - The JSON hub protocol: records ended by \x1e, any number in a frame
//     and split across frames. The handshake {"protocol":"json","version":N}
//     (the protocol name in any case, a version up to 2) is answered {}; an
//     unknown protocol {"error":"The protocol 'x' is not supported."}, a
//     version past 2 {"error":"The server does not support version 3 of
//     the 'json' protocol."}, an unreadable one {"error":"An unexpected
//     error occurred during connection handshake."}, no handshake within
//     15 s {"error":"Handshake was canceled."}, each then the WebSocket
//     closed (1000). After it, each message is read as JsonHubProtocol
//     does: one that does not parse (not JSON, no "type", an invocation
//     without target or arguments, over the 32 KiB MaximumReceiveMessageSize)
//     ends the connection with {"type":7,"error":"Connection closed with an
//     error."} and a close (1000); a client's {"type":7} is answered
//     {"type":7} and the close; 30 s without a message from the client
//     (ClientTimeoutInterval) ends it with {"type":7,"error":"Connection
//     closed with an error.","allowReconnect":true}. The server sends
//     {"type":6} when it has sent nothing for 15 s (KeepAliveInterval).
//   - Invocations {"type":1,"invocationId":"N","target","arguments"} (in
//     any order of properties, the method name in any case): the result in
//     {"type":3,"invocationId":"N","result":…} ("result":null for a method
//     that returns Task); a HubException in {"type":3,"invocationId":"N",
//     "error":"An unexpected error occurred invoking 'M' on the server.
//     HubException: …"}; an unknown method "Failed to invoke 'M' due to an
//     error on the server. HubException: Method does not exist."; arguments
//     that do not bind (their number, a string for an int) "Failed to
//     invoke 'M' due to an error on the server."; no invocationId, no
//     completion at all. Hub methods: JoinList(int listId) adds the
//     connection to the group "list-ID" (result null); AddTask(int listId,
//     string title) sends TaskAdded {"id","listId","title","done":false}
//     to the list's group and returns the same; CompleteTask(int taskId)
//     sends TaskCompleted {"id","listId"} to the group and returns true.
//     Another user's or a missing list or task, or a blank title, is a
//     HubException ("No such list", "No such task", "A task needs a
//     title."). Server calls are {"type":1,"target":"TaskAdded",
//     "arguments":[{…}]}. Strings are written as SignalR's
//     Utf8JsonWriter does (UnsafeRelaxedJsonEscaping: only quotes,
//     backslashes and control characters escaped).
//   - One frame, several messages: a hub method that sends to its caller's
//     group and then returns has its broadcast and its completion written
//     to the connection's pipe one after the other, and the WebSocket
//     transport sends what the pipe holds in one message: the caller gets
//     "{…TaskAdded…}\x1e{…completion…}\x1e" in one frame (the group's
//     other connections the broadcast alone).
//
// Users are made on demand: NAME signs in as NAME@example.test with the
// password "pw-" + NAME. The visit starts at GET /Lists?u=NAME.
//
// Counts, work: "sessions" (sign-ins), "logouts", "lists created", "lists
// deleted", "negotiations", "connections" (WebSockets opened), "handshakes"
// (accepted), "invocations" (invocation messages read, whatever became of
// them), "lists joined", "tasks added", "tasks completed", "close messages"
// (a client's {"type":7}), "login redirects" (anonymous pages sent to the
// login page; one a visit). Refusals: "login refused" (the login page
// again), "antiforgery refused" (400), "ticket refused" (an identity cookie
// that does not decrypt), "invalid" (a blank list name), "401" (anonymous
// under /hubs), "404 foreign" (another user's list), "404 missing", "404
// route" (no page), "405 method", "500 not local" (a ReturnUrl that is not
// local), "negotiate refused" (a bad negotiateVersion), "unknown
// connection" (404 No Connection with that ID), "409 connection active",
// "400 connection id" (no id off the WebSocket path), "transport refused"
// (a known token on the Server-Sent Events or long polling path, which
// this app does not imitate), "user changed" (a WebSocket whose cookie is
// not the negotiating user's; not refused, as SignalR only logs it),
// "handshake refused", "hub bad message" (a message that ends the
// connection), "hub bad invocation" (arguments that do not bind, a
// streaming invocation of a method that does not stream), "hub unknown
// method", "hub foreign" (another user's list or task), "hub missing" (a
// list or task that is not there), "hub invalid" (a blank title), "client
// timeouts".
type SignalR struct {
	URL    string
	Counts Counts

	tb       testing.TB // logs each refusal, for a test that fails
	dp       *AspNet    // the key ring: cookies, antiforgery tokens, TempData
	upgrader websocket.Upgrader

	// The hub's timings (HubOptions and HttpConnectionDispatcherOptions),
	// set before the first request: tests shorten them.
	keepAlive, clientTimeout, handshakeTimeout, disconnectTimeout time.Duration

	mu                 sync.Mutex
	users              map[string]*aspnetUser // by name
	byID               map[string]*aspnetUser
	lists              map[int]*signalrList
	tasks              map[int]*signalrTask
	lastList, lastTask int
	pending            map[string]*signalrPending // HttpConnectionManager's connections, by token
	conns              map[*signalrConn]bool
	groups             map[string]map[*signalrConn]bool
	closed             bool
	wg                 sync.WaitGroup
}

type (
	signalrList struct{ owner, name string } // owner: the user's id
	signalrTask struct {
		list  int
		title string
		done  bool
	}
	// signalrPending is a connection the dispatcher knows: negotiated
	// (or made by a WebSocket without an id), until its transport ends.
	signalrPending struct {
		id   string    // the connectionId
		user string    // the negotiating user's id
		made time.Time // for the DisconnectTimeout of an unused one
		open bool      // a WebSocket has it
	}
)

const (
	signalrHub        = "/hubs/tasks"
	signalrLogoutBack = "/Identity/Account/Login"
)

// NewSignalR starts a SignalR on loopback until the test ends.
func NewSignalR(tb testing.TB) *SignalR {
	a := &SignalR{tb: tb, dp: newAspNetKeyRing("tasks"), users: map[string]*aspnetUser{}, byID: map[string]*aspnetUser{},
		lists: map[int]*signalrList{}, tasks: map[int]*signalrTask{}, pending: map[string]*signalrPending{},
		conns: map[*signalrConn]bool{}, groups: map[string]map[*signalrConn]bool{},
		keepAlive: 15 * time.Second, clientTimeout: 30 * time.Second, handshakeTimeout: 15 * time.Second, disconnectTimeout: 15 * time.Second}
	// ASP.NET Core's WebSockets middleware: any Origin (AllowedOrigins
	// empty), no compression (SignalR does not ask for it).
	a.upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }, HandshakeTimeout: 10 * time.Second}
	srv := httptest.NewServer(a)
	tb.Cleanup(func() {
		srv.Close()
		a.mu.Lock() // hijacked connections outlive srv.Close: end them
		a.closed = true
		for x := range a.conns {
			x.ws.Close()
		}
		a.mu.Unlock()
		a.wg.Wait()
	})
	a.URL = srv.URL
	return a
}

// Users returns the names of the users who signed in, sorted.
func (a *SignalR) Users() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Sorted(maps.Keys(a.users))
}

// refuse counts a refusal and logs why, for a test that fails.
func (a *SignalR) refuse(count, format string, args ...any) {
	a.Counts.Add(count, 1)
	a.tb.Logf("signalr app: "+count+": "+format, args...)
}

// signalrCall is one request on its way through the app: the Identity and
// antiforgery machinery of AspNet (core, over the app's key ring), and
// what to run once the lock is let go (the WebSocket).
type signalrCall struct {
	a     *SignalR
	core  *aspnetCall
	w     http.ResponseWriter
	r     *http.Request
	after func()
}

func (a *SignalR) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	c := &signalrCall{a: a, core: &aspnetCall{a: a.dp, w: w, r: r}, w: w, r: r}
	c.serve()
	a.mu.Unlock()
	if c.after != nil {
		c.after()
	}
}

// user is the signed-in user, or nil.
func (c *signalrCall) user() *aspnetUser { return c.core.user }

func (c *signalrCall) serve() {
	path := strings.ToLower(strings.TrimSuffix(c.r.URL.Path, "/"))
	if path == "/favicon.ico" { // wwwroot/favicon.ico, served by the static files middleware
		c.w.Header().Set("Content-Type", "image/x-icon")
		http.ServeContent(c.w, c.r, "favicon.ico", time.Time{}, strings.NewReader(""))
		return
	}
	c.authenticate()
	if path == signalrHub+"/negotiate" || path == signalrHub {
		if c.user() == nil { // [Authorize] on the hub; OnRedirectToLogin's 401 under /hubs
			c.a.refuse("401", "%s %s anonymous", c.r.Method, c.r.URL.Path)
			c.core.send(http.StatusUnauthorized, "", "")
			return
		}
		if path == signalrHub {
			c.dispatch()
		} else {
			c.negotiate()
		}
		return
	}
	var page func()
	authorize := true
	segs := strings.Split(strings.TrimPrefix(path, "/"), "/")
	switch {
	case path == "" || path == "/index":
		page, authorize = c.home, false
	case path == strings.ToLower(aspnetLoginPath):
		page, authorize = c.login, false
	case path == strings.ToLower(aspnetLogoutPath):
		page = c.logout // AuthorizeAreaPage("Identity", "/Account/Logout")
	case path == "/lists" || path == "/lists/index":
		page = c.listsPage
	case path == "/lists/create":
		page = c.create
	case len(segs) == 3 && segs[0] == "lists" && (segs[1] == "details" || segs[1] == "delete"):
		id, err := strconv.ParseInt(strings.TrimPrefix(segs[2], "+"), 10, 32) // {id:int}
		if err != nil {
			break
		}
		if segs[1] == "details" {
			page = func() { c.details(int(id)) }
		} else {
			page = func() { c.remove(int(id)) }
		}
	}
	if page == nil {
		c.fail(http.StatusNotFound, "404 route")
		return
	}
	if authorize && c.user() == nil {
		c.challenge()
		return
	}
	if m := c.r.Method; m != http.MethodGet && m != http.MethodHead && m != http.MethodOptions && m != http.MethodTrace {
		if reason := c.core.antiforgery(); reason != "" { // Razor Pages' automatic validation
			c.a.refuse("antiforgery refused", "%s %s: %s", m, c.r.URL.Path, reason)
			c.core.send(http.StatusBadRequest, "", "")
			return
		}
	}
	page()
}

// authenticate is the cookie handler's AuthenticateAsync.
func (c *signalrCall) authenticate() {
	v := c.core.chunked(aspnetAppCookie)
	if v == "" {
		return
	}
	id, exp, ok := c.a.dp.readTicket(v)
	if u := c.a.byID[id]; ok && exp.After(time.Now()) && u != nil {
		c.core.user = u
		return
	}
	c.a.refuse("ticket refused", "%s %s", c.r.Method, c.r.URL.Path)
}

// challenge is the cookie handler's ChallengeAsync for a page: a 302 to
// the login page with the ReturnUrl.
func (c *signalrCall) challenge() {
	q := ""
	if c.r.URL.RawQuery != "" {
		q = "?" + c.r.URL.RawQuery
	}
	c.w.Header().Set("Location", "http://"+c.r.Host+aspnetLoginPath+"?ReturnUrl="+aspnetURLEncode(c.r.URL.EscapedPath()+q))
	c.a.Counts.Add("login redirects", 1)
	c.core.send(http.StatusFound, "", "")
}

// fail answers a status with an empty body, as NotFound() does, and counts
// it.
func (c *signalrCall) fail(status int, count string) {
	c.a.refuse(count, "%s %s", c.r.Method, c.r.URL.Path)
	c.core.send(status, "", "")
}

func (c *signalrCall) post() bool { return c.r.Method == http.MethodPost }

// login is Identity UI's Account/Login page (as AspNet's, in this app's
// layout).
func (c *signalrCall) login() {
	back, _ := aspnetQuery(c.r.URL.Query(), "returnUrl")
	if back == "" {
		back = "/"
	}
	var email string
	var errs []string
	if c.post() {
		f := c.core.form()
		email = f.Get("Input.Email")
		name, isOurs := strings.CutSuffix(strings.ToLower(strings.TrimSpace(email)), "@example.test")
		pw, rememberMe := f.Get("Input.Password"), f.Get("Input.RememberMe")
		switch {
		case email == "" || pw == "":
			if email == "" {
				errs = append(errs, "The Email field is required.")
			}
			if pw == "" {
				errs = append(errs, "The Password field is required.")
			}
		case rememberMe != "true" && rememberMe != "false":
			errs = append(errs, "The value '"+rememberMe+"' is not valid for Remember me?.")
		case !isOurs || name == "" || pw != "pw-"+name:
			errs = append(errs, "Invalid login attempt.")
		case !aspnetLocal(back): // LocalRedirect throws
			c.fail(http.StatusInternalServerError, "500 not local")
			return
		default:
			u := c.a.users[name]
			if u == nil {
				u = &aspnetUser{name: name, id: aspnetGUID(), email: name + "@example.test", stamp: aspnetStamp()}
				c.a.users[name], c.a.byID[u.id] = u, u
			}
			now := time.Now().UTC().Truncate(time.Second)
			expires := ""
			if rememberMe == "true" {
				expires = now.Add(aspnetExpire).Format(http.TimeFormat)
			}
			c.core.appendChunked(aspnetAppCookie, c.a.dp.ticketOf(signalrClaims(u), rememberMe == "true", now), expires, "lax")
			c.a.Counts.Add("sessions", 1)
			c.core.redirect(strings.Replace(back, "~/", "/", 1))
			return
		}
		c.a.refuse("login refused", "%q: %v", email, errs)
	} else {
		c.core.cookies = append(c.core.cookies, aspnetSetCookie("Identity.External", "", aspnetEpoch, "lax")) // SignOutAsync(ExternalScheme)
	}
	c.loginPage(back, email, errs)
}

// signalrClaims are the claims of the default Identity: what
// UserClaimsPrincipalFactory and SignInWithClaimsAsync put in the ticket.
func signalrClaims(u *aspnetUser) []aspnetClaim {
	return []aspnetClaim{{aspnetClaims + "nameidentifier", u.id}, {aspnetClaims + "name", u.email},
		{aspnetClaims + "emailaddress", u.email}, {aspnetStampClaim, u.stamp}, {"amr", "pwd"}}
}

// logout is Identity UI's Account/Logout page: its GET shows a button, its
// POST signs out (the application, external and two-factor cookies) and
// answers LocalRedirect(returnUrl).
func (c *signalrCall) logout() {
	if !c.post() {
		c.logoutPage()
		return
	}
	back, has := aspnetQuery(c.r.URL.Query(), "returnUrl")
	if has && !aspnetLocal(back) {
		c.fail(http.StatusInternalServerError, "500 not local")
		return
	}
	c.core.deleteChunked(aspnetAppCookie)
	c.core.cookies = append(c.core.cookies, aspnetSetCookie("Identity.External", "", aspnetEpoch, "lax"),
		aspnetSetCookie("Identity.TwoFactorUserId", "", aspnetEpoch, "lax"))
	c.a.Counts.Add("logouts", 1)
	if !has {
		c.core.redirect(aspnetLogoutPath)
		return
	}
	c.core.redirect(strings.Replace(back, "~/", "/", 1))
}

// listsPage is Pages/Lists/Index: the user's lists, the TempData status,
// and the form that posts to Create.
func (c *signalrCall) listsPage() {
	status := c.core.loadTemp()["StatusMessage"]
	delete(c.core.temp, "StatusMessage")
	c.core.saveTemp(nil)
	c.listsView(status)
}

// mine lists the ids of the user's lists, in order.
func (c *signalrCall) mine() []int {
	var ids []int
	for _, id := range slices.Sorted(maps.Keys(c.a.lists)) {
		if c.a.lists[id].owner == c.user().id {
			ids = append(ids, id)
		}
	}
	return ids
}

// taskCount is how many tasks a list has, and how many are done.
func (c *signalrCall) taskCount(list int) (n, done int) {
	for _, t := range c.a.tasks {
		if t.list == list {
			n++
			if t.done {
				done++
			}
		}
	}
	return n, done
}

// create is Pages/Lists/Create: OnPost makes the list and answers
// RedirectToPage("./Details", new { id }); a blank name renders the page
// again with its validation message.
func (c *signalrCall) create() {
	name, msg := "", ""
	if c.post() {
		name = c.core.form().Get("List.Name")
		if strings.TrimSpace(name) != "" {
			c.a.lastList++
			c.a.lists[c.a.lastList] = &signalrList{owner: c.user().id, name: name}
			c.a.Counts.Add("lists created", 1)
			c.core.redirect("/Lists/Details/" + strconv.Itoa(c.a.lastList))
			return
		}
		c.a.refuse("invalid", "a blank list name")
		msg = "The Name field is required."
	}
	c.createView(name, msg)
}

// find is the pages' query of a list of the user's: NotFound() for
// another user's or a missing one.
func (c *signalrCall) find(id int) *signalrList {
	l := c.a.lists[id]
	switch {
	case l == nil:
		c.fail(http.StatusNotFound, "404 missing")
	case l.owner != c.user().id:
		c.fail(http.StatusNotFound, "404 foreign")
	default:
		return l
	}
	return nil
}

// details is Pages/Lists/Details/{id:int}.
func (c *signalrCall) details(id int) {
	if l := c.find(id); l != nil {
		c.detailsView(id, l)
	}
}

// remove is Pages/Lists/Delete/{id:int}: its GET asks, its POST deletes
// the list and its tasks, sets the TempData status and goes back to the
// lists.
func (c *signalrCall) remove(id int) {
	l := c.find(id)
	if l == nil {
		return
	}
	if !c.post() {
		c.deleteView(id, l)
		return
	}
	delete(c.a.lists, id)
	for tid, t := range c.a.tasks {
		if t.list == id {
			delete(c.a.tasks, tid)
		}
	}
	c.a.Counts.Add("lists deleted", 1)
	c.core.saveTemp(map[string]string{"StatusMessage": fmt.Sprintf("List '%s' deleted.", l.name)})
	c.core.redirect("/Lists")
}
