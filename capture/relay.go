package capture

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/thrive-loadtest/thrive/capture/wire"

	"github.com/thrive-loadtest/thrive/traces"
)

const (
	handshakeTimeout = 10 * time.Second
	dialTimeout      = 10 * time.Second // a backend's or an origin's connection, TLS included
	ioBufferSize     = 16 << 10
)

// connState is where a client connection is between exchanges; Run's stop
// closes the idle and upgraded ones at once and lets busy ones finish.
type connState uint8

const (
	stateIdle connState = iota
	stateBusy
	stateSocket
)

// conn is one client connection and the backend connection pinned to it.
// Its goroutine owns everything but state, which the Capture's connMu
// guards.
type conn struct {
	c      *Capture
	raw    net.Conn // the connection accepted; closing it ends every read and write
	client net.Conn // raw, or TLS over it
	ip     string
	scheme string // "http" or "https": how the client reached the proxy
	cr     *bufio.Reader
	cw     *bufio.Writer

	backend net.Conn // nil until dialled, and after it is closed
	br      *bufio.Reader
	bw      *bufio.Writer
	reused  bool      // backend has answered an exchange already
	idle    time.Time // when the backend connection's last exchange ended

	buf   []byte
	state connState
	x     exchange // the request being relayed

	// Forward proxy: up is where the request being relayed goes, backendUp
	// where the open backend connection goes, tunnel the one origin of an
	// intercepted CONNECT (nil outside one); offScope marks a request to a
	// host out of scope, relayed but not recorded.
	up        upstream
	backendUp upstream
	tunnel    *upstream
	offScope  bool

	deadline bool      // the client connection has a read deadline
	idleSet  time.Time // when the idle deadline was set; zero when another is
}

// serve accepts connections on ln until it fails or closes, and serves
// each on a goroutine of its own.
func (c *Capture) serve(ln net.Listener) error { return c.accept(ln, c.goServe) }

// accept hands each connection ln accepts to handle until ln fails or
// closes.
func (c *Capture) accept(ln net.Listener, handle func(net.Conn)) error {
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				// Out of files or a passing failure: wait, as net/http does.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				c.cfg.errorLog.Printf("capture: accept: %v; retrying in %v", err, backoff)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		handle(nc)
	}
}

// goServe serves nc on a goroutine of its own.
func (c *Capture) goServe(nc net.Conn) {
	k := &conn{c: c, raw: nc, client: nc, ip: clientIP(nc.RemoteAddr().String()), scheme: "http", state: stateBusy, up: c.up}
	k.x = exchange{c: c, ip: k.ip, conn: c.connIDs.Add(1)}
	if c.admit(nc, func() { c.conns[k] = struct{}{} }) {
		go k.serve()
	}
}

// admit counts a new client connection in with add, under connMu, unless
// the capture is stopping: then it closes nc and reports false.
func (c *Capture) admit(nc net.Conn, add func()) bool {
	c.connMu.Lock()
	defer c.connMu.Unlock()
	if c.stopping {
		_ = nc.Close()
		return false
	}
	add()
	c.connWG.Add(1)
	return true
}

// survived logs and counts v, a panic recovered in the handling of a
// connection from client, which is closed: one connection's panic never
// takes the capture down, as a handler's never takes net/http's server
// down.
func (c *Capture) survived(client, v any) {
	c.stats.panics.Add(1)
	c.cfg.errorLog.Printf("capture: panic on a connection from %s (closed; the capture goes on): %v\n%s", client, v, debug.Stack())
}

func clientIP(remote string) string {
	if host, _, err := net.SplitHostPort(remote); err == nil {
		return host
	}
	return remote
}

// stop closes the listener's idle and upgraded connections and marks the
// rest to close after their exchange.
func (c *Capture) stop() {
	c.connMu.Lock()
	defer c.connMu.Unlock()
	c.stopping = true
	for k := range c.conns {
		if k.state != stateBusy {
			k.closeAll()
		}
	}
	for l := range c.loopConns {
		if !l.busy && l.gc != nil {
			_ = l.gc.Close()
		}
	}
}

// closeEverything cuts every connection, busy or not.
func (c *Capture) closeEverything() {
	c.connMu.Lock()
	defer c.connMu.Unlock()
	for k := range c.conns {
		k.closeAll()
	}
	for l := range c.loopConns {
		if l.gc != nil {
			_ = l.gc.Close()
		}
	}
}

// setState moves k to s; it reports false when the capture is stopping and
// k should close instead of waiting for another request.
func (k *conn) setState(s connState) bool {
	k.c.connMu.Lock()
	defer k.c.connMu.Unlock()
	if k.c.stopping && s != stateBusy {
		return false
	}
	k.state = s
	return true
}

// closeAll closes both connections; other goroutines' reads and writes on
// them fail at once.
func (k *conn) closeAll() {
	_ = k.raw.Close()
	if b := k.backend; b != nil {
		_ = b.Close()
	}
}

func (k *conn) serve() {
	defer func() {
		if v := recover(); v != nil {
			k.c.survived(k.ip, v)
		}
		k.closeBackend()
		_ = k.client.Close()
		k.c.connMu.Lock()
		delete(k.c.conns, k)
		k.c.connMu.Unlock()
		k.c.connWG.Done()
	}()
	if tc, ok := k.client.(*tls.Conn); ok {
		k.scheme = "https"
		ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			k.c.cfg.errorLog.Printf("capture: TLS handshake from %s: %v", k.ip, err)
			return
		}
	}
	k.cr = bufio.NewReaderSize(k.client, ioBufferSize)
	k.cw = bufio.NewWriterSize(k.client, ioBufferSize)
	k.buf = make([]byte, ioBufferSize)
	for {
		// A request the client sent before the capture began to stop, and
		// the proxy has read in already, is served: only a connection with
		// nothing of a next request is idle.
		if k.cr.Buffered() == 0 && !k.setState(stateIdle) {
			return
		}
		k.idleDeadline()
		if _, err := k.cr.Peek(1); err != nil {
			return
		}
		if !k.setState(stateBusy) {
			return
		}
		if !headBuffered(k.cr) {
			k.setReadDeadline(time.Now().Add(k.c.cfg.headTimeout))
		}
		h, err := wire.ReadHead(k.cr, true)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				k.reject(err)
			}
			return
		}
		if h.RequestFraming() != wire.NoBody || h.Upgrade {
			// The body, or the socket, is read without a deadline. A
			// request without either reads nothing more from the client,
			// and the deadline can stay as it is.
			k.setReadDeadline(time.Time{})
		}
		if k.c.forward {
			relay, keep := k.route(h)
			if !keep {
				return
			}
			if !relay {
				continue
			}
		}
		if !k.exchange(h) {
			return
		}
	}
}

// Read deadlines on the client connection. Setting one costs more than the
// system call it is not: a deadline earlier than the network poller's sleep
// interrupts that sleep. So the idle deadline is moved at most every
// thirtieth of the idle time (a connection idles 5 minutes give or take
// 10 s), the head deadline is set only when the head is not in the buffer
// already, and no deadline is cleared unless a body or socket is to be read.

// idleDeadline makes sure the client has no more than about the idle time
// to begin its next request.
func (k *conn) idleDeadline() {
	now, idle := time.Now(), k.c.cfg.clientIdle
	if k.idleSet.IsZero() || now.Sub(k.idleSet) > idle/30 {
		k.setReadDeadline(now.Add(idle))
		k.idleSet = now
	}
}

// setReadDeadline sets the client's read deadline to t (zero for none),
// unless there is none to clear.
func (k *conn) setReadDeadline(t time.Time) {
	if t.IsZero() && !k.deadline {
		return
	}
	_ = k.client.SetReadDeadline(t)
	k.deadline = !t.IsZero()
	k.idleSet = time.Time{} // whatever was set, it is no longer the idle deadline
}

// headBuffered reports whether a whole head is in br's buffer, so that
// reading it cannot block.
func headBuffered(br *bufio.Reader) bool {
	buf, _ := br.Peek(br.Buffered())
	end, _ := wire.HeadEnd(buf)
	return end >= 0
}

// reject answers a request the proxy cannot read with 400, and is not
// recorded: there is no exchange to replay.
func (k *conn) reject(err error) {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return
	}
	k.write(k.c.badRequest(k.ip, err))
}

// plainAnswer writes a short text response of the proxy's own.
func (k *conn) plainAnswer(status int, reason, body string, closing bool) {
	k.write(ownAnswer(status, reason, body, closing))
}

// write writes b to the client at once.
func (k *conn) write(b []byte) {
	_, _ = k.cw.Write(b)
	_ = k.cw.Flush()
}

func (k *conn) closeBackend() {
	if k.backend != nil {
		_ = k.backend.Close()
		k.c.connMu.Lock()
		k.backend = nil
		k.c.connMu.Unlock()
		k.reused = false
	}
}

// dial connects the backend connection for the request being relayed, and
// its buffers.
func (k *conn) dial() error {
	b, err := k.c.dialBackend(k.up)
	if err != nil {
		return err
	}
	k.c.connMu.Lock()
	k.backend = b
	k.c.connMu.Unlock()
	k.backendUp = k.up
	if k.br == nil {
		k.br = bufio.NewReaderSize(b, ioBufferSize)
		k.bw = bufio.NewWriterSize(b, ioBufferSize)
	} else {
		k.br.Reset(b)
		k.bw.Reset(b)
	}
	return nil
}

// exchange relays one request and its answer and records them. It reports
// whether the client connection stays open for another request.
func (k *conn) exchange(h *wire.Head) bool {
	k.x.start(h)
	if k.c.forward {
		k.x.forwardTo(k.up, k.offScope)
	}
	keep := k.relay(h)
	k.x.finish()
	return keep
}

// relay does the work of exchange.
func (k *conn) relay(h *wire.Head) bool {
	c := k.c
	rec := k.x.rec
	reqFraming := h.RequestFraming()
	if reqFraming != wire.NoBody {
		if h.Expect {
			// Answer for the backend, so the body comes at once; the backend
			// still answers the request as a whole.
			_, _ = k.cw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
			if err := k.cw.Flush(); err != nil {
				rec.err = "client went away before the body"
				return false
			}
		}
	}
	var rh *wire.Head
	for {
		if k.backend != nil && k.reused && time.Since(k.idle) >= idleCheck && closedWhileIdle(k.backend) {
			k.closeBackend() // closed while idle: a fresh one, before any of the request goes out
		}
		if k.backend != nil && k.c.forward && k.backendUp != k.up {
			k.closeBackend() // the client's next request is for another origin
		}
		if k.backend == nil {
			if err := k.dial(); err != nil {
				return k.badGateway(err, k.x.bodyless) // nothing but the head was read
			}
		}
		reused := k.reused
		if c.forward {
			writeForwardHead(k.bw, k.up, h)
		} else {
			writeRequestHead(k.bw, k.c, k.ip, k.scheme, "HTTP/1.1", h)
		}
		if reqFraming != wire.NoBody {
			res := wire.RelayBody(k.bw, k.cr, reqFraming, h.Length, rec.reqBody, k.buf, true)
			if res.ReadErr != nil {
				rec.err = fmt.Sprintf("client: %s after %d bytes of the request", errorKind(res.ReadErr), rec.reqBody.Size())
				return false
			}
			if res.WriteErr != nil {
				return k.badGateway(res.WriteErr, false)
			}
		}
		err := k.bw.Flush()
		begun := false
		if err == nil {
			k.x.file()
			rh, begun, err = k.readResponseHead(h)
		}
		if err == nil {
			break
		}
		k.closeBackend()
		if k.x.retries(reused, err, begun) {
			continue
		}
		cause, _ := unanswered(err, begun)
		return k.badGateway(cause, true)
	}
	k.reused = true
	defer func() { k.idle = time.Now() }()
	fr := k.x.answered(rh)
	if rh.Status == 101 {
		if k.x.switches() {
			k.socket(rh)
		}
		return false
	}
	rechunk := fr == wire.Chunked && h.Proto == "HTTP/1.1"
	closing := h.Close || rh.Close || fr == wire.UntilClose || (fr == wire.Chunked && !rechunk)
	k.writeResponseHead(h, rh, rechunk, closing)
	if fr == wire.NoBody {
		if err := k.cw.Flush(); err != nil {
			k.x.clientGone()
			return false
		}
	} else {
		res := wire.RelayBody(k.cw, k.br, fr, rh.Length, rec.respBody, k.buf, rechunk)
		switch {
		case res.WriteErr != nil:
			k.x.clientGone()
			k.closeBackend() // the rest of the answer is still on it
			return false
		case res.ReadErr != nil:
			k.x.backendCut(res.ReadErr)
			k.closeBackend()
			return false
		}
	}
	rec.end = time.Now()
	if rh.Close || fr == wire.UntilClose {
		k.closeBackend()
	}
	return !closing
}

// readResponseHead reads the backend's answer head, passing interim 1xx
// answers other than 100 Continue (which the proxy gave already) and 101 on
// to the client. On a failure, begun says whether any byte of the answer
// had come.
func (k *conn) readResponseHead(h *wire.Head) (rh *wire.Head, begun bool, err error) {
	for {
		if _, err = k.br.Peek(1); err != nil {
			return nil, false, err
		}
		if rh, err = wire.ReadHead(k.br, false); err != nil || finalAnswer(rh) {
			return rh, true, err
		}
		if rh.Status != 100 {
			k.writeResponseHead(h, rh, false, false)
			_ = k.cw.Flush()
		}
	}
}

// badGateway closes the backend connection of a backend that could not be
// reached or did not answer, and answers the client (exchange.badGateway);
// whole says the request was read to its end. It reports whether the
// client connection stays open.
func (k *conn) badGateway(err error, whole bool) bool {
	k.closeBackend()
	answer, keep := k.x.badGateway(err, whole)
	k.write(answer)
	return keep
}

// writeRequestHead writes the forwarded head of h to the backend: the
// client's fields in their order, Host kept or set to the target (see
// HostHeader), X-Forwarded-For,
// -Host and -Proto added as reverse proxies do, hop-by-hop fields replaced
// by the proxy's own.
//
// The request line says proto: the goroutine relay speaks HTTP/1.1 to the
// backend whatever the client spoke, the loop relay passes the client's
// version on with the answer's bytes as they are.
func writeRequestHead(w *bufio.Writer, c *Capture, ip, scheme, proto string, h *wire.Head) {
	_, _ = w.WriteString(h.Method)
	_ = w.WriteByte(' ')
	_, _ = w.WriteString(c.targetPath(h.Target))
	_ = w.WriteByte(' ')
	_, _ = w.WriteString(proto)
	_, _ = w.WriteString("\r\nHost: ")
	if c.keepHost && h.Host != "" {
		_, _ = w.WriteString(h.Host)
	} else {
		_, _ = w.WriteString(c.target.Host)
	}
	_, _ = w.WriteString("\r\n")
	for _, f := range h.Fields {
		if h.HopByHop(f.Name) || forwardedField(f.Name) ||
			(h.Upgrade && strings.EqualFold(f.Name, "Sec-WebSocket-Extensions")) {
			// Offer no compression extension, so frames can be recorded.
			continue
		}
		writeField(w, f.Name, c.ownOrigin(f, scheme, h.Host))
	}
	xff := ip
	if h.XFF != "" {
		xff = h.XFF + ", " + ip
	}
	writeField(w, "X-Forwarded-For", xff)
	if h.Host != "" {
		writeField(w, "X-Forwarded-Host", h.Host)
	}
	writeField(w, "X-Forwarded-Proto", scheme)
	if h.Chunked {
		_, _ = w.WriteString("Transfer-Encoding: chunked\r\n")
	}
	if h.Upgrade {
		_, _ = w.WriteString("Connection: Upgrade\r\nUpgrade: websocket\r\n")
	}
	_, _ = w.WriteString("\r\n")
}

// ownOrigin returns the value of f to forward: an Origin or Referer that
// names the proxy itself (the page was loaded through it) names the target
// instead, so that a backend that checks the origin of a WebSocket or a
// form (gorilla/websocket, Django's CSRF) sees its own, as it would without
// the proxy. The trace keeps the value the client sent.
func (c *Capture) ownOrigin(f traces.Header, scheme, host string) string {
	if c.keepHost {
		return f.Value // the backend sees the proxy's name: they agree
	}
	var isOrigin bool
	switch len(f.Name) {
	case 6:
		isOrigin = strings.EqualFold(f.Name, "Origin")
	case 7:
		if !strings.EqualFold(f.Name, "Referer") {
			return f.Value
		}
	default:
		return f.Value
	}
	if host == "" {
		return f.Value
	}
	own := scheme + "://" + host
	rest, ok := strings.CutPrefix(f.Value, own)
	if !ok || isOrigin && rest != "" || !isOrigin && rest != "" && rest[0] != '/' && rest[0] != '?' {
		return f.Value
	}
	return c.target.Scheme + "://" + c.target.Host + rest
}

// forwardedField reports the fields the proxy sets itself.
func forwardedField(name string) bool {
	switch len(name) {
	case 4:
		return strings.EqualFold(name, "Host")
	case 15:
		return strings.EqualFold(name, "X-Forwarded-For")
	case 16:
		return strings.EqualFold(name, "X-Forwarded-Host")
	case 17:
		return strings.EqualFold(name, "X-Forwarded-Proto")
	}
	return false
}

func writeField(w *bufio.Writer, name, value string) {
	_, _ = w.WriteString(name)
	_, _ = w.WriteString(": ")
	_, _ = w.WriteString(value)
	_, _ = w.WriteString("\r\n")
}

// targetPath puts a request target under the target URL's path, as
// httputil.ProxyRequest.SetURL does.
func (c *Capture) targetPath(target string) string {
	if strings.HasPrefix(target, "http://") || strings.HasPrefix(target, "https://") {
		// The absolute form, from clients that treat the proxy as a
		// forward proxy: keep the path and query.
		if i := strings.Index(target[strings.Index(target, "//")+2:], "/"); i >= 0 {
			target = target[strings.Index(target, "//")+2+i:]
		} else {
			target = "/"
		}
	}
	base := c.target.EscapedPath()
	if base == "" || base == "/" || !strings.HasPrefix(target, "/") {
		return target
	}
	return strings.TrimSuffix(base, "/") + target
}

// writeResponseHead writes rh to the client: the backend's fields in their
// order without its hop-by-hop ones, then the proxy's framing and
// Connection fields.
func (k *conn) writeResponseHead(h, rh *wire.Head, rechunk, closing bool) {
	w := k.cw
	_, _ = w.WriteString("HTTP/1.1 ")
	_, _ = w.WriteString(strconv.Itoa(rh.Status))
	_ = w.WriteByte(' ')
	_, _ = w.WriteString(rh.Reason)
	_, _ = w.WriteString("\r\n")
	upgrade := rh.Status == 101
	for _, f := range rh.Fields {
		if !upgrade && rh.HopByHop(f.Name) {
			continue
		}
		writeField(w, f.Name, f.Value)
	}
	switch {
	case upgrade:
	case rechunk:
		_, _ = w.WriteString("Transfer-Encoding: chunked\r\n")
	}
	switch {
	case upgrade:
	case closing:
		_, _ = w.WriteString("Connection: close\r\n")
	case h.Proto == "HTTP/1.0":
		_, _ = w.WriteString("Connection: keep-alive\r\n")
	}
	_, _ = w.WriteString("\r\n")
}

// socket passes the 101 rh on to the client, then relays the upgraded
// connection both ways until either side ends, recording every frame
// (exchange.upgraded).
func (k *conn) socket(rh *wire.Head) {
	rec := k.x.rec
	k.writeResponseHead(nil, rh, false, false)
	if err := k.cw.Flush(); err != nil {
		rec.err = "client went away before the upgrade"
		return
	}
	fromClient, fromServer := k.x.upgraded()
	if !k.setState(stateSocket) {
		k.closeAll()
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		pump(k.client, k.br, fromServer, make([]byte, ioBufferSize))
		k.closeAll()
	})
	pump(k.backend, k.cr, fromClient, k.buf)
	k.closeAll()
	wg.Wait()
	rec.end = time.Now()
}

// pump copies src to dst through a frame parser until either fails.
func pump(dst io.Writer, src io.Reader, p *wire.FrameParser, buf []byte) {
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.Feed(buf[:n])
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
