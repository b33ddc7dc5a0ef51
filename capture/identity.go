package capture

import (
	"bytes"
	"net/url"
	"strings"

	"github.com/thrive-loadtest/thrive/traces"
)

// What carries a user's identity varies by application: a session cookie of
// any name, a bearer token a login's JSON answer returned, a one-time ticket
// a WebSocket URL carries. The sessionizer learns them from what answers
// give and later requests send back; these helpers find the values.

// Identity values: a value an answer gave joins a later anonymous request
// to that answer's session only when it is at least this long (a ticket, a
// token), so that ids and words cannot join by coincidence.
const (
	minIdentity = 12
	maxIdentity = 2048
	// maxGiven bounds how many values one answer can offer.
	maxGiven = 64
	// maxScanned bounds the bodies scanned for identity values.
	maxScanned = 256 << 10
)

// tokenField reports the JSON keys under which a login's answer returns
// the token that names the session.
func tokenField(k string) bool {
	switch strings.ToLower(k) {
	case "token", "access", "access_token", "accesstoken", "jwt", "id_token", "idtoken", "auth_token", "authtoken",
		"session_token", "sessiontoken", "sessionid", "session_id", "key", "api_token", "apitoken", "bearer":
		return true
	}
	return false
}

// identityChar reports the bytes a token is made of.
func identityChar(c byte) bool {
	return c > ' ' && c < 0x7f && c != '"' && c != '\\' && c != ',' && c != ';'
}

// jsonStrings calls f with each string of a JSON document, and the key it
// is the value of (empty for array elements and keys themselves are not
// passed). It scans without decoding, stops at the first malformed string,
// and never allocates for the document.
func jsonStrings(b []byte, f func(key, value []byte)) {
	var key []byte
	for i := 0; i < len(b); i++ {
		if b[i] != '"' {
			if b[i] == ',' || b[i] == '[' || b[i] == '{' {
				key = nil
			}
			continue
		}
		j := closingQuote(b, i+1)
		if j < 0 {
			return
		}
		s := b[i+1 : j]
		k := j + 1
		for k < len(b) && (b[k] == ' ' || b[k] == '\n' || b[k] == '\r' || b[k] == '\t') {
			k++
		}
		if k < len(b) && b[k] == ':' {
			key = s
		} else {
			f(key, s)
			key = nil
		}
		i = j
	}
}

// closingQuote returns the index of the quote that ends the JSON string
// whose first byte is at from (a quote after an even run of backslashes),
// or -1.
func closingQuote(b []byte, from int) int {
	for j := from; ; j++ {
		q := bytes.IndexByte(b[j:], '"')
		if q < 0 {
			return -1
		}
		j += q
		n := 0
		for p := j - 1; p >= from && b[p] == '\\'; p-- {
			n++
		}
		if n%2 == 0 {
			return j
		}
	}
}

// plausible reports whether v could be a token: long enough, and all of
// token characters.
func plausible(v []byte) bool {
	if len(v) < minIdentity || len(v) > maxIdentity {
		return false
	}
	for _, c := range v {
		if !identityChar(c) {
			return false
		}
	}
	return true
}

// answerIdentities returns the values an answer gives that a later
// request may send back to join its session (tokens, tickets), and the
// token a login's answer names the session with, if any. The values are
// the answer body's own bytes, not copies: most are never asked for, and
// the body lives as long as its record.
func answerIdentities(r *record) (given [][]byte, login string) {
	if r.respBody == nil || !r.respBody.Whole() || len(r.respBody.Data()) > maxScanned {
		return nil, ""
	}
	body := bytes.TrimSpace(r.respBody.Data())
	if len(body) == 0 || body[0] != '{' && body[0] != '[' {
		return nil, ""
	}
	jsonStrings(body, func(key, value []byte) {
		if len(given) >= maxGiven || !plausible(value) {
			return
		}
		given = append(given, value)
		if login == "" && r.method == "POST" && tokenField(string(key)) {
			login = string(value)
		}
	})
	return given, login
}

// requestIdentities returns the values a request sends that an earlier
// answer may have given: its path segments and query values, its header
// values but cookies, and the strings and form values of its body.
func requestIdentities(r *record) []string {
	var out []string
	add := func(v string) {
		if len(out) < maxGiven && plausible([]byte(v)) {
			out = append(out, v)
		}
	}
	path, query, _ := strings.Cut(r.url, "?")
	for seg := range strings.SplitSeq(path, "/") {
		add(seg)
	}
	if vals, err := url.ParseQuery(query); err == nil {
		for _, vs := range vals {
			for _, v := range vs {
				add(v)
			}
		}
	}
	for _, h := range r.reqHeader {
		if strings.EqualFold(h.Name, "Cookie") || strings.EqualFold(h.Name, "User-Agent") {
			continue
		}
		for f := range strings.FieldsSeq(h.Value) {
			add(f)
		}
	}
	if r.reqBody != nil && r.reqBody.Whole() && len(r.reqBody.Data()) <= maxScanned {
		body := bytes.TrimSpace(r.reqBody.Data())
		switch {
		case len(body) == 0:
		case body[0] == '{' || body[0] == '[':
			jsonStrings(body, func(_, v []byte) { add(string(v)) })
		case bytes.IndexByte(body, '=') > 0:
			if vals, err := url.ParseQuery(string(body)); err == nil {
				for _, vs := range vals {
					for _, v := range vs {
						add(v)
					}
				}
			}
		}
	}
	return out
}

// credential returns the token a request presents as its own identity, in
// an Authorization header (Bearer, Token, JWT), a token header, or an
// access_token query parameter; empty if none.
func credential(h []traces.Header, target string) string {
	for _, f := range h {
		switch strings.ToLower(f.Name) {
		case "authorization":
			scheme, cred, ok := strings.Cut(strings.TrimSpace(f.Value), " ")
			if ok && !strings.EqualFold(scheme, "Basic") {
				return strings.TrimSpace(cred)
			}
		case "x-auth-token", "x-access-token", "x-session-token":
			return strings.TrimSpace(f.Value)
		}
	}
	if _, query, ok := strings.Cut(target, "?"); ok && strings.Contains(query, "token=") {
		if vals, err := url.ParseQuery(query); err == nil {
			if v := vals.Get("access_token"); v != "" {
				return v
			}
		}
	}
	return ""
}

// csrfName reports cookie names that hold a CSRF token, not a session.
func csrfName(name string) bool {
	n := strings.ToLower(name)
	return strings.Contains(n, "csrf") || strings.Contains(n, "xsrf")
}

// infrastructureCookie reports cookies a CDN or load balancer sets, which
// name a browser or a route, not a user's session.
func infrastructureCookie(name string) bool {
	n := strings.ToLower(name)
	return strings.HasPrefix(n, "__cf") || strings.HasPrefix(n, "_cf") || strings.HasPrefix(n, "awsalb") ||
		strings.HasPrefix(n, "ak_bmsc") || strings.HasPrefix(n, "bm_")
}
