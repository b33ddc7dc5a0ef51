package replay

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/thrive-loadtest/thrive/traces"
)

// A streamed reply (an LLM answer token by token) has as many frames as
// the server chooses, so a replayed reply cannot be known to be over by
// counting the recorded frames. Its last frame has a shape instead: a
// {"type":"done"} after the {"type":"token"} ones, a key that only the
// last frame has, or a fixed text such as "[DONE]". At load, each socket's
// recorded replies are searched for the simplest shape that every last
// frame has and no other frame has; at replay a reply ends at the first
// frame of that shape, however many came before it. A socket whose replies
// show no such shape falls back to the recorded count; either way a reply
// also ends after a silence.

// discriminators returns the JSON fields that usually say what a message
// is.
func discriminators() []string {
	return []string{"type", "event", "status", "done", "finish_reason", "object", "kind", "action", "op"}
}

// endShape recognises the last frame of a reply.
type endShape struct {
	fields map[string]string // field → its compact JSON value, for a JSON object
	keys   string            // the sorted keys of a JSON object, joined by commas
	text   []byte            // the exact payload
}

// matches reports whether p, a server frame's payload, has the shape.
func (m *endShape) matches(p []byte) bool {
	switch {
	case m.text != nil:
		return bytes.Equal(bytes.TrimSpace(p), m.text)
	case m.fields != nil:
		obj, ok := object(p)
		if !ok {
			return false
		}
		for k, v := range m.fields {
			if compact(obj[k]) != v {
				return false
			}
		}
		return true
	case m.keys != "":
		obj, ok := object(p)
		return ok && keysOf(obj) == m.keys
	}
	return false
}

// String names the shape for reports.
func (m *endShape) String() string {
	switch {
	case m == nil:
		return "recorded frame count"
	case m.text != nil:
		return "text " + string(m.text)
	case m.fields != nil:
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(m.fields)) {
			parts = append(parts, k+"="+m.fields[k])
		}
		return "fields " + strings.Join(parts, ",")
	}
	return "keys " + m.keys
}

func object(p []byte) (map[string]json.RawMessage, bool) {
	p = bytes.TrimSpace(p)
	if len(p) == 0 || p[0] != '{' {
		return nil, false
	}
	var obj map[string]json.RawMessage
	return obj, json.Unmarshal(p, &obj) == nil
}

func compact(v json.RawMessage) string {
	if v == nil {
		return ""
	}
	var b bytes.Buffer
	if json.Compact(&b, v) != nil {
		return string(v)
	}
	return b.String()
}

func keysOf(obj map[string]json.RawMessage) string {
	return strings.Join(slices.Sorted(maps.Keys(obj)), ",")
}

// scalar reports whether a JSON value is a string, number, boolean or null:
// something a final frame can be told by.
func scalar(v string) bool { return v != "" && v[0] != '{' && v[0] != '[' }

// findEndShape returns the shape that every payload of last has and none of
// others has, or nil. It tries, in order: the discriminating fields whose
// value is the same in every last frame; those with every other field of
// the set of keys; the fields of constant value that some other frame does
// not share; the exact text.
func findEndShape(last, others [][]byte) *endShape {
	if len(last) == 0 {
		return nil
	}
	separates := func(m *endShape) bool {
		for _, p := range last {
			if !m.matches(p) {
				return false
			}
		}
		for _, p := range others {
			if m.matches(p) {
				return false
			}
		}
		return true
	}
	objs := make([]map[string]json.RawMessage, 0, len(last))
	for _, p := range last {
		if o, ok := object(p); ok {
			objs = append(objs, o)
		}
	}
	if len(objs) == len(last) {
		// constant returns the fields of names whose value is the same
		// scalar in every last frame.
		constant := func(names []string) map[string]string {
			out := map[string]string{}
			for _, k := range names {
				v := compact(objs[0][k])
				if !scalar(v) {
					continue
				}
				same := true
				for _, o := range objs[1:] {
					if compact(o[k]) != v {
						same = false
						break
					}
				}
				if same {
					out[k] = v
				}
			}
			return out
		}
		known := constant(discriminators())
		if len(known) > 0 {
			if m := (&endShape{fields: known}); separates(m) {
				return m
			}
		}
		if m := (&endShape{keys: keysOf(objs[0])}); separates(m) {
			return m
		}
		if len(objs) > 1 {
			// Fields of constant value over several replies, kept only
			// where some other frame differs: a value every frame shares
			// (a conversation id) tells nothing and may change live.
			all := constant(slices.Collect(maps.Keys(objs[0])))
			for k, v := range all {
				differs := false
				for _, p := range others {
					if o, ok := object(p); !ok || compact(o[k]) != v {
						differs = true
						break
					}
				}
				if !differs {
					delete(all, k)
				}
			}
			if len(all) > 0 {
				if m := (&endShape{fields: all}); separates(m) {
					return m
				}
			}
		}
	}
	if m := (&endShape{text: bytes.TrimSpace(last[0])}); len(m.text) > 0 && separates(m) {
		return m
	}
	return nil
}

// Reply idle bounds: a reply that has begun and then stays silent this long
// is over. The default is ten times the longest gap between its recorded
// frames, within these bounds.
const (
	minReplyIdle = time.Second
	maxReplyIdle = 10 * time.Second
)

// wsScriptOf makes the client's side of a recorded WebSocket: its data
// messages, each with what its reply looked like.
func wsScriptOf(ws *traces.WebSocket) *wsScript {
	w := &wsScript{close: ws.Close.Offset}
	var groups [][]traces.Frame // the server's data frames after each client message
	for _, f := range ws.Frames {
		data := f.Opcode == traces.OpText || f.Opcode == traces.OpBinary
		switch {
		case !data:
		case f.FromClient:
			w.frames = append(w.frames, wsFrame{index: len(w.frames), offset: f.Offset, opcode: int(f.Opcode), payload: f.Payload.Data})
			groups = append(groups, nil)
		case len(groups) > 0:
			groups[len(groups)-1] = append(groups[len(groups)-1], f)
		}
	}
	var last, others [][]byte
	for i, g := range groups {
		wf := &w.frames[i]
		wf.replies = len(g)
		gap := time.Duration(0)
		for j, f := range g {
			if j > 0 {
				gap = max(gap, f.Offset-g[j-1].Offset)
			}
			if j == len(g)-1 {
				last = append(last, f.Payload.Data)
			} else {
				others = append(others, f.Payload.Data)
			}
		}
		wf.idle = min(max(10*gap, minReplyIdle), maxReplyIdle)
	}
	for _, f := range ws.Frames {
		if !f.FromClient && (f.Opcode == traces.OpText || f.Opcode == traces.OpBinary) {
			for _, r := range refusalsOf(jsonPart(bytes.TrimSpace(f.Payload.Data))) {
				if !slices.Contains(w.said, r) {
					w.said = append(w.said, r)
				}
			}
		}
	}
	w.end = findEndShape(last, others)
	if w.end == nil {
		w.end = cutEndShape(groups)
	}
	if w.end != nil {
		for i, g := range groups {
			// A reply whose recorded frames stop short of the end shape
			// was still going when the next message was sent: the user
			// did not wait for it, and the replayed user does not either.
			if len(g) > 0 && i+1 < len(groups) && !w.end.matches(g[len(g)-1].Payload.Data) {
				w.frames[i].overlaps = true
			}
		}
	}
	return w
}

// cutEndShape finds the end shape of a socket where some user sent a
// message before the reply to the one before was over, so that the reply's
// last frame was recorded after the next message. It takes the shapes the
// socket's final frame has (nothing cut the final reply) and accepts the
// first of them that as many frames have as there are replies.
func cutEndShape(groups [][]traces.Frame) *endShape {
	n := len(groups) - 1
	for n >= 0 && len(groups[n]) == 0 {
		n--
	}
	if n < 1 {
		return nil
	}
	final := groups[n][len(groups[n])-1].Payload.Data
	var cands []*endShape
	if obj, ok := object(final); ok {
		known := map[string]string{}
		for _, k := range discriminators() {
			if v := compact(obj[k]); scalar(v) {
				known[k] = v
			}
		}
		if len(known) > 0 {
			cands = append(cands, &endShape{fields: known})
		}
		cands = append(cands, &endShape{keys: keysOf(obj)})
	}
	if t := bytes.TrimSpace(final); len(t) > 0 {
		cands = append(cands, &endShape{text: t})
	}
	replies, frames := 0, 0
	for _, g := range groups {
		if len(g) > 0 {
			replies++
		}
		frames += len(g)
	}
	for _, m := range cands {
		if ends, ok := endsInOrder(groups, m); ok && ends == replies && frames > ends {
			return m
		}
	}
	return nil
}

// endsInOrder counts the frames of shape m, and reports whether they fall
// as the ends of replies can: no frame comes after the end of the reply to
// the latest message sent, before the next message.
func endsInOrder(groups [][]traces.Frame, m *endShape) (int, bool) {
	ends := 0
	for i, g := range groups {
		for _, f := range g {
			if ends == i+1 {
				return ends, false // a frame after every reply so far was over
			}
			if m.matches(f.Payload.Data) {
				ends++
			}
		}
	}
	return ends, true
}
