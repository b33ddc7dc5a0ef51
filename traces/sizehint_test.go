package traces

import (
	"math"
	"strings"
	"testing"
	"time"
)

// TestSizeHint checks that the size the writer grows its buffer and
// splits long sessions by is never less than the encoding, numbers at
// their longest included.
func TestSizeHint(t *testing.T) {
	long := time.Duration(math.MaxInt64)
	cut := Body{Data: []byte("abc"), Size: 1 << 40}
	exs := []Exchange{
		{},
		{Offset: long, Think: long, TTFB: long, Duration: long, Method: "GET", URL: "/" + strings.Repeat("a", 300), Host: "h",
			ReqHeader: []Header{{Name: "A", Value: strings.Repeat("v", 200)}}, ReqBody: cut, Status: math.MaxInt32,
			RespHeader: []Header{{Name: "B", Value: "w"}, {Name: "", Value: ""}}, RespBody: cut, Error: "e", Placed: 3},
		{Offset: -long, Method: "GET", URL: "/ws", Status: 101, WebSocket: &WebSocket{
			Frames: []Frame{{Offset: long, Opcode: OpText, Payload: cut}, {Offset: -long, FromClient: true, Opcode: OpBinary}},
			Close:  Close{Offset: long, Code: math.MaxInt32, Reason: "bye"}, Open: true}},
	}
	for i := range exs {
		if got, want := exchangeSize(&exs[i]), len(appendExchange(nil, &exs[i])); got < want {
			t.Errorf("exchange %d: hint %d bytes, encoded %d", i, got, want)
		}
	}
	s := &Session{ID: "s", Profile: "browse", Client: "c", Evidence: "cookie:sessionid", Start: time.Unix(1<<40, 0), Exchanges: exs}
	if got, want := sizeHint(s), len(appendSession(nil, s, part{n: math.MaxUint64, more: true})); got < want {
		t.Errorf("session: hint %d bytes, encoded %d", got, want)
	}
}
