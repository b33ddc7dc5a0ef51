package replay

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/thrive-loadtest/thrive/traces"
)

// A value the server gave is followed wherever it goes, whatever the shape
// of the answer that gave it: a Socket.IO handshake (0{"sid":"…"}), a token
// in a script (window.csrf = "…"), a JSON document in an HTML attribute, a
// value in plain text. After the answers' known places (JSON paths, forms,
// links, headers) have been read, every token a request sends that an
// earlier answer's text held before any request had sent it becomes a
// variable found again by its left boundary: the text just before it in
// that answer (up to a delimiter, at most maxLeft bytes, no digits: those
// differ from user to user), and which occurrence of that text it
// followed. This is how LoadRunner's and JMeter's correlation recorders
// find values by boundaries, made automatic.

// maxLeft is the longest left boundary; minLeft the shortest that says
// where a value is.
const (
	maxLeft = 32
	minLeft = 3
	// maxTokenized is how much of an answer is read for tokens.
	maxTokenized = 1 << 20
)

// tokenChar reports the bytes of a token: letters, digits and - _ . ~
// (URL-safe base64, UUIDs, JWTs, hex).
func tokenChar(c byte) bool { return alnum(c) || c == '-' || c == '_' || c == '.' || c == '~' }

// leftStop reports the bytes a left boundary does not reach past: the
// delimiters of the text around a value (see delimiter), digits (which
// differ from user to user) and the inner bytes of base64 (+ /).
func leftStop(c byte) bool {
	return delimiter(c) || c >= '0' && c <= '9' || c == '+' || c == '/'
}

// delimiter reports the bytes that end what stands before a value.
func delimiter(c byte) bool {
	return c == '\n' || c == '\r' || c == '<' || c == '>' || c == '{' || c == '}' || c == '[' || c == ']' ||
		c == ',' || c == '(' || c == ')' || c == '?'
}

// tokenLike reports a token that is a value made for someone, not a word
// or a small number: 8 or more bytes with letters and digits, 16 or more
// with both cases, or 6 or more digits.
func tokenLike(t string) bool {
	var letter, digit, upper, lower bool
	for i := range len(t) {
		switch c := t[i]; {
		case c >= '0' && c <= '9':
			digit = true
		case c >= 'a' && c <= 'z':
			letter, lower = true, true
		case c >= 'A' && c <= 'Z':
			letter, upper = true, true
		}
	}
	if len(t) >= 10 && isDigits(t[:4]) && t[4] == '-' && isDigits(t[5:7]) && t[7] == '-' {
		return false // a date: 2026-12-06T05, which clocks give everyone
	}
	switch {
	case letter && digit:
		return len(t) >= 8
	case digit:
		return len(t) >= 6 && isDigits(t) // not 127.0.0.1, 2024-01-31
	default:
		return len(t) >= 16 && upper && lower
	}
}

// eachToken calls f for each token-like token of b.
func eachToken(b []byte, f func(t string)) {
	for i := 0; i < len(b); {
		if !tokenChar(b[i]) {
			i++
			continue
		}
		j := i
		for j < len(b) && tokenChar(b[j]) {
			j++
		}
		// A token's edges are not its dots: "abc123." ends a sentence.
		// (Base64url ends with - or _ as well as any letter.)
		s, e := i, j
		for s < e && b[s] == '.' {
			s++
		}
		for e > s && b[e-1] == '.' {
			e--
		}
		if t := b[s:e]; len(t) >= 6 && tokenLike(string(t)) {
			f(string(t))
		}
		i = j
	}
}

// staticAsset reports a request path of a file the page loads (a script,
// a style sheet, an image, a font): the tokens in its name are the build's
// fingerprints, not anyone's values.
func staticAsset(path string) bool {
	path, _, _ = strings.Cut(path, "?")
	dot := strings.LastIndexByte(path, '.')
	if dot < 0 || dot < strings.LastIndexByte(path, '/') {
		return false
	}
	switch strings.ToLower(path[dot+1:]) {
	case "js", "mjs", "css", "map", "png", "jpg", "jpeg", "gif", "svg", "ico", "webp", "avif", "woff", "woff2", "ttf", "otf", "eot":
		return true
	}
	return false
}

// sentTokens calls f for the token-like tokens a request sends where a
// value could go back: its target (unless it loads a static file), its
// headers but cookies, its body and its WebSocket messages.
func sentTokens(ex *traces.Exchange, f func(t string)) {
	if !staticAsset(ex.URL) {
		eachToken([]byte(ex.URL), f)
	}
	for _, h := range ex.ReqHeader {
		if !strings.EqualFold(h.Name, "Cookie") && !hopHeader(h.Name) && !strings.EqualFold(h.Name, "User-Agent") {
			eachToken([]byte(h.Value), f)
		}
	}
	eachToken(ex.ReqBody.Data, f)
	if ws := ex.WebSocket; ws != nil {
		for _, fr := range ws.Frames {
			if fr.FromClient {
				eachToken(fr.Payload.Data, f)
			}
		}
	}
}

// answerText is the part of an answer whose tokens are read: a body that
// is text.
func answerText(ex *traces.Exchange) []byte {
	b := ex.RespBody.Data
	if ex.RespBody.Truncated() || len(b) == 0 || bytes.IndexByte(b[:min(len(b), 512)], 0) >= 0 {
		return nil
	}
	return b[:min(len(b), maxTokenized)]
}

// indexToken returns where t first stands as a whole token in b, or -1.
func indexToken(b []byte, t string) int {
	for i := 0; ; {
		j := bytes.Index(b[i:], []byte(t))
		if j < 0 {
			return -1
		}
		at := i + j
		end := at + len(t)
		if (at == 0 || !tokenChar(b[at-1]) || b[at-1] == '.') && (end == len(b) || !tokenChar(b[end]) || b[end] == '.') {
			return at
		}
		i = at + 1
	}
}

// boundaryPlace returns the place of token t in the answer body b: its
// left boundary and which occurrence of it precedes t. It is false when t
// has no left boundary of minLeft bytes.
func boundaryPlace(b []byte, t string) (place, bool) {
	at := indexToken(b, t)
	if at < 0 {
		return place{}, false
	}
	start := at
	for start > 0 && at-start < maxLeft && !leftStop(b[start-1]) {
		start--
	}
	if start > 0 && !delimiter(b[start-1]) {
		// It stopped inside a word (at a digit, inside base64, at the
		// length limit): that word is the end of another value, not a
		// name; the boundary begins after it.
		for start < at && tokenChar(b[start]) {
			start++
		}
	}
	left := b[start:at]
	if len(bytes.TrimSpace(left)) < minLeft {
		return place{}, false
	}
	nth := 0
	for from := 0; ; nth++ {
		j := bytes.Index(b[from:at], left)
		if j < 0 {
			break
		}
		from += j + len(left)
	}
	return place{left: string(left), nth: nth - 1}, true
}

// boundaryValue finds the value at a boundary place in a live answer: the
// token after the nth occurrence of its left boundary.
func (p place) boundaryValue(b []byte) (string, bool) {
	from := 0
	for k := 0; k <= p.nth; k++ {
		j := bytes.Index(b[from:], []byte(p.left))
		if j < 0 {
			return "", false
		}
		from += j + len(p.left)
	}
	end := from
	for end < len(b) && tokenChar(b[end]) {
		end++
	}
	for end > from && b[end-1] == '.' {
		end--
	}
	return string(b[from:end]), end > from
}

// boundaryString names a boundary place for reports.
func (p place) boundaryString() string {
	if p.nth > 0 {
		return fmt.Sprintf("text after %q (#%d)", p.left, p.nth+1)
	}
	return fmt.Sprintf("text after %q", p.left)
}

// tokenSources follows the tokens of a session's answers: which answer
// gave each last, and which the client sent before any answer gave them.
type tokenSources struct {
	given      map[string]int  // token → the latest answer that held it
	clientMade map[string]bool // tokens a request sent before any answer held them
	fresh      map[string]int  // client-made UUIDs → their variable
	framed     map[string]bool // tokens a WebSocket's server frames gave
}

// answered reads the tokens of answer i.
func (ts *tokenSources) answered(i int, ex *traces.Exchange) {
	if ts.given == nil {
		ts.given = map[string]int{}
		ts.clientMade = map[string]bool{}
	}
	eachToken(answerText(ex), func(t string) { ts.given[t] = i })
	// A cookie's or a redirect's value is the server's too, though no
	// body holds it.
	for _, h := range ex.RespHeader {
		eachToken([]byte(h.Value), func(t string) {
			if _, ok := ts.given[t]; !ok {
				ts.given[t] = i
			}
		})
	}
}

// found adds, for each token request i of s sends that an earlier answer
// held first and no variable carries yet, a variable that finds it again
// by its boundary in that answer. It returns vars and uses with them.
func (ts *tokenSources) found(s *traces.Session, i int, vars []variable, uses [][]int, byValue map[string]int, rules *CorrelationRules) ([]variable, [][]int) {
	if ts.given == nil {
		ts.given, ts.clientMade = map[string]int{}, map[string]bool{}
	}
	carried := func(t string) bool {
		if _, ok := byValue[t]; ok {
			return true
		}
		for _, k := range uses[i] {
			if strings.Contains(vars[k].recorded, t) {
				return true
			}
		}
		return false
	}
	// A socket's message is sent later than its upgrade: an answer of a
	// request begun after the upgrade may have given what it sends (a
	// Socket.IO poll held open while the socket upgraded).
	late := lateAnswers(s, i)
	sentTokens(&s.Exchanges[i], func(t string) {
		if ts.framed[t] {
			return // the socket's own reply gave it (see frameFlow)
		}
		j, given := ts.given[t]
		if !given && !ts.clientMade[t] {
			if j, ok := late(t); ok {
				if carried(t) {
					return
				}
				p, ok := boundaryPlace(answerText(&s.Exchanges[j]), t)
				rule := traces.Endpoint(&s.Exchanges[j]) + " " + p.String()
				if !ok || rules.disabled(rule) {
					return
				}
				byValue[t] = len(vars)
				uses[i] = append(uses[i], len(vars))
				vars = append(vars, variable{recorded: t, from: j, place: p, rule: rule})
				return
			}
			ts.clientMade[t] = true
		}
		if ts.clientMade[t] && uuidShaped(t) {
			// A UUID the page made (a WebSocket's session id, an
			// idempotency key, an object's client-side id) is unique by
			// design: each virtual user makes its own.
			k, ok := ts.fresh[t]
			if !ok {
				if ts.fresh == nil {
					ts.fresh = map[string]int{}
				}
				k = len(vars)
				ts.fresh[t] = k
				vars = append(vars, variable{recorded: t, from: -1, fresh: true, rule: "client-made UUID (fresh per user)"})
			}
			if !slices.Contains(uses[i], k) {
				uses[i] = append(uses[i], k)
			}
			return
		}
		if ts.clientMade[t] {
			return
		}
		if carried(t) {
			return
		}
		p, ok := boundaryPlace(answerText(&s.Exchanges[j]), t)
		if !ok {
			return
		}
		rule := traces.Endpoint(&s.Exchanges[j]) + " " + p.String()
		if rules.disabled(rule) {
			return
		}
		byValue[t] = len(vars)
		uses[i] = append(uses[i], len(vars))
		vars = append(vars, variable{recorded: t, from: j, place: p, rule: rule})
	})
	return vars, uses
}

// lateAnswers returns, for a WebSocket exchange i of s, a look-up of the
// later exchanges whose answers ended before the first of i's messages
// that sends a token: the latest such (nil look-up for other exchanges).
func lateAnswers(s *traces.Session, i int) func(t string) (int, bool) {
	ws := s.Exchanges[i].WebSocket
	if ws == nil || i+1 == len(s.Exchanges) {
		return func(string) (int, bool) { return 0, false }
	}
	return func(t string) (int, bool) {
		at := time.Duration(-1)
		for _, f := range ws.Frames {
			if f.FromClient && indexToken(f.Payload.Data, t) >= 0 {
				at = f.Offset
				break
			}
		}
		best := -1
		for j := i + 1; j < len(s.Exchanges) && s.Exchanges[j].Offset < at; j++ {
			ex := &s.Exchanges[j]
			if ex.WebSocket == nil && ex.Offset+ex.Duration < at && indexToken(answerText(ex), t) >= 0 {
				best = j
			}
		}
		return best, best >= 0
	}
}

// uuidShaped reports a UUID as RFC 9562 writes it: 8-4-4-4-12 hex digits,
// of any version.
func uuidShaped(t string) bool {
	if len(t) != 36 {
		return false
	}
	for i := range len(t) {
		c := t[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if (c < '0' || c > '9') && (c < 'a' || c > 'f') && (c < 'A' || c > 'F') {
				return false
			}
		}
	}
	return true
}

// freshUUID returns a random (version 4) UUID written in the case of like.
func freshUUID(like string) string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	digits := "0123456789abcdef"
	if strings.ToUpper(like) == like {
		digits = "0123456789ABCDEF"
	}
	out := make([]byte, 0, 36)
	for i, c := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out = append(out, '-')
		}
		out = append(out, digits[c>>4], digits[c&0xf])
	}
	return string(out)
}

// frameFlow finds the values a WebSocket's server messages gave that its
// later client messages send back: a chat message's id its edit names, a
// join reply's token, a handshake's sid. Each becomes a variable of the
// socket's step read from the live frames of the reply it came in (frame:
// the index of the client message it answered, -1 before any), in the
// socket's own goroutine, which also sends the messages that use it.
// Values of the reply's JSON (after a packet-type prefix) are taken as
// from an answer; other tokens by their left boundary. Tokens the server
// frames gave are marked so that no HTTP answer is taken for them.
func (ts *tokenSources) frameFlow(s *traces.Session, i int, vars []variable, uses [][]int, rules *CorrelationRules) ([]variable, [][]int) {
	ws := s.Exchanges[i].WebSocket
	if ws == nil {
		return vars, uses
	}
	endpoint := traces.SocketEndpoint(s.Exchanges[i].Method, traces.Endpoint(&s.Exchanges[i]))
	local := map[string]int{}  // value → its variable
	tokens := map[string]int{} // token of a server frame → the frame
	// others are the variables of replies that gave a value local has
	// under another name (a card's $.id 1 and its $.boardId 1), and named
	// copies are those made of a variable for a name before the value in
	// a message's path (see byName).
	others := map[string][]int{}
	copies := map[string]int{}
	sent := map[string]bool{} // values client messages sent so far
	use := func(k int) {
		if !slices.Contains(uses[i], k) {
			uses[i] = append(uses[i], k)
		}
	}
	// What the client sent before the socket's messages (in its URL: a
	// session id the page made) is the client's when a reply echoes it.
	ex := &s.Exchanges[i]
	eachToken([]byte(ex.URL), func(t string) { sent[t] = true })
	// Small values only under an id's name (not EIO=4, whose 4 a reply
	// may give as a message's id).
	for name, v := range queryParams(ex.URL) {
		if idName(name) {
			sent[v] = true
		}
	}
	for _, h := range ex.ReqHeader {
		eachToken([]byte(h.Value), func(t string) { sent[t] = true })
	}
	clients := func(v string) bool { return sent[v] || ts.clientMade[v] }
	msg := -1
	for fi, f := range ws.Frames {
		if f.Opcode != traces.OpText && f.Opcode != traces.OpBinary {
			continue
		}
		payload := f.Payload.Data
		if f.FromClient {
			msg++
			ids := map[string]bool{}
			framePositions(payload, ids)
			// What the client sends in no id's name (a Phoenix ref "17",
			// a counter) does not make a small number its own.
			named := map[string]bool{}
			if doc, ok := decodeJSON(jsonPart(payload)); ok {
				walk(doc, nil, func(path []any, v string) {
					if !shortValue(v) || idPath(path) {
						named[v] = true
					}
				})
			}
			text := string(payload)
			for v, k := range local {
				if vars[k].short && ids[v] || !vars[k].short && sends(text, v) {
					use(k)
				}
			}
			// A value the replies gave under two names, sent in a path
			// after a name (destination:/app/boards/1/cards/1/move):
			// each place takes it from the source its name names.
			headerIDs(payload, func(id, name, sep string) {
				// The answers' before the socket first, the latest first:
				// known before any reply, whatever a new build's replies
				// call it.
				var cands []int
				for k := len(vars) - 1; k >= 0; k-- {
					if v := &vars[k]; !v.ws && !v.fresh && v.from >= 0 && v.from < i && v.recorded == id && v.prefix == "" {
						cands = append(cands, k)
					}
				}
				if k, ok := local[id]; ok {
					cands = append(append(cands, k), others[id]...)
				}
				k := byName(name, vars, cands)
				if k < 0 {
					return
				}
				key := name + sep + id + " " + strconv.Itoa(k)
				if c, ok := copies[key]; ok {
					use(c)
					return
				}
				v := vars[k]
				v.prefix, v.suffix, v.recorded, v.short = name+sep, "", name+sep+id, true
				v.rule += " (by context " + name + ")"
				copies[key] = len(vars)
				use(len(vars))
				vars = append(vars, v)
			})
			eachToken(payload, func(t string) {
				if _, ok := local[t]; ok {
					return
				}
				from, ok := tokens[t]
				if !ok || clients(t) {
					return
				}
				p, ok := boundaryPlace(ws.Frames[from].Payload.Data, t)
				if !ok {
					return
				}
				rule := endpoint + " reply " + p.String()
				if rules.disabled(rule) {
					return
				}
				local[t] = len(vars)
				use(len(vars))
				vars = append(vars, variable{recorded: t, from: i, ws: true, frame: frameOf(ws.Frames, from), place: p, rule: rule})
			})
			// A small id the message sends under an id's name that a
			// reply gave under any (a LiveView diff's dynamic "0": "17",
			// a list's element): the latest reply that holds it.
			if doc, ok := decodeJSON(jsonPart(payload)); ok {
				walk(doc, nil, func(path []any, v string) {
					if _, ok := local[v]; ok || !shortValue(v) || !idPath(path) || clients(v) {
						return
					}
					for j := fi - 1; j >= 0; j-- {
						g := ws.Frames[j]
						if g.FromClient || g.Opcode != traces.OpText && g.Opcode != traces.OpBinary {
							continue
						}
						var asked []byte // the message this reply answers
						for q := j - 1; q >= 0; q-- {
							if ws.Frames[q].FromClient {
								asked = ws.Frames[q].Payload.Data
								break
							}
						}
						p, ok := leafPath(g.Payload.Data, v, asked)
						if !ok {
							continue
						}
						rule := endpoint + " reply " + p.String()
						if rules.disabled(rule) {
							return
						}
						local[v] = len(vars)
						use(len(vars))
						vars = append(vars, variable{recorded: v, from: i, ws: true, frame: frameOf(ws.Frames, j), place: p, rule: rule, short: true})
						return
					}
				})
			}
			for v := range named {
				if _, ok := local[v]; !ok {
					sent[v] = true
				}
			}
			eachToken(payload, func(t string) {
				if _, ok := tokens[t]; !ok {
					sent[t] = true
				}
			})
			continue
		}
		eachToken(payload, func(t string) {
			if _, ok := tokens[t]; !ok && !clients(t) {
				tokens[t] = fi
				if ts.given == nil {
					ts.given, ts.clientMade = map[string]int{}, map[string]bool{}
				}
				if _, given := ts.given[t]; !given {
					ts.inFrames(t)
				}
			}
		})
		doc, ok := decodeJSON(jsonPart(payload))
		if !ok {
			continue
		}
		walk(doc, nil, func(path []any, v string) {
			short := shortValue(v)
			if short && !idPath(path) || clients(v) {
				return
			}
			if k, ok := local[v]; ok {
				if short && vars[k].place.path != nil && pathNoun(vars[k].place.path) != pathNoun(path) && !slices.ContainsFunc(others[v], func(o int) bool { return pathNoun(vars[o].place.path) == pathNoun(path) }) {
					p := place{path: append([]any(nil), path...)}
					others[v] = append(others[v], len(vars))
					vars = append(vars, variable{recorded: v, from: i, ws: true, frame: msg, place: p, rule: endpoint + " reply " + p.String(), short: true})
				}
				return
			}
			p := place{path: append([]any(nil), path...)}
			rule := endpoint + " reply " + p.String()
			if rules.disabled(rule) {
				return
			}
			local[v] = len(vars)
			vars = append(vars, variable{recorded: v, from: i, ws: true, frame: msg, place: p, rule: rule, short: short})
		})
	}
	return vars, uses
}

// leafPath returns the place of the JSON leaf of payload that is v and
// most likely an id: under an id's name, else in a list's element (a
// row), else any; never where the message it answers, asked, had the same
// value (an echoed ref).
func leafPath(payload []byte, v string, asked []byte) (place, bool) {
	doc, ok := decodeJSON(jsonPart(payload))
	if !ok {
		return place{}, false
	}
	var found []any
	rank := 0
	walk(doc, nil, func(path []any, leaf string) {
		if leaf != v {
			return
		}
		if a, ok := jsonAt(jsonPart(asked), path); ok && a == v {
			return
		}
		r := 1
		switch {
		case idPath(path):
			r = 3
		case inArray(path[min(1, len(path)):]):
			r = 2 // a row's, not the envelope's $[0]
		}
		if r > rank {
			found, rank = append([]any{}, path...), r
		}
	})
	return place{path: found}, found != nil
}

// inFrames marks a token a server frame gave: not the client's own.
func (ts *tokenSources) inFrames(t string) {
	if ts.framed == nil {
		ts.framed = map[string]bool{}
	}
	ts.framed[t] = true
}

// frameOf returns the index of the client message whose reply frame fi
// is (-1 before any).
func frameOf(frames []traces.Frame, fi int) int {
	msg := -1
	for _, f := range frames[:fi] {
		if f.FromClient && (f.Opcode == traces.OpText || f.Opcode == traces.OpBinary) {
			msg++
		}
	}
	return msg
}

// framePositions adds to into the values a message sends in id positions:
// its JSON values (after a packet-type prefix), or its form values.
func framePositions(payload []byte, into map[string]bool) { framePositionsOf(payload, into, false) }

// framePositionsOf is framePositions, with named: only the JSON values
// under an id's name (see namedPositions).
func framePositionsOf(payload []byte, into map[string]bool, named bool) {
	if doc, ok := decodeJSON(jsonPart(payload)); ok {
		walk(doc, nil, func(path []any, v string) {
			if !named || idPath(path) {
				into[v] = true
			}
		})
	}
	// A text frame's headers that hold paths (STOMP's
	// destination:/app/boards/1/cards/5/move): their segments.
	if head, _, ok := textFrame(payload); ok {
		for _, line := range bytes.Split(head, []byte("\n")) {
			if _, v, ok := bytes.Cut(line, []byte(":")); ok && len(v) > 0 && v[0] == '/' {
				for _, seg := range pathSegments(string(v)) {
					if seg != "" {
						into[seg] = true
					}
					if id := dottedID(seg); id != "" {
						into[id] = true
					}
				}
			}
		}
	}
}

// headerIDs calls f with each id the paths of a text frame's headers hold
// after a name (STOMP's destination:/app/boards/1/cards/5/move, a topic's
// /topic/boards.1): the id, the name and what separates them.
func headerIDs(payload []byte, f func(id, name, sep string)) {
	head, _, ok := textFrame(payload)
	if !ok {
		return
	}
	for _, line := range bytes.Split(head, []byte("\n")) {
		_, v, ok := bytes.Cut(line, []byte(":"))
		if !ok || len(v) == 0 || v[0] != '/' {
			continue
		}
		segs := pathSegments(string(v))
		for n, seg := range segs {
			if id := dottedID(seg); id != "" {
				f(id, seg[:len(seg)-len(id)-1], ".")
			} else if n > 0 && seg != "" && segs[n-1] != "" && !isDigits(segs[n-1]) {
				f(seg, segs[n-1], "/")
			}
		}
	}
}

// byName returns which of cands, variables of one value, a path sends
// after name: the one whose source name names (boardId for boards),
// else the one reply's whose name names nothing (a card's id, for cards,
// where the other is its boardId); -1 when the value has one source, or
// none stands out.
func byName(name string, vars []variable, cands []int) int {
	if len(cands) < 2 || nounOf(name) == "" {
		return -1
	}
	for _, k := range cands {
		if namesSource(name, &vars[k]) {
			return k
		}
	}
	only := -1
	for _, k := range cands {
		if vars[k].ws && pathNoun(vars[k].place.path) == "" {
			if only >= 0 {
				return -1
			}
			only = k
		}
	}
	return only
}

// pathNoun is the thing a JSON path's last key names (board of
// $.boardId), "" for a bare id or none.
func pathNoun(path []any) string {
	for i := len(path) - 1; i >= 0; i-- {
		if k, ok := path[i].(string); ok {
			if n := nounOf(k); n != "id" && n != "pk" {
				return n
			}
			return ""
		}
	}
	return ""
}

// dottedID returns the id a dotted name ends with (boards.14, a broker's
// topic or routing key: Spring's /topic/boards.14, RabbitMQ's
// orders.eu.42), "" when seg is not one: the part after the last dot, with
// a digit, after a letter (not 1.2, not /docs/6.json).
func dottedID(seg string) string {
	dot := strings.LastIndexByte(seg, '.')
	if dot < 1 || !letter(seg[dot-1]) || !strings.ContainsAny(seg[dot+1:], "0123456789") {
		return ""
	}
	return seg[dot+1:]
}

// A value taken from a list (the third of a listing's items) is located
// by what identifies its element, not by its index, which other users'
// items shift: the element whose other fields match the recorded one's
// most (its name, its title, its path), else the recorded index.

// maxSiblings bounds the fields kept to identify a list's element.
const maxSiblings = 8

// listIdentity gives each variable taken from a list element of a JSON
// answer the fields that identify that element: its scalar fields other
// than ids (which differ from user to user) and the value's own.
func listIdentity(s *traces.Session, vars []variable) {
	docs := map[int]any{}
	for k := range vars {
		v := &vars[k]
		last := -1
		for n, e := range v.place.path {
			if _, ok := e.(int); ok {
				last = n
			}
			if _, ok := e.(inJSON); ok {
				last = -1 // inside JSON held in a string: left by index
				break
			}
		}
		if last < 0 || v.ws || v.from < 0 || v.place.left != "" || v.place.header != "" {
			continue
		}
		doc, ok := docs[v.from]
		if !ok {
			doc, _ = decodeJSON(jsonPart(s.Exchanges[v.from].RespBody.Data))
			docs[v.from] = doc
		}
		elem, ok := jsonNode(doc, v.place.path[:last+1]).(map[string]any)
		if !ok {
			continue
		}
		own := ""
		if last+1 < len(v.place.path) {
			own, _ = v.place.path[last+1].(string)
		}
		sib := map[string]string{}
		for _, key := range slices.Sorted(maps.Keys(elem)) {
			val, ok := scalarText(elem[key])
			if !ok || key == own || idName(key) || val == "" || len(val) > 64 || len(sib) == maxSiblings {
				continue
			}
			sib[key] = val
		}
		if len(sib) > 0 {
			v.place.list, v.place.siblings = last, sib
		}
	}
}

// jsonNode returns the value at path in a decoded document, nil if none.
func jsonNode(doc any, path []any) any {
	for _, e := range path {
		switch k := e.(type) {
		case string:
			m, ok := doc.(map[string]any)
			if !ok {
				return nil
			}
			doc = m[k]
		case int:
			a, ok := doc.([]any)
			if !ok || k >= len(a) {
				return nil
			}
			doc = a[k]
		default:
			return nil
		}
	}
	return doc
}

// scalarText returns a string's or a number's text.
func scalarText(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case json.Number:
		return x.String(), true
	}
	return "", false
}

// listed finds a list element's value in a live answer: in the element
// whose identifying fields match the recorded one's most, else at the
// recorded index.
func (p place) listed(body []byte) (string, bool) {
	doc, ok := decodeJSON(jsonPart(body))
	if !ok {
		return "", false
	}
	list, ok := jsonNode(doc, p.path[:p.list]).([]any)
	if !ok {
		return "", false
	}
	best, score, ties := -1, 0, 0
	for n, el := range list {
		m, ok := el.(map[string]any)
		if !ok {
			continue
		}
		hits := 0
		for key, want := range p.siblings {
			if got, ok := scalarText(m[key]); ok && got == want {
				hits++
			}
		}
		switch {
		case hits > score:
			best, score, ties = n, hits, 0
		case hits == score && hits > 0:
			ties++
		}
	}
	at, _ := p.path[p.list].(int) // listIdentity set list at an index
	if best >= 0 && (ties == 0 || best == at) {
		at = best
	}
	v, ok := scalarText(jsonNode(list, append([]any{at}, p.path[p.list+1:]...)))
	return v, ok && v != ""
}
