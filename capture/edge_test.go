package capture_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/thrive-loadtest/thrive/capture"
)

// TestServerSentEventsStreamThrough sends each event only after the client
// has read the one before: a proxy that buffered would deadlock here.
func TestServerSentEventsStreamThrough(t *testing.T) {
	const events = 5
	ack := make(chan struct{})
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range events {
			fmt.Fprintf(w, "data: token %d\n\n", i)
			_ = http.NewResponseController(w).Flush()
			select {
			case <-ack:
			case <-r.Context().Done():
				return
			case <-time.After(10 * time.Second):
				return // a bound, not a sync: the test fails on the client side first
			}
		}
	}))
	defer backend.Close()
	p := startProxy(t, backend.URL)
	req, _ := http.NewRequestWithContext(context.Background(), "GET", p.URL+"/stream", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	for i := range events {
		deadline := time.AfterFunc(5*time.Second, func() { resp.Body.Close() })
		line, err := br.ReadString('\n')
		deadline.Stop()
		if err != nil || line != fmt.Sprintf("data: token %d\n", i) {
			t.Fatalf("event %d: %q %v (the proxy held the stream back)", i, line, err)
		}
		if _, err := br.ReadString('\n'); err != nil {
			t.Fatal(err)
		}
		ack <- struct{}{}
	}
	_, _ = io.Copy(io.Discard, br)
	resp.Body.Close()
	sessions := p.stop()
	if len(sessions) != 1 || len(sessions[0].Exchanges) != 1 {
		t.Fatalf("%d sessions", len(sessions))
	}
	ex := sessions[0].Exchanges[0]
	if want := "data: token 0\n\ndata: token 1\n\ndata: token 2\n\ndata: token 3\n\ndata: token 4\n\n"; string(ex.RespBody.Data) != want {
		t.Fatalf("recorded body %q", ex.RespBody.Data)
	}
	if ex.TTFB >= ex.Duration {
		t.Fatalf("ttfb %v not before the end %v of a stream", ex.TTFB, ex.Duration)
	}
}

func TestTargetDownIs502(t *testing.T) {
	ln, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + ln.Addr().String()
	ln.Close()
	p := startProxy(t, down)
	req, _ := http.NewRequestWithContext(context.Background(), "GET", p.URL+"/api/tools/", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 502 || !strings.Contains(string(body), "connection refused") {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	sessions := p.stop()
	ex := sessions[0].Exchanges[0]
	if ex.Status != 502 || ex.Error != "backend: connection refused" {
		t.Fatalf("recorded %d %q", ex.Status, ex.Error)
	}
}

func TestBackendResetIs502(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		conn.Close()
	}))
	defer backend.Close()
	p := startProxy(t, backend.URL)
	req, _ := http.NewRequestWithContext(context.Background(), "POST", p.URL+"/x", strings.NewReader("payload"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 502 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	ex := p.stop()[0].Exchanges[0]
	if ex.Status != 502 || !strings.HasPrefix(ex.Error, "backend: ") || string(ex.ReqBody.Data) != "payload" {
		t.Fatalf("recorded %d %q body %q", ex.Status, ex.Error, ex.ReqBody.Data)
	}
}

func TestClientAbortsMidBody(t *testing.T) {
	sent := make(chan struct{})
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := strings.Repeat("x", 64<<10)
		for i := range 2000 { // at most 128 MB, a bound
			if _, err := io.WriteString(w, chunk); err != nil {
				return
			}
			_ = http.NewResponseController(w).Flush()
			if i == 0 {
				close(sent)
			}
		}
	}))
	defer backend.Close()
	p := startProxy(t, backend.URL, capture.WithBodyLimit(1000))
	conn, err := (&net.Dialer{}).DialContext(context.Background(), "tcp", strings.TrimPrefix(p.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
	<-sent
	buf := make([]byte, 1000)
	if _, err := io.ReadFull(conn, buf); err != nil {
		t.Fatal(err)
	}
	conn.Close() // gone mid-body
	ex := p.stop()[0].Exchanges[0]
	if ex.Status != 200 || !strings.HasPrefix(ex.Error, "client went away after ") || !ex.RespBody.Truncated() {
		t.Fatalf("recorded %d %q, body %d of %d", ex.Status, ex.Error, len(ex.RespBody.Data), ex.RespBody.Len())
	}
}

// randomReader yields n pseudo-random bytes.
type randomReader struct {
	rng *rand.ChaCha8
	n   int64
}

func (r *randomReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), r.n)]
	_, _ = r.rng.Read(p)
	r.n -= int64(len(p))
	return len(p), nil
}

func TestLargeUploadIsStreamed(t *testing.T) {
	const size = 50 << 20
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		fmt.Fprintf(w, "%d %x", n, h.Sum(nil))
	}))
	defer backend.Close()
	p := startProxy(t, backend.URL)
	var seed [32]byte
	body := &randomReader{rng: rand.NewChaCha8(seed), n: size}
	req, _ := http.NewRequestWithContext(context.Background(), "PUT", p.URL+"/upload", body)
	req.ContentLength = size
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := sha256.New()
	_, _ = io.Copy(want, &randomReader{rng: rand.NewChaCha8(seed), n: size})
	sum := want.Sum(nil)
	if string(got) != fmt.Sprintf("%d %x", size, sum) {
		t.Fatalf("backend got %s", got)
	}
	ex := p.stop()[0].Exchanges[0]
	if ex.ReqBody.Len() != size || len(ex.ReqBody.Data) != 1<<20 || hex.EncodeToString(ex.ReqBody.SHA256[:]) != hex.EncodeToString(sum) {
		t.Fatalf("recorded %d bytes of %d", len(ex.ReqBody.Data), ex.ReqBody.Len())
	}
}

func TestHTTPSTargetAndForwardedHeaders(t *testing.T) {
	var got http.Header
	var host string
	backend := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, host = r.Header.Clone(), r.Host
		_, _ = io.WriteString(w, "ok")
	}))
	defer backend.Close()
	p := startProxy(t, backend.URL, capture.WithInsecureTarget(), capture.WithHostHeader(capture.HostTarget))
	req, _ := http.NewRequestWithContext(context.Background(), "GET", p.URL+"/x", nil)
	req.Host = "app.example"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if got.Get("X-Forwarded-For") != "127.0.0.1" || got.Get("X-Forwarded-Host") != "app.example" || got.Get("X-Forwarded-Proto") != "http" {
		t.Fatalf("forwarded headers %v", got)
	}
	if host != strings.TrimPrefix(backend.URL, "https://") {
		t.Fatalf("backend saw Host %q", host)
	}
	ex := p.stop()[0].Exchanges[0]
	if ex.Host != "app.example" || ex.Status != 200 {
		t.Fatalf("recorded host %q status %d", ex.Host, ex.Status)
	}
}

// TestFullBufferDropsAndCounts fills a tiny buffer: the exchanges past it
// are dropped and counted, and every request is still relayed.
func TestFullBufferDropsAndCounts(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, strings.Repeat("b", 600))
	}))
	defer backend.Close()
	// Room for one exchange of a 600-byte answer, its record and headers
	// (about 1,000 bytes more); sessions are written only at the end (an
	// anonymous one hands on no parts, whatever the buffer holds).
	p := startProxy(t, backend.URL, capture.WithBuffer(2000), capture.WithSessionIdle(time.Hour))
	for i := range 5 {
		req, _ := http.NewRequestWithContext(context.Background(), "GET", fmt.Sprintf("%s/%d", p.URL, i), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if len(b) != 600 {
			t.Fatalf("request %d: %d bytes relayed", i, len(b))
		}
	}
	// The count is final once the capture has stopped: an exchange is
	// filed after its answer has gone to the client.
	sessions := p.stop()
	st := p.cp.Stats()
	if st.DroppedExchanges != 4 || len(sessions) != 1 || len(sessions[0].Exchanges) != 1 {
		t.Fatalf("dropped %d, recorded %d sessions", st.DroppedExchanges, len(sessions))
	}
}

// TestBadClientsCannotStopTheCapture sends what broke the event loops
// (malformed chunk lines, an oversized chunk size, bad bytes after a chunk,
// a client that closes in the middle of a body on a keep-alive connection)
// and checks after each that the capture still relays, and that every
// exchange it began is in the trace with its reason.
func TestBadClientsCannotStopTheCapture(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		fmt.Fprint(w, "ok")
	}))
	defer backend.Close()
	p := startProxy(t, backend.URL)
	host := strings.TrimPrefix(p.URL, "http://")
	for _, tc := range []struct {
		name, send string
		cut        bool // close right after sending, mid-request
	}{
		{"bad chunk size", "POST /a HTTP/1.1\r\nHost: " + host + "\r\nTransfer-Encoding: chunked\r\n\r\nZZZZ\r\n", false},
		{"oversized chunk size", "POST /b HTTP/1.1\r\nHost: " + host + "\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFFFFF\r\n", false},
		{"bytes after a chunk", "POST /c HTTP/1.1\r\nHost: " + host + "\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXY\r\n", false},
		{"closed mid-body after a keep-alive exchange", "GET /d HTTP/1.1\r\nHost: " + host + "\r\n\r\nPOST /e HTTP/1.1\r\nHost: " + host + "\r\nContent-Length: 100\r\n\r\nshort", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := (&net.Dialer{}).DialContext(context.Background(), "tcp", host)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.WriteString(c, tc.send)
			if tc.cut {
				// Wait for the first answer, then close in the body.
				if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil {
					resp.Body.Close()
				}
			} else {
				_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
				_, _ = io.ReadAll(c) // the 400 and the close
			}
			c.Close()
			// The capture still serves.
			resp, err := http.Get(p.URL + "/after") //nolint:noctx // a test's one request
			if err != nil {
				t.Fatalf("the capture no longer answers: %v", err)
			}
			resp.Body.Close()
		})
	}
	sessions := p.stop()
	var urls []string
	for _, s := range sessions {
		for _, ex := range s.Exchanges {
			urls = append(urls, ex.URL)
		}
	}
	if got := strings.Join(urls, " "); !strings.Contains(got, "/e") || strings.Count(got, "/after") != 4 {
		t.Fatalf("the trace holds %s", got)
	}
}

// TestBackendClosesIdleConnections: a backend that closes keep-alive
// connections idle for 200 ms (as Node, gunicorn and nginx do, later), and
// a client that pauses 500 ms between requests on one connection, a POST
// with a body among them: no 502, every request answered by the backend.
func TestBackendClosesIdleConnections(t *testing.T) {
	var served atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		served.Add(1)
		fmt.Fprintf(w, "got %d bytes", len(b))
	}))
	srv.Config.IdleTimeout = 200 * time.Millisecond
	srv.Start()
	defer srv.Close()
	p := startProxy(t, srv.URL)
	c := dialRaw(t, p.URL)
	host := strings.TrimPrefix(p.URL, "http://")
	for i, req := range []string{
		"GET /a HTTP/1.1\r\nHost: " + host + "\r\n\r\n",
		"POST /b HTTP/1.1\r\nHost: " + host + "\r\nContent-Length: 5\r\n\r\nhello",
		"GET /c HTTP/1.1\r\nHost: " + host + "\r\n\r\n",
	} {
		if i > 0 {
			time.Sleep(500 * time.Millisecond) // the user reads: longer than the backend keeps the connection
		}
		c.send(req)
		if a, body := c.response(strings.Fields(req)[0]); a.StatusCode != 200 {
			t.Fatalf("request %d: %d %s", i, a.StatusCode, body)
		}
	}
	if served.Load() != 3 {
		t.Fatalf("the backend served %d requests, want 3", served.Load())
	}
	for _, s := range p.stop() {
		for _, ex := range s.Exchanges {
			if ex.Status != 200 || ex.Error != "" {
				t.Errorf("%s %s recorded %d %q", ex.Method, ex.URL, ex.Status, ex.Error)
			}
		}
	}
}
