package capture

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/thrive-loadtest/thrive/capture/wire"

	"github.com/thrive-loadtest/thrive/traces"
)

// DefaultSessionCookies are the cookie names that key sessions when none are
// configured: those of Django, Express, PHP, Java servlets, Rails, Laravel and
// Flask.
func DefaultSessionCookies() []string {
	return []string{"sessionid", "session", "connect.sid", "PHPSESSID", "JSESSIONID", "_session_id", "laravel_session", "session_id"}
}

// record is one exchange as the proxy saw it, with absolute times. The
// goroutine serving the request owns it until it hands it to the
// sessionizer.
type record struct {
	start, ttfb, end time.Time
	method, url      string
	host             string
	reqHeader        []traces.Header
	reqBody          *wire.Tap
	status           int
	respHeader       []traces.Header
	respBody         *wire.Tap
	err              string
	sock             *wire.Socket
	conn             uint64 // the client connection it came on; 0 if unknown
	skip             bool   // relayed but not recorded: a host out of a forward proxy's scope

	held    int64    // body bytes it holds, counted in the capture's buffer
	key     string   // the session key of the request
	newKey  string   // the session key a Set-Cookie in the answer starts, if any
	ends    bool     // the answer deletes the session cookie
	session *session // where begin put it
	owner   *session // where complete put it
	// journaled marks an exchange of an open session already written to
	// the journal.
	journaled bool
	placed    traces.Placement // what put it in its session
	gave      []string         // the values it gave, indexed in the sessionizer
	places    []string         // the places its answer gave (see place)
	// announced are the places its answer's head gave before the record
	// was complete (see announce), and after the records that name one of
	// them, waiting to be filed until it is.
	announced []string
	after     []*record
	ev        *evidence // a waiting record's evidence
}

// session is a visit being recorded. The sessionizer's lock guards it.
type session struct {
	id       string
	key      string   // the key it was opened with, for the trace
	keys     []string // every key that names it: a token or cookie it rotated to
	first    time.Time
	last     time.Time
	records  []*record
	inflight int
	ending   bool // end as soon as nothing is in flight
	done     bool
	// continues is set on a session opened by an identity its first
	// request sent but no answer in it gave (see traces.Session.Continues).
	continues bool
	// strays is set on an anonymous session of sub-resources only.
	strays bool
	// movedTo is the session this one's records went to, at movedAt (a
	// login took the anonymous requests before it, or a rotated token
	// showed two sessions to be one): a request that began before then
	// and was still in flight follows them.
	movedTo *session
	movedAt time.Time
	byLogin bool // moved by a login, not merged
	// logins are the logins made from this anonymous session, and login
	// the one that opened this session, if one did: see settle.
	logins []*loginWindow
	login  *loginWindow
	// pending are the records added since the journal last took this
	// session's (with a journal only).
	pending []*record
	// carry is what a session written in parts keeps of the parts handed
	// on (see parts.go); nil for one written whole.
	carry *partCarry
}

// anonymous reports a session keyed by the client's address only.
func (s *session) anonymous() bool { return strings.HasPrefix(s.key, "ip:") }

// loginWindow is a login made from the anonymous session from, which
// opened the session to: a request of from that began after the login
// and up to loginSettle after its answer may be to's client sending what it
// had queued before it had what the answer gave.
type loginWindow struct {
	from, to    *session
	begin, upTo time.Time
}

// loginSettle is how long after a login's answer a request without what it
// gave may still be its client's: headless Chromium sends a page's favicon
// so, 16 ms after the answer reached the proxy (under -race on two cores).
const loginSettle = time.Second

// clientConn is what the sessionizer knows of a client connection: the
// identified session it carried last, and its anonymous exchanges so far,
// which join the first identity it carries (a browser never shares a
// connection between two users).
type clientConn struct {
	sess *session
	anon []*record
	last time.Time
}

// sessionizer groups exchanges into sessions, one per visitor (a browser, an
// app), from evidence weighed strongest first. It is safe for concurrent
// use; the proxy calls begin and complete from request goroutines under a
// short lock, and the writer goroutine calls sweep.
//
//   - An identity the request sends: a session cookie (a configured name, or
//     one learned: set HttpOnly and kept), a cookie value of any name that
//     the server gave one visit only (the jar's lineage: a CSRF cookie set by
//     a login page tells seven visitors behind one address apart; a flash
//     cookie given the same value in two visits tells none), a credential
//     (a bearer token). Every cookie value the server gives a visit joins
//     its identity, so a jar that grows continues its visit.
//   - The client connection: a browser never shares one between users.
//   - A value only one visit's answers gave that the request sends back: a
//     ticket or token from a JSON answer, the URL a redirect sent it to, the
//     page that referred it (see evidence.go).
//   - Only then time: a request nothing ties that began while a visit from
//     its address was logging in (a window), or a sub-resource given to the
//     visit from its address nearest in time; sub-resources nothing places
//     at all are kept apart as strays, never a visit of their own.
//
// A request with no identity waits in its address's anonymous session (the
// client's address and User-Agent). The first identity an answer gives it
// (a cookie, a login's token) opens its visitor's session, which takes the
// requests its connection carried so far.
//
// A session ends when idle, when it is older than the longest session, or
// a moment (endSettle) after an answer deleted its session cookie (a
// logout), so that the page the logout leads to is still the visit's.
type sessionizer struct {
	cookies  []string
	idle     time.Duration
	maxAge   time.Duration
	idPrefix string
	learned  atomic.Pointer[[]string] // cookie names learned from answers, copy on write

	mu     sync.Mutex
	open   map[string]*session
	nextID uint64
	given  map[string]*record // value an answer gave → the record whose answer gave it; nil if several visits' did
	conns  map[uint64]*clientConn
	// gave maps a cookie key to the session an answer gave it to; a key in
	// open but not here was sent by a client before any answer gave it.
	gave map[string]*session
	// shared holds the cookie keys answers gave to two visits (a flash
	// message's cookie): they tell no one apart.
	shared map[string]bool
	// rival holds, for a place (a page, a redirect's target) given by
	// another client before its latest giver, when that one gave it.
	rival map[string]time.Time
	// journaling keeps, in dirty, the open sessions with records the
	// journal has not taken, so that it never scans them all.
	journaling bool
	dirty      map[*session]bool
	// soon maps a place an answer's head gave (announce) to its record,
	// until the record is complete.
	soon map[string]*record
	// sockets are the WebSocket exchanges in flight, whose frames a long
	// session hands on in parts (see parts.go).
	sockets    map[*record]bool
	partLimits partLimits
	// early counts the sessions ended before their idle time to free
	// memory (see pressedIdle).
	early atomic.Int64
}

func newSessionizer(cookies []string, idle, maxAge time.Duration, idPrefix string) *sessionizer {
	return &sessionizer{cookies: cookies, idle: idle, maxAge: maxAge, idPrefix: idPrefix, open: map[string]*session{},
		given: map[string]*record{}, conns: map[uint64]*clientConn{}, gave: map[string]*session{}, shared: map[string]bool{},
		rival: map[string]time.Time{}, soon: map[string]*record{}, partLimits: defaultPartLimits()}
}

// sessionCookie reports whether name keys sessions, configured or learned.
func (sz *sessionizer) sessionCookie(name string) bool {
	if slices.Contains(sz.cookies, name) {
		return true
	}
	if l := sz.learned.Load(); l != nil {
		return slices.Contains(*l, name)
	}
	return false
}

// learn adds a session cookie name found by what an answer did.
func (sz *sessionizer) learn(name string) {
	for {
		old := sz.learned.Load()
		var names []string
		if old != nil {
			if slices.Contains(*old, name) || len(*old) >= 64 {
				return
			}
			names = append(names, *old...)
		}
		names = append(names, name)
		if sz.learned.CompareAndSwap(old, &names) {
			return
		}
	}
}

// requestKey returns the session key of a request: its session cookie, else
// its credential, else the client's address and User-Agent.
func (sz *sessionizer) requestKey(h []traces.Header, ip string) string {
	return sz.requestKeyOf(h, "", ip)
}

// requestKeyOf is requestKey for a request to target, whose query may
// carry an access token.
func (sz *sessionizer) requestKeyOf(h []traces.Header, target, ip string) string {
	var learned []string
	if l := sz.learned.Load(); l != nil {
		learned = *l
	}
	for _, names := range [][]string{sz.cookies, learned} {
		for _, f := range h {
			if !strings.EqualFold(f.Name, "Cookie") {
				continue
			}
			cs, _ := http.ParseCookie(f.Value)
			for _, c := range cs {
				if c.Value != "" && slices.Contains(names, c.Name) {
					return "cookie:" + c.Name + "=" + c.Value
				}
			}
		}
	}
	if c := credential(h, target); c != "" {
		return "cred:" + c
	}
	if a := wire.FieldValue(h, "Authorization"); a != "" {
		return "auth:" + a
	}
	return "ip:" + ip + " ua:" + wire.FieldValue(h, "User-Agent")
}

// answerKey looks at a response's Set-Cookie fields for the session cookie:
// a new value starts the session it names; a deletion ends the current one.
// A cookie of a name not configured keys sessions when the answer sets it
// HttpOnly and keeps it (Max-Age or Expires ahead: a login cookie, not a
// flash message's, which lives as long as the browser), unless it holds a
// CSRF token or belongs to a CDN.
func (sz *sessionizer) answerKey(h []traces.Header, reqKey string) (newKey string, ends bool) {
	return sz.answerKeyOf(h, "", reqKey)
}

// answerKeyOf is answerKey for the answer to a request of method.
func (sz *sessionizer) answerKeyOf(h []traces.Header, method, reqKey string) (newKey string, ends bool) {
	for _, f := range h {
		if !strings.EqualFold(f.Name, "Set-Cookie") {
			continue
		}
		c, err := http.ParseSetCookie(f.Value)
		if err != nil {
			continue
		}
		if !sz.sessionCookie(c.Name) {
			kept := c.MaxAge > 0 || c.Expires.After(time.Now())
			if csrfName(c.Name) || infrastructureCookie(c.Name) || c.Value == "" || !c.HttpOnly || !kept {
				continue
			}
			sz.learn(c.Name)
		}
		if c.Value == "" || c.MaxAge < 0 || (!c.Expires.IsZero() && c.Expires.Before(time.Now())) {
			ends = true
			continue
		}
		if k := "cookie:" + c.Name + "=" + c.Value; k != reqKey {
			newKey = k
		}
	}
	return newKey, ends
}

// get returns the open session for key, starting one at now if there is
// none. Callers hold mu.
func (sz *sessionizer) get(key string, now time.Time) *session {
	s := sz.open[key]
	if s == nil {
		sz.nextID++
		s = &session{id: fmt.Sprintf("%s-%06d", sz.idPrefix, sz.nextID), key: key, keys: []string{key}, first: now, last: now}
		sz.open[key] = s
	}
	return s
}

// begin files a request that has just arrived under its session, so that
// the session does not end while the request is in flight.
func (sz *sessionizer) begin(r *record) {
	cookies := requestCookies(r.reqHeader)
	sz.mu.Lock()
	defer sz.mu.Unlock()
	s := sz.keyed(r, cookies)
	s.inflight++
	s.last = r.start
	r.session = s
}

// keyed returns the session of the identity r sends, strongest first: its
// session cookie or credential if a session has it, else a cookie value
// an answer gave one open session; else the session r's key names, opened
// now if none (a session cookie or credential no answer gave in this
// capture: the visit continues one from before). Callers hold mu.
func (sz *sessionizer) keyed(r *record, cookies []string) *session {
	if s := sz.open[r.key]; s != nil && !r.anonymous() {
		return s
	}
	if s := sz.cookieOwner(r, cookies); s != nil {
		return s
	}
	s := sz.open[r.key]
	if s == nil {
		s = sz.get(r.key, r.start)
		s.continues = !s.anonymous()
	}
	return s
}

// cookieOwner returns the open visit one of cookies (the keys of the
// cookies r sent) names, keying r by it; nil if none does. Callers hold mu.
func (sz *sessionizer) cookieOwner(r *record, cookies []string) *session {
	for _, k := range cookies {
		if s := sz.open[k]; s != nil && !sz.shared[k] {
			r.key = k
			return s
		}
	}
	return nil
}

// anonymous reports a request keyed by its client's address only.
func (r *record) anonymous() bool { return strings.HasPrefix(r.key, "ip:") }

// abandon forgets a request that will not be recorded.
func (sz *sessionizer) abandon(r *record) {
	sz.mu.Lock()
	defer sz.mu.Unlock()
	delete(sz.sockets, r)
	r.session.inflight--
	sz.arrived(r)
}

// evidence is what a finished exchange's request and answer hold that
// places it (see complete).
type evidence struct {
	sent []string // the identity values and places the request sent, when it has no identity of its own
	// cookies are the keys of the cookies the request sent, when it has no
	// identity of its own: a value an answer still in flight gave when it
	// began may be a visit's by the time it completes.
	cookies []string
	given   [][]byte // the values its answer gave, within its body
	places  []string // the places its answer gave
	login   string   // the login its answer made, if any
	set     []string // the cookie keys its answer set
}

// announce indexes the places the head of r's answer gives (a redirect's
// target, a page), before the head is relayed: a browser follows a redirect
// and fetches a page's sub-resources as soon as the head reaches it, so the
// requests that name them may end before r does; they wait for r (see
// coming).
func (sz *sessionizer) announce(r *record) {
	places := answerPlaces(r)
	if len(places) == 0 {
		return
	}
	sz.mu.Lock()
	defer sz.mu.Unlock()
	for _, v := range places {
		sz.soon[v] = r
	}
	r.announced = places
}

// coming returns the record, not yet complete, whose answer's head gave one
// of the places r sent, if one did: r is filed once that record is, when
// the place can tell whose r is. Callers hold mu.
func (sz *sessionizer) coming(sent []string, r *record) *record {
	for _, v := range sent {
		if g := sz.soon[v]; g != nil && g != r && g.owner == nil && isPlace(v) {
			return g
		}
	}
	return nil
}

// arrived ends r's announcement, r being complete (or abandoned), and files
// the records that waited for it. Callers hold mu.
func (sz *sessionizer) arrived(r *record) {
	for _, v := range r.announced {
		if sz.soon[v] == r {
			delete(sz.soon, v)
		}
	}
	r.announced = nil
	waiting := r.after
	r.after = nil
	for _, w := range waiting {
		ev := w.ev
		w.ev = nil
		sz.file(w, *ev)
	}
}

// overdue files the records still waiting for a record announced more than
// redirectSettle before now (all of them when all is set): one that never
// completes delays no one for long, and loses no one. Callers hold mu.
func (sz *sessionizer) overdue(now time.Time, all bool) {
	for _, g := range sz.soon {
		if all || now.Sub(g.ttfb) > redirectSettle {
			sz.arrived(g)
		}
	}
}

// complete adds a finished exchange to its session (see sessionizer for
// how it is found). The request and answer are scanned for identity values
// before the lock is taken.
func (sz *sessionizer) complete(r *record) {
	ev := evidence{set: givenCookies(r.respHeader)}
	if r.session == nil || r.session.anonymous() {
		ev.sent = append(requestIdentities(r), requestPlaces(r)...)
		ev.cookies = requestCookies(r.reqHeader)
	}
	ev.given, ev.login = answerIdentities(r)
	ev.places = answerPlaces(r)

	sz.mu.Lock()
	defer sz.mu.Unlock()
	delete(sz.sockets, r)
	if r.session == nil {
		// Never filed by begin (cut before its head was whole): file it
		// now, as the request it was.
		r.session = sz.keyed(r, requestCookies(r.reqHeader))
		r.session.inflight++
	}
	r.session.inflight--
	sz.file(r, ev)
	sz.arrived(r)
}

// file puts the finished exchange r in its session, by the evidence ev, and
// indexes the values its answer gave; or, when only a record not yet
// complete can place it, leaves it waiting for that one (see announce).
// Callers hold mu.
func (sz *sessionizer) file(r *record, ev evidence) {
	sent, login, set := ev.sent, ev.login, ev.set
	s := r.session
	for s.movedTo != nil && r.start.Before(s.movedAt) && (!s.byLogin || r.conn == 0 && r.newKey == "" && login == "") {
		// A login's move takes along what was in flight only where no
		// connection tells whose it was, and never another login.
		s = s.movedTo
	}
	var cs *clientConn
	if r.conn != 0 {
		cs = sz.conns[r.conn]
		if cs == nil {
			cs = &clientConn{}
			sz.conns[r.conn] = cs
		}
		cs.last = maxTime(cs.last, r.end)
	}
	r.placed = traces.PlacedKey
	if s.anonymous() {
		if o := sz.cookieOwner(r, ev.cookies); o != nil {
			// A cookie it sent that an answer gave after it began (an
			// app that writes its cookie afresh with every answer, a
			// page's script quicker than the proxy's record).
			s, r.placed = o, traces.PlacedKey
		} else if cs != nil && cs.sess != nil && !cs.sess.done {
			s, r.placed = cs.sess, traces.PlacedConnection
		} else if j := sz.joined(sent, r.start); j != nil {
			s, r.placed = j, traces.PlacedValue
		} else if g := sz.coming(sent, r); g != nil {
			r.ev = new(evidence)
			*r.ev = ev
			g.after = append(g.after, r)
			return
		}
	}
	newKey := r.newKey
	if newKey == "" && s.anonymous() {
		// The first cookie an answer gives a client that had no identity
		// starts its visit, whatever its name.
		for _, k := range set {
			if sz.claimable(k) {
				newKey = k
				break
			}
		}
	}
	if newKey == "" && login != "" && "cred:"+login != r.key {
		newKey = "cred:" + login
	}
	if newKey != "" && sz.open[newKey] != s {
		switch {
		case s.anonymous():
			s = sz.login(s, r, cs, newKey, sent)
			r.placed = traces.PlacedKey
		case strings.HasPrefix(newKey, "cookie:"):
			sz.giveCookie(s, newKey, r.start)
		default:
			sz.rename(s, newKey, r.start)
		}
	}
	if !s.anonymous() {
		for _, k := range set {
			sz.giveCookie(s, k, r.start)
		}
	}
	if s.done {
		s = sz.get(r.key, r.start)
	}
	if r.ends {
		s.ending = true
	}
	s.records = append(s.records, r)
	r.owner = s
	sz.pend(s, r)
	s.last = maxTime(s.last, r.end)
	if cs != nil {
		if s.anonymous() {
			cs.anon = append(cs.anon, r)
		} else {
			if cs.sess != s {
				sz.adopt(cs, s)
			}
			cs.sess = s
		}
	}
	for _, b := range ev.given {
		// Looked up by the body's bytes: a string is made only for a
		// value indexed.
		cur, ok := sz.given[string(b)]
		switch {
		case !ok:
			v := string(b)
			sz.given[v] = r
			r.gave = append(r.gave, v)
		case cur != nil && (cur.owner != s || s.anonymous()):
			// Given in two visits (or twice among clients not yet told
			// apart): it tells none.
			v := string(b)
			sz.given[v] = nil
			r.gave = append(r.gave, v)
		}
	}
	for _, v := range ev.places {
		// Many visits see the same pages: the latest to load one is the
		// one its sub-resources name, unless another client loaded it
		// just before (see linked).
		cur, ok := sz.given[v]
		if ok && cur != nil && cur != r && (cur.owner != s || s.anonymous()) {
			sz.rival[v] = cur.end
		}
		if !ok {
			r.gave = append(r.gave, v)
		}
		sz.given[v] = r
		r.places = append(r.places, v)
	}
}

// claimable reports whether the cookie key k can open or join a visit: no
// other visit was given it.
func (sz *sessionizer) claimable(k string) bool {
	return !sz.shared[k] && (sz.open[k] == nil || sz.gave[k] == nil)
}

// maxShared bounds the cookie values remembered as shared; past it they are
// forgotten and may tell a visit again until given twice again.
const maxShared = 1 << 16

// giveCookie adds the cookie key k, which an answer gave s, to s's
// identity: unless another visit was given it too (then it is nobody's),
// and taking along a session that k opened because its client sent it
// before the answer that gave it was complete. Callers hold mu.
func (sz *sessionizer) giveCookie(s *session, k string, at time.Time) {
	if sz.shared[k] {
		return
	}
	other := sz.open[k]
	switch {
	case other == s:
	case other == nil:
		sz.open[k] = s
		s.keys = append(s.keys, k)
	case sz.gave[k] == nil:
		sz.rename(s, k, at)
	default:
		if len(sz.shared) >= maxShared {
			clear(sz.shared)
		}
		sz.shared[k] = true
		delete(sz.open, k)
		delete(sz.gave, k)
		return
	}
	sz.gave[k] = s
}

// placeContest is how close two clients' loads of one page (or redirects
// to one place) must be for a request naming it to tell neither.
const placeContest = 2 * time.Second

// isPlace reports a value that is a place (see place).
func isPlace(v string) bool {
	return strings.HasPrefix(v, redirectTo) || strings.HasPrefix(v, referredBy)
}

// linked returns the record whose answer gave v, if it still tells whose
// a request at at is: a value one answer gave, or a place loaded last by
// one client with no other just before it, and a redirect's target only
// while a browser would follow it. Callers hold mu.
func (sz *sessionizer) linked(v string, at time.Time) *record {
	g := sz.given[v]
	if g == nil || g.owner == nil || g.owner.done {
		return nil
	}
	if isPlace(v) {
		if rival, ok := sz.rival[v]; ok && g.start.Sub(rival) < placeContest {
			return nil
		}
		if strings.HasPrefix(v, redirectTo) && at.Sub(g.end) > redirectSettle {
			return nil
		}
	}
	return g
}

// waiting returns the record of anon, the requests of clients not yet told
// apart, whose answer gave the place v that a request at at names, if one
// client's did (one connection's, or one record without a connection);
// nil if none or several. Callers hold mu.
func (sz *sessionizer) waiting(anon *session, v string, at time.Time) *record {
	if !isPlace(v) {
		return nil
	}
	var found *record
	for _, m := range slices.Backward(anon.records) {
		if !slices.Contains(m.places, v) || strings.HasPrefix(v, redirectTo) && at.Sub(m.end) > redirectSettle {
			continue
		}
		if found != nil && (m.conn == 0 || m.conn != found.conn) {
			return nil
		}
		found = m
	}
	return found
}

// joined returns the one open session whose answers gave one of values, or
// nil. Callers hold mu.
func (sz *sessionizer) joined(values []string, at time.Time) *session {
	var found *session
	for _, v := range values {
		g := sz.linked(v, at)
		if g == nil || g.owner.anonymous() {
			continue
		}
		s := g.owner
		if found != nil && found != s {
			return nil
		}
		found = s
	}
	return found
}

// login starts the session newKey names for r, which came in the
// anonymous session anon and whose answer gave the client its first
// identity (a cookie, a login's token): the anonymous requests of r's
// connection go with it, and so do those of anon that came with no
// connection to tell whose they were (clients that share an address and
// User-Agent cannot be told apart otherwise). Requests of other connections
// stay for stronger evidence, or a window (see settle). Callers hold mu.
func (sz *sessionizer) login(anon *session, r *record, cs *clientConn, newKey string, sent []string) *session {
	target := sz.get(newKey, r.start)
	target.continues = false // an answer gave it
	if cs != nil {
		sz.adopt(cs, target)
	}
	// The page r's Referer names, the redirect r followed: requests of
	// the same client on other connections (a page and its cross-site
	// API), and their connections with them, when one client only of
	// those still waiting in anon loaded it.
	for _, v := range sent {
		g := sz.waiting(anon, v, r.start)
		if g == nil {
			continue
		}
		if gc := sz.conns[g.conn]; g.conn != 0 && gc != nil && gc.sess == nil {
			sz.adopt(gc, target)
			gc.sess = target
		} else if g.conn == 0 {
			anon.records = slices.DeleteFunc(anon.records, func(x *record) bool { return x == g })
			sz.move(g, target)
		}
		g.placed = traces.PlacedValue
	}
	if !anon.done {
		sz.moveUntied(anon, 0, target, traces.PlacedLogin, func(m *record) bool { return m.conn == 0 })
	}
	anon.movedTo, anon.movedAt, anon.byLogin = target, r.start, true
	given := r.ttfb
	if given.IsZero() {
		given = r.end
	}
	w := &loginWindow{from: anon, to: target, begin: r.start, upTo: given.Add(loginSettle)}
	if n := len(anon.logins); n >= 8 && n&(n-1) == 0 {
		// Drop the windows of logins whose sessions have ended, now and
		// then: an address many users log in from keeps only the live ones.
		anon.logins = slices.DeleteFunc(anon.logins, func(w *loginWindow) bool { return w.to == nil })
	}
	anon.logins = append(anon.logins, w)
	if target.login == nil {
		target.login = w
	}
	return target
}

// settle is called as s ends, before any session of the sweep is marked
// done. A request left in an anonymous session that no connection or
// value tied to anyone, and that began within a login's window, goes to
// that login's session: the favicon a browser fetched on a second
// connection as its page logged in is that visit's, not a visit of its own.
// The choice waits until now because a later login takes such requests
// first (clients sharing an address and User-Agent cannot be told apart
// otherwise). Callers hold mu.
func (sz *sessionizer) settle(s *session) {
	if s.anonymous() {
		for _, w := range slices.Backward(s.logins) {
			sz.settleWindow(w)
		}
	} else if w := s.login; w != nil {
		sz.settleWindow(w)
	}
}

// release lets go of s's login windows once settled: neither session is
// held for the other's sake. Callers hold mu.
func (sz *sessionizer) release(s *session) {
	for _, w := range s.logins {
		w.from, w.to = nil, nil
	}
	s.logins = nil
	if w := s.login; w != nil {
		w.from, w.to = nil, nil
		s.login = nil
	}
}

// strays is called as the anonymous session s ends, after settle. When
// all it has left are sub-resources (an icon, a font, an image: requests a
// page makes for itself), they are no visit: each goes to the open visit
// made from s that was nearest in time, or, with none, s is kept apart as
// strays, never a profile of its own. Callers hold mu.
func (sz *sessionizer) strays(s *session) {
	if len(s.records) == 0 || s.carry != nil || slices.ContainsFunc(s.records, func(r *record) bool { return !subresource(r) }) {
		return // a visit, or one whose parts already are
	}
	s.records = slices.DeleteFunc(s.records, func(m *record) bool {
		var best *session
		var bestGap time.Duration
		for _, w := range s.logins {
			v := w.to
			if v == nil || v.done || v.anonymous() {
				continue
			}
			gap := max(v.first.Sub(m.start), m.start.Sub(v.last), 0)
			if best == nil || gap < bestGap {
				best, bestGap = v, gap
			}
		}
		if best == nil {
			return false
		}
		m.placed = traces.PlacedNearest
		sz.move(m, best)
		return true
	})
	s.strays = len(s.records) > 0
}

// settleWindow moves the requests of w's anonymous session that began in
// it to its login's session, while neither has ended. Callers hold mu.
func (sz *sessionizer) settleWindow(w *loginWindow) {
	if w.from == nil || w.from.done || w.to.done {
		return
	}
	// Records join an anonymous session as they end: only the tail that
	// ended after the login began can have begun in its window.
	recs := w.from.records
	i := len(recs)
	for i > 0 && !recs[i-1].end.Before(w.begin) {
		i--
	}
	sz.moveUntied(w.from, i, w.to, traces.PlacedWindow, func(m *record) bool {
		return !m.start.Before(w.begin) && !m.start.After(w.upTo) && m.newKey == ""
	})
}

// moveUntied moves the records of from, from index i on, that take and
// whose connection never carried an identity, to to, placed so. Callers
// hold mu.
func (sz *sessionizer) moveUntied(from *session, i int, to *session, placed traces.Placement, take func(*record) bool) {
	tail := slices.DeleteFunc(from.records[i:], func(m *record) bool {
		if cs := sz.conns[m.conn]; cs != nil && cs.sess != nil || !take(m) {
			return false
		}
		m.placed = placed
		sz.move(m, to)
		return true
	})
	from.records = from.records[:i+len(tail)]
}

// adopt moves the anonymous requests a connection carried so far to s, the
// first identified session it carries. Callers hold mu.
func (sz *sessionizer) adopt(cs *clientConn, s *session) {
	for _, m := range cs.anon {
		if o := m.owner; o != nil && o != s && !o.done {
			o.records = slices.DeleteFunc(o.records, func(x *record) bool { return x == m })
			m.placed = traces.PlacedConnection
			sz.move(m, s)
		}
	}
	cs.anon = nil
}

// move appends m to s. Callers hold mu.
func (sz *sessionizer) move(m *record, s *session) {
	sz.pend(s, m)
	s.records = append(s.records, m)
	s.first = minTime(s.first, m.start)
	s.last = maxTime(s.last, m.end)
	m.owner = s
}

// rename gives s the key newKey too: the token it presented was renewed
// (a refresh), or its session cookie was rotated (at login, as Django,
// Rails and Express do). A session newKey already named, opened by a
// request that used the new value before the answer that gave it was
// complete, is the same visit: its records join s. Callers hold mu.
func (sz *sessionizer) rename(s *session, newKey string, at time.Time) {
	if other := sz.open[newKey]; other != nil && other != s {
		for _, m := range other.records {
			sz.move(m, s)
		}
		other.records = nil
		for _, k := range other.keys {
			if sz.open[k] == other {
				sz.open[k] = s
				s.keys = append(s.keys, k)
			}
		}
		other.movedTo, other.movedAt = s, at.Add(time.Hour) // whatever it has in flight follows
		for id, cs := range sz.conns {
			if cs.sess == other {
				sz.conns[id].sess = s
			}
		}
		return
	}
	sz.open[newKey] = s
	s.keys = append(s.keys, newKey)
}

// evidence says what tied s's requests together (traces.Session.Evidence):
// the kinds of identity it was known by, cookies by name, then how its
// other requests were placed.
func (s *session) evidence() string {
	if s.anonymous() {
		return "address"
	}
	var cookies, kinds []string
	for _, k := range s.keys {
		switch kind, v, _ := strings.Cut(k, ":"); kind {
		case "cookie":
			name, _, _ := strings.Cut(v, "=")
			cookies = append(cookies, name)
		case "cred", "auth":
			kinds = append(kinds, "token")
		}
	}
	slices.Sort(cookies)
	if len(cookies) > 0 {
		kinds = append([]string{"cookie:" + strings.Join(slices.Compact(cookies), ",")}, kinds...)
	}
	placed := make([]bool, traces.PlacedAnonymous+1)
	for _, r := range s.records {
		placed[r.placed] = true
	}
	if s.carry != nil {
		for p := range placed {
			placed[p] = placed[p] || s.carry.placed&(1<<p) != 0
		}
	}
	for p := traces.PlacedConnection; p < traces.PlacedAnonymous; p++ {
		if placed[p] {
			kinds = append(kinds, p.String())
		}
	}
	return strings.Join(slices.Compact(kinds), " ")
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// endSettle is how long a session whose cookie an answer deleted (a
// logout) stays open for what its client sends next: the page the logout
// leads to, and that page's sub-resources.
const endSettle = time.Second

// over reports whether s ends at now (see sweep), idle the idle time.
func (sz *sessionizer) over(s *session, now time.Time, all bool, idle time.Duration) bool {
	quiet := s.inflight == 0 && (s.ending && now.Sub(s.last) >= endSettle || now.Sub(s.last) >= idle)
	return all || quiet || now.Sub(s.first) >= sz.maxAge
}

// pressedIdle is the idle time that ends a visit while the capture's
// buffer is pressed (see Capture.pressed), when shorter than the one
// configured: the visits quiet that long are most likely over, and end
// rather than hold memory; one whose client comes back continues in a new
// session (traces.Session.Continues).
const pressedIdle = time.Minute

// sweep ends the sessions that are over at now (see sweepIdle) with the
// idle time configured.
func (sz *sessionizer) sweep(now time.Time, all bool) []*session {
	return sz.sweepIdle(now, all, sz.idle)
}

// sweepIdle ends the sessions that are over at now: idle for idle, or
// ending and settled, with nothing in flight; or older than the longest
// session, in flight or not. With all set, it ends every session. It
// returns them, and counts those that idle, shorter than the one
// configured, ended early.
func (sz *sessionizer) sweepIdle(now time.Time, all bool, idle time.Duration) []*session {
	sz.mu.Lock()
	defer sz.mu.Unlock()
	sz.overdue(now, all)
	ending := map[*session]bool{}
	var order []*session
	for _, s := range sz.open {
		if !s.done && !ending[s] && sz.over(s, now, all, idle) {
			ending[s] = true
			order = append(order, s)
			if idle < sz.idle && !all && (len(s.records) > 0 || s.carry != nil) && !sz.over(s, now, false, sz.idle) {
				sz.early.Add(1)
			}
		}
	}
	// Settle while every session is still open, in the order they began,
	// so that a sweep decides as the next one would.
	slices.SortFunc(order, func(a, b *session) int { return a.first.Compare(b.first) })
	for _, s := range order {
		sz.settle(s)
	}
	for _, s := range order {
		if s.anonymous() {
			sz.strays(s)
		}
	}
	var over []*session
	for _, s := range order {
		sz.release(s)
		s.done = true
		delete(sz.dirty, s)
		for _, sk := range s.keys {
			if sz.open[sk] == s {
				delete(sz.open, sk)
			}
			if sz.gave[sk] == s {
				delete(sz.gave, sk)
			}
		}
		for _, m := range s.records {
			for _, v := range m.gave {
				if g, ok := sz.given[v]; ok && (g == nil || g == m) {
					delete(sz.given, v)
					delete(sz.rival, v)
				}
			}
		}
		if len(s.records) > 0 || s.carry != nil {
			over = append(over, s) // a session in parts has a last one to write, even empty
		}
	}
	for k, s := range sz.open {
		if s.done {
			delete(sz.open, k) // a key a merged session's records went on under
		}
	}
	for id, cs := range sz.conns {
		if all || now.Sub(cs.last) >= sz.idle || cs.sess != nil && cs.sess.done {
			delete(sz.conns, id)
		}
	}
	return over
}

// unjournaled returns, for each open session, its finished exchanges not
// yet journaled, as sessions of those exchanges only, and marks them
// journaled. The records are complete; what placed them may change later
// under the lock, so the sessions hold copies, built outside it.
func (sz *sessionizer) unjournaled() []*session {
	sz.mu.Lock()
	defer sz.mu.Unlock()
	var out []*session
	var later []*session
	for s := range sz.dirty {
		if s.carry != nil && s.carry.fast {
			// The next part takes them (see partCarry.fast); those it
			// took already are let go.
			s.pending = slices.DeleteFunc(s.pending, func(r *record) bool { return r.journaled })
			later = append(later, s)
			continue
		}
		var recs []*record
		for _, r := range s.pending {
			if !r.journaled && r.owner == s { // a record moved on is taken where it went
				r.journaled = true
				// A copy: what placed the record may still change (a
				// connection's later login adopts it) while the copy is
				// built outside the lock.
				c := *r
				recs = append(recs, &c)
			}
		}
		s.pending = nil
		if len(recs) > 0 {
			out = append(out, &session{id: s.id, key: s.key, records: recs})
		}
	}
	clear(sz.dirty)
	for _, s := range later {
		sz.dirty[s] = true
	}
	return out
}

// pend notes that r joined s, for the journal. Callers hold mu.
func (sz *sessionizer) pend(s *session, r *record) {
	if !sz.journaling || r.journaled {
		return
	}
	if sz.dirty == nil {
		sz.dirty = map[*session]bool{}
	}
	s.pending = append(s.pending, r)
	sz.dirty[s] = true
}

// openCount returns how many sessions are open.
func (sz *sessionizer) openCount() int {
	sz.mu.Lock()
	defer sz.mu.Unlock()
	seen := map[*session]bool{}
	for _, s := range sz.open {
		seen[s] = true
	}
	return len(seen)
}

// build turns a finished session into a traces.Session: exchanges in the
// order they started, with offsets from the first and think gaps. The
// session is no longer shared once sweep has returned it, so no lock is
// needed. For a session written in parts it is the last part, with the
// parts' start and think gaps going on from theirs.
func (s *session) build() *traces.Session {
	recs := s.records
	slices.SortStableFunc(recs, func(a, b *record) int { return cmp.Compare(a.start.UnixNano(), b.start.UnixNano()) })
	var start, busy time.Time
	switch {
	case s.carry != nil:
		start, busy = s.carry.base, s.carry.busy
	case len(recs) > 0:
		start = recs[0].start
	}
	return &traces.Session{ID: s.id, Client: s.key, Start: start, Exchanges: exchanges(recs, start, s.anonymous(), &busy),
		Evidence: s.evidence(), Continues: s.continues, Strays: s.strays}
}

// exchanges turns records, in the order they started, into exchanges with
// offsets from start and think gaps after busy, the latest end of those
// before, which it moves on.
func exchanges(recs []*record, start time.Time, anonymous bool, busy *time.Time) []traces.Exchange {
	out := make([]traces.Exchange, len(recs))
	for i, r := range recs {
		ex := &out[i]
		*ex = r.exchange(start)
		ex.Duration, ex.Error, ex.Placed = r.end.Sub(r.start), r.err, r.placed
		if anonymous {
			ex.Placed = traces.PlacedAnonymous
		}
		if !busy.IsZero() && r.start.After(*busy) {
			ex.Think = r.start.Sub(*busy)
		}
		*busy = maxTime(*busy, r.end)
		if r.sock != nil {
			frames, cl, errs := r.sock.Seal()
			ws := &traces.WebSocket{Frames: socketFrames(frames, start), Close: traces.Close{Offset: r.end.Sub(start)}}
			if cl != nil {
				ws.Close = traces.Close{Offset: cl.At.Sub(start), Code: cl.Code, Reason: cl.Reason, ByClient: cl.ByClient}
			}
			if len(errs) > 0 {
				ex.Error = strings.Join(append([]string{ex.Error}, errs...), "; ")
				ex.Error = strings.TrimPrefix(ex.Error, "; ")
			}
			ex.WebSocket = ws
		}
	}
	return out
}

// exchange returns what r asked and was answered, with its offset from
// start.
func (r *record) exchange(start time.Time) traces.Exchange {
	ex := traces.Exchange{
		Offset:     r.start.Sub(start),
		Method:     r.method,
		URL:        r.url,
		Host:       r.host,
		ReqHeader:  r.reqHeader,
		ReqBody:    r.reqBody.Body(),
		Status:     r.status,
		RespHeader: r.respHeader,
		RespBody:   r.respBody.Body(),
	}
	if !r.ttfb.IsZero() {
		ex.TTFB = r.ttfb.Sub(r.start)
	}
	return ex
}

// socketFrames returns frames in the order they came, with offsets from
// start.
func socketFrames(frames []wire.TimedFrame, start time.Time) []traces.Frame {
	slices.SortStableFunc(frames, func(a, b wire.TimedFrame) int { return a.At.Compare(b.At) })
	out := make([]traces.Frame, len(frames))
	for j, f := range frames {
		out[j] = f.Frame
		out[j].Offset = f.At.Sub(start)
	}
	return out
}
