package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// fieldsOf returns a's fields as path → sorted type names.
func fieldsOf(a *Answer) map[string][]string {
	out := map[string][]string{}
	for _, f := range a.fields {
		var types []string
		for t := range jsonTypes {
			if f.types&(1<<t) != 0 {
				types = append(types, typeName(t))
			}
		}
		slices.Sort(types)
		out[string(a.text[f.start:f.end])] = types
	}
	return out
}

// TestReadJSON: an answer's key paths, arrays folded, each once with the
// types found there; a document cut short gives what it had; what is not
// JSON gives nothing.
func TestReadJSON(t *testing.T) {
	var a Answer
	for _, tc := range []struct {
		name, doc string
		json      bool
		want      map[string][]string
	}{
		{"nested", `{"count": 2, "results": [{"id": 1, "name": "a", "tags": []}, {"id": 2, "name": null, "tags": ["x"]}], "next": null}`, true,
			map[string][]string{"$": {"object"}, "$.count": {"number"}, "$.results": {"array"}, "$.results[]": {"object"},
				"$.results[].id": {"number"}, "$.results[].name": {"null", "string"}, "$.results[].tags": {"array"},
				"$.results[].tags[]": {"string"}, "$.next": {"null"}}},
		{"a key that is not a plain name", `{"a b": {"é": true}, "x.y": false}`, true,
			map[string][]string{"$": {"object"}, `$["a b"]`: {"object"}, `$["a b"]["é"]`: {"bool"}, `$["x.y"]`: {"bool"}}},
		{"a scalar", ` "ok" `, true, map[string][]string{"$": {"string"}}},
		{"an array of arrays", `[[1,"2"],[]]`, true, map[string][]string{"$": {"array"}, "$[]": {"array"}, "$[][]": {"number", "string"}}},
		{"cut short", `{"items": [{"id": 1}, {"id": 2, "na`, true, map[string][]string{"$": {"object"}, "$.items": {"array"}, "$.items[]": {"object"}, "$.items[].id": {"number"}}},
		{"cut in a word", `{"ok": tr`, true, map[string][]string{"$": {"object"}, "$.ok": {"bool"}}},
		{"HTML", `<!doctype html><p>{"a":1}</p>`, false, map[string][]string{}},
		{"more after the document", `{"a": 1} trailing`, false, map[string][]string{}},
		{"a broken member", `{"a" 1}`, false, map[string][]string{}},
		{"empty", ``, false, map[string][]string{}},
	} {
		a.Reset()
		a.ReadJSON([]byte(tc.doc))
		if got := fieldsOf(&a); a.JSON != tc.json || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: JSON %v, fields %v; want %v, %v", tc.name, a.JSON, got, tc.json, tc.want)
		}
	}

	// Deeper than maxDepth: the paths stop there, the document is read.
	deep := strings.Repeat(`{"a":`, maxDepth+5) + "1" + strings.Repeat("}", maxDepth+5)
	a.Reset()
	a.ReadJSON([]byte(deep))
	if !a.JSON || len(a.fields) != maxDepth {
		t.Errorf("a document %d deep: JSON %v, %d paths", maxDepth+5, a.JSON, len(a.fields))
	}
	// More paths than maxAnswerFields: the first are kept.
	var many bytes.Buffer
	many.WriteString("{")
	for i := range 2 * maxAnswerFields {
		if i > 0 {
			many.WriteString(",")
		}
		many.WriteString(`"k` + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + `` + strings.Repeat("y", i/26) + `": 1`)
	}
	many.WriteString("}")
	a.Reset()
	a.ReadJSON(many.Bytes())
	if !a.JSON || len(a.fields) != maxAnswerFields {
		t.Errorf("an answer of %d paths: JSON %v, %d kept", 2*maxAnswerFields+1, a.JSON, len(a.fields))
	}
}

// TestReadJSONAllocatesNothing: once its buffers have grown, an answer
// reads a document of the same shape without allocating.
func TestReadJSONAllocatesNothing(t *testing.T) {
	doc := []byte(`{"count": 2, "results": [{"id": 1, "name": "a"}, {"id": 2, "name": "b", "price": 9.5}], "next": null}`)
	var a Answer
	a.ReadJSON(doc)
	if n := testing.AllocsPerRun(100, func() {
		a.Reset()
		a.ReadJSON(doc)
		a.Header("content-type", []byte("application/json"))
	}); n != 0 {
		t.Errorf("%v allocations an answer", n)
	}
}

// FuzzReadJSON holds ReadJSON to encoding/json: a valid document's paths
// and types are those a decoding of it walks to; an invalid one whole
// is not JSON; nothing panics.
func FuzzReadJSON(f *testing.F) {
	for _, s := range []string{`{"a":[1,{"b":null}]}`, `[]`, `"x"`, `{"a":{"b":{"c":[true,false]}}}`, `{"a":1,"a":"x"}`, `1e5`, `{`, `[1,]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		if len(doc) > maxSketched || bytes.ContainsRune(doc, '\\') || !utf8.Valid(doc) {
			return // keys as written are not keys as decoded when escaped or not UTF-8
		}
		var a Answer
		a.ReadJSON(doc)
		var v any
		d := json.NewDecoder(bytes.NewReader(doc))
		d.UseNumber()
		if !json.Valid(doc) {
			if a.JSON && len(bytes.TrimSpace(doc)) > 0 && json.Unmarshal(doc, &v) == nil {
				t.Fatalf("%q: read as JSON, and whole", doc)
			}
			return
		}
		if err := d.Decode(&v); err != nil {
			t.Fatal(err)
		}
		if !a.JSON {
			t.Fatalf("%q: valid, not read as JSON", doc)
		}
		want := map[string]map[string]bool{}
		var walk func(path string, v any, depth int)
		walk = func(path string, v any, depth int) {
			if len(want) >= maxAnswerFields && want[path] == nil {
				return
			}
			if want[path] == nil {
				want[path] = map[string]bool{}
			}
			switch x := v.(type) {
			case map[string]any:
				want[path]["object"] = true
				if depth+1 >= maxDepth {
					return
				}
				for k, e := range x {
					walk(string(appendKey([]byte(path), []byte(k))), e, depth+1)
				}
			case []any:
				want[path]["array"] = true
				if depth+1 >= maxDepth {
					return
				}
				for _, e := range x {
					walk(path+"[]", e, depth+1)
				}
			case string:
				want[path]["string"] = true
			case json.Number:
				want[path]["number"] = true
			case bool:
				want[path]["bool"] = true
			case nil:
				want[path]["null"] = true
			}
		}
		walk("$", v, 0)
		if len(want) > maxAnswerFields/2 {
			return // which paths the bound keeps depends on the order of keys
		}
		// A key given twice: decoding keeps the last value, the sketch
		// sees both.
		dup := duplicateKeys(doc)
		got := fieldsOf(&a)
		for p, types := range want {
			w := slices.Sorted(maps.Keys(types))
			if !slices.Equal(got[p], w) && (!dup || len(got[p]) < len(w)) {
				t.Fatalf("%q: path %s has %v, decoding gives %v (all: %v)", doc, p, got[p], w, got)
			}
		}
		if len(got) != len(want) && !dup {
			t.Fatalf("%q: paths %v, decoding gives %v", doc, got, want)
		}
	})
}

// TestAnswerSketch: the recorder sketches the 2xx answers of an endpoint
// (paths with the share of answers that had them, types, headers, sizes)
// and leaves others out; shards of the answers merge into the sketch of
// the whole.
func TestAnswerSketch(t *testing.T) {
	start := time.Unix(1_800_000_000, 0)
	whole, shards := NewRecorder(start), []*Recorder{NewRecorder(start), NewRecorder(start)}
	var a Answer
	for i := range 100 {
		a.Reset()
		doc := `{"id": 1, "price": 9.5, "tags": ["a"]}`
		if i%4 == 0 {
			doc = `{"id": "1", "tags": []}` // no price; id a string
		}
		a.Size = int64(len(doc))
		a.ReadJSON([]byte(doc))
		a.Header("content-type", []byte("Application/JSON"))
		if i%2 == 0 {
			a.Header("set-cookie", []byte("sessionid"))
		}
		status := 200
		if i%10 == 9 {
			status = 500 // not sketched
		}
		s := Sample{Kind: HTTP, Profile: "browse", Endpoint: "GET /items/{id}", Status: status, Intended: start, Sent: start, Done: time.Millisecond, Answer: &a}
		whole.Observe(&s)
		shards[i%2].Observe(&s)
	}
	res := whole.Result("http://t", "", start.Add(time.Second), RunParams{})
	st := res.Endpoints[0].Answers
	if st == nil || st.Answers != 90 || st.JSON != 90 {
		t.Fatalf("sketch %+v", st)
	}
	want := []FieldStats{
		{Path: "$", Answers: 90, Types: map[string]int64{"object": 90}},
		{Path: "$.id", Answers: 90, Types: map[string]int64{"number": 65, "string": 25}},
		{Path: "$.price", Answers: 65, Types: map[string]int64{"number": 65}},
		{Path: "$.tags", Answers: 90, Types: map[string]int64{"array": 90}},
		{Path: "$.tags[]", Answers: 65, Types: map[string]int64{"string": 65}},
	}
	if !reflect.DeepEqual(st.Fields, want) {
		t.Errorf("fields %+v, want %+v", st.Fields, want)
	}
	if !reflect.DeepEqual(st.Headers, map[string]int64{"content-type: application/json": 90, "set-cookie: sessionid": 50}) {
		t.Errorf("headers %v", st.Headers)
	}
	if st.Size.P50 != 38 || st.Size.Max != 38 {
		t.Errorf("sizes %+v", st.Size)
	}
	var parts []*Result
	for i, r := range shards {
		parts = append(parts, r.Result("http://t", "", start.Add(time.Second), RunParams{Shard: fmt.Sprintf("%d/2", i)}))
	}
	merged, err := Merge(parts)
	if err != nil {
		t.Fatal(err)
	}
	m := merged.Endpoints[0].Answers
	if m == nil || m.Answers != st.Answers || !reflect.DeepEqual(m.Fields, st.Fields) || !reflect.DeepEqual(m.Headers, st.Headers) || m.Size != st.Size {
		t.Errorf("merged %+v, whole %+v", m, st)
	}
}

// duplicateKeys reports whether an object of the valid JSON doc has a key
// twice.
func duplicateKeys(doc []byte) bool {
	d := json.NewDecoder(bytes.NewReader(doc))
	type level struct {
		keys   map[string]bool
		object bool
		key    bool // the next token of an object is a key
	}
	var stack []*level
	for {
		tok, err := d.Token()
		if err != nil {
			return false
		}
		var top *level
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.key {
			if k, ok := tok.(string); ok {
				if top.keys[k] {
					return true
				}
				top.keys[k] = true
				top.key = false
				continue
			}
		}
		switch tok {
		case json.Delim('{'):
			if top != nil && top.object {
				top.key = true
			}
			stack = append(stack, &level{keys: map[string]bool{}, object: true, key: true})
		case json.Delim('['):
			if top != nil && top.object {
				top.key = true
			}
			stack = append(stack, &level{})
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		default:
			if top != nil && top.object {
				top.key = true
			}
		}
	}
}
