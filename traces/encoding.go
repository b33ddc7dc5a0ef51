package traces

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
	"unsafe"
)

// The session encoding inside a block, field by field in this order (see the
// package doc for why):
//
//	session:  str ID, str Profile, str Client, varint Start (Unix ns),
//	          [v3: str Evidence, byte flags (1 Continues, 2 Strays, v4: 4 Part, 8 More)],
//	          [v4, Part: uvarint part number, from 1], uvarint n, n × exchange
//	exchange: varint Offset, Think, TTFB, Duration (ns); str Method, URL, Host;
//	          headers ReqHeader; body ReqBody; uvarint Status; headers RespHeader;
//	          body RespBody; str Error; byte hasWebSocket [, websocket]
//	          [v3: byte Placed, v4: | 0x80 when the WebSocket is Open]
//	headers:  uvarint n, n × (str Name, str Value)
//	body:     bytes Data, uvarint Size [, 32-byte SHA256 when Size > len(Data)]
//	websocket: uvarint n, n × frame; varint Close.Offset, uvarint Code, str Reason, byte ByClient
//	frame:    varint Offset, byte (Opcode<<1 | FromClient), body Payload
//	str, bytes: uvarint length, then the bytes

var errShort = errors.New("field runs past the end of the block")

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func appendBytes(dst, b []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

func appendHeaders(dst []byte, hs []Header) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(hs)))
	for _, h := range hs {
		dst = appendString(dst, h.Name)
		dst = appendString(dst, h.Value)
	}
	return dst
}

func appendBody(dst []byte, b *Body) []byte {
	dst = appendBytes(dst, b.Data)
	dst = binary.AppendUvarint(dst, uint64(b.Size))
	if b.Size > int64(len(b.Data)) {
		dst = append(dst, b.SHA256[:]...)
	}
	return dst
}

func appendBool(dst []byte, v bool) []byte {
	if v {
		return append(dst, 1)
	}
	return append(dst, 0)
}

// checkSession reports the first value in s that the encoding cannot carry.
func checkSession(s *Session) error {
	check := func(what string, b *Body) error {
		if b.Size < 0 || (b.Size != 0 && b.Size < int64(len(b.Data))) {
			return fmt.Errorf("session %q: %s: size %d is smaller than its %d recorded bytes", s.ID, what, b.Size, len(b.Data))
		}
		return nil
	}
	for i := range s.Exchanges {
		ex := &s.Exchanges[i]
		if ex.Placed > PlacedAnonymous {
			return fmt.Errorf("session %q: exchange %d: placement %d out of range", s.ID, i, ex.Placed)
		}
		if ex.Status < 0 {
			return fmt.Errorf("session %q: exchange %d: negative status %d", s.ID, i, ex.Status)
		}
		if err := check(fmt.Sprintf("exchange %d request body", i), &ex.ReqBody); err != nil {
			return err
		}
		if err := check(fmt.Sprintf("exchange %d response body", i), &ex.RespBody); err != nil {
			return err
		}
		if ws := ex.WebSocket; ws != nil {
			if ws.Close.Code < 0 {
				return fmt.Errorf("session %q: exchange %d: negative close code %d", s.ID, i, ws.Close.Code)
			}
			for j := range ws.Frames {
				if ws.Frames[j].Opcode > 0x7f {
					return fmt.Errorf("session %q: exchange %d frame %d: opcode %d out of range", s.ID, i, j, ws.Frames[j].Opcode)
				}
				if err := check(fmt.Sprintf("exchange %d frame %d payload", i, j), &ws.Frames[j].Payload); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// part says where a record stands in a session written in parts: its
// number from 1 (0: the session whole, in one record) and whether more
// parts follow.
type part struct {
	n    uint64
	more bool
}

// Session flags (format version 3 on; Part and More from version 4).
const (
	flagContinues = 1 << iota
	flagStrays
	flagPart
	flagMore
)

// appendSession appends the encoding of s, as the record p says, to dst. s
// must have passed checkSession.
func appendSession(dst []byte, s *Session, p part) []byte {
	dst = appendSessionHead(dst, s, p, len(s.Exchanges))
	for i := range s.Exchanges {
		dst = appendExchange(dst, &s.Exchanges[i])
	}
	return dst
}

// appendSessionHead appends the fields of s before its exchanges, for a
// record of n of them.
func appendSessionHead(dst []byte, s *Session, p part, n int) []byte {
	dst = appendString(dst, s.ID)
	dst = appendString(dst, s.Profile)
	dst = appendString(dst, s.Client)
	var start int64
	if !s.Start.IsZero() {
		start = s.Start.UnixNano()
	}
	dst = binary.AppendVarint(dst, start)
	dst = appendString(dst, s.Evidence)
	var flags byte
	if s.Continues {
		flags |= flagContinues
	}
	if s.Strays {
		flags |= flagStrays
	}
	if p.n > 0 {
		flags |= flagPart
		if p.more {
			flags |= flagMore
		}
	}
	dst = append(dst, flags)
	if p.n > 0 {
		dst = binary.AppendUvarint(dst, p.n)
	}
	return binary.AppendUvarint(dst, uint64(n))
}

func appendExchange(dst []byte, ex *Exchange) []byte {
	dst = binary.AppendVarint(dst, int64(ex.Offset))
	dst = binary.AppendVarint(dst, int64(ex.Think))
	dst = binary.AppendVarint(dst, int64(ex.TTFB))
	dst = binary.AppendVarint(dst, int64(ex.Duration))
	dst = appendString(dst, ex.Method)
	dst = appendString(dst, ex.URL)
	dst = appendString(dst, ex.Host)
	dst = appendHeaders(dst, ex.ReqHeader)
	dst = appendBody(dst, &ex.ReqBody)
	dst = binary.AppendUvarint(dst, uint64(ex.Status))
	dst = appendHeaders(dst, ex.RespHeader)
	dst = appendBody(dst, &ex.RespBody)
	dst = appendString(dst, ex.Error)
	ws := ex.WebSocket
	dst = appendBool(dst, ws != nil)
	if ws == nil {
		return append(dst, byte(ex.Placed))
	}
	dst = binary.AppendUvarint(dst, uint64(len(ws.Frames)))
	for j := range ws.Frames {
		f := &ws.Frames[j]
		dst = binary.AppendVarint(dst, int64(f.Offset))
		b := byte(f.Opcode) << 1
		if f.FromClient {
			b |= 1
		}
		dst = append(dst, b)
		dst = appendBody(dst, &f.Payload)
	}
	dst = binary.AppendVarint(dst, int64(ws.Close.Offset))
	dst = binary.AppendUvarint(dst, uint64(ws.Close.Code))
	dst = appendString(dst, ws.Close.Reason)
	dst = appendBool(dst, ws.Close.ByClient)
	placed := byte(ex.Placed)
	if ws.Open {
		placed |= openSocket
	}
	return append(dst, placed)
}

// openSocket marks, in an exchange's placement byte (version 4 on), a
// WebSocket whose frames go on in a later part.
const openSocket = 0x80

// decoder reads sessions out of one decompressed block. Strings and slices it
// returns alias buf, which is never written again once decoded: that is what
// makes unsafe.String sound here.
type decoder struct {
	buf []byte
	pos int
	err error
	// version is the file's format version: fields added since are
	// left zero for older files.
	version int
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = errShort
	}
	d.pos = len(d.buf)
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.buf[d.pos:])
	if n <= 0 {
		d.fail()
		return 0
	}
	d.pos += n
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.buf[d.pos:])
	if n <= 0 {
		d.fail()
		return 0
	}
	d.pos += n
	return v
}

// count reads a length or element count that must fit in what is left of the
// block, given that each element takes at least min bytes.
func (d *decoder) count(min int) int {
	v := d.uvarint()
	if v > uint64(len(d.buf)-d.pos)/uint64(min) {
		d.fail()
		return 0
	}
	return int(v)
}

func (d *decoder) bytes() []byte {
	n := d.count(1)
	if n == 0 {
		return nil
	}
	b := d.buf[d.pos : d.pos+n : d.pos+n]
	d.pos += n
	return b
}

func (d *decoder) string() string {
	b := d.bytes()
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

func (d *decoder) byte() byte {
	if d.pos >= len(d.buf) {
		d.fail()
		return 0
	}
	b := d.buf[d.pos]
	d.pos++
	return b
}

func (d *decoder) bool() bool {
	switch d.byte() {
	case 0:
		return false
	case 1:
		return true
	}
	d.err = errors.New("bad boolean")
	d.pos = len(d.buf)
	return false
}

func (d *decoder) headers(hs []Header) []Header {
	n := d.count(2)
	hs = hs[:0]
	if cap(hs) < n {
		hs = make([]Header, 0, n)
	}
	for range n {
		hs = append(hs, Header{Name: d.string(), Value: d.string()})
	}
	if n == 0 {
		return nil
	}
	return hs
}

func (d *decoder) body(b *Body) {
	b.Data = d.bytes()
	size := d.uvarint()
	if size > 1<<62 {
		d.fail()
		return
	}
	b.Size = int64(size)
	if b.Size > int64(len(b.Data)) {
		if len(d.buf)-d.pos < len(b.SHA256) {
			d.fail()
			return
		}
		copy(b.SHA256[:], d.buf[d.pos:])
		d.pos += len(b.SHA256)
	} else {
		b.SHA256 = [32]byte{}
	}
}

// session decodes the next session into s, reusing the memory of its
// slices, and says which part of it the record holds.
func (d *decoder) session(s *Session) (part, error) {
	var p part
	s.ID = d.string()
	s.Profile = d.string()
	s.Client = d.string()
	if ns := d.varint(); ns != 0 {
		s.Start = time.Unix(0, ns).UTC()
	} else {
		s.Start = time.Time{}
	}
	s.Evidence, s.Continues, s.Strays, s.Partial = "", false, false, false
	if d.version >= 3 {
		s.Evidence = d.string()
		flags := d.byte()
		valid := byte(flagContinues | flagStrays)
		if d.version >= 4 {
			valid |= flagPart | flagMore
		}
		if flags&^valid != 0 || flags&flagMore != 0 && flags&flagPart == 0 {
			d.err = errors.New("bad session flags")
			d.pos = len(d.buf)
		}
		s.Continues, s.Strays = flags&flagContinues != 0, flags&flagStrays != 0
		if flags&flagPart != 0 {
			p = part{n: d.uvarint(), more: flags&flagMore != 0}
			if p.n == 0 && d.err == nil {
				d.err = errors.New("part number 0")
				d.pos = len(d.buf)
			}
		}
	}
	// An exchange takes at least 16 bytes: enough to refuse absurd counts
	// before allocating for them.
	n := d.count(16)
	if cap(s.Exchanges) < n {
		s.Exchanges = make([]Exchange, n)
	}
	s.Exchanges = s.Exchanges[:n]
	for i := range s.Exchanges {
		d.exchange(&s.Exchanges[i])
	}
	if n == 0 {
		s.Exchanges = nil
	}
	return p, d.err
}

func (d *decoder) exchange(ex *Exchange) {
	ex.Offset = time.Duration(d.varint())
	ex.Think = time.Duration(d.varint())
	ex.TTFB = time.Duration(d.varint())
	ex.Duration = time.Duration(d.varint())
	ex.Method = d.string()
	ex.URL = d.string()
	ex.Host = d.string()
	ex.ReqHeader = d.headers(ex.ReqHeader)
	d.body(&ex.ReqBody)
	status := d.uvarint()
	if status > 1<<31 {
		d.fail()
	}
	ex.Status = int(status)
	ex.RespHeader = d.headers(ex.RespHeader)
	d.body(&ex.RespBody)
	ex.Error = d.string()
	if !d.bool() {
		ex.WebSocket = nil
		d.placed(ex)
		return
	}
	ws := ex.WebSocket
	if ws == nil {
		ws = new(WebSocket)
		ex.WebSocket = ws
	}
	n := d.count(4)
	if cap(ws.Frames) < n {
		ws.Frames = make([]Frame, n)
	}
	ws.Frames = ws.Frames[:n]
	for i := range ws.Frames {
		f := &ws.Frames[i]
		f.Offset = time.Duration(d.varint())
		b := d.byte()
		f.FromClient = b&1 == 1
		f.Opcode = Opcode(b >> 1)
		d.body(&f.Payload)
	}
	if n == 0 {
		ws.Frames = nil
	}
	ws.Close.Offset = time.Duration(d.varint())
	code := d.uvarint()
	if code > 1<<31 {
		d.fail()
	}
	ws.Close.Code = int(code)
	ws.Close.Reason = d.string()
	ws.Close.ByClient = d.bool()
	ws.Open = false
	d.placed(ex)
}

// placed reads an exchange's placement (version 3 on).
func (d *decoder) placed(ex *Exchange) {
	ex.Placed = PlacedKey
	if d.version < 3 {
		return
	}
	b := d.byte()
	if d.version >= 4 && ex.WebSocket != nil {
		ex.WebSocket.Open = b&openSocket != 0
		b &^= openSocket
	}
	p := Placement(b)
	if p > PlacedAnonymous {
		d.err = errors.New("bad placement")
		d.pos = len(d.buf)
		return
	}
	ex.Placed = p
}
