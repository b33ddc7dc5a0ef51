package app

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/thrive-loadtest/thrive/capture"
	"github.com/thrive-loadtest/thrive/capture/importer"
)

// An Import is thrive import: files another tool recorded made into one
// trace, through the capture's sessionizer, profile rules and redaction
// (capture.Import), as if the capture had seen their exchanges. It reads
// HAR files (Chrome, Firefox, Playwright); several make one trace, their
// entries merged by time, each file a client of its own.
type Import struct {
	Files []string
	// Sink is the trace written.
	Sink *capture.FileSink
	// Options are the capture's: rules, session cookies and idle time,
	// redaction, body limit.
	Options []capture.Option
	// Out takes what the import says: what each file held and left out,
	// and the trace's summary.
	Out io.Writer
}

// Run imports the files. Exchanges read before a damaged file's damage
// are imported, and the damage is the error; the trace is written either
// way.
func (im *Import) Run() error {
	var seen []importer.Seen
	var client []string // each exchange's file: the client it came from
	var readErr error
	for _, path := range im.Files {
		got, err := im.read(path)
		readErr = errors.Join(readErr, err)
		seen = append(seen, got...)
		for range got {
			client = append(client, filepath.Base(path))
		}
	}
	order := make([]int, len(seen))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return seen[a].Start.Compare(seen[b].Start) })
	imp, err := capture.NewImport("har", "", im.Sink, im.Options...)
	if err != nil {
		return errors.Join(readErr, err)
	}
	for _, i := range order {
		s := &seen[i]
		imp.Add(s.Start, client[i]+" "+s.Conn, client[i], &s.Exchange)
	}
	err = imp.Close()
	st := imp.Stats()
	fmt.Fprintf(im.Out, "imported %d sessions, %d exchanges, %d WebSocket frames into %s\n", st.Sessions, st.Exchanges, st.Frames, im.Sink.Path)
	if err == nil {
		err = WriteSummary(im.Out, im.Sink.Path)
	}
	return errors.Join(readErr, err)
}

// read reads the HAR file at path, and says what it held and what it left
// out.
func (im *Import) read(path string) ([]importer.Seen, error) {
	if ext := strings.ToLower(filepath.Ext(path)); ext != ".har" {
		return nil, fmt.Errorf("%s: import reads HAR files (.har) so far: %s", path, cmp.Or(ext, "no extension"))
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	seen, st, err := importer.ReadHAR(f, path)
	fmt.Fprintf(im.Out, "%s: %d entries, %d imported", path, st.Entries, st.Imported)
	for _, n := range []struct {
		n    int
		what string
	}{{st.FromCache, "served from the browser's cache"}, {st.NotSent, "never sent"}, {st.NotHTTP, "not HTTP"},
		{st.Unanswered, "unanswered (kept, with their error)"}, {st.NoBody, "with a body the file does not hold"}} {
		if n.n > 0 {
			fmt.Fprintf(im.Out, "; %d %s", n.n, n.what)
		}
	}
	fmt.Fprintln(im.Out)
	return seen, err
}
