package replay

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/thrive-loadtest/thrive/traces"
)

// socketOf makes a recorded WebSocket from a script: "> text" is a client
// message, "< text" a server frame, each 10 ms after the one before.
func socketOf(lines ...string) *traces.WebSocket {
	ws := &traces.WebSocket{}
	for i, l := range lines {
		ws.Frames = append(ws.Frames, traces.Frame{Offset: time.Duration(i) * 10 * time.Millisecond, FromClient: l[0] == '>',
			Opcode: traces.OpText, Payload: traces.Body{Data: []byte(strings.TrimSpace(l[1:]))}})
	}
	return ws
}

func TestEndShape(t *testing.T) {
	for _, tc := range []struct {
		name     string
		lines    []string
		want     string // the shape, as String names it
		match    []string
		nomatch  []string
		overlaps []bool
	}{
		{
			name: "type field",
			lines: []string{`> {"q":1}`, `< {"type":"token","c":"a"}`, `< {"type":"token","c":"b"}`, `< {"type":"done","n":2}`,
				`> {"q":2}`, `< {"type":"token","c":"a"}`, `< {"type":"done","n":1}`},
			want:    `fields type="done"`,
			match:   []string{`{"type":"done","n":40}`, `{"n":1,"type":"done"}`},
			nomatch: []string{`{"type":"token","c":"z"}`, `[DONE]`, `{"kind":"done"}`},
		},
		{
			name:    "one reply, done flag",
			lines:   []string{`> hi`, `< {"delta":"a","done":false}`, `< {"delta":"b","done":false}`, `< {"delta":"","done":true}`},
			want:    `fields done=true`,
			match:   []string{`{"delta":"x","done":true}`},
			nomatch: []string{`{"delta":"x","done":false}`},
		},
		{
			name:  "a key only the last frame has",
			lines: []string{`> hi`, `< {"t":"a"}`, `< {"t":"b"}`, `< {"t":"c","usage":{"n":3}}`, `> again`, `< {"t":"a"}`, `< {"t":"c","usage":{"n":1}}`},
			want:  `keys t,usage`,
			match: []string{`{"usage":{"n":9},"t":"q"}`}, nomatch: []string{`{"t":"c"}`},
		},
		{
			name:  "text",
			lines: []string{`> hi`, `< word `, `< word `, `< [DONE]`, `> more`, `< word `, `< [DONE]`},
			want:  `text [DONE]`, match: []string{`[DONE]`}, nomatch: []string{`word `},
		},
		{
			name:  "every frame alike: the recorded count",
			lines: []string{`> hi`, `< {"t":"a"}`, `< {"t":"b"}`, `> more`, `< {"t":"a"}`},
			want:  `recorded frame count`,
		},
		{
			// The user sent the second message before the first reply
			// was over: its end came after the second message.
			name: "a reply cut by the next message",
			lines: []string{`> one`, `< {"type":"token"}`, `> two`, `< {"type":"token"}`, `< {"type":"done"}`,
				`< {"type":"token"}`, `< {"type":"done"}`, `> three`, `< {"type":"token"}`, `< {"type":"done"}`},
			want:     `fields type="done"`,
			overlaps: []bool{true, false, false},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := wsScriptOf(socketOf(tc.lines...))
			if got := w.end.String(); got != tc.want {
				t.Fatalf("shape %s, want %s", got, tc.want)
			}
			for _, p := range tc.match {
				if !w.end.matches([]byte(p)) {
					t.Errorf("%s does not match", p)
				}
			}
			for _, p := range tc.nomatch {
				if w.end.matches([]byte(p)) {
					t.Errorf("%s matches", p)
				}
			}
			if tc.overlaps != nil {
				for i, f := range w.frames {
					if f.overlaps != tc.overlaps[i] {
						t.Errorf("message %d: overlaps %v, want %v", i, f.overlaps, tc.overlaps[i])
					}
				}
			}
		})
	}
}

// TestReplyIdleFromTheRecording: the silence that ends a reply is ten times
// the longest gap between its recorded frames, from 1 to 10 seconds.
func TestReplyIdleFromTheRecording(t *testing.T) {
	ws := &traces.WebSocket{Frames: []traces.Frame{
		{Offset: 0, FromClient: true, Opcode: traces.OpText, Payload: traces.Body{Data: []byte("a")}},
		{Offset: 10 * time.Millisecond, Opcode: traces.OpText, Payload: traces.Body{Data: []byte("x")}},
		{Offset: 20 * time.Millisecond, Opcode: traces.OpText, Payload: traces.Body{Data: []byte("y")}},
		{Offset: time.Second, FromClient: true, Opcode: traces.OpText, Payload: traces.Body{Data: []byte("b")}},
		{Offset: 1100 * time.Millisecond, Opcode: traces.OpText, Payload: traces.Body{Data: []byte("x")}},
		{Offset: 1400 * time.Millisecond, Opcode: traces.OpText, Payload: traces.Body{Data: []byte("y")}},
		{Offset: 2 * time.Second, FromClient: true, Opcode: traces.OpText, Payload: traces.Body{Data: []byte("c")}},
		{Offset: 2100 * time.Millisecond, Opcode: traces.OpText, Payload: traces.Body{Data: []byte("x")}},
		{Offset: 4100 * time.Millisecond, Opcode: traces.OpText, Payload: traces.Body{Data: []byte("y")}},
	}}
	w := wsScriptOf(ws)
	for i, want := range []time.Duration{time.Second, 3 * time.Second, 10 * time.Second} {
		if got := w.frames[i].idle; got != want {
			t.Errorf("reply %d: idle %v, want %v", i, got, want)
		}
	}
}

func TestShapeChanges(t *testing.T) {
	for _, tc := range []struct{ name, recorded, live, want string }{
		{"same", `{"id":1,"tags":["a"],"owner":{"name":"x"}}`, `{"id":2,"tags":["b","c"],"owner":{"name":"y"},"new":1}`, ""},
		{"missing key", `{"id":1,"project_id":5}`, `{"id":1}`, "$.project_id missing"},
		{"type changed", `{"id":1,"items":[{"id":1}]}`, `{"id":"1","items":{}}`, "$.id is string, was number, $.items is object, was array"},
		{"a gone object is one change", `{"owner":{"name":"x","id":1}}`, `{}`, "$.owner missing"},
		{"null is not a change", `{"next":null,"v":2}`, `{"next":"abc","v":null}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := strings.Join(shapeChanges(jsonShape([]byte(tc.recorded)), jsonShape([]byte(tc.live))), ", ")
			if got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestRepliesByID: a kernel's replies carry the id of the request they
// answer (parent_header.msg_id) and end with a status frame whose nested
// execution_state is idle, while busy frames share its msg_type; two
// requests sent at once get interleaved replies; the server sends a
// status of its own on connecting, with the id of a request it made
// itself (Jupyter Server's nudge). Each reply is told by its id, and ends
// at its idle frame.
func TestRepliesByID(t *testing.T) {
	msg := func(client bool, ms int, id, typ, content string) traces.Frame {
		var p string
		if client {
			p = `{"header":{"msg_id":"` + id + `","msg_type":"` + typ + `","session":"s1"},"parent_header":{},"content":{}}`
		} else {
			p = `{"header":{"msg_id":"srv-` + typ + `-` + id + `","session":"k1"},"msg_type":"` + typ + `","parent_header":{"msg_id":"` + id + `","session":"s1"},"content":` + content + `}`
		}
		return traces.Frame{FromClient: client, Offset: time.Duration(ms) * time.Millisecond, Opcode: traces.OpText, Payload: traces.Body{Data: []byte(p)}}
	}
	const a, b = "5f0c2a9e-0001", "5f0c2a9e-0002"
	ws := &traces.WebSocket{Frames: []traces.Frame{
		msg(false, 2, "k1_7_0", "status", `{"execution_state":"idle"}`),
		msg(true, 10, a, "execute_request", ""),
		msg(true, 11, b, "execute_request", ""),
		msg(false, 12, a, "status", `{"execution_state":"busy"}`),
		msg(false, 13, b, "status", `{"execution_state":"busy"}`),
		msg(false, 14, a, "execute_result", `{"data":{"text/plain":"2"}}`),
		msg(false, 15, a, "execute_reply", `{"status":"ok"}`),
		msg(false, 16, b, "execute_reply", `{"status":"ok"}`),
		msg(false, 17, a, "status", `{"execution_state":"idle"}`),
		msg(false, 18, b, "status", `{"execution_state":"idle"}`),
	}}
	w := wsScriptOf(ws)
	if fmt.Sprint(w.idClient) != "[header msg_id]" || fmt.Sprint(w.idServer) != "[parent_header msg_id]" {
		t.Fatalf("ids at %v and %v", w.idClient, w.idServer)
	}
	if w.frames[0].replies != 4 || w.frames[1].replies != 3 || !w.frames[0].overlaps {
		t.Errorf("replies %d and %d, overlaps %v", w.frames[0].replies, w.frames[1].replies, w.frames[0].overlaps)
	}
	if w.end == nil || w.end.String() != "fields content.execution_state=\"idle\",msg_type=\"status\"" {
		t.Errorf("end shape %v", w.end)
	}
}

func TestHeartbeat(t *testing.T) {
	for p, want := range map[string]bool{
		`{"type":"ping","message":1733472000}`: true, "2": true, `{"event":"heartbeat"}`: true, `{"op":"hb"}`: true,
		`{"type":"confirm_subscription"}`: false, `{"identifier":"x","message":{"type":"ping"}}`: false, "42[\"ping\"]": false, `{"type":"pingu"}`: false,
	} {
		if got := heartbeat([]byte(p)); got != want {
			t.Errorf("heartbeat(%s) = %v", p, got)
		}
	}
}
