package app

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/thrive-loadtest/thrive/capture"
	"github.com/thrive-loadtest/thrive/internal/statusline"
	"github.com/thrive-loadtest/thrive/replay"
	"github.com/thrive-loadtest/thrive/traces"
)

// Traces is thrive traces' commands that read a trace file whole
// (inspect, cat, filter, correlations, repair). Each writes what it found
// to Out and, while it reads, its progress to Status when Status is not
// nil (a terminal): the bytes read of the file's size, the rate and the
// time left, redrawn every second and cleared when the read ends, before
// what follows it is written. With no Status nothing more is written, and
// the file is read directly, at no cost per byte.
type Traces struct {
	Out, Status io.Writer
}

// Inspect writes the summary of the trace at path with its top endpoints
// (traces.Inspect), as text or as JSON. A damaged trace's summary is of
// what was read, and the damage is the error.
func (tr *Traces) Inspect(path string, top int, asJSON bool) error {
	opts, stop := reading(tr.Status, FilesSize([]string{path}))
	in, damage := traces.InspectFile(path, top, opts...)
	stop()
	if in == nil {
		return damage
	}
	if asJSON {
		return errors.Join(WriteJSON(tr.Out, in), damage)
	}
	return errors.Join(in.WriteText(tr.Out), damage)
}

// Cat writes each session of the trace at path as one JSON object per line
// (traces.File.WriteJSONLines). When Out is a terminal too, no progress is
// shown: the lines themselves show it, and the status line would be drawn
// over them.
func (tr *Traces) Cat(path string) error {
	status := tr.Status
	if statusline.Terminal(tr.Out) != nil {
		status = nil
	}
	opts, stop := reading(status, FilesSize([]string{path}))
	defer stop()
	t, err := traces.Open(path, opts...)
	if err != nil {
		return err
	}
	defer t.Close()
	return t.WriteJSONLines(tr.Out)
}

// Filter writes the sessions of the trace at in that f keeps to a new
// trace at out (traces.FilterFile) and says how many of how many it kept.
func (tr *Traces) Filter(in, out string, f traces.Filter) error {
	reads := int64(1)
	if f.Relative() {
		reads = 2 // once for the trace's start, once to copy
	}
	opts, stop := reading(tr.Status, reads*FilesSize([]string{in}))
	read, kept, err := traces.FilterFile(in, out, f, opts...)
	stop()
	if !errors.Is(err, traces.ErrDirectory) && !errors.Is(err, traces.ErrSameFile) {
		fmt.Fprintf(tr.Out, "kept %d of %d sessions in %s\n", kept, read, out)
	}
	return err
}

// Correlations writes the correlation rules replay finds in the trace at
// path, loaded with load (WriteRules).
func (tr *Traces) Correlations(path string, load ...replay.LoadOption) error {
	opts, stop := reading(tr.Status, FilesSize([]string{path}))
	lib, err := loadFile(path, opts, load)
	stop()
	if err != nil {
		return err
	}
	WriteRules(tr.Out, lib.Rules())
	return nil
}

// loadFile is replay.LoadFile with the trace opened with opts: its path
// named in a read error.
func loadFile(path string, opts []traces.OpenOption, load []replay.LoadOption) (*replay.Library, error) {
	t, err := traces.Open(path, opts...)
	if err != nil {
		return nil, err
	}
	defer t.Close()
	lib, err := replay.Load(t.Reader(), load...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return lib, nil
}

// Repair folds into the trace at path the sessions its journal kept
// (capture.Repair) and says what it did. The total of its progress is the
// trace's size and the journal's; none when the capture rotated its files
// (path is not there).
func (tr *Traces) Repair(path string) error {
	opts, stop := reading(tr.Status, FilesSize([]string{path, path + capture.JournalSuffix}))
	rep, err := capture.Repair(path, opts...)
	stop()
	if err == nil {
		rep.WriteText(tr.Out, path)
	}
	return err
}

// reading shows on status, until stop, the progress of reading total bytes
// of trace files (0: not known), and returns the options that count them;
// a nil status shows nothing and returns no option.
func reading(status io.Writer, total int64) (opts []traces.OpenOption, stop func()) {
	p, stop := showProgress(status, total)
	if p == nil {
		return nil, stop
	}
	return []traces.OpenOption{traces.ReadThrough(p.Reader)}, stop
}

// showProgress shows on status, redrawn every second until stop, the
// progress of reading total bytes (0: not known) from now, and returns it
// for the reads to count into; a nil status shows nothing and returns a
// nil Progress.
func showProgress(status io.Writer, total int64) (*statusline.Progress, func()) {
	if status == nil {
		return nil, func() {}
	}
	p := statusline.NewProgress(total, time.Now())
	return p, statusline.Start(status, func() string { return p.Line(time.Now()) })
}

// WriteJSON writes v as indented JSON, for the commands' --json.
func WriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
