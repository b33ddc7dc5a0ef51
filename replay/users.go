package replay

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/thrive-loadtest/thrive/internal/files"
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

// escaped returns vals URL-encoded as a form's values are.
func escaped(vals []string) []string {
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i] = url.QueryEscape(v)
	}
	return out
}

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
	// encoded too.
	escaped bool
}

var placeholderRE = regexp.MustCompile(`\{\{([A-Za-z0-9_.\[\]-]+)(:[0-9a-f]+)?\}\}`)

// column returns the column that fills a placeholder or field of name:
// the column of that name, or of its innermost bracketed part (a Rails or
// PHP form's user[password] is filled by a password column); -1 if none.
func (u *Users) column(name string) int {
	if c := slices.Index(u.cols, name); c >= 0 {
		return c
	}
	if i := strings.LastIndexByte(name, '['); i >= 0 && strings.HasSuffix(name, "]") {
		return slices.Index(u.cols, name[i+1:len(name)-1])
	}
	return -1
}

// fills finds what the columns replace in a recorded request: redaction
// placeholders named after a column anywhere, and the values of JSON keys
// and form fields named after a column in the body and the query.
func (u *Users) fills(st *step) []fill {
	var out []fill
	add := func(recorded string, col int, escaped bool) {
		if recorded != "" && !slices.ContainsFunc(out, func(f fill) bool { return f.recorded == recorded }) {
			out = append(out, fill{recorded, col, escaped})
		}
	}
	text := string(st.uri) + "\n" + string(st.body)
	for _, h := range st.headers {
		text += "\n" + string(h[1])
	}
	for _, m := range placeholderRE.FindAllStringSubmatch(text, -1) {
		if c := u.column(m[1]); c >= 0 {
			add(m[0], c, false)
		}
	}
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
			add(v, c, false)
		}
	}
	for name, v := range form {
		if c := u.column(name); c >= 0 {
			if esc := url.QueryEscape(v); esc != v {
				add(esc, c, true)
			}
			add(v, c, false)
		}
	}
	slices.SortFunc(out, func(a, b fill) int { return len(b.recorded) - len(a.recorded) }) // longest first
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
