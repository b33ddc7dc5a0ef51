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
	"github.com/thrive-loadtest/thrive/internal/apptest"
	"github.com/thrive-loadtest/thrive/report"
	"github.com/thrive-loadtest/thrive/traces"
)

// upgradeFlush is an Engine.IO-like server whose event goes to whichever
// transport can take it: the handshake gives a sid and makes the
// session's room; the room comes in a welcome event, in the poll when
// recorded, and on the WebSocket as soon as it is upgraded ("5") when
// live, the poll then answering a noop ("6") once the upgrade is done. A
// join names the room: another session's is refused.
type upgradeFlush struct {
	live bool
	mu   sync.Mutex
	n    int
	sess map[string]*flushSess
	// counts by outcome: joined, foreign room, unknown sid
	counts apptest.Counts
}

type flushSess struct {
	room     string
	upgraded chan struct{}
}

func (s *upgradeFlush) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sid := r.URL.Query().Get("sid")
	s.mu.Lock()
	if sid == "" {
		s.n++
		sid = fmt.Sprintf("sid%017d", s.n*7919)
		s.sess[sid] = &flushSess{room: fmt.Sprintf("%08x-4e1a-4b2c-9d3e-%012x", s.n*104729, s.n*15485863), upgraded: make(chan struct{})}
		s.mu.Unlock()
		fmt.Fprintf(w, `0{"sid":"%s","upgrades":["websocket"]}`, sid)
		return
	}
	se := s.sess[sid]
	s.mu.Unlock()
	if se == nil {
		s.counts.Add("unknown sid", 1)
		http.Error(w, `{"code":1,"message":"Session ID unknown"}`, http.StatusBadRequest)
		return
	}
	welcome := fmt.Sprintf(`42["welcome",{"room":"%s"}]`, se.room)
	if r.URL.Query().Get("transport") == "polling" {
		if !s.live {
			fmt.Fprint(w, welcome)
			return
		}
		select {
		case <-se.upgraded: // the event went on the socket
			fmt.Fprint(w, "6")
		case <-r.Context().Done():
		}
		return
	}
	conn, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer conn.Close()
	for {
		_, p, err := conn.ReadMessage()
		if err != nil {
			return
		}
		switch msg := string(p); {
		case msg == "5":
			if s.live {
				_ = conn.WriteMessage(websocket.TextMessage, []byte(welcome))
				close(se.upgraded)
			}
		case strings.HasPrefix(msg, "42"):
			var args []string
			if json.Unmarshal(p[2:], &args) != nil || len(args) != 2 {
				s.counts.Add("bad packet", 1)
				continue
			}
			if args[1] != se.room {
				s.counts.Add("foreign room", 1)
				_ = conn.WriteMessage(websocket.TextMessage, []byte(`43[{"error":"forbidden"}]`))
				continue
			}
			s.counts.Add("joined", 1)
			_ = conn.WriteMessage(websocket.TextMessage, []byte(`43[{"ok":true}]`))
		}
	}
}

// TestValueFlushedOnTheUpgrade: a value recorded in a poll begun after the
// socket opened comes, live, on the socket before that poll is even sent,
// and the poll lacks it: the socket's message that sends it finds it
// there. The server refuses no join, and thrive fails nothing.
func TestValueFlushedOnTheUpgrade(t *testing.T) {
	srv := &upgradeFlush{sess: map[string]*flushSess{}}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	const room = "0001e0c2-4e1a-4b2c-9d3e-00000ec4b33a"
	const sid = "sid00000000000007919"
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	text := func(b string) traces.Body { return traces.Body{Data: []byte(b), Size: int64(len(b))} }
	s := &traces.Session{ID: "flush", Profile: "chat", Exchanges: []traces.Exchange{
		{Offset: 0, Duration: ms(1), Method: "GET", URL: "/eio/?EIO=4&transport=polling", Status: 200,
			RespBody: text(`0{"sid":"` + sid + `","upgrades":["websocket"]}`)},
		{Offset: ms(20), Duration: ms(200), Method: "GET", URL: "/eio/?EIO=4&transport=websocket&sid=" + sid, Status: 101,
			WebSocket: &traces.WebSocket{Frames: []traces.Frame{
				{Offset: ms(40), FromClient: true, Opcode: traces.OpText, Payload: text("5")},
				{Offset: ms(150), FromClient: true, Opcode: traces.OpText, Payload: text(`42["join","` + room + `"]`)},
				{Offset: ms(151), Opcode: traces.OpText, Payload: text(`43[{"ok":true}]`)},
			}}},
		{Offset: ms(60), Duration: ms(1), Method: "GET", URL: "/eio/?EIO=4&transport=polling&sid=" + sid, Status: 200,
			RespBody: text(`42["welcome",{"room":"` + room + `"}]`)},
	}}
	srv.live = true
	_, sink := run(t, ts.URL, []*traces.Session{s}, 5, 2*time.Second)
	if srv.counts.Get("joined") == 0 || srv.counts.Get("foreign room") > 0 || srv.counts.Get("unknown sid") > 0 {
		t.Errorf("the server counted %s", srv.counts.String())
	}
	n := 0
	for _, smp := range sink.samples {
		if smp.Failed() || smp.Kind == report.Skipped {
			t.Errorf("%s %s: status %d, error %q", kind(smp.Kind), smp.Endpoint, smp.Status, smp.Err)
			if n++; n > 5 {
				break
			}
		}
	}
}
