package capture_test

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thrive-loadtest/thrive/capture"
	"github.com/thrive-loadtest/thrive/traces"
	"github.com/thrive-loadtest/thrive/traces/tracetest"
)

// TestImport feeds exchanges another source saw, by their own times: a
// visit that logs in (its session cookie set by the login's answer), its
// chat socket, and an hour later in the source's time another client's
// visit. They go the relays' way: the login's password is redacted, the
// visits are sessions of their own keyed by their cookies, the first is
// written once the source's clock passes its idle time (before the import
// is closed), the profile rules label them, and the trace names its
// source.
func TestImport(t *testing.T) {
	path := filepath.Join(t.TempDir(), "imported.thrv")
	im, err := capture.NewImport("har", "", &capture.FileSink{Path: path}, capture.WithSessionIdle(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	body := func(s string) traces.Body { return traces.Body{Data: []byte(s), Size: int64(len(s))} }
	h := func(kv ...string) []traces.Header {
		var out []traces.Header
		for i := 0; i < len(kv); i += 2 {
			out = append(out, traces.Header{Name: kv[i], Value: kv[i+1]})
		}
		return out
	}
	ua := "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0"
	im.Add(t0, "c1", "10.0.0.7", &traces.Exchange{Method: "GET", URL: "http://app.test/login/", Host: "app.test", ReqHeader: h("User-Agent", ua),
		Status: 200, TTFB: ms(5), Duration: ms(8), RespHeader: h("Content-Type", "text/html"), RespBody: body("<form>")})
	im.Add(t0.Add(ms(900)), "c1", "10.0.0.7", &traces.Exchange{Method: "POST", URL: "http://app.test/login/", Host: "app.test",
		ReqHeader: h("User-Agent", ua, "Content-Type", "application/x-www-form-urlencoded"), ReqBody: body("username=ann&password=hunter2"),
		Status: 302, TTFB: ms(20), Duration: ms(21), RespHeader: h("Location", "/chat/", "Set-Cookie", "sessionid=s-ann; Path=/; HttpOnly")})
	im.Add(t0.Add(ms(1000)), "c2", "10.0.0.7", &traces.Exchange{Method: "GET", URL: "http://app.test/ws/chat/", Host: "app.test",
		ReqHeader: h("User-Agent", ua, "Cookie", "sessionid=s-ann", "Upgrade", "websocket"), Status: 101, TTFB: ms(2), Duration: ms(3000),
		WebSocket: &traces.WebSocket{Frames: []traces.Frame{
			{Offset: ms(100), FromClient: true, Opcode: traces.OpText, Payload: body(`{"message":"hi"}`)},
			{Offset: ms(130), Opcode: traces.OpText, Payload: body(`{"type":"done"}`)},
		}, Close: traces.Close{Offset: ms(3000), Code: 1000, ByClient: true}}})
	if st := im.Stats(); st.Sessions != 0 {
		t.Fatalf("%d sessions written while the first visit is open in the source's time", st.Sessions)
	}
	later := t0.Add(time.Hour)
	im.Add(later, "c3", "10.0.0.9", &traces.Exchange{Method: "GET", URL: "http://app.test/", Host: "app.test", ReqHeader: h("User-Agent", ua, "Cookie", "sessionid=s-bob"),
		Status: 200, TTFB: ms(3), Duration: ms(4)})
	if st := im.Stats(); st.Sessions != 1 {
		t.Errorf("%d sessions written an hour later in the source's time, want the first visit's", st.Sessions)
	}
	if err := im.Close(); err != nil {
		t.Fatal(err)
	}
	sessions := tracetest.ReadFile(t, path)
	if len(sessions) != 2 {
		t.Fatalf("%d sessions, want 2", len(sessions))
	}
	ann, bob := sessions[0], sessions[1]
	if len(ann.Exchanges) != 3 || !ann.Start.Equal(t0) || len(bob.Exchanges) != 1 || !bob.Start.Equal(later) {
		t.Fatalf("sessions: %d exchanges from %v, %d from %v", len(ann.Exchanges), ann.Start, len(bob.Exchanges), bob.Start)
	}
	if got := string(ann.Exchanges[1].ReqBody.Data); strings.Contains(got, "hunter2") || !strings.Contains(got, "username=ann") {
		t.Errorf("the login's body %q: the password is not redacted", got)
	}
	ws := ann.Exchanges[2].WebSocket
	if ws == nil || len(ws.Frames) != 2 || ws.Frames[0].Offset != ann.Exchanges[2].Offset+ms(100) || ws.Close.Code != 1000 {
		t.Fatalf("the socket: %+v", ws)
	}
	if ann.Profile != "chat" {
		t.Errorf("the visit with a chat socket is %q", ann.Profile)
	}
	in, err := traces.InspectFile(path, 5)
	if err != nil || in.Source != "har" {
		t.Errorf("the trace's source: %+v, %v", in, err)
	}
}

// TestImportOfNothing: an import given no exchange says so, and an
// import names its source.
func TestImportOfNothing(t *testing.T) {
	im, err := capture.NewImport("pcap", "", &capture.FileSink{Path: filepath.Join(t.TempDir(), "none.thrv")})
	if err != nil {
		t.Fatal(err)
	}
	if err := im.Close(); err == nil || !strings.Contains(err.Error(), "the pcap had no exchange to import") {
		t.Errorf("closing an empty import: %v", err)
	}
	if _, err := capture.NewImport("", "", &capture.FileSink{Path: filepath.Join(t.TempDir(), "x.thrv")}); err == nil {
		t.Error("an import without its source")
	}
}

// TestImportLongBodies: a body longer than the body limit is kept as the
// relays keep one, its first bytes with the size and SHA-256 of the whole;
// and a body the source itself cut short (a packet reader keeps the first
// MiB) keeps the whole size and digest the source gave, not those of the
// bytes it kept.
func TestImportLongBodies(t *testing.T) {
	path := filepath.Join(t.TempDir(), "long.thrv")
	const limit = 4096
	im, err := capture.NewImport("pcap", "", &capture.FileSink{Path: path}, capture.WithBodyLimit(limit), capture.WithKeepSecrets())
	if err != nil {
		t.Fatal(err)
	}
	upload := bytes.Repeat([]byte("0123456789abcdef"), 3*limit/16+5)
	whole := bytes.Repeat([]byte("x"), 1<<20)
	cut := traces.Body{Data: whole[:1000], Size: int64(len(whole)), SHA256: sha256.Sum256(whole)}
	t0 := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	im.Add(t0, "c1", "10.0.0.7", &traces.Exchange{Method: "POST", URL: "http://app.test/upload", Host: "app.test",
		ReqHeader: []traces.Header{{Name: "Cookie", Value: "sessionid=s1"}}, ReqBody: traces.Body{Data: upload},
		Status: 200, TTFB: time.Millisecond, Duration: 2 * time.Millisecond, RespBody: cut})
	if err := im.Close(); err != nil {
		t.Fatal(err)
	}
	sessions := tracetest.ReadFile(t, path)
	if len(sessions) != 1 || len(sessions[0].Exchanges) != 1 {
		t.Fatalf("%d sessions", len(sessions))
	}
	ex := sessions[0].Exchanges[0]
	if b := ex.ReqBody; len(b.Data) != limit || b.Len() != int64(len(upload)) || b.SHA256 != sha256.Sum256(upload) {
		t.Errorf("the upload: %d bytes kept of %d, digest %x", len(b.Data), b.Len(), b.SHA256[:4])
	}
	if b := ex.RespBody; len(b.Data) != 1000 || b.Len() != int64(len(whole)) || b.SHA256 != cut.SHA256 {
		t.Errorf("the answer the source cut short: %d bytes kept of %d, digest %x", len(b.Data), b.Len(), b.SHA256[:4])
	}
}

// TestImportManySessionsOpen: a source with far more sessions open at once
// (an hour's idle time) than the buffer holds bodies of: once the buffer
// is half full, the sessions hand on what they finished as parts, so that
// nothing is dropped, and the trace holds every exchange, each session
// whole once its parts are read together.
func TestImportManySessionsOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "many.thrv")
	im, err := capture.NewImport("pcap", "", &capture.FileSink{Path: path}, capture.WithBuffer(64<<10), capture.WithSessionIdle(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	body := traces.Body{Data: bytes.Repeat([]byte("j"), 1024)}
	const sessions, each = 300, 4
	for i := range sessions {
		for j := range each {
			at := t0.Add(time.Duration(i)*200*time.Millisecond + time.Duration(j)*50*time.Millisecond)
			im.Add(at, fmt.Sprintf("c%d", i), "10.0.0.7", &traces.Exchange{Method: "GET", URL: fmt.Sprintf("http://app.test/api/items/%d", j),
				Host: "app.test", ReqHeader: []traces.Header{{Name: "Cookie", Value: fmt.Sprintf("sessionid=s%d", i)}},
				Status: 200, TTFB: time.Millisecond, Duration: 2 * time.Millisecond, RespBody: body})
		}
	}
	if err := im.Close(); err != nil {
		t.Fatal(err)
	}
	if st := im.Stats(); st.DroppedExchanges != 0 || st.Exchanges != sessions*each {
		t.Fatalf("%d exchanges written, %d dropped; want %d, none dropped", st.Exchanges, st.DroppedExchanges, sessions*each)
	}
	got := tracetest.ReadFile(t, path)
	n := 0
	for _, s := range got {
		n += len(s.Exchanges)
	}
	if len(got) != sessions || n != sessions*each {
		t.Errorf("the trace holds %d sessions, %d exchanges; want %d, %d", len(got), n, sessions, sessions*each)
	}
}

// TestImportQuietSessionsEndEarly: visits that are over in moments, one
// every half second for minutes, with an hour's idle time and a small
// buffer: once it is half full, the visits quiet for a minute end rather
// than hold memory (counted), none is dropped, each is whole in the trace,
// and a client that comes back later continues in a new session.
func TestImportQuietSessionsEndEarly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "quiet.thrv")
	im, err := capture.NewImport("pcap", "", &capture.FileSink{Path: path}, capture.WithBuffer(64<<10), capture.WithSessionIdle(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	body := traces.Body{Data: bytes.Repeat([]byte("j"), 1024)}
	// A visit logs in (its answer gives the session cookie) unless back is
	// set, then sends the cookie three times.
	visit := func(i int, at time.Time, back bool) {
		for j := range 4 {
			ex := &traces.Exchange{Method: "GET", URL: fmt.Sprintf("http://app.test/api/items/%d", j), Host: "app.test",
				ReqHeader: []traces.Header{{Name: "Cookie", Value: fmt.Sprintf("sessionid=s%d", i)}},
				Status:    200, TTFB: time.Millisecond, Duration: 2 * time.Millisecond, RespBody: body}
			if j == 0 && !back {
				ex.Method, ex.URL, ex.ReqHeader = "POST", "http://app.test/login", nil
				ex.RespHeader = []traces.Header{{Name: "Set-Cookie", Value: fmt.Sprintf("sessionid=s%d; Path=/; HttpOnly", i)}}
			}
			im.Add(at.Add(time.Duration(j)*50*time.Millisecond), fmt.Sprintf("c%d-%v", i, at), "10.0.0.7", ex)
		}
	}
	const visits = 400
	for i := range visits {
		visit(i, t0.Add(time.Duration(i)*500*time.Millisecond), false)
	}
	visit(0, t0.Add(visits*500*time.Millisecond), true) // the first client, back after minutes
	if err := im.Close(); err != nil {
		t.Fatal(err)
	}
	st := im.Stats()
	if st.DroppedExchanges != 0 || st.EndedEarly == 0 || st.Exchanges != (visits+1)*4 {
		t.Fatalf("%d exchanges written, %d dropped, %d sessions ended early", st.Exchanges, st.DroppedExchanges, st.EndedEarly)
	}
	got := tracetest.ReadFile(t, path)
	continues := 0
	for _, s := range got {
		if len(s.Exchanges) != 4 {
			t.Errorf("session %s of %s: %d exchanges", s.ID, s.Client, len(s.Exchanges))
		}
		if s.Continues {
			continues++
		}
	}
	if len(got) != visits+1 || continues != 1 {
		t.Errorf("%d sessions, %d continuing; want %d, 1", len(got), continues, visits+1)
	}
}
