package apptest

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The types below are HAR 1.2 as Chrome DevTools' "Save all as HAR" writes
// it (front_end/models/har/Log.ts and Writer.ts of devtools-frontend), its
// custom fields among them: _fromCache "memory" or "disk" for an answer
// from the cache, _resourceType, _initiator, _transferSize, _error (null
// on success), and for a WebSocket _webSocketMessages, each with its type
// (send, receive, error), time in seconds since the epoch, opcode and data.

// harFile is a HAR document.
type harFile struct {
	Log harLog `json:"log"`
}

// harLog is a HAR's log.
type harLog struct {
	Version string         `json:"version"`
	Creator harNameVersion `json:"creator"`
	Pages   []harPage      `json:"pages"`
	Entries []harEntry     `json:"entries"`
}

// harNameVersion is the log's creator.
type harNameVersion struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// harPage is a document the page loaded.
type harPage struct {
	StartedDateTime string         `json:"startedDateTime"`
	ID              string         `json:"id"`
	Title           string         `json:"title"`
	PageTimings     harPageTimings `json:"pageTimings"`
}

// harPageTimings are when the document's DOMContentLoaded and load events
// fired, in milliseconds from its start, -1 if they did not.
type harPageTimings struct {
	OnContentLoad float64 `json:"onContentLoad"`
	OnLoad        float64 `json:"onLoad"`
}

// harEntry is one request, or one WebSocket with its messages.
type harEntry struct {
	FromCache       string          `json:"_fromCache,omitempty"`
	Initiator       json.RawMessage `json:"_initiator,omitempty"`
	ResourceType    string          `json:"_resourceType"`
	Messages        *[]wsMessage    `json:"_webSocketMessages,omitempty"`
	Cache           struct{}        `json:"cache"`
	Connection      string          `json:"connection,omitempty"`
	Pageref         string          `json:"pageref,omitempty"`
	Request         harRequest      `json:"request"`
	Response        harResponse     `json:"response"`
	ServerIPAddress string          `json:"serverIPAddress"`
	StartedDateTime string          `json:"startedDateTime"`
	Time            float64         `json:"time"`
	Timings         harTimings      `json:"timings"`

	wall float64 // when it was issued, for the order of entries
}

// harNV is a header or a query parameter.
type harNV struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// harCookie is a cookie a request sent or an answer set.
type harCookie struct {
	Name     string  `json:"name"`
	Value    string  `json:"value"`
	Path     string  `json:"path,omitempty"`
	Domain   string  `json:"domain,omitempty"`
	Expires  *string `json:"expires,omitempty"`
	HTTPOnly bool    `json:"httpOnly"`
	Secure   bool    `json:"secure"`
	SameSite string  `json:"sameSite,omitempty"`
}

// harRequest is an entry's request.
type harRequest struct {
	Method      string       `json:"method"`
	URL         string       `json:"url"`
	HTTPVersion string       `json:"httpVersion"`
	Headers     []harNV      `json:"headers"`
	QueryString []harNV      `json:"queryString"`
	Cookies     []harCookie  `json:"cookies"`
	HeadersSize int          `json:"headersSize"`
	BodySize    int          `json:"bodySize"`
	PostData    *harPostData `json:"postData,omitempty"`
}

// harPostData is the body a request sent, with a form's fields.
type harPostData struct {
	MimeType string  `json:"mimeType"`
	Text     string  `json:"text"`
	Params   []harNV `json:"params,omitempty"`
}

// harResponse is an entry's answer.
type harResponse struct {
	Status       int         `json:"status"`
	StatusText   string      `json:"statusText"`
	HTTPVersion  string      `json:"httpVersion"`
	Headers      []harNV     `json:"headers"`
	Cookies      []harCookie `json:"cookies"`
	Content      harContent  `json:"content"`
	RedirectURL  string      `json:"redirectURL"`
	HeadersSize  int         `json:"headersSize"`
	BodySize     int         `json:"bodySize"`
	TransferSize int         `json:"_transferSize"`
	Error        *string     `json:"_error"`
}

// harContent is an answer's body, decoded: text, or base64 when binary.
type harContent struct {
	Size     int    `json:"size"`
	MimeType string `json:"mimeType"`
	Text     string `json:"text,omitempty"`
	Encoding string `json:"encoding,omitempty"`
}

// harTimings are an entry's phases in milliseconds, -1 for one that did
// not happen; ssl is inside connect.
type harTimings struct {
	Blocked         float64 `json:"blocked"`
	DNS             float64 `json:"dns"`
	SSL             float64 `json:"ssl"`
	Connect         float64 `json:"connect"`
	Send            float64 `json:"send"`
	Wait            float64 `json:"wait"`
	Receive         float64 `json:"receive"`
	BlockedQueueing float64 `json:"_blocked_queueing"`
}

// HAR waits until the page's traffic is settled, and returns it as the
// HAR 1.2 document Chrome DevTools saves of a tab: every request and its
// redirects each an entry, with bodies, and each WebSocket with its
// messages. Settled means every request over, with its bodies and its raw
// headers (which the browser reports apart, and may report after the
// page saw the answer), and every WebSocket closed; a request of a
// document the page left may stay pending, as DevTools shows it. It waits up to
// timeout, and is an error for a page not opened by Record, a page whose
// traffic did not settle, or one whose bodies the browser dropped before
// they were asked for (the document is returned with it).
func (p *Page) HAR(timeout time.Duration) ([]byte, error) {
	if p.net == nil {
		return nil, errors.New("har: the page was not opened by Record")
	}
	err := p.net.settle(timeout)
	p.net.mu.Lock()
	doc := p.net.har()
	if n := len(p.net.lost); n > 0 {
		err = errors.Join(err, fmt.Errorf("har: %d bodies the browser no longer held when asked (the page had moved on), such as %s", n, p.net.lost[0]))
	}
	p.net.mu.Unlock()
	b, jerr := json.MarshalIndent(doc, "", "  ")
	return b, errors.Join(err, jerr)
}

// settle waits until nothing is unsettled, or timeout.
func (n *netLog) settle(timeout time.Duration) error {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		n.mu.Lock()
		why, changed := n.unsettled(), n.changed
		n.mu.Unlock()
		if why == "" {
			return nil
		}
		select {
		case <-changed:
		case <-timer.C:
			return fmt.Errorf("har: after %v, %s", timeout, why)
		}
	}
}

// unsettled says what the log still waits for, "" if nothing.
func (n *netLog) unsettled() string {
	if n.fetching > 0 {
		return fmt.Sprintf("%d bodies being fetched", n.fetching)
	}
	for _, h := range n.hops {
		// A request of a page the frame left may never end: Chromium
		// sends no event for one the navigation cut off (DevTools shows
		// it pending). It is written as it stands.
		if h.end == 0 && h.page == n.pageID() {
			return "request " + h.request.Method + " " + h.request.URL + " not over"
		}
	}
	for id, hs := range n.byID {
		wire := 0
		for _, h := range hs {
			if h.response != nil && !h.cached() {
				wire++
			}
		}
		if len(n.reqExtra[id]) < wire || len(n.respExtra[id]) < wire {
			return "the raw headers of " + hs[0].request.URL + " not come"
		}
	}
	for _, s := range n.order {
		if s.end == 0 {
			return "WebSocket " + s.url + " open"
		}
	}
	return ""
}

// cached reports a hop the browser answered from its cache.
func (h *hop) cached() bool {
	return h.memory || h.response != nil && (h.response.FromDiskCache || h.response.FromPrefetchCache)
}

// har returns the log as a HAR document, its entries in order of issue.
func (n *netLog) har() harFile {
	n.matchExtras()
	var entries []harEntry
	for _, h := range n.hops {
		entries = append(entries, h.entry())
	}
	for _, s := range n.order {
		if s.issue > 0 {
			entries = append(entries, s.entry())
		}
	}
	slices.SortStableFunc(entries, func(a, b harEntry) int { return cmp.Compare(a.wall, b.wall) })
	pages := make([]harPage, 0, len(n.pages))
	for _, pl := range n.pages {
		pages = append(pages, harPage{StartedDateTime: wallTime(pl.wall), ID: pl.id, Title: pl.url,
			PageTimings: harPageTimings{OnContentLoad: since(pl.start, pl.contentLoad), OnLoad: since(pl.start, pl.onLoad)}})
	}
	return harFile{Log: harLog{Version: "1.2", Creator: harNameVersion{Name: "WebInspector", Version: "537.36"}, Pages: pages, Entries: entries}}
}

// matchExtras gives each hop that went to the network the raw headers of
// its ExtraInfo events: a request id's k-th such hop the k-th of each.
func (n *netLog) matchExtras() {
	for id, hs := range n.byID {
		k := 0
		for _, h := range hs {
			if h.cached() {
				continue
			}
			if k < len(n.reqExtra[id]) {
				h.reqHeaders = n.reqExtra[id][k].Headers
			}
			if k < len(n.respExtra[id]) && h.response != nil {
				h.respHeaders, h.respHeadersText = n.respExtra[id][k].Headers, n.respExtra[id][k].HeadersText
			}
			k++
		}
	}
}

// since returns the milliseconds from start to t, -1 if t did not come.
func since(start, t float64) float64 {
	if t == 0 {
		return -1
	}
	return ms(t - start)
}

// ms converts seconds to milliseconds, keeping -1.
func ms(s float64) float64 {
	if s == -1 {
		return -1
	}
	return s * 1000
}

// wallTime formats seconds since the epoch as JavaScript's Date.toJSON.
func wallTime(s float64) string {
	return time.UnixMicro(int64(math.Round(s * 1e6))).UTC().Format("2006-01-02T15:04:05.000Z")
}

// entry returns the hop as a HAR entry.
func (h *hop) entry() harEntry {
	e := harEntry{Initiator: h.initiat, ResourceType: resourceType(h.kind), Pageref: h.page,
		StartedDateTime: wallTime(h.wall), wall: h.wall}
	e.Request = h.harRequest()
	e.Response = h.harResponse()
	if h.cached() {
		e.FromCache = map[bool]string{true: "memory", false: "disk"}[h.memory]
	}
	var timing *cdpTiming
	respTime := -1.0
	if r := h.response; r != nil {
		timing = r.Timing
		respTime = h.respTime
		e.ServerIPAddress = strings.Trim(r.RemoteIPAddress, "[]")
		if r.ConnectionID != 0 {
			e.Connection = strconv.FormatFloat(r.ConnectionID, 'f', -1, 64)
		}
	}
	end := h.end
	if end == 0 {
		end = -1 // not over
	}
	e.Timings = timings(h.issue, respTime, end, timing)
	e.Time = e.Timings.total()
	return e
}

// resourceType names a protocol resource type as DevTools' HAR does.
func resourceType(kind string) string {
	switch kind {
	case "CSPViolationReport":
		return "csp-violation-report"
	case "SignedExchange":
		return "signed-exchange"
	case "":
		return "other"
	}
	return strings.ToLower(kind)
}

// harRequest returns the hop's request: the headers as they went on the
// wire when the browser reported them, else those the page asked for.
func (h *hop) harRequest() harRequest {
	headers := h.reqHeaders
	if len(headers) == 0 {
		headers = h.request.Headers
	}
	r := harRequest{Method: h.request.Method, URL: h.request.URL, HTTPVersion: httpVersion(h.response), Headers: nonNil(headers),
		QueryString: query(h.request.URL), Cookies: requestCookies(headers), HeadersSize: -1}
	if h.postData != nil {
		r.BodySize = len(*h.postData)
		r.PostData = &harPostData{MimeType: headers.get("Content-Type"), Text: *h.postData, Params: formParams(headers.get("Content-Type"), *h.postData)}
	}
	return r
}

// harResponse returns the hop's answer; an empty one with the error of a
// request that had none.
func (h *hop) harResponse() harResponse {
	r := harResponse{Headers: []harNV{}, Cookies: []harCookie{}, Content: harContent{MimeType: "x-unknown"}, HeadersSize: -1, BodySize: -1}
	if h.failure != "" {
		r.Error = &h.failure
	}
	resp := h.response
	if resp == nil {
		return r
	}
	headers := h.respHeaders
	if len(headers) == 0 {
		headers = resp.Headers
	}
	r.Status, r.StatusText, r.HTTPVersion = resp.Status, resp.StatusText, httpVersion(resp)
	r.Headers, r.Cookies, r.RedirectURL = nonNil(headers), responseCookies(headers), headers.get("Location")
	r.Content = h.content()
	r.TransferSize = int(resp.EncodedDataLength)
	if h.respHeadersText != "" {
		r.HeadersSize = len(h.respHeadersText)
		r.BodySize = r.TransferSize - r.HeadersSize
	}
	if h.cached() || resp.Status == http.StatusNotModified {
		r.BodySize = 0
	}
	return r
}

// content returns the answer's body as the browser gave it.
func (h *hop) content() harContent {
	c := harContent{Size: h.size, MimeType: cmp.Or(h.response.MimeType, "x-unknown")}
	if b := h.body; b != nil {
		c.Text = b.Body
		if b.Base64Encoded {
			c.Encoding = "base64"
		}
	}
	return c
}

// entry returns the socket as a HAR entry: its handshake, and its
// messages.
func (s *socket) entry() harEntry {
	frames := slices.Clone(s.frames)
	if frames == nil {
		frames = []wsMessage{}
	}
	e := harEntry{Initiator: s.initiat, ResourceType: "websocket", Messages: &frames, Pageref: s.page,
		StartedDateTime: wallTime(s.wall), wall: s.wall}
	e.Request = harRequest{Method: http.MethodGet, URL: s.url, HTTPVersion: "HTTP/1.1", Headers: nonNil(s.request),
		QueryString: query(s.url), Cookies: requestCookies(s.request), HeadersSize: -1}
	h := &hop{response: s.response}
	e.Response = h.harResponse()
	respTime, end := -1.0, -1.0
	if s.response != nil {
		respTime = s.respTime
		e.ServerIPAddress = strings.Trim(s.response.RemoteIPAddress, "[]")
	}
	if s.end != 0 {
		end = s.end
	}
	e.Timings = timings(s.issue, respTime, end, nil)
	e.Time = e.Timings.total()
	return e
}

// httpVersion names the protocol of an answer as HAR does.
func httpVersion(r *cdpResponse) string {
	if r == nil {
		return ""
	}
	switch r.Protocol {
	case "h2":
		return "HTTP/2.0"
	case "h3":
		return "HTTP/3.0"
	case "":
		return "HTTP/1.1"
	}
	return strings.ToUpper(r.Protocol)
}

// nonNil returns h, or an empty list for none: HAR's headers are an array.
func nonNil(h cdpHeaders) []harNV {
	if h == nil {
		return []harNV{}
	}
	return h
}
