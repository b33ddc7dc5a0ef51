package replay_test

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime/metrics"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/klauspost/compress/gzip"
	"github.com/thrive-loadtest/thrive/replay"
	"github.com/thrive-loadtest/thrive/report"
	"github.com/thrive-loadtest/thrive/traces"
	"golang.org/x/sys/unix"
)

// heapPeak samples the Go heap's live objects every few milliseconds until
// stop is called, which returns the highest figure seen.
func heapPeak() (stop func() uint64) {
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(s)
			if v := s[0].Value.Uint64(); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-t.C:
			case <-done:
				return
			}
		}
	})
	return func() uint64 { close(done); wg.Wait(); return peak.Load() }
}

// TestLargeAnswersBounded: answers far past what a user keeps (72 MiB,
// with and without a length) stream past the user, who keeps the head it
// reads values from: each succeeds, the token at its head is taken and
// sent back, and the heap stays far below the users' answers together
// (3 × 72 MiB; before, each user held up to 64 MiB, then failed).
func TestLargeAnswersBounded(t *testing.T) {
	const size = 72 << 20
	tokens := new(ledger)
	pad := []byte(strings.Repeat(" ", 64<<10))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/export":
			tok := tokens.give()
			w.Header().Set("Content-Type", "application/json")
			if r.URL.Query().Get("chunked") == "" {
				w.Header().Set("Content-Length", fmt.Sprint(size))
			}
			head := `{"token":"` + tok + `","rows":"`
			bw := bufio.NewWriter(w)
			_, _ = bw.WriteString(head)
			n := len(head)
			for n+len(pad) < size-2 {
				if _, err := bw.Write(pad); err != nil {
					return
				}
				n += len(pad)
			}
			_, _ = bw.WriteString(strings.Repeat(" ", size-2-n) + `"}`)
			_ = bw.Flush()
		case "/use":
			tokens.use(w, r)
		}
	}))
	defer srv.Close()
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	json := func(b string) traces.Body { return traces.Body{Data: []byte(b), Size: int64(len(b))} }
	ct := []traces.Header{{Name: "Content-Type", Value: "application/json"}}
	for _, query := range []string{"", "?chunked=1"} {
		t.Run("export"+query, func(t *testing.T) {
			tokens.used.Store(0)
			tokens.wrong.Store(0)
			s := &traces.Session{ID: "x", Profile: "export", Exchanges: []traces.Exchange{
				{Duration: ms(300), Method: "GET", URL: "/export" + query, Status: 200, RespHeader: ct, RespBody: json(`{"token":"tok-1733472000000000000","rows":""}`)},
				{Offset: ms(400), Duration: ms(1), Method: "GET", URL: "/use?token=tok-1733472000000000000", Status: 200},
			}}
			peak := heapPeak()
			_, sink := run(t, srv.URL, []*traces.Session{s}, 3, 5*time.Second, replay.WithTimeout(20*time.Second))
			p := peak()
			if p > 200<<20 {
				t.Errorf("the heap reached %d MiB", p>>20)
			}
			t.Logf("heap peak %d MiB", p>>20)
			for _, smp := range sink.samples {
				if smp.Failed() || smp.Kind == report.Skipped {
					t.Fatalf("%s %s: status %d, error %q", kind(smp.Kind), smp.Endpoint, smp.Status, smp.Err)
				}
			}
			if tokens.used.Load() == 0 || tokens.wrong.Load() > 0 {
				t.Errorf("the server counted %d tokens sent back, %d wrong", tokens.used.Load(), tokens.wrong.Load())
			}
		})
	}
}

// TestHugeFrameRefused: a server message announcing 1 GiB is not read:
// the reply fails as frame too large at once, and the heap stays small.
func TestHugeFrameRefused(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer conn.Close()
		if _, _, err := conn.ReadMessage(); err != nil {
			return
		}
		// A text frame, FIN, unmasked, with a 64-bit length of 1 GiB, and
		// the first of its bytes.
		head := []byte{0x81, 127, 0, 0, 0, 0, 0x40, 0, 0, 0}
		_, _ = conn.UnderlyingConn().Write(append(head, bytes.Repeat([]byte("a"), 64<<10)...))
		_, _, _ = conn.ReadMessage() // until the client goes
	}))
	defer srv.Close()
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	text := func(b string) traces.Body { return traces.Body{Data: []byte(b), Size: int64(len(b))} }
	s := &traces.Session{ID: "ws", Profile: "chat", Exchanges: []traces.Exchange{{
		Duration: ms(200), Method: "GET", URL: "/ws", Status: 101, WebSocket: &traces.WebSocket{
			Frames: []traces.Frame{
				{Offset: ms(10), FromClient: true, Opcode: traces.OpText, Payload: text("go")},
				{Offset: ms(11), Opcode: traces.OpText, Payload: text(`{"ok":true}`)},
			},
			Close: traces.Close{Offset: ms(200), Code: 1000},
		}}}}
	peak := heapPeak()
	_, sink := run(t, srv.URL, []*traces.Session{s}, 2, time.Second)
	if p := peak(); p > 200<<20 {
		t.Errorf("the heap reached %d MiB", p>>20)
	}
	n := 0
	for _, smp := range sink.samples {
		if smp.Kind == report.WSReply {
			n++
			if smp.Err != "frame too large" {
				t.Errorf("a reply: error %q", smp.Err)
			}
		}
	}
	if n == 0 {
		t.Error("no reply")
	}
}

// TestAdmissionCountsKeptAnswers: the memory admission check counts, per
// user, the largest answer of the trace a user keeps (at most 4 MiB), not
// only what every user holds: 8,000 users of a trace of 10 MiB answers
// need 32 GB, which a 16 KiB figure called 128 MB.
func TestAdmissionCountsKeptAnswers(t *testing.T) {
	big := &traces.Session{ID: "a", Profile: "browse", Exchanges: []traces.Exchange{{Method: "GET", URL: "/export", Status: 200,
		RespBody: traces.Body{Data: []byte("first bytes"), Size: 10 << 20}}}}
	small := &traces.Session{ID: "b", Profile: "browse", Exchanges: []traces.Exchange{{Method: "GET", URL: "/", Status: 200,
		RespBody: traces.Body{Data: bytes.Repeat([]byte("x"), 1000)}}}}
	if got := replay.FromSessions([]*traces.Session{small}).BytesPerUser(); got != replay.BytesPerUser+1000 {
		t.Errorf("a trace of 1,000-byte answers: %d bytes a user, want %d", got, replay.BytesPerUser+1000)
	}
	per := replay.FromSessions([]*traces.Session{small, big}).BytesPerUser()
	if per != replay.BytesPerUser+4<<20 {
		t.Fatalf("a trace with a 10 MiB answer: %d bytes a user, want 16 KiB and the 4 MiB kept", per)
	}
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err != nil {
		t.Skip(err)
	}
	users := int(uint64(si.Totalram)*uint64(si.Unit)/uint64(per)) + 1
	if _, err := replay.CheckResources(users, per, true); err == nil || !strings.Contains(err.Error(), "largest answer") {
		t.Errorf("%d users of 4 MiB answers on this machine: %v, want refused", users, err)
	}
	if _, err := replay.CheckResources(users, replay.BytesPerUser, true); err != nil {
		t.Errorf("the same users of small answers: %v", err)
	}
}

// TestLargeCompressedAnswer: a gzip answer longer than what a user keeps
// (4 MiB) is decoded as far as the kept bytes go, so a token at its head is
// still found and sent back; before, the cut stream did not decode at all
// and the server refused the recorded token.
func TestLargeCompressedAnswer(t *testing.T) {
	tokens := new(ledger)
	raw := make([]byte, 5<<20)
	_, _ = rand.NewChaCha8([32]byte{1}).Read(raw)
	pad := base64.StdEncoding.EncodeToString(raw) // compresses to three quarters: the stream passes 4 MiB
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/export":
			tok := tokens.give()
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Encoding", "gzip")
			zw, _ := gzip.NewWriterLevel(w, gzip.BestSpeed)
			_, _ = fmt.Fprintf(zw, `{"token":%q,"rows":%q}`, tok, pad)
			_ = zw.Close()
		case "/use":
			tokens.use(w, r)
		}
	}))
	defer srv.Close()
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	rec, err := traces.Encode([]byte(`{"token":"tok-1733472000000000000","rows":""}`), []string{"gzip"})
	if err != nil {
		t.Fatal(err)
	}
	s := &traces.Session{ID: "x", Profile: "export", Exchanges: []traces.Exchange{
		{Duration: ms(300), Method: "GET", URL: "/export", Status: 200, ReqHeader: []traces.Header{{Name: "Accept-Encoding", Value: "gzip"}},
			RespHeader: []traces.Header{{Name: "Content-Type", Value: "application/json"}, {Name: "Content-Encoding", Value: "gzip"}},
			RespBody:   traces.Body{Data: rec, Size: int64(len(rec))}},
		{Offset: ms(400), Duration: ms(1), Method: "GET", URL: "/use?token=tok-1733472000000000000", Status: 200},
	}}
	_, sink := run(t, srv.URL, []*traces.Session{s}, 2, 6*time.Second, replay.WithTimeout(20*time.Second))
	for _, smp := range sink.samples {
		if smp.Failed() || smp.Kind == report.Skipped {
			t.Fatalf("%s %s: status %d, error %q", kind(smp.Kind), smp.Endpoint, smp.Status, smp.Err)
		}
	}
	if tokens.used.Load() == 0 || tokens.wrong.Load() > 0 {
		t.Errorf("the server counted %d tokens sent back, %d wrong", tokens.used.Load(), tokens.wrong.Load())
	}
}

// ledger is a test server's account of the tokens it gave and of those
// sent back to it.
type ledger struct {
	given       sync.Map // token → true
	used, wrong atomic.Int64
}

// give returns a new token, noted as given.
func (l *ledger) give() string {
	tok := fmt.Sprintf("tok-%d", time.Now().UnixNano())
	l.given.Store(tok, true)
	return tok
}

// use answers a request that sends back the token in its query: a 403
// for one never given.
func (l *ledger) use(w http.ResponseWriter, r *http.Request) {
	if _, ok := l.given.Load(r.URL.Query().Get("token")); ok {
		l.used.Add(1)
		return
	}
	l.wrong.Add(1)
	w.WriteHeader(http.StatusForbidden)
}
