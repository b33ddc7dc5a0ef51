package passive

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/thrive-loadtest/thrive/traces"
)

// server is a loopback HTTP server that counts what it read: each
// request's method and path, and the WebSocket messages.
type server struct {
	mu     sync.Mutex
	seen   []string // "METHOD /path"
	wsMsgs []string
	wsDone chan struct{}
	srv    *httptest.Server
}

// marker is the body of the answer that ends the traffic: once tcpdump
// has written it, every packet before it is written.
const marker = "thrive-end-of-traffic-7f3a"

// newServer starts the server with its handlers.
func newServer(t *testing.T) *server {
	s := &server{wsDone: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("/chunked", func(w http.ResponseWriter, r *http.Request) {
		s.count(r)
		_, _ = io.WriteString(w, "first part ")
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		_, _ = io.WriteString(w, "second part")
	})
	mux.HandleFunc("/gzip", func(w http.ResponseWriter, r *http.Request) {
		s.count(r)
		w.Header().Set("Content-Encoding", "gzip")
		zw := gzip.NewWriter(w)
		_, _ = io.WriteString(zw, strings.Repeat("zipped ", 40))
		_ = zw.Close()
	})
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		s.count(r)
		defer close(s.wsDone)
		c, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			typ, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.wsMsgs = append(s.wsMsgs, string(msg))
			s.mu.Unlock()
			if err := c.WriteMessage(typ, append([]byte("echo "), msg...)); err != nil {
				return
			}
		}
	})
	mux.HandleFunc("/marker", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, marker)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.count(r)
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "text/plain")
		_, _ = fmt.Fprintf(w, "%s %s %d bytes", r.Method, r.URL.Path, len(body))
	})
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.srv.Close)
	return s
}

// count notes a request the server read.
func (s *server) count(r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seen = append(s.seen, r.Method+" "+r.URL.Path)
}

// tcpdump is a running tcpdump writing the packets of one port to a pipe,
// which the test copies.
type tcpdump struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	file bytes.Buffer
	seen chan struct{} // closed once marker is in file
	done chan error
}

// startTcpdump captures port on iface, once tcpdump says it is listening; it
// skips the test when tcpdump is missing or cannot capture, unless
// THRIVE_REQUIRE_TCPDUMP=1.
func startTcpdump(t *testing.T, iface, port string) *tcpdump {
	skip := t.Skipf
	if os.Getenv("THRIVE_REQUIRE_TCPDUMP") == "1" {
		skip = t.Fatalf
	}
	path, err := exec.LookPath("tcpdump")
	if err != nil {
		skip("tcpdump is not on PATH (apt-get install tcpdump): %v", err)
	}
	td := &tcpdump{seen: make(chan struct{}), done: make(chan error, 1)}
	td.cmd = exec.CommandContext(t.Context(), path, "-i", iface, "-w", "-", "-U", "--immediate-mode", "-B", "16384", "-s", "0", "tcp", "port", port)
	stdout, err := td.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := td.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := td.cmd.Start(); err != nil {
		skip("tcpdump: %v", err)
	}
	go td.copy(stdout)
	sc := bufio.NewScanner(stderr)
	var said []string
	for sc.Scan() {
		said = append(said, sc.Text())
		if strings.Contains(sc.Text(), "listening on") {
			go func() { _, _ = io.Copy(io.Discard, stderr) }()
			return td
		}
	}
	err = td.cmd.Wait()
	skip("tcpdump cannot capture (%v): %s", err, strings.Join(said, "; "))
	return nil
}

// copy keeps what tcpdump writes, and says when marker is in it.
func (td *tcpdump) copy(r io.Reader) {
	buf := make([]byte, 64<<10)
	found := false
	for {
		n, err := r.Read(buf)
		td.mu.Lock()
		td.file.Write(buf[:n])
		if !found && bytes.Contains(td.file.Bytes(), []byte(marker)) {
			found = true
			close(td.seen)
		}
		td.mu.Unlock()
		if err != nil {
			td.done <- td.cmd.Wait()
			return
		}
	}
}

// stop waits until tcpdump has written the marker's packet, then stops
// it and returns the file.
func (td *tcpdump) stop(t *testing.T) []byte {
	select {
	case <-td.seen:
	case err := <-td.done:
		t.Fatalf("tcpdump ended before the traffic was written: %v", err)
	case <-time.After(time.Minute):
		// A watchdog, not a wait: the marker comes in milliseconds.
		_ = td.cmd.Process.Kill()
		t.Fatal("tcpdump did not write the last answer's packet in a minute (dropped by the kernel?)")
	}
	if err := td.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := <-td.done; err != nil {
		t.Logf("tcpdump: %v", err) // its exit status on SIGINT
	}
	td.mu.Lock()
	defer td.mu.Unlock()
	return td.file.Bytes()
}

// TestTcpdump reads what tcpdump captured of real traffic on loopback: a
// net/http server and client, keep-alive and not, chunked and gzipped
// answers, a HEAD, a POST, a gorilla/websocket echo. The exchanges read
// are the requests the server counted, and the socket's client frames
// the messages it read. (Not on the any device: there the kernel drops
// packets of even a few connections here, "dropped by kernel".)
func TestTcpdump(t *testing.T) {
	s := newServer(t)
	_, port, _ := net.SplitHostPort(s.srv.Listener.Addr().String())
	td := startTcpdump(t, "lo", port)
	s.traffic(t)
	file := td.stop(t)
	s.check(t, port, func(add AddFunc) (Stats, error) {
		return Read(bytes.NewReader(file), "tcpdump.pcap", Filter{Ports: []int{atoi(t, port)}}, add, nil)
	})
}

// traffic makes the test's requests to s, ending with /marker: keep-alive
// and not, chunked and gzipped answers, a HEAD, a POST, a large PUT, a
// gorilla/websocket echo.
func (s *server) traffic(t *testing.T) {
	base := s.srv.URL
	keep := &http.Client{}
	once := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	do := func(c *http.Client, method, path, body string) {
		req, err := http.NewRequestWithContext(t.Context(), method, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	}
	do(keep, "GET", "/a?x=1", "")
	do(keep, "POST", "/form", "name=ann&age=7")
	do(keep, "GET", "/chunked", "")
	do(keep, "GET", "/gzip", "")
	do(keep, "HEAD", "/a", "")
	do(once, "GET", "/b", "")
	do(once, "PUT", "/c", strings.Repeat("x", 100_000))
	ws, resp, err := websocket.DefaultDialer.DialContext(t.Context(), "ws"+strings.TrimPrefix(base, "http")+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	for _, m := range []string{"hello", "world", strings.Repeat("long ", 100)} {
		if err := ws.WriteMessage(websocket.TextMessage, []byte(m)); err != nil {
			t.Fatal(err)
		}
		if _, _, err := ws.ReadMessage(); err != nil {
			t.Fatal(err)
		}
	}
	_ = ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "done"))
	<-s.wsDone
	_ = ws.Close()
	do(once, "GET", "/marker", "")
	keep.CloseIdleConnections()
}

// check reads the traffic with read and holds what it handed on to what
// the server counted.
func (s *server) check(t *testing.T, port string, read func(AddFunc) (Stats, error)) {
	var got []string
	var sock *traces.WebSocket
	st, err := read(func(_ time.Time, _, _ string, ex *traces.Exchange) {
		path, _, _ := strings.Cut(ex.URL, "?")
		if path == "/marker" {
			return
		}
		if ex.Error != "" || ex.Status == 0 {
			t.Errorf("%s %s: status %d, error %q", ex.Method, ex.URL, ex.Status, ex.Error)
		}
		got = append(got, ex.Method+" "+path)
		if ex.WebSocket != nil {
			sock = ex.WebSocket
		}
		if path == "/gzip" && (len(ex.RespBody.Data) == 0 || ex.RespBody.Data[0] != 0x1f) {
			t.Errorf("gzip body not as sent: % x", ex.RespBody.Data[:min(4, len(ex.RespBody.Data))])
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	slices.Sort(got)
	want := slices.Clone(s.seen)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("read %q\nthe server counted %q\nstats %+v", got, want, st)
	}
	if sock == nil {
		t.Fatal("no WebSocket read")
	}
	var fromClient []string
	for _, f := range sock.Frames {
		if f.FromClient && f.Opcode == traces.OpText {
			fromClient = append(fromClient, string(f.Payload.Data))
		}
	}
	if !slices.Equal(fromClient, s.wsMsgs) || sock.Close.Code != 1000 {
		t.Errorf("client frames %q, the server read %q; close %+v", fromClient, s.wsMsgs, sock.Close)
	}
	t.Logf("%d packets, %+v", st.Packets, st)
}

// atoi parses a port.
func atoi(t *testing.T, s string) int {
	var n int
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatal(err)
	}
	return n
}
