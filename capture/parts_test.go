package capture_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/thrive-loadtest/thrive/capture"
	"github.com/thrive-loadtest/thrive/traces"
)

// eventually waits, bounded, for cond: the capture's writer works on its
// own tick.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after 20 s: %s", what)
		}
		time.Sleep(5 * time.Millisecond) // polling the capture's own state
	}
}

// TestLongSessionInParts: one visitor downloads 280 answers of 1 MiB in
// one session, more than a trace record could hold (256 MiB). While the
// session goes on, the capture hands its finished exchanges to the trace
// in parts, so what it holds stays bounded (before, it held the whole
// session, and at the stop refused it: "encodes to more than 268435456
// bytes", 0 sessions). The trace then reads as one session with every
// exchange the server answered.
func TestLongSessionInParts(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 280 MiB through the proxy")
	}
	mib := bytes.Repeat([]byte("0123456789abcdef"), 1<<16)
	var served atomic.Int64
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		if r.URL.Path == "/login" {
			http.SetCookie(w, &http.Cookie{Name: "sessionid", Value: "u1", HttpOnly: true, MaxAge: 3600, Path: "/"})
			return
		}
		_, _ = w.Write(mib)
	}))
	defer backend.Close()
	const limit = 8 << 20
	p := startProxy(t, backend.URL, capture.WithFlushInterval(20*time.Millisecond), capture.WithBuffer(64<<20),
		capture.WithPartLimits(limit, 1000, 1000, 0))
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar}
	get := func(path string) {
		t.Helper()
		req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, p.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || path != "/login" && n != int64(len(mib)) {
			t.Fatalf("%s: %d, %d bytes", path, resp.StatusCode, n)
		}
	}
	get("/login")
	peak := int64(0)
	for i := range 280 {
		get(fmt.Sprint("/download/", i))
		peak = max(peak, p.cp.Buffered())
		if i%16 == 15 {
			eventually(t, "the capture still holds the open session's bodies: they are not handed on in parts", func() bool {
				return p.cp.Buffered() < limit+(1<<20)
			})
		}
	}
	ss := p.stop()
	if len(ss) != 1 || ss[0].Partial {
		t.Fatalf("the trace has %d sessions, want the one visit whole", len(ss))
	}
	s := ss[0]
	if int64(len(s.Exchanges)) != served.Load() || len(s.Exchanges) != 281 {
		t.Fatalf("the trace has %d exchanges, the server answered %d", len(s.Exchanges), served.Load())
	}
	for i, ex := range s.Exchanges[1:] {
		if want := fmt.Sprint("/download/", i); ex.URL != want || !bytes.Equal(ex.RespBody.Data, mib) {
			t.Fatalf("exchange %d: %s with %d bytes, want %s with the 1 MiB answer", i+1, ex.URL, len(ex.RespBody.Data), want)
		}
		if i > 0 && ex.Offset < s.Exchanges[i].Offset {
			t.Fatalf("exchange %d began before the one before it", i+1)
		}
	}
	if s.Profile != "browse" || !strings.Contains(s.Evidence, "cookie:sessionid") {
		t.Errorf("profile %q evidence %q, want browse by its session cookie", s.Profile, s.Evidence)
	}
	st := p.cp.Stats()
	if st.Sessions != 1 || st.Exchanges != 281 || st.DroppedExchanges != 0 {
		t.Errorf("stats: %d sessions, %d exchanges, %d dropped; want 1, 281, 0", st.Sessions, st.Exchanges, st.DroppedExchanges)
	}
	t.Logf("peak body bytes held: %.1f MiB for a session of 280 MiB", float64(peak)/(1<<20))
}

// TestOpenSocketInParts: a WebSocket open for the whole visit reaches the
// trace in parts while it is open (a killed capture loses only the last
// moments of it), and reads back, once closed, as one exchange with every
// frame in order.
func TestOpenSocketInParts(t *testing.T) {
	var answered atomic.Int64
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		up := websocket.Upgrader{}
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			mt, m, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(mt, append([]byte("re:"), m...)); err != nil {
				return
			}
			answered.Add(1)
		}
	}))
	defer backend.Close()
	p := startProxy(t, backend.URL, capture.WithFlushInterval(20*time.Millisecond), capture.WithPartLimits(1<<20, 1000, 100, 0))
	ws, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(p.URL, "http")+"/live", nil)
	if resp != nil {
		resp.Body.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	say := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			m := fmt.Sprint("m", i)
			if err := ws.WriteMessage(websocket.TextMessage, []byte(m)); err != nil {
				t.Fatal(err)
			}
			if _, got, err := ws.ReadMessage(); err != nil || string(got) != "re:"+m {
				t.Fatalf("reply to %s: %q %v", m, got, err)
			}
		}
	}
	say(0, 300)
	// The trace file, read as it is being written: the socket's frames so
	// far, in a session the file has only parts of.
	eventually(t, "the open socket's frames are not in the trace while it is open", func() bool {
		s := openSessionIn(p.path)
		return s != nil && s.Partial && len(s.Exchanges) == 1 && s.Exchanges[0].WebSocket != nil &&
			s.Exchanges[0].WebSocket.Open && len(s.Exchanges[0].WebSocket.Frames) >= 500
	})
	say(300, 600)
	if err := ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye")); err != nil {
		t.Fatal(err)
	}
	_, _, _ = ws.ReadMessage() // the server's close
	ws.Close()
	ss := p.stop()
	if len(ss) != 1 || len(ss[0].Exchanges) != 1 || ss[0].Exchanges[0].WebSocket == nil {
		t.Fatalf("the trace has %d sessions, want one with the socket", len(ss))
	}
	sock := ss[0].Exchanges[0].WebSocket
	if sock.Open || ss[0].Partial || answered.Load() != 600 {
		t.Fatalf("socket open %v, session partial %v, server answered %d", sock.Open, ss[0].Partial, answered.Load())
	}
	var data []string
	for _, f := range sock.Frames {
		if f.Opcode == traces.OpText {
			data = append(data, string(f.Payload.Data))
		}
	}
	if len(data) != 1200 {
		t.Fatalf("%d text frames, want the 600 messages and their 600 replies", len(data))
	}
	for i := range 600 {
		if data[2*i] != fmt.Sprint("m", i) || data[2*i+1] != fmt.Sprint("re:m", i) {
			t.Fatalf("frames %d, %d: %q %q, out of order or lost", 2*i, 2*i+1, data[2*i], data[2*i+1])
		}
	}
	if sock.Close.Code != websocket.CloseNormalClosure {
		t.Errorf("close %+v, want 1000", sock.Close)
	}
}

// openSessionIn reads the trace at path as it is being written and
// returns its first session, if it has one.
func openSessionIn(path string) *traces.Session {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	r, err := traces.NewReader(f)
	if err != nil {
		return nil
	}
	defer r.Close()
	s := new(traces.Session)
	if err := r.Next(s); err != nil && !errors.Is(err, io.EOF) {
		return nil
	}
	return s
}
