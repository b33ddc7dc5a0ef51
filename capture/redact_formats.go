package capture

import (
	"bytes"
	"encoding/json"
	"mime"
	"net/url"
	"strings"
)

// Each format below finds the names in its document, asks secretName about
// each, and replaces the values of secret ones in place, copying the rest
// of the bytes as they were. A document with nothing to replace is
// returned as it was, not copied.

// splice builds a copy of a document with some spans replaced, allocating
// only when the first one is.
type splice struct {
	out  []byte
	last int // bytes of the source copied so far
}

func (sp *splice) replace(src []byte, from, to int, with ...string) {
	if sp.out == nil {
		sp.out = make([]byte, 0, len(src)+64)
	}
	sp.out = append(sp.out, src[sp.last:from]...)
	for _, w := range with {
		sp.out = append(sp.out, w...)
	}
	sp.last = to
}

func (sp *splice) result(src []byte) []byte {
	if sp.out == nil {
		return src
	}
	return append(sp.out, src[sp.last:]...)
}

// maxJSONDepth bounds the nesting jsonFields follows, as encoding/json
// does; what lies deeper is left as it is.
const maxJSONDepth = 10000

// jsonLevel is an object or array jsonFields is inside.
type jsonLevel struct {
	object    bool
	expectKey bool
	// key is the span of the current key in an object, or of the key whose
	// value the array is, for naming the placeholder; st is what the key
	// names (for an array, what its strings are).
	keyFrom, keyTo int32
	st             strength
}

// jsonFields redacts the strings that secret names hold in a JSON
// document (or several, one after another, as JSON Lines): the string
// value of a secret key at any depth, and the strings of an array that is
// such a value, at any depth of arrays ({"tokens": ["a", "b"]}); inside an
// object, its own keys decide ({"users": [{"password": …}]}). The scan is
// lenient: a document cut short (a body over --max-body) keeps what was
// found before the cut, and a bare word where a key belongs (a JavaScript
// literal) is a key. Anything that does not begin as JSON is returned as it
// was.
func (sc *secrets) jsonFields(b []byte) []byte {
	i := skipSpace(b, 0)
	if i == len(b) || (b[i] != '{' && b[i] != '[') {
		return b
	}
	var sp splice
	stack := sc.rd.stack[:0]
	defer func() { sc.rd.stack = stack[:0] }()
	for i < len(b) {
		c := b[i]
		switch c {
		case ' ', '\t', '\n', '\r', ',', ':':
			i++
			continue
		case '{', '[':
			if len(stack) >= maxJSONDepth {
				return sp.result(b)
			}
			lv := jsonLevel{object: c == '{', expectKey: c == '{'}
			if n := len(stack); n > 0 && c == '[' {
				// An array takes the name it is the value of, or the
				// name of the array it is in.
				lv.keyFrom, lv.keyTo, lv.st = stack[n-1].keyFrom, stack[n-1].keyTo, stack[n-1].st
			}
			stack = append(stack, lv)
			i++
			continue
		case '}', ']':
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
			i++
			afterValue(stack)
			continue
		}
		n := len(stack)
		var end int
		if c == '"' {
			end = stringEnd(b, i)
			if end < 0 {
				return sp.result(b) // cut short inside a string
			}
		} else {
			end = i + 1
			for end < len(b) && !jsonDelim(b[end]) {
				end++
			}
		}
		switch {
		case n == 0:
			// Between documents: nothing names it.
		case stack[n-1].object && stack[n-1].expectKey:
			top := &stack[n-1]
			top.keyFrom, top.keyTo = int32(i), int32(end)
			key := b[i:end]
			if c == '"' {
				key = key[1 : len(key)-1]
				if bytes.IndexByte(key, '\\') >= 0 {
					key = []byte(jsonString(b[i:end]))
				}
			}
			top.st = secretName(key, inJSON)
			top.expectKey = false
		default:
			top := &stack[n-1]
			if c == '"' && top.st != notSecret {
				if v := jsonString(b[i:end]); v != "" {
					key := jsonString(b[top.keyFrom:top.keyTo])
					sp.replace(b, i, end, `"`, sc.add(key, v, top.st), `"`)
				}
			}
			if top.object {
				top.expectKey = true
			}
		}
		i = end
	}
	return sp.result(b)
}

// jsonDelim says whether c ends a number, a literal or a bare word.
func jsonDelim(c byte) bool {
	switch c {
	case ' ', '\t', '\r', '\n', ',', ':', '{', '}', '[', ']', '"':
		return true
	}
	return false
}

// changed says whether red, which a redaction returned for b, is another
// document: they return b itself when they replace nothing.
func changed(red, b []byte) bool {
	return len(red) != len(b) || len(b) > 0 && &red[0] != &b[0]
}

// afterValue notes that the value of the innermost object's key is over.
func afterValue(stack []jsonLevel) {
	if n := len(stack); n > 0 && stack[n-1].object {
		stack[n-1].expectKey = true
	}
}

// stringEnd returns the index after the closing quote of the JSON string
// that starts at b[i], or -1 if it is not closed.
func stringEnd(b []byte, i int) int {
	j := i + 1
	for {
		k := bytes.IndexByte(b[j:], '"')
		if k < 0 {
			return -1
		}
		j += k
		esc := 0
		for esc < j-i-1 && b[j-1-esc] == '\\' {
			esc++
		}
		if esc%2 == 0 {
			return j + 1
		}
		j++
	}
}

// jsonString returns the content of a JSON string literal (or a bare word
// as it is); an invalid escape keeps the raw content.
func jsonString(lit []byte) string {
	if len(lit) < 2 || lit[0] != '"' {
		return string(lit)
	}
	in := lit[1 : len(lit)-1]
	if bytes.IndexByte(in, '\\') < 0 {
		return string(in)
	}
	var s string
	if json.Unmarshal(lit, &s) != nil {
		return string(in)
	}
	return s
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// form redacts the secret fields of a URL-encoded form (a query, a
// fragment, a body, a message), keeping the order and encoding of
// everything else. A field whose value is JSON (GraphQL's variables=) is
// redacted inside.
func (sc *secrets) form(q string) string {
	var b strings.Builder
	last := 0
	for start := 0; start < len(q); {
		end := strings.IndexByte(q[start:], '&')
		if end < 0 {
			end = len(q)
		} else {
			end += start
		}
		k, v, ok := strings.Cut(q[start:end], "=")
		start = end + 1
		if !ok {
			continue
		}
		name := k
		if strings.ContainsAny(k, "%+") {
			var err error
			if name, err = url.QueryUnescape(k); err != nil {
				continue
			}
		}
		repl := ""
		if st := secretName(name, inForm); st != notSecret {
			value := unescapeForm(v)
			if repl = sc.add(name, value, st); repl == value {
				continue
			}
		} else if jsonValue(v) {
			value := unescapeForm(v)
			red := sc.jsonFields([]byte(value))
			if string(red) == value {
				continue
			}
			repl = escapeAroundPlaceholders(string(red))
		} else {
			continue
		}
		from := end - len(v)
		b.WriteString(q[last:from])
		b.WriteString(repl)
		last = end
	}
	if last == 0 {
		return q
	}
	b.WriteString(q[last:])
	return b.String()
}

// jsonValue says whether a form value, as sent, may be JSON.
func jsonValue(v string) bool {
	return strings.HasPrefix(v, "{") || strings.HasPrefix(v, "[") ||
		len(v) >= 3 && (strings.EqualFold(v[:3], "%7B") || strings.EqualFold(v[:3], "%5B"))
}

func unescapeForm(v string) string {
	if !strings.ContainsAny(v, "%+") {
		return v
	}
	if u, err := url.QueryUnescape(v); err == nil {
		return u
	}
	return v
}

// escapeAroundPlaceholders query-escapes s but its placeholders, which
// stay as they are in a URL, as those of a redacted field's value do.
func escapeAroundPlaceholders(s string) string {
	var b strings.Builder
	for s != "" {
		i := strings.Index(s, "{{")
		j := -1
		if i >= 0 {
			j = strings.Index(s[i:], "}}")
		}
		if i < 0 || j < 0 {
			b.WriteString(url.QueryEscape(s))
			break
		}
		b.WriteString(url.QueryEscape(s[:i]))
		b.WriteString(s[i : i+j+2])
		s = s[i+j+2:]
	}
	return b.String()
}

// query redacts the query and fragment parameters of a URL (a request's, a
// Location's or a Referer's: an OAuth redirect's code, an implicit flow's
// access_token).
func (sc *secrets) query(u string) string {
	rest, frag, hasFrag := strings.Cut(u, "#")
	path, q, hasQuery := strings.Cut(rest, "?")
	redQ, redFrag := q, frag
	if hasQuery {
		redQ = sc.form(q)
	}
	if hasFrag && strings.IndexByte(frag, '=') >= 0 {
		redFrag = sc.form(frag)
	}
	if redQ == q && redFrag == frag {
		return u
	}
	u = path
	if hasQuery {
		u += "?" + redQ
	}
	if hasFrag {
		u += "#" + redFrag
	}
	return u
}

// multipart redacts the fields of a multipart/form-data body: a field
// named like a secret (not a file) is replaced whole, and a part that is
// JSON or a URL-encoded form is redacted inside. A body cut short keeps
// what was found before the cut.
func (sc *secrets) multipart(ct string, b []byte) []byte {
	_, params, err := mime.ParseMediaType(ct)
	if err != nil || params["boundary"] == "" {
		return b
	}
	delim := []byte("--" + params["boundary"])
	var sp splice
	i := bytes.Index(b, delim)
	for i >= 0 {
		i += len(delim)
		if bytes.HasPrefix(b[i:], []byte("--")) {
			break // the closing delimiter
		}
		nl := bytes.IndexByte(b[i:], '\n')
		if nl < 0 {
			break
		}
		// The part's headers, then a blank line, then its content, which
		// ends at the line break before the next delimiter.
		head := i + nl + 1
		var hdrEnd, from int
		switch k := bytes.Index(b[head:], []byte("\r\n\r\n")); {
		case bytes.HasPrefix(b[head:], []byte("\r\n")):
			hdrEnd, from = head, head+2
		case bytes.HasPrefix(b[head:], []byte("\n")):
			hdrEnd, from = head, head+1
		case k >= 0:
			hdrEnd, from = head+k, head+k+4
		default:
			k = bytes.Index(b[head:], []byte("\n\n"))
			if k < 0 {
				return sp.result(b)
			}
			hdrEnd, from = head+k, head+k+2
		}
		to := len(b)
		i = -1
		if next := bytes.Index(b[from:], delim); next >= 0 {
			i = from + next
			to = i
			if to > from && b[to-1] == '\n' {
				to--
			}
			if to > from && b[to-1] == '\r' {
				to--
			}
		}
		name, file, pct := partHeaders(b[head:hdrEnd])
		value := b[from:to]
		if st := secretName(name, inForm); name != "" && !file && st != notSecret {
			if len(value) > 0 {
				sp.replace(b, from, to, sc.add(name, string(value), st))
			}
			continue
		}
		switch {
		case strings.Contains(pct, "json") || pct == "" && !file:
			if red := sc.jsonFields(value); changed(red, value) {
				sp.replace(b, from, to, string(red))
			}
		case strings.HasPrefix(pct, "application/x-www-form-urlencoded"):
			if red := sc.form(string(value)); red != string(value) {
				sp.replace(b, from, to, red)
			}
		}
	}
	return sp.result(b)
}

// partHeaders returns a multipart part's field name, whether it is a file,
// and its Content-Type, lower case.
func partHeaders(h []byte) (name string, file bool, ct string) {
	for line := range strings.SplitSeq(string(h), "\n") {
		k, v, ok := strings.Cut(strings.TrimRight(line, "\r"), ":")
		if !ok {
			continue
		}
		switch {
		case strings.EqualFold(strings.TrimSpace(k), "Content-Disposition"):
			if _, params, err := mime.ParseMediaType(strings.TrimSpace(v)); err == nil {
				name = params["name"]
				_, file = params["filename"]
			} else if _, rest, ok := strings.Cut(v, `name="`); ok {
				// A name mime refuses (a raw quote or a non-ASCII byte).
				name, _, _ = strings.Cut(rest, `"`)
			}
		case strings.EqualFold(strings.TrimSpace(k), "Content-Type"):
			ct = strings.ToLower(strings.TrimSpace(v))
		}
	}
	return name, file, ct
}

// events redacts the JSON of a server-sent event stream's data: lines.
func (sc *secrets) events(b []byte) []byte {
	var sp splice
	for i := 0; i < len(b); {
		end := bytes.IndexByte(b[i:], '\n')
		if end < 0 {
			end = len(b)
		} else {
			end += i
		}
		line := b[i:end]
		if bytes.HasPrefix(line, []byte("data:")) {
			from := i + len("data:")
			to := end
			if to > from && b[to-1] == '\r' {
				to--
			}
			if v := b[from:to]; len(v) > 0 {
				if red := sc.jsonFields(v); changed(red, v) {
					sp.replace(b, from, to, string(red))
				}
			}
		}
		i = end + 1
	}
	return sp.result(b)
}

// message redacts a WebSocket text message: JSON, JSON after a Socket.IO
// packet's type, namespace and ack id (42["login",{…}], 40{"token":…}), or
// a URL-encoded form.
func (sc *secrets) message(b []byte) []byte {
	i := skipSpace(b, 0)
	if i == len(b) {
		return b
	}
	j := i
	for j < len(b) && isDigit(b[j]) {
		j++
	}
	if j > i && j < len(b) && b[j] == '/' {
		if k := bytes.IndexByte(b[j:], ','); k >= 0 {
			j += k + 1
			for j < len(b) && isDigit(b[j]) {
				j++
			}
		}
	}
	if j < len(b) && (b[j] == '{' || b[j] == '[') {
		red := sc.jsonFields(b[j:])
		if !changed(red, b[j:]) {
			return b
		}
		out := make([]byte, 0, j+len(red))
		return append(append(out, b[:j]...), red...)
	}
	if formLike(b) {
		if red := sc.form(string(b)); red != string(b) {
			return []byte(red)
		}
	}
	return b
}

// formLike says whether a message looks like a URL-encoded form: a field
// and its value, no spaces.
func formLike(b []byte) bool {
	eq := false
	for _, c := range b {
		switch {
		case c <= ' ' || c == '"' || c == '{' || c == '<':
			return false
		case c == '=':
			eq = true
		}
	}
	return eq
}
