package apptest

import (
	"bytes"
	"cmp"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"maps"
	mrand "math/rand/v2"
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
)

// Laravel is a backend in the style of a Laravel 11 application with
// Breeze's Blade views and the web middleware group (EncryptCookies,
// StartSession with the file driver, ValidateCsrfToken). Every response of
// a matched route sets XSRF-TOKEN and laravel_session, each encrypted with
// a fresh IV, so their values change on every response even when the
// session does not; forms carry the session's token in _token and pages in
// a csrf-token meta tag; a token that does not match is a 419 Page Expired.
// Logins regenerate the session; creates answer a 302 to /projects/ID
// (small auto-increment ids) with a flash shown once; edits and deletes
// are POSTs with _method; projects of another user are a 403; guests are
// sent to /login. Pages link a Vite build (CSS with two fonts and a
// background, a module script), a logo and a favicon, served as public/
// files outside the middleware. Passwords are "pw-" + the user name, the
// email USER@example.test. Counts: "sessions" (logins), "login refused",
// "login redirects", "419", "403", "401", "404", "405", "invalid",
// "projects created", "projects updated", "projects deleted", "logouts",
// "notifications", "assets" (and "assets PATH"), "favicon".
type Laravel struct {
	URL    string
	Counts Counts

	key     []byte                  // APP_KEY, for AES-256-CBC and HMAC-SHA256
	public  map[string]laravelAsset // public/, served before index.php
	css, js string                  // the Vite build's hashed file names

	mu       sync.Mutex
	sessions map[string]laravelSession // storage/framework/sessions: id → what was saved
	projects map[int]*laravelProject
	users    map[string]bool
	next     int
}

type laravelAsset struct {
	ctype     string
	body      []byte
	immutable bool // a hashed build file
	etag      string
}

type laravelProject struct{ owner, name string }

// laravelSession is what one session file holds.
type laravelSession struct {
	id, token, user    string
	intended, previous string            // url.intended, _previous.url
	flash              map[string]string // flashed values: "status", "errors.email", "old.email", ...
	fresh, aged        []string          // _flash.new and _flash.old
}

// NewLaravel starts a Laravel on loopback until the test ends.
func NewLaravel(tb testing.TB) *Laravel {
	a := &Laravel{key: make([]byte, 32), sessions: map[string]laravelSession{}, projects: map[int]*laravelProject{}, users: map[string]bool{}}
	_, _ = rand.Read(a.key)
	a.public = a.build()
	srv := httptest.NewServer(a)
	tb.Cleanup(srv.Close)
	a.URL = srv.URL
	return a
}

// Users returns the names of the users who logged in, sorted.
func (a *Laravel) Users() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Sorted(maps.Keys(a.users))
}

// build makes public/: what `npm run build` leaves in public/build/assets
// (names with a hash of the content, as Vite gives them) and the files the
// skeleton ships (an empty favicon.ico, robots.txt).
func (a *Laravel) build() map[string]laravelAsset {
	hashed := func(name, ext, body string) string {
		sum := sha256.Sum256([]byte(body))
		return name + "-" + base64.RawURLEncoding.EncodeToString(sum[:])[:8] + "." + ext
	}
	a.css, a.js = hashed("app", "css", laravelCSS), hashed("app", "js", laravelJS)
	font := func(weight byte) []byte {
		return append([]byte("wOF2\x00\x01\x00\x00"), bytes.Repeat([]byte{weight}, 2040)...)
	}
	files := map[string]laravelAsset{
		"/build/assets/" + a.css:          {ctype: "text/css", body: []byte(laravelCSS), immutable: true},
		"/build/assets/" + a.js:           {ctype: "text/javascript", body: []byte(laravelJS), immutable: true},
		"/build/assets/figtree-400.woff2": {ctype: "font/woff2", body: font(4), immutable: true},
		"/build/assets/figtree-600.woff2": {ctype: "font/woff2", body: font(6), immutable: true},
		"/images/bg.png":                  {ctype: "image/png", body: []byte(laravelPNG)},
		"/images/logo.svg":                {ctype: "image/svg+xml", body: []byte(laravelLogo)},
		"/favicon.ico":                    {ctype: "image/vnd.microsoft.icon"}, // the skeleton's is empty
		"/robots.txt":                     {ctype: "text/plain", body: []byte("User-agent: *\nDisallow:\n")},
	}
	mtime := time.Now().Unix()
	for p, f := range files {
		f.etag = fmt.Sprintf(`"%x-%x"`, mtime, len(f.body)) // nginx's: mtime and size
		files[p] = f
	}
	return files
}

// serveAsset serves a file of public/ as nginx does before it hands a
// request to index.php: no session, no cookies, an ETag it revalidates.
func (a *Laravel) serveAsset(w http.ResponseWriter, r *http.Request) bool {
	f, ok := a.public[r.URL.Path]
	if !ok || r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	a.Counts.Add("assets", 1)
	a.Counts.Add("assets "+r.URL.Path, 1)
	if r.URL.Path == "/favicon.ico" {
		a.Counts.Add("favicon", 1)
	}
	h := w.Header()
	h.Set("ETag", f.etag)
	h.Set("Accept-Ranges", "bytes")
	if f.immutable {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	}
	if r.Header.Get("If-None-Match") == f.etag {
		w.WriteHeader(http.StatusNotModified)
		return true
	}
	h.Set("Content-Type", f.ctype)
	h.Set("Content-Length", strconv.Itoa(len(f.body)))
	_, _ = w.Write(f.body)
	return true
}

const laravelAlnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// laravelRandom is Str::random: n letters and digits.
func laravelRandom(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = laravelAlnum[mrand.IntN(len(laravelAlnum))]
	}
	return string(b)
}

// laravelPayload is Encrypter's envelope, in its order; tag is empty with
// CBC.
type laravelPayload struct {
	IV    string `json:"iv"`
	Value string `json:"value"`
	MAC   string `json:"mac"`
	Tag   string `json:"tag"`
}

func (a *Laravel) mac(iv, value string) string {
	m := hmac.New(sha256.New, a.key)
	m.Write([]byte(iv + value))
	return hex.EncodeToString(m.Sum(nil))
}

// encrypt is Encrypter::encrypt($value, false): a random IV each time.
func (a *Laravel) encrypt(plain string) string {
	iv := make([]byte, aes.BlockSize)
	_, _ = rand.Read(iv)
	pad := aes.BlockSize - len(plain)%aes.BlockSize
	buf := append([]byte(plain), bytes.Repeat([]byte{byte(pad)}, pad)...)
	block, _ := aes.NewCipher(a.key)
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(buf, buf)
	p := laravelPayload{IV: base64.StdEncoding.EncodeToString(iv), Value: base64.StdEncoding.EncodeToString(buf)}
	p.MAC = a.mac(p.IV, p.Value)
	j, _ := json.Marshal(p)
	return base64.StdEncoding.EncodeToString(j)
}

// errLaravelDecrypt is Laravel's DecryptException: "The payload is invalid." or
// "The MAC is invalid.".
var errLaravelDecrypt = errors.New("laravel: the payload or its MAC is invalid")

func (a *Laravel) decrypt(payload string) (string, error) {
	var p laravelPayload
	j, err := base64.StdEncoding.DecodeString(payload)
	if err != nil || json.Unmarshal(j, &p) != nil {
		return "", errLaravelDecrypt
	}
	iv, err1 := base64.StdEncoding.DecodeString(p.IV)
	buf, err2 := base64.StdEncoding.DecodeString(p.Value)
	if err1 != nil || err2 != nil || len(iv) != aes.BlockSize || len(buf) == 0 || len(buf)%aes.BlockSize != 0 ||
		!hmac.Equal([]byte(a.mac(p.IV, p.Value)), []byte(p.MAC)) {
		return "", errLaravelDecrypt
	}
	block, _ := aes.NewCipher(a.key)
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(buf, buf)
	pad := int(buf[len(buf)-1])
	if pad == 0 || pad > aes.BlockSize {
		return "", errLaravelDecrypt
	}
	return string(buf[:len(buf)-pad]), nil
}

// prefix is CookieValuePrefix::create: what binds an encrypted value to the
// cookie's name, so that one cookie's value is refused in another.
func (a *Laravel) prefix(name string) string {
	m := hmac.New(sha1.New, a.key)
	m.Write([]byte(name + "v2"))
	return hex.EncodeToString(m.Sum(nil)) + "|"
}

// cookie is what EncryptCookies leaves of a request's cookie: its value
// decrypted, or nothing if it was tampered with or is another cookie's.
func (a *Laravel) cookie(r *http.Request, name string) (string, bool) {
	c, err := r.Cookie(name)
	if err != nil {
		return "", false
	}
	v, _ := url.QueryUnescape(c.Value) // PHP decodes $_COOKIE
	plain, err := a.decrypt(v)
	if err != nil {
		return "", false
	}
	return strings.CutPrefix(plain, a.prefix(name))
}

// setCookie writes a cookie as Symfony's Cookie::__toString does: the
// encrypted value rawurlencoded, lower-case attributes, expires and
// Max-Age from the session lifetime (120 minutes).
func (a *Laravel) setCookie(w http.ResponseWriter, name, value string, httpOnly bool) {
	s := name + "=" + url.QueryEscape(a.encrypt(a.prefix(name)+value)) +
		"; expires=" + time.Now().Add(2*time.Hour).UTC().Format("Mon, 02 Jan 2006 15:04:05 GMT") + "; Max-Age=7200; path=/"
	if httpOnly {
		s += "; httponly"
	}
	w.Header().Add("Set-Cookie", s+"; samesite=lax")
}

// start is StartSession: the session of the cookie, or a new one. A
// well-formed id with no file is kept, as Store::setId keeps it.
func (a *Laravel) start(r *http.Request) *laravelSession {
	s := &laravelSession{}
	if id, ok := a.cookie(r, "laravel_session"); ok && len(id) == 40 && strings.Trim(id, laravelAlnum) == "" { // Store::isValidId
		*s = a.sessions[id]
		s.id, s.flash, s.aged = id, maps.Clone(s.flash), slices.Clone(s.aged)
	} else {
		s.id = laravelRandom(40)
	}
	if s.token == "" {
		s.token = laravelRandom(40)
	}
	return s
}

// put is session()->flash: kept for this request and the next.
func (s *laravelSession) put(k, v string) {
	if s.flash == nil {
		s.flash = map[string]string{}
	}
	s.flash[k] = v
	s.fresh = append(s.fresh, k)
	s.aged = slices.DeleteFunc(s.aged, func(o string) bool { return o == k })
}

// save ages the flash data and writes the session file, as every request
// through StartSession does.
func (a *Laravel) save(s *laravelSession) {
	for _, k := range s.aged {
		delete(s.flash, k)
	}
	s.aged, s.fresh = s.fresh, nil
	c := *s
	c.flash, c.aged = maps.Clone(s.flash), slices.Clone(s.aged)
	a.sessions[s.id] = c
}

// migrate gives s a new id, leaving its old file unless destroy.
func (a *Laravel) migrate(s *laravelSession, destroy bool) {
	if destroy {
		delete(a.sessions, s.id)
	}
	s.id = laravelRandom(40)
}

// laravelRoute matches routes/web.php, in its order: a route name and the
// {project} parameter, or the 404 or 405 the router throws before any
// middleware runs.
func laravelRoute(method, path string) (name, id string, status int) {
	if method == http.MethodHead {
		method = http.MethodGet
	}
	status = http.StatusNotFound
	for _, rt := range [...]struct{ method, path, name string }{
		{"GET", "/", "welcome"}, {"GET", "/login", "login"}, {"POST", "/login", "login.store"}, {"POST", "/logout", "logout"},
		{"GET", "/dashboard", "dashboard"}, {"GET", "/api/notifications", "notifications"},
		{"GET", "/projects", "projects.index"}, {"POST", "/projects", "projects.store"}, {"GET", "/projects/create", "projects.create"},
		{"GET", "/projects/*", "projects.show"}, {"PUT", "/projects/*", "projects.update"}, {"PATCH", "/projects/*", "projects.update"},
		{"DELETE", "/projects/*", "projects.destroy"}, {"GET", "/projects/*/edit", "projects.edit"},
	} {
		before, after, param := strings.Cut(rt.path, "*")
		v, ok := strings.CutPrefix(path, before)
		v, ok2 := strings.CutSuffix(v, after)
		if !param && path != rt.path || param && (!ok || !ok2 || v == "" || strings.Contains(v, "/")) {
			continue
		}
		if rt.method == method {
			return rt.name, v, 0
		}
		status = http.StatusMethodNotAllowed
	}
	return "", "", status
}

// laravelWantsJSON is Request::expectsJson.
func laravelWantsJSON(r *http.Request) bool {
	accept := strings.TrimSpace(strings.Split(r.Header.Get("Accept"), ",")[0])
	ajax := r.Header.Get("X-Requested-With") == "XMLHttpRequest"
	return strings.Contains(accept, "/json") || strings.Contains(accept, "+json") || ajax && (accept == "" || accept == "*/*" || accept == "*")
}

type laravelReply struct {
	status                int
	ctype, body, location string
}

// write answers rep with the Cache-Control Symfony gives answers that set
// none.
func (rep laravelReply) write(w http.ResponseWriter) {
	if rep.location != "" {
		w.Header().Set("Location", rep.location)
	}
	w.Header().Set("Content-Type", rep.ctype)
	w.Header().Set("Cache-Control", "no-cache, private")
	w.WriteHeader(rep.status)
	_, _ = io.WriteString(w, rep.body)
}

// laravelRedirect is Symfony's RedirectResponse, to an absolute URL.
func laravelRedirect(to string) laravelReply {
	const body = "<!DOCTYPE html>\n<html>\n    <head>\n        <meta charset=\"UTF-8\" />\n        <meta http-equiv=\"refresh\" content=\"0;url='%[1]s'\" />\n\n" +
		"        <title>Redirecting to %[1]s</title>\n    </head>\n    <body>\n        Redirecting to <a href=\"%[1]s\">%[1]s</a>.\n    </body>\n</html>"
	return laravelReply{http.StatusFound, "text/html; charset=utf-8", fmt.Sprintf(body, html.EscapeString(to)), to}
}

// failure is the exception handler's answer: the error views (published,
// with a root element that says what went wrong) or JSON.
func (a *Laravel) failure(r *http.Request, status int) laravelReply {
	a.Counts.Add(strconv.Itoa(status), 1)
	title := map[int]string{401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 419: "Page Expired"}[status]
	msg := map[int]string{401: "Unauthenticated.", 403: "This action is unauthorized.", 419: "CSRF token mismatch."}[status]
	if laravelWantsJSON(r) {
		j, _ := json.Marshal(map[string]string{"message": cmp.Or(msg, title)})
		return laravelReply{status, "application/json", string(j), ""}
	}
	shown := title
	if status == http.StatusForbidden {
		shown = msg // 403.blade.php shows the exception's message
	}
	return laravelReply{status, "text/html; charset=UTF-8", fmt.Sprintf(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>%[2]s</title></head>
<body class="antialiased"><div class="relative flex items-top justify-center min-h-screen bg-gray-100 sm:items-center sm:pt-0">
<div id="root" class="max-w-xl mx-auto sm:px-6 lg:px-8">error: %[1]d | %[3]s</div></div></body></html>`, status, title, shown), ""}
}

func (a *Laravel) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if a.serveAsset(w, r) {
		return
	}
	method := r.Method
	if m := r.PostFormValue("_method"); method == http.MethodPost && m != "" {
		method = strings.ToUpper(m) // form method spoofing
	}
	route, id, status := laravelRoute(method, r.URL.Path)
	if status != 0 {
		// No route, so the web group never ran: no session, no cookies.
		rep := a.failure(r, status)
		rep.write(w)
		return
	}
	a.mu.Lock() // one request at a time, so the file driver's last write wins without a race
	defer a.mu.Unlock()
	s := a.start(r)
	// ValidateCsrfToken: _token, then X-CSRF-TOKEN, then X-XSRF-TOKEN
	// decrypted (its prefix cut, not checked).
	reading := method == http.MethodGet || method == http.MethodHead || method == http.MethodOptions
	sent := cmp.Or(r.FormValue("_token"), r.Header.Get("X-CSRF-TOKEN"))
	if h := r.Header.Get("X-XSRF-TOKEN"); sent == "" && h != "" {
		if plain, err := a.decrypt(h); err == nil && len(plain) > 41 {
			sent = plain[41:]
		}
	}
	matched := reading || sent != "" && hmac.Equal([]byte(sent), []byte(s.token))
	var rep laravelReply
	if matched {
		rep = a.handle(r, s, route, id)
	} else {
		rep = a.failure(r, 419) // thrown inside the group: StartSession still saves and sets its cookie
	}
	if r.Method == http.MethodGet && r.Header.Get("X-Requested-With") != "XMLHttpRequest" {
		s.previous = laravelRoot(r) + r.URL.RequestURI()
	}
	a.save(s)
	if matched { // the XSRF cookie is added as the response passes back through ValidateCsrfToken
		a.setCookie(w, "XSRF-TOKEN", s.token, false)
	}
	a.setCookie(w, "laravel_session", s.id, true)
	rep.write(w)
}

// laravelRoot is url('/'): the app trusts the proxy in front of it
// (TrustProxies with at: '*', as apps behind a load balancer are set up),
// so a forwarded host is the one its absolute URLs name.
func laravelRoot(r *http.Request) string {
	return "http://" + cmp.Or(r.Header.Get("X-Forwarded-Host"), r.Host)
}

// handle runs the route's middleware (guest, auth) and its controller.
func (a *Laravel) handle(r *http.Request, s *laravelSession, route, id string) laravelReply {
	root := laravelRoot(r)
	back := cmp.Or(r.Referer(), s.previous, root+"/") // url()->previous()
	guest := route == "login" || route == "login.store"
	switch {
	case guest && s.user != "":
		return laravelRedirect(root + "/dashboard")
	case !guest && route != "welcome" && s.user == "":
		if laravelWantsJSON(r) {
			return a.failure(r, http.StatusUnauthorized)
		}
		s.intended = back
		if r.Method == http.MethodGet {
			s.intended = root + r.URL.RequestURI()
		}
		a.Counts.Add("login redirects", 1)
		return laravelRedirect(root + "/login")
	}
	var p *laravelProject
	n, _ := strconv.Atoi(id)
	self := fmt.Sprintf("%s/projects/%d", root, n)
	if id != "" {
		if p = a.projects[n]; p == nil {
			return a.failure(r, http.StatusNotFound) // route model binding
		}
		if p.owner != s.user {
			return a.failure(r, http.StatusForbidden) // the policy
		}
	}
	name := strings.TrimSpace(r.PostFormValue("name"))
	if (route == "projects.store" || route == "projects.update") && (name == "" || len(name) > 255) {
		a.Counts.Add("invalid", 1)
		s.put("errors.name", "The name field is required.")
		s.put("old.name", name)
		return laravelRedirect(back)
	}
	e, form := html.EscapeString, s.form
	switch route {
	case "welcome":
		return a.page(r, s, route, "Laravel", `<h1 class="font-semibold">Laravel</h1><p>Ship things.</p>`)
	case "login":
		return a.page(r, s, route, "Log in", form("login-form", root+"/login", "POST", fmt.Sprintf(`
<label for="email">Email</label><input id="email" type="email" name="email" value="%s" required autofocus autocomplete="username">%s
<label for="password">Password</label><input id="password" type="password" name="password" required autocomplete="current-password">
<label for="remember_me"><input id="remember_me" type="checkbox" name="remember"> Remember me</label><button type="submit">Log in</button>`,
			e(s.flash["old.email"]), s.errors("email"))))
	case "login.store":
		email := r.PostFormValue("email")
		user, ok := strings.CutSuffix(email, "@example.test")
		if !ok || user == "" || strings.Contains(user, "@") || r.PostFormValue("password") != "pw-"+user {
			a.Counts.Add("login refused", 1)
			s.put("errors.email", "These credentials do not match our records.")
			s.put("old.email", email)
			return laravelRedirect(back)
		}
		a.migrate(s, true) // SessionGuard::updateSession
		s.user = user
		a.migrate(s, false) // Breeze: $request->session()->regenerate()
		s.token = laravelRandom(40)
		to := cmp.Or(s.intended, root+"/dashboard")
		s.intended = ""
		a.users[user] = true
		a.Counts.Add("sessions", 1)
		return laravelRedirect(to)
	case "logout":
		*s = laravelSession{id: s.id} // invalidate(): flush, a new id, the old file gone
		a.migrate(s, true)
		s.token = laravelRandom(40) // regenerateToken()
		a.Counts.Add("logouts", 1)
		return laravelRedirect(root + "/")
	case "dashboard":
		return a.page(r, s, route, "Dashboard", `<h2 class="font-semibold text-xl">Dashboard</h2><div class="p-6">You're logged in!</div><div id="notifications"></div>`)
	case "notifications":
		a.Counts.Add("notifications", 1)
		j, _ := json.Marshal([]map[string]any{{"id": 1, "type": `App\Notifications\Welcome`, "data": map[string]string{"message": "Welcome back, " + s.user}, "read_at": nil}})
		return laravelReply{http.StatusOK, "application/json", string(j), ""}
	case "projects.index":
		var b strings.Builder
		for _, k := range slices.Sorted(maps.Keys(a.projects)) {
			if a.projects[k].owner == s.user {
				fmt.Fprintf(&b, `<li><a href="%s/projects/%d">%s</a></li>`, root, k, e(a.projects[k].name))
			}
		}
		return a.page(r, s, route, "Projects", fmt.Sprintf(`<h2 class="font-semibold text-xl">Projects</h2>
<a id="new-project" href="%s/projects/create">New project</a><ul id="projects">%s</ul>`, root, b.String()))
	case "projects.create":
		return a.page(r, s, route, "New project", form("create-form", root+"/projects", "POST", fmt.Sprintf(`
<label for="name">Name</label><input id="name" name="name" value="%s" required>%s<button type="submit">Create</button>`, e(s.flash["old.name"]), s.errors("name"))))
	case "projects.store":
		a.next++
		a.projects[a.next] = &laravelProject{owner: s.user, name: name}
		a.Counts.Add("projects created", 1)
		s.put("status", "Project created")
		return laravelRedirect(fmt.Sprintf("%s/projects/%d", root, a.next))
	case "projects.show": // a page with two forms, as Breeze's profile page
		return a.page(r, s, route, p.name, fmt.Sprintf(`<h2 class="font-semibold text-xl">%s</h2><a id="edit-link" href="%s/edit">Edit</a>
%s
%s`, e(p.name), self, form("update-form", self, "PUT", `<input id="rename" name="name" value="`+e(p.name)+`" required><button type="submit">Rename</button>`),
			form("delete-form", self, "DELETE", `<button type="submit" class="bg-red-600">Delete project</button>`)))
	case "projects.edit":
		return a.page(r, s, route, "Edit "+p.name, form("update-form", self, "PUT", fmt.Sprintf(`
<label for="name">Name</label><input id="name" name="name" value="%s" required>%s<button type="submit">Save</button>`, e(cmp.Or(s.flash["old.name"], p.name)), s.errors("name"))))
	case "projects.update":
		p.name = name
		a.Counts.Add("projects updated", 1)
		s.put("status", "Project updated")
		return laravelRedirect(self)
	case "projects.destroy":
		delete(a.projects, n)
		a.Counts.Add("projects deleted", 1)
		s.put("status", "Project deleted")
		return laravelRedirect(root + "/projects")
	}
	return a.failure(r, http.StatusNotFound)
}

// form is a Blade form with @csrf, and @method unless method is POST.
func (s *laravelSession) form(id, action, method, inner string) string {
	spoof := ""
	if method != http.MethodPost {
		spoof = `<input type="hidden" name="_method" value="` + method + `">`
	}
	return fmt.Sprintf(`<form id="%s" method="POST" action="%s"><input type="hidden" name="_token" value="%s" autocomplete="off">%s%s</form>`,
		id, action, s.token, spoof, inner)
}

// errors is <x-input-error>: the flashed validation error of field.
func (s *laravelSession) errors(field string) string {
	if m := s.flash["errors."+field]; m != "" {
		return `<ul class="text-sm text-red-600 space-y-1 mt-2"><li>` + html.EscapeString(m) + `</li></ul>`
	}
	return ""
}

// page is layouts/app.blade.php (guest.blade.php for guests) around body:
// the CSRF meta tag, @vite's tags with absolute URLs, the logo, the flash
// status, the logout form, and the script that walks a visit.
func (a *Laravel) page(r *http.Request, s *laravelSession, name, title, body string) laravelReply {
	root := laravelRoot(r)
	nav := ""
	if s.user != "" {
		nav = fmt.Sprintf(`<nav class="bg-white border-b border-gray-100"><a id="nav-dashboard" href="%[1]s/dashboard">Dashboard</a>
<a id="nav-projects" href="%[1]s/projects">Projects</a> <span class="font-semibold">%[2]s</span>
%[3]s</nav>`, root, html.EscapeString(s.user), s.form("logout-form", root+"/logout", "POST",
			`<a href="`+root+`/logout" onclick="event.preventDefault(); this.closest('form').submit();">Log Out</a>`))
	}
	if st := s.flash["status"]; st != "" {
		nav += `<div id="status" class="font-medium text-sm text-green-600">` + html.EscapeString(st) + `</div>`
	}
	css, js := root+"/build/assets/"+a.css, root+"/build/assets/"+a.js
	return laravelReply{http.StatusOK, "text/html; charset=UTF-8", fmt.Sprintf(`<!DOCTYPE html>
<html lang="en">
    <head>
        <meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><meta name="csrf-token" content="%s">
        <title>%s - Laravel</title><link rel="icon" href="/favicon.ico">
        <link rel="preload" as="style" href="%[3]s" /><link rel="modulepreload" href="%[4]s" /><link rel="stylesheet" href="%[3]s" /><script type="module" src="%[4]s"></script>
    </head>
    <body class="font-sans antialiased" data-page="%[5]s">
        <div class="min-h-screen bg-gray-100"><a href="%[6]s/"><img src="%[6]s/images/logo.svg" alt="Laravel" class="w-20 h-20"></a>
%[7]s<main>%[8]s</main><div id="root"></div></div>
        <script>%[9]s</script>
    </body>
</html>
`, s.token, html.EscapeString(title), css, js, name, root, nav, body, laravelFlow), ""}
}

// laravelCSS is the Tailwind build: the fonts are fetched when text uses
// them, the background when the body is drawn.
const laravelCSS = `@font-face{font-family:Figtree;font-style:normal;font-weight:400;font-display:swap;src:url(/build/assets/figtree-400.woff2) format("woff2")}
@font-face{font-family:Figtree;font-style:normal;font-weight:600;font-display:swap;src:url(/build/assets/figtree-600.woff2) format("woff2")}
*,:after,:before{box-sizing:border-box;border:0 solid #e5e7eb}
body{margin:0;line-height:inherit;background-image:url(/images/bg.png)}
.font-sans{font-family:Figtree,ui-sans-serif,system-ui,sans-serif}.font-semibold,h1,h2{font-weight:600}
.min-h-screen{min-height:100vh}.bg-gray-100{background-color:rgb(243 244 246/.8)}.w-20{width:5rem}.h-20{height:5rem}
.text-green-600{color:rgb(22 163 74)}.text-red-600{color:rgb(220 38 38)}.bg-red-600{background-color:rgb(220 38 38)}
`

// laravelJS is resources/js/app.js as Vite bundles it: on the dashboard it
// asks for notifications as axios would, the XSRF-TOKEN cookie sent back
// in X-XSRF-TOKEN; the page's script waits for window.notifications.
const laravelJS = `const xsrf = () => decodeURIComponent((document.cookie.match(/(?:^|; )XSRF-TOKEN=([^;]*)/) || [])[1] || "");
if (document.body.dataset.page === "dashboard") {
  window.notifications = fetch("/api/notifications", {headers: {"X-XSRF-TOKEN": xsrf(), "X-Requested-With": "XMLHttpRequest", Accept: "application/json"}})
    .then(r => r.ok ? r.json() : Promise.reject(new Error("notifications: " + r.status)))
    .then(list => { document.getElementById("notifications").textContent = list.length + " notification(s)"; });
}
`

const laravelLogo = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 62 65" fill="none"><path d="M61.8548 14.6253L31 1 0.1 14.6 0.1 50.4 31 64 61.9 50.4Z" fill="#FF2D20"/></svg>`

// laravelFlow walks a visit: GET /login?u=NAME starts it, and each page
// acts only when it is the step sessionStorage expects, once it and its
// sub-resources have loaded and after a think of 20–80 ms.
const laravelFlow = `(async () => {
  const root = document.getElementById("root"), page = document.body.dataset.page;
  const u = new URLSearchParams(location.search).get("u");
  if (page === "login" && u && !sessionStorage.getItem("step")) sessionStorage.setItem("step", "login"), sessionStorage.setItem("user", u);
  const step = sessionStorage.getItem("step"), user = sessionStorage.getItem("user");
  const $ = sel => document.querySelector(sel) || (() => { throw new Error(page + " has no " + sel); })();
  const flash = text => { const t = $("#status").textContent.trim(); if (t !== text) throw new Error(page + " says " + JSON.stringify(t)); };
  const steps = { // step: [check or fill the page, the next step, the link or form]
    "login": [() => { $("#email").value = user + "@example.test"; $("#password").value = "pw-" + user; }, "dashboard", "#login-form"],
    "dashboard": [() => window.notifications || Promise.reject(new Error("app.js asked for no notifications")), "projects.index:new", "#nav-projects"],
    "projects.index:new": [() => {}, "projects.create", "#new-project"],
    "projects.create": [() => { $("#name").value = "Project of " + user; }, "projects.show:created", "#create-form"],
    "projects.show:created": [() => flash("Project created"), "projects.edit", "#edit-link"],
    "projects.edit": [() => { $("#name").value = "Project of " + user + " (renamed)"; }, "projects.show:updated", "#update-form"],
    "projects.show:updated": [() => flash("Project updated"), "projects.index:deleted", "#delete-form"],
    "projects.index:deleted": [() => flash("Project deleted"), "welcome", "#logout-form"],
  };
  if (!step) return;
  try {
    if (step.split(":")[0] !== page) throw new Error("on " + page + " (" + location.pathname + ") at step " + step);
    await new Promise(ok => document.readyState === "complete" ? ok() : addEventListener("load", ok));
    if (step === "welcome") return sessionStorage.clear(), root.textContent = "done";
    await new Promise(ok => setTimeout(ok, 20 + Math.random() * 60));
    const [act, next, target] = steps[step];
    await act();
    sessionStorage.setItem("step", next);
    const e = $(target);
    e.tagName === "FORM" ? e.requestSubmit() : e.click();
  } catch (e) {
    sessionStorage.clear();
    root.textContent = "error: " + e.message;
  }
})();`

// LaravelClient is a browser using a Laravel, with net/http: the visit the
// pages' own script makes in Chromium (log in, read notifications as the
// dashboard's script does, create a project, edit it, delete it, log out),
// each form posted with the _token it carries, each page's sub-resources
// fetched as a browser's cache would (the immutable build once, the rest
// revalidated). It fails tb on any status a browser would not expect.
func LaravelClient(tb testing.TB, base, user string) {
	tb.Helper()
	u := newLaravelUser(tb, base)
	defer u.tr.CloseIdleConnections()
	u.visit(user)
}

// laravelUser is one browser profile: its cookies, cache and connections,
// and the page on screen.
type laravelUser struct {
	tb     testing.TB
	c      *http.Client
	tr     *http.Transport
	base   *url.URL
	at     string              // the URL of the page on screen
	page   []byte              // and its HTML
	fresh  map[string]bool     // immutable files in the cache
	etags  map[string]string   // validators of the others
	refs   map[string][]string // url()s of each style sheet
	issued []string            // every laravel_session value answered, in order
}

func newLaravelUser(tb testing.TB, base string) *laravelUser {
	jar, _ := cookiejar.New(nil)
	u := &laravelUser{tb: tb, tr: &http.Transport{}, fresh: map[string]bool{}, etags: map[string]string{}, refs: map[string][]string{}}
	// Redirects are followed by hand, as a browser does, so that every
	// answer is seen.
	u.c = &http.Client{Jar: jar, Transport: u.tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var err error
	if u.base, err = url.Parse(base); err != nil {
		tb.Fatal(err)
	}
	return u
}

func (u *laravelUser) abs(ref string) string {
	v, err := u.base.Parse(ref)
	if err != nil {
		u.tb.Fatalf("%q: %v", ref, err)
	}
	return v.String()
}

// do sends a request with the headers whose values are not empty.
func (u *laravelUser) do(method, target, body string, headers ...string) Answer {
	u.tb.Helper()
	var h []string
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] != "" {
			h = append(h, headers[i], headers[i+1])
		}
	}
	a := Do(u.tb, u.c, method, u.abs(target), body, h...)
	for _, c := range (&http.Response{Header: a.Header}).Cookies() {
		if c.Name == "laravel_session" {
			u.issued = append(u.issued, c.Value)
		}
	}
	return a
}

// cookie returns the value of the cookie name as document.cookie gives it,
// decoded as decodeURIComponent does.
func (u *laravelUser) cookie(name string) string {
	for _, c := range u.c.Jar.Cookies(u.base) {
		if c.Name == name {
			v, _ := url.QueryUnescape(c.Value)
			return v
		}
	}
	return ""
}

// token is the _token of the page's first form.
func (u *laravelUser) token() string {
	u.tb.Helper()
	m := regexp.MustCompile(`name="_token" value="([^"]+)"`).FindSubmatch(u.page)
	if m == nil {
		u.tb.Fatalf("no _token on %s", u.at)
	}
	return string(m[1])
}

// open goes to target as a link does: it follows redirects to a 200 page
// and loads what the page links.
func (u *laravelUser) open(target string) Answer {
	u.tb.Helper()
	for range 5 {
		a := u.do(http.MethodGet, target, "", "Referer", u.at)
		if a.Status == http.StatusFound {
			target = a.Header.Get("Location")
			continue
		}
		if a.Status != http.StatusOK {
			u.tb.Fatalf("GET %s: %d %.300s", target, a.Status, a.Body)
		}
		u.at, u.page = u.abs(target), a.Body
		u.assets()
		return a
	}
	u.tb.Fatalf("GET %s: too many redirects", target)
	return Answer{}
}

// submit posts fields and the page's _token to action as a form does,
// wants a 302 to a path matching want, and follows it.
func (u *laravelUser) submit(action string, fields url.Values, want string) Answer {
	u.tb.Helper()
	fields.Set("_token", u.token())
	a := u.do(http.MethodPost, action, fields.Encode(), "Content-Type", "application/x-www-form-urlencoded", "Referer", u.at)
	loc, _ := url.Parse(a.Header.Get("Location"))
	if a.Status != http.StatusFound || loc == nil || !regexp.MustCompile(`^(?:`+want+`)$`).MatchString(loc.Path) {
		u.tb.Fatalf("POST %s %s: %d to %q, want a 302 to %s", action, fields.Get("_method"), a.Status, a.Header.Get("Location"), want)
	}
	return u.open(loc.String())
}

// assets loads the page's style sheets and what they use, scripts, images
// and icon, once each: the immutable build from the cache, the rest
// revalidated with the ETag they came with.
func (u *laravelUser) assets() {
	u.tb.Helper()
	seen := map[string]bool{}
	var load func(ref string)
	load = func(ref string) {
		if seen[ref] {
			return
		}
		seen[ref] = true
		if !u.fresh[ref] {
			a := u.do(http.MethodGet, ref, "", "If-None-Match", u.etags[ref], "Referer", u.at)
			if a.Status != http.StatusOK && a.Status != http.StatusNotModified {
				u.tb.Fatalf("GET %s: %d", ref, a.Status)
			}
			if a.Status == http.StatusOK && strings.HasPrefix(a.Header.Get("Content-Type"), "text/css") {
				u.refs[ref] = nil
				for _, m := range regexp.MustCompile(`url\(["']?([^)"']+)["']?\)`).FindAllSubmatch(a.Body, -1) {
					u.refs[ref] = append(u.refs[ref], u.abs(string(m[1])))
				}
			}
			u.fresh[ref], u.etags[ref] = strings.Contains(a.Header.Get("Cache-Control"), "immutable"), a.Header.Get("ETag")
		}
		for _, r := range u.refs[ref] {
			load(r)
		}
	}
	for _, m := range regexp.MustCompile(`<(?:link|script|img)\b[^>]*?\b(?:href|src)="([^"]+)"`).FindAllSubmatch(u.page, -1) {
		load(u.abs(string(m[1])))
	}
}

func (u *laravelUser) flash(want string) {
	u.tb.Helper()
	if !bytes.Contains(u.page, []byte(`<div id="status" class="font-medium text-sm text-green-600">`+want+`</div>`)) {
		u.tb.Fatalf("%s does not say %q", u.at, want)
	}
}

func (u *laravelUser) login(user string) {
	u.tb.Helper()
	u.open("/login?u=" + url.QueryEscape(user))
	u.submit("/login", url.Values{"email": {user + "@example.test"}, "password": {"pw-" + user}}, "/dashboard")
}

// create creates a project from the form and returns its page's path.
func (u *laravelUser) create(name string) string {
	u.tb.Helper()
	u.open("/projects")
	u.open("/projects/create")
	u.submit("/projects", url.Values{"name": {name}}, `/projects/\d+`)
	u.flash("Project created")
	p, _ := url.Parse(u.at)
	return p.Path
}

func (u *laravelUser) visit(user string) {
	u.tb.Helper()
	u.login(user)
	// The dashboard's script, as axios does it: the XSRF-TOKEN cookie in
	// X-XSRF-TOKEN.
	a := u.do(http.MethodGet, "/api/notifications", "", "X-XSRF-TOKEN", u.cookie("XSRF-TOKEN"), "X-Requested-With", "XMLHttpRequest",
		"Accept", "application/json", "Referer", u.at)
	if a.Status != http.StatusOK {
		u.tb.Fatalf("notifications: %d %s", a.Status, a.Body)
	}
	show := u.create("Project of " + user)
	u.open(show + "/edit")
	u.submit(show, url.Values{"_method": {"PUT"}, "name": {"Project of " + user + " (renamed)"}}, show)
	u.flash("Project updated")
	u.submit(show, url.Values{"_method": {"DELETE"}}, "/projects")
	u.flash("Project deleted")
	u.submit("/logout", url.Values{}, "/")
}

// laravelPNG is a 1×1 background.
const laravelPNG = "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\b\x02\x00\x00\x00\x90wS\xde\x00\x00\x00\x10IDATx\x9cb\xfa\xfc\xe5\x1b \x00\x00\xff\xff\x05\xc3\x02\xe0\xf6\xd7\xd4H\x00\x00\x00\x00IEND\xaeB`\x82"
