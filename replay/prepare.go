package replay

import (
	"strings"

	"github.com/valyala/fasthttp"
)

// build fills req with step st for the engine's target and headers.
func (e *Engine) build(req *fasthttp.Request, st *step) {
	req.Header.DisableNormalizing()
	req.Header.SetNoDefaultContentType(true) // send the recorded one, or none
	req.Header.SetMethodBytes(st.method)
	req.SetRequestURIBytes(st.uri)
	req.Header.SetHost(e.targets[e.site(st)].host)
	for _, h := range st.headers {
		if !e.overridden(h[0]) {
			req.Header.AddBytesKV(h[0], e.ownOrigin(h[0], h[1], st))
		}
	}
	switch {
	case e.cfg.recorded:
		for _, h := range st.recorded {
			if !e.overridden(h[0]) {
				req.Header.AddBytesKV(h[0], h[1])
			}
		}
	case !e.cfg.correlate:
		// The user's own cookies, but headers that echoed one keep their
		// recorded value.
		for _, ec := range st.echoes {
			if !e.overridden([]byte(ec.header)) {
				req.Header.AddBytesKV([]byte(ec.header), ec.recorded)
			}
		}
	}
	for _, h := range e.cfg.headers {
		req.Header.Set(h[0], h[1])
	}
	if len(st.body) > 0 {
		req.SetBodyRaw(st.body)
	}
}

// expected returns the status a live answer to st is judged against: the
// recorded one, or none with WithStrictStatus.
// judges reports whether answers are held to what their recordings said
// (redirects, refusals in the body), not by their status alone.
func (e *Engine) judges() bool { return !e.cfg.strictStatus }

func (e *Engine) expected(st *step) int {
	if e.cfg.strictStatus {
		return 0
	}
	return st.status
}

// ownOrigin returns the value of a header of st to send: an Origin or
// Referer that named the recorded site itself (its Host) names its target
// instead, so that a target that checks origins (a WebSocket upgrader, a
// CSRF check) sees its own; one that named another recorded origin (an
// app's page calling its API) names where that origin's requests go now.
func (e *Engine) ownOrigin(name, value []byte, st *step) []byte {
	if !strings.EqualFold(string(name), "Origin") && !strings.EqualFold(string(name), "Referer") {
		return value
	}
	v := string(value)
	named := func(prefix string) (string, bool) {
		rest, ok := strings.CutPrefix(v, prefix)
		return rest, ok && (rest == "" || rest[0] == '/' || rest[0] == '?')
	}
	for i := range e.targets {
		t := &e.targets[i]
		for _, o := range t.origins {
			if rest, ok := named(o); ok {
				return []byte(t.url.Scheme + "://" + t.host + rest)
			}
		}
	}
	if st.host == "" {
		return value
	}
	t := &e.targets[e.site(st)]
	for _, scheme := range []string{"http://", "https://"} {
		if rest, ok := named(scheme + st.host); ok {
			return []byte(t.url.Scheme + "://" + t.host + rest)
		}
	}
	return value
}

// overridden reports whether a WithHeader replaces the recorded header name.
func (e *Engine) overridden(name []byte) bool {
	for _, h := range e.cfg.headers {
		if strings.EqualFold(h[0], string(name)) {
			return true
		}
	}
	return false
}

// prepare writes every step's request as it will go on the wire, once, so
// that sending one is a single write of bytes made in advance.
func (e *Engine) prepare() [][][]byte {
	out := make([][][]byte, len(e.lib.scripts))
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	for i := range e.lib.scripts {
		sc := &e.lib.scripts[i]
		out[i] = make([][]byte, len(sc.steps))
		for j := range sc.steps {
			req.Reset()
			e.build(req, &sc.steps[j])
			out[i][j] = []byte(req.String())
		}
	}
	return out
}
