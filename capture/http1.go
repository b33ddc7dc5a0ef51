package capture

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

// maxHead bounds a request or response head: its first line and fields.
const maxHead = 64 << 10

var errHeadTooLarge = errors.New("head larger than 64 KiB")

// framing is how a message's body is delimited.
type framing uint8

const (
	noBody     framing = iota
	byLength           // Content-Length bytes
	chunked            // Transfer-Encoding: chunked
	untilClose         // a response that ends when the server closes
)

// head is a parsed request or response head.
type head struct {
	// Request: method, target and version. Response: version in proto.
	method, target, proto string
	status                int    // response status
	reason                string // response reason phrase
	fields                []traces.Header
	host                  string
	length                int64 // Content-Length, or -1 when there is none
	chunked               bool
	close                 bool // the sender closes after this message
	upgrade               bool // Connection: upgrade with Upgrade: websocket
	expect                bool // Expect: 100-continue
	xff                   string
	connTokens            []string // field names listed in Connection, lower-cased
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
		return "", errHeadTooLarge
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

// readHead reads a request head (request set) or a response head. When the
// whole head is in br's buffer, as it nearly always is, it becomes one
// string that the fields share.
func readHead(br *bufio.Reader, request bool) (*head, error) {
	if n := br.Buffered(); n > 0 {
		buf, _ := br.Peek(n)
		if _, next := headEnd(buf); next >= 0 {
			h, err := parseHeadBytes(buf[:next], request)
			_, _ = br.Discard(next)
			return h, err
		}
	}
	budget := maxHead
	lines := func(yield func(string, error) bool) {
		for {
			line, err := readLine(br, &budget)
			if errors.Is(err, io.EOF) && budget < maxHead {
				err = io.ErrUnexpectedEOF // the head began, then the stream ended
			}
			if !yield(line, err) || err != nil {
				return
			}
		}
	}
	return parseHead(lines, request)
}

// headEnd finds the empty line that ends a head in buf: end is where the
// empty line starts, next where what follows it starts; -1 when buf holds
// no empty line.
func headEnd(buf []byte) (end, next int) {
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
func parseHead(lines iter.Seq2[string, error], request bool) (*head, error) {
	h := &head{length: -1, fields: make([]traces.Header, 0, 12)}
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
				h.method, h.target, h.proto, ok = splitRequestLine(line)
				if !ok {
					return nil, fmt.Errorf("malformed request line %q", clip(line))
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
			return nil, fmt.Errorf("malformed header line %q", clip(line))
		}
		value = strings.Trim(value, " \t")
		h.fields = append(h.fields, traces.Header{Name: name, Value: value})
		switch {
		case strings.EqualFold(name, "Content-Length"):
			n, err := strconv.ParseInt(value, 10, 64)
			if err != nil || n < 0 || (h.length >= 0 && n != h.length) {
				return nil, fmt.Errorf("bad Content-Length %q", clip(value))
			}
			h.length = n
		case strings.EqualFold(name, "Transfer-Encoding"):
			codings := strings.Split(value, ",")
			h.chunked = strings.EqualFold(strings.TrimSpace(codings[len(codings)-1]), "chunked")
			if request && !h.chunked {
				return nil, fmt.Errorf("unsupported Transfer-Encoding %q", clip(value))
			}
		case strings.EqualFold(name, "Connection"):
			for tok := range strings.SplitSeq(value, ",") {
				tok = strings.ToLower(strings.TrimSpace(tok))
				switch tok {
				case "close":
					h.close = true
				case "keep-alive":
					keepAlive = true
				case "upgrade":
					h.upgrade = true
				case "":
				default:
					h.connTokens = append(h.connTokens, tok)
				}
			}
		case strings.EqualFold(name, "Host"):
			h.host = value
		case strings.EqualFold(name, "Expect"):
			h.expect = strings.EqualFold(value, "100-continue")
		case strings.EqualFold(name, "X-Forwarded-For"):
			if h.xff != "" {
				h.xff += ", "
			}
			h.xff += value
		}
	}
	if h.upgrade {
		h.upgrade = strings.EqualFold(fieldValue(h.fields, "Upgrade"), "websocket")
	}
	if h.chunked {
		h.length = -1
	}
	if h.proto == "HTTP/1.0" && !keepAlive {
		h.close = true
	}
	return h, nil
}

func splitRequestLine(line string) (method, target, proto string, ok bool) {
	method, rest, ok1 := strings.Cut(line, " ")
	target, proto, ok2 := strings.Cut(rest, " ")
	ok = ok1 && ok2 && method != "" && target != "" && (proto == "HTTP/1.1" || proto == "HTTP/1.0")
	return method, target, proto, ok
}

func (h *head) parseStatusLine(line string) error {
	proto, rest, _ := strings.Cut(line, " ")
	code, reason, _ := strings.Cut(rest, " ")
	n, err := strconv.Atoi(code)
	if !strings.HasPrefix(proto, "HTTP/1.") || err != nil || len(code) != 3 || n < 100 {
		return fmt.Errorf("malformed status line %q", clip(line))
	}
	h.proto, h.status, h.reason = proto, n, reason
	return nil
}

// clip shortens what goes into an error message.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

func fieldValue(fs []traces.Header, name string) string {
	for _, f := range fs {
		if strings.EqualFold(f.Name, name) {
			return f.Value
		}
	}
	return ""
}

// requestFraming returns how a request's body is delimited.
func (h *head) requestFraming() framing {
	switch {
	case h.chunked:
		return chunked
	case h.length > 0:
		return byLength
	}
	return noBody
}

// responseFraming returns how the body of a response to method is
// delimited.
func (h *head) responseFraming(method string) framing {
	switch {
	case method == "HEAD", h.status < 200, h.status == 204, h.status == 304:
		return noBody
	case h.chunked:
		return chunked
	case h.length >= 0:
		return byLength
	}
	return untilClose
}

// hopByHop reports whether a field applies to one connection only and so is
// not forwarded; the proxy writes its own framing and Connection fields.
func (h *head) hopByHop(name string) bool {
	switch len(name) {
	case 2:
		return strings.EqualFold(name, "TE")
	case 7:
		return strings.EqualFold(name, "Upgrade")
	case 10:
		return strings.EqualFold(name, "Connection") || strings.EqualFold(name, "Keep-Alive")
	case 14:
		// A chunked message drops its Content-Length (RFC 9112, 6.3).
		return h.chunked && strings.EqualFold(name, "Content-Length")
	case 16:
		return strings.EqualFold(name, "Proxy-Connection")
	case 17:
		return strings.EqualFold(name, "Transfer-Encoding")
	}
	for _, t := range h.connTokens {
		if strings.EqualFold(name, t) {
			return true
		}
	}
	return false
}

// bodyResult says how relaying a body ended: a read error is the sender's,
// a write error the receiver's.
type bodyResult struct {
	rerr, werr error
}

// relayBody copies a body delimited by fr (with length n for byLength)
// from src to dst, showing each piece to tap. It flushes dst whenever src
// has nothing more buffered, so a stream reaches the receiver as it
// arrives and a small message goes out in one write. With rechunk it sends
// a chunked body chunked, trailers included; without, it sends the bytes
// alone (to an HTTP/1.0 client, which then sees the end by the close).
func relayBody(dst *bufio.Writer, src *bufio.Reader, fr framing, n int64, tap *bodyTap, buf []byte, rechunk bool) bodyResult {
	var r io.Reader = src
	var w io.Writer = dst
	var cw io.WriteCloser
	switch fr {
	case noBody:
		return bodyResult{}
	case byLength:
		r = io.LimitReader(src, n)
	case chunked:
		r = httputil.NewChunkedReader(src)
		if rechunk {
			cw = httputil.NewChunkedWriter(dst)
			w = cw
		}
	}
	var res bodyResult
	for {
		m, err := r.Read(buf)
		if m > 0 {
			tap.observe(buf[:m])
			if _, werr := w.Write(buf[:m]); werr != nil {
				res.werr = werr
				return res
			}
			if src.Buffered() == 0 {
				if werr := dst.Flush(); werr != nil {
					res.werr = werr
					return res
				}
			}
		}
		if err == nil {
			continue
		}
		if !errors.Is(err, io.EOF) {
			res.rerr = err
			return res
		}
		break
	}
	switch fr {
	case byLength:
		if tap.size < n {
			res.rerr = io.ErrUnexpectedEOF
			return res
		}
	case chunked:
		if res = relayTrailers(dst, src, cw); res.rerr != nil || res.werr != nil {
			return res
		}
	}
	if err := dst.Flush(); err != nil {
		res.werr = err
	}
	return res
}

// relayTrailers reads a chunked body's trailer section and, when cw is set,
// ends the chunked body on dst with the same trailers.
func relayTrailers(dst *bufio.Writer, src *bufio.Reader, cw io.WriteCloser) bodyResult {
	if cw != nil {
		if err := cw.Close(); err != nil {
			return bodyResult{werr: err}
		}
	}
	budget := maxHead
	for {
		line, err := readLine(src, &budget)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return bodyResult{rerr: err}
		}
		if cw != nil {
			_, _ = dst.WriteString(line)
			if _, err := dst.WriteString("\r\n"); err != nil {
				return bodyResult{werr: err}
			}
		}
		if line == "" {
			return bodyResult{}
		}
	}
}
