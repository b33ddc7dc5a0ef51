package capture

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"syscall"
	"time"

	"github.com/thrive-loadtest/thrive/capture/wire"
)

// An exchange is one request and its answer on a client connection, from
// the request's head to the record the sessionizer gets. The capture's two
// relays only move bytes: the goroutine relay (relay.go) over net.Conns, the
// event loops (loop.go) over gnet's connections. Each calls its
// connection's exchange at every step of the lifecycle, and the exchange
// decides, once for both, what is recorded (a failure's words among it:
// unanswered, backendCut, clientGone), what the client is answered when
// the backend fails it (badGateway), when a request goes again (retries)
// and what a 101 sets up (switches, upgraded); as httputil.ReverseProxy
// keeps its policy apart from the Transport that moves the bytes.
//
// A connection keeps one exchange and starts it afresh for each request, so
// that it costs no allocation of its own.
type exchange struct {
	c    *Capture
	ip   string // the client's address, for the session key
	conn uint64 // the client connection's number, for the sessionizer

	rec      *record // the exchange in flight; nil between exchanges
	bodyless bool    // its request has no body
	upgrade  bool    // its request asked for a WebSocket
	retried  bool    // its request went again on a fresh backend connection
}

// start begins the exchange of the request whose head is h: its record,
// with a tap for its body if it has one.
func (x *exchange) start(h *wire.Head) {
	x.rec = &record{start: time.Now(), method: h.Method, url: h.Target, host: h.Host, reqHeader: h.Fields, conn: x.conn}
	x.bodyless = h.RequestFraming() == wire.NoBody
	x.upgrade = h.Upgrade
	if !x.bodyless {
		x.rec.reqBody = wire.NewTap(x.c.cfg.bodyLimit)
		if h.RequestFraming() == wire.ByLength {
			x.rec.reqBody.Expect(h.Length)
		}
	}
	x.retried = false
}

// forwardTo records the exchange as a forward proxy's to the origin of up:
// the trace keeps each exchange's scheme and host, and not the proxy's own
// credentials. An exchange with a host out of scope (offScope) is relayed
// and not recorded.
func (x *exchange) forwardTo(up upstream, offScope bool) {
	rec := x.rec
	rec.url = up.scheme + "://" + up.host + originForm(rec.url)
	rec.host = up.host
	rec.skip = offScope
	if x.c.cfg.proxyAuth != "" {
		rec.reqHeader = withoutField(rec.reqHeader, "Proxy-Authorization")
	}
}

// file puts the exchange in flight under its session, once. The relays
// call it while the backend works on the request, off the path of the
// answer.
func (x *exchange) file() {
	if rec := x.rec; rec != nil && rec.session == nil && !rec.skip {
		rec.key = x.c.sz.requestKeyOf(rec.reqHeader, rec.url, x.ip)
		x.c.sz.begin(rec)
	}
}

// dialBackend connects to the backend for up, for either relay: a reverse
// proxy's through its dialer (TLS to an https target), a forward proxy's
// origin through dialUp; in dialTimeout at most, TLS included.
func (c *Capture) dialBackend(up upstream) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
	defer cancel()
	if c.forward {
		return c.dialUp(ctx, up)
	}
	return c.dialer.DialContext(ctx, "tcp", up.addr)
}

// finalAnswer reports whether rh, a head the backend sent, is the answer to
// the request in flight: not an interim 1xx, but for 101, which switches
// the connection to a WebSocket.
func finalAnswer(rh *wire.Head) bool {
	return rh.Status >= 200 || rh.Status == 101
}

// answered records the head of the backend's answer to the exchange in
// flight (a final one: finalAnswer), with a tap for its body if it has
// one, and returns how the body is framed.
func (x *exchange) answered(rh *wire.Head) wire.Framing {
	x.file()
	rec := x.rec
	rec.ttfb = time.Now()
	rec.status = rh.Status
	rec.respHeader = rh.Fields
	rec.newKey, rec.ends = x.c.sz.answerKeyOf(rh.Fields, rec.method, rec.key)
	if !rec.skip {
		x.c.sz.announce(rec) // before the head goes on: the browser acts on it at once
	}
	fr := rh.ResponseFraming(rec.method)
	if fr != wire.NoBody {
		rec.respBody = wire.NewTap(x.c.cfg.bodyLimit)
		if fr == wire.ByLength {
			rec.respBody.Expect(rh.Length)
		}
	}
	return fr
}

// switches reports whether the 101 that answered the exchange in flight
// switches the connection to a WebSocket (upgraded follows): only when the
// request asked for one. A 101 to a request that asked for no upgrade is
// not one, and what follows it is neither an answer nor frames the client
// asked for: it is recorded with its error, and the relays pass nothing of
// it on and close both connections.
func (x *exchange) switches() bool {
	if x.upgrade {
		return true
	}
	x.rec.err = "backend: 101 Switching Protocols to a request that asked for no upgrade"
	return false
}

// upgraded records that the exchange in flight switched to a WebSocket
// (its answer was a 101): a socket for its frames, which the
// sessionizer hands on in parts while it lasts, and a parser for each
// direction that records the frames it is fed. A client frame is to be fed
// before it is passed on, so that it is recorded before the server can
// answer it.
func (x *exchange) upgraded() (fromClient, fromServer *wire.FrameParser) {
	rec := x.rec
	rec.sock = &wire.Socket{}
	x.c.sz.socket(rec)
	limit := x.c.cfg.bodyLimit
	fromServer = &wire.FrameParser{Sock: rec.sock, Limit: limit, Now: time.Now}
	fromClient = &wire.FrameParser{Sock: rec.sock, FromClient: true, Limit: limit, Now: time.Now}
	return fromClient, fromServer
}

// retries reports whether the request in flight goes again, once, on a
// fresh backend connection, the one it went on having failed before the
// answer's head was through (err and begun as unanswered takes them). It
// does only when the backend closed or reset that connection before any
// byte of an answer, the connection had answered before (reused), and
// nothing but the head was sent: that is a keep-alive connection the
// backend closed while it was idle, the race net/http's Transport retries
// too, and the relays still have the head (a body is passed on as it
// comes). A backend that had begun an answer, or sent what is not one,
// did answer: its failure goes to the client (badGateway).
func (x *exchange) retries(reused bool, err error, begun bool) bool {
	if _, closed := unanswered(err, begun); !closed || !reused || !x.bodyless || x.retried {
		return false
	}
	x.retried = true
	return true
}

// errNoAnswer is why a backend that closed its connection before any byte
// of an answer did not answer.
var errNoAnswer = errors.New("connection closed without an answer")

// unanswered classifies how the backend's connection failed the exchange
// in flight before the answer's head was through: err is how the relay saw
// it fail, begun whether any byte of the answer had come. closed says the
// backend closed or reset the connection before any byte: an EOF (a
// read's, or gnet's for a peer's close), nil (gnet's for a close it saw no
// error in), a reset, or a send that found the connection closed (EPIPE);
// retries goes by it. cause is why the backend did not answer, for
// badGateway: errNoAnswer for a close before any byte, on both relays;
// io.ErrUnexpectedEOF for a close in the middle of the head; err itself
// for anything else.
func unanswered(err error, begun bool) (cause error, closed bool) {
	ended := err == nil || errors.Is(err, io.EOF)
	switch {
	case ended && begun:
		return io.ErrUnexpectedEOF, false
	case ended:
		return errNoAnswer, true
	case begun:
		return err, false
	}
	return err, errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// badGateway records that the backend did not answer the exchange in
// flight (err says why: it could not be reached, closed the connection, or
// sent what is not an answer), counts it, and returns the 502 to answer
// the client with. The client's connection stays open (keep) only when no
// request body is left unread on it: the request has none, and whole says
// it was read to its end. With no exchange in flight the failure is
// counted, and there is nothing to answer.
func (x *exchange) badGateway(err error, whole bool) (answer []byte, keep bool) {
	x.c.stats.backendErrors.Add(1)
	rec := x.rec
	if rec == nil {
		return nil, false
	}
	kind := errorKind(err)
	rec.status = 502
	rec.err = "backend: " + kind
	rec.ttfb = time.Now()
	keep = x.bodyless && whole
	return ownAnswer(502, "Bad Gateway", "thrive capture: the backend did not answer: "+kind+"\n", !keep), keep
}

// answerSize is how many bytes of its answer's body the exchange in
// flight has seen.
func (x *exchange) answerSize() int64 {
	if x.rec.respBody == nil {
		return 0
	}
	return x.rec.respBody.Size()
}

// clientGone records that the client went away before the answer to the
// exchange in flight was through, unless a reason is recorded already. It
// went away before the answer while none of the answer's body had passed,
// a bodiless answer's head included, and after N bytes of the answer once
// N had; the same whichever relay noticed, and however.
func (x *exchange) clientGone() {
	rec := x.rec
	if rec.status != 0 && rec.err != "" {
		return // the answer's own failure is recorded already
	}
	if n := x.answerSize(); rec.status != 0 && n > 0 {
		rec.err = "client went away after " + strconv.FormatInt(n, 10) + " bytes of the answer"
		return
	}
	rec.err = "client went away before the answer"
}

// backendCut records that the backend's connection failed, err says how,
// in the middle of the answer to the exchange in flight.
func (x *exchange) backendCut(err error) {
	x.rec.err = "backend: " + errorKind(err) + " after " + strconv.FormatInt(x.answerSize(), 10) + " bytes of the answer"
}

// finish ends the exchange in flight, if any, and hands its record to the
// sessionizer, unless it is not to be recorded. One cut short before it was
// filed (a bad chunk line, a backend that could not be reached) is filed
// now.
func (x *exchange) finish() {
	rec := x.rec
	if rec == nil {
		return
	}
	x.file()
	x.rec = nil
	if rec.skip {
		return
	}
	if rec.end.IsZero() {
		rec.end = time.Now()
	}
	x.c.finish(rec)
}
