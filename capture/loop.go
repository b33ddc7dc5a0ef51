package capture

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/thrive-loadtest/thrive/capture/wire"

	"github.com/panjf2000/gnet/v2"
)

// The loop relay serves plain-HTTP clients on gnet's event loops instead of
// a goroutine per connection: each client connection and its backend
// connection live on one loop thread, which epoll wakes when either has
// bytes, as nginx works. On this kind of machine that halves what the proxy
// adds to a request (bench/capture.sh): no goroutine is parked and woken per
// read, and no idle thread is woken to look for work.
//
// Requests go to the backend with their heads rewritten by
// writeRequestHead (Host, X-Forwarded-*, hop-by-hop fields), in the
// client's HTTP version, and their bodies as they came. Answers go back to
// the client byte for byte: with one backend connection per client
// connection, the backend's framing and Connection fields are right for the
// client as they are. Two MsgStreams follow the two directions and drive
// the connection's exchange (exchange.go), which records what they read
// (after a 101, the frames) and decides the 502s and the retries for both
// relays. Both relays read heads with one parser (wire), so both refuse
// the same requests; and only the bytes the answer stream reads as answers
// reach the client: a backend's bytes that are not an answer get the
// client the 502 of exchange.badGateway, and an answer whose framing is in
// doubt goes without its Content-Length and closes both connections after
// it, so nothing that follows it is taken for the answer to the client's
// next request.
//
// TLS is not handled on the loop: the goroutine relay serves it. Nor is
// holding back a sender whose receiver is slower: gnet reads whatever
// arrives, so what the receiver has not taken waits in memory, and past
// the backlog limit (64 MiB a connection) both connections are cut.

// loop is the capture's set of event loops.
type loop struct {
	c    *Capture
	cli  *gnet.Client
	stop chan struct{} // ends the ticker
	done chan struct{}
	// dials are the backend dials in flight: the loops stop only once
	// each has put its connection on its loop (which closes it, its
	// client gone) or failed, so that none is left open and unowned.
	dials sync.WaitGroup
}

// lconn is one client connection on a loop and the backend connection
// pinned to it. Only its loop's thread touches it, but for busy, which
// Run's stop reads under the capture's connMu.
type lconn struct {
	lp      *loop
	client  gnet.Conn
	backend gnet.Conn // nil until connected
	dialing bool
	ip      string

	req, resp              wire.MsgStream
	x                      exchange // the request being relayed
	head                   []byte   // its forwarded head, kept for a retry while nothing else was sent
	out                    []byte   // what waits for the backend to connect
	toClient               []byte   // answers' bytes read, not yet written to the client
	hb                     bytes.Buffer
	bw                     *bufio.Writer
	paused                 bool // a request is whole: the next waits for the answer
	reused                 bool // the backend connection has answered already
	closing                bool // the last answer closes the connection
	socket                 bool // upgraded: frames both ways
	fromClient, fromServer *wire.FrameParser

	// deadline is when the client's wait ends, in Unix nanoseconds, zero
	// for none: the idle time after an answer, the head time once a head
	// has begun. The loop's ticker closes connections past theirs.
	deadline    atomic.Int64
	headStarted bool

	busy   bool      // connMu: an exchange is in flight
	gc     gnet.Conn // connMu: the client connection, for Run's stop; set when it opens
	closed bool
}

// backendOf marks a backend connection's context with its client's lconn.
type backendOf struct{ l *lconn }

// newLoop starts the capture's event loops, one a core.
func (c *Capture) newLoop() (*loop, error) {
	lp := &loop{c: c, stop: make(chan struct{}), done: make(chan struct{})}
	var err error
	lp.cli, err = gnet.NewClient(lp, gnet.WithMulticore(true), gnet.WithLogger(gnetLog{c}))
	if err != nil {
		return nil, err
	}
	if err := lp.cli.Start(); err != nil {
		return nil, err
	}
	go lp.tick()
	return lp, nil
}

// tick closes the client connections whose idle or head time is over,
// checking a few times per the shorter of the two (at least once a second).
func (lp *loop) tick() {
	defer close(lp.done)
	c := lp.c
	t := time.NewTicker(min(c.cfg.clientIdle, c.cfg.headTimeout, 2*time.Second) / 2)
	defer t.Stop()
	for {
		select {
		case <-lp.stop:
			return
		case now := <-t.C:
			c.connMu.Lock()
			for l := range c.loopConns {
				if d := l.deadline.Load(); d != 0 && now.UnixNano() > d && l.gc != nil {
					_ = l.gc.Close()
				}
			}
			c.connMu.Unlock()
		}
	}
}

// close stops the loops and the ticker, once every connection is gone.
func (lp *loop) close() {
	close(lp.stop)
	<-lp.done
	lp.dials.Wait()
	_ = lp.cli.Stop()
}

// waitFor sets how long the client may wait from now (zero: no limit).
func (l *lconn) waitFor(d time.Duration) {
	if d == 0 {
		l.deadline.Store(0)
		return
	}
	l.deadline.Store(time.Now().Add(d).UnixNano())
}

// serve accepts connections on ln and hands each to a loop until ln fails
// or closes.
func (lp *loop) serve(ln net.Listener) error { return lp.c.accept(ln, lp.enroll) }

// enroll puts a client connection on a loop; TLS ones stay with the
// goroutine relay.
func (lp *loop) enroll(nc net.Conn) {
	c := lp.c
	if _, ok := nc.(*tls.Conn); ok {
		c.goServe(nc)
		return
	}
	l := &lconn{lp: lp, ip: clientIP(nc.RemoteAddr().String())}
	l.x = exchange{c: c, ip: l.ip, conn: c.connIDs.Add(1)}
	l.bw = bufio.NewWriterSize(&l.hb, 4096)
	l.req = wire.MsgStream{Request: true, OnHead: l.requestHead, OnRaw: l.toBackend, OnData: l.requestData, OnEnd: l.requestEnd}
	l.newAnswerStream()
	if !c.admit(nc, func() { c.loopConns[l] = struct{}{} }) {
		return
	}
	// Whether a stop closes the connection is decided on its loop, when
	// it opens (OnOpen): EnrollContext returns only after that, by when
	// the loop may have read a request and be serving it.
	if _, err := lp.cli.EnrollContext(nc, l); err != nil {
		c.cfg.errorLog.Printf("capture: %v", err)
		l.gone()
	}
}

// newAnswerStream starts following the backend connection afresh: a new
// one, or the old one after an answer that could not be followed.
func (l *lconn) newAnswerStream() {
	l.resp = wire.MsgStream{OnHead: l.answerHead, OnRaw: l.answerRaw, OnData: l.answerData, OnEnd: l.answerEnd}
}

// gone forgets l once its client connection is closed.
func (l *lconn) gone() {
	c := l.lp.c
	c.connMu.Lock()
	if _, ok := c.loopConns[l]; ok {
		delete(c.loopConns, l)
		c.connWG.Done()
	}
	c.connMu.Unlock()
}

// opened hands the client connection, just opened on its loop, to Run's
// stop (gc); it reports false when the capture is stopping, and the
// connection is to close with nothing of it read. It runs on the loop
// before any request is read, so a stop either finds the connection, and
// leaves it to close after its exchange if one is in flight, or closes it
// before it reads anything: never one whose request was read before the
// stop, as a check on the accepting goroutine after EnrollContext
// returned could, the loop having read and forwarded a request by then.
func (l *lconn) opened() bool {
	c := l.lp.c
	c.connMu.Lock()
	defer c.connMu.Unlock()
	if c.stopping {
		return false
	}
	l.gc = l.client
	return true
}

// setBusy notes whether an exchange is in flight; it reports false when
// the capture is stopping and an idle connection should close.
func (l *lconn) setBusy(busy bool) bool {
	c := l.lp.c
	c.connMu.Lock()
	defer c.connMu.Unlock()
	l.busy = busy
	return busy || !c.stopping
}

func (lp *loop) OnBoot(gnet.Engine) gnet.Action { return gnet.None }
func (lp *loop) OnShutdown(gnet.Engine)         {}
func (lp *loop) OnTick() (time.Duration, gnet.Action) {
	return time.Hour, gnet.None
}

func (lp *loop) OnOpen(gc gnet.Conn) ([]byte, gnet.Action) {
	defer lp.survive(gc)
	switch x := gc.Context().(type) {
	case *lconn:
		x.client = gc
		if !x.opened() {
			return nil, gnet.Close // the capture is stopping
		}
		x.waitFor(x.lp.c.cfg.clientIdle)
	case backendOf:
		l := x.l
		if l.closed {
			return nil, gnet.Close
		}
		l.backend, l.dialing = gc, false
		if len(l.out) > 0 {
			_, _ = gc.Write(l.out)
			l.out = l.out[:0]
		}
	}
	return nil, gnet.None
}

// survive closes gc after a panic in its handling (Capture.survived).
// Deferred by every callback of the loops.
func (lp *loop) survive(gc gnet.Conn) {
	if v := recover(); v != nil {
		lp.c.survived(gc.RemoteAddr(), v)
		_ = gc.Close()
	}
}

func (lp *loop) OnTraffic(gc gnet.Conn) gnet.Action {
	defer lp.survive(gc)
	switch x := gc.Context().(type) {
	case *lconn:
		x.fromClientBytes()
	case backendOf:
		x.l.fromBackendBytes()
	}
	return gnet.None
}

func (lp *loop) OnClose(gc gnet.Conn, err error) gnet.Action {
	defer lp.survive(gc)
	switch x := gc.Context().(type) {
	case *lconn:
		x.clientClosed()
	case backendOf:
		if x.l.backend == gc {
			x.l.backendClosed(err)
		}
	}
	return gnet.None
}

// fromClientBytes takes what the client sent, unless a request waits for
// its answer.
func (l *lconn) fromClientBytes() {
	for !l.paused && !l.closed {
		buf, _ := l.client.Peek(-1)
		if len(buf) == 0 {
			return
		}
		if l.socket {
			l.fromClient.Feed(buf)
			if l.toBackend(buf); !l.closed {
				_, _ = l.client.Discard(len(buf))
			}
			continue
		}
		n, err := l.req.Feed(buf)
		if l.closed {
			return
		}
		_, _ = l.client.Discard(n)
		if err != nil {
			l.reject(err)
			return
		}
		if !l.paused && !l.headStarted && l.req.HeadBegun() {
			l.headStarted = true
			l.waitFor(l.lp.c.cfg.headTimeout)
		}
	}
}

// reject answers what cannot be read as a request with the capture's 400
// (Capture.badRequest), and closes.
func (l *lconn) reject(err error) {
	l.writeClient(l.lp.c.badRequest(l.ip, err))
	l.closeBoth()
}

// writeClient writes b to the client after the answers' bytes read before
// it.
func (l *lconn) writeClient(b []byte) {
	l.flushClient()
	_, _ = l.client.Write(b)
}

// flushClient writes to the client the answers' bytes the answer stream
// has read, in one write.
func (l *lconn) flushClient() {
	if len(l.toClient) == 0 || l.closed {
		return
	}
	_, _ = l.client.Write(l.toClient) // gnet copies what it cannot write at once
	l.toClient = l.toClient[:0]
	l.checkBacklog(l.client, "client")
}

func (l *lconn) requestHead(h *wire.Head, _ []byte) bool {
	c := l.lp.c
	l.setBusy(true)
	l.headStarted = false
	l.waitFor(0)
	l.x.start(h)
	l.hb.Reset()
	writeRequestHead(l.bw, c, l.ip, "http", h.Proto, h)
	_ = l.bw.Flush()
	l.head = append(l.head[:0], l.hb.Bytes()...)
	l.resp.Expect(h.Method)
	l.toBackend(l.head)
	return l.closed // a backend that cannot be dialled closes the client
}

// requestData records the body of the request in flight. Its answer may
// have come and gone already (a backend can refuse a body before it is
// over); the rest of the body then goes on unrecorded.
func (l *lconn) requestData(b []byte) {
	if l.x.rec != nil {
		l.x.rec.reqBody.Observe(b)
	}
}

// requestEnd holds the client's next request until the answer is over,
// unless it is over already.
func (l *lconn) requestEnd() bool {
	if l.x.rec == nil {
		return false
	}
	l.x.file()
	l.paused = true
	return true
}

// toBackend sends b to the backend, dialling it first when needed.
func (l *lconn) toBackend(b []byte) {
	if l.backend != nil {
		_, _ = l.backend.Write(b)
		l.checkBacklog(l.backend, "backend")
		return
	}
	l.out = append(l.out, b...)
	if !l.dialing {
		l.dial()
	}
	if len(l.out) > l.lp.c.cfg.loopBacklog {
		// The client sends more than the backlog before the backend is
		// even connected.
		l.lp.c.cfg.errorLog.Printf("capture: backend of %s not connected with more than %d bytes waiting for it; connection cut", l.ip, l.lp.c.cfg.loopBacklog)
		if l.x.rec != nil && l.x.rec.err == "" {
			l.x.rec.err = "backend too slow: not connected with more than the backlog waiting for it"
		}
		l.x.finish()
		l.closeBoth()
	}
}

// checkBacklog cuts both connections when more than the backlog limit
// waits to be taken by to: a loop cannot stop reading a sender, so a
// receiver far slower than its sender would otherwise hold the difference
// in memory. The exchange in flight records why.
func (l *lconn) checkBacklog(to gnet.Conn, who string) {
	limit := l.lp.c.cfg.loopBacklog
	if l.closed || to.OutboundBuffered() <= limit {
		return
	}
	l.lp.c.cfg.errorLog.Printf("capture: %s of %s too slow: more than %d bytes waiting for it; connection cut", who, l.ip, limit)
	if l.x.rec != nil && l.x.rec.err == "" {
		l.x.rec.err = fmt.Sprintf("%s too slow: more than %d bytes waiting for it", who, limit)
	}
	l.x.finish()
	l.closeBoth()
}

// dial connects the backend (dialBackend) off the loop, then puts the
// connection on the client's loop.
func (l *lconn) dial() {
	l.dialing = true
	el := l.client.EventLoop()
	c := l.lp.c
	l.lp.dials.Go(func() {
		nc, err := c.dialBackend(c.up)
		if err == nil {
			var res <-chan gnet.RegisteredResult
			if res, err = el.Enroll(gnet.NewContext(context.Background(), backendOf{l}), nc); err != nil {
				_ = nc.Close()
			} else if r := <-res; r.Err != nil { // the loop has a copy of nc, and closed nc
				err = r.Err
			}
		}
		if err != nil {
			_ = el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
				if !l.closed {
					l.dialing = false
					l.out = l.out[:0]
					l.badGateway(err)
				}
				return nil
			}))
		}
	})
}

// fromBackendBytes follows what the backend sent to record the answer,
// and passes on to the client, as they are, the bytes the answer stream
// reads as answers (answerHead, answerRaw gather them).
func (l *lconn) fromBackendBytes() {
	b := l.backend
	if b == nil || l.closed {
		return
	}
	buf, _ := b.Peek(-1)
	if len(buf) == 0 {
		return
	}
	if l.socket {
		_, _ = l.client.Write(buf)
		if l.checkBacklog(l.client, "client"); l.closed {
			return
		}
		l.fromServer.Feed(buf)
		_, _ = b.Discard(len(buf))
		return
	}
	// A callback may close both connections; the stream then stops.
	_, err := l.resp.Feed(buf)
	if l.flushClient(); l.closed {
		return
	}
	_, _ = b.Discard(len(buf))
	if err != nil {
		l.badAnswer(err)
	}
}

// badAnswer ends the exchange in flight when the backend's bytes are not
// an answer (a malformed head, a bad chunk line), of which none went to the
// client. Before its answer began, the client gets the 502 of
// exchange.badGateway; after, the answer is recorded as cut short
// (exchange.backendCut) and both connections are cut.
func (l *lconn) badAnswer(err error) {
	rec := l.x.rec
	if rec == nil || rec.status != 0 {
		if rec != nil {
			l.x.backendCut(err)
		}
		l.x.finish()
		l.closeBoth()
		return
	}
	if backend := l.backend; backend != nil {
		l.backend, l.reused = nil, false // closed here: backendClosed is not for it
		_ = l.client.EventLoop().Close(backend)
	}
	l.badGateway(err)
}

// answerHead passes a head the backend sent on to the client, and records
// a final one (exchange.answered); a 101 is for switched. It reports
// whether the answer stream is to stop.
func (l *lconn) answerHead(rh *wire.Head, raw []byte) bool {
	if rh.Faulty {
		// Its Content-Length, which its Transfer-Encoding overrides, is
		// not passed on, and the connections close after it (answerEnd).
		raw = wire.ClosingHead(raw)
	}
	if l.x.rec == nil || !finalAnswer(rh) {
		l.toClient = append(l.toClient, raw...)
		return false
	}
	l.x.answered(rh)
	if rh.Status == 101 {
		return l.switched(raw)
	}
	l.toClient = append(l.toClient, raw...)
	l.closing = rh.Close
	return false
}

// switched follows a 101, raw, that answered the request in flight: when
// it switches to a WebSocket (exchange.switches) it is passed on, and both
// connections carry frames; when not, nothing of it is passed on and both
// connections close. It reports whether the answer stream is to stop.
func (l *lconn) switched(raw []byte) bool {
	if !l.x.switches() {
		l.x.finish()
		l.closeBoth()
		return true
	}
	l.toClient = append(l.toClient, raw...)
	l.socket = true
	l.fromClient, l.fromServer = l.x.upgraded()
	l.paused = false
	if !l.setBusy(false) {
		l.closeBoth() // the capture is stopping: sockets close at once
		return true
	}
	// What came after the upgrade request is frames already.
	l.flushClient()
	l.fromClientBytes()
	return l.closed
}

func (l *lconn) answerRaw(b []byte) {
	l.toClient = append(l.toClient, b...)
	if l.socket {
		l.fromServer.Feed(b) // the frames after the 101's head
	}
}

func (l *lconn) answerData(b []byte) {
	if l.x.rec != nil {
		l.x.rec.respBody.Observe(b)
	}
}

// answerEnd passes the answer on to the client, hands the exchange over,
// and reads the client's next request unless the connections close. It
// reports whether the answer stream is to stop.
func (l *lconn) answerEnd() bool {
	if l.x.rec == nil {
		return false
	}
	l.x.rec.end = time.Now()
	// The answer goes before the exchange is handed over, so that a client
	// its write finds gone is recorded so (clientClosed), as the
	// goroutine relay records it.
	if l.flushClient(); l.closed {
		return true
	}
	l.x.finish()
	if l.closing {
		// The answer said the connection closes after it, or its framing
		// was in doubt: whatever follows it is not the next answer.
		l.closeBoth()
		return true
	}
	l.reused = true
	l.paused = false
	l.waitFor(l.lp.c.cfg.clientIdle)
	// A next request read in already was sent before the stop: it is
	// served, and only a connection with nothing of a next one is idle.
	if l.client.InboundBuffered() == 0 && !l.setBusy(false) {
		l.closeBoth() // the capture is stopping
		return true
	}
	l.fromClientBytes()
	return l.closed
}

// badGateway answers the client for a backend that could not be reached
// or did not answer (exchange.badGateway), ends the exchange, and goes on
// reading the client's requests when its connection stays open.
func (l *lconn) badGateway(err error) {
	answer, keep := l.x.badGateway(err, l.paused)
	if answer == nil {
		return // no exchange in flight
	}
	l.writeClient(answer)
	l.x.finish()
	l.newAnswerStream()
	if !keep {
		l.closeBoth()
		return
	}
	l.paused = false
	l.waitFor(l.lp.c.cfg.clientIdle)
	l.setBusy(false)
	l.fromClientBytes()
}

// backendClosed ends what the closed backend connection was carrying (err
// says why it closed, when it failed): a WebSocket ends, the request
// waiting for an answer goes again or gets a 502, an answer cut short is
// recorded so, and a connection closed while idle is dialled anew for the
// next request.
func (l *lconn) backendClosed(err error) {
	l.backend = nil
	if l.closed {
		return
	}
	switch rec := l.x.rec; {
	case l.socket:
		l.x.finish()
		l.closeBoth()
	case rec != nil && rec.status == 0:
		// The backend's connection failed before the answer's head was
		// through.
		begun := l.resp.HeadBegun()
		if l.x.retries(l.reused, err, begun) {
			l.reused = false
			l.newAnswerStream()
			l.resp.Expect(rec.method)
			l.toBackend(l.head)
			return
		}
		cause, _ := unanswered(err, begun)
		l.badGateway(cause)
	case rec != nil:
		if cerr := l.resp.Closed(); cerr != nil {
			l.x.backendCut(io.ErrUnexpectedEOF) // closed in the middle of the answer
			l.x.finish()
		}
		l.closeBoth()
	case l.closing:
		l.closeBoth()
	default:
		// Closed while idle: the next request dials anew.
		l.reused = false
		l.newAnswerStream()
	}
}

// clientClosed records why the exchange in flight ended, if one is, hands
// it over, and closes the backend connection.
func (l *lconn) clientClosed() {
	l.closed = true
	if l.x.rec != nil && !l.socket {
		l.x.clientGone()
	}
	l.x.finish()
	if l.backend != nil {
		_ = l.client.EventLoop().Close(l.backend)
		l.backend = nil
	}
	l.gone()
}

// closeBoth closes the client connection, and so the backend's, after the
// answers' bytes read so far; the streams stop reading the bytes they were
// given, which go with them.
func (l *lconn) closeBoth() {
	l.req.Cut, l.resp.Cut = true, true
	if !l.closed {
		l.flushClient()
	}
	if !l.closed {
		_ = l.client.EventLoop().Close(l.client)
	}
}

// gnetLog passes gnet's errors to the capture's error log and drops the
// rest.
type gnetLog struct{ c *Capture }

func (g gnetLog) Debugf(string, ...any) {}
func (g gnetLog) Infof(string, ...any)  {}
func (g gnetLog) Warnf(string, ...any)  {}
func (g gnetLog) Errorf(format string, args ...any) {
	g.c.cfg.errorLog.Printf("capture: event loop: "+format, args...)
}
func (g gnetLog) Fatalf(format string, args ...any) {
	g.c.cfg.errorLog.Printf("capture: event loop: "+format, args...)
}
