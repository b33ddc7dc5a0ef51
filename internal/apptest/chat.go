package apptest

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// ChatStyle is how a Chat server frames a streamed reply.
type ChatStyle int

// Chat styles.
const (
	// ChatJSON sends {"type":"token","content":"…"} frames, then
	// {"type":"done","usage":{…}}, as most LLM chat backends do.
	ChatJSON ChatStyle = iota
	// ChatText sends each token as a text frame of its own, then [DONE].
	ChatText
)

// Chat is a chat backend whose every reply streams a random number of
// tokens (1 to MaxTokens), as an LLM answers: a WebSocket at /ws/chat and
// server-sent events at /api/stream. It counts from its own side.
type Chat struct {
	URL       string
	Style     ChatStyle
	MaxTokens int
	// MinTokens is the fewest tokens a reply streams: 1 unless set.
	MinTokens int

	Connections atomic.Int64 // WebSockets accepted
	Messages    atomic.Int64 // client messages received
	Replies     atomic.Int64 // replies streamed to their end
	// Overlaps counts messages that came before the reply to the one
	// before was over: a client that did not wait.
	Overlaps atomic.Int64
	Streams  atomic.Int64 // SSE streams served to their end

	mu     sync.Mutex
	perCon []int64 // messages per connection, in the order they closed
}

// NewChat starts a Chat on loopback until the test ends.
func NewChat(tb testing.TB, style ChatStyle) *Chat {
	c := &Chat{Style: style, MaxTokens: 25}
	srv := httptest.NewServer(c)
	tb.Cleanup(srv.Close)
	c.URL = srv.URL
	return c
}

// PerConnection returns how many messages each closed connection carried.
func (c *Chat) PerConnection() []int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]int64(nil), c.perCon...)
}

func (c *Chat) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/ws/chat":
		c.socket(w, r)
	case "/api/stream":
		c.stream(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (c *Chat) tokens() int {
	least := max(c.MinTokens, 1)
	return least + rand.IntN(max(c.MaxTokens-least, 0)+1)
}

func pause() { time.Sleep(time.Duration(500+rand.IntN(1500)) * time.Microsecond) }

func (c *Chat) socket(w http.ResponseWriter, r *http.Request) {
	up := websocket.Upgrader{}
	conn, err := up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer conn.Close()
	c.Connections.Add(1)
	var n int64
	defer func() {
		c.mu.Lock()
		c.perCon = append(c.perCon, n)
		c.mu.Unlock()
	}()
	var received, finished atomic.Int64 // messages read, and replies over
	msgs := make(chan []byte, 16)
	go func() {
		defer close(msgs)
		for {
			_, p, err := conn.ReadMessage()
			if err != nil {
				return
			}
			if received.Add(1) > finished.Load()+1 {
				c.Overlaps.Add(1)
			}
			c.Messages.Add(1)
			msgs <- p
		}
	}()
	for range msgs {
		n++
		k := c.tokens()
		for i := range k {
			pause()
			var frame string
			if c.Style == ChatJSON {
				frame = fmt.Sprintf(`{"type":"token","index":%d,"content":" word%d"}`, i, i)
			} else {
				frame = fmt.Sprintf("word%d ", i)
			}
			if conn.WriteMessage(websocket.TextMessage, []byte(frame)) != nil {
				return
			}
		}
		end := "[DONE]"
		if c.Style == ChatJSON {
			end = fmt.Sprintf(`{"type":"done","usage":{"tokens":%d}}`, k)
		}
		finished.Add(1) // before the client can see the end and send again
		if conn.WriteMessage(websocket.TextMessage, []byte(end)) != nil {
			return
		}
		c.Replies.Add(1)
	}
}

// stream answers server-sent events: a random number of tokens, then
// [DONE], and the end of the answer.
func (c *Chat) stream(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/event-stream")
	fl, _ := w.(http.Flusher)
	for i := range c.tokens() {
		pause()
		fmt.Fprintf(w, "data: {\"content\":\" word%d\"}\n\n", i)
		if fl != nil {
			fl.Flush()
		}
	}
	fmt.Fprint(w, "data: [DONE]\n\n")
	c.Streams.Add(1)
}

// ImpatientChatClient is a user of a Chat who sends a second message as
// soon as the first frame of the reply to the first arrives, then reads
// both replies to their ends.
func ImpatientChatClient(tb testing.TB, base string) {
	tb.Helper()
	conn, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+"/ws/chat", nil)
	if err != nil {
		tb.Fatalf("chat client: %v", err)
	}
	resp.Body.Close()
	defer conn.Close()
	send := func(i int) {
		if err := conn.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, `{"type":"message","text":"question %d"}`, i)); err != nil {
			tb.Fatalf("chat client: %v", err)
		}
	}
	send(0)
	if _, _, err := conn.ReadMessage(); err != nil {
		tb.Fatalf("chat client: %v", err)
	}
	send(1)
	for ends := 0; ends < 2; {
		_, p, err := conn.ReadMessage()
		if err != nil {
			tb.Fatalf("chat client: %v", err)
		}
		if strings.Contains(string(p), `"done"`) || string(p) == "[DONE]" {
			ends++
		}
	}
	_ = conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
	for {
		if _, _, err := conn.ReadMessage(); err != nil {
			return
		}
	}
}

// ChatClient is a user of a Chat: it opens the socket, sends messages each
// after the whole reply to the one before and a think time, and reads one
// SSE stream.
func ChatClient(tb testing.TB, base string, messages int, think time.Duration, style ChatStyle) {
	tb.Helper()
	ws := "ws" + strings.TrimPrefix(base, "http") + "/ws/chat"
	conn, resp, err := websocket.DefaultDialer.Dial(ws, nil)
	if err != nil {
		tb.Fatalf("chat client: %v", err)
	}
	resp.Body.Close()
	for i := range messages {
		if err := conn.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, `{"type":"message","text":"question %d"}`, i)); err != nil {
			tb.Fatalf("chat client: %v", err)
		}
		for {
			_, p, err := conn.ReadMessage()
			if err != nil {
				tb.Fatalf("chat client: %v", err)
			}
			if strings.Contains(string(p), `"done"`) || string(p) == "[DONE]" {
				break
			}
		}
		time.Sleep(think) // the user reads the answer
	}
	_ = conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
	for { // until the server's close
		if _, _, err := conn.ReadMessage(); err != nil {
			break
		}
	}
	conn.Close()
	Do(tb, nil, http.MethodGet, base+"/api/stream", "")
}
