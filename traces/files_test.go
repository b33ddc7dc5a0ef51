package traces_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thrive-loadtest/thrive/traces"
	"github.com/thrive-loadtest/thrive/traces/synth"
)

// TestFilesOfATrace: a trace written, inspected, printed as JSON Lines and
// filtered, each from its path.
func TestFilesOfATrace(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s.thrv")
	if _, err := synth.WriteFile(path, 30, 1); err != nil {
		t.Fatal(err)
	}
	in, err := traces.InspectFile(path, 5)
	if err != nil || in.Sessions != 30 || len(in.TopEndpoints) != 5 {
		t.Fatalf("inspect: %+v, %v", in, err)
	}
	f, err := traces.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	var lines bytes.Buffer
	if err := f.WriteJSONLines(&lines); err != nil {
		t.Fatal(err)
	}
	f.Close()
	n := 0
	sc := bufio.NewScanner(&lines)
	sc.Buffer(nil, 64<<20)
	for ; sc.Scan(); n++ {
		var s traces.Session
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil || s.ID == "" {
			t.Fatalf("line %d: %v", n+1, err)
		}
	}
	if n != 30 || sc.Err() != nil {
		t.Errorf("%d lines, want 30", n)
	}
	chat := filepath.Join(dir, "chat.thrv")
	read, kept, err := traces.FilterFile(path, chat, traces.Filter{Profiles: []string{" chat", ""}})
	if err != nil || read != 30 || kept != in.Profiles["chat"] || kept == 0 {
		t.Fatalf("filter: read %d, kept %d of %d chat sessions: %v", read, kept, in.Profiles["chat"], err)
	}
	for _, tc := range []struct {
		name string
		err  error
		want error
		text string
	}{
		{"inspect a missing file", second(traces.InspectFile(filepath.Join(dir, "none.thrv"), 5)), os.ErrNotExist, "none.thrv"},
		{"inspect a directory", second(traces.InspectFile(dir, 5)), traces.ErrDirectory, dir},
		{"filter over its input", third(traces.FilterFile(path, path, traces.Filter{})), traces.ErrSameFile, path},
		{"filter over its input by another name", third(traces.FilterFile(path, filepath.Join(dir, ".", "s.thrv"), traces.Filter{})), traces.ErrSameFile, "is the input file"},
	} {
		if !errors.Is(tc.err, tc.want) || !strings.Contains(tc.err.Error(), tc.text) {
			t.Errorf("%s: %v, want %v naming %q", tc.name, tc.err, tc.want, tc.text)
		}
	}
	if in2, err := traces.InspectFile(path, 5); err != nil || in2.Sessions != 30 {
		t.Errorf("the trace after the refused filters: %v", err)
	}
}

func second[T any](_ T, err error) error        { return err }
func third[T, U any](_ T, _ U, err error) error { return err }

// counter counts the bytes read through the readers it wraps, as a
// progress line does.
type counter struct {
	n     int64
	opens int
}

func (c *counter) wrap(r io.Reader) io.Reader {
	c.opens++
	return &countingReader{r: r, c: c}
}

type countingReader struct {
	r io.Reader
	c *counter
}

func (cr *countingReader) Read(b []byte) (int, error) {
	n, err := cr.r.Read(b)
	cr.c.n += int64(n)
	return n, err
}

// TestReadThrough reads a real trace whole through ReadThrough in each way
// a command reads it: every byte of the file goes through the wrapper,
// once for each time the file is read (twice for a relative filter), and
// what is read is what is read without it.
func TestReadThrough(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s.thrv")
	size, err := synth.WriteFile(path, 200, 3)
	if err != nil {
		t.Fatal(err)
	}
	if size < 256<<10 {
		t.Fatalf("the trace is %d bytes: too small to be read in more than one read", size)
	}
	from, err := traces.ParseBound("1m")
	if err != nil {
		t.Fatal(err)
	}
	at, err := traces.ParseBound("2026-01-01T00:00:00Z")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		read  func(opts ...traces.OpenOption) (sessions int, err error)
		opens int
	}{
		{"inspect", func(opts ...traces.OpenOption) (int, error) {
			in, err := traces.InspectFile(path, 5, opts...)
			if in == nil {
				return 0, err
			}
			return in.Sessions, err
		}, 1},
		{"sessions", func(opts ...traces.OpenOption) (int, error) {
			f, err := traces.Open(path, opts...)
			if err != nil {
				return 0, err
			}
			defer f.Close()
			n := 0
			for _, err := range f.Sessions() {
				if err != nil {
					return n, err
				}
				n++
			}
			return n, nil
		}, 1},
		{"filter by profile", func(opts ...traces.OpenOption) (int, error) {
			read, _, err := traces.FilterFile(path, filepath.Join(dir, "p.thrv"), traces.Filter{Profiles: []string{"chat"}}, opts...)
			return read, err
		}, 1},
		{"filter from a time", func(opts ...traces.OpenOption) (int, error) {
			read, _, err := traces.FilterFile(path, filepath.Join(dir, "a.thrv"), traces.Filter{From: at}, opts...)
			return read, err
		}, 1},
		{"filter from an offset", func(opts ...traces.OpenOption) (int, error) {
			read, _, err := traces.FilterFile(path, filepath.Join(dir, "r.thrv"), traces.Filter{From: from}, opts...)
			return read, err
		}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, err := tc.read()
			if err != nil || want != 200 {
				t.Fatalf("read without the option: %d sessions, %v", want, err)
			}
			var c counter
			got, err := tc.read(traces.ReadThrough(c.wrap))
			if err != nil || got != want {
				t.Fatalf("read through a counter: %d sessions (%v), want %d", got, err, want)
			}
			if c.opens != tc.opens || c.n != int64(tc.opens)*size {
				t.Errorf("counted %d bytes in %d opens, want %d in %d", c.n, c.opens, int64(tc.opens)*size, tc.opens)
			}
			if got, err := tc.read(traces.ReadThrough(nil)); err != nil || got != want {
				t.Errorf("a nil wrap: %d sessions (%v), want %d", got, err, want)
			}
		})
	}
}

// TestFilterRelative: only a bound that is an offset makes FilterFile read
// the trace twice.
func TestFilterRelative(t *testing.T) {
	for _, tc := range []struct {
		name     string
		from, to string
		want     bool
	}{
		{"no bound", "", "", false},
		{"times", "2026-11-02T09:30:00Z", "2026-11-02T10:30:00Z", false},
		{"an offset from", "10m", "", true},
		{"an offset to", "2026-11-02T09:30:00Z", "1h", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			from, err1 := traces.ParseBound(tc.from)
			to, err2 := traces.ParseBound(tc.to)
			if err1 != nil || err2 != nil {
				t.Fatal(err1, err2)
			}
			if f := (traces.Filter{From: from, To: to}); f.Relative() != tc.want {
				t.Errorf("Relative() = %v, want %v", f.Relative(), tc.want)
			}
		})
	}
}

// TestOpenThroughAMissingFile: the option changes nothing of Open's errors.
func TestOpenThroughAMissingFile(t *testing.T) {
	var c counter
	if _, err := traces.Open(filepath.Join(t.TempDir(), "none.thrv"), traces.ReadThrough(c.wrap)); !os.IsNotExist(err) || c.opens != 0 {
		t.Errorf("a missing file: %v, %d opens", err, c.opens)
	}
}
