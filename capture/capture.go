package capture

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Capture is a recording reverse proxy: it relays HTTP/1.1 and WebSocket
// traffic to one backend and records it, session by session, into a Sink.
// Run serves it on a listener and writes what it records. Each client
// connection gets its own backend connection, so the backend sees the
// users' connections as they were. A Capture is safe for concurrent use.
type Capture struct {
	cfg    config
	target *url.URL
	dialer interface {
		DialContext(ctx context.Context, network, addr string) (net.Conn, error)
	}
	sz     *sessionizer
	sink   Sink
	redact *Redactor
	// journal keeps the finished exchanges of open sessions against a
	// kill; nil without WithJournal. The writer goroutine owns it.
	journal *journal

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
	droppedExchanges, droppedSessions  atomic.Int64
	backendErrors                      atomic.Int64
	undecodable                        atomic.Int64
	panics                             atomic.Int64 // recovered in a connection's handling
	journalErrors                      atomic.Int64
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
	// Panics counts panics recovered in one connection's handling: that
	// connection was closed, and the capture went on.
	Panics int64
	// Undecodable counts compressed bodies that did not decode by their
	// Content-Encoding: kept as recorded, not redacted inside.
	Undecodable int64
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
		cfg:       c,
		target:    u,
		sz:        newSessionizer(c.cookies, c.idle, c.maxSession, fmt.Sprintf("%x", idPrefix)),
		sink:      sink,
		conns:     map[*conn]struct{}{},
		loopConns: map[*lconn]struct{}{},
	}
	if c.redact {
		key := c.redactKey
		if key == nil {
			if key, err = randomKey(); err != nil {
				return nil, fmt.Errorf("capture: %w", err)
			}
		}
		cp.redact = NewRedactor(key)
		cp.redact.headers = c.secretHeads
	}
	nd := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	cp.dialer = nd
	if u.Scheme == "https" {
		cp.dialer = &tls.Dialer{NetDialer: nd, Config: &tls.Config{
			ServerName:         u.Hostname(),
			NextProtos:         []string{"http/1.1"},
			InsecureSkipVerify: c.insecureTLS, //nolint:gosec // only with WithInsecureTarget
		}}
	}
	if c.journalPath != "" {
		if _, err := os.Stat(c.journalPath); err == nil {
			return nil, fmt.Errorf("capture: %s: %w: run thrive traces repair on its trace first, or remove it", c.journalPath, ErrJournal)
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
// full.
func (c *Capture) finish(rec *record) {
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
		Undecodable:      c.stats.undecodable.Load(),
		Panics:           c.stats.panics.Load(),
	}
	if p := c.stats.sinkErr.Load(); p != nil {
		st.SinkErr = *p
	}
	return st
}
