package traces

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/klauspost/compress/zstd"
)

// Writer writes sessions to a trace file as a stream. Sessions are buffered
// until a block fills (see WithBlockSize) or Flush is called; then the block
// is compressed and written whole, so a reader never sees half a session.
//
// A Writer is not safe for concurrent use. After a write to the destination
// fails, every later call returns that error: the sessions in blocks written
// before it are intact in the file.
type Writer struct {
	dst       io.Writer
	enc       *zstd.Encoder
	blockSize int
	raw       []byte // encoded sessions of the open block
	sessions  uint32 // sessions in raw
	out       []byte // block header and compressed payload, reused
	off       int64  // bytes written to dst
	err       error
	closed    bool
	blocks    uint32 // blocks written, for the end record
	total     uint64 // records written, for the end record
	// parts holds, for each session with parts written (WritePart) and
	// not yet its last, the number of the last one.
	parts map[string]uint64
	whole uint32 // sessions the open block ends: whole, or a last part
	ended uint64 // sessions ended in the blocks written
}

type writerConfig struct {
	blockSize int
	level     zstd.EncoderLevel
}

// WriterOption configures a Writer.
type WriterOption func(*writerConfig) error

// WithBlockSize sets the decoded size at which a block is closed and written;
// DefaultBlockSize when not given.
func WithBlockSize(n int) WriterOption {
	return func(c *writerConfig) error {
		if n <= 0 || n > MaxBlockSize {
			return fmt.Errorf("block size %d out of range 1..%d", n, MaxBlockSize)
		}
		c.blockSize = n
		return nil
	}
}

// WithLevel sets the zstd compression level; zstd.SpeedDefault when not given.
func WithLevel(l zstd.EncoderLevel) WriterOption {
	return func(c *writerConfig) error {
		if l < zstd.SpeedFastest || l > zstd.SpeedBestCompression {
			return fmt.Errorf("compression level %d out of range", l)
		}
		c.level = l
		return nil
	}
}

// NewWriter writes the file header for meta to dst and returns a Writer for
// the sessions that follow.
func NewWriter(dst io.Writer, meta Meta, opts ...WriterOption) (*Writer, error) {
	c := writerConfig{blockSize: DefaultBlockSize, level: zstd.SpeedDefault}
	var errs []error
	for _, o := range opts {
		errs = append(errs, o(&c))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("traces: %w", err)
	}
	js, err := json.Marshal(meta)
	if err != nil {
		return nil, fmt.Errorf("traces: encode header: %w", err)
	}
	if len(js) > maxMetaLength {
		return nil, fmt.Errorf("traces: header of %d bytes exceeds %d", len(js), maxMetaLength)
	}
	enc, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(c.level),
		zstd.WithEncoderConcurrency(1),
		// The block header's CRC covers the payload already.
		zstd.WithEncoderCRC(false),
	)
	if err != nil {
		return nil, fmt.Errorf("traces: %w", err)
	}
	w := &Writer{dst: dst, enc: enc, blockSize: c.blockSize}
	head := make([]byte, 0, fileHeadLen+len(js)+4)
	head = append(head, fileMagic...)
	head = binary.LittleEndian.AppendUint16(head, Version)
	head = binary.LittleEndian.AppendUint32(head, uint32(len(js)))
	head = append(head, js...)
	head = binary.LittleEndian.AppendUint32(head, checksum(head[4:]))
	if err := w.write(head); err != nil {
		return nil, err
	}
	return w, nil
}

func (w *Writer) write(b []byte) error {
	n, err := w.dst.Write(b)
	w.off += int64(n)
	if err != nil {
		w.err = fmt.Errorf("traces: write at byte %d: %w", w.off, err)
		return w.err
	}
	return nil
}

// Write adds s to the open block, and writes the block out when it has
// reached the block size. Write does not keep s. When WritePart wrote parts
// of s.ID before, s is the session's last part. A session whose encoding
// passes maxRecord is written in parts, which a Reader joins: whole
// exchanges where they fit, a WebSocket's frames over several parts where
// one does not.
func (w *Writer) Write(s *Session) error { return w.add(s, false) }

// WritePart writes s as a part of the session s.ID that more parts follow:
// the exchanges it finished so far, so that the writer of a session that
// goes on (a long-polling dashboard, a socket open all day) need not hold
// them. Its later parts are given to WritePart and the last one to Write,
// each with the exchanges not in an earlier part, except a WebSocket marked
// Open: a later part carries it again with the frames that came since. A
// part's Start and offsets may be its own; a Reader joins the parts into
// one session by their times, with the last part's Profile, Client,
// Evidence, Continues and Strays.
func (w *Writer) WritePart(s *Session) error { return w.add(s, true) }

func (w *Writer) add(s *Session, more bool) error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return errors.New("traces: write to a closed Writer")
	}
	if err := checkSession(s); err != nil {
		return fmt.Errorf("traces: %w", err)
	}
	size := sizeHint(s)
	if size > maxRecord {
		return w.split(s, more) // not encoded whole first: it may be huge
	}
	mark := len(w.raw)
	p := w.nextPart(s.ID, more)
	w.raw = appendSession(slices.Grow(w.raw, size), s, p)
	if len(w.raw)-mark > maxRecord {
		w.raw = w.raw[:mark]
		return w.split(s, more)
	}
	return w.record(mark, s.ID, p)
}

// sizeHint returns about the size of s's encoding, a little more rather
// than less: its strings, headers, bodies and messages, and room for the
// numbers around them. The block buffer is grown by it once, rather than
// doubled and copied as a large session is encoded into it.
func sizeHint(s *Session) int {
	n := len(s.ID) + len(s.Client) + len(s.Profile) + len(s.Evidence) + 64
	for i := range s.Exchanges {
		n += exchangeSize(&s.Exchanges[i])
	}
	return n
}

// exchangeSize is about the encoded size of ex, a little more rather than
// less (see frameSize).
func exchangeSize(ex *Exchange) int {
	n := len(ex.Method) + len(ex.URL) + len(ex.Host) + len(ex.Error) + len(ex.ReqBody.Data) + len(ex.RespBody.Data) +
		16*binary.MaxVarintLen64 + 2*32 + 4
	for _, h := range ex.ReqHeader {
		n += len(h.Name) + len(h.Value) + 2*binary.MaxVarintLen32
	}
	for _, h := range ex.RespHeader {
		n += len(h.Name) + len(h.Value) + 2*binary.MaxVarintLen32
	}
	if ws := ex.WebSocket; ws != nil {
		n += len(ws.Close.Reason) + 4*binary.MaxVarintLen64
		for j := range ws.Frames {
			n += frameSize(&ws.Frames[j])
		}
	}
	return n
}

// nextPart says which part of session id the next record is.
func (w *Writer) nextPart(id string, more bool) part {
	if n := w.parts[id]; more || n > 0 {
		return part{n: n + 1, more: more}
	}
	return part{}
}

// record counts the record appended to the open block at mark, and writes
// the block when it is due.
func (w *Writer) record(mark int, id string, p part) error {
	if len(w.raw) > MaxBlockSize {
		// The record does not fit in the open block: write the block
		// without it, then start the next one with it.
		tail := append([]byte(nil), w.raw[mark:]...)
		w.raw = w.raw[:mark]
		if err := w.Flush(); err != nil {
			return err
		}
		w.raw = append(w.raw, tail...)
	}
	w.sessions++
	if p.more {
		if w.parts == nil {
			w.parts = map[string]uint64{}
		}
		w.parts[id] = p.n
	} else {
		delete(w.parts, id)
		w.whole++
	}
	if len(w.raw) >= w.blockSize {
		return w.Flush()
	}
	return nil
}

// put appends one record of s that split made to fit.
func (w *Writer) put(s *Session, more bool) error {
	mark := len(w.raw)
	p := w.nextPart(s.ID, more)
	w.raw = appendSession(slices.Grow(w.raw, sizeHint(s)), s, p)
	if len(w.raw)-mark > MaxBlockSize {
		w.raw = w.raw[:mark]
		return fmt.Errorf("traces: session %q: one exchange encodes to more than %d bytes", s.ID, MaxBlockSize)
	}
	return w.record(mark, s.ID, p)
}

// split writes s, whose encoding passes maxRecord, in parts of about that
// size at most; the last is a last part unless more.
func (w *Writer) split(s *Session, more bool) error {
	sub := *s
	var pending []Exchange
	size := 0
	emit := func(last bool) error {
		sub.Exchanges = pending
		err := w.put(&sub, more || !last)
		pending, size = nil, 0
		return err
	}
	for i := range s.Exchanges {
		ex := s.Exchanges[i]
		n := exchangeSize(&ex)
		if size > 0 && size+n > maxRecord {
			if err := emit(false); err != nil {
				return err
			}
		}
		ws := ex.WebSocket
		if n <= maxRecord || ws == nil || len(ws.Frames) < 2 {
			pending, size = append(pending, ex), size+n
			continue
		}
		// A socket too large for one part: its frames over several, each
		// piece Open but the last.
		frames := ws.Frames
		for len(frames) > 0 {
			k, fsize := 0, 0
			for k < len(frames) && (k == 0 || fsize+frameSize(&frames[k]) <= maxRecord/2) {
				fsize += frameSize(&frames[k])
				k++
			}
			c := *ws
			c.Frames, c.Open = frames[:k], true
			frames = frames[k:]
			piece := ex
			piece.WebSocket = &c
			if len(frames) == 0 {
				c.Open = ws.Open
				pending, size = append(pending, piece), size+fsize
				break
			}
			pending = append(pending, piece)
			if err := emit(false); err != nil {
				return err
			}
		}
	}
	return emit(true)
}

// frameSize is about the encoded size of f.
func frameSize(f *Frame) int { return len(f.Payload.Data) + 2*binary.MaxVarintLen64 + 1 + 32 }

// Flush writes the open block, if it holds any session, to the destination.
// It does not sync the destination: callers that need durability call Sync
// on their file after Flush.
func (w *Writer) Flush() error {
	if w.err != nil {
		return w.err
	}
	if w.sessions == 0 {
		return nil
	}
	w.out = append(w.out[:0], make([]byte, blockHeadLen)...)
	w.out = w.enc.EncodeAll(w.raw, w.out)
	payload := w.out[blockHeadLen:]
	h := blockHead{
		stored:   uint32(len(payload)),
		raw:      uint32(len(w.raw)),
		sessions: w.sessions,
		crc:      checksum(payload),
	}
	h.put(w.out[:blockHeadLen])
	if err := w.write(w.out); err != nil {
		return err
	}
	w.blocks++
	w.total += uint64(w.sessions)
	w.ended += uint64(w.whole)
	w.raw = w.raw[:0]
	w.sessions, w.whole = 0, 0
	if cap(w.raw) > 2*w.blockSize {
		w.raw = nil // one huge session need not pin its memory
	}
	return nil
}

// Rewind forgets a write that failed part way (a full disk): dst has been
// cut back to off, the end of the last block written whole, and the
// sessions of the open block are dropped. The writer goes on from there,
// and its Close can still write the end record that says the file is
// whole.
func (w *Writer) Rewind(off int64) {
	w.off, w.err = off, nil
	w.raw, w.sessions, w.whole = w.raw[:0], 0, 0
}

// Resume numbers on, in w, the parts of the sessions that prev (the
// writer of the file before, when a capture rotates its files) left
// unfinished, so that a reader of w's file alone reads them as Partial:
// they began in the other file.
func (w *Writer) Resume(prev *Writer) {
	for id, n := range prev.parts {
		if w.parts == nil {
			w.parts = map[string]uint64{}
		}
		w.parts[id] = n
	}
}

// Written returns the number of sessions the blocks written whole end: a
// session in one record, or the last part of one written in parts.
func (w *Writer) Written() int64 { return int64(w.ended) }

// Buffered returns the encoded size of the sessions in the open block, not
// yet compressed or written.
func (w *Writer) Buffered() int { return len(w.raw) }

// Size returns the number of bytes written to the destination so far.
func (w *Writer) Size() int64 { return w.off }

// Close flushes the open block and writes the end record, which tells a
// reader the file is whole. It does not close the destination.
func (w *Writer) Close() error {
	if w.closed {
		return w.err
	}
	err := w.Flush()
	w.closed = true
	w.enc.Close()
	if err != nil {
		return err
	}
	var end [blockHeadLen]byte
	(&endRecord{blocks: w.blocks, sessions: w.total}).put(end[:])
	return w.write(end[:])
}
