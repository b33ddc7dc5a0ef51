package capture_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/thrive-loadtest/thrive/capture"
	"github.com/thrive-loadtest/thrive/internal/loopbacktest"
)

// rawConn is a client that writes requests byte for byte.
type rawConn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, proxyURL string) *rawConn {
	t.Helper()
	c, err := (&net.Dialer{}).DialContext(context.Background(), "tcp", strings.TrimPrefix(proxyURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, c: c, br: bufio.NewReader(c)}
}

func (r *rawConn) send(s string) {
	r.t.Helper()
	if _, err := io.WriteString(r.c, s); err != nil {
		r.t.Fatal(err)
	}
}

// answer is what a client read of a response.
type answer struct {
	StatusCode       int
	Close            bool
	Trailer          http.Header
	TransferEncoding []string
}

// response reads one response to a request made with method.
func (r *rawConn) response(method string) (answer, string) {
	r.t.Helper()
	resp, err := http.ReadResponse(r.br, &http.Request{Method: method})
	if err != nil {
		r.t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		r.t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Close, resp.Trailer, resp.TransferEncoding}, string(b)
}

// TestRelayHTTP1 drives the proxy with hand-written requests: chunked
// uploads with trailers, 100-continue, HEAD, HTTP/1.0, header case and
// order kept in the trace, and a target with a path.
func TestRelayHTTP1(t *testing.T) {
	var mu sync.Mutex
	var seen []string // what the backend saw, one line per request
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, fmt.Sprintf("%s %s body=%q trailer=%q xff=%q", r.Method, r.URL.RequestURI(), body, r.Trailer.Get("X-Sum"), r.Header.Get("X-Forwarded-For")))
		mu.Unlock()
		switch r.URL.Path {
		case "/base/chunked":
			w.Header().Set("Trailer", "X-Done")
			_, _ = io.WriteString(w, "part one, ")
			_ = http.NewResponseController(w).Flush()
			_, _ = io.WriteString(w, "part two")
			w.Header().Set("X-Done", "yes")
		default:
			w.Header().Set("Content-Type", "text/plain")
			_, _ = fmt.Fprintf(w, "got %d bytes", len(body))
		}
	}))
	defer backend.Close()
	p := startProxy(t, backend.URL+"/base")
	rc := dialRaw(t, p.URL)

	rc.send("POST /upload HTTP/1.1\r\nHost: app.example\r\nx-custom-case: 1\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n" +
		"5\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 42\r\n\r\n")
	if resp, body := rc.response("POST"); resp.StatusCode != 200 || body != "got 11 bytes" {
		t.Fatalf("chunked upload: %d %q", resp.StatusCode, body)
	}
	rc.send("PUT /continue HTTP/1.1\r\nHost: app.example\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
	interim, err := rc.br.ReadString('\n')
	if err != nil || interim != "HTTP/1.1 100 Continue\r\n" {
		t.Fatalf("interim %q %v", interim, err)
	}
	if _, err := rc.br.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	rc.send("data")
	if resp, body := rc.response("PUT"); resp.StatusCode != 200 || body != "got 4 bytes" {
		t.Fatalf("100-continue: %d %q", resp.StatusCode, body)
	}
	rc.send("HEAD /head HTTP/1.1\r\nHost: app.example\r\n\r\n")
	if resp, body := rc.response("HEAD"); resp.StatusCode != 200 || body != "" {
		t.Fatalf("HEAD: %d %q", resp.StatusCode, body)
	}
	rc.send("GET /chunked HTTP/1.1\r\nHost: app.example\r\nX-Forwarded-For: 10.1.2.3\r\n\r\n")
	resp, body := rc.response("GET")
	if body != "part one, part two" || resp.Trailer.Get("X-Done") != "yes" || len(resp.TransferEncoding) != 1 {
		t.Fatalf("chunked answer %q, trailer %v, encoding %v", body, resp.Trailer, resp.TransferEncoding)
	}
	// An HTTP/1.0 client gets the chunked answer unchunked, then the close.
	rc10 := dialRaw(t, p.URL)
	rc10.send("GET /chunked HTTP/1.0\r\nHost: app.example\r\n\r\n")
	raw, err := io.ReadAll(rc10.br)
	if err != nil || !strings.HasSuffix(string(raw), "\r\n\r\npart one, part two") || strings.Contains(string(raw), "chunked") {
		t.Fatalf("HTTP/1.0 answer %q %v", raw, err)
	}

	sessions := p.stop()
	mu.Lock()
	defer mu.Unlock()
	want := []string{
		`POST /base/upload body="hello world" trailer="42" xff="127.0.0.1"`,
		`PUT /base/continue body="data" trailer="" xff="127.0.0.1"`,
		`HEAD /base/head body="" trailer="" xff="127.0.0.1"`,
		`GET /base/chunked body="" trailer="" xff="10.1.2.3, 127.0.0.1"`,
		`GET /base/chunked body="" trailer="" xff="127.0.0.1"`,
	}
	if strings.Join(seen, "\n") != strings.Join(want, "\n") {
		t.Fatalf("backend saw\n%s\nwant\n%s", strings.Join(seen, "\n"), strings.Join(want, "\n"))
	}
	var exs []string
	for _, s := range sessions {
		for _, ex := range s.Exchanges {
			exs = append(exs, fmt.Sprintf("%s %s %d %q", ex.Method, ex.URL, ex.Status, ex.RespBody.Data))
			if ex.URL == "/upload" {
				if ex.ReqHeader[1].Name != "x-custom-case" || string(ex.ReqBody.Data) != "hello world" {
					t.Errorf("upload recorded with headers %v and body %q", ex.ReqHeader, ex.ReqBody.Data)
				}
			}
		}
	}
	if len(exs) != 5 {
		t.Fatalf("recorded %v", exs)
	}
}

// TestBackendConnectionPerClient checks that each client connection gets a
// backend connection of its own that lasts as long as it does, and that a
// backend closing an idle connection costs the client nothing.
func TestBackendConnectionPerClient(t *testing.T) {
	var mu sync.Mutex
	conns := map[string]int{} // backend-side remote address → requests
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		conns[r.RemoteAddr]++
		mu.Unlock()
		if r.URL.Path == "/bye" {
			// Answer, then close without saying so, as a backend whose idle
			// timeout passes does.
			c, bw, err := http.NewResponseController(w).Hijack()
			if err == nil {
				_, _ = bw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				_ = bw.Flush()
				c.Close()
			}
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	defer backend.Close()
	p := startProxy(t, backend.URL)
	clients := []*rawConn{dialRaw(t, p.URL), dialRaw(t, p.URL), dialRaw(t, p.URL)}
	for range 4 {
		for _, c := range clients {
			c.send("GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
			if resp, body := c.response("GET"); resp.StatusCode != 200 || body != "ok" {
				t.Fatalf("%d %q", resp.StatusCode, body)
			}
		}
	}
	mu.Lock()
	if len(conns) != 3 {
		t.Fatalf("backend saw %d connections for 3 clients: %v", len(conns), conns)
	}
	mu.Unlock()
	// The backend drops the first client's connection unannounced; the
	// client's next request goes out on a new one, unnoticed.
	c := clients[0]
	c.send("GET /bye HTTP/1.1\r\nHost: a\r\n\r\n")
	if resp, body := c.response("GET"); resp.Close || body != "ok" {
		t.Fatalf("close %v, body %q", resp.Close, body)
	}
	c.send("GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
	if resp, body := c.response("GET"); resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("after the backend closed: %d %q", resp.StatusCode, body)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(conns) != 4 {
		t.Fatalf("backend saw %d connections, want 4", len(conns))
	}
}

func TestMalformedRequestIs400(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer backend.Close()
	p := startProxy(t, backend.URL)
	c := dialRaw(t, p.URL)
	c.send("GET / HTTP/1.1\r\nbroken header line\r\n\r\n")
	resp, body := c.response("GET")
	if resp.StatusCode != 400 || !strings.Contains(body, "malformed header line") {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	if sessions := p.stop(); len(sessions) != 0 {
		t.Fatalf("recorded %d sessions", len(sessions))
	}
}

// TestClientDeadlines checks the client connection's read deadlines: a head
// that stops halfway is cut, an idle keep-alive connection is closed, and a
// body is read without either deadline however slowly it comes.
func TestClientDeadlines(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(w, r.Body)
	}))
	defer backend.Close()
	// closed waits for the proxy to close c; a client-side deadline bounds
	// the wait should it never do so.
	closed := func(t *testing.T, c *rawConn) {
		t.Helper()
		_ = c.c.SetReadDeadline(time.Now().Add(20 * time.Second))
		if b, err := c.br.ReadByte(); !errors.Is(err, io.EOF) {
			t.Fatalf("read %q, %v; want the proxy to close the connection", b, err)
		}
	}
	t.Run("head", func(t *testing.T) {
		p := startProxy(t, backend.URL, capture.WithClientTimeouts(time.Hour, 100*time.Millisecond))
		c := dialRaw(t, p.URL)
		c.send("GET / HTTP/1.1\r\nHost: a\r\n")
		closed(t, c)
	})
	t.Run("idle", func(t *testing.T) {
		p := startProxy(t, backend.URL, capture.WithClientTimeouts(100*time.Millisecond, time.Hour))
		c := dialRaw(t, p.URL)
		c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
		if resp, _ := c.response("GET"); resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		closed(t, c)
	})
	t.Run("slow body", func(t *testing.T) {
		p := startProxy(t, backend.URL, capture.WithClientTimeouts(100*time.Millisecond, 100*time.Millisecond))
		c := dialRaw(t, p.URL)
		c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
		if resp, _ := c.response("GET"); resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		// A body that takes five times either deadline to arrive.
		c.send("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n")
		for i := range 10 {
			time.Sleep(50 * time.Millisecond) // a slow client, not synchronisation
			c.send(strconv.Itoa(i))
		}
		if resp, body := c.response("POST"); resp.StatusCode != 200 || body != "0123456789" {
			t.Fatalf("%d %q", resp.StatusCode, body)
		}
	})
}

// TestLoopCutsASlowReceiver checks the event loops' bound on what a slow
// receiver leaves waiting: a client that reads nothing of a 64 MiB answer
// is cut once more than the backlog limit waits for it, and the exchange
// says why.
func TestLoopCutsASlowReceiver(t *testing.T) {
	chunk := strings.Repeat("x", 1<<20)
	wrote := make(chan error, 1)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(64*len(chunk)))
		var err error
		for range 64 {
			if _, err = io.WriteString(w, chunk); err != nil {
				break
			}
		}
		if err == nil {
			err = http.NewResponseController(w).Flush()
		}
		wrote <- err
	}))
	defer backend.Close()
	p := startProxy(t, backend.URL, capture.WithEventLoop(), capture.WithLoopBacklog(1<<20))
	c := dialRaw(t, p.URL)
	c.send("GET /big HTTP/1.1\r\nHost: a\r\n\r\n")
	// The client reads nothing while the backend writes. The loop takes
	// whatever the backend sends, so without the bound the backend would
	// write all 64 MiB; with it, the proxy cuts the backend's connection.
	select {
	case err := <-wrote:
		if err == nil {
			t.Fatal("the backend wrote the whole answer to a client that read nothing")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the backend is still writing after 20 s")
	}
	_ = c.c.SetReadDeadline(time.Now().Add(20 * time.Second))
	if n, err := io.Copy(io.Discard, c.br); err != nil || n >= int64(64*len(chunk)) {
		t.Fatalf("read %d bytes, %v; want the connection closed before the answer's end", n, err)
	}
	sessions := p.stop()
	if len(sessions) != 1 || len(sessions[0].Exchanges) != 1 {
		t.Fatalf("%d sessions", len(sessions))
	}
	if ex := sessions[0].Exchanges[0]; !strings.Contains(ex.Error, "client too slow") {
		t.Fatalf("exchange error %q", ex.Error)
	}
}

// TestLoopEarlyAnswer checks the event loops with a backend that answers a
// request before its body is over, as one refusing an upload does: the
// client gets the answer at once, sends the rest of the body, and its next
// request is served on the same connection.
func TestLoopEarlyAnswer(t *testing.T) {
	addr := loopbacktest.Serve(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			length := 0
			method := ""
			for first := true; ; first = false {
				line, err := br.ReadString('\n')
				if err != nil {
					return
				}
				if first {
					method, _, _ = strings.Cut(line, " ")
				}
				if name, value, ok := strings.Cut(strings.TrimSpace(line), ":"); ok && strings.EqualFold(name, "Content-Length") {
					length, _ = strconv.Atoi(strings.TrimSpace(value))
				}
				if line == "\r\n" {
					break
				}
			}
			answer := "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
			if method == "POST" {
				answer = "HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\n\r\n"
			}
			if _, err := io.WriteString(c, answer); err != nil {
				return
			}
			if _, err := br.Discard(length); err != nil {
				return
			}
		}
	})
	p := startProxy(t, "http://"+addr, capture.WithEventLoop())
	c := dialRaw(t, p.URL)
	_ = c.c.SetReadDeadline(time.Now().Add(20 * time.Second)) // a bound should the relay stall
	c.send("POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nab")
	if resp, _ := c.response("POST"); resp.StatusCode != 413 {
		t.Fatalf("status %d, want the early 413", resp.StatusCode)
	}
	c.send("cde")
	c.send("GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
	if resp, body := c.response("GET"); resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("after the early answer: %d %q", resp.StatusCode, body)
	}
	sessions := p.stop()
	if len(sessions) != 1 || len(sessions[0].Exchanges) != 2 {
		t.Fatalf("%d sessions", len(sessions))
	}
	if ex := sessions[0].Exchanges[0]; ex.Status != 413 || string(ex.ReqBody.Data) != "ab" {
		t.Fatalf("first exchange: %d, body %q", ex.Status, ex.ReqBody.Data)
	}
}

// TestPipelinedRequests checks a client that sends its requests without
// waiting for the answers: the proxy passes them on one at a time and the
// answers come back in order, each recorded with its request.
func TestPipelinedRequests(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		_, _ = io.WriteString(w, r.URL.Path+":"+string(body))
	}))
	defer backend.Close()
	p := startProxy(t, backend.URL)
	c := dialRaw(t, p.URL)
	_ = c.c.SetReadDeadline(time.Now().Add(20 * time.Second)) // a bound should the relay stall
	c.send("GET /a HTTP/1.1\r\nHost: x\r\n\r\n" +
		"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc" +
		"PUT /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nde\r\n0\r\n\r\n" +
		"GET /d HTTP/1.1\r\nHost: x\r\n\r\n")
	for _, want := range []struct{ method, body string }{{"GET", "/a:"}, {"POST", "/b:abc"}, {"PUT", "/c:de"}, {"GET", "/d:"}} {
		if resp, body := c.response(want.method); resp.StatusCode != 200 || body != want.body {
			t.Fatalf("%s: %d %q, want %q", want.method, resp.StatusCode, body, want.body)
		}
	}
	var got []string
	for _, s := range p.stop() {
		for _, ex := range s.Exchanges {
			got = append(got, ex.URL+"="+string(ex.RespBody.Data))
		}
	}
	if want := "/a=/a: /b=/b:abc /c=/c:de /d=/d:"; strings.Join(got, " ") != want {
		t.Fatalf("recorded %q, want %q", strings.Join(got, " "), want)
	}
}

// TestHostHeader: with the target's name (HostTarget), an Origin or
// Referer that names the proxy (the page was loaded through it) reaches the
// backend naming the backend, as a browser that went there directly would
// send, so that origin checks against Host pass; with the client's (the
// default for a target on this machine), Host, Origin and Referer reach it
// as the client sent them, agreeing with X-Forwarded-Host, so that origin
// checks pass whichever the backend trusts (Rails trusts
// X-Forwarded-Host). Others pass as they are, and the trace keeps what the
// client sent.
func TestHostHeader(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []capture.Option
		// want returns what the backend sees (Host Origin Referer) of the
		// two requests, from the proxy's and the backend's URLs.
		want func(own, backend string) []string
	}{
		{"target", []capture.Option{capture.WithHostHeader(capture.HostTarget)}, func(own, backend string) []string {
			return []string{
				strings.TrimPrefix(backend, "http://") + " " + backend + " " + backend + "/page?x=1",
				strings.TrimPrefix(backend, "http://") + " https://elsewhere.example " + own + "evil.example/",
			}
		}},
		{"auto, a target on this machine", nil, func(own, _ string) []string {
			return []string{
				strings.TrimPrefix(own, "http://") + " " + own + " " + own + "/page?x=1",
				strings.TrimPrefix(own, "http://") + " https://elsewhere.example " + own + "evil.example/",
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var seen []string
			backend := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
				mu.Lock()
				seen = append(seen, r.Host+" "+r.Header.Get("Origin")+" "+r.Header.Get("Referer"))
				mu.Unlock()
			}))
			defer backend.Close()
			p := startProxy(t, backend.URL, tc.opts...)
			own := p.URL
			c := dialRaw(t, p.URL)
			host := strings.TrimPrefix(own, "http://")
			for _, hs := range []string{
				"Origin: " + own + "\r\nReferer: " + own + "/page?x=1\r\n",
				"Origin: https://elsewhere.example\r\nReferer: " + own + "evil.example/\r\n",
			} {
				c.send("GET / HTTP/1.1\r\nHost: " + host + "\r\n" + hs + "\r\n")
				c.response("GET")
			}
			sessions := p.stop()
			mu.Lock()
			defer mu.Unlock()
			if want := tc.want(own, backend.URL); strings.Join(seen, "\n") != strings.Join(want, "\n") {
				t.Fatalf("the backend saw\n%s\nwant\n%s", strings.Join(seen, "\n"), strings.Join(want, "\n"))
			}
			if len(sessions) != 1 || sessions[0].Exchanges[0].ReqHeader[1].Value != own {
				t.Fatalf("the trace does not keep the Origin the client sent: %+v", sessions)
			}
		})
	}
}
