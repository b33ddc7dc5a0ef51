package importer

import (
	"errors"
	"fmt"

	"github.com/thrive-loadtest/thrive/capture/wire"
	"github.com/thrive-loadtest/thrive/traces"
)

// errNoHead is a payload that does not begin with a whole HTTP/1.x head.
var errNoHead = errors.New("no HTTP head")

// gorMessage is the HTTP message a payload holds, read as the capture's
// relays read one: its head, and its body without the chunked framing,
// compressed as it was sent.
type gorMessage struct {
	head  *wire.Head
	body  []byte
	ended bool  // the message ended inside the payload
	extra int   // bytes after its end
	bad   error // what was wrong with its body's framing
}

// readGorMessage reads the request (request set) or the response to a
// request of method that data holds.
func readGorMessage(data []byte, request bool, method string) (gorMessage, error) {
	var m gorMessage
	s := wire.MsgStream{Request: request}
	if !request {
		s.Expect(method)
	}
	s.OnHead = func(h *wire.Head, _ []byte) bool {
		m.head = h // after an interim answer (100 Continue), the final one
		return false
	}
	s.OnData = func(b []byte) { m.body = append(m.body, b...) }
	s.OnRaw = func(b []byte) {
		if m.head != nil && m.head.Status == 101 {
			m.extra += len(b) // frames the server sent with its 101
		}
	}
	s.OnEnd = func() bool {
		m.ended = true
		return true
	}
	n, err := s.Feed(data)
	if m.head == nil || m.head.Status > 0 && m.head.Status < 200 && m.head.Status != 101 {
		if err == nil {
			err = errNoHead
		}
		return m, err
	}
	switch {
	case m.head.Status == 101:
		m.ended = true
	case err != nil:
		m.bad = err
	case m.ended:
		m.extra = len(data) - n
	default:
		// The payload ends the message only if it lasts until the close.
		_ = s.Closed()
	}
	return m, nil
}

// gorExchange makes an exchange of a request's payload and its response's,
// with no times. A message that does not end inside its payload (GoReplay
// cut it at --copy-buffer-size) or has bytes after its end is kept, and
// Error says so; a payload that is not HTTP is an error.
func gorExchange(reqData, respData []byte) (*traces.Exchange, error) {
	req, err := readGorMessage(reqData, true, "")
	if err != nil {
		return nil, fmt.Errorf("request: %w", err)
	}
	resp, err := readGorMessage(respData, false, req.head.Method)
	if err != nil {
		return nil, fmt.Errorf("response: %w", err)
	}
	h, rh := req.head, resp.head
	ex := &traces.Exchange{
		Method: h.Method, URL: h.Target, Host: h.Host, ReqHeader: h.Fields, ReqBody: traces.Body{Data: req.body},
		Status: rh.Status, RespHeader: rh.Fields, RespBody: traces.Body{Data: resp.body},
	}
	switch {
	case req.bad != nil:
		ex.Error = "gor: malformed request: " + req.bad.Error()
	case resp.bad != nil:
		ex.Error = "gor: malformed response: " + resp.bad.Error()
	case !req.ended:
		ex.Error = "gor: the request is cut short (GoReplay cuts a message at its copy buffer's size)"
	case !resp.ended:
		ex.Error = "gor: the response is cut short (GoReplay cuts a message at its copy buffer's size)"
	case req.extra > 0:
		ex.Error = fmt.Sprintf("gor: %d bytes after the request, not read", req.extra)
	case resp.extra > 0 && rh.Status == 101:
		ex.Error = fmt.Sprintf("gor: %d bytes of WebSocket frames with the 101, not read", resp.extra)
	case resp.extra > 0:
		ex.Error = fmt.Sprintf("gor: %d bytes after the response, not read", resp.extra)
	}
	if rh.Status == 101 {
		// GoReplay writes no frames: a socket with none, which a replay
		// opens and closes.
		ex.WebSocket = &traces.WebSocket{}
	}
	return ex, nil
}
