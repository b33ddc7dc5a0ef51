package capture_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/thrive-loadtest/thrive/capture"
)

// TestStopClosesOpenWebSocket checks that stopping the capture closes an
// open WebSocket at once, without waiting out the grace time that requests
// in flight get, and that its frames are in the trace.
func TestStopClosesOpenWebSocket(t *testing.T) {
	up := websocket.Upgrader{}
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		for {
			kind, msg, err := ws.ReadMessage()
			if err != nil {
				return
			}
			if err := ws.WriteMessage(kind, msg); err != nil {
				return
			}
		}
	}))
	defer backend.Close()
	p := startProxy(t, backend.URL, capture.WithGrace(time.Hour))
	ws, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(p.URL, "http")+"/ws/chat/", nil)
	if resp != nil {
		resp.Body.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if err := ws.WriteMessage(websocket.TextMessage, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := ws.ReadMessage(); err != nil || string(msg) != "hello" {
		t.Fatalf("echo %q, %v", msg, err)
	}
	stopped := make(chan int, 1)
	go func() {
		n := 0
		for _, s := range p.stop() {
			for _, ex := range s.Exchanges {
				if ex.WebSocket != nil {
					n += len(ex.WebSocket.Frames)
				}
			}
		}
		stopped <- n
	}()
	select {
	case n := <-stopped:
		if n != 2 {
			t.Fatalf("%d frames in the trace, want 2", n)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the capture is still waiting for an open WebSocket after 20 s")
	}
	_ = ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, _, err := ws.ReadMessage(); err == nil || strings.Contains(err.Error(), "timeout") {
		t.Fatalf("read after the stop: %v; want the connection closed", err)
	}
}
