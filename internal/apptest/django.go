package apptest

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Django is a backend in Django's style: a csrftoken cookie that forms echo
// in csrfmiddlewaretoken and scripts in X-CSRFToken, a sessionid cookie set
// by the login, imports that create projects with small auto-increment
// integer ids (201, 202, ...) in a JSON answer, projects only
// their owner may read, and a favicon that is missing. Passwords are
// "pw-" + the user name. Counts: "sessions" (logins), "403", "404" (but
// the favicon), "404 favicon", "imports", "project reads".
type Django struct {
	URL    string
	Counts Counts
	// IDField names the JSON field an import's answer gives the new
	// project's id in: project_id unless set.
	IDField string

	mu       sync.Mutex
	sessions map[string]string // sessionid → user
	owner    map[int]string    // project id → sessionid
	next     int
}

// NewDjango starts a Django on loopback until the test ends.
func NewDjango(tb testing.TB) *Django {
	d := &Django{sessions: map[string]string{}, owner: map[int]string{}, next: 200}
	srv := httptest.NewServer(d)
	tb.Cleanup(srv.Close)
	d.URL = srv.URL
	return d
}

func token(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (d *Django) fail(w http.ResponseWriter, status int, what string) {
	if status == http.StatusNotFound && what == "favicon" {
		d.Counts.Add("404 favicon", 1)
	} else {
		d.Counts.Add(strconv.Itoa(status), 1)
		d.Counts.Add(fmt.Sprintf("%d %s", status, what), 1)
	}
	http.Error(w, what, status)
}

func (d *Django) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/favicon.ico" {
		d.fail(w, http.StatusNotFound, "favicon")
		return
	}
	csrf, _ := r.Cookie("csrftoken")
	if r.Method == http.MethodPost {
		sent := r.Header.Get("X-CSRFToken")
		if sent == "" {
			sent = r.PostFormValue("csrfmiddlewaretoken")
		}
		if csrf == nil || sent != csrf.Value {
			d.fail(w, http.StatusForbidden, "csrf")
			return
		}
	}
	if r.URL.Path == "/" || r.URL.Path == "/accounts/login/" && r.Method == http.MethodGet {
		if csrf == nil {
			http.SetCookie(w, &http.Cookie{Name: "csrftoken", Value: token(16), Path: "/"})
		}
		fmt.Fprint(w, `<html><body><form method="post" action="/accounts/login/">…</form></body></html>`)
		return
	}
	if r.URL.Path == "/accounts/login/" {
		user := r.PostFormValue("username")
		if user == "" || r.PostFormValue("password") != "pw-"+user {
			d.fail(w, http.StatusBadRequest, "login")
			return
		}
		sid := token(16)
		d.mu.Lock()
		d.sessions[sid] = user
		d.mu.Unlock()
		d.Counts.Add("sessions", 1)
		http.SetCookie(w, &http.Cookie{Name: "sessionid", Value: sid, Path: "/", HttpOnly: true})
		http.Redirect(w, r, "/projects/", http.StatusFound)
		return
	}
	sid, _ := r.Cookie("sessionid")
	d.mu.Lock()
	defer d.mu.Unlock()
	if sid == nil || d.sessions[sid.Value] == "" {
		d.fail(w, http.StatusForbidden, "anonymous")
		return
	}
	switch {
	case r.URL.Path == "/projects/":
		fmt.Fprint(w, `<html><body>projects</body></html>`)
	case r.URL.Path == "/api/import/" && r.Method == http.MethodPost:
		d.next++
		id := d.next
		d.owner[id] = sid.Value
		d.Counts.Add("imports", 1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		field := cmp.Or(d.IDField, "project_id")
		fmt.Fprintf(w, `{%q: %d, "status": "created", "files": 12}`, field, id)
	case strings.HasPrefix(r.URL.Path, "/api/projects/"):
		id, err := strconv.Atoi(strings.Trim(strings.TrimPrefix(r.URL.Path, "/api/projects/"), "/"))
		if err != nil || d.owner[id] != sid.Value {
			d.fail(w, http.StatusNotFound, "project")
			return
		}
		d.Counts.Add("project reads", 1)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"id": id, "name": "repo", "files": 12})
	default:
		d.fail(w, http.StatusNotFound, r.URL.Path)
	}
}

// DjangoClient is a browser-like user of a Django: it loads the home page
// and its favicon, logs in with a form, imports a project and reads it
// twice.
func DjangoClient(tb testing.TB, base, user string) {
	tb.Helper()
	jar, _ := cookiejar.New(nil)
	tr := &http.Transport{} // connections of its own, as a browser has
	defer tr.CloseIdleConnections()
	c := &http.Client{Jar: jar, Transport: tr}
	get := func(path string) { Do(tb, c, http.MethodGet, base+path, "") }
	get("/")
	get("/favicon.ico")
	u, _ := url.Parse(base)
	var csrf string
	for _, ck := range jar.Cookies(u) {
		if ck.Name == "csrftoken" {
			csrf = ck.Value
		}
	}
	form := url.Values{"username": {user}, "password": {"pw-" + user}, "csrfmiddlewaretoken": {csrf}}.Encode()
	Do(tb, c, http.MethodPost, base+"/accounts/login/", form, "Content-Type", "application/x-www-form-urlencoded")
	a := Do(tb, c, http.MethodPost, base+"/api/import/", `{"repo":"https://github.com/acme/`+user+`"}`,
		"Content-Type", "application/json", "X-CSRFToken", csrf)
	var created map[string]any
	_ = json.Unmarshal(a.Body, &created)
	var id float64
	for k, v := range created {
		if n, ok := v.(float64); ok && strings.HasPrefix(k, "project") {
			id = n
		}
	}
	if a.Status != http.StatusCreated {
		tb.Fatalf("import: %d", a.Status)
	}
	get(fmt.Sprintf("/api/projects/%.0f/", id))
	get(fmt.Sprintf("/api/projects/%.0f/?fields=name", id))
}
