package traces_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/thrive-loadtest/thrive/traces"
)

// A session written in parts, between other sessions, reads back as one
// session where its last part is: exchanges of every part at their own
// times, a socket's frames from two parts in one exchange, the last part's
// description.
func TestPartsJoin(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	get := func(off time.Duration, url string) traces.Exchange {
		return traces.Exchange{Offset: off, Think: time.Millisecond, Duration: time.Millisecond, Method: "GET", URL: url, Status: 200,
			RespBody: traces.Body{Data: []byte(url), Size: int64(len(url))}}
	}
	frame := func(off time.Duration, msg string) traces.Frame {
		return traces.Frame{Offset: off, Opcode: traces.OpText, Payload: traces.Body{Data: []byte(msg), Size: int64(len(msg))}}
	}
	sock := func(off time.Duration, open bool, frames ...traces.Frame) traces.Exchange {
		ex := get(off, "/ws")
		ex.Status = 101
		ex.WebSocket = &traces.WebSocket{Frames: frames, Open: open}
		if !open {
			ex.WebSocket.Close = traces.Close{Offset: 9 * time.Second, Code: 1000}
		}
		return ex
	}
	var buf bytes.Buffer
	w, err := traces.NewWriter(&buf, traces.Meta{Source: "test"}, traces.WithBlockSize(64))
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// Part 1 starts at t0; part 2 at t0+2s, with its own offsets; the last
	// part at t0+5s.
	must(w.WritePart(&traces.Session{ID: "long", Profile: "tentative", Start: t0, Exchanges: []traces.Exchange{get(0, "/a"), get(time.Second, "/b")}}))
	must(w.Write(&traces.Session{ID: "short", Profile: "browse", Start: t0, Exchanges: []traces.Exchange{get(0, "/s")}}))
	must(w.WritePart(&traces.Session{ID: "long", Start: t0.Add(2 * time.Second), Exchanges: []traces.Exchange{
		sock(0, true, frame(time.Second, "one"), frame(2*time.Second, "two"))}}))
	must(w.Write(&traces.Session{ID: "long", Profile: "chat", Client: "cookie:sid", Start: t0.Add(2 * time.Second), Exchanges: []traces.Exchange{
		get(500*time.Millisecond, "/c"), // began while the socket was open
		sock(0, false, frame(4*time.Second, "three"))}}))
	must(w.Close())
	if w.Written() != 2 {
		t.Errorf("Written = %d, want 2 sessions (parts are not sessions)", w.Written())
	}
	got, err := readAll(t, buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != "short" || got[1].ID != "long" {
		t.Fatalf("read %d sessions %v, want short then long", len(got), ids(got))
	}
	long := got[1]
	if long.Profile != "chat" || long.Client != "cookie:sid" || !long.Start.Equal(t0) || long.Partial {
		t.Errorf("joined session: profile %q client %q start %v partial %v; want the last part's, from t0, whole", long.Profile, long.Client, long.Start, long.Partial)
	}
	var urls []string
	for _, ex := range long.Exchanges {
		urls = append(urls, fmt.Sprintf("%s@%v", ex.URL, ex.Offset))
	}
	if want := []string{"/a@0s", "/b@1s", "/ws@2s", "/c@2.5s"}; !reflect.DeepEqual(urls, want) {
		t.Fatalf("exchanges %v, want %v", urls, want)
	}
	ws := long.Exchanges[2].WebSocket
	var frames []string
	for _, f := range ws.Frames {
		frames = append(frames, fmt.Sprintf("%s@%v", f.Payload.Data, f.Offset))
	}
	if want := []string{"one@3s", "two@4s", "three@6s"}; !reflect.DeepEqual(frames, want) {
		t.Errorf("socket frames %v, want %v", frames, want)
	}
	if ws.Open || ws.Close.Code != 1000 || ws.Close.Offset != 11*time.Second {
		t.Errorf("socket open %v close %+v, want closed 1000 at 11s", ws.Open, ws.Close)
	}
}

func ids(ss []*traces.Session) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.ID)
	}
	return out
}

// A file that ends before a session's last part (a killed capture) still
// gives the parts it has, as one session marked Partial, before the error
// that says the file was cut.
func TestPartsOfAnUnfinishedSession(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	var buf bytes.Buffer
	w, err := traces.NewWriter(&buf, traces.Meta{Source: "test"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		p := &traces.Session{ID: "open", Start: t0.Add(time.Duration(i) * time.Second), Exchanges: []traces.Exchange{{Method: "GET", URL: fmt.Sprint("/", i)}}}
		if err := w.WritePart(p); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Write(&traces.Session{ID: "done", Start: t0}); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	got, err := readAll(t, buf.Bytes()) // no Close: no end record
	if !errors.Is(err, traces.ErrTruncated) {
		t.Errorf("read ended with %v, want ErrTruncated", err)
	}
	if len(got) != 2 || got[0].ID != "done" || got[1].ID != "open" || !got[1].Partial || len(got[1].Exchanges) != 3 || got[0].Partial {
		t.Fatalf("read %v; want done, then open partial with 3 exchanges", ids(got))
	}
	if off := got[1].Exchanges[2].Offset; off != 2*time.Second {
		t.Errorf("third exchange at %v, want 2s", off)
	}
	path := filepath.Join(t.TempDir(), "cut.thrv")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	in, _ := traces.InspectFile(path, 5)
	var out bytes.Buffer
	if in == nil || in.WriteText(&out) != nil || in.Partial != 1 || !strings.Contains(out.String(), "partial  1  sessions written in parts") {
		t.Errorf("inspect does not count the partial session:\n%s", out.String())
	}
}

// A session larger than a block may hold (256 MiB) is written in parts and
// read back as it was; so is a socket whose frames alone are larger than a
// part. Before parts, both were refused ("encodes to more than").
func TestHugeSessionInParts(t *testing.T) {
	if testing.Short() {
		t.Skip("writes and reads 300 MiB")
	}
	t0 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	mib := bytes.Repeat([]byte("0123456789abcdef"), 1<<16)
	s := &traces.Session{ID: "huge", Profile: "browse", Start: t0}
	for i := range 260 {
		s.Exchanges = append(s.Exchanges, traces.Exchange{Offset: time.Duration(i) * time.Millisecond, Think: time.Microsecond, Method: "GET",
			URL: fmt.Sprint("/big/", i), Status: 200, RespBody: traces.Body{Data: mib, Size: int64(len(mib))}})
	}
	ws := &traces.WebSocket{Close: traces.Close{Offset: time.Hour, Code: 1001}}
	for i := range 40 {
		ws.Frames = append(ws.Frames, traces.Frame{Offset: time.Duration(i) * time.Second, Opcode: traces.OpBinary, Payload: traces.Body{Data: mib, Size: int64(len(mib))}})
	}
	s.Exchanges = append(s.Exchanges, traces.Exchange{Offset: time.Second, Method: "GET", URL: "/socket", Status: 101, WebSocket: ws})
	file := write(t, []*traces.Session{s, {ID: "after", Start: t0}})
	got, err := readAll(t, file)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != "huge" || got[1].ID != "after" {
		t.Fatalf("read %v, want huge then after", ids(got))
	}
	h := got[0]
	if len(h.Exchanges) != len(s.Exchanges) || h.Partial {
		t.Fatalf("read %d exchanges (partial %v), want %d", len(h.Exchanges), h.Partial, len(s.Exchanges))
	}
	sorted := normalize(s).Exchanges
	if ws := h.Exchanges[len(h.Exchanges)-1].WebSocket; ws == nil || len(ws.Frames) != 40 {
		t.Fatalf("the socket came back as %+v, want its 40 frames", ws)
	}
	for i := range sorted {
		if !reflect.DeepEqual(normalize(&traces.Session{Exchanges: h.Exchanges[i : i+1]}).Exchanges[0], sorted[i]) {
			t.Fatalf("exchange %d (%s) differs from the one written", i, sorted[i].URL)
		}
	}
}
