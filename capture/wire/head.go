package wire

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"iter"
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
	lines := func(yield func(string, error) bool) {
		for {
			line, err := readLine(br, &budget)
			if errors.Is(err, io.EOF) && budget < MaxHead {
				err = io.ErrUnexpectedEOF // the head began, then the stream ended
			}
			if !yield(line, err) || err != nil {
				return
			}
		}
	}
	return parseHead(lines, request)
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

// parseHead parses a head from its lines, the first line first and the
// empty line that ends it last.
func parseHead(lines iter.Seq2[string, error], request bool) (*Head, error) {
	h := &Head{Length: -1, Fields: make([]traces.Header, 0, 12)}
	keepAlive := false
	first := true
	for line, err := range lines {
		if err != nil {
			return nil, err
		}
		if first {
			first = false
			if request {
				var ok bool
				h.Method, h.Target, h.Proto, ok = splitRequestLine(line)
				if !ok {
					return nil, fmt.Errorf("malformed request line %q", Clip(line))
				}
			} else if err := h.parseStatusLine(line); err != nil {
				return nil, err
			}
			continue
		}
		if line == "" {
			break
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok || name == "" || strings.ContainsAny(name, " \t") {
			return nil, fmt.Errorf("malformed header line %q", Clip(line))
		}
		value = strings.Trim(value, " \t")
		h.Fields = append(h.Fields, traces.Header{Name: name, Value: value})
		switch {
		case strings.EqualFold(name, "Content-Length"):
			n, err := strconv.ParseInt(value, 10, 64)
			if err != nil || n < 0 || (h.Length >= 0 && n != h.Length) {
				return nil, fmt.Errorf("bad Content-Length %q", Clip(value))
			}
			h.Length = n
		case strings.EqualFold(name, "Transfer-Encoding"):
			codings := strings.Split(value, ",")
			h.Chunked = strings.EqualFold(strings.TrimSpace(codings[len(codings)-1]), "chunked")
			if request && !h.Chunked {
				return nil, fmt.Errorf("unsupported Transfer-Encoding %q", Clip(value))
			}
		case strings.EqualFold(name, "Connection"):
			for tok := range strings.SplitSeq(value, ",") {
				tok = strings.ToLower(strings.TrimSpace(tok))
				switch tok {
				case "close":
					h.Close = true
				case "keep-alive":
					keepAlive = true
				case "upgrade":
					h.Upgrade = true
				case "":
				default:
					h.ConnTokens = append(h.ConnTokens, tok)
				}
			}
		case strings.EqualFold(name, "Host"):
			h.Host = value
		case strings.EqualFold(name, "Expect"):
			h.Expect = strings.EqualFold(value, "100-continue")
		case strings.EqualFold(name, "X-Forwarded-For"):
			if h.XFF != "" {
				h.XFF += ", "
			}
			h.XFF += value
		}
	}
	if h.Upgrade {
		h.Upgrade = strings.EqualFold(FieldValue(h.Fields, "Upgrade"), "websocket")
	}
	if h.Chunked {
		h.Length = -1
	}
	if h.Proto == "HTTP/1.0" && !keepAlive {
		h.Close = true
	}
	return h, nil
}

func splitRequestLine(line string) (method, target, proto string, ok bool) {
	method, rest, ok1 := strings.Cut(line, " ")
	target, proto, ok2 := strings.Cut(rest, " ")
	ok = ok1 && ok2 && method != "" && target != "" && (proto == "HTTP/1.1" || proto == "HTTP/1.0")
	return method, target, proto, ok
}

func (h *Head) parseStatusLine(line string) error {
	proto, rest, _ := strings.Cut(line, " ")
	code, reason, _ := strings.Cut(rest, " ")
	n, err := strconv.Atoi(code)
	if !strings.HasPrefix(proto, "HTTP/1.") || err != nil || len(code) != 3 || n < 100 {
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
		// A chunked message drops its Content-Length (RFC 9112, 6.3).
		return h.Chunked && strings.EqualFold(name, "Content-Length")
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
