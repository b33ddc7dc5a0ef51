package wire

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"sync"
	"time"

	"github.com/thrive-loadtest/thrive/traces"
)

// Socket is the record of one WebSocket connection: the frames both
// directions' parsers found, and how it closed. Its methods are safe for
// concurrent use by the two parsers and the goroutine that completes the
// exchange.
type Socket struct {
	mu     sync.Mutex
	frames []TimedFrame
	close  *TimedClose
	errs   []string
	sealed bool  // the exchange is complete: later frames are not recorded
	bytes  int64 // payload bytes of frames
}

type TimedFrame struct {
	At    time.Time
	Frame traces.Frame
}

type TimedClose struct {
	At       time.Time
	Code     int
	Reason   string
	ByClient bool
}

func (s *Socket) addFrame(at time.Time, f traces.Frame) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.sealed {
		s.frames = append(s.frames, TimedFrame{at, f})
		s.bytes += int64(len(f.Payload.Data))
	}
}

func (s *Socket) addClose(c TimedClose) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.sealed && s.close == nil {
		s.close = &c
	}
}

func (s *Socket) addError(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.sealed {
		s.errs = append(s.errs, err.Error())
	}
}

// Drain returns the frames recorded since the last Drain and forgets them,
// going on recording: a socket open for hours is written in parts, not
// held whole.
func (s *Socket) Drain() []TimedFrame {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.frames
	s.frames, s.bytes = nil, 0
	return f
}

// Held returns the number of frames recorded since the last Drain and the
// bytes of their payloads.
func (s *Socket) Held() (frames int, bytes int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.frames), s.bytes
}

// Seal stops recording and returns what was recorded.
func (s *Socket) Seal() ([]TimedFrame, *TimedClose, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sealed = true
	return s.frames, s.close, s.errs
}

// FrameParser reads one direction of a WebSocket connection (RFC 6455,
// section 5) from the bytes the proxy relays, and records each message:
// fragments are joined, control frames recorded as they come. It never
// changes or holds up the bytes; on a protocol error it stops recording and
// says why. One goroutine feeds it.
type FrameParser struct {
	Sock       *Socket
	FromClient bool
	Limit      int
	Now        func() time.Time

	head    [14]byte
	headN   int
	headLen int // 0 until the second header byte is known

	op        byte // opcode of the frame being read
	fin       bool
	masked    bool
	mask      [4]byte
	maskPos   int
	remaining uint64 // payload bytes of the frame still to come
	frameAt   time.Time

	// The message being assembled: data frames and their continuations.
	msgOp   byte
	msgAt   time.Time
	msg     []byte
	msgSize int64
	msgSum  hash.Hash

	ctrl []byte // payload of the control frame being read

	failed bool
}

var errFrame = errors.New("websocket frame")

func (p *FrameParser) fail(format string, args ...any) {
	p.failed = true
	side := "server"
	if p.FromClient {
		side = "client"
	}
	p.Sock.addError(fmt.Errorf("%w from %s: %s; frames after it are not recorded", errFrame, side, fmt.Sprintf(format, args...)))
}

// Feed parses b, the next bytes of the stream.
func (p *FrameParser) Feed(b []byte) {
	for len(b) > 0 && !p.failed {
		if p.headLen == 0 || p.headN < p.headLen {
			b = p.header(b)
			continue
		}
		n := int(min(uint64(len(b)), p.remaining))
		p.payload(b[:n])
		b = b[n:]
		p.remaining -= uint64(n)
		if p.remaining == 0 {
			p.endFrame()
		}
	}
}

// header consumes header bytes from b and returns the rest.
func (p *FrameParser) header(b []byte) []byte {
	if p.headN == 0 {
		p.frameAt = p.Now()
	}
	for len(b) > 0 && (p.headLen == 0 || p.headN < p.headLen) {
		p.head[p.headN] = b[0]
		p.headN++
		b = b[1:]
		if p.headN == 2 {
			p.headLen = 2
			switch p.head[1] & 0x7f {
			case 126:
				p.headLen += 2
			case 127:
				p.headLen += 8
			}
			if p.head[1]&0x80 != 0 {
				p.headLen += 4
			}
		}
	}
	if p.headLen == 0 || p.headN < p.headLen {
		return b
	}
	h := p.head[:p.headLen]
	p.fin = h[0]&0x80 != 0
	p.op = h[0] & 0x0f
	p.masked = h[1]&0x80 != 0
	ext := h[2:]
	switch n := h[1] & 0x7f; n {
	case 126:
		p.remaining = uint64(binary.BigEndian.Uint16(ext))
		ext = ext[2:]
	case 127:
		p.remaining = binary.BigEndian.Uint64(ext)
		ext = ext[8:]
		if p.remaining>>63 != 0 {
			p.fail("payload length %d has its top bit set", p.remaining)
			return nil
		}
	default:
		p.remaining = uint64(n)
	}
	if p.masked {
		copy(p.mask[:], ext)
	}
	p.maskPos = 0
	if h[0]&0x70 != 0 {
		p.fail("reserved bits %#x set (a compression extension?)", h[0]&0x70)
		return nil
	}
	switch {
	case p.op >= 0x8:
		if !p.fin || p.remaining > 125 {
			p.fail("control frame %d fragmented or longer than 125 bytes", p.op)
			return nil
		}
		p.ctrl = p.ctrl[:0]
	case p.op == 0:
		if p.msgAt.IsZero() {
			p.fail("continuation frame without a message to continue")
			return nil
		}
	default:
		if !p.msgAt.IsZero() {
			p.fail("new message before the last one ended")
			return nil
		}
		p.msgOp, p.msgAt, p.msg, p.msgSize, p.msgSum = p.op, p.frameAt, nil, 0, nil
	}
	if p.remaining == 0 {
		p.endFrame()
	}
	return b
}

// payload takes the frame's next payload bytes, unmasking a copy of them.
func (p *FrameParser) payload(b []byte) {
	if p.op >= 0x8 {
		start := len(p.ctrl)
		p.ctrl = append(p.ctrl, b...)
		p.unmask(p.ctrl[start:])
		return
	}
	keep := min(len(b), max(p.Limit-len(p.msg), 0))
	start := len(p.msg)
	p.msg = append(p.msg, b[:keep]...)
	p.unmask(p.msg[start:])
	p.msgSize += int64(len(b))
	if keep < len(b) {
		// Past the cap: hash the rest, unmasked, a chunk at a time.
		if p.msgSum == nil {
			p.msgSum = sha256.New()
			p.msgSum.Write(p.msg)
		}
		var buf [512]byte
		for rest := b[keep:]; len(rest) > 0; {
			n := copy(buf[:], rest)
			p.unmask(buf[:n])
			p.msgSum.Write(buf[:n])
			rest = rest[n:]
		}
	}
}

func (p *FrameParser) unmask(b []byte) {
	if !p.masked {
		return
	}
	for i := range b {
		b[i] ^= p.mask[p.maskPos&3]
		p.maskPos++
	}
}

func (p *FrameParser) endFrame() {
	p.headN, p.headLen = 0, 0
	if p.op >= 0x8 {
		payload := append([]byte(nil), p.ctrl...)
		if traces.Opcode(p.op) == traces.OpClose {
			c := TimedClose{At: p.frameAt, ByClient: p.FromClient}
			if len(payload) >= 2 {
				c.Code = int(binary.BigEndian.Uint16(payload))
				c.Reason = string(payload[2:])
			}
			p.Sock.addClose(c)
			return // the close is the connection's Close, not one of its frames
		}
		p.Sock.addFrame(p.frameAt, traces.Frame{FromClient: p.FromClient, Opcode: traces.Opcode(p.op), Payload: traces.Body{Data: payload}})
		return
	}
	if !p.fin {
		return
	}
	body := traces.Body{Data: p.msg}
	if p.msgSum != nil {
		body.Size = p.msgSize
		copy(body.SHA256[:], p.msgSum.Sum(nil))
	}
	p.Sock.addFrame(p.msgAt, traces.Frame{FromClient: p.FromClient, Opcode: traces.Opcode(p.msgOp), Payload: body})
	p.msgAt, p.msg, p.msgSum = time.Time{}, nil, nil
}

// RecordedSocket returns a socket that holds frames and close, as a
// source other than the relays recorded them (a file of packets, a HAR):
// nothing more is recorded on it.
func RecordedSocket(frames []TimedFrame, close *TimedClose) *Socket {
	s := &Socket{frames: frames, close: close, sealed: true}
	for _, f := range frames {
		s.bytes += int64(len(f.Frame.Payload.Data))
	}
	return s
}
