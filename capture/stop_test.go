package capture_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
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

// TestStopServesRequestsSentBefore: a client pipelines two requests and
// the capture is stopped while the backend works on the first. The second
// was sent, and read in, before the stop: both are answered by the
// backend and recorded, none is dropped as if the connection were idle.
func TestStopServesRequestsSentBefore(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	var mu sync.Mutex
	var served []string
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(entered)
			<-release
		}
		mu.Lock()
		served = append(served, r.URL.Path)
		mu.Unlock()
		fmt.Fprint(w, "ok")
	}))
	defer backend.Close()
	p := startProxy(t, backend.URL, capture.WithGrace(time.Minute))
	c := dialRaw(t, p.URL)
	host := strings.TrimPrefix(p.URL, "http://")
	c.send("GET /slow HTTP/1.1\r\nHost: " + host + "\r\n\r\nGET /next HTTP/1.1\r\nHost: " + host + "\r\n\r\n")
	<-entered
	stopped := make(chan []string, 1)
	go func() {
		var urls []string
		for _, s := range p.stop() {
			for _, ex := range s.Exchanges {
				urls = append(urls, ex.URL)
			}
		}
		stopped <- urls
	}()
	for deadline := time.Now().Add(10 * time.Second); !p.cp.Stopping(); {
		if time.Now().After(deadline) {
			t.Fatal("the capture did not begin to stop in 10 s")
		}
		time.Sleep(time.Millisecond) // polling the state, bounded
	}
	close(release)
	var answers []string
	for range 2 {
		resp, err := http.ReadResponse(c.br, nil)
		if err != nil {
			answers = append(answers, err.Error())
			break
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		answers = append(answers, fmt.Sprintf("%d %s", resp.StatusCode, b))
	}
	urls := <-stopped
	if got := strings.Join(answers, ", "); got != "200 ok, 200 ok" {
		t.Errorf("the client read %s, want 200 ok twice", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if got := strings.Join(served, " "); got != "/slow /next" {
		t.Errorf("the backend served %q, want /slow /next", got)
	}
	if got := strings.Join(urls, " "); got != "/slow /next" {
		t.Errorf("the trace holds %q, want /slow /next", got)
	}
}
