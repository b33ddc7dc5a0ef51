package demo

import (
	"bytes"
	"encoding/json"

	"github.com/prometheus/client_golang/prometheus"
)

// fieldEdit is a build change to the field at a path of JSON answers: it
// drops the field, or renames it when to is set.
type fieldEdit struct {
	spec    string   // as given: the path, or PATH=NEWNAME
	path    []string // keys, and "[]" for every element of an array
	to      string
	changed prometheus.Counter // answers changed; nil in a config
}

// editJSON applies edits to a JSON answer in turn, counting each that
// changed it. An answer an edit does not change keeps its bytes; one it
// changes keeps them everywhere but at the field (members keep their order,
// values their text), as the answer is compact.
func editJSON(body []byte, edits []fieldEdit) []byte {
	for i := range edits {
		if out, ok := edits[i].walk(body, edits[i].path); ok {
			body = out
			edits[i].changed.Inc()
		}
	}
	return body
}

// walk applies the edit at path in the JSON value v, and reports whether
// it changed anything. A value of another kind than path wants is left as
// it is.
func (e *fieldEdit) walk(v []byte, path []string) ([]byte, bool) {
	if path[0] == "[]" {
		var elems []json.RawMessage
		if !bytes.HasPrefix(bytes.TrimSpace(v), []byte("[")) || json.Unmarshal(v, &elems) != nil {
			return v, false
		}
		changed := false
		for i, el := range elems {
			if out, ok := e.walk(el, path[1:]); ok {
				elems[i], changed = out, true
			}
		}
		if !changed {
			return v, false
		}
		out := []byte{'['}
		for i, el := range elems {
			if i > 0 {
				out = append(out, ',')
			}
			out = append(out, el...)
		}
		return append(out, ']'), true
	}
	ms, ok := members(v)
	if !ok {
		return v, false
	}
	key, last := path[0], len(path) == 1
	changed := false
	for i := range ms {
		if ms[i].key != key {
			continue
		}
		if last {
			changed = true
			continue
		}
		if out, ok := e.walk(ms[i].value, path[1:]); ok {
			ms[i].value, changed = out, true
		}
	}
	if !changed {
		return v, false
	}
	out := []byte{'{'}
	for _, m := range ms {
		switch {
		case last && m.key == key && e.to == "":
			continue // dropped
		case last && m.key == key:
			m.key = e.to
		case last && e.to != "" && m.key == e.to:
			continue // the renamed field takes its name
		}
		if len(out) > 1 {
			out = append(out, ',')
		}
		out, _ = appendJSONString(out, m.key)
		out = append(append(out, ':'), m.value...)
	}
	return append(out, '}'), true
}

// member is an object's member, its value as it is written.
type member struct {
	key   string
	value json.RawMessage
}

// members returns the members of the JSON object v in order, or false when
// v is not an object.
func members(v []byte) ([]member, bool) {
	dec := json.NewDecoder(bytes.NewReader(v))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, false
	}
	var ms []member
	for dec.More() {
		t, err := dec.Token()
		key, ok := t.(string)
		if err != nil || !ok {
			return nil, false
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, false
		}
		ms = append(ms, member{key, raw})
	}
	return ms, true
}
