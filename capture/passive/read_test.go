package passive

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/thrive-loadtest/thrive/traces"
)

const ms = time.Millisecond

// keepAlive builds a keep-alive connection with two exchanges, the first
// answer in two segments.
func keepAlive(t testing.TB) *capture {
	c := newCapture(t)
	tc := c.conn(51234).open()
	c.wait(100 * ms)
	tc.client("GET /api/x?y=1 HTTP/1.1\r\nHost: app.test\r\nUser-Agent: ua\r\n\r\n") // 9:00:00.103
	c.wait(20 * ms)
	tc.server("HTTP/1.1 200 OK\r\nContent-Length: 10\r\nContent-Type: text/plain\r\n\r\nhello") // .124
	c.wait(5 * ms)
	tc.server(" wor!") // .130
	c.wait(500 * ms)
	tc.client("POST /api/y HTTP/1.1\r\nHost: app.test\r\nContent-Length: 7\r\n\r\n") // .631
	tc.client("a=1&b=2")                                                             // .632
	c.wait(10 * ms)
	tc.server("HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n") // .643
	tc.close()
	return c
}

// TestKeepAlive reads two exchanges of one connection, timed by their
// packets, from a pcap and from a pcapng file.
func TestKeepAlive(t *testing.T) {
	c := keepAlive(t)
	for name, file := range map[string][]byte{"pcap": c.pcap(), "pcapng": c.pcapng()} {
		t.Run(name, func(t *testing.T) {
			out, st := mustRead(t, file)
			if len(out) != 2 || st.Exchanges != 2 || st.Connections != 1 || st.Incomplete != 0 {
				t.Fatalf("%d exchanges, stats %+v", len(out), st)
			}
			a, b := out[0], out[1]
			if a.conn != "10.0.0.7:51234>10.0.0.1:8000" || a.client != "10.0.0.7" || b.conn != a.conn {
				t.Errorf("conn %q client %q", a.conn, a.client)
			}
			if a.ex.Method != "GET" || a.ex.URL != "/api/x?y=1" || a.ex.Host != "app.test" || a.ex.Status != 200 ||
				string(a.ex.RespBody.Data) != "hello wor!" || len(a.ex.ReqHeader) != 2 || len(a.ex.RespHeader) != 2 {
				t.Errorf("first: %+v", a.ex)
			}
			if !a.start.Equal(t0().Add(103*ms)) || a.ex.TTFB != 21*ms || a.ex.Duration != 27*ms {
				t.Errorf("first at %v, TTFB %v, duration %v", a.start.Sub(t0()), a.ex.TTFB, a.ex.Duration)
			}
			if b.ex.Method != "POST" || string(b.ex.ReqBody.Data) != "a=1&b=2" || b.ex.Status != 201 || !b.start.Equal(t0().Add(631*ms)) || b.ex.Duration != 12*ms {
				t.Errorf("second at %v: %+v", b.start.Sub(t0()), b.ex)
			}
		})
	}
}

// TestLinuxSLL2 reads a capture of Linux's any device (tcpdump -i any),
// whose link type gopacket does not decode.
func TestLinuxSLL2(t *testing.T) {
	out, st := mustRead(t, keepAlive(t).sll2())
	if len(out) != 2 || st.Exchanges != 2 || st.Undecoded != 0 || out[1].ex.Status != 201 {
		t.Fatalf("%d exchanges, %+v", len(out), st)
	}
}

// pipelined builds two requests in one segment, answered in one.
func pipelined(t testing.TB) *capture {
	c := newCapture(t)
	tc := c.conn(40000).open()
	tc.client("GET /a HTTP/1.1\r\nHost: h\r\n\r\nHEAD /b HTTP/1.1\r\nHost: h\r\n\r\n")
	tc.server("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nAHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
	tc.close()
	return c
}

// TestPipelined pairs pipelined requests with their answers, the answer
// to HEAD without a body though it names a length.
func TestPipelined(t *testing.T) {
	out, st := mustRead(t, pipelined(t).pcap())
	if len(out) != 2 || st.Exchanges != 2 {
		t.Fatalf("%d exchanges, %+v", len(out), st)
	}
	if out[0].ex.URL != "/a" || string(out[0].ex.RespBody.Data) != "A" || out[1].ex.Method != "HEAD" || out[1].ex.RespBody.Len() != 0 || out[1].ex.Status != 200 {
		t.Errorf("%+v\n%+v", out[0].ex, out[1].ex)
	}
}

// chunkedGzip builds a chunked answer over three segments, and a gzipped
// one.
func chunkedGzip(t testing.TB) (*capture, []byte) {
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	_, _ = zw.Write([]byte(strings.Repeat("compressible ", 50)))
	_ = zw.Close()
	c := newCapture(t)
	tc := c.conn(40001).open()
	tc.client("GET /stream HTTP/1.1\r\nHost: h\r\n\r\n")
	tc.server("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel")
	tc.server("lo\r\n6\r\n world\r\n")
	tc.server("0\r\n\r\n")
	tc.client("GET /z HTTP/1.1\r\nHost: h\r\nAccept-Encoding: gzip\r\n\r\n")
	tc.send(false, append([]byte(fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n", z.Len())), z.Bytes()...))
	tc.close()
	return c, z.Bytes()
}

// TestChunkedAndGzip joins a chunked body without its framing, and keeps a
// gzipped body as it was sent.
func TestChunkedAndGzip(t *testing.T) {
	c, z := chunkedGzip(t)
	out, _ := mustRead(t, c.pcap())
	if len(out) != 2 {
		t.Fatalf("%d exchanges", len(out))
	}
	if got := string(out[0].ex.RespBody.Data); got != "hello world" {
		t.Errorf("chunked body %q", got)
	}
	if !bytes.Equal(out[1].ex.RespBody.Data, z) {
		t.Errorf("gzip body not kept as sent: %d bytes, want %d", len(out[1].ex.RespBody.Data), len(z))
	}
}

// outOfOrder builds a request whose segments come out of order, one of
// them twice, and an answer with a retransmitted segment; then a 100
// Continue.
func outOfOrder(t testing.TB) *capture {
	c := newCapture(t)
	tc := c.conn(40002).open()
	p1 := tc.next(true, []byte("POST /up HTTP/1.1\r\nHost: h\r\n"))
	p2 := tc.next(true, []byte("Content-Length: 6\r\n\r\n"))
	p3 := tc.next(true, []byte("abcdef"))
	c.addAt(p2)
	c.addAt(p3)
	c.addAt(p1)
	c.addAt(p2)
	a1 := tc.next(false, []byte("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nok"))
	c.addAt(a1)
	c.addAt(a1)
	tc.server("!!")
	tc.client("PUT /c HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
	tc.server("HTTP/1.1 100 Continue\r\n\r\n")
	c.wait(50 * ms)
	tc.client("hi")
	tc.server("HTTP/1.1 204 No Content\r\n\r\n")
	tc.close()
	return c
}

// TestOutOfOrder reassembles segments that came out of order and
// twice, and reads a 100 Continue's final answer.
func TestOutOfOrder(t *testing.T) {
	out, st := mustRead(t, outOfOrder(t).pcap())
	if len(out) != 2 || st.Exchanges != 2 || st.Gaps != 0 {
		t.Fatalf("%d exchanges, %+v", len(out), st)
	}
	if x := out[0].ex; x.Method != "POST" || string(x.ReqBody.Data) != "abcdef" || string(x.RespBody.Data) != "ok!!" {
		t.Errorf("out of order: %+v", x)
	}
	if !out[0].start.Equal(t0().Add(8 * ms)) {
		t.Errorf("the request starts at %v, its first byte's packet (captured third) at 8ms", out[0].start.Sub(t0()))
	}
	if x := out[1].ex; x.Method != "PUT" || string(x.ReqBody.Data) != "hi" || x.Status != 204 || x.TTFB < 50*ms {
		t.Errorf("100 Continue: %+v", x)
	}
}

// webSocket builds an upgrade, masked client frames, a fragmented server
// message, a ping and the close.
func webSocket(t testing.TB) *capture {
	c := newCapture(t)
	tc := c.conn(40003).open()
	tc.client("GET /ws/chat/ HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
	tc.send(false, append([]byte(resp), wsFrame(true, 1, []byte("welcome"), false)...))
	c.wait(100 * ms)
	tc.send(true, wsFrame(true, 1, []byte(`{"message":"hi"}`), true))
	tc.send(false, wsFrame(false, 1, []byte("par"), false))
	tc.send(false, append(wsFrame(true, 9, []byte("p"), false), wsFrame(true, 0, []byte("ts"), false)...))
	big := bytes.Repeat([]byte{7}, 300)
	tc.send(true, wsFrame(true, 2, big, true)[:100])
	tc.send(true, wsFrame(true, 2, big, true)[100:])
	c.wait(time.Second)
	tc.send(true, wsFrame(true, 8, []byte{0x03, 0xe8, 'b', 'y', 'e'}, true))
	tc.send(false, wsFrame(true, 8, []byte{0x03, 0xe8}, false))
	tc.close()
	return c
}

// TestWebSocket reads the frames after a 101, both ways, offset from the
// request's start.
func TestWebSocket(t *testing.T) {
	out, st := mustRead(t, webSocket(t).pcap())
	if len(out) != 1 || st.Exchanges != 1 {
		t.Fatalf("%d exchanges, %+v", len(out), st)
	}
	x := out[0].ex
	ws := x.WebSocket
	if x.Status != 101 || ws == nil {
		t.Fatalf("%+v", x)
	}
	want := []struct {
		client bool
		op     traces.Opcode
		data   string
	}{{false, traces.OpText, "welcome"}, {true, traces.OpText, `{"message":"hi"}`}, {false, traces.OpPing, "p"}, {false, traces.OpText, "parts"}, {true, traces.OpBinary, string(bytes.Repeat([]byte{7}, 300))}}
	if len(ws.Frames) != len(want) {
		t.Fatalf("%d frames, want %d: %+v", len(ws.Frames), len(want), ws.Frames)
	}
	for i, w := range want {
		f := ws.Frames[i]
		if f.FromClient != w.client || f.Opcode != w.op || string(f.Payload.Data) != w.data {
			t.Errorf("frame %d: %v %v %q, want %+v", i, f.FromClient, f.Opcode, f.Payload.Data, w)
		}
	}
	if ws.Frames[0].Offset != ms || ws.Frames[1].Offset != 102*ms {
		t.Errorf("frame offsets %v %v", ws.Frames[0].Offset, ws.Frames[1].Offset)
	}
	if ws.Close.Code != 1000 || ws.Close.Reason != "bye" || !ws.Close.ByClient || ws.Close.Offset < time.Second {
		t.Errorf("close %+v", ws.Close)
	}
	if x.Duration < ws.Close.Offset {
		t.Errorf("duration %v before the close %v", x.Duration, ws.Close.Offset)
	}
}

// gapped builds an answer with a segment lost in its body, an answer
// whose head is lost, then a whole exchange.
func gapped(t testing.TB) *capture {
	c := newCapture(t)
	tc := c.conn(40004).open()
	tc.client("GET /big HTTP/1.1\r\nHost: h\r\n\r\n")
	tc.server("HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\nfour")
	tc.next(false, []byte("lost"))
	tc.server("more")
	tc.client("GET /headless HTTP/1.1\r\nHost: h\r\n\r\n")
	tc.next(false, []byte("HTTP/1.1 200 OK\r\nContent-"))
	tc.server("Length: 3\r\n\r\nabc")
	tc.client("GET /after HTTP/1.1\r\nHost: h\r\n\r\n")
	tc.server("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	tc.close()
	return c
}

// TestGap keeps an exchange a gap cut short, marked incomplete, and goes
// on with the connection's next ones.
func TestGap(t *testing.T) {
	out, st := mustRead(t, gapped(t).pcap())
	if len(out) != 3 || st.Gaps != 2 || st.MissingBytes != 4+25 || st.Incomplete != 2 || st.Exchanges != 1 {
		for _, g := range out {
			t.Logf("%s %d %q", g.ex.URL, g.ex.Status, g.ex.Error)
		}
		t.Fatalf("%d exchanges, %+v", len(out), st)
	}
	if x := out[0].ex; x.Error != "capture: 4 bytes missing (lost packets)" || string(x.RespBody.Data) != "fourmore" || x.Status != 200 {
		t.Errorf("gap in a body: %+v", x)
	}
	if x := out[1].ex; x.URL != "/headless" || x.Status != 0 || !strings.Contains(x.Error, "25 bytes missing") {
		t.Errorf("gap in a head: %+v", x)
	}
	if x := out[2].ex; x.URL != "/after" || x.Status != 200 || string(x.RespBody.Data) != "ok" || x.Error != "" {
		t.Errorf("after the gaps: %+v", x)
	}
}

// tlsConn builds a TLS connection on the selected port, and an HTTP one.
func tlsConn(t testing.TB) *capture {
	c := newCapture(t)
	tc := c.conn(40005).open()
	tc.send(true, []byte{0x16, 0x03, 0x01, 0x00, 0x05, 1, 0, 0, 1, 0})
	tc.send(false, []byte{0x16, 0x03, 0x03, 0x00, 0x02, 2, 0})
	tc.client("GET / HTTP/1.1\r\n\r\n") // inside TLS, as far as a reader knows
	tc.close()
	h := c.conn(40006).open()
	h.client("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	h.server("HTTP/1.1 204 No Content\r\n\r\n")
	return c
}

// TestTLS counts a TLS connection and skips it.
func TestTLS(t *testing.T) {
	out, st := mustRead(t, tlsConn(t).pcap())
	if st.TLS != 1 || len(out) != 1 || st.Connections != 2 || out[0].conn != "10.0.0.7:40006>10.0.0.1:8000" {
		t.Fatalf("%d exchanges, %+v", len(out), st)
	}
}

// midstream builds a connection whose handshake and first exchange came
// before the capture: it begins with the end of an answer, then a request
// and its answer, then a request the capture ends before the answer of.
func midstream(t testing.TB) *capture {
	c := newCapture(t)
	tc := c.conn(40007)
	tc.server("tail of an old answer\r\nHTTP/1.1 in a body\r\n")
	tc.client("ody of an old request\r\nGET /old HTTP/1.1") // not a request: its head never ends
	tc.client("\r\nGET /new?q=1 HTTP/1.1\r\nHost: h\r\n\r\n")
	tc.server("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi")
	tc.client("GET /unanswered HTTP/1.1\r\nHost: h\r\n\r\n")
	return c
}

// TestMidstream reads a connection that began before the capture from its
// first request head, and hands on one the capture ended before the answer
// of as incomplete.
func TestMidstream(t *testing.T) {
	out, st := mustRead(t, midstream(t).pcap())
	if len(out) != 2 {
		t.Fatalf("%d exchanges, %+v", len(out), st)
	}
	if x := out[0].ex; x.URL != "/new?q=1" || x.Status != 200 || string(x.RespBody.Data) != "hi" || x.Error != "" {
		t.Errorf("%+v", x)
	}
	if x := out[1].ex; x.URL != "/unanswered" || x.Status != 0 || !strings.Contains(x.Error, "no answer") {
		t.Errorf("%+v", x)
	}
	if st.Skipped == 0 || st.Incomplete != 1 || len(st.Dropped) != 0 {
		t.Errorf("%+v", st)
	}
}

// TestTruncated reads a file cut in the middle of a packet: the error names
// the file and the packet, and the exchanges before it are handed on.
func TestTruncated(t *testing.T) {
	c := keepAlive(t)
	file := c.pcap()
	n := len(c.pkts)
	cut := file[:len(file)-len(c.pkts[n-1].data)/2]
	out, st, err := read(t, cut)
	if err == nil || !strings.Contains(err.Error(), "test.pcap") || !strings.Contains(err.Error(), fmt.Sprintf("packet %d", n)) {
		t.Fatalf("error %v", err)
	}
	if len(out) != 2 || st.Packets != int64(n-1) {
		t.Errorf("%d exchanges before the cut, %+v", len(out), st)
	}
	if _, _, err := read(t, []byte("not a capture at all")); err == nil || !strings.Contains(err.Error(), "test.pcap") {
		t.Errorf("not a capture: %v", err)
	}
}

// scenarios are the built captures, for the fuzz test's seeds.
func scenarios(t testing.TB) [][]byte {
	cg, _ := chunkedGzip(t)
	var out [][]byte
	for _, c := range []*capture{keepAlive(t), pipelined(t), cg, outOfOrder(t), webSocket(t), gapped(t), tlsConn(t), midstream(t)} {
		out = append(out, c.pcap(), c.pcapng())
	}
	return out
}

// FuzzRead reads damaged captures: no panic, and an error names the file.
func FuzzRead(f *testing.F) {
	for _, s := range scenarios(f) {
		f.Add(s)
	}
	// What tcpdump wrote on loopback while the demo driver played three
	// sessions (browse, chat with its WebSocket, import) against the demo
	// backend on port 8000.
	seeds, err := filepath.Glob(filepath.Join("testdata", "*.pcap"))
	if err != nil || len(seeds) == 0 {
		f.Fatalf("no testdata: %v", err)
	}
	for _, path := range seeds {
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, file []byte) {
		done := make(chan error, 1)
		go func() {
			_, err := Read(bytes.NewReader(file), "fuzz.pcap", Filter{Ports: []int{8000}}, func(time.Time, string, string, *traces.Exchange) {}, nil)
			done <- err
		}()
		select {
		case err := <-done:
			if err != nil && !strings.Contains(err.Error(), "fuzz.pcap") {
				t.Errorf("error without the file's name: %v", err)
			}
		case <-time.After(10 * time.Second):
			// A watchdog, not a wait: a small file is read in far less.
			buf := make([]byte, 1<<20)
			t.Fatalf("reading %d bytes took over 10 s:\n%s", len(file), buf[:runtime.Stack(buf, true)])
		}
	})
}

// TestUpgradeRefusedAndUntilClose reads an upgrade request refused (the
// client's next bytes are a request again), a client gap inside a request
// body, and an HTTP/1.0 answer that lasts until the server closes.
func TestUpgradeRefusedAndUntilClose(t *testing.T) {
	c := newCapture(t)
	tc := c.conn(40010).open()
	tc.client("GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
	tc.server("HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno")
	tc.client("POST /form HTTP/1.1\r\nHost: h\r\nContent-Length: 12\r\n\r\nabcd")
	tc.next(true, []byte("efgh"))
	tc.client("ijkl")
	tc.server("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	tc.client("GET /old HTTP/1.0\r\n\r\n")
	tc.server("HTTP/1.0 200 OK\r\n\r\nuntil ")
	c.wait(30 * ms)
	tc.server("the close")
	tc.close()
	out, st := mustRead(t, c.pcap())
	if len(out) != 3 || st.Exchanges != 2 || st.Incomplete != 1 {
		t.Fatalf("%d exchanges, %+v", len(out), st)
	}
	if x := out[0].ex; x.URL != "/ws" || x.Status != 403 || x.WebSocket != nil {
		t.Errorf("refused: %+v", x)
	}
	if x := out[1].ex; x.URL != "/form" || string(x.ReqBody.Data) != "abcdijkl" || x.Status != 200 || x.Error != "capture: 4 bytes missing (lost packets)" {
		t.Errorf("a gap in a request body: %+v", x)
	}
	if x := out[2].ex; x.URL != "/old" || string(x.RespBody.Data) != "until the close" || x.Error != "" || x.Duration < 30*ms {
		t.Errorf("until the close: %+v", x)
	}
}

// TestFilterHosts selects by server address as well as port.
func TestFilterHosts(t *testing.T) {
	file := keepAlive(t).pcap()
	for hosts, want := range map[string]int{"10.0.0.1": 2, "10.0.0.2": 0, "not an address": 0} {
		var n int
		_, err := Read(bytes.NewReader(file), "hosts.pcap", Filter{Ports: []int{8000}, Hosts: []string{hosts}}, func(time.Time, string, string, *traces.Exchange) { n++ }, nil)
		if err != nil || n != want {
			t.Errorf("hosts %q: %d exchanges, want %d (%v)", hosts, n, want, err)
		}
	}
	if st, _ := Read(bytes.NewReader(file), "ports.pcap", Filter{}, nil, nil); st.Connections != 0 {
		t.Errorf("port 80 by default: %+v", st)
	}
}

// TestFlushByTime hands on an exchange a lost segment held up once
// gapWait of the capture's time has passed, and ends a connection idle
// for idleAfter, while the file goes on: what a reader holds is bounded
// by the connections open, not by the file.
func TestFlushByTime(t *testing.T) {
	c := newCapture(t)
	a := c.conn(40020).open()
	a.client("GET /held HTTP/1.1\r\nHost: h\r\n\r\n")
	a.server("HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nab")
	a.next(false, []byte("cd"))
	a.server("efgh")
	lost := c.now()
	c.wait(gapWait + 2*time.Second)
	b := c.conn(40021).open()
	b.client("GET /idle HTTP/1.1\r\nHost: h\r\n\r\n") // never answered, never closed
	idle := c.now()
	c.wait(idleAfter + 2*time.Second)
	d := c.conn(40022).open()
	d.client("GET /last HTTP/1.1\r\nHost: h\r\n\r\n")
	d.server("HTTP/1.1 204 No Content\r\n\r\n")
	var clock time.Time
	seen := map[string]time.Time{} // the clock when each exchange was handed on
	_, err := Read(bytes.NewReader(c.pcap()), "flush.pcap", Filter{Ports: []int{8000}}, func(_ time.Time, _, _ string, ex *traces.Exchange) {
		seen[ex.URL] = clock
		if ex.URL == "/held" && (ex.Error == "" || string(ex.RespBody.Data) != "abefgh") {
			t.Errorf("held: %+v", ex)
		}
	}, func(now time.Time) { clock = now })
	if err != nil {
		t.Fatal(err)
	}
	if at, ok := seen["/held"]; !ok || at.Sub(lost) > gapWait+2*time.Second {
		t.Errorf("the exchange behind the gap handed on at %v, %v after the loss", at, at.Sub(lost))
	}
	if at, ok := seen["/idle"]; !ok || at.Sub(idle) > idleAfter+2*time.Second {
		t.Errorf("the idle connection's exchange handed on at %v, %v after", at, at.Sub(idle))
	}
	if len(seen) != 3 {
		t.Errorf("%d exchanges", len(seen))
	}
}

// TestRotatedFiles reads a capture that tcpdump -C cut into two files in
// the middle of an answer: read in a row, the connection goes on across
// the cut, and both exchanges are whole.
func TestRotatedFiles(t *testing.T) {
	c := keepAlive(t)
	whole := c.pkts
	cut := slices.IndexFunc(whole, func(p packet) bool { return bytes.Contains(p.data, []byte(" wor!")) })
	if cut < 0 {
		t.Fatal("no packet carries the answer's second part")
	}
	c.pkts = whole[:cut]
	first := c.pcap()
	c.pkts = whole[cut:]
	second := c.pcap()
	var out []traces.Exchange
	rd := NewReader(Filter{Ports: []int{8000}}, func(_ time.Time, _, _ string, ex *traces.Exchange) { out = append(out, *ex) })
	for i, file := range [][]byte{first, second} {
		if err := rd.Read(bytes.NewReader(file), fmt.Sprintf("cut%d.pcap", i), nil); err != nil {
			t.Fatal(err)
		}
	}
	st := rd.Close()
	if len(out) != 2 || st.Exchanges != 2 || st.Incomplete != 0 || string(out[0].RespBody.Data) != "hello wor!" {
		t.Fatalf("%d exchanges, stats %+v", len(out), st)
	}
}

// TestOutOfOrderLong reassembles an answer whose later segments, each
// longer than one of gopacket's pages (1,900 bytes, as loopback's segments
// of up to 64 KiB are), came before its first and waited: gopacket knows
// the time of a buffered segment's first page only, and asking it for a
// later page's panicked (a live capture at 40,000 req/s on lo, stopped).
// Its bytes take the time of the page before.
func TestOutOfOrderLong(t *testing.T) {
	c := newCapture(t)
	tc := c.conn(40009).open()
	tc.client("GET /big HTTP/1.1\r\nHost: h\r\n\r\n")
	body := bytes.Repeat([]byte("0123456789"), 1500)
	head := tc.next(false, []byte("HTTP/1.1 200 OK\r\nContent-Length: 15000\r\n\r\n"))
	b1 := tc.next(false, body[:5000])
	b2 := tc.next(false, body[5000:])
	c.addAt(b1)
	c.addAt(b2)
	c.addAt(head)
	tc.client("GET /small HTTP/1.1\r\nHost: h\r\n\r\n")
	// The same at the end of the capture: a flush hands the buffered
	// segments on after the gap.
	tc.next(false, []byte("HTTP/1.1 200 OK\r\nContent-Length: 7000\r\n\r\n"))
	c.addAt(tc.next(false, bytes.Repeat([]byte("x"), 7000)))
	out, st := mustRead(t, c.pcap())
	if len(out) != 2 || st.Exchanges != 1 || st.Incomplete != 1 {
		t.Fatalf("%d exchanges, %+v", len(out), st)
	}
	if x := out[0].ex; x.Status != 200 || !bytes.Equal(x.RespBody.Data, body) || !out[0].start.Add(x.Duration).Equal(t0().Add(9*ms)) {
		t.Errorf("the long answer: status %d, %d bytes, ends at %v (whole at 9ms, when its head came)", x.Status, len(x.RespBody.Data), out[0].start.Add(x.Duration).Sub(t0()))
	}
}
