package wire

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
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
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "GET", Chunked, false},
		// Framing in doubt: Transfer-Encoding wins, and the connection
		// closes after the answer (RFC 9112, 6.1 and 6.3).
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 3\r\n\r\n", "GET", Chunked, true},
		{"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", "GET", Chunked, true},
		{"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n", "GET", Chunked, true},
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\nContent-Length: 3\r\n\r\n", "GET", UntilClose, true},
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked,\r\n\r\n", "GET", Chunked, false},
		{"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n", "GET", ByLength, false},
		{"HTTP/1.1 200 OK\r\nContent-Length: 0003\r\n\r\n", "GET", ByLength, false},
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
		if h.Faulty != h.HopByHop("content-length") || h.Faulty != (strings.Contains(tc.head, "Transfer-Encoding") && tc.close) {
			t.Errorf("%q: faulty %v, yet Content-Length hop-by-hop %v", tc.head, h.Faulty, h.HopByHop("content-length"))
		}
	}
}

// TestReadHeadAccepts: what the rules against smuggling leave alone.
func TestReadHeadAccepts(t *testing.T) {
	for _, tc := range []struct {
		name, head string
		length     int64
		chunked    bool
	}{
		{"leading zeros", "POST / HTTP/1.1\r\nContent-Length: 007\r\n\r\n", 7, false},
		{"the same length twice", "POST / HTTP/1.1\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\n", 5, false},
		{"whitespace around values", "POST / HTTP/1.1\r\nContent-Length:\t 5 \t\r\nX-A: \r\n\r\n", 5, false},
		{"chunked in capitals", "POST / HTTP/1.1\r\nTransfer-Encoding: CHUNKED\r\n\r\n", -1, true},
		{"tab and obs-text inside a value", "GET / HTTP/1.1\r\nContent-Disposition: a\tb; filename=\"caf\xe9\"\r\n\r\n", -1, false},
		{"every token character in a name", "GET / HTTP/1.1\r\n!#$%&'*+-.^_`|~09azAZ: v\r\n\r\n", -1, false},
		{"LF alone ends lines", "POST / HTTP/1.1\nHost: x\nContent-Length: 1\n\n", 1, false},
		{"a length as large as int64 holds", "POST / HTTP/1.1\r\nContent-Length: 9223372036854775799\r\n\r\n", 9223372036854775799, false},
		{"UTF-8 in the target", "GET /caf\xc3\xa9 HTTP/1.1\r\n\r\n", -1, false},
	} {
		h, err := ReadHead(bufio.NewReader(strings.NewReader(tc.head)), true)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if h.Length != tc.length || h.Chunked != tc.chunked || h.Faulty {
			t.Errorf("%s: length %d chunked %v faulty %v, want %d %v", tc.name, h.Length, h.Chunked, h.Faulty, tc.length, tc.chunked)
		}
	}
}

// TestToken checks the token masks against RFC 9110's definition.
func TestToken(t *testing.T) {
	for c := range 256 {
		want := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c))
		if got := isToken(string([]byte{byte(c)})); got != want {
			t.Errorf("%#x: token %v, want %v", c, got, want)
		}
	}
	if isToken("") {
		t.Error("the empty string is a token")
	}
}

// TestClosingHead: an answer whose framing is in doubt goes on without its
// Content-Length and saying it closes, its other lines as they came.
func TestClosingHead(t *testing.T) {
	for _, tc := range []struct{ raw, want string }{
		{"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX-A: 1\r\nTransfer-Encoding: chunked\r\nconnection: keep-alive\r\n\r\n",
			"HTTP/1.1 200 OK\r\nX-A: 1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"},
		{"HTTP/1.0 200 OK\nTransfer-Encoding: chunked\n\n", "HTTP/1.0 200 OK\nTransfer-Encoding: chunked\nConnection: close\r\n\n"},
	} {
		h, err := ParseHeadBytes([]byte(tc.raw), false)
		if err != nil || !h.Faulty {
			t.Fatalf("%q: faulty %v, %v", tc.raw, h != nil && h.Faulty, err)
		}
		got := ClosingHead([]byte(tc.raw))
		if string(got) != tc.want {
			t.Errorf("%q: %q, want %q", tc.raw, got, tc.want)
		}
		if h2, err := ParseHeadBytes(got, false); err != nil || !h2.Chunked || !h2.Close || FieldValue(h2.Fields, "Content-Length") != "" {
			t.Errorf("%q: passed on as %+v, %v", tc.raw, h2, err)
		}
	}
}

func TestReadHeadRejects(t *testing.T) {
	for _, tc := range []struct{ name, head, want string }{
		{"no version", "GET /\r\n\r\n", `malformed request line "GET /"`},
		{"HTTP/2", "GET / HTTP/2.0\r\n\r\n", `malformed request line "GET / HTTP/2.0"`},
		{"header without colon", "GET / HTTP/1.1\r\nNo colon\r\n\r\n", `malformed header line "No colon"`},
		{"folded header", "GET / HTTP/1.1\r\nX-A: a\r\n folded\r\n\r\n", `folded header line " folded"`},
		{"whitespace before the first field", "GET / HTTP/1.1\r\n\tHost: x\r\n\r\n", `folded header line "\tHost: x"`},
		{"space before the colon", "GET / HTTP/1.1\r\nContent-Length : 5\r\n\r\n", `malformed header line "Content-Length : 5"`},
		{"empty name", "GET / HTTP/1.1\r\n: 5\r\n\r\n", `malformed header line ": 5"`},
		{"control character in a name", "GET / HTTP/1.1\r\nX\x01A: 5\r\n\r\n", `malformed header line "X\x01A: 5"`},
		{"non-token name", "GET / HTTP/1.1\r\nX(A): 5\r\n\r\n", `malformed header line "X(A): 5"`},
		{"NUL in a value", "GET / HTTP/1.1\r\nX-A: a\x00b\r\n\r\n", `control character '\x00' in header "X-A"`},
		{"bare CR in a value", "GET / HTTP/1.1\r\nX-A: a\rb\r\n\r\n", `control character '\r' in header "X-A"`},
		{"DEL in a value", "GET / HTTP/1.1\r\nX-A: a\x7f\r\n\r\n", `control character '\x7f' in header "X-A"`},
		{"two lengths", "GET / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", `bad Content-Length "6"`},
		{"two ways of the same length", "GET / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 05\r\n\r\n", `bad Content-Length "05"`},
		{"negative length", "GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", `bad Content-Length "-1"`},
		{"signed length", "GET / HTTP/1.1\r\nContent-Length: +2\r\n\r\n", `bad Content-Length "+2"`},
		{"space inside a length", "GET / HTTP/1.1\r\nContent-Length: 1 2\r\n\r\n", `bad Content-Length "1 2"`},
		{"a list of lengths", "GET / HTTP/1.1\r\nContent-Length: 2, 2\r\n\r\n", `bad Content-Length "2, 2"`},
		{"hex length", "GET / HTTP/1.1\r\nContent-Length: 0x2\r\n\r\n", `bad Content-Length "0x2"`},
		{"empty length", "GET / HTTP/1.1\r\nContent-Length: \r\n\r\n", `bad Content-Length ""`},
		{"length past int64", "GET / HTTP/1.1\r\nContent-Length: 9223372036854775808\r\n\r\n", `bad Content-Length "9223372036854775808"`},
		{"length and chunked", "POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", "both Transfer-Encoding and Content-Length"},
		{"chunked and length", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", "both Transfer-Encoding and Content-Length"},
		{"chunked in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", "Transfer-Encoding in an HTTP/1.0 request"},
		{"gzip transfer coding", "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", `Transfer-Encoding "gzip": chunked is not the final coding`},
		{"chunked, then gzip", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", `Transfer-Encoding "chunked, gzip": chunked is not the final coding`},
		{"gzip, then chunked", "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", `unsupported Transfer-Encoding "gzip, chunked"`},
		{"chunked twice", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", "2 Transfer-Encoding fields"},
		{"empty transfer coding", "POST / HTTP/1.1\r\nTransfer-Encoding: \r\n\r\n", `Transfer-Encoding "": chunked is not the final coding`},
		{"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", "2 Host fields"},
		{"method not a token", "G(T / HTTP/1.1\r\n\r\n", `malformed request line "G(T / HTTP/1.1"`},
		{"NUL in the target", "GET /\x00 HTTP/1.1\r\n\r\n", `malformed request line "GET /\x00 HTTP/1.1"`},
		{"tab in the target", "GET /\ta HTTP/1.1\r\n\r\n", `malformed request line "GET /\ta HTTP/1.1"`},
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
	for _, tc := range []struct{ head, want string }{
		{"HTTP/1.1 2000 OK\r\n\r\n", `malformed status line "HTTP/1.1 2000 OK"`},
		{"HTTP/1.1 200 O\x00K\r\n\r\n", `malformed status line "HTTP/1.1 200 O\x00K"`},
		{"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", `bad Content-Length "2"`},
		{"HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\n", `bad Content-Length "+1"`},
		{"HTTP/1.1 200 OK\r\nX-A: \x00\r\n\r\n", `control character '\x00' in header "X-A"`},
	} {
		if _, err := ReadHead(bufio.NewReader(strings.NewReader(tc.head)), false); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want an error saying %s", tc.head, err, tc.want)
		}
	}
}

// FuzzReadHead feeds arbitrary bytes to the head parser on both paths: it
// must not panic, both paths must agree, and a head it accepts must hold
// nothing that downstream parsers read in different ways (unambiguous).
func FuzzReadHead(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\nHost: x\r\nCookie: a=b\r\n\r\n"), true)
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), false)
	f.Add([]byte("GET / HTTP/1.1\nX: y\n\nZ\r\n\r\n"), true)
	f.Add([]byte("POST /x HTTP/1.0\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\nabc"), true)
	f.Add([]byte("POST /x HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), true)
	f.Add([]byte("POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n"), false)
	f.Add([]byte("POST /x HTTP/1.1\r\nContent-Length: +3\r\nX: a\x00\r\n\r\n"), true)
	f.Add([]byte("POST /x HTTP/1.0\r\nTransfer-Encoding: chunked\r\nX: a\r\n b\r\n\r\n"), true)
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
			a.Length != b.Length || a.Chunked != b.Chunked || a.Close != b.Close || a.Faulty != b.Faulty {
			t.Fatalf("paths disagree: %+v / %+v", a, b)
		}
		if err := unambiguous(a, request); err != nil {
			t.Fatalf("%q accepted: %v", data, err)
		}
	})
}

// unambiguous checks an accepted head as RFC 9112 and 9110 read it, apart
// from the parser: tokens for the method and names, no control character
// but HTAB in values (nor any in the target), and framing by one field at
// most: one Host, the same Content-Length throughout, a request's
// Transfer-Encoding chunked alone, in HTTP/1.1 and with no Content-Length;
// an answer's Transfer-Encoding wins over its Content-Length, which is then
// not passed on, and the connection closes after it.
func unambiguous(h *Head, request bool) error {
	token := func(s string) bool {
		for _, c := range []byte(s) {
			if c <= ' ' || c >= 0x7f || strings.IndexByte("\"(),/:;<=>?@[\\]{}", c) >= 0 {
				return false
			}
		}
		return s != ""
	}
	ctl := func(s string) bool {
		return strings.IndexFunc(s, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }) >= 0
	}
	if request && (!token(h.Method) || ctl(h.Target) || strings.ContainsAny(h.Target, " \t")) {
		return fmt.Errorf("request line %q %q", h.Method, h.Target)
	}
	var hosts, lengths, codings []string
	for _, f := range h.Fields {
		if !token(f.Name) || ctl(f.Value) || f.Value != strings.Trim(f.Value, " \t") {
			return fmt.Errorf("field %q: %q", f.Name, f.Value)
		}
		switch strings.ToLower(f.Name) {
		case "host":
			hosts = append(hosts, f.Value)
		case "content-length":
			lengths = append(lengths, f.Value)
		case "transfer-encoding":
			codings = append(codings, f.Value)
		}
	}
	for _, l := range lengths {
		if n, err := strconv.ParseInt(l, 10, 64); err != nil || l != lengths[0] || l[0] == '+' || n != h.Length && len(codings) == 0 {
			return fmt.Errorf("Content-Length %q taken as %d", lengths, h.Length)
		}
	}
	switch {
	case request && len(hosts) > 1:
		return fmt.Errorf("Host %q", hosts)
	case request && len(codings) > 0 && (len(lengths) > 0 || h.Proto != "HTTP/1.1" || len(codings) != 1 || !strings.EqualFold(codings[0], "chunked") || !h.Chunked):
		return fmt.Errorf("Transfer-Encoding %q with Content-Length %q in %s", codings, lengths, h.Proto)
	case len(codings) == 0 && (h.Chunked || h.Faulty):
		return errors.New("chunked with no Transfer-Encoding")
	case !request && len(codings) > 0 && len(lengths) > 0 && (h.Length >= 0 || !h.Close || !h.HopByHop("Content-Length")):
		return fmt.Errorf("answer with Transfer-Encoding %q and Content-Length %q read by length %d, close %v", codings, lengths, h.Length, h.Close)
	}
	return nil
}

// BenchmarkParseHead parses the head of a browser's request, as both relays
// do once a request: what the checks against smuggling cost is here.
func BenchmarkParseHead(b *testing.B) {
	raw := []byte("GET /api/projects/7/?page=2 HTTP/1.1\r\nHost: app.example:8000\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36\r\n" +
		"Accept: application/json, text/plain, */*\r\nAccept-Language: en-GB,en;q=0.9\r\nAccept-Encoding: gzip, deflate, br, zstd\r\n" +
		"Cookie: sessionid=4f1e2d3c4b5a69788796a5b4c3d2e1f0; csrftoken=Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0Fe\r\nReferer: http://app.example:8000/projects/7/\r\n" +
		"Connection: keep-alive\r\nContent-Length: 0\r\n\r\n")
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, err := ParseHeadBytes(raw, true); err != nil {
			b.Fatal(err)
		}
	}
}
