package capture

import (
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/klauspost/compress/zstd"
	"github.com/thrive-loadtest/thrive/traces"
)

// A session reaches the trace when it ends: after its idle time, a logout,
// or the capture's stop. A capture killed with kill -9 would lose every
// session still open, often most of what it saw. So every flush interval
// the exchanges of open sessions that finished since the last one go to a
// journal beside the trace (PATH.journal, a trace file itself, of partial
// sessions), and a clean stop removes it. After a kill, Repair folds the
// journal's sessions that never reached the trace into it.

// JournalSuffix is added to a trace's path to name its journal.
const JournalSuffix = ".journal"

// ErrJournal reports a journal left by a capture that did not finish.
var ErrJournal = errors.New("a capture that did not finish left its journal")

// journal writes the partial sessions.
type journal struct {
	path string
	f    *os.File
	w    *traces.Writer
}

func openJournal(path string, meta traces.Meta) (*journal, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("%s: %w: run thrive traces repair on its trace first (removing the journal loses the sessions it holds)", path, ErrJournal)
		}
		return nil, err
	}
	meta.Source = "journal"
	// The fastest level: a journal lives until the capture stops, and its
	// writing must keep up with the trace's.
	w, err := traces.NewWriter(f, meta, traces.WithBlockSize(256<<10), traces.WithLevel(zstd.SpeedFastest))
	if err != nil {
		f.Close()
		_ = os.Remove(path)
		return nil, err
	}
	return &journal{path: path, f: f, w: w}, nil
}

// detached returns a copy of s that shares nothing redaction may change
// with the records it was built from, which the final session is built from
// again.
func detached(s *traces.Session) *traces.Session {
	for i := range s.Exchanges {
		ex := &s.Exchanges[i]
		ex.ReqHeader, ex.RespHeader = slices.Clone(ex.ReqHeader), slices.Clone(ex.RespHeader)
		ex.ReqBody.Data, ex.RespBody.Data = slices.Clone(ex.ReqBody.Data), slices.Clone(ex.RespBody.Data)
		if ws := ex.WebSocket; ws != nil {
			c := *ws
			c.Frames = slices.Clone(ws.Frames)
			for j := range c.Frames {
				c.Frames[j].Payload.Data = slices.Clone(c.Frames[j].Payload.Data)
			}
			ex.WebSocket = &c
		}
	}
	return s
}

// journalOpen writes the exchanges of open sessions that finished since the
// last call. A journal that fails is closed and counted; the capture goes
// on, its trace unharmed.
func (c *Capture) journalOpen() {
	if c.journal == nil {
		return
	}
	for _, p := range c.sz.unjournaled() {
		ts := detached(p.build())
		if c.redact != nil {
			c.redact.Session(ts)
		}
		if err := c.journal.w.Write(ts); err != nil {
			c.journalFailed(err)
			return
		}
	}
	if err := c.journal.w.Flush(); err != nil {
		c.journalFailed(err)
	}
}

func (c *Capture) journalFailed(err error) {
	c.cfg.errorLog.Printf("capture: journal %s: %v (open sessions are no longer kept against a kill)", c.journal.path, err)
	c.stats.journalErrors.Add(1)
	c.journal.f.Close()
	c.journal = nil
	c.sz.mu.Lock()
	c.sz.journaling = false // nobody takes them any more
	clear(c.sz.dirty)
	c.sz.mu.Unlock()
}

// closeJournal ends the journal after a clean stop: every session is in the
// trace, so it is removed.
func (c *Capture) closeJournal() {
	if c.journal == nil {
		return
	}
	_ = c.journal.w.Close()
	_ = c.journal.f.Close()
	_ = os.Remove(c.journal.path)
	c.journal = nil
}
