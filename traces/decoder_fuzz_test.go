package traces

import (
	"reflect"
	"testing"
)

func decodeAll(payload []byte) ([]*Session, error) {
	d := decoder{buf: payload, version: Version}
	var out []*Session
	for d.pos < len(d.buf) {
		s := new(Session)
		if err := d.session(s); err != nil {
			return out, err
		}
		out = append(out, s)
	}
	return out, nil
}

// FuzzDecodeSession fuzzes the block payload decoder directly: through a
// file, the checksums turn away nearly every mutation before it gets here.
// Whatever decodes must encode and decode again to the same sessions.
func FuzzDecodeSession(f *testing.F) {
	f.Add(appendSession(nil, &Session{ID: "a", Profile: "browse", Exchanges: []Exchange{{
		Method: "GET", URL: "/x", ReqHeader: []Header{{Name: "A", Value: "b"}}, Status: 200,
		RespBody:  CapBody([]byte("0123456789"), 4),
		WebSocket: &WebSocket{Frames: []Frame{{FromClient: true, Opcode: OpText, Payload: Body{Data: []byte("hi")}}}, Close: Close{Code: 1000}},
	}}}))
	f.Add([]byte{0, 0, 0, 0, 2})
	f.Fuzz(func(t *testing.T, payload []byte) {
		got, err := decodeAll(payload)
		if err != nil {
			return
		}
		var again []byte
		for _, s := range got {
			if checkSession(s) != nil {
				return // a body size the Writer refuses
			}
			again = appendSession(again, s)
		}
		back, err := decodeAll(again)
		if err != nil {
			t.Fatalf("re-encoded sessions do not decode: %v", err)
		}
		if !reflect.DeepEqual(back, got) {
			t.Fatalf("sessions changed on the second trip:\n got %+v\nwant %+v", back, got)
		}
	})
}
