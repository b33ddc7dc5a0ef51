package capture

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/thrive-loadtest/thrive/traces"
)

// Capture is a recording reverse proxy: it relays HTTP/1.1 and WebSocket
// traffic to one backend and records it, session by session, into a Sink.
// It is an http.Handler; Run serves it on a listener and writes what it
// records. A Capture is safe for concurrent use.
type Capture struct {
	cfg    config
	target *url.URL
	rp     *httputil.ReverseProxy
	tr     *http.Transport
	sz     *sessionizer
	sink   Sink
	redact *Redactor

	handlers sync.WaitGroup // ServeHTTP calls in flight
	socketMu sync.Mutex
	sockets  map[*tapConn]struct{} // upgraded connections, closed on stop

	buffered atomic.Int64 // body bytes held in sessions not yet written
	stats    counters
}

// counters are the figures Stats reports; the writer goroutine and the
// request goroutines update them atomically.
type counters struct {
	sessions, exchanges, frames, bytes atomic.Int64
	droppedExchanges, droppedSessions  atomic.Int64
	backendErrors                      atomic.Int64
	sinkErr                            atomic.Pointer[error]
}

// Stats are a capture's figures so far.
type Stats struct {
	Open      int   // sessions being recorded
	Sessions  int64 // sessions written
	Exchanges int64 // exchanges written
	Frames    int64 // WebSocket frames written
	Bytes     int64 // bytes written to the sink
	// DroppedExchanges counts exchanges not recorded because the buffer was
	// full; DroppedSessions sessions not written because the sink failed.
	DroppedExchanges int64
	DroppedSessions  int64
	// BackendErrors counts requests the backend did not answer (502s).
	BackendErrors int64
	// SinkErr is the sink's first error, if any.
	SinkErr error
}

// New returns a Capture that relays to target (an http or https URL) and
// writes what it records to sink.
func New(target string, sink Sink, opts ...Option) (*Capture, error) {
	c := defaultConfig()
	var errs []error
	for _, o := range opts {
		errs = append(errs, o(&c))
	}
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("target %q: want an http or https URL", target))
	}
	if sink == nil {
		errs = append(errs, errors.New("nil sink"))
	}
	if err := errors.Join(append(errs, c.validate())...); err != nil {
		return nil, fmt.Errorf("capture: %w", err)
	}
	var idPrefix [3]byte
	if _, err := io.ReadFull(randReader{}, idPrefix[:]); err != nil {
		return nil, fmt.Errorf("capture: %w", err)
	}
	cp := &Capture{
		cfg:     c,
		target:  u,
		sz:      newSessionizer(c.cookies, c.idle, c.maxSession, fmt.Sprintf("%x", idPrefix)),
		sink:    sink,
		sockets: map[*tapConn]struct{}{},
	}
	if c.redact {
		key := c.redactKey
		if key == nil {
			if key, err = randomKey(); err != nil {
				return nil, fmt.Errorf("capture: %w", err)
			}
		}
		cp.redact = NewRedactor(key)
	}
	cp.tr = &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        0,
		MaxIdleConnsPerHost: 4096,
		IdleConnTimeout:     90 * time.Second,
		// Pass the client's Accept-Encoding through untouched.
		DisableCompression: true,
		TLSClientConfig:    &tls.Config{InsecureSkipVerify: c.insecureTLS}, //nolint:gosec // only with WithInsecureTarget
	}
	cp.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.SetXForwarded()
			// Offer no compression extension, so frames can be recorded.
			pr.Out.Header.Del("Sec-WebSocket-Extensions")
		},
		Transport:      cp.tr,
		BufferPool:     newBufferPool(),
		ModifyResponse: cp.modifyResponse,
		ErrorHandler:   cp.errorHandler,
		ErrorLog:       c.errorLog,
	}
	return cp, nil
}

type randReader struct{}

func (randReader) Read(p []byte) (int, error) {
	k, err := randomKey()
	return copy(p, k), err
}

type recordKey struct{}

func headersOf(h http.Header) []traces.Header {
	names := make([]string, 0, len(h))
	for k := range h {
		names = append(names, k)
	}
	slices.Sort(names)
	out := make([]traces.Header, 0, len(h))
	for _, k := range names {
		for _, v := range h[k] {
			out = append(out, traces.Header{Name: k, Value: v})
		}
	}
	return out
}

func clientIP(remote string) string {
	if host, _, err := net.SplitHostPort(remote); err == nil {
		return host
	}
	return remote
}

// ServeHTTP relays r to the backend and records the exchange.
func (c *Capture) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.handlers.Add(1)
	defer c.handlers.Done()
	rec := &record{
		start:     time.Now(),
		method:    r.Method,
		url:       r.RequestURI,
		host:      r.Host,
		reqHeader: headersOf(r.Header),
	}
	if r.Header.Get("Host") == "" && r.Host != "" {
		// net/http moves Host out of the header map; the trace keeps it.
		rec.reqHeader = append([]traces.Header{{Name: "Host", Value: r.Host}}, rec.reqHeader...)
	}
	rec.key = c.sz.requestKey(r.Header, clientIP(r.RemoteAddr))
	c.sz.begin(rec)
	if r.Body != nil && r.Body != http.NoBody {
		rec.reqBody = newBodyTap(r.Body, c.cfg.bodyLimit)
		r.Body = rec.reqBody
	}
	r = r.WithContext(context.WithValue(r.Context(), recordKey{}, rec))
	defer func() {
		p := recover()
		rec.end = time.Now()
		c.finish(rec, p != nil)
		if p != nil {
			panic(p) // http.ErrAbortHandler: let the server drop the connection
		}
	}()
	c.rp.ServeHTTP(w, r)
}

func recordOf(r *http.Request) *record {
	rec, _ := r.Context().Value(recordKey{}).(*record)
	return rec
}

// modifyResponse notes the answer's arrival and headers, and taps its body:
// a byte stream for HTTP, both directions of frames for a WebSocket.
func (c *Capture) modifyResponse(res *http.Response) error {
	rec := recordOf(res.Request)
	if rec == nil {
		return nil
	}
	rec.ttfb = time.Now()
	rec.status = res.StatusCode
	rec.respHeader = headersOf(res.Header)
	rec.newKey, rec.ends = c.sz.answerKey(res.Header, rec.key)
	if res.StatusCode == http.StatusSwitchingProtocols {
		rwc, ok := res.Body.(io.ReadWriteCloser)
		if !ok {
			return nil
		}
		rec.sock = &socket{}
		t := &tapConn{
			rwc:        rwc,
			fromServer: &frameParser{sock: rec.sock, limit: c.cfg.bodyLimit, now: time.Now},
			fromClient: &frameParser{sock: rec.sock, fromClient: true, limit: c.cfg.bodyLimit, now: time.Now},
		}
		c.socketMu.Lock()
		c.sockets[t] = struct{}{}
		c.socketMu.Unlock()
		t.onClose = func() {
			c.socketMu.Lock()
			delete(c.sockets, t)
			c.socketMu.Unlock()
		}
		res.Body = t
		return nil
	}
	if res.Body != nil && res.Body != http.NoBody {
		rec.respBody = newBodyTap(res.Body, c.cfg.bodyLimit)
		res.Body = rec.respBody
	}
	return nil
}

// errorHandler answers 502 when the backend could not be reached or did not
// answer, and records why.
func (c *Capture) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	c.stats.backendErrors.Add(1)
	if rec := recordOf(r); rec != nil {
		rec.status = http.StatusBadGateway
		rec.err = "backend: " + errorKind(err)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusBadGateway)
	_, _ = io.WriteString(w, "thrive capture: the backend did not answer: "+errorKind(err)+"\n")
}

// errorKind describes a transport error without the addresses that make
// every instance unique.
func errorKind(err error) string {
	msg := err.Error()
	switch {
	case errors.Is(err, context.Canceled):
		return "client went away"
	case strings.Contains(msg, "connection refused"):
		return "connection refused"
	case strings.Contains(msg, "connection reset"):
		return "connection reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed without an answer"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	return msg
}

// finish notes how a relayed exchange ended and hands it to the sessionizer,
// unless the buffer is full.
func (c *Capture) finish(rec *record, aborted bool) {
	if rec.err == "" {
		switch rb := rec.respBody; {
		case rb != nil && (errors.Is(rb.err, context.Canceled) || (!rb.eof && rb.err == nil && aborted)):
			// The proxy cancels the backend request when the client leaves.
			rec.err = fmt.Sprintf("client went away after %d bytes of the answer", rb.size)
		case rb != nil && rb.err != nil:
			rec.err = "backend: " + errorKind(rb.err) + fmt.Sprintf(" after %d bytes of the answer", rb.size)
		case rec.reqBody != nil && rec.reqBody.err != nil:
			rec.err = "client: " + errorKind(rec.reqBody.err) + fmt.Sprintf(" after %d bytes of the request", rec.reqBody.size)
		}
	}
	held := int64(0)
	if rec.reqBody != nil {
		held += int64(len(rec.reqBody.data))
	}
	if rec.respBody != nil {
		held += int64(len(rec.respBody.data))
	}
	if c.buffered.Add(held) > c.cfg.buffer {
		c.buffered.Add(-held)
		c.stats.droppedExchanges.Add(1)
		c.sz.abandon(rec)
		return
	}
	rec.held = held
	c.sz.complete(rec)
}

// tapConn is the backend side of an upgraded connection, with a frame
// parser on each direction. The proxy reads the server's bytes through it
// and writes the client's.
type tapConn struct {
	rwc                    io.ReadWriteCloser
	fromServer, fromClient *frameParser
	onClose                func()
	closeOnce              sync.Once
}

func (t *tapConn) Read(p []byte) (int, error) {
	n, err := t.rwc.Read(p)
	t.fromServer.feed(p[:n])
	return n, err
}

// Write parses the client's bytes before it passes them on, so that a
// client frame is recorded before the server can answer it.
func (t *tapConn) Write(p []byte) (int, error) {
	t.fromClient.feed(p)
	return t.rwc.Write(p)
}

func (t *tapConn) Close() error {
	t.closeOnce.Do(t.onClose)
	return t.rwc.Close()
}

// bufferPool lends the proxy its copy buffers.
type bufferPool struct{ p sync.Pool }

func newBufferPool() *bufferPool {
	bp := &bufferPool{}
	bp.p.New = func() any { b := make([]byte, 32<<10); return &b }
	return bp
}

func (bp *bufferPool) Get() []byte {
	b, _ := bp.p.Get().(*[]byte)
	return *b
}

func (bp *bufferPool) Put(b []byte) { bp.p.Put(&b) }

// Stats returns the capture's figures so far.
func (c *Capture) Stats() Stats {
	st := Stats{
		Open:             c.sz.openCount(),
		Sessions:         c.stats.sessions.Load(),
		Exchanges:        c.stats.exchanges.Load(),
		Frames:           c.stats.frames.Load(),
		Bytes:            c.stats.bytes.Load(),
		DroppedExchanges: c.stats.droppedExchanges.Load(),
		DroppedSessions:  c.stats.droppedSessions.Load(),
		BackendErrors:    c.stats.backendErrors.Load(),
	}
	if p := c.stats.sinkErr.Load(); p != nil {
		st.SinkErr = *p
	}
	return st
}
