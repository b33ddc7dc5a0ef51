package replay

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/thrive-loadtest/thrive/report"
	"github.com/thrive-loadtest/thrive/traces"
)

// Correlation carries values the server made over to the requests that
// send them back. At load, for each session, every value of an answer's
// JSON body and Location header that a later request of the session sends
// (in its path, query, headers or body, or in a WebSocket message) becomes
// a variable: where it comes from (the step and the place in its answer)
// and the recorded value. At replay the user takes the live value from the
// same place in its live answer, and every later request has the recorded
// value replaced by the live one; a request that needs it waits for that
// answer. Cookies are not variables: the user's jar carries them.

// minValue is the shortest value correlated: shorter ones (1, true, en,
// 2024) turn up by coincidence. Numbers need minDigits digits.
const (
	minValue  = 6
	minDigits = 5
)

// variable is a server-made value some later request of a script sends.
type variable struct {
	recorded string // the value in the recording
	from     int    // the step whose answer gives it
	place    place  // where in that answer
	rule     string // a name for reports: "POST /api/import/{kind}/ $.job.id"
}

// place is where a value sits in an answer: a JSON path, a header, or the
// group of a regular expression over the body (rules written by hand).
type place struct {
	header string         // set for a header value
	path   []any          // JSON: object keys (string) and array indices (int)
	regex  *regexp.Regexp // set for a rule's regular expression
	label  string         // how a found regex place is named (html NAME)
}

func (p place) String() string {
	if p.header != "" {
		return "header " + p.header
	}
	if p.label != "" {
		return p.label
	}
	if p.regex != nil {
		return "regex " + p.regex.String()
	}
	var b strings.Builder
	b.WriteString("$")
	for _, e := range p.path {
		switch k := e.(type) {
		case string:
			b.WriteString("." + k)
		case int:
			fmt.Fprintf(&b, "[%d]", k)
		}
	}
	return b.String()
}

// candidate is a value seen in an answer.
type candidate struct {
	value string
	place place
}

// ordinaryHeader reports the answer headers that describe the answer, not
// values the client sends back: their values are left alone.
func ordinaryHeader(name string) bool {
	switch strings.ToLower(name) {
	case "date", "expires", "last-modified", "etag", "age", "server", "vary", "cache-control", "pragma",
		"content-type", "content-length", "content-encoding", "content-language", "content-disposition",
		"transfer-encoding", "connection", "keep-alive", "accept-ranges", "set-cookie", "strict-transport-security",
		"content-security-policy", "referrer-policy", "x-content-type-options", "x-frame-options", "alt-svc", "via",
		"access-control-allow-origin", "access-control-allow-headers", "access-control-allow-methods":
		return true
	}
	return false
}

// htmlValueRE finds the hidden inputs and meta tags of an HTML answer that
// carry tokens (a CSRF token in a form or in a meta tag), name before
// value or after it.
var htmlValueRE = regexp.MustCompile(`(?i)<(?:input|meta)\b[^>]*?\b(?:name|property)="([^"]+)"[^>]*?\b(?:value|content)="([^"]*)"|<(?:input|meta)\b[^>]*?\b(?:value|content)="([^"]*)"[^>]*?\b(?:name|property)="([^"]+)"`)

// htmlValues returns the named values of an HTML body's inputs and meta
// tags, each with a regular expression that finds it again in a live one.
func htmlValues(body []byte) []candidate {
	var out []candidate
	for _, m := range htmlValueRE.FindAllSubmatch(body, -1) {
		name, value := string(m[1]), string(m[2])
		if len(m[1]) == 0 {
			name, value = string(m[4]), string(m[3])
		}
		if len(value) < minValue {
			continue
		}
		// Found again in a live page whichever order its attributes are in.
		q := regexp.QuoteMeta(name)
		expr := `(?i)<(?:input|meta)\b[^>]*?\b(?:name|property)="` + q + `"[^>]*?\b(?:value|content)="([^"]*)"` +
			`|<(?:input|meta)\b[^>]*?\b(?:value|content)="([^"]*)"[^>]*?\b(?:name|property)="` + q + `"`
		out = append(out, candidate{value, place{regex: regexp.MustCompile(expr), label: "html " + name}})
	}
	return out
}

// answerValues returns the values of an answer worth correlating: the
// leaves of a JSON body, the named inputs and meta tags of an HTML one,
// and the values of headers that are not about the answer itself
// (Location, X-CSRF-Token, ...).
func answerValues(ex *traces.Exchange) []candidate {
	var out []candidate
	for _, h := range ex.RespHeader {
		if !ordinaryHeader(h.Name) && len(h.Value) >= minValue {
			out = append(out, candidate{h.Value, place{header: h.Name}})
		}
	}
	body := ex.RespBody.Data
	if ex.RespBody.Truncated() || len(body) == 0 {
		return out
	}
	if body[0] != '{' && body[0] != '[' {
		if bytes.Contains(body[:min(len(body), 512)], []byte("<")) {
			out = append(out, htmlValues(body)...)
		}
		return out
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var doc any
	if dec.Decode(&doc) != nil {
		return out
	}
	walk(doc, nil, func(path []any, v string) {
		out = append(out, candidate{v, place{path: append([]any(nil), path...)}})
	})
	return out
}

// walk calls f for each leaf of a JSON document worth correlating.
func walk(doc any, path []any, f func(path []any, v string)) {
	switch d := doc.(type) {
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(d)) {
			walk(d[k], append(path, k), f)
		}
	case []any:
		for i, v := range d {
			walk(v, append(path, i), f)
		}
	case string:
		if len(d) >= minValue {
			f(path, d)
		}
	case json.Number:
		if s := d.String(); len(s) >= minDigits && !strings.ContainsAny(s, ".eE") {
			f(path, s)
		}
	}
}

// addedValues returns the values the hand-written rules take from an
// answer: those of its endpoint, whatever their length.
func addedValues(ex *traces.Exchange, rules *CorrelationRules) []candidate {
	if rules == nil || len(rules.Add) == 0 {
		return nil
	}
	var out []candidate
	endpoint := report.Template(ex.Method, ex.URL)
	header := func(name string) []byte {
		for _, h := range ex.RespHeader {
			if strings.EqualFold(h.Name, name) {
				return []byte(h.Value)
			}
		}
		return nil
	}
	for _, a := range rules.Add {
		if a.From != endpoint && a.From != ex.Method+" "+ex.URL {
			continue
		}
		if v, ok := a.place.extract(ex.RespBody.Data, header); ok {
			out = append(out, candidate{v, a.place})
		}
	}
	return out
}

// requestText is what a request sends that could carry a value back: its
// target, headers but cookies, body and WebSocket messages.
func requestText(ex *traces.Exchange) string {
	var b strings.Builder
	b.WriteString(ex.URL)
	for _, h := range ex.ReqHeader {
		if !strings.EqualFold(h.Name, "Cookie") && !hopHeader(h.Name) {
			b.WriteString("\n" + h.Value)
		}
	}
	b.WriteString("\n")
	b.Write(ex.ReqBody.Data)
	if ws := ex.WebSocket; ws != nil {
		for _, f := range ws.Frames {
			if f.FromClient {
				b.WriteString("\n")
				b.Write(f.Payload.Data)
			}
		}
	}
	return b.String()
}

// sends reports whether text holds value as a whole token: not inside a
// longer run of letters and digits, so that 12345 is not found in 123456.
func sends(text, value string) bool {
	for i := 0; ; {
		j := strings.Index(text[i:], value)
		if j < 0 {
			return false
		}
		at := i + j
		end := at + len(value)
		if (at == 0 || !alnum(text[at-1])) && (end == len(text) || !alnum(text[end])) {
			return true
		}
		i = at + 1
	}
}

func alnum(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

// correlate finds the variables of a session: values of earlier answers
// that later requests send. The latest answer that had a value before a
// request is its source. It returns the variables and, for each exchange,
// the indices of those its request uses.
func correlate(s *traces.Session, rules *CorrelationRules) ([]variable, [][]int) {
	uses := make([][]int, len(s.Exchanges))
	var vars []variable
	byValue := map[string]int{} // recorded value → its variable, latest source
	for i := range s.Exchanges {
		ex := &s.Exchanges[i]
		own := requestText(ex)
		for v, k := range byValue {
			if sends(own, v) {
				uses[i] = append(uses[i], k)
			}
		}
		seen := map[string]bool{}
		for _, c := range append(addedValues(ex, rules), answerValues(ex)...) {
			rule := report.Template(ex.Method, ex.URL) + " " + c.place.String()
			if seen[c.value] || strings.Contains(own, c.value) || rules.disabled(rule) {
				// The same value twice in one answer keeps its first place;
				// a value the request itself sent is the client's, not the
				// server's.
				continue
			}
			seen[c.value] = true
			byValue[c.value] = len(vars)
			vars = append(vars, variable{recorded: c.value, from: i, place: c.place, rule: rule})
		}
	}
	// Keep only the variables some request uses, renumbered.
	keep := map[int]int{}
	var used []variable
	for i := range uses {
		for n, k := range uses[i] {
			if _, ok := keep[k]; !ok {
				keep[k] = len(used)
				used = append(used, vars[k])
			}
			uses[i][n] = keep[k]
		}
	}
	return used, uses
}

// extract finds the value at p in a live answer's body or headers.
func (p place) extract(body []byte, header func(string) []byte) (string, bool) {
	if p.header != "" {
		v := header(p.header)
		return string(v), len(v) > 0
	}
	if p.regex != nil {
		m := p.regex.FindSubmatch(body)
		for _, g := range m[min(len(m), 1):] {
			if len(g) > 0 {
				return string(g), true
			}
		}
		return "", false
	}
	var doc any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if dec.Decode(&doc) != nil {
		return "", false
	}
	for _, e := range p.path {
		switch k := e.(type) {
		case string:
			m, ok := doc.(map[string]any)
			if !ok {
				return "", false
			}
			if doc, ok = m[k]; !ok {
				return "", false
			}
		case int:
			a, ok := doc.([]any)
			if !ok || k >= len(a) {
				return "", false
			}
			doc = a[k]
		}
	}
	switch v := doc.(type) {
	case string:
		return v, v != ""
	case json.Number:
		return v.String(), true
	}
	return "", false
}

// substitute writes raw into dst with every recorded value of vars replaced
// by its live one, the Content-Length fixed if the body's length changed.
func substitute(dst, raw []byte, subs [][2]string) []byte {
	end := bytes.Index(raw, []byte("\r\n\r\n")) + 4
	head, body := raw[:end], raw[end:]
	for _, s := range subs {
		head = bytes.ReplaceAll(head, []byte(s[0]), []byte(s[1]))
	}
	newBody := body
	for _, s := range subs {
		newBody = bytes.ReplaceAll(newBody, []byte(s[0]), []byte(s[1]))
	}
	if len(newBody) != len(body) {
		head = setContentLength(head, len(newBody))
	}
	dst = append(dst[:0], head...)
	return append(dst, newBody...)
}

// setContentLength rewrites a head's Content-Length value.
func setContentLength(head []byte, n int) []byte {
	i := bytes.Index(bytes.ToLower(head), []byte("\r\ncontent-length:"))
	if i < 0 {
		return head
	}
	start := i + len("\r\ncontent-length:")
	end := start + bytes.Index(head[start:], []byte("\r\n"))
	out := append([]byte(nil), head[:start]...)
	out = append(out, ' ')
	out = strconv.AppendInt(out, int64(n), 10)
	return append(out, head[end:]...)
}

// sessionVars are the live values of one session being played. A value is
// written by the request whose answer gives it and read by the requests
// that wait for that answer, so the channel that says it has come orders
// the two.
type sessionVars struct {
	script *script
	live   []string
}

// substitutions returns the recorded → live pairs step st needs, for the
// values that came.
func (sv *sessionVars) substitutions(st *step) [][2]string {
	var subs [][2]string
	for _, k := range st.uses {
		if v := sv.live[k]; v != "" && v != sv.script.vars[k].recorded {
			subs = append(subs, [2]string{sv.script.vars[k].recorded, v})
		}
	}
	return subs
}

// take reads the values step st's answer gives, and counts those missing.
func (sv *sessionVars) take(e *Engine, st *step, body []byte, header func(string) []byte) {
	for _, k := range st.sets {
		v := &sv.script.vars[k]
		live, ok := v.place.extract(body, header)
		c := e.corr[v.rule]
		if !ok {
			c.missing.Add(1)
			continue
		}
		c.found.Add(1)
		sv.live[k] = live
	}
}

// corrCount counts how often a rule found its value in a live answer.
type corrCount struct {
	found, missing atomic.Int64
}

// CorrelationStat is how a correlation rule fared in a run.
type CorrelationStat struct {
	Rule           string // where the value comes from: "POST /api/import/x/ $.job.id"
	Found, Missing int64  // live answers that had the value, and that did not
}

// Correlations returns how each rule fared so far, by rule.
func (e *Engine) Correlations() []CorrelationStat {
	out := make([]CorrelationStat, 0, len(e.corr))
	for rule, c := range e.corr {
		out = append(out, CorrelationStat{Rule: rule, Found: c.found.Load(), Missing: c.missing.Load()})
	}
	slices.SortFunc(out, func(a, b CorrelationStat) int { return strings.Compare(a.Rule, b.Rule) })
	return out
}

// Rule is a correlation found in a trace.
type Rule struct {
	Source  string         // where the value comes from
	Targets map[string]int // the endpoints that send it back, and how often
	Count   int            // sessions that have it
}

// Rules lists the correlations of the library's sessions, the most common
// first.
func (lib *Library) Rules() []Rule {
	byRule := map[string]*Rule{}
	for i := range lib.scripts {
		sc := &lib.scripts[i]
		for k, v := range sc.vars {
			r := byRule[v.rule]
			if r == nil {
				r = &Rule{Source: v.rule, Targets: map[string]int{}}
				byRule[v.rule] = r
			}
			r.Count++
			for j := range sc.steps {
				if slices.Contains(sc.steps[j].uses, k) {
					r.Targets[sc.steps[j].endpoint]++
				}
			}
		}
	}
	out := make([]Rule, 0, len(byRule))
	for _, r := range byRule {
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b Rule) int {
		if a.Count != b.Count {
			return b.Count - a.Count
		}
		return strings.Compare(a.Source, b.Source)
	})
	return out
}
