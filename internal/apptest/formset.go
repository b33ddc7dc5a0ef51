package apptest

import (
	"cmp"
	"crypto/hmac"
	"crypto/rand"
	"fmt"
	"html"
	"maps"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

// Formset is a backend that answers as the Django admin does for a project
// tracker: projects whose tasks are edited in an inline formset (a
// TabularInline with extra=3: a management form, hidden id and project
// fields per row, DELETE on existing tasks' rows, the empty form's
// __prefix__ row), and a task changelist with checkboxes and the
// delete_selected action, confirmed on an intermediate page. Cookies are
// Django 5's: csrftoken holds a secret that every form carries masked
// afresh in csrfmiddlewaretoken, sessionid is HttpOnly, a login rotates
// both; messages are kept in the session (SessionStorage). Projects and
// tasks have small auto-increment ids shared by all users, whose ids so
// interleave; a user sees only their own. Passwords are "pw-" + the user
// name. Every page has an element of id "root" and a script that makes a
// browser do FormsetClient's visit from /admin/?u=NAME.
//
// A formset row naming a task not of its project (another user's, or
// deleted) makes the formset invalid: the form again, 200, "Select a valid
// choice" on the row, nothing saved. An action selecting a task not the
// user's is refused whole: the changelist again, 200, with the warning
// "Items must be selected ...", nothing deleted (Django redirects there
// when none of the selected is the user's, and acts on the rest if some).
//
// Counts: "sessions", "login refused", "login redirects", "403" with "403
// csrf", "projects created", "project not found" (another user's: sent to
// the index), "form invalid" (the project's name), "formset invalid",
// "tasks created", "tasks changed", "tasks deleted" (by the formset),
// "tasks bulk deleted", "bulk refused", "foreign task touched" (another
// user's task changed or deleted, which the checks make impossible),
// "logouts", "404" with "404 page", "404 favicon" (not in "404"), "405".
type Formset struct {
	URL    string
	Counts Counts

	mu                    sync.Mutex
	sessions              map[string]*formsetSession // session key → session
	users                 map[string]bool            // who logged in
	projects              map[int]*formsetProject
	tasks                 map[int]*formsetTask
	lastProject, lastTask int // the last ids given
}

type formsetSession struct {
	user string
	msgs []string // messages not yet shown, as <li>
}

type formsetProject struct{ owner, name string }

type formsetTask struct {
	project int
	title   string
}

// NewFormset starts a Formset on loopback until the test ends.
func NewFormset(tb testing.TB) *Formset {
	f := &Formset{sessions: map[string]*formsetSession{}, users: map[string]bool{},
		projects: map[int]*formsetProject{}, tasks: map[int]*formsetTask{}}
	srv := httptest.NewServer(f)
	tb.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}

// Users returns the names of the users who logged in, sorted.
func (f *Formset) Users() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Sorted(maps.Keys(f.users))
}

const (
	formsetChars    = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789" // CSRF_ALLOWED_CHARS
	formsetProjects = "/admin/tracker/project/"
	formsetAdd      = formsetProjects + "add/"
	formsetTasks    = "/admin/tracker/task/"
	formsetMaxNum   = 1000 // MAX_NUM_FORMS; a formset takes at most twice that
	formsetNoneMsg  = "Items must be selected in order to perform actions on them. No items have been changed."
	formsetChoice   = "Select a valid choice. That choice is not one of the available choices."
	formsetCrumbs   = ` › <a href="/admin/tracker/">Tracker</a> › `
)

// formsetRandom is get_random_string: n characters of chars, from bytes
// below the last whole multiple of len(chars).
func formsetRandom(n int, chars string) string {
	out, b := make([]byte, 0, n), []byte{0}
	for len(out) < n {
		if _, _ = rand.Read(b); int(b[0]) < 256/len(chars)*len(chars) {
			out = append(out, chars[int(b[0])%len(chars)])
		}
	}
	return string(out)
}

// formsetCipher adds (sign 1) or takes away (-1) mask from s, character by
// character in CSRF_ALLOWED_CHARS: how Django masks a CSRF secret.
func formsetCipher(s, mask string, sign int) string {
	out, n := make([]byte, len(s)), len(formsetChars)
	for i := range out {
		out[i] = formsetChars[(strings.IndexByte(formsetChars, s[i])+sign*strings.IndexByte(formsetChars, mask[i])+n)%n]
	}
	return string(out)
}

// formsetSecret is the secret a well-formed cookie or token holds, or "".
func formsetSecret(t string) string {
	if len(t) != 32 && len(t) != 64 || strings.Trim(t, formsetChars) != "" {
		return ""
	}
	if len(t) == 64 {
		return formsetCipher(t[32:], t[:32], -1)
	}
	return t
}

// formsetEsc is Django's escape.
func formsetEsc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&#x27;").Replace(s)
}

// formsetCall is one request: what its cookies said, what its answer sets.
type formsetCall struct {
	w             http.ResponseWriter
	r             *http.Request
	cookie        string // the csrftoken cookie's secret, if well formed
	secret        string // the secret tokens are made from
	renew         bool   // send csrftoken
	sid, user     string // the session the sessionid cookie names
	newSID        string // a login's session key
	flushed, gone bool   // a logout; a sessionid naming no session
}

// token is {% csrf_token %}: the secret masked afresh, the cookie sent again.
func (c *formsetCall) token() string {
	if c.secret == "" {
		c.secret = formsetRandom(32, formsetChars)
	}
	c.renew = true
	mask := formsetRandom(32, formsetChars)
	return mask + formsetCipher(c.secret, mask, 1)
}

// csrf is CsrfViewMiddleware's reason to refuse an unsafe request, or "".
func (c *formsetCall) csrf() string {
	r := c.r
	if o := r.Header.Get("Origin"); o != "" && o != "http://"+r.Host {
		return "Origin checking failed - " + o + " does not match any trusted origins."
	}
	if c.cookie == "" {
		return "CSRF cookie not set."
	}
	sent := r.PostFormValue("csrfmiddlewaretoken")
	switch s := formsetSecret(sent); {
	case sent == "":
		return "CSRF token missing."
	case s == "":
		return "CSRF token has incorrect length or characters."
	case !hmac.Equal([]byte(s), []byte(c.cookie)):
		return "CSRF token incorrect."
	}
	return ""
}

func (f *Formset) send(c *formsetCall, status int, body string) {
	h := c.w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Vary", "Cookie")
	expires := func(s int) string {
		return time.Now().Add(time.Duration(s) * time.Second).UTC().Format(http.TimeFormat)
	}
	if c.renew {
		h.Add("Set-Cookie", fmt.Sprintf("csrftoken=%s; expires=%s; Max-Age=31449600; Path=/; SameSite=Lax", c.secret, expires(31449600)))
	}
	if c.newSID != "" {
		h.Add("Set-Cookie", fmt.Sprintf("sessionid=%s; expires=%s; HttpOnly; Max-Age=1209600; Path=/; SameSite=Lax", c.newSID, expires(1209600)))
	} else if c.flushed || c.gone {
		h.Add("Set-Cookie", `sessionid=""; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/; SameSite=Lax`)
	}
	c.w.WriteHeader(status)
	_, _ = c.w.Write([]byte(body))
}

func (f *Formset) redirect(c *formsetCall, to string) {
	c.w.Header().Set("Location", to)
	f.send(c, http.StatusFound, "")
}

// fail answers an error page whose root tells a browser's visit.
func (f *Formset) fail(c *formsetCall, status int, what, content string) {
	if what != "favicon" {
		f.Counts.Add(strconv.Itoa(status), 1)
	}
	f.Counts.Add(fmt.Sprint(status, " ", what), 1)
	f.send(c, status, fmt.Sprintf("<!DOCTYPE html>\n<html lang=\"en\"><head><title>%d</title></head>\n<body>%s\n<div id=\"root\">error: %d %s %s</div></body></html>\n",
		status, content, status, what, formsetEsc(c.r.URL.Path)))
}

// message adds a message (HTML) to the session, for the next page shown.
func (f *Formset) message(c *formsetCall, level, msg string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s := f.sessions[c.sid]; s != nil {
		s.msgs = append(s.msgs, fmt.Sprintf("<li class=%q>%s</li>\n", level, msg))
	}
}

func (f *Formset) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c, p, id := &formsetCall{w: w, r: r}, r.URL.Path, 0
	if ck, err := r.Cookie("csrftoken"); err == nil {
		c.cookie = formsetSecret(ck.Value)
		c.secret = c.cookie
	}
	if ck, err := r.Cookie("sessionid"); err == nil {
		f.mu.Lock()
		if s := f.sessions[ck.Value]; s != nil {
			c.sid, c.user = ck.Value, s.user
		}
		f.mu.Unlock()
		c.gone = c.sid == ""
	}
	if !strings.HasPrefix(p, "/admin/") {
		f.fail(c, http.StatusNotFound, map[bool]string{true: "favicon", false: "page"}[p == "/favicon.ico"], "<h1>Not Found</h1>")
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		if reason := c.csrf(); reason != "" {
			f.fail(c, http.StatusForbidden, "csrf", "<h1>Forbidden <span>(403)</span></h1><p>CSRF verification failed. Request aborted.</p><pre>"+formsetEsc(reason)+"</pre>")
			return
		}
	}
	c.w.Header().Set("Cache-Control", "max-age=0, no-cache, no-store, must-revalidate, private") // never_cache
	if _, err := fmt.Sscanf(p, formsetProjects+"%d/change/", &id); err != nil || id <= 0 || p != fmt.Sprintf("%s%d/change/", formsetProjects, id) {
		id = 0
	}
	switch {
	case p == "/admin/login/":
		f.login(c)
	case c.user == "" && p == "/admin/logout/": // admin_view sends it to the index
		f.redirect(c, "/admin/")
	case c.user == "":
		f.Counts.Add("login redirects", 1)
		f.redirect(c, "/admin/login/?next="+strings.ReplaceAll(url.QueryEscape(r.URL.RequestURI()), "%2F", "/"))
	case p == "/admin/" || p == "/admin/tracker/":
		f.send(c, http.StatusOK, f.page(c, "Site administration", "dashboard", "", `<div id="content" class="colMS"><h1>Site administration</h1><div id="content-main">
`+formsetApps+"</div></div>\n", ""))
	case p == "/admin/logout/":
		f.logout(c)
	case p == formsetProjects:
		f.projectList(c)
	case p == formsetTasks:
		f.taskList(c)
	case p == formsetAdd || id > 0:
		f.change(c, id)
	default:
		f.fail(c, http.StatusNotFound, "page", "<h1>Not Found</h1>")
	}
}

// formsetApps is the app list of the index, and of the sidebar.
const formsetApps = `<div class="app-tracker module"><table><caption><a href="/admin/tracker/" class="section" title="Models in the Tracker application">Tracker</a></caption>
<tr class="model-project"><th scope="row"><a href="/admin/tracker/project/">Projects</a></th><td><a href="/admin/tracker/project/add/" class="addlink">Add</a></td><td><a href="/admin/tracker/project/" class="changelink">Change</a></td></tr>
<tr class="model-task"><th scope="row"><a href="/admin/tracker/task/">Tasks</a></th><td></td><td><a href="/admin/tracker/task/" class="changelink">Change</a></td></tr>
</table></div>
`

// page renders admin/base.html around content: the user tools, the
// sidebar, and the session's messages, which it shows and so forgets.
func (f *Formset) page(c *formsetCall, title, bodyClass, crumbs, content, root string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `<!DOCTYPE html>
<html lang="en-us" dir="ltr"><head><title>%s | Django site admin</title><meta name="robots" content="NONE,NOARCHIVE"></head>
<body class="%s" data-admin-utc-offset="0"><div id="container"><header id="header"><div id="branding"><div id="site-name"><a href="/admin/">Django administration</a></div></div>
`, formsetEsc(title), bodyClass)
	if c.user != "" {
		fmt.Fprintf(&b, `<div id="user-tools">Welcome, <strong>%s</strong>. <form id="logout-form" method="post" action="/admin/logout/"><input type="hidden" name="csrfmiddlewaretoken" value="%s"><button type="submit">Log out</button></form></div>
`, formsetEsc(c.user), c.token())
	}
	b.WriteString("</header>\n")
	if crumbs != "" {
		b.WriteString(`<nav aria-label="Breadcrumbs"><div class="breadcrumbs"><a href="/admin/">Home</a>` + crumbs + "</div></nav>\n")
	}
	b.WriteString(`<div class="main" id="main">`)
	if c.user != "" && bodyClass != "dashboard" {
		b.WriteString(`<nav class="sticky" id="nav-sidebar" aria-label="Sidebar">` + formsetApps + "</nav>")
	}
	b.WriteString("<main id=\"content-start\" class=\"content\">\n")
	f.mu.Lock()
	if s := f.sessions[c.sid]; s != nil && len(s.msgs) > 0 {
		b.WriteString(`<ul class="messagelist">` + strings.Join(s.msgs, "") + "</ul>\n")
		s.msgs = nil
	}
	f.mu.Unlock()
	b.WriteString(content + "</main></div>\n<footer id=\"footer\"></footer></div>\n<div id=\"root\">" + root + "</div>\n<script>" + formsetVisitJS + "</script>\n</body></html>\n")
	return b.String()
}

// login is the admin's LoginView; a login rotates the session key and the
// CSRF secret.
func (f *Formset) login(c *formsetCall) {
	r := c.r
	if r.Method != http.MethodPost && c.user != "" {
		f.redirect(c, "/admin/")
		return
	}
	next := r.PostFormValue("next")
	if !r.PostForm.Has("next") {
		next = r.URL.Query().Get("next")
	}
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n\t") {
		next = "/admin/"
	}
	user, pw := r.PostFormValue("username"), r.PostFormValue("password")
	if r.Method != http.MethodPost || user == "" || pw != "pw-"+user {
		note := ""
		if r.Method == http.MethodPost {
			f.Counts.Add("login refused", 1)
			note = `<p class="errornote">Please enter the correct username and password for a staff account. Note that both fields may be case-sensitive.</p>` + "\n"
		}
		c.user = ""
		f.send(c, http.StatusOK, f.page(c, "Log in", "login", "", fmt.Sprintf(`<div id="content" class="colM"><div id="content-main">
%s<form action="%s" method="post" id="login-form"><input type="hidden" name="csrfmiddlewaretoken" value="%s">
<div class="form-row"><label class="required" for="id_username">Username:</label> <input type="text" name="username" autofocus autocapitalize="none" autocomplete="username" maxlength="150" required id="id_username"%s></div>
<div class="form-row"><label class="required" for="id_password">Password:</label> <input type="password" name="password" autocomplete="current-password" required id="id_password"><input type="hidden" name="next" value="%s"></div>
<div class="submit-row"><input type="submit" value="Log in"></div></form></div></div>
`, note, formsetEsc(r.URL.RequestURI()), c.token(), formsetValue(user), formsetEsc(next)), ""))
		return
	}
	f.mu.Lock()
	delete(f.sessions, c.sid)
	c.newSID = formsetRandom(32, "abcdefghijklmnopqrstuvwxyz0123456789")
	f.sessions[c.newSID] = &formsetSession{user: user}
	f.users[user] = true
	f.mu.Unlock()
	c.user, c.sid = user, c.newSID
	c.secret, c.renew = formsetRandom(32, formsetChars), true
	f.Counts.Add("sessions", 1)
	f.redirect(c, next)
}

// logout is LogoutView: POST only; the logged-out page's root says "done".
func (f *Formset) logout(c *formsetCall) {
	if c.r.Method != http.MethodPost {
		c.w.Header().Set("Allow", "POST, OPTIONS")
		f.Counts.Add("405", 1)
		f.send(c, http.StatusMethodNotAllowed, "")
		return
	}
	f.mu.Lock()
	delete(f.sessions, c.sid)
	f.mu.Unlock()
	c.flushed, c.user, c.sid = true, "", ""
	f.Counts.Add("logouts", 1)
	f.send(c, http.StatusOK, f.page(c, "Logged out", "logged-out", " › Logged out", `<div id="content" class="colM"><h1>Logged out</h1>
<p>Thanks for spending some quality time with the web site today.</p><p><a href="/admin/">Log in again</a></p></div>
`, "done"))
}

// formsetPlural is "s" unless n is 1.
func formsetPlural(n int) string { return map[bool]string{true: "s"}[n != 1] }

// projectList is the changelist of the user's projects (ProjectAdmin has
// no actions), newest first.
func (f *Formset) projectList(c *formsetCall) {
	var rows strings.Builder
	n := 0
	f.mu.Lock()
	for _, id := range slices.Backward(slices.Sorted(maps.Keys(f.projects))) {
		if p := f.projects[id]; p.owner == c.user {
			n++
			fmt.Fprintf(&rows, "<tr><th class=\"field-name\"><a href=\"%s%d/change/\">%s</a></th></tr>\n", formsetProjects, id, formsetEsc(p.name))
		}
	}
	f.mu.Unlock()
	if n > 0 {
		rows.WriteString("</tbody></table></div>\n")
	}
	f.send(c, http.StatusOK, f.page(c, "Select project to change", "app-tracker model-project change-list", formsetCrumbs+"Projects",
		fmt.Sprintf(`<div id="content" class="flex"><h1>Select project to change</h1><div id="content-main">
<ul class="object-tools"><li><a href="/admin/tracker/project/add/" class="addlink">Add project</a></li></ul>
<div class="module" id="changelist"><div class="changelist-form-container">
%s%s<p class="paginator">%d project%s</p></div></div></div></div>
`, map[bool]string{true: `<div class="results"><table id="result_list"><thead><tr><th scope="col" class="column-name"><div class="text"><span>Name</span></div></th></tr></thead><tbody>`}[n > 0],
			rows.String(), n, formsetPlural(n)), ""))
}

// formsetRow is a row of the inline formset, as shown or as posted.
type formsetRow struct {
	id, project, title string
	original           string   // the task's title, above an existing task's row
	initial            bool     // one of the INITIAL_FORMS
	del, changed       bool     // DELETE ticked; has_changed
	errs               []string // the row's, and its hidden fields'
	titleErr           string
}

// formsetCharErr validates a required CharField of max_length 200.
func formsetCharErr(s string) string {
	if n := utf8.RuneCountInString(s); n == 0 {
		return "This field is required."
	} else if n > 200 {
		return fmt.Sprintf("Ensure this value has at most 200 characters (it has %d).", n)
	}
	return ""
}

// change is changeform_view with the inline, for a project of the user's
// or a new one (id 0). A POST is validated whole, project and formset,
// and if valid saved at once as formset.save() does: the project, the
// existing tasks (changed or deleted), then the new ones.
func (f *Formset) change(c *formsetCall, id int) {
	r, pid, rows, invalid := c.r, "", []formsetRow(nil), false
	f.mu.Lock()
	p := f.projects[id]
	if id != 0 && (p == nil || p.owner != c.user) {
		f.mu.Unlock()
		f.Counts.Add("project not found", 1)
		f.message(c, "warning", fmt.Sprintf("Project with ID “%d” doesn’t exist. Perhaps it was deleted?", id))
		f.redirect(c, "/admin/")
		return
	} else if id != 0 {
		pid = strconv.Itoa(id)
	} else {
		p = &formsetProject{owner: c.user} // saved only if valid
	}
	if r.Method != http.MethodPost {
		name := p.name
		for _, tid := range slices.Sorted(maps.Keys(f.tasks)) {
			if t := f.tasks[tid]; t.project == id {
				rows = append(rows, formsetRow{id: strconv.Itoa(tid), project: pid, title: t.title, original: t.title, initial: true})
			}
		}
		f.mu.Unlock()
		initial := len(rows)
		rows = append(rows, formsetRow{project: pid}, formsetRow{project: pid}, formsetRow{project: pid}) // extra = 3
		f.form(c, id, name, "", rows, initial, nil)
		return
	}
	name := strings.TrimSpace(r.PostFormValue("name"))
	nameErr := formsetCharErr(name)
	var top []string // the formset's non-form errors
	total, err1 := strconv.Atoi(r.PostFormValue("task_set-TOTAL_FORMS"))
	initial, err2 := strconv.Atoi(r.PostFormValue("task_set-INITIAL_FORMS"))
	if err1 != nil || err2 != nil || total < 0 || initial < 0 || total > 2*formsetMaxNum {
		top = append(top, "ManagementForm data is missing or has been tampered with. Missing fields: task_set-TOTAL_FORMS, task_set-INITIAL_FORMS. You may need to file a bug report if the issue persists.")
		total, initial, invalid = 0, 0, true
	}
	initial = min(initial, total)
	seen := map[int]bool{}
	for i := range total {
		v := func(field string) string {
			return strings.TrimSpace(r.PostFormValue(fmt.Sprintf("task_set-%d-%s", i, field)))
		}
		del := strings.ToLower(v("DELETE"))
		row := formsetRow{id: v("id"), project: v("project"), title: v("title"), initial: i < initial, del: del != "" && del != "false"}
		tid, _ := strconv.Atoi(row.id)
		task := f.tasks[tid]
		row.changed = row.del || row.title != "" || row.id != ""
		if row.initial && task != nil {
			row.original, row.changed = task.title, row.del || row.title != task.title
		}
		if row.initial || row.changed { // an empty extra form is neither validated nor saved
			switch {
			case row.id == "" && row.initial:
				row.errs = append(row.errs, "This field is required.")
			case row.id != "" && (task == nil || task.project != id || id == 0):
				row.errs, row.original = append(row.errs, formsetChoice), ""
			case row.id != "" && seen[tid]:
				row.errs = append(row.errs, "Please correct the duplicate data for id, which must be unique.")
			}
			seen[tid] = true
			if row.project != "" && row.project != pid {
				row.errs = append(row.errs, "The inline value did not match the parent instance.")
			}
			if !row.del {
				row.titleErr = formsetCharErr(row.title)
			}
			invalid = invalid || len(row.errs) > 0 || row.titleErr != ""
		}
		rows = append(rows, row)
	}
	var made, changed, deleted, touched int
	added := id == 0
	if !invalid && nameErr == "" {
		if added {
			f.lastProject++
			id = f.lastProject
			f.projects[id] = p
		}
		p.name = name
		for _, row := range rows {
			tid, _ := strconv.Atoi(row.id)
			switch t := f.tasks[tid]; {
			case !row.initial:
			case t == nil || t.project != id || f.projects[t.project].owner != c.user:
				touched++ // what the checks above refused
			case row.del:
				delete(f.tasks, tid)
				deleted++
			case row.changed:
				t.title = row.title
				changed++
			}
		}
		for _, row := range rows {
			if !row.initial && row.changed && !row.del {
				f.lastTask++
				f.tasks[f.lastTask] = &formsetTask{id, row.title}
				made++
			}
		}
	}
	f.mu.Unlock()
	if invalid || nameErr != "" {
		f.Counts.Add(map[bool]string{true: "formset invalid", false: "form invalid"}[invalid], 1)
		f.form(c, id, name, nameErr, rows, initial, top)
		return
	}
	for k, n := range map[string]int{"foreign task touched": touched, "tasks created": made, "tasks changed": changed, "tasks deleted": deleted} {
		f.Counts.Add(k, int64(n))
	}
	verb, obj := "changed", fmt.Sprintf("%s%d/change/", formsetProjects, id)
	if added {
		verb = "added"
		f.Counts.Add("projects created", 1)
	}
	msg, to := fmt.Sprintf(`The project “<a href="%s">%s</a>” was %s successfully.`, obj, formsetEsc(name), verb), formsetProjects
	switch {
	case r.PostForm.Has("_continue"):
		msg, to = msg+" You may edit it again below.", obj
	case r.PostForm.Has("_addanother"):
		msg, to = msg+" You may add another project below.", formsetAdd
	}
	f.message(c, "success", msg)
	f.redirect(c, to)
}

// formsetUL is an error list, or "" if errs has none.
func formsetUL(class string, errs ...string) string {
	var b strings.Builder
	for _, e := range errs {
		if e != "" {
			b.WriteString("<li>" + formsetEsc(e) + "</li>")
		}
	}
	if b.Len() == 0 {
		return ""
	}
	return `<ul class="` + class + `">` + b.String() + "</ul>"
}

// formsetValue is a widget's value attribute: none if empty.
func formsetValue(v string) string {
	if v == "" {
		return ""
	}
	return ` value="` + formsetEsc(v) + `"`
}

// form renders the change form with the inline formset of rows, of which
// the first initial are existing tasks', and the errors if any.
func (f *Formset) form(c *formsetCall, id int, name, nameErr string, rows []formsetRow, initial int, top []string) {
	errs, pid := len(top), ""
	if id != 0 {
		pid = strconv.Itoa(id)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<div class="js-inline-admin-formset inline-group" id="task_set-group" data-inline-type="tabular" data-inline-formset="{&quot;name&quot;: &quot;#task_set&quot;, &quot;options&quot;: {&quot;prefix&quot;: &quot;task_set&quot;, &quot;addText&quot;: &quot;Add another Task&quot;, &quot;deleteText&quot;: &quot;Remove&quot;}}">
<div class="tabular inline-related last-related"><input type="hidden" name="task_set-TOTAL_FORMS" value="%d" id="id_task_set-TOTAL_FORMS"><input type="hidden" name="task_set-INITIAL_FORMS" value="%d" id="id_task_set-INITIAL_FORMS"><input type="hidden" name="task_set-MIN_NUM_FORMS" value="0" id="id_task_set-MIN_NUM_FORMS"><input type="hidden" name="task_set-MAX_NUM_FORMS" value="%d" id="id_task_set-MAX_NUM_FORMS">
<fieldset class="module"><h2 id="task_set-heading" class="inline-heading">Tasks</h2>%s
<table><thead><tr><th class="original"></th><th class="column-title required">Title</th><th>Delete?</th></tr></thead>
<tbody>
`, len(rows), initial, formsetMaxNum, formsetUL("errorlist nonform", top...))
	for i, row := range append(rows, formsetRow{project: pid}) {
		n, trID, class := strconv.Itoa(i), "task_set-"+strconv.Itoa(i), "form-row"
		if i == len(rows) { // the empty form, which inlines.js copies
			n, trID, class = "__prefix__", "task_set-empty", "form-row empty-form"
		} else if i < initial {
			class += " has_original"
		}
		if errs += len(row.errs); row.titleErr != "" {
			errs++
		}
		if len(row.errs) > 0 {
			fmt.Fprintf(&b, `<tr class="row-form-errors"><td colspan="3">%s</td></tr>`+"\n", formsetUL("errorlist nonfield", row.errs...))
		}
		fmt.Fprintf(&b, `<tr class="%s" id="%s"><td class="original">`, class, trID)
		if row.original != "" {
			fmt.Fprintf(&b, "<p>%s</p>", formsetEsc(row.original))
		}
		fmt.Fprintf(&b, `<input type="hidden" name="task_set-%[1]s-id"%[2]s id="id_task_set-%[1]s-id"><input type="hidden" name="task_set-%[1]s-project"%[3]s id="id_task_set-%[1]s-project"></td>
<td class="field-title">%[4]s<input type="text" name="task_set-%[1]s-title"%[5]s class="vTextField" maxlength="200" id="id_task_set-%[1]s-title"></td><td class="delete">`,
			n, formsetValue(row.id), formsetValue(row.project), formsetUL("errorlist", row.titleErr), formsetValue(row.title))
		if i < initial {
			fmt.Fprintf(&b, `<input type="checkbox" name="task_set-%s-DELETE" id="id_task_set-%[1]s-DELETE"%s>`, n, map[bool]string{true: " checked"}[row.del])
		}
		b.WriteString("</td></tr>\n")
	}
	b.WriteString("</tbody></table></fieldset></div></div>\n")
	note, title, crumb := "", "Add project", "Add project"
	if nameErr != "" {
		errs++
	}
	if errs > 0 {
		note = `<p class="errornote">` + map[bool]string{true: "Please correct the error below.", false: "Please correct the errors below."}[errs == 1] + "</p>\n"
	}
	if id != 0 {
		title, crumb = "Change project", formsetEsc(name)
	}
	f.send(c, http.StatusOK, f.page(c, title, "app-tracker model-project change-form", formsetCrumbs+`<a href="/admin/tracker/project/">Projects</a> › `+crumb,
		fmt.Sprintf(`<div id="content" class="colM"><h1>%s</h1>
<div id="content-main"><form method="post" id="project_form" novalidate><input type="hidden" name="csrfmiddlewaretoken" value="%s"><div>
%s<fieldset class="module aligned">
<div class="form-row field-name">%s<label class="required" for="id_name">Name:</label> <input type="text" name="name" class="vTextField" maxlength="200" required id="id_name"%s></div></fieldset>
%s<div class="submit-row"><input type="submit" value="Save" class="default" name="_save"><input type="submit" value="Save and add another" name="_addanother"><input type="submit" value="Save and continue editing" name="_continue"></div>
</div></form></div></div>
`, title, c.token(), note, formsetUL("errorlist", nameErr), formsetValue(name), b.String()), ""))
}

// taskList is the changelist of the user's tasks, with the delete_selected
// action: a POST with "index" (the Go button) asks for confirmation, one
// with "post" (the confirmation page's) deletes.
func (f *Formset) taskList(c *formsetCall) {
	r := c.r
	if r.Method != http.MethodPost {
		f.send(c, http.StatusOK, f.tasksPage(c))
		return
	}
	sel, action := r.PostForm["_selected_action"], r.PostFormValue("action")
	confirmed := r.PostFormValue("post") != "" && !r.PostForm.Has("index")
	ok, ids, deleted, touched := len(sel) > 0 && action == "delete_selected", []int(nil), 0, 0
	var objects, hidden strings.Builder
	f.mu.Lock()
	for _, s := range sel {
		tid, err := strconv.Atoi(s)
		if t := f.tasks[tid]; err != nil || t == nil || f.projects[t.project].owner != c.user {
			ok = false
		}
		ids = append(ids, tid)
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	for _, tid := range ids {
		switch t := f.tasks[tid]; {
		case !ok:
		case t == nil || f.projects[t.project].owner != c.user:
			touched++ // what the check above refused
		case confirmed:
			delete(f.tasks, tid)
			deleted++
		default:
			fmt.Fprintf(&objects, "<li>Task: %s</li>", formsetEsc(t.title))
			fmt.Fprintf(&hidden, `<input type="hidden" name="_selected_action" value="%d">`+"\n", tid)
		}
	}
	f.mu.Unlock()
	f.Counts.Add("foreign task touched", int64(touched))
	switch {
	case !ok:
		f.Counts.Add("bulk refused", 1)
		f.message(c, "warning", map[bool]string{true: formsetNoneMsg, false: "No action selected."}[len(sel) == 0 || action != ""])
		f.send(c, http.StatusOK, f.tasksPage(c))
	case confirmed:
		f.Counts.Add("tasks bulk deleted", int64(deleted))
		f.message(c, "success", fmt.Sprintf("Successfully deleted %d task%s.", deleted, formsetPlural(deleted)))
		f.redirect(c, formsetTasks)
	default:
		f.send(c, http.StatusOK, f.page(c, "Are you sure?", "app-tracker model-task delete-confirmation delete-selected-confirmation",
			formsetCrumbs+`<a href="/admin/tracker/task/">Tasks</a> › Delete multiple objects`, fmt.Sprintf(`<div id="content" class="colM"><h1>Delete multiple objects</h1>
<p>Are you sure you want to delete the selected tasks? All of the following objects and their related items will be deleted:</p>
<h2>Summary</h2><ul><li>Tasks: %d</li></ul><h2>Objects</h2><ul>%s</ul>
<form method="post"><input type="hidden" name="csrfmiddlewaretoken" value="%s"><div>
%s<input type="hidden" name="action" value="delete_selected"><input type="hidden" name="post" value="yes">
<input type="submit" value="Yes, I’m sure"> <a href="#" class="button cancel-link">No, take me back</a></div></form></div>
`, len(ids), objects.String(), c.token(), hidden.String()), ""))
	}
}

// tasksPage renders the task changelist, newest first; the actions and
// the table show only if the user has tasks.
func (f *Formset) tasksPage(c *formsetCall) string {
	var rows strings.Builder
	n := 0
	f.mu.Lock()
	for _, tid := range slices.Backward(slices.Sorted(maps.Keys(f.tasks))) {
		if t := f.tasks[tid]; f.projects[t.project].owner == c.user {
			n++
			fmt.Fprintf(&rows, `<tr><td class="action-checkbox"><input type="checkbox" name="_selected_action" value="%d" class="action-select" aria-label="Select this object for an action - %s"></td><td class="field-title">%[2]s</td><td class="field-project nowrap">%s</td></tr>`+"\n",
				tid, formsetEsc(t.title), formsetEsc(f.projects[t.project].name))
		}
	}
	f.mu.Unlock()
	results := ""
	if n > 0 {
		results = fmt.Sprintf(`<div class="actions"><label>Action: <select name="action" required><option value="" selected>---------</option><option value="delete_selected">Delete selected tasks</option></select></label><input type="hidden" name="select_across" value="0" class="select-across"><button type="submit" class="button" title="Run the selected action" name="index" value="0">Go</button> <span class="action-counter" data-actions-icnt="%d">0 of %[1]d selected</span></div>
<div class="results"><table id="result_list"><thead><tr><th scope="col" class="action-checkbox-column"><div class="text"><span><input type="checkbox" id="action-toggle" aria-label="Select all objects on this page for an action"></span></div></th><th scope="col" class="column-title"><div class="text"><span>Title</span></div></th><th scope="col" class="column-project"><div class="text"><span>Project</span></div></th></tr></thead>
<tbody>%s</tbody></table></div>
`, n, rows.String())
	}
	return f.page(c, "Select task to change", "app-tracker model-task change-list", formsetCrumbs+"Tasks",
		fmt.Sprintf(`<div id="content" class="flex"><h1>Select task to change</h1><div id="content-main">
<div class="module" id="changelist"><div class="changelist-form-container">
<form id="changelist-form" method="post" novalidate><input type="hidden" name="csrfmiddlewaretoken" value="%s">
%s<p class="paginator">%d task%s</p></form></div></div></div></div>
`, c.token(), results, n, formsetPlural(n)), "")
}

// formsetVisitJS moves a browser's visit on like a person, one step per
// page: log in as the u of the next URL; add a project with three tasks
// in the inline rows ("Save and continue editing"); on its change page,
// rename the first task and tick DELETE on the second ("Save"); open the
// task changelist, tick every task, run delete_selected and confirm; log
// out. A page acts only as the step it expects (a reloaded one does
// nothing), after 20 to 80 ms, and shows anything unexpected as "error:
// ..." in #root; the logged-out page's root says "done".
const formsetVisitJS = `(() => {
  const S = sessionStorage, q = s => document.querySelector(s), qa = s => [...document.querySelectorAll(s)];
  const root = document.getElementById("root"), fail = m => { root.textContent = "error: " + m; };
  const cls = document.body.classList, path = location.pathname;
  const kind = cls.contains("login") ? "login" : cls.contains("dashboard") ? "index" : cls.contains("delete-confirmation") ? "confirm"
    : cls.contains("change-list") ? (cls.contains("model-task") ? "tasks" : "projects")
    : cls.contains("change-form") ? (path.endsWith("/add/") ? "add" : "change") : cls.contains("logged-out") ? "out" : "other";
  const steps = ["login", "index", "add", "change", "projects", "tasks", "confirm", "tasks", "out"];
  const n = +(S.getItem("formset.step") || 0), said = (q(".messagelist") || {}).textContent || "";
  const expect = t => { if (!said.includes(t)) throw new Error("no message \"" + t + "\" at step " + n); };
  const titles = ["Write the spec", "Build it", "Ship it"], row = (i, f) => q('[name="task_set-' + i + "-" + f + '"]');
  const acts = [() => {
    const u = new URL(new URLSearchParams(location.search).get("next") || "/", location.href).searchParams.get("u") || S.getItem("formset.u");
    if (!u) throw new Error("no user in " + location.search);
    S.setItem("formset.u", u);
    q("#id_username").value = u; q("#id_password").value = "pw-" + u; q("#login-form").submit();
  }, () => q('a[href="/admin/tracker/project/add/"]').click(), () => {
    q("#id_name").value = "Project of " + S.getItem("formset.u");
    titles.forEach((t, i) => { row(i, "title").value = t; });
    q("#project_form").requestSubmit(q('[name="_continue"]'));
  }, () => {
    expect("was added successfully. You may edit it again below.");
    titles.forEach((t, i) => { if (row(i, "title").value !== t || !row(i, "id").value) throw new Error("row " + i + " is not " + t); });
    row(0, "title").value = titles[0] + ", edited"; row(1, "DELETE").checked = true;
    q("#project_form").requestSubmit(q('[name="_save"]'));
  }, () => { expect("was changed successfully."); q('#nav-sidebar a[href="/admin/tracker/task/"]').click(); }, () => {
    const got = qa("#result_list td.field-title").map(e => e.textContent).sort().join(" | ");
    if (got !== titles[2] + " | " + titles[0] + ", edited") throw new Error("tasks " + got);
    qa("input.action-select").forEach(b => { b.checked = true; });
    q('select[name="action"]').value = "delete_selected";
    q("#changelist-form").requestSubmit(q('button[name="index"]'));
  }, () => q('input[name="post"]').form.submit(), () => {
    expect("Successfully deleted 2 tasks.");
    if (q("input.action-select")) throw new Error("tasks left");
    q("#logout-form").requestSubmit();
  }, () => {}];
  if (q(".errornote")) return fail(q(".errornote").textContent.trim());
  if (kind !== steps[n]) return n > 0 && kind === steps[n - 1] || fail("page " + kind + " " + path + " at step " + n);
  S.setItem("formset.step", n + 1);
  setTimeout(() => { try { acts[n](); } catch (e) { fail(e.message); } }, 20 + Math.random() * 60);
})();
`

// FormsetClient is a person visiting a Formset with a browser, done with
// net/http: the visit of the pages' script, every form submitted with the
// fields a browser would send (the __prefix__ row's too), each redirect
// followed separately. It fails tb on any status but the one Django sends.
func FormsetClient(tb testing.TB, base, user string) {
	tb.Helper()
	newFormsetUser(tb, base).visit(user)
}

// formsetUser is a browser context of FormsetClient: cookies and
// connections of its own.
type formsetUser struct {
	tb   testing.TB
	c    *http.Client
	base string
}

func newFormsetUser(tb testing.TB, base string) *formsetUser {
	jar, _ := cookiejar.New(nil)
	tr := &http.Transport{}
	tb.Cleanup(tr.CloseIdleConnections)
	return &formsetUser{tb: tb, base: base, c: &http.Client{Jar: jar, Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// do sends a request, a form if form is not nil, fails the test unless the
// status is want, and returns the Location and the body.
func (u *formsetUser) do(method, path string, form url.Values, want int) (string, string) {
	u.tb.Helper()
	body, header := "", []string(nil)
	if form != nil {
		body, header = form.Encode(), []string{"Content-Type", "application/x-www-form-urlencoded"}
	}
	ans := Do(u.tb, u.c, method, u.base+path, body, header...)
	if ans.Status != want {
		u.tb.Fatalf("%s %s: %d, want %d: %.300s", method, path, ans.Status, want, ans.Body)
	}
	return ans.Header.Get("Location"), string(ans.Body)
}

var (
	formsetFormRE  = regexp.MustCompile(`(?s)<form\b[^>]*>.*?</form>`)
	formsetInputRE = regexp.MustCompile(`<(input|select) (?:type="(\w+)" )?name="([^"]+)"([^>]*)>`)
	formsetValueRE = regexp.MustCompile(` value="([^"]*)"`)
)

// formsetForm returns what a browser submits from the first form of page
// that has marker, pressing no button: its inputs, ticked checkboxes, and
// the first option of a select (as every select here has selected).
func formsetForm(tb testing.TB, page, marker string) url.Values {
	tb.Helper()
	for _, form := range formsetFormRE.FindAllString(page, -1) {
		if !strings.Contains(form, marker) {
			continue
		}
		v := url.Values{}
		for _, m := range formsetInputRE.FindAllStringSubmatch(form, -1) {
			value := ""
			if vm := formsetValueRE.FindStringSubmatch(m[4]); vm != nil {
				value = html.UnescapeString(vm[1])
			}
			switch m[2] {
			case "submit", "button", "image", "reset":
			case "checkbox", "radio":
				if strings.Contains(m[4], " checked") {
					v.Add(m[3], cmp.Or(value, "on"))
				}
			default:
				v.Add(m[3], value)
			}
		}
		return v
	}
	tb.Fatalf("no form with %q in %.300s", marker, page)
	return nil
}

func (u *formsetUser) expect(what, got, want string) {
	u.tb.Helper()
	if !strings.Contains(got, want) {
		u.tb.Fatalf("%s: %.400q does not have %q", what, got, want)
	}
}

// login logs user in from the login page at path and returns where the
// answer sends it.
func (u *formsetUser) login(path, user string) string {
	u.tb.Helper()
	_, page := u.do(http.MethodGet, path, nil, http.StatusOK)
	form := formsetForm(u.tb, page, `id="login-form"`)
	form.Set("username", user)
	form.Set("password", "pw-"+user)
	loc, _ := u.do(http.MethodPost, path, form, http.StatusFound)
	return loc
}

// formsetTitles are the tasks every visit adds.
var formsetTitles = []string{ //nolint:gochecknoglobals // constant table
	"Write the spec", "Build it", "Ship it"}

// add adds a project with a task of each title in the inline rows, with
// "Save and continue editing", and returns its change page's path and body.
func (u *formsetUser) add(name string, titles ...string) (string, string) {
	u.tb.Helper()
	_, page := u.do(http.MethodGet, formsetAdd, nil, http.StatusOK)
	form := formsetForm(u.tb, page, `id="project_form"`)
	form.Set("name", name)
	for i, t := range titles {
		form.Set(fmt.Sprintf("task_set-%d-title", i), t)
	}
	form.Set("_continue", "Save and continue editing")
	loc, _ := u.do(http.MethodPost, formsetAdd, form, http.StatusFound)
	if !regexp.MustCompile(`^/admin/tracker/project/\d+/change/$`).MatchString(loc) {
		u.tb.Fatalf("adding %s sent to %q", name, loc)
	}
	_, page = u.do(http.MethodGet, loc, nil, http.StatusOK)
	u.expect("change page", page, "was added successfully. You may edit it again below.")
	return loc, page
}

func (u *formsetUser) visit(user string) {
	u.tb.Helper()
	start := "/admin/?u=" + url.QueryEscape(user)
	loc, _ := u.do(http.MethodGet, start, nil, http.StatusFound)
	u.expect("anonymous "+start, loc, "/admin/login/?next=/admin/%3Fu%3D")
	if got := u.login(loc, user); got != start {
		u.tb.Fatalf("login sent to %q, want %q", got, start)
	}
	u.do(http.MethodGet, start, nil, http.StatusOK)
	change, page := u.add("Project of "+user, formsetTitles...)
	form := formsetForm(u.tb, page, `id="project_form"`)
	for i, t := range formsetTitles {
		if p := fmt.Sprintf("task_set-%d-", i); form.Get(p+"title") != t || form.Get(p+"id") == "" {
			u.tb.Fatalf("change page row %d: id %q title %q, want %q", i, form.Get(p+"id"), form.Get(p+"title"), t)
		}
	}
	form.Set("task_set-0-title", formsetTitles[0]+", edited")
	form.Set("task_set-1-DELETE", "on")
	form.Set("_save", "Save")
	loc, _ = u.do(http.MethodPost, change, form, http.StatusFound)
	u.expect("change", loc, formsetProjects)
	_, page = u.do(http.MethodGet, loc, nil, http.StatusOK)
	u.expect("project changelist", page, "was changed successfully.")
	_, page = u.do(http.MethodGet, formsetTasks, nil, http.StatusOK)
	form = formsetForm(u.tb, page, `id="changelist-form"`)
	for _, m := range regexp.MustCompile(`name="_selected_action" value="(\d+)"`).FindAllStringSubmatch(page, -1) {
		form.Add("_selected_action", m[1]) // ticked
	}
	if n := len(form["_selected_action"]); n != 2 {
		u.tb.Fatalf("task changelist has %d tasks, want 2: %.500s", n, page)
	}
	form.Set("action", "delete_selected")
	form.Set("index", "0") // the Go button
	_, page = u.do(http.MethodPost, formsetTasks, form, http.StatusOK)
	u.expect("action", page, "<h1>Delete multiple objects</h1>")
	loc, _ = u.do(http.MethodPost, formsetTasks, formsetForm(u.tb, page, `name="post"`), http.StatusFound)
	_, page = u.do(http.MethodGet, loc, nil, http.StatusOK)
	u.expect("task changelist", page, "Successfully deleted 2 tasks.")
	if strings.Contains(page, `class="action-select"`) {
		u.tb.Fatalf("tasks left after the bulk delete: %.500s", page)
	}
	_, page = u.do(http.MethodPost, "/admin/logout/", formsetForm(u.tb, page, `id="logout-form"`), http.StatusOK)
	u.expect("logout", page, `<div id="root">done</div>`)
}
