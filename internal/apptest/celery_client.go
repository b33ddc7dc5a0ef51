package apptest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html"
	mrand "math/rand/v2"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/textproto"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// celeryAgent is one browser's worth of cookies for CeleryImports, with
// no redirect followed by itself.
type celeryAgent struct {
	tb   testing.TB
	base string
	c    *http.Client
	jar  *cookiejar.Jar
}

var (
	celeryTokenRE = regexp.MustCompile(`name="csrfmiddlewaretoken" value="([A-Za-z0-9]{64})"`)
	celeryNextRE  = regexp.MustCompile(`name="next" value="([^"]*)"`)
)

func newCeleryAgent(tb testing.TB, base string) *celeryAgent {
	jar, _ := cookiejar.New(nil)
	return &celeryAgent{tb: tb, base: base, jar: jar, c: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// do sends a request as a browser would: unsafe methods with an Origin.
func (g *celeryAgent) do(method, path, body string, headers ...string) Answer {
	g.tb.Helper()
	if method != http.MethodGet && method != http.MethodHead {
		headers = append([]string{"Origin", g.base}, headers...)
	}
	return Do(g.tb, g.c, method, g.base+path, body, headers...)
}

// want fails unless ans has the status.
func (g *celeryAgent) want(ans Answer, status int, what string) {
	g.tb.Helper()
	if ans.Status != status {
		g.tb.Fatalf("%s: %d, want %d: %s", what, ans.Status, status, ans.Body)
	}
}

func (g *celeryAgent) cookie(name string) string {
	u, _ := url.Parse(g.base)
	for _, c := range g.jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

func (g *celeryAgent) api(method, path, body string, status int, out any, headers ...string) Answer {
	g.tb.Helper()
	ans := g.do(method, path, body, append([]string{"Accept", "application/json"}, headers...)...)
	g.want(ans, status, method+" "+path)
	if ct := ans.Header.Get("Content-Type"); ct != "application/json" {
		g.tb.Fatalf("%s %s: Content-Type %q", method, path, ct)
	}
	if out != nil {
		if err := json.Unmarshal(ans.Body, out); err != nil {
			g.tb.Fatalf("%s %s: %v: %s", method, path, err, ans.Body)
		}
	}
	return ans
}

// login goes from the start URL through the login form back to the
// imports page, and returns that page.
func (g *celeryAgent) login(user string) string {
	g.tb.Helper()
	start := "/imports/?u=" + url.QueryEscape(user)
	ans := g.do(http.MethodGet, start, "")
	g.want(ans, http.StatusFound, "GET "+start)
	loginURL := "/accounts/login/?next=" + celeryQuote(start)
	if loc := ans.Header.Get("Location"); loc != loginURL {
		g.tb.Fatalf("GET %s: Location %q, want %q", start, loc, loginURL)
	}
	ans = g.do(http.MethodGet, loginURL, "")
	g.want(ans, http.StatusOK, "GET "+loginURL)
	tok, next := celeryTokenRE.FindSubmatch(ans.Body), celeryNextRE.FindSubmatch(ans.Body)
	if tok == nil || next == nil || g.cookie("csrftoken") == "" {
		g.tb.Fatalf("GET %s: no csrfmiddlewaretoken, next or csrftoken cookie: %s", loginURL, ans.Body)
	}
	before := g.cookie("csrftoken")
	form := url.Values{"csrfmiddlewaretoken": {string(tok[1])}, "username": {user}, "password": {"pw-" + user},
		"next": {html.UnescapeString(string(next[1]))}}
	ans = g.do(http.MethodPost, "/accounts/login/", form.Encode(), "Content-Type", "application/x-www-form-urlencoded")
	g.want(ans, http.StatusFound, "POST /accounts/login/")
	if loc := ans.Header.Get("Location"); loc != start {
		g.tb.Fatalf("POST /accounts/login/: Location %q, want %q", loc, start)
	}
	if g.cookie("sessionid") == "" || g.cookie("csrftoken") == before {
		g.tb.Fatalf("POST /accounts/login/: no new sessionid or csrftoken: %q", ans.Header.Values("Set-Cookie"))
	}
	ans = g.do(http.MethodGet, start, "")
	g.want(ans, http.StatusOK, "GET "+start)
	if !bytes.Contains(ans.Body, []byte(`data-user="`+html.EscapeString(user)+`"`)) {
		g.tb.Fatalf("GET %s: not %s's page: %s", start, user, ans.Body)
	}
	return string(ans.Body)
}

// upload posts csv as a file the way FormData does, with X-CSRFToken
// from the cookie.
func (g *celeryAgent) upload(csv, name string, status int, out any) Answer {
	g.tb.Helper()
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="file"; filename=%q`, name))
	h.Set("Content-Type", "text/csv")
	p, _ := w.CreatePart(h)
	_, _ = p.Write([]byte(csv))
	_ = w.Close()
	return g.api(http.MethodPost, "/api/imports/", b.String(), status, out,
		"Content-Type", w.FormDataContentType(), "X-CSRFToken", g.cookie("csrftoken"))
}

// wait polls a task every 250 ms until SUCCESS, however long it takes
// (within a minute), and returns the SUCCESS answer and the number of
// polls.
func (g *celeryAgent) wait(statusURL string) (celeryPoll, int) {
	g.tb.Helper()
	deadline := time.Now().Add(time.Minute)
	for n := 1; ; n++ {
		var st celeryPoll
		g.api(http.MethodGet, statusURL, "", http.StatusOK, &st)
		switch st.State {
		case "SUCCESS":
			if st.Result == nil {
				g.tb.Fatalf("GET %s: SUCCESS without a result", statusURL)
			}
			return st, n
		case "PENDING", "STARTED", "PROGRESS":
		default:
			g.tb.Fatalf("GET %s: state %s, info %v", statusURL, st.State, st.Info)
		}
		if time.Now().After(deadline) {
			g.tb.Fatalf("GET %s: still %s after a minute", statusURL, st.State)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// logout posts the imports page's logout form.
func (g *celeryAgent) logout(page string) {
	g.tb.Helper()
	tok := celeryTokenRE.FindStringSubmatch(page)
	if tok == nil {
		g.tb.Fatalf("no logout form's csrfmiddlewaretoken in %s", page)
	}
	ans := g.do(http.MethodPost, "/accounts/logout/", url.Values{"csrfmiddlewaretoken": {tok[1]}}.Encode(),
		"Content-Type", "application/x-www-form-urlencoded")
	g.want(ans, http.StatusOK, "POST /accounts/logout/")
	if !bytes.Contains(ans.Body, []byte("<h1>Logged out</h1>")) || g.cookie("sessionid") != "" {
		g.tb.Fatalf("POST /accounts/logout/: not logged out: %q %s", ans.Header.Values("Set-Cookie"), ans.Body)
	}
}

// celeryMakeCSV makes a few rows of contacts, as the page script does.
func celeryMakeCSV() (string, []celeryRow) {
	first := []string{"Ann", "Ben", "Cleo", "Dev", "Eve", "Finn", "Gia", "Hugo"}
	last := []string{"Lee", "Kim", "Park", "Shaw", "Diaz", "Moss", "Ito"}
	var b strings.Builder
	b.WriteString("name,email,amount\r\n")
	var rows []celeryRow
	for i := range 3 + mrand.IntN(4) {
		f, l := first[mrand.IntN(len(first))], last[mrand.IntN(len(last))]
		r := celeryRow{Line: i + 1, Name: f + " " + l, Email: fmt.Sprintf("%s.%s%d@example.test", strings.ToLower(f), strings.ToLower(l), mrand.IntN(1000)),
			Amount: fmt.Sprintf("%.2f", mrand.Float64()*500)}
		fmt.Fprintf(&b, "%s,%s,%s\r\n", r.Name, r.Email, r.Amount)
		rows = append(rows, r)
	}
	return b.String(), rows
}

// importOnce posts a CSV, waits for its task and checks its rows; it
// returns the number of polls.
func (g *celeryAgent) importOnce(n int) int {
	g.tb.Helper()
	csv, rows := celeryMakeCSV()
	var acc celeryAccepted
	ans := g.upload(csv, fmt.Sprintf("contacts-%d.csv", n), http.StatusAccepted, &acc)
	if !celeryUUID4RE.MatchString(acc.TaskID) || acc.State != "PENDING" || acc.StatusURL != "/api/imports/tasks/"+acc.TaskID+"/" ||
		ans.Header.Get("Location") != acc.StatusURL {
		g.tb.Fatalf("POST /api/imports/: %+v, Location %q", acc, ans.Header.Get("Location"))
	}
	st, polls := g.wait(acc.StatusURL)
	if st.Result.Rows != len(rows) || st.TaskID != acc.TaskID {
		g.tb.Fatalf("GET %s: %+v, want %d rows", acc.StatusURL, st, len(rows))
	}
	path := fmt.Sprintf("/api/imports/%d/rows/", st.Result.ImportID)
	var page celeryPage
	g.api(http.MethodGet, path, "", http.StatusOK, &page)
	if page.Count != len(rows) || page.Next != nil || page.Previous != nil || len(page.Results) != len(rows) {
		g.tb.Fatalf("GET %s: %+v, want %d rows", path, page, len(rows))
	}
	for i, r := range page.Results {
		if r.ID == 0 || r.Line != rows[i].Line || r.Name != rows[i].Name || r.Email != rows[i].Email || r.Amount != rows[i].Amount {
			g.tb.Fatalf("GET %s: row %d is %+v, posted %+v", path, i+1, r, rows[i])
		}
	}
	return polls
}

var celeryUUID4RE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// CeleryImportsClient does with net/http what the imports page makes a
// browser do as user: GET /imports/?u=user, the login form, two imports
// (each POST /api/imports/, GET of its task every 250 ms until SUCCESS
// however long the task runs, GET of its rows), and the logout form. It
// fails tb on any unexpected answer.
func CeleryImportsClient(tb testing.TB, base, user string) {
	tb.Helper()
	g := newCeleryAgent(tb, base)
	page := g.login(user)
	for n := 1; n <= 2; n++ {
		time.Sleep(100 * time.Millisecond)
		g.importOnce(n)
	}
	g.logout(page)
}
