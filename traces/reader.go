package traces

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/klauspost/compress/zstd"
)

// Reader reads sessions from a trace file as a stream, holding one block in
// memory at a time, and the parts read of sessions written in parts until
// their last part comes.
//
// A damaged block costs only its own sessions: Next goes on with the next
// intact block (found by its magic and header checksum) and, once the rest
// is read, returns a *FormatError naming where the damage was and what it
// cost instead of io.EOF. When the input ends inside a block, or (version 2)
// ends without its end record, the last error says so: every session before
// it has been returned intact. A Reader is not safe for concurrent use.
type Reader struct {
	src    *bufio.Reader
	meta   Meta
	dec    *zstd.Decoder
	off    int64 // bytes consumed from src
	head   [blockHeadLen]byte
	stored []byte // compressed payload, reused
	block  decoder
	left   uint32 // sessions not yet decoded in block
	blkOff int64  // offset of the current block
	err    error
	// damage lists the regions skipped for damage, in file order.
	damage []damaged
	ended  bool // the end record was read
	// open holds the parts read of sessions written in parts whose last
	// part has not come yet, first seen first in openOrder; unjoined are
	// those the read ended without, still to be returned.
	open      map[string]*openSession
	openOrder []string
	unjoined  []*Session
}

// damaged is a region of the file a Reader skipped.
type damaged struct {
	off, n   int64
	sessions int // sessions lost with it, when its header told; -1 if not
}

// NewReader reads and checks the file header from src. It refuses a file
// whose format version is newer than Version.
func NewReader(src io.Reader) (*Reader, error) {
	r := &Reader{src: bufio.NewReaderSize(src, 64<<10)}
	src = r.src
	var head [fileHeadLen]byte
	if n, err := io.ReadFull(src, head[:]); err != nil {
		r.off += int64(n)
		if n >= 4 && string(head[:4]) != fileMagic {
			return nil, r.fail("header", 0, ErrNotTrace)
		}
		return nil, r.fail("header", 0, ErrTruncated)
	}
	r.off = fileHeadLen
	if string(head[:4]) != fileMagic {
		return nil, r.fail("header", 0, ErrNotTrace)
	}
	version := int(binary.LittleEndian.Uint16(head[4:]))
	if version == 0 || version > Version {
		return nil, r.fail("header", 0, fmt.Errorf("%w: the file has version %d, this thrive reads versions 1 to %d", ErrVersion, version, Version))
	}
	n := binary.LittleEndian.Uint32(head[6:])
	if n > maxMetaLength {
		return nil, r.fail("header", 0, fmt.Errorf("%w: header length %d", ErrCorrupt, n))
	}
	rest := make([]byte, n+4)
	if _, err := io.ReadFull(src, rest); err != nil {
		return nil, r.fail("header", 0, ErrTruncated)
	}
	r.off += int64(len(rest))
	sum := binary.LittleEndian.Uint32(rest[n:])
	if sum != checksum(append(head[4:], rest[:n]...)) {
		return nil, r.fail("header", 0, fmt.Errorf("%w: header checksum mismatch", ErrCorrupt))
	}
	if err := json.Unmarshal(rest[:n], &r.meta); err != nil {
		return nil, r.fail("header", 0, fmt.Errorf("%w: %w", ErrCorrupt, err))
	}
	r.meta.Version = version
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(MaxBlockSize))
	if err != nil {
		return nil, fmt.Errorf("traces: %w", err)
	}
	r.dec = dec
	return r, nil
}

func (r *Reader) fail(part string, off int64, err error) error {
	r.err = &FormatError{Part: part, Offset: off, Err: err}
	return r.err
}

// Meta returns the file header.
func (r *Reader) Meta() Meta { return r.meta }

// Offset returns the number of bytes of the input read so far. After Next
// returns io.EOF it is the file's size.
func (r *Reader) Offset() int64 { return r.off }

// Next decodes the next session into s and returns io.EOF after the last one.
//
// Next overwrites every field of s and reuses the memory of its slices, so a
// caller that keeps sessions passes a new Session each time. The strings and
// bytes of s point into the decoded block (see Session).
//
// A session written in parts (Writer.WritePart) is returned once, joined,
// where its last part is; the Reader holds its earlier parts until then.
// Parts whose last part the file lacks are returned, joined and marked
// Partial, after every other session and before the error that ends the
// read, if any.
func (r *Reader) Next(s *Session) error {
	if len(r.unjoined) > 0 {
		*s = *r.unjoined[0]
		r.unjoined = r.unjoined[1:]
		return nil
	}
	if r.err != nil {
		return r.err
	}
	for {
		for r.left == 0 {
			if err := r.readBlock(); err != nil {
				if r.leftOpen() {
					return r.Next(s)
				}
				return err
			}
		}
		p, err := r.block.session(s)
		if err != nil {
			return r.fail("block", r.blkOff, fmt.Errorf("%w: session %d: %w", ErrCorrupt, r.sessionsIn()-r.left, err))
		}
		r.left--
		if r.left == 0 && r.block.pos != len(r.block.buf) {
			return r.fail("block", r.blkOff, fmt.Errorf("%w: %d bytes after the last session", ErrCorrupt, len(r.block.buf)-r.block.pos))
		}
		if p.n == 0 {
			return nil
		}
		// A part: held apart from s, whose memory the caller may reuse.
		c := new(Session)
		*c, *s = *s, Session{}
		o := r.open[c.ID]
		if o == nil {
			if r.open == nil {
				r.open = map[string]*openSession{}
			}
			o = &openSession{}
			id := strings.Clone(c.ID) // not the block's memory, which the key would pin
			r.open[id] = o
			r.openOrder = append(r.openOrder, id)
		}
		o.parts = append(o.parts, c)
		o.gap = o.gap || p.n != uint64(len(o.parts))
		if p.more {
			continue
		}
		delete(r.open, c.ID)
		if len(r.openOrder) > 2*len(r.open)+16 {
			r.openOrder = slices.DeleteFunc(r.openOrder, func(id string) bool { return r.open[id] == nil })
		}
		*s = *joinParts(o.parts)
		s.Partial = o.gap
		return nil
	}
}

// openSession is the parts read so far of a session written in parts.
type openSession struct {
	parts []*Session
	gap   bool // a part is missing before the last one read
}

// leftOpen moves the sessions whose last part was not read to unjoined,
// and reports whether there were any.
func (r *Reader) leftOpen() bool {
	for _, id := range r.openOrder {
		if o := r.open[id]; o != nil {
			j := joinParts(o.parts)
			j.Partial = true
			r.unjoined = append(r.unjoined, j)
		}
	}
	r.open, r.openOrder = nil, nil
	return len(r.unjoined) > 0
}

func (r *Reader) sessionsIn() uint32 { return binary.LittleEndian.Uint32(r.head[12:]) }

// readBlock reads, checks and decompresses the next intact block, skipping
// damaged ones.
func (r *Reader) readBlock() error {
	for {
		ok, err := r.tryBlock()
		if err != nil || ok {
			return err
		}
	}
}

// tryBlock reads the next block. It reports false, with no error, for a
// damaged block it skipped (noted in r.damage).
func (r *Reader) tryBlock() (bool, error) {
	r.blkOff = r.off
	r.block = decoder{}
	n, err := io.ReadFull(r.src, r.head[:])
	r.off += int64(n)
	switch {
	case errors.Is(err, io.EOF):
		return false, r.end()
	case errors.Is(err, io.ErrUnexpectedEOF):
		return false, r.fail("block", r.blkOff, ErrTruncated)
	case err != nil:
		return false, r.fail("block", r.blkOff, err)
	}
	if r.meta.Version >= 2 && string(r.head[:4]) == endMagic {
		var e endRecord
		if e.parse(r.head[:]) {
			r.ended = true
			if _, err := r.src.Peek(1); err == nil {
				return false, r.fail("end", r.blkOff, fmt.Errorf("%w: bytes after the end record", ErrCorrupt))
			}
			return false, r.end()
		}
	}
	var h blockHead
	if !h.parse(r.head[:]) {
		start := r.blkOff
		if err := r.resync(); err != nil {
			r.damage = append(r.damage, damaged{off: start, n: r.off - start, sessions: -1})
			return false, r.end()
		}
		r.damage = append(r.damage, damaged{off: start, n: r.blkOff - start, sessions: -1})
		if string(r.head[:4]) == endMagic {
			r.ended = true
			return false, r.end()
		}
		h.parse(r.head[:])
	}
	if cap(r.stored) < int(h.stored) {
		r.stored = make([]byte, h.stored)
	}
	r.stored = r.stored[:h.stored]
	n, err = io.ReadFull(r.src, r.stored)
	r.off += int64(n)
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return false, r.fail("block", r.blkOff, ErrTruncated)
	case err != nil:
		return false, r.fail("block", r.blkOff, err)
	}
	skip := func() (bool, error) {
		r.damage = append(r.damage, damaged{off: r.blkOff, n: r.off - r.blkOff, sessions: int(h.sessions)})
		return false, nil
	}
	if checksum(r.stored) != h.crc {
		return skip()
	}
	// A new buffer for every block: decoded sessions alias it, and it must
	// never be written again (see decoder).
	raw, err := r.dec.DecodeAll(r.stored, make([]byte, 0, h.raw))
	if err != nil || len(raw) != int(h.raw) {
		return skip()
	}
	r.block = decoder{buf: raw, version: r.meta.Version}
	r.left = h.sessions
	return true, nil
}

// resync looks for the next block header (or end record) after a damaged
// one: its magic, then a header checksum that holds. r.head holds the bytes
// read so far; on success it holds the header found, r.blkOff its offset
// and r.off the offset after it.
func (r *Reader) resync() error {
	win := append([]byte(nil), r.head[1:]...)
	winOff := r.blkOff + 1
	for {
		for len(win) >= 4 {
			if m := string(win[:4]); m == blockMagic || m == endMagic && r.meta.Version >= 2 {
				break
			}
			win, winOff = win[1:], winOff+1
		}
		for len(win) < blockHeadLen {
			c, err := r.src.ReadByte()
			if err != nil {
				return err
			}
			r.off++
			win = append(win, c)
		}
		var h blockHead
		var e endRecord
		if string(win[:4]) == blockMagic && h.parse(win[:blockHeadLen]) || string(win[:4]) == endMagic && e.parse(win[:blockHeadLen]) {
			copy(r.head[:], win[:blockHeadLen])
			r.blkOff = winOff
			return nil
		}
		win, winOff = win[1:], winOff+1
	}
}

// end finishes a read: io.EOF for a whole file; else a *FormatError that
// says what was skipped for damage, or that a version 2 file lacks its end
// record (it was cut at a block boundary: its writer did not finish).
func (r *Reader) end() error {
	r.dec.Close()
	if len(r.damage) > 0 {
		var parts []string
		lost, unknown := 0, false
		for _, d := range r.damage {
			parts = append(parts, fmt.Sprintf("bytes %d-%d", d.off, d.off+d.n))
			if d.sessions < 0 {
				unknown = true
			} else {
				lost += d.sessions
			}
		}
		what := fmt.Sprintf("%d sessions", lost)
		if unknown {
			what = fmt.Sprintf("at least %d sessions", lost)
		}
		return r.fail("file", r.damage[0].off, fmt.Errorf("%w: %d damaged regions skipped (%s), %s lost with them; every other session was read",
			ErrCorrupt, len(r.damage), strings.Join(parts, ", "), what))
	}
	if r.meta.Version >= 2 && !r.ended {
		return r.fail("file", r.off, fmt.Errorf("%w: the file ends after a whole block but without its end record: its writer did not finish (still writing, or stopped)", ErrTruncated))
	}
	r.err = io.EOF
	return io.EOF
}

// Close releases the decompressor. It does not close the input.
func (r *Reader) Close() error {
	if r.dec != nil {
		r.dec.Close()
	}
	if r.err == nil {
		r.err = errors.New("traces: read from a closed Reader")
	}
	return nil
}
