package importer

import (
	"cmp"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/thrive-loadtest/thrive/traces"
)

// The types below hold the fields of a HAR entry the importer reads: those
// of HAR 1.2 and the custom (underscored) ones of the writers it knows, as
// their exporters write them:
//
//   - Chrome's DevTools (front_end/models/har/Log.ts and Writer.ts): entries
//     sorted by start; _fromCache "memory" or "disk" for a cache hit;
//     _connectionId for the connection, and connection for the server's
//     port (older versions put the connection id in connection);
//     _resourceType "websocket" with _webSocketMessages {type "send",
//     "receive" or "error", time in seconds since the epoch, opcode, data,
//     base64 unless the opcode is 1}; _error for a failure, null on
//     success; HTTP/2 pseudo-headers (:authority, :method, :path, :scheme)
//     among the request headers; a 304's content is the cached body;
//     _serviceWorkerResponseSource "cache-storage" or "http-cache" for a
//     service worker's answer from its cache.
//   - Firefox's DevTools (devtools/client/netmonitor/src/har/har-builder.js,
//     and NetworkTimings for the timings): startedDateTime in local time
//     with its offset (+02:00); connection is the server's port; status 0
//     for a request with no answer; a cache hit has every timing 0 where a
//     request that went out has some, or -1 for a phase it skipped; the
//     TLS handshake is outside connect (ssl), which the spec puts inside;
//     cache.afterRequest on a 304, which the server did answer.
//   - Playwright (packages/playwright-core/src/server/har/harTracer.ts):
//     status -1, time -1 and timings -1 for no answer, with _failureText;
//     _wasAborted and _wasFulfilled for a request a test's route aborted or
//     answered; postData.text empty when the body is kept in a file beside
//     the HAR (_file) or is binary, with a form's fields in params;
//     _webSocketMessages as Chrome's but with time in milliseconds (-1 when
//     timings are left out); ssl counted twice in time.

// harEntry is one entry of log.entries.
type harEntry struct {
	StartedDateTime string       `json:"startedDateTime"`
	Time            *float64     `json:"time"`
	Request         harRequest   `json:"request"`
	Response        harResponse  `json:"response"`
	Timings         harTimings   `json:"timings"`
	Pageref         loose        `json:"pageref"`
	Connection      loose        `json:"connection"`
	ConnectionID    loose        `json:"_connectionId"`
	FromCache       loose        `json:"_fromCache"`
	Messages        []harMessage `json:"_webSocketMessages"`
	WasAborted      bool         `json:"_wasAborted"`
	WasFulfilled    bool         `json:"_wasFulfilled"`
}

// harRequest is an entry's request.
type harRequest struct {
	Method   string       `json:"method"`
	URL      string       `json:"url"`
	Headers  []harPair    `json:"headers"`
	PostData *harPostData `json:"postData"`
	BodySize float64      `json:"bodySize"`
}

// harPair is a header: a name and its value.
type harPair struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// harPostData is a request's body.
type harPostData struct {
	MimeType string     `json:"mimeType"`
	Text     string     `json:"text"`
	Params   []harParam `json:"params"`
	File     string     `json:"_file"`
	SHA1     string     `json:"_sha1"`
}

// harParam is a form field of a request's body.
type harParam struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// harResponse is an entry's response.
type harResponse struct {
	Status                      int        `json:"status"`
	Headers                     []harPair  `json:"headers"`
	Content                     harContent `json:"content"`
	Error                       loose      `json:"_error"`
	FailureText                 loose      `json:"_failureText"`
	ServiceWorkerResponseSource loose      `json:"_serviceWorkerResponseSource"`
}

// harContent is a response's body.
type harContent struct {
	Size     float64 `json:"size"`
	Text     string  `json:"text"`
	Encoding string  `json:"encoding"`
	File     string  `json:"_file"`
	SHA1     string  `json:"_sha1"`
}

// harTimings are the phases of an entry, in milliseconds, -1 (or absent)
// for one that did not apply.
type harTimings struct {
	Blocked *float64 `json:"blocked"`
	DNS     *float64 `json:"dns"`
	Connect *float64 `json:"connect"`
	SSL     *float64 `json:"ssl"`
	Send    *float64 `json:"send"`
	Wait    *float64 `json:"wait"`
	Receive *float64 `json:"receive"`
}

// harMessage is a WebSocket message of a socket's entry.
type harMessage struct {
	Type   string  `json:"type"`
	Time   float64 `json:"time"`
	Opcode int     `json:"opcode"`
	Data   string  `json:"data"`
}

// loose is a field that writers give as a string, a number or null
// (Chrome's _error is null on success, a connection may be a number): its
// text, "" for null. It never refuses a value, so a field the importer
// only consults cannot make an entry unreadable.
type loose string

// UnmarshalJSON keeps a string's text, or any other value as written.
func (l *loose) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*l = loose(s)
		return nil
	}
	if string(b) != "null" {
		*l = loose(b)
	}
	return nil
}

// leftOut says why an entry is not imported; kept for one that is.
type leftOut uint8

// Reasons to leave an entry out (see HARStats).
const (
	kept leftOut = iota
	fromCache
	notSent
	notHTTP
)

// seenEntry is an imported entry with what the counts need to know of it.
type seenEntry struct {
	Seen
	noBody bool
}

// seen checks the entry and returns it as an exchange, or why it is left
// out.
func (e *harEntry) seen() (seenEntry, leftOut, error) {
	start, err := startedAt(e.StartedDateTime)
	if err != nil {
		return seenEntry{}, kept, err
	}
	u, target, err := requestURL(e.Request.URL)
	if err != nil {
		return seenEntry{}, kept, err
	}
	if e.Request.Method == "" {
		return seenEntry{}, kept, errors.New("request.method: missing")
	}
	if why := e.why(u); why != kept {
		return seenEntry{}, why, nil
	}
	s, err := e.exchange(start, u, target)
	return s, kept, err
}

// why says why the entry is left out, if it is: the server never saw a
// request whose answer came from a cache or that never left the browser,
// and a URL that is not HTTP names no server.
func (e *harEntry) why(u *url.URL) leftOut {
	switch {
	case !webScheme(u.Scheme):
		return notHTTP
	case e.cached():
		return fromCache
	case e.neverSent():
		return notSent
	}
	return kept
}

// cached reports an answer the browser took from a cache: Chrome's
// _fromCache, a service worker's answer from its cache (Chrome's
// _serviceWorkerResponseSource), or Firefox's cache hit, whose timings are
// all 0.
func (e *harEntry) cached() bool {
	if c := e.FromCache; c != "" && c != "false" {
		return true
	}
	switch e.Response.ServiceWorkerResponseSource {
	case "cache-storage", "http-cache":
		return true
	}
	return e.Timings.allZero()
}

// neverSent reports a request that never left the browser: one a test's
// route aborted or answered (Playwright), or one an extension or a policy
// blocked (Chrome's net::ERR_BLOCKED_BY_CLIENT and
// net::ERR_BLOCKED_BY_ADMINISTRATOR, in _error or Playwright's
// _failureText). Other failures are kept: the server may have seen them.
func (e *harEntry) neverSent() bool {
	if e.WasAborted || e.WasFulfilled {
		return true
	}
	if e.Response.Status > 0 {
		return false
	}
	why := string(e.Response.Error) + " " + string(e.Response.FailureText)
	return strings.Contains(why, "ERR_BLOCKED_BY_CLIENT") || strings.Contains(why, "ERR_BLOCKED_BY_ADMINISTRATOR")
}

// exchange returns the entry as an exchange that began at start, for URL
// u, whose text (without a fragment) is target.
func (e *harEntry) exchange(start time.Time, u *url.URL, target string) (seenEntry, error) {
	status := max(e.Response.Status, 0)
	if status == 0 && len(e.Messages) > 0 {
		status = http.StatusSwitchingProtocols // it had messages, so it was answered
	}
	ex := traces.Exchange{Method: e.Request.Method, URL: target, Status: status, Error: e.failure(status)}
	reqMissing := e.request(&ex, u)
	respMissing, err := e.response(&ex)
	if err != nil {
		return seenEntry{}, err
	}
	if ex.TTFB, ex.Duration, err = e.times(); err != nil {
		return seenEntry{}, err
	}
	if status == 0 {
		ex.TTFB = 0
	}
	if status == http.StatusSwitchingProtocols {
		if err := e.socket(&ex, start); err != nil {
			return seenEntry{}, err
		}
	}
	s := Seen{Start: start, Conn: e.conn(u), Page: string(e.Pageref), Exchange: ex}
	return seenEntry{Seen: s, noBody: reqMissing || respMissing}, nil
}

// failure says why the exchange failed, as the browser reported it, or
// that the file holds no answer; "" for an answered exchange that did not
// fail.
func (e *harEntry) failure(status int) string {
	for _, why := range []loose{e.Response.Error, e.Response.FailureText} {
		if why != "" {
			return string(why)
		}
	}
	if status == 0 {
		return "no answer in the HAR"
	}
	return ""
}

// request fills ex's request headers, Host and body, and reports a body
// the entry says there was but does not hold.
func (e *harEntry) request(ex *traces.Exchange, u *url.URL) (missing bool) {
	ex.ReqHeader = headers(e.Request.Headers)
	ex.Host = host(ex.ReqHeader, e.Request.Headers, u)
	ex.ReqBody, missing = e.Request.body()
	return missing
}

// response fills ex's response headers and body, and reports a body the
// entry says there was but does not hold.
func (e *harEntry) response(ex *traces.Exchange) (missing bool, err error) {
	ex.RespHeader = headers(e.Response.Headers)
	ex.RespBody, missing, err = e.Response.body(ex.Method)
	if err != nil {
		return false, err
	}
	if len(ex.RespBody.Data) > 0 {
		ex.RespHeader = decodedHeaders(ex.RespHeader, len(ex.RespBody.Data))
	}
	return missing, nil
}

// conn returns what ties the entry to a client: Chrome's _connectionId;
// else connection, unless it is the server's port (as Firefox and today's
// Chrome write it: a port says nothing of the client); else the page.
func (e *harEntry) conn(u *url.URL) string {
	if id := string(e.ConnectionID); id != "" && id != "0" {
		return id
	}
	if c := string(e.Connection); c != "" && c != "0" && c != port(u) {
		return c
	}
	return string(e.Pageref)
}

// port returns u's port, or its scheme's default.
func port(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if u.Scheme == "https" || u.Scheme == "wss" {
		return "443"
	}
	return "80"
}

// startedAt parses an entry's startedDateTime: RFC 3339 with any number of
// fractional digits and a zone, as Z (Chrome, Playwright) or an offset
// (Firefox), with or without its colon.
func startedAt(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, errors.New("startedDateTime: missing")
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t, err = time.Parse("2006-01-02T15:04:05.999999999Z0700", s)
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("startedDateTime %q: not a date and time with a zone, such as 2024-05-01T10:00:00.123+02:00", s)
	}
	return t, nil
}

// requestURL parses an entry's URL, which HAR gives absolute, and returns
// it with its text without the fragment, which is never sent. A
// WebSocket's URL (ws, wss), which Chrome writes for its handshake, is
// returned as the HTTP request the handshake is (http, https), as the
// capture records it: a page and its sockets are one origin to a replay.
func requestURL(raw string) (*url.URL, string, error) {
	if raw == "" {
		return nil, "", errors.New("request.url: missing")
	}
	target, _, _ := strings.Cut(raw, "#")
	u, err := url.Parse(target)
	if err != nil {
		return nil, "", fmt.Errorf("request.url: %w", err)
	}
	if webScheme(u.Scheme) && u.Host == "" {
		return nil, "", fmt.Errorf("request.url %q: no host", raw)
	}
	if scheme, ok := map[string]string{"ws": "http", "wss": "https"}[strings.ToLower(u.Scheme)]; ok {
		u.Scheme = scheme
		target = u.String()
	}
	return u, target, nil
}

// webScheme reports a scheme of HTTP or WebSocket.
func webScheme(s string) bool {
	return s == "http" || s == "https" || s == "ws" || s == "wss"
}

// headers returns the headers in order, without HTTP/2 pseudo-headers
// (:authority, :method, :path, :scheme, :status), which a request or
// answer of thrive's does not carry, and with a value holding several
// lines (as older Chrome wrote repeated headers) as one header a line.
func headers(pairs []harPair) []traces.Header {
	var h []traces.Header
	for _, p := range pairs {
		if p.Name == "" || strings.HasPrefix(p.Name, ":") {
			continue
		}
		for v := range strings.SplitSeq(p.Value, "\n") {
			h = append(h, traces.Header{Name: p.Name, Value: strings.TrimSuffix(v, "\r")})
		}
	}
	return h
}

// host returns the host the request was sent to: its Host header, else
// HTTP/2's :authority among pairs, else the URL's host.
func host(h []traces.Header, pairs []harPair, u *url.URL) string {
	for _, f := range h {
		if strings.EqualFold(f.Name, "Host") {
			return f.Value
		}
	}
	for _, p := range pairs {
		if strings.EqualFold(p.Name, ":authority") {
			return p.Value
		}
	}
	return u.Host
}

// body returns the request's body: postData.text; else, for a form, the
// body made again from postData.params, which Playwright lists when it
// leaves text empty. missing reports a body the entry says there was but
// does not hold.
func (r *harRequest) body() (b traces.Body, missing bool) {
	pd := r.PostData
	switch {
	case pd == nil:
		return traces.Body{}, r.BodySize > 0
	case pd.Text != "":
		return traces.Body{Data: []byte(pd.Text)}, false
	}
	if form, ok := formBody(pd); ok {
		return traces.Body{Data: form}, false
	}
	return traces.Body{}, r.BodySize > 0 || pd.File != "" || pd.SHA1 != "" || len(pd.Params) > 0
}

// formBody returns an application/x-www-form-urlencoded body made of pd's
// params, in order; false if pd is not a form or has none.
func formBody(pd *harPostData) ([]byte, bool) {
	mediaType, _, _ := strings.Cut(pd.MimeType, ";")
	if !strings.EqualFold(strings.TrimSpace(mediaType), "application/x-www-form-urlencoded") || len(pd.Params) == 0 {
		return nil, false
	}
	var b []byte
	for i, p := range pd.Params {
		if i > 0 {
			b = append(b, '&')
		}
		b = append(b, url.QueryEscape(p.Name)...)
		b = append(b, '=')
		b = append(b, url.QueryEscape(p.Value)...)
	}
	return b, true
}

// body returns the response's body to a request of method: content.text,
// decoded from base64 when content.encoding says so. An answer that has
// no body (to HEAD, 1xx, 204, 304) gets none, whatever content holds:
// Chrome gives a 304 the body it had cached. missing reports a body the
// entry says there was but does not hold.
func (r *harResponse) body(method string) (b traces.Body, missing bool, err error) {
	if !bodied(method, r.Status) {
		return traces.Body{}, false, nil
	}
	c := &r.Content
	if c.Text == "" {
		return traces.Body{}, c.Size > 0 || c.File != "" || c.SHA1 != "", nil
	}
	switch strings.ToLower(c.Encoding) {
	case "":
		return traces.Body{Data: []byte(c.Text)}, false, nil
	case "base64":
		data, err := decodeBase64(c.Text)
		if err != nil {
			return traces.Body{}, false, fmt.Errorf("response.content.text: %w", err)
		}
		return traces.Body{Data: data}, false, nil
	}
	return traces.Body{}, false, fmt.Errorf("response.content.encoding %q: not base64", c.Encoding)
}

// bodied reports whether an answer with status to a request of method has
// a body.
func bodied(method string, status int) bool {
	return status >= http.StatusOK && status != http.StatusNoContent && status != http.StatusNotModified && method != http.MethodHead
}

// decodedHeaders returns h for a body of n bytes held decoded, as HAR
// holds every body: without Content-Encoding, and with a Content-Length of
// n if it had one, so that whatever reads the body by its headers (see
// traces.Decode) reads it as it is.
func decodedHeaders(h []traces.Header, n int) []traces.Header {
	if traces.ContentEncoding(h) == nil {
		return h
	}
	out := make([]traces.Header, 0, len(h))
	for _, f := range h {
		switch {
		case strings.EqualFold(f.Name, "Content-Encoding"):
			continue
		case strings.EqualFold(f.Name, "Content-Length"):
			f.Value = strconv.Itoa(n)
		}
		out = append(out, f)
	}
	return out
}

// decodeBase64 decodes standard base64, padded or not.
func decodeBase64(s string) ([]byte, error) {
	return base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "="))
}

// Bounds on times, past which a value is an error rather than a time:
// maxMillis for a phase or a duration (about 31 years), maxWallMillis for
// a moment since the epoch (the year 5138).
const (
	maxMillis     = 1e12
	maxWallMillis = 1e14
)

// times returns the entry's time to first byte, the sum of the phases
// before the answer (blocked, dns, connect, send and wait, leaving out
// those of -1, and ssl, which the spec counts in connect), and its
// duration: time, or the sum of the phases where time is missing or -1.
// The time to first byte is at most the duration.
func (e *harEntry) times() (ttfb, total time.Duration, err error) {
	t := &e.Timings
	ttfb, err = sum(phase{"blocked", t.Blocked}, phase{"dns", t.DNS}, phase{"connect", t.Connect}, phase{"send", t.Send}, phase{"wait", t.Wait})
	if err != nil {
		return 0, 0, err
	}
	if e.Time != nil && *e.Time >= 0 {
		total, err = millis("time", *e.Time)
	} else {
		var receive time.Duration
		receive, err = sum(phase{"receive", t.Receive})
		total = ttfb + receive
	}
	return min(ttfb, total), total, err
}

// phase is one of an entry's timings, by name.
type phase struct {
	name string
	ms   *float64
}

// sum returns the sum of the phases that apply (present, not negative).
func sum(phases ...phase) (time.Duration, error) {
	var d time.Duration
	for _, p := range phases {
		if p.ms == nil || *p.ms < 0 {
			continue
		}
		v, err := millis("timings."+p.name, *p.ms)
		if err != nil {
			return 0, err
		}
		d += v
	}
	return d, nil
}

// millis converts field's value v, in milliseconds, to a duration.
func millis(field string, v float64) (time.Duration, error) {
	if v > maxMillis {
		return 0, fmt.Errorf("%s %v: out of range", field, v)
	}
	return time.Duration(math.Round(v * float64(time.Millisecond))), nil
}

// allZero reports timings that are all present and 0, which Firefox writes
// for an answer from its cache: a request that went out spends time in
// some phase, and has -1 for one it skipped.
func (t *harTimings) allZero() bool {
	for _, v := range []*float64{t.Blocked, t.DNS, t.Connect, t.SSL, t.Send, t.Wait, t.Receive} {
		if v == nil || *v != 0 {
			return false
		}
	}
	return true
}

// socket gives ex, which upgraded to a WebSocket at start, its messages as
// frames, its close, and the duration of the connection: until its close,
// or its last message or the entry's end, whichever is later. Its time to
// first byte is at most its first message's offset (Chrome's wait runs to
// the last message). Chrome's "error" messages go into ex.Error.
func (e *harEntry) socket(ex *traces.Exchange, start time.Time) error {
	ws, closed, errs, err := e.frames(start)
	if err != nil {
		return err
	}
	if n := len(ws.Frames); n > 0 {
		ex.TTFB = min(ex.TTFB, ws.Frames[0].Offset)
		ex.Duration = max(ex.Duration, ws.Frames[n-1].Offset)
	}
	if closed {
		ex.Duration = max(ex.Duration, ws.Close.Offset)
	} else {
		ws.Close.Offset = ex.Duration
	}
	if len(errs) > 0 {
		ex.Error = strings.Join(append([]string{ex.Error}, errs...), "; ")
		ex.Error = strings.TrimPrefix(ex.Error, "; ")
	}
	ex.WebSocket = ws
	return nil
}

// frames returns the entry's messages as a socket's frames in order of
// offset from start, the first close message as its Close (closed), and
// the text of its error messages. A message whose time is not given is
// placed with the one before it.
func (e *harEntry) frames(start time.Time) (ws *traces.WebSocket, closed bool, errs []string, err error) {
	ws = &traces.WebSocket{}
	var at time.Duration
	for j, m := range e.Messages {
		if m.Type == "error" {
			errs = append(errs, m.Data)
			continue
		}
		if m.Type != "send" && m.Type != "receive" {
			continue
		}
		if at, err = m.offset(start, at); err != nil {
			return nil, false, nil, fmt.Errorf("_webSocketMessages[%d]: %w", j, err)
		}
		payload, err := m.payload()
		if err != nil {
			return nil, false, nil, fmt.Errorf("_webSocketMessages[%d]: %w", j, err)
		}
		fromClient := m.Type == "send"
		if traces.Opcode(m.Opcode) != traces.OpClose {
			ws.Frames = append(ws.Frames, traces.Frame{Offset: at, FromClient: fromClient, Opcode: traces.Opcode(m.Opcode), Payload: traces.Body{Data: payload}})
		} else if !closed {
			ws.Close, closed = closeOf(payload, at, fromClient), true
		}
	}
	slices.SortStableFunc(ws.Frames, func(a, b traces.Frame) int { return cmp.Compare(a.Offset, b.Offset) })
	return ws, closed, errs, nil
}

// offset returns when the message was seen, from start (0 if before it):
// its time is seconds since the epoch (Chrome) or, from 1e11 up,
// milliseconds (Playwright), since 1e11 seconds is past the year 5000 and
// 1e11 milliseconds is in 1973. A time not given (Playwright's -1) is
// prev, the offset of the message before.
func (m *harMessage) offset(start time.Time, prev time.Duration) (time.Duration, error) {
	if m.Time <= 0 {
		return prev, nil
	}
	ms := m.Time
	if ms < 1e11 {
		ms *= 1000
	}
	if ms > maxWallMillis {
		return 0, fmt.Errorf("time %v: out of range", m.Time)
	}
	sec := math.Floor(ms / 1000)
	at := time.Unix(int64(sec), int64(math.Round((ms-sec*1000)*1e6)))
	return max(at.Sub(start), 0), nil
}

// payload returns the message's data: as it is for a text message (opcode
// 1), decoded from base64 for any other, as the Chrome DevTools protocol
// gives it.
func (m *harMessage) payload() ([]byte, error) {
	if m.Opcode < 0 || m.Opcode > 0xF {
		return nil, fmt.Errorf("opcode %d: not a WebSocket opcode", m.Opcode)
	}
	if traces.Opcode(m.Opcode) == traces.OpText {
		return []byte(m.Data), nil
	}
	b, err := decodeBase64(m.Data)
	if err != nil {
		return nil, fmt.Errorf("data of opcode %d: %w", m.Opcode, err)
	}
	return b, nil
}

// closeOf returns the close a close message's payload describes: a status
// code and a reason, if it has them.
func closeOf(payload []byte, at time.Duration, byClient bool) traces.Close {
	c := traces.Close{Offset: at, ByClient: byClient}
	if len(payload) >= 2 {
		c.Code = int(binary.BigEndian.Uint16(payload))
		c.Reason = string(payload[2:])
	}
	return c
}
