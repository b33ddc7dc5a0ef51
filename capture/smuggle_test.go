package capture_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/thrive-loadtest/thrive/capture"
)

// A proxy in front of production must not let a client smuggle a request
// past it (RFC 9112, 11.2): a message the proxy frames one way and the
// origin another makes the origin serve bytes the proxy never saw as a
// request, and neither recorded nor answered as one. The tests here send
// what smuggling is made of through a real capture to an origin that reads
// what it gets as strictly as RFC 9112 asks, and count at the origin.

// relayModes are the capture's two relays, for a test to run on both.
// Under THRIVE_CAPTURE_LOOP=1 startProxy puts either on the event loops, so
// the goroutine relay is left out there.
func relayModes() []relayMode {
	modes := []relayMode{{"goroutine relay", nil}, {"event loops", []capture.Option{capture.WithEventLoop()}}}
	if os.Getenv("THRIVE_CAPTURE_LOOP") == "1" {
		return modes[1:]
	}
	return modes
}

type relayMode struct {
	name string
	opts []capture.Option
}

// TestSmugglingRefused sends, on a connection of its own each, requests
// whose framing is ambiguous or whose bytes downstream parsers read in
// different ways, each followed where it matters by the request a smuggler
// hides behind it. Each must get a 400 and the close, and neither reach the
// origin (which is not even connected to: no byte of it is passed on, nor
// are its leftover bytes as a request of their own) nor the trace.
func TestSmugglingRefused(t *testing.T) {
	const next = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
	for _, tc := range []struct{ name, send string }{
		{"Content-Length then chunked", "POST /cl-te HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + next},
		{"chunked then Content-Length", "POST /te-cl HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n0\r\n\r\n" + next},
		{"Content-Length with a sign", "POST /plus HTTP/1.1\r\nHost: x\r\nContent-Length: +2\r\n\r\nok"},
		{"Content-Length with a space inside", "POST /space HTTP/1.1\r\nHost: x\r\nContent-Length: 1 2\r\n\r\n" + next},
		{"Content-Length in hex", "POST /hex HTTP/1.1\r\nHost: x\r\nContent-Length: 0x2\r\n\r\nok"},
		{"Content-Length empty", "POST /empty HTTP/1.1\r\nHost: x\r\nContent-Length: \r\n\r\n" + next},
		{"Content-Length negative", "POST /negative HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n" + next},
		{"Content-Length past int64", "POST /overflow HTTP/1.1\r\nHost: x\r\nContent-Length: 18446744073709551617\r\n\r\n" + next},
		{"Content-Length twice, differing", "POST /two-lengths HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 39\r\n\r\nok" + next},
		{"Content-Length as a list", "POST /list HTTP/1.1\r\nHost: x\r\nContent-Length: 2, 2\r\n\r\nok"},
		{"NUL in a value", "GET /nul HTTP/1.1\r\nHost: x\r\nX-Id: a\x00b\r\n\r\n"},
		{"bare CR in a value", "GET /cr HTTP/1.1\r\nHost: x\r\nX-Id: a\rContent-Length: 39\r\n\r\n" + next},
		{"DEL in a value", "GET /del HTTP/1.1\r\nHost: x\r\nX-Id: a\x7fb\r\n\r\n"},
		{"control character in a name", "GET /ctl-name HTTP/1.1\r\nHost: x\r\nX\x01Id: a\r\n\r\n"},
		{"space before the colon", "POST /space-colon HTTP/1.1\r\nHost: x\r\nContent-Length : 39\r\n\r\n" + next},
		{"obs-fold", "GET /fold HTTP/1.1\r\nHost: x\r\nX-Id: a\r\n b\r\n\r\n"},
		{"folded Content-Length", "POST /fold-cl HTTP/1.1\r\nHost: x\r\nX-Id: a\r\n Content-Length: 39\r\n\r\n" + next},
		{"whitespace before the first field", "GET /ws-first HTTP/1.1\r\n Host: x\r\n\r\n"},
		{"chunked in HTTP/1.0", "POST /te10 HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n" + next},
		{"final coding not chunked", "POST /te-gzip HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n" + next},
		{"identity", "POST /te-identity HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\nContent-Length: 2\r\n\r\nok"},
		{"gzip then chunked", "POST /gzip-chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n" + next},
		{"chunked twice", "POST /chunked-twice HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + next},
		{"not quite chunked", "POST /xchunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n" + next},
		{"two Hosts", "GET /two-hosts HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n"},
		{"NUL in the target", "GET /nul\x00target HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"method not a token", "G(T /method HTTP/1.1\r\nHost: x\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for _, mode := range relayModes() {
				t.Run(mode.name, func(t *testing.T) {
					o := newStrictOrigin(t)
					p := startProxy(t, "http://"+o.addr, mode.opts...)
					rc := dialRaw(t, p.URL)
					rc.send(tc.send)
					_ = rc.c.SetReadDeadline(time.Now().Add(2 * time.Second))
					got, err := io.ReadAll(rc.br)
					status := "HTTP/1.1 400 Bad Request\r\n"
					if strings.Contains(tc.name, "gzip then chunked") {
						// A coding it does not undo: 501, as nginx and
						// net/http answer (RFC 9112, 6.1).
						status = "HTTP/1.1 501 Not Implemented\r\n"
					}
					if err != nil || !bytes.HasPrefix(got, []byte(status)) ||
						bytes.Count(got, []byte("HTTP/1.1 ")) != 1 {
						t.Errorf("answered %q (%v); want %q, then the close", got, err, status)
					}
					sessions := p.stop()
					o.settle()
					if reqs, faults := o.requests(); len(reqs) != 0 || len(faults) != 0 || o.conns.Load() != 0 {
						t.Errorf("the origin got %d connections, requests %v; faults %v", o.conns.Load(), reqs, faults)
					}
					for _, s := range sessions {
						for _, ex := range s.Exchanges {
							t.Errorf("recorded %s %s %d", ex.Method, ex.URL, ex.Status)
						}
					}
				})
			}
		})
	}
}

// TestAmbiguousAnswerCloses: an origin's answer with both Transfer-Encoding
// and Content-Length, or with a Transfer-Encoding in HTTP/1.0, is read by
// its Transfer-Encoding and both connections close after it (RFC 9112, 6.1
// and 6.3), on both relays: nothing after it on the origin's connection is
// read as the next answer.
func TestAmbiguousAnswerCloses(t *testing.T) {
	for _, tc := range []struct{ name, answer string }{
		{"both", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"},
		{"HTTP/1.0 chunked", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"},
	} {
		for _, mode := range relayModes() {
			t.Run(tc.name+"/"+mode.name, func(t *testing.T) {
				closed := make(chan struct{}, 1)
				origin := serveRaw(t, func(c net.Conn) {
					br := bufio.NewReader(c)
					if _, err := http1Head(br); err != nil {
						return
					}
					// The answer, and a forged one after it that would
					// answer the client's next request.
					_, _ = io.WriteString(c, tc.answer+"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nforged")
					_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
					if _, err := br.ReadByte(); errors.Is(err, io.EOF) {
						closed <- struct{}{}
					}
				})
				p := startProxy(t, "http://"+origin, mode.opts...)
				rc := dialRaw(t, p.URL)
				rc.send("GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
				_ = rc.c.SetReadDeadline(time.Now().Add(5 * time.Second))
				got, err := io.ReadAll(rc.br)
				if err != nil || !bytes.HasPrefix(got, []byte("HTTP/1.")) || bytes.Contains(got, []byte("forged")) || !bytes.Contains(got, []byte("hello")) {
					t.Errorf("the client got %q (%v); want the answer, then the close", got, err)
				}
				select {
				case <-closed:
				case <-time.After(5 * time.Second):
					t.Error("the origin's connection stayed open after the answer")
				}
				sessions := p.stop()
				if len(sessions) != 1 || len(sessions[0].Exchanges) != 1 {
					t.Fatalf("%d sessions", len(sessions))
				}
				if ex := sessions[0].Exchanges[0]; ex.Status != 200 || string(ex.RespBody.Data) != "hello" {
					t.Errorf("recorded %d %q %q", ex.Status, ex.RespBody.Data, ex.Error)
				}
			})
		}
	}
}

// TestMalformedAnswerIs502: an answer head the proxy cannot trust (a
// Content-Length that is not digits or differs from another, a control
// character in a field, obs-fold) reaches the client as a 502 of the
// proxy's own on both relays, none of its bytes passed on, and recorded so;
// the client's connection goes on with a fresh backend connection.
func TestMalformedAnswerIs502(t *testing.T) {
	for _, tc := range []struct{ name, answer, reason string }{
		{"signed length", "HTTP/1.1 200 OK\r\nContent-Length: +6\r\n\r\nforged", `bad Content-Length "+6"`},
		{"two lengths", "HTTP/1.1 200 OK\r\nContent-Length: 6\r\nContent-Length: 0\r\n\r\nforged", `bad Content-Length "0"`},
		{"NUL in a value", "HTTP/1.1 200 OK\r\nX-A: \x00\r\nContent-Length: 6\r\n\r\nforged", `control character '\x00' in header "X-A"`},
		{"obs-fold", "HTTP/1.1 200 OK\r\nX-A: 1\r\n Content-Length: 6\r\n\r\nforged", `folded header line`},
	} {
		for _, mode := range relayModes() {
			t.Run(tc.name+"/"+mode.name, func(t *testing.T) {
				origin := serveRaw(t, func(c net.Conn) {
					br := bufio.NewReader(c)
					for {
						lines, err := http1Head(br)
						if err != nil {
							return
						}
						answer := "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
						if strings.HasPrefix(lines[0], "GET /bad ") {
							answer = tc.answer
						}
						if _, err := io.WriteString(c, answer); err != nil {
							return
						}
					}
				})
				p := startProxy(t, "http://"+origin, mode.opts...)
				rc := dialRaw(t, p.URL)
				rc.send("GET /bad HTTP/1.1\r\nHost: x\r\n\r\n")
				if a, body := rc.response("GET"); a.StatusCode != 502 || !strings.Contains(body, tc.reason) || strings.Contains(body, "forged") {
					t.Errorf("answered %d %q; want a 502 saying %s", a.StatusCode, body, tc.reason)
				}
				rc.send("GET /good HTTP/1.1\r\nHost: x\r\n\r\n")
				if a, body := rc.response("GET"); a.StatusCode != 200 || body != "ok" {
					t.Errorf("the next request: %d %q", a.StatusCode, body)
				}
				var got []string
				for _, s := range p.stop() {
					for _, ex := range s.Exchanges {
						got = append(got, fmt.Sprintf("%s %d %s", ex.URL, ex.Status, ex.Error))
					}
				}
				if want := []string{"/bad 502 backend: " + tc.reason, "/good 200 "}; len(got) != 2 || !strings.HasPrefix(got[0], want[0]) || got[1] != want[1] {
					t.Errorf("recorded %q, want %q", got, want)
				}
			})
		}
	}
}

// serveRaw serves each connection on loopback with serve until the test
// ends, and returns the address.
func serveRaw(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	ln, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				serve(c)
			})
		}
	})
	return ln.Addr().String()
}

// http1Head reads a head's lines up to the empty one.
func http1Head(br *bufio.Reader) ([]string, error) {
	var lines []string
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return nil, err
		}
		if line = strings.TrimRight(line, "\r\n"); line == "" {
			return lines, nil
		}
		lines = append(lines, line)
	}
}

// strictOrigin is an origin on loopback that reads each request as
// strictly as RFC 9112 and 9110 ask of a server (readStrict) and answers
// each "ok". It keeps what it read and what it found wrong; given what a
// client sent (expect), it also checks that what reached it from that
// client is, in order, what the client sent.
type strictOrigin struct {
	addr   string
	conns  atomic.Int64 // connections accepted
	active atomic.Int64 // connections being read

	mu     sync.Mutex
	got    []originRequest
	faults []string
	sent   map[string][]sentRequest // what each client sent, by its address
	seen   map[string]int           // how many requests each client's came
}

// originRequest is a request the origin read whole.
type originRequest struct {
	from           string // the client's address, the last of X-Forwarded-For
	method, target string
	body           []byte
}

func (r originRequest) String() string {
	return fmt.Sprintf("%s %s from %s (%d bytes)", r.method, r.target, r.from, len(r.body))
}

func newStrictOrigin(tb testing.TB) *strictOrigin {
	tb.Helper()
	o := &strictOrigin{sent: map[string][]sentRequest{}, seen: map[string]int{}}
	ln, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	o.addr = ln.Addr().String()
	var wg sync.WaitGroup
	tb.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			o.conns.Add(1)
			o.active.Add(1)
			wg.Go(func() {
				defer o.active.Add(-1)
				defer c.Close()
				o.serve(c)
			})
		}
	})
	return o
}

// expect notes what the client at from sent.
func (o *strictOrigin) expect(from string, data []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.sent[from] = sentRequests(data)
}

func (o *strictOrigin) serve(c net.Conn) {
	br := bufio.NewReader(c)
	from := ""
	for {
		if _, err := br.Peek(1); err != nil {
			return
		}
		req, err := readStrict(br)
		if err != nil {
			// A request cut short is the capture giving up on a client;
			// anything else is a request the origin cannot read.
			if !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				o.fault(from, "not a well-formed request: "+err.Error())
			}
			return
		}
		from = req.from
		if !o.received(req) {
			return
		}
		answer := "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\n"
		if req.method != "HEAD" {
			answer += "ok"
		}
		if _, err := io.WriteString(c, answer); err != nil {
			return
		}
	}
}

// received files req, and reports whether it was what its client sent.
func (o *strictOrigin) received(req originRequest) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.got = append(o.got, req)
	sent, ok := o.sent[req.from]
	if !ok {
		return true
	}
	k := o.seen[req.from]
	o.seen[req.from]++
	switch {
	case k >= len(sent):
		o.faults = append(o.faults, fmt.Sprintf("%s: request %d reached the origin (%s), the client sent %d", req.from, k+1, req, len(sent)))
		return false
	case sent[k].method != req.method || !bytes.Equal(sent[k].body, req.body):
		o.faults = append(o.faults, fmt.Sprintf("%s: request %d reached the origin as %s %q, the client sent %s %q", req.from, k+1, req.method, req.body, sent[k].method, sent[k].body))
		return false
	}
	return true
}

func (o *strictOrigin) fault(from, what string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.faults = append(o.faults, from+": "+what)
}

// settle waits, a few seconds at most, for the connections the origin
// reads to end.
func (o *strictOrigin) settle() {
	for deadline := time.Now().Add(3 * time.Second); o.active.Load() > 0 && time.Now().Before(deadline); {
		time.Sleep(100 * time.Microsecond)
	}
}

// forget returns what the origin found wrong, and forgets it, the client
// at from and the requests read so far.
func (o *strictOrigin) forget(from string) []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	faults := o.faults
	o.faults, o.got = nil, nil
	delete(o.sent, from)
	delete(o.seen, from)
	return faults
}

// requests returns the requests the origin read whole, and what it found
// wrong.
func (o *strictOrigin) requests() ([]originRequest, []string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]originRequest(nil), o.got...), append([]string(nil), o.faults...)
}

// readStrict reads one request as RFC 9112 and 9110 ask of a server, and
// refuses what they let a server refuse: lines not ended by CRLF, a bare
// CR, a method that is not a token, a control character or space in the
// target, a version other than HTTP/1.1 or 1.0, a field name that is not a
// token, a control character other than HTAB in a value, obs-fold, other
// than one Host, both Transfer-Encoding and Content-Length, a
// Transfer-Encoding other than chunked or in HTTP/1.0, a Content-Length
// that is not digits or differs from another, chunk lines that are not hex
// digits and CRLF. It is written apart from capture/wire, as a second
// reading to hold the capture's to. Trailer lines are read as the capture
// passes them on, as the client sent them: only their end is checked
// (neither relay holds them to the rules of fields yet).
func readStrict(br *bufio.Reader) (originRequest, error) {
	var req originRequest
	line, err := strictLine(br)
	if err != nil {
		return req, err
	}
	parts := strings.Split(line, " ")
	if len(parts) != 3 || !tokenChars(parts[0]) || parts[1] == "" || strings.IndexFunc(parts[1], func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 ||
		(parts[2] != "HTTP/1.1" && parts[2] != "HTTP/1.0") {
		return req, fmt.Errorf("request line %q", line)
	}
	req.method, req.target = parts[0], parts[1]
	var hosts int
	var lengths, codings []string
	for {
		line, err := strictLine(br)
		if err != nil {
			return req, err
		}
		if line == "" {
			break
		}
		name, value, err := strictField(line)
		if err != nil {
			return req, err
		}
		switch strings.ToLower(name) {
		case "host":
			hosts++
		case "content-length":
			lengths = append(lengths, value)
		case "transfer-encoding":
			codings = append(codings, value)
		case "x-forwarded-for":
			req.from = strings.TrimSpace(value[strings.LastIndexByte(value, ',')+1:])
		}
	}
	switch {
	case hosts != 1:
		return req, fmt.Errorf("%d Host fields", hosts)
	case len(codings) > 0 && len(lengths) > 0:
		return req, errors.New("both Transfer-Encoding and Content-Length")
	case len(codings) > 0 && (parts[2] != "HTTP/1.1" || len(codings) != 1 || !strings.EqualFold(codings[0], "chunked")):
		return req, fmt.Errorf("Transfer-Encoding %q in %s", codings, parts[2])
	case len(codings) > 0:
		req.body, err = strictChunked(br)
		return req, err
	case len(lengths) > 0:
		for _, l := range lengths {
			if l != lengths[0] || l == "" || strings.Trim(l, "0123456789") != "" || len(l) > 12 {
				return req, fmt.Errorf("Content-Length %q", lengths)
			}
		}
		n, _ := strconv.Atoi(lengths[0])
		req.body = make([]byte, n)
		_, err = io.ReadFull(br, req.body)
		return req, err
	}
	return req, nil
}

// strictLine reads a line that ends with CRLF and holds no other CR.
func strictLine(br *bufio.Reader) (string, error) {
	line, err := br.ReadString('\n')
	if err != nil {
		if line != "" && errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return "", err
	}
	line, ok := strings.CutSuffix(line, "\r\n")
	if !ok || strings.IndexByte(line, '\r') >= 0 {
		return "", fmt.Errorf("line %q not ended by CRLF alone", line)
	}
	return line, nil
}

// strictField splits a field line: a token, a colon, and a value of
// visible characters, spaces and tabs, or obs-text.
func strictField(line string) (name, value string, err error) {
	name, value, ok := strings.Cut(line, ":")
	if !ok || !tokenChars(name) {
		return "", "", fmt.Errorf("field line %q", line)
	}
	for _, c := range []byte(value) {
		if c < ' ' && c != '\t' || c == 0x7f {
			return "", "", fmt.Errorf("field line %q", line)
		}
	}
	return name, strings.Trim(value, " \t"), nil
}

// tokenChars reports whether s is a token (RFC 9110, 5.6.2).
func tokenChars(s string) bool {
	for _, c := range []byte(s) {
		letter := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
		digit := '0' <= c && c <= '9'
		if !letter && !digit && strings.IndexByte("!#$%&'*+-.^_`|~", c) < 0 {
			return false
		}
	}
	return s != ""
}

// strictChunked reads a chunked body: hex sizes (with extensions, and
// whitespace before them as net/http allows), each chunk's data followed
// by CRLF, then trailer lines up to an empty one.
func strictChunked(br *bufio.Reader) ([]byte, error) {
	var body []byte
	for {
		line, err := strictLine(br)
		if err != nil {
			return nil, err
		}
		size, ext, _ := strings.Cut(line, ";")
		size = strings.TrimRight(size, " \t")
		n, err := strconv.ParseUint(size, 16, 64)
		if err != nil || len(size) > 16 || strings.IndexFunc(ext, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }) >= 0 {
			return nil, fmt.Errorf("chunk line %q", line)
		}
		if n == 0 {
			break
		}
		if n > 16<<20 {
			return nil, fmt.Errorf("chunk of %d bytes, more than the fuzzer sends", n)
		}
		chunk := make([]byte, n+2)
		if _, err := io.ReadFull(br, chunk); err != nil {
			return nil, err
		}
		if !bytes.HasSuffix(chunk, []byte("\r\n")) {
			return nil, errors.New("chunk data not followed by CRLF")
		}
		body = append(body, chunk[:n]...)
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if strings.TrimRight(line, "\r\n") == "" && strings.Count(line, "\r") <= 1 {
			return body, nil
		}
		// A trailer field, held to the rules of a header field.
		name, value, ok := strings.Cut(strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r"), ":")
		if !ok || name == "" || strings.ContainsAny(name, " \t\r\n\x00") ||
			strings.IndexFunc(value, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }) >= 0 {
			return nil, fmt.Errorf("trailer line %q", line)
		}
	}
}

// sentRequest is a request a client sent, as sentRequests reads it.
type sentRequest struct {
	method string
	body   []byte
}

// sentRequests reads the requests in what a client sent as a lenient server
// would (any line ends, anything in names and values, chunk lines as loose
// as anyone reads them), up to the first whose framing is in doubt: both
// Transfer-Encoding and Content-Length, a Transfer-Encoding other than
// chunked alone or in HTTP/1.0, a Content-Length that is not digits or
// differs from another. A proxy must refuse that one, so what reaches the
// origin from the client can only be, in order, some of these requests.
// It is a bound written apart from capture/wire: being lenient, it holds
// the capture to no rule but the framing.
func sentRequests(data []byte) []sentRequest {
	var out []sentRequest
	for len(data) > 0 {
		head, rest, ok := cutHead(data)
		if !ok {
			return out
		}
		lines := strings.Split(head, "\n")
		for i := range lines {
			lines[i] = strings.TrimSuffix(lines[i], "\r")
		}
		method, _, found := strings.Cut(lines[0], " ")
		proto := lines[0][strings.LastIndexByte(lines[0], ' ')+1:]
		if !found || (proto != "HTTP/1.1" && proto != "HTTP/1.0") {
			return out
		}
		var lengths, codings []string
		for _, l := range lines[1:] {
			name, value, _ := strings.Cut(l, ":")
			value = strings.Trim(value, " \t")
			switch {
			case strings.EqualFold(name, "Content-Length"):
				lengths = append(lengths, value)
			case strings.EqualFold(name, "Transfer-Encoding"):
				codings = append(codings, value)
			}
		}
		var body []byte
		switch {
		case len(codings) > 0:
			if len(lengths) > 0 || proto != "HTTP/1.1" || len(codings) != 1 || !strings.EqualFold(codings[0], "chunked") {
				return out
			}
			if body, rest, ok = looseChunked(rest); !ok {
				return out
			}
		case len(lengths) > 0:
			n, err := strconv.ParseUint(lengths[0], 10, 63)
			for _, l := range lengths {
				if l != lengths[0] || strings.Trim(l, "0123456789") != "" {
					err = errors.New("lengths differ")
				}
			}
			if err != nil || n > uint64(len(rest)) {
				return out
			}
			body, rest = rest[:n], rest[n:]
		}
		out = append(out, sentRequest{method: method, body: body})
		data = rest
	}
	return out
}

// cutHead cuts what a client sent after the first empty line (LF or
// CRLF): the head's lines before it, without its last line end.
func cutHead(data []byte) (head string, rest []byte, ok bool) {
	for i, c := range data {
		switch {
		case c != '\n':
		case i+1 < len(data) && data[i+1] == '\n':
			return string(data[:i]), data[i+2:], true
		case i+2 < len(data) && data[i+1] == '\r' && data[i+2] == '\n':
			return string(data[:i]), data[i+3:], true
		}
	}
	return "", nil, false
}

// looseChunked reads a chunked body from b as leniently as any server
// does, and returns it and what follows it; ok is false when b does not
// hold one whole.
func looseChunked(b []byte) (body, rest []byte, ok bool) {
	line := func() (string, bool) {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return "", false
		}
		l := strings.TrimSuffix(string(b[:i]), "\r")
		b = b[i+1:]
		return l, true
	}
	for {
		l, ok := line()
		if !ok {
			return nil, nil, false
		}
		size, _, _ := strings.Cut(l, ";")
		n, err := strconv.ParseUint(strings.Trim(size, " \t"), 16, 64)
		if err != nil || n > uint64(len(b)) {
			return nil, nil, false
		}
		if n == 0 {
			break
		}
		body, b = append(body, b[:n]...), b[n:]
		switch {
		case bytes.HasPrefix(b, []byte("\r\n")):
			b = b[2:]
		case bytes.HasPrefix(b, []byte("\n")):
			b = b[1:]
		default:
			return nil, nil, false
		}
	}
	for {
		l, ok := line()
		if !ok {
			return nil, nil, false
		}
		if l == "" {
			return body, b, true
		}
	}
}

// TestBadTrailerNotPassedOn: a chunked request whose trailer section holds
// what no header may (a NUL, a folded line, a name that is not a token)
// is cut at that line: the origin, which has its body already, never reads
// the line, and no answer comes to a request it never got whole.
func TestBadTrailerNotPassedOn(t *testing.T) {
	for _, tc := range []struct{ name, trailer string }{
		{"NUL in a trailer", "X-T: a\x00b\r\n"},
		{"folded trailer", "X-T: a\r\n b\r\n"},
		{"trailer name not a token", "X T: a\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, mode := range relayModes() {
				t.Run(mode.name, func(t *testing.T) {
					o := newStrictOrigin(t)
					p := startProxy(t, "http://"+o.addr, mode.opts...)
					rc := dialRaw(t, p.URL)
					rc.send("POST /trailer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n" + tc.trailer + "\r\n")
					_ = rc.c.SetReadDeadline(time.Now().Add(2 * time.Second))
					got, _ := io.ReadAll(rc.br)
					if bytes.Contains(got, []byte(" 200 ")) {
						t.Errorf("answered %q: the request was passed on whole", got)
					}
					p.stop()
					o.settle()
					if reqs, faults := o.requests(); len(reqs) != 0 || len(faults) != 0 {
						t.Errorf("the origin got requests %v; faults %v", reqs, faults)
					}
				})
			}
		})
	}
}
