package capture

import (
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/thrive-loadtest/thrive/capture/wire"
	"github.com/thrive-loadtest/thrive/traces"
)

// The evidence that ties a request to a visitor, strongest first (see
// sessionizer): a value the client keeps sending that the server gave one
// visit (a cookie of any name, a token), the client connection, a value only
// one visit's answers gave (a ticket, the URL a redirect sent it to, the
// page that referred it), and only then time. These helpers read the values
// out of requests and answers; the sessionizer weighs them.

// cookieKey is the session key a cookie value names: "cookie:NAME=VALUE",
// with the quotes of a quoted value taken off, as browsers keep and send
// them either way.
func cookieKey(name, value string) string { return "cookie:" + name + "=" + unquote(value) }

// unquote strips the double quotes around a cookie value (RFC 6265
// allows them; Tornado and Python's http.cookies send values so).
func unquote(v string) string {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		return v[1 : len(v)-1]
	}
	return v
}

// requestCookies returns the cookie keys a request sends with plausible
// values (long enough to be a visitor's own), in order.
func requestCookies(h []traces.Header) []string {
	var out []string
	for _, f := range h {
		if !strings.EqualFold(f.Name, "Cookie") {
			continue
		}
		for p := range strings.SplitSeq(f.Value, ";") {
			name, value, ok := strings.Cut(strings.TrimSpace(p), "=")
			value = unquote(strings.TrimSpace(value))
			if ok && plausible([]byte(value)) && !infrastructureCookie(name) {
				out = append(out, cookieKey(strings.TrimSpace(name), value))
			}
		}
	}
	return out
}

// givenCookies returns the cookie keys an answer's Set-Cookie fields give,
// with plausible values and not a CDN's, in order: values the client will
// send back, and so the visit's identity for as long as no other visit is
// given the same value.
func givenCookies(h []traces.Header) []string {
	var out []string
	for _, f := range h {
		if !strings.EqualFold(f.Name, "Set-Cookie") {
			continue
		}
		c, err := http.ParseSetCookie(f.Value)
		if err != nil || infrastructureCookie(c.Name) || c.MaxAge < 0 || !c.Expires.IsZero() && c.Expires.Before(time.Now()) {
			continue
		}
		if v := unquote(c.Value); plausible([]byte(v)) {
			out = append(out, cookieKey(c.Name, v))
		}
	}
	return out
}

// place is where a URL leads, without its scheme: "host/path?query", so
// that a redirect's Location, a request's own target and a Referer compare
// alike; kind says which (redirectTo, referredBy). An origin-form target
// takes host.
func place(kind, host, target string) string {
	if i := strings.Index(target, "://"); i >= 0 {
		return kind + target[i+3:]
	}
	if strings.HasPrefix(target, "//") {
		return kind + target[2:]
	}
	if !strings.HasPrefix(target, "/") {
		return ""
	}
	return kind + host + target
}

// The kinds of place: a redirect's target, which the request that follows
// it asks for; and a page, which its sub-resources name as their Referer.
const (
	redirectTo = "loc:"
	referredBy = "ref:"
)

// redirectSettle is how soon after a redirect's answer the request that
// follows it comes: a browser follows at once, so a request for a common
// place (/, /login) much later is another client's.
const redirectSettle = 5 * time.Second

// answerPlaces returns the places an answer sends its client to (a
// redirect's Location) or that will refer its sub-resources (a page), as
// values only this visit's requests should send back.
func answerPlaces(r *record) []string {
	var out []string
	if r.status >= 300 && r.status < 400 {
		if loc := wire.FieldValue(r.respHeader, "Location"); loc != "" {
			if p := place(redirectTo, r.host, loc); p != "" {
				out = append(out, p)
			}
		}
	}
	if document(r) {
		if p := place(referredBy, r.host, r.url); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// requestPlaces returns the places a request shows it came from: its own
// target (where a redirect sent it) and its Referer (the page that loaded
// it).
func requestPlaces(r *record) []string {
	var out []string
	if p := place(redirectTo, r.host, r.url); p != "" {
		out = append(out, p)
	}
	if ref := wire.FieldValue(r.reqHeader, "Referer"); ref != "" {
		if p := place(referredBy, r.host, ref); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// document reports a page a browser navigated to: one that can refer
// sub-resources.
func document(r *record) bool {
	if d := wire.FieldValue(r.reqHeader, "Sec-Fetch-Dest"); d != "" {
		return d == "document" || d == "iframe"
	}
	return r.method == "GET" && strings.HasPrefix(strings.ToLower(wire.FieldValue(r.respHeader, "Content-Type")), "text/html")
}

// subresource reports a request a page makes for itself rather than for
// its user: an icon, an image, a font, a style sheet or script, robots.txt.
// A visit made of these only is not a visit (see sessionizer.strays).
func subresource(r *record) bool {
	if r.method != "GET" && r.method != "HEAD" {
		return false
	}
	switch wire.FieldValue(r.reqHeader, "Sec-Fetch-Dest") {
	case "image", "font", "style", "script", "manifest", "audio", "video", "track":
		return true
	case "document", "iframe", "empty", "websocket":
		return false
	}
	p, _, _ := strings.Cut(r.url, "?")
	if i := strings.Index(p, "://"); i >= 0 {
		if j := strings.IndexByte(p[i+3:], '/'); j >= 0 {
			p = p[i+3+j:]
		}
	}
	switch strings.ToLower(path.Base(p)) {
	case "favicon.ico", "robots.txt", "manifest.json", "site.webmanifest", "browserconfig.xml":
		return true
	}
	switch strings.ToLower(path.Ext(p)) {
	case ".ico", ".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp", ".avif", ".css", ".js", ".mjs", ".map",
		".woff", ".woff2", ".ttf", ".otf", ".eot":
		return true
	}
	return false
}
