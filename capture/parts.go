package capture

import (
	"cmp"
	"slices"
	"time"

	"github.com/thrive-loadtest/thrive/capture/wire"
	"github.com/thrive-loadtest/thrive/traces"
)

// A session's records stay in memory until it ends, for the evidence that
// may still move them: a login takes a connection's anonymous requests, a
// rotated token shows two sessions to be one. A long session (a dashboard
// polling all day, a client downloading for an hour, a socket open for
// hours) would so hold all it did, and reach the trace as one record too
// large to write. So once a session holds more than 16 MiB of bodies or
// 1,000 finished exchanges, or its open sockets more than 10,000 frames or
// 16 MiB of them (defaultPartLimits), the writer hands on, as a part of the
// session (traces.Writer.WritePart), the exchanges that finished 5 s ago or
// more (all that finished, once it holds 64 MiB), with the frames its open
// sockets recorded so far. Memory is then bounded by what sessions do
// within those 5 s and these sizes, not by their length. A part's exchanges no longer move: the evidence that could
// move them comes within moments of them, not minutes.
type partLimits struct {
	bytes     int64
	exchanges int
	frames    int
	settle    time.Duration
}

// defaultPartLimits returns the limits past which a long session is
// written in parts.
func defaultPartLimits() partLimits {
	return partLimits{bytes: 16 << 20, exchanges: 1000, frames: 10000, settle: 5 * time.Second}
}

// partCarry is what a session written in parts keeps of the parts handed
// on, for the next ones and the last: the writer goroutine alone uses it
// once the sessionizer made it.
type partCarry struct {
	base time.Time // every part's Start
	busy time.Time // the latest end of the exchanges handed on
	// placed holds a bit for each placement of the exchanges handed on,
	// for the session's evidence.
	placed uint16
	// exchanges and frames handed on, counted when the session ends.
	exchanges, frames int64
	tally             tally     // the rules' matches, for the profile
	secrets           *secrets  // what redaction found, for its echoes
	counted           []*record // sockets counted in tally already
	// fast is set while the session finishes so much that each sweep
	// hands on all it finished: the journal leaves its exchanges to the
	// next part, a moment later, rather than write them twice.
	fast bool
}

// partOut is a part a sweep hands on: the finished records taken out of
// the session, and the frames its open sockets recorded so far.
type partOut struct {
	s       *session
	recs    []*record
	sockets []socketPiece
}

type socketPiece struct {
	r      *record
	frames []wire.TimedFrame
}

// socket notes r, which has just upgraded to a WebSocket, as in flight.
func (sz *sessionizer) socket(r *record) {
	sz.mu.Lock()
	defer sz.mu.Unlock()
	if sz.sockets == nil {
		sz.sockets = map[*record]bool{}
	}
	sz.sockets[r] = true
}

// parts takes the parts due at now out of the open sessions (see
// defaultPartLimits). When pressed (the capture's buffer is half full:
// many sessions open at once, none of them long) every identified session
// hands on all it finished, whatever its size: memory is then bounded by
// the buffer and what arrives within a sweep, not by the sessions an idle
// time keeps open, and wins over evidence that might still move a record.
// Anonymous sessions keep theirs, which a login may still take.
func (sz *sessionizer) parts(now time.Time, pressed bool) []partOut {
	lim := &sz.partLimits
	sz.mu.Lock()
	defer sz.mu.Unlock()
	socks := map[*session][]*record{}
	for r := range sz.sockets {
		s := r.session
		for s != nil && s.movedTo != nil {
			s = s.movedTo
		}
		if s != nil && !s.done {
			socks[s] = append(socks[s], r)
		}
	}
	seen := map[*session]bool{}
	var out []partOut
	for _, s := range sz.open {
		if seen[s] || s.done {
			continue
		}
		seen[s] = true
		var held, all int64
		n := 0
		for _, r := range s.records {
			all += r.held
		}
		// A session downloading fast would fill the capture's buffer
		// within the settle time: past four parts' worth, memory wins over
		// the evidence that might still move a record.
		settle := lim.settle
		if all >= 4*lim.bytes || pressed && !s.anonymous() {
			settle = 0
		}
		if s.carry != nil {
			s.carry.fast = settle == 0
		}
		for _, r := range s.records {
			if now.Sub(r.end) >= settle {
				held += r.held
				n++
			}
		}
		frames, fbytes := 0, int64(0)
		for _, r := range socks[s] {
			f, b := r.sock.Held()
			frames, fbytes = frames+f, fbytes+b
		}
		due := held >= lim.bytes || n >= lim.exchanges || frames >= lim.frames || fbytes >= lim.bytes
		if !due && (!pressed || n == 0 || s.anonymous()) {
			continue
		}
		p := partOut{s: s}
		s.records = slices.DeleteFunc(s.records, func(r *record) bool {
			if now.Sub(r.end) < settle {
				return false
			}
			p.recs = append(p.recs, r)
			return true
		})
		if s.carry == nil {
			s.carry = &partCarry{base: s.first}
			for _, r := range socks[s] {
				s.carry.base = minTime(s.carry.base, r.start)
			}
			if s.carry.base.IsZero() && len(p.recs) > 0 {
				s.carry.base = p.recs[0].start
			}
			s.carry.fast = settle == 0
		}
		for _, r := range p.recs {
			s.carry.placed |= 1 << r.placed
			sz.forget(r)
		}
		for _, r := range socks[s] {
			if f := r.sock.Drain(); len(f) > 0 {
				p.sockets = append(p.sockets, socketPiece{r, f})
			}
		}
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b partOut) int { return a.s.first.Compare(b.s.first) })
	return out
}

// forget lets go of r, handed on in a part: nothing points to it any more,
// so its bodies are freed once written. Callers hold mu.
func (sz *sessionizer) forget(r *record) {
	r.journaled = true // in the trace: the journal need not keep it
	for _, v := range append(r.gave, r.places...) {
		if g, ok := sz.given[v]; ok && (g == nil || g == r) {
			delete(sz.given, v)
			delete(sz.rival, v)
		}
	}
	if cs := sz.conns[r.conn]; cs != nil && r.conn != 0 {
		cs.anon = slices.DeleteFunc(cs.anon, func(x *record) bool { return x == r })
	}
}

// buildPart turns a part into the session record the trace gets: its
// records' exchanges, then a piece of each open socket with the frames
// that came since the last, marked Open.
func (p *partOut) build() *traces.Session {
	s, cr := p.s, p.s.carry
	recs := p.recs
	slices.SortStableFunc(recs, func(a, b *record) int { return cmp.Compare(a.start.UnixNano(), b.start.UnixNano()) })
	ts := &traces.Session{ID: s.id, Client: s.key, Start: cr.base, Continues: s.continues,
		Exchanges: exchanges(recs, cr.base, s.anonymous(), &cr.busy)}
	for _, sp := range p.sockets {
		ex := sp.r.exchange(cr.base)
		ex.WebSocket = &traces.WebSocket{Frames: socketFrames(sp.frames, cr.base), Open: true}
		ts.Exchanges = append(ts.Exchanges, ex)
	}
	return ts
}
