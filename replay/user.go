package replay

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"math"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/thrive-loadtest/thrive/report"
	"github.com/thrive-loadtest/thrive/scheduler"
	"github.com/valyala/fasthttp"
)

// user is one virtual user while it runs. Its goroutine owns it; requests
// it sends in goroutines of their own (recorded pacing) only read it.
type user struct {
	e       *Engine
	k       int
	profile string
	shared  []*fasthttp.HostClient // with a shared pool, per site
	conns   userConns              // otherwise: to the engine's target
	more    []userConns            // and to the other sites, made when first used
	// lastWait is how long the user's latest answer took to begin, in
	// ns; fast answers let the next request take its buffer at once.
	lastWait atomic.Int64
	sink     Sink
	jar      jar
	vals     []string // the user's row of the users file
	// filled holds, per fill of the users file, the text that replaces
	// its recorded one for this user, made once; requests sent at once
	// (recorded pacing) share it, hence the lock.
	fillMu sync.Mutex
	filled map[*fill]string
	hard   context.Context
	scale  float64
	timer  *time.Timer
	check  *checker // set when the user plays for a check
	// failed says a request of the session being played failed.
	failed atomic.Bool
}

// report hands a sample to the sink, noting a failure.
func (u *user) report(s *report.Sample) {
	if s.Failed() {
		u.failed.Store(true)
	}
	u.sink.Observe(s)
}

func (e *Engine) runUser(soft, hard context.Context, sc *Steer, k int, start time.Time, sink Sink) {
	st := sc.state.Load()
	u := &user{e: e, k: k, profile: st.plan.User(k).Profile, sink: sink, hard: hard, scale: st.plan.Scale(), timer: time.NewTimer(time.Hour)}
	u.timer.Stop()
	u.lastWait.Store(math.MaxInt64) // unknown: wait without a buffer until known
	if e.cfg.users != nil {
		u.vals = e.cfg.users.values(k, 1)
	}
	u.jar.names = e.names
	if e.shared != nil {
		u.shared = e.shared
	} else {
		defer u.closeConns()
	}
	n := 0
	played := time.Duration(math.MinInt64) // the end of the interval played last
	for soft.Err() == nil {
		st = sc.state.Load()
		iv, ok := nextInterval(st.plan.User(k).Active, max(time.Since(start), played))
		if !ok {
			if st.changed == nil {
				return // nothing more to play
			}
			// A steered run: a change may give the user more to play.
			// It waits for one, holding no connection open meanwhile.
			if u.shared == nil {
				u.closeConns()
			}
			select {
			case <-st.changed:
				continue
			case <-soft.Done():
				return
			}
		}
		if st.changed == nil {
			if !sleepUntil(soft, u.timer, start.Add(iv.Start)) {
				return
			}
		} else if wait := time.Until(start.Add(iv.Start)); wait > 0 {
			u.timer.Reset(wait)
			select {
			case <-u.timer.C:
			case <-st.changed:
				u.timer.Stop()
				continue
			case <-soft.Done():
				u.timer.Stop()
				return
			}
		}
		// The user sends nothing after its active time or the run ends;
		// what it has in flight then gets the stop timeout. In a steered
		// run a change may end the active time sooner: active ends then.
		active, release := soft, func() time.Duration { return iv.Stop }
		if st.changed != nil {
			if active, release, ok = sc.enter(soft, k, st, iv.Stop); !ok {
				continue
			}
		}
		n = e.playInterval(u, st.plan, active, start.Add(iv.Stop), n)
		// A change that ended the interval sooner ended it there; one
		// that made it longer left more of it to play after iv.Stop.
		played = min(release(), iv.Stop)
	}
}

// nextInterval returns the first of active that ends after at.
func nextInterval(active []scheduler.Interval, at time.Duration) (scheduler.Interval, bool) {
	for _, iv := range active {
		if iv.Stop > at {
			return iv, true
		}
	}
	return scheduler.Interval{}, false
}

// playInterval has u play sessions, the n-th first, until stop or the
// end of active, and returns the number of the next.
func (e *Engine) playInterval(u *user, plan *scheduler.Plan, active context.Context, stop time.Time, n int) int {
	e.active.Add(1)
	defer e.active.Add(-1)
	for time.Now().Before(stop) && active.Err() == nil {
		si := plan.Session(u.k, n)
		if n > 0 && !e.lib.scripts[si].continues {
			u.fresh()
		}
		t0 := time.Now()
		u.failed.Store(false)
		whole := u.play(active, stop, si, t0)
		n++
		if !whole {
			break // the interval is over
		}
		if u.failed.Load() && !sleepUntil(active, u.timer, minTime(t0.Add(u.scaled(e.lib.scripts[si].length)), stop)) {
			// A session that failed (a socket refused at once) keeps
			// its recorded length before the next begins: no user
			// loops faster than its recording.
			break
		}
	}
	return n
}

// sleepUntil waits on timer until t, and reports false if ctx ended first.
// When t has passed already (the generator is late), it reports true
// unless ctx was cancelled or its deadline came before t: what was due
// before the run's end still goes out. Each goroutine has its own timer.
// (Since Go 1.23 a stopped or reset timer delivers no stale tick, so there
// is nothing to drain.)
func sleepUntil(ctx context.Context, timer *time.Timer, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		err := ctx.Err()
		if err == nil {
			return true
		}
		dl, ok := ctx.Deadline()
		return errors.Is(err, context.DeadlineExceeded) && ok && t.Before(dl)
	}
	timer.Reset(d)
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		timer.Stop()
		return false
	}
}

func (u *user) scaled(d time.Duration) time.Duration { return time.Duration(float64(d) * u.scale) }

// play runs one session from t0 until it ends, or until stop or the end
// of active (the run): no request due at stop or later goes out. It reports whether
// it played the whole session. Each timer is set from t0, the one absolute
// start, so that lateness never accumulates from step to step.
func (u *user) play(active context.Context, stop time.Time, si int, t0 time.Time) bool {
	var wg sync.WaitGroup
	defer wg.Wait()
	done := t0
	s := &u.e.lib.scripts[si]
	raws := u.e.raw[si]
	// The session's live values, when it has server-made ones to carry.
	// (Values never assigned again, so that the closures below copy them
	// rather than move them to the heap.)
	sv := u.liveValues(s)
	if u.check != nil {
		u.check.sv = sv
	}
	answered, talked := u.waits(s)
	var ended []time.Time // when each awaited step's answer ended, written before its answered closes
	if answered != nil {
		ended = make([]time.Time, len(s.steps))
	}
	for i := range s.steps {
		st, raw := &s.steps[i], raws[i]
		due := t0.Add(u.scaled(st.offset))
		if u.e.cfg.pacing == Think {
			due = done.Add(u.scaled(st.think))
		}
		if !due.Before(stop) || !sleepUntil(active, u.timer, due) || u.hard.Err() != nil {
			return false
		}
		scheduled := due
		if answered != nil && len(st.waitFor) > 0 {
			// It followed these answers when recorded (they gave its
			// cookies and values, or it came after them): it goes out
			// after them, as long after as it did. Waiting for them is the
			// target's time, not the generator's lag; how long it waited
			// is reported apart.
			for n, j := range st.waitFor {
				select {
				case <-answered[j]:
				case <-active.Done():
					return false
				}
				if at := ended[j].Add(u.scaled(st.waitGap[n])); at.After(due) {
					due = at
				}
			}
			if now := time.Now(); now.After(due) {
				due = now
			}
			if due.After(scheduled) && (!due.Before(stop) || !sleepUntil(active, u.timer, due)) {
				return false
			}
		}
		if talked != nil && len(st.afterWS) > 0 {
			for _, w := range st.afterWS {
				c := &talked[w.step][w.msgs-1]
				select {
				case <-c.done:
				case <-active.Done():
					return false
				}
				// As long after the conversation's point as when recorded:
				// a request on another connection must not race the
				// message it followed to the server.
				if at := c.at.Add(u.scaled(w.gap)); at.After(due) {
					due = at
				}
			}
			if !due.Before(stop) || !sleepUntil(active, u.timer, due) {
				return false
			}
		}
		var fin chan struct{}
		if answered != nil {
			fin = answered[i]
		}
		if st.inLoop {
			closeIf(fin) // its loop's first request plays it
			continue
		}
		if sv != nil && s.portable {
			sv.expect(st.sets) // from now on they may come elsewhere
		}
		waited := due.Sub(scheduled)
		answer := func(end time.Time) {
			if fin != nil {
				ended[i] = end
				close(fin)
			}
		}
		var fills []fill
		if u.e.fills != nil {
			fills = u.e.fills[si][i]
		}
		unf := u.e.unfilled[si][i]
		switch {
		case st.ws != nil:
			// A WebSocket lives alongside the session's other requests.
			var told []point
			if talked != nil {
				told = talked[i]
			}
			wg.Go(func() { u.socket(active, stop, st, due, t0, sv, told, answered) })
			answer(time.Now())
		case st.poll != nil && u.e.cfg.pacing == Think:
			done = u.pollLoop(active, st, raw, due, sv, fills, unf, waited)
		case st.poll != nil:
			wg.Go(func() { answer(u.pollLoop(active, st, raw, due, sv, fills, unf, waited)) })
		case u.e.cfg.pacing == Think:
			done = u.send(st, raw, due, sv, fills, unf, nil, 0)
		case u.inlineFits(s, i, t0):
			answer(u.send(st, raw, due, sv, fills, unf, nil, waited))
		default:
			wg.Go(func() { answer(u.send(st, raw, due, sv, fills, unf, nil, waited)) })
		}
	}
	return true
}

// pollLoop plays the poll loop st begins: it sends st, and again after
// the recorded interval, until the answer has the loop's final shape, the
// bound is reached, or the run ends. It returns when the last answer
// ended.
func (u *user) pollLoop(active context.Context, st *step, raw []byte, due time.Time, sv *sessionVars, fills []fill, unfilled bool, waited time.Duration) time.Time {
	lp := st.poll
	ps := pollState{loop: lp}
	limit := maxPolls * lp.polls
	until := time.Now().Add(u.e.cfg.timeout + maxPolls*u.scaled(lp.span))
	polls := int64(0)
	var end time.Time
	timer := time.NewTimer(time.Hour) // the user's own is its session's
	defer timer.Stop()
	for n := 0; ; n++ {
		ps.last = n+1 >= limit || time.Now().After(until)
		end = u.send(st, raw, due, sv, fills, unfilled, &ps, waited)
		waited = 0
		polls++
		if ps.final || ps.last || active.Err() != nil || u.hard.Err() != nil {
			break
		}
		if ps.failed {
			break // the poll failed, or could not be sent
		}
		due = end.Add(u.scaled(lp.interval))
		if !sleepUntil(active, timer, due) {
			break
		}
	}
	u.e.pollLoops.Add(1)
	u.e.polls.Add(polls)
	if !ps.final && ps.last {
		u.e.pollsUnfinished.Add(1)
	}
	return end
}

// liveValues returns the live values of a play of s, nil when it carries
// none.
func (u *user) liveValues(s *script) *sessionVars {
	if len(s.vars) > 0 && u.e.cfg.correlate {
		return newSessionVars(s)
	}
	return nil
}

// point is a moment of a WebSocket conversation that requests wait for:
// done closes when it has come (and at is when).
type point struct {
	done chan struct{}
	at   time.Time
}

// reach marks the point come now, once.
func (p *point) reach() {
	select {
	case <-p.done:
	default:
		p.at = time.Now()
		close(p.done)
	}
}

// waits returns what a play of s waits on, under recorded pacing only
// (think pacing is sequential): answered[i] closes when step i's answer
// is in, for the steps that others wait for; talked[j][m] comes when step
// j's WebSocket has had the reply to its message m (or will have no
// more), for the requests that wait for it.
func (u *user) waits(s *script) (answered []chan struct{}, talked [][]point) {
	if !s.waits || u.e.cfg.pacing != Recorded || u.e.cfg.recorded {
		return nil, nil
	}
	answered = make([]chan struct{}, len(s.steps))
	for i := range s.steps {
		if s.steps[i].awaited {
			answered[i] = make(chan struct{})
		}
	}
	for i := range s.steps {
		for _, w := range s.steps[i].afterWS {
			if talked == nil {
				talked = make([][]point, len(s.steps))
			}
			if talked[w.step] == nil {
				talked[w.step] = make([]point, len(s.steps[w.step].ws.frames))
				for m := range talked[w.step] {
					talked[w.step][m].done = make(chan struct{})
				}
			}
		}
	}
	return answered, talked
}

func closeIf(c chan struct{}) {
	if c != nil {
		close(c)
	}
}

// inlineFits reports whether step i of s can be sent from the user's own
// goroutine under recorded pacing: when the user's answers have been coming
// in under a quarter of the time until the next step is due, waiting for
// this one will not make the next late, and a goroutine is saved. Should an
// answer take longer after all, the next request goes out late and its lag
// says so.
func (u *user) inlineFits(s *script, i int, t0 time.Time) bool {
	if i+1 == len(s.steps) {
		return u.lastWait.Load() < int64(eagerBelow)
	}
	next := t0.Add(u.scaled(s.steps[i+1].offset))
	return time.Duration(u.lastWait.Load()) < time.Until(next)/4
}

// eagerBelow is the answer time under which a user's next request takes its
// read buffer before the answer begins.
const eagerBelow = 5 * time.Millisecond

// send sends one request due at due and reports it; it returns when the
// answer has been read to its end. It allocates nothing: the sample, the
// read buffer and the response come from pools.
//
// In a poll loop, ps is told whether the answer was the loop's last.
// waited is how much later than scheduled due is (see play).
func (u *user) send(st *step, raw []byte, due time.Time, sv *sessionVars, fills []fill, unfilled bool, ps *pollState, waited time.Duration) time.Time {
	e := u.e
	if sv != nil && len(st.needs) > 0 {
		if why := sv.unmet(st); why != "" {
			// A value it sends did not come: a browser would have had no
			// link to follow, no form to submit.
			if ps != nil {
				ps.failed = true
			}
			u.skip(st, due, why)
			return time.Now()
		}
	}
	smp, _ := e.samples.Get().(*report.Sample)
	*smp = report.Sample{Kind: report.HTTP, Profile: u.profile, Endpoint: st.endpoint, Intended: due, Expected: e.expected(st), Waited: waited}
	if st.longPoll {
		smp.Kind = report.LongPoll
	}
	e.inflight.Add(1)
	smp.Sent = time.Now()
	var room [4]substitution // most requests have fewer: no allocation
	subs := u.substitutions(room[:0], st, sv, fills)
	site := e.site(st)
	var (
		first  time.Time
		status int
		err    error
	)
	if u.shared != nil {
		first, status, err = u.sendShared(u.shared[site], site, st, raw, subs, sv, smp, ps)
	} else {
		first, status, err = u.sendOwn(site, st, raw, subs, sv, smp, ps)
	}
	return u.observe(st, smp, first, status, err, unfilled, sv, ps)
}

// skip reports step st, due at due, not sent for why.
func (u *user) skip(st *step, due time.Time, why report.ErrorKind) {
	smp, _ := u.e.samples.Get().(*report.Sample)
	*smp = report.Sample{Kind: report.Skipped, Profile: u.profile, Endpoint: st.endpoint, Intended: due, Sent: time.Now(), Err: why}
	if u.check != nil {
		u.check.skip(st, why)
	}
	u.report(smp)
	u.e.samples.Put(smp)
}

// substitutions appends to subs what replaces recorded texts in st's
// request: values of the users file, live values of the session, and
// cookies a body or URL echoes.
func (u *user) substitutions(subs []substitution, st *step, sv *sessionVars, fills []fill) []substitution {
	e := u.e
	if len(fills) > 0 {
		u.fillMu.Lock()
		for i := range fills {
			f := &fills[i]
			v, ok := u.filled[f]
			if !ok {
				if u.filled == nil {
					u.filled = map[*fill]string{}
				}
				v = f.with(u.vals[f.column])
				u.filled[f] = v
			}
			subs = append(subs, substitution{old: f.recorded, new: v})
		}
		u.fillMu.Unlock()
	}
	if sv != nil {
		subs = sv.substitutions(subs, st)
	}
	if e.cfg.correlate && !e.cfg.recorded {
		for _, ec := range st.bodyEchoes {
			if v, ok := u.jar.value(ec.cookie); ok {
				subs = append(subs, substitution{old: string(ec.recorded), new: v})
			}
		}
	}
	return subs
}

// sendOwn sends st's prepared request raw on one of the user's own
// connections to site, with the user's cookies and validators and the
// substitutions made, and reads the answer.
func (u *user) sendOwn(site int, st *step, raw []byte, subs []substitution, sv *sessionVars, smp *report.Sample, ps *pollState) (first time.Time, status int, err error) {
	e := u.e
	eager := u.lastWait.Load() < int64(eagerBelow)
	var buf, sub *[]byte
	j := &u.jar
	if e.cfg.recorded {
		j = nil
	} else if (len(st.echoes) > 0 && e.cfg.correlate) || !u.jar.empty() || (len(st.conditional) > 0 && u.jar.hasValidators()) {
		buf, _ = e.wires.Get().(*[]byte)
		*buf = u.withState(*buf, raw, st, smp.Sent)
		raw = *buf
	}
	if len(subs) > 0 {
		sub, _ = e.wires.Get().(*[]byte)
		*sub = substitute(*sub, raw, subs)
		raw = *sub
	}
	hook := answerHook{u: u, st: st, sv: sv, j: j, smp: smp, ps: ps}
	var got *answerHook
	if hook.needed() {
		got = &hook
	}
	first, status, err = e.exchange(u.connsTo(site), site, j, raw, st.head, eager, smp.Sent, got)
	if buf != nil {
		e.wires.Put(buf)
	}
	if sub != nil {
		e.wires.Put(sub)
	}
	return first, status, err
}

// answerHook is what is given an answer's body and headers: the session's
// live values taken, the validators kept (with a jar), a GraphQL or
// JSON-RPC error found (they come with a 200), the check's record of the
// body. A value on the sender's stack, so that handing its method over
// allocates nothing.
type answerHook struct {
	u   *user
	st  *step
	sv  *sessionVars
	j   *jar
	smp *report.Sample
	ps  *pollState // in a poll loop
}

// needed reports whether the hook has anything to do with the answer.
func (h *answerHook) needed() bool {
	return h.wantsBody() || h.st.validates && h.j != nil || h.u.e.judges() || h.u.e.sketches()
}

// wantsBody reports whether the answer must be read whole for the hook.
func (h *answerHook) wantsBody() bool {
	return h.sv != nil && (len(h.st.sets) > 0 || h.sv.script.portable) || h.st.watchErrors || h.u.check != nil || h.ps != nil ||
		h.st.x.judgeBody && h.u.e.judges()
}

func (h *answerHook) got(status int, body []byte, header func(string) []byte) {
	if h.u.e.judges() {
		// What the answer says, held against what was recorded.
		h.smp.Err = h.st.x.judgeStatus(h.st.status, status, header("Location"))
	}
	if h.st.watchErrors && h.smp.Err == "" {
		h.smp.Err = apiError(body) // named as the API names it
	}
	if h.u.e.judges() && h.smp.Err == "" && h.st.x.judgeBody && status < 400 {
		h.smp.Err = judgeBody(body, h.st.x.said)
	}
	if h.ps != nil {
		h.ps.final = status >= 200 && status < 300 && h.ps.loop.final.matches(jsonPart(body))
		if !h.ps.final && h.ps.last && h.smp.Err == "" && status < 400 {
			h.smp.Err = errPollUnfinished
		}
	}
	if h.sv != nil {
		h.sv.lookElsewhere(body, header) // before take: an answer's own values are not elsewhere
		if len(h.st.sets) > 0 && (h.ps == nil || h.ps.final || h.ps.last) {
			h.sv.take(h.u.e, h.st, body, header)
		}
	}
	if h.st.validates && h.j != nil {
		h.u.jar.keepValidators(h.st.uri, header)
	}
	if h.u.check != nil {
		h.u.check.answered(h.st, header)
		h.u.check.body(h.st, body)
	}
}

// observe completes smp with how the exchange went and reports it, and
// returns when it ended.
func (u *user) observe(st *step, smp *report.Sample, first time.Time, status int, err error, unfilled bool, sv *sessionVars, ps *pollState) time.Time {
	e := u.e
	end := time.Now()
	e.inflight.Add(-1)
	smp.Done = end.Sub(smp.Sent)
	smp.Status = status
	if !first.IsZero() {
		smp.FirstByte = first.Sub(smp.Sent)
		u.lastWait.Store(int64(smp.FirstByte))
	}
	if err != nil {
		smp.Err = classify(err)
		if u.hard.Err() != nil {
			smp.Err = report.ErrStopped
		}
		smp.Status = 0
	}
	if unfilled && smp.Failed() {
		e.unfilledFailed.Add(1)
	}
	if sv != nil && st.awaited && smp.Failed() {
		sv.steps[st.index].failed = true // before the steps that wait for it read it
	}
	if u.check != nil {
		u.check.http(st, smp)
	}
	if ps != nil {
		ps.failed = smp.Failed()
	}
	u.report(smp)
	e.unsketch(smp)
	e.samples.Put(smp)
	return end
}

// withState writes into dst the request raw with the user's cookies and
// the headers that echo them added at the end of its head.
func (u *user) withState(dst, raw []byte, st *step, now time.Time) []byte {
	end := bytes.Index(raw, []byte("\r\n\r\n")) + 2
	dst = append(dst[:0], raw[:end]...)
	dst = u.jar.appendHeader(dst, st.uri, now, u.e.site(st))
	if len(st.conditional) > 0 {
		dst = u.jar.appendConditional(dst, st.uri, st.conditional)
	}
	for _, ec := range st.echoes {
		if v, ok := u.jar.value(ec.cookie); ok && u.e.cfg.correlate {
			dst = append(dst, ec.header...)
			dst = append(dst, ": "...)
			dst = append(dst, v...)
			dst = append(dst, "\r\n"...)
		}
	}
	return append(dst, raw[end:]...)
}

// connsTo returns the user's connections to site.
func (u *user) connsTo(site int) *userConns {
	if site == 0 {
		return &u.conns
	}
	if u.more == nil {
		u.more = make([]userConns, len(u.e.targets)-1)
	}
	return &u.more[site-1]
}

// closeConns closes the user's idle connections.
// fresh makes the user a new browser for its next session: no cookies, no
// cached validators, no connections. A virtual user is a sequence of
// visits, as a Locust user is, but each visit is played as it was
// recorded: one that began logged out begins logged out.
func (u *user) fresh() {
	u.jar.clear()
	if u.shared == nil {
		u.closeConns()
	}
}

func (u *user) closeConns() {
	u.conns.closeAll(u.e)
	for i := range u.more {
		u.more[i].closeAll(u.e)
	}
}

// siteNames returns, per target, the recorded host names whose requests
// go there, for cookies set for a domain; nil for one target.
func (e *Engine) siteNames() [][]string {
	if len(e.targets) == 1 {
		return nil
	}
	out := make([][]string, len(e.targets))
	for i := range e.targets {
		out[i] = e.targets[i].names
	}
	return out
}

// sendShared sends a step through the engine's shared pool to site.
func (u *user) sendShared(hc *fasthttp.HostClient, site int, st *step, raw []byte, subs []substitution, sv *sessionVars, smp *report.Sample, ps *pollState) (first time.Time, status int, err error) {
	e := u.e
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	if len(subs) > 0 {
		// The request as it goes on the wire, with the values replaced,
		// read back through pooled buffers (Read copies what it needs).
		sub, _ := e.wires.Get().(*[]byte)
		*sub = substitute(*sub, raw, subs)
		wr, _ := e.wireReaders.Get().(*wireReader)
		wr.r.Reset(*sub)
		wr.br.Reset(&wr.r)
		err := req.Read(wr.br)
		wr.br.Reset(nil)
		e.wireReaders.Put(wr)
		e.wires.Put(sub)
		if err != nil {
			return time.Time{}, 0, err
		}
	} else {
		e.build(req, st)
	}
	if e.cfg.recorded {
		if err := hc.Do(req, resp); err != nil {
			return time.Time{}, 0, err
		}
		return e.drain(smp, resp)
	}
	now := time.Now()
	u.jar.mu.Lock()
	for i := range u.jar.cookies {
		if c := &u.jar.cookies[i]; (c.expires.IsZero() || c.expires.After(now)) && pathMatch(c.path, st.uri) && u.jar.goesTo(c, site) {
			req.Header.SetCookie(c.name, c.value)
		}
	}
	u.jar.mu.Unlock()
	for _, ec := range st.echoes {
		if v, ok := u.jar.value(ec.cookie); ok && e.cfg.correlate {
			req.Header.Set(ec.header, v)
		}
	}
	if err := hc.Do(req, resp); err != nil {
		return time.Time{}, 0, err
	}
	for _, v := range resp.Header.Cookies() {
		u.jar.set(v, time.Now(), site)
	}
	judge := e.judges()
	if judge {
		smp.Err = st.x.judgeStatus(st.status, resp.StatusCode(), resp.Header.Peek("Location"))
	}
	if sv != nil && len(st.sets) > 0 || st.watchErrors || ps != nil || judge && st.x.judgeBody && smp.Err == "" && resp.StatusCode() < 400 ||
		e.sketchesBody(st.endpoint, resp.StatusCode(), resp.Header.ContentType()) {
		first = time.Now()
		size := int64(len(resp.Body()))
		if stream := resp.BodyStream(); stream != nil {
			// At most keptBody of it is kept, the rest discarded.
			buf, _ := e.wires.Get().(*[]byte)
			kept, n, err := keepBody((*buf)[:0], stream, true)
			_ = resp.CloseBodyStream()
			*buf, size = kept, n
			defer e.wires.Put(buf)
			if err != nil {
				return first, resp.StatusCode(), err
			}
			resp.SetBodyRaw(kept)
		}
		body := content(resp)
		e.sketch(smp, &resp.Header, size, body)
		if ps != nil {
			ps.final = resp.StatusCode()/100 == 2 && ps.loop.final.matches(jsonPart(body))
			if !ps.final && ps.last && smp.Err == "" && resp.StatusCode() < 400 {
				smp.Err = errPollUnfinished
			}
		}
		if sv != nil && len(st.sets) > 0 && (ps == nil || ps.final || ps.last) {
			sv.take(e, st, body, resp.Header.Peek)
		}
		if st.watchErrors && smp.Err == "" {
			smp.Err = apiError(body)
		}
		if judge && st.x.judgeBody && smp.Err == "" && resp.StatusCode() < 400 {
			smp.Err = judgeBody(body, st.x.said)
		}
		return first, resp.StatusCode(), nil
	}
	return e.drain(smp, resp)
}

// drain reads a shared-pool answer's body to its end, and sketches the
// answer (without its body) for smp.
func (e *Engine) drain(smp *report.Sample, resp *fasthttp.Response) (first time.Time, status int, err error) {
	first = time.Now()
	size := int64(len(resp.Body()))
	if body := resp.BodyStream(); body != nil {
		size, err = io.Copy(io.Discard, body)
		_ = resp.CloseBodyStream()
	}
	e.sketch(smp, &resp.Header, size, nil)
	return first, resp.StatusCode(), err
}

// classify names a transport error.
func classify(err error) report.ErrorKind {
	var ne net.Error
	var te *tls.RecordHeaderError
	var ce *tls.CertificateVerificationError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return report.ErrRefused
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return report.ErrReset
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return report.ErrPorts
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		return report.ErrFiles
	case errors.Is(err, fasthttp.ErrTimeout), errors.Is(err, fasthttp.ErrDialTimeout), errors.Is(err, fasthttp.ErrNoFreeConns),
		errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return report.ErrTimeout
	case errors.As(err, &te), errors.As(err, &ce), strings.Contains(err.Error(), "tls:"):
		return report.ErrTLS
	}
	if kind := badAnswer(err); kind != "" {
		return kind
	}
	if errors.Is(err, fasthttp.ErrConnectionClosed) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return report.ErrClosed
	}
	return report.ErrOther
}

// Answers that came but that HTTP/1.1 cannot read, by what was wrong.
const (
	errNotHTTP         report.ErrorKind = "answer: not HTTP"          // HTTP/0.9, a status line of another protocol
	errTLSAnswer       report.ErrorKind = "answer: TLS"               // a TLS server asked in plain HTTP
	errHeadersTooLarge report.ErrorKind = "answer: headers too large" // a header block past the read buffer
	errBadLength       report.ErrorKind = "answer: bad length"        // a Content-Length that is no number
	errBodyTooLarge    report.ErrorKind = "answer: body too large"    // past the body limit
)

// badAnswer names an answer that came and could not be read as HTTP, ""
// for other errors. fasthttp says so only in its messages (with the bytes
// it read: "buffer size=N, contents: …"), which the replay tests pin.
func badAnswer(err error) report.ErrorKind {
	if _, ok := errors.AsType[*fasthttp.ErrSmallBuffer](err); ok {
		return errHeadersTooLarge
	}
	if errors.Is(err, fasthttp.ErrBodyTooLarge) {
		return errBodyTooLarge
	}
	msg := err.Error()
	if !strings.Contains(msg, "error when reading response headers") || strings.Contains(msg, "buffer size=0,") {
		return "" // nothing came: the connection closed, or timed out
	}
	switch {
	case strings.Contains(msg, "content-length"):
		return errBadLength
	case strings.Contains(msg, `contents: "\x16\x03`):
		return errTLSAnswer
	}
	return errNotHTTP
}
