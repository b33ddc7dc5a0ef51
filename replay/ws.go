package replay

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gorilla/websocket"
	"github.com/thrive-loadtest/thrive/report"
)

// socket replays a recorded WebSocket: it connects when due, sends each
// client message at its recorded offset from the session's start t0 (or,
// with think pacing, once the reply to the one before has come), and times
// each reply from the message to its first and to its last frame, the last
// being the one that makes as many frames as the recording had.
func (u *user) socket(active context.Context, stop time.Time, st *step, due, t0 time.Time, sv *sessionVars, told []point, answered []chan struct{}) {
	// Whatever happens, the requests that wait for the conversation go on
	// once it is over.
	defer func() {
		for m := range told {
			told[m].reach()
		}
	}()
	if sv != nil && len(st.needs) > 0 {
		if why := sv.unmetBefore(st); why != "" {
			// Its URL or headers need a value that did not come (the
			// page that gave its token failed): a page would not open it.
			u.skip(st, due, why)
			return
		}
	}
	if sv != nil {
		sv.expect(st.ws.early)
	}
	conn := u.connect(st, due, sv)
	if conn == nil {
		return
	}
	defer conn.Close()
	conn.SetReadLimit(maxFrame)
	u.e.wsConns.Add(1)
	u.e.wsOpen.Add(1) // once a socket, not a message
	defer u.e.wsOpen.Add(-1)
	// The reader hands each server message to converse, which owns
	// everything else; quit ends the reader should converse end first.
	arrivals := make(chan arrival, 64)
	quit := make(chan struct{})
	defer close(quit)
	go u.e.readSocket(conn, st.ws.end != nil || u.e.judges() || st.ws.idServer != nil || sv != nil && (len(st.ws.sets) > 0 || st.ws.elsewhere || sv.seeking.Load() > 0), arrivals, quit)
	u.converse(conn, active, stop, st, t0, sv, arrivals, told, answered)
}

// connect opens st's WebSocket when it is due, with the session's live
// values in its URL and headers, and reports the handshake; nil if it
// failed.
func (u *user) connect(st *step, due time.Time, sv *sessionVars) *websocket.Conn {
	e := u.e
	site := e.site(st)
	t := &e.targets[site]
	scheme := "ws://"
	if t.tls {
		scheme = "wss://"
	}
	// The live values of the session (a ticket in the URL, a token in a
	// header) replace their recorded ones.
	var subs []substitution
	if sv != nil {
		subs = sv.substitutions(nil, st)
	}
	d := websocket.Dialer{
		NetDial:          func(_, addr string) (net.Conn, error) { return e.dial(addr) },
		HandshakeTimeout: e.cfg.timeout,
		TLSClientConfig:  t.tlsConf,
	}
	smp := report.Sample{Kind: report.WSConnect, Profile: u.profile, Endpoint: st.endpoint, Intended: due, Sent: time.Now(), Expected: e.expected(st)}
	conn, resp, err := d.DialContext(u.hard, scheme+t.host+string(replaceAll(st.uri, subs, true)), u.socketHeader(st, site, subs))
	smp.Done = time.Since(smp.Sent)
	smp.FirstByte = smp.Done
	if resp != nil {
		smp.Status = resp.StatusCode
		resp.Body.Close()
	}
	switch {
	case err != nil && resp == nil:
		smp.Err = classify(err)
	case err != nil && resp.StatusCode < 400:
		// An answer that is no upgrade (a 200, a 101 whose
		// Sec-WebSocket-Accept does not answer the key): no socket.
		smp.Err = errBadHandshake
	}
	u.report(&smp)
	if u.check != nil {
		u.check.connect(st, &smp)
	}
	if err != nil {
		return nil
	}
	return conn
}

// socketHeader is the handshake's header: the recorded Origin, User-Agent,
// Authorization and X- headers with live values, the user's cookies for
// site (or the recorded ones) and the headers that echo them, and those of
// WithHeader.
func (u *user) socketHeader(st *step, site int, subs []substitution) http.Header {
	e := u.e
	h := http.Header{}
	for _, kv := range st.headers {
		name := string(kv[0])
		if strings.EqualFold(name, "Origin") || strings.EqualFold(name, "User-Agent") ||
			strings.EqualFold(name, "Authorization") || strings.HasPrefix(strings.ToLower(name), "x-") {
			h.Add(name, string(replaceAll(e.ownOrigin(kv[0], kv[1], st), subs, false)))
		}
	}
	if e.cfg.recorded {
		for _, kv := range st.recorded {
			h.Set(string(kv[0]), string(kv[1]))
		}
	} else if line := u.jar.appendHeader(nil, st.uri, time.Now(), site); len(line) > 0 {
		h.Set("Cookie", strings.TrimSuffix(strings.TrimPrefix(string(line), "Cookie: "), "\r\n"))
	}
	for _, ec := range st.echoes {
		if v, ok := u.jar.value(ec.cookie); ok && !e.cfg.recorded && e.cfg.correlate {
			h.Set(ec.header, v)
		}
	}
	for _, kv := range e.cfg.headers {
		h.Set(kv[0], kv[1])
	}
	return h
}

// readSocket hands each server message of conn to arrivals (with its
// payload when keep: the end of a reply is told by its shape) until the
// connection fails or quit closes, then closes arrivals.
func (e *Engine) readSocket(conn *websocket.Conn, keep bool, arrivals chan<- arrival, quit <-chan struct{}) {
	defer close(arrivals)
	for {
		_, p, err := conn.ReadMessage()
		if errors.Is(err, websocket.ErrReadLimit) {
			select {
			case arrivals <- arrival{at: time.Now(), tooLarge: true}:
			case <-quit:
			}
		}
		if err != nil {
			return
		}
		e.wsReceived.Add(1)
		a := arrival{at: time.Now(), size: len(p)}
		if keep {
			a.payload = p
		}
		if e.sketches() {
			a.raw = p
		}
		select {
		case arrivals <- a:
		case <-quit:
			return
		}
	}
}

// holdsJSON reports whether a server message is, or carries, a JSON
// document (jsonPart's): after up to four digits of a packet type, or
// after a text frame's headers; without allocating, as every frame is
// asked.
func holdsJSON(b []byte) bool {
	i := 0
	for i < len(b) && i < 4 && '0' <= b[i] && b[i] <= '9' {
		i++
	}
	if i < len(b) && (b[i] == '{' || b[i] == '[') {
		return true
	}
	k := bytes.Index(b, []byte("\n\n"))
	return k >= 0 && k+2 < len(b) && (b[k+2] == '{' || b[k+2] == '[')
}

// arrival is a server message as the reader saw it.
type arrival struct {
	at      time.Time
	payload []byte // only when the end of a reply is told by its shape, or it gives values
	raw     []byte // the message, for the sketch of the replies (WithoutSketch: nil)
	size    int    // its length
	// tooLarge says the server sent a message past maxFrame: the reader
	// stopped there, and the socket is closed.
	tooLarge bool
}

// maxFrame bounds a server message a user reads (gorilla's read limit):
// one announcing more fails the conversation as frame too large rather
// than being held whole.
const maxFrame = 16 << 20

// reply is a client message whose reply is awaited.
type reply struct {
	smp  report.Sample
	msg  *wsFrame
	got  int       // frames so far
	last time.Time // the latest frame
	// size is the length of the frames so far; tail the latest that held
	// JSON, else the latest, for the sketch of the replies: a STOMP
	// reply's MESSAGE, not the RECEIPT after it.
	size int64
	tail []byte
	json bool   // tail holds JSON
	id   string // the id its reply's frames carry back, when the socket's replies do
	// hold puts off the silence that ends it: the replayer was not
	// awake to hear the frames that may have come (see stallSlack).
	hold time.Time
}

// stallSlack is how late a timer may fire before the replayer counts
// itself as having stalled (a starved or paused process): a reply's
// silence is then not the server's, whose frames may wait unread in the
// socket, and the reply is given as long again to show them.
const stallSlack = 100 * time.Millisecond

// converse sends each client message at its recorded offset from t0 (or,
// with think pacing, once the reply before it is over) and times each
// reply from the message to its first and its last frame. Replies are
// awaited in order: each frame belongs to the oldest reply not over. A reply
// is over at a frame of the recorded last frame's shape (or, when the
// recording shows none, at the recorded number of frames), or after a
// silence once it has begun; a reply that never begins fails after the
// request timeout. A message waits for the reply before it to be over,
// unless the recorded user did not wait either. Frames that come when no
// reply is awaited are counted and left alone.
func (u *user) converse(conn *websocket.Conn, active context.Context, stop time.Time, st *step, t0 time.Time, sv *sessionVars, arrivals <-chan arrival, told []point, answered []chan struct{}) {
	tell := func(f *wsFrame) {
		if told != nil {
			told[f.index].reach()
		}
	}
	e := u.e
	ws := st.ws
	var queue []*reply
	var room [4]substitution // a message's live values, most often without allocating
	var readyRoom [4]int
	kick, kickFor := make(chan struct{}, 1), -1
	quit := make(chan struct{})
	defer close(quit)
	last := time.Now() // when the latest reply was over, or the connection opened
	sendTimer, waitTimer := time.NewTimer(time.Hour), time.NewTimer(time.Hour)
	defer sendTimer.Stop()
	defer waitTimer.Stop()
	finish := func(r *reply, now time.Time, err report.ErrorKind, silent bool) {
		r.smp.Err, r.smp.Silent = err, silent
		if r.got > 0 {
			r.smp.Done = r.last.Sub(r.smp.Sent)
		} else {
			r.smp.Done = now.Sub(r.smp.Sent)
		}
		if e.sketches() && err == "" && r.got > 0 {
			a, _ := e.answers.Get().(*report.Answer)
			a.Reset()
			a.Frames, a.Size = r.got, r.size
			a.ReadJSON(jsonPart(r.tail))
			r.smp.Answer = a
		}
		u.report(&r.smp)
		e.unsketch(&r.smp)
		if u.check != nil {
			u.check.reply(st, r)
		}
		tell(r.msg)
		if i := slices.Index(queue, r); i >= 0 {
			queue = slices.Delete(queue, i, i+1)
		}
		last = now
	}
	next := 0
	sending := true
	refused := false // the server said it refused, or closed while a reply was awaited
	// failed reports the conversation failed at at, with no reply awaited.
	failed := func(at time.Time, err report.ErrorKind) {
		u.report(&report.Sample{Kind: report.WSReply, Profile: u.profile, Endpoint: st.endpoint, Intended: at, Sent: at, Status: 101, Err: err})
	}
	sent := -1 // the latest message sent
	// unanswered is when the latest message that awaited no reply went:
	// its refusal may still come after the close (see linger).
	var unanswered time.Time
	// Values of earlier answers that their live answers lacked, sought in
	// the session's later answers and frames (sessionVars.seek).
	lacks := func(f *wsFrame) bool {
		return slices.ContainsFunc(f.elsewhere, sv.awaiting)
	}
	// arrive takes a server message (ok false: the socket ended) and
	// reports whether the conversation is over.
	arrive := func(a arrival, ok bool) bool {
		if ok && a.tooLarge {
			if len(queue) == 0 {
				failed(a.at, errFrameTooLarge)
			}
			for len(queue) > 0 {
				finish(queue[0], a.at, errFrameTooLarge, false)
			}
			return true
		}
		if !ok {
			// The server closed the socket (or it broke): what was
			// awaited fails, and so does a conversation cut short,
			// unless the server said why already.
			now := time.Now()
			for len(queue) > 0 {
				if refused {
					r := queue[0]
					r.smp.Kind = report.Skipped
					finish(r, now, "skipped: the server closed the socket after refusing", false)
					continue
				}
				finish(queue[0], now, report.ErrClosed, false)
				refused = true
			}
			if !refused && sending && next < len(ws.frames) && e.judges() {
				failed(now, errClosedEarly)
			}
			return true
		}
		if sv != nil && len(ws.sets) > 0 {
			sv.takeFrame(e, st, sent, a.payload)
		}
		if sv != nil {
			sv.lookElsewhere(a.payload, nil)
		}
		var said report.ErrorKind
		if e.judges() {
			if len(queue) == 0 {
				said = judgePush(a.payload, ws.said)
			} else {
				said = judgeBody(a.payload, ws.said)
			}
		}
		if said == "" && heartbeat(a.payload) {
			return false // the connection's pulse, no part of a reply
		}
		if len(queue) == 0 {
			if said != "" && !refused {
				// A refusal that answers no message (a disconnect
				// at connection): the conversation failed.
				refused = true
				failed(a.at, said)
			}
			return false // nothing awaited: a push, or the rest of a reply given up on
		}
		r := queue[0]
		if ws.idServer != nil {
			// A frame that carries an id belongs to the message that
			// sent it, however replies interleave.
			id, ok := jsonAt(jsonPart(a.payload), ws.idServer)
			i := slices.IndexFunc(queue, func(q *reply) bool { return ok && q.id == id })
			switch {
			case i >= 0:
				r = queue[i]
			case said == "":
				return false // a push, the rest of a reply given up on, or another's
			}
		}
		r.got++
		if r.got == 1 {
			r.smp.FirstByte = a.at.Sub(r.smp.Sent)
		}
		r.last, r.size = a.at, r.size+int64(a.size)
		if a.raw != nil {
			if j := holdsJSON(a.raw); j || !r.json {
				r.tail, r.json = a.raw, j
			}
		}
		if said != "" {
			refused = true
			finish(r, a.at, said, false)
			return false
		}
		if ws.end != nil && ws.end.matches(a.payload) || ws.end == nil && r.got >= r.msg.replies {
			finish(r, a.at, "", false)
		}
		return false
	}
	var wake <-chan struct{} // nil until something is sought: never ready
	for {
		if sending && active.Err() != nil {
			// The run is over: nothing more is sent, whatever a message
			// was waiting for; a reply in flight is still awaited.
			sending = false
		}
		// When the next message goes out, if it may now.
		var sendAt time.Time
		waitValues := false
		canSend := sending && next < len(ws.frames)
		if canSend {
			f := &ws.frames[next]
			sendAt = t0.Add(u.scaled(f.offset))
			prevOverlaps := next > 0 && ws.frames[next-1].overlaps && e.cfg.pacing == Recorded
			switch {
			case len(queue) > 0 && !prevOverlaps:
				canSend = false
			case len(f.after) > 0 && answered != nil && !allClosed(f.after, answered) && time.Since(last) < e.cfg.timeout:
				// It came after requests begun beside the socket that had
				// answered (a poll released by the upgrade): it waits
				// for them, reading the socket meanwhile.
				canSend, waitValues = false, true
				if kickFor != next {
					kickFor = next
					go awaitAll(f.after, answered, kick, quit)
				}
			case sv != nil && (len(f.needs) > 0 && sv.missing(f.needs) || len(f.elsewhere) > 0 && lacks(f)) && time.Since(last) < e.cfg.timeout:
				// It sends a value a reply has not given yet: it waits
				// for the frame, as the page did.
				canSend = false
				waitValues = true
			case e.cfg.pacing == Think || (!prevOverlaps && last.After(sendAt)):
				sendAt = last
			}
			if canSend && (!sendAt.Before(stop) || active.Err() != nil) {
				sending, canSend = false, false
			}
		}
		if !canSend && len(queue) == 0 && (!sending || next >= len(ws.frames)) {
			break
		}
		if wake == nil && sv != nil {
			wake = sv.waker()
		}
		var sendC, waitC <-chan time.Time
		if waitValues && len(queue) == 0 {
			// Until the values come or the request timeout passes.
			waitTimer.Reset(time.Until(last.Add(e.cfg.timeout)))
			waitC = waitTimer.C
		}
		if canSend {
			sendTimer.Reset(time.Until(sendAt))
			sendC = sendTimer.C
		}
		var over <-chan struct{} // the run's end, while messages may go
		if sending {
			over = active.Done()
		}
		var deadline time.Time
		if len(queue) > 0 {
			r := queue[0]
			deadline = r.smp.Sent.Add(e.cfg.timeout)
			if r.got > 0 {
				silence := r.last.Add(u.replyIdle(r.msg))
				if r.hold.After(silence) {
					silence = r.hold
				}
				deadline = minTime(deadline, silence)
			}
			waitTimer.Reset(time.Until(deadline))
			waitC = waitTimer.C
		}
		select {
		case <-sendC:
			f := &ws.frames[next]
			// The later requests whose answers give what it sends: only
			// the values of those that answered may be read.
			ready := readyRoom[:0]
			if answered != nil {
				for _, j := range f.after {
					if answered[j] == nil {
						continue
					}
					select {
					case <-answered[j]:
						ready = append(ready, j)
					default:
					}
				}
			}
			next++
			r := &reply{msg: f, smp: report.Sample{Kind: report.WSReply, Profile: u.profile, Endpoint: st.endpoint, Intended: sendAt, Sent: time.Now(), Status: 101}}
			_ = conn.SetWriteDeadline(r.smp.Sent.Add(e.cfg.timeout))
			payload := f.payload
			if sv != nil {
				payload = replaceAll(payload, sv.substitutionsAfter(room[:0], st, ready), false)
			}
			if ws.idClient != nil {
				r.id, _ = jsonAt(jsonPart(payload), ws.idClient)
			}
			e.wsSent.Add(1)
			sent = next - 1
			if err := conn.WriteMessage(f.opcode, payload); err != nil {
				r.smp.Err = classify(err)
				u.report(&r.smp)
				return
			}
			if f.replies == 0 {
				u.report(&r.smp)
				tell(f)
				last, unanswered = r.smp.Sent, r.smp.Sent
				continue
			}
			queue = append(queue, r)
		case a, ok := <-arrivals:
			if arrive(a, ok) {
				return
			}
		case now := <-waitC:
			if len(queue) == 0 {
				continue // the values a message needs did not come: it goes without them
			}
			r := queue[0]
			switch {
			case r.got == 0 || now.Sub(r.smp.Sent) >= e.cfg.timeout:
				finish(r, now, report.ErrTimeout, false)
			case len(arrivals) > 0:
				// A frame read as the timer fired: no silence.
				if a, ok := <-arrivals; arrive(a, ok) {
					return
				}
			case time.Since(deadline) > stallSlack:
				// The replayer woke late (the timer's value is when it
				// was due, not when it ran): the silence may be its own.
				r.hold = time.Now().Add(time.Since(deadline))
			default:
				finish(r, now, "", true)
			}
		case <-over: // the run ended: nothing more is sent
		case <-wake: // a value sought came: look again
		case <-kick: // the requests a message came after answered
		case <-u.hard.Done():
			return
		}
	}
	closeAt := t0.Add(u.scaled(ws.close))
	if e.cfg.pacing == Think || closeAt.Before(last) {
		closeAt = last
	}
	if closeAt.After(stop) {
		closeAt = stop
	}
	sleepUntil(active, sendTimer, closeAt)
	if !u.linger(sendTimer, unanswered.Add(min(wsLinger, e.cfg.timeout)), arrivals, arrive) {
		return
	}
	_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
}

// wsLinger is how long after a message that awaited no reply the socket
// is still read before it closes: a refusal of it (a STOMP ERROR to a SEND
// sent just before the run's end or the recorded close) comes after the
// message, and the server counted it.
const wsLinger = 500 * time.Millisecond

// linger reads the socket's messages with arrive until until, so that a
// refusal of a message that awaited no reply is judged before the close.
// It reports false when the conversation is over (the socket ended) or the
// user is cut. Only such a message lingers: other pushes before the close
// (a LiveView's error once the replay's own logout ended its session) are
// not the server's answer to anything sent.
func (u *user) linger(timer *time.Timer, until time.Time, arrivals <-chan arrival, arrive func(arrival, bool) bool) bool {
	for {
		d := time.Until(until)
		if d <= 0 {
			return true
		}
		timer.Reset(d)
		select {
		case a, ok := <-arrivals:
			timer.Stop()
			if arrive(a, ok) {
				return false
			}
		case <-timer.C:
		case <-u.hard.Done():
			timer.Stop()
			return false
		}
	}
}

// allClosed reports whether the answers of steps have all come (a step
// not awaited counts as come).
func allClosed(steps []int, answered []chan struct{}) bool {
	for _, j := range steps {
		if answered[j] == nil {
			continue
		}
		select {
		case <-answered[j]:
		default:
			return false
		}
	}
	return true
}

// awaitAll tells kick once the answers of steps have come, unless quit
// closes first.
func awaitAll(steps []int, answered []chan struct{}, kick chan<- struct{}, quit <-chan struct{}) {
	for _, j := range steps {
		if answered[j] == nil {
			continue
		}
		select {
		case <-answered[j]:
		case <-quit:
			return
		}
	}
	select {
	case kick <- struct{}{}:
	default:
	}
}

// replyIdle is how long the reply to msg may stay silent once begun.
func (u *user) replyIdle(msg *wsFrame) time.Duration {
	if d := u.e.cfg.replyIdle; d > 0 {
		return d
	}
	return msg.idle
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
