package wire

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http/httputil"
	"strconv"
	"strings"

	"github.com/thrive-loadtest/thrive/traces"
)

// The proxy speaks HTTP/1.1 itself rather than through net/http: it reads a
// head, forwards its fields byte for byte and in order (rewriting only Host,
// X-Forwarded-* and the hop-by-hop fields), and relays the body as it
// arrives. That keeps the trace exactly what the client sent, and it keeps
// the proxy's added latency to two reads and two writes per exchange.

// MaxHead bounds a request or response head: its first line and fields.
const MaxHead = 64 << 10

var ErrHeadTooLarge = errors.New("head larger than 64 KiB")

// ErrUnsupportedCoding refuses a request whose Transfer-Encoding lists a
// coding before chunked, which the proxy does not undo: a server answers it
// 501 (RFC 9112, 6.1), as nginx and Go's net/http do.
var ErrUnsupportedCoding = errors.New("unsupported Transfer-Encoding")

// Framing is how a message's body is delimited.
type Framing uint8

const (
	NoBody     Framing = iota
	ByLength           // Content-Length bytes
	Chunked            // Transfer-Encoding: chunked
	UntilClose         // a response that ends when the server closes
)

// Head is a parsed request or response head.
type Head struct {
	// Request: method, target and version. Response: version in Proto.
	Method, Target, Proto string
	Status                int    // response status
	Reason                string // response reason phrase
	Fields                []traces.Header
	Host                  string
	Length                int64 // Content-Length, or -1 when there is none
	Chunked               bool
	Close                 bool // the sender closes after this message
	Upgrade               bool // Connection: upgrade with Upgrade: websocket
	Expect                bool // Expect: 100-continue
	XFF                   string
	ConnTokens            []string // field names listed in Connection, lower-cased
	// Faulty marks a response whose framing is in doubt: a
	// Transfer-Encoding with a Content-Length, or in HTTP/1.0, or whose
	// final coding is not chunked. It is read by its Transfer-Encoding,
	// its Content-Length is not passed on, and Close is set: the
	// connection is not trusted past it (RFC 9112, 6.1 and 6.3). A request
	// so framed is refused.
	Faulty bool
}

// readLine reads one line of a head without its line ending, charging it
// to budget.
func readLine(br *bufio.Reader, budget *int) (string, error) {
	line, err := br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		long := append([]byte(nil), line...)
		for errors.Is(err, bufio.ErrBufferFull) && len(long) <= *budget {
			line, err = br.ReadSlice('\n')
			long = append(long, line...)
		}
		line = long
	}
	*budget -= len(line)
	if *budget < 0 {
		return "", ErrHeadTooLarge
	}
	if err != nil {
		if errors.Is(err, io.EOF) && len(line) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return "", err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return string(line), nil
}

// ReadHead reads a request head (request set) or a response head. When the
// whole head is in br's buffer, as it nearly always is, it becomes one
// string that the fields share.
func ReadHead(br *bufio.Reader, request bool) (*Head, error) {
	if n := br.Buffered(); n > 0 {
		buf, _ := br.Peek(n)
		if _, next := HeadEnd(buf); next >= 0 {
			h, err := ParseHeadBytes(buf[:next], request)
			_, _ = br.Discard(next)
			return h, err
		}
	}
	budget := MaxHead
	p := headParser{h: newHead(12), request: request}
	for {
		line, err := readLine(br, &budget)
		if errors.Is(err, io.EOF) && budget < MaxHead {
			err = io.ErrUnexpectedEOF // the head began, then the stream ended
		}
		if err != nil {
			return nil, err
		}
		if done, err := p.line(line); err != nil || done {
			return p.finish(err)
		}
	}
}

// HeadEnd finds the empty line that ends a head in buf: end is where the
// empty line starts, next where what follows it starts; -1 when buf holds
// no empty line.
func HeadEnd(buf []byte) (end, next int) {
	for i := 0; ; {
		j := bytes.IndexByte(buf[i:], '\n')
		if j < 0 {
			return -1, -1
		}
		i += j + 1
		switch {
		case i < len(buf) && buf[i] == '\n':
			return i, i + 1
		case i+1 < len(buf) && buf[i] == '\r' && buf[i+1] == '\n':
			return i, i + 2
		}
	}
}

// The rules that keep a message's framing unambiguous (RFC 9112, 11.2):
// a proxy that reads a request one way while the origin reads it another
// lets a client hide a second request in the first, which the origin
// serves and the proxy neither answers nor records. So the head parser
// refuses, as nginx and Go's net/http do, what parsers downstream read in
// different ways:
//
//   - a request with both Transfer-Encoding and Content-Length (6.3, 3:
//     the RFC lets a server read it by its Transfer-Encoding, but it is
//     what request smuggling is made of, and a 400 leaves no bytes of it to
//     be read as another request: nginx does so);
//   - a Content-Length that is not digits alone (a sign, spaces or commas
//     inside, a hex prefix, nothing), that overflows, or that differs from
//     another Content-Length field (6.3, 5);
//   - a Transfer-Encoding in an HTTP/1.0 request (6.1: its framing is
//     faulty; refused rather than read and closed after, since an origin
//     that speaks HTTP/1.0 would take the chunked body for the next
//     request), and any Transfer-Encoding of a request but chunked alone in
//     one field (6.3, 4: a final coding other than chunked leaves the length
//     unknown; codings before chunked would reach the origin undone);
//   - a field line that begins with whitespace (obs-fold, 5.2), a field
//     name that is not a token (whitespace before the colon, 5.1, or a
//     control character), a value with a control character other than
//     HTAB (NUL, a bare CR, DEL: RFC 9110, 5.5), a request line whose
//     method is not a token or whose target holds whitespace or a control
//     character (3), more than one Host field (3.2).
//
// An answer's framing is settled by Head.frame: its Transfer-Encoding
// wins over its Content-Length, and the connection is closed after it.

// newHead returns a head to parse, with room for fields.
func newHead(fields int) *Head {
	return &Head{Length: -1, Fields: make([]traces.Header, 0, fields)}
}

// headParser parses a head line by line, the first line first. It is a
// value with methods rather than a loop over an iterator, whose body, a
// closure, would cost an allocation for each variable it shares.
type headParser struct {
	h                *Head
	request          bool
	begun, keepAlive bool
	length, coding   string // the first Content-Length, the last Transfer-Encoding
	codings, hosts   int
}

// line parses the head's next line; done once it was the empty line that
// ends the head.
func (p *headParser) line(line string) (done bool, err error) {
	h := p.h
	if !p.begun {
		p.begun = true
		if p.request {
			var ok bool
			h.Method, h.Target, h.Proto, ok = splitRequestLine(line)
			if !ok {
				return false, fmt.Errorf("malformed request line %q", Clip(line))
			}
		} else if err := h.parseStatusLine(line); err != nil {
			return false, err
		}
		return false, nil
	}
	if line == "" {
		return true, nil
	}
	name, value, err := fieldLine(line)
	if err != nil {
		return false, err
	}
	h.Fields = append(h.Fields, traces.Header{Name: name, Value: value})
	switch {
	case strings.EqualFold(name, "Content-Length"):
		n, ok := parseLength(value)
		if !ok || (h.Length >= 0 && value != p.length) {
			return false, fmt.Errorf("bad Content-Length %q", Clip(value))
		}
		h.Length, p.length = n, value
	case strings.EqualFold(name, "Transfer-Encoding"):
		p.codings++
		p.coding = value
	case strings.EqualFold(name, "Connection"):
		for tok := range strings.SplitSeq(value, ",") {
			tok = strings.ToLower(strings.TrimSpace(tok))
			switch tok {
			case "close":
				h.Close = true
			case "keep-alive":
				p.keepAlive = true
			case "upgrade":
				h.Upgrade = true
			case "":
			default:
				h.ConnTokens = append(h.ConnTokens, tok)
			}
		}
	case strings.EqualFold(name, "Host"):
		h.Host = value
		p.hosts++
	case strings.EqualFold(name, "Expect"):
		h.Expect = strings.EqualFold(value, "100-continue")
	case strings.EqualFold(name, "X-Forwarded-For"):
		if h.XFF != "" {
			h.XFF += ", "
		}
		h.XFF += value
	}
	return false, nil
}

// finish settles what the head's fields say together, once its empty
// line was parsed (err nil) or a line was refused (err returned).
func (p *headParser) finish(err error) (*Head, error) {
	if err != nil {
		return nil, err
	}
	h := p.h
	if p.request && p.hosts > 1 {
		return nil, fmt.Errorf("%d Host fields, one expected", p.hosts)
	}
	if h.Upgrade {
		h.Upgrade = strings.EqualFold(FieldValue(h.Fields, "Upgrade"), "websocket")
	}
	if h.Proto == "HTTP/1.0" && !p.keepAlive {
		h.Close = true
	}
	if p.codings > 0 {
		if err := h.frame(p.request, p.codings, p.coding); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// frame settles the framing of a message with a Transfer-Encoding: n
// fields, the last of which says coding.
func (h *Head) frame(request bool, n int, coding string) error {
	h.Chunked = strings.EqualFold(finalCoding(coding), "chunked")
	if request {
		switch {
		case h.Proto == "HTTP/1.0":
			return errors.New("Transfer-Encoding in an HTTP/1.0 request")
		case h.Length >= 0:
			return errors.New("both Transfer-Encoding and Content-Length")
		case !h.Chunked:
			return fmt.Errorf("Transfer-Encoding %q: chunked is not the final coding", Clip(coding))
		case n > 1:
			return fmt.Errorf("%d Transfer-Encoding fields", n)
		case !strings.EqualFold(coding, "chunked"):
			return fmt.Errorf("%w %q (chunked alone is supported)", ErrUnsupportedCoding, Clip(coding))
		}
		return nil
	}
	// An answer: the Transfer-Encoding wins, and a body not chunked last
	// lasts until the close (6.3, 3 and 4).
	h.Faulty = h.Length >= 0 || h.Proto == "HTTP/1.0" || !h.Chunked
	h.Close = h.Close || h.Faulty
	h.Length = -1
	return nil
}

// finalCoding returns the last coding a Transfer-Encoding value lists.
func finalCoding(v string) string {
	for v != "" {
		i := strings.LastIndexByte(v, ',')
		if c := strings.Trim(v[i+1:], " \t"); c != "" || i < 0 {
			return c
		}
		v = v[:i]
	}
	return ""
}

// parseLength parses a Content-Length value: decimal digits alone (RFC
// 9112, 6.3), which strconv.ParseInt does not insist on (it takes a sign),
// and not past int64.
func parseLength(v string) (int64, bool) {
	var n int64
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < '0' || c > '9' || n > (math.MaxInt64-9)/10 {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, v != ""
}

// fieldLine splits a field line into its name and its value without the
// whitespace around it, and refuses obs-fold, a name that is not a token
// and a value with a control character other than HTAB.
func fieldLine(line string) (name, value string, err error) {
	if line[0] == ' ' || line[0] == '\t' {
		return "", "", fmt.Errorf("folded header line %q", Clip(line))
	}
	name, value, ok := strings.Cut(line, ":")
	if !ok || !isToken(name) {
		return "", "", fmt.Errorf("malformed header line %q", Clip(line))
	}
	value = strings.Trim(value, " \t")
	if i := controlChar(value); i >= 0 {
		return "", "", fmt.Errorf("control character %q in header %q", value[i], Clip(name))
	}
	return name, value, nil
}

// tokenLow and tokenHigh have bit c set for each byte c below 64, and c+64
// below 128, that a token may hold (RFC 9110, 5.6.2): letters, digits and
// !#$%&'*+-.^_`|~. Constants, so that the check is two shifts a byte.
const (
	tokenLow  uint64 = 0x03ff6cfa00000000
	tokenHigh uint64 = 0x57ffffffc7fffffe
)

// isToken reports whether s is a token.
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c < 64:
			if tokenLow>>c&1 == 0 {
				return false
			}
		case c < 128:
			if tokenHigh>>(c-64)&1 == 0 {
				return false
			}
		default:
			return false
		}
	}
	return s != ""
}

// controlChar returns the index of the first control character in s other
// than HTAB (DEL included), or -1. Bytes from 0x80 are obs-text, allowed.
func controlChar(s string) int {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return i
		}
	}
	return -1
}

func splitRequestLine(line string) (method, target, proto string, ok bool) {
	method, rest, ok1 := strings.Cut(line, " ")
	target, proto, ok2 := strings.Cut(rest, " ")
	ok = ok1 && ok2 && isToken(method) && target != "" && (proto == "HTTP/1.1" || proto == "HTTP/1.0") &&
		controlChar(target) < 0 && strings.IndexByte(target, '\t') < 0
	return method, target, proto, ok
}

func (h *Head) parseStatusLine(line string) error {
	proto, rest, _ := strings.Cut(line, " ")
	code, reason, _ := strings.Cut(rest, " ")
	n, err := strconv.Atoi(code)
	if !strings.HasPrefix(proto, "HTTP/1.") || err != nil || len(code) != 3 || n < 100 || controlChar(reason) >= 0 {
		return fmt.Errorf("malformed status line %q", Clip(line))
	}
	h.Proto, h.Status, h.Reason = proto, n, reason
	return nil
}

// Clip shortens what goes into an error message.
func Clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

func FieldValue(fs []traces.Header, name string) string {
	for _, f := range fs {
		if strings.EqualFold(f.Name, name) {
			return f.Value
		}
	}
	return ""
}

// RequestFraming returns how a request's body is delimited.
func (h *Head) RequestFraming() Framing {
	switch {
	case h.Chunked:
		return Chunked
	case h.Length > 0:
		return ByLength
	}
	return NoBody
}

// ResponseFraming returns how the body of a response to method is
// delimited.
func (h *Head) ResponseFraming(method string) Framing {
	switch {
	case method == "HEAD", h.Status < 200, h.Status == 204, h.Status == 304:
		return NoBody
	case h.Chunked:
		return Chunked
	case h.Length >= 0:
		return ByLength
	}
	return UntilClose
}

// HopByHop reports whether a field applies to one connection only and so is
// not forwarded; the proxy writes its own framing and Connection fields.
func (h *Head) HopByHop(name string) bool {
	switch len(name) {
	case 2:
		return strings.EqualFold(name, "TE")
	case 7:
		return strings.EqualFold(name, "Upgrade")
	case 10:
		return strings.EqualFold(name, "Connection") || strings.EqualFold(name, "Keep-Alive")
	case 14:
		// An answer's Content-Length that its Transfer-Encoding overrides
		// is not passed on (RFC 9112, 6.3); a request never has both.
		return h.Faulty && strings.EqualFold(name, "Content-Length")
	case 16:
		return strings.EqualFold(name, "Proxy-Connection")
	case 17:
		return strings.EqualFold(name, "Transfer-Encoding")
	}
	for _, t := range h.ConnTokens {
		if strings.EqualFold(name, t) {
			return true
		}
	}
	return false
}

// ClosingHead returns raw, the head of an answer whose framing is in doubt
// (Faulty), as a relay that passes heads on as they are passes it on:
// without its Content-Length, which its Transfer-Encoding overrides (RFC
// 9112, 6.3: an intermediary must remove it), and saying Connection: close
// in place of its own Connection fields, since the connection closes after
// it. The lines keep their line ends.
func ClosingHead(raw []byte) []byte {
	out := make([]byte, 0, len(raw)+len("Connection: close\r\n"))
	for first := true; len(raw) > 0; first = false {
		i := bytes.IndexByte(raw, '\n') + 1
		if i == 0 {
			i = len(raw)
		}
		line := raw[:i]
		raw = raw[i:]
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			out = append(out, "Connection: close\r\n"...)
			out = append(out, line...)
			break
		}
		name, _, _ := bytes.Cut(line, []byte(":"))
		if !first && (bytes.EqualFold(name, []byte("Content-Length")) || bytes.EqualFold(name, []byte("Connection"))) {
			continue
		}
		out = append(out, line...)
	}
	return out
}

// BodyResult says how relaying a body ended: a read error is the sender's,
// a write error the receiver's.
type BodyResult struct {
	ReadErr, WriteErr error
}

// RelayBody copies a body delimited by fr (with length n for byLength)
// from src to dst, showing each piece to tap. It flushes dst whenever src
// has nothing more buffered, so a stream reaches the receiver as it
// arrives and a small message goes out in one write. With rechunk it sends
// a chunked body chunked, trailers included; without, it sends the bytes
// alone (to an HTTP/1.0 client, which then sees the end by the close).
func RelayBody(dst *bufio.Writer, src *bufio.Reader, fr Framing, n int64, tap *Tap, buf []byte, rechunk bool) BodyResult {
	var r io.Reader = src
	var w io.Writer = dst
	var cw io.WriteCloser
	switch fr {
	case NoBody:
		return BodyResult{}
	case ByLength:
		r = io.LimitReader(src, n)
	case Chunked:
		r = httputil.NewChunkedReader(src)
		if rechunk {
			cw = httputil.NewChunkedWriter(dst)
			w = cw
		}
	}
	var res BodyResult
	for {
		m, err := r.Read(buf)
		if m > 0 {
			tap.Observe(buf[:m])
			if _, werr := w.Write(buf[:m]); werr != nil {
				res.WriteErr = werr
				return res
			}
			if src.Buffered() == 0 {
				if werr := dst.Flush(); werr != nil {
					res.WriteErr = werr
					return res
				}
			}
		}
		if err == nil {
			continue
		}
		if !errors.Is(err, io.EOF) {
			res.ReadErr = err
			return res
		}
		break
	}
	switch fr {
	case ByLength:
		if tap.size < n {
			res.ReadErr = io.ErrUnexpectedEOF
			return res
		}
	case Chunked:
		if res = relayTrailers(dst, src, cw); res.ReadErr != nil || res.WriteErr != nil {
			return res
		}
	}
	if err := dst.Flush(); err != nil {
		res.WriteErr = err
	}
	return res
}

// relayTrailers reads a chunked body's trailer section and, when cw is set,
// ends the chunked body on dst with the same trailers.
func relayTrailers(dst *bufio.Writer, src *bufio.Reader, cw io.WriteCloser) BodyResult {
	if cw != nil {
		if err := cw.Close(); err != nil {
			return BodyResult{WriteErr: err}
		}
	}
	budget := MaxHead
	for {
		line, err := readLine(src, &budget)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return BodyResult{ReadErr: err}
		}
		if line != "" {
			// A trailer field, held to a header field's rules: a line
			// nobody reads alike is not passed on.
			if _, _, err := fieldLine(line); err != nil {
				return BodyResult{ReadErr: fmt.Errorf("trailer: %w", err)}
			}
		}
		if cw != nil {
			_, _ = dst.WriteString(line)
			if _, err := dst.WriteString("\r\n"); err != nil {
				return BodyResult{WriteErr: err}
			}
		}
		if line == "" {
			return BodyResult{}
		}
	}
}
