package apptest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// netLog is a page's network traffic as the DevTools protocol's Network
// events tell it, kept until the page writes it as a HAR (Page.HAR). The
// browser's reader hands it events (on), which never block: the bodies it
// asks for are fetched by goroutines of its own, which HAR waits for.
type netLog struct {
	p     *Page
	frame string // the page's main frame: its target's id

	mu      sync.Mutex
	changed chan struct{} // closed and made afresh at every change, for HAR's wait
	byID    map[string][]*hop
	hops    []*hop // in order of issue
	// reqExtra and respExtra are the ExtraInfo events of each request id,
	// in order: the raw headers of each of its hops that went to the
	// network, which come before or after the hop's other events.
	reqExtra  map[string][]reqExtraInfo
	respExtra map[string][]respExtraInfo
	sockets   map[string]*socket
	order     []*socket
	pages     []*harPageLoad
	// bodies are the bodies read at the response stage (netfetch.go), by
	// request id, until the request's hop that they answer is over.
	bodies map[string]*cdpBody
	// byURL is the body of each URL's latest load, which an answer from
	// the memory cache repeats: the renderer's memory cache is its own,
	// and the page's (a context of its own) was empty when it began, so
	// the resource it holds is one the log saw loaded.
	byURL    map[string]*cdpBody
	fetching int      // body fetches under way
	lost     []string // the URLs whose bodies the browser no longer held
	fetches  sync.WaitGroup
}

// hop is one request of a request id: the first, or one a redirect made.
type hop struct {
	id       string
	page     string // the page it belonged to: "page_N", "" if none
	kind     string // the resource type, as the protocol names it (Document, XHR, Fetch, ...)
	request  cdpRequest
	initiat  json.RawMessage
	issue    float64 // monotonic seconds
	wall     float64 // seconds since the epoch at issue
	response *cdpResponse
	respTime float64 // monotonic seconds; 0 until answered
	end      float64 // monotonic seconds; 0 until over
	failure  string  // errorText of a failed request
	memory   bool    // answered from the memory cache
	size     int     // bytes of the body, decoded
	postData *string // the body sent, when the protocol gave it
	body     *cdpBody
	// reqHeaders and respHeaders are the raw headers of the
	// ExtraInfo events, when they came; cookies those the request carried.
	reqHeaders, respHeaders cdpHeaders
	respHeadersText         string
}

// cdpRequest is a Network.Request.
type cdpRequest struct {
	URL             string     `json:"url"`
	Method          string     `json:"method"`
	Headers         cdpHeaders `json:"headers"`
	PostData        *string    `json:"postData"`
	HasPostData     bool       `json:"hasPostData"`
	PostDataEntries []struct {
		Bytes string `json:"bytes"`
	} `json:"postDataEntries"`
}

// cdpResponse is a Network.Response.
type cdpResponse struct {
	URL               string     `json:"url"`
	Status            int        `json:"status"`
	StatusText        string     `json:"statusText"`
	Headers           cdpHeaders `json:"headers"`
	MimeType          string     `json:"mimeType"`
	ConnectionID      float64    `json:"connectionId"`
	RemoteIPAddress   string     `json:"remoteIPAddress"`
	RemotePort        int        `json:"remotePort"`
	FromDiskCache     bool       `json:"fromDiskCache"`
	FromPrefetchCache bool       `json:"fromPrefetchCache"`
	EncodedDataLength float64    `json:"encodedDataLength"`
	Timing            *cdpTiming `json:"timing"`
	Protocol          string     `json:"protocol"`
}

// cdpTiming is a Network.ResourceTiming: requestTime in monotonic seconds,
// the rest in milliseconds from it, -1 for a phase that did not happen.
type cdpTiming struct {
	RequestTime       float64 `json:"requestTime"`
	ProxyStart        float64 `json:"proxyStart"`
	ProxyEnd          float64 `json:"proxyEnd"`
	DNSStart          float64 `json:"dnsStart"`
	DNSEnd            float64 `json:"dnsEnd"`
	ConnectStart      float64 `json:"connectStart"`
	ConnectEnd        float64 `json:"connectEnd"`
	SSLStart          float64 `json:"sslStart"`
	SSLEnd            float64 `json:"sslEnd"`
	SendStart         float64 `json:"sendStart"`
	SendEnd           float64 `json:"sendEnd"`
	ReceiveHeadersEnd float64 `json:"receiveHeadersEnd"`
}

// cdpBody is a response's body as Network.getResponseBody gives it.
type cdpBody struct {
	Body          string `json:"body"`
	Base64Encoded bool   `json:"base64Encoded"`
}

// reqExtraInfo and respExtraInfo are Network.requestWillBeSentExtraInfo
// and Network.responseReceivedExtraInfo: the headers as they went on the
// wire, Cookie and Set-Cookie among them.
type reqExtraInfo struct {
	Headers cdpHeaders `json:"headers"`
}

type respExtraInfo struct {
	Headers     cdpHeaders `json:"headers"`
	StatusCode  int        `json:"statusCode"`
	HeadersText string     `json:"headersText"`
}

// socket is a WebSocket the page opened.
type socket struct {
	id       string
	page     string
	url      string
	initiat  json.RawMessage
	issue    float64
	wall     float64
	request  cdpHeaders
	response *cdpResponse
	respTime float64
	end      float64 // 0 while open
	frames   []wsMessage
}

// wsMessage is an entry of _webSocketMessages: "send", "receive" or
// "error", when in seconds since the epoch, the opcode, and the payload
// (base64 unless it is text, as the protocol gives it).
type wsMessage struct {
	Type   string  `json:"type"`
	Time   float64 `json:"time"`
	Opcode int     `json:"opcode"`
	Data   string  `json:"data"`
}

// harPageLoad is a document the page's main frame loaded: HAR's page.
type harPageLoad struct {
	id                  string
	url                 string
	start, wall         float64
	contentLoad, onLoad float64 // monotonic seconds; 0 if it did not come
}

// cdpHeaders are a protocol Headers object in its order, a value holding
// several lines (repeated headers) split into one pair a line, as DevTools
// lists them.
type cdpHeaders []harNV

// UnmarshalJSON reads the object's members in order.
func (h *cdpHeaders) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(strings.NewReader(string(b)))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return fmt.Errorf("headers: not an object: %s", b)
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		name, _ := tok.(string)
		var v string
		if err := dec.Decode(&v); err != nil {
			return fmt.Errorf("header %s: %w", name, err)
		}
		for line := range strings.SplitSeq(v, "\n") {
			*h = append(*h, harNV{Name: name, Value: line})
		}
	}
	return nil
}

// get returns the first value of name, "" if none.
func (h cdpHeaders) get(name string) string {
	for _, p := range h {
		if strings.EqualFold(p.Name, name) {
			return p.Value
		}
	}
	return ""
}

// record makes p keep its network traffic: it listens to the page's
// events, enables the Network and Page domains and intercepts the page's
// answers to read their bodies (netfetch.go), before any navigation.
func (p *Page) record(target string) error {
	p.net = &netLog{p: p, frame: target, changed: make(chan struct{}), byID: map[string][]*hop{},
		reqExtra: map[string][]reqExtraInfo{}, respExtra: map[string][]respExtraInfo{}, sockets: map[string]*socket{}, bodies: map[string]*cdpBody{}, byURL: map[string]*cdpBody{}}
	p.b.mu.Lock()
	p.b.listeners[p.session] = p.net.on
	p.b.mu.Unlock()
	for _, m := range []struct {
		method string
		params any
	}{
		{"Network.enable", map[string]any{"maxTotalBufferSize": 256 << 20, "maxResourceBufferSize": 64 << 20, "maxPostDataSize": 1 << 20}},
		{"Page.enable", map[string]any{}},
	} {
		if _, err := p.b.call(p.session, m.method, m.params, 30*time.Second); err != nil {
			return err
		}
	}
	return p.net.intercept()
}

// on takes one event of the page. It runs on the browser's reader, so it
// never waits for the browser.
func (n *netLog) on(method string, params json.RawMessage) {
	handlers := map[string]func(json.RawMessage) error{
		"Network.requestWillBeSent":                  n.requestWillBeSent,
		"Network.requestWillBeSentExtraInfo":         n.requestExtra,
		"Network.responseReceived":                   n.responseReceived,
		"Network.responseReceivedExtraInfo":          n.responseExtra,
		"Network.requestServedFromCache":             n.servedFromCache,
		"Network.dataReceived":                       n.dataReceived,
		"Network.loadingFinished":                    n.loadingFinished,
		"Network.loadingFailed":                      n.loadingFailed,
		"Network.webSocketCreated":                   n.webSocketCreated,
		"Network.webSocketWillSendHandshakeRequest":  n.webSocketRequest,
		"Network.webSocketHandshakeResponseReceived": n.webSocketResponse,
		"Network.webSocketFrameSent":                 n.webSocketFrame("send"),
		"Network.webSocketFrameReceived":             n.webSocketFrame("receive"),
		"Network.webSocketFrameError":                n.webSocketError,
		"Network.webSocketClosed":                    n.webSocketClosed,
		"Page.domContentEventFired":                  n.pageEvent(false),
		"Page.loadEventFired":                        n.pageEvent(true),
		"Fetch.requestPaused":                        n.requestPaused,
	}
	h := handlers[method]
	if h == nil {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := h(params); err != nil {
		n.p.b.tb.Errorf("devtools: %s: %v", method, err)
	}
	close(n.changed)
	n.changed = make(chan struct{})
}

// current returns the latest hop of request id, nil if none.
func (n *netLog) current(id string) *hop {
	hs := n.byID[id]
	if len(hs) == 0 {
		return nil
	}
	return hs[len(hs)-1]
}

// requestWillBeSent begins a hop: a new request, or the next hop of a
// redirected one, whose previous hop the redirect's answer ends. A
// document of the main frame that is not a redirect begins a page.
func (n *netLog) requestWillBeSent(params json.RawMessage) error {
	var e struct {
		RequestID        string          `json:"requestId"`
		LoaderID         string          `json:"loaderId"`
		Request          cdpRequest      `json:"request"`
		Timestamp        float64         `json:"timestamp"`
		WallTime         float64         `json:"wallTime"`
		Initiator        json.RawMessage `json:"initiator"`
		RedirectResponse *cdpResponse    `json:"redirectResponse"`
		Type             string          `json:"type"`
		FrameID          string          `json:"frameId"`
	}
	if err := json.Unmarshal(params, &e); err != nil {
		return err
	}
	if prev := n.current(e.RequestID); prev != nil && e.RedirectResponse != nil {
		prev.response, prev.respTime, prev.end = e.RedirectResponse, e.Timestamp, e.Timestamp
	} else if e.Type == "Document" && e.FrameID == n.frame && e.RequestID == e.LoaderID {
		n.pages = append(n.pages, &harPageLoad{id: fmt.Sprintf("page_%d", len(n.pages)+1), url: e.Request.URL, start: e.Timestamp, wall: e.WallTime})
	}
	h := &hop{id: e.RequestID, page: n.pageID(), kind: e.Type, request: e.Request, initiat: e.Initiator, issue: e.Timestamp, wall: e.WallTime}
	if body, ok := postData(&e.Request); ok {
		h.postData = &body
	}
	n.byID[e.RequestID] = append(n.byID[e.RequestID], h)
	n.hops = append(n.hops, h)
	return nil
}

// pageID returns the id of the page loaded last, "" if none.
func (n *netLog) pageID() string {
	if len(n.pages) == 0 {
		return ""
	}
	return n.pages[len(n.pages)-1].id
}

// postData returns the body of r as the event gave it: its entries (bytes
// in base64) or its text; false if the event did not hold it.
func postData(r *cdpRequest) (string, bool) {
	if len(r.PostDataEntries) > 0 {
		var b []byte
		for _, e := range r.PostDataEntries {
			part, err := base64.StdEncoding.DecodeString(e.Bytes)
			if err != nil {
				return "", false
			}
			b = append(b, part...)
		}
		return string(b), true
	}
	if r.PostData != nil {
		return *r.PostData, true
	}
	return "", false
}

// requestExtra keeps the raw headers of a request's next hop.
func (n *netLog) requestExtra(params json.RawMessage) error {
	var e struct {
		RequestID string `json:"requestId"`
		reqExtraInfo
	}
	if err := json.Unmarshal(params, &e); err != nil {
		return err
	}
	n.reqExtra[e.RequestID] = append(n.reqExtra[e.RequestID], e.reqExtraInfo)
	return nil
}

// responseExtra keeps the raw headers of the answer to a request's next
// hop.
func (n *netLog) responseExtra(params json.RawMessage) error {
	var e struct {
		RequestID string `json:"requestId"`
		respExtraInfo
	}
	if err := json.Unmarshal(params, &e); err != nil {
		return err
	}
	n.respExtra[e.RequestID] = append(n.respExtra[e.RequestID], e.respExtraInfo)
	return nil
}

// responseReceived gives the current hop its answer. DevTools takes the
// earlier of the event's time and the timing's end of headers.
func (n *netLog) responseReceived(params json.RawMessage) error {
	var e struct {
		RequestID string      `json:"requestId"`
		Timestamp float64     `json:"timestamp"`
		Response  cdpResponse `json:"response"`
	}
	if err := json.Unmarshal(params, &e); err != nil {
		return err
	}
	h := n.current(e.RequestID)
	if h == nil {
		return nil // a request from before the recording
	}
	h.response, h.respTime = &e.Response, e.Timestamp
	if t := e.Response.Timing; t != nil && t.ReceiveHeadersEnd >= 0 {
		h.respTime = min(h.respTime, t.RequestTime+t.ReceiveHeadersEnd/1000)
	}
	return nil
}

// servedFromCache marks the current hop as answered from the memory
// cache.
func (n *netLog) servedFromCache(params json.RawMessage) error {
	var e struct {
		RequestID string `json:"requestId"`
	}
	if err := json.Unmarshal(params, &e); err != nil {
		return err
	}
	if h := n.current(e.RequestID); h != nil {
		h.memory = true
	}
	return nil
}

// dataReceived adds to the size of the current hop's body.
func (n *netLog) dataReceived(params json.RawMessage) error {
	var e struct {
		RequestID  string `json:"requestId"`
		DataLength int    `json:"dataLength"`
	}
	if err := json.Unmarshal(params, &e); err != nil {
		return err
	}
	if h := n.current(e.RequestID); h != nil {
		h.size += e.DataLength
	}
	return nil
}

// loadingFinished ends the current hop and fetches its bodies.
func (n *netLog) loadingFinished(params json.RawMessage) error {
	var e struct {
		RequestID string  `json:"requestId"`
		Timestamp float64 `json:"timestamp"`
	}
	if err := json.Unmarshal(params, &e); err != nil {
		return err
	}
	h := n.current(e.RequestID)
	if h == nil {
		return nil
	}
	h.end = e.Timestamp
	n.fetch(h)
	return nil
}

// loadingFailed ends the current hop with its error, and fetches the body
// it sent.
func (n *netLog) loadingFailed(params json.RawMessage) error {
	var e struct {
		RequestID string  `json:"requestId"`
		Timestamp float64 `json:"timestamp"`
		ErrorText string  `json:"errorText"`
	}
	if err := json.Unmarshal(params, &e); err != nil {
		return err
	}
	h := n.current(e.RequestID)
	if h == nil {
		return nil
	}
	h.end, h.failure = e.Timestamp, e.ErrorText
	n.fetch(h)
	return nil
}

// fetch gives h its response body, when its answer has one: the body
// read at the response stage, or for an answer from the memory cache the
// body of the URL's earlier load. It asks the browser for the body it
// still lacks and for the body h sent (when the event did not hold it), in
// a goroutine: the browser answers on the reader that called on.
func (n *netLog) fetch(h *hop) {
	wantPost := h.request.HasPostData && h.postData == nil
	wantBody := h.failure == "" && h.response != nil && bodied(h.request.Method, h.response.Status)
	if b := n.takeBody(h); b != nil && wantBody {
		h.body = b
	} else if wantBody && h.memory {
		h.body = n.byURL[h.request.URL]
	}
	if h.body != nil {
		n.byURL[h.request.URL], wantBody = h.body, false
	}
	if !wantPost && !wantBody {
		return
	}
	n.fetching++
	n.fetches.Go(func() {
		var body cdpBody
		var post struct {
			PostData string `json:"postData"`
		}
		bodyOK := wantBody && n.ask("Network.getResponseBody", h.id, &body)
		postOK := wantPost && n.ask("Network.getRequestPostData", h.id, &post)
		n.mu.Lock()
		defer n.mu.Unlock()
		if bodyOK {
			h.body = &body
			n.byURL[h.request.URL] = h.body
		} else if wantBody {
			n.lost = append(n.lost, h.request.URL)
		}
		if postOK {
			h.postData = &post.PostData
		}
		n.fetching--
		close(n.changed)
		n.changed = make(chan struct{})
	})
}

// ask calls method for request id into v, and reports whether the browser
// had it (a body the browser no longer holds is left out, as DevTools
// leaves it out).
func (n *netLog) ask(method, id string, v any) bool {
	res, err := n.p.b.call(n.p.session, method, map[string]any{"requestId": id}, 30*time.Second)
	return err == nil && json.Unmarshal(res, v) == nil
}

// bodied reports whether an answer with status to a request of method has
// a body.
func bodied(method string, status int) bool {
	return status >= http.StatusOK && status != http.StatusNoContent && status != http.StatusNotModified && method != http.MethodHead
}
