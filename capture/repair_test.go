package capture

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/thrive-loadtest/thrive/traces"
	"github.com/thrive-loadtest/thrive/traces/tracetest"
)

// writeTrace writes sessions to path, whole (with its end record) or as a
// killed writer leaves it.
func writeTrace(t *testing.T, path string, whole bool, ss ...*traces.Session) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := traces.NewWriter(f, traces.Meta{Source: "proxy"})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range ss {
		if err := w.Write(s); err != nil {
			t.Fatal(err)
		}
	}
	if whole {
		err = w.Close()
	} else {
		err = w.Flush()
	}
	if err != nil {
		t.Fatal(err)
	}
}

// TestRepairRotated: after a kill, the journal's sessions that no rotated
// file holds are joined from their parts (offsets and think gaps from the
// session's first exchange, in the order they started) and folded into
// the last file, which ends whole; the journal goes. Every byte of the
// three files read goes through the reader of traces.ReadThrough.
func TestRepairRotated(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	ex := func(url string, off, dur time.Duration) traces.Exchange {
		return traces.Exchange{Method: "GET", URL: url, Status: 200, Offset: off, Duration: dur}
	}
	sess := func(id string, start time.Time, exs ...traces.Exchange) *traces.Session {
		return &traces.Session{ID: id, Client: "cookie:sid=" + id, Start: start, Exchanges: exs}
	}
	writeTrace(t, filepath.Join(dir, "c-0001.thrv"), true, sess("a", t0, ex("/a", 0, time.Second)), sess("b", t0, ex("/b", 0, time.Second)))
	writeTrace(t, filepath.Join(dir, "c-0002.thrv"), false, sess("c", t0, ex("/c", 0, time.Second)))
	writeTrace(t, filepath.Join(dir, "c.thrv"+JournalSuffix), false,
		sess("b", t0, ex("/b", 0, time.Second)), // reached a rotated file: not again
		sess("d", t0.Add(2*time.Second), ex("/d2", 0, time.Second)),
		sess("d", t0, ex("/d1", 0, 500*time.Millisecond)),
	)
	var size int64
	for _, name := range []string{"c-0001.thrv", "c-0002.thrv", "c.thrv" + JournalSuffix} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		size += fi.Size()
	}
	var read atomic.Int64
	rep, err := Repair(filepath.Join(dir, "c.thrv"), traces.ReadThrough(func(r io.Reader) io.Reader { return countReader{r, &read} }))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Kept != 1 || rep.Recovered != 1 || rep.Exchanges != 2 || rep.Damage == nil {
		t.Fatalf("repaired %+v", rep)
	}
	if read.Load() != size {
		t.Errorf("read %d bytes through the option, the files hold %d", read.Load(), size)
	}
	got := tracetest.ReadFile(t, filepath.Join(dir, "c-0002.thrv")) // whole: it has its end record
	if len(got) != 2 || got[1].ID != "d" {
		t.Fatalf("the last file holds %d sessions", len(got))
	}
	d := got[1]
	if !d.Start.Equal(t0) || len(d.Exchanges) != 2 || d.Exchanges[0].URL != "/d1" || d.Exchanges[1].Offset != 2*time.Second ||
		d.Exchanges[1].Think != 1500*time.Millisecond || d.Profile == "" {
		t.Fatalf("joined session: start %v, %+v", d.Start, d.Exchanges)
	}
	if _, err := os.Stat(filepath.Join(dir, "c.thrv"+JournalSuffix)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the journal is still there: %v", err)
	}
	if n := len(tracetest.ReadFile(t, filepath.Join(dir, "c-0001.thrv"))); n != 2 {
		t.Fatalf("the first file changed: %d sessions", n)
	}
}

// TestRepairUnfinishedParts: a capture killed while a long session was
// being written in parts leaves the parts in the trace and the session's
// exchanges (those in the parts too) in the journal. Repair joins them,
// each exchange once.
func TestRepairUnfinishedParts(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.thrv")
	t0 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	ex := func(url string, off time.Duration) traces.Exchange {
		return traces.Exchange{Method: "GET", URL: url, Status: 200, Offset: off, Duration: 100 * time.Millisecond}
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := traces.NewWriter(f, traces.Meta{Source: "proxy"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		off := time.Duration(i) * time.Second
		if err := w.WritePart(&traces.Session{ID: "long", Client: "cookie:sid=x", Start: t0, Exchanges: []traces.Exchange{ex(fmt.Sprint("/p", i), off)}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	// The journal took every exchange as it finished, in its own pieces:
	// the three in the trace's parts and two more.
	writeTrace(t, path+JournalSuffix, false,
		&traces.Session{ID: "long", Client: "cookie:sid=x", Start: t0, Exchanges: []traces.Exchange{ex("/p0", 0), ex("/p1", time.Second)}},
		&traces.Session{ID: "long", Client: "cookie:sid=x", Start: t0.Add(2 * time.Second), Exchanges: []traces.Exchange{ex("/p2", 0), ex("/p3", time.Second), ex("/p4", 2*time.Second)}})
	rep, err := Repair(path)
	if err != nil {
		t.Fatal(err)
	}
	got := tracetest.ReadFile(t, path)
	if len(got) != 1 || got[0].Partial || rep.Recovered != 1 {
		t.Fatalf("repaired trace has %d sessions (recovered %d), want the long one whole", len(got), rep.Recovered)
	}
	var urls []string
	for _, e := range got[0].Exchanges {
		urls = append(urls, fmt.Sprintf("%s@%v", e.URL, e.Offset))
	}
	if want := []string{"/p0@0s", "/p1@1s", "/p2@2s", "/p3@3s", "/p4@4s"}; !slices.Equal(urls, want) {
		t.Fatalf("exchanges %v, want %v", urls, want)
	}
}

// countReader adds what each Read returns to n.
type countReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n.Add(int64(n))
	return n, err
}
