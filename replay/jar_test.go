package replay

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/thrive-loadtest/thrive/scheduler"
	"github.com/thrive-loadtest/thrive/traces"
)

// TestEachUserHasItsOwnCookies replays a recorded login, an action guarded
// by a CSRF token echoed from its cookie, and a logout, as three users:
// each presents the cookies the live server gave it (never the recorded
// ones), the CSRF header carries the live token, requests wait for the
// login's answer even when recorded pacing says they are due, the logout's
// deletion is honoured, and recorded cache validators are dropped.
func TestEachUserHasItsOwnCookies(t *testing.T) {
	var mu sync.Mutex
	issued := map[string]string{} // sessionid → csrftoken
	seen := map[string]string{}   // "path sessionid" → what happened
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/login" {
			time.Sleep(10 * time.Millisecond) // a login slower than the gap after it
		}
		mu.Lock()
		defer mu.Unlock()
		sid, _ := r.Cookie("sessionid")
		tok, _ := r.Cookie("csrftoken")
		switch r.URL.Path {
		case "/login":
			n++
			s, c := fmt.Sprintf("live-session-%d", n), fmt.Sprintf("live-token-%d", n)
			issued[s] = c
			http.SetCookie(w, &http.Cookie{Name: "sessionid", Value: s, Path: "/"})
			http.SetCookie(w, &http.Cookie{Name: "csrftoken", Value: c, Path: "/"})
			return
		case "/logout":
			http.SetCookie(w, &http.Cookie{Name: "sessionid", Value: "", Path: "/", MaxAge: -1})
		}
		if r.Header.Get("If-None-Match") != "" {
			w.WriteHeader(http.StatusPreconditionFailed)
			return
		}
		if sid == nil {
			seen[r.URL.Path+" -"] = "anonymous"
			return
		}
		want, ok := issued[sid.Value]
		switch {
		case !ok:
			w.WriteHeader(http.StatusForbidden) // a recorded session
		case r.Method == "POST" && (tok == nil || r.Header.Get("X-CSRFToken") != want || tok.Value != want):
			w.WriteHeader(http.StatusForbidden)
		default:
			seen[r.URL.Path+" "+sid.Value] = "ok"
		}
	}))
	defer srv.Close()

	const oldSession, oldToken = "recorded-session-0001", "recorded-token-0001"
	jarOf := "sessionid=" + oldSession + "; csrftoken=" + oldToken
	ms := time.Millisecond
	s := &traces.Session{ID: "a", Profile: "browse", Exchanges: []traces.Exchange{
		{Offset: 0, Duration: 5 * ms, Method: "POST", URL: "/login", Status: 200, RespHeader: []traces.Header{
			{Name: "Set-Cookie", Value: "sessionid=" + oldSession + "; Path=/"}, {Name: "Set-Cookie", Value: "csrftoken=" + oldToken + "; Path=/"}}},
		// Recorded 1 ms after the login began: replayed, it is due before
		// the login's answer and must wait for it.
		{Offset: 1 * ms, Method: "GET", URL: "/me", Status: 200, ReqHeader: []traces.Header{{Name: "Cookie", Value: jarOf}, {Name: "If-None-Match", Value: `"v1"`}}},
		{Offset: 10 * ms, Method: "POST", URL: "/act", Status: 200, ReqHeader: []traces.Header{{Name: "Cookie", Value: jarOf}, {Name: "X-CSRFToken", Value: oldToken}}},
		{Offset: 20 * ms, Method: "POST", URL: "/logout", Status: 200, ReqHeader: []traces.Header{{Name: "Cookie", Value: jarOf}, {Name: "X-CSRFToken", Value: oldToken}},
			RespHeader: []traces.Header{{Name: "Set-Cookie", Value: "sessionid=; Max-Age=0; Path=/"}}},
		{Offset: 30 * ms, Method: "GET", URL: "/after", Status: 200, ReqHeader: []traces.Header{{Name: "Cookie", Value: "csrftoken=" + oldToken}}},
	}}
	lib := FromSessions([]*traces.Session{s})
	e, err := New(srv.URL, lib)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := scheduler.New(lib.Sessions(), scheduler.Config{Users: 3, RunTime: 300 * ms})
	if err != nil {
		t.Fatal(err)
	}
	sink := &collect{}
	if err := e.Run(context.Background(), plan, time.Now(), sink); err != nil {
		t.Fatal(err)
	}
	for _, smp := range sink.samples {
		if smp.Status != 200 || smp.Err != "" {
			t.Errorf("%s: status %d %s", smp.Endpoint, smp.Status, smp.Err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for i := 1; i <= 3; i++ {
		for _, path := range []string{"/me", "/act", "/logout"} {
			if k := fmt.Sprintf("%s live-session-%d", path, i); seen[k] != "ok" {
				t.Errorf("%s: not seen with its own session (saw %v)", k, seen)
			}
		}
	}
	// Users that finish early begin another session before the run ends
	// (a run of 45 ms was too short on a loaded machine for the first
	// session's last request, waiting behind the login, to go out).
	if n < 3 || seen["/after -"] != "anonymous" || len(sink.samples) < 15 {
		t.Fatalf("%d logins, %d answers; after the logout: %q", n, len(sink.samples), seen["/after -"])
	}
}

// TestRecordedCookiesOption: WithRecordedCookies sends the recorded Cookie
// header; by default it is not sent.
func TestRecordedCookiesOption(t *testing.T) {
	for _, tc := range []struct {
		opts []Option
		want string
	}{
		{nil, ""},
		{[]Option{WithRecordedCookies()}, "sessionid=recorded-0001"},
	} {
		var mu sync.Mutex
		var got []string
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			got = append(got, r.Header.Get("Cookie"))
			mu.Unlock()
		}))
		s := &traces.Session{ID: "a", Profile: "browse", Exchanges: []traces.Exchange{
			{Method: "GET", URL: "/x", Status: 200, ReqHeader: []traces.Header{{Name: "Cookie", Value: "sessionid=recorded-0001"}}}}}
		e, err := New(srv.URL, FromSessions([]*traces.Session{s}), tc.opts...)
		if err != nil {
			t.Fatal(err)
		}
		playOnce(e, 0, nil)
		srv.Close()
		if len(got) != 1 || got[0] != tc.want {
			t.Errorf("options %d: the server saw cookies %q, want %q", len(tc.opts), got, tc.want)
		}
	}
}

// TestConditionalRequestsUseTheUsersValidators: a recorded If-None-Match
// goes out only with the ETag the live server gave this user for the
// same target, as a browser's cache would send it.
func TestConditionalRequestsUseTheUsersValidators(t *testing.T) {
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.URL.Path+" "+r.Header.Get("If-None-Match"))
		mu.Unlock()
		w.Header().Set("ETag", `"live-7"`)
		if r.Header.Get("If-None-Match") == `"live-7"` {
			w.WriteHeader(http.StatusNotModified)
		}
	}))
	defer srv.Close()
	inm := traces.Header{Name: "If-None-Match", Value: `"recorded-1"`}
	s := &traces.Session{ID: "a", Profile: "browse", Exchanges: []traces.Exchange{
		{Method: "GET", URL: "/other", Status: 200, ReqHeader: []traces.Header{inm}}, // never fetched: no validator
		{Offset: time.Millisecond, Method: "GET", URL: "/doc", Status: 200},
		{Offset: 2 * time.Millisecond, Method: "GET", URL: "/doc", Status: 304, ReqHeader: []traces.Header{inm}},
	}}
	e, err := New(srv.URL, FromSessions([]*traces.Session{s}), WithPacing(Think))
	if err != nil {
		t.Fatal(err)
	}
	sink := playOnce(e, 0, nil)
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"/other ", "/doc ", `/doc "live-7"`}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("the server got %q, want %q", got, want)
	}
	if sink.samples[2].Status != 304 {
		t.Fatalf("status %d, want 304", sink.samples[2].Status)
	}
}

// TestAnswersWithoutBodies: the answer to a HEAD announces the length of a
// body it does not send, and a 204 and a 304 send none; the user reads
// each to its end at once (it used to wait for the body until the
// timeout) and keeps the connection.
func TestAnswersWithoutBodies(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/head":
			w.Header().Set("Content-Length", "1000")
		case "/none":
			w.WriteHeader(http.StatusNoContent)
		case "/same":
			w.WriteHeader(http.StatusNotModified)
		}
	}))
	defer srv.Close()
	s := &traces.Session{ID: "a", Profile: "browse", Exchanges: []traces.Exchange{
		{Method: "HEAD", URL: "/head", Status: 200},
		{Method: "GET", URL: "/none", Status: 204},
		{Method: "GET", URL: "/same", Status: 304},
		{Method: "GET", URL: "/after", Status: 200},
	}}
	e, err := New(srv.URL, FromSessions([]*traces.Session{s}), WithPacing(Think), WithTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	sink := playOnce(e, 0, nil)
	var got []string
	for _, smp := range sink.samples {
		got = append(got, fmt.Sprintf("%s %d %s", smp.Endpoint, smp.Status, smp.Err))
	}
	want := []string{"HEAD /head 200 ", "GET /none 204 ", "GET /same 304 ", "GET /after 200 "}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// TestFormFieldEchoesTheLiveCookie: a form that posts its CSRF token in a
// field (as Django's csrfmiddlewaretoken does) sends the live cookie's.
func TestFormFieldEchoesTheLiveCookie(t *testing.T) {
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/login" {
			http.SetCookie(w, &http.Cookie{Name: "csrftoken", Value: "live-token-0042", Path: "/"})
			return
		}
		_ = r.ParseForm()
		mu.Lock()
		got = append(got, r.PostForm.Get("csrfmiddlewaretoken"))
		mu.Unlock()
	}))
	defer srv.Close()
	s := &traces.Session{ID: "a", Profile: "browse", Exchanges: []traces.Exchange{
		{Method: "GET", URL: "/login", Status: 200, RespHeader: []traces.Header{{Name: "Set-Cookie", Value: "csrftoken=recorded-token-1; Path=/"}}},
		{Offset: time.Millisecond, Method: "POST", URL: "/save", Status: 200,
			ReqHeader: []traces.Header{{Name: "Cookie", Value: "csrftoken=recorded-token-1"}, {Name: "Content-Type", Value: "application/x-www-form-urlencoded"}},
			ReqBody:   traces.Body{Data: []byte("csrfmiddlewaretoken=recorded-token-1&title=x")}},
	}}
	e, err := New(srv.URL, FromSessions([]*traces.Session{s}))
	if err != nil {
		t.Fatal(err)
	}
	playOnce(e, 0, nil)
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || got[0] != "live-token-0042" {
		t.Fatalf("the form carried %q", got)
	}
}

func TestJarPathsAndExpiry(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	var j jar
	for _, h := range []string{
		"a=1; Path=/",
		"b=2; Path=/api",
		"c=3; Path=/api/; Max-Age=60",
		"d=4; Expires=Thu, 01 Jan 2026 00:00:00 GMT", // in the past: not kept
		"e=5",
		"e=6", // replaces
		"f=7; Max-Age=10",
		"f=; Max-Age=0", // deletes
	} {
		j.set([]byte(h), now, 0)
	}
	for _, tc := range []struct{ uri, at, want string }{
		{"/", "0s", "Cookie: a=1; e=6\r\n"},
		{"/api", "0s", "Cookie: a=1; b=2; e=6\r\n"},
		{"/api/x?q=1", "0s", "Cookie: a=1; b=2; c=3; e=6\r\n"},
		{"/apis", "0s", "Cookie: a=1; e=6\r\n"},
		{"/api/x", "61s", "Cookie: a=1; b=2; e=6\r\n"}, // c expired
	} {
		d, _ := time.ParseDuration(tc.at)
		if got := string(j.appendHeader(nil, []byte(tc.uri), now.Add(d), 0)); got != tc.want {
			t.Errorf("%s at +%s: %q, want %q", tc.uri, tc.at, got, tc.want)
		}
	}
}

// TestJarDeletesOneAndKeepsTheRest: a deletion (Max-Age=0, in any case)
// removes only its cookie, the one after it keeping its value and expiry;
// a cookie set again with its value keeps it and takes the new expiry.
func TestJarDeletesOneAndKeepsTheRest(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	var j jar
	for _, h := range []string{"a=1", "b=2; Max-Age=30", "c=3", "a=; MAX-AGE=0", "c=3; Max-Age=5"} {
		j.set([]byte(h), now, 0)
	}
	for _, tc := range []struct{ at, want string }{
		{"0s", "Cookie: b=2; c=3\r\n"},
		{"6s", "Cookie: b=2\r\n"}, // c's new expiry
		{"31s", ""},               // b's, kept through the deletion before it
	} {
		d, _ := time.ParseDuration(tc.at)
		if got := string(j.appendHeader(nil, []byte("/"), now.Add(d), 0)); got != tc.want {
			t.Errorf("at +%s: %q, want %q", tc.at, got, tc.want)
		}
	}
}

// TestMissingValuesAreCounted: when a live answer that succeeded lacks
// the value a rule takes, the miss is counted for the rule and the request
// goes out with the recorded value (the rule may have taken a
// coincidence; see TestSkipWhenTheSourceFailed for answers that failed).
func TestMissingValuesAreCounted(t *testing.T) {
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.URL.Path)
		mu.Unlock()
		_, _ = io.WriteString(w, `{"other":1}`)
	}))
	defer srv.Close()
	s := &traces.Session{ID: "a", Profile: "browse", Exchanges: []traces.Exchange{
		{Method: "POST", URL: "/start", Status: 200, RespBody: traces.Body{Data: []byte(`{"id":"rec-abcdef1"}`)}},
		{Offset: time.Millisecond, Method: "GET", URL: "/item/rec-abcdef1", Status: 200},
	}}
	e, err := New(srv.URL, FromSessions([]*traces.Session{s}))
	if err != nil {
		t.Fatal(err)
	}
	playOnce(e, 0, nil)
	st := e.Correlations()
	if len(st) != 1 || st[0].Rule != "POST /start $.id" || st[0].Found != 0 || st[0].Missing != 1 {
		t.Fatalf("correlation stats %+v", st)
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(got, " ") != "/start /item/rec-abcdef1" {
		t.Fatalf("the server got %q", got)
	}
}

// TestJarSites: a cookie goes back to the site that set it, and with a
// Domain attribute to every site whose recorded host is in the domain.
func TestJarSites(t *testing.T) {
	j := &jar{names: [][]string{{"app.example.com"}, {"api.example.com"}, {"127.0.0.2"}}}
	now := time.Now()
	j.set([]byte("own=1"), now, 0)
	j.set([]byte("shared=2; Domain=.Example.com"), now, 0)
	j.set([]byte("api=3"), now, 1)
	for _, tc := range []struct {
		site int
		want string
	}{
		{0, "Cookie: own=1; shared=2\r\n"},
		{1, "Cookie: shared=2; api=3\r\n"},
		{2, ""},
	} {
		if got := string(j.appendHeader(nil, []byte("/"), now, tc.site)); got != tc.want {
			t.Errorf("site %d: %q, want %q", tc.site, got, tc.want)
		}
	}
}
