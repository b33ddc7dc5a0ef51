package replay

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/thrive-loadtest/thrive/internal/files"
	"github.com/thrive-loadtest/thrive/report"
)

// A check is the pre-flight of a load test: each chosen session is played
// once, as one user, and every live answer is held against its recording
// (status, the shape of a JSON body, the WebSocket replies, the values
// correlation carries). What differs is reported per endpoint with its
// likely cause and fix, so that a user sees in seconds what a long run
// would have shown as an error rate.

// CheckReport is what a check found.
type CheckReport struct {
	Sessions int `json:"sessions"`
	Requests int `json:"requests"`
	// Regressions counts requests that succeeded when recorded and fail
	// now.
	Regressions  int               `json:"regressions"`
	Divergences  []Divergence      `json:"divergences"`
	Correlations []CorrelationStat `json:"correlations"`
	// TransportErrors counts requests that got no answer at all.
	TransportErrors int `json:"transport_errors"`
}

// Divergence is one way an endpoint's live answers differed from the
// recording, with how often, and what probably caused it.
type Divergence struct {
	Endpoint string `json:"endpoint"`
	// Kind is status, error, shape, websocket or correlation.
	Kind string `json:"kind"`
	What string `json:"what"`
	// Count of Of requests to the endpoint diverged so.
	Count int `json:"count"`
	Of    int `json:"of"`
	// Regression marks a request that succeeded when recorded and fails
	// now.
	Regression bool `json:"regression"`
	// After names the earlier request of the session that failed first,
	// when that is the likely cause.
	After string `json:"after,omitempty"`
	Cause string `json:"cause,omitempty"`
	Fix   string `json:"fix,omitempty"`
	// Settings are what the fix changes, if it is a setting's change.
	Settings []Setting `json:"settings,omitempty"`
}

// A Setting names a setting of the replay or of the capture that a fix
// changes, with the value to give it, if the fix knows one. Names are
// the engines' own (the result file's params use them too); the
// application layer says how its user changes each.
type Setting struct {
	Name  string `json:"name"`
	Value string `json:"value,omitempty"`
}

// The settings a check's fixes change.
const (
	SetScale            = "scale"             // the factor of recorded gaps (scheduler.Config.Scale)
	SetReplyIdle        = "reply_idle"        // the silence that ends a WebSocket reply (WithReplyIdle)
	SetCorrelationRules = "correlation_rules" // a file of correlation rules (WithRules)
	SetUsersFile        = "users_file"        // a file of values per user (WithUsers)
	SetKeepSecrets      = "capture.keep_secrets"
	SetIdle             = "capture.idle" // the silence that ends a captured session
)

// rank orders divergences: regressions of their own first, then those that
// follow an earlier failure, then the rest.
func (d *Divergence) rank() int {
	switch {
	case d.Regression && d.After == "":
		return 0
	case d.Regression:
		return 1
	}
	return 2
}

// ErrNotForCheck is returned by Check for a library not loaded for one.
var ErrNotForCheck = errors.New("the library keeps no recorded answers: load it with ForCheck")

// observed is what a check saw of one step.
type observed struct {
	status  int
	err     report.ErrorKind
	body    []byte
	replies int // WebSocket replies awaited
	silent  int // of which ended by silence
	empty   int // of which got no frame
	frames  int
	skipped report.ErrorKind // why it was not sent, if it was not
	// location is the live answer's Location; sent and ended when the
	// request went out and its answer ended (its last poll's, for a poll
	// loop), to tell a request that overtook one it followed.
	location   string
	sent, done time.Time
}

// checker gathers what one played session's steps got.
type checker struct {
	mu  sync.Mutex
	obs map[*step]*observed
	sv  *sessionVars
}

// maxCheckedBody bounds the live body kept to compare.
const maxCheckedBody = 256 << 10

func (c *checker) get(st *step) *observed {
	c.mu.Lock()
	defer c.mu.Unlock()
	o := c.obs[st]
	if o == nil {
		o = &observed{}
		c.obs[st] = o
	}
	return o
}

// http notes an HTTP answer's status or error.
func (c *checker) http(st *step, smp *report.Sample) {
	o := c.get(st)
	c.mu.Lock()
	defer c.mu.Unlock()
	o.status, o.err = smp.Status, smp.Err
	if o.sent.IsZero() {
		o.sent = smp.Sent
	}
	o.done = smp.Sent.Add(smp.Done)
}

// answered notes what of an answer's header the check tells.
func (c *checker) answered(st *step, header func(string) []byte) {
	o := c.get(st)
	c.mu.Lock()
	defer c.mu.Unlock()
	o.location = string(header("Location"))
}

// skip notes a request not sent for want of a value.
func (c *checker) skip(st *step, why report.ErrorKind) {
	o := c.get(st)
	c.mu.Lock()
	defer c.mu.Unlock()
	o.skipped = why
}

// body keeps a copy of an HTTP answer's body.
func (c *checker) body(st *step, b []byte) {
	o := c.get(st)
	c.mu.Lock()
	defer c.mu.Unlock()
	o.body = append(o.body[:0], b[:min(len(b), maxCheckedBody)]...)
}

// connect notes a WebSocket handshake's status or error.
func (c *checker) connect(st *step, smp *report.Sample) { c.http(st, smp) }

// reply notes a WebSocket reply.
func (c *checker) reply(st *step, r *reply) {
	o := c.get(st)
	c.mu.Lock()
	defer c.mu.Unlock()
	o.replies++
	o.frames += r.got
	if r.smp.Silent {
		o.silent++
	}
	if r.got == 0 {
		o.empty++
	}
}

// CheckSessions returns the sessions a check plays: all of them, or the
// first perProfile of each profile (of profiles, when given). It says
// which profile asked for has no session.
func (lib *Library) CheckSessions(perProfile int, profiles []string) ([]int, error) {
	n := map[string]int{}
	var out []int
	for i := range lib.scripts {
		p := lib.scripts[i].profile
		if len(profiles) > 0 && !slices.Contains(profiles, p) {
			continue
		}
		if perProfile > 0 && n[p] >= perProfile {
			continue
		}
		n[p]++
		out = append(out, i)
	}
	for _, p := range profiles {
		if n[p] == 0 {
			return nil, fmt.Errorf("the trace has no session of profile %q", p)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("the trace has no session to check")
	}
	return out, nil
}

type discard struct{}

func (discard) Observe(*report.Sample) {}

// checkSpan is the longest a checked session takes when no scale is asked:
// recorded gaps are shortened to fit it.
const checkSpan = 2 * time.Second

// Check plays each of the sessions once, as a user of its own, one after
// the other, with recorded gaps multiplied by scale (0: shortened so that
// a session takes at most 2 s), and holds every answer against the
// recording. The engine's library must be loaded with ForCheck.
func (e *Engine) Check(ctx context.Context, sessions []int, scale float64) (*CheckReport, error) {
	if e.lib.recorded == nil {
		return nil, ErrNotForCheck
	}
	rep := &CheckReport{Sessions: len(sessions)}
	byKey := map[[3]string]*Divergence{}
	of := map[string]int{}
	var order [][3]string
	add := func(d Divergence) {
		k := [3]string{d.Endpoint, d.Kind, d.What}
		if a := byKey[k]; a != nil {
			a.Count++
			return
		}
		d.Count = 1
		byKey[k] = &d
		order = append(order, k)
	}
	for n, si := range sessions {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		sc := &e.lib.scripts[si]
		ck := &checker{obs: map[*step]*observed{}}
		s := scale
		if s <= 0 {
			s = 1
			if sc.length > checkSpan {
				s = float64(checkSpan) / float64(sc.length)
			}
		}
		u := &user{e: e, k: n, profile: sc.profile, sink: discard{}, hard: ctx, scale: s, timer: time.NewTimer(time.Hour), check: ck}
		u.timer.Stop()
		u.jar.names = e.names
		u.lastWait.Store(math.MaxInt64)
		if e.cfg.users != nil {
			u.vals = e.cfg.users.values(n, 1)
		}
		u.play(ctx, time.Now().Add(24*time.Hour), si, time.Now())
		u.closeConns()
		e.compare(rep, si, ck, add, of)
	}
	for _, k := range order {
		d := byKey[k]
		d.Of = of[d.Endpoint]
		rep.Divergences = append(rep.Divergences, *d)
	}
	slices.SortStableFunc(rep.Divergences, func(a, b Divergence) int {
		return cmp.Or(cmp.Compare(a.rank(), b.rank()), cmp.Compare(b.Count, a.Count))
	})
	rep.Correlations = e.Correlations()
	return rep, nil
}

// judged reports an error that the answer stated rather than the
// transport: a redirect to the login page, a form refused, a refusal in
// its body, a poll loop never done, an API's error.
func judged(err report.ErrorKind) bool {
	switch err {
	case "", report.ErrRefused, report.ErrTimeout, report.ErrReset, report.ErrClosed, report.ErrTLS, report.ErrPorts,
		report.ErrFiles, report.ErrStopped, report.ErrOther:
		return false
	}
	return true
}

// saidWhat says how an answer the check judged a failure differs from its
// recording.
func (e *Engine) saidWhat(st *step, o *observed) string {
	rec := fmt.Sprint(st.status)
	if st.x.location != "" {
		rec += " → " + st.x.location
	}
	live := fmt.Sprint(o.status)
	if o.location != "" {
		live += " → " + o.location
	}
	switch o.err {
	case errRedirectLogin, errRedirectElsewhere, errUnexpectedRedirect, errFormRefused:
		return fmt.Sprintf("%s: answered %s where the recording had %s", o.err, live, rec)
	case errPollUnfinished:
		return fmt.Sprintf("polled %d times, ten times the recording, and the answer never took the shape that ended the loop (%s)", maxPolls*st.poll.polls, st.poll.final)
	}
	return fmt.Sprintf("the answer (%d) says %s, which the recorded one did not", o.status, o.err)
}

// regressed reports whether a live answer fails where the recorded one
// succeeded.
func regressed(recorded int, o *observed) bool {
	ok := recorded > 0 && recorded < 400
	return ok && (o.err != "" && o.err != report.ErrStopped || o.status >= 500 || o.status >= 400 && o.status != 429)
}

// compare holds what the steps of script si got against their recording.
func (e *Engine) compare(rep *CheckReport, si int, ck *checker, add func(Divergence), of map[string]int) {
	sc := &e.lib.scripts[si]
	firstFailure := -1
	for j := range sc.steps {
		st := &sc.steps[j]
		o := ck.obs[st]
		if o == nil {
			continue // not played: the session was cut
		}
		if o.skipped != "" {
			of[st.endpoint]++
			add(Divergence{Endpoint: st.endpoint, Kind: "skipped", What: "not sent: " + strings.TrimPrefix(string(o.skipped), "skipped: "),
				Cause: "the answer that gives the value failed or lacked it (see that answer's divergence)"})
			continue
		}
		rep.Requests++
		of[st.endpoint]++
		d := Divergence{Endpoint: st.endpoint}
		switch {
		case judged(o.err):
			d.Kind, d.What = "answer", e.saidWhat(st, o)
		case o.err != "":
			rep.TransportErrors++
			d.Kind, d.What = "error", fmt.Sprintf("failed (%s) where the recording had %d", o.err, st.status)
		case st.ws != nil && o.status != 101:
			d.Kind, d.What = "websocket", fmt.Sprintf("the handshake answered %d, not 101", o.status)
		case st.ws == nil && o.status/100 != st.status/100:
			d.Kind, d.What = "status", fmt.Sprintf("answered %d where the recording had %d", o.status, st.status)
		}
		if d.Kind != "" {
			d.Regression = regressed(st.status, o) || st.ws != nil
			if d.Regression {
				rep.Regressions++
				d.Cause, d.Fix, d.Settings = e.cause(si, j, firstFailure, o, ck)
				if firstFailure >= 0 && strings.HasPrefix(d.Cause, "an earlier request") {
					d.After = sc.steps[firstFailure].endpoint
				}
				if firstFailure < 0 {
					firstFailure = j
				}
			}
			if o.status == 429 {
				d.Cause = "the target shed load: the check shortens the recorded gaps, so a session asks faster than its user did"
				d.Fix, d.Settings = "play the sessions at their recorded pace", []Setting{{SetScale, "1"}}
			}
			add(d)
			continue
		}
		if st.ws != nil {
			if o.empty > 0 {
				add(Divergence{Endpoint: st.endpoint, Kind: "websocket", What: fmt.Sprintf("%d of %d replies got no frame", o.empty, o.replies),
					Cause: "the server answered nothing within the request timeout"})
			}
			if o.silent > 0 {
				add(Divergence{Endpoint: st.endpoint, Kind: "websocket",
					What:  fmt.Sprintf("%d of %d replies ended by a silence, with no frame shaped like the recorded last (%s)", o.silent, o.replies, st.ws.end),
					Cause: "the replies end differently than when recorded",
					Fix:   "nothing, if the replies are whole; else a longer silence that ends one", Settings: []Setting{{Name: SetReplyIdle}}})
			}
			continue
		}
		if rec := e.lib.recorded[si][j]; rec.shape != nil && o.status/100 == 2 {
			if ch := shapeChanges(rec.shape, jsonShape(o.body)); len(ch) > 0 {
				add(Divergence{Endpoint: st.endpoint, Kind: "shape", What: "the JSON answer changed: " + strings.Join(ch[:min(3, len(ch))], ", "),
					Cause: "the application's answer is not what it was when recorded"})
			}
		}
		if ck.sv != nil {
			for _, k := range st.sets {
				if ck.sv.live[k] == "" {
					v := &sc.vars[k]
					add(Divergence{Endpoint: st.endpoint, Kind: "correlation", What: fmt.Sprintf("the value at %s was not in the live answer", v.place),
						Cause: fmt.Sprintf("later requests that send it (the recorded %q) are not sent (rule %s)", v.recorded, v.rule),
						Fix:   fmt.Sprintf("if the answer no longer carries it, switch the rule off in a correlation rules file:\n  disable: [%q]", v.rule), Settings: []Setting{{Name: SetCorrelationRules}}})
				}
			}
		}
	}
}

// cause explains why step j of script si failed where its recording
// succeeded, and says what to do.
func (e *Engine) cause(si, j, firstFailure int, o *observed, ck *checker) (cause, fix string, settings []Setting) {
	sc := &e.lib.scripts[si]
	st := &sc.steps[j]
	if names := unfilledNames(sc, st, e.cfg.users); len(names) > 0 {
		return fmt.Sprintf("it sends the redacted %s, which nothing fills", strings.Join(names, ", ")),
			fmt.Sprintf("give it in a users file (a CSV with a %s column, a row per user), or record keeping the secrets", names[0]),
			[]Setting{{SetUsersFile, "users.csv"}, {Name: SetKeepSecrets}}
	}
	if ck.sv != nil {
		for _, k := range st.uses {
			if ck.sv.live[k] == "" {
				v := &sc.vars[k]
				how := ""
				if v.from < 0 {
					continue
				}
				if src := ck.obs[&sc.steps[v.from]]; src != nil && src.err == "" {
					how = fmt.Sprintf(" (it answered %d)", src.status)
				}
				return fmt.Sprintf("it needs the value %q from %s, which the live answer did not have%s", v.recorded, v.rule, how),
					"look at that answer's divergences", nil
			}
		}
	}
	if firstFailure >= 0 {
		f := &sc.steps[firstFailure]
		return fmt.Sprintf("an earlier request of the session failed first: %s", f.endpoint), "look at that one first", nil
	}
	rec := &e.lib.recorded[si][j]
	if e.fills != nil && len(e.fills[si][j]) > 0 && (o.err == errFormRefused || o.err == errRedirectLogin || o.status >= 400 && o.status < 500) {
		var cols []string
		for c, name := range e.cfg.users.cols {
			if slices.ContainsFunc(e.fills[si][j], func(f fill) bool { return f.column == c }) {
				cols = append(cols, name)
			}
		}
		return fmt.Sprintf("it sends the users file's %s, and the target refused them: a login refused", strings.Join(cols, ", ")),
			"check that the users file's rows are accounts the target has, with their passwords", nil
	}
	if ss := rec.suspects; len(ss) > 0 {
		s := ss[0]
		rule := s.from + " " + s.place.String()
		return fmt.Sprintf("it sent %s, which came from %s and was sent back unchanged", s.value, rule), ruleFix(s), []Setting{{Name: SetCorrelationRules}}
	}
	if len(rec.cookies) > 0 && (o.err == errRedirectLogin || o.status == 401 || o.status == 403) {
		return fmt.Sprintf("it sent the cookie %s, which no earlier answer of its session set: the session began in the middle of a visit (the login that set it is in another session), so the replayed user does not have it",
				strings.Join(rec.cookies, ", ")),
			"record whole visits: a session is cut after a silence (raise it), or log in within the recording", []Setting{{Name: SetIdle}}
	}
	if k := e.overtook(si, j, ck); k >= 0 {
		return fmt.Sprintf("it went out before the answer of %s had ended, where it was recorded after it: it overtook what it followed", sc.steps[k].endpoint),
			"play the session at its recorded pace", []Setting{{SetScale, "1"}}
	}
	if o.err != "" && !judged(o.err) {
		return "the target did not answer: " + string(o.err), "check that the target is up and reachable from here", nil
	}
	return "the first difference from the recording: " + e.firstDifference(si, j, o), "", nil
}

// overtook returns the earlier step of script si whose recorded answer
// ended before step j began but whose live answer ended after step j was
// sent; -1 if none did.
func (e *Engine) overtook(si, j int, ck *checker) int {
	sc := &e.lib.scripts[si]
	oj := ck.obs[&sc.steps[j]]
	if oj == nil || oj.sent.IsZero() {
		return -1
	}
	for k := j - 1; k >= 0; k-- {
		st := &sc.steps[k]
		ok := ck.obs[st]
		if ok == nil || st.ws != nil || ok.done.IsZero() || st.offset+e.lib.recorded[si][k].duration > sc.steps[j].offset {
			continue
		}
		if ok.done.After(oj.sent) {
			return k
		}
	}
	return -1
}

// firstDifference names the first way the live answer of step j differs
// from the recorded one: status and redirect, then its JSON shape, then
// its beginning.
func (e *Engine) firstDifference(si, j int, o *observed) string {
	st := &e.lib.scripts[si].steps[j]
	switch {
	case judged(o.err):
		return e.saidWhat(st, o)
	case o.status != st.status:
		live := fmt.Sprint(o.status)
		if o.location != "" {
			live += " → " + o.location
		}
		return fmt.Sprintf("status %s where the recording had %d; the answer began %q", live, st.status, truncate(o.body, 120))
	}
	if rec := e.lib.recorded[si][j]; rec.shape != nil {
		if ch := shapeChanges(rec.shape, jsonShape(o.body)); len(ch) > 0 {
			return "the JSON answer at " + ch[0]
		}
	}
	return fmt.Sprintf("the answer began %q", truncate(o.body, 120))
}

// ruleFix writes the correlation rule that would carry s over.
func ruleFix(s suspect) string {
	var what string
	switch {
	case s.place.header != "" && s.place.segment == 0:
		what = fmt.Sprintf("header: %q", s.place.header)
	case s.place.path != nil:
		what = fmt.Sprintf("json: %q", s.place.String())
	default:
		return "write a correlation rule for it in a correlation rules file (the trace's correlations list the rules found)"
	}
	return fmt.Sprintf("add a correlation rule, in a correlation rules file:\n  add:\n    - from: %q\n      %s", s.from, what)
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

// WriteFile writes the report as indented JSON at path.
func (rep *CheckReport) WriteFile(path string) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), files.Private)
}
