//go:build linux

package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/thrive-loadtest/thrive/report"
	"github.com/thrive-loadtest/thrive/traces"
)

// TestStalledReplayerBlamesNoSilence: a replay process stopped (SIGSTOP,
// as a starved or paused machine stops it) while the server sends the
// end of a reply, and continued after longer than the reply idle, finds
// the end frame waiting in its socket: the reply ended with it, not by a
// silence that was the replayer's own.
func TestStalledReplayerBlamesNoSilence(t *testing.T) {
	// Each of the users' first replies is held until the replayer is
	// stopped: the more replies stall together, the surer a silence
	// blamed on the server shows.
	const users = 8
	began, release := make(chan struct{}), make(chan struct{})
	var held atomic.Int32
	var sent sync.WaitGroup
	sent.Add(users)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer conn.Close()
		for {
			if _, _, err := conn.ReadMessage(); err != nil {
				return
			}
			_ = conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"start"}`))
			if n := held.Add(1); n <= users {
				if n == users {
					close(began)
				}
				<-release
				_ = conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"end"}`))
				sent.Done()
				continue
			}
			_ = conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"end"}`))
		}
	}))
	defer srv.Close()

	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	text := func(b string) traces.Body { return traces.Body{Data: []byte(b), Size: int64(len(b))} }
	s := &traces.Session{ID: "stall", Profile: "chat", Exchanges: []traces.Exchange{
		{Duration: ms(100), Method: "GET", URL: "/ws", Status: 101, WebSocket: &traces.WebSocket{
			Frames: []traces.Frame{
				{Offset: ms(10), FromClient: true, Opcode: traces.OpText, Payload: text("go")},
				{Offset: ms(11), Opcode: traces.OpText, Payload: text(`{"type":"start"}`)},
				{Offset: ms(30), Opcode: traces.OpText, Payload: text(`{"type":"end"}`)},
			},
			Close: traces.Close{Offset: ms(100), Code: 1000},
		}},
	}}
	dir := t.TempDir()
	trace := filepath.Join(dir, "stall.thrv")
	f, err := os.Create(trace)
	if err != nil {
		t.Fatal(err)
	}
	w, err := traces.NewWriter(f, traces.Meta{Source: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(s); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	res := filepath.Join(dir, "result.json")
	cmd, _ := thriveProcess(t, "replay", trace, "--target", srv.URL, "--users", strconv.Itoa(users), "--run-time", "1s",
		"--reply-idle", "300ms", "--out", res, "-q")
	select {
	case <-began:
	case <-time.After(30 * time.Second):
		t.Fatal("the replay sent no message")
	}
	pid := cmd.Process.Pid
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped(t, pid)
	close(release)
	sent.Wait()
	// The stall itself, longer than the reply idle: the condition under
	// test, not a synchronisation.
	time.Sleep(time.Second)
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("replay: %v", err)
	}
	b, err := os.ReadFile(res)
	if err != nil {
		t.Fatal(err)
	}
	var r report.Result
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	replies := int64(0)
	for _, e := range r.Endpoints {
		if e.Kind != "ws-reply" {
			continue
		}
		replies += e.Requests
		if e.EndedBySilence > 0 || e.Failures > 0 {
			t.Errorf("%s: %d replies ended by a silence, %d failed, of %d", e.Name, e.EndedBySilence, e.Failures, e.Requests)
		}
	}
	if replies == 0 {
		t.Errorf("no reply in the result: %s", b)
	}
}

// stopped waits until process pid is stopped, as /proc says.
func stopped(t *testing.T, pid int) {
	t.Helper()
	stat := filepath.Join("/proc", strconv.Itoa(pid), "stat")
	for range 10000 {
		b, err := os.ReadFile(stat)
		if err != nil {
			t.Fatal(err)
		}
		// pid (comm) state ...: the state follows the last ')'.
		if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) && b[i+2] == 'T' {
			return
		}
		runtime.Gosched()
	}
	t.Fatalf("process %d did not stop", pid)
}
