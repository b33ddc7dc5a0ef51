package passive

import (
	"bytes"
	"path/filepath"
	"testing"
	"time"

	thrive "github.com/thrive-loadtest/thrive/capture"
	"github.com/thrive-loadtest/thrive/traces/tracetest"
)

// TestImport pipes what Read read of a capture into capture.Import and
// reads the trace back: a keep-alive connection's two exchanges and a
// WebSocket's, at their packets' times, the socket's frames offset from its
// session's start.
func TestImport(t *testing.T) {
	c := keepAlive(t)
	c.wait(200 * ms)
	ws := webSocket(t)
	for i := range ws.pkts {
		ws.pkts[i].at = ws.pkts[i].at.Add(c.now().Sub(t0()))
	}
	file := append(bytes.Clone(c.pcap()), ws.pcap()[24:]...) // the second file's packets after the first's
	path := filepath.Join(t.TempDir(), "pcap.thrv")
	im, err := thrive.NewImport("pcap", "http://127.0.0.1:8000", &thrive.FileSink{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	st, err := Read(bytes.NewReader(file), "import.pcap", Filter{Ports: []int{8000}}, im.Add, im.Advance)
	if err != nil {
		t.Fatal(err)
	}
	if err := im.Close(); err != nil {
		t.Fatal(err)
	}
	if st.Exchanges != 3 {
		t.Fatalf("read %+v", st)
	}
	sessions := tracetest.ReadFile(t, path)
	at := map[string]time.Duration{} // each exchange's start, from the capture's
	for _, s := range sessions {
		for _, x := range s.Exchanges {
			at[x.Method+" "+x.URL] = s.Start.Add(x.Offset).Sub(t0())
			if x.WebSocket == nil {
				continue
			}
			ws := x.WebSocket
			if len(ws.Frames) != 5 || ws.Frames[1].Offset != x.Offset+102*ms || string(ws.Frames[1].Payload.Data) != `{"message":"hi"}` || ws.Close.Code != 1000 {
				t.Errorf("the socket in the trace: %+v, its exchange at %v", ws, x.Offset)
			}
		}
	}
	want := map[string]time.Duration{"GET /api/x?y=1": 103 * ms, "POST /api/y": 631 * ms, "GET /ws/chat/": c.clock + 3*ms}
	if len(at) != len(want) {
		t.Fatalf("the trace's exchanges: %v", at)
	}
	for k, v := range want {
		if at[k] != v {
			t.Errorf("%s at %v, want %v", k, at[k], v)
		}
	}
}
