package apptest

import (
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Rails is a backend in the style of Ruby on Rails: a session cookie of
// the app's own name (_shop_session, HttpOnly) whose value changes
// whenever the session does (a cookie store: at login and with each flash
// message), an authenticity token in a meta tag for scripts and in a hidden
// form field for forms, and a POST that creates a record answered by a
// 302 to its page, /projects/17, with a small integer id. Passwords are
// "pw-" + the user name. Counts: "sessions" (logins), "422" (a bad
// authenticity token), "403" (not logged in), "404" (a project of another
// user), "creates", "views".
type Rails struct {
	URL    string
	Counts Counts

	mu      sync.Mutex
	store   map[string]*railsSession // cookie value → session; every value it ever had
	owner   map[int]*railsSession
	next    int
	version int
}

type railsSession struct {
	user, csrf string
}

// NewRails starts a Rails on loopback until the test ends.
func NewRails(tb testing.TB) *Rails {
	a := &Rails{store: map[string]*railsSession{}, owner: map[int]*railsSession{}, next: 10}
	srv := httptest.NewServer(a)
	tb.Cleanup(srv.Close)
	a.URL = srv.URL
	return a
}

// save gives s a new cookie value, as a cookie store does when the
// session changes. Callers hold mu.
func (a *Rails) save(w http.ResponseWriter, s *railsSession) {
	a.version++
	v := token(12) + "--" + strconv.Itoa(a.version)
	a.store[v] = s
	http.SetCookie(w, &http.Cookie{Name: "_shop_session", Value: v, Path: "/", HttpOnly: true})
}

func (a *Rails) page(w http.ResponseWriter, s *railsSession, body string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprintf(w, `<!DOCTYPE html><html><head><meta name="csrf-param" content="authenticity_token" />
<meta name="csrf-token" content="%s" /></head><body>%s</body></html>`, s.csrf, body)
}

func (a *Rails) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var s *railsSession
	if c, err := r.Cookie("_shop_session"); err == nil {
		s = a.store[c.Value]
	}
	if s == nil {
		s = &railsSession{csrf: token(24)}
		a.save(w, s)
	}
	if r.Method == http.MethodPost {
		sent := r.Header.Get("X-CSRF-Token")
		if sent == "" {
			sent = r.PostFormValue("authenticity_token")
		}
		if sent != s.csrf {
			a.Counts.Add("422", 1)
			http.Error(w, "ActionController::InvalidAuthenticityToken", http.StatusUnprocessableEntity)
			return
		}
	}
	switch {
	case r.URL.Path == "/login" && r.Method == http.MethodGet:
		a.page(w, s, fmt.Sprintf(`<form action="/login" method="post"><input type="hidden" name="authenticity_token" value="%s" autocomplete="off" /><input name="user[name]"><input type="password" name="user[password]"></form>`, s.csrf))
	case r.URL.Path == "/login":
		name := r.PostFormValue("user[name]")
		if name == "" || r.PostFormValue("user[password]") != "pw-"+name {
			a.Counts.Add("401", 1)
			http.Error(w, "bad login", http.StatusUnauthorized)
			return
		}
		s.user = name
		a.Counts.Add("sessions", 1)
		a.save(w, s)
		http.Redirect(w, r, "/projects/new", http.StatusFound)
	case s.user == "":
		a.Counts.Add("403", 1)
		http.Error(w, "log in first", http.StatusForbidden)
	case r.URL.Path == "/projects/new":
		a.page(w, s, fmt.Sprintf(`<form action="/projects" method="post"><input type="hidden" name="authenticity_token" value="%s" /><input name="project[name]"></form>`, s.csrf))
	case r.URL.Path == "/projects" && r.Method == http.MethodPost:
		a.next++
		a.owner[a.next] = s
		a.Counts.Add("creates", 1)
		a.save(w, s) // the flash "Project was created."
		http.Redirect(w, r, fmt.Sprintf("/projects/%d", a.next), http.StatusFound)
	case strings.HasPrefix(r.URL.Path, "/projects/"):
		id, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/projects/"))
		if a.owner[id] != s {
			a.Counts.Add("404", 1)
			a.Counts.Add("404 "+r.URL.Path, 1)
			http.NotFound(w, r)
			return
		}
		a.Counts.Add("views", 1)
		a.page(w, s, fmt.Sprintf(`<h1>Project %d</h1>`, id))
	default:
		a.Counts.Add("404", 1)
		http.NotFound(w, r)
	}
}

// RailsClient is a browser using a Rails app: it opens the login form,
// logs in with the form's token, creates a project with the next form's
// token (following the 302 to its page) and opens the project again.
func RailsClient(tb testing.TB, base, user string) {
	tb.Helper()
	jar, _ := cookiejar.New(nil)
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	c := &http.Client{Jar: jar, Transport: tr}
	hidden := regexp.MustCompile(`name="authenticity_token" value="([^"]+)"`)
	form := func(body []byte) string {
		m := hidden.FindSubmatch(body)
		if m == nil {
			tb.Fatalf("no authenticity token in %s", body)
		}
		return string(m[1])
	}
	a := Do(tb, c, http.MethodGet, base+"/login", "")
	v := url.Values{"authenticity_token": {form(a.Body)}, "user[name]": {user}, "user[password]": {"pw-" + user}}
	a = Do(tb, c, http.MethodPost, base+"/login", v.Encode(), "Content-Type", "application/x-www-form-urlencoded")
	v = url.Values{"authenticity_token": {form(a.Body)}, "project[name]": {"shop of " + user}}
	a = Do(tb, c, http.MethodPost, base+"/projects", v.Encode(), "Content-Type", "application/x-www-form-urlencoded")
	if a.Status != http.StatusOK || !strings.Contains(string(a.Body), "Project") {
		tb.Fatalf("create: %d %s", a.Status, a.Body)
	}
	m := regexp.MustCompile(`Project (\d+)`).FindSubmatch(a.Body)
	Do(tb, c, http.MethodGet, base+"/projects/"+string(m[1]), "")
}
