package capture

import (
	"encoding/json"
	"testing"

	"github.com/thrive-loadtest/thrive/traces"
)

// FuzzRedactBody redacts any bytes as a body of each content type, an
// event stream and a WebSocket message: it never panics, a valid JSON
// document stays valid, and redacting again changes nothing (placeholders
// are not secrets).
//
//	go test -run XXX -fuzz FuzzRedactBody ./capture/
func FuzzRedactBody(f *testing.F) {
	mp, mpType := multipartBody([2]string{`"password"`, "pw-123456"}, [2]string{`"meta"`, `{"apiKey":"abc123def"}`})
	for _, seed := range []struct{ ct, body string }{
		{"application/json", `{"users":[{"password":"x1"}],"tokens":["a","b"],"author":"ann","key":"Enter"}`},
		{"application/json", `[{"auth":{"sessionId":"s-1"}},"password","x"]`},
		{"application/json", `{"password":"a\"b\\c\u00e9","nested":{"deep":[[{"client_secret":"zz-99"}]]}}`},
		{"application/json", `{"password":"cut short`},
		{"application/x-www-form-urlencoded", "user%5Bpassword%5D=p%26w&code=abc123&variables=%7B%22token%22%3A%22t1%22%7D"},
		{mpType, string(mp)},
		{"multipart/form-data; boundary=x", "--x\r\n\r\n\r\n--x\nContent-Disposition: form-data; name=password\n\nv\n--x--"},
		{"text/event-stream", "data: {\"token\":\"t-1\"}\r\n\r\ndata:[\"x\"]\n\n"},
		{"text/plain", `42/chat,7["x",{"sessionId":"sid-998877"}]`},
		{"text/plain", "token=abc123&room=lobby"},
	} {
		f.Add(seed.ct, []byte(seed.body))
	}
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		clone := func() []byte { return append([]byte(nil), body...) }
		s := &traces.Session{ID: "f", Exchanges: []traces.Exchange{{
			Method: "POST", URL: "/x?" + string(body), Status: 200,
			ReqHeader:  []traces.Header{{Name: "Content-Type", Value: ct}},
			ReqBody:    traces.Body{Data: clone()},
			RespHeader: []traces.Header{{Name: "Content-Type", Value: "text/event-stream"}},
			RespBody:   traces.Body{Data: clone()},
			WebSocket:  &traces.WebSocket{Frames: []traces.Frame{{Opcode: traces.OpText, Payload: traces.Body{Data: clone()}}}},
		}}}
		NewRedactor([]byte("k")).Session(s)
		once := sessionBytes(s)
		if json.Valid(body) && !json.Valid(s.Exchanges[0].WebSocket.Frames[0].Payload.Data) {
			t.Fatalf("valid JSON %q redacted into invalid %q", body, s.Exchanges[0].WebSocket.Frames[0].Payload.Data)
		}
		NewRedactor([]byte("k")).Session(s)
		if twice := sessionBytes(s); twice != once {
			t.Fatalf("redacting again changed\n%q\ninto\n%q", once, twice)
		}
	})
}
