package importer

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/thrive-loadtest/thrive/traces"
)

// The files in testdata/gor were written by GoReplay 1.3.2 (gor
// --input-raw 127.0.0.1:18556 --input-raw-track-response --output-file
// styles.gor, styles.gor.gz, and chunks.gor with --output-file-queue-limit
// 4) while curl made six requests of a small Go server: GET / (which sets
// a session cookie), GET /chunked (three chunks) and GET /gzip on one
// connection, HEAD /, POST /echo with a form, and POST /echo with a chunked
// body. GoReplay wrote the answer to GET / after every other payload, and
// no answer to HEAD /: it waits for the body that Content-Length
// announces, which a HEAD's answer does not have.

// gorSeen is an exchange a GorReader handed on, with what came with it.
type gorSeen struct {
	start        time.Time
	conn, client string
	traces.Exchange
}

// readGor reads files (testdata/gor/NAME, or the bytes given) with one
// GorReader and returns what it handed on, each file's counts, the total
// and the first error.
func readGor(t *testing.T, wait time.Duration, files ...any) ([]gorSeen, []GorStats, GorStats, error) {
	t.Helper()
	var out []gorSeen
	g := GorReader{Wait: wait, Add: func(start time.Time, conn, client string, ex *traces.Exchange) {
		out = append(out, gorSeen{start, conn, client, *ex})
	}}
	var each []GorStats
	var first error
	for i, f := range files {
		var r io.Reader
		name := fmt.Sprintf("file%d.gor", i)
		switch f := f.(type) {
		case string:
			b, err := os.ReadFile(filepath.Join("testdata", "gor", f))
			if err != nil {
				t.Fatal(err)
			}
			r, name = bytes.NewReader(b), f
		case []byte:
			r = bytes.NewReader(f)
		}
		st, err := g.Read(r, name)
		each = append(each, st)
		if first == nil {
			first = err
		}
	}
	return out, each, g.End(), first
}

// gorRecords splits the records of testdata/gor/name, each with its
// header and separator.
func gorRecords(t *testing.T, name string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "gor", name))
	if err != nil {
		t.Fatal(err)
	}
	var recs [][]byte
	for len(b) > 0 {
		i := bytes.Index(b, []byte(gorSeparator))
		if i < 0 {
			t.Fatalf("%s: a record with no separator", name)
		}
		recs = append(recs, b[:i+len(gorSeparator)])
		b = b[i+len(gorSeparator):]
	}
	return recs
}

// findGor returns the exchange of out with method and url, failing the
// test if there is not exactly one.
func findGor(t *testing.T, out []gorSeen, method, url string) gorSeen {
	t.Helper()
	var found []gorSeen
	for _, s := range out {
		if s.Method == method && s.URL == url {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d exchanges %s %s among %d", len(found), method, url, len(out))
	}
	return found[0]
}

// gunzip returns what b uncompresses to.
func gunzip(t *testing.T, b []byte) string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	s, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return string(s)
}

// chunkedAt is what the payloads' headers of a recording say of GET
// /chunked: its request's time, the response's time after it, the
// response's latency, and the client's port.
type chunkedAt struct {
	start, ttfb, latency int64
	port                 int
}

// The recordings' GET /chunked: in styles_0.gor, "1 a932487c7f00000127fadf00
// 1796583344040640334 0" and "2 a932487c7f00000127fadf00
// 1796583344040772466 52763".
func stylesAt() chunkedAt { return chunkedAt{1796583344040640334, 132132, 52763, 43314} }
func zippedAt() chunkedAt { return chunkedAt{1796583350056395857, 217980, 18562, 43342} }
func chunksAt() chunkedAt { return chunkedAt{1796583355758158911, 100293, 24254, 44540} }

// wantStyles checks the exchanges of a recording of the styles: each
// request paired with its answer, bodies as the relays record them
// (without chunked framing, compressed as sent), times and connections
// from the payloads' headers, as at says.
func wantStyles(t *testing.T, out []gorSeen, total GorStats, at chunkedAt) {
	t.Helper()
	want := GorStats{Records: 11, Requests: 6, Responses: 5, Exchanges: 5, Unanswered: 1}
	if total != want {
		t.Errorf("stats %+v, want %+v", total, want)
	}
	if len(out) != 5 {
		t.Fatalf("%d exchanges, want 5", len(out))
	}
	home := findGor(t, out, "GET", "/")
	if v, _ := headerOf(home.RespHeader, "Set-Cookie"); home.Status != 200 || string(home.RespBody.Data) != "home" || v != "sessionid=abc123; HttpOnly; Path=/" {
		t.Errorf("GET /: %d %q, Set-Cookie %q", home.Status, home.RespBody.Data, v)
	}
	chunked := findGor(t, out, "GET", "/chunked")
	if string(chunked.RespBody.Data) != "part 0;part 1;part 2;" || chunked.Host != "127.0.0.1:18556" {
		t.Errorf("GET /chunked: body %q, host %q", chunked.RespBody.Data, chunked.Host)
	}
	if !chunked.start.Equal(time.Unix(0, at.start)) || chunked.TTFB != time.Duration(at.ttfb) || chunked.Duration != time.Duration(at.ttfb+at.latency) {
		t.Errorf("GET /chunked: start %d, TTFB %d ns, duration %d ns", chunked.start.UnixNano(), chunked.TTFB, chunked.Duration)
	}
	compressed := findGor(t, out, "GET", "/gzip")
	if v, _ := headerOf(compressed.RespHeader, "Content-Encoding"); v != "gzip" || gunzip(t, compressed.RespBody.Data) != "hello, compressed world" {
		t.Errorf("GET /gzip: Content-Encoding %q, body %q", v, compressed.RespBody.Data)
	}
	if chunked.conn != fmt.Sprintf("127.0.0.1:%d>:18556", at.port) || chunked.client != "127.0.0.1" || compressed.conn != chunked.conn || home.conn == chunked.conn {
		t.Errorf("connections: / %q, /chunked %q (client %q), /gzip %q", home.conn, chunked.conn, chunked.client, compressed.conn)
	}
	var posts []string
	for _, s := range out {
		if s.Method == "POST" {
			posts = append(posts, string(s.ReqBody.Data)+" -> "+string(s.RespBody.Data))
		}
	}
	slices.Sort(posts)
	if want := []string{"name=thrive&x=1 -> got 15 bytes: name=thrive&x=1", "streamed body -> got 13 bytes: streamed body"}; !slices.Equal(posts, want) {
		t.Errorf("POST /echo: %q, want %q", posts, want)
	}
	for _, s := range out {
		if s.Error != "" || s.WebSocket != nil || s.TTFB < 0 || s.TTFB > s.Duration || s.Offset != 0 {
			t.Errorf("%s %s: error %q, socket %v, TTFB %v, duration %v, offset %v", s.Method, s.URL, s.Error, s.WebSocket != nil, s.TTFB, s.Duration, s.Offset)
		}
	}
}

// TestReadGorPairs reads a file GoReplay wrote: every request with its
// answer, the request GoReplay wrote no answer for counted.
func TestReadGorPairs(t *testing.T) {
	out, _, total, err := readGor(t, 0, "styles_0.gor")
	if err != nil {
		t.Fatal(err)
	}
	wantStyles(t, out, total, stylesAt())
}

// TestReadGorGzip reads the same requests recorded into a gzip file, as
// GoReplay writes one for a name ending in .gz (styles.gor_0.gz), and a
// gzip file whatever its name: there, an answer before its request.
func TestReadGorGzip(t *testing.T) {
	out, _, total, err := readGor(t, 0, "styles.gor_0.gz")
	if err != nil {
		t.Fatal(err)
	}
	wantStyles(t, out, total, zippedAt())
	b, err := os.ReadFile(filepath.Join("testdata", "gor", "styles.gor_0.gz"))
	if err != nil {
		t.Fatal(err)
	}
	if out, _, _, err := readGor(t, 0, b); err != nil || len(out) != 5 {
		t.Errorf("read as file0.gor: %d exchanges, %v", len(out), err)
	}
}

// TestReadGorOutOfOrder reads the records in the reverse order, every
// answer before its request, and in an order of their own, every answer
// after all the requests: the same exchanges, the same times.
func TestReadGorOutOfOrder(t *testing.T) {
	recs := gorRecords(t, "styles_0.gor")
	reversed := slices.Clone(recs)
	slices.Reverse(reversed)
	requestsFirst := slices.Clone(recs)
	slices.SortStableFunc(requestsFirst, func(a, b []byte) int { return int(a[0]) - int(b[0]) })
	for name, order := range map[string][][]byte{"reversed": reversed, "requests first": requestsFirst} {
		t.Run(name, func(t *testing.T) {
			out, _, total, err := readGor(t, 0, bytes.Join(order, nil))
			if err != nil {
				t.Fatal(err)
			}
			wantStyles(t, out, total, stylesAt())
		})
	}
}

// TestReadGorLeftOut: a request whose answer is not in the files, an
// answer whose request is not, a replay's answer (kind 3), the same
// request id twice, and payloads that waited for their pair longer than
// Wait of the files' time are counted, and nothing else is lost.
func TestReadGorLeftOut(t *testing.T) {
	recs := gorRecords(t, "styles_0.gor")
	replayed := append([]byte("3"), recs[1][1:]...)
	for _, tc := range []struct {
		name   string
		recs   [][]byte
		wait   time.Duration
		want   GorStats
		unseen string
	}{
		{"no answer to GET /gzip", slices.Delete(slices.Clone(recs), 3, 4), 0,
			GorStats{Records: 10, Requests: 6, Responses: 4, Exchanges: 4, Unanswered: 2}, "/gzip"},
		{"no request of the answer to GET /chunked", slices.Delete(slices.Clone(recs), 0, 1), 0,
			GorStats{Records: 10, Requests: 5, Responses: 5, Exchanges: 4, Unanswered: 1, Unasked: 1}, "/chunked"},
		{"a replay's answer", slices.Insert(slices.Clone(recs), 2, replayed), 0,
			GorStats{Records: 12, Requests: 6, Responses: 5, Replayed: 1, Exchanges: 5, Unanswered: 1}, ""},
		{"GET /chunked twice", slices.Insert(slices.Clone(recs), 1, recs[0]), 0,
			GorStats{Records: 12, Requests: 7, Responses: 5, Exchanges: 5, Unanswered: 2}, ""},
		// GET / (written last, with its answer) began 41 ms before the
		// latest payload read before it: the two are left out as they come.
		// HEAD / has no answer; the rest are paired within 0.3 ms.
		{"waited too long", recs, 5 * time.Millisecond,
			GorStats{Records: 11, Requests: 6, Responses: 5, Exchanges: 4, Unanswered: 2, Unasked: 1}, "/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, _, total, err := readGor(t, tc.wait, bytes.Join(tc.recs, nil))
			if err != nil {
				t.Fatal(err)
			}
			if total != tc.want {
				t.Errorf("stats %+v, want %+v", total, tc.want)
			}
			if slices.ContainsFunc(out, func(s gorSeen) bool { return s.URL == tc.unseen }) {
				t.Errorf("%s handed on", tc.unseen)
			}
			if len(out) != tc.want.Exchanges {
				t.Errorf("%d exchanges handed on, want %d", len(out), tc.want.Exchanges)
			}
		})
	}
}

// TestReadGorPorts keeps, with Ports, the exchanges whose id tells one of
// them (GoReplay with an --input-raw per port writes them all in one
// file): GET /chunked again to port 8080, and again with an id of
// GoReplay 1.1 (which tells no port), are left out and counted, after
// their pair is read; without Ports, all are handed on.
func TestReadGorPorts(t *testing.T) {
	recs := gorRecords(t, "styles_0.gor")
	if !bytes.HasPrefix(recs[0], []byte("1 a932487c")) || !bytes.HasPrefix(recs[1], []byte("2 a932487c")) {
		t.Fatalf("styles_0.gor begins %q, %q: not GET /chunked and its answer", clip(recs[0]), clip(recs[1]))
	}
	other := bytes.Join(recs[:2], nil)
	old := bytes.Replace(other, []byte("a932487c7f00000127fadf00"), []byte("da39a3ee5e6b4b0d3255bfef95601890afd80709"), 2)
	other = bytes.ReplaceAll(other, []byte(" a932487c"), []byte(" a9321f90"))
	file := slices.Concat(bytes.Join(recs, nil), other, old)
	for _, tc := range []struct {
		ports []int
		want  GorStats
	}{
		{[]int{18556}, GorStats{Records: 15, Requests: 8, Responses: 7, Exchanges: 5, Unanswered: 1, OtherPorts: 2}},
		{[]int{8080, 18556}, GorStats{Records: 15, Requests: 8, Responses: 7, Exchanges: 6, Unanswered: 1, OtherPorts: 1}},
		{nil, GorStats{Records: 15, Requests: 8, Responses: 7, Exchanges: 7, Unanswered: 1}},
	} {
		var chunked []string
		g := GorReader{Ports: tc.ports, Add: func(_ time.Time, conn, _ string, ex *traces.Exchange) {
			if ex.URL == "/chunked" {
				chunked = append(chunked, conn)
			}
		}}
		st, err := g.Read(bytes.NewReader(file), "ports.gor")
		if err != nil {
			t.Fatal(err)
		}
		if total := g.End(); st.OtherPorts != tc.want.OtherPorts || total != tc.want {
			t.Errorf("ports %v: stats %+v, total %+v, want %+v", tc.ports, st, total, tc.want)
		}
		if want := tc.want.Exchanges - 4; len(chunked) != want {
			t.Errorf("ports %v: GET /chunked handed on from %q, want %d", tc.ports, chunked, want)
		}
	}
}

// TestReadGorChunks reads the chunks GoReplay rotated to as one
// recording: a request in one chunk is paired with its answer in the
// next, and each file's counts are its own.
func TestReadGorChunks(t *testing.T) {
	out, each, total, err := readGor(t, 0, "chunks_0.gor", "chunks_1.gor", "chunks_2.gor")
	if err != nil {
		t.Fatal(err)
	}
	wantStyles(t, out, total, chunksAt())
	want := []GorStats{
		{Records: 4, Requests: 2, Responses: 2, Exchanges: 2},
		{Records: 4, Requests: 3, Responses: 1, Exchanges: 1},
		{Records: 3, Requests: 1, Responses: 2, Exchanges: 2},
	}
	if !slices.Equal(each, want) {
		t.Errorf("each file: %+v, want %+v", each, want)
	}
}

// TestReadGorDamage: a file cut inside a record, or with a record that is
// not GoReplay's, is an error naming the file, the record and its byte;
// the exchanges completed before it are handed on, and a later file goes
// on with the payloads waiting.
func TestReadGorDamage(t *testing.T) {
	recs := gorRecords(t, "styles_0.gor")
	whole := bytes.Join(recs, nil)
	at := func(i int) int { return len(bytes.Join(recs[:i], nil)) }
	zipped, err := os.ReadFile(filepath.Join("testdata", "gor", "styles.gor_0.gz"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		data      []byte
		err       string
		exchanges int
	}{
		{"cut inside record 7", whole[:at(6)+30], fmt.Sprintf("file0.gor: record 7 (byte %d): cut short inside a record", at(6)), 2},
		{"cut inside record 7's header", whole[:at(6)+5], fmt.Sprintf("file0.gor: record 7 (byte %d): cut short inside a record", at(6)), 2},
		{"cut before record 7's separator ends", whole[:at(7)-2], fmt.Sprintf("file0.gor: record 7 (byte %d): cut short inside a record", at(6)), 2},
		{"record 4 not GoReplay's", bytes.Join([][]byte{whole[:at(3)], []byte("GET / HTTP/1.1\r\n"), whole[at(3):]}, nil),
			fmt.Sprintf("file0.gor: record 4 (byte %d): not a payload header: \"GET / HTTP/1.1\\r\"", at(3)), 1},
		{"a time that is not one", bytes.Replace(whole, []byte(" 1796583344040930994 "), []byte(" 17965833440409309x4 "), 1),
			fmt.Sprintf("file0.gor: record 3 (byte %d): payload header \"1 a932487c7f00000127fadfa6 17965833440409309x4 0\": time \"17965833440409309x4\" is not nanoseconds since the epoch", at(2)), 1},
		{"a gzip file cut", zipped[:len(zipped)/2], "file0.gor: record ", -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, each, _, err := readGor(t, 0, tc.data, whole[at(9):])
			if err == nil || !strings.HasPrefix(err.Error(), tc.err) {
				t.Fatalf("error %v, want %q", err, tc.err)
			}
			if tc.exchanges >= 0 && each[0].Exchanges != tc.exchanges {
				t.Errorf("%d exchanges before the damage, want %d", each[0].Exchanges, tc.exchanges)
			}
			if len(out) != each[0].Exchanges+each[1].Exchanges {
				t.Errorf("%d exchanges handed on, files' counts %+v", len(out), each)
			}
		})
	}
	if _, _, _, err := readGor(t, 0, zipped[:len(zipped)/2]); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("a gzip file cut: %v, want %v", err, io.ErrUnexpectedEOF)
	}
}

// TestReadGorTimes: the times of GoReplay 1.2 and later (each payload's
// latency its own length), of 1.0 and 1.1 (a request's latency -1, a
// response's from the end of its request), and of 0.16 (no latency).
func TestReadGorTimes(t *testing.T) {
	rec := func(header, data string) string { return header + "\n" + data + gorSeparator }
	const req, resp = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	for _, tc := range []struct {
		name           string
		file           string
		ttfb, duration time.Duration
	}{
		{"1.2", rec("1 ab 1000 500", req) + rec("2 ab 3000 4000", resp), 2000, 6000},
		{"1.0", rec("1 ab 1000 -1", req) + rec("2 ab 3000 4000", resp), 2000, 4000},
		{"1.0, a short latency", rec("1 ab 1000 -1", req) + rec("2 ab 3000 10", resp), 2000, 2000},
		{"0.16", rec("1 ab 1000", req) + rec("2 ab 3000", resp), 2000, 2000},
		{"an answer stamped before its request", rec("1 ab 5000 0", req) + rec("2 ab 3000 100", resp), 0, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, _, _, err := readGor(t, 0, []byte(tc.file))
			if err != nil || len(out) != 1 {
				t.Fatalf("%d exchanges, %v", len(out), err)
			}
			if s := out[0]; s.TTFB != tc.ttfb || s.Duration != tc.duration || s.conn != "" || s.client != "" {
				t.Errorf("TTFB %d, duration %d, conn %q, client %q; want %d, %d and no connection", s.TTFB, s.Duration, s.conn, s.client, tc.ttfb, tc.duration)
			}
		})
	}
}

// TestReadGorMessages: a WebSocket's upgrade is an exchange with a socket
// of no frames; a message GoReplay cut short is kept with an error that
// says so; a payload that is not HTTP is left out and counted.
func TestReadGorMessages(t *testing.T) {
	rec := func(kind byte, id, data string) string {
		return string(kind) + " " + id + " 1000 0\n" + data + gorSeparator
	}
	upgrade := "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
	switched := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
	file := rec('1', "a", upgrade) + rec('2', "a", switched) +
		rec('1', "b", "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12345") + rec('2', "b", "HTTP/1.1 204 No Content\r\n\r\n") +
		rec('1', "c", "GET /big HTTP/1.1\r\nHost: x\r\n\r\n") + rec('2', "c", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345") +
		rec('1', "d", "\x00\x01binary") + rec('2', "d", "\x02\x03binary") +
		rec('1', "e", "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n") + rec('2', "e", "HTTP/1.1 200 OK\r\n\r\nuntil the close")
	out, _, total, err := readGor(t, 0, []byte(file))
	if err != nil {
		t.Fatal(err)
	}
	if want := (GorStats{Records: 10, Requests: 5, Responses: 5, Exchanges: 2, Incomplete: 2, NotHTTP: 1}); total != want {
		t.Errorf("stats %+v, want %+v", total, want)
	}
	if ws := findGor(t, out, "GET", "/ws"); ws.Status != 101 || ws.WebSocket == nil || len(ws.WebSocket.Frames) != 0 || ws.Error != "" {
		t.Errorf("upgrade: %d, socket %+v, error %q", ws.Status, ws.WebSocket, ws.Error)
	}
	if up := findGor(t, out, "POST", "/up"); up.Error != "gor: the request is cut short (GoReplay cuts a message at its copy buffer's size)" || string(up.ReqBody.Data) != "12345" {
		t.Errorf("a request cut short: error %q, body %q", up.Error, up.ReqBody.Data)
	}
	if big := findGor(t, out, "GET", "/big"); big.Error != "gor: the response is cut short (GoReplay cuts a message at its copy buffer's size)" || string(big.RespBody.Data) != "12345" {
		t.Errorf("an answer cut short: error %q, body %q", big.Error, big.RespBody.Data)
	}
	if st := findGor(t, out, "GET", "/stream"); st.Error != "" || string(st.RespBody.Data) != "until the close" {
		t.Errorf("an answer until the close: error %q, body %q", st.Error, st.RespBody.Data)
	}
}

// TestReadGorBeganOrder: GoReplay writes a message once its packets are
// reassembled, so a file holds exchanges out of the order they began (a
// page's first requests after its later ones, by 1.2 s in a recording of
// the Django admin); they are handed on in the order they began, within
// gorReorder of the files' time, and all of them by End.
func TestReadGorBeganOrder(t *testing.T) {
	rec := func(header, data string) string { return header + "\n" + data + gorSeparator }
	req := func(path string) string { return "GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n" }
	const resp = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	s := int64(time.Second)
	file := rec(fmt.Sprintf("1 b1 %d 0", 2*s), req("/second")) + rec(fmt.Sprintf("2 b1 %d 0", 2*s+1000), resp) +
		rec(fmt.Sprintf("1 a1 %d 0", 1*s), req("/first")) + rec(fmt.Sprintf("2 a1 %d 0", 1*s+1000), resp) +
		rec(fmt.Sprintf("1 c1 %d 0", 2*s), req("/third")) + rec(fmt.Sprintf("2 c1 %d 0", 2*s+1000), resp) +
		rec(fmt.Sprintf("1 d1 %d 0", 30*s), req("/fourth")) + rec(fmt.Sprintf("2 d1 %d 0", 30*s+1000), resp)
	var got []string
	handedBeforeEnd := 0
	g := GorReader{Add: func(_ time.Time, _, _ string, ex *traces.Exchange) { got = append(got, ex.URL) }}
	if _, err := g.Read(strings.NewReader(file), "began.gor"); err != nil {
		t.Fatal(err)
	}
	handedBeforeEnd = len(got)
	g.End()
	if want := []string{"/first", "/second", "/third", "/fourth"}; !slices.Equal(got, want) {
		t.Errorf("handed on %q, want %q", got, want)
	}
	if handedBeforeEnd != 3 {
		t.Errorf("%d exchanges handed on before End, want the 3 more than %v before the last", handedBeforeEnd, gorReorder)
	}
}
