package replay

import (
	"bytes"
	"encoding/json"
	"net/url"
	"slices"
	"strings"

	"github.com/thrive-loadtest/thrive/report"
	"github.com/thrive-loadtest/thrive/traces"
)

// An answer is judged by what it says, not only by its status. Servers
// refuse in many forms that all come with a 200 or a 101: a redirect to
// the login page once the session is lost, a form shown again with its
// errors where the change was made before, {"ok":false}, an ActionCable
// {"type":"reject_subscription"}, a Phoenix reply whose status is "error".
// What the recording had at a step is what was meant: a live answer is a
// failure only where it refuses and the recorded one did not refuse so.
// (--strict-status, Locust's plain view, judges statuses alone.)

// Answer verdicts that are failures.
const (
	// errRedirectLogin: sent to a login page (the session was lost).
	errRedirectLogin report.ErrorKind = "redirect: login"
	// errRedirectElsewhere: a redirect to another kind of page than the
	// recorded one's.
	errRedirectElsewhere report.ErrorKind = "redirect: elsewhere"
	// errBadHandshake is a WebSocket handshake answered with no upgrade
	// (RFC 6455 §4.1: a wrong Sec-WebSocket-Accept, or no 101).
	errBadHandshake report.ErrorKind = "bad handshake"
	// errFrameTooLarge is a server message past maxFrame.
	errFrameTooLarge report.ErrorKind = "frame too large"
	// errFormRefused: a change answered with a page (the form and its
	// errors) where the recording had a redirect.
	errFormRefused report.ErrorKind = "form refused"
	// errUnexpectedRedirect: a redirect where the recording had a page.
	errUnexpectedRedirect report.ErrorKind = "unexpected redirect"
	// errClosedEarly: a socket the server closed before its recorded end.
	errClosedEarly report.ErrorKind = "closed by server"
)

// expectation is what a step's recorded answer says it should get.
type expectation struct {
	// location is the recorded redirect's target path, folded as
	// endpoints are (/posts/{id}/); toLogin when it named a login.
	location string
	toLogin  bool
	// queryError marks a recorded redirect that carried an error in its
	// query already.
	queryError bool
	// changes marks a request that changes something (not GET, HEAD or
	// OPTIONS): a page where it had a redirect is a refused form.
	changes bool
	// first is the session's first page (folded): a redirect there is one
	// to where a visit begins, as a login is.
	first string
	// said lists the refusals the recorded answer stated itself
	// (path=value): the live answer saying them is as recorded.
	said []string
	// judgeBody marks a recorded answer in JSON: the live one is read and
	// held to it.
	judgeBody bool
}

// expectationOf makes the expectation of exchange ex of a session whose
// first page is first.
func expectationOf(ex *traces.Exchange, first string) expectation {
	x := expectation{changes: !safeMethod(ex.Method), first: first}
	if redirect(ex.Status) {
		if loc := respHeader(ex, "Location"); loc != "" {
			x.location = folded(loc)
			x.toLogin = loginPage(loc)
			x.queryError = queryError(loc) != ""
		}
	}
	if ex.WebSocket != nil {
		return x
	}
	if b, ok := ex.ResponseContent(); ok && jsonDoc(jsonPart(b)) {
		x.judgeBody = true
		x.said = refusalsOf(b)
	}
	return x
}

// redirect reports a status that sends the client elsewhere (not a 304).
func redirect(status int) bool {
	return status == 301 || status == 302 || status == 303 || status == 307 || status == 308
}

// folded returns the path of a URL or path, its identifiers folded.
func folded(u string) string {
	return strings.TrimPrefix(traces.Template("", u), " ")
}

// loginPage reports whether a redirect's target is where a visitor proves
// who they are: a path naming a login. (A redirect to the page the visit
// began at is one too where the recorded one went elsewhere; see
// judgeStatus: a login's success often goes back there.)
func loginPage(loc string) bool {
	l := strings.ToLower(folded(loc))
	for _, w := range []string{"login", "log_in", "log-in", "signin", "sign_in", "sign-in", "auth", "sso", "session/new", "sessions/new"} {
		if strings.Contains(l, w) {
			return true
		}
	}
	return false
}

// judgeStatus returns the failure a live answer's status and Location
// state against the recorded answer's, or "".
func (x *expectation) judgeStatus(recorded, status int, loc []byte) report.ErrorKind {
	switch {
	case redirect(status) && len(loc) > 0:
		l := string(loc)
		if e := queryError(l); e != "" && !x.queryError {
			// An OAuth/OIDC refusal goes back to the client's redirect
			// URI with error=access_denied (RFC 6749, 4.1.2.1).
			return report.ErrorKind("redirect: " + e)
		}
		toStart := x.first != "" && folded(l) == x.first && x.location != x.first
		if (loginPage(l) || toStart) && (!redirect(recorded) || !x.toLogin) {
			return errRedirectLogin
		}
		switch {
		case redirect(recorded) && x.location != "" && !x.toLogin && !sameKind(folded(l), x.location):
			return errRedirectElsewhere
		case recorded >= 200 && recorded < 300:
			return errUnexpectedRedirect
		}
	case status >= 200 && status < 300 && redirect(recorded) && x.changes:
		return errFormRefused
	}
	return ""
}

// judgeBody returns the refusal a live JSON answer or frame states that
// the recorded one did not, or "".
func judgeBody(b []byte, said []string) report.ErrorKind { return judgeAt(b, said, maxSaidDepth) }

// judgePush is judgeBody for a frame that answers no message (a
// broadcast, a server's own notice): only its own top-level fields tell,
// not the payload it carries, which may be about someone else (another
// user's presence_diff, {"type":"user_disconnected"} in a chat).
func judgePush(b []byte, said []string) report.ErrorKind { return judgeAt(b, said, 0) }

// judgeAt is judgeBody reading nested objects to depth.
func judgeAt(b []byte, said []string, depth int) report.ErrorKind {
	var name string
	messages(b, func(doc []byte, args, connectError bool) bool {
		if connectError {
			if !slices.Contains(said, connectErrorSaid) {
				name = "connect_error"
			}
			return name == ""
		}
		if !jsonDoc(doc) {
			// A text protocol's frame says what it is in its first word
			// (STOMP's ERROR).
			if w := firstWord(doc); failureWord(w) && !slices.Contains(said, "text="+string(w)) {
				name = string(w)
			}
			return name == ""
		}
		// The scan is safe on any bytes: no json.Valid pass first, which
		// would cost more than it.
		scanRefusals(doc, args, depth, func(key, value, named string) bool {
			for _, s := range said {
				if len(s) == len(key)+1+len(value) && strings.HasPrefix(s, key) && s[len(key)] == '=' && strings.HasSuffix(s, value) {
					return true // as recorded
				}
			}
			name = named
			return false
		})
		return name == ""
	})
	return report.ErrorKind(name)
}

// connectErrorSaid is how a recorded Socket.IO connect error is kept
// among the refusals an answer said.
const connectErrorSaid = "socket.io=connect_error"

// refusalsOf lists the refusals a recorded answer or frame states, as
// path=value.
func refusalsOf(b []byte) []string {
	var out []string
	messages(b, func(doc []byte, args, connectError bool) bool {
		switch {
		case connectError:
			out = append(out, connectErrorSaid)
		case !jsonDoc(doc):
			if w := firstWord(doc); failureWord(w) {
				out = append(out, "text="+string(w))
			}
		case json.Valid(doc):
			scanRefusals(doc, args, maxSaidDepth, func(key, value, _ string) bool {
				out = append(out, key+"="+value)
				return true
			})
		}
		return true
	})
	return out
}

// messages calls fn, until it returns false, for each message of an
// answer or a frame: the body itself, or each packet of an Engine.IO
// payload (separated by 0x1e), with its JSON document (after an XSSI
// guard or a packet type's digits), whether the document is an argument
// list (digits before an array: Socket.IO's 42["event",{…}] and acks,
// 43N[{…}]), and whether the packet is a Socket.IO connect error
// (44{"message":…}).
func messages(b []byte, fn func(doc []byte, args, connectError bool) bool) {
	for len(b) > 0 {
		p := b
		if i := bytes.IndexByte(b, 0x1e); i >= 0 {
			p, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		p = bytes.TrimSpace(p)
		doc := jsonPart(p)
		prefix := p[:len(p)-len(doc)]
		digits := len(prefix) > 0 && strings.Trim(string(prefix), "0123456789") == ""
		if !fn(doc, digits && len(doc) > 0 && doc[0] == '[', digits && string(prefix) == "44" && len(doc) > 0 && doc[0] == '{') {
			return
		}
	}
}

// maxSaidDepth bounds how deep in nested objects a refusal is looked for:
// a message's own fields and those of its payload (Phoenix's
// payload.status, Jupyter's content.status), not the records of a list.
const maxSaidDepth = 2

// scanRefusals calls fn for each refusal the valid JSON document b states,
// with its path (keys joined by dots), its value and a name for reports,
// until fn returns false. A refusal is a field that says what a message is
// or how it went (type, status, event, result...) holding a word of
// failure (error, rejected, denied, invalid, not_found...); a boolean that
// says success being false (ok, success) or one that says failure being
// true; or an error field (error, errors) that is not empty. Fields are
// read in objects reached through objects, and in the elements of a
// top-level array that is a message rather than a list (one that holds a
// word: Phoenix's [join_ref, ref, topic, event, payload], Socket.IO's
// ["event", {...}]); never in the records of a list. It allocates only
// for what it finds.
func scanRefusals(b []byte, args bool, maxDepth int, fn func(path, value, name string) bool) {
	s := jsonScan{b: b}
	s.space()
	var keys [maxSaidDepth + 1][]byte
	var label []byte // the latest word a discriminating field said, to name a nested refusal
	var object func(depth int) bool
	// str moves past the string at s.i and returns its raw text; false
	// when it is not terminated (a document cut short).
	str := func() ([]byte, bool) {
		from := s.i
		s.skipString()
		if s.i-from < 2 || s.b[s.i-1] != '"' {
			return nil, false
		}
		return s.b[from+1 : s.i-1], true
	}
	value := func(depth int, key []byte) bool {
		s.space()
		if s.i >= len(s.b) {
			return false
		}
		from := s.i
		switch c := s.b[s.i]; {
		case c == '{' && depth < maxDepth && !errorField(key):
			keys[depth] = key
			return object(depth + 1)
		case c == '"':
			raw, ok := str()
			if !ok {
				return false
			}
			switch {
			case errorField(key) && len(raw) > 0:
				if !fn(pathOf(keys[:depth], key), string(raw), nameOf(label, raw, key)) {
					return false
				}
			case discriminating(key) && failureWord(raw):
				if !fn(pathOf(keys[:depth], key), string(raw), nameOf(label, raw, nil)) {
					return false
				}
			case discriminating(key) && word(raw):
				label = raw
			}
		case c == 't' || c == 'f':
			s.skipScalar()
			v := s.b[from:s.i]
			if v[0] == 'f' && successField(key) || v[0] == 't' && failureWord(key) {
				if !fn(pathOf(keys[:depth], key), string(v), string(key)+":"+string(v)) {
					return false
				}
			}
		case c == '{' || c == '[':
			s.skip()
			if errorField(key) && !emptyJSON(s.b[from:s.i]) {
				if !fn(pathOf(keys[:depth], key), "…", string(key)) {
					return false
				}
			}
		default:
			s.skip()
		}
		return true
	}
	object = func(depth int) bool {
		s.i++ // {
		for {
			s.space()
			if s.i >= len(s.b) || s.b[s.i] == '}' {
				s.i++
				return true
			}
			if s.b[s.i] != '"' {
				return false // not JSON
			}
			key, ok := str()
			if !ok {
				return false
			}
			s.space()
			if s.i >= len(s.b) || s.b[s.i] != ':' {
				return false
			}
			s.i++
			if !value(depth, key) {
				return false
			}
			s.space()
			switch {
			case s.i < len(s.b) && s.b[s.i] == ',':
				s.i++
			case s.i < len(s.b) && s.b[s.i] != '}':
				return false // not JSON
			}
		}
	}
	switch {
	case s.i >= len(s.b):
	case s.b[s.i] == '{':
		object(0)
	case s.b[s.i] == '[' && (args || tuple(b[s.i:])):
		s.i++
		for n := 0; ; n++ {
			s.space()
			if s.i >= len(s.b) || s.b[s.i] == ']' {
				return
			}
			switch c := s.b[s.i]; c {
			case '{':
				if maxDepth < 1 {
					s.skip() // a payload, not read at this depth
				} else if !object(1) {
					return
				}
			case '"':
				raw, ok := str()
				if !ok {
					return
				}
				if word(raw) {
					if failureWord(raw) {
						if !fn("["+string(rune('0'+min(n, 9)))+"]", string(raw), nameOf(label, raw, nil)) {
							return
						}
					} else {
						label = raw
					}
				}
			default:
				s.skip()
			}
			s.space()
			switch {
			case s.i < len(s.b) && s.b[s.i] == ',':
				s.i++
			case s.i < len(s.b) && s.b[s.i] != ']':
				return // not JSON
			}
		}
	}
}

// tuple reports whether the top-level array b is a message rather than a
// list: it holds a string that is a word (an event's name).
func tuple(b []byte) bool {
	s := jsonScan{b: b, i: 1}
	for {
		s.space()
		if s.i >= len(s.b) || s.b[s.i] == ']' {
			return false
		}
		if s.b[s.i] == '"' {
			from := s.i
			s.skipString()
			if s.i-from >= 2 && s.b[s.i-1] == '"' && word(s.b[from+1:s.i-1]) {
				return true
			}
		} else {
			s.skip()
		}
		s.space()
		switch {
		case s.i < len(s.b) && s.b[s.i] == ',':
			s.i++
		case s.i < len(s.b) && s.b[s.i] != ']':
			return false // not JSON
		}
	}
}

func pathOf(keys [][]byte, key []byte) string {
	var b strings.Builder
	for _, k := range keys {
		b.Write(k)
		b.WriteByte('.')
	}
	b.Write(key)
	return b.String()
}

// nameOf names a refusal for reports: its word, after the word that said
// what the message was when there was one (phx_reply:error), or the error
// field's name when its value is not a word.
func nameOf(label, raw, key []byte) string {
	v := string(raw)
	if !word(raw) {
		v = string(key)
	}
	if len(label) > 0 && !bytes.Equal(label, raw) && bytes.IndexByte(label, ':') < 0 { // not a topic (room:lobby)
		v = string(label) + ":" + v
	}
	if len(v) > maxErrorKind {
		v = v[:maxErrorKind]
	}
	return v
}

func emptyJSON(b []byte) bool {
	b = bytes.TrimSpace(b)
	if len(b) < 2 {
		return true
	}
	return len(bytes.TrimSpace(b[1:len(b)-1])) == 0
}

// word reports a short text of letters, digits, '_', '-', '.' and ':' that
// begins with a letter: a name, not a sentence or an identifier.
func word(b []byte) bool {
	if len(b) == 0 || len(b) > 40 || !letter(b[0]) {
		return false
	}
	digits := 0
	for _, c := range b {
		switch {
		case letter(c), c == '_', c == '-', c == '.', c == ':':
		case c >= '0' && c <= '9':
			digits++
		default:
			return false
		}
	}
	return digits <= 2
}

func letter(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }

// keyOneOf reports whether key, ignoring case, is one of names.
func keyOneOf(key []byte, names ...string) bool {
	for _, n := range names {
		if len(key) == len(n) && strings.EqualFold(string(key), n) {
			return true
		}
	}
	return false
}

// discriminating reports a field that says what a message is or how it
// went.
func discriminating(key []byte) bool {
	return keyOneOf(key, "type", "status", "state", "event", "op", "result", "msg_type", "msgtype", "execution_state",
		"kind", "action", "outcome", "phase", "stage", "code", "reply", "response", "cmd", "command")
}

// errorField reports a field whose presence with a value is an error.
func errorField(key []byte) bool {
	return keyOneOf(key, "error", "errors", "exception", "fault", "error_code", "errorcode", "error_message", "errormessage")
}

// successField reports a boolean field that says success when true.
func successField(key []byte) bool {
	return keyOneOf(key, "ok", "success", "succeeded", "successful", "accepted", "valid", "authorized", "authenticated", "allowed")
}

// failurePart reports whether a word, or a part of a name
// (reject_subscription, AuthFailed), says failure.
func failurePart(part []byte) bool {
	var buf [24]byte
	if len(part) > len(buf) {
		return false
	}
	for i, c := range part {
		buf[i] = c | 0x20 // letters only reach here lower-cased; '_' and digits are cut or kept
	}
	switch string(buf[:len(part)]) {
	case "error", "errors", "err", "fail", "fails", "failed", "failure", "failing", "errored", "reject", "rejected", "rejection",
		"deny", "denied", "forbidden", "unauthorized", "unauthorised", "unauthenticated", "invalid", "refuse", "refused",
		"expired", "disconnect", "disconnected", "exception", "abort", "aborted", "timeout", "timedout", "conflict",
		"unavailable", "banned", "blocked", "nack", "killed", "crashed", "revoked", "notfound":
		return true
	}
	return false
}

// failureWord reports whether a word says failure: it is one of the
// failure words, or one of its parts (split at '_', '-', '.', ':' and
// lower-to-upper case changes) is, or a part is "not" before another
// (not_found, not_allowed).
func failureWord(b []byte) bool {
	if !word(b) {
		return false
	}
	start := 0
	for i := 0; i <= len(b); i++ {
		cut := i == len(b) || b[i] == '_' || b[i] == '-' || b[i] == '.' || b[i] == ':' ||
			i > start && b[i] >= 'A' && b[i] <= 'Z' && b[i-1] >= 'a' && b[i-1] <= 'z'
		if !cut {
			continue
		}
		part := b[start:i]
		if failurePart(part) || keyOneOf(part, "not") && i < len(b) {
			return true
		}
		start = i
		if i < len(b) && (b[i] < 'A' || b[i] > 'Z') {
			start = i + 1
		}
	}
	return false
}

// respHeader returns the first value of an answer's header name.
func respHeader(ex *traces.Exchange, name string) string {
	for _, h := range ex.RespHeader {
		if strings.EqualFold(h.Name, name) {
			return h.Value
		}
	}
	return ""
}

// sameKind reports whether two folded paths name the same kind of page:
// the same segments, but where both are values (an id with its slug,
// /boards/15-roadmap; a name, /notes/my-first-note).
func sameKind(a, b string) bool {
	as, bs := strings.Split(a, "/"), strings.Split(b, "/")
	if len(as) != len(bs) {
		return false
	}
	for i := range as {
		if as[i] != bs[i] && (!valueLike(as[i]) || !valueLike(bs[i])) {
			return false
		}
	}
	return true
}

// valueLike reports a path segment that is a value rather than a name of
// the application's: with a digit or a '{' (folded), or words joined.
func valueLike(seg string) bool {
	return strings.ContainsAny(seg, "0123456789{-_.~%") || len(seg) >= 16
}

// queryError returns the error a redirect's query states (error=,
// error_code=), named by its value when that is a word; "" when none.
func queryError(loc string) string {
	_, q, ok := strings.Cut(loc, "?")
	if !ok {
		return ""
	}
	q, _, _ = strings.Cut(q, "#")
	vals, err := url.ParseQuery(q)
	if err != nil {
		return ""
	}
	for _, k := range []string{"error", "error_code", "errorCode"} {
		if v := vals.Get(k); v != "" {
			if word([]byte(v)) {
				return v
			}
			return "error"
		}
	}
	return ""
}

// firstWord returns a text message's first word: up to a space, a colon
// or the end of its first line.
func firstWord(b []byte) []byte {
	for i, c := range b {
		if c == ' ' || c == ':' || c == '\n' || c == '\r' || c == 0 {
			return b[:i]
		}
	}
	return b
}
