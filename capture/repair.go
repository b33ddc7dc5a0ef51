package capture

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/thrive-loadtest/thrive/internal/files"
	"github.com/thrive-loadtest/thrive/traces"
)

// Repaired says what Repair did.
type Repaired struct {
	Kept      int // sessions the trace had
	Recovered int // sessions rebuilt from the journal
	Exchanges int // exchanges in them
	// Damage is why the trace could not be read whole (a kill leaves it
	// without its end record), if it could not.
	Damage error
}

// WriteText says what Repair did to the trace at path.
func (r Repaired) WriteText(w io.Writer, path string) {
	if r.Damage != nil {
		fmt.Fprintf(w, "%s was read as far as it goes: %v\n", path, r.Damage)
	}
	fmt.Fprintf(w, "%s: %d sessions kept, %d sessions (%d exchanges) recovered from the journal, which is removed\n",
		path, r.Kept, r.Recovered, r.Exchanges)
}

// Repair folds into the trace at path the sessions of its journal
// (path+JournalSuffix) that never reached it: a capture killed while they
// were open. Their parts are joined by session id, their exchanges put in
// the order they started with offsets and think gaps from the session's
// first, and each is labelled by the default rules. The trace is rewritten
// whole, with its end record, beside it and then renamed over it; the
// journal is removed. Sessions the trace has keep their own record. When
// the capture rotated its files (path-0001 and on), the sessions of all of
// them count, and the last is the one rewritten. Each file it reads is
// opened with opts (traces.ReadThrough: a progress's counter).
func Repair(path string, opts ...traces.OpenOption) (Repaired, error) {
	var rep Repaired
	lock, err := lockTrace(path, "traces repair")
	if err != nil {
		return rep, fmt.Errorf("repair: %w", err)
	}
	defer lock.release()
	jpath := path + JournalSuffix
	jf, err := traces.Open(jpath, opts...)
	if err != nil {
		return rep, fmt.Errorf("repair: %w", err)
	}
	defer jf.Close()
	have := map[string]bool{}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		rotated, _ := filepath.Glob(strings.TrimSuffix(path, filepath.Ext(path)) + "-[0-9][0-9][0-9][0-9]" + filepath.Ext(path))
		if len(rotated) == 0 {
			return rep, fmt.Errorf("repair: %w", err)
		}
		slices.Sort(rotated)
		for _, earlier := range rotated[:len(rotated)-1] {
			if err := sessionIDs(earlier, have, opts); err != nil {
				return rep, fmt.Errorf("repair: %w", err)
			}
		}
		path = rotated[len(rotated)-1]
	}
	tf, err := traces.Open(path, opts...)
	if err != nil {
		return rep, fmt.Errorf("repair: %w", err)
	}
	defer tf.Close()
	tr := tf.Reader()
	tmp := path + ".repair"
	out, err := files.Create(tmp)
	if err != nil {
		return rep, fmt.Errorf("repair: %w", err)
	}
	defer func() { _ = os.Remove(tmp) }() // after a rename, there is nothing to remove
	defer out.Close()
	w, err := traces.NewWriter(out, tr.Meta())
	if err != nil {
		return rep, fmt.Errorf("repair: %w", err)
	}
	// A session the capture wrote in parts whose last part it never wrote
	// waits for what the journal has of its end.
	unfinished := map[string]*traces.Session{}
	if rep.Damage, err = each(tr, func(s *traces.Session) error {
		if s.Partial {
			unfinished[s.ID] = s
			return nil
		}
		have[s.ID] = true
		rep.Kept++
		return w.Write(s)
	}); err != nil {
		return rep, fmt.Errorf("repair: %s: %w", tmp, err)
	}
	jr := jf.Reader()
	parts := map[string][]*traces.Session{}
	var order []string
	if _, err := each(jr, func(s *traces.Session) error {
		if have[s.ID] {
			return nil // it reached the trace whole
		}
		if parts[s.ID] == nil {
			order = append(order, s.ID)
		}
		parts[s.ID] = append(parts[s.ID], s)
		return nil
	}); err != nil {
		return rep, fmt.Errorf("repair: %w", err)
	}
	rules := DefaultRules()
	for id, s := range unfinished {
		if parts[id] == nil {
			order = append(order, id)
		}
		parts[id] = append([]*traces.Session{s}, notIn(s, parts[id])...)
	}
	for _, id := range order {
		s := join(parts[id])
		s.Profile = rules.Profile(s)
		if err := w.Write(s); err != nil {
			return rep, fmt.Errorf("repair: %s: %w", tmp, err)
		}
		rep.Recovered++
		rep.Exchanges += len(s.Exchanges)
	}
	if err := w.Close(); err != nil {
		return rep, fmt.Errorf("repair: %s: %w", tmp, err)
	}
	if err := out.Sync(); err != nil {
		return rep, fmt.Errorf("repair: %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return rep, fmt.Errorf("repair: %w", err)
	}
	return rep, os.Remove(jpath)
}

// sessionIDs adds the ids of the sessions in the trace at path, opened
// with opts, to into. Its errors name the path.
func sessionIDs(path string, into map[string]bool, opts []traces.OpenOption) error {
	t, err := traces.Open(path, opts...)
	if err != nil {
		return err
	}
	defer t.Close()
	_, err = each(t.Reader(), func(s *traces.Session) error { into[s.ID] = true; return nil })
	return err
}

// each calls f with every session r reads (each its own), and returns why
// reading stopped early, if it did (a damaged or unfinished file); an error
// of f stops it and is returned as err.
func each(r *traces.Reader, f func(*traces.Session) error) (damage, err error) {
	for {
		s := new(traces.Session)
		rerr := r.Next(s)
		if errors.Is(rerr, io.EOF) {
			return nil, nil
		}
		if rerr != nil {
			return rerr, nil
		}
		if err := f(s); err != nil {
			return nil, err
		}
	}
}

// notIn returns the parts of the journal with only the exchanges that s,
// which the trace has some parts of, lacks: an exchange is the same when it
// began at the same time with the same method.
func notIn(s *traces.Session, parts []*traces.Session) []*traces.Session {
	type key struct {
		at     int64
		method string
	}
	seen := map[key]bool{}
	for _, ex := range s.Exchanges {
		seen[key{s.Start.Add(ex.Offset).UnixNano(), ex.Method}] = true
	}
	var out []*traces.Session
	for _, p := range parts {
		c := *p
		c.Exchanges = slices.DeleteFunc(slices.Clone(p.Exchanges), func(ex traces.Exchange) bool {
			return seen[key{p.Start.Add(ex.Offset).UnixNano(), ex.Method}]
		})
		if len(c.Exchanges) > 0 {
			out = append(out, &c)
		}
	}
	return out
}

// join makes one session of the parts the journal kept of it: every
// exchange at its absolute time, in the order they started, with offsets
// from the first and think gaps recomputed.
func join(parts []*traces.Session) *traces.Session {
	type timed struct {
		at time.Time
		ex traces.Exchange
	}
	var all []timed
	start := parts[0].Start
	for _, p := range parts {
		if p.Start.Before(start) {
			start = p.Start
		}
		for _, ex := range p.Exchanges {
			all = append(all, timed{p.Start.Add(ex.Offset), ex})
		}
	}
	slices.SortStableFunc(all, func(a, b timed) int { return a.at.Compare(b.at) })
	s := &traces.Session{ID: parts[0].ID, Client: parts[0].Client, Start: start, Exchanges: make([]traces.Exchange, len(all))}
	var busy time.Time
	for i, t := range all {
		ex := t.ex
		shift := t.at.Sub(start) - ex.Offset
		ex.Offset = t.at.Sub(start)
		if ws := ex.WebSocket; ws != nil && shift != 0 {
			c := *ws
			c.Frames = slices.Clone(ws.Frames)
			for j := range c.Frames {
				c.Frames[j].Offset += shift
			}
			c.Close.Offset += shift
			ex.WebSocket = &c
		}
		ex.Think = 0
		if i > 0 && t.at.After(busy) {
			ex.Think = t.at.Sub(busy)
		}
		if end := t.at.Add(ex.Duration); end.After(busy) {
			busy = end
		}
		s.Exchanges[i] = ex
	}
	return s
}
