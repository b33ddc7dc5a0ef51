package traces

import (
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
)

// ErrDirectory is Open's error for a path that is a directory.
var ErrDirectory = errors.New("a directory, not a trace file")

// File is an open trace file: its header, and its sessions read as a
// stream in constant memory. It is not safe for concurrent use.
type File struct {
	// Path is the file's path, as given to Open.
	Path string
	// Size is the file's size in bytes when it was opened.
	Size int64
	f    *os.File
	r    *Reader
}

// An OpenOption configures how Open, InspectFile and FilterFile read a
// trace file.
type OpenOption func(*openConfig) error

type openConfig struct {
	through func(io.Reader) io.Reader // nil: the file itself
}

// ReadThrough has the file read through wrap(file) rather than the file
// itself: a reader that counts the bytes for a progress line, say. wrap
// must return a reader of the same bytes; it is called once for each time
// the file is opened, and what it returns is not closed. Without it (or
// with a nil wrap) the file is read directly, at no cost per byte.
func ReadThrough(wrap func(io.Reader) io.Reader) OpenOption {
	return func(c *openConfig) error {
		c.through = wrap
		return nil
	}
}

// Open opens the trace file at path, read as opts say, and reads its
// header.
func Open(path string, opts ...OpenOption) (*File, error) {
	var c openConfig
	var errs []error
	for _, o := range opts {
		errs = append(errs, o(&c))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("traces: %w", err)
	}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return nil, fmt.Errorf("%s is %w", path, ErrDirectory)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	var size int64
	if fi, err := f.Stat(); err == nil {
		size = fi.Size()
	}
	var src io.Reader = f
	if c.through != nil {
		src = c.through(f)
	}
	r, err := NewReader(src)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &File{Path: path, Size: size, f: f, r: r}, nil
}

// Meta returns the file's header.
func (t *File) Meta() Meta { return t.r.Meta() }

// Reader returns the file's Reader, for those that read sessions with
// Next themselves.
func (t *File) Reader() *Reader { return t.r }

// Close closes the file.
func (t *File) Close() error {
	t.r.Close()
	return t.f.Close()
}

// Sessions yields the file's sessions in order, each into the same
// Session (valid until the next), and at a damaged or unfinished part of
// the file one error that names the file and the byte, after which it
// stops: the sessions before were whole.
//
//	for s, err := range t.Sessions() {
//		if err != nil { return err }
//		...
//	}
func (t *File) Sessions() iter.Seq2[*Session, error] {
	return func(yield func(*Session, error) bool) {
		var s Session
		for {
			err := t.r.Next(&s)
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				yield(nil, fmt.Errorf("%s: %w (the sessions before it were read)", t.Path, err))
				return
			}
			if !yield(&s, nil) {
				return
			}
		}
	}
}
