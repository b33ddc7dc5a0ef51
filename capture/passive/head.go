package passive

import (
	"bytes"
	"strings"

	"github.com/thrive-loadtest/thrive/capture/wire"
)

// findHead returns where in buf the first whole head that parses begins
// (a request's when request is set, else an answer's), or -1 and how many
// of buf's last bytes to keep: a head, or a line, not whole yet that may
// be one. A head is looked for at the start of each line and, since a
// message may follow a body with no line end between them, wherever a
// status line's "HTTP/1." or a common method begins.
func findHead(buf []byte, request bool) (at, keep int) {
	for i := 0; i < len(buf); i++ {
		if !candidate(buf, i, request) {
			continue
		}
		j := bytes.IndexByte(buf[i:], '\n')
		if j < 0 {
			if rest := len(buf) - i; rest <= maxLine {
				return -1, rest
			}
			return -1, 0
		}
		if !headLine(bytes.TrimSuffix(buf[i:i+j], []byte("\r")), request) {
			continue
		}
		_, next := wire.HeadEnd(buf[i:])
		if next < 0 {
			if len(buf)-i <= wire.MaxHead {
				return -1, len(buf) - i
			}
			continue
		}
		if _, err := wire.ParseHeadBytes(buf[i:i+next], request); err == nil {
			return i, 0
		}
	}
	return -1, 0
}

// methods are those a request head is looked for by inside a line.
const methods = "GET POST PUT DELETE HEAD OPTIONS PATCH"

// candidate reports whether a head may begin at buf[i].
func candidate(buf []byte, i int, request bool) bool {
	if i == 0 || buf[i-1] == '\n' {
		return true
	}
	if !request {
		return buf[i] == 'H' && bytes.HasPrefix(buf[i:], []byte("HTTP/1."))
	}
	if buf[i] < 'A' || buf[i] > 'Z' {
		return false
	}
	for m := range strings.FieldsSeq(methods) {
		if bytes.HasPrefix(buf[i:], []byte(m+" ")) {
			return true
		}
	}
	return false
}

// headLine reports whether line reads as a request line (METHOD SP target
// SP HTTP/1.x) or a status line (HTTP/1.x SP 3DIGIT [SP reason]).
func headLine(line []byte, request bool) bool {
	if !request {
		return len(line) >= 12 && bytes.HasPrefix(line, []byte("HTTP/1.")) && (line[7] == '0' || line[7] == '1') &&
			line[8] == ' ' && digits(line[9:12]) && (len(line) == 12 || line[12] == ' ')
	}
	method, rest, ok1 := bytes.Cut(line, []byte(" "))
	target, proto, ok2 := bytes.Cut(rest, []byte(" "))
	return ok1 && ok2 && token(method) && len(target) > 0 && visible(target) &&
		(bytes.Equal(proto, []byte("HTTP/1.1")) || bytes.Equal(proto, []byte("HTTP/1.0")))
}

// digits reports whether b is decimal digits alone.
func digits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// token reports whether b is a method: upper-case letters, digits, '-'
// and '_', as methods in use are (a stricter test than RFC 9110's token,
// to find heads among a body's bytes).
func token(b []byte) bool {
	for _, c := range b {
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '-' && c != '_' {
			return false
		}
	}
	return len(b) > 0 && len(b) <= 20
}

// visible reports whether b holds no control character, space or DEL.
func visible(b []byte) bool {
	for _, c := range b {
		if c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}
