package apptest

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
)

// The Thymeleaf templates of SpringBoard, as they render: th:action forms
// with the _csrf hidden input right after the <form> tag, th:field inputs,
// th:errors, and the _csrf meta tags of Spring Security's reference.

// form is <form th:action="@{action}" method="post" id="id">inner</form>.
func (c *springCall) form(action, id, inner string) string {
	return fmt.Sprintf(`<form id="%s" action="%s" method="post"><input type="hidden" name="_csrf" value="%s"/>%s</form>`,
		id, springEsc(action), c.token(), inner)
}

// page renders a view in the layout: the signed-in user's header with the
// logout form, the view, #root and the visit's script.
func (c *springCall) page(status int, title, main string) {
	nav := ""
	if u := c.user(); u != "" {
		nav = "\n<header>\n    <span>Signed in as <strong id=\"who\">" + springEsc(u) + "</strong></span>\n    " +
			c.form("/logout", "logout", "\n        <button type=\"submit\">Sign out</button>\n    ") + "\n</header>"
	}
	c.send(status, springHTML, fmt.Sprintf(`<!DOCTYPE html>
<html lang="en">
<head>
    <meta charset="UTF-8"/>
    <meta name="_csrf" content="%s"/>
    <meta name="_csrf_header" content="%s"/>
    <title>%s · Boards</title>
</head>
<body>%s
<main>
%s
</main>
<div id="root"></div>
<script>%s</script>
</body>
</html>
`, c.token(), springCSRFHeader, springEsc(title), nav, main, springVisitJS))
}

// loginPage is templates/login.html: ${param.error}, ${param.logout}, and
// the saved request ${session.SPRING_SECURITY_SAVED_REQUEST.redirectUrl}.
func (c *springCall) loginPage() {
	q := c.r.URL.Query()
	var b strings.Builder
	b.WriteString("<h1>Please sign in</h1>\n")
	if q.Has("error") {
		b.WriteString("<div class=\"alert\" id=\"error\">\n    Invalid username and password.\n</div>\n")
	}
	if q.Has("logout") {
		b.WriteString("<div class=\"alert\" id=\"logged-out\">\n    You have been logged out.\n</div>\n")
	}
	if c.sess != nil && c.sess.saved != "" {
		u := springEsc(c.sess.saved)
		fmt.Fprintf(&b, "<p id=\"continue\">Sign in to continue to <a href=\"%s\">%s</a>.</p>\n", u, u)
	}
	b.WriteString(c.form("/login", "login", `
    <div><label> User Name : <input type="text" name="username"/> </label></div>
    <div><label> Password: <input type="password" name="password"/> </label></div>
    <div><input type="submit" value="Sign In"/></div>
`))
	c.page(http.StatusOK, "Sign in", b.String())
}

// boardList is templates/boards.html: the user's boards and the new board
// form, again with th:errors when the name was blank.
func (c *springCall) boardList(name string, invalid bool) {
	var b strings.Builder
	b.WriteString("<h1>Your boards</h1>\n<ul id=\"boards\">\n")
	n := 0
	for _, id := range slices.Sorted(maps.Keys(c.a.boards)) {
		if bd := c.a.boards[id]; bd.owner == c.user() {
			fmt.Fprintf(&b, "    <li><a href=\"/boards/%d\">%s</a></li>\n", id, springEsc(bd.name))
			n++
		}
	}
	b.WriteString("</ul>\n")
	if n == 0 {
		b.WriteString("<p id=\"no-boards\">No boards yet.</p>\n")
	}
	field, errs := `<input type="text" id="name" name="name" value="`+springEsc(name)+`"/>`, ""
	if invalid {
		field = `<input type="text" id="name" name="name" value="` + springEsc(name) + `" class="error"/>`
		errs = "\n    <p class=\"error\" id=\"name-error\">must not be blank</p>"
	}
	b.WriteString(c.form("/boards", "new-board", "\n    <label for=\"name\">Name</label>\n    "+field+errs+
		"\n    <button type=\"submit\">Create board</button>\n"))
	c.page(http.StatusOK, "Your boards", b.String())
}

// boardPage is templates/board.html: the cards, the delete form, and the
// board's STOMP client (in the visit's script).
func (c *springCall) boardPage(id int, bd *springBoardRow) {
	var b strings.Builder
	fmt.Fprintf(&b, "<h1 id=\"board-name\" data-board-id=\"%d\">%s</h1>\n<p><a href=\"/boards\">All boards</a></p>\n<ul id=\"cards\">\n", id, springEsc(bd.name))
	for _, cid := range slices.Sorted(maps.Keys(c.a.cards)) {
		if k := c.a.cards[cid]; k.board == id {
			fmt.Fprintf(&b, "    <li id=\"card-%d\" data-column=\"%s\">%s</li>\n", cid, k.column, springEsc(k.title))
		}
	}
	b.WriteString("</ul>\n")
	b.WriteString(c.form(fmt.Sprintf("/boards/%d/delete", id), "delete-board", "\n    <button type=\"submit\">Delete board</button>\n"))
	c.page(http.StatusOK, bd.name, b.String())
}

// springVisitJS moves a browser's visit on, one step a page, kept in
// sessionStorage: the login page signs in as the u of the saved request it
// shows; the board list creates a board; the board page talks STOMP over
// /ws as @stomp/stompjs does (CONNECT with the _csrf meta token in
// X-CSRF-TOKEN, SUBSCRIBE to /topic/boards.ID, three SENDs of cards, each
// with a receipt, waited for with its broadcast, a move of the first card,
// DISCONNECT with a receipt, close) and then submits its delete form; the
// board list again signs out; the login page after the logout says
// "done". Anything unexpected shows as "error: ...".
const springVisitJS = `(() => {
  const S = sessionStorage, $ = s => document.querySelector(s), root = $("#root");
  const fail = m => { root.textContent = "error: " + m; };
  const sleep = ms => new Promise(ok => setTimeout(ok, ms)), pause = () => sleep(100 + Math.random() * 100);
  const submit = (form, fields) => {
    if (!form) throw new Error("no form on " + location.pathname);
    for (const [k, v] of Object.entries(fields || {})) form.elements[k].value = v;
    form.submit();
  };
  const step = (want, next, act) => {
    const at = S.getItem("board.step");
    if (at !== want) return fail("page " + location.pathname + location.search + " at step " + at);
    S.setItem("board.step", next);
    pause().then(act).catch(e => fail(e && e.message || String(e)));
  };
  const unescape = v => v.replace(/\\(.)/g, (m, ch) => ({ r: "\r", n: "\n", c: ":", "\\": "\\" })[ch] || m);
  const parse = data => String(data).split("\0").map(s => s.replace(/^(\r?\n)+/, "")).filter(s => s).map(s => {
    const at = s.indexOf("\n\n"), lines = s.slice(0, at < 0 ? s.length : at).split("\n"), command = lines.shift(), headers = {};
    for (const l of lines) {
      const i = l.indexOf(":"), k = l.slice(0, i);
      if (!(k in headers)) headers[k] = command === "CONNECTED" ? l.slice(i + 1) : unescape(l.slice(i + 1));
    }
    return { command, headers, body: at < 0 ? "" : s.slice(at + 2) };
  });
  const show = card => {
    let li = $("#card-" + card.id);
    if (!li) { li = document.createElement("li"); li.id = "card-" + card.id; $("#cards").appendChild(li); }
    li.dataset.column = card.column;
    li.textContent = card.title;
  };
  const cards = async id => {
    const token = $('meta[name="_csrf"]').content, header = $('meta[name="_csrf_header"]').content;
    const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws", ["v12.stomp", "v11.stomp", "v10.stomp"]);
    const inbox = [], waiters = [];
    let trouble = null, leaving = false, closed = false;
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
    const take = (what, pred) => until(what, () => {
      const i = inbox.findIndex(f => { try { return pred(f); } catch (e) { return false; } });
      return i >= 0 && inbox.splice(i, 1)[0];
    });
    const send = (command, headers, body) => {
      if (body !== undefined) headers["content-length"] = new TextEncoder().encode(body).length;
      ws.send(command + "\n" + Object.entries(headers).map(([k, v]) => k + ":" + v + "\n").join("") + "\n" + (body || "") + "\0");
    };
    await new Promise((ok, no) => { ws.onopen = ok; ws.onerror = () => no(new Error("the WebSocket did not open")); });
    ws.onerror = null;
    ws.onmessage = ev => {
      for (const f of parse(ev.data)) {
        if (f.command === "ERROR") trouble = trouble || new Error("STOMP ERROR: " + f.headers.message);
        inbox.push(f);
      }
      poke();
    };
    ws.onclose = ev => { closed = true; if (!leaving) trouble = trouble || new Error("the WebSocket closed: " + ev.code); poke(); };
    if (ws.protocol !== "v12.stomp") throw new Error("sub-protocol " + JSON.stringify(ws.protocol));
    send("CONNECT", { "accept-version": "1.2,1.1,1.0", "heart-beat": "10000,10000", [header]: token });
    const hello = await take("CONNECTED", f => f.command === "CONNECTED");
    if (hello.headers.version !== "1.2" || hello.headers["user-name"] !== S.getItem("board.user")) throw new Error("CONNECTED " + JSON.stringify(hello.headers));
    send("SUBSCRIBE", { id: "sub-0", destination: "/topic/boards." + id });
    let n = 0;
    const receipt = r => take("RECEIPT " + r, f => f.command === "RECEIPT" && f.headers["receipt-id"] === r);
    const added = [];
    for (const title of ["Write the spec", "Review the spec", "Ship it"]) {
      await pause();
      const r = "receipt-" + ++n;
      send("SEND", { destination: "/app/boards/" + id + "/cards", "content-type": "application/json", receipt: r }, JSON.stringify({ title }));
      await receipt(r);
      const m = await take("the broadcast of " + title, f => f.command === "MESSAGE" && f.headers.subscription === "sub-0" && JSON.parse(f.body).title === title);
      const card = JSON.parse(m.body);
      show(card);
      added.push(card);
    }
    await pause();
    const first = added[0], r = "receipt-" + ++n;
    send("SEND", { destination: "/app/boards/" + id + "/cards/" + first.id + "/move", "content-type": "application/json", receipt: r }, JSON.stringify({ column: "doing" }));
    await receipt(r);
    const m = await take("the broadcast of the move", f => f.command === "MESSAGE" && (c => c.event === "moved" && c.id === first.id && c.column === "doing")(JSON.parse(f.body)));
    show(JSON.parse(m.body));
    await pause();
    const bye = "receipt-" + ++n;
    send("DISCONNECT", { receipt: bye });
    await receipt(bye);
    leaving = true;
    ws.close();
    await until("the close", () => closed);
  };
  const p = location.pathname, q = new URLSearchParams(location.search);
  if (p === "/login") {
    if (q.has("error")) return fail("login refused");
    if (q.has("logout")) return step("logout", "done", () => { root.textContent = "done"; });
    const a = $("#continue a"), u = a && new URL(a.href).searchParams.get("u");
    if (!u) return fail("no saved request to sign in for");
    S.setItem("board.user", u);
    S.setItem("board.step", "login");
    return step("login", "create", () => submit($("#login"), { username: u, password: "pw-" + u }));
  }
  if (p === "/boards") {
    if ($("#name-error")) return fail("the form again: " + $("#name-error").textContent);
    if (S.getItem("board.step") === "create") return step("create", "board", () => submit($("#new-board"), { name: "Sprint of " + S.getItem("board.user") }));
    return step("deleted", "logout", () => {
      const id = S.getItem("board.id");
      if ($('#boards a[href="/boards/' + id + '"]')) throw new Error("board " + id + " is still listed");
      submit($("#logout"));
    });
  }
  const m = /^\/boards\/(\d+)$/.exec(p);
  if (m) return step("board", "deleted", async () => {
    S.setItem("board.id", m[1]);
    await cards(m[1]);
    await pause();
    submit($("#delete-board"));
  });
  fail("unexpected page " + p);
})();`
