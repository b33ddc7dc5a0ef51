package replay

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/thrive-loadtest/thrive/traces"
)

// A check holds each live answer against its recording, so a library made
// for one keeps, per step, what the recorded answer looked like and which
// values the request sent back unchanged although an earlier answer of its
// session gave them. A library made for a load test keeps none of it.

// recordedStep is what a check needs of a recorded exchange.
type recordedStep struct {
	shape map[string]string // JSON answer: path → type, to a few levels
	// suspects are values the request sends in id positions that an
	// earlier answer of the session gave and that no rule correlates.
	suspects []suspect
	// cookies are the cookies the request sent that no earlier answer of
	// its session set: the session began with them (it was cut from the
	// visit that logged in).
	cookies []string
	// duration is how long the recorded answer took.
	duration time.Duration
}

// unsetCookies returns the names of the cookies ex sent that none of the
// earlier exchanges' answers set.
func unsetCookies(ex *traces.Exchange, earlier []traces.Exchange) []string {
	var out []string
	for _, c := range recordedCookies(ex.ReqHeader) {
		set := false
		for j := range earlier {
			for _, h := range earlier[j].RespHeader {
				if name, _, ok := strings.Cut(h.Value, "="); ok && strings.EqualFold(h.Name, "Set-Cookie") && strings.TrimSpace(name) == c[0] {
					set = true
				}
			}
		}
		if !set && !slices.Contains(out, c[0]) {
			out = append(out, c[0])
		}
	}
	return out
}

// suspect is a server-made value a request sent back as recorded.
type suspect struct {
	value string
	from  string // the answer's endpoint
	place place  // where in it
}

// maxShapeDepth bounds how deep a JSON answer's shape is compared.
const maxShapeDepth = 4

// jsonShape returns the shape of a JSON document: each path to a few levels
// with the type of its value (object, array, string, number, bool, null);
// an array's elements are described by its first, under [].
func jsonShape(body []byte) map[string]string {
	doc, ok := decodeJSON(body)
	if !ok {
		return nil
	}
	out := map[string]string{}
	var walkShape func(v any, path string, depth int)
	walkShape = func(v any, path string, depth int) {
		switch d := v.(type) {
		case map[string]any:
			out[path] = "object"
			if depth < maxShapeDepth {
				for k, e := range d {
					walkShape(e, path+"."+k, depth+1)
				}
			}
		case []any:
			out[path] = "array"
			if len(d) > 0 && depth < maxShapeDepth {
				walkShape(d[0], path+"[]", depth+1)
			}
		case string:
			out[path] = "string"
		case json.Number:
			out[path] = "number"
		case bool:
			out[path] = "bool"
		default:
			out[path] = "null"
		}
	}
	walkShape(doc, "$", 0)
	return out
}

// shapeChanges returns how the live shape differs from the recorded one:
// paths gone, and paths whose type changed. Paths the live answer added
// are not changes; neither is a null that became a value or the reverse.
func shapeChanges(recorded, live map[string]string) []string {
	var out []string
	for _, p := range slices.Sorted(maps.Keys(recorded)) {
		parent := p[:max(strings.LastIndexAny(p, ".["), 1)]
		if p != "$" && parent != "$" && live[parent] != recorded[parent] {
			continue // reported at the parent
		}
		lt, ok := live[p]
		switch rt := recorded[p]; {
		case !ok:
			out = append(out, p+" missing")
		case lt != rt && lt != "null" && rt != "null":
			out = append(out, p+" is "+lt+", was "+rt)
		}
	}
	return out
}

// recordedOf makes the recorded side of each exchange of s for a check.
func recordedOf(s *traces.Session, vars []variable, uses [][]int) []recordedStep {
	out := make([]recordedStep, len(s.Exchanges))
	type source struct {
		from  string
		place place
	}
	given := map[string]source{} // value → the latest answer that gave it
	// Values a request sent before any answer gave them are the client's
	// (an id the page made): a server that echoes them did not make them.
	clients := map[string]bool{}
	for _, v := range vars {
		if v.from < 0 {
			clients[v.recorded] = true
		}
	}
	for i := range s.Exchanges {
		ex := &s.Exchanges[i]
		if !ex.RespBody.Truncated() {
			out[i].shape = jsonShape(ex.RespBody.Data)
		}
		ids := map[string]bool{}
		idPositions(ex, ids)
		for v := range ids {
			if _, ok := given[v]; !ok {
				clients[v] = true
			}
		}
		out[i].cookies = unsetCookies(ex, s.Exchanges[:i])
		out[i].duration = ex.Duration
		for _, v := range slices.Sorted(maps.Keys(ids)) {
			src, ok := given[v]
			if !ok || clients[v] || !idValue(v) || slices.ContainsFunc(uses[i], func(k int) bool { return vars[k].recorded == v }) {
				continue
			}
			if len(out[i].suspects) < 3 {
				out[i].suspects = append(out[i].suspects, suspect{value: v, from: src.from, place: src.place})
			}
		}
		endpoint := traces.Endpoint(ex)
		for _, c := range allAnswerValues(ex) {
			if !ids[c.value] {
				given[c.value] = source{endpoint, c.place}
			}
		}
	}
	return out
}

// allAnswerValues returns every value of an answer, whatever its length or
// name: the leaves of a JSON body and the headers but the ordinary ones.
func allAnswerValues(ex *traces.Exchange) []candidate {
	var out []candidate
	for _, h := range ex.RespHeader {
		if !ordinaryHeader(h.Name) {
			out = append(out, candidate{value: h.Value, place: place{header: h.Name}})
		}
	}
	if ex.RespBody.Truncated() {
		return out
	}
	doc, ok := decodeJSON(ex.RespBody.Data)
	if !ok {
		return out
	}
	walk(doc, nil, func(path []any, v string) {
		if v != "true" && v != "false" {
			out = append(out, candidate{value: v, place: place{path: append([]any(nil), path...)}})
		}
	})
	return out
}

// idValue reports a value that may be an id a server made: a number, or a
// token of letters and digits (not text someone typed, such as a cell's
// source code).
func idValue(v string) bool {
	for i := range len(v) {
		if !tokenChar(v[i]) {
			return false
		}
	}
	return isDigits(v) || tokenLike(v)
}
