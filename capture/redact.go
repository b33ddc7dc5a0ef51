package capture

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/thrive-loadtest/thrive/traces"
)

// Redactor replaces credentials in sessions with placeholders of the form
// {{NAME:HASH}}: NAME says where the secret was first seen (a cookie, header
// or field name) and HASH is a keyed hash of its value, so the same secret
// becomes the same placeholder wherever it appears again in the session: a
// csrftoken cookie and the X-CSRFToken header that echoes it, a token a
// login returned and the Authorization header that sends it back.
//
// A Redactor is not safe for concurrent use; the capture's writer goroutine
// owns it.
type Redactor struct {
	key   []byte
	field *regexp.Regexp
	names map[string]string // secret value → name, across sessions
	// undecodable counts compressed bodies that did not decode, which are
	// kept as recorded and not redacted inside.
	undecodable int64
	// headers are more header names, lower case, whose values are secrets.
	headers []string
}

// Undecodable returns how many compressed bodies did not decode by their
// Content-Encoding: they are kept as recorded, and secrets inside them are
// not redacted.
func (rd *Redactor) Undecodable() int64 { return rd.undecodable }

// encoded is a compressed body the redactor works on decoded.
type encoded struct {
	body     *traces.Body
	headers  []traces.Header
	codings  []string
	original []byte
	plain    string // the decoded content before redaction
}

// decodeBodies replaces the whole compressed bodies of s with their
// content, so that secrets inside a gzip answer are found, and returns
// them for encodeBodies.
func (rd *Redactor) decodeBodies(s *traces.Session) []encoded {
	var out []encoded
	for i := range s.Exchanges {
		ex := &s.Exchanges[i]
		for _, side := range []struct {
			h []traces.Header
			b *traces.Body
		}{{ex.ReqHeader, &ex.ReqBody}, {ex.RespHeader, &ex.RespBody}} {
			codings := traces.ContentEncoding(side.h)
			if len(codings) == 0 || len(side.b.Data) == 0 || side.b.Truncated() {
				continue
			}
			plain, err := traces.Decode(side.b.Data, codings)
			if err != nil {
				rd.undecodable++
				continue
			}
			out = append(out, encoded{body: side.b, headers: side.h, codings: codings, original: side.b.Data, plain: string(plain)})
			side.b.Data, side.b.Size = plain, 0
		}
	}
	return out
}

// encodeBodies puts back the bodies decodeBodies decoded: as recorded when
// redaction changed nothing in them, else the redacted content encoded
// again, with its Content-Length, so the body stays true to its headers.
func (rd *Redactor) encodeBodies(bodies []encoded) {
	for _, e := range bodies {
		if string(e.body.Data) == e.plain {
			e.body.Data = e.original
			continue
		}
		enc, err := traces.Encode(e.body.Data, e.codings)
		if err != nil {
			// Codings that decode also encode; keep the redacted content
			// rather than the secret should it ever fail, and say so.
			for i := range e.headers {
				if strings.EqualFold(e.headers[i].Name, "Content-Encoding") {
					e.headers[i].Value = "identity"
				}
			}
			enc = e.body.Data
		}
		e.body.Data = enc
		for i := range e.headers {
			if strings.EqualFold(e.headers[i].Name, "Content-Length") {
				e.headers[i].Value = strconv.Itoa(len(enc))
			}
		}
	}
}

// maxRemembered bounds how many secrets a Redactor remembers across sessions
// to keep their names stable; past it, it starts afresh (hashes stay stable).
const maxRemembered = 1 << 16

// minEchoLength is the shortest secret replaced wherever it appears; shorter
// ones are replaced only where they were found, so that a one-character
// password cannot blank out every "a" of a session.
const minEchoLength = 6

// RedactionPolicy lists what a Redactor replaces, for the trace header.
func RedactionPolicy() []string {
	return []string{
		"header:Authorization", "header:Proxy-Authorization", "header:Cookie", "header:Set-Cookie",
		"headers:*-Key, *-Token, *-Secret (X-API-Key, X-Auth-Token, X-CSRF-Token...) and --redact-header names",
		"fields:password,pwd,secret,token,api_key,access_key,private_key,credential,otp (JSON, form and query; names containing these)",
		"echoes:every later occurrence of a redacted value in the session",
	}
}

const secretFieldPattern = `(?i)pass(word|wd)?|pwd|secret|token|api[-_]?key|access[-_]?key|private[-_]?key|credential|otp`

// NewRedactor returns a Redactor whose hashes are keyed with key; the same
// key gives the same placeholders in every trace.
func NewRedactor(key []byte) *Redactor {
	return &Redactor{key: slices.Clone(key), field: regexp.MustCompile(secretFieldPattern), names: map[string]string{}}
}

// placeholder returns the placeholder for value, naming it name unless the
// value was seen before under another name.
func (rd *Redactor) placeholder(name, value string) string {
	if n, ok := rd.names[value]; ok {
		name = n
	} else {
		if len(rd.names) >= maxRemembered {
			clear(rd.names)
		}
		rd.names[value] = name
	}
	m := hmac.New(sha256.New, rd.key)
	m.Write([]byte(value))
	return "{{" + name + ":" + hex.EncodeToString(m.Sum(nil)[:4]) + "}}"
}

// secrets collects the secret values of one session, with their
// placeholders.
type secrets struct {
	rd  *Redactor
	ph  map[string]string // value → placeholder
	ord []string          // values, longest first when replacing
	low []byte            // scratch for mayNameSecret
}

// secretFragments are parts that every name secretFieldPattern matches
// contains, lower-cased: a document with none of them names no secret.
var secretFragments = [...]string{"pass", "pwd", "secret", "token", "key", "credential", "otp"} //nolint:gochecknoglobals // constant table

// mayNameSecret reports whether b might hold a secret-looking field name,
// so that documents without one (most answers) skip the JSON scan.
func (sc *secrets) mayNameSecret(b []byte) bool {
	sc.low = sc.low[:0]
	for _, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		sc.low = append(sc.low, c)
	}
	for _, f := range secretFragments {
		if bytes.Contains(sc.low, []byte(f)) {
			return true
		}
	}
	return false
}

// cookie redacts a cookie's value in any of the syntaxes frameworks and
// browsers use: spaces around it, double quotes around it (Tornado's and
// Python's signed values: "2|1:0|…"), none at all (a logout's cleared
// cookie, "" or empty, is left as it is, so it never takes another
// cookie's name). The value is named by its cookie and remembered without
// its quotes and, when it is URL-encoded (Express's s%3A…), decoded too,
// so that every form it is echoed in is replaced.
func (sc *secrets) cookie(name, raw string) string {
	lead := raw[:len(raw)-len(strings.TrimLeft(raw, " \t"))]
	trail := raw[len(strings.TrimRight(raw, " \t")):]
	v := strings.TrimSpace(raw)
	quoted := len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"'
	if quoted {
		v = v[1 : len(v)-1]
	}
	if v == "" {
		return raw
	}
	p := sc.add(name, v)
	if dec, err := url.QueryUnescape(v); err == nil && dec != v && len(dec) >= minEchoLength {
		sc.alias(dec, p)
	}
	if quoted {
		p = `"` + p + `"`
	}
	return lead + p + trail
}

// alias makes value, another form of a secret already named p, replaced
// by p wherever it is echoed.
func (sc *secrets) alias(value, p string) {
	if _, ok := sc.ph[value]; !ok {
		sc.ph[value] = p
		sc.ord = append(sc.ord, value)
	}
}

func (sc *secrets) add(name, value string) string {
	if value == "" || strings.HasPrefix(value, "{{") {
		return value
	}
	if p, ok := sc.ph[value]; ok {
		return p
	}
	p := sc.rd.placeholder(name, value)
	sc.ph[value] = p
	sc.ord = append(sc.ord, value)
	return p
}

// Session redacts s in place.
func (rd *Redactor) Session(s *traces.Session) {
	bodies := rd.decodeBodies(s)
	defer rd.encodeBodies(bodies)
	sc := &secrets{rd: rd, ph: map[string]string{}}
	// First the places where secrets live by definition, in order, so that a
	// secret is named after where it first appeared.
	for i := range s.Exchanges {
		ex := &s.Exchanges[i]
		ex.URL = sc.query(ex.URL)
		sc.headers(ex.ReqHeader)
		ex.ReqBody.Data = sc.body(ex.ReqHeader, ex.ReqBody.Data)
		sc.headers(ex.RespHeader)
		ex.RespBody.Data = sc.body(ex.RespHeader, ex.RespBody.Data)
		if ws := ex.WebSocket; ws != nil {
			for j := range ws.Frames {
				f := &ws.Frames[j]
				if f.Opcode == traces.OpText {
					f.Payload.Data = sc.jsonFields(f.Payload.Data)
				}
			}
		}
	}
	if len(sc.ord) == 0 {
		return
	}
	// Then every other place a secret was echoed: headers, URLs, bodies,
	// frames. Longer values first, so a secret that contains another is
	// replaced whole.
	var olds []string
	slices.SortFunc(sc.ord, func(a, b string) int { return len(b) - len(a) })
	for _, v := range sc.ord {
		if len(v) < minEchoLength {
			continue
		}
		olds = append(olds, v, sc.ph[v])
		if esc := traces.EscapeJSONString(v); esc != v {
			olds = append(olds, esc, sc.ph[v])
		}
		if esc := url.QueryEscape(v); esc != v {
			olds = append(olds, esc, sc.ph[v])
		}
	}
	if len(olds) == 0 {
		return
	}
	r := strings.NewReplacer(olds...)
	s.Client = r.Replace(s.Client)
	for i := range s.Exchanges {
		ex := &s.Exchanges[i]
		ex.URL = r.Replace(ex.URL)
		replaceHeaders(r, ex.ReqHeader)
		replaceHeaders(r, ex.RespHeader)
		ex.ReqBody.Data = replaceBytes(r, ex.ReqBody.Data)
		ex.RespBody.Data = replaceBytes(r, ex.RespBody.Data)
		if ws := ex.WebSocket; ws != nil {
			for j := range ws.Frames {
				ws.Frames[j].Payload.Data = replaceBytes(r, ws.Frames[j].Payload.Data)
			}
		}
	}
}

func replaceHeaders(r *strings.Replacer, hs []traces.Header) {
	for i := range hs {
		hs[i].Value = r.Replace(hs[i].Value)
	}
}

func replaceBytes(r *strings.Replacer, b []byte) []byte {
	if len(b) == 0 {
		return b
	}
	s := r.Replace(string(b))
	if s == string(b) {
		return b
	}
	return []byte(s)
}

// secretHeader reports a header whose value is a secret: one named like an
// API key or token (X-API-Key, X-Auth-Token, X-Client-Secret), or one the
// user named.
func (rd *Redactor) secretHeader(lower string) bool {
	return strings.HasSuffix(lower, "-key") || strings.HasSuffix(lower, "-token") || strings.HasSuffix(lower, "-secret") ||
		slices.Contains(rd.headers, lower)
}

// headers redacts credential headers in place.
func (sc *secrets) headers(hs []traces.Header) {
	for i := range hs {
		h := &hs[i]
		switch strings.ToLower(h.Name) {
		case "authorization", "proxy-authorization":
			scheme, cred, ok := strings.Cut(h.Value, " ")
			if !ok {
				h.Value = sc.add("authorization", h.Value)
				continue
			}
			h.Value = scheme + " " + sc.add(strings.ToLower(scheme), cred)
		case "cookie":
			pairs := strings.Split(h.Value, ";")
			for j, p := range pairs {
				name, value, ok := strings.Cut(p, "=")
				if !ok {
					continue
				}
				pairs[j] = name + "=" + sc.cookie(strings.TrimSpace(name), value)
			}
			h.Value = strings.Join(pairs, ";")
		case "sec-websocket-key", "sec-websocket-accept":
			// A nonce of the handshake, not a secret.
		case "set-cookie":
			first, rest, _ := strings.Cut(h.Value, ";")
			name, value, ok := strings.Cut(first, "=")
			if !ok {
				continue
			}
			h.Value = name + "=" + sc.cookie(strings.TrimSpace(name), value)
			if rest != "" {
				h.Value += ";" + rest
			}
		default:
			if sc.rd.secretHeader(strings.ToLower(h.Name)) {
				h.Value = sc.add(strings.ToLower(h.Name), h.Value)
			}
		}
	}
}

// query redacts secret-looking parameters of a URL's query.
func (sc *secrets) query(u string) string {
	path, q, ok := strings.Cut(u, "?")
	if !ok {
		return u
	}
	return path + "?" + sc.form(q)
}

// form redacts secret-looking fields of a URL-encoded form, keeping the
// order and encoding of everything else.
func (sc *secrets) form(q string) string {
	parts := strings.Split(q, "&")
	for i, p := range parts {
		k, v, ok := strings.Cut(p, "=")
		if !ok {
			continue
		}
		name, err := url.QueryUnescape(k)
		if err != nil || !sc.rd.field.MatchString(name) {
			continue
		}
		value, err := url.QueryUnescape(v)
		if err != nil {
			value = v
		}
		parts[i] = k + "=" + sc.add(name, value)
	}
	return strings.Join(parts, "&")
}

func contentType(hs []traces.Header) string {
	for _, h := range hs {
		if strings.EqualFold(h.Name, "Content-Type") {
			return strings.ToLower(h.Value)
		}
	}
	return ""
}

// body redacts the secret fields of a JSON or form body.
func (sc *secrets) body(hs []traces.Header, b []byte) []byte {
	if len(b) == 0 {
		return b
	}
	ct := contentType(hs)
	switch {
	case strings.Contains(ct, "json"), b[0] == '{' || b[0] == '[':
		return sc.jsonFields(b)
	case strings.HasPrefix(ct, "application/x-www-form-urlencoded"):
		return []byte(sc.form(string(b)))
	}
	return b
}

// jsonFields redacts the string values of secret-looking keys in a JSON
// document, in place of their quoted literals, keeping the rest of the bytes
// as they were. Anything that is not JSON is returned as it was.
func (sc *secrets) jsonFields(b []byte) []byte {
	if len(b) == 0 || (b[0] != '{' && b[0] != '[') || !sc.mayNameSecret(b) {
		return b
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	type level struct {
		object    bool
		expectKey bool
		key       string
	}
	var stack []level
	var olds []string
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return b // not JSON after all
		}
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{', '[':
				stack = append(stack, level{object: d == '{', expectKey: d == '{'})
			default:
				stack = stack[:len(stack)-1]
				if n := len(stack); n > 0 && stack[n-1].object {
					stack[n-1].expectKey = true
				}
			}
			continue
		}
		n := len(stack)
		if n == 0 || !stack[n-1].object {
			continue // a value in an array, or at the top
		}
		top := &stack[n-1]
		if top.expectKey {
			top.key, _ = tok.(string)
			top.expectKey = false
			continue
		}
		if v, ok := tok.(string); ok && v != "" && sc.rd.field.MatchString(top.key) {
			p := `"` + sc.add(top.key, v) + `"`
			lit, _ := json.Marshal(v) // escapes <, > and & as \u003c...
			olds = append(olds, `"`+traces.EscapeJSONString(v)+`"`, p, string(lit), p)
		}
		top.expectKey = true
	}
	if len(olds) == 0 {
		return b
	}
	return []byte(strings.NewReplacer(olds...).Replace(string(b)))
}
