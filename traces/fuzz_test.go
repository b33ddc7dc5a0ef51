package traces_test

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"
	"time"

	"github.com/thrive-loadtest/thrive/traces"
)

// FuzzReader feeds arbitrary bytes to the Reader: it must never panic, and
// whatever it accepts must survive a second trip through the Writer.
func FuzzReader(f *testing.F) {
	// Seeds stay small: the fuzzer minimizes every new input it finds, and
	// that costs time in proportion to the input's size.
	small := write(f, []*traces.Session{
		{ID: "a", Profile: "browse", Start: time.Unix(1, 0), Exchanges: []traces.Exchange{{Method: "GET", URL: "/p/1", Status: 200, ReqHeader: []traces.Header{{Name: "Cookie", Value: "s=1"}}, RespBody: traces.Body{Data: []byte(`{"id":1}`)}}}},
		{ID: "b", Profile: "chat"},
	}, traces.WithBlockSize(64))
	f.Add(small)
	f.Add(small[:len(small)/2])
	f.Add(write(f, nil))
	f.Add(write(f, []*traces.Session{{ID: "ws", Exchanges: []traces.Exchange{{Method: "GET", Status: 101, WebSocket: &traces.WebSocket{
		Frames: []traces.Frame{{FromClient: true, Opcode: traces.OpBinary, Payload: traces.CapBody([]byte("0123456789"), 4)}},
	}}}}}))
	f.Add([]byte("THRV"))
	f.Fuzz(func(t *testing.T, file []byte) {
		r, err := traces.NewReader(bytes.NewReader(file))
		if err != nil {
			var fe *traces.FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("NewReader error is not a FormatError: %v", err)
			}
			return
		}
		defer r.Close()
		var got []*traces.Session
		for {
			s := new(traces.Session)
			err := r.Next(s)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				var fe *traces.FormatError
				if !errors.As(err, &fe) || fe.Offset > int64(len(file)) {
					t.Fatalf("Next error %v is not a FormatError inside the file", err)
				}
				break
			}
			got = append(got, s)
		}
		var buf bytes.Buffer
		w, err := traces.NewWriter(&buf, r.Meta())
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range got {
			if err := w.Write(s); err != nil {
				// A decoded session may carry a body size the Writer
				// refuses; that is the Writer's check, not a crash.
				return
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		again, err := readAll(t, buf.Bytes())
		if err != nil {
			t.Fatalf("re-read: %v", err)
		}
		if len(again) != len(got) {
			t.Fatalf("re-read %d sessions, wrote %d", len(again), len(got))
		}
		for i := range got {
			if !reflect.DeepEqual(normalize(again[i]), normalize(got[i])) {
				t.Fatalf("session %d changed on the second trip", i)
			}
		}
	})
}

// FuzzRoundTrip builds sessions from fuzzed fields and checks that they read
// back exactly.
func FuzzRoundTrip(f *testing.F) {
	f.Add("s1", "GET", "/api/projects/?page=1", "Cookie", "sessionid=abc", []byte(`{"a":1}`), []byte{0, 1, 2, 0xff}, 200, int64(1500), uint8(1), true)
	f.Add("", "", "", "", "", []byte(nil), []byte(nil), 0, int64(0), uint8(0), false)
	f.Add("ü", "PATCH", "http://h/x?y=\x00", "X", "\xff\xfe", []byte("\xc3\x28"), bytes.Repeat([]byte("z"), 5000), 599, int64(-5), uint8(9), true)
	f.Fuzz(func(t *testing.T, id, method, url, hname, hvalue string, req, resp []byte, status int, offset int64, opcode uint8, ws bool) {
		if status < 0 {
			status = -status
		}
		ex := traces.Exchange{
			Offset: time.Duration(offset), Think: time.Duration(offset / 3),
			Method: method, URL: url, ReqHeader: []traces.Header{{Name: hname, Value: hvalue}},
			ReqBody: traces.Body{Data: req}, Status: status % 1000, RespBody: traces.CapBody(resp, 64),
			Placed: traces.Placement(opcode % 7),
		}
		if ws {
			ex.WebSocket = &traces.WebSocket{
				Frames: []traces.Frame{{Offset: time.Duration(offset), FromClient: opcode&1 == 1, Opcode: traces.Opcode(opcode & 0x7f), Payload: traces.Body{Data: resp}}},
				Close:  traces.Close{Code: int(opcode), Reason: hvalue},
			}
		}
		in := &traces.Session{ID: id, Profile: hname, Client: hvalue, Start: time.Unix(0, offset).UTC(), Exchanges: []traces.Exchange{ex},
			Evidence: method, Continues: ws, Strays: opcode&2 != 0}
		if offset == 0 {
			in.Start = time.Time{}
		}
		got, err := readAll(t, write(t, []*traces.Session{in, in}))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 {
			t.Fatalf("read %d sessions, wrote 2", len(got))
		}
		for _, g := range got {
			if !reflect.DeepEqual(normalize(g), normalize(in)) {
				t.Fatalf("differs:\n got %+v\nwant %+v", g, in)
			}
		}
	})
}
