package traces

import (
	"reflect"
	"testing"
)

func decodeAll(payload []byte) ([]*Session, []part, error) {
	d := decoder{buf: payload, version: Version}
	var out []*Session
	var parts []part
	for d.pos < len(d.buf) {
		s := new(Session)
		p, err := d.session(s)
		if err != nil {
			return out, parts, err
		}
		out, parts = append(out, s), append(parts, p)
	}
	return out, parts, nil
}

// FuzzDecodeSession fuzzes the block payload decoder directly: through a
// file, the checksums turn away nearly every mutation before it gets here.
// Whatever decodes must encode and decode again to the same sessions.
func FuzzDecodeSession(f *testing.F) {
	f.Add(appendSession(nil, &Session{ID: "a", Profile: "browse", Exchanges: []Exchange{{
		Method: "GET", URL: "/x", ReqHeader: []Header{{Name: "A", Value: "b"}}, Status: 200,
		RespBody:  CapBody([]byte("0123456789"), 4),
		WebSocket: &WebSocket{Frames: []Frame{{FromClient: true, Opcode: OpText, Payload: Body{Data: []byte("hi")}}}, Close: Close{Code: 1000}},
	}}}, part{}))
	f.Add(appendSession(nil, &Session{ID: "b", Exchanges: []Exchange{{
		Method: "GET", URL: "/ws", Status: 101,
		WebSocket: &WebSocket{Frames: []Frame{{Opcode: OpText, Payload: Body{Data: []byte("x")}}}, Open: true},
	}}}, part{n: 2, more: true}))
	f.Add([]byte{0, 0, 0, 0, 2})
	f.Fuzz(func(t *testing.T, payload []byte) {
		got, parts, err := decodeAll(payload)
		if err != nil {
			return
		}
		var again []byte
		for i, s := range got {
			if checkSession(s) != nil {
				return // a body size the Writer refuses
			}
			again = appendSession(again, s, parts[i])
		}
		back, backParts, err := decodeAll(again)
		if err != nil {
			t.Fatalf("re-encoded sessions do not decode: %v", err)
		}
		if !reflect.DeepEqual(back, got) || !reflect.DeepEqual(backParts, parts) {
			t.Fatalf("sessions changed on the second trip:\n got %+v\nwant %+v", back, got)
		}
	})
}
