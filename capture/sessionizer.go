package capture

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

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
	reqBody          *bodyTap
	status           int
	respHeader       []traces.Header
	respBody         *bodyTap
	err              string
	sock             *socket

	held    int64    // body bytes it holds, counted in the capture's buffer
	key     string   // the session key of the request
	newKey  string   // the session key a Set-Cookie in the answer starts, if any
	ends    bool     // the answer deletes the session cookie
	session *session // where begin put it
}

// session is a visit being recorded. The sessionizer's lock guards it.
type session struct {
	id       string
	key      string
	first    time.Time
	last     time.Time
	records  []*record
	inflight int
	ending   bool // end as soon as nothing is in flight
	done     bool
	// movedTo is the session a login moved this anonymous one's records
	// to, at movedAt: a request that began before then and was still in
	// flight (a favicon the browser had asked for) follows them.
	movedTo *session
	movedAt time.Time
}

// sessionizer groups exchanges into sessions. It is safe for concurrent use;
// the proxy calls begin and complete from request goroutines under a short
// lock, and the writer goroutine calls sweep.
type sessionizer struct {
	cookies  []string
	idle     time.Duration
	maxAge   time.Duration
	idPrefix string

	mu     sync.Mutex
	open   map[string]*session
	nextID uint64
}

func newSessionizer(cookies []string, idle, maxAge time.Duration, idPrefix string) *sessionizer {
	return &sessionizer{cookies: cookies, idle: idle, maxAge: maxAge, idPrefix: idPrefix, open: map[string]*session{}}
}

// requestKey returns the session key of a request: its session cookie, else
// its credential, else the client's address and User-Agent.
func (sz *sessionizer) requestKey(h []traces.Header, ip string) string {
	for _, f := range h {
		if !strings.EqualFold(f.Name, "Cookie") {
			continue
		}
		cs, _ := http.ParseCookie(f.Value)
		for _, c := range cs {
			if c.Value != "" && slices.Contains(sz.cookies, c.Name) {
				return "cookie:" + c.Name + "=" + c.Value
			}
		}
	}
	if a := fieldValue(h, "Authorization"); a != "" {
		return "auth:" + a
	}
	return "ip:" + ip + " ua:" + fieldValue(h, "User-Agent")
}

// answerKey looks at a response's Set-Cookie fields for the session cookie:
// a new value starts the session it names; a deletion ends the current one.
func (sz *sessionizer) answerKey(h []traces.Header, reqKey string) (newKey string, ends bool) {
	for _, f := range h {
		if !strings.EqualFold(f.Name, "Set-Cookie") {
			continue
		}
		c, err := http.ParseSetCookie(f.Value)
		if err != nil || !slices.Contains(sz.cookies, c.Name) {
			continue
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
		s = &session{id: fmt.Sprintf("%s-%06d", sz.idPrefix, sz.nextID), key: key, first: now, last: now}
		sz.open[key] = s
	}
	return s
}

// begin files a request that has just arrived under its session, so that
// the session does not end while the request is in flight.
func (sz *sessionizer) begin(r *record) {
	sz.mu.Lock()
	defer sz.mu.Unlock()
	s := sz.get(r.key, r.start)
	s.inflight++
	s.last = r.start
	r.session = s
}

// abandon forgets a request that will not be recorded.
func (sz *sessionizer) abandon(r *record) {
	sz.mu.Lock()
	defer sz.mu.Unlock()
	r.session.inflight--
}

// complete adds a finished exchange to its session. A login that sets a new
// session cookie moves the exchange to the session the cookie names; when
// the request was anonymous, the anonymous requests of the same client that
// are complete move with it. (Clients that share an address and User-Agent
// cannot be told apart before they log in.)
func (sz *sessionizer) complete(r *record) {
	sz.mu.Lock()
	defer sz.mu.Unlock()
	s := r.session
	s.inflight--
	for s.movedTo != nil && r.start.Before(s.movedAt) && r.newKey == "" {
		s = s.movedTo
	}
	if r.newKey != "" {
		target := sz.get(r.newKey, r.start)
		switch {
		case s == target:
		case strings.HasPrefix(r.key, "ip:"):
			if !s.done && len(s.records) > 0 {
				target.records = append(target.records, s.records...)
				target.first = minTime(target.first, s.first)
				s.records = nil
			}
			s.movedTo, s.movedAt = target, r.start
		default:
			s.ending = true // a new login ends the visit of the old cookie
		}
		target.records = append(target.records, r)
		target.last = maxTime(target.last, r.end)
		return
	}
	if s.done {
		s = sz.get(r.key, r.start)
	}
	if r.ends {
		s.ending = true
	}
	s.records = append(s.records, r)
	s.last = maxTime(s.last, r.end)
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

// sweep ends the sessions that are over at now: idle for the idle time, or
// ending, with nothing in flight; or older than the longest session, in
// flight or not. With all set, it ends every session. It returns them.
func (sz *sessionizer) sweep(now time.Time, all bool) []*session {
	sz.mu.Lock()
	defer sz.mu.Unlock()
	var over []*session
	for k, s := range sz.open {
		quiet := s.inflight == 0 && (s.ending || now.Sub(s.last) >= sz.idle)
		if all || quiet || now.Sub(s.first) >= sz.maxAge {
			s.done = true
			delete(sz.open, k)
			if len(s.records) > 0 {
				over = append(over, s)
			}
		}
	}
	slices.SortFunc(over, func(a, b *session) int { return a.first.Compare(b.first) })
	return over
}

// openCount returns how many sessions are open.
func (sz *sessionizer) openCount() int {
	sz.mu.Lock()
	defer sz.mu.Unlock()
	return len(sz.open)
}

// build turns a finished session into a traces.Session: exchanges in the
// order they started, with offsets from the first and think gaps. The
// session is no longer shared once sweep has returned it, so no lock is
// needed.
func (s *session) build() *traces.Session {
	recs := s.records
	slices.SortStableFunc(recs, func(a, b *record) int { return cmp.Compare(a.start.UnixNano(), b.start.UnixNano()) })
	start := recs[0].start
	out := &traces.Session{ID: s.id, Client: s.key, Start: start, Exchanges: make([]traces.Exchange, len(recs))}
	var busyUntil time.Time // the latest end of the exchanges so far
	for i, r := range recs {
		ex := &out.Exchanges[i]
		*ex = traces.Exchange{
			Offset:     r.start.Sub(start),
			Duration:   r.end.Sub(r.start),
			Method:     r.method,
			URL:        r.url,
			Host:       r.host,
			ReqHeader:  r.reqHeader,
			ReqBody:    r.reqBody.body(),
			Status:     r.status,
			RespHeader: r.respHeader,
			RespBody:   r.respBody.body(),
			Error:      r.err,
		}
		if !r.ttfb.IsZero() {
			ex.TTFB = r.ttfb.Sub(r.start)
		}
		if i > 0 && r.start.After(busyUntil) {
			ex.Think = r.start.Sub(busyUntil)
		}
		busyUntil = maxTime(busyUntil, r.end)
		if r.sock != nil {
			frames, cl, errs := r.sock.seal()
			ws := &traces.WebSocket{Frames: make([]traces.Frame, len(frames)), Close: traces.Close{Offset: r.end.Sub(start)}}
			slices.SortStableFunc(frames, func(a, b timedFrame) int { return a.at.Compare(b.at) })
			for j, f := range frames {
				ws.Frames[j] = f.f
				ws.Frames[j].Offset = f.at.Sub(start)
			}
			if cl != nil {
				ws.Close = traces.Close{Offset: cl.at.Sub(start), Code: cl.code, Reason: cl.reason, ByClient: cl.byClient}
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
