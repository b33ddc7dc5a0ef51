package capture_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/thrive-loadtest/thrive/capture"
)

// FuzzRelay throws what a fuzzer makes at one running capture over real
// sockets (THRIVE_CAPTURE_LOOP=1 for the event loops): the bytes in pieces
// cut where the input says, the client closing early or not, and after each
// input checks that the capture still relays a good request. Whatever a
// client sends, the capture must neither crash nor stop serving, nor
// smuggle: the origin (strictOrigin) reads every request that reaches it
// as strictly as RFC 9112 asks, and what reaches it from the input's
// client must be, in order, some of the requests the client sent, as a
// lenient reading that stops where framing is in doubt finds them
// (sentRequests). So each request reaching the origin is one well-formed
// request with consistent framing, and the origin never receives more
// requests than the client's bytes hold heads.
//
//	go test -run XXX -fuzz FuzzRelay -fuzztime 60s ./capture/
func FuzzRelay(f *testing.F) {
	o := newStrictOrigin(f)
	p := startProxy(f, "http://"+o.addr)
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
		// What smuggling is made of (TestSmugglingRefused has more).
		"POST /f HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /g HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /h HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\nGET /i HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /j HTTP/1.1\r\nHost: x\r\nContent-Length: +2\r\n\r\nokGET /k HTTP/1.1\r\n\r\n",
		"POST /l HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /m HTTP/1.1\r\n\r\n",
		"GET /n HTTP/1.1\r\nHost: x\r\nX-A: a\x00\r\nX-B: a\r\n Content-Length: 2\r\n\r\nok",
		"POST /o HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nGET /p HTTP/1.1\r\nX: y\r\n\r\n",
		"POST /q HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
	} {
		f.Add([]byte(seed), uint16(7), false)
	}
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	var clients atomic.Uint32
	f.Fuzz(func(t *testing.T, data []byte, cut uint16, closeEarly bool) {
		// Each input's client has an address of its own, by which the
		// origin knows its requests (the capture appends it to
		// X-Forwarded-For).
		n := clients.Add(1)
		from := &net.TCPAddr{IP: net.IPv4(127, byte(n/253>>8), byte(n/253), byte(n%253)+2)} // never 127.0.0.1
		o.expect(from.IP.String(), data)
		throw(t, host, data, cut, closeEarly, from)
		stillServes(t, hc, p.URL+"/health", data)
		o.settle()
		if faults := o.forget(from.IP.String()); len(faults) > 0 {
			t.Fatalf("after %q:\n%s", data, strings.Join(faults, "\n"))
		}
	})
}

// throw writes data to the capture at host on a connection of its own
// from the address from (nil for any), in pieces cut where cut says. Unless
// closeEarly, it reads what comes back for a moment, then ends its side
// and reads until the capture closes, a couple of seconds at most: the
// capture is done with the connection then. Then it closes.
func throw(t *testing.T, host string, data []byte, cut uint16, closeEarly bool, from net.Addr) {
	t.Helper()
	c, err := (&net.Dialer{LocalAddr: from}).DialContext(context.Background(), "tcp", host)
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
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, _ = io.Copy(io.Discard, c)
	}
	c.Close()
}

// stillServes checks that a good request through hc to url is answered
// "ok" after data was thrown at the capture.
func stillServes(t *testing.T, hc *http.Client, url string, data []byte) {
	t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("after %q the capture no longer answers: %v", data, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "ok" {
		t.Fatalf("after %q: %d %q", data, resp.StatusCode, body)
	}
}

// loopbackOnly is a dialer that reaches loopback and nothing else, and
// resolves names from /etc/hosts only: fuzzed request lines name any host,
// and a fuzzer must send nothing beyond this machine.
func loopbackOnly() *net.Dialer {
	return &net.Dialer{
		Resolver: &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
			return nil, errors.New("no DNS in the fuzzer")
		}},
		Control: func(_, address string, _ syscall.RawConn) error {
			host, _, err := net.SplitHostPort(address)
			if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
				return fmt.Errorf("%s: not loopback", address)
			}
			return nil
		},
	}
}

// FuzzForward throws fuzzed request lines and bytes at a forward-proxy
// capture (CONNECT lines, absolute-form requests, TLS after a CONNECT) and
// checks after each input that it still relays a request to an origin,
// and that every request that reached the origin was one well-formed
// request with consistent framing (strictOrigin; a forward proxy sends no
// X-Forwarded-For, by which the origin could tell the input's requests
// from others and count them). Its dialer reaches loopback only.
//
//	go test -run XXX -fuzz FuzzForward -fuzztime 60s ./capture/
func FuzzForward(f *testing.F) {
	so := newStrictOrigin(f)
	originURL := "http://" + so.addr
	ca, _, err := capture.NewCA(time.Now())
	if err != nil {
		f.Fatal(err)
	}
	p := startProxy(f, "", capture.WithCA(ca), capture.WithDialer(loopbackOnly()), capture.WithGrace(time.Second))
	host := strings.TrimPrefix(p.URL, "http://")
	o := so.addr
	for _, seed := range []string{
		"GET " + originURL + "/ HTTP/1.1\r\nHost: x\r\n\r\n",
		"CONNECT " + o + " HTTP/1.1\r\nHost: " + o + "\r\n\r\nGET / HTTP/1.1\r\nHost: " + o + "\r\n\r\n",
		"CONNECT " + o + " HTTP/1.1\r\n\r\n\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",
		"CONNECT [::1]:1 HTTP/1.1\r\n\r\n",
		"CONNECT 127.0.0.1:0 HTTP/1.1\r\n\r\n",
		"CONNECT host:port:extra HTTP/1.1\r\n\r\n",
		"GET http://[::1 HTTP/1.1\r\n\r\n",
		"GET https://127.0.0.1:1/x HTTP/1.1\r\n\r\n",
		"POST " + originURL + "/u HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
		"GET /relative HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST " + originURL + "/s HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET " + originURL + "/t HTTP/1.1\r\n\r\n",
		"CONNECT " + o + " HTTP/1.1\r\n\r\nPOST /u HTTP/1.1\r\nHost: " + o + "\r\nContent-Length: +1\r\nX: \x00\r\n\r\nx",
	} {
		f.Add([]byte(seed), uint16(9), false)
	}
	pu, _ := url.Parse(p.URL)
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(pu), DisableKeepAlives: true}}
	f.Fuzz(func(t *testing.T, data []byte, cut uint16, closeEarly bool) {
		throw(t, host, data, cut, closeEarly, nil)
		stillServes(t, hc, originURL+"/health", data)
		so.settle()
		if faults := so.forget(""); len(faults) > 0 {
			t.Fatalf("after %q:\n%s", data, strings.Join(faults, "\n"))
		}
	})
}
