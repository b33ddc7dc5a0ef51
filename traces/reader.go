package traces

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
)

// Reader reads sessions from a trace file as a stream, holding one block in
// memory at a time.
//
// When the input ends early or a block is damaged, Next returns a
// *FormatError naming the byte offset of the block it could not read; every
// session before that block has been returned intact. A Reader is not safe for
// concurrent use.
type Reader struct {
	src    io.Reader
	meta   Meta
	dec    *zstd.Decoder
	off    int64 // bytes consumed from src
	head   [blockHeadLen]byte
	stored []byte // compressed payload, reused
	block  decoder
	left   uint32 // sessions not yet decoded in block
	blkOff int64  // offset of the current block
	err    error
}

// NewReader reads and checks the file header from src. It refuses a file
// whose format version is newer than Version.
func NewReader(src io.Reader) (*Reader, error) {
	r := &Reader{src: src}
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
func (r *Reader) Next(s *Session) error {
	if r.err != nil {
		return r.err
	}
	for r.left == 0 {
		if err := r.readBlock(); err != nil {
			return err
		}
	}
	if err := r.block.session(s); err != nil {
		return r.fail("block", r.blkOff, fmt.Errorf("%w: session %d: %w", ErrCorrupt, r.sessionsIn()-r.left, err))
	}
	r.left--
	if r.left == 0 && r.block.pos != len(r.block.buf) {
		return r.fail("block", r.blkOff, fmt.Errorf("%w: %d bytes after the last session", ErrCorrupt, len(r.block.buf)-r.block.pos))
	}
	return nil
}

func (r *Reader) sessionsIn() uint32 { return binary.LittleEndian.Uint32(r.head[12:]) }

// readBlock reads, checks and decompresses the next block.
func (r *Reader) readBlock() error {
	r.blkOff = r.off
	r.block = decoder{}
	n, err := io.ReadFull(r.src, r.head[:])
	r.off += int64(n)
	switch {
	case errors.Is(err, io.EOF):
		r.err = io.EOF
		r.dec.Close()
		return io.EOF
	case errors.Is(err, io.ErrUnexpectedEOF):
		return r.fail("block", r.blkOff, ErrTruncated)
	case err != nil:
		return r.fail("block", r.blkOff, err)
	}
	var h blockHead
	if !h.parse(r.head[:]) {
		return r.fail("block", r.blkOff, fmt.Errorf("%w: bad block header", ErrCorrupt))
	}
	if cap(r.stored) < int(h.stored) {
		r.stored = make([]byte, h.stored)
	}
	r.stored = r.stored[:h.stored]
	n, err = io.ReadFull(r.src, r.stored)
	r.off += int64(n)
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return r.fail("block", r.blkOff, ErrTruncated)
	case err != nil:
		return r.fail("block", r.blkOff, err)
	}
	if checksum(r.stored) != h.crc {
		return r.fail("block", r.blkOff, fmt.Errorf("%w: payload checksum mismatch", ErrCorrupt))
	}
	// A new buffer for every block: decoded sessions alias it, and it must
	// never be written again (see decoder).
	raw, err := r.dec.DecodeAll(r.stored, make([]byte, 0, h.raw))
	if err != nil {
		return r.fail("block", r.blkOff, fmt.Errorf("%w: %w", ErrCorrupt, err))
	}
	if len(raw) != int(h.raw) {
		return r.fail("block", r.blkOff, fmt.Errorf("%w: decoded %d bytes, header says %d", ErrCorrupt, len(raw), h.raw))
	}
	r.block = decoder{buf: raw}
	r.left = h.sessions
	return nil
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
