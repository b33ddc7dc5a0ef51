package replay

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// minHead is how long a document that is not valid JSON must be to be
// read as the head of a longer answer cut where a user stopped keeping it
// (keptBody): a short one is an answer that is not JSON.
const minHead = 64 << 10

// jsonAt returns the value at path (object keys and array indices) in the
// JSON document doc, as correlation takes a live value from an answer: a
// string's text, or a number's as written. It is false when doc does not
// begin with a valid JSON value, or when the path is not there or leads
// to another kind of value.
//
// It walks the bytes rather than decoding the document, so that an
// answer's size costs no allocations: only the value returned is one. What
// it returns is what decoding into an any with UseNumber and following the
// path would give (the last of repeated keys, invalid UTF-8 as U+FFFD),
// which FuzzJSONAt holds it to.
func jsonAt(doc []byte, path []any) (string, bool) {
	s := jsonScan{b: doc}
	s.space()
	start := s.i
	if !s.skip() || !json.Valid(doc[start:s.i]) {
		if len(doc) >= minHead {
			// The head of a longer answer (keepBody; a compressed one
			// decodes to about as much, or less when it did not
			// compress): what it holds before the cut is read as far as
			// it goes.
			return jsonAtHead(doc, path)
		}
		return "", false
	}
	s.i = start
	for n, e := range path {
		s.space()
		var ok bool
		switch k := e.(type) {
		case string:
			ok = s.member(k)
		case int:
			ok = s.element(k)
		case inJSON:
			// JSON held in a string (ActionCable's identifier): the path
			// goes on in the string's text.
			if s.b[s.i] != '"' {
				return "", false
			}
			from := s.i
			s.skipString()
			return jsonAt([]byte(unquote(s.b[from:s.i])), path[n+1:])
		}
		if !ok {
			return "", false
		}
	}
	s.space()
	switch c := s.b[s.i]; {
	case c == '"':
		from := s.i
		s.skipString()
		raw := s.b[from:s.i]
		v := unquote(raw)
		return v, v != ""
	case c == '-' || c >= '0' && c <= '9':
		from := s.i
		s.skipScalar()
		return string(s.b[from:s.i]), true
	}
	return "", false
}

// inJSON is a step of a JSON path into a string that holds JSON.
type inJSON struct{}

// unquote returns the text of a JSON string literal, raw with its quotes.
func unquote(raw []byte) string {
	inner := raw[1 : len(raw)-1]
	plain := utf8.Valid(inner)
	for _, c := range inner {
		if c == '\\' {
			plain = false
			break
		}
	}
	if plain {
		return string(inner)
	}
	var v string
	_ = json.Unmarshal(raw, &v) // valid: the document was checked
	return v
}

// jsonScan walks a JSON document that json.Valid has passed.
type jsonScan struct {
	b []byte
	i int
}

func (s *jsonScan) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// skip moves past one value, and says whether there was one to move past.
// It does not check the value: json.Valid does.
func (s *jsonScan) skip() bool {
	s.space()
	if s.i >= len(s.b) {
		return false
	}
	switch s.b[s.i] {
	case '"':
		s.skipString()
	case '{', '[':
		depth := 0
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case '"':
				s.skipString()
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
			}
			s.i++
			if depth == 0 {
				break
			}
		}
	default:
		s.skipScalar()
	}
	return true
}

// skipString moves past a string literal, its opening quote at s.i, or to
// the end of an unterminated one.
func (s *jsonScan) skipString() {
	open := s.i
	for i := s.i + 1; i < len(s.b); {
		j := bytes.IndexByte(s.b[i:], '"')
		if j < 0 {
			break
		}
		i += j
		// A quote after an odd number of backslashes is escaped.
		n := 0
		for k := i - 1; k > open && s.b[k] == '\\'; k-- {
			n++
		}
		i++
		if n%2 == 0 {
			s.i = i
			return
		}
	}
	s.i = len(s.b)
}

func (s *jsonScan) skipScalar() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return
		}
		s.i++
	}
}

// member moves to the value of key in the object at s.i: of its last
// occurrence, as decoding keeps.
func (s *jsonScan) member(key string) bool {
	if s.b[s.i] != '{' {
		return false
	}
	s.i++
	found := -1
	for {
		s.space()
		if s.b[s.i] == '}' {
			break
		}
		from := s.i
		s.skipString()
		raw := s.b[from:s.i]
		s.space()
		s.i++ // the colon
		s.space()
		if keyIs(raw, key) {
			found = s.i
		}
		s.skip()
		s.space()
		if s.b[s.i] == ',' {
			s.i++
		}
	}
	if found < 0 {
		return false
	}
	s.i = found
	return true
}

// keyIs reports whether the string literal raw says key. Only a key with
// an escape or invalid UTF-8 is decoded to be compared (it allocates).
func keyIs(raw []byte, key string) bool {
	inner := raw[1 : len(raw)-1]
	ascii := true
	for _, c := range inner {
		if c == '\\' {
			return unquote(raw) == key
		}
		if c >= utf8.RuneSelf {
			ascii = false
		}
	}
	if !ascii && !utf8.Valid(inner) {
		return unquote(raw) == key
	}
	return string(inner) == key
}

// element moves to element n of the array at s.i.
func (s *jsonScan) element(n int) bool {
	if s.b[s.i] != '[' || n < 0 {
		return false
	}
	s.i++
	for k := 0; ; k++ {
		s.space()
		if s.b[s.i] == ']' {
			return false
		}
		if k == n {
			return true
		}
		s.skip()
		s.space()
		if s.b[s.i] == ',' {
			s.i++
		}
	}
}

// jsonAtHead is jsonAt for the head of a document cut short: it walks
// path checking every byte it reads, takes the first occurrence of a
// repeated key (the rest may be past the cut), and is false where the path
// or its value runs past the end. FuzzJSONAtHead holds it to never panic.
func jsonAtHead(doc []byte, path []any) (string, bool) {
	s := jsonScan{b: doc}
	at := func(c byte) bool { return s.i < len(s.b) && s.b[s.i] == c }
	for _, e := range path {
		s.space()
		switch k := e.(type) {
		case string:
			if !at('{') {
				return "", false
			}
			s.i++
			for {
				s.space()
				if !at('"') {
					return "", false // the end of the object, or of the head
				}
				from := s.i
				s.skipString()
				if s.i > len(s.b) || s.i-from < 2 || s.b[s.i-1] != '"' {
					return "", false
				}
				raw := s.b[from:s.i]
				s.space()
				if !at(':') {
					return "", false
				}
				s.i++
				s.space()
				if keyIs(raw, k) {
					break
				}
				if !s.skip() {
					return "", false
				}
				s.space()
				if !at(',') {
					return "", false
				}
				s.i++
			}
		case int:
			if !at('[') || k < 0 {
				return "", false
			}
			s.i++
			for n := 0; n < k; n++ {
				s.space()
				if at(']') || !s.skip() {
					return "", false
				}
				s.space()
				if !at(',') {
					return "", false
				}
				s.i++
			}
			s.space()
			if at(']') {
				return "", false
			}
		default:
			return "", false // JSON in a string is not read from a head
		}
	}
	s.space()
	switch {
	case at('"'):
		from := s.i
		s.skipString()
		if s.i-from < 2 || s.b[s.i-1] != '"' {
			return "", false
		}
		var v string
		if json.Unmarshal(s.b[from:s.i], &v) != nil {
			return "", false
		}
		return v, v != ""
	case at('-') || s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9':
		from := s.i
		s.skipScalar()
		if s.i >= len(s.b) {
			return "", false // the number may go on past the cut
		}
		return string(s.b[from:s.i]), true
	}
	return "", false
}
