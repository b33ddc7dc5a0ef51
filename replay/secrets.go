package replay

import (
	"cmp"
	"slices"
	"strings"
)

// A trace recorded with the capture's default redaction holds placeholders
// ({{password:1a2b3c4d}}) where the secrets were. Replay fills a
// placeholder with a live value when an answer gives it (a token a login
// returned: correlation), when the user's jar holds it (a cookie, a CSRF
// echo), or from a users file column of its name. One that none of these
// fills goes out as it is, and the request carrying it usually fails: a
// login with the password {{password:…}}. Such secrets are worth a word
// before the run, not after.

// Secret is a redacted value that replay cannot fill: no answer of its
// session gives it, no cookie holds it and no users file column is named
// after it.
type Secret struct {
	Name      string   // the placeholder's name: the field or header it was in, such as "password"
	Requests  int      // how many requests of the trace carry it
	Endpoints []string // which, sorted
}

// unfilledNames returns the names of the placeholders step st of sc sends
// that nothing fills, given users (nil: no users file).
func unfilledNames(sc *script, st *step, users *Users) []string {
	var text strings.Builder
	text.Write(st.uri)
	text.WriteByte('\n')
	for _, h := range st.headers {
		text.Write(h[1])
		text.WriteByte('\n')
	}
	text.Write(st.body)
	if st.ws != nil {
		for _, f := range st.ws.frames {
			text.WriteByte('\n')
			text.Write(f.payload)
		}
	}
	var out []string
	for _, m := range placeholderRE.FindAllStringSubmatch(text.String(), -1) {
		ph, name := m[0], m[1]
		if m[2] == "" || slices.Contains(out, name) {
			continue // a template of a users file, not a placeholder
		}
		filled := users != nil && users.column(name) >= 0 ||
			slices.ContainsFunc(st.uses, func(k int) bool { return sc.vars[k].recorded == ph }) ||
			slices.ContainsFunc(st.bodyEchoes, func(ec echo) bool { return string(ec.recorded) == ph })
		if !filled {
			out = append(out, name)
		}
	}
	return out
}

// Unfilled lists the redacted values the library's requests send that
// nothing fills with users as the users file (nil if none), most used
// first.
func (lib *Library) Unfilled(users *Users) []Secret {
	byName := map[string]*Secret{}
	for i := range lib.scripts {
		sc := &lib.scripts[i]
		for j := range sc.steps {
			st := &sc.steps[j]
			for _, name := range unfilledNames(sc, st, users) {
				s := byName[name]
				if s == nil {
					s = &Secret{Name: name}
					byName[name] = s
				}
				s.Requests++
				if !slices.Contains(s.Endpoints, st.endpoint) {
					s.Endpoints = append(s.Endpoints, st.endpoint)
				}
			}
		}
	}
	out := make([]Secret, 0, len(byName))
	for _, s := range byName {
		slices.Sort(s.Endpoints)
		out = append(out, *s)
	}
	slices.SortFunc(out, func(a, b Secret) int { return cmp.Or(b.Requests-a.Requests, strings.Compare(a.Name, b.Name)) })
	return out
}

// UnfilledFailures returns how many requests that carried a redacted value
// nothing filled failed so far.
func (e *Engine) UnfilledFailures() int64 { return e.unfilledFailed.Load() }
