package traces_test

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/thrive-loadtest/thrive/traces"
	"github.com/thrive-loadtest/thrive/traces/synth"
)

// normalize makes empty and nil slices alike, as the codec does.
func normalize(s *traces.Session) *traces.Session {
	c := *s
	if len(c.Exchanges) == 0 {
		c.Exchanges = nil
	}
	c.Exchanges = append([]traces.Exchange(nil), c.Exchanges...)
	body := func(b *traces.Body) {
		if len(b.Data) == 0 {
			b.Data = nil
		}
	}
	for i := range c.Exchanges {
		ex := &c.Exchanges[i]
		if len(ex.ReqHeader) == 0 {
			ex.ReqHeader = nil
		}
		if len(ex.RespHeader) == 0 {
			ex.RespHeader = nil
		}
		body(&ex.ReqBody)
		body(&ex.RespBody)
		if ex.WebSocket != nil {
			ws := *ex.WebSocket
			ws.Frames = append([]traces.Frame(nil), ws.Frames...)
			for j := range ws.Frames {
				body(&ws.Frames[j].Payload)
			}
			ex.WebSocket = &ws
		}
	}
	return &c
}

func write(t testing.TB, ss []*traces.Session, opts ...traces.WriterOption) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := traces.NewWriter(&buf, traces.Meta{Source: "test", Target: "http://127.0.0.1:8000", Redacted: []string{"header:Cookie"}}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range ss {
		if err := w.Write(s); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// readAll returns every session it could read and the error that stopped it
// (nil at a clean end).
func readAll(t testing.TB, file []byte) ([]*traces.Session, error) {
	t.Helper()
	r, err := traces.NewReader(bytes.NewReader(file))
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var out []*traces.Session
	for {
		s := new(traces.Session)
		err := r.Next(s)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, s)
	}
}

func binaryBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	start := time.Date(2026, 11, 26, 10, 0, 0, 123456789, time.UTC)
	huge := strings.Repeat("x", 200<<10)
	cases := []struct {
		name string
		in   []*traces.Session
	}{
		{"empty session", []*traces.Session{{ID: "a", Profile: "browse"}}},
		{"zero start", []*traces.Session{{ID: "z", Exchanges: []traces.Exchange{{Method: "GET", URL: "/"}}}}},
		{"plain get", []*traces.Session{{ID: "b", Profile: "browse", Client: "ip:127.0.0.1", Start: start, Exchanges: []traces.Exchange{{
			Offset: 3 * time.Millisecond, Think: time.Second, TTFB: 40 * time.Millisecond, Duration: 55 * time.Millisecond,
			Method: "GET", URL: "/api/projects/?page=2", Host: "127.0.0.1:8000",
			ReqHeader:  []traces.Header{{Name: "Accept", Value: "*/*"}, {Name: "accept", Value: "dup"}},
			Status:     200,
			RespHeader: []traces.Header{{Name: "Content-Type", Value: "application/json"}},
			RespBody:   traces.Body{Data: []byte(`{"results":[]}`)},
		}}}}},
		{"binary and empty bodies", []*traces.Session{{ID: "c", Start: start, Exchanges: []traces.Exchange{
			{Method: "POST", URL: "/upload", ReqBody: traces.Body{Data: binaryBytes(70000)}, Status: 201},
			{Method: "POST", URL: "/empty", ReqBody: traces.Body{Data: []byte{}}, Status: 204},
		}}}},
		{"huge headers", []*traces.Session{{ID: "d", Exchanges: []traces.Exchange{{
			Method: "GET", URL: "/" + huge[:8000], ReqHeader: []traces.Header{{Name: "X-Big", Value: huge}, {Name: "Cookie", Value: huge[:5000]}}, Status: 431,
		}}}}},
		{"truncated body keeps size and hash", []*traces.Session{{ID: "e", Exchanges: []traces.Exchange{{
			Method: "GET", URL: "/big", Status: 200, RespBody: traces.CapBody([]byte(huge), 1024),
		}}}}},
		{"failed exchange", []*traces.Session{{ID: "f", Exchanges: []traces.Exchange{{Method: "GET", URL: "/down", Error: "connection reset by peer", Status: 502, Offset: -1}}}}},
		{"websocket text and binary frames", []*traces.Session{{ID: "g", Profile: "chat", Start: start, Exchanges: []traces.Exchange{{
			Method: "GET", URL: "/ws/chat/", Status: 101,
			WebSocket: &traces.WebSocket{
				Frames: []traces.Frame{
					{Offset: time.Second, FromClient: true, Opcode: traces.OpText, Payload: traces.Body{Data: []byte(`{"message":"hi"}`)}},
					{Offset: 1100 * time.Millisecond, Opcode: traces.OpBinary, Payload: traces.Body{Data: binaryBytes(300)}},
					{Offset: 1200 * time.Millisecond, Opcode: traces.OpPing},
					{Offset: 1300 * time.Millisecond, Opcode: traces.OpBinary, Payload: traces.CapBody(binaryBytes(100000), 10)},
				},
				Close: traces.Close{Offset: 2 * time.Second, Code: 1000, Reason: "bye", ByClient: true},
			},
		}}}}},
		{"websocket without frames or close", []*traces.Session{{ID: "h", Exchanges: []traces.Exchange{{Method: "GET", URL: "/ws", Status: 101, WebSocket: &traces.WebSocket{}}}}}},
		{"many sessions over many blocks", synth.New(1).Sessions(300)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			file := write(t, tc.in, traces.WithBlockSize(64<<10))
			got, err := readAll(t, file)
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if len(got) != len(tc.in) {
				t.Fatalf("read %d sessions, wrote %d", len(got), len(tc.in))
			}
			for i := range got {
				if want := normalize(tc.in[i]); !reflect.DeepEqual(normalize(got[i]), want) {
					t.Fatalf("session %d differs:\n got %+v\nwant %+v", i, got[i], want)
				}
			}
		})
	}
}

func TestReaderMeta(t *testing.T) {
	file := write(t, nil)
	r, err := traces.NewReader(bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	m := r.Meta()
	if m.Version != traces.Version || m.Source != "test" || m.Target != "http://127.0.0.1:8000" || len(m.Redacted) != 1 {
		t.Fatalf("meta = %+v", m)
	}
	if err := r.Next(new(traces.Session)); !errors.Is(err, io.EOF) {
		t.Fatalf("empty trace: Next = %v, want io.EOF", err)
	}
	if r.Offset() != int64(len(file)) {
		t.Fatalf("Offset = %d, file has %d bytes", r.Offset(), len(file))
	}
}

func TestReaderReusesSession(t *testing.T) {
	in := synth.New(2).Sessions(50)
	r, err := traces.NewReader(bytes.NewReader(write(t, in, traces.WithBlockSize(16<<10))))
	if err != nil {
		t.Fatal(err)
	}
	var s traces.Session
	for i := range in {
		if err := r.Next(&s); err != nil {
			t.Fatalf("session %d: %v", i, err)
		}
		if !reflect.DeepEqual(normalize(&s), normalize(in[i])) {
			t.Fatalf("session %d differs after reuse", i)
		}
	}
}

func TestWriterRefusesBadSession(t *testing.T) {
	w, err := traces.NewWriter(io.Discard, traces.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	bad := &traces.Session{ID: "x", Exchanges: []traces.Exchange{{ReqBody: traces.Body{Data: []byte("abc"), Size: 2}}}}
	if err := w.Write(bad); err == nil || !strings.Contains(err.Error(), `session "x"`) {
		t.Fatalf("Write = %v, want an error naming the session", err)
	}
}

func TestWriterOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  traces.WriterOption
		want string
	}{
		{"zero block", traces.WithBlockSize(0), "block size 0 out of range 1..268435456"},
		{"block too big", traces.WithBlockSize(traces.MaxBlockSize + 1), "block size 268435457 out of range"},
		{"bad level", traces.WithLevel(99), "compression level 99 out of range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := traces.NewWriter(io.Discard, traces.Meta{}, tc.opt); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewWriter = %v, want an error saying %q", err, tc.want)
			}
		})
	}
}

// failWriter accepts limit bytes, then fails every write.
type failWriter struct {
	limit int
	buf   bytes.Buffer
}

var errDiskFull = errors.New("no space left on device")

func (f *failWriter) Write(b []byte) (int, error) {
	if f.buf.Len()+len(b) > f.limit {
		n := f.limit - f.buf.Len()
		f.buf.Write(b[:n])
		return n, errDiskFull
	}
	return f.buf.Write(b)
}

func TestWriterFullDiskKeepsEarlierBlocks(t *testing.T) {
	in := synth.New(3).Sessions(100)
	full := write(t, in, traces.WithBlockSize(32<<10))
	dst := &failWriter{limit: len(full) / 2}
	w, err := traces.NewWriter(dst, traces.Meta{Source: "test"}, traces.WithBlockSize(32<<10))
	if err != nil {
		t.Fatal(err)
	}
	var werr error
	for _, s := range in {
		if werr = w.Write(s); werr != nil {
			break
		}
	}
	if werr == nil {
		werr = w.Close()
	}
	if !errors.Is(werr, errDiskFull) || !strings.Contains(werr.Error(), "at byte") {
		t.Fatalf("write error = %v, want the disk's error with a byte offset", werr)
	}
	if again := w.Write(in[0]); !errors.Is(again, errDiskFull) {
		t.Fatalf("Write after failure = %v, want the same error", again)
	}
	got, rerr := readAll(t, dst.buf.Bytes())
	if !errors.Is(rerr, traces.ErrTruncated) {
		t.Fatalf("reading the partial file: %v, want ErrTruncated", rerr)
	}
	if len(got) == 0 {
		t.Fatal("no session survived the full disk")
	}
	for i := range got {
		if !reflect.DeepEqual(normalize(got[i]), normalize(in[i])) {
			t.Fatalf("session %d differs", i)
		}
	}
}
