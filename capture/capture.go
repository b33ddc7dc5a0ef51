package capture

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/thrive-loadtest/thrive/traces"
)

// Capture is a recording proxy: it relays HTTP/1.1 and WebSocket traffic
// and records it, session by session, into a Sink. As a reverse proxy it
// stands in front of one backend; as a forward proxy (no target) clients
// are pointed at it and it relays each request to the host it names,
// HTTPS through its own CA (see forward.go). Run serves it on a listener
// and writes what it records. Each client connection gets its own backend
// connection, so the backend sees the users' connections as they were. A
// Capture is safe for concurrent use.
type Capture struct {
	cfg     config
	target  *url.URL // nil for a forward proxy
	forward bool
	// keepHost sends the client's Host, Origin and Referer as they are
	// (see HostHeader).
	keepHost bool
	up       upstream // the reverse proxy's backend
	dialer   interface {
		DialContext(ctx context.Context, network, addr string) (net.Conn, error)
	}
	netDialer *net.Dialer
	sz        *sessionizer
	sink      Sink
	sinkOpen  bool // Open has opened it
	redact    *Redactor
	// journal keeps the finished exchanges of open sessions against a
	// kill; nil without WithJournal. The writer goroutine owns it.
	journal *journal
	// lock is held on the trace while Run writes it (see lockTrace).
	lock *traceLock
	// unflushed are the sessions the sink took that are not known to be
	// on disk yet, and confirmed how many the sink has said are (the
	// writer goroutine's alone).
	unflushed []pendingSession
	confirmed int64

	connMu    sync.Mutex
	conns     map[*conn]struct{}  // client connections being served
	loopConns map[*lconn]struct{} // the same, on event loops
	stopping  bool                // Run is stopping: idle connections close
	connWG    sync.WaitGroup

	buffered atomic.Int64 // body bytes held in sessions not yet written
	stats    counters
	connIDs  atomic.Uint64 // numbers client connections for the sessionizer
}

// counters are the figures Stats reports; the writer goroutine and the
// request goroutines update them atomically.
type counters struct {
	sessions, exchanges, frames, bytes atomic.Int64
	strays                             atomic.Int64
	droppedExchanges, droppedSessions  atomic.Int64
	backendErrors                      atomic.Int64
	undecodable                        atomic.Int64
	panics                             atomic.Int64 // recovered in a connection's handling
	journalErrors                      atomic.Int64
	tlsFailures                        atomic.Int64 // clients that did not complete TLS with the proxy
	proxyAuthFailures                  atomic.Int64
	sinkErr                            atomic.Pointer[error]
}

// Stats are a capture's figures so far.
type Stats struct {
	Open      int   // sessions being recorded
	Sessions  int64 // sessions written
	Exchanges int64 // exchanges written
	Frames    int64 // WebSocket frames written
	Bytes     int64 // bytes written to the sink
	// Strays counts sub-resource requests no visit claimed, written apart
	// (traces.Session.Strays): not in Sessions or Exchanges.
	Strays int64
	// EndedEarly counts the sessions ended before their idle time because
	// the buffer was pressed: quiet for a minute, most likely over.
	EndedEarly int64
	// DroppedExchanges counts exchanges not recorded because the buffer was
	// full; DroppedSessions sessions not written because the sink failed.
	DroppedExchanges int64
	DroppedSessions  int64
	// BackendErrors counts requests the backend did not answer (502s).
	BackendErrors int64
	// Panics counts panics recovered in one connection's handling: that
	// connection was closed, and the capture went on.
	Panics int64
	// Undecodable counts compressed bodies that did not decode by their
	// Content-Encoding: kept as recorded, not redacted inside.
	Undecodable int64
	// TLSFailures counts clients of a forward proxy that did not complete
	// their TLS handshake with it (they do not trust its CA, or pin their
	// certificates); ProxyAuthFailures requests refused with 407.
	TLSFailures       int64
	ProxyAuthFailures int64
	// SinkErr is the sink's first error, if any.
	SinkErr error
}

// Target is the backend a reverse proxy relays to; nil for a forward
// proxy.
func (c *Capture) Target() *url.URL { return c.target }

// Forward reports whether c is a forward proxy.
func (c *Capture) Forward() bool { return c.forward }

// ProxyAuth reports whether a forward proxy's clients must give
// credentials (WithProxyAuth).
func (c *Capture) ProxyAuth() bool { return c.cfg.proxyAuth != "" }

// EventLoop reports whether c relays on event loops (WithEventLoop)
// what they relay: a reverse proxy's plain HTTP.
func (c *Capture) EventLoop() bool { return c.cfg.eventLoop }

// New returns a Capture that relays to target (an http or https URL), or
// a forward proxy when target is empty (which needs WithCA), and writes
// what it records to sink.
func New(target string, sink Sink, opts ...Option) (*Capture, error) {
	c := defaultConfig()
	var errs []error
	for _, o := range opts {
		errs = append(errs, o(&c))
	}
	var u *url.URL
	var up upstream
	if target != "" {
		var err error
		u, err = url.Parse(target)
		if err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
			up, err = newUpstream(u.Scheme, u.Host)
		} else {
			err = errors.New("want an http or https URL")
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("target %q: %w", target, err))
		}
		if len(c.hosts) > 0 || c.proxyAuth != "" {
			errs = append(errs, errors.New("hosts in scope and proxy authentication are for a forward proxy (no target)"))
		}
	} else if c.ca == nil && c.source == "" {
		errs = append(errs, errors.New("a forward proxy (no target) needs a CA to sign its certificates (WithCA)"))
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
		cfg:       c,
		target:    u,
		forward:   u == nil,
		keepHost:  u != nil && keepsHost(c.hostHeader, u.Hostname()),
		up:        up,
		sz:        newSessionizer(c.cookies, c.idle, c.maxSession, fmt.Sprintf("%x", idPrefix)),
		sink:      sink,
		conns:     map[*conn]struct{}{},
		loopConns: map[*lconn]struct{}{},
	}
	if c.partLimits != nil {
		cp.sz.partLimits = *c.partLimits
	}
	if c.redact {
		key := c.redactKey
		if key == nil {
			var err error
			if key, err = randomKey(); err != nil {
				return nil, fmt.Errorf("capture: %w", err)
			}
		}
		cp.redact = NewRedactor(key)
		cp.redact.headers = c.secretHeads
	}
	nd := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	if c.dialer != nil {
		d := *c.dialer
		if d.Timeout <= 0 || d.Timeout > dialTimeout {
			d.Timeout = dialTimeout
		}
		nd = &d
	}
	cp.dialer, cp.netDialer = nd, nd
	if u != nil && u.Scheme == "https" {
		cp.dialer = &tls.Dialer{NetDialer: nd, Config: &tls.Config{
			ServerName:         u.Hostname(),
			NextProtos:         []string{"http/1.1"},
			RootCAs:            c.targetRoots,
			InsecureSkipVerify: c.insecureTLS, //nolint:gosec // only with WithInsecureTarget
		}}
	}
	if c.journalPath != "" {
		trace := strings.TrimSuffix(c.journalPath, JournalSuffix)
		if err := checkUnlocked(trace); err != nil {
			return nil, fmt.Errorf("capture: %w", err)
		}
		if _, err := os.Stat(c.journalPath); err == nil {
			return nil, fmt.Errorf("capture: %s: %w: run thrive traces repair %s first (removing the journal loses the sessions it holds)", c.journalPath, ErrJournal, trace)
		}
	}
	return cp, nil
}

type randReader struct{}

func (randReader) Read(p []byte) (int, error) {
	k, err := randomKey()
	return copy(p, k), err
}

// errorKind describes a transport error without the addresses that make
// every instance unique.
func errorKind(err error) string {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	}
	var invalid x509.CertificateInvalidError
	var unknown x509.UnknownAuthorityError
	var name x509.HostnameError
	switch {
	case errors.As(err, &invalid):
		return "TLS: the origin's certificate: " + certReason(invalid)
	case errors.As(err, &unknown):
		return "TLS: the origin's certificate is signed by an authority not trusted here"
	case errors.As(err, &name):
		return "TLS: the origin's certificate is not for " + name.Host
	case errors.Is(err, syscall.EPIPE), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		return "connection closed"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return oe.Err.Error()
	}
	return err.Error()
}

// finish hands a relayed exchange to the sessionizer, unless the buffer is
// full: the buffer counts what records hold, their bodies and the rest.
func (c *Capture) finish(rec *record) {
	held := rec.size()
	if rec.reqBody != nil {
		held += int64(len(rec.reqBody.Data()))
	}
	if rec.respBody != nil {
		held += int64(len(rec.respBody.Data()))
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

// size returns about how many bytes r holds besides its bodies: itself,
// its URL and headers.
func (r *record) size() int64 {
	n := int64(unsafe.Sizeof(*r)) + int64(len(r.url)+len(r.method)+len(r.host)+len(r.err))
	for _, h := range [][]traces.Header{r.reqHeader, r.respHeader} {
		n += int64(cap(h)) * int64(unsafe.Sizeof(traces.Header{}))
		for _, f := range h {
			n += int64(len(f.Name) + len(f.Value))
		}
	}
	return n
}

// pressed reports whether the exchanges held for unwritten sessions fill
// half the buffer or more: the sessions then hand on parts (see
// sessionizer.parts) rather than the buffer fill and drop exchanges.
func (c *Capture) pressed() bool { return c.buffered.Load() >= c.cfg.buffer/2 }

// idleNow returns the idle time that ends a session at this sweep: the
// one configured, or pressedIdle when shorter and the buffer is pressed.
func (c *Capture) idleNow() time.Duration {
	if c.pressed() {
		return min(c.cfg.idle, pressedIdle)
	}
	return c.cfg.idle
}

// Stats returns the capture's figures so far.
func (c *Capture) Stats() Stats {
	st := Stats{
		Open:              c.sz.openCount(),
		Sessions:          c.stats.sessions.Load(),
		Strays:            c.stats.strays.Load(),
		EndedEarly:        c.sz.early.Load(),
		Exchanges:         c.stats.exchanges.Load(),
		Frames:            c.stats.frames.Load(),
		Bytes:             c.stats.bytes.Load(),
		DroppedExchanges:  c.stats.droppedExchanges.Load(),
		DroppedSessions:   c.stats.droppedSessions.Load(),
		BackendErrors:     c.stats.backendErrors.Load(),
		Undecodable:       c.stats.undecodable.Load(),
		Panics:            c.stats.panics.Load(),
		TLSFailures:       c.stats.tlsFailures.Load(),
		ProxyAuthFailures: c.stats.proxyAuthFailures.Load(),
	}
	if p := c.stats.sinkErr.Load(); p != nil {
		st.SinkErr = *p
	}
	return st
}

// certReason says why a certificate was invalid.
func certReason(e x509.CertificateInvalidError) string {
	switch e.Reason {
	case x509.Expired:
		return "expired or not yet valid"
	case x509.NotAuthorizedToSign:
		return "signed by a certificate that may not sign"
	case x509.IncompatibleUsage:
		return "not for a server"
	}
	return e.Error()
}

// withoutField returns fs without the fields of name, sharing fs when it
// has none.
func withoutField(fs []traces.Header, name string) []traces.Header {
	i := slices.IndexFunc(fs, func(f traces.Header) bool { return strings.EqualFold(f.Name, name) })
	if i < 0 {
		return fs
	}
	return slices.DeleteFunc(slices.Clone(fs), func(f traces.Header) bool { return strings.EqualFold(f.Name, name) })
}

// keepsHost decides HostAuto: a target on this machine answers to any name
// and is reached through the proxy, so it sees the client's; a named
// remote target may route by its own name (a virtual host, a CDN).
func keepsHost(h HostHeader, host string) bool {
	switch h {
	case HostClient:
		return true
	case HostTarget:
		return false
	}
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
