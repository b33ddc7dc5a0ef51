package apptest

import (
	"encoding/base64"
	"encoding/json"
	"mime"
	"strings"
	"time"
	"unicode/utf8"
)

// Bodies, read before the page can move on.
//
// Chrome DevTools asks the browser for a response's body only when it
// shows or saves it (Network.getResponseBody), and the renderer holds a
// body no longer than the document that loaded it: once the page has
// navigated on, the browser answers "No resource with given identifier
// found", and a HAR DevTools saves then lacks those bodies (a form page's
// token among them). Playwright's recordHar asks for each body as its
// request finishes, which a navigation can still outrun. The recorder
// keeps every body: it intercepts each answer with the Fetch domain at
// the response stage and reads its body (Fetch.getResponseBody) while the
// browser holds the answer back, so the page has not seen it yet, let
// alone moved on; then lets it go on unchanged (Fetch.continueRequest).
// The network stack never sees an answer from the renderer's memory
// cache, so it is never paused: its body is that of the URL's earlier
// load, which the log saw. Whatever has no body by then is asked of the
// Network domain as its request finishes. A
// WebSocket's handshake is not paused; a redirect is, and has no body.

// intercept makes the browser pause every answer of the page for the
// log to read its body first; before any navigation.
func (n *netLog) intercept() error {
	_, err := n.p.b.call(n.p.session, "Fetch.enable",
		map[string]any{"patterns": []map[string]any{{"urlPattern": "*", "requestStage": "Response"}}}, 30*time.Second)
	return err
}

// requestPaused takes an answer the browser holds back: a goroutine reads
// its body, keeps it by the Network request id for the hop it answers
// (loadingFinished, which can only come after), and lets the answer go
// on, whatever became of the reading.
func (n *netLog) requestPaused(params json.RawMessage) error {
	var e struct {
		RequestID       string     `json:"requestId"` // the interception's id
		NetworkID       string     `json:"networkId"` // Network's request id
		Request         cdpRequest `json:"request"`
		ResponseStatus  int        `json:"responseStatusCode"`
		ResponseError   string     `json:"responseErrorReason"`
		ResponseHeaders []harNV    `json:"responseHeaders"`
	}
	if err := json.Unmarshal(params, &e); err != nil {
		return err
	}
	read := e.NetworkID != "" && e.ResponseError == "" && bodied(e.Request.Method, e.ResponseStatus) && !redirect(e.ResponseStatus, e.ResponseHeaders)
	n.fetches.Go(func() {
		if read {
			var body cdpBody
			if n.ask("Fetch.getResponseBody", e.RequestID, &body) {
				n.mu.Lock()
				n.bodies[e.NetworkID] = &body
				n.mu.Unlock()
			}
		}
		// An error means the request is gone (the page closed or cancelled
		// it): nothing is left to let go.
		_, _ = n.p.b.call(n.p.session, "Fetch.continueRequest", map[string]any{"requestId": e.RequestID}, 30*time.Second)
	})
	return nil
}

// redirect reports an answer the browser follows: a 3xx with a Location.
func redirect(status int, headers []harNV) bool {
	if status < 300 || status > 399 {
		return false
	}
	for _, h := range headers {
		if strings.EqualFold(h.Name, "Location") {
			return true
		}
	}
	return false
}

// takeBody returns the body read of h's answer at the response stage
// (forgetting it), nil if none was: as the Network domain gives it, text
// for a textual resource and base64 for the rest (Fetch gives every body
// in base64).
func (n *netLog) takeBody(h *hop) *cdpBody {
	b := n.bodies[h.id]
	if b == nil {
		return nil
	}
	delete(n.bodies, h.id)
	if !b.Base64Encoded || h.response == nil || !textual(h.kind, h.response.MimeType) {
		return b
	}
	raw, err := base64.StdEncoding.DecodeString(b.Body)
	if err != nil || !utf8.Valid(raw) {
		return b
	}
	return &cdpBody{Body: string(raw)}
}

// textual reports a resource whose body the Network domain gives as text:
// a document, script or style sheet, or one of a text, JSON, JavaScript or
// XML type.
func textual(kind, mimeType string) bool {
	switch kind {
	case "Document", "Script", "Stylesheet":
		return true
	}
	mt, _, err := mime.ParseMediaType(mimeType)
	if err != nil {
		return false
	}
	switch {
	case strings.HasPrefix(mt, "text/"), strings.HasSuffix(mt, "+json"), strings.HasSuffix(mt, "+xml"),
		strings.HasSuffix(mt, "/json"), strings.HasSuffix(mt, "/xml"), strings.HasSuffix(mt, "javascript"), strings.HasSuffix(mt, "ecmascript"):
		return true
	}
	return false
}
