package capture_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// FuzzRelay throws what a fuzzer makes at one running capture over real
// sockets (THRIVE_CAPTURE_LOOP=1 for the event loops): the bytes in pieces
// cut where the input says, the client closing early or not, and after each
// input checks that the capture still relays a good request. Whatever a
// client sends, the capture must neither crash nor stop serving.
//
//	go test -run XXX -fuzz FuzzRelay -fuzztime 60s ./capture/
func FuzzRelay(f *testing.F) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		fmt.Fprint(w, "ok")
	}))
	f.Cleanup(backend.Close)
	p := startProxy(f, backend.URL)
	host := strings.TrimPrefix(p.URL, "http://")
	for _, seed := range []string{
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZZZ\r\n",
		"POST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXY\r\n0\r\n\r\n",
		"POST /c HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nshort",
		"GET /d HTTP/1.1\r\nHost: x\r\n\r\nGET /e HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n\x81\x05hello",
		"GET / HTTP/1.0\r\n\r\n",
		"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",
	} {
		f.Add([]byte(seed), uint16(7), false)
	}
	f.Fuzz(func(t *testing.T, data []byte, cut uint16, closeEarly bool) {
		c, err := (&net.Dialer{}).DialContext(context.Background(), "tcp", host)
		if err != nil {
			t.Fatalf("the capture no longer accepts: %v", err)
		}
		step := max(int(cut)%64, 1)
		for i := 0; i < len(data); i += step {
			if _, err := c.Write(data[i:min(i+step, len(data))]); err != nil {
				break // the capture closed on bad input: allowed
			}
		}
		if !closeEarly {
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Millisecond))
			_, _ = io.Copy(io.Discard, c)
		}
		c.Close()
		// The capture still serves.
		hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, p.URL+"/health", nil)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("after %q the capture no longer answers: %v", data, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "ok" {
			t.Fatalf("after %q: %d %q", data, resp.StatusCode, body)
		}
	})
}
