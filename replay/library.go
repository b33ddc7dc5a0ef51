package replay

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/thrive-loadtest/thrive/scheduler"
	"github.com/thrive-loadtest/thrive/traces"
)

// Library is a trace loaded for replay: every session, with its requests
// prepared once so that sending one copies nothing and allocates nothing.
// It is immutable after Load and safe for concurrent use.
type Library struct {
	scripts []script
	infos   []scheduler.SessionInfo
	rules   *CorrelationRules
	// validated are the request targets some request asks conditionally.
	validated map[string]bool
	// recorded is, per script and step, what a check compares with; nil
	// unless the library was made for a check.
	recorded [][]recordedStep
	damage   error // why reading the trace stopped early, if it did
	namer    *traces.Namer
	meta     traces.Meta
	// origins are the scheme://host[:port] that absolute request URLs
	// named (a forward proxy's trace), by first appearance; origins[0] is
	// "", for requests in origin form. counts are their exchanges.
	origins []string
	counts  []int
	// strays counts the exchanges of sessions kept apart as strays.
	strays int
	// largest is the largest answer a user keeps of the recorded ones
	// (at most keptBody).
	largest int64
}

// BytesPerUser is what a user replaying this library may hold: what every
// user holds, and the largest answer it keeps.
func (lib *Library) BytesPerUser() int64 { return BytesPerUser + lib.largest }

// Strays returns how many exchanges of the trace were sub-resources that
// the capture tied to no visit: they are not replayed.
func (lib *Library) Strays() int { return lib.strays }

// Origin is a site a trace's requests were addressed to, and how many.
type Origin struct {
	// URL is the scheme and authority, such as https://api.example.com or
	// http://127.0.0.1:8080.
	URL string
	// Exchanges counts the requests to it.
	Exchanges int
}

// Origins returns the sites that the trace's absolute request URLs name
// (a forward proxy records them so), most requests first; none for a
// trace of origin-form requests (a reverse proxy's).
func (lib *Library) Origins() []Origin {
	var out []Origin
	for i := 1; i < len(lib.origins); i++ {
		out = append(out, Origin{URL: lib.origins[i], Exchanges: lib.counts[i]})
	}
	slices.SortStableFunc(out, func(a, b Origin) int { return b.Exchanges - a.Exchanges })
	return out
}

// Meta returns the trace's header: what recorded it, and its target.
func (lib *Library) Meta() traces.Meta { return lib.meta }

// originOf returns the index in lib.origins of the origin an absolute URL
// names, adding it; 0 for a URL in origin form.
func (lib *Library) originOf(u string) int {
	o := traces.Origin(u)
	if o == "" {
		return 0
	}
	if len(lib.origins) == 0 {
		lib.origins, lib.counts = []string{""}, []int{0}
	}
	i := slices.Index(lib.origins, o)
	if i < 0 {
		i = len(lib.origins)
		lib.origins, lib.counts = append(lib.origins, o), append(lib.counts, 0)
	}
	lib.counts[i]++
	return i
}

// Damage returns why the trace could not be read to its end (a damaged
// block, a file its writer did not finish), or nil: the library holds the
// sessions read before and around the damage.
func (lib *Library) Damage() error { return lib.damage }

// script is one recorded session, ready to play.
type script struct {
	id      string
	profile string
	length  time.Duration
	// continues marks a session that began with an identity an earlier
	// visit was given (traces.Session.Continues): it is played with the
	// virtual user's state as its earlier session left it, where every
	// other session is played by a fresh browser.
	continues bool
	steps     []step
	waits     bool       // some step waits for an earlier one's answer
	vars      []variable // server-made values the session sends back
	// portable says some value may come in another answer than its own
	// (variable.portable): every answer is read for it.
	portable bool
}

// step is one exchange of a script.
type step struct {
	index         int // in its script
	offset, think time.Duration
	method        []byte
	uri           []byte // path and query
	headers       [][2][]byte
	body          []byte
	endpoint      string
	op            string // the GraphQL operation or JSON-RPC method it carries, if any
	// longPoll marks a request that waits for its answer by design.
	longPoll bool
	// watchErrors marks an operation whose recorded answer had no errors:
	// a live answer with some (at any status) is a failure.
	watchErrors bool
	status      int         // the recorded answer's status, what the live one is judged against
	x           expectation // what else of the recorded answer the live one is held to
	// poll is the poll loop this request begins; inLoop marks a later
	// poll of a loop, played by the loop's first request.
	poll     *pollLoop
	inLoop   bool
	host     string    // the recorded Host: an Origin or Referer naming it names the target at replay
	origin   int       // the index of its origin in the library's, 0 for a request in origin form
	head     bool      // a HEAD request: its answer has no body
	jsonBody bool      // its body is JSON: live values go in JSON-escaped
	ws       *wsScript // non-nil for a WebSocket upgrade
	// echoes are headers whose recorded value was a cookie of the same
	// request (a CSRF token echoed from its cookie): they are sent with
	// the user's live cookie of that name.
	echoes []echo
	// bodyEchoes are cookies whose recorded value the request's target or
	// body carries (a CSRF form field): replaced by the live cookie's.
	bodyEchoes []echo
	// waitFor are the steps whose answers gave a cookie or a value this
	// one sends: under recorded pacing it waits for them, as the recorded
	// browser had to. awaited marks the steps others wait for.
	waitFor []int
	awaited bool
	// waitGap is, per step of waitFor, how long after its answer ended
	// this request began when recorded (0 if before, and for priorOnly:
	// the request to the same endpoint before, which it only does not
	// overtake).
	waitGap   []time.Duration
	priorOnly int
	// afterWS are the WebSocket conversations a request that changes
	// something came after: it waits until each has had the replies to
	// the messages sent before it was (the page saved, then shut the
	// kernel down), so that it never overtakes them.
	afterWS []wsPoint
	// uses are the script's variables this request sends; sets those its
	// answer gives. needs are the uses it sends outside Referer and
	// Origin (which name the page it came from, and go out whatever that
	// page was): without them it is not sent (see unmet).
	uses, sets, needs []int
	// conditional lists the cache validators the recorded request sent
	// (If-None-Match, If-Modified-Since): the user sends them only with
	// validators of its own. validates marks a request whose answer's
	// validators some conditional request of the trace will want.
	conditional []string
	validates   bool
	// recorded holds the headers left out for the above, as recorded, for
	// an engine made WithRecordedCookies.
	recorded [][2][]byte
}

// wsPoint is how far a step's WebSocket conversation had gone: its first
// msgs client messages had been sent, and answered.
type wsPoint struct {
	step, msgs int
	// gap is how long after that message's reply (or the message, when
	// it had none) the request came.
	gap time.Duration
}

// echo is a header sent with the value of a cookie.
type echo struct {
	header, cookie string
	recorded       []byte // the value in the recording
}

// wsScript is the client's side of a recorded WebSocket.
type wsScript struct {
	frames []wsFrame // what the client sent, with the replies they got
	close  time.Duration
	end    *endShape // what the last frame of a reply looks like; nil if unknown
	said   []string  // the refusals the server's recorded frames stated (see judgeBody)
	// idClient and idServer are where a message carries its id and where
	// the frames of its reply carry it back (see replyIDs); nil if none.
	idClient, idServer []any
	// sets are the script's variables the server's messages give (see
	// frameFlow). elsewhere says some message has values that may come
	// on the socket instead of in their answer; early are those of later
	// steps, sought from the socket's opening on (sessionVars.expect).
	sets      []int
	elsewhere bool
	early     []int
}

// needs notes, for each client message, the variables of the socket's
// replies (of uses) that it sends: it waits for them.
func (w *wsScript) needs(vars []variable, uses []int, self int) {
	for i := range w.frames {
		f := &w.frames[i]
		var ids map[string]bool
		for _, k := range uses {
			v := &vars[k]
			if j := v.from; !v.ws && j > self && sends(string(f.payload), v.recorded) {
				// A later request's answer gives it; should that answer
				// lack it, it may come on this socket, even before the
				// request is sent (an event flushed on the upgrade).
				if !slices.Contains(f.after, j) {
					f.after = append(f.after, j)
				}
				if v.portable && !slices.Contains(f.elsewhere, k) {
					f.elsewhere = append(f.elsewhere, k)
					if !slices.Contains(w.early, k) {
						w.early = append(w.early, k)
					}
				}
				continue
			}
			if !v.ws && !v.fresh && v.from >= 0 && v.from < self && sends(string(f.payload), v.recorded) {
				f.elsewhere = append(f.elsewhere, k)
				continue
			}
			if !v.ws || v.frame >= i || knownBefore(vars, v, self) {
				continue
			}
			if v.short && v.prefix == "" {
				if ids == nil {
					ids = map[string]bool{}
					framePositions(f.payload, ids)
				}
				if !ids[v.recorded] {
					continue
				}
			} else if !sends(string(f.payload), v.recorded) {
				continue
			}
			f.needs = append(f.needs, k)
		}
		w.elsewhere = w.elsewhere || len(f.elsewhere) > 0
	}
}

// knownBefore reports whether an answer before the socket (step self)
// gave a reply's value v as the same thing: a board's id its redirect
// gave, broadcast again as $.boardId. A message that sends it need not
// wait for the reply, which a new build may word otherwise (board_id).
func knownBefore(vars []variable, v *variable, self int) bool {
	n, rec := varNoun(v), strings.TrimPrefix(v.recorded, v.prefix)
	if n == "" {
		return false
	}
	for k := range vars {
		if w := &vars[k]; !w.ws && !w.fresh && w.from >= 0 && w.from < self && w.prefix == "" && w.recorded == rec && varNoun(w) == n {
			return true
		}
	}
	return false
}

// varNoun is the thing a variable's source names: its URL context, its
// form field's or its JSON key's noun; "" for none.
func varNoun(v *variable) string {
	if n := nounOf(v.context); n != "" {
		return n
	}
	if n := nounOf(v.place.field); n != "" {
		return n
	}
	return pathNoun(v.place.path)
}

type wsFrame struct {
	index   int // among the client's messages
	offset  time.Duration
	opcode  int
	payload []byte
	replies int // server messages that followed before the next client one
	// idle is the silence after which the reply, once begun, is over.
	idle time.Duration
	// overlaps marks a message whose reply was still coming when the next
	// message was sent: the next one does not wait for it.
	overlaps bool
	// needs are the variables of the socket's replies it sends: it goes
	// out once they have come (or the request timeout has passed). after
	// are the later steps of the session whose answers give values it
	// sends: it goes out once they have answered.
	needs []int
	after []int
	// elsewhere are the values of other answers it sends that may come
	// elsewhere than in their own (variable.portable): one its live answer
	// lacked may come on the socket instead (a Socket.IO event that
	// missed the poll it came in when recorded), and the message waits
	// for it there.
	elsewhere []int
}

// hopHeaders are not replayed: they describe the recorded connection, not
// the request. Host is set from the target.
// maxChangesBack is how many of the latest requests that changed
// something a request looks back over for the one it came after.
const maxChangesBack = 16

// safeMethod reports a method that changes nothing at the server.
func safeMethod(m string) bool { return m == "GET" || m == "HEAD" || m == "OPTIONS" }

func hopHeader(name string) bool {
	switch strings.ToLower(name) {
	case "host", "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding",
		"upgrade", "content-length", "sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions",
		"sec-websocket-accept":
		return true
	}
	return false
}

// userState reports the headers that carry what the recorded user's
// browser held: its cookies, and validators of its cache. A virtual user
// sends its own cookies (its jar) and has no cache.
func userState(name string) bool {
	return strings.EqualFold(name, "Cookie") || strings.EqualFold(name, "If-None-Match") || strings.EqualFold(name, "If-Modified-Since")
}

// recordedCookies returns the name=value pairs of a request's Cookie
// headers.
func recordedCookies(hs []traces.Header) [][2]string {
	var out [][2]string
	for _, h := range hs {
		if !strings.EqualFold(h.Name, "Cookie") {
			continue
		}
		for part := range strings.SplitSeq(h.Value, ";") {
			if name, value, ok := strings.Cut(strings.TrimSpace(part), "="); ok {
				out = append(out, [2]string{name, value})
			}
		}
	}
	return out
}

// minEcho is the shortest value taken for an echo of a cookie: shorter
// ones (1, true, en) match by coincidence.
const minEcho = 8

// echoOf returns the name of the cookie whose value a header value repeats.
func echoOf(value string, cookies [][2]string) string {
	if len(value) < minEcho {
		return ""
	}
	for _, c := range cookies {
		if c[1] == value {
			return c[0]
		}
	}
	return ""
}

// LoadOption changes how a trace becomes a Library.
type LoadOption func(*Library) error

// WithCorrelationRules changes what correlation finds (see
// CorrelationRules).
func WithCorrelationRules(rs *CorrelationRules) LoadOption {
	return func(lib *Library) error { lib.rules = rs; return nil }
}

// WithEndpointNames names each request's endpoint by n (the user's
// patterns first, then the automatic template) instead of the template
// alone.
func WithEndpointNames(n *traces.Namer) LoadOption {
	return func(lib *Library) error { lib.namer = n; return nil }
}

// ForCheck makes a Library for Engine.Check: it also keeps what each
// recorded answer looked like.
func ForCheck() LoadOption {
	return func(lib *Library) error { lib.recorded = [][]recordedStep{}; return nil }
}

// newLibrary makes an empty Library configured by opts.
func newLibrary(opts []LoadOption) (*Library, error) {
	lib := &Library{}
	var errs []error
	for _, o := range opts {
		errs = append(errs, o(lib))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	return lib, nil
}

// LoadFile reads the trace file at path into a library (Load), its path named
// in a read error. A trace read only in part (damaged, or its writer
// killed) is a library of what was read, with its Damage.
func LoadFile(path string, opts ...LoadOption) (*Library, error) {
	t, err := traces.Open(path)
	if err != nil {
		return nil, err
	}
	defer t.Close()
	lib, err := Load(t.Reader(), opts...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return lib, nil
}

// Load reads every session of r into a Library, finding correlations as
// it goes.
func Load(r *traces.Reader, opts ...LoadOption) (*Library, error) {
	lib, err := newLibrary(opts)
	if err != nil {
		return nil, err
	}
	return lib.load(r)
}

// load adds every session of r to lib.
func (lib *Library) load(r *traces.Reader) (*Library, error) {
	lib.meta = r.Meta()
	for {
		s := new(traces.Session)
		err := r.Next(s)
		if errors.Is(err, io.EOF) {
			break
		}
		if fe, ok := errors.AsType[*traces.FormatError](err); ok && fe.Part != "header" {
			// A damaged or unfinished file (a capture killed): the
			// sessions read are whole, and are replayed; Damage says
			// what was lost.
			lib.damage = err
			break
		}
		if err != nil {
			return nil, err
		}
		lib.add(s)
	}
	if len(lib.scripts) == 0 {
		if lib.damage != nil {
			return nil, lib.damage
		}
		return nil, errors.New("the trace holds no session")
	}
	lib.markValidators()
	return lib, nil
}

// fromSessions makes a Library of sessions already in memory (tests use
// it as FromSessions, through export_test.go). Options that
// fail are ignored (none does today).
func fromSessions(ss []*traces.Session, opts ...LoadOption) *Library {
	lib, err := newLibrary(opts)
	if err != nil {
		lib = &Library{}
	}
	for _, s := range ss {
		lib.add(s)
	}
	lib.markValidators()
	return lib
}

// markValidators marks the requests whose answers' validators a
// conditional request will want.
func (lib *Library) markValidators() {
	for i := range lib.scripts {
		for j := range lib.scripts[i].steps {
			st := &lib.scripts[i].steps[j]
			st.validates = lib.validated[string(st.uri)] && (string(st.method) == "GET" || string(st.method) == "HEAD")
		}
	}
}

// add prepares a recorded session for replay, in stages: decode (bodies
// as the application meant them, requests still sent as recorded), the
// value flow (correlate: values found, edges chosen), then the script:
// each step's timing, what it waits for (the answers that gave its
// cookies and values, the request it followed, the conversations it came
// after), its echoes of cookies, and the socket's messages with what each
// waits for.
func (lib *Library) add(s *traces.Session) {
	if s.Strays {
		// Sub-resources nothing tied to a visit: counted, never replayed.
		lib.strays += len(s.Exchanges)
		return
	}
	for i := range s.Exchanges {
		b := &s.Exchanges[i].RespBody
		lib.largest = max(lib.largest, min(max(b.Size, int64(len(b.Data))), keptBody))
	}
	sc := script{id: s.ID, profile: s.Profile, length: s.End(), continues: s.Continues}
	setBy := map[string]int{} // cookie name → the step whose answer set it last
	// Correlation and checks read bodies as the application meant them;
	// requests go out as recorded.
	plain := decoded(s)
	vars, uses := correlate(plain, lib.rules)
	sc.vars = vars
	sc.portable = slices.ContainsFunc(vars, func(v variable) bool { return v.portable })
	polls := longPolls(plain, vars, uses)
	// A poll loop is played as a loop by its first request: the values its
	// last answer gave come from the live loop's last answer.
	loops, memberOf := pollLoops(plain, polls)
	for k := range vars {
		if h, ok := memberOf[vars[k].from]; ok && !vars[k].ws {
			vars[k].from = h
		}
	}
	// The request that ended last so far, and when: a request that began
	// after every earlier one had ended followed it (a script that awaits
	// each call). Where either changes something (neither is a GET, HEAD
	// or OPTIONS), it waits for it at replay as its client had to, so that
	// a slow answer is never overtaken by what came after it: a delete
	// before the read it followed, a read before the write it followed.
	// Reads after reads keep their recorded times.
	lastEnd, lastEnded := -1, time.Duration(-1)
	// The requests that changed something, for the one that ended last
	// before a request began: that request came after it (a socket's
	// upgrade after the POST that connected it), whatever else was still
	// going, and waits for it.
	var changes []int
	// The page the visit began at: a redirect there is one to its start.
	first := ""
	for i := range s.Exchanges {
		if ex := &s.Exchanges[i]; ex.Method == "GET" && ex.WebSocket == nil {
			first = folded(ex.URL)
			break
		}
	}
	// The latest request to each endpoint: one to the same endpoint that
	// ended before a request began came before it (a long-polling
	// transport's polls, one at a time), and it waits for it.
	same := map[string]int{}
	for i := range s.Exchanges {
		ex := &s.Exchanges[i]
		endpoint := traces.Endpoint(&plain.Exchanges[i])
		prior := -1
		if j, ok := same[endpoint]; ok && s.Exchanges[j].Offset+s.Exchanges[j].Duration <= ex.Offset {
			prior = j
		}
		if ex.WebSocket == nil {
			same[endpoint] = i
		}
		follows := -1
		if lastEnd >= 0 && ex.Offset >= lastEnded && (!safeMethod(ex.Method) || !safeMethod(s.Exchanges[lastEnd].Method)) {
			follows = lastEnd
		}
		after := -1
		for n := len(changes) - 1; n >= max(0, len(changes)-maxChangesBack); n-- {
			j := changes[n]
			if end := s.Exchanges[j].Offset + s.Exchanges[j].Duration; end <= ex.Offset && (after < 0 || end > s.Exchanges[after].Offset+s.Exchanges[after].Duration) {
				after = j
			}
		}
		if !safeMethod(ex.Method) && ex.WebSocket == nil && !polls[traces.Endpoint(&plain.Exchanges[i])] {
			changes = append(changes, i)
		}
		if end := ex.Offset + ex.Duration; ex.WebSocket == nil && !polls[traces.Endpoint(&plain.Exchanges[i])] && end > lastEnded {
			lastEnd, lastEnded = i, end
		} else if ex.WebSocket != nil || polls[traces.Endpoint(&plain.Exchanges[i])] {
			lastEnded = max(lastEnded, ex.Offset) // it goes on beside what follows
		}
		st := step{
			index:  i,
			offset: ex.Offset, think: ex.Think,
			method:   []byte(ex.Method),
			uri:      []byte(traces.RequestURI(ex.URL)),
			body:     ex.ReqBody.Data,
			endpoint: traces.Endpoint(&plain.Exchanges[i]),
			op:       plain.Exchanges[i].Operation(),
			longPoll: polls[traces.Endpoint(&plain.Exchanges[i])],
			head:     ex.Method == "HEAD",
			jsonBody: jsonDoc(ex.ReqBody.Data),
			status:   ex.Status,
			x:        expectationOf(&plain.Exchanges[i], first),
			host:     ex.Host,
			origin:   lib.originOf(ex.URL),
		}
		if st.op != "" {
			if b, ok := plain.Exchanges[i].ResponseContent(); ok && len(b) > 0 {
				st.watchErrors = apiError(b) == ""
			}
		}
		cookies := recordedCookies(ex.ReqHeader)
		for _, c := range cookies {
			if len(c[1]) >= minEcho && (sends(ex.URL, c[1]) || sends(string(ex.ReqBody.Data), c[1])) {
				st.bodyEchoes = append(st.bodyEchoes, echo{cookie: c[0], recorded: []byte(c[1])})
			}
		}
		for _, c := range cookies {
			if j, ok := setBy[c[0]]; ok && !slices.Contains(st.waitFor, j) {
				st.waitFor = append(st.waitFor, j)
			}
		}
		if follows >= 0 && !slices.Contains(st.waitFor, follows) {
			st.waitFor = append(st.waitFor, follows)
		}
		if after >= 0 && !slices.Contains(st.waitFor, after) {
			st.waitFor = append(st.waitFor, after)
		}
		st.priorOnly = -1
		if prior >= 0 && !slices.Contains(st.waitFor, prior) {
			st.waitFor = append(st.waitFor, prior)
			if !slices.ContainsFunc(uses[i], func(k int) bool { return vars[k].from == prior }) {
				st.priorOnly = prior
			}
		}
		if !safeMethod(ex.Method) && ex.WebSocket == nil {
			st.afterWS = conversationsBefore(s, i)
		}
		st.uses = uses[i]
		st.needs = needed(ex, vars, uses[i])
		for _, k := range uses[i] {
			if j := vars[k].from; j >= 0 && j < i && !slices.Contains(st.waitFor, j) {
				st.waitFor = append(st.waitFor, j)
			}
		}
		for _, j := range st.waitFor {
			sc.steps[j].awaited, sc.waits = true, true
		}
		for _, h := range ex.RespHeader {
			if strings.EqualFold(h.Name, "Set-Cookie") {
				if name, _, ok := strings.Cut(h.Value, "="); ok {
					setBy[strings.TrimSpace(name)] = i
				}
			}
		}
		for _, h := range ex.ReqHeader {
			switch {
			case hopHeader(h.Name):
			case userState(h.Name):
				st.recorded = append(st.recorded, [2][]byte{[]byte(h.Name), []byte(h.Value)})
				if !strings.EqualFold(h.Name, "Cookie") {
					st.conditional = append(st.conditional, h.Name)
				}
			case echoOf(h.Value, cookies) != "":
				st.echoes = append(st.echoes, echo{header: h.Name, cookie: echoOf(h.Value, cookies), recorded: []byte(h.Value)})
				st.recorded = append(st.recorded, [2][]byte{[]byte(h.Name), []byte(h.Value)})
			default:
				st.headers = append(st.headers, [2][]byte{[]byte(h.Name), []byte(h.Value)})
			}
		}
		lib.named(&st)
		st.poll = loops[i]
		_, st.inLoop = memberOf[i]
		if ws := ex.WebSocket; ws != nil {
			st.ws = wsScriptOf(ws)
			st.ws.needs(vars, uses[i], i)
			st.endpoint = traces.SocketEndpoint(ex.Method, st.endpoint)
		}
		sc.steps = append(sc.steps, st)
	}
	// A socket's message waits for the later requests whose answers give
	// what it sends (wsScript.needs), and for those begun beside the
	// socket that had answered before it was sent (a poll the upgrade
	// released): they are awaited.
	for i := range sc.steps {
		if ws := sc.steps[i].ws; ws != nil {
			for m := range ws.frames {
				f := &ws.frames[m]
				for j := i + 1; j < len(s.Exchanges) && s.Exchanges[j].Offset < f.offset; j++ {
					if ex := &s.Exchanges[j]; ex.WebSocket == nil && ex.Offset+ex.Duration <= f.offset && !slices.Contains(f.after, j) {
						f.after = append(f.after, j)
					}
				}
				for _, j := range f.after {
					sc.steps[j].awaited, sc.waits = true, true
				}
			}
		}
	}
	if memberOf != nil {
		// What waited for a later poll waits for the loop.
		remap := func(js []int, self int) []int {
			out := js[:0]
			for _, j := range js {
				if h, ok := memberOf[j]; ok {
					j = h
				}
				if j != self && !slices.Contains(out, j) {
					out = append(out, j)
				}
			}
			return out
		}
		for i := range sc.steps {
			st := &sc.steps[i]
			st.waitFor = remap(st.waitFor, i)
			for _, j := range st.waitFor {
				sc.steps[j].awaited = true
			}
			if st.ws != nil {
				for m := range st.ws.frames {
					st.ws.frames[m].after = remap(st.ws.frames[m].after, -1)
					for _, j := range st.ws.frames[m].after {
						sc.steps[j].awaited = true
					}
				}
			}
		}
	}
	// How long after each answer it waits for a request came.
	for i := range sc.steps {
		st := &sc.steps[i]
		st.waitGap = make([]time.Duration, len(st.waitFor))
		for n, j := range st.waitFor {
			end := s.Exchanges[j].Offset + s.Exchanges[j].Duration
			if lp := sc.steps[j].poll; lp != nil {
				end = s.Exchanges[j].Offset + lp.span
			}
			if j != st.priorOnly {
				st.waitGap[n] = max(s.Exchanges[i].Offset-end, 0)
			}
		}
	}
	for k, v := range vars {
		switch {
		case v.ws:
			sc.steps[v.from].ws.sets = append(sc.steps[v.from].ws.sets, k)
		case v.from >= 0:
			sc.steps[v.from].sets = append(sc.steps[v.from].sets, k)
		}
	}
	for _, st := range sc.steps {
		if len(st.conditional) > 0 {
			if lib.validated == nil {
				lib.validated = map[string]bool{}
			}
			lib.validated[string(st.uri)] = true
		}
	}
	if lib.recorded != nil {
		lib.recorded = append(lib.recorded, recordedOf(plain, vars, uses))
	}
	lib.scripts = append(lib.scripts, sc)
	lib.infos = append(lib.infos, scheduler.SessionInfo{Profile: s.Profile, Length: sc.length})
}

// conversationsBefore returns, for each WebSocket of s open before
// exchange i began, how many client messages it had sent, all answered,
// by then.
func conversationsBefore(s *traces.Session, i int) []wsPoint {
	var out []wsPoint
	at := s.Exchanges[i].Offset
	for j := range s.Exchanges[:i] {
		ws := s.Exchanges[j].WebSocket
		if ws == nil {
			continue
		}
		msgs, last := 0, time.Duration(0)
		for _, f := range ws.Frames {
			if f.Offset >= at || f.Opcode != traces.OpText && f.Opcode != traces.OpBinary {
				continue
			}
			if f.FromClient {
				msgs++
			}
			last = f.Offset // the message, or the latest frame of its reply
		}
		if msgs > 0 {
			out = append(out, wsPoint{step: j, msgs: msgs, gap: max(at-last, 0)})
		}
	}
	return out
}

// needed returns the variables of uses that ex sends outside its Referer
// and Origin headers.
func needed(ex *traces.Exchange, vars []variable, uses []int) []int {
	if len(uses) == 0 {
		return nil
	}
	text := sentText(ex, func(name string) bool {
		return !strings.EqualFold(name, "Referer") && !strings.EqualFold(name, "Origin") && !strings.EqualFold(name, "Cookie")
	})
	var out []int
	for _, k := range uses {
		if strings.Contains(text, vars[k].recorded) {
			out = append(out, k)
		}
	}
	return out
}

// decoded returns s with its bodies decoded by their Content-Encoding,
// sharing what needs no decoding; s itself when nothing does. Bodies that
// do not decode stay as recorded.
func decoded(s *traces.Session) *traces.Session {
	var out *traces.Session
	for i := range s.Exchanges {
		ex := &s.Exchanges[i]
		req, resp := traces.ContentEncoding(ex.ReqHeader), traces.ContentEncoding(ex.RespHeader)
		if len(req) == 0 && len(resp) == 0 {
			continue
		}
		if out == nil {
			c := *s
			c.Exchanges = slices.Clone(s.Exchanges)
			out = &c
		}
		d := &out.Exchanges[i]
		if b, ok := ex.RequestContent(); ok && len(req) > 0 {
			d.ReqBody, d.ReqHeader = traces.Body{Data: b}, withoutEncoding(ex.ReqHeader)
		}
		if b, ok := ex.ResponseContent(); ok && len(resp) > 0 {
			d.RespBody, d.RespHeader = traces.Body{Data: b}, withoutEncoding(ex.RespHeader)
		}
	}
	if out == nil {
		return s
	}
	return out
}

// Long polls: a feed that holds each request until it has news, answers
// the cursor of the next, and is asked again at once. Its latency is the
// wait by design, so it is reported apart (report.LongPoll).
const (
	minLongPoll     = 50 * time.Millisecond  // and five times the session's median
	longPollRestart = 100 * time.Millisecond // or half the poll, if longer
)

// longPolls returns the endpoints of s that long-poll: one of its requests
// sends back a value (a cursor) the answer to the one before it of the same
// endpoint gave, and went out within 100 ms of that answer (or half as long
// as the answer took, if more: a busy client), which had taken at least
// 50 ms and five times the session's median.
func longPolls(s *traces.Session, vars []variable, uses [][]int) map[string]bool {
	var ds []time.Duration
	for i := range s.Exchanges {
		if s.Exchanges[i].WebSocket == nil {
			ds = append(ds, s.Exchanges[i].Duration)
		}
	}
	if len(ds) == 0 {
		return nil
	}
	slices.Sort(ds)
	slow := max(minLongPoll, 5*ds[len(ds)/2])
	var out map[string]bool
	last := map[string]int{} // endpoint → its latest exchange
	for i := range s.Exchanges {
		ex := &s.Exchanges[i]
		name := traces.Endpoint(ex)
		if j, ok := last[name]; ok {
			prev := &s.Exchanges[j]
			fromPrev := slices.ContainsFunc(uses[i], func(k int) bool { return vars[k].from == j })
			if fromPrev && prev.Duration >= slow && ex.Offset-(prev.Offset+prev.Duration) < max(longPollRestart, prev.Duration/2) {
				if out == nil {
					out = map[string]bool{}
				}
				out[name] = true
			}
		}
		last[name] = i
	}
	return out
}

// withoutEncoding returns hs without Content-Encoding, for a body decoded.
func withoutEncoding(hs []traces.Header) []traces.Header {
	return slices.DeleteFunc(slices.Clone(hs), func(h traces.Header) bool { return strings.EqualFold(h.Name, "Content-Encoding") })
}

// Sessions returns what the scheduler needs to know of the sessions.
func (lib *Library) Sessions() []scheduler.SessionInfo { return lib.infos }

// String summarizes the library.
func (lib *Library) String() string {
	n := 0
	for _, s := range lib.scripts {
		n += len(s.steps)
	}
	return fmt.Sprintf("%d sessions, %d exchanges", len(lib.scripts), n)
}

// named names a step by the library's endpoint patterns, if it has some.
func (lib *Library) named(st *step) {
	if lib.namer.Len() == 0 {
		return
	}
	st.endpoint = traces.EndpointName(lib.namer.Name(string(st.method), string(st.uri)), st.op)
}
