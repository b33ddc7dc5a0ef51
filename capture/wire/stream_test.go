package wire

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// blockingEvents follows a whole connection's bytes the way the goroutine
// relay does, with readHead and relayBody.
func blockingEvents(input []byte, request bool, methods []string) (events []string, failed bool) {
	br := bufio.NewReaderSize(bytes.NewReader(input), 16<<10) // as the relay reads (its ioBufferSize)
	dst := bufio.NewWriter(io.Discard)
	buf := make([]byte, 4096)
	for {
		if _, err := br.Peek(1); errors.Is(err, io.EOF) {
			return events, false
		}
		h, err := ReadHead(br, request)
		if err != nil {
			return events, true
		}
		events = append(events, headEvent(h))
		var fr Framing
		if request {
			fr = h.RequestFraming()
		} else {
			if h.Status == 101 {
				rest, _ := io.ReadAll(br)
				return append(events, fmt.Sprintf("socket %q", rest)), false
			}
			if h.Status < 200 {
				continue
			}
			method := ""
			if len(methods) > 0 {
				method, methods = methods[0], methods[1:]
			}
			fr = h.ResponseFraming(method)
		}
		tap := NewTap(1 << 30)
		if res := RelayBody(dst, br, fr, h.Length, tap, buf, true); res.ReadErr != nil {
			return events, true
		}
		events = append(events, fmt.Sprintf("body %q", tap.data), "end")
	}
}

// streamEvents feeds the same bytes to a msgStream in pieces cut at cuts,
// and checks that the heads and raw bytes it reports are the input again.
func streamEvents(t *testing.T, input []byte, request bool, methods []string, cuts []int) (events []string, failed bool) {
	s := &MsgStream{Request: request}
	var data, seen, socket []byte
	inSocket := false
	s.OnHead = func(h *Head, raw []byte) bool {
		events = append(events, headEvent(h))
		seen = append(seen, raw...)
		inSocket = !request && h.Status == 101
		return false
	}
	s.OnRaw = func(b []byte) {
		seen = append(seen, b...)
		if inSocket {
			socket = append(socket, b...)
		}
	}
	s.OnData = func(b []byte) { data = append(data, b...) }
	s.OnEnd = func() bool {
		events = append(events, fmt.Sprintf("body %q", data), "end")
		data = data[:0]
		return false
	}
	for _, m := range methods {
		s.Expect(m)
	}
	at := 0
	for _, cut := range append(cuts, len(input)) {
		if cut <= at || cut > len(input) {
			continue
		}
		n, err := s.Feed(input[at:cut])
		if err != nil {
			return events, true
		}
		if n != cut-at {
			t.Fatalf("fed %d bytes, consumed %d, though no callback said stop", cut-at, n)
		}
		at = cut
	}
	if err := s.Closed(); err != nil {
		return events, true
	}
	if inSocket {
		events = append(events, fmt.Sprintf("socket %q", socket))
	}
	if !bytes.Equal(seen, input) {
		t.Fatalf("heads and raw bytes:\n%q\nwant the input:\n%q", seen, input)
	}
	return events, false
}

func headEvent(h *Head) string {
	var b strings.Builder
	if h.Method != "" {
		fmt.Fprintf(&b, "head %s %s %s", h.Method, h.Target, h.Proto)
	} else {
		fmt.Fprintf(&b, "head %d %s", h.Status, h.Reason)
	}
	for _, f := range h.Fields {
		fmt.Fprintf(&b, "|%s=%s", f.Name, f.Value)
	}
	return b.String()
}

// streamCase is a connection's bytes in one direction, with the methods of
// the requests its answers answer.
type streamCase struct {
	name    string
	request bool
	methods []string
	input   string
}

func streamCases() []streamCase {
	return []streamCase{
		{"requests", true, nil, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n" +
			"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello" +
			"PUT /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nX-Sum: 9\r\n\r\n" +
			"GET /d HTTP/1.1\nHost: x\n\n"},
		{"responses", false, []string{"GET", "HEAD", "GET", "GET", "GET"}, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" +
			"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + // HEAD: no body
			"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n" +
			"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n" +
			"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the close"},
		{"upgrade", false, []string{"GET"}, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x02hi"},
		{"empty length", false, []string{"GET", "GET"}, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"},
		{"truncated body", true, nil, "POST /b HTTP/1.1\r\nContent-Length: 5\r\n\r\nhel"},
		{"truncated head", true, nil, "GET /a HTTP/1.1\r\nHost: x\r\n"},
		{"bad chunk", true, nil, "PUT /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"},
		{"chunk too long", true, nil, "PUT /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n"},
		{"bad head", true, nil, "GET /a HTTP/1.1\r\nno colon here\r\n\r\n"},
	}
}

// TestStreamFollowsAsBlockingReads checks that a msgStream fed in pieces of
// every size finds what readHead and relayBody find in the whole.
func TestStreamFollowsAsBlockingReads(t *testing.T) {
	for _, tc := range streamCases() {
		t.Run(tc.name, func(t *testing.T) {
			input := []byte(tc.input)
			want, wantFail := blockingEvents(input, tc.request, tc.methods)
			if len(want) == 0 && !wantFail {
				t.Fatal("the case finds nothing")
			}
			for size := 1; size <= len(input); size++ {
				var cuts []int
				for at := size; at < len(input); at += size {
					cuts = append(cuts, at)
				}
				got, gotFail := streamEvents(t, input, tc.request, tc.methods, cuts)
				if gotFail != wantFail || (!wantFail && !slices.Equal(got, want)) {
					t.Fatalf("pieces of %d: failed %v, events\n%s\nwant failed %v,\n%s", size, gotFail,
						strings.Join(got, "\n"), wantFail, strings.Join(want, "\n"))
				}
			}
		})
	}
}

// TestStreamStops checks that a callback's stop leaves the rest unconsumed:
// a relay holds a client's next request until the answer is over.
func TestStreamStops(t *testing.T) {
	input := []byte("GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n")
	var targets []string
	s := &MsgStream{Request: true}
	s.OnHead = func(h *Head, _ []byte) bool { targets = append(targets, h.Target); return false }
	s.OnEnd = func() bool { return true }
	n, err := s.Feed(input)
	if err != nil || n != len("GET /a HTTP/1.1\r\n\r\n") || !slices.Equal(targets, []string{"/a"}) {
		t.Fatalf("consumed %d, %v, heads %v", n, err, targets)
	}
	if m, err := s.Feed(input[n:]); err != nil || n+m != len(input) || !slices.Equal(targets, []string{"/a", "/b"}) {
		t.Fatalf("then consumed %d, %v, heads %v", m, err, targets)
	}
}

// FuzzStream checks msgStream against the blocking reads on any bytes cut
// at random places.
func FuzzStream(f *testing.F) {
	for _, tc := range streamCases() {
		f.Add([]byte(tc.input), tc.request, uint64(7))
	}
	f.Fuzz(func(t *testing.T, input []byte, request bool, seed uint64) {
		methods := []string{"GET", "HEAD", "GET", "POST", "HEAD", "GET"}
		want, wantFail := blockingEvents(input, request, methods)
		r := rand.New(rand.NewPCG(seed, 1))
		var cuts []int
		for at := 0; at < len(input); {
			at += 1 + r.IntN(16)
			cuts = append(cuts, at)
		}
		got, gotFail := streamEvents(t, input, request, methods, cuts)
		if gotFail != wantFail || (!wantFail && !slices.Equal(got, want)) {
			t.Fatalf("failed %v, events\n%s\nwant failed %v,\n%s", gotFail, strings.Join(got, "\n"), wantFail, strings.Join(want, "\n"))
		}
	})
}
