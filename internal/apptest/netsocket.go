package apptest

import (
	"encoding/json"
)

// webSocketCreated begins a socket of the page.
func (n *netLog) webSocketCreated(params json.RawMessage) error {
	var e struct {
		RequestID string          `json:"requestId"`
		URL       string          `json:"url"`
		Initiator json.RawMessage `json:"initiator"`
	}
	if err := json.Unmarshal(params, &e); err != nil {
		return err
	}
	s := &socket{id: e.RequestID, page: n.pageID(), url: e.URL, initiat: e.Initiator}
	n.sockets[e.RequestID] = s
	n.order = append(n.order, s)
	return nil
}

// webSocketRequest gives a socket its handshake's request and the time it
// was issued, by both clocks.
func (n *netLog) webSocketRequest(params json.RawMessage) error {
	var e struct {
		RequestID string  `json:"requestId"`
		Timestamp float64 `json:"timestamp"`
		WallTime  float64 `json:"wallTime"`
		Request   struct {
			Headers cdpHeaders `json:"headers"`
		} `json:"request"`
	}
	if err := json.Unmarshal(params, &e); err != nil {
		return err
	}
	if s := n.sockets[e.RequestID]; s != nil {
		s.issue, s.wall, s.request = e.Timestamp, e.WallTime, e.Request.Headers
	}
	return nil
}

// webSocketResponse gives a socket its handshake's answer. The request's
// headers as they went on the wire come with it, Cookie among them.
func (n *netLog) webSocketResponse(params json.RawMessage) error {
	var e struct {
		RequestID string  `json:"requestId"`
		Timestamp float64 `json:"timestamp"`
		Response  struct {
			cdpResponse
			RequestHeaders cdpHeaders `json:"requestHeaders"`
		} `json:"response"`
	}
	if err := json.Unmarshal(params, &e); err != nil {
		return err
	}
	s := n.sockets[e.RequestID]
	if s == nil {
		return nil
	}
	s.response, s.respTime = &e.Response.cdpResponse, e.Timestamp
	if len(e.Response.RequestHeaders) > 0 {
		s.request = e.Response.RequestHeaders
	}
	return nil
}

// webSocketFrame returns the handler of a frame sent or received: a
// message of kind at its time by the wall clock, as DevTools converts it
// (the socket's wall time of issue plus the time since).
func (n *netLog) webSocketFrame(kind string) func(json.RawMessage) error {
	return func(params json.RawMessage) error {
		var e struct {
			RequestID string  `json:"requestId"`
			Timestamp float64 `json:"timestamp"`
			Response  struct {
				Opcode      int    `json:"opcode"`
				PayloadData string `json:"payloadData"`
			} `json:"response"`
		}
		if err := json.Unmarshal(params, &e); err != nil {
			return err
		}
		if s := n.sockets[e.RequestID]; s != nil {
			s.frames = append(s.frames, wsMessage{Type: kind, Time: s.wallAt(e.Timestamp), Opcode: e.Response.Opcode, Data: e.Response.PayloadData})
		}
		return nil
	}
}

// webSocketError keeps a socket's error as DevTools does: a message of
// type "error".
func (n *netLog) webSocketError(params json.RawMessage) error {
	var e struct {
		RequestID    string  `json:"requestId"`
		Timestamp    float64 `json:"timestamp"`
		ErrorMessage string  `json:"errorMessage"`
	}
	if err := json.Unmarshal(params, &e); err != nil {
		return err
	}
	if s := n.sockets[e.RequestID]; s != nil {
		s.frames = append(s.frames, wsMessage{Type: "error", Time: s.wallAt(e.Timestamp), Opcode: -1, Data: e.ErrorMessage})
	}
	return nil
}

// webSocketClosed ends a socket.
func (n *netLog) webSocketClosed(params json.RawMessage) error {
	var e struct {
		RequestID string  `json:"requestId"`
		Timestamp float64 `json:"timestamp"`
	}
	if err := json.Unmarshal(params, &e); err != nil {
		return err
	}
	if s := n.sockets[e.RequestID]; s != nil {
		s.end = e.Timestamp
	}
	return nil
}

// wallAt returns monotonic time t by the wall clock, in seconds since the
// epoch.
func (s *socket) wallAt(t float64) float64 { return s.wall + t - s.issue }

// pageEvent returns the handler of the page's DOMContentLoaded (load
// false) or load event, which it gives the page loaded last.
func (n *netLog) pageEvent(load bool) func(json.RawMessage) error {
	return func(params json.RawMessage) error {
		var e struct {
			Timestamp float64 `json:"timestamp"`
		}
		if err := json.Unmarshal(params, &e); err != nil {
			return err
		}
		if len(n.pages) == 0 {
			return nil
		}
		pl := n.pages[len(n.pages)-1]
		if load {
			pl.onLoad = e.Timestamp
		} else {
			pl.contentLoad = e.Timestamp
		}
		return nil
	}
}
