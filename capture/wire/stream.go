package wire

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strings"
)

// MsgStream follows one direction of an HTTP/1.x connection from its bytes,
// fed in pieces of any size as they arrive: it finds each message's head,
// then its body by the message's framing, and tells what it found. It is
// the push-driven counterpart of readHead and relayBody, for a relay on an
// event loop (and for passive capture), where no goroutine blocks on a
// read.
//
// The head goes to onHead; every byte after it, framing included, to onRaw
// in order (a relay forwards those as they are); the body without its
// framing to onData (the recording's view); the end of each message to
// onEnd. A callback that returns stop makes feed return at once, having
// consumed what it reported so far: the rest waits in the caller's buffer,
// as a relay lets a client's next request wait until the current answer
// is over.
type MsgStream struct {
	Request bool

	state   streamState
	pending []byte // a head, chunk-size line or trailer line begun in an earlier piece
	left    int64  // bytes left of a Content-Length body or of a chunk's data
	lineErr error  // what was wrong with the last chunk or trailer line
	excess  int64  // chunk framing beyond what the data warrants, as net/http counts it
	budget  int    // what the trailer section may still take
	// methods are the methods of the requests not yet answered, oldest
	// first (responses only): the answer to a HEAD has no body.
	methods []string

	// Cut, once set (by a callback that closed the connection), makes Feed
	// return at once.
	Cut bool

	OnHead func(h *Head, raw []byte) (stop bool)
	OnRaw  func(b []byte)
	OnData func(b []byte)
	OnEnd  func() (stop bool)
}

// HeadBegun reports whether a message's head has begun arriving and is not
// whole yet (a relay then gives it the head timeout).
func (s *MsgStream) HeadBegun() bool { return s.state == inHead && len(s.pending) > 0 }

type streamState uint8

const (
	inHead       streamState = iota
	inLength                 // a Content-Length body
	inChunkSize              // a chunk-size line
	inChunkData              // a chunk's data
	inChunkEnd               // the CRLF after a chunk's data
	inTrailer                // the trailer section of a chunked body
	inUntilClose             // a response that ends when the server closes
	inSocket                 // after a 101: no more HTTP
)

var errChunkLine = errors.New("malformed chunk line")

// Expect notes the method of a request sent on the connection, for the
// response stream to know which answers have no body.
func (s *MsgStream) Expect(method string) { s.methods = append(s.methods, method) }

// Feed consumes b, or the part of it before a callback said stop, and
// returns how much it consumed. An error is the peer's: the connection
// cannot be followed further.
func (s *MsgStream) Feed(b []byte) (int, error) {
	n := 0
	for n < len(b) && !s.Cut {
		m, stop, err := s.step(b[n:])
		n += m
		if err != nil || stop {
			return n, err
		}
	}
	return n, nil
}

// step consumes what it can of b in the current state.
func (s *MsgStream) step(b []byte) (int, bool, error) {
	switch s.state {
	case inHead:
		return s.head(b)
	case inLength, inChunkData:
		m := int(min(s.left, int64(len(b))))
		s.raw(b[:m])
		s.data(b[:m])
		s.left -= int64(m)
		if s.left > 0 {
			return m, false, nil
		}
		if s.state == inChunkData {
			s.state = inChunkEnd
			return m, false, nil
		}
		return m, s.end(), nil
	case inChunkEnd:
		// Exactly CRLF after a chunk's data, as net/http insists.
		m := min(2-len(s.pending), len(b))
		s.pending = append(s.pending, b[:m]...)
		if !bytes.HasPrefix([]byte("\r\n"), s.pending) {
			return m, false, fmt.Errorf("%w: chunk data longer than its size", errChunkLine)
		}
		s.raw(b[:m])
		if len(s.pending) == 2 {
			s.pending = s.pending[:0]
			s.state = inChunkSize
		}
		return m, false, nil
	case inChunkSize, inTrailer:
		limit := maxChunkLine
		if s.state == inTrailer {
			limit = s.budget
		}
		line, m, ok, err := s.line(b, limit)
		if err != nil || !ok {
			return m, false, err
		}
		stop := s.chunkLine(line)
		s.pending = s.pending[:0]
		return m, stop, s.lineErr
	case inUntilClose:
		s.raw(b)
		s.data(b)
		return len(b), false, nil
	case inSocket:
		s.raw(b)
		return len(b), false, nil
	}
	return 0, false, fmt.Errorf("stream in unknown state %d", s.state)
}

// head gathers a head and, once whole, parses it and sets the framing of
// what follows.
func (s *MsgStream) head(b []byte) (int, bool, error) {
	var raw []byte
	var m int
	if len(s.pending) == 0 {
		if _, next := HeadEnd(b); next >= 0 {
			raw, m = b[:next], next
		}
	} else {
		// The head began in an earlier piece: look for its end across the
		// join (it may end in the first bytes of b).
		old := len(s.pending)
		s.pending = append(s.pending, b[:min(len(b), MaxHead+4)]...)
		if _, next := HeadEnd(s.pending); next >= 0 {
			raw, m = s.pending[:next], next-old
		} else {
			s.pending = s.pending[:old]
		}
	}
	if raw == nil {
		if len(s.pending)+len(b) > MaxHead {
			return len(b), false, ErrHeadTooLarge
		}
		s.pending = append(s.pending, b...)
		return len(b), false, nil
	}
	if len(raw) > MaxHead+4 {
		return m, false, ErrHeadTooLarge
	}
	h, err := ParseHeadBytes(raw, s.Request)
	s.pending = s.pending[:0]
	if err != nil {
		return m, false, err
	}
	stop := s.OnHead != nil && s.OnHead(h, raw)
	if s.Request {
		switch fr := h.RequestFraming(); fr {
		case ByLength:
			s.state, s.left = inLength, h.Length
		case Chunked:
			s.state = inChunkSize
		default:
			stop = s.end() || stop
		}
		return m, stop, nil
	}
	method := ""
	if len(s.methods) > 0 {
		method = s.methods[0]
	}
	switch {
	case h.Status == 101:
		s.state = inSocket
		return m, stop, nil
	case h.Status < 200:
		return m, stop, nil // interim: the final answer follows
	}
	if len(s.methods) > 0 { // moved down, not sliced past: one array serves every request
		s.methods = s.methods[:copy(s.methods, s.methods[1:])]
	}
	switch h.ResponseFraming(method) {
	case ByLength:
		s.state, s.left = inLength, h.Length
		if s.left == 0 {
			stop = s.end() || stop
		}
	case Chunked:
		s.state = inChunkSize
	case UntilClose:
		s.state = inUntilClose
	default:
		stop = s.end() || stop
	}
	return m, stop, nil
}

// ParseHeadBytes parses a whole head, its blank line included: one string
// that the fields share.
func ParseHeadBytes(raw []byte, request bool) (*Head, error) {
	end, _ := HeadEnd(raw)
	text := string(raw[:end])
	// A line for each field but the first, which is the request or status line.
	p := headParser{h: newHead(max(strings.Count(text, "\n")-1, 0)), request: request}
	for text != "" {
		line, rest, _ := strings.Cut(text, "\n")
		text = rest
		if done, err := p.line(strings.TrimSuffix(line, "\r")); err != nil || done {
			return p.finish(err)
		}
	}
	_, err := p.line("")
	return p.finish(err)
}

// line gathers one line of at most limit bytes, its line end included; ok
// when it is whole. Its bytes go to onRaw only once chunkLine has found it
// good: a line cut across reads is never passed on half before it is
// judged.
func (s *MsgStream) line(b []byte, limit int) (line []byte, m int, ok bool, err error) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		if len(s.pending)+len(b) > limit {
			return nil, len(b), false, errChunkLine
		}
		s.pending = append(s.pending, b...)
		return nil, len(b), false, nil
	}
	if len(s.pending) > 0 {
		s.pending = append(s.pending, b[:i+1]...)
		line = s.pending
	} else {
		line = b[:i+1]
	}
	return line, i + 1, true, nil
}

// maxChunkLine bounds a chunk-size line with its CRLF, as net/http's
// chunked reader does.
const maxChunkLine = 4096 + 1

// chunkLine acts on a whole chunk-size or trailer line, line end included;
// what was wrong with it goes in lineErr. Chunk-size lines are held to the
// rules of net/http's chunked reader (CRLF only, hex digits, a bound on
// framing against data), which stop request smuggling through lenient
// parsers; trailer lines to those of heads.
func (s *MsgStream) chunkLine(line []byte) bool {
	s.lineErr = nil
	if s.state == inTrailer {
		s.budget -= len(line)
		if s.budget < 0 {
			s.lineErr = ErrHeadTooLarge
			return false
		}
		field := bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
		if len(field) == 0 {
			s.raw(line)
			return s.end()
		}
		if _, _, err := fieldLine(string(field)); err != nil {
			s.lineErr = fmt.Errorf("trailer: %w", err)
			return false
		}
		s.raw(line)
		return false
	}
	cr := bytes.IndexByte(line, '\r')
	switch {
	case cr < 0:
		s.lineErr = fmt.Errorf("%w: it ends with a bare LF", errChunkLine)
		return false
	case cr != len(line)-2:
		s.lineErr = fmt.Errorf("%w: a CR inside it", errChunkLine)
		return false
	case len(line)-2 >= maxChunkLine-1:
		s.lineErr = fmt.Errorf("%w: too long", errChunkLine)
		return false
	}
	p := line[:len(line)-2]
	s.excess += int64(len(p)) + 2
	p = bytes.TrimRight(p, " \t")
	p, _, _ = bytes.Cut(p, []byte(";")) // a chunk extension
	n, ok := parseChunkSize(p)
	if !ok {
		s.lineErr = fmt.Errorf("%w: %q", errChunkLine, Clip(string(line)))
		return false
	}
	s.excess = max(s.excess-16-2*int64(n), 0)
	if s.excess > 16<<10 {
		s.lineErr = fmt.Errorf("%w: too much framing for its data", errChunkLine)
		return false
	}
	s.raw(line)
	if n == 0 {
		s.state, s.budget = inTrailer, MaxHead
		return false
	}
	// A size past int64 never completes: the close then cuts the body, as
	// net/http's reader finds.
	s.state, s.left = inChunkData, int64(min(n, math.MaxInt64))
	return false
}

// parseChunkSize parses a chunk size as net/http does: hex digits alone, at
// most 16 of them.
func parseChunkSize(p []byte) (uint64, bool) {
	if len(p) == 0 || len(p) > 16 {
		return 0, false
	}
	var n uint64
	for _, c := range p {
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		n = n<<4 | uint64(d)
	}
	return n, true
}

// Closed tells the stream its sender closed the connection; it returns the
// error when a message was cut short, and ends a body that lasts until the
// close.
func (s *MsgStream) Closed() error {
	switch {
	case s.state == inUntilClose:
		s.end()
		return nil
	case s.state == inSocket:
		return nil
	case s.state == inHead && len(s.pending) == 0:
		return nil
	}
	return errUnexpectedClose
}

var errUnexpectedClose = errors.New("connection closed in the middle of a message")

func (s *MsgStream) raw(b []byte) {
	if s.OnRaw != nil && len(b) > 0 {
		s.OnRaw(b)
	}
}

func (s *MsgStream) data(b []byte) {
	if s.OnData != nil && len(b) > 0 {
		s.OnData(b)
	}
}

// end finishes a message: the next bytes begin a head.
func (s *MsgStream) end() bool {
	s.state, s.left = inHead, 0
	return s.OnEnd != nil && s.OnEnd()
}
