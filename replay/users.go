package replay

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/thrive-loadtest/thrive/internal/files"
	"github.com/thrive-loadtest/thrive/traces"
)

// Users are the credentials and other per-user values of a users file: a
// CSV file whose header names its columns. Virtual user k takes row
// k mod rows. A column fills the trace's redaction placeholders of its
// name ({{password:1a2b3c}}) and the request fields of its name (a JSON
// key or form field "username"). A cell may hold templates:
// {{user.index}} (the user's number) and {{random.uuid}} (one per user).
type Users struct {
	cols []string
	rows [][]string
}

// LoadUsersFile reads the users file at path, its path named in an error.
func LoadUsersFile(path string) (*Users, error) {
	return files.Parse(path, LoadUsers)
}

// LoadUsers reads a users file.
func LoadUsers(r io.Reader) (*Users, error) {
	cr := csv.NewReader(r)
	cr.TrimLeadingSpace = true
	head, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, errors.New("users file: empty; want a header row naming the columns, then a row per user")
	}
	if err != nil {
		return nil, fmt.Errorf("users file: %w", err)
	}
	u := &Users{}
	for i, c := range head {
		c = strings.TrimSpace(c)
		if c == "" || slices.Contains(u.cols, c) {
			return nil, fmt.Errorf("users file: column %d of the header is empty or repeated", i+1)
		}
		u.cols = append(u.cols, c)
	}
	for {
		row, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("users file: %w", err)
		}
		u.rows = append(u.rows, row)
	}
	if len(u.rows) == 0 {
		return nil, errors.New("users file: no user rows after the header")
	}
	return u, nil
}

// Len returns how many rows the file has.
func (u *Users) Len() int { return len(u.rows) }

var templateRE = regexp.MustCompile(`\{\{\s*(user\.index|random\.uuid)\s*\}\}`)

// values returns user k's value of each column, templates expanded.
func (u *Users) values(k int, seed uint64) []string {
	row := u.rows[k%len(u.rows)]
	rng := rand.New(rand.NewPCG(seed, uint64(k)))
	var uuid string
	out := make([]string, len(u.cols))
	for i, cell := range row {
		out[i] = templateRE.ReplaceAllStringFunc(cell, func(t string) string {
			if strings.Contains(t, "user.index") {
				return strconv.Itoa(k)
			}
			if uuid == "" {
				var b [16]byte
				for j := range b {
					b[j] = byte(rng.Uint32())
				}
				b[6] = b[6]&0x0f | 0x40
				b[8] = b[8]&0x3f | 0x80
				uuid = fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
			}
			return uuid
		})
	}
	return out
}

// fill is a recorded text a users file column replaces in a request.
type fill struct {
	recorded string
	column   int
	// escaped marks a form field's value as it stands URL-encoded in a
	// body or query (user0%40example.test): the user's value goes in
	// encoded too; json, in a JSON string, escaped as JSON.
	escaped, json bool
	// prefix and suffix, when recorded is a field with its name
	// (username=user0, "username": "user0"), are what stays around the
	// value: the field is filled where it stands, never another text
	// that happens to hold the recorded value (a login_hint=user0).
	prefix, suffix string
}

// with returns the text that replaces f.recorded for value, escaped for
// where it goes.
func (f *fill) with(value string) string {
	switch {
	case f.escaped:
		value = url.QueryEscape(value)
	case f.json:
		value = traces.EscapeJSONString(value)
	}
	if f.prefix == "" && f.suffix == "" {
		return value
	}
	return f.prefix + value + f.suffix
}

var placeholderRE = regexp.MustCompile(`\{\{([A-Za-z0-9_.\[\]-]+)(:[0-9a-f]+)?\}\}`)

// column returns the column that fills a placeholder or field of name:
// the column of that name, or of its innermost part, its case aside (a
// Rails or PHP form's user[password], an ASP.NET model's Input.Password,
// both filled by a password column); -1 if none.
func (u *Users) column(name string) int {
	if c := slices.Index(u.cols, name); c >= 0 {
		return c
	}
	inner := ""
	if i := strings.LastIndexByte(name, '['); i >= 0 && strings.HasSuffix(name, "]") {
		inner = name[i+1 : len(name)-1]
	} else if i := strings.LastIndexByte(name, '.'); i >= 0 && i+1 < len(name) {
		inner = name[i+1:]
	}
	if inner == "" {
		return -1
	}
	return slices.IndexFunc(u.cols, func(c string) bool { return strings.EqualFold(c, inner) })
}

// fills finds what the columns replace in a recorded request: redaction
// placeholders named after a column anywhere, and the values of JSON keys
// and form fields named after a column in the body and the query.
func (u *Users) fills(st *step, typed map[string]int) []fill {
	var out []fill
	add := func(f fill) {
		if f.recorded != "" && !slices.ContainsFunc(out, func(o fill) bool { return o.recorded == f.recorded }) {
			out = append(out, f)
		}
	}
	text := string(st.uri) + "\n" + string(st.body)
	for _, h := range st.headers {
		text += "\n" + string(h[1])
	}
	for _, m := range placeholderRE.FindAllStringSubmatch(text, -1) {
		if c := u.column(m[1]); c >= 0 {
			add(fill{recorded: m[0], column: c})
		}
	}
	// Fields named after a column are filled where they stand: the
	// recorded text is the field with its name, in the query, a form body
	// or a JSON body.
	fields, form := map[string]string{}, map[string]string{}
	if q := bytes.IndexByte(st.uri, '?'); q >= 0 {
		formFields(string(st.uri[q+1:]), form)
	}
	body := bytes.TrimSpace(st.body)
	switch {
	case len(body) > 0 && body[0] == '{':
		var doc any
		if json.Unmarshal(body, &doc) == nil {
			jsonFields(doc, fields)
		}
	case len(body) > 0:
		formFields(string(body), form)
	}
	for name, v := range fields {
		if c := u.column(name); c >= 0 {
			if typed != nil && len(v) >= minValue {
				typed[v] = c
			}
			re := regexp.MustCompile(`"` + regexp.QuoteMeta(name) + `"\s*:\s*"` + regexp.QuoteMeta(traces.EscapeJSONString(v)) + `"`)
			if m := re.Find(st.body); m != nil {
				add(fill{recorded: string(m), column: c, json: true, prefix: string(m[:len(m)-len(traces.EscapeJSONString(v))-1]), suffix: `"`})
			} else {
				add(fill{recorded: v, column: c})
			}
		}
	}
	for name, v := range form {
		if c := u.column(name); c >= 0 {
			if typed != nil && len(v) >= minValue {
				typed[v] = c
			}
			key := url.QueryEscape(name) + "="
			if f := (fill{recorded: key + url.QueryEscape(v), column: c, escaped: true, prefix: key}); strings.Contains(text, f.recorded) {
				add(f)
			} else if f := (fill{recorded: key + v, column: c, prefix: key}); strings.Contains(text, f.recorded) {
				add(f)
			} else {
				add(fill{recorded: v, column: c})
			}
		}
	}
	slices.SortFunc(out, func(a, b fill) int { return len(b.recorded) - len(a.recorded) }) // longest first
	return out
}

// sessionFills returns the fills of each step of sc: the fields each
// names, and every other place a later (or earlier) request of the
// session sends a value one of them was recorded with, as a whole token,
// as it stands or URL-encoded: a name the user typed for a file goes
// wherever the file's name went (its URL, the listing's look-up). Values
// shorter than correlation's length rule are filled in their fields only.
func (u *Users) sessionFills(sc *script) [][]fill {
	out := make([][]fill, len(sc.steps))
	typed := map[string]int{}
	for j := range sc.steps {
		out[j] = u.fills(&sc.steps[j], typed)
	}
	if len(typed) == 0 {
		return out
	}
	values := slices.Sorted(maps.Keys(typed))
	for j := range sc.steps {
		st := &sc.steps[j]
		text := string(st.uri) + "\n" + string(st.body)
		for _, h := range st.headers {
			text += "\n" + string(h[1])
		}
		for _, v := range values {
			for _, f := range []fill{{recorded: v, column: typed[v]}, {recorded: url.QueryEscape(v), column: typed[v], escaped: true}} {
				if f.escaped && f.recorded == v || !sends(text, f.recorded) ||
					slices.ContainsFunc(out[j], func(o fill) bool { return o.recorded == f.recorded }) {
					continue
				}
				out[j] = append(out[j], f)
			}
		}
		slices.SortFunc(out[j], func(a, b fill) int { return len(b.recorded) - len(a.recorded) })
	}
	return out
}

func jsonFields(doc any, into map[string]string) {
	switch d := doc.(type) {
	case map[string]any:
		for k, v := range d {
			if s, ok := v.(string); ok {
				into[k] = s
			}
			jsonFields(v, into)
		}
	case []any:
		for _, v := range d {
			jsonFields(v, into)
		}
	}
}

func formFields(q string, into map[string]string) {
	vals, err := url.ParseQuery(q)
	if err != nil {
		return
	}
	for k, v := range vals {
		if len(v) > 0 {
			into[k] = v[0]
		}
	}
}
