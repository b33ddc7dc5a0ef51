package traces

import (
	"errors"
	"fmt"
	"github.com/thrive-loadtest/thrive/internal/files"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ErrSameFile is FilterFile's error when it is asked to write over the
// trace it reads.
var ErrSameFile = errors.New("the output is the input file")

// sameFile reports whether two paths name one file, existing or not.
func sameFile(a, b string) bool {
	fa, errA := os.Stat(a)
	fb, errB := os.Stat(b)
	if errA == nil && errB == nil {
		return os.SameFile(fa, fb)
	}
	return filepath.Clean(a) == filepath.Clean(b)
}

// Bound is one end of a time window: an absolute time, or an offset from
// the start of a trace's first session. The zero Bound is no bound.
type Bound struct {
	at       time.Time
	offset   time.Duration
	relative bool
	set      bool
}

// ParseBound reads a bound: an RFC 3339 time (2026-11-02T09:30:00Z) or an
// offset from the trace's start (90s, 1h30m); "" is no bound.
func ParseBound(v string) (Bound, error) {
	if v == "" {
		return Bound{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return Bound{at: t, set: true}, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return Bound{}, fmt.Errorf("%q: want an RFC 3339 time (2026-11-02T09:30:00Z) or an offset from the trace's start (90s, 1h30m)", v)
	}
	return Bound{offset: d, relative: true, set: true}, nil
}

func (b Bound) resolve(first time.Time) time.Time {
	if b.relative {
		return first.Add(b.offset)
	}
	return b.at
}

// Filter picks a trace's sessions by profile and by when they started.
type Filter struct {
	// Profiles are the profiles kept; all when empty.
	Profiles []string
	// From and To bound the window [From, To) the session's start must be
	// in.
	From, To Bound
}

// Relative reports whether a bound of f is an offset from the trace's
// start, which FilterFile reads the trace a first time to find: the trace
// is then read twice.
func (f *Filter) Relative() bool { return f.From.relative || f.To.relative }

// keeper returns whether a session is kept, the relative bounds taken
// from first.
func (f *Filter) keeper(first time.Time) func(*Session) bool {
	want := map[string]bool{}
	for _, p := range f.Profiles {
		if p = strings.TrimSpace(p); p != "" {
			want[p] = true
		}
	}
	return func(s *Session) bool {
		if len(want) > 0 && !want[s.Profile] {
			return false
		}
		if f.From.set && s.Start.Before(f.From.resolve(first)) {
			return false
		}
		return !f.To.set || s.Start.Before(f.To.resolve(first))
	}
}

// FilterFile copies the sessions of the trace at in that f keeps into a new
// trace at out, with the same header, and says how many it read and kept.
// The new file is whole once FilterFile returns, even when in was damaged:
// it holds what was read before the damage, and the error says where. The
// trace is opened with opts each time it is read: twice when f is
// Relative.
func FilterFile(in, out string, f Filter, opts ...OpenOption) (read, kept int, err error) {
	if sameFile(in, out) {
		return 0, 0, fmt.Errorf("%s: %w", out, ErrSameFile)
	}
	var first time.Time
	if f.Relative() {
		if first, err = firstStart(in, opts); err != nil {
			return 0, 0, err
		}
	}
	t, err := Open(in, opts...)
	if err != nil {
		return 0, 0, err
	}
	defer t.Close()
	dst, err := files.Create(out)
	if err != nil {
		return 0, 0, err
	}
	w, err := NewWriter(dst, t.Meta())
	if err != nil {
		dst.Close()
		return 0, 0, fmt.Errorf("%s: %w", out, err)
	}
	read, kept, cerr := Copy(w, t.r, f.keeper(first))
	if _, damaged := errors.AsType[*FormatError](cerr); damaged {
		cerr = fmt.Errorf("%s: %w (the sessions before it were copied)", in, cerr)
	} else if cerr != nil {
		cerr = fmt.Errorf("%s: %w", out, cerr)
	}
	werr := w.Close()
	if err := dst.Sync(); werr == nil && err != nil {
		werr = err
	}
	if err := dst.Close(); werr == nil && err != nil {
		werr = err
	}
	if werr != nil {
		return read, kept, fmt.Errorf("%s: %w", out, werr)
	}
	return read, kept, cerr
}

// firstStart reads a trace once for the start of its earliest session.
func firstStart(path string, opts []OpenOption) (time.Time, error) {
	t, err := Open(path, opts...)
	if err != nil {
		return time.Time{}, err
	}
	defer t.Close()
	var first time.Time
	for s, err := range t.Sessions() {
		if err != nil {
			return first, err
		}
		if !s.Start.IsZero() && (first.IsZero() || s.Start.Before(first)) {
			first = s.Start
		}
	}
	return first, nil
}
