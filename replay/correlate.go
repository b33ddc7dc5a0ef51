package replay

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
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
	// short marks a value shorter than the length rule that was taken for
	// its id-like name or place: it is found and replaced only in id
	// positions (a whole path segment, a query, JSON or form value).
	short bool
	// prefix, set for a form's field as its submission sends it, is the
	// "name=" that recorded begins with: the live text is prefix and the
	// live value URL-encoded, then suffix.
	prefix, suffix string
	// context is the path segment before an id in the URL it came from
	// (boards for /boards/14): a request's /api/boards/14/cards wants the
	// board's 14, not a card's.
	context string
	// fresh marks a value the client made (a UUID): no answer gives it,
	// from is -1, and each play of the session makes its own.
	fresh bool
	// ws marks a value a WebSocket's server message gave (from is the
	// socket's step); frame is the index of the client message whose
	// reply held it, -1 before any.
	ws    bool
	frame int
	// skipWhy is what a request that needs the value and did not get it
	// is counted as: "skipped: depends on RULE".
	skipWhy report.ErrorKind
	// portable marks a value whose live answer may not be the one it
	// came in when recorded: one found by its boundary in any text, or in
	// a packet of a stream (0{…}, 42[…]); when its answer lacks it, the
	// session's later answers and frames are searched (see seek).
	portable bool
	// keys, for a short value, are the JSON keys under which requests
	// send it (see sinkKeys); nil when none do.
	keys []string
}

// why says why a variable was taken, for reports.
func (v *variable) why() string {
	if v.fresh {
		return "made by the client"
	}
	if v.short {
		return "id-like name"
	}
	return "long token"
}

// place is where a value sits in an answer: a JSON path, a header (or one
// segment of a URL path in it), or the group of a regular expression over
// the body (rules written by hand).
type place struct {
	header  string         // set for a header value
	segment int            // with header: 1 + the index of a segment of the URL path it holds
	path    []any          // JSON: object keys (string) and array indices (int)
	regex   *regexp.Regexp // set for a rule's regular expression
	label   string         // how a found regex place is named (html NAME)
	// expr is a link's shape (see links.go), compiled into regex only for
	// the variables kept; nth is which match of it holds the value, or
	// which form of the key form (see forms.go).
	expr string
	nth  int
	// form, field and fieldNth place a form's field: the form's key, the
	// field's name, which occurrence of it.
	form     string
	field    string
	fieldNth int
	// param, with header, is a query parameter of the URL the header
	// holds (a redirect's state and code), as it stands encoded.
	param string
	// prefix takes the leading digits of the value found: the id of a
	// slug (Rails' to_param: /boards/14-sprint-planning), which pages and
	// scripts send alone.
	prefix bool
	// left is the text before a value found by its boundary (see
	// found.go), nth which occurrence of it.
	left string
	// uri takes the path and query of the URL found (a presigned URL in
	// JSON, an absolute Location), as a request to the same site sends it.
	uri bool
	// siblings, for a value of a list's element (path[list] is its
	// index), are the fields that identify the element (see listed).
	list     int
	siblings map[string]string
}

func (p place) String() string {
	if p.left != "" {
		return p.boundaryString()
	}
	if p.header == "" && p.path != nil && (p.uri || p.param != "" || p.segment > 0) {
		jp := place{path: p.path}
		switch {
		case p.uri:
			return jp.String() + " path and query"
		case p.param != "":
			return jp.String() + " query " + p.param
		case p.prefix:
			return fmt.Sprintf("%s segment %d id", jp, p.segment)
		}
		return fmt.Sprintf("%s segment %d", jp, p.segment)
	}
	if p.header != "" && p.uri {
		return fmt.Sprintf("header %s path and query", p.header)
	}
	if p.header != "" && p.param != "" {
		return fmt.Sprintf("header %s query %s", p.header, p.param)
	}
	if p.header != "" && p.segment > 0 && p.prefix {
		return fmt.Sprintf("header %s segment %d id", p.header, p.segment)
	}
	if p.header != "" && p.segment > 0 {
		return fmt.Sprintf("header %s segment %d", p.header, p.segment)
	}
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
		case inJSON:
			b.WriteString("|json")
		}
	}
	return b.String()
}

// candidate is a value seen in an answer.
type candidate struct {
	value   string
	place   place
	context string // the path segment before it in a URL, if it is an id in one
	// short marks a value shorter than the length rule, kept for its
	// id-like name or place.
	short bool
}

// idName reports whether a JSON key names an id: id, pk, uuid, slug, key,
// handle, cursor, or a name ending in _id, Id, _ids, Ids, _pk, _uuid, _key,
// _slug or _cursor.
func idName(k string) bool {
	switch strings.ToLower(k) {
	case "id", "pk", "uuid", "guid", "slug", "key", "handle", "ids", "cursor", "next_cursor", "nextcursor":
		return true
	}
	for _, suf := range []string{"_id", "Id", "ID", "_ids", "Ids", "IDs", "_pk", "_uuid", "Uuid", "_key", "Key", "_slug", "_cursor", "Cursor"} {
		if len(k) > len(suf) && strings.HasSuffix(k, suf) {
			return true
		}
	}
	return false
}

// idPath reports whether a JSON path ends at an id: its last key is
// id-like, or it is an element of an array whose key is.
func idPath(path []any) bool {
	for i := len(path) - 1; i >= 0; i-- {
		if k, ok := path[i].(string); ok {
			return idName(k)
		}
	}
	return false
}

// shortValue reports whether v is too short for the length rule.
func shortValue(v string) bool {
	if _, err := strconv.ParseInt(v, 10, 64); err == nil {
		return len(v) < minDigits
	}
	return len(v) < minValue
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

// htmlTagRE finds the input and meta tags of an HTML answer, which carry
// tokens (a CSRF token in a form or in a meta tag).
var htmlTagRE = regexp.MustCompile(`(?i)<(?:input|meta)\b[^>]*>`)

// htmlValues returns the named values of an HTML body's inputs and meta
// tags (name or property, value or content, in any order), each with a
// regular expression that finds it again in a live one.
func htmlValues(body []byte) []candidate {
	var out []candidate
	for _, tag := range htmlTagRE.FindAll(body, -1) {
		if !bytes.Contains(tag, []byte(`="`)) {
			continue
		}
		a := attrs(string(tag))
		name, value := cmpOr(a["name"], a["property"]), cmpOr(a["value"], a["content"])
		if name == "" || len(value) < minValue {
			continue
		}
		// Found again in a live page whichever order its attributes are in.
		q := regexp.QuoteMeta(name)
		expr := `(?i)<(?:input|meta)\b[^>]*?\b(?:name|property)="` + q + `"[^>]*?\b(?:value|content)="([^"]*)"` +
			`|<(?:input|meta)\b[^>]*?\b(?:value|content)="([^"]*)"[^>]*?\b(?:name|property)="` + q + `"`
		out = append(out, candidate{value: value, place: place{expr: expr, label: "html " + name}}) // compiled if kept
	}
	return out
}

// answerValues returns the values of an answer worth correlating: the
// leaves of a JSON body, the named inputs and meta tags of an HTML one,
// and the values of headers that are not about the answer itself
// (Location, X-CSRF-Token, ...).
func answerValues(ex *traces.Exchange) (out []candidate) {
	for _, h := range ex.RespHeader {
		if !ordinaryHeader(h.Name) && len(h.Value) >= minValue {
			out = append(out, candidate{value: h.Value, place: place{header: h.Name}})
		}
	}
	// The ids in the path of a created thing's address, after the
	// body's values, which name them better.
	defer func() {
		for _, h := range ex.RespHeader {
			if !strings.EqualFold(h.Name, "Location") && !strings.EqualFold(h.Name, "Content-Location") {
				continue
			}
			out = append(out, urlParts(h.Value, place{header: h.Name})...)
		}
	}()
	body := ex.RespBody.Data
	if ex.RespBody.Truncated() || len(body) == 0 {
		return out
	}
	body = jsonPart(body)
	if body[0] != '{' && body[0] != '[' {
		if bytes.Contains(body[:min(len(body), 512)], []byte("<")) {
			out = append(out, formValues(body)...)
			out = append(out, htmlValues(body)...)
			out = append(out, linkValues(body)...)
		}
		return out
	}
	doc, ok := decodeJSON(body)
	if !ok {
		return out
	}
	walk(doc, nil, func(path []any, v string) {
		short := shortValue(v)
		if !short || idPath(path) {
			out = append(out, candidate{value: v, place: place{path: append([]any(nil), path...)}, short: short})
		}
		if urlValue(v) {
			// The parts of a URL the answer gives (a presigned upload's
			// URL, a next page's link), after the whole.
			out = append(out, urlParts(v, place{path: append([]any(nil), path...)})...)
		}
	})
	return out
}

// urlParts returns the values of the parts of a URL found at base: its
// path and query when it is absolute (a request to the same site sends
// them alone), the ids in its path (and the id a slug begins with), and
// the values of its query (an authorization server's state and code, a
// signed URL's signature), as they stand encoded.
func urlParts(u string, base place) []candidate {
	var out []candidate
	if uri := traces.RequestURI(u); uri != u && len(uri) >= minValue {
		p := base
		p.uri = true
		out = append(out, candidate{value: uri, place: p})
	}
	segs := pathSegments(u)
	for i, seg := range segs {
		var before string
		if i > 0 {
			before = segs[i-1]
		}
		if isDigits(seg) || len(seg) >= minValue && strings.ContainsAny(seg, "0123456789") {
			p := base
			p.segment = i + 1
			out = append(out, candidate{value: seg, place: p, short: shortValue(seg), context: before})
		}
		if id := slugID(seg); id != "" {
			p := base
			p.segment, p.prefix = i+1, true
			out = append(out, candidate{value: id, place: p, short: shortValue(id), context: before})
		}
	}
	for name, v := range queryParams(u) {
		if len(v) >= minValue || idName(name) && v != "" {
			p := base
			p.param = name
			out = append(out, candidate{value: v, place: p, short: shortValue(v)})
		}
	}
	return out
}

// urlValue reports a JSON string that is a URL: absolute, or a path with
// a query.
func urlValue(v string) bool {
	return strings.HasPrefix(v, "http://") || strings.HasPrefix(v, "https://") || strings.HasPrefix(v, "/") && strings.Contains(v, "?")
}

// jsonDoc reports a body that is a JSON object or array.
func jsonDoc(b []byte) bool {
	b = bytes.TrimSpace(b)
	return len(b) > 0 && (b[0] == '{' || b[0] == '[')
}

// needsJSONEscape reports a value that JSON writes otherwise inside a
// string: with a quote, a backslash or a control character.
func needsJSONEscape(v string) bool {
	for i := range len(v) {
		if c := v[i]; c == '"' || c == '\\' || c < 0x20 {
			return true
		}
	}
	return false
}

// slugID returns the id a slug begins with (14 of 14-sprint-planning), or
// "".
func slugID(seg string) string {
	i := strings.IndexByte(seg, '-')
	if i <= 0 || i == len(seg)-1 || !isDigits(seg[:i]) {
		return ""
	}
	return seg[:i]
}

// queryParams returns the parameters of a URL's query, values as they
// stand (still encoded): the first of each name.
func queryParams(u string) map[string]string {
	_, q, ok := strings.Cut(u, "?")
	if !ok {
		return nil
	}
	q, _, _ = strings.Cut(q, "#")
	out := map[string]string{}
	for kv := range strings.SplitSeq(q, "&") {
		k, v, _ := strings.Cut(kv, "=")
		if name, err := url.QueryUnescape(k); err == nil && name != "" {
			if _, ok := out[name]; !ok {
				out[name] = v
			}
		}
	}
	return out
}

// jsonPart returns the JSON document of an answer that puts a prefix
// before it: an XSSI guard ()]}', for(;;);, while(1);) or an Engine.IO
// packet's type digits (0{"sid":…}, 42["event",…]). Any other body is
// returned as it is.
func jsonPart(b []byte) []byte {
	if len(b) == 0 || b[0] == '{' || b[0] == '[' {
		return b
	}
	for _, guard := range []string{")]}'", "for(;;);", "while(1);"} {
		if rest, ok := bytes.CutPrefix(b, []byte(guard)); ok {
			rest = bytes.TrimLeft(rest, ",\r\n \t")
			if len(rest) > 0 && (rest[0] == '{' || rest[0] == '[') {
				return rest
			}
			return b
		}
	}
	i := 0
	for i < len(b) && i < 4 && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	if i > 0 && i < len(b) && (b[i] == '{' || b[i] == '[') {
		return b[i:]
	}
	if _, body, ok := textFrame(b); ok && len(body) > 0 && (body[0] == '{' || body[0] == '[') {
		return body
	}
	return b
}

// textFrame splits a text protocol's frame (STOMP's "MESSAGE\nname:value\n
// …\n\nbody\x00") into its header lines and its body; false when b is
// not one: a first line of capital letters, then lines with a colon, then
// an empty line.
func textFrame(b []byte) (head, body []byte, ok bool) {
	nl := bytes.IndexByte(b, '\n')
	if nl < 3 {
		return nil, nil, false
	}
	for _, c := range bytes.TrimSuffix(b[:nl], []byte("\r")) {
		if c < 'A' || c > 'Z' {
			return nil, nil, false
		}
	}
	k := bytes.Index(b[nl:], []byte("\n\n"))
	if k < 0 {
		return nil, nil, false
	}
	end := nl + k
	head = b[min(nl+1, end):end]
	for _, line := range bytes.Split(head, []byte("\n")) {
		if len(line) > 0 && bytes.IndexByte(line, ':') < 0 {
			return nil, nil, false
		}
	}
	return head, bytes.TrimRight(b[end+2:], "\x00\r\n"), true
}

// decodeJSON decodes a JSON object or array, numbers kept as written.
func decodeJSON(body []byte) (any, bool) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' && body[0] != '[' {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var doc any
	return doc, dec.Decode(&doc) == nil
}

// pathSegments returns the segments of the path of a URL or path.
func pathSegments(u string) []string {
	if i := strings.Index(u, "://"); i >= 0 {
		u = u[i+3:]
		if j := strings.IndexByte(u, '/'); j >= 0 {
			u = u[j:]
		} else {
			return nil
		}
	}
	if i := strings.IndexAny(u, "?#"); i >= 0 {
		u = u[:i]
	}
	return strings.Split(strings.Trim(u, "/"), "/")
}

func isDigits(s string) bool {
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// sinkKeys holds the short values (small ids) to the JSON keys that name
// them: a value sent in a request's JSON (body or WebSocket messages, JSON
// in strings included) goes there only under an id-like key or its
// source's own key (doc_id, project), never under another (a version 2, a
// count 2), and a request that sends it nowhere else does not use it. It
// sets each short variable's keys and returns uses without those.
func sinkKeys(s *traces.Session, vars []variable, uses [][]int) [][]int {
	same := map[string][]int{} // a small value → its variables, in order
	for k := range vars {
		if v := &vars[k]; v.short && v.prefix == "" {
			same[v.recorded] = append(same[v.recorded], k)
		}
	}
	for i := range s.Exchanges {
		ex := &s.Exchanges[i]
		var under map[string][]string // value → the JSON keys it is sent under
		before := func(value string) []int {
			var out []int
			for _, k := range same[value] {
				if vars[k].from < i || vars[k].ws && vars[k].from == i {
					out = append(out, k)
				}
			}
			return out
		}
		// Among several sources of one small value (user 1, cart item 1,
		// order 1), a JSON key takes the latest that it names (orderId:
		// the order's), whichever came last.
		if len(uses[i]) > 0 {
			under = jsonSinks(ex)
			for value, keys := range under {
				cands := before(value)
				if len(cands) < 2 {
					continue
				}
				for _, key := range keys {
					best := -1
					for _, k := range cands {
						if namesSource(key, &vars[k]) {
							best = k
						}
					}
					if best >= 0 && !slices.Contains(uses[i], best) {
						uses[i] = append(uses[i], best)
					}
				}
			}
		}
		kept := uses[i][:0]
		for _, k := range uses[i] {
			v := &vars[k]
			if !v.short || v.prefix != "" {
				kept = append(kept, k)
				continue
			}
			if under == nil {
				under = jsonSinks(ex)
			}
			named := func(key string) bool { // by another source of the value
				for _, k2 := range before(v.recorded) {
					if k2 != k && namesSource(key, &vars[k2]) {
						return true
					}
				}
				return false
			}
			ok := len(under[v.recorded]) == 0 // not in JSON: a path, a query, a form
			for _, key := range under[v.recorded] {
				if namesSource(key, v) || idName(key) && !named(key) {
					ok = true
					if !slices.Contains(v.keys, key) {
						v.keys = append(v.keys, key)
					}
				}
			}
			if !ok && !sentOutsideJSON(ex, v.recorded) {
				continue
			}
			if v.keys == nil {
				v.keys = []string{}
			}
			kept = append(kept, k)
		}
		uses[i] = kept
	}
	return uses
}

// namesSource reports whether a JSON key names what a variable's source
// is: a key of its JSON path, or the thing of one (tag of tags_ids, order
// of $.order.id, project of project_id), or its URL context.
func namesSource(key string, v *variable) bool {
	n := nounOf(key)
	if n == "" {
		return false
	}
	if nounOf(v.context) == n || nounOf(v.place.field) == n {
		return true
	}
	for _, e := range v.place.path {
		if k, ok := e.(string); ok && (k == key || nounOf(k) == n) {
			return true
		}
	}
	return false
}

// nounOf is the thing a key names, lower case and singular, without an id
// suffix: order for orderId, order_id, orders; "" for id itself.
func nounOf(key string) string {
	k := strings.ToLower(key)
	for _, suf := range []string{"_ids", "ids", "_id", "id", "_pk", "pk", "_uuid", "uuid", "_key", "_slug"} {
		if len(k) > len(suf) && strings.HasSuffix(k, suf) {
			k = k[:len(k)-len(suf)]
			break
		}
	}
	k = strings.TrimRight(k, "_-")
	if strings.HasSuffix(k, "ies") {
		k = k[:len(k)-3] + "y"
	} else {
		k = strings.TrimSuffix(k, "s")
	}
	switch k {
	case "", "i", "p", "uu":
		return ""
	}
	return k
}

// jsonSinks returns the values a request sends in JSON (its body, its
// WebSocket messages), each with the keys it is sent under.
func jsonSinks(ex *traces.Exchange) map[string][]string {
	out := map[string][]string{}
	add := func(b []byte) {
		doc, ok := decodeJSON(jsonPart(bytes.TrimSpace(b)))
		if !ok {
			return
		}
		walk(doc, nil, func(path []any, v string) {
			key := ""
			for i := len(path) - 1; i >= 0; i-- {
				if k, ok := path[i].(string); ok {
					key = k
					break
				}
			}
			if !slices.Contains(out[v], key) {
				out[v] = append(out[v], key)
			}
		})
	}
	add(ex.ReqBody.Data)
	if ws := ex.WebSocket; ws != nil {
		for _, f := range ws.Frames {
			if f.FromClient {
				add(f.Payload.Data)
			}
		}
	}
	return out
}

// sentOutsideJSON reports whether a request sends v in an id position of
// its URL or of a form body.
func sentOutsideJSON(ex *traces.Exchange, v string) bool {
	ids := map[string]bool{}
	idPositions(&traces.Exchange{URL: ex.URL}, ids)
	if ids[v] {
		return true
	}
	if b := bytes.TrimSpace(ex.ReqBody.Data); len(b) > 0 && b[0] != '{' && b[0] != '[' {
		if vals, err := url.ParseQuery(string(b)); err == nil {
			for _, vs := range vals {
				if slices.Contains(vs, v) {
					return true
				}
			}
		}
	}
	return false
}

// inArray reports a JSON path through an array element.
func inArray(path []any) bool {
	for _, e := range path {
		if _, ok := e.(int); ok {
			return true
		}
	}
	return false
}

// stringJSON decodes a string that holds a JSON object or array.
func stringJSON(s string) (any, bool) {
	if len(s) < 2 || s[0] != '{' && s[0] != '[' || s[len(s)-1] != '}' && s[len(s)-1] != ']' {
		return nil, false
	}
	return decodeJSON([]byte(s))
}

// walk calls f for each non-empty string and each integer of a JSON
// document, and of JSON documents held in its strings.
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
		if d == "" {
			return
		}
		if inner, ok := stringJSON(d); ok {
			walk(inner, append(path, inJSON{}), f)
			return
		}
		f(path, d)
	case json.Number:
		if s := d.String(); !strings.ContainsAny(s, ".eE") {
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
	endpoint := traces.Endpoint(ex)
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
			// A short number (201) is found and replaced in id positions
			// only, so that it cannot rewrite a Content-Length; any other
			// value wherever it stands as a whole token.
			out = append(out, candidate{value: v, place: a.place, short: shortValue(v) && isDigits(v)})
		}
	}
	return out
}

// requestText is what a request sends that could carry a value back: its
// target, headers but cookies, body and WebSocket messages.
func requestText(ex *traces.Exchange) string {
	return sentText(ex, func(name string) bool { return !strings.EqualFold(name, "Cookie") && !hopHeader(name) })
}

// sentText is a request's target, its headers that header keeps, its body
// and its WebSocket messages, one text.
func sentText(ex *traces.Exchange, header func(name string) bool) string {
	var b strings.Builder
	b.WriteString(ex.URL)
	for _, h := range ex.ReqHeader {
		if header(h.Name) {
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

// idPositions adds to into the values a request sends in id positions:
// whole segments of its path, query values, JSON values (strings and
// integers) and form values of its body and of its WebSocket messages.
func idPositions(ex *traces.Exchange, into map[string]bool) { positions(ex, into, false) }

// namedPositions is idPositions with only the JSON values under an id's
// name: what the client sends as an id of its own, not the version 2 of
// an edit (which a document's id 2, made later, is not).
func namedPositions(ex *traces.Exchange, into map[string]bool) { positions(ex, into, true) }

func positions(ex *traces.Exchange, into map[string]bool, named bool) {
	path, query, _ := strings.Cut(traces.RequestURI(ex.URL), "?")
	for _, seg := range pathSegments(path) {
		if seg != "" {
			into[seg] = true
		}
		if dot := strings.LastIndexByte(seg, '.'); dot > 0 && formatExt([]byte(seg[dot:])) {
			into[seg[:dot]] = true
		}
	}
	fields := func(text string) {
		if vals, err := url.ParseQuery(text); err == nil {
			for _, vs := range vals {
				for _, v := range vs {
					into[v] = true
				}
			}
		}
	}
	fields(query)
	body := func(b []byte) {
		b = bytes.TrimSpace(b)
		if len(b) == 0 {
			return
		}
		if doc, ok := decodeJSON(b); ok {
			walk(doc, nil, func(path []any, v string) {
				if !named || idPath(path) {
					into[v] = true
				}
			})
			return
		}
		if bytes.IndexByte(b, '=') > 0 {
			fields(string(b))
		}
	}
	body(ex.ReqBody.Data)
	if ws := ex.WebSocket; ws != nil {
		for _, f := range ws.Frames {
			if f.FromClient {
				body(f.Payload.Data)
				// A STOMP frame's JSON body and the paths of its headers
				// (destination:/app/boards/3/cards), which an answer
				// before the socket gave.
				framePositionsOf(f.Payload.Data, into, named)
			}
		}
	}
}

// correlate is the value flow of a (decoded) session: which values of
// earlier answers later requests send, and where. It runs in three named
// stages, the same for replay, --check and traces correlations:
//
//   - findValues: every value each answer gives (its known places, then
//     any token of its text, then a socket's replies) against what each
//     request sends, in the session's order; the latest answer that had
//     a value before a request is its source, a value the client sent
//     first stays the client's, a UUID it made is made afresh;
//   - chooseEdges: among several sources of one value, the one whose
//     position names the sink (the path segment before an id, the form a
//     request submits, the JSON key that names the thing);
//   - usedValues: the variables some request uses, renumbered, their
//     expressions compiled.
//
// It returns the variables and, for each exchange, the indices of those
// its request uses. Building the steps from them (waits, echoes, socket
// scripts) is Library.add's; substituting live values at run time is
// sessionVars'.
func correlate(s *traces.Session, rules *CorrelationRules) ([]variable, [][]int) {
	vars, uses := findValues(s, rules)
	vars, uses = chooseEdges(s, rules, vars, uses)
	vars, uses = usedValues(vars, uses)
	listIdentity(s, vars)
	for k := range vars {
		v := &vars[k]
		if v.from >= 0 && !v.ws && v.prefix == "" {
			body := s.Exchanges[v.from].RespBody.Data
			v.portable = v.place.left != "" || v.place.path != nil && len(body) > 0 && len(jsonPart(body)) != len(body)
		}
	}
	return vars, uses
}

// findValues is correlate's first stage. A value of the length rule is
// found anywhere in a later request; a shorter one with an id-like name
// only in an id position, and only if no request sent it in such a
// position first.
func findValues(s *traces.Session, rules *CorrelationRules) ([]variable, [][]int) {
	uses := make([][]int, len(s.Exchanges))
	var vars []variable
	byValue := map[string]int{}     // recorded value → its variable, latest source
	clientSent := map[string]bool{} // values requests sent in id positions so far
	var tokens tokenSources
	for i := range s.Exchanges {
		ex := &s.Exchanges[i]
		own := requestText(ex)
		ids := map[string]bool{}
		idPositions(ex, ids)
		for v, k := range byValue {
			if vars[k].short && ids[v] || !vars[k].short && sends(own, v) {
				uses[i] = append(uses[i], k)
			}
		}
		// What a socket's own replies gave, then what no known place
		// gave but the text of an answer had.
		vars, uses = tokens.frameFlow(s, i, vars, uses, rules)
		vars, uses = tokens.found(s, i, vars, uses, byValue, rules)
		named := map[string]bool{}
		namedPositions(ex, named)
		for v := range named {
			// A value the client sent that an answer had given it is the
			// server's still (a card's id sent back to edit it): only one
			// no answer gave is the client's own.
			if _, given := byValue[v]; !given {
				clientSent[v] = true
			}
		}
		seen := map[string]bool{}
		for _, c := range append(addedValues(ex, rules), answerValues(ex)...) {
			rule := traces.Endpoint(ex) + " " + c.place.String()
			if seen[c.value] && c.context != "" && !seen[c.value+"/"+c.context] && !rules.disabled(rule) {
				// The same id in another URL of the answer (a card 3 of
				// board 3): kept for the requests that name it by its
				// context (see affine).
				seen[c.value+"/"+c.context] = true
				vars = append(vars, variable{recorded: c.value, from: i, place: c.place, rule: rule, short: c.short, context: c.context})
				continue
			}
			if seen[c.value] || strings.Contains(own, c.value) && !c.short || c.short && clientSent[c.value] || rules.disabled(rule) || tokens.clientMade[c.value] {
				// The same value twice in one answer keeps its first place;
				// a value the client sent first is the client's, not the
				// server's.
				continue
			}
			if k, ok := byValue[c.value]; ok && inArray(c.place.path) && !inArray(vars[k].place.path) && vars[k].place.left == "" {
				// A list that holds a value an answer gave alone (the
				// notebook a create named, now in the listing) does not
				// displace it: other users' items shift the list, and the
				// answer that made it names this user's.
				continue
			}
			seen[c.value] = true
			seen[c.value+"/"+c.context] = true
			byValue[c.value] = len(vars)
			vars = append(vars, variable{recorded: c.value, from: i, place: c.place, rule: rule, short: c.short, context: c.context})
		}
		tokens.answered(i, ex)
	}
	return vars, uses
}

// chooseEdges is correlate's second stage: where several sources gave a
// value, each request takes it from the one its position names.
func chooseEdges(s *traces.Session, rules *CorrelationRules, vars []variable, uses [][]int) ([]variable, [][]int) {
	vars, uses = affine(s, vars, uses)
	vars, uses = submissions(s, rules, vars, uses)
	return vars, sinkKeys(s, vars, uses)
}

// usedValues is correlate's last stage: the variables some request uses,
// renumbered, with their expressions compiled and what a request that
// lacks one is counted as.
func usedValues(vars []variable, uses [][]int) ([]variable, [][]int) {
	for k := range vars {
		vars[k].skipWhy = report.ErrorKind("skipped: depends on " + vars[k].rule)
	}
	keep := map[int]int{}
	var used []variable
	compiled := map[string]*regexp.Regexp{}
	for i := range uses {
		for n, k := range uses[i] {
			if _, ok := keep[k]; !ok {
				keep[k] = len(used)
				v := vars[k]
				if e := v.place.expr; e != "" {
					if compiled[e] == nil {
						compiled[e] = regexp.MustCompile(e)
					}
					v.place.regex = compiled[e]
				}
				used = append(used, v)
			}
			uses[i][n] = keep[k]
		}
	}
	return used, uses
}

// extract finds the value at p in a live answer's body or headers.
func (p place) extract(body []byte, header func(string) []byte) (string, bool) {
	if p.form != "" {
		return p.formValue(body)
	}
	if p.left != "" {
		return p.boundaryValue(body)
	}
	if p.header != "" {
		v := header(p.header)
		return p.urlPart(string(v), len(v) > 0)
	}
	if p.siblings != nil {
		return p.urlPart(p.listed(body))
	}
	if p.regex != nil {
		var m [][]byte
		if p.nth > 0 {
			all := p.regex.FindAllSubmatch(body, p.nth+1)
			if len(all) <= p.nth {
				return "", false
			}
			m = all[p.nth]
		} else {
			m = p.regex.FindSubmatch(body)
		}
		for _, g := range m[min(len(m), 1):] {
			if len(g) > 0 {
				return string(g), true
			}
		}
		return "", false
	}
	return p.urlPart(jsonAt(jsonPart(body), p.path))
}

// urlPart takes from a value found the part of a URL p names: a query
// parameter, a path segment (or the id of a slug in it), or its path and
// query; the value itself when p names none.
func (p place) urlPart(v string, ok bool) (string, bool) {
	switch {
	case !ok:
		return "", false
	case p.uri:
		return traces.RequestURI(v), true
	case p.param != "":
		pv, ok := queryParams(v)[p.param]
		return pv, ok && pv != ""
	case p.segment > 0:
		segs := pathSegments(v)
		if p.segment > len(segs) || segs[p.segment-1] == "" {
			return "", false
		}
		if p.prefix {
			id := slugID(segs[p.segment-1])
			return id, id != ""
		}
		return segs[p.segment-1], true
	}
	return v, true
}

// substitution is a recorded text and the live one that replaces it.
type substitution struct {
	old, new string
	// idOnly replaces old only where it stands in an id position, and in
	// the request line and body only: a short id (201) must not change a
	// Content-Length of 201 or a year.
	idOnly bool
	// keys, with idOnly, are the JSON keys under which old is replaced
	// in a JSON text: a doc's id 2 under doc_id, not a version 2.
	keys []string
}

// appendReplaced appends b to dst with every recorded text of subs
// replaced by its live one, in one pass, so that a live value is never
// taken for another recorded one (a live /projects/1205 must not be
// replaced again by the rule for /projects/12); the longest recorded text
// wins where several match. line says b is a request's head, in which ids
// are replaced in the request line only.
func appendReplaced(dst, b []byte, subs []substitution, line bool) []byte {
	return appendReplacedFrom(dst, b, 0, subs, sortSubs(b, subs, line))
}

// replaceAll is appendReplaced into a new slice, or b itself when nothing
// matched.
func replaceAll(b []byte, subs []substitution, line bool) []byte {
	if len(subs) == 0 {
		return b
	}
	lineEnd := sortSubs(b, subs, line)
	at, _, s := nextMatch(b, 0, subs, lineEnd)
	if s == nil {
		return b
	}
	return appendReplacedFrom(append(make([]byte, 0, len(b)), b[:at]...), b, at, subs, lineEnd)
}

// appendReplacedFrom appends b[from:] to dst, replaced, its subs sorted.
func appendReplacedFrom(dst, b []byte, from int, subs []substitution, lineEnd int) []byte {
	last := from
	for at, end, s := nextMatch(b, from, subs, lineEnd); s != nil; at, end, s = nextMatch(b, end, subs, lineEnd) {
		dst = append(dst, b[last:at]...)
		dst = append(dst, s.new...)
		last = end
	}
	return append(dst, b[last:]...)
}

// sortSubs puts the longest recorded texts first, and returns where b's
// ids may be replaced up to: its first line when line is set.
func sortSubs(b []byte, subs []substitution, line bool) (lineEnd int) {
	if len(subs) > 1 {
		slices.SortFunc(subs, func(x, y substitution) int { return len(y.old) - len(x.old) })
	}
	if line {
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			return i
		}
	}
	return len(b)
}

// nextMatch finds the first recorded text of subs in b from i on: where it
// starts and ends, and its substitution; nil when there is none.
func nextMatch(b []byte, i int, subs []substitution, lineEnd int) (at, end int, _ *substitution) {
	for ; i < len(b); i++ {
		for k := range subs {
			s := &subs[k]
			if s.old == "" || b[i] != s.old[0] || s.idOnly && i >= lineEnd || !bytes.HasPrefix(b[i:], []byte(s.old)) {
				continue
			}
			if end := i + len(s.old); !s.idOnly || idBoundary(b, i, end) && keyed(b, i, s.keys) {
				return i, end, s
			}
		}
	}
	return 0, 0, nil
}

// keyed reports whether the value at b[at] may be replaced where it
// stands: anywhere but as a JSON member's value, and there only under one
// of keys (nil: any).
func keyed(b []byte, at int, keys []string) bool {
	if keys == nil {
		return true
	}
	i := at - 1
	if i >= 0 && b[i] == '"' {
		i-- // a string value's quote
		if i >= 0 && b[i] == '\\' {
			i-- // escaped, in JSON held in a string
		}
	}
	for i >= 0 && b[i] == ' ' {
		i--
	}
	if i < 0 || b[i] != ':' {
		return true // not a member's value: a path segment, a form field
	}
	i--
	for i >= 0 && b[i] == ' ' {
		i--
	}
	if i < 0 || b[i] != '"' {
		return false
	}
	end := i
	if end > 0 && b[end-1] == '\\' {
		end--
	}
	start := bytes.LastIndexByte(b[:end], '"')
	if start < 0 {
		return false
	}
	key := string(b[start+1 : end])
	key = strings.TrimSuffix(key, "\\")
	return slices.Contains(keys, key)
}

// idBoundary reports whether b[at:end] stands in an id position.
func idBoundary(b []byte, at, end int) bool {
	if at == 0 {
		return false
	}
	prev := b[at-1]
	next := byte(' ')
	if end < len(b) {
		next = b[end]
	}
	if prev == '"' {
		// In JSON held in a JSON string, quotes are escaped: \"42\".
		return next == '"' || next == '\\' && end+1 < len(b) && b[end+1] == '"'
	}
	if prev == '.' && at >= 2 && letter(b[at-2]) {
		prev = '/' // a dotted name's id: /topic/boards.14 (see dottedID)
	}
	if next == '.' && formatExt(b[end:]) {
		next = '/' // /docs/6.json: the id before a format
	}
	return strings.IndexByte("/=:[, ", prev) >= 0 && strings.IndexByte("/?&#,]} \r\n", next) >= 0
}

// formatExt reports whether b begins with a format extension that ends a
// path segment (.json of /docs/6.json, Rails' respond_to formats).
func formatExt(b []byte) bool {
	if len(b) < 2 || b[1] < 'a' || b[1] > 'z' {
		return false // not HTTP/1.1's
	}
	n := 1
	for n < len(b) && n <= 5 && ('a' <= b[n] && b[n] <= 'z' || '0' <= b[n] && b[n] <= '9') {
		n++
	}
	return n > 1 && (n == len(b) || strings.IndexByte("/?# \r\n", b[n]) >= 0)
}

// substitute writes raw into dst with every recorded value of subs replaced
// by its live one, the Content-Length fixed if the body's length changed.
func substitute(dst, raw []byte, subs []substitution) []byte {
	end := bytes.Index(raw, []byte("\r\n\r\n")) + 4
	dst = appendReplaced(dst[:0], raw[:end], subs, true)
	head := len(dst)
	dst = appendReplaced(dst, raw[end:], subs, false)
	if n := len(dst) - head; n != len(raw)-end {
		dst = setContentLength(dst, head, n)
	}
	return dst
}

// setContentLength rewrites, in place, the Content-Length value in the
// head msg[:head] to n.
func setContentLength(msg []byte, head, n int) []byte {
	const name = "\r\ncontent-length:"
	i := indexFold(msg[:head], name)
	if i < 0 {
		return msg
	}
	start := i + len(name)
	end := start + bytes.Index(msg[start:head], []byte("\r\n"))
	var digits [21]byte
	value := strconv.AppendInt(append(digits[:0], ' '), int64(n), 10)
	return slices.Replace(msg, start, end, value...)
}

// indexFold returns where the lower-case ASCII text sub first occurs in b,
// letters compared without case; -1 when it does not.
func indexFold(b []byte, sub string) int {
	for i := 0; i+len(sub) <= len(b); i++ {
		k := 0
		for ; k < len(sub); k++ {
			c, t := b[i+k], sub[k]
			if t >= 'a' && t <= 'z' {
				c |= 0x20 // only a letter's case folds
			}
			if c != t {
				break
			}
		}
		if k == len(sub) {
			return i
		}
	}
	return -1
}

// sessionVars are the live values of one session being played. A value is
// written by the request whose answer gives it and read by the requests
// that wait for that answer, so the channel that says it has come orders
// the two.
type sessionVars struct {
	script *script
	live   []string
	// steps say how each step went, for the steps that wait for it.
	steps []stepState
	// pending are the values their answers lacked, with what was found of
	// them elsewhere since (see seek); seeking counts those still sought,
	// wake tells a socket waiting for one that one came.
	mu      sync.Mutex
	pending map[int]string
	seeking atomic.Int32
	sought  atomic.Bool
	wake    chan struct{}
}

// waker returns the channel that says a value sought came, nil while
// nothing is sought.
func (sv *sessionVars) waker() <-chan struct{} {
	if !sv.sought.Load() {
		return nil
	}
	sv.mu.Lock()
	defer sv.mu.Unlock()
	return sv.wake
}

// stepState is how a step of a play went: why it was not sent (see
// unmet), or whether its answer failed (for the steps others wait for).
type stepState struct {
	skipped report.ErrorKind
	failed  bool
}

// newSessionVars makes the live values of a play of s: none yet but the
// values the client makes, made afresh.
func newSessionVars(s *script) *sessionVars {
	sv := &sessionVars{script: s, live: make([]string, len(s.vars)), steps: make([]stepState, len(s.steps))}
	for k := range s.vars {
		if s.vars[k].fresh {
			sv.live[k] = freshUUID(s.vars[k].recorded)
		}
	}
	return sv
}

// substitutions appends to subs the recorded → live pairs step st needs,
// for the values that came.
func (sv *sessionVars) substitutions(subs []substitution, st *step) []substitution {
	return sv.substitutionsAfter(subs, st, nil)
}

// substitutionsAfter is substitutions for a socket's message that waited
// for the answers of the later steps after: only their values, of the
// later steps', may be read (the others are still being written).
func (sv *sessionVars) substitutionsAfter(subs []substitution, st *step, after []int) []substitution {
	for _, k := range st.uses {
		if from := sv.script.vars[k].from; from > st.index && !slices.Contains(after, from) {
			continue
		}
		// A value by its context (cards/2) goes in even when the live
		// one is the recorded one: it keeps its place from a shorter
		// value's substitution (the board's 2 → 5).
		if v := sv.value(k); v != "" && (v != sv.script.vars[k].recorded || sv.script.vars[k].prefix != "") {
			if st.jsonBody && needsJSONEscape(v) {
				// A live value with a quote, a backslash or a newline
				// goes into a JSON body as JSON writes it.
				v = traces.EscapeJSONString(v)
			}
			subs = append(subs, substitution{old: sv.script.vars[k].recorded, new: v, idOnly: sv.script.vars[k].short, keys: sv.script.vars[k].keys})
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
			if v.portable {
				sv.seek(k)
			}
			continue
		}
		c.found.Add(1)
		if v.prefix != "" {
			live = v.prefix + url.QueryEscape(live) + v.suffix
		}
		sv.live[k] = live
		if v.portable && sv.sought.Load() {
			sv.found(k)
		}
	}
}

// expect starts seeking the values that may come elsewhere than in their
// own answer (variable.portable) among ks, before that answer comes: the
// step that gives them is about to be sent, or a socket that sends them
// opened. A socket's frame or a parallel request's answer may carry such
// a value before its own answer is in, and lack it after (a Socket.IO
// event flushed on the upgrade rather than in the poll it came in when
// recorded). Its own answer, should it have the value, still gives it.
func (sv *sessionVars) expect(ks []int) {
	for _, k := range ks {
		if sv.script.vars[k].portable {
			sv.seek(k)
		}
	}
}

// found ends the search for value k: its own answer gave it.
func (sv *sessionVars) found(k int) {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	if got, ok := sv.pending[k]; ok {
		if got == "" {
			sv.seeking.Add(-1)
		}
		delete(sv.pending, k)
	}
}

// awaiting reports whether value k is sought and has not been found: its
// own answer has not given it (yet), and nothing else has.
func (sv *sessionVars) awaiting(k int) bool {
	if !sv.sought.Load() {
		return false
	}
	sv.mu.Lock()
	defer sv.mu.Unlock()
	got, ok := sv.pending[k]
	return ok && got == ""
}

// seek marks a value its answer lacked, or may lack (expect): the
// session's later answers and socket frames are searched for it at the
// same place (an event that came in another poll, or on the socket, than
// when recorded).
func (sv *sessionVars) seek(k int) {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	if sv.pending == nil {
		sv.pending = map[int]string{}
		sv.wake = make(chan struct{}, 1)
		sv.sought.Store(true)
	}
	if _, ok := sv.pending[k]; !ok {
		sv.pending[k] = ""
		sv.seeking.Add(1)
	}
}

// lookElsewhere searches an answer or a frame for the values sought.
func (sv *sessionVars) lookElsewhere(body []byte, header func(string) []byte) {
	if sv.seeking.Load() == 0 {
		return
	}
	sv.mu.Lock()
	defer sv.mu.Unlock()
	for k, got := range sv.pending {
		if got != "" {
			continue
		}
		v := &sv.script.vars[k]
		if header == nil && v.place.header != "" {
			continue
		}
		if live, ok := v.place.extract(body, header); ok {
			if v.prefix != "" {
				live = v.prefix + url.QueryEscape(live) + v.suffix
			}
			sv.pending[k] = live
			sv.seeking.Add(-1)
			select {
			case sv.wake <- struct{}{}:
			default:
			}
		}
	}
}

// value returns the live value of variable k: from its answer, or found
// elsewhere; "" if neither.
func (sv *sessionVars) value(k int) string {
	if v := sv.live[k]; v != "" || !sv.sought.Load() {
		return v
	}
	sv.mu.Lock()
	defer sv.mu.Unlock()
	return sv.pending[k]
}

// takeFrame reads the values a live server message of st's socket gives,
// msg being the index of the latest client message sent (-1 before any):
// each variable of the reply it came in takes the first frame that has
// it.
func (sv *sessionVars) takeFrame(e *Engine, st *step, msg int, payload []byte) {
	for _, k := range st.ws.sets {
		v := &sv.script.vars[k]
		if v.frame > msg || sv.live[k] != "" {
			continue
		}
		if live, ok := v.place.extract(payload, nil); ok {
			e.corr[v.rule].found.Add(1)
			sv.live[k] = v.prefix + live + v.suffix
		}
	}
}

// unmet returns why step st cannot be sent: the first server-made value
// it needs that did not come because its answer failed or was itself
// skipped, as "skipped: depends on RULE"; "" when none. A value missing
// from an answer that succeeded goes out as recorded (and is counted
// missing): the rule may have taken a coincidence. Values the client
// makes and those of a socket's replies are not its to wait for.
func (sv *sessionVars) unmet(st *step) report.ErrorKind { return sv.unmetOf(st, len(sv.steps)) }

// unmetBefore is unmet for the values of the steps before st only: those
// it waited for, whose live values may be read (a socket's later requests
// still run, and its messages wait for their values on their own).
func (sv *sessionVars) unmetBefore(st *step) report.ErrorKind { return sv.unmetOf(st, st.index) }

// unmetOf is unmet for the values of the steps before step upTo.
func (sv *sessionVars) unmetOf(st *step, upTo int) report.ErrorKind {
	for _, k := range st.needs {
		v := &sv.script.vars[k]
		if v.fresh || v.ws || v.from < 0 || v.from >= upTo || sv.value(k) != "" {
			continue
		}
		why := sv.steps[v.from].skipped
		if why == "" && sv.steps[v.from].failed {
			why = v.skipWhy
		}
		if why != "" {
			// The first value that did not come is named, not the chain.
			sv.steps[st.index].skipped = why
			return why
		}
	}
	return ""
}

// missing reports whether a message's values from the socket's replies
// have not all come.
func (sv *sessionVars) missing(needs []int) bool {
	for _, k := range needs {
		if sv.live[k] == "" {
			return true
		}
	}
	return false
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
	Why     string         // why it was taken: "long token" or "id-like name"
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
				r = &Rule{Source: v.rule, Why: v.why(), Targets: map[string]int{}}
				byRule[v.rule] = r
			}
			r.Count++
			for j := range sc.steps {
				if slices.Contains(sc.steps[j].uses, k) {
					r.Targets[sc.steps[j].endpoint+" "+sinkOf(&sc.steps[j], &v)]++
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

// sinkOf says where a request sends a variable's value: a path segment,
// a query parameter, a header, a form field, a JSON path (into JSON held
// in strings), a WebSocket message.
func sinkOf(st *step, v *variable) string {
	rec := v.recorded
	if v.prefix != "" {
		rec = strings.TrimSuffix(strings.TrimPrefix(rec, v.prefix), v.suffix)
		if v.place.field != "" {
			return "form " + v.place.field
		}
	}
	uri := string(st.uri)
	path, query, _ := strings.Cut(uri, "?")
	for n, seg := range strings.Split(strings.TrimPrefix(path, "/"), "/") {
		if seg == rec || strings.TrimSuffix(seg, "."+afterDot(seg)) == rec {
			return fmt.Sprintf("path segment %d", n+1)
		}
	}
	if v.uri() && strings.HasPrefix(uri, rec) {
		return "path and query"
	}
	if vals, err := url.ParseQuery(query); err == nil {
		for _, name := range slices.Sorted(maps.Keys(vals)) {
			if slices.Contains(vals[name], rec) || slices.Contains(vals[name], unescaped(rec)) {
				return "query " + name
			}
		}
	}
	for _, h := range st.headers {
		if !v.short && sends(string(h[1]), rec) {
			return "header " + string(h[0])
		}
	}
	if where := bodySink(st.body, rec); where != "" {
		return where
	}
	if st.ws != nil {
		for i, f := range st.ws.frames {
			if where := bodySink(f.payload, rec); where != "" {
				return fmt.Sprintf("message %d %s", i+1, where)
			}
		}
	}
	if strings.Contains(uri, rec) {
		return "target"
	}
	return "body"
}

// uri reports a variable that is a URL's path and query.
func (v *variable) uri() bool { return v.place.uri || strings.HasPrefix(v.recorded, "/") }

func afterDot(s string) string {
	if i := strings.LastIndexByte(s, '.'); i >= 0 {
		return s[i+1:]
	}
	return ""
}

func unescaped(s string) string {
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return s
}

// bodySink says where a body sends rec: a JSON path or a form field; ""
// when it does not.
func bodySink(body []byte, rec string) string {
	b := bytes.TrimSpace(body)
	if doc, ok := decodeJSON(jsonPart(b)); ok {
		where := ""
		walk(doc, nil, func(path []any, v string) {
			if where == "" && (v == rec || sends(v, rec)) {
				where = "json " + place{path: path}.String()
			}
		})
		if where != "" {
			return where
		}
	}
	if len(b) > 0 && b[0] != '{' && b[0] != '[' {
		if vals, err := url.ParseQuery(string(b)); err == nil {
			for _, name := range slices.Sorted(maps.Keys(vals)) {
				for _, x := range vals[name] {
					if x == rec || x == unescaped(rec) || sends(x, rec) {
						return "form " + name
					}
				}
			}
		}
	}
	if bytes.Contains(b, []byte(rec)) {
		return "body"
	}
	return ""
}

// affine adds, for each id in a request's path whose value several sources
// gave, a variable that takes it from the source of the same context: the
// path segment before it (the 3 of /api/boards/3/cards from the board's
// /boards/3-plan, not from a card's /cards/3 that came later), replaced
// with its context around it, never the same value elsewhere. It returns
// vars and uses with them added.
func affine(s *traces.Session, vars []variable, uses [][]int) ([]variable, [][]int) {
	for i := range s.Exchanges {
		uri := traces.RequestURI(s.Exchanges[i].URL)
		path, _, hasQuery := strings.Cut(uri, "?")
		segs := strings.Split(path, "/")
		for n := 2; n < len(segs); n++ {
			seg, before := segs[n], segs[n-1]
			if !isDigits(seg) || before == "" || isDigits(before) {
				continue
			}
			// The variable the request takes this value from today.
			cur := -1
			for _, k := range uses[i] {
				if vars[k].recorded == seg {
					cur = k
				}
			}
			if cur < 0 || vars[cur].context == before {
				continue
			}
			best := -1
			for k := range vars {
				if v := &vars[k]; v.from < i && v.recorded == seg && v.context == before && v.prefix == "" && (best < 0 || v.from >= vars[best].from) {
					best = k
				}
			}
			if best < 0 || vars[best].from == vars[cur].from && vars[cur].context == "" {
				continue // the same answer gave it under a name (a JSON id and its URL): no doubt
			}
			after := " " // the request line's end
			switch {
			case n+1 < len(segs):
				after = "/"
			case hasQuery:
				after = "?"
			}
			v := vars[best]
			v.prefix, v.suffix = "/"+before+"/", after
			v.recorded = v.prefix + seg + after
			v.rule += " (by context " + before + ")"
			uses[i] = append(uses[i], len(vars))
			vars = append(vars, v)
		}
	}
	return vars, uses
}
