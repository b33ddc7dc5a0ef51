package replay

import (
	"bytes"
	"html"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/thrive-loadtest/thrive/traces"
)

// A page may hold several forms, each with values of its own: a Rails page
// with an edit and a delete form per row, each with its own authenticity
// token (per-form CSRF tokens) and its own _method; an admin change page
// whose inline rows carry the ids of their objects in hidden inputs; a
// list whose rows are checkboxes valued with ids. A value of a form is
// found again in a live page by the form it is in, not by its name alone:
// the form's method (its _method when it has one) and the shape of its
// action (ids made wildcards), which occurrence of that shape it is, and
// which occurrence of the field's name in it.

var (
	formOpenRE  = regexp.MustCompile(`(?is)<form\b([^>]*)>`)
	formCloseRE = regexp.MustCompile(`(?i)</form\s*>`)
	fieldRE     = regexp.MustCompile(`(?is)<(?:input|button)\b([^>]*)>`)
	attrRE      = regexp.MustCompile(`(?s)([A-Za-z_:][-A-Za-z0-9_:.]*)\s*=\s*(?:"([^"]*)"|'([^']*)')`)
)

// maxForms bounds the forms of one page that are looked at.
const maxForms = 500

// attrs returns the attributes of a tag's inside, names lower-cased and
// values unescaped.
func attrs(tag string) map[string]string {
	out := map[string]string{}
	for _, m := range attrRE.FindAllStringSubmatch(tag, -1) {
		v := m[2]
		if v == "" {
			v = m[3]
		}
		name := strings.ToLower(m[1])
		if _, ok := out[name]; !ok {
			out[name] = html.UnescapeString(v)
		}
	}
	return out
}

// form is one form of a page: its key (method and action shape) and its
// fields in order.
type form struct {
	key    string
	action string // the action's path and query, "" for the page's own
	fields []field
}

// field is a named input or button of a form; checkable marks a checkbox
// or radio button.
type field struct {
	name, value string
	checkable   bool
	// given marks a field whose value the page gives and the user does not
	// type: hidden inputs, checkboxes, radio buttons, buttons.
	given bool
}

// forms returns the forms of an HTML page, each with its key.
func forms(body []byte) []form {
	var out []form
	rest := body
	for len(out) < maxForms {
		loc := formOpenRE.FindSubmatchIndex(rest)
		if loc == nil {
			break
		}
		open := attrs(string(rest[loc[2]:loc[3]]))
		inner := rest[loc[1]:]
		end := formCloseRE.FindIndex(inner)
		if end != nil {
			inner = inner[:end[0]]
		}
		f := form{}
		method := strings.ToLower(open["method"])
		if method == "" {
			method = "get"
		}
		for _, m := range fieldRE.FindAllSubmatch(inner, -1) {
			a := attrs(string(m[1]))
			name, ok := a["name"]
			if !ok || name == "" {
				continue
			}
			if name == "_method" && a["value"] != "" {
				method = strings.ToLower(a["value"])
			}
			typ := strings.ToLower(a["type"])
			if strings.HasPrefix(strings.ToLower(string(m[0])), "<button") && typ == "" {
				typ = "submit"
			}
			check := typ == "checkbox" || typ == "radio"
			f.fields = append(f.fields, field{name, a["value"], check, check || typ == "hidden" || typ == "submit" || typ == "button"})
		}
		f.key = method + " " + actionShape(open["action"])
		f.action = actionPath(open["action"])
		out = append(out, f)
		adv := loc[1]
		if end != nil {
			adv += end[1]
		}
		rest = rest[adv:]
	}
	return out
}

// actionPath is a form action's path and query, its scheme and host left
// out.
func actionPath(action string) string {
	if i := strings.Index(action, "://"); i >= 0 {
		rest := action[i+3:]
		if j := strings.IndexAny(rest, "/?#"); j >= 0 {
			action = rest[j:]
		} else {
			action = "/"
		}
	}
	action, _, _ = strings.Cut(action, "#")
	return action
}

// actionShape is a form action's path with its ids made wildcards, its
// host and query left out: the same form of another user's page has the
// same shape.
func actionShape(action string) string {
	action, _, _ = strings.Cut(actionPath(action), "?")
	segs := strings.Split(action, "/")
	for i, s := range segs {
		if idSegment(s) { // a slug with its id first too (Rails' to_param)
			segs[i] = "{id}"
		}
	}
	return strings.Join(segs, "/")
}

// formField reports the fields worth correlating when short: ids by
// their name's last part (task_set-0-id, user[role_id]), and checkboxes
// or radio buttons valued with a number (a bulk action's rows).
func formField(name, value string, checkable bool) bool {
	last := name
	if i := strings.LastIndexAny(strings.TrimRight(name, "]"), "-[."); i >= 0 {
		last = strings.Trim(name[i+1:], "[]")
	}
	return idName(last) || last == "pk" || checkable && isDigits(value)
}

// formValues returns the values of a page's forms, each placed by its
// form (see forms).
func formValues(body []byte) []candidate {
	var out []candidate
	nth := map[string]int{}
	for _, f := range forms(body) {
		k := nth[f.key]
		nth[f.key] = k + 1
		seen := map[string]int{}
		for _, fv := range f.fields {
			name, value := fv.name, fv.value
			j := seen[name]
			seen[name] = j + 1
			if value == "" {
				continue
			}
			short := shortValue(value)
			if short && !formField(name, value, fv.checkable) {
				continue
			}
			method, action, _ := strings.Cut(f.key, " ")
			if action == "" {
				action = "(its page)"
			}
			out = append(out, candidate{value: value, short: short, place: place{form: f.key, nth: k, field: name, fieldNth: j,
				label: "form " + strings.ToUpper(method) + " " + action + " #" + strconv.Itoa(k+1) + " " + name}})
		}
	}
	return out
}

// formValue finds the value of p (a form field's place) in a live page.
func (p place) formValue(body []byte) (string, bool) {
	k := 0
	for _, f := range forms(body) {
		if f.key != p.form {
			continue
		}
		if k < p.nth {
			k++
			continue
		}
		if p.field == "" {
			return f.action, f.action != ""
		}
		j := 0
		for _, fv := range f.fields {
			if fv.name != p.field {
				continue
			}
			if j == p.fieldNth {
				return fv.value, fv.value != ""
			}
			j++
		}
		return "", false
	}
	// No such form in the live page (its markup changed): the field by
	// its name anywhere, as a page with one form has it.
	for _, m := range fieldRE.FindAllSubmatch(body, -1) {
		if a := attrs(string(m[1])); a["name"] == p.field && a["value"] != "" {
			return a["value"], true
		}
	}
	return "", false
}

// submissions adds to vars the values each request of s sends as the
// submission of a form of an earlier page, as a browser sends them: the
// form is the latest page's form of the request's method (or _method) and
// action; its action is the request's path (ids and all, however many
// collide: a board and a card both 1), and each field the page gave (a
// hidden input, a checkbox, a button) that the body sends as it was is a
// field of its own, "name=value", never the same value elsewhere. It
// returns vars and uses with them added.
func submissions(s *traces.Session, rules *CorrelationRules, vars []variable, uses [][]int) ([]variable, [][]int) {
	parsed := map[int][]form{}
	for i := range s.Exchanges {
		ex := &s.Exchanges[i]
		body := string(ex.ReqBody.Data)
		if ex.Method == "GET" || len(body) == 0 || strings.HasPrefix(strings.TrimSpace(body), "{") || !strings.Contains(body, "=") {
			continue
		}
		vals, err := url.ParseQuery(body)
		if err != nil {
			continue
		}
		method := strings.ToLower(ex.Method)
		if m := vals.Get("_method"); m != "" {
			method = strings.ToLower(m)
		}
		path := traces.RequestURI(ex.URL)
		key := method + " " + actionShape(path)
		for j, pages := i-1, 0; j >= 0 && pages < maxPagesBack; j-- {
			page := s.Exchanges[j].RespBody.Data
			if !bytes.Contains(page, []byte("<form")) && !bytes.Contains(page, []byte("<FORM")) {
				continue
			}
			pages++
			if parsed[j] == nil {
				parsed[j] = forms(page) // each page parsed once, however many submissions look at it
			}
			own := traces.RequestURI(s.Exchanges[j].URL)
			nth, found := 0, -1
			var f form
			for _, g := range parsed[j] {
				if g.key != key && (g.action != "" || method+" "+actionShape(own) != key) {
					continue
				}
				if action := cmpOr(g.action, own); action == path && found < 0 {
					found, f = nth, g
				}
				nth++
			}
			if found < 0 {
				continue
			}
			rule := traces.Endpoint(&s.Exchanges[j]) + " form " + strings.ToUpper(method) + " " + actionShape(path) + " #" + strconv.Itoa(found+1)
			add := func(v variable) {
				if v.from, v.rule = j, rule+v.rule; rules.disabled(v.rule) {
					return
				}
				uses[i] = append(uses[i], len(vars))
				vars = append(vars, v)
			}
			if f.action != "" && path != actionShape(path) {
				add(variable{recorded: path, place: place{form: f.key, nth: found, label: "action"}, rule: " action"})
			}
			seen := map[string]int{}
			for _, fv := range f.fields {
				k := seen[fv.name]
				seen[fv.name] = k + 1
				if !fv.given || fv.value == "" {
					continue
				}
				prefix := url.QueryEscape(fv.name) + "="
				old := prefix + url.QueryEscape(fv.value)
				if !formSends(body, old) {
					continue
				}
				add(variable{recorded: old, prefix: prefix, place: place{form: f.key, nth: found, field: fv.name, fieldNth: k}, rule: " " + fv.name})
			}
			break
		}
	}
	return vars, uses
}

// maxPagesBack bounds how many earlier pages with forms a submission is
// looked for in: a form is submitted from one of the last pages a visitor
// saw, and a long session must not cost its length squared.
const maxPagesBack = 16

// formSends reports whether a form body sends the field text name=value
// whole (at the start or after an &, up to an & or the end).
func formSends(body, text string) bool {
	for i := 0; ; {
		j := strings.Index(body[i:], text)
		if j < 0 {
			return false
		}
		at := i + j
		end := at + len(text)
		if (at == 0 || body[at-1] == '&') && (end == len(body) || body[end] == '&') {
			return true
		}
		i = at + 1
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
