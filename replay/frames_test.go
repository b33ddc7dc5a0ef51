package replay_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/thrive-loadtest/thrive/traces"
)

// frameChat is a WebSocket server that gives ids in its replies: a hello
// with a connection token, then for each {"op":"post"} a message id from
// one counter shared by all connections; an edit must name a message of
// its own connection and carry the token. It counts edits by outcome.
type frameChat struct {
	mu     sync.Mutex
	next   int
	owner  map[int]string // message id → the connection token that posted it
	counts map[string]int
}

func (c *frameChat) add(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.counts[name]++
}

func (c *frameChat) get(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts[name]
}

func (c *frameChat) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	up := websocket.Upgrader{}
	conn, err := up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer conn.Close()
	tok := fmt.Sprintf("conn%dtok%d", time.Now().UnixNano()%100000, time.Now().Nanosecond())
	if conn.WriteMessage(websocket.TextMessage, []byte(`0{"hello":true,"ctoken":"`+tok+`"}`)) != nil {
		return
	}
	for {
		_, p, err := conn.ReadMessage()
		if err != nil {
			return
		}
		var m struct {
			Op    string          `json:"op"`
			ID    json.RawMessage `json:"id"`
			Token string          `json:"ctoken"`
		}
		if json.Unmarshal(p, &m) != nil {
			c.add("bad frame")
			continue
		}
		switch m.Op {
		case "post":
			c.mu.Lock()
			c.next++
			id := c.next
			c.owner[id] = tok
			c.counts["posts"]++
			c.mu.Unlock()
			_ = conn.WriteMessage(websocket.TextMessage, []byte(`{"ack":"busy"}`))
			_ = conn.WriteMessage(websocket.TextMessage, []byte(fmt.Sprintf(`{"message":{"id":%d,"text":"hi"}}`, id)))
		case "edit":
			var id int
			_ = json.Unmarshal(m.ID, &id)
			c.mu.Lock()
			ok := c.owner[id] == tok && m.Token == tok
			c.mu.Unlock()
			if ok {
				c.add("edits")
			} else {
				c.add("foreign edits")
			}
			_ = conn.WriteMessage(websocket.TextMessage, []byte(`{"edited":true}`))
		}
	}
}

// TestValuesFromFrames: a socket's server messages give a connection token
// (in a prefixed hello before any message) and message ids (in the second
// frame of a reply); the client's later messages send them back. Replayed
// as 20 users on one server whose ids are shared by all, every edit names
// the user's own message with its own token: the server counts none
// foreign.
func TestValuesFromFrames(t *testing.T) {
	chat := &frameChat{owner: map[int]string{}, counts: map[string]int{}}
	srv := httptest.NewServer(chat)
	defer srv.Close()
	frame := func(client bool, ms int, text string) traces.Frame {
		return traces.Frame{FromClient: client, Offset: time.Duration(ms) * time.Millisecond, Opcode: traces.OpText, Payload: traces.Body{Data: []byte(text)}}
	}
	const tok = "conn4242tok777777"
	ws := &traces.WebSocket{Frames: []traces.Frame{
		frame(false, 1, `0{"hello":true,"ctoken":"`+tok+`"}`),
		frame(true, 10, `{"op":"post","text":"hi"}`),
		frame(false, 11, `{"ack":"busy"}`),
		frame(false, 12, `{"message":{"id":3,"text":"hi"}}`),
		frame(true, 30, `{"op":"post","text":"again"}`),
		frame(false, 31, `{"ack":"busy"}`),
		frame(false, 32, `{"message":{"id":4,"text":"again"}}`),
		frame(true, 50, `{"op":"edit","id":3,"ctoken":"`+tok+`"}`),
		frame(false, 51, `{"edited":true}`),
		frame(true, 70, `{"op":"edit","id":4,"ctoken":"`+tok+`"}`),
		frame(false, 71, `{"edited":true}`),
	}, Close: traces.Close{Offset: 90 * time.Millisecond, Code: 1000}}
	s := &traces.Session{ID: "chat", Profile: "chat", Exchanges: []traces.Exchange{
		{Method: "GET", URL: "/ws", Status: 101, Duration: 90 * time.Millisecond, WebSocket: ws},
	}}
	// Ids are shared: others have posted before these users.
	chat.next = 100
	const users = 20
	_, sink := run(t, srv.URL, []*traces.Session{s}, users, 400*time.Millisecond)
	if chat.get("edits") == 0 || chat.get("foreign edits") > 0 || chat.get("bad frame") > 0 {
		t.Errorf("the server counted %v", chat.counts)
	}
	var replies int
	for _, smp := range sink.samples {
		if strings.HasPrefix(smp.Endpoint, "WS ") {
			replies++
		}
	}
	if replies == 0 {
		t.Errorf("no replies")
	}
}
