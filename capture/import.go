package capture

import (
	"errors"
	"fmt"
	"time"

	"github.com/thrive-loadtest/thrive/capture/wire"
	"github.com/thrive-loadtest/thrive/traces"
)

// An Import feeds a capture the exchanges that a source other than its
// relays saw (packets from a file or an interface, a HAR, a GoReplay
// file), so that they go the relays' way to the trace: the same
// sessionizer, profile rules, redaction, parts and writer, one code path
// from "an exchange was seen" to the file whatever saw it.
//
// Time is the source's. Exchanges come in the order they began, and the
// latest start is the import's clock: once a flush interval of it has
// passed, the sessions over by it (idle, too long) are written, as a live
// capture's writer does each second of the wall clock (a file's clock runs
// faster: see sweepEvery). An Import is used
// by one goroutine.
type Import struct {
	c     *Capture
	now   time.Time // the latest start added
	swept time.Time // the clock when sessions were last swept
	// sweptAt is the wall clock's time of the last sweep: a file's clock
	// runs faster, and a sweep costs as many steps as sessions are open.
	sweptAt time.Time
	conns   map[string]uint64 // the source's connection names, numbered for the sessionizer
	added   int64
}

// NewImport returns an import of the exchanges that source saw ("pcap",
// "interface", "har", "gor": the trace's Source) into sink, with the
// capture's options (rules, redaction, session cookies and idle time, body
// limit, journal). target, when not "", is where the requests went (a
// reverse proxy's backend, for requests in origin form): the trace's
// target. It opens sink, and the journal that keeps the open sessions'
// exchanges against a kill when the options ask for one.
func NewImport(source, target string, sink Sink, opts ...Option) (*Import, error) {
	if source == "" {
		return nil, errors.New("capture: an import names its source")
	}
	opts = append(opts, func(c *config) error { c.source = source; return nil })
	c, err := New(target, sink, opts...)
	if err != nil {
		return nil, err
	}
	if err := c.Open(); err != nil {
		return nil, err
	}
	if err := c.startJournal(); err != nil {
		return nil, err
	}
	return &Import{c: c, conns: map[string]uint64{}}, nil
}

// Add feeds one exchange: its request began at start, on the client
// connection the source names conn ("" when it names none), from the
// client at address client (a session's key of last resort, with the
// User-Agent). ex's Offset is not read; its TTFB and Duration are from
// start, and so are its WebSocket frames' offsets. Its bodies are kept,
// not copied: the caller does not change them after. Exchanges come about
// in the order they began (a source that reassembles connections hands on
// each as it ends): the clock is the latest start, or what Advance says.
func (im *Import) Add(start time.Time, conn, client string, ex *traces.Exchange) {
	im.now = maxTime(im.now, start)
	c := im.c
	x := exchange{c: c, ip: client, conn: im.conn(conn)}
	x.rec = &record{start: start, method: ex.Method, url: ex.URL, host: ex.Host, reqHeader: ex.ReqHeader, conn: x.conn}
	x.rec.reqBody = im.tap(ex.ReqBody)
	x.file()
	rec := x.rec
	rec.ttfb = start.Add(ex.TTFB)
	rec.status, rec.respHeader, rec.err = ex.Status, ex.RespHeader, ex.Error
	if ex.Status != 0 {
		rec.newKey, rec.ends = c.sz.answerKeyOf(ex.RespHeader, rec.method, rec.key)
	}
	rec.respBody = im.tap(ex.RespBody)
	if ws := ex.WebSocket; ws != nil {
		rec.sock = recordedSocket(start, ws)
	}
	rec.end = start.Add(ex.Duration)
	if rec.end.IsZero() || rec.end.Before(start) {
		rec.end = start
	}
	x.finish()
	im.added++
	im.Advance(start)
}

// Advance moves the import's clock to now, if later: the source's time
// has come that far (a packet of that time was read), and the sessions
// over by it are written once a flush interval of it has passed.
func (im *Import) Advance(now time.Time) {
	im.now = maxTime(im.now, now)
	if im.swept.IsZero() {
		im.swept = im.now
	}
	if due := im.now.Sub(im.swept); due >= im.c.cfg.flushEvery && (time.Since(im.sweptAt) >= sweepEvery || due >= im.c.cfg.idle/4 || im.c.pressed()) {
		im.sweep(im.now)
	}
}

// sweepEvery is how often, in the wall clock's time, an import whose
// source's clock runs faster than it (a file) sweeps at most, unless a
// quarter of the idle time passed in the source's time (sessions end
// within that of their idle time) or the buffer is pressed.
const sweepEvery = 100 * time.Millisecond

// conn numbers the source's connection name for the sessionizer, which
// keys a connection's anonymous requests to the visit it carries; 0 for
// none.
func (im *Import) conn(name string) uint64 {
	if name == "" {
		return 0
	}
	n, ok := im.conns[name]
	if !ok {
		n = uint64(len(im.conns) + 1)
		im.conns[name] = n
	}
	return n
}

// tap holds a body as the relays' taps do: the first body limit of it,
// with the whole size and digest when it is longer (or the source kept
// only its first bytes).
func (im *Import) tap(b traces.Body) *wire.Tap {
	if b.Size == 0 && len(b.Data) == 0 {
		return nil
	}
	return wire.TapOf(b, im.c.cfg.bodyLimit)
}

// recordedSocket makes the socket of a WebSocket that ws holds, its
// frames at start plus their offsets.
func recordedSocket(start time.Time, ws *traces.WebSocket) *wire.Socket {
	frames := make([]wire.TimedFrame, len(ws.Frames))
	for i, f := range ws.Frames {
		frames[i] = wire.TimedFrame{At: start.Add(f.Offset), Frame: f}
	}
	var cl *wire.TimedClose
	if ws.Close.Offset > 0 || ws.Close.Code != 0 {
		cl = &wire.TimedClose{At: start.Add(ws.Close.Offset), Code: ws.Close.Code, Reason: ws.Close.Reason, ByClient: ws.Close.ByClient}
	}
	return wire.RecordedSocket(frames, cl)
}

// sweep writes the sessions over at now and the parts of long ones, as the
// writer of a live capture does each second.
func (im *Import) sweep(now time.Time) {
	c := im.c
	c.write(c.sz.sweepIdle(now, false, c.idleNow()))
	c.writeParts(c.sz.parts(now, c.pressed()))
	c.flush()
	c.journalOpen()
	im.swept, im.sweptAt = now, time.Now()
}

// Stats returns the capture's figures so far: the sessions, exchanges and
// frames written.
func (im *Import) Stats() Stats { return im.c.Stats() }

// Close writes every session left and closes the sink. Its error is the
// first the sink gave, or a note that nothing was added.
func (im *Import) Close() error {
	c := im.c
	c.write(c.sz.sweep(im.now, true))
	c.flush()
	c.closeSink()
	c.lock.release()
	if p := c.stats.sinkErr.Load(); p != nil {
		return *p
	}
	if im.added == 0 {
		return fmt.Errorf("capture: the %s had no exchange to import", c.cfg.source)
	}
	return nil
}
