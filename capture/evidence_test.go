package capture

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/thrive-loadtest/thrive/traces"
)

// step is one exchange of a table case: who sent it (a connection and an
// address), when (ms from the case's start; it takes 10 ms), and what the
// request and answer carried. Headers are "Name: value" strings.
type step struct {
	conn   uint64
	ip     string // 10.0.0.1 unless set
	at     int
	method string // GET unless set
	url    string
	req    []string
	status int // 200 unless set
	resp   []string
}

func headers(lines []string) []traces.Header {
	var h []traces.Header
	for _, l := range lines {
		name, value, _ := strings.Cut(l, ": ")
		h = append(h, traces.Header{Name: name, Value: value})
	}
	return h
}

// play runs steps through a sessionizer in the order given (each begun and
// completed before the next), and returns the sessions it ends, each as
// its exchanges "URL(placement)" joined by spaces, by the session's first
// URL; and the sessions themselves.
func play(t *testing.T, steps []step) (map[string]string, []*traces.Session) {
	t.Helper()
	t0 := time.Unix(1000, 0)
	sz := newSessionizer(DefaultSessionCookies(), time.Minute, time.Hour, "t")
	for _, st := range steps {
		r := &record{start: t0.Add(time.Duration(st.at) * time.Millisecond), method: cmpOr(st.method, "GET"), url: st.url,
			host: "app.test", status: st.status, conn: st.conn, reqHeader: headers(append([]string{"User-Agent: browser"}, st.req...)),
			respHeader: headers(st.resp)}
		if r.status == 0 {
			r.status = 200
		}
		r.ttfb, r.end = r.start.Add(5*time.Millisecond), r.start.Add(10*time.Millisecond)
		r.key = sz.requestKeyOf(r.reqHeader, r.url, cmpOr(st.ip, "10.0.0.1"))
		sz.begin(r)
		r.newKey, r.ends = sz.answerKeyOf(r.respHeader, r.method, r.key)
		sz.complete(r)
	}
	got := map[string]string{}
	var out []*traces.Session
	for _, s := range sz.sweep(t0.Add(time.Hour), true) {
		ts := s.build()
		var parts []string
		for _, ex := range ts.Exchanges {
			parts = append(parts, ex.URL+"("+ex.Placed.String()+")")
		}
		got[ts.Exchanges[0].URL] = strings.Join(parts, " ")
		out = append(out, ts)
	}
	return got, out
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// TestEvidence holds the sessionizer to its rules, one case per rule:
// records in, sessions out, each exchange with what placed it.
func TestEvidence(t *testing.T) {
	seven := func() []step {
		// Seven browsers behind one address start at once: each loads the
		// login page (which sets its CSRF cookie), then posts the login
		// with it on a connection of its own, then loads its home page and,
		// on a third connection, the home page's favicon with its cookies.
		var steps []step
		tok := func(i int) string { return "csrf" + strings.Repeat(string(rune('a'+i)), 20) }
		sid := func(i int) string { return "sid" + strings.Repeat(string(rune('a'+i)), 20) }
		for i := range 7 {
			steps = append(steps, step{conn: uint64(10 + i), at: i, url: "/admin/login/?u=" + string(rune('a'+i)),
				resp: []string{"Set-Cookie: csrftoken=" + tok(i) + "; Path=/"}})
		}
		for i := range 7 {
			steps = append(steps, step{conn: uint64(20 + i), at: 100 + i, method: "POST", url: "/admin/login/",
				req: []string{"Cookie: csrftoken=" + tok(i)}, status: 302,
				resp: []string{"Set-Cookie: sessionid=" + sid(i) + "; HttpOnly; Path=/", "Set-Cookie: csrftoken=" + tok(i+7) + "; Path=/", "Location: /admin/"}})
		}
		for i := range 7 {
			steps = append(steps,
				step{conn: uint64(20 + i), at: 200 + i, url: "/admin/", req: []string{"Cookie: csrftoken=" + tok(i+7) + "; sessionid=" + sid(i)}},
				step{conn: uint64(30 + i), at: 210 + i, url: "/favicon.ico", req: []string{"Cookie: csrftoken=" + tok(i+7) + "; sessionid=" + sid(i)}, status: 404})
		}
		return steps
	}
	const flash = "messages=W1siX19qc29uX21lc3NhZ2UiXQ:1tAbCd:signature"
	for _, tc := range []struct {
		name  string
		steps []step
		want  map[string]string // first URL → the session's exchanges
		check func(t *testing.T, sessions []*traces.Session)
	}{{
		name:  "seven visitors behind one address, each told by its own CSRF cookie",
		steps: seven(),
		want: func() map[string]string {
			w := map[string]string{}
			for i := range 7 {
				c := string(rune('a' + i))
				w["/admin/login/?u="+c] = "/admin/login/?u=" + c + "(key) /admin/login/(key) /admin/(key) /favicon.ico(key)"
			}
			return w
		}(),
	}, {
		name: "a flash cookie of the same value in two visits keys neither, and continues both",
		steps: []step{
			{conn: 1, url: "/edit/1", method: "POST", req: []string{"Cookie: sessionid=AAAAAAAAAAAAAAAA"}, status: 302,
				resp: []string{"Set-Cookie: " + flash + "; HttpOnly; Path=/", "Location: /list"}},
			{conn: 2, at: 5, url: "/edit/2", method: "POST", req: []string{"Cookie: sessionid=BBBBBBBBBBBBBBBB"}, status: 302,
				resp: []string{"Set-Cookie: " + flash + "; HttpOnly; Path=/", "Location: /list"}},
			{conn: 3, at: 20, url: "/list?a", req: []string{"Cookie: sessionid=AAAAAAAAAAAAAAAA; " + flash},
				resp: []string{`Set-Cookie: messages=""; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/`}},
			{conn: 4, at: 25, url: "/list?b", req: []string{"Cookie: " + flash + "; sessionid=BBBBBBBBBBBBBBBB"},
				resp: []string{`Set-Cookie: messages=""; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/`}},
			{conn: 3, at: 40, url: "/logout", method: "POST", req: []string{"Cookie: sessionid=AAAAAAAAAAAAAAAA"},
				resp: []string{`Set-Cookie: sessionid=""; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/`}},
			{conn: 3, at: 60, url: "/logged-out/"},
		},
		want: map[string]string{
			"/edit/1": "/edit/1(key) /list?a(key) /logout(key) /logged-out/(connection)",
			"/edit/2": "/edit/2(key) /list?b(key)",
		},
	}, {
		name: "a cookie the jar gains continues its visit; a quoted value is the same value",
		steps: []step{
			{conn: 1, url: "/login", resp: []string{"Set-Cookie: _xsrf=2|4f6a|8d1e0c7b9a|1733450000; Path=/"}},
			{conn: 2, at: 20, url: "/login", method: "POST", req: []string{"Cookie: _xsrf=2|4f6a|8d1e0c7b9a|1733450000"}, status: 302,
				resp: []string{`Set-Cookie: username-app="2|1:0|10:1733450000|12:username-app|44:eyJ1c2VyIjoiYWxpY2UifQ==|ab12"; expires=Sun, 05 Jan 2099 00:00:00 GMT; HttpOnly; Path=/`}},
			{conn: 3, at: 40, url: "/api/contents", req: []string{`Cookie: username-app="2|1:0|10:1733450000|12:username-app|44:eyJ1c2VyIjoiYWxpY2UifQ==|ab12"`}},
			{conn: 4, at: 50, url: "/api/me", req: []string{`Cookie: username-app=2|1:0|10:1733450000|12:username-app|44:eyJ1c2VyIjoiYWxpY2UifQ==|ab12`}},
		},
		want: map[string]string{"/login": "/login(key) /login(key) /api/contents(key) /api/me(key)"},
	}, {
		name: "a redirect's target and a page's own sub-resource on other connections",
		steps: []step{
			{conn: 1, url: "/app/login", status: 302, resp: []string{"Set-Cookie: app_state=zzzzzzzzzzzzzzzz; Path=/",
				"Location: https://idp.test/authorize?client_id=app&state=s7Hq2LmP0xVb9KcR"}},
			{conn: 2, ip: "10.0.0.1", at: 20, url: "https://idp.test/authorize?client_id=app&state=s7Hq2LmP0xVb9KcR", req: []string{"Sec-Fetch-Dest: document"}},
			{conn: 3, at: 40, url: "/static/logo.png", req: []string{"Referer: https://idp.test/authorize?client_id=app&state=s7Hq2LmP0xVb9KcR"}},
		},
		want: map[string]string{"/app/login": "/app/login(key) https://idp.test/authorize?client_id=app&state=s7Hq2LmP0xVb9KcR(value) /static/logo.png(value)"},
	}, {
		name: "a common place a redirect sent one visit to, asked for much later, is another client's",
		steps: []step{
			{conn: 1, url: "/logout", method: "POST", req: []string{"Cookie: sessionid=AAAAAAAAAAAAAAAA"}, status: 302,
				resp: []string{"Location: /"}},
			{conn: 1, at: 30, url: "/?first"},
			{conn: 2, at: 10000, url: "/", req: []string{"Sec-Fetch-Dest: document"}},
		},
		want: map[string]string{"/logout": "/logout(key) /?first(connection)", "/": "/(anonymous)"},
	}, {
		name: "a sub-resource nothing ties goes to the nearest visit from its address; alone, it is strays",
		steps: []step{
			{conn: 1, url: "/", resp: []string{"Set-Cookie: sid=ssssssssssssssssssss; HttpOnly; Path=/"}},
			{conn: 2, at: 3000, url: "/robots.txt"},
			{conn: 3, ip: "10.0.0.9", at: 10, url: "/favicon.ico", status: 404},
		},
		want: map[string]string{"/": "/(key) /robots.txt(nearest)", "/favicon.ico": "/favicon.ico(anonymous)"},
		check: func(t *testing.T, sessions []*traces.Session) {
			for _, s := range sessions {
				if s.Strays != (s.Exchanges[0].URL == "/favicon.ico") {
					t.Errorf("session %s: strays %v", s.Exchanges[0].URL, s.Strays)
				}
			}
		},
	}, {
		name: "a session cookie no answer gave continues a visit from before",
		steps: []step{
			{conn: 1, url: "/home", req: []string{"Cookie: sessionid=XXXXXXXXXXXXXXXXXXXX"}},
			{conn: 2, at: 5, url: "/login", resp: []string{"Set-Cookie: sessionid=YYYYYYYYYYYYYYYYYYYY; HttpOnly; Path=/"}},
		},
		want: map[string]string{"/home": "/home(key)", "/login": "/login(key)"},
		check: func(t *testing.T, sessions []*traces.Session) {
			for _, s := range sessions {
				if s.Continues != (s.Exchanges[0].URL == "/home") {
					t.Errorf("session %s: continues %v", s.Exchanges[0].URL, s.Continues)
				}
			}
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got, sessions := play(t, tc.steps)
			if len(got) != len(tc.want) {
				t.Errorf("%d sessions, want %d", len(got), len(tc.want))
			}
			for _, k := range slicesSorted(tc.want) {
				if got[k] != tc.want[k] {
					t.Errorf("session of %s:\n got %s\nwant %s", k, got[k], tc.want[k])
				}
			}
			for k, v := range got {
				if _, ok := tc.want[k]; !ok {
					t.Errorf("unexpected session: %s", v)
				}
			}
			if tc.check != nil {
				tc.check(t, sessions)
			}
		})
	}
}

func slicesSorted(m map[string]string) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
