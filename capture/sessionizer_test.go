package capture

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/thrive-loadtest/thrive/traces"
)

// passExchange runs one request through the sessionizer at time at, as the
// proxy would: begin, then complete with the answer's headers.
func passExchange(sz *sessionizer, at time.Time, url string, req, resp []traces.Header) *record {
	r := &record{start: at, end: at.Add(10 * time.Millisecond), method: "GET", url: url, status: 200, reqHeader: req, respHeader: resp}
	r.key = sz.requestKey(req, "10.0.0.1")
	sz.begin(r)
	if resp != nil {
		r.newKey, r.ends = sz.answerKey(resp, r.key)
	}
	sz.complete(r)
	return r
}

// starter returns a function that begins, at ms milliseconds after t0, a
// GET of url on the client connection conn from 10.0.0.1 with the header
// req, as the proxy would, and returns its record.
func starter(sz *sessionizer, t0 time.Time) func(conn uint64, ms int, url string, req []traces.Header) *record {
	return func(conn uint64, ms int, url string, req []traces.Header) *record {
		r := &record{start: t0.Add(time.Duration(ms) * time.Millisecond), method: "GET", url: url, status: 200, conn: conn, reqHeader: req}
		r.key = sz.requestKey(req, "10.0.0.1")
		sz.begin(r)
		return r
	}
}

// endAll ends every session at now and returns, by each one's key, the
// URLs of its exchanges as written (in the order they began).
func endAll(sz *sessionizer, now time.Time) map[string]string {
	got := map[string]string{}
	for _, s := range sz.sweep(now, true) {
		if len(s.records) > 0 {
			var u []string
			for _, ex := range s.build().Exchanges {
				u = append(u, ex.URL)
			}
			got[s.key] = strings.Join(u, " ")
		}
	}
	return got
}

func hdr(kv ...string) []traces.Header {
	var h []traces.Header
	for i := 0; i < len(kv); i += 2 {
		h = append(h, traces.Header{Name: kv[i], Value: kv[i+1]})
	}
	return h
}

func urls(s *session) []string {
	var out []string
	for _, r := range s.records {
		out = append(out, r.url)
	}
	return out
}

func TestSessionizer(t *testing.T) {
	t0 := time.Unix(1000, 0)
	sz := newSessionizer(DefaultSessionCookies(), time.Minute, time.Hour, "t")
	ua := []string{"User-Agent", "browser"}
	passExchange(sz, t0, "/csrf", hdr(ua...), nil)
	passExchange(sz, t0.Add(time.Second), "/login", hdr(ua...), hdr("Set-Cookie", "sessionid=A; Path=/"))
	passExchange(sz, t0.Add(2*time.Second), "/a1", hdr("Cookie", "sessionid=A"), nil)
	passExchange(sz, t0.Add(3*time.Second), "/b1", hdr("Cookie", "other=1; connect.sid=B"), nil)
	passExchange(sz, t0.Add(4*time.Second), "/token", hdr("Authorization", "Bearer T"), nil)
	// A login from the holder of A that rotates its cookie to C (as
	// Django, Rails and Express do at login) goes on with the same visit.
	passExchange(sz, t0.Add(5*time.Second), "/login", hdr("Cookie", "sessionid=A"), hdr("Set-Cookie", "sessionid=C; Path=/"))
	passExchange(sz, t0.Add(6*time.Second), "/c1", hdr("Cookie", "sessionid=C"), nil)

	if over := sz.sweep(t0.Add(7*time.Second), false); len(over) != 0 {
		t.Fatalf("ended %d sessions before any was idle", len(over))
	}
	// An idle minute ends them; the in-flight one is kept.
	r := &record{start: t0.Add(30 * time.Second), url: "/slow", key: "cookie:connect.sid=B"}
	sz.begin(r)
	over := sz.sweep(t0.Add(7*time.Second+time.Minute), false)
	keys := map[string][]string{}
	for _, s := range over {
		keys[s.key] = urls(s)
	}
	if len(keys) != 2 || len(keys["cred:T"]) != 1 || strings.Join(keys["cookie:sessionid=A"], " ") != "/csrf /login /a1 /login /c1" {
		t.Fatalf("idle sweep ended %v", keys)
	}
	if sz.openCount() != 1 {
		t.Fatalf("%d sessions open, want B with its request in flight", sz.openCount())
	}
	r.end = t0.Add(31 * time.Second)
	sz.complete(r)
	over = sz.sweep(t0.Add(31*time.Second+time.Minute), false)
	if len(over) != 1 || len(over[0].records) != 2 {
		t.Fatalf("B: %d sessions", len(over))
	}
}

func TestSessionizerLogoutAndMaxAge(t *testing.T) {
	t0 := time.Unix(1000, 0)
	sz := newSessionizer([]string{"sid"}, time.Hour, 10*time.Minute, "t")
	passExchange(sz, t0, "/a", hdr("Cookie", "sid=X"), nil)
	passExchange(sz, t0.Add(time.Second), "/logout", hdr("Cookie", "sid=X"), hdr("Set-Cookie", "sid=; Max-Age=0"))
	// The session stays open a moment for the page the logout leads to.
	if over := sz.sweep(t0.Add(1500*time.Millisecond), false); len(over) != 0 {
		t.Fatal("logout ended the session before its client could follow it")
	}
	if over := sz.sweep(t0.Add(3*time.Second), false); len(over) != 1 || len(over[0].records) != 2 {
		t.Fatal("logout did not end the session")
	}
	// Busy for 20 minutes: the longest session is 10, so two sessions.
	var n int
	for i := range 20 {
		passExchange(sz, t0.Add(time.Duration(i)*time.Minute), "/p", hdr("Cookie", "sid=Y"), nil)
		n += len(sz.sweep(t0.Add(time.Duration(i)*time.Minute+time.Second), false))
	}
	n += len(sz.sweep(t0.Add(time.Hour), true))
	if n != 2 {
		t.Fatalf("%d sessions from 20 busy minutes, want 2", n)
	}
}

// TestSessionizerLoginInFlight: a page logs in as it loads, and the
// browser fetches its favicon on a second connection before the login's
// answer gives it the cookie, and a request it queued goes out without
// the cookie just after the answer. Both are that visit's; a request
// without the cookie a second later is not, and a favicon whose
// connection goes on to carry another user's cookie is that user's.
func TestSessionizerLoginInFlight(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	sz := newSessionizer(DefaultSessionCookies(), time.Minute, time.Hour, "t")
	ua := hdr("User-Agent", "browser")
	start := starter(sz, t0)
	end := func(r *record, ttfb, at int, resp []traces.Header) {
		r.ttfb, r.end, r.respHeader = ms(ttfb), ms(at), resp
		if resp != nil {
			r.newKey, r.ends = sz.answerKey(resp, r.key)
		}
		sz.complete(r)
	}
	end(start(1, 0, "/", ua), 5, 10, nil)
	login := start(1, 100, "/login", ua)
	favicon := start(2, 110, "/favicon.ico", ua)
	other := start(3, 115, "/favicon.ico?other", ua)
	end(login, 150, 160, hdr("Set-Cookie", "connect.sid=A; Path=/; HttpOnly"))
	end(favicon, 170, 180, nil)
	end(start(1, 200, "/api", hdr("Cookie", "connect.sid=A")), 210, 220, nil)
	queued := start(5, 170, "/manifest.json", ua) // queued before the answer, sent without the cookie
	end(queued, 175, 180, nil)
	late := start(4, 1300, "/help", ua) // a page a second after the answer, without the cookie
	end(late, 1310, 1320, nil)
	end(other, 1330, 1340, nil)
	end(start(3, 1400, "/b", hdr("Cookie", "connect.sid=B")), 1410, 1420, nil) // connection 3 was B's

	got := endAll(sz, t0.Add(time.Hour))
	want := map[string]string{
		"cookie:connect.sid=A":   "/ /login /favicon.ico /manifest.json /api",
		"cookie:connect.sid=B":   "/favicon.ico?other /b",
		"ip:10.0.0.1 ua:browser": "/help",
	}
	if len(got) != len(want) {
		t.Fatalf("sessions %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s holds %q, want %q", k, got[k], v)
		}
	}
}

func TestBuildTiming(t *testing.T) {
	t0 := time.Unix(1000, 0)
	s := &session{id: "x", key: "k", records: []*record{
		{start: t0.Add(3 * time.Second), ttfb: t0.Add(3100 * time.Millisecond), end: t0.Add(3200 * time.Millisecond), url: "/c"},
		{start: t0, ttfb: t0.Add(50 * time.Millisecond), end: t0.Add(2 * time.Second), url: "/a"},
		{start: t0.Add(time.Second), ttfb: t0.Add(1100 * time.Millisecond), end: t0.Add(1500 * time.Millisecond), url: "/b"},
	}}
	ts := s.build()
	want := []struct {
		url                     string
		offset, think, ttfb, du time.Duration
	}{
		{"/a", 0, 0, 50 * time.Millisecond, 2 * time.Second},
		{"/b", time.Second, 0, 100 * time.Millisecond, 500 * time.Millisecond}, // overlaps /a: no think
		{"/c", 3 * time.Second, time.Second, 100 * time.Millisecond, 200 * time.Millisecond},
	}
	for i, w := range want {
		ex := ts.Exchanges[i]
		if ex.URL != w.url || ex.Offset != w.offset || ex.Think != w.think || ex.TTFB != w.ttfb || ex.Duration != w.du {
			t.Errorf("exchange %d: %s offset %v think %v ttfb %v duration %v; want %+v", i, ex.URL, ex.Offset, ex.Think, ex.TTFB, ex.Duration, w)
		}
	}
	if !ts.Start.Equal(t0) {
		t.Fatalf("start %v", ts.Start)
	}
}

// TestSessionizerLoginWindowsEnd: an address many users log in from, over
// hours, keeps the windows of only the logins whose sessions are open.
func TestSessionizerLoginWindowsEnd(t *testing.T) {
	t0 := time.Unix(1000, 0)
	sz := newSessionizer(DefaultSessionCookies(), time.Minute, 24*time.Hour, "t")
	ua := hdr("User-Agent", "browser")
	var anon *session
	for i := range 1000 {
		at := t0.Add(time.Duration(i) * 10 * time.Second)
		page := passExchange(sz, at, "/", ua, nil) // keeps the anonymous session open
		anon = page.owner
		passExchange(sz, at.Add(time.Second), "/login", ua, hdr("Set-Cookie", fmt.Sprintf("connect.sid=S%d; Path=/; HttpOnly", i)))
		sz.sweep(at.Add(2*time.Second), false)
	}
	if anon.done || !anon.anonymous() {
		t.Fatalf("the anonymous session ended or is %s", anon.key)
	}
	live := 0
	for _, w := range anon.logins {
		if w.to != nil {
			live++
		}
	}
	// About 7 logins' sessions are open at a time (a minute idle, one
	// login every 10 s); the rest were dropped.
	if live > 8 || len(anon.logins) > 32 {
		t.Fatalf("the anonymous session holds %d login windows, %d of them live", len(anon.logins), live)
	}
}

// TestSessionizerRedirectFollowedFirst: a browser follows a redirect as
// soon as the head reaches it, so the request the redirect sent it to (on
// another connection, to another origin) may complete before the record
// of the redirect does. The redirect's place was announced with its head,
// before the head was relayed: the request waits for the redirect's record
// and joins its visit, rather than open a visit of its own by the cookie
// its answer gives. Two clients share an address and User-Agent, so
// nothing else tells them apart.
func TestSessionizerRedirectFollowedFirst(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	sz := newSessionizer(DefaultSessionCookies(), time.Minute, time.Hour, "t")
	ua := hdr("User-Agent", "browser")
	start := func(conn uint64, at int, host, url string, req []traces.Header) *record {
		r := &record{start: ms(at), method: "GET", host: host, url: url, conn: conn, reqHeader: req}
		r.key = sz.requestKey(req, "10.0.0.1")
		sz.begin(r)
		return r
	}
	head := func(r *record, at, status int, resp []traces.Header) {
		r.ttfb, r.status, r.respHeader = ms(at), status, resp
		r.newKey, r.ends = sz.answerKey(resp, r.key)
		sz.announce(r)
	}
	end := func(r *record, at int) {
		r.end = ms(at)
		sz.complete(r)
	}
	for i, user := range []string{"A", "B"} {
		at := 1000 * i
		login := start(uint64(10*i+1), at, "app.test", "/login?u="+user, ua)
		head(login, at+5, 302, hdr("Location", "http://idp.test/authorize?state=S"+user, "Set-Cookie", "session="+user+"; Path=/; HttpOnly"))
		authorize := start(uint64(10*i+2), at+6, "idp.test", "/authorize?state=S"+user, ua)
		head(authorize, at+8, 200, hdr("Set-Cookie", "AUTH_SESSION_ID=X"+user+"; Path=/; HttpOnly; Max-Age=600", "Content-Type", "text/html"))
		end(authorize, at+9)
		end(login, at+20) // the redirect's body ends after the request it sent the browser to
		post := start(uint64(10*i+2), at+100, "idp.test", "/login", append(hdr("Cookie", "AUTH_SESSION_ID=X"+user), ua...))
		head(post, at+105, 302, hdr("Location", "http://app.test/callback?code=C"+user))
		end(post, at+106)
		cb := start(uint64(10*i+1), at+110, "app.test", "/callback?code=C"+user, append(hdr("Cookie", "session="+user), ua...))
		head(cb, at+115, 200, nil)
		end(cb, at+116)
	}
	got := map[string]string{}
	for _, s := range sz.sweep(t0.Add(time.Hour), true) {
		if len(s.records) > 0 {
			got[s.key] = strings.Join(urls(s), " ")
		}
	}
	want := map[string]string{
		"cookie:session=A": "/login?u=A /authorize?state=SA /login /callback?code=CA",
		"cookie:session=B": "/login?u=B /authorize?state=SB /login /callback?code=CB",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("sessions:\n%v\nwant\n%v", got, want)
	}
}

// TestSessionizerCookieBeforeItsAnswer: an app that writes its session
// cookie afresh with every answer (Rails' cookie store) gives a page's
// visit a new value, and the page's script opens a WebSocket with it before
// the proxy has completed the record of the answer that gave it: the
// socket began with a value no visit had yet. When it completes, the value
// is the visit's, and so is the socket. Two clients share an address and
// User-Agent, so nothing else tells them apart.
func TestSessionizerCookieBeforeItsAnswer(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	sz := newSessionizer(DefaultSessionCookies(), time.Minute, time.Hour, "t")
	ua := hdr("User-Agent", "browser")
	start := starter(sz, t0)
	end := func(r *record, at int, resp []traces.Header) {
		r.ttfb, r.end, r.respHeader = ms(at-1), ms(at), resp
		r.newKey, r.ends = sz.answerKey(resp, r.key)
		sz.complete(r)
	}
	val := func(v string) string { return "bG9uZ2VyIHRoYW4gYW4gaWQ--" + v }
	set := func(v string) []traces.Header {
		return hdr("Set-Cookie", "_docs_session="+val(v)+"; path=/; HttpOnly; SameSite=Lax")
	}
	with := func(v string) []traces.Header { return append(hdr("Cookie", "_docs_session="+val(v)), ua...) }
	for i, user := range []string{"A", "B"} {
		// Seconds after the login: no window of it covers the socket.
		at, c := 5000*i, uint64(10*i)
		end(start(c+1, at, "/session/new?"+user, ua), at+5, set(user+"1"))
		page := start(c+1, at+3000, "/docs/"+user, with(user+"1"))
		cable := start(c+2, at+3010, "/cable?"+user, with(user+"2")) // the page's value, its record not yet complete
		end(page, at+3020, set(user+"2"))
		end(cable, at+3500, nil)
		end(start(c+1, at+3600, "/docs?"+user, with(user+"2")), at+3610, set(user+"3"))
	}
	got := endAll(sz, t0.Add(time.Hour))
	want := map[string]string{
		"cookie:_docs_session=" + val("A1"): "/session/new?A /docs/A /cable?A /docs?A",
		"cookie:_docs_session=" + val("B1"): "/session/new?B /docs/B /cable?B /docs?B",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("sessions:\n%v\nwant\n%v", got, want)
	}
}
