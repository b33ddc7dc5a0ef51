package apptest

import (
	"bytes"
	"cmp"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/websocket"
)

// cableConn is one Action Cable connection: its reader is the handler's
// goroutine; its writer drains out.
type cableConn struct {
	a    *Cable
	ws   *websocket.Conn
	uid  int
	out  chan []byte          // frames to write; nil: the close frame
	quit chan struct{}        // closed as the reader ends
	subs map[string]*cableSub // identifier → subscription; the reader's
}

// cableSub is a DocChannel subscription, streaming its document.
type cableSub struct {
	c          *cableConn
	identifier string
	doc        int
}

// heartbeat is the server's beat timer: a ping to every open connection.
func (a *Cable) heartbeat(done chan struct{}) {
	defer close(done)
	t := time.NewTicker(cableBeat)
	defer t.Stop()
	for {
		select {
		case <-a.stop:
			return
		case now := <-t.C:
			msg := cableEncode(struct {
				Type    string `json:"type"`
				Message int64  `json:"message"`
			}{"ping", now.Unix()})
			a.mu.Lock()
			for c := range a.conns {
				c.send(msg)
			}
			a.mu.Unlock()
		}
	}
}

func cableEncode(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

// send queues a frame; a connection too slow to take it loses it.
func (c *cableConn) send(msg []byte) {
	select {
	case c.out <- msg:
	case <-c.quit:
	default:
		c.a.Counts.Add("cable dropped", 1)
	}
}

func (c *cableConn) writer(done chan struct{}) {
	defer close(done)
	for {
		select {
		case <-c.quit:
			return
		case msg := <-c.out:
			_ = c.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if msg == nil { // websocket.close: 1000, no reason
				_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
				return
			}
			if c.ws.WriteMessage(websocket.TextMessage, msg) != nil {
				return
			}
		}
	}
}

// serveCable is ActionCable::Connection::Base#process and what follows.
func (a *Cable) serveCable(w http.ResponseWriter, r *http.Request) {
	if !websocket.IsWebSocketUpgrade(r) || r.Header.Get("Origin") != "http://"+r.Host { // respond_to_invalid_request
		a.Counts.Add("404 cable", 1)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, "Page not found")
		return
	}
	_, uid := a.cookieUser(r)
	ws, err := a.upgrader.Upgrade(w, r, nil)
	if err != nil {
		a.Counts.Add("404 cable", 1)
		return
	}
	c := &cableConn{a: a, ws: ws, uid: uid, out: make(chan []byte, 256), quit: make(chan struct{}), subs: map[string]*cableSub{}}
	wrote := make(chan struct{})
	go c.writer(wrote)
	go func() { // the server's end closes every connection
		select {
		case <-a.stop:
			ws.Close()
		case <-c.quit:
		}
	}()
	defer func() {
		a.mu.Lock()
		delete(a.conns, c)
		for _, s := range c.subs { // unsubscribe_from_all
			delete(a.streams[s.doc], s)
		}
		a.mu.Unlock()
		close(c.quit)
		<-wrote
		ws.Close()
	}()
	if uid == 0 { // reject_unauthorized_connection
		a.Counts.Add("cable unauthorized", 1)
		c.send(cableEncode(struct {
			Type      string `json:"type"`
			Reason    string `json:"reason"`
			Reconnect bool   `json:"reconnect"`
		}{"disconnect", "unauthorized", false}))
		c.send(nil)
		_ = ws.SetReadDeadline(time.Now().Add(2 * time.Second))
		for { // until the client's close frame
			if _, _, err := ws.ReadMessage(); err != nil {
				return
			}
		}
	}
	c.send([]byte(`{"type":"welcome"}`))
	a.mu.Lock()
	a.conns[c] = true
	a.mu.Unlock()
	for {
		kind, msg, err := ws.ReadMessage()
		if err != nil {
			return
		}
		if kind == websocket.TextMessage {
			c.command(msg)
		} else {
			a.Counts.Add("cable bad command", 1)
		}
	}
}

// cableTyped is a frame of the connection's own: a welcome, or a
// subscription's confirmation or rejection.
type cableTyped struct {
	Identifier string `json:"identifier,omitempty"`
	Type       string `json:"type"`
}

// cableMessage is what a channel transmits.
type cableMessage struct {
	Identifier string `json:"identifier"`
	Message    any    `json:"message"`
}

// command is Subscriptions#execute_command.
func (c *cableConn) command(msg []byte) {
	a := c.a
	var cmd struct {
		Command    string          `json:"command"`
		Identifier json.RawMessage `json:"identifier"`
		Data       json.RawMessage `json:"data"`
	}
	var id string
	if json.Unmarshal(msg, &cmd) != nil || json.Unmarshal(cmd.Identifier, &id) != nil {
		a.Counts.Add("cable bad command", 1)
		return
	}
	sub := c.subs[id]
	switch {
	case cmd.Command == "subscribe":
		c.subscribe(id)
	case cmd.Command != "unsubscribe" && cmd.Command != "message":
		a.Counts.Add("cable bad command", 1) // Received unrecognized command
	case sub == nil:
		a.Counts.Add("cable unknown subscription", 1) // Unable to find subscription with identifier
	case cmd.Command == "unsubscribe":
		a.mu.Lock()
		delete(a.streams[sub.doc], sub)
		a.mu.Unlock()
		delete(c.subs, id)
		a.Counts.Add("unsubscriptions", 1)
	default:
		var data string
		if json.Unmarshal(cmd.Data, &data) != nil {
			a.Counts.Add("cable bad command", 1)
			return
		}
		sub.perform(data)
	}
}

// subscribe is Subscriptions#add (the identifier decoded, a second
// subscribe ignored, the channel class found) and DocChannel#subscribed:
// reject unless the document is the user's, else stream_for it.
func (c *cableConn) subscribe(id string) {
	a := c.a
	var params map[string]any
	dec := json.NewDecoder(strings.NewReader(id))
	switch dec.UseNumber(); {
	case dec.Decode(&params) != nil || params == nil:
		a.Counts.Add("cable bad command", 1)
		return
	case c.subs[id] != nil: // already subscribed: ignored
		a.Counts.Add("cable duplicate subscription", 1)
		return
	case params["channel"] != "DocChannel": // Subscription class not found
		a.Counts.Add("cable bad command", 1)
		return
	}
	doc := 0
	switch v := params["doc_id"].(type) { // find_by(id:) casts a string
	case json.Number:
		n, err := v.Int64()
		doc = map[bool]int{true: int(n)}[err == nil]
	case string:
		doc, _ = strconv.Atoi(v[:len(v)-len(strings.TrimLeft(v, "0123456789"))])
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if d := a.docs[doc]; d == nil || d.owner != c.uid {
		a.Counts.Add("rejected subscriptions", 1)
		owner := -1
		if d != nil {
			owner = d.owner
		}
		a.tb.Logf("cable app: user %d (%s) refused a subscription to %s (its owner %d, -1 if none)", c.uid, a.names[c.uid], id, owner)
		c.send(cableEncode(cableTyped{id, "reject_subscription"}))
		return
	}
	s := &cableSub{c: c, identifier: id, doc: doc}
	c.subs[id] = s
	if a.streams[doc] == nil {
		a.streams[doc] = map[*cableSub]bool{}
	}
	a.streams[doc][s] = true
	a.Counts.Add("subscriptions", 1)
	c.send(cableEncode(cableTyped{id, "confirm_subscription"}))
}

// perform is Channel::Base#perform_action: the action edit, with the
// document's current version.
func (s *cableSub) perform(data string) {
	a := s.c.a
	var p struct {
		Action  string          `json:"action"`
		Body    *string         `json:"body"`
		Version json.RawMessage `json:"version"`
	}
	dec := json.NewDecoder(strings.NewReader(data))
	if dec.Decode(&p) != nil || cmp.Or(p.Action, "receive") != "edit" || p.Body == nil { // Unable to process
		a.Counts.Add("cable bad command", 1)
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	d := a.docs[s.doc]
	if v, err := strconv.Atoi(string(bytes.TrimSpace(p.Version))); err != nil || v != d.version {
		a.Counts.Add("stale version", 1)
		s.c.send(cableEncode(cableMessage{s.identifier, struct {
			Op      string `json:"op"`
			Version int    `json:"version"`
		}{"conflict", d.version}}))
		return
	}
	d.body, d.version, d.updated = *p.Body, d.version+1, time.Now().UTC()
	a.Counts.Add("edits", 1)
	edited := struct {
		Op      string `json:"op"`
		Version int    `json:"version"`
		Body    string `json:"body"`
	}{"edited", d.version, d.body}
	for sub := range a.streams[s.doc] { // DocChannel.broadcast_to(doc, ...)
		sub.c.send(cableEncode(cableMessage{sub.identifier, edited}))
	}
}
