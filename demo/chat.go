package demo

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/websocket"
)

// replyWords are what the chat agent's answers are made of.
func replyWords() []string {
	return strings.Fields(`Sure here is a project idea that uses an agent to summarize videos and
		track your learning goals you could start with the search tool then import a repository
		and connect it to a chat workflow for your portfolio`)
}

// tokensFor returns how many tokens the agent streams to answer message.
func tokensFor(message string) int {
	return min(40, max(5, 3+2*len(strings.Fields(message))))
}

// replyTokens returns how many tokens a WebSocket reply streams where the
// build as it is streams n, and counts a reply the tokens scale changed.
func (s *Server) replyTokens(n int) int {
	if s.tokensChanged == nil {
		return n
	}
	m := max(1, int(math.Round(float64(n)*s.cfg.build.tokensScale)))
	if m != n {
		s.tokensChanged.Inc()
	}
	return m
}

// chatMessage is what a client sends: JSON {"message": "..."}, or plain text.
func chatMessage(data []byte) string {
	var in struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(data, &in) == nil && in.Message != "" {
		return in.Message
	}
	return string(data)
}

func (s *Server) chatPost(w http.ResponseWriter, r *http.Request, c *call) {
	var in struct {
		Message string `json:"message"`
	}
	if err := readJSON(r, &in); err != nil || strings.TrimSpace(in.Message) == "" {
		writeJSON(w, http.StatusBadRequest, `{"message":["This field is required."]}`)
		return
	}
	n := tokensFor(in.Message)
	var total time.Duration
	for range n {
		total += s.draw(ClassToken)
	}
	total = c.change.slowed(total)
	c.change.countSlow()
	if !s.sleep(r.Context(), total) {
		s.interrupted(w)
		return
	}
	words := replyWords()
	reply := make([]string, n)
	for i := range reply {
		reply[i] = words[i%len(words)]
	}
	body, _ := json.Marshal(map[string]any{"reply": strings.Join(reply, " "), "tokens": n})
	writeJSONBytes(w, http.StatusOK, body)
}

// chatSocket runs the chat agent over a WebSocket: for each client message
// it streams tokens, then a done message.
//
// One goroutine reads (so pings and closes are always handled) and hands
// messages over; this one writes. gorilla/websocket allows one of each.
func (s *Server) chatSocket(w http.ResponseWriter, r *http.Request, c *call) {
	if c.session == "" {
		writeJSON(w, http.StatusForbidden, `{"detail":"Authentication credentials were not provided."}`)
		return
	}
	// Counted before the 101 goes out, so that a client that has its
	// socket sees it in /metrics; and before the connection is hijacked,
	// while Shutdown still waits for it, so that Serve's wait for sockets
	// cannot begin first.
	s.metrics.websocket.Inc()
	defer s.metrics.websocket.Dec()
	s.sockets.Add(1)
	defer s.sockets.Done()
	conn, err := s.up.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered with an error
	}
	defer conn.Close()
	conn.SetReadLimit(maxBody)

	received, sent := s.metrics.messages.WithLabelValues("received"), s.metrics.messages.WithLabelValues("sent")
	msgs := make(chan string, 8)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		defer close(msgs)
		for {
			_, data, err := conn.ReadMessage()
			if err != nil {
				return
			}
			received.Inc()
			select {
			case msgs <- chatMessage(data):
			case <-s.closing:
				return
			}
		}
	}()
	// Closing the connection is what ends the reader; wait for it.
	defer func() { conn.Close(); <-readDone }()

	words := replyWords()
	buf := make([]byte, 0, 128)
	for {
		var msg string
		var ok bool
		select {
		case msg, ok = <-msgs:
		case <-s.closing:
			_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "server shutting down"), time.Now().Add(time.Second))
			return
		}
		if !ok {
			return
		}
		n := s.replyTokens(tokensFor(msg))
		c.change.countSlow()
		for i := range n {
			if !s.sleep(r.Context(), c.change.slowed(s.draw(ClassToken))) {
				return
			}
			buf = fmt.Appendf(buf[:0], `{"type":"token","index":%d,"content":" %s"}`, i, words[i%len(words)])
			if err := conn.WriteMessage(websocket.TextMessage, buf); err != nil {
				return
			}
			sent.Inc()
		}
		buf = fmt.Appendf(buf[:0], `{"type":"done","tokens":%d}`, n)
		if err := conn.WriteMessage(websocket.TextMessage, buf); err != nil {
			return
		}
		sent.Inc()
	}
}
