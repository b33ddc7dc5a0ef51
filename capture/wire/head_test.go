package wire

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestReadHead(t *testing.T) {
	const req = "POST /api/x?q=1 HTTP/1.1\r\nHost: app.example\r\nx-lower: kept as sent\r\nContent-Length: 5\r\n" +
		"Connection: keep-alive, X-Hop\r\nX-Hop: 1\r\nExpect: 100-continue\r\nX-Forwarded-For: 10.0.0.1\r\n\r\nhello"
	// Whole in the buffer, and one byte at a time (the line-by-line path).
	for name, r := range map[string]io.Reader{"buffered": strings.NewReader(req), "byte by byte": iotest.OneByteReader(strings.NewReader(req))} {
		br := bufio.NewReaderSize(r, 16)
		if name == "buffered" {
			br = bufio.NewReader(r)
		}
		h, err := ReadHead(br, true)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if h.Method != "POST" || h.Target != "/api/x?q=1" || h.Proto != "HTTP/1.1" || h.Host != "app.example" ||
			h.Length != 5 || h.Chunked || h.Close || !h.Expect || h.XFF != "10.0.0.1" || h.RequestFraming() != ByLength {
			t.Fatalf("%s: %+v", name, h)
		}
		if len(h.Fields) != 7 || h.Fields[1].Name != "x-lower" || h.Fields[1].Value != "kept as sent" {
			t.Fatalf("%s: fields %v", name, h.Fields)
		}
		if !h.HopByHop("x-hop") || !h.HopByHop("Connection") || h.HopByHop("Content-Length") {
			t.Fatalf("%s: hop-by-hop fields wrong", name)
		}
		if rest, _ := io.ReadAll(br); string(rest) != "hello" {
			t.Fatalf("%s: body left %q", name, rest)
		}
	}
}

func TestReadHeadFraming(t *testing.T) {
	for _, tc := range []struct {
		head    string
		method  string
		Framing Framing
		close   bool
	}{
		{"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", "GET", ByLength, false},
		{"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", "HEAD", NoBody, false},
		{"HTTP/1.1 204 No Content\r\n\r\n", "GET", NoBody, false},
		{"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", "GET", NoBody, false},
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 3\r\n\r\n", "GET", Chunked, false},
		{"HTTP/1.1 200 OK\r\n\r\n", "GET", UntilClose, false},
		{"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", "GET", ByLength, true},
		{"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 1\r\n\r\n", "GET", ByLength, false},
		{"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n", "GET", ByLength, true},
	} {
		h, err := ReadHead(bufio.NewReader(strings.NewReader(tc.head)), false)
		if err != nil {
			t.Fatalf("%q: %v", tc.head, err)
		}
		if got := h.ResponseFraming(tc.method); got != tc.Framing || h.Close != tc.close {
			t.Errorf("%q for %s: framing %d close %v, want %d %v", tc.head, tc.method, got, h.Close, tc.Framing, tc.close)
		}
	}
}

func TestReadHeadRejects(t *testing.T) {
	for _, tc := range []struct{ name, head, want string }{
		{"no version", "GET /\r\n\r\n", `malformed request line "GET /"`},
		{"HTTP/2", "GET / HTTP/2.0\r\n\r\n", `malformed request line "GET / HTTP/2.0"`},
		{"header without colon", "GET / HTTP/1.1\r\nNo colon\r\n\r\n", `malformed header line "No colon"`},
		{"folded header", "GET / HTTP/1.1\r\n folded: value\r\n\r\n", `malformed header line " folded: value"`},
		{"two lengths", "GET / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", `bad Content-Length "6"`},
		{"negative length", "GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", `bad Content-Length "-1"`},
		{"gzip transfer coding", "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", `unsupported Transfer-Encoding "gzip"`},
		{"head too large", "GET / HTTP/1.1\r\nX: " + strings.Repeat("a", MaxHead) + "\r\n\r\n", "head larger than 64 KiB"},
	} {
		if _, err := ReadHead(bufio.NewReader(strings.NewReader(tc.head)), true); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %q: %v, want an error saying %q", tc.name, Clip(tc.head), err, tc.want)
		}
	}
	// A stream that ends before its head does: at once it is io.EOF (a
	// client that closed an idle connection), later it is unexpected.
	if _, err := ReadHead(bufio.NewReader(strings.NewReader("")), true); !errors.Is(err, io.EOF) {
		t.Errorf("empty stream: %v", err)
	}
	for _, cut := range []string{"GET / HT", "GET / HTTP/1.1\r\nHost: x\r\n"} {
		if _, err := ReadHead(bufio.NewReader(strings.NewReader(cut)), true); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("%q: %v", cut, err)
		}
	}
	if _, err := ReadHead(bufio.NewReader(strings.NewReader("HTTP/1.1 2000 OK\r\n\r\n")), false); err == nil || !strings.Contains(err.Error(), `malformed status line "HTTP/1.1 2000 OK"`) {
		t.Errorf("status 2000: %v", err)
	}
}

// FuzzReadHead feeds arbitrary bytes to the head parser on both paths: it
// must not panic, and both paths must agree.
func FuzzReadHead(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\nHost: x\r\nCookie: a=b\r\n\r\n"), true)
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), false)
	f.Add([]byte("GET / HTTP/1.1\nX: y\n\nZ\r\n\r\n"), true)
	f.Add([]byte("POST /x HTTP/1.0\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\nabc"), true)
	f.Fuzz(func(t *testing.T, data []byte, request bool) {
		brA := bufio.NewReader(strings.NewReader(string(data)))
		brB := bufio.NewReaderSize(iotest.OneByteReader(strings.NewReader(string(data))), 16)
		a, errA := ReadHead(brA, request)
		b, errB := ReadHead(brB, request)
		if (errA == nil) != (errB == nil) {
			t.Fatalf("paths disagree: %v / %v", errA, errB)
		}
		if errA != nil {
			return
		}
		restA, _ := io.ReadAll(brA)
		restB, _ := io.ReadAll(brB)
		if string(restA) != string(restB) {
			t.Fatalf("paths leave different bodies: %q / %q", restA, restB)
		}
		if a.Method != b.Method || a.Target != b.Target || a.Status != b.Status || len(a.Fields) != len(b.Fields) ||
			a.Length != b.Length || a.Chunked != b.Chunked || a.Close != b.Close {
			t.Fatalf("paths disagree: %+v / %+v", a, b)
		}
	})
}
