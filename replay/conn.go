package replay

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/thrive-loadtest/thrive/traces"
	"github.com/valyala/fasthttp"
)

// keptBody bounds what a user keeps of an answer's body, for the live
// values, the errors and the refusals it is read for: the rest streams
// past, counted and discarded, as wrk and hey discard whole bodies. A
// value past it is not found (and counted missing); a compressed body
// longer than it decodes as far as it goes (see content).
const keptBody = 4 << 20

// content returns an answer's body as the application meant it: decoded
// by its Content-Encoding, a body cut at keptBody as far as what was kept
// decodes; as it came when it does not decode.
func content(r *fasthttp.Response) []byte {
	body := r.Body()
	ce := r.Header.ContentEncoding()
	if len(ce) == 0 {
		return body
	}
	if b, err := r.BodyUncompressed(); err == nil {
		return b
	}
	codings := traces.ContentEncoding([]traces.Header{{Name: "Content-Encoding", Value: string(ce)}})
	if b := traces.DecodePrefix(body, codings, keptBody); b != nil {
		return b
	}
	return body
}

// userConns are one virtual user's keep-alive connections to the target,
// as a browser keeps them. Between requests a user holds only its idle
// connections: buffers are lent per request from the engine's pools, and no
// goroutine runs for it, which is what keeps a user in a few KiB.
// A user holds at most the engine's connsPerUser connections, as a browser
// does per host; a request that finds them all busy waits for one, so a
// user who fell behind catches up on its connections rather than opening
// one per overdue request.
type userConns struct {
	mu   sync.Mutex
	idle []idleConn
	open int        // idle and busy
	free *sync.Cond // made when a request first has to wait
}

// idleConn is a kept connection and until when it may be used again: a
// browser closes a connection before the server would (Keep-Alive:
// timeout=5), and one left unused for long.
type idleConn struct {
	c     net.Conn
	until time.Time
}

// browserIdle is how long a browser keeps an unused connection (Firefox's
// network.http.keep-alive.timeout); a server's Keep-Alive timeout, less a
// margin, shortens it.
const browserIdle = 115 * time.Second

// keepAliveMargin is how much before a server's announced Keep-Alive
// timeout a connection is closed, so that a request never crosses its
// close on the wire.
const keepAliveMargin = time.Second

// closeAll closes the idle connections.
func (uc *userConns) closeAll(e *Engine) {
	uc.mu.Lock()
	defer uc.mu.Unlock()
	for _, ic := range uc.idle {
		e.closeConn(ic.c)
	}
	uc.open -= len(uc.idle)
	uc.idle = nil
}

// drop closes a connection of the user's that will not be kept.
func (e *Engine) drop(uc *userConns, c net.Conn) {
	e.closeConn(c)
	uc.mu.Lock()
	uc.open--
	if uc.free != nil {
		uc.free.Signal()
	}
	uc.mu.Unlock()
}

// track notes an open connection, so that the end of a run can cut the
// requests still in flight on it.
func (e *Engine) track(c net.Conn) {
	e.connsMu.Lock()
	e.conns[c] = struct{}{}
	e.connsMu.Unlock()
}

func (e *Engine) closeConn(c net.Conn) {
	e.connsMu.Lock()
	delete(e.conns, c)
	e.connsMu.Unlock()
	c.Close()
}

// cutAll ends every request in flight: their reads and writes fail at once.
func (e *Engine) cutAll() {
	e.connsMu.Lock()
	defer e.connsMu.Unlock()
	e.cut.Store(true)
	past := time.Unix(1, 0)
	for c := range e.conns {
		_ = c.SetDeadline(past)
	}
}

// acquire returns an idle connection, or dials a new one, or waits for one
// when the user has all it may have.
func (e *Engine) acquire(uc *userConns, t *target) (c net.Conn, reused bool, err error) {
	uc.mu.Lock()
	for {
		if n := len(uc.idle); n > 0 {
			ic := uc.idle[n-1]
			uc.idle = uc.idle[:n-1]
			if time.Now().After(ic.until) {
				// Kept too long: the server may have closed it.
				uc.open--
				e.closeConn(ic.c)
				continue
			}
			uc.mu.Unlock()
			return ic.c, true, nil
		}
		if e.cut.Load() {
			uc.mu.Unlock()
			return nil, false, net.ErrClosed
		}
		if uc.open < e.cfg.connsPerUser {
			uc.open++
			break
		}
		if uc.free == nil {
			uc.free = sync.NewCond(&uc.mu)
		}
		uc.free.Wait()
	}
	uc.mu.Unlock()
	c, err = e.dial(t.addr)
	if err == nil && t.tls {
		tc := tls.Client(c, t.tlsConf)
		ctx, cancel := context.WithTimeout(context.Background(), e.cfg.timeout)
		err = tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			c.Close()
		}
		c = tc
	}
	if err != nil {
		uc.mu.Lock()
		uc.open--
		if uc.free != nil {
			uc.free.Signal()
		}
		uc.mu.Unlock()
		return nil, false, err
	}
	e.track(c)
	return c, false, nil
}

// release keeps c for the user's next request for as long as idle, or
// closes it.
func (e *Engine) release(uc *userConns, c net.Conn, keep bool, idle time.Duration) {
	if keep {
		uc.mu.Lock()
		uc.idle = append(uc.idle, idleConn{c: c, until: time.Now().Add(idle)})
		if uc.free != nil {
			uc.free.Signal()
		}
		uc.mu.Unlock()
		return
	}
	e.drop(uc, c)
}

// stale reports whether err means that a reused keep-alive connection had
// been closed by the server before this request: worth one retry on a new
// connection, as browsers do.
func stale(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, fasthttp.ErrConnectionClosed)
}

// exchange sends the prepared request raw on one of the user's connections
// and reads the answer into resp. It returns when the answer's first byte
// arrived (zero if none did) and the error, if any.
//
// While it waits for the answer it holds nothing but the connection and one
// byte: the read buffer and the response are taken from their pools only
// once the answer has begun, so that thousands of users waiting on a slow
// target cost little more than their goroutines.
//
// With eager, it takes the read buffer at once and saves the one-byte read:
// for a user whose answers come fast, holding the buffer costs nothing.
func (e *Engine) exchange(uc *userConns, site int, j *jar, raw []byte, head, eager bool, sent time.Time, got *answerHook) (first time.Time, status int, err error) {
	for attempt := 0; ; attempt++ {
		c, reused, err := e.acquire(uc, &e.targets[site])
		if err != nil {
			return time.Time{}, 0, err
		}
		var keep bool
		var idle time.Duration
		first, status, keep, idle, err = e.roundTrip(c, site, j, raw, head, eager, sent, got)
		if err == nil {
			e.release(uc, c, keep, idle)
			return first, status, nil
		}
		e.drop(uc, c)
		if !reused || attempt > 0 || !first.IsZero() || !stale(err) {
			return first, status, err
		}
		// The server had closed the kept connection before any byte of
		// the answer came: a browser sends the request again on a new
		// one, whatever its method (the server never read it).
		e.retriedStale.Add(1)
	}
}

// prefixed yields one byte already read, then the rest of the connection.
type prefixed struct {
	b    byte
	done bool
	c    net.Conn
}

func (p *prefixed) Read(buf []byte) (int, error) {
	if !p.done && len(buf) > 0 {
		buf[0], p.done = p.b, true
		return 1, nil
	}
	return p.c.Read(buf)
}

// readBufferSize is the read buffer lent per answer: enough for the
// headers of nearly every answer; longer ones read through a larger buffer
// made for them.
const readBufferSize = 2048

// answerReader is a read buffer lent for one answer.
type answerReader struct {
	p  prefixed
	br *bufio.Reader
	// resp is the answer read, and peek its header's Peek, bound once so
	// that handing it to got allocates nothing.
	resp fasthttp.Response
	peek func(string) []byte
	kept []byte // what is kept of the body, at most keptBody
}

func newAnswerReader() *answerReader {
	ar := &answerReader{br: bufio.NewReaderSize(nil, readBufferSize)}
	ar.peek = ar.resp.Header.Peek
	return ar
}

// wireReader reads back a request written out, for fasthttp to parse.
type wireReader struct {
	r  bytes.Reader
	br *bufio.Reader
}

// got, when set, is given the answer's status and headers, and its body
// when it wants it.
// The connection may be kept for idle.
func (e *Engine) roundTrip(c net.Conn, site int, j *jar, raw []byte, head, eager bool, sent time.Time, got *answerHook) (first time.Time, status int, keep bool, idle time.Duration, err error) {
	if err := c.SetDeadline(sent.Add(e.cfg.timeout)); err != nil {
		return time.Time{}, 0, false, 0, err
	}
	if _, err := c.Write(raw); err != nil {
		return time.Time{}, 0, false, 0, err
	}
	ar, _ := e.readers.Get().(*answerReader)
	if eager {
		ar.p = prefixed{done: true, c: c}
	} else {
		// One byte from a pool: a byte on the stack would escape into
		// Read and be allocated each time.
		one, _ := e.bytes.Get().(*[1]byte)
		_, err := io.ReadFull(c, one[:])
		b := one[0]
		e.bytes.Put(one)
		if err != nil {
			e.readers.Put(ar)
			return time.Time{}, 0, false, 0, err
		}
		first = time.Now()
		ar.p = prefixed{b: b, c: c}
	}
	ar.br.Reset(&ar.p)
	defer func() {
		ar.br.Reset(nil)
		ar.p.c = nil
		e.readers.Put(ar)
	}()
	r := &ar.resp
	defer r.Reset()
	br := ar.br
	err = r.Header.Read(br)
	if _, small := errors.AsType[*fasthttp.ErrSmallBuffer](err); small {
		// Headers longer than the pooled buffer: Peek consumed nothing,
		// so read on through a larger buffer over the small one.
		br = bufio.NewReaderSize(br, 64<<10)
		err = r.Header.Read(br)
	}
	if err != nil {
		return first, 0, false, 0, err
	}
	if first.IsZero() {
		first = time.Now()
	}
	status = r.StatusCode()
	if j != nil {
		for _, v := range r.Header.Cookies() {
			j.set(v, first, site)
		}
	}
	// No body follows a HEAD's answer, nor a 1xx, 204 or 304 (RFC 9112,
	// 6.3), whatever its headers say. (fasthttp's ReadBody does not look
	// at SkipBody: it would wait for the Content-Length a HEAD announces.)
	want := got != nil && (got.wantsBody() || e.sketchesBody(got.st.endpoint, status, r.Header.ContentType()))
	var size int64
	if !head && status >= 200 && status != 204 && status != 304 {
		r.StreamBody = true
		if err := r.ReadBody(br, 0); err != nil {
			return first, status, false, 0, err
		}
		ar.kept, size, err = keepBody(ar.kept[:0], r.BodyStream(), want)
		_ = r.CloseBodyStream()
		r.StreamBody = false
		if err != nil {
			return first, status, false, 0, err
		}
		r.SetBodyRaw(ar.kept)
	}
	if got != nil {
		var body []byte
		if want {
			body = content(r)
		}
		got.got(status, body, ar.peek)
		e.sketch(got.smp, &r.Header, size, body)
	}
	// Bytes left in a buffer would belong to no request: do not reuse.
	return first, status, !r.ConnectionClose() && br.Buffered() == 0 && ar.br.Buffered() == 0, keepAliveFor(r.Header.Peek("Keep-Alive")), nil
}

// keepBody reads a body from its stream to its end: the first keptBody bytes
// appended to dst when want, the rest discarded as it comes. size is the
// body's length.
func keepBody(dst []byte, stream io.Reader, want bool) (kept []byte, size int64, err error) {
	from := len(dst)
	if want {
		for len(dst) < keptBody {
			if len(dst) == cap(dst) {
				dst = slices.Grow(dst, min(max(cap(dst), 4096), keptBody-len(dst)))
			}
			n, err := stream.Read(dst[len(dst):min(cap(dst), keptBody)])
			dst = dst[:len(dst)+n]
			if errors.Is(err, io.EOF) {
				return dst, int64(len(dst) - from), nil
			}
			if err != nil {
				return dst, int64(len(dst) - from), err
			}
		}
	}
	n, err := io.Copy(io.Discard, stream)
	return dst, int64(len(dst)-from) + n, err
}

// keepAliveFor returns how long a connection may stay unused after an
// answer whose Keep-Alive header is h (timeout=5, max=100): a margin less
// than the server's timeout, or a browser's own limit.
func keepAliveFor(h []byte) time.Duration {
	for len(h) > 0 {
		var part []byte
		part, h, _ = bytes.Cut(h, []byte(","))
		k, v, ok := bytes.Cut(bytes.TrimSpace(part), []byte("="))
		if !ok || !bytes.EqualFold(bytes.TrimSpace(k), []byte("timeout")) {
			continue
		}
		n := 0
		for _, c := range bytes.TrimSpace(v) {
			if c < '0' || c > '9' || n > 1e6 {
				n = -1
				break
			}
			n = n*10 + int(c-'0')
		}
		if n >= 0 {
			return min(max(time.Duration(n)*time.Second-keepAliveMargin, 0), browserIdle)
		}
	}
	return browserIdle
}
