package report

import "bytes"

// Answer is what one answer looked like: the engine fills it from the
// answer's bytes, into buffers it reuses, and hands it over with the
// Sample (Sample.Answer); the Recorder folds it into the sketch of its
// endpoint's answers (AnswerStats) and keeps nothing of it. Reading an
// answer allocates nothing once the buffers have grown to its shape.
type Answer struct {
	// Size is the body's length as it came (before any decoding).
	Size int64
	// Frames counts the frames of a WebSocket reply; 0 for an HTTP
	// answer.
	Frames int
	// JSON says the body (or the last frame of a WebSocket reply that held JSON) was a JSON
	// document, whole or cut short where the engine stopped keeping it;
	// its fields are then the key paths it had.
	JSON bool

	fields  []seenField
	text    []byte  // the fields' paths, one after another
	path    []byte  // the path being walked
	hash    uint64  // its hash, made a segment at a time
	table   []int32 // open addressing over fields by hash: index+1, 0 empty
	headers []byte  // header keys, each ended by '\n'
}

// seenField is a key path the answer had, with the types of the values
// found there (a bit per jsonType).
type seenField struct {
	hash       uint64
	start, end int32 // its path in text
	slot       int32 // its place in table
	types      uint8
}

// JSON value types, as the sketch counts them.
const (
	jsonObject = iota
	jsonArray
	jsonString
	jsonNumber
	jsonBool
	jsonNull
	jsonTypes
)

// typeName names a JSON value type as the result file does.
func typeName(t int) string {
	return [jsonTypes]string{"object", "array", "string", "number", "bool", "null"}[t]
}

// Bounds of what one answer gives the sketch: its first maxAnswerFields
// key paths, maxDepth levels deep, from its first maxSketched bytes.
const (
	maxAnswerFields = 256
	maxDepth        = 32
	maxSketched     = 256 << 10
)

// Reset empties a for the next answer, keeping its buffers.
func (a *Answer) Reset() {
	for _, f := range a.fields {
		a.table[f.slot] = 0
	}
	a.Size, a.Frames, a.JSON = 0, 0, false
	a.fields, a.text, a.headers = a.fields[:0], a.text[:0], a.headers[:0]
}

// Header notes a header that matters to clients, as name (lower case)
// and, for those whose value tells (Content-Type's media type, a
// Set-Cookie's cookie name), the value: "content-type: application/json",
// "set-cookie: sessionid", "location".
func (a *Answer) Header(name string, value []byte) {
	a.headers = append(a.headers, name...)
	if len(value) > 0 {
		a.headers = append(a.headers, ": "...)
		for _, c := range value {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c == '\n' {
				c = ' '
			}
			a.headers = append(a.headers, c)
		}
	}
	a.headers = append(a.headers, '\n')
}

// ReadJSON reads the key paths of the JSON document doc (the first
// maxSketched bytes of it): every path once, arrays folded ($.items[].id),
// with the types of the values found there. A doc that does not begin as
// JSON leaves a as it was, JSON false.
func (a *Answer) ReadJSON(doc []byte) {
	if len(doc) > maxSketched {
		doc = doc[:maxSketched]
	}
	if a.table == nil {
		a.table = make([]int32, 2*maxAnswerFields)
	}
	w := walker{a: a, b: doc}
	w.space()
	if w.i == len(doc) || !startsValue(doc[w.i]) {
		return
	}
	a.path, a.hash = append(a.path[:0], '$'), offset64
	ok := w.value(0)
	w.space()
	// A document cut short (its end not kept) gives what it had so far;
	// one followed by more than space is not JSON.
	a.JSON = ok && w.i == len(doc) || !ok && w.i >= len(doc) && len(a.fields) > 0
	if !a.JSON {
		a.Reset()
	}
}

func startsValue(c byte) bool {
	return c == '{' || c == '[' || c == '"' || c == 't' || c == 'f' || c == 'n' || c == '-' || '0' <= c && c <= '9'
}

// note notes that the path being walked has a value of type t. Paths are
// told apart by their 64-bit hashes alone: two paths of one endpoint's
// answers that share a hash (odds of 2^-64 a pair) count as one.
func (a *Answer) note(t int) {
	h := a.hash
	mask := len(a.table) - 1
	for s := int(h) & mask; ; s = (s + 1) & mask {
		i := a.table[s]
		if i == 0 {
			if len(a.fields) >= maxAnswerFields {
				return
			}
			start := len(a.text)
			a.text = append(a.text, a.path...)
			a.fields = append(a.fields, seenField{hash: h, start: int32(start), end: int32(len(a.text)), slot: int32(s), types: 1 << t})
			a.table[s] = int32(len(a.fields))
			return
		}
		if f := &a.fields[i-1]; f.hash == h {
			f.types |= 1 << t
			return
		}
	}
}

// FNV-1a, 64 bits: the hash of a path, made as its segments are added.
const (
	offset64 = 14695981039346656037
	prime64  = 1099511628211
)

// descend adds the segment seg (of kind: '.' a key, '[' an element) to
// the path walked, and returns what undoes it.
func (a *Answer) descend(kind byte, seg []byte) (n int, h uint64) {
	n, h = len(a.path), a.hash
	if kind == '[' {
		a.path = append(a.path, "[]"...)
		a.hash = (a.hash ^ '[') * prime64
		return n, h
	}
	a.path = appendKey(a.path, seg)
	x := (a.hash ^ '.') * prime64
	for _, c := range seg {
		x = (x ^ uint64(c)) * prime64
	}
	a.hash = x
	return n, h
}

// walker reads a JSON document's values, noting each one's path.
type walker struct {
	a *Answer
	b []byte
	i int
}

func (w *walker) space() {
	for w.i < len(w.b) {
		switch w.b[w.i] {
		case ' ', '\t', '\n', '\r':
			w.i++
		default:
			return
		}
	}
}

// value reads the value at w.i, depth levels down, and reports whether
// it was whole and well formed.
func (w *walker) value(depth int) bool {
	if w.i >= len(w.b) {
		return false
	}
	a := w.a
	switch c := w.b[w.i]; {
	case c == '{':
		a.note(jsonObject)
		w.i++
		return w.members(depth)
	case c == '[':
		a.note(jsonArray)
		w.i++
		n, h := a.descend('[', nil)
		ok := w.elements(depth)
		a.path, a.hash = a.path[:n], h
		return ok
	case c == '"':
		a.note(jsonString)
		_, ok := w.str()
		return ok
	case c == 't':
		a.note(jsonBool)
		return w.word("true")
	case c == 'f':
		a.note(jsonBool)
		return w.word("false")
	case c == 'n':
		a.note(jsonNull)
		return w.word("null")
	case c == '-' || '0' <= c && c <= '9':
		a.note(jsonNumber)
		return w.number()
	}
	return false
}

// members reads an object's members after its '{'.
func (w *walker) members(depth int) bool {
	a := w.a
	w.space()
	if w.i < len(w.b) && w.b[w.i] == '}' {
		w.i++
		return true
	}
	for {
		w.space()
		if w.i >= len(w.b) || w.b[w.i] != '"' {
			return false
		}
		key, ok := w.str()
		if !ok {
			return false
		}
		w.space()
		if w.i >= len(w.b) || w.b[w.i] != ':' {
			return false
		}
		w.i++
		w.space()
		n, h := a.descend('.', key)
		ok = w.member(depth)
		a.path, a.hash = a.path[:n], h
		if !ok {
			return false
		}
		if more, ok := w.after('}'); !more {
			return ok
		}
	}
}

// member reads a member's value or an element, depth levels down: its
// paths noted above maxDepth, skipped past it.
func (w *walker) member(depth int) bool {
	if depth+1 < maxDepth {
		return w.value(depth + 1)
	}
	return w.skip()
}

// after reads what follows a member or an element: a comma (more to
// come) or the end that closes them (ok, no more).
func (w *walker) after(end byte) (more, ok bool) {
	w.space()
	if w.i >= len(w.b) {
		return false, false
	}
	switch w.b[w.i] {
	case ',':
		w.i++
		return true, true
	case end:
		w.i++
		return false, true
	}
	return false, false
}

// elements reads an array's elements after its '['.
func (w *walker) elements(depth int) bool {
	w.space()
	if w.i < len(w.b) && w.b[w.i] == ']' {
		w.i++
		return true
	}
	for {
		w.space()
		if !w.member(depth) {
			return false
		}
		if more, ok := w.after(']'); !more {
			return ok
		}
	}
}

// appendKey appends an object key's segment to path: .key for a plain
// name, ["key"] (as written, escapes and all) for any other.
func appendKey(path, key []byte) []byte {
	plain := len(key) > 0
	for _, c := range key {
		if !plainKey(c) {
			plain = false
			break
		}
	}
	if plain {
		path = append(path, '.')
		return append(path, key...)
	}
	path = append(path, `["`...)
	path = append(path, key...)
	return append(path, `"]`...)
}

// plainKey reports whether c may be in a key written .key in a path.
func plainKey(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '$' || c == '@'
}

// str reads a string at w.i and returns its text between the quotes, as
// written. It looks for the closing quote a block at a time
// (bytes.IndexByte), counting the backslashes before a quote to tell an
// escaped one; it does not check the text between (a control character in
// it passes).
func (w *walker) str() ([]byte, bool) {
	start := w.i + 1
	for i := start; i <= len(w.b); {
		j := bytes.IndexByte(w.b[i:], '"')
		if j < 0 {
			break
		}
		end := i + j
		k := end - 1
		for k >= start && w.b[k] == '\\' {
			k--
		}
		if (end-1-k)%2 == 0 {
			w.i = end + 1
			return w.b[start:end], true
		}
		i = end + 1
	}
	w.i = len(w.b)
	return nil, false
}

func (w *walker) word(s string) bool {
	if !bytes.HasPrefix(w.b[w.i:], []byte(s)) {
		if len(w.b)-w.i < len(s) && bytes.HasPrefix([]byte(s), w.b[w.i:]) {
			w.i = len(w.b) // cut short inside the word
		}
		return false
	}
	w.i += len(s)
	return true
}

func (w *walker) number() bool {
	start := w.i
	for w.i < len(w.b) {
		switch c := w.b[w.i]; {
		case '0' <= c && c <= '9', c == '-', c == '+', c == '.', c == 'e', c == 'E':
			w.i++
		default:
			return w.i > start
		}
	}
	return false // the document ends in the number: cut short, or not JSON
}

// skip reads past the value at w.i without noting what it holds: past
// maxDepth.
func (w *walker) skip() bool {
	level := 0
	for w.i < len(w.b) {
		switch c := w.b[w.i]; {
		case c == '"':
			if _, ok := w.str(); !ok {
				return false
			}
			if level == 0 {
				return true
			}
			continue
		case c == '{' || c == '[':
			level++
		case c == '}' || c == ']':
			if level == 0 {
				return true // the end of a scalar: not its to read
			}
			level--
			if level == 0 {
				w.i++
				return true
			}
		case c == ',' && level == 0:
			return true
		}
		w.i++
	}
	return false
}
