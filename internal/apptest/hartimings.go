package apptest

import (
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// timings returns an entry's phases as DevTools computes them from the
// times of issue, of the answer's headers (-1 for none) and of the end (-1
// for none), in monotonic seconds, and the network's timing when the
// browser gave one: blocked runs from issue to the first of dns, connect
// and send, each phase to the next, wait to the answer's headers, receive
// to the end.
func timings(issue, respTime, end float64, t *cdpTiming) harTimings {
	r := harTimings{Blocked: -1, DNS: -1, SSL: -1, Connect: -1, BlockedQueueing: -1}
	start := issue
	if t != nil {
		start = t.RequestTime
	}
	if issue < start {
		r.Blocked = ms(start - issue)
		r.BlockedQueueing = r.Blocked
	}
	if t == nil && respTime == -1 {
		if end != -1 {
			r.Blocked = ms(end - issue)
		}
		return r
	}
	highest := 0.0
	if t != nil {
		highest = r.phases(t)
	}
	waitEnd := ms(respTime - start)
	r.Wait = waitEnd - highest
	if end != -1 {
		r.Receive = max(ms(end-start)-waitEnd, 0)
	}
	return r
}

// phases fills r's blocked, dns, connect, ssl and send from the network's
// timing, and returns when the last of them ended, in milliseconds from
// the request's start.
func (r *harTimings) phases(t *cdpTiming) float64 {
	blockedStart := math.Inf(1)
	for _, v := range []float64{t.DNSStart, t.ConnectStart, t.SendStart} {
		if v >= 0 && v < blockedStart {
			blockedStart = v
		}
	}
	if math.IsInf(blockedStart, 1) {
		blockedStart = 0
	} else {
		r.Blocked = max(r.Blocked, 0) + blockedStart
	}
	if t.ProxyEnd != -1 {
		r.Blocked = max(r.Blocked, t.ProxyEnd-t.ProxyStart)
	}
	dnsStart, dnsEnd := 0.0, -1.0
	if t.DNSEnd >= 0 {
		dnsStart, dnsEnd = blockedStart, t.DNSEnd
	}
	r.DNS = dnsEnd - dnsStart
	sslStart, sslEnd := 0.0, -1.0
	if t.SSLEnd > 0 {
		sslStart, sslEnd = t.SSLStart, t.SSLEnd
	}
	r.SSL = sslEnd - sslStart
	connectStart, connectEnd := 0.0, -1.0
	if t.ConnectEnd >= 0 {
		connectStart, connectEnd = blockedStart, t.ConnectEnd
		if dnsEnd >= 0 {
			connectStart = min(dnsEnd, blockedStart)
		}
	}
	r.Connect = connectEnd - connectStart
	sendStart, sendEnd := 0.0, 0.0
	if t.SendEnd >= 0 {
		sendStart, sendEnd = max(connectEnd, dnsEnd, blockedStart), t.SendEnd
	}
	r.Send = max(sendEnd-sendStart, 0)
	return max(sendEnd, connectEnd, sslEnd, dnsEnd, blockedStart, 0)
}

// total returns the entry's time: the sum of its phases, ssl left out
// (it is inside connect).
func (r *harTimings) total() float64 {
	var sum float64
	for _, v := range []float64{r.Blocked, r.DNS, r.Connect, r.Send, r.Wait, r.Receive} {
		sum += max(v, 0)
	}
	return sum
}

// query returns the parameters of raw's query in order.
func query(raw string) []harNV {
	out := []harNV{}
	u, err := url.Parse(raw)
	if err != nil || u.RawQuery == "" {
		return out
	}
	return pairs(u.RawQuery)
}

// pairs splits an application/x-www-form-urlencoded text into its
// parameters, in order, each name and value unescaped where it can be.
func pairs(s string) []harNV {
	out := []harNV{}
	for part := range strings.SplitSeq(s, "&") {
		if part == "" {
			continue
		}
		name, value, _ := strings.Cut(part, "=")
		out = append(out, harNV{Name: unescape(name), Value: unescape(value)})
	}
	return out
}

// unescape is url.QueryUnescape, or s as it is when it cannot be.
func unescape(s string) string {
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return s
}

// formParams returns a form body's fields, nil for another kind of body.
func formParams(contentType, body string) []harNV {
	mediaType, _, _ := strings.Cut(contentType, ";")
	if !strings.EqualFold(strings.TrimSpace(mediaType), "application/x-www-form-urlencoded") {
		return nil
	}
	return pairs(body)
}

// requestCookies returns the cookies of a request's Cookie headers.
func requestCookies(h cdpHeaders) []harCookie {
	out := []harCookie{}
	for _, f := range h {
		if !strings.EqualFold(f.Name, "Cookie") {
			continue
		}
		cookies, err := http.ParseCookie(f.Value)
		if err != nil {
			continue
		}
		for _, c := range cookies {
			out = append(out, harCookie{Name: c.Name, Value: c.Value})
		}
	}
	return out
}

// responseCookies returns the cookies of an answer's Set-Cookie headers,
// with their attributes.
func responseCookies(h cdpHeaders) []harCookie {
	out := []harCookie{}
	for _, f := range h {
		if !strings.EqualFold(f.Name, "Set-Cookie") {
			continue
		}
		c, err := http.ParseSetCookie(f.Value)
		if err != nil {
			continue
		}
		hc := harCookie{Name: c.Name, Value: c.Value, Path: c.Path, Domain: c.Domain, HTTPOnly: c.HttpOnly, Secure: c.Secure}
		if !c.Expires.IsZero() {
			s := c.Expires.UTC().Format("2006-01-02T15:04:05.000Z")
			hc.Expires = &s
		} else if c.MaxAge > 0 {
			s := time.Now().Add(time.Duration(c.MaxAge) * time.Second).UTC().Format("2006-01-02T15:04:05.000Z")
			hc.Expires = &s
		}
		switch c.SameSite {
		case http.SameSiteLaxMode:
			hc.SameSite = "Lax"
		case http.SameSiteStrictMode:
			hc.SameSite = "Strict"
		case http.SameSiteNoneMode:
			hc.SameSite = "None"
		}
		out = append(out, hc)
	}
	return out
}
