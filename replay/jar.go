package replay

import (
	"bytes"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// jar is one virtual user's cookies, as the live target set them: the
// recorded Cookie headers are not replayed, since they name the recording's
// session. Cookies are kept by name, path and site (the engine's target
// that set them: a trace of one host has one), and go to that site, or
// with a Domain attribute to every site whose recorded host name is in the
// domain (an app's cookie for .example.com reaching its API); requests a
// user sends at once (recorded pacing) share the jar, hence the lock. An
// empty jar costs nothing.
type jar struct {
	mu      sync.Mutex
	cookies []cookie
	// names are, per site, the recorded host names whose requests go
	// there; nil for one site.
	names [][]string
	// validators are the ETag and Last-Modified of the answers the user
	// got, by request target: only for targets some request asks
	// conditionally, as a browser's cache would have them.
	validators map[string][2]string
}

type cookie struct {
	name, value, path string
	domain            string    // the Domain attribute, lower case without its dot; "" for the site's own
	site              int       // the site that set it
	expires           time.Time // zero: for the session
}

// clear forgets every cookie and validator, keeping the memory.
func (j *jar) clear() {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.cookies = j.cookies[:0]
	clear(j.validators)
}

// goesTo reports whether c goes with requests to site.
func (j *jar) goesTo(c *cookie, site int) bool {
	if c.site == site {
		return true
	}
	if c.domain == "" || site >= len(j.names) {
		return false
	}
	for _, n := range j.names[site] {
		if n == c.domain || strings.HasSuffix(n, "."+c.domain) {
			return true
		}
	}
	return false
}

// set stores a Set-Cookie header's cookie from site, or deletes it when it
// has expired (Max-Age ≤ 0 or Expires in the past). A cookie set again
// with the value it has costs no allocation.
func (j *jar) set(header []byte, now time.Time, site int) {
	c := fasthttp.AcquireCookie()
	defer fasthttp.ReleaseCookie(c)
	if err := c.ParseBytes(header); err != nil || len(c.Key()) == 0 {
		return
	}
	path := c.Path()
	if len(path) == 0 {
		path = []byte("/")
	}
	expires := c.Expire()
	if expires.Equal(fasthttp.CookieExpireUnlimited) {
		expires = time.Time{}
	}
	gone := !expires.IsZero() && !expires.After(now)
	switch ma := c.MaxAge(); {
	case ma > 0:
		expires, gone = now.Add(time.Duration(ma)*time.Second), false
	case ma < 0, indexFold(header, "max-age=0") >= 0: // fasthttp reads Max-Age=0 as none
		gone = true
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	for i := range j.cookies {
		k := &j.cookies[i]
		if string(c.Key()) == k.name && k.path == string(path) && k.site == site {
			if gone {
				j.cookies = append(j.cookies[:i], j.cookies[i+1:]...)
				return
			}
			if k.value != string(c.Value()) {
				k.value = string(c.Value())
			}
			k.expires = expires
			return
		}
	}
	if !gone {
		var domain string
		if d := c.Domain(); len(d) > 0 {
			domain = strings.ToLower(strings.TrimPrefix(string(d), "."))
		}
		j.cookies = append(j.cookies, cookie{name: string(c.Key()), value: string(c.Value()), path: string(path), domain: domain, site: site, expires: expires})
	}
}

// pathMatch reports whether a cookie of cookie path cp goes with a request
// for path p (RFC 6265, 5.1.4).
func pathMatch(cp string, p []byte) bool {
	if q := bytes.IndexByte(p, '?'); q >= 0 {
		p = p[:q]
	}
	if !bytes.HasPrefix(p, []byte(cp)) {
		return false
	}
	return len(p) == len(cp) || strings.HasSuffix(cp, "/") || p[len(cp)] == '/'
}

// appendHeader appends the Cookie header for a request to uri on site, if
// any cookie goes with it.
func (j *jar) appendHeader(dst, uri []byte, now time.Time, site int) []byte {
	j.mu.Lock()
	defer j.mu.Unlock()
	first := true
	for i := range j.cookies {
		c := &j.cookies[i]
		if (!c.expires.IsZero() && !c.expires.After(now)) || !pathMatch(c.path, uri) || !j.goesTo(c, site) {
			continue
		}
		if first {
			dst = append(dst, "Cookie: "...)
			first = false
		} else {
			dst = append(dst, "; "...)
		}
		dst = append(dst, c.name...)
		dst = append(dst, '=')
		dst = append(dst, c.value...)
	}
	if !first {
		dst = append(dst, "\r\n"...)
	}
	return dst
}

// value returns the live value of the cookie name, and whether there is one.
func (j *jar) value(name string) (string, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, c := range j.cookies {
		if c.name == name {
			return c.value, true
		}
	}
	return "", false
}

// empty reports whether the jar holds no cookie.
func (j *jar) empty() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.cookies) == 0
}

// keepValidators notes an answer's ETag and Last-Modified for uri.
func (j *jar) keepValidators(uri []byte, header func(string) []byte) {
	etag, lm := header("ETag"), header("Last-Modified")
	if len(etag) == 0 && len(lm) == 0 {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.validators == nil {
		j.validators = map[string][2]string{}
	}
	j.validators[string(uri)] = [2]string{string(etag), string(lm)}
}

// appendConditional appends the conditional headers the recorded request
// sent (names), with the user's own validators for uri, if it has them.
func (j *jar) appendConditional(dst, uri []byte, names []string) []byte {
	j.mu.Lock()
	defer j.mu.Unlock()
	v, ok := j.validators[string(uri)]
	if !ok {
		return dst
	}
	for _, n := range names {
		val := v[0]
		if strings.EqualFold(n, "If-Modified-Since") {
			val = v[1]
		}
		if val != "" {
			dst = append(dst, n...)
			dst = append(dst, ": "...)
			dst = append(dst, val...)
			dst = append(dst, "\r\n"...)
		}
	}
	return dst
}

// hasValidators reports whether the user keeps any validator.
func (j *jar) hasValidators() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.validators) > 0
}
