package capture

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/thrive-loadtest/thrive/internal/files"
	"github.com/thrive-loadtest/thrive/traces"
)

// Sink receives the sessions a capture finishes. The capture opens it with
// the trace's description (Capture.Open, or Run), and then only its writer
// goroutine calls it.
type Sink interface {
	// Open prepares the sink to take sessions of a trace that meta
	// describes.
	Open(meta traces.Meta) error
	// Write records s, or the last part of s.ID when WritePart wrote
	// parts of it before. It must not keep s.
	Write(s *traces.Session) error
	// WritePart records s as a part of the session s.ID that more parts
	// follow (traces.Writer.WritePart). It must not keep s.
	WritePart(s *traces.Session) error
	// Flush makes what was written so far reach the operating system, so
	// that a killed process loses at most what came since.
	Flush() error
	// Close flushes and releases the sink.
	Close() error
}

// FileSink writes sessions to trace files, starting a new file when the
// current one reaches RotateSize bytes or has been open for RotateEvery.
// Without rotation it writes to Path; with it, to Path with a sequence
// number before the extension (capture-0001.thrv, capture-0002.thrv, ...).
type FileSink struct {
	Path        string
	RotateSize  int64         // 0: never by size
	RotateEvery time.Duration // 0: never by time
	Options     []traces.WriterOption

	meta    traces.Meta // what Open was given
	f       *os.File
	w       *traces.Writer
	opened  time.Time
	seq     int
	done    int64 // bytes in files already closed
	files   []string
	current string
	// good is the current file's size up to its last whole block: a write
	// that fails (a full disk) is cut back to it, so that the file stays
	// readable to the last session written whole.
	good int64
	// written counts the sessions of the files already closed.
	written int64
}

var _ Sink = (*FileSink)(nil)

func (fs *FileSink) rotating() bool { return fs.RotateSize > 0 || fs.RotateEvery > 0 }

func (fs *FileSink) name() string {
	if !fs.rotating() {
		return fs.Path
	}
	ext := filepath.Ext(fs.Path)
	return fmt.Sprintf("%s-%04d%s", strings.TrimSuffix(fs.Path, ext), fs.seq, ext)
}

// Open creates the first file, so that a path that cannot be written fails
// before any traffic is proxied; every file the sink starts has meta as its
// header.
func (fs *FileSink) Open(meta traces.Meta) error {
	fs.meta = meta
	return fs.open()
}

// open starts the next file.
func (fs *FileSink) open() error {
	fs.seq++
	fs.current = fs.name()
	f, err := files.Create(fs.current)
	if err != nil {
		return err
	}
	meta := fs.meta
	if meta.Created.IsZero() || fs.seq > 1 {
		meta.Created = time.Now().UTC()
	}
	w, err := traces.NewWriter(f, meta, fs.Options...)
	if err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", fs.current, err)
	}
	fs.f, fs.w, fs.opened, fs.good = f, w, time.Now(), w.Size()
	fs.files = append(fs.files, fs.current)
	return nil
}

func (fs *FileSink) closeFile() error {
	if fs.w == nil {
		return nil
	}
	// The open block first: should it fail, the file is cut back, and its
	// end record still fits where the block was.
	err := fs.w.Flush()
	if err != nil {
		fs.cut()
	} else {
		fs.good = fs.w.Size()
	}
	if cerr := fs.w.Close(); cerr != nil {
		fs.cut() // whole blocks, without the end record
		if err == nil {
			err = cerr
		}
	}
	fs.done += fs.w.Size()
	fs.written += fs.w.Written()
	if serr := fs.f.Sync(); err == nil && serr != nil {
		err = serr
	}
	if cerr := fs.f.Close(); err == nil && cerr != nil {
		err = cerr
	}
	fs.w, fs.f = nil, nil
	if err != nil {
		return fmt.Errorf("%s: %w", fs.current, err)
	}
	return nil
}

// Write writes s to the current file, rotating first when it is due.
func (fs *FileSink) Write(s *traces.Session) error { return fs.write(s, false) }

// WritePart writes s as a part of a session that more parts follow. A
// rotation between two parts of a session leaves each file with the parts
// it got: a reader of one file alone reads the session as Partial.
func (fs *FileSink) WritePart(s *traces.Session) error { return fs.write(s, true) }

func (fs *FileSink) write(s *traces.Session, part bool) error {
	if fs.w == nil {
		if err := fs.open(); err != nil {
			return err
		}
	}
	if fs.RotateSize > 0 && int64(fs.w.Buffered()) >= fs.RotateSize {
		// The open block alone may pass the size: write it, so that the
		// size counts it.
		if err := fs.Flush(); err != nil {
			return err
		}
	}
	due := (fs.RotateSize > 0 && fs.w.Size() >= fs.RotateSize) || (fs.RotateEvery > 0 && time.Since(fs.opened) >= fs.RotateEvery)
	if due {
		prev := fs.w
		if err := fs.closeFile(); err != nil {
			return err
		}
		if err := fs.open(); err != nil {
			return err
		}
		fs.w.Resume(prev)
	}
	write := fs.w.Write
	if part {
		write = fs.w.WritePart
	}
	if err := write(s); err != nil {
		fs.cut()
		return fmt.Errorf("%s: %w", fs.current, err)
	}
	fs.good = fs.w.Size()
	return nil
}

// cut takes the current file back to its last whole block, after a write
// that failed part way (truncating needs no space), and its writer with
// it: the sessions of the block that failed are lost, the file stays
// readable, and closing it can still write its end record.
func (fs *FileSink) cut() {
	if fs.f != nil && fs.f.Truncate(fs.good) == nil {
		if _, err := fs.f.Seek(fs.good, io.SeekStart); err == nil {
			fs.w.Rewind(fs.good)
		}
	}
}

// Written returns the number of sessions in whole blocks of the files.
func (fs *FileSink) Written() int64 {
	if fs.w == nil {
		return fs.written
	}
	return fs.written + fs.w.Written()
}

// Flush writes the open block of the current file.
func (fs *FileSink) Flush() error {
	if fs.w == nil {
		return nil
	}
	if err := fs.w.Flush(); err != nil {
		fs.cut()
		return fmt.Errorf("%s: %w", fs.current, err)
	}
	fs.good = fs.w.Size()
	return nil
}

// Close closes the current file.
func (fs *FileSink) Close() error {
	if fs.w == nil && fs.f == nil {
		return nil
	}
	return fs.closeFile()
}

// Size returns the bytes written to all files so far.
func (fs *FileSink) Size() int64 {
	if fs.w == nil {
		return fs.done
	}
	return fs.done + fs.w.Size()
}

// Files returns the files written, in order.
func (fs *FileSink) Files() []string { return fs.files }

// ParseRotate reads a FileSink's rotation: a size (100MB) or an age (1h).
func ParseRotate(s string) (every time.Duration, size int64, err error) {
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return d, 0, nil
	}
	if n, err := traces.ParseBytes(s); err == nil && n > 0 {
		return 0, n, nil
	}
	return 0, 0, fmt.Errorf("rotate %q: want a size (100MB) or a duration (1h)", s)
}
