package replay

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
)

// decodedAt is what jsonAt stands for: the document decoded into an any
// (UseNumber), the path followed, a string or a number taken.
func decodedAt(doc []byte, path []any) (string, bool) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	if dec.Decode(&v) != nil {
		return "", false
	}
	for _, e := range path {
		switch k := e.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return "", false
			}
			if v, ok = m[k]; !ok {
				return "", false
			}
		case int:
			a, ok := v.([]any)
			if !ok || k < 0 || k >= len(a) {
				return "", false
			}
			v = a[k]
		}
	}
	switch x := v.(type) {
	case string:
		return x, x != ""
	case json.Number:
		return x.String(), true
	}
	return "", false
}

// parsePath reads "a.0.b" as keys and indices.
func parsePath(s string) []any {
	if s == "" {
		return nil
	}
	var path []any
	for _, e := range strings.Split(s, ".") {
		if n, err := strconv.Atoi(e); err == nil {
			path = append(path, n)
		} else {
			path = append(path, e)
		}
	}
	return path
}

func TestJSONAt(t *testing.T) {
	doc := []byte(` {"job": {"items": [{"id": "x"}, {"id": "live-id-42", "n": -1.5e3}], "esc\u0061ped": "t\u00e9\"st",
		"dup": "first", "dup": "last", "empty": "", "null": null, "obj": {}, "deep": [[1, [2, 3]]]}, "top": 7} trailing`)
	for _, tc := range []struct {
		path string
		want string
		ok   bool
	}{
		{"job.items.1.id", "live-id-42", true},
		{"job.items.0.id", "x", true},
		{"job.items.1.n", "-1.5e3", true},
		{"job.escaped", `té"st`, true},
		{"job.dup", "last", true},
		{"top", "7", true},
		{"job.deep.0.1.1", "3", true},
		{"job.items.2.id", "", false},
		{"job.items.-1", "", false},
		{"job.missing", "", false},
		{"job.empty", "", false},
		{"job.null", "", false},
		{"job.obj", "", false},
		{"job.items.x", "", false},
		{"top.0", "", false},
		{"job", "", false},
	} {
		got, ok := jsonAt(doc, parsePath(tc.path))
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: %q %v, want %q %v", tc.path, got, ok, tc.want, tc.ok)
		}
		if rg, rok := decodedAt(doc, parsePath(tc.path)); rg != got || rok != ok {
			t.Errorf("%s: %q %v, but decoding gives %q %v", tc.path, got, ok, rg, rok)
		}
	}
	for _, bad := range []string{"", "   ", `{"a":`, `{"a" 1}`, `[1,]`, `{"a":"\x"}`, `nul`, `"a\`, `{"a":"b\`} {
		if v, ok := jsonAt([]byte(bad), parsePath("a")); ok {
			t.Errorf("%q: %q from a document that is not JSON", bad, v)
		}
	}
}

// FuzzJSONAt holds the walk to decoding: on a valid document both give
// the same; on any other, the walk finds nothing that decoding would not.
func FuzzJSONAt(f *testing.F) {
	for _, seed := range []struct{ doc, path string }{
		{`{"a":{"b":[1,"x",{"c":"d"}]}}`, "a.b.2.c"},
		{`{"a":"\u00e9","a":"b"}`, "a"},
		{`[{"id":12},{"id":"\ud83d\ude00"}]`, "1.id"},
		{`{"k\"ey":"v","k\u0065y":"w"}`, "key"},
		{"{\"a\":\"\xff\"}", "a"},
		{`"top"`, ""},
		{`{"a":1} {"a":2}`, "a"},
		{`{"a":"unterminated\`, "a"}, // once read past the end
	} {
		f.Add([]byte(seed.doc), seed.path)
	}
	f.Fuzz(func(t *testing.T, doc []byte, p string) {
		path := parsePath(p)
		got, ok := jsonAt(doc, path)
		want, wok := decodedAt(doc, path)
		if json.Valid(doc) {
			if got != want || ok != wok {
				t.Fatalf("%q at %q: %q %v, decoding gives %q %v", doc, p, got, ok, want, wok)
			}
		} else if ok && (got != want || !wok) {
			t.Fatalf("%q at %q: %q from a document decoding finds %q %v in", doc, p, got, want, wok)
		}
	})
}

// TestJSONAtHead: the head of an answer longer than a user keeps is read
// as far as it goes: a value before the cut is found, one across it or
// past it is not.
func TestJSONAtHead(t *testing.T) {
	for _, tc := range []struct {
		head, path, want string
		ok               bool
	}{
		{`{"token":"tok-1","rows":[1,2,3`, "token", "tok-1", true},
		{`{"meta":{"next":"c2"},"rows":["a","b"`, "meta.next", "c2", true},
		{`[{"id":7},{"id":8},{"i`, "1.id", "8", true},
		{`{"rows":[1,2,3`, "token", "", false},
		{`{"token":"tok-`, "token", "", false},
		{`{"n":12`, "n", "", false}, // the number may go on
		{`{"a":"x","a":"y","b":[`, "a", "x", true},
	} {
		got, ok := jsonAtHead([]byte(tc.head), parsePath(tc.path))
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s at %s: %q %v, want %q %v", tc.head, tc.path, got, ok, tc.want, tc.ok)
		}
	}
}

// FuzzJSONAtHead: any bytes as the head of an answer, any path: no panic,
// and a string found is one the head holds.
func FuzzJSONAtHead(f *testing.F) {
	for _, seed := range []struct{ doc, path string }{
		{`{"a":{"b":[1,"x",{"c":"d"`, "a.b.2.c"},
		{`{"a":"\u00e9","a":"b"`, "a"},
		{`[{"id":12},{"id":"\ud83d`, "1.id"},
		{`{"a":"unterminated\`, "a"},
		{`{"a" "b"`, "a"},
	} {
		f.Add([]byte(seed.doc), seed.path)
	}
	f.Fuzz(func(t *testing.T, doc []byte, p string) {
		got, ok := jsonAtHead(doc, parsePath(p))
		if ok && got == "" {
			t.Fatalf("%q at %q: empty and found", doc, p)
		}
	})
}
