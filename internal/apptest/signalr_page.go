package apptest

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// The Razor views of the SignalR app, as they render: the template's
// _Layout with _LoginPartial, Identity UI's Login and Logout pages, the
// Lists pages with the form tag helper's antiforgery input at the end of
// each form, and the visit's script.

// form is <form id method="post" asp-page=…>: the inner markup and the
// request token's hidden input after it.
func (c *signalrCall) form(id, action, inner string) string {
	return `<form id="` + id + `" method="post" action="` + aspnetHTML(action) + `">` + inner + c.core.hidden() + `</form>`
}

// render renders a page in the layout, with _LoginPartial's logout form
// (back to the login page) or its login link.
func (c *signalrCall) render(status int, title, main string) {
	nav := `<ul class="navbar-nav">
                    <li class="nav-item"><a class="nav-link text-dark" id="register" href="/Identity/Account/Register">Register</a></li>
                    <li class="nav-item"><a class="nav-link text-dark" id="login" href="/Identity/Account/Login">Login</a></li>
                </ul>`
	if u := c.user(); u != nil {
		nav = `<ul class="navbar-nav">
                    <li class="nav-item"><a id="manage" class="nav-link text-dark" href="/Identity/Account/Manage" title="Manage">Hello ` + aspnetHTML(u.email) + `!</a></li>
                    <li class="nav-item">` + c.form("logoutForm", aspnetLogoutPath+"?returnUrl="+aspnetURLEncode(signalrLogoutBack),
			`<button id="logout" type="submit" class="nav-link btn btn-link text-dark border-0">Logout</button>`) + `</li>
                </ul>`
	}
	c.core.send(status, aspnetHTMLType, `<!DOCTYPE html>
<html lang="en">
<head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1.0" />
    <title>`+aspnetHTML(title)+` - Tasks</title>
</head>
<body>
    <header>
        <nav class="navbar navbar-expand-sm navbar-light bg-white border-bottom box-shadow mb-3">
            <div class="container">
                <a class="navbar-brand" href="/">Tasks</a>
                <ul class="navbar-nav flex-grow-1">
                    <li class="nav-item"><a class="nav-link text-dark" href="/">Home</a></li>
                    <li class="nav-item"><a class="nav-link text-dark" href="/Lists">Lists</a></li>
                </ul>
                `+nav+`
            </div>
        </nav>
    </header>
    <div class="container">
        <main role="main" class="pb-3">
`+main+`
        </main>
    </div>
    <div id="root"></div>
    <footer class="border-top footer text-muted"><div class="container">&copy; 2024 - Tasks</div></footer>
    <script>`+signalrVisitJS+`</script>
</body>
</html>
`)
}

func (c *signalrCall) home() {
	c.render(http.StatusOK, "Home page", `<div class="text-center">
    <h1 class="display-4">Welcome</h1>
    <p>Keep your tasks in <a href="/Lists">lists</a>, live on every screen.</p>
</div>`)
}

// loginPage is Identity UI's Account/Login.cshtml: the form posts to the
// page's own URL.
func (c *signalrCall) loginPage(back, email string, errs []string) {
	c.render(http.StatusOK, "Log in", `<h1>Log in</h1>
<div class="row">
    <div class="col-md-4">
        <section>
            <form id="account" method="post">
                <h2>Use a local account to log in.</h2>
                <hr />
                `+aspnetSummary(errs...)+`
                <div class="form-floating mb-3">
                    <input class="form-control" autocomplete="username" aria-required="true" placeholder="name@example.com" type="email" data-val="true" data-val-email="The Email field is not a valid e-mail address." data-val-required="The Email field is required." id="Input_Email" name="Input.Email" value="`+aspnetHTML(email)+`" />
                    <label class="form-label" for="Input_Email">Email</label>
                    <span class="text-danger field-validation-valid" data-valmsg-for="Input.Email" data-valmsg-replace="true"></span>
                </div>
                <div class="form-floating mb-3">
                    <input class="form-control" autocomplete="current-password" aria-required="true" placeholder="password" type="password" data-val="true" data-val-required="The Password field is required." id="Input_Password" name="Input.Password" />
                    <label class="form-label" for="Input_Password">Password</label>
                    <span class="text-danger field-validation-valid" data-valmsg-for="Input.Password" data-valmsg-replace="true"></span>
                </div>
                <div class="checkbox mb-3">
                    <label class="form-label" for="Input_RememberMe">
                        <input class="form-check-input" type="checkbox" data-val="true" data-val-required="The Remember me? field is required." id="Input_RememberMe" name="Input.RememberMe" value="true" />
                        Remember me?
                    </label>
                </div>
                <div>
                    <button id="login-submit" type="submit" class="w-100 btn btn-lg btn-primary">Log in</button>
                </div>
                <div>
                    <p><a id="forgot-password" href="/Identity/Account/ForgotPassword">Forgot your password?</a></p>
                    <p><a href="/Identity/Account/Register?returnUrl=`+aspnetURLEncode(back)+`">Register as a new user</a></p>
                    <p><a id="resend-confirmation" href="/Identity/Account/ResendEmailConfirmation">Resend email confirmation</a></p>
                </div>
            `+c.core.hidden()+`<input name="Input.RememberMe" type="hidden" value="false" /></form>
        </section>
    </div>
</div>`)
}

// logoutPage is Identity UI's Account/Logout.cshtml on a GET.
func (c *signalrCall) logoutPage() {
	c.render(http.StatusOK, "Log out", `<header><h1>Log out</h1></header>`+
		c.form("logout-page", aspnetLogoutPath+"?returnUrl="+aspnetURLEncode(signalrLogoutBack),
			`<button type="submit" class="nav-link btn btn-link text-dark">Click here to Logout</button>`))
}

// nameField is the List.Name input with its validation message.
func signalrNameField(name, msg string) string {
	cls, span := "form-control", `<span class="text-danger field-validation-valid" data-valmsg-for="List.Name" data-valmsg-replace="true"></span>`
	if msg != "" {
		cls = "form-control input-validation-error"
		span = `<span class="text-danger field-validation-error" data-valmsg-for="List.Name" data-valmsg-replace="true">` + aspnetHTML(msg) + `</span>`
	}
	return `
    <div class="form-group">
        <label class="control-label" for="List_Name">Name</label>
        <input class="` + cls + `" type="text" data-val="true" data-val-required="The Name field is required." id="List_Name" name="List.Name" value="` + aspnetHTML(name) + `" />
        ` + span + `
    </div>
    <button type="submit" class="btn btn-primary">Create</button>
`
}

// listsView is Pages/Lists/Index.cshtml.
func (c *signalrCall) listsView(status string) {
	var b strings.Builder
	b.WriteString("<h1>Your lists</h1>\n")
	if status != "" {
		b.WriteString(`<div id="status-message" class="alert alert-success" role="alert">` + aspnetHTML(status) + "</div>\n")
	}
	ids := c.mine()
	if len(ids) == 0 {
		b.WriteString("<p id=\"no-lists\">You have no lists yet.</p>\n")
	} else {
		b.WriteString("<ul id=\"lists\" class=\"list-group\">\n")
		for _, id := range ids {
			n, done := c.taskCount(id)
			fmt.Fprintf(&b, "    <li class=\"list-group-item\" id=\"list-%d\"><a href=\"/Lists/Details/%d\">%s</a> <span class=\"badge bg-secondary\">%d/%d</span></li>\n",
				id, id, aspnetHTML(c.a.lists[id].name), done, n)
		}
		b.WriteString("</ul>\n")
	}
	b.WriteString("<h2>New list</h2>\n" + c.form("create-list", "/Lists/Create", signalrNameField("", "")))
	c.render(http.StatusOK, "Your lists", b.String())
}

// createView is Pages/Lists/Create.cshtml.
func (c *signalrCall) createView(name, msg string) {
	c.render(http.StatusOK, "New list", "<h1>New list</h1>\n"+c.form("create-list", "/Lists/Create", signalrNameField(name, msg))+
		"\n<div><a href=\"/Lists\">Back to your lists</a></div>")
}

// detailsView is Pages/Lists/Details.cshtml: the list's id and the hub's
// URL for the page's script, the tasks, the delete form.
func (c *signalrCall) detailsView(id int, l *signalrList) {
	var b strings.Builder
	fmt.Fprintf(&b, "<h1 id=\"list-name\" data-list-id=\"%d\" data-hub-url=\"%s\">%s</h1>\n<p><a href=\"/Lists\">Back to your lists</a></p>\n<ul id=\"tasks\" class=\"list-group\">\n",
		id, signalrHub, aspnetHTML(l.name))
	for _, tid := range c.taskIDs(id) {
		t := c.a.tasks[tid]
		fmt.Fprintf(&b, "    <li class=\"list-group-item\" id=\"task-%d\" data-done=\"%t\">%s</li>\n", tid, t.done, aspnetHTML(t.title))
	}
	b.WriteString("</ul>\n")
	fmt.Fprintf(&b, "%s", c.form("delete-list", fmt.Sprintf("/Lists/Delete/%d", id), `<button type="submit" class="btn btn-danger">Delete list</button>`))
	c.render(http.StatusOK, l.name, b.String())
}

// deleteView is Pages/Lists/Delete.cshtml on a GET: are you sure?
func (c *signalrCall) deleteView(id int, l *signalrList) {
	c.render(http.StatusOK, "Delete", "<h1>Delete</h1>\n<h3>Are you sure you want to delete <span id=\"list-name\">"+aspnetHTML(l.name)+"</span>?</h3>\n"+
		c.form("delete-list", fmt.Sprintf("/Lists/Delete/%d", id), `<button type="submit" class="btn btn-danger">Delete</button> | <a href="/Lists">Back to your lists</a>`))
}

// taskIDs are a list's tasks, in order.
func (c *signalrCall) taskIDs(list int) []int {
	var ids []int
	for tid, t := range c.a.tasks {
		if t.list == list {
			ids = append(ids, tid)
		}
	}
	slices.Sort(ids)
	return ids
}

// signalrVisitJS moves a browser's visit on, one step a page, kept in
// sessionStorage: the login page signs in as the u of its ReturnUrl; the
// lists page creates a list; the list's page talks to the hub as
// @microsoft/signalr does, without it (fetch POST negotiate?negotiateVersion=1,
// a WebSocket to ?id=connectionToken, the handshake, JoinList, three
// AddTask, each awaited by its completion with the new task as its result
// and the TaskAdded broadcast, CompleteTask of the first, awaited with its
// TaskCompleted, then {"type":7} and the WebSocket closed), with a ping
// after 15 s of sending nothing, and then submits its delete form; the
// lists page then says the list was deleted, and signs out; the login
// page after the logout says "done". Invocations are written as the
// client's JSON.stringify writes them: arguments, invocationId (from "0"),
// target, type. Steps are 20 to 80 ms apart. Anything unexpected shows as
// "error: ...".
const signalrVisitJS = `(() => {
  const S = sessionStorage, $ = s => document.querySelector(s), root = $("#root");
  const fail = m => { root.textContent = "error: " + m; };
  const sleep = ms => new Promise(ok => setTimeout(ok, ms)), pause = () => sleep(20 + Math.random() * 60);
  const submit = (form, fields) => {
    if (!form) throw new Error("no form on " + location.pathname);
    for (const [k, v] of Object.entries(fields || {})) form.elements[k].value = v;
    form.submit();
  };
  const step = (want, next, act) => {
    const at = S.getItem("tasks.step");
    if (at !== want) return fail("page " + location.pathname + location.search + " at step " + at);
    S.setItem("tasks.step", next);
    pause().then(act).catch(e => fail(e && e.message || String(e)));
  };
  const RS = "\x1e";
  const live = async (listId, hubUrl) => {
    const neg = await fetch(hubUrl + "/negotiate?negotiateVersion=1", { method: "POST", body: "", headers: {
      "Content-Type": "text/plain;charset=UTF-8", "X-Requested-With": "XMLHttpRequest",
      "X-SignalR-User-Agent": "Microsoft SignalR/8.0 (8.0.7; Unknown OS; Browser; Unknown Runtime Version)" } });
    if (neg.status !== 200) throw new Error("negotiate: " + neg.status);
    const n = await neg.json();
    if (n.error || n.negotiateVersion !== 1 || !n.connectionToken || !n.availableTransports.some(t => t.transport === "WebSockets"))
      throw new Error("negotiate: " + JSON.stringify(n));
    const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + hubUrl + "?id=" + encodeURIComponent(n.connectionToken));
    const calls = [], done = new Map(), waiters = [];
    let trouble = null, leaving = false, closed = false, shook = false, pending = "", ping = null;
    const poke = () => waiters.splice(0).forEach(w => w());
    const until = async (what, ok) => {
      const end = Date.now() + 10000;
      for (;;) {
        const got = ok();
        if (got) return got;
        if (trouble) throw trouble;
        if (Date.now() > end) throw new Error("no " + what);
        await new Promise(w => { waiters.push(w); setTimeout(w, 200); });
      }
    };
    const keepAlive = () => {
      clearTimeout(ping);
      ping = setTimeout(() => { if (ws.readyState === 1 && !leaving) { ws.send('{"type":6}' + RS); keepAlive(); } }, 15000);
    };
    const send = text => { ws.send(text + RS); keepAlive(); };
    await new Promise((ok, no) => { ws.onopen = ok; ws.onerror = () => no(new Error("the WebSocket did not open")); });
    ws.onerror = null;
    ws.onmessage = ev => {
      pending += ev.data;
      const records = pending.split(RS);
      pending = records.pop();
      for (const r of records) {
        const m = JSON.parse(r);
        if (!shook) {
          shook = true;
          if (m.error) trouble = trouble || new Error("handshake: " + m.error);
          continue;
        }
        if (m.type === 1) calls.push(m);
        else if (m.type === 3) done.set(m.invocationId, m);
        else if (m.type === 7 && !leaving) trouble = trouble || new Error("closed by the server: " + (m.error || "no error"));
      }
      poke();
    };
    ws.onclose = ev => { closed = true; clearTimeout(ping); if (!leaving) trouble = trouble || new Error("the WebSocket closed: " + ev.code); poke(); };
    send(JSON.stringify({ protocol: "json", version: 1 }));
    await until("handshake", () => shook);
    let next = 0;
    const invoke = async (target, ...args) => {
      const id = String(next++);
      send(JSON.stringify({ arguments: args, invocationId: id, target, type: 1 }));
      const c = await until("the completion of " + target, () => done.get(id));
      done.delete(id);
      if (c.error) throw new Error(c.error);
      return c.result;
    };
    const take = (what, pred) => until(what, () => {
      const i = calls.findIndex(m => { try { return pred(m); } catch (e) { return false; } });
      return i >= 0 && calls.splice(i, 1)[0];
    });
    const show = t => {
      let li = $("#task-" + t.id);
      if (!li) { li = document.createElement("li"); li.id = "task-" + t.id; li.className = "list-group-item"; $("#tasks").appendChild(li); }
      if (t.title !== undefined) li.textContent = t.title;
      li.dataset.done = String(!!t.done);
    };
    if (await invoke("JoinList", listId) !== null) throw new Error("JoinList answered something");
    const added = [];
    for (const title of ["Buy milk", "Walk the dog", "Call mum"]) {
      await pause();
      const t = await invoke("AddTask", listId, title);
      if (!t || t.title !== title || t.listId !== listId || t.done !== false || !(t.id > 0)) throw new Error("AddTask answered " + JSON.stringify(t));
      await take("TaskAdded of " + title, m => m.target === "TaskAdded" && m.arguments[0].id === t.id);
      show(t);
      added.push(t);
    }
    await pause();
    const first = added[0];
    if (await invoke("CompleteTask", first.id) !== true) throw new Error("CompleteTask did not answer true");
    const c = await take("TaskCompleted", m => m.target === "TaskCompleted" && m.arguments[0].id === first.id && m.arguments[0].listId === listId);
    show({ id: c.arguments[0].id, done: true });
    await pause();
    leaving = true;
    clearTimeout(ping);
    ws.send('{"type":7}' + RS);
    ws.close();
    await until("the close", () => closed);
  };
  const p = location.pathname.toLowerCase().replace(/\/$/, ""), q = new URLSearchParams(location.search);
  if (p === "/identity/account/login") {
    const refused = [...document.querySelectorAll(".validation-summary-errors li")].map(li => li.textContent);
    if (refused.length) return fail("login refused: " + refused.join("; "));
    if (S.getItem("tasks.step") === "loggedout") return step("loggedout", "done", () => {
      if ($("#logoutForm")) throw new Error("still signed in");
      S.removeItem("tasks.step");
      S.removeItem("tasks.user");
      root.textContent = "done";
    });
    const back = q.get("ReturnUrl") || "", u = new URLSearchParams(back.split("?")[1] || "").get("u");
    if (!u) return fail("no user in the ReturnUrl " + JSON.stringify(back));
    S.setItem("tasks.user", u);
    S.setItem("tasks.step", "login");
    return step("login", "create", () => submit($("form#account"), { "Input.Email": u + "@example.test", "Input.Password": "pw-" + u }));
  }
  if (p === "/lists") {
    if (S.getItem("tasks.step") === "create") return step("create", "details", () => submit($("#create-list"), { "List.Name": "Errands of " + S.getItem("tasks.user") }));
    return step("deleted", "loggedout", () => {
      const id = S.getItem("tasks.list"), said = ($("#status-message") || {}).textContent;
      if (said !== "List 'Errands of " + S.getItem("tasks.user") + "' deleted.") throw new Error("status " + JSON.stringify(said));
      if ($('a[href="/Lists/Details/' + id + '"]')) throw new Error("list " + id + " is still listed");
      submit($("#logoutForm"));
    });
  }
  const d = /^\/lists\/details\/(\d+)$/.exec(p);
  if (d) return step("details", "deleted", async () => {
    const h = $("#list-name");
    if (!h || h.dataset.listId !== d[1]) throw new Error("no list id on the page");
    S.setItem("tasks.list", d[1]);
    await live(Number(h.dataset.listId), h.dataset.hubUrl);
    if ($("#tasks").children.length !== 3 || $("#tasks").querySelectorAll('[data-done="true"]').length !== 1) throw new Error("tasks shown: " + $("#tasks").innerHTML);
    await pause();
    submit($("#delete-list"));
  });
  fail("unexpected page " + p);
})();`
