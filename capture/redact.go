package capture

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"net/url"
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
	names map[string]string // secret value → name, across sessions
	stack []jsonLevel       // scratch for jsonFields
	mac   hash.Hash         // keyed with key, made on first use
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
		"names:one rule for headers, query and fragment parameters (URL, Location, Referer), URL-encoded and multipart form fields, " +
			"JSON keys at any depth and the strings of arrays they hold (bodies, WebSocket messages, Socket.IO packets, SSE data: lines, " +
			"multipart parts, query values), and the header names the capture is told to redact",
		"names:split at -_.[] and camelCase, whole parts, any case; secret when the last part is password, passwd, pwd, pass, " +
			"passphrase, passcode, secret, token, credential, otp, jwt, cookie, authorization, apikey, sessionid (or ends in token, " +
			"password, secret, apikey), or key, auth, session, sig, signature, or one of these followed by id, value, hash, hint, " +
			"confirm(ation), new, old or digits; refresh and access as a whole name outside headers; code as a whole query or form name",
		"not:keyboard, monkey, author, authorName, codeName, zipcode, token_type, signature_method, Sec-WebSocket-Key, " +
			"a field named session alone, a session id that is a UUID the client made (no answer gave it)",
		"echoes:every later occurrence of a redacted value in the session (for key, auth, session, sig, signature, refresh, " +
			"access and code, only of values without spaces that have a digit or 20 bytes; key after api, access, private, session, client... as strong)",
	}
}

// NewRedactor returns a Redactor whose hashes are keyed with key; the same
// key gives the same placeholders in every trace.
func NewRedactor(key []byte) *Redactor {
	return &Redactor{key: slices.Clone(key), names: map[string]string{}}
}

// placeholder returns the placeholder for value, naming it name unless the
// value was seen before under another name.
func (rd *Redactor) placeholder(name, value string) string {
	name = placeholderName(name)
	if n, ok := rd.names[value]; ok {
		name = n
	} else {
		if len(rd.names) >= maxRemembered {
			clear(rd.names)
		}
		rd.names[value] = name
	}
	if rd.mac == nil {
		rd.mac = hmac.New(sha256.New, rd.key)
	}
	rd.mac.Reset()
	rd.mac.Write([]byte(value))
	var sum [sha256.Size]byte
	return "{{" + name + ":" + hex.EncodeToString(rd.mac.Sum(sum[:0])[:4]) + "}}"
}

// secrets collects the secret values of one session, with their
// placeholders.
type secrets struct {
	rd *Redactor
	ph map[string]secret // value → its placeholder
	// answer: what is being redacted is the server's (an answer, a server
	// message), so no value in it is one the client made.
	answer bool
}

// secret is a value to replace.
type secret struct {
	placeholder string
	// echo: the value is replaced wherever it appears in the session, not
	// only where it was found.
	echo bool
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
	p := sc.add(name, v, strongSecret)
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
		sc.ph[value] = secret{placeholder: p, echo: true}
	}
}

// add returns the placeholder of value, a secret found under name, and
// notes it for replacing where it is echoed: always for a strong name, and
// for a weak one when the value looks like a credential. A session id the
// client made (clientMade) is returned as it is.
func (sc *secrets) add(name, value string, st strength) string {
	if value == "" || strings.HasPrefix(value, "{{") {
		return value
	}
	s, ok := sc.ph[value]
	if !ok && st == sessionSecret && !sc.answer && clientMade(value) {
		return value
	}
	echo := st == strongSecret || credentialLike(value)
	if ok {
		if echo && !s.echo {
			s.echo = true
			sc.ph[value] = s
		}
		return s.placeholder
	}
	p := sc.rd.placeholder(name, value)
	sc.ph[value] = secret{placeholder: p, echo: echo}
	return p
}

// Session redacts s in place.
func (rd *Redactor) Session(s *traces.Session) { rd.part(s, rd.secrets()) }

// secrets returns an empty set of a session's secrets.
func (rd *Redactor) secrets() *secrets { return &secrets{rd: rd, ph: map[string]secret{}} }

// part redacts s, a session or a part of one, in place, with sc holding
// the secrets its earlier parts had, so that a secret found in one part is
// replaced where a later part echoes it.
func (rd *Redactor) part(s *traces.Session, sc *secrets) {
	bodies := rd.decodeBodies(s)
	defer rd.encodeBodies(bodies)
	defer stillTruncated(s)
	sc.answer = false
	// First the places where secrets live by definition, in order, so that a
	// secret is named after where it first appeared.
	for i := range s.Exchanges {
		ex := &s.Exchanges[i]
		ex.URL = sc.query(ex.URL)
		sc.headers(ex.ReqHeader)
		ex.ReqBody.Data = sc.body(ex.ReqHeader, ex.ReqBody.Data)
		sc.answer = true
		sc.headers(ex.RespHeader)
		ex.RespBody.Data = sc.body(ex.RespHeader, ex.RespBody.Data)
		if ws := ex.WebSocket; ws != nil {
			for j := range ws.Frames {
				f := &ws.Frames[j]
				if f.Opcode == traces.OpText {
					sc.answer = !f.FromClient
					f.Payload.Data = sc.message(f.Payload.Data)
				}
			}
		}
		sc.answer = false
	}
	r := sc.echoes()
	if r == nil {
		return
	}
	// Then every other place a secret was echoed: headers, URLs, bodies,
	// frames.
	s.Client = r.replace(s.Client)
	for i := range s.Exchanges {
		ex := &s.Exchanges[i]
		ex.URL = r.replace(ex.URL)
		r.headers(ex.ReqHeader)
		r.headers(ex.RespHeader)
		ex.ReqBody.Data = r.bytes(ex.ReqBody.Data)
		ex.RespBody.Data = r.bytes(ex.RespBody.Data)
		if ws := ex.WebSocket; ws != nil {
			for j := range ws.Frames {
				ws.Frames[j].Payload.Data = r.bytes(ws.Frames[j].Payload.Data)
			}
		}
	}
}

// stillTruncated keeps the bodies of s that were recorded truncated
// shorter than their size, which placeholders longer than the values they
// replaced could have made them: a trace cannot carry more bytes of a body
// than its size. What is cut is the end of what was kept, redacted.
func stillTruncated(s *traces.Session) {
	fit := func(b *traces.Body) {
		if b.Size > 0 && int64(len(b.Data)) >= b.Size {
			b.Data = b.Data[:b.Size-1]
		}
	}
	for i := range s.Exchanges {
		ex := &s.Exchanges[i]
		fit(&ex.ReqBody)
		fit(&ex.RespBody)
		if ws := ex.WebSocket; ws != nil {
			for j := range ws.Frames {
				fit(&ws.Frames[j].Payload)
			}
		}
	}
}

// echoer replaces the secrets of a session wherever they were echoed.
type echoer struct {
	r    *strings.Replacer
	olds [][]byte // what r replaces, for telling cheaply that it has nothing to do
}

// echoes returns the echoer of the session's secrets, or nil if none is
// replaced where echoed: each secret as found, JSON-escaped and
// URL-escaped, longer values first, so a secret that contains another is
// replaced whole.
func (sc *secrets) echoes() *echoer {
	var vals []string
	for v, s := range sc.ph {
		if s.echo && len(v) >= minEchoLength {
			vals = append(vals, v)
		}
	}
	if len(vals) == 0 {
		return nil
	}
	slices.SortFunc(vals, func(a, b string) int {
		if len(a) != len(b) {
			return len(b) - len(a)
		}
		return strings.Compare(a, b)
	})
	e := &echoer{}
	var pairs []string
	for _, v := range vals {
		p := sc.ph[v].placeholder
		pairs = append(pairs, v, p)
		if esc := traces.EscapeJSONString(v); esc != v {
			pairs = append(pairs, esc, p)
		}
		if esc := url.QueryEscape(v); esc != v {
			pairs = append(pairs, esc, p)
		}
	}
	for i := 0; i < len(pairs); i += 2 {
		e.olds = append(e.olds, []byte(pairs[i]))
	}
	e.r = strings.NewReplacer(pairs...)
	return e
}

// maxLookups is how many secrets an echoer looks up one by one before it
// runs its replacer, which would copy: past it, the replacer's one pass
// over the text is quicker (an answer that lists thousands of tokens).
const maxLookups = 16

func (e *echoer) replace(s string) string {
	if len(e.olds) > maxLookups {
		return e.r.Replace(s)
	}
	for _, o := range e.olds {
		if strings.Contains(s, string(o)) {
			return e.r.Replace(s)
		}
	}
	return s
}

func (e *echoer) headers(hs []traces.Header) {
	for i := range hs {
		hs[i].Value = e.replace(hs[i].Value)
	}
}

// bytes returns b with the secrets replaced: b itself, not copied, when
// none is in it.
func (e *echoer) bytes(b []byte) []byte {
	if len(b) == 0 {
		return b
	}
	if len(e.olds) > maxLookups {
		if s := e.r.Replace(string(b)); s != string(b) {
			return []byte(s)
		}
		return b
	}
	for _, o := range e.olds {
		if contains(b, o) {
			return []byte(e.r.Replace(string(b)))
		}
	}
	return b
}

// contains is bytes.Contains, but looks a long secret (a JWT) up by its
// first bytes: bytes.Index takes those on its vector path, while for a
// long one whose first byte is common in b (a hex file) it falls back to
// Rabin-Karp, several times slower.
func contains(b, o []byte) bool {
	const prefix = 32
	if len(o) <= prefix {
		return bytes.Contains(b, o)
	}
	for i := 0; i+len(o) <= len(b); i++ {
		j := bytes.Index(b[i:], o[:prefix])
		if j < 0 {
			return false
		}
		i += j
		if bytes.HasPrefix(b[i:], o) {
			return true
		}
	}
	return false
}

// secretHeader reports a header whose value is a secret: one whose name
// names a secret (X-API-Key, Apikey, X-Auth-Token, X-Session,
// X-Amz-Signature), or one the user named.
func (rd *Redactor) secretHeader(name string) strength {
	if st := secretName(name, inHeader); st != notSecret {
		return st
	}
	for _, h := range rd.headers {
		if strings.EqualFold(h, name) {
			return strongSecret
		}
	}
	return notSecret
}

// headers redacts credential headers in place.
func (sc *secrets) headers(hs []traces.Header) {
	for i := range hs {
		h := &hs[i]
		switch name := h.Name; {
		case eqFold(name, "authorization"), eqFold(name, "proxy-authorization"):
			scheme, cred, ok := strings.Cut(h.Value, " ")
			if !ok {
				h.Value = sc.add("authorization", h.Value, strongSecret)
				continue
			}
			h.Value = scheme + " " + sc.add(strings.ToLower(scheme), cred, strongSecret)
		case eqFold(name, "cookie"):
			pairs := strings.Split(h.Value, ";")
			for j, p := range pairs {
				name, value, ok := strings.Cut(p, "=")
				if !ok {
					continue
				}
				pairs[j] = name + "=" + sc.cookie(strings.TrimSpace(name), value)
			}
			h.Value = strings.Join(pairs, ";")
		case eqFold(name, "sec-websocket-key"), eqFold(name, "sec-websocket-accept"):
			// A nonce of the handshake, not a secret.
		case eqFold(name, "location"), eqFold(name, "content-location"), eqFold(name, "referer"):
			h.Value = sc.query(h.Value)
		case eqFold(name, "set-cookie"):
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
			if st := sc.rd.secretHeader(name); st != notSecret {
				h.Value = sc.add(strings.ToLower(name), h.Value, st)
			}
		}
	}
}

// contentType returns the Content-Type of a body, lower case, and as sent
// (for a multipart boundary).
func contentType(hs []traces.Header) (lower, raw string) {
	for _, h := range hs {
		if strings.EqualFold(h.Name, "Content-Type") {
			return strings.ToLower(h.Value), h.Value
		}
	}
	return "", ""
}

// body redacts the secret fields of a body by its Content-Type: JSON
// (also when the type does not say so), a URL-encoded or multipart form, a
// server-sent event stream.
func (sc *secrets) body(hs []traces.Header, b []byte) []byte {
	if len(b) == 0 {
		return b
	}
	ct, raw := contentType(hs)
	switch {
	case strings.HasPrefix(ct, "multipart/"):
		return sc.multipart(raw, b)
	case strings.HasPrefix(ct, "text/event-stream"):
		return sc.events(b)
	case strings.HasPrefix(ct, "application/x-www-form-urlencoded"):
		if red := sc.form(string(b)); red != string(b) {
			return []byte(red)
		}
		return b
	}
	return sc.jsonFields(b)
}
