package traces

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// MaxEndpoints bounds how many distinct endpoint names Stats counts; requests
// to endpoints past it are counted under OtherEndpoints.
const MaxEndpoints = 1000

// OtherEndpoints names the endpoint that requests past MaxEndpoints distinct
// names are counted under.
const OtherEndpoints = "(other)"

// Stats summarizes sessions, as `thrive traces inspect` prints them. The zero
// value is ready to use; Add sessions to it.
//
// Endpoints are named by Template, so that requests to the same resource
// count together, and by the operation they carry.
type Stats struct {
	Sessions   int
	Exchanges  int
	WebSockets int
	// FramesSent and FramesReceived count WebSocket frames from the client
	// and from the server.
	FramesSent, FramesReceived int
	// Errors counts exchanges that failed at the transport level.
	Errors int
	// First is the earliest session start; Last the latest session end.
	First, Last time.Time
	// Profiles counts sessions per profile.
	Profiles map[string]int
	// KeyedBy counts sessions by what grouped them (KeyKind).
	KeyedBy map[string]int
	// Hosts counts requests per scheme://host[:port] of the absolute URLs
	// a forward proxy records; nil when no URL names one.
	Hosts map[string]int
	// Status counts responses per status code; 0 means no response.
	Status map[int]int
	// Endpoints counts requests per endpoint name.
	Endpoints map[string]int
	// RequestBytes, ResponseBytes and FrameBytes add up full body and
	// payload sizes, including what truncation left out.
	RequestBytes, ResponseBytes, FrameBytes int64
	// Truncated counts bodies and payloads recorded only in part.
	Truncated int
	// Strays counts the exchanges of sessions kept apart as strays
	// (sub-resources no visit claimed); their sessions are not in
	// Sessions, Profiles or the other counts.
	Strays int
	// Continuing counts sessions that began with an identity an earlier
	// visit was given.
	Continuing int
	// Partial counts sessions the file holds only some parts of (see
	// Session.Partial).
	Partial int
	// Placed counts exchanges by what placed them in their session.
	Placed map[string]int
	// Visits lists, for up to MaxVisits sessions, what keyed each and the
	// requests placed by a weak rule (time alone), sessions with such
	// requests first.
	Visits []Visit
}

// MaxVisits bounds how many sessions Stats.Visits lists.
const MaxVisits = 1000

// Visit is what tied one session together, for a user to see a wrong cut
// before replaying it.
type Visit struct {
	ID        string `json:"id"`
	Profile   string `json:"profile"`
	Evidence  string `json:"evidence,omitempty"`
	Exchanges int    `json:"exchanges"`
	Continues bool   `json:"continues,omitempty"`
	// Weak lists the requests placed by time alone: "GET /favicon.ico
	// (window)".
	Weak []string `json:"weak,omitempty"`
}

// KeyKind names what a session's Client key is: "cookie" (a session
// cookie), "token" (a bearer token or other credential a login returned),
// "authorization" (another Authorization header), "address" (the client's
// address and User-Agent), or "other".
func KeyKind(client string) string {
	kind, _, _ := strings.Cut(client, ":")
	switch kind {
	case "cookie":
		return "cookie"
	case "cred":
		return "token"
	case "auth":
		return "authorization"
	case "ip":
		return "address"
	}
	return "other"
}

// Add counts s.
func (st *Stats) Add(s *Session) {
	if st.Profiles == nil {
		st.Profiles = map[string]int{}
		st.KeyedBy = map[string]int{}
		st.Status = map[int]int{}
		st.Endpoints = map[string]int{}
	}
	if s.Strays {
		st.Strays += len(s.Exchanges)
		return
	}
	st.Sessions++
	st.Profiles[s.Profile]++
	if s.Continues {
		st.Continuing++
	}
	if s.Partial {
		st.Partial++
	}
	st.visit(s)
	st.KeyedBy[KeyKind(s.Client)]++
	if !s.Start.IsZero() {
		if st.First.IsZero() || s.Start.Before(st.First) {
			st.First = s.Start
		}
		if end := s.Start.Add(s.End()); end.After(st.Last) {
			st.Last = end
		}
	}
	body := func(b *Body) int64 {
		if b.Truncated() {
			st.Truncated++
		}
		return b.Len()
	}
	for i := range s.Exchanges {
		ex := &s.Exchanges[i]
		st.Exchanges++
		st.Status[ex.Status]++
		if o := Origin(ex.URL); o != "" {
			if st.Hosts == nil {
				st.Hosts = map[string]int{}
			}
			st.Hosts[o]++
		}
		if ex.Error != "" {
			st.Errors++
		}
		name := Endpoint(ex)
		if _, ok := st.Endpoints[name]; !ok && len(st.Endpoints) >= MaxEndpoints {
			name = OtherEndpoints
		}
		st.Endpoints[name]++
		st.RequestBytes += body(&ex.ReqBody)
		st.ResponseBytes += body(&ex.RespBody)
		if ws := ex.WebSocket; ws != nil {
			st.WebSockets++
			for j := range ws.Frames {
				f := &ws.Frames[j]
				if f.FromClient {
					st.FramesSent++
				} else {
					st.FramesReceived++
				}
				st.FrameBytes += body(&f.Payload)
			}
		}
	}
}

// Span returns the time from the first session's start to the last one's end.
// visit notes what placed s's exchanges, and lists s in Visits.
func (st *Stats) visit(s *Session) {
	if st.Placed == nil {
		st.Placed = map[string]int{}
	}
	v := Visit{ID: s.ID, Profile: s.Profile, Evidence: s.Evidence, Exchanges: len(s.Exchanges), Continues: s.Continues}
	for i := range s.Exchanges {
		ex := &s.Exchanges[i]
		st.Placed[ex.Placed.String()]++
		if ex.Placed.Weak() {
			p, _, _ := strings.Cut(ex.URL, "?")
			v.Weak = append(v.Weak, ex.Method+" "+p+" ("+ex.Placed.String()+")")
		}
	}
	switch {
	case len(st.Visits) < MaxVisits:
		st.Visits = append(st.Visits, v)
	case len(v.Weak) > 0:
		// Full: a session with weak placements takes the place of the
		// last listed one without.
		if i := slices.IndexFunc(st.Visits, func(o Visit) bool { return len(o.Weak) == 0 }); i >= 0 {
			st.Visits = slices.Delete(st.Visits, i, i+1)
			st.Visits = append(st.Visits, v)
		}
	}
}

func (st *Stats) Span() time.Duration {
	if st.First.IsZero() {
		return 0
	}
	return st.Last.Sub(st.First)
}

// Count is a name and how many times it was seen.
type Count struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
}

// TopEndpoints returns the n most requested endpoints, most first, ties by
// name.
func (st *Stats) TopEndpoints(n int) []Count {
	cs := make([]Count, 0, len(st.Endpoints))
	for name, c := range st.Endpoints {
		cs = append(cs, Count{Name: name, Count: c})
	}
	slices.SortFunc(cs, func(a, b Count) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Name, b.Name))
	})
	return cs[:min(n, len(cs))]
}

// StatusClasses returns the responses counted per class: "2xx", "4xx" and so
// on, with "none" for exchanges that got no response.
func (st *Stats) StatusClasses() map[string]int {
	m := map[string]int{}
	for code, n := range st.Status {
		if code == 0 {
			m["none"] += n
			continue
		}
		m[strconv.Itoa(code/100)+"xx"] += n
	}
	return m
}

// Origin returns the scheme://host[:port] of an absolute URL, in lower
// case, and "" for a URL in origin form (a path).
func Origin(url string) string {
	scheme, rest, ok := strings.Cut(url, "://")
	if !ok {
		return ""
	}
	auth, _, _ := strings.Cut(rest, "/")
	auth, _, _ = strings.Cut(auth, "?")
	return strings.ToLower(scheme) + "://" + strings.ToLower(auth)
}

// FormatBytes writes a byte count as people read it: 512 B, 1.5 KiB,
// 20.0 MiB.
func FormatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return strconv.FormatFloat(float64(n)/float64(div), 'f', 1, 64) + " " + string("KMGTPE"[exp]) + "iB"
}

// ParseBytes reads a byte size such as 512, 64KB, 1MiB or 2GB (the
// inverse of FormatBytes, and SI units too).
func ParseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	i := strings.IndexFunc(s, func(r rune) bool { return !unicode.IsDigit(r) && r != '.' })
	num, unit := s, ""
	if i >= 0 {
		num, unit = s[:i], strings.ToLower(strings.TrimSpace(s[i:]))
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("size %q: want a number of bytes such as 512, 64KB or 1MiB", s)
	}
	mult := map[string]float64{"": 1, "b": 1, "k": 1e3, "kb": 1e3, "kib": 1 << 10, "m": 1e6, "mb": 1e6, "mib": 1 << 20, "g": 1e9, "gb": 1e9, "gib": 1 << 30}[unit]
	if mult == 0 {
		return 0, fmt.Errorf("size %q: unknown unit %q", s, unit)
	}
	return int64(v * mult), nil
}
