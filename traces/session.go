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
	// Evidence says what tied the session's requests to one visitor, strongest
	// first, such as "cookie:csrftoken,sessionid connection value": see
	// Placement for the kinds. Empty in traces older than format version 3.
	Evidence string
	// Continues is true when the session began with an identity it did not
	// get in the session (a cookie or token an earlier visit of the same
	// client was given, or one given before the capture began): a replay
	// plays it with the state of the virtual user's earlier session rather
	// than a fresh browser.
	Continues bool
	// Strays is true for a session of sub-resources (a favicon, fonts,
	// images) that nothing tied to any visit: kept so that they are counted,
	// never a profile of their own and never replayed.
	Strays bool
	// Partial is set by a Reader on a session written in parts (see
	// Writer.WritePart) of which the file holds only some: its writer
	// stopped before the last part (a killed capture), a rotation put the
	// others in another file, or a damaged block took one. It is not
	// written.
	Partial bool
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

	// Placed says which evidence put the exchange in its session.
	Placed Placement
}

// Placement is the evidence that put an exchange in its session, strongest
// first. The weak ones (PlacedWindow, PlacedNearest) are the guesses a user
// may want to check before replaying: traces inspect lists them.
type Placement uint8

// Placements. The zero value is PlacedKey, so that exchanges of traces older
// than format version 3 read as placed by their session's key.
const (
	// PlacedKey: the request carried the session's identity (a session
	// cookie, a cookie value the server gave the visit, a credential).
	PlacedKey Placement = iota
	// PlacedConnection: it came on a client connection that carried the
	// visit's identity (a browser never shares a connection between users).
	PlacedConnection
	// PlacedValue: it sent back a value only this visit's answers gave (a
	// ticket, a form token, a redirect's URL, a page it was referred by).
	PlacedValue
	// PlacedLogin: it had no identity of its own and came on the login's
	// connection or with its answer, before the client had what it gave.
	PlacedLogin
	// PlacedWindow: nothing tied it; it began while the visit was logging
	// in (a weak rule: a time window).
	PlacedWindow
	// PlacedNearest: a sub-resource nothing tied, given to the visit from
	// its address that was nearest in time (a weak rule).
	PlacedNearest
	// PlacedAnonymous: the session is a client's address and User-Agent;
	// nothing tells its requests apart.
	PlacedAnonymous
)

// String names the placement: "key", "connection", "value", "login",
// "window", "nearest" or "anonymous".
func (p Placement) String() string {
	switch p {
	case PlacedKey:
		return "key"
	case PlacedConnection:
		return "connection"
	case PlacedValue:
		return "value"
	case PlacedLogin:
		return "login"
	case PlacedWindow:
		return "window"
	case PlacedNearest:
		return "nearest"
	case PlacedAnonymous:
		return "anonymous"
	}
	return strconv.Itoa(int(p))
}

// Weak reports a placement made by time alone, not by anything the
// requests carried.
func (p Placement) Weak() bool { return p == PlacedWindow || p == PlacedNearest }

// MarshalText encodes the placement as String does.
func (p Placement) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText decodes a name written by MarshalText.
func (p *Placement) UnmarshalText(b []byte) error {
	for c := PlacedKey; c <= PlacedAnonymous; c++ {
		if c.String() == string(b) {
			*p = c
			return nil
		}
	}
	return fmt.Errorf("placement %q: not one of key, connection, value, login, window, nearest, anonymous", b)
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
	// Open is set on a socket still open when its part of the session was
	// written (see Writer.WritePart): its frames go on in a later part, and
	// a Reader joins them. On a session a Reader returns it is set only when
	// the later parts are not in the file (Session.Partial).
	Open bool
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
