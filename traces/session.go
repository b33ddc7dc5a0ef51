package traces

import (
	"crypto/sha256"
	"fmt"
	"strconv"
	"time"
)

// Session is one client's visit as it was recorded: who it was, which profile
// its traffic belongs to, and what it did, in order.
//
// A Session filled by Reader.Next shares memory with the block it was decoded
// from: its strings and byte slices point into that block and stay valid for
// as long as the Session is reachable. They must not be modified.
type Session struct {
	// ID names the session uniquely within a trace.
	ID string
	// Profile is the user profile the session was labelled with, such as
	// "browse", "chat" or "import".
	Profile string
	// Client is the key the session was grouped by: a session cookie, a
	// credential, or client address and User-Agent, usually redacted.
	Client string
	// Start is the wall-clock time of the session's first request.
	Start time.Time
	// Exchanges are the HTTP exchanges in the order they started. An exchange
	// that upgraded to a WebSocket carries the connection's frames.
	Exchanges []Exchange
}

// Exchange is one HTTP request and its response.
type Exchange struct {
	// Offset is when the request started, from the session's Start.
	Offset time.Duration
	// Think is the gap between the end of the previous exchange of the
	// session and the start of this one; zero for the first, and zero when
	// the two overlapped.
	Think time.Duration
	// TTFB is the time from the start of the request to the first byte of
	// the response.
	TTFB time.Duration
	// Duration is the time from the start of the request to the last byte of
	// the response.
	Duration time.Duration

	// Method is the request method, such as "GET".
	Method string
	// URL is the request target as the client sent it: a path with query for
	// origin-form requests, or an absolute URL.
	URL string
	// Host is the Host header the client sent.
	Host string
	// ReqHeader holds the request headers in the order they were sent.
	ReqHeader []Header
	// ReqBody is the request body.
	ReqBody Body

	// Status is the response status code; 0 when no response came.
	Status int
	// RespHeader holds the response headers in the order they were received.
	RespHeader []Header
	// RespBody is the response body.
	RespBody Body
	// Error says why the exchange failed at the transport level (the
	// backend was down or reset the connection); empty when it did not.
	Error string

	// WebSocket is non-nil when the exchange upgraded the connection to a
	// WebSocket; it then holds the connection's frames and close.
	WebSocket *WebSocket
}

// Header is one header field. Names keep the case they were recorded with.
type Header struct {
	Name  string
	Value string
}

// Body is a request, response or frame payload. Bodies larger than the cap
// a recorder applies keep only their first bytes, with the full size and a
// hash of the whole.
type Body struct {
	// Data is the recorded bytes: the whole body, or its first bytes when
	// Truncated reports true.
	Data []byte
	// Size is the body's full size in bytes. A Size of 0 with Data
	// non-empty means len(Data), so a literal Body{Data: b} is whole.
	Size int64
	// SHA256 is the hash of the whole body when it was truncated; zero
	// otherwise.
	SHA256 [sha256.Size]byte
}

// Len returns the body's full size in bytes.
func (b *Body) Len() int64 {
	if b.Size == 0 {
		return int64(len(b.Data))
	}
	return b.Size
}

// Truncated reports whether Data holds only the first bytes of the body.
func (b *Body) Truncated() bool { return b.Len() > int64(len(b.Data)) }

// CapBody returns a Body for data that keeps at most limit bytes of it. A
// longer body keeps its first limit bytes, its size and its SHA-256. A
// negative limit keeps everything. The result aliases data.
func CapBody(data []byte, limit int) Body {
	if limit < 0 || len(data) <= limit {
		return Body{Data: data}
	}
	return Body{Data: data[:limit], Size: int64(len(data)), SHA256: sha256.Sum256(data)}
}

// WebSocket is a WebSocket connection opened by an upgrade exchange.
type WebSocket struct {
	// Frames are the data and control frames in the order they crossed the
	// proxy, in both directions.
	Frames []Frame
	// Close says how the connection ended.
	Close Close
}

// Opcode is a WebSocket frame opcode (RFC 6455, section 5.2).
type Opcode uint8

// WebSocket opcodes.
const (
	OpContinuation Opcode = 0x0
	OpText         Opcode = 0x1
	OpBinary       Opcode = 0x2
	OpClose        Opcode = 0x8
	OpPing         Opcode = 0x9
	OpPong         Opcode = 0xA
)

// String returns the opcode's name, such as "text", or its number.
func (o Opcode) String() string {
	switch o {
	case OpContinuation:
		return "continuation"
	case OpText:
		return "text"
	case OpBinary:
		return "binary"
	case OpClose:
		return "close"
	case OpPing:
		return "ping"
	case OpPong:
		return "pong"
	}
	return strconv.Itoa(int(o))
}

// MarshalText encodes the opcode as String does.
func (o Opcode) MarshalText() ([]byte, error) { return []byte(o.String()), nil }

// UnmarshalText decodes a name or number written by MarshalText.
func (o *Opcode) UnmarshalText(b []byte) error {
	for _, c := range []Opcode{OpContinuation, OpText, OpBinary, OpClose, OpPing, OpPong} {
		if c.String() == string(b) {
			*o = c
			return nil
		}
	}
	v, err := strconv.ParseUint(string(b), 10, 7)
	if err != nil {
		return fmt.Errorf("opcode %q: not a name or a number below 128", b)
	}
	*o = Opcode(v)
	return nil
}

// Frame is one WebSocket message or control frame.
type Frame struct {
	// Offset is when the frame was seen, from the session's Start.
	Offset time.Duration
	// FromClient is true for frames the client sent, false for the server's.
	FromClient bool
	// Opcode is the frame's opcode.
	Opcode Opcode
	// Payload is the frame's (possibly truncated) payload.
	Payload Body
}

// Close describes the end of a WebSocket connection.
type Close struct {
	// Offset is when the connection ended, from the session's Start.
	Offset time.Duration
	// Code is the close status code; 0 when the connection ended without a
	// close frame.
	Code int
	// Reason is the close frame's reason text.
	Reason string
	// ByClient is true when the client closed first.
	ByClient bool
}

// End returns the offset, from the session's Start, of the last thing the
// session did: the end of its last exchange or the close of its last
// WebSocket, whichever is later.
func (s *Session) End() time.Duration {
	var end time.Duration
	for i := range s.Exchanges {
		ex := &s.Exchanges[i]
		end = max(end, ex.Offset+ex.Duration)
		if ws := ex.WebSocket; ws != nil {
			end = max(end, ws.Close.Offset)
			if n := len(ws.Frames); n > 0 {
				end = max(end, ws.Frames[n-1].Offset)
			}
		}
	}
	return end
}
