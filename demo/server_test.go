package demo_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/thrive-loadtest/thrive/demo"
	"github.com/thrive-loadtest/thrive/demo/demotest"
)

// fast makes every delay zero, so tests wait on nothing but the network.
func fast() demo.Option { return demo.WithLatencyScale(0) }

// start runs a demo backend on a loopback port until the test ends.
func start(tb testing.TB, opts ...demo.Option) string { return demotest.Serve(tb, opts...) }

// client is a browser-like client: its own cookie jar and connections.
type client struct {
	t    testing.TB
	base string
	http *http.Client
	jar  *cookiejar.Jar
}

func newClient(t testing.TB, base string) *client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &client{t: t, base: base, jar: jar, http: &http.Client{Jar: jar, Transport: tr, Timeout: 10 * time.Second}}
}

func (c *client) cookie(name string) string {
	u, _ := url.Parse(c.base)
	for _, ck := range c.jar.Cookies(u) {
		if ck.Name == name {
			return ck.Value
		}
	}
	return ""
}

// do sends a request; csrf is the X-CSRFToken header to send ("" for none).
func (c *client) do(method, path, body, csrf string) (int, http.Header, string) {
	c.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if csrf != "" {
		req.Header.Set(demo.CSRFHeader, csrf)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

func (c *client) login(user string) {
	c.t.Helper()
	code, _, body := c.do("POST", "/api/auth/login/", fmt.Sprintf(`{"username":%q,"password":%q}`, user, demo.Password(user)), "")
	if code != 200 {
		c.t.Fatalf("login: %d %s", code, body)
	}
}

func TestLoginSetsCookies(t *testing.T) {
	base := start(t, fast())
	c := newClient(t, base)
	if code, _, _ := c.do("GET", "/api/auth/me/", "", ""); code != 403 {
		t.Fatalf("me before login: %d, want 403", code)
	}
	if code, _, _ := c.do("POST", "/api/auth/login/", `{"username":"ann","password":"wrong"}`, ""); code != 400 {
		t.Fatalf("bad password: %d, want 400", code)
	}
	c.login("ann")
	if c.cookie(demo.SessionCookie) == "" || c.cookie(demo.CSRFCookie) == "" {
		t.Fatal("login set no sessionid or csrftoken cookie")
	}
	code, _, body := c.do("GET", "/api/auth/me/", "", "")
	if code != 200 || !strings.Contains(body, `"username":"ann"`) {
		t.Fatalf("me: %d %s", code, body)
	}
}

func TestUnsafeMethodsNeedSessionAndCSRF(t *testing.T) {
	base := start(t, fast())
	anon := newClient(t, base)
	ann := newClient(t, base)
	ann.login("ann")
	bob := newClient(t, base)
	bob.login("bob")
	const chat = `{"message":"hello there"}`
	for _, tc := range []struct {
		name string
		c    *client
		csrf string
		want int
	}{
		{"no session", anon, "whatever", 403},
		{"no header", ann, "", 403},
		{"wrong token", ann, "0123456789abcdef0123456789abcdef", 403},
		{"another session's token", ann, bob.cookie(demo.CSRFCookie), 403},
		{"own token", ann, ann.cookie(demo.CSRFCookie), 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, body := tc.c.do("POST", "/api/chat/", chat, tc.csrf)
			if code != tc.want {
				t.Fatalf("POST /api/chat/: %d %s, want %d", code, body, tc.want)
			}
		})
	}
	if ann.cookie(demo.SessionCookie) == bob.cookie(demo.SessionCookie) {
		t.Fatal("two logins got the same session")
	}
	// A token must belong to the session, not only match its own cookie: a
	// replay that sends one user's recorded csrftoken with another's session
	// is refused.
	req, _ := http.NewRequestWithContext(context.Background(), "POST", base+"/api/chat/", strings.NewReader(chat))
	req.Header.Set("Cookie", demo.SessionCookie+"="+ann.cookie(demo.SessionCookie)+"; "+demo.CSRFCookie+"="+bob.cookie(demo.CSRFCookie))
	req.Header.Set(demo.CSRFHeader, bob.cookie(demo.CSRFCookie))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Fatalf("another session's csrftoken in cookie and header: %d, want 403", resp.StatusCode)
	}
}

func TestBrowse(t *testing.T) {
	base := start(t, fast())
	c := newClient(t, base)
	for _, tc := range []struct {
		name, path string
		code       int
		contains   string
	}{
		{"first page", "/api/projects/", 200, `"page":1,"page_size":20`},
		{"page 3 of 10", "/api/projects/?page=3&page_size=10", 200, `"id":21,`},
		{"past the end", "/api/projects/?page=26", 404, "Invalid page"},
		{"bad page", "/api/projects/?page=x", 400, "page"},
		{"detail", "/api/projects/7/", 200, `"id":7,`},
		{"detail has readme", "/api/projects/500/", 200, `"readme":`},
		{"no such project", "/api/projects/501/", 404, "Not found"},
		{"tools", "/api/tools/", 200, `"count":40`},
		{"search", "/api/search/?q=agent", 200, `"query":"agent"`},
		{"search needs q", "/api/search/", 400, "q is required"},
		{"unknown path", "/nope", 404, "Not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, h, body := c.do("GET", tc.path, "", "")
			if code != tc.code || !strings.Contains(body, tc.contains) {
				t.Fatalf("GET %s: %d %.200s; want %d containing %q", tc.path, code, body, tc.code, tc.contains)
			}
			if h.Get("Content-Type") != "application/json" {
				t.Fatalf("Content-Type %q", h.Get("Content-Type"))
			}
		})
	}
	var page struct {
		Results []struct {
			ID int `json:"id"`
		} `json:"results"`
	}
	_, _, body := c.do("GET", "/api/projects/?page=2", "", "")
	if err := json.Unmarshal([]byte(body), &page); err != nil || len(page.Results) != 20 || page.Results[0].ID != 21 {
		t.Fatalf("page 2: %v %+v", err, page)
	}
	var found struct {
		Count   int `json:"count"`
		Results []struct {
			Title       string `json:"title"`
			Description string `json:"description"`
		} `json:"results"`
	}
	_, _, body = c.do("GET", "/api/search/?q=Video", "", "")
	if err := json.Unmarshal([]byte(body), &found); err != nil || found.Count == 0 || found.Count != len(found.Results) {
		t.Fatalf("search: %v %.200s", err, body)
	}
	for _, r := range found.Results {
		if !strings.Contains(strings.ToLower(r.Title+" "+r.Description), "video") {
			t.Fatalf("search result %q does not match", r.Title)
		}
	}
}
