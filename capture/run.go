package capture

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/thrive-loadtest/thrive/traces"
)

// Run serves the capture on ln and writes finished sessions to the sink
// until ctx ends. Then it stops accepting connections, closes idle ones and
// WebSockets, gives requests in flight the grace time to finish, writes
// every open session, and closes the sink. It closes ln. The error says what failed:
// serving, or writing the trace.
func (c *Capture) Run(ctx context.Context, ln net.Listener) error {
	if err := c.Open(); err != nil {
		_ = ln.Close()
		return err
	}
	if err := c.startJournal(); err != nil {
		_ = ln.Close()
		return err
	}
	var wg sync.WaitGroup
	stopWriter := make(chan struct{})
	wg.Go(func() { c.writeLoop(stopWriter) })
	serveErr := make(chan error, 1)
	var lp *loop
	if c.cfg.eventLoop && !c.forward && c.target.Scheme == "http" {
		var err error
		if lp, err = c.newLoop(); err != nil {
			return fmt.Errorf("capture: event loop: %w", err)
		}
		go func() { serveErr <- lp.serve(ln) }()
	} else {
		go func() { serveErr <- c.serve(ln) }()
	}

	var err error
	select {
	case err = <-serveErr:
	case <-ctx.Done():
	}
	_ = ln.Close()
	c.stop()
	done := make(chan struct{})
	go func() { c.connWG.Wait(); close(done) }()
	grace := time.NewTimer(c.cfg.grace)
	select {
	case <-done:
	case <-grace.C:
		c.closeEverything()
		<-done
	}
	grace.Stop()
	if ctx.Err() != nil {
		if serr := <-serveErr; !errors.Is(serr, net.ErrClosed) {
			err = serr
		}
	}
	if lp != nil {
		lp.close()
	}
	close(stopWriter)
	wg.Wait()
	c.lock.release() // the trace and its journal are written, or left for a repair
	if p := c.stats.sinkErr.Load(); p != nil {
		err = errors.Join(err, *p)
	}
	return err
}

// startJournal opens the journal of open sessions, if the capture keeps
// one; when it cannot, it closes the sink and lets go of the trace.
func (c *Capture) startJournal() error {
	if c.cfg.journalPath == "" {
		return nil
	}
	j, err := openJournal(c.cfg.journalPath, c.Meta())
	if err != nil {
		_ = c.sink.Close()
		c.lock.release()
		return fmt.Errorf("capture: journal: %w", err)
	}
	c.journal = j
	c.sz.mu.Lock()
	c.sz.journaling = true
	c.sz.mu.Unlock()
	return nil
}

// closeSink closes the sink, every session written, and then the journal:
// removed when the trace has everything, kept for a repair when not.
func (c *Capture) closeSink() {
	if err := c.sink.Close(); err != nil {
		c.sinkFailed(err)
	}
	if c.stats.sinkErr.Load() == nil {
		c.closeJournal() // every session is in the trace
	} else if c.journal != nil {
		_ = c.journal.w.Close()
		_ = c.journal.f.Close() // kept: the trace did not get everything
	}
}

// writeLoop is the capture's one writer: every flush interval it ends the
// sessions that are over, writes them and flushes the sink; when stop
// closes it writes every session left and closes the sink.
func (c *Capture) writeLoop(stop <-chan struct{}) {
	t := time.NewTicker(c.cfg.flushEvery)
	defer t.Stop()
	for {
		select {
		case now := <-t.C:
			c.write(c.sz.sweepIdle(now, false, c.idleNow()))
			c.writeParts(c.sz.parts(now, c.pressed()))
			c.flush()
			c.journalOpen()
		case <-stop:
			c.write(c.sz.sweep(time.Now(), true))
			c.flush()
			c.closeSink()
			c.noteSize()
			return
		}
	}
}

func (c *Capture) sinkFailed(err error) {
	e := fmt.Errorf("capture: %w", err)
	if c.stats.sinkErr.CompareAndSwap(nil, &e) {
		// Said at once, not only at the stop: the users are still served,
		// and every session from now on is lost.
		c.cfg.errorLog.Printf("%v: the trace keeps the sessions written before, whole; sessions from now on are dropped and counted (the status line says so)", e)
	}
}

func (c *Capture) flush() {
	if c.stats.sinkErr.Load() != nil {
		c.flushed(true)
		return
	}
	err := c.sink.Flush()
	if err != nil {
		c.sinkFailed(err)
	}
	c.flushed(err != nil)
	c.noteSize()
}

func (c *Capture) noteSize() {
	if s, ok := c.sink.(interface{ Size() int64 }); ok {
		c.stats.bytes.Store(s.Size())
	}
}

// write builds, labels, redacts and writes finished sessions: whole, or
// the last part of one written in parts.
func (c *Capture) write(over []*session) {
	for _, s := range over {
		held := heldBy(s.records)
		ts := s.build()
		c.buffered.Add(-held)
		if c.stats.sinkErr.Load() != nil {
			c.stats.droppedSessions.Add(1)
			continue
		}
		cr := s.carry
		if !ts.Strays {
			if cr == nil {
				ts.Profile = c.cfg.rules.Profile(ts)
			} else {
				c.cfg.rules.count(&cr.tally, uncounted(ts.Exchanges, s.records, cr))
				ts.Profile = c.cfg.rules.profile(&cr.tally)
			}
		}
		c.redactSession(ts, cr)
		if err := c.sink.Write(ts); err != nil {
			c.sinkFailed(err)
			c.stats.droppedSessions.Add(1)
			continue
		}
		// Counted written once it is in a block on disk (flushed).
		p := pendingSession{stray: ts.Strays, exchanges: int64(len(ts.Exchanges)), frames: frames(ts)}
		if cr != nil {
			p.exchanges += cr.exchanges
			p.frames += cr.frames
		}
		c.unflushed = append(c.unflushed, p)
	}
}

// redactSession redacts ts, a whole session (cr nil) or a part of one
// whose earlier parts' secrets cr carries.
func (c *Capture) redactSession(ts *traces.Session, cr *partCarry) {
	if c.redact == nil {
		return
	}
	if cr == nil {
		c.redact.Session(ts)
	} else {
		if cr.secrets == nil {
			cr.secrets = c.redact.secrets()
		}
		c.redact.part(ts, cr.secrets)
	}
	c.stats.undecodable.Store(c.redact.Undecodable())
}

// heldBy returns the body bytes recs hold in the capture's buffer.
func heldBy(recs []*record) int64 {
	var n int64
	for _, r := range recs {
		n += r.held
	}
	return n
}

// writeParts builds, redacts and writes the parts of long sessions that a
// sweep handed on (see parts.go).
func (c *Capture) writeParts(parts []partOut) {
	for i := range parts {
		p := &parts[i]
		cr := p.s.carry
		held := heldBy(p.recs)
		ts := p.build()
		c.buffered.Add(-held)
		if c.stats.sinkErr.Load() != nil {
			continue // the session is counted dropped when it ends
		}
		socks := make([]*record, len(p.sockets))
		for j := range p.sockets {
			socks[j] = p.sockets[j].r
		}
		c.cfg.rules.count(&cr.tally, uncounted(ts.Exchanges, append(p.recs, socks...), cr))
		c.redactSession(ts, cr)
		if err := c.sink.WritePart(ts); err != nil {
			c.sinkFailed(err)
			continue
		}
		cr.exchanges += int64(len(p.recs))
		cr.frames += frames(ts)
	}
}

// uncounted returns the exchanges the rules have not counted for a session
// written in parts: a socket is counted once, in the first part that has
// it. recs are the records exchanges were built from, in order, then the
// open sockets.
func uncounted(exchanges []traces.Exchange, recs []*record, cr *partCarry) []traces.Exchange {
	if !slices.ContainsFunc(exchanges, func(ex traces.Exchange) bool { return ex.WebSocket != nil }) {
		return exchanges
	}
	var out []traces.Exchange
	for i := range exchanges {
		if exchanges[i].WebSocket != nil && i < len(recs) {
			if slices.Contains(cr.counted, recs[i]) {
				continue
			}
			cr.counted = append(cr.counted, recs[i])
		}
		out = append(out, exchanges[i])
	}
	return out
}

// pendingSession is a session the sink took that is not yet known to be
// on disk: counted written once it is (flushed), dropped if the sink
// fails first (a full disk), never both.
type pendingSession struct {
	stray             bool
	exchanges, frames int64
}

// writtenCounter is a sink that knows how many of the sessions it took
// are in whole blocks on disk (FileSink).
type writtenCounter interface{ Written() int64 }

// flushed counts the pending sessions the sink has now put on disk as
// written; when failed, the rest as dropped.
func (c *Capture) flushed(failed bool) {
	n := len(c.unflushed) // a sink that does not say: all of them, unless it failed
	if failed {
		n = 0
	}
	if wc, ok := c.sink.(writtenCounter); ok {
		n = max(min(int(wc.Written()-c.confirmed), len(c.unflushed)), 0)
	}
	for _, p := range c.unflushed[:n] {
		if p.stray {
			c.stats.strays.Add(p.exchanges)
			continue
		}
		c.stats.sessions.Add(1)
		c.stats.exchanges.Add(p.exchanges)
		c.stats.frames.Add(p.frames)
	}
	c.confirmed += int64(n)
	if failed {
		for _, p := range c.unflushed[n:] {
			if !p.stray {
				c.stats.droppedSessions.Add(1)
			}
		}
		n = len(c.unflushed)
	}
	c.unflushed = append(c.unflushed[:0], c.unflushed[n:]...)
}

func frames(s *traces.Session) int64 {
	var n int64
	for i := range s.Exchanges {
		if ws := s.Exchanges[i].WebSocket; ws != nil {
			n += int64(len(ws.Frames))
		}
	}
	return n
}

// Open opens the capture's sink with the trace's description (Meta), once:
// a caller that wants a trace it cannot write to fail before it listens
// calls it before Run, which otherwise does.
func (c *Capture) Open() error {
	if c.sinkOpen {
		return nil
	}
	if c.cfg.journalPath != "" {
		// The trace is this process's to write until Run ends.
		l, err := lockTrace(strings.TrimSuffix(c.cfg.journalPath, JournalSuffix), "capture")
		if err != nil {
			return fmt.Errorf("capture: %w", err)
		}
		c.lock = l
	}
	if err := c.sink.Open(c.Meta()); err != nil {
		c.lock.release()
		c.lock = nil
		return fmt.Errorf("capture: %w", err)
	}
	c.sinkOpen = true
	return nil
}

// Meta returns the trace header a capture's files should carry.
func (c *Capture) Meta() traces.Meta {
	m := traces.Meta{Created: time.Now().UTC(), Source: "proxy"}
	switch {
	case c.cfg.source != "":
		m.Source = c.cfg.source
		if c.target != nil {
			m.Target = c.target.String()
		}
	case c.forward:
		m.Source = SourceForward // each exchange names its scheme and host
	default:
		m.Target = c.target.String()
	}
	if c.redact != nil {
		m.Redacted = RedactionPolicy()
	}
	return m
}

// SourceForward is the Source of a trace a forward proxy recorded: there is
// no one target, and each exchange's URL names its scheme and host.
const SourceForward = "forward-proxy"
