package passive

import (
	"fmt"
	"strings"
	"time"

	"github.com/google/gopacket/reassembly"

	"github.com/thrive-loadtest/thrive/capture/wire"
	"github.com/thrive-loadtest/thrive/traces"
)

// conn is one TCP connection the filter selected: its two directions'
// parsers, and the exchanges begun on it and not yet handed on. The
// assembler feeds it one direction at a time, in the packets' order.
type conn struct {
	rd        *reader
	id        string // "client:port>server:port"
	client    string // the client's IP address
	clientDir reassembly.TCPFlowDirection

	midstream bool      // no SYN seen: it began before the capture
	counted   bool      // counted in Stats.Connections
	closed    bool      // a FIN or RST was seen
	seen      bool      // a byte of it was read (TLS shows in the first)
	tls       bool      // it carries TLS: skipped
	ended     bool      // end has run
	requests  int       // request heads read
	last      time.Time // the time of its latest packet
	now       time.Time // the time of the bytes being parsed
	settling  bool      // settle is running

	cli, srv side

	cur       *exchange   // the request being read
	waiting   []*exchange // requests whose answer has not begun, oldest first
	answering *exchange   // the exchange whose answer is being read

	ws                     *exchange // the exchange whose 101 made the connection a WebSocket
	fromClient, fromServer *wire.FrameParser
}

// exchange is an exchange being read: its request and answer as far as
// they came, and what went wrong.
type exchange struct {
	ex                traces.Exchange
	start, ttfb, end  time.Time
	reqBody, respBody wire.Tap
	upgrade           bool   // the request asks for a WebSocket
	reqDone, respDone bool   // the request, the answer read to their end (or cut)
	answered          bool   // the answer's head was read
	missing           int64  // bytes lost in gaps
	err               string // what else went wrong
	drop              string // not handed on, but counted so: its request head was not whole
	sock              *wire.Socket
	handed            bool
}

// chunk is a run of one direction's bytes from packets of one time, or a
// gap of bytes lost.
type chunk struct {
	at  time.Time
	b   []byte
	gap int64
}

// side is one direction of a connection: its parser, and the bytes that
// wait for the other direction.
type side struct {
	c          *conn
	fromClient bool
	s          wire.MsgStream
	synced     bool      // the bytes are followed as messages (else a head is looked for)
	boundary   bool      // the next byte begins a message
	begun      time.Time // when the message being read began
	inMsg      bool      // a head was read and its message has not ended
	bodyLeft   int64     // bytes left of a body of known length; -1 until the close, -2 another framing
	filling    bool      // zeros standing for lost bytes are being fed
	paused     bool      // client: an upgrade request waits for its answer
	held       []chunk   // bytes that wait for the other direction
	heldBytes  int
	scan       []byte    // bytes kept while looking for a head
	scanAt     time.Time // when scan's first byte came
	lastAt     time.Time // when its latest byte came
	framesLost bool      // a gap after the upgrade: its frames are no longer followed
}

// maxHeld bounds the bytes a direction holds for the other, and maxLine
// a line kept while looking for a head.
const (
	maxHeld = 4 << 20
	maxLine = 8 << 10
)

// reset gives the side a fresh parser; the answers' one expects the
// methods of the requests waiting, for the answers to HEAD.
func (s *side) reset() {
	if s.fromClient {
		s.s = wire.MsgStream{Request: true, OnHead: s.c.requestHead, OnData: s.c.requestData, OnEnd: s.c.requestEnd}
		return
	}
	s.s = wire.MsgStream{OnHead: s.c.answerHead, OnRaw: s.c.answerRaw, OnData: s.c.answerData, OnEnd: s.c.answerEnd}
	for _, x := range s.c.waiting {
		s.s.Expect(x.ex.Method)
	}
}

// take is where the assembler's bytes (and gaps) of a direction come in.
func (s *side) take(ch chunk) {
	c := s.c
	if c.tls || c.ended {
		return
	}
	if !ch.at.IsZero() {
		s.lastAt = ch.at
	}
	if ch.gap == 0 && !c.seen {
		c.seen = true
		if isTLS(ch.b) {
			c.tls = true
			c.rd.stats.TLS++
			return
		}
	}
	if ch.gap > 0 {
		c.rd.stats.Gaps++
		c.rd.stats.MissingBytes += ch.gap
	}
	if rest := s.feed(ch); len(rest.b) > 0 || rest.gap > 0 {
		s.hold(rest)
	}
	c.settle()
}

// isTLS reports whether a connection's first bytes are a TLS record: a
// handshake (a ClientHello), or for a connection seen from its middle
// application data or an alert.
func isTLS(b []byte) bool {
	return len(b) >= 2 && (b[0] == 0x16 || b[0] == 0x17 || b[0] == 0x15) && b[1] == 0x03
}

// hold keeps ch until the other direction lets it be read. Past maxHeld
// what is held is given up: answers no request was seen for.
func (s *side) hold(ch chunk) {
	ch.b = append([]byte(nil), ch.b...) // the assembler's bytes are reused
	s.held = append(s.held, ch)
	s.heldBytes += len(ch.b)
	if s.heldBytes > maxHeld {
		s.c.rd.stats.Skipped += int64(s.heldBytes)
		if !s.fromClient {
			s.c.rd.stats.drop("answer bytes with no request seen")
		}
		s.held, s.heldBytes = nil, 0
		s.unsync()
	}
}

// settle reads what the directions held once the other lets it be read:
// an answer's bytes once its request is read, a client's bytes after an
// upgrade request once its answer is.
func (c *conn) settle() {
	if c.settling {
		return
	}
	c.settling = true
	defer func() { c.settling = false }()
	for progress := true; progress; {
		progress = c.cli.drain() || c.srv.drain()
	}
}

// drain feeds the held bytes that may be read now; it reports whether it
// fed any.
func (s *side) drain() bool {
	fed := false
	for len(s.held) > 0 && !s.mustHold() && !s.c.ended {
		ch := s.held[0]
		s.held = s.held[1:]
		s.heldBytes -= len(ch.b)
		fed = true
		if rest := s.feed(ch); len(rest.b) > 0 || rest.gap > 0 {
			s.held = append([]chunk{rest}, s.held...)
			s.heldBytes += len(rest.b)
			return fed
		}
	}
	return fed
}

// mustHold reports whether the direction's bytes wait for the other's: a
// client's after an upgrade request until its answer, a server's while no
// request is waiting for them.
func (s *side) mustHold() bool {
	c := s.c
	if c.ws != nil {
		return false
	}
	if s.fromClient {
		return s.paused
	}
	return c.answering == nil && len(c.waiting) == 0
}

// feed parses ch and returns what of it must wait (mustHold).
func (s *side) feed(ch chunk) chunk {
	c := s.c
	c.now = ch.at
	if c.ws != nil {
		c.frames(s, ch)
		return chunk{}
	}
	if ch.gap > 0 {
		if s.mustHold() {
			return ch
		}
		s.gap(ch.gap)
		return chunk{}
	}
	if !s.fromClient && c.requests == 0 {
		// A connection seen from its middle: answers to requests before
		// the capture.
		c.rd.stats.Skipped += int64(len(ch.b))
		return chunk{}
	}
	b := ch.b
	for len(b) > 0 && !c.ended {
		if c.ws != nil {
			c.frames(s, chunk{at: ch.at, b: b})
			return chunk{}
		}
		if s.mustHold() {
			return chunk{at: ch.at, b: b}
		}
		if !s.synced {
			b = s.sync(ch.at, b)
			continue
		}
		if s.boundary {
			s.begun, s.boundary = ch.at, false
		}
		n, err := s.s.Feed(b)
		b = b[n:]
		if err != nil {
			s.malformed(err)
		}
	}
	return chunk{}
}

// sync looks for a message head in b, after what it kept of earlier
// bytes: a request line on the client's side, a status line on the
// server's, at the start of a line. It returns the bytes from the head
// on, or nil when none is there yet; the rest is skipped.
func (s *side) sync(at time.Time, b []byte) []byte {
	if len(s.scan) == 0 {
		s.scanAt = at
	}
	old := len(s.scan)
	buf := append(s.scan, b...)
	i, keep := findHead(buf, s.fromClient)
	if i < 0 {
		s.c.rd.stats.Skipped += int64(len(buf) - keep)
		if len(buf)-keep >= old {
			s.scanAt = at
		}
		s.scan = append(buf[:0:0], buf[len(buf)-keep:]...)
		return nil
	}
	s.c.rd.stats.Skipped += int64(i)
	s.synced, s.boundary, s.begun = true, false, at
	if i < old {
		s.begun = s.scanAt
	}
	s.scan = nil
	return buf[i:]
}

// unsync makes the side look for the next head: what followed was lost
// or could not be read.
func (s *side) unsync() {
	s.synced, s.boundary, s.inMsg, s.bodyLeft, s.scan = false, true, false, 0, nil
	s.reset()
}

// gap takes n bytes the capture lost. Inside a body of known extent the
// parser stays in step (zeros stand for them, not recorded) and the
// exchange is marked incomplete; elsewhere the message is cut, and the
// side looks for the next head.
func (s *side) gap(n int64) {
	if !s.synced {
		s.scan = nil
		return
	}
	switch {
	case s.inMsg && s.bodyLeft == -1:
		s.current().missing += n
	case s.inMsg && s.bodyLeft >= n:
		s.current().missing += n
		s.fill(n)
	case s.inMsg || s.s.HeadBegun():
		s.cut(fmt.Sprintf("capture: %d bytes missing (lost packets)", n), n)
		s.unsync()
	default:
		// Between messages: the next message began in what was lost, as
		// far as anyone can tell. A request's answer is still to come, to
		// be read and dropped; an answer lost is its request's.
		s.lostBetween(n)
		s.unsync()
	}
}

// lostBetween takes n bytes lost between messages: on the client's side a
// request is taken as lost with them (its answer, to come, is dropped);
// on the server's, the answer to the oldest request waiting, which then
// is incomplete.
func (s *side) lostBetween(n int64) {
	c := s.c
	if s.fromClient {
		c.waiting = append(c.waiting, &exchange{drop: "request head lost in a gap", reqDone: true})
		c.srv.s.Expect("GET")
		return
	}
	if len(c.waiting) > 0 {
		s.cut("", n)
	}
}

// current returns the exchange whose message the side is reading.
func (s *side) current() *exchange {
	if s.fromClient {
		return s.c.cur
	}
	return s.c.answering
}

// fill feeds n zeros for a body's lost bytes.
func (s *side) fill(n int64) {
	s.filling = true
	defer func() { s.filling = false }()
	// Zeros stand for the lost bytes, which keeps the parser in step; they
	// are not recorded.
	zeros := make([]byte, min(n, 32<<10))
	for n > 0 {
		k := int(min(n, int64(len(zeros))))
		if _, err := s.s.Feed(zeros[:k]); err != nil {
			s.malformed(err)
			return
		}
		n -= int64(k)
	}
}

// cut ends the message the side was reading, which why (and missing
// bytes) made incomplete. A request whose head was not whole is not
// handed on, but its answer is still to come: it waits, to be read and
// dropped.
func (s *side) cut(why string, missing int64) {
	c := s.c
	if s.fromClient {
		x := c.cur
		if x == nil {
			x = &exchange{drop: "request head not whole (lost packets or malformed)", reqDone: true}
			if missing == 0 {
				x.drop = "malformed request head"
			}
			c.waiting = append(c.waiting, x)
			c.srv.s.Expect("GET")
			return
		}
		c.cur, x.reqDone = nil, true
		x.note(why, missing)
		c.handOnIfDone(x)
		return
	}
	x := c.answering
	if x == nil {
		if len(c.waiting) == 0 {
			return
		}
		x, c.waiting = popFront(c.waiting)
	}
	c.answering = nil
	x.respDone, x.end = true, c.now
	x.note(why, missing)
	c.handOnIfDone(x)
}

// popFront takes the first of q's exchanges off it. It moves the others
// down rather than slicing q past it, so that q's array serves every
// exchange of a connection: q holds a request or two waiting, not more.
func popFront(q []*exchange) (*exchange, []*exchange) {
	x := q[0]
	copy(q, q[1:])
	q[len(q)-1] = nil
	return x, q[:len(q)-1]
}

// note records what made x incomplete.
func (x *exchange) note(why string, missing int64) {
	if missing > 0 {
		x.missing += missing
		return
	}
	if x.err == "" {
		x.err = why
	}
}

// malformed ends the message that could not be parsed, and makes the side
// look for the next head.
func (s *side) malformed(err error) {
	what := "answer"
	if s.fromClient {
		what = "request"
	}
	s.cut(fmt.Sprintf("capture: malformed %s: %v", what, err), 0)
	s.unsync()
}

// requestHead begins an exchange: its request's head is read.
func (c *conn) requestHead(h *wire.Head, _ []byte) bool {
	s := &c.cli
	x := &exchange{start: s.begun, upgrade: h.Upgrade, reqBody: wire.MakeTap(BodyLimit)}
	x.ex = traces.Exchange{Method: h.Method, URL: h.Target, Host: h.Host, ReqHeader: h.Fields}
	c.cur = x
	c.waiting = append(c.waiting, x)
	c.requests++
	c.srv.s.Expect(h.Method)
	s.inMsg, s.bodyLeft = true, -2
	if h.RequestFraming() == wire.ByLength {
		s.bodyLeft = h.Length
		x.reqBody.Expect(h.Length)
	}
	return false
}

// requestData records a request's body.
func (c *conn) requestData(b []byte) {
	s := &c.cli
	if s.bodyLeft > 0 {
		s.bodyLeft -= int64(len(b))
	}
	if !s.filling && c.cur != nil {
		c.cur.reqBody.Observe(b)
	}
}

// requestEnd ends a request; it stops the parser, so that the next
// request's first byte is timed. The bytes after an upgrade request wait
// for its answer: frames if it is a 101.
func (c *conn) requestEnd() bool {
	s := &c.cli
	s.inMsg, s.boundary = false, true
	x := c.cur
	if x == nil {
		return true
	}
	c.cur, x.reqDone = nil, true
	if x.upgrade && !x.answered {
		s.paused = true
	}
	c.handOnIfDone(x)
	return true
}

// answerHead reads an answer's head: a final one answers the oldest
// request waiting; an interim one (100 Continue) stops the parser, so that
// the final one's first byte is timed.
func (c *conn) answerHead(h *wire.Head, _ []byte) bool {
	s := &c.srv
	if h.Status < 200 && h.Status != 101 {
		s.boundary = true
		return true
	}
	if len(c.waiting) == 0 {
		return true // cannot be: answers are read only while a request waits
	}
	x, waiting := popFront(c.waiting)
	c.waiting = waiting
	c.answering, x.answered, x.ttfb = x, true, s.begun
	x.ex.Status, x.ex.RespHeader = h.Status, h.Fields
	s.inMsg = true
	switch h.ResponseFraming(x.ex.Method) {
	case wire.ByLength:
		s.bodyLeft = h.Length
	case wire.UntilClose:
		s.bodyLeft = -1
	case wire.Chunked:
		s.bodyLeft = -2
	default:
		s.bodyLeft = 0
	}
	if h.Status == 101 {
		c.upgrade(x)
		return false
	}
	if x.upgrade {
		c.cli.paused = false // refused: the client's next bytes are requests
	}
	x.respBody = wire.MakeTap(BodyLimit)
	if s.bodyLeft > 0 {
		x.respBody.Expect(s.bodyLeft)
	}
	return false
}

// answerRaw takes the bytes after an answer's head: after a 101, the
// server's first frames.
func (c *conn) answerRaw(b []byte) {
	if c.ws != nil && !c.srv.framesLost {
		c.fromServer.Feed(b)
	}
}

// answerData records an answer's body.
func (c *conn) answerData(b []byte) {
	s := &c.srv
	if s.bodyLeft > 0 {
		s.bodyLeft -= int64(len(b))
	}
	if !s.filling && c.answering != nil {
		c.answering.respBody.Observe(b)
	}
}

// answerEnd ends an answer at the time of its last byte; it stops the
// parser, so that the next answer's first byte is timed.
func (c *conn) answerEnd() bool {
	s := &c.srv
	s.inMsg, s.boundary = false, true
	x := c.answering
	if x == nil {
		return true
	}
	c.answering = nil
	x.respDone, x.end = true, c.now
	c.handOnIfDone(x)
	return true
}

// upgrade makes the connection a WebSocket: from now on both directions
// carry frames, which x records.
func (c *conn) upgrade(x *exchange) {
	c.ws = x
	x.sock = &wire.Socket{}
	now := func() time.Time { return c.now }
	c.fromServer = &wire.FrameParser{Sock: x.sock, Limit: BodyLimit, Now: now}
	c.fromClient = &wire.FrameParser{Sock: x.sock, FromClient: true, Limit: BodyLimit, Now: now}
	c.cli.paused = false
}

// frames feeds a direction's bytes after the upgrade to its frame parser;
// after a gap the direction's frames are no longer followed.
func (c *conn) frames(s *side, ch chunk) {
	if ch.gap > 0 {
		c.ws.missing += ch.gap
		s.framesLost = true
		return
	}
	if s.framesLost {
		return
	}
	c.now = ch.at
	if s.fromClient {
		c.fromClient.Feed(ch.b)
	} else {
		c.fromServer.Feed(ch.b)
	}
}

// handOnIfDone hands x on once both its request and its answer are over.
func (c *conn) handOnIfDone(x *exchange) {
	if x.reqDone && x.respDone {
		c.handOn(x)
	}
}

// handOn gives x to the reader's add, or counts it dropped.
func (c *conn) handOn(x *exchange) {
	if x.handed {
		return
	}
	x.handed = true
	st := &c.rd.stats
	if x.drop != "" {
		st.drop(x.drop)
		return
	}
	ex := x.ex
	ex.ReqBody, ex.RespBody = x.reqBody.Body(), x.respBody.Body()
	if x.answered {
		ex.TTFB = max(x.ttfb.Sub(x.start), 0)
	}
	end := x.end
	if end.IsZero() {
		end = c.last
	}
	ex.Duration = max(end.Sub(x.start), ex.TTFB)
	if x.sock != nil {
		ex.WebSocket = x.socket(c.last)
	}
	var errs []string
	if x.missing > 0 {
		errs = append(errs, fmt.Sprintf("capture: %d bytes missing (lost packets)", x.missing))
	}
	if x.err != "" {
		errs = append(errs, x.err)
	}
	ex.Error = strings.Join(errs, "; ")
	if ex.Error != "" {
		st.Incomplete++
	} else {
		st.Exchanges++
	}
	if c.rd.add != nil {
		c.rd.add(x.start, c.id, c.client, &ex)
	}
}

// socket returns the WebSocket x's frames make, ended at last when no
// close frame ended it; the frame parsers' errors go in x's error.
func (x *exchange) socket(last time.Time) *traces.WebSocket {
	frames, cl, errs := x.sock.Seal()
	ws := &traces.WebSocket{Frames: make([]traces.Frame, len(frames))}
	for i, f := range frames {
		ws.Frames[i] = f.Frame
		ws.Frames[i].Offset = max(f.At.Sub(x.start), 0)
	}
	ws.Close.Offset = max(last.Sub(x.start), 0)
	if cl != nil {
		ws.Close = traces.Close{Offset: max(cl.At.Sub(x.start), 0), Code: cl.Code, Reason: cl.Reason, ByClient: cl.ByClient}
	}
	if len(errs) > 0 && x.err == "" {
		x.err = "capture: " + strings.Join(errs, "; ")
	}
	return ws
}

// end hands on what the connection still holds when it is over: an answer
// that lasts until the close ends with it, a WebSocket ends, and the
// exchanges left are incomplete.
func (c *conn) end() {
	if c.ended || c.tls {
		c.ended = true
		return
	}
	c.settle()
	c.ended = true
	if len(c.srv.held) > 0 && c.requests > 0 {
		c.rd.stats.drop("answer bytes with no request seen")
	}
	if c.ws != nil {
		x := c.ws
		x.respDone, x.reqDone, x.end = true, true, c.last
		c.handOn(x)
		return
	}
	if c.srv.synced && c.srv.inMsg && c.srv.bodyLeft == -1 {
		c.now = c.srv.lastAt
		_ = c.srv.s.Closed()
	}
	how := "the capture ended (or the connection went idle)"
	if c.closed {
		how = "the connection closed"
	}
	left := append([]*exchange{c.answering}, c.waiting...)
	for _, x := range append(left, c.cur) {
		if x == nil || x.handed {
			continue
		}
		switch {
		case !x.reqDone:
			x.note("capture: the request was cut short: "+how, 0)
		case x.answered:
			x.note("capture: the answer was cut short: "+how, 0)
		default:
			x.note("capture: no answer: "+how, 0)
		}
		x.reqDone, x.respDone = true, true
		c.handOn(x)
	}
}
